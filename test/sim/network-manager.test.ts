// NetworkManager semantics from the GameSDK seeds, in virtual time through a relay in the same simulation:
// result codes, events only inside runCallbacks, flush writes, channels matched by id and reliability,
// routeUpdate. Replay a failure with NETLANE_SEED=<the seed printed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { decodeRoute, formatRelayAddress } from '../../src/relay/protocol.js';
import { NetlaneError } from '../../src/util/errors.js';
import { seedOr, withSeed } from '../support/sim.js';
import { World, type Framed } from '../support/world.js';

const LINK = { latencyUs: 5_000, jitterUs: 1_000 };

/**
 * Runs `body` with the seed `defaultSeed` (or NETLANE_SEED; a failure names it) on a relay and two managers with
 * each other opened (no channels yet), and closes them after.
 */
function withPair(defaultSeed: number, body: (world: World, a: NetworkManager, b: NetworkManager) => void): void {
  withSeed(seedOr(defaultSeed), (seed) => {
    const world = new World(seed, LINK);
    const relays = [world.relay().address];
    const a = new NetworkManager({ relays, runtime: world.peerRuntime() });
    const b = new NetworkManager({ relays, runtime: world.peerRuntime() });
    try {
      world.drive([], () => a.route !== null && b.route !== null, 5_000_000, 'routes');
      assert.equal(a.openPeer(b.getPeerId(), b.route as string), DiscordResult.Ok);
      assert.equal(b.openPeer(a.getPeerId(), a.route as string), DiscordResult.Ok);
      world.drive([frame(() => (a.flush(), b.flush()))], () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5_000_000, 'connected');
      body(world, a, b);
    } finally {
      a.close();
      b.close();
      world.close();
    }
  });
}

function frame(fn: () => void): Framed {
  return { frame: fn };
}

