// The relay client's start and its paths, in virtual time on links with jitter (datagrams reorder).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkManager } from '../../src/api/network-manager.js';
import { RelayMsg, addressKey } from '../../src/relay/protocol.js';
import { seededCryptoProvider } from '../../src/testing/crypto.js';
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

test("a connection runs on one link: the side that accepted keeps the peer's link to its token, though the peer's route names other relays", () => {
  const first = seedOr(821);
  for (let seed = first; seed < first + 10; seed++) {
    withSeed(seed, () => {
      const world = new World(seed, LINK);
      const r1 = world.relay();
      const r2 = world.relay();
      // Each peer on its own relay: the one that dials links to the other's token on the other's relay.
      const x = new NetworkManager({ relays: [r1.address], runtime: world.peerRuntime() });
      const y = new NetworkManager({ relays: [r2.address], runtime: world.peerRuntime() });
      const nms = [x, y];
      const frames = nms.map((nm) => ({ frame: () => (nm.runCallbacks(), nm.flush()) }));
      world.drive(frames, () => x.route !== null && y.route !== null, 2_000_000, 'routes');
      x.openPeer(y.getPeerId(), y.route as string);
      y.openPeer(x.getPeerId(), x.route as string);
      x.openChannel(y.getPeerId(), 1, true);
      y.openChannel(x.getPeerId(), 1, true);
      world.drive(frames, () => x.peerStatus(y.getPeerId())?.connected === true && y.peerStatus(x.getPeerId())?.connected === true, 5_000_000, 'connected');
      const [dialler, acceptor] = x.getPeerId() < y.getPeerId() ? [x, y] : [y, x];
      const acceptorRelay = dialler === x ? r2.at : r1.at;
      // Data one way (acks the other): every datagram up goes to the acceptor's relay, and the path never moves.
      const up = new Set<string>();
      world.sim.intercept = (_from, to, data) => {
        if (data[0] === RelayMsg.DataUp) up.add(addressKey(to));
        return data;
      };
      let got = 0;
      acceptor.on('message', () => got++);
      world.run(frames, 3_000_000, () => dialler.sendMessage(acceptor.getPeerId(), 1, new Uint8Array(100)));
      assert.ok(got > 250, `${got} messages`);
      assert.deepEqual([...up], [acceptorRelay], 'one relay carries both directions');
      assert.equal(dialler.peerStatus(acceptor.getPeerId())?.pathChanges, 0);
      assert.equal(acceptor.peerStatus(dialler.getPeerId())?.pathChanges, 0, 'the connection does not migrate back and forth');
      for (const nm of nms) nm.close();
      world.close();
    });
  }
});

test('a warm backup relay survives 10 % loss: a lost keepalive never kills it, so the route is not republished (5 simulated minutes)', () => {
  withSeed(seedOr(841), (seed) => {
    const world = new World(seed, { ...LINK, loss: 0.1 });
    const relays = [world.relay().address, world.relay().address];
    const nm = new NetworkManager({ relays, runtime: world.peerRuntime() });
    const routes: string[] = [];
    nm.on('routeUpdate', (r) => routes.push(r));
    const frames = [{ frame: () => nm.runCallbacks() }];
    world.drive(frames, () => routes.length > 0 && nm.relay.relayPings().every((p) => p.session), 10_000_000, 'a primary and a warm backup');
    const before = { deaths: nm.getStats().relay.relayDeaths, routes: routes.length };
    world.run(frames, 300_000_000);
    const st = nm.getStats().relay;
    console.log(`# seed ${seed}: ${st.relayDeaths - before.deaths} relay deaths, ${routes.length - before.routes} new routes in 300 s at 10 % loss`);
    // P(four keepalive rounds in a row lost) at 10 % loss each way is about 0.1 %: a death in 300 s is possible, a dozen is a bug.
    assert.ok(st.relayDeaths - before.deaths <= 2, `${st.relayDeaths - before.deaths} relay deaths`);
    assert.ok(routes.length - before.routes <= 4, `${routes.length - before.routes} route changes`);
    assert.ok(nm.relay.relayPings().every((p) => p.session && !p.dead), 'both sessions open at the end');
    nm.close();
    world.close();
  });
});

test('a forged NO_SESSION (it travels in the clear) does not end a live session: a sealed keepalive refutes it; a real one (the relay restarted) still does', () => {
  withSeed(seedOr(851), (seed) => {
    const world = new World(seed, LINK);
    const staticKey = seededCryptoProvider(seed).generateKeyExchange();
    const relay = world.relay({ open: true, staticKey }, '10.0.0.1');
    const x = new NetworkManager({ relays: [relay.address], runtime: world.peerRuntime() });
    const frames = [{ frame: () => (x.runCallbacks(), x.flush()) }];
    const seen: { id: Uint8Array | null } = { id: null };
    world.sim.intercept = (_from, to, data) => {
      if (data[0] === RelayMsg.Sealed && addressKey(to) === relay.at) seen.id ??= data.slice(1, 9);
      return data;
    };
    world.drive(frames, () => x.route !== null && seen.id !== null, 3_000_000, 'a session and a sealed frame seen on the wire');
    const sessionId = seen.id as Uint8Array;
    const route = x.route;
    const socket = world.sim.socketAt(x.localAddress);
    assert.ok(socket);
    // An attacker on the path forges NO_SESSION from the relay's address, ten times over a second.
    for (let i = 0; i < 10; i++) world.sim.inject(relay.server.local, socket, Uint8Array.of(RelayMsg.NoSession, ...sessionId), world.sim.now + i * 100_000);
    world.run(frames, 2_000_000);
    assert.equal(x.route, route, 'the route is unchanged: the session was kept');
    assert.equal(x.getStats().relay?.relayDeaths, 0);
    assert.equal(relay.server.node.stats.sessionsOpened, 1, 'no new session was opened');
    // The relay restarts (same address, same key, no sessions): its NO_SESSION is real, nothing sealed refutes it.
    world.kill(relay.at);
    const again = world.relay({ open: true, staticKey }, '10.0.0.1');
    world.drive(frames, () => x.route !== null && x.route !== route, 3_000_000, 'a new session and route on the restarted relay');
    assert.equal(again.server.node.stats.sessionsOpened, 1);
    x.close();
    world.close();
  });
});
