import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimNetwork } from '../../src/testing/sim-network.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { NetworkManager } from '../../src/api/network-manager.js';
import { addressKey } from '../../src/relay/protocol.js';
import { seedOr, withSeed } from '../support/sim.js';

test('two NetworkManagers and a relay in virtual time', () => {
  withSeed(seedOr(700), (seed) => {
    const sim = new SimNetwork(seed, { latencyUs: 10_000 });
    const relay = RelayServer.open({ runtime: sim.runtime('10.0.0.1'), port: 27100, open: true });
    const relays = [addressKey(relay.local)];
    const a = new NetworkManager({ relays, runtime: sim.runtime('10.0.1.1') });
    const b = new NetworkManager({ relays, runtime: sim.runtime('10.0.1.2') });
    assert.ok(sim.runUntil(() => a.route !== null && b.route !== null, 5_000_000), 'routes');
    a.openPeer(b.getPeerId(), b.route as string);
    b.openPeer(a.getPeerId(), a.route as string);
    a.openChannel(b.getPeerId(), 0, true);
    b.openChannel(a.getPeerId(), 0, true);
    assert.ok(sim.runUntil(() => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5_000_000), 'connected');
    const got: number[] = [];
    b.on('message', (_p, _c, d) => got.push(d[0] as number));
    for (let i = 0; i < 100; i++) a.sendMessage(b.getPeerId(), 0, Uint8Array.of(i));
    a.flush();
    assert.ok(sim.runUntil(() => {
      b.runCallbacks();
      return got.length === 100;
    }, 5_000_000));
    assert.deepEqual(got, [...Array(100).keys()]);
    console.log(`# virtual ${sim.now / 1e6} s`);
    a.close();
    b.close();
    relay.close();
  });
});