test('result codes: bad route, unknown peer, self, duplicate open, channel out of range or not open; a peer id must be a bigint', () => {
  withPair(831, (_world, a, b) => {
    const other = b.getPeerId();
    assert.equal(typeof a.getPeerId(), 'bigint');
    assert.notEqual(a.getPeerId(), other);
    assert.equal(a.openPeer(12345n, 'not a route!'), DiscordResult.InvalidPayload);
    assert.equal(a.openPeer(12345n, 'AAAA'), DiscordResult.InvalidPayload);
    assert.equal(a.openPeer(a.getPeerId(), b.route as string), DiscordResult.InvalidCommand);
    assert.equal(a.openPeer(other, b.route as string), DiscordResult.Conflict);
    assert.equal(a.updatePeer(999n, b.route as string), DiscordResult.NotFound);
    assert.equal(a.openChannel(999n, 0, true), DiscordResult.NotFound);
    assert.equal(a.openChannel(other, 128, true), DiscordResult.InvalidChannel);
    assert.equal(a.openChannel(other, -1, true), DiscordResult.InvalidChannel);
    assert.equal(a.sendMessage(other, 3, new Uint8Array(1)), DiscordResult.InvalidChannel, 'channel not open');
    assert.equal(a.closeChannel(other, 3), DiscordResult.InvalidChannel);
    assert.equal(a.sendMessage(999n, 0, new Uint8Array(1)), DiscordResult.NotFound);
    assert.throws(() => a.openChannel(1 as unknown as bigint, 0, true), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT');
    assert.equal(a.closePeer(other), DiscordResult.Ok);
    assert.equal(a.closePeer(other), DiscordResult.NotFound);
  });
});

test('sendMessage queues and flush writes; message events fire only inside runCallbacks', () => {
  withPair(832, (world, a, b) => {
    a.openChannel(b.getPeerId(), 1, true);
    b.openChannel(a.getPeerId(), 1, true);
    const got: string[] = [];
    b.on('message', (peer, ch, d) => {
      assert.equal(peer, a.getPeerId());
      assert.equal(ch, 1);
      got.push(Buffer.from(d).toString());
    });
    assert.equal(a.sendMessage(b.getPeerId(), 1, Buffer.from('loot')), DiscordResult.Ok);
    // 150 ms is many round trips through the relay (about 20 ms each).
    world.sim.runFor(150_000);
    b.runCallbacks();
    assert.deepEqual(got, [], 'nothing leaves before flush');
    assert.equal(a.flush(), DiscordResult.Ok);
    world.sim.runFor(150_000);
    assert.deepEqual(got, [], 'no event outside runCallbacks');
    b.runCallbacks();
    assert.deepEqual(got, ['loot']);
  });
});

test('a message arrives only on a channel the receiver has open with the same reliability; others are dropped and counted; channels are independent', () => {
  withPair(833, (world, a, b) => {
    const pa = a.getPeerId();
    const pb = b.getPeerId();
    a.openChannel(pb, 1, true);
    a.openChannel(pb, 2, true);
    a.openChannel(pb, 3, false);
    b.openChannel(pa, 1, true); // same: delivered
    b.openChannel(pa, 2, false); // other reliability: dropped
    // channel 3 not open at b: dropped
    const got: [number, string][] = [];
    b.on('message', (_p, ch, d) => got.push([ch, Buffer.from(d).toString()]));
    for (let i = 0; i < 5; i++) for (const ch of [1, 2, 3]) a.sendMessage(pb, ch, Buffer.from(`${ch}:${i}`));
    a.flush();
    world.drive([frame(() => (a.flush(), b.runCallbacks()))], () => got.length >= 5 && b.getStats().droppedWrongReliability >= 5 && b.getStats().droppedNoChannel >= 1, 5_000_000, 'deliveries and drops');
    assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => [1, `1:${i}`]));
    assert.equal(b.getStats().droppedWrongReliability, 5);
    assert.ok(b.getStats().droppedNoChannel >= 1 && b.getStats().droppedNoChannel <= 5, 'unreliable ones may be lost, never duplicated');
    // Closing a channel stops delivery on it.
    assert.equal(b.closeChannel(pa, 1), DiscordResult.Ok);
    a.sendMessage(pb, 1, Buffer.from('after close'));
    a.flush();
    world.drive([frame(() => b.runCallbacks())], () => b.getStats().droppedNoChannel >= 6, 5_000_000, 'the drop after closeChannel');
    assert.equal(got.length, 5);
  });
});

test('routeUpdate fires inside runCallbacks with the route getRoute reports', () => {
  withSeed(seedOr(834), (seed) => {
    const world = new World(seed, LINK);
    const nm = new NetworkManager({ relays: [world.relay().address], runtime: world.peerRuntime() });
    try {
      const routes: string[] = [];
      nm.on('routeUpdate', (r) => routes.push(r));
      world.drive([], () => nm.route !== null, 5_000_000, 'a route');
      world.sim.runFor(0); // the rest of this instant: the driver's service pass after the datagram that opened the session
      assert.deepEqual(routes, []);
      nm.runCallbacks();
      assert.deepEqual(routes, [nm.route]);
    } finally {
      nm.close();
      world.close();
    }
  });
});

