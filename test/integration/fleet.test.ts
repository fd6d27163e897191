// A relay fleet on real sockets: two in-process RelayServers on 127.0.0.1 joined through a real redis-server
// (test/support/redis.ts), and two NetworkingMessages peers, each on its own relay. A message from the peer on
// relay B reaches the peer registered on relay A through the fleet's directory. Waits on events, bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkingMessages } from '../../src/api/networking-messages.js';
import { Result, SendFlags } from '../../src/core/types.js';
import { openRedisFleetStore } from '../../src/io/fleet-store.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { redisSkip, startRedis } from '../support/redis.js';

async function until(peers: readonly NetworkingMessages[], done: () => boolean, ms: number, what: string, each?: () => void): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    for (const p of peers) p.runCallbacks();
    each?.();
    if (done()) return;
    if (performance.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('two relays in one Redis fleet: a peer on relay B reaches a peer registered on relay A by its id', { skip: redisSkip() }, async () => {
  const redis = await startRedis();
  const stores = [await openRedisFleetStore(redis.url), await openRedisFleetStore(redis.url)];
  const relays = stores.map((store, i) => RelayServer.open({ open: true, fleet: { store, region: `r${i}` } }));
  const peers = relays.map((r) => new NetworkingMessages({ relays: [r.address], relayOptions: { discoverFleet: false, bindAddress: '127.0.0.1' } }));
  try {
    const [alice, bob] = peers as [NetworkingMessages, NetworkingMessages];
    const [, rb] = relays as [RelayServer, RelayServer];
    await until(peers, () => peers.every((p) => p.registered) && relays.every((r) => r.node.stats.fleetWrites > 0), 5000, 'registrations written to Redis');
    alice.on('sessionRequest', (id) => assert.equal(alice.acceptSessionWithUser(id), true));
    assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('via redis'), SendFlags.Reliable, 0), Result.OK);
    const got: string[] = [];
    await until(peers, () => got.length > 0, 10_000, 'the message at alice', () => got.push(...alice.receiveMessagesOnChannel(0, 10).map((m) => Buffer.from(m.payload).toString())));
    assert.deepEqual(got, ['via redis']);
    assert.equal(rb.node.stats.fleetFound, 1, 'relay B found alice in Redis');
    assert.deepEqual((await stores[0]?.members('netlane:relays'))?.length, 2, 'both relays in the registry');
  } finally {
    for (const p of peers) p.close();
    for (const r of relays) r.close();
    await new Promise((r) => setTimeout(r, 50)); // the registry deletes of close() reach Redis
    for (const s of stores) await s.close();
    await redis.stop();
  }
});
