import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkManager } from '../../src/api/network-manager.js';
import { World } from '../support/world.js';
import { seedOr, withSeed } from '../support/sim.js';

// Before a relay client has a primary, every datagram it receives runs its probe. It used to ping again
// each time (a new nonce), so a stale or duplicated pong always left another pong in flight for an old
// nonce: under duplication the pings multiplied and no session was ever requested.
test('a relay client gets its route through a link that duplicates, with a handful of pings (10 seeds)', () => {
  const first = seedOr(1);
  for (let seed = first; seed < first + 10; seed++) withSeed(seed, () => {
    const world = new World(seed, { latencyUs: 5_000, jitterUs: 1_000, duplicate: 0.3, duplicateDelayUs: 2_000 });
    const { address } = world.relay();
    const m = new NetworkManager({ relays: [address], runtime: world.peerRuntime() });
    try {
      const sent = (): number => m.relay.stats.datagramsSent;
      world.drive([{ frame: () => m.runCallbacks() }], () => m.route !== null || sent() > 100, 2_000_000, 'route');
      assert.ok(m.route !== null && sent() <= 6, `${sent()} datagrams sent, route ${m.route === null ? 'none' : 'made'} after ${world.sim.now / 1000} ms`);
    } finally {
      m.close();
      world.close();
    }
  });
});