test('closePeer: the peer is gone at once on this side (sends answer NotFound) and its connection ends at the other; openPeer again reconnects, with a new handshake', () => {
  withPair(835, (world, a, b) => {
    const pa = a.getPeerId();
    const pb = b.getPeerId();
    const frames = [frame(() => (a.runCallbacks(), a.flush(), b.runCallbacks(), b.flush()))];
    for (const [x, y] of [[a, pb], [b, pa]] as const) x.openChannel(y, 1, true);
    const got: string[] = [];
    b.on('message', (_p, _ch, d) => got.push(Buffer.from(d).toString()));
    a.sendMessage(pb, 1, Buffer.from('before'));
    world.drive(frames, () => got.length === 1, 5_000_000, 'the first message');
    assert.equal(a.closePeer(pb), DiscordResult.Ok);
    assert.equal(a.peerStatus(pb), null, 'closed at once on this side');
    assert.equal(a.sendMessage(pb, 1, Buffer.from('to a closed peer')), DiscordResult.NotFound);
    world.drive(frames, () => b.peerStatus(pa)?.connected === false, 5_000_000, 'the close at the other end');
    // Open again (both sides still want each other: b never closed a): a new connection, a new handshake.
    assert.equal(a.openPeer(pb, b.route as string), DiscordResult.Ok);
    a.openChannel(pb, 1, true);
    world.drive(frames, () => a.peerStatus(pb)?.connected === true && b.peerStatus(pa)?.connected === true, 10_000_000, 'reconnected');
    a.sendMessage(pb, 1, Buffer.from('after'));
    world.drive(frames, () => got.length === 2, 5_000_000, 'the message after reopening');
    assert.deepEqual(got, ['before', 'after']);
    assert.equal(b.peerStatus(pa)?.handshakes, 2, 'one handshake per connection');
  });
});

test('rotateRoute: a new route (routeUpdate, revision + 1); a third peer holding the old route never links, one given the new route does; the connected peer stays connected', () => {
  withPair(839, (world, a, b) => {
    const old = a.route as string;
    const updates: string[] = [];
    a.on('routeUpdate', (r) => updates.push(r));
    assert.equal(a.rotateRoute(), DiscordResult.Ok);
    const frames = [frame(() => (a.runCallbacks(), b.runCallbacks(), a.flush(), b.flush()))];
    // (The first routeUpdate, queued since the start, may come first: the new route is the one that differs.)
    world.drive(frames, () => updates.some((r) => r !== old), 2_000_000, 'the new route');
    const fresh = updates.find((r) => r !== old) as string;
    assert.equal(decodeRoute(fresh).revision, decodeRoute(old).revision + 1);
    // C opens A with the old route; A opens C: the link request on the old token is refused (BAD_ROUTE) as long as C has only it.
    // C must be the one that dials (the lower id), so that it links with the route it holds: keys until one is.
    let c = new NetworkManager({ relays: [decodeRouteRelay(old)], runtime: world.peerRuntime() });
    for (let i = 0; i < 32 && c.getPeerId() > a.getPeerId(); i++) {
      c.close();
      c = new NetworkManager({ relays: [decodeRouteRelay(old)], runtime: world.peerRuntime() });
    }
    assert.ok(c.getPeerId() < a.getPeerId());
    try {
      frames.push(frame(() => (c.runCallbacks(), c.flush())));
      world.drive(frames, () => c.route !== null, 2_000_000, "C's route");
      assert.equal(c.openPeer(a.getPeerId(), old), DiscordResult.Ok);
      assert.equal(a.openPeer(c.getPeerId(), c.route as string), DiscordResult.Ok);
      world.run(frames, 2_000_000);
      assert.notEqual(c.peerStatus(a.getPeerId())?.connected, true, 'the old route names nothing any more');
      assert.ok((c.getStats().relay?.linkFailures ?? 0) > 0, 'the link request on the old token failed');
      c.updatePeer(a.getPeerId(), fresh);
      world.drive(frames, () => c.peerStatus(a.getPeerId())?.connected === true, 5_000_000, 'C connected with the new route');
      assert.equal(a.peerStatus(b.getPeerId())?.connected, true, 'B, linked before the rotation, stays connected');
      assert.equal(a.peerStatus(b.getPeerId())?.handshakes, 1);
    } finally {
      c.close();
    }
  });
});

/** The first relay of a route string, as `host:port#key`. */
function decodeRouteRelay(route: string): string {
  const e = decodeRoute(route).entries[0];
  if (!e) throw new Error('an empty route');
  return formatRelayAddress({ ...e.relay, publicKey: e.publicKey });
}
