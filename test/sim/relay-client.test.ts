// The relay client's start and its paths, in virtual time on links with jitter (datagrams reorder).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkManager } from '../../src/api/network-manager.js';
import { RelayMsg, addressKey } from '../../src/relay/protocol.js';
import { seedOr, withSeed } from '../support/sim.js';
import { World } from '../support/world.js';

const LINK = { latencyUs: 5_000, jitterUs: 1_000 };

test('a client starting with two relays pings each a few times, even when pongs come back out of order (no ping storm)', () => {
  const first = seedOr(801);
  for (let seed = first; seed < first + 20; seed++) {
    withSeed(seed, () => {
      const world = new World(seed, LINK);
      const relays = [world.relay().address, world.relay().address];
      const pings = new Map<string, number>();
      let storm = false;
      world.sim.intercept = (from, to, data) => {
        if (data[0] !== RelayMsg.Ping) return data;
        const k = `${addressKey(from)} > ${addressKey(to)}`;
        const n = (pings.get(k) ?? 0) + 1;
        pings.set(k, n);
        if (n <= 100) return data;
        storm = true;
        return null; // a storm: stop it here, so that the test fails quickly
      };
      const nms = [0, 1, 2].map(() => new NetworkManager({ relays, runtime: world.peerRuntime() }));
      world.drive([], () => nms.every((nm) => nm.route !== null), 2_000_000, 'routes');
      world.run([], 2_000_000);
      assert.equal(storm, false, `a ping storm: ${JSON.stringify([...pings])}`);
      // A probe, the session's ping, and a retry or two: not one per pong received.
      for (const [k, n] of pings) assert.ok(n <= 4, `${n} pings ${k} in the first ${world.sim.now / 1e6} s`);
      for (const nm of nms) nm.close();
      world.close();
    });
  }
});
