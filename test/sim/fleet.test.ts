// A relay fleet in virtual time (docs/RELAY.md "The fleet"): two relays share one MemoryFleetStore on the
// simulation's clock, and answers from the store come back through the node's sans-IO input
// (handleFleetResult). A peer registered on relay A is found by a lookup on relay B and reached there;
// the store going away gives STORE_UNAVAILABLE (never a silent drop) and lookups work again after it
// returns; the registry lists both relays. Replay a failure with NETLANE_SEED=<the seed printed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { NetworkingMessages } from '../../src/api/networking-messages.js';
import { Result, SendFlags } from '../../src/core/types.js';
import { MemoryFleetStore } from '../../src/io/fleet-store.js';
import type { RelayClientEvent } from '../../src/relay/client/index.js';
import { FLEET_TTL_MS } from '../../src/relay/node/index.js';
import { encodeTrunkHello } from '../../src/relay/hop.js';
import { RelayMsg, decodeRoute } from '../../src/relay/protocol.js';
import { signTicket, ticketKeyId } from '../../src/relay/ticket.js';
import { toHex } from '../../src/util/bytes.js';
import { seededCryptoProvider } from '../../src/testing/crypto.js';
import type { SimSocket } from '../../src/testing/sim-network.js';
import { seedOr, withSeed } from '../support/sim.js';
import { World, type Framed } from '../support/world.js';

const LINK = { latencyUs: 5_000, jitterUs: 1_000 };
const MS = 1000;

interface Fleet {
  readonly world: World;
  readonly store: MemoryFleetStore;
  readonly relays: ReturnType<World['relay']>[];
  /** peers[i] uses relay i only. */
  readonly peers: NetworkingMessages[];
  readonly frames: Framed[];
}

/**
 * Two relays in one fleet, and one peer on each relay (configured with that relay only, and not discovering the
 * fleet, so that each stays on its own relay), both registered.
 */
function fleet(seed: number, body: (f: Fleet) => void, discoverFleet = false): void {
  const world = new World(seed, LINK);
  const store = new MemoryFleetStore(() => world.sim.now);
  const relays = [world.relay({ open: true, fleet: { store, region: 'eu' } }), world.relay({ open: true, fleet: { store, region: 'us' } })];
  const peers = relays.map((r) => new NetworkingMessages({ relays: [r.address], runtime: world.peerRuntime(), relayOptions: { discoverFleet } }));
  const frames = peers.map((p) => ({ frame: () => p.runCallbacks() }));
  try {
    world.drive(frames, () => peers.every((p) => p.registered), 5000 * MS, 'directory registrations');
    body({ world, store, relays, peers, frames });
  } finally {
    for (const p of peers) p.close();
    world.close();
  }
}

/** Every lookup result `p`'s relay client reports. */
function lookups(p: NetworkingMessages): Extract<RelayClientEvent, { type: 'lookup' }>[] {
  const out: Extract<RelayClientEvent, { type: 'lookup' }>[] = [];
  const relay = p.relay;
  assert.ok(relay);
  const poll = relay.pollEvent.bind(relay);
  relay.pollEvent = () => {
    const e = poll();
    if (e?.type === 'lookup') out.push(e);
    return e;
  };
  return out;
}

test('a peer registered on relay A is found by a lookup on relay B (through the store), and a message reaches it', () => {
  withSeed(seedOr(1801), (seed) =>
    fleet(seed, ({ world, relays: [ra, rb], peers: [alice, bob], frames }) => {
      assert.ok(ra && rb && alice && bob);
      assert.equal(decodeRoute(alice.route as string).entries.length, 1, 'alice is on relay A only');
      assert.equal(rb.server.node.lookup(alice.getIdentity()), null, 'relay B holds no entry of its own for alice');
      assert.ok(ra.server.node.stats.fleetWrites > 0, 'relay A wrote to the store');
      const answers = lookups(bob);
      alice.on('sessionRequest', (id) => assert.equal(alice.acceptSessionWithUser(id), true));
      assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('hello across the fleet'), SendFlags.Reliable, 0), Result.OK);
      const got: string[] = [];
      world.drive(frames, () => got.length > 0, 10_000 * MS, 'the message at alice', () => got.push(...alice.receiveMessagesOnChannel(0, 10).map((m) => Buffer.from(m.payload).toString())));
      assert.deepEqual(got, ['hello across the fleet']);
      assert.equal(rb.server.node.stats.fleetFound, 1, 'relay B answered from the store');
      assert.equal(answers[0]?.result.ok, true);
      assert.equal(answers[0]?.result.ok && answers[0].result.route, alice.route, "the lookup returned alice's registered route");
    }),
  );
});

test('the store goes away: a lookup on relay B is answered STORE_UNAVAILABLE (not dropped), forwarding goes on, and lookups work again when the store is back', () => {
  withSeed(seedOr(1802), (seed) =>
    fleet(seed, ({ world, store, relays: [ra, rb], peers: [alice, bob], frames }) => {
      assert.ok(ra && rb && alice && bob);
      const answers = lookups(bob);
      store.available = false;
      const relay = bob.relay;
      assert.ok(relay);
      relay.lookup(world.sim.now, alice.getIdentity());
      world.drive(frames, () => answers.length > 0, 5000 * MS, 'the answer of a lookup while the store is down');
      assert.deepEqual(answers[0]?.result, { ok: false, why: 'unreachable' }, 'no route, and not "not found"');
      assert.equal(rb.server.node.stats.fleetStoreUnavailable, 1, 'relay B answered STORE_UNAVAILABLE');
      assert.equal(rb.server.node.fleetStoreUp, false);
      // Back: the next lookup finds alice (her entry was refreshed after the store lost nothing, or re-written).
      store.available = true;
      world.run(frames, 6000 * MS);
      relay.lookup(world.sim.now, alice.getIdentity());
      world.drive(frames, () => answers.length > 1, 5000 * MS, 'the answer of a lookup after the store is back');
      assert.equal(answers[1]?.result.ok, true, 'found again');
      assert.equal(rb.server.node.fleetStoreUp, true);
    }),
  );
});

test('a 20 s store outage: the established link keeps carrying reliable and unreliable messages, a lookup of an id read before is answered STALE_ROUTE, an unknown one STORE_UNAVAILABLE; when the store is back both relays rejoin within 1.5 s', () => {
  withSeed(seedOr(1807), (seed) =>
    fleet(seed, ({ world, store, relays: [ra, rb], peers: [alice, bob], frames }) => {
      assert.ok(ra && rb && alice && bob);
      alice.on('sessionRequest', (id) => assert.equal(alice.acceptSessionWithUser(id), true));
      const reliable: string[] = [];
      let unreliable = 0;
      const read = (): void => {
        for (const m of alice.receiveMessagesOnChannel(0, 100)) reliable.push(Buffer.from(m.payload).toString());
        unreliable += alice.receiveMessagesOnChannel(1, 100).length;
      };
      assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('r0'), SendFlags.Reliable, 0), Result.OK);
      world.drive(frames, () => reliable.length > 0, 10_000 * MS, 'the first message at alice (found through the store)', read);
      const answers = lookups(bob);
      const relay = bob.relay;
      assert.ok(relay);

      store.available = false;
      const downAt = world.sim.now;
      // 20 s down (longer than the 15 s TTL: the store forgets everything), a message a second on each lane.
      let sent = 1;
      while (world.sim.now - downAt < 20_000 * MS) {
        assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from(`r${sent++}`), SendFlags.Reliable, 0), Result.OK);
        assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('u'), SendFlags.Unreliable, 1), Result.OK);
        world.run(frames, 1000 * MS, read);
      }
      world.drive(frames, () => reliable.length === sent, 5000 * MS, 'every reliable message of the outage at alice', read);
      assert.deepEqual(reliable, Array.from({ length: sent }, (_, i) => `r${i}`), 'every reliable message, in order, while the store was down');
      assert.ok(unreliable >= 15, `unreliable messages kept arriving (${unreliable} of 20)`);
      assert.equal(rb.server.node.fleetStoreUp, false);

      relay.lookup(world.sim.now, alice.getIdentity());
      relay.lookup(world.sim.now, 424242n);
      world.drive(frames, () => answers.length >= 2, 10_000 * MS, 'two lookups answered during the outage');
      const ofAlice = answers.find((a) => a.peerId === alice.getIdentity());
      const ofNobody = answers.find((a) => a.peerId === 424242n);
      assert.ok(ofAlice?.result.ok && ofAlice.result.stale === true, `alice: the route relay B read before, marked stale (${JSON.stringify(ofAlice?.result.ok)})`);
      assert.equal(ofAlice.result.ok && ofAlice.result.route, alice.route);
      assert.deepEqual(ofNobody?.result, { ok: false, why: 'unreachable' }, 'an id never read: a clear failure, not "not found"');
      assert.ok(rb.server.node.stats.fleetStale >= 1);

      store.available = true;
      assert.equal(store.get(`netlane:dir:${alice.getIdentity()}`), null, 'the store held nothing at the end of the outage (TTL)');
      const upAt = world.sim.now;
      world.drive(
        frames,
        () => store.get(`netlane:dir:${alice.getIdentity()}`) === alice.route && store.get(`netlane:dir:${bob.getIdentity()}`) === bob.route && store.members('netlane:relays').length === 2,
        1500 * MS,
        'both relays and both entries written again',
      );
      console.log(`# rejoined ${(world.sim.now - upAt) / MS} ms after the store came back`);
      assert.ok(ra.server.node.stats.fleetRejoins >= 1 && rb.server.node.stats.fleetRejoins >= 1);
      relay.lookup(world.sim.now, alice.getIdentity());
      world.drive(frames, () => answers.length >= 3, 5000 * MS, 'a lookup after the outage');
      const after = answers[2];
      assert.ok(after?.result.ok && after.result.stale === undefined, 'a fresh answer from the store again');
    }),
  );
});

test('an entry whose relay stops refreshing it expires from the store after its TTL; a closed session deletes its own at once', () => {
  withSeed(seedOr(1803), (seed) =>
    fleet(seed, ({ world, store, peers: [alice, bob], frames }) => {
      assert.ok(alice && bob);
      const key = `netlane:dir:${alice.getIdentity()}`;
      assert.equal(store.get(key), alice.route);
      alice.close();
      world.run(frames, 2000 * MS);
      assert.equal(store.get(key), null, "alice's session closed: her entry is gone");
      const bobKey = `netlane:dir:${bob.getIdentity()}`;
      assert.equal(store.get(bobKey), bob.route);
      // A relay that dies never deletes: its entries go after the TTL.
      const primary = bob.relay?.primary;
      assert.ok(primary);
      world.kill(`${primary.address}:${primary.port}`);
      // Refreshed every 5 s with a 15 s TTL: still there 10 s after the last refresh could have been, gone after 16.
      world.run(frames, FLEET_TTL_MS * MS - 5000 * MS);
      assert.notEqual(store.get(bobKey), null, 'still there within its TTL');
      world.run(frames, 6000 * MS);
      assert.equal(store.get(bobKey), null, 'expired after the TTL');
    }),
  );
});

test('the registry lists every relay of the fleet with its region; a closed relay leaves it', () => {
  withSeed(seedOr(1804), (seed) =>
    fleet(seed, ({ world, store, relays: [ra, rb], frames }) => {
      assert.ok(ra && rb);
      world.run(frames, 100 * MS);
      const names = store.members('netlane:relays').sort();
      assert.deepEqual(names, [ra.at, rb.at].sort());
      const records = store.getMany(names.map((n) => `netlane:relay:${n}`)).map((v) => JSON.parse(v as string) as { address: string; region: string });
      assert.deepEqual(records.map((r) => [r.address, r.region]).sort(), [[ra.address, 'eu'], [rb.address, 'us']].sort());
      rb.server.close();
      assert.equal(store.get(`netlane:relay:${rb.at}`), null);
      assert.deepEqual(store.members('netlane:relays'), [ra.at]);
    }),
  );
});

test('a client configured with one relay of a fleet learns the other from FLEET_LIST, pings it and keeps it as its backup (its route names both)', () => {
  withSeed(seedOr(1805), (seed) =>
    fleet(
      seed,
      ({ world, relays: [ra, rb], peers: [alice], frames }) => {
        assert.ok(ra && rb && alice);
        const relay = alice.relay;
        assert.ok(relay);
        world.drive(frames, () => decodeRoute(alice.route as string).entries.length === 2, 5000 * MS, 'a route through both relays');
        assert.equal(relay.stats.fleetRelaysLearnt, 1, `one relay learnt (its own was configured): ${JSON.stringify(relay.relayPings())}`);
        const entries = decodeRoute(alice.route as string).entries.map((e) => `${e.relay.address}:${e.relay.port}`).sort();
        assert.deepEqual(entries, [ra.at, rb.at].sort());
        assert.ok(relay.relayPings().every((x) => x.pingMs >= 0), 'both relays pinged');
        assert.ok(ra.server.node.stats.fleetLists + rb.server.node.stats.fleetLists >= 1);
      },
      true,
    ),
  );
});

test('a relay in no fleet answers FLEET_LIST with NO_FLEET: a discovering client keeps its configured relays and asks no more', () => {
  withSeed(seedOr(1806), (seed) => {
    const world = new World(seed, LINK);
    const r = world.relay();
    const p = new NetworkingMessages({ relays: [r.address], runtime: world.peerRuntime(), relayOptions: { discoverFleet: true } });
    const frames = [{ frame: () => p.runCallbacks() }];
    try {
      world.drive(frames, () => p.registered, 5000 * MS, 'registration');
      world.run(frames, 11_000 * MS);
      assert.equal(p.relay?.stats.fleetRelaysLearnt, 0);
      assert.equal(p.relay?.relayPings().length, 1);
      assert.equal(r.server.node.stats.fleetLists, 0);
    } finally {
      p.close();
      world.close();
    }
  });
});

test('fleet-wide revocation over pub/sub: a ticket revoked on relay B closes its session on relay A at once and is refused after; a revoked ticket key closes every session it signed on both; garbage is counted', () => {
  withSeed(seedOr(1808), (seed) => {
    const world = new World(seed, LINK);
    const store = new MemoryFleetStore(() => world.sim.now);
    const provider = seededCryptoProvider(seed);
    const key = provider.signingKey();
    const keyId = ticketKeyId(provider, key.publicKey);
    const ticketKeys = { keys: new Map([[keyId, key.publicKey]]), revoked: new Set<number>() };
    const nowS = 1_800_000_000;
    const ticket = (user: string, id: number): Uint8Array => signTicket(provider, key, { user, issuedAt: nowS - 60, expiresAt: nowS + 3600, maxSessions: 4, maxKbps: 100_000, ticketId: new Uint8Array(16).fill(id) });
    const relays = [world.relay({ open: false, ticketKeys, fleet: { store, region: 'eu' } }), world.relay({ open: false, ticketKeys, fleet: { store, region: 'us' } })];
    const [ra, rb] = relays as [ReturnType<World['relay']>, ReturnType<World['relay']>];
    const peers = [
      new NetworkingMessages({ relays: [ra.address], runtime: world.peerRuntime(), ticket: ticket('alice', 1), relayOptions: { discoverFleet: false } }),
      new NetworkingMessages({ relays: [rb.address], runtime: world.peerRuntime(), ticket: ticket('bob', 2), relayOptions: { discoverFleet: false } }),
    ];
    const frames = peers.map((p) => ({ frame: () => p.runCallbacks() }));
    try {
      world.drive(frames, () => peers.every((p) => p.registered), 5000 * MS, 'directory registrations');
      assert.equal(ra.server.node.sessionCount, 1);
      assert.equal(rb.server.node.sessionCount, 1);

      store.publish('netlane:revoke', 'not json');
      assert.equal(ra.server.node.stats.fleetBadMessages, 1, 'garbage counted, nothing revoked');
      assert.equal(ra.server.node.sessionCount, 1);

      // Revoked through relay B's server; relay A holds the session.
      void rb.server.revokeFleetWide({ ticketId: toHex(new Uint8Array(16).fill(1)) });
      assert.equal(ra.server.node.sessionCount, 0, "alice's session on relay A closed at once");
      assert.equal(ra.server.node.stats.sessionsRevoked, 1);
      assert.equal(rb.server.node.sessionCount, 1, "bob's session stays");
      world.run(frames, 3000 * MS);
      assert.ok(ra.server.node.stats.ticketRefusedBy.revokedTicket >= 1, 'the revoked ticket is refused when alice asks again');
      assert.equal(ra.server.node.sessionCount, 0);

      store.publish('netlane:revoke', JSON.stringify({ keyId: keyId.toString(16).padStart(8, '0') })); // the hex form `netlane relay` prints
      assert.equal(rb.server.node.sessionCount, 0, "bob's session (a ticket of the revoked key) closed on relay B");
      world.run(frames, 3000 * MS);
      assert.ok(rb.server.node.stats.ticketRefusedBy.revokedKey >= 1, 'tickets of the revoked key are refused');
      assert.equal(ra.server.node.sessionCount + rb.server.node.sessionCount, 0);
    } finally {
      for (const p of peers) p.close();
      world.close();
    }
  });
});

test('fleet-wide drain over pub/sub: a drain order naming relay A drains A only (its clients move to B); "*" drains every relay', () => {
  withSeed(seedOr(1809), (seed) =>
    fleet(
      seed,
      ({ world, relays: [ra, rb], peers: [alice], frames }) => {
        assert.ok(ra && rb && alice);
        world.drive(frames, () => decodeRoute(alice.route as string).entries.length === 2, 5000 * MS, 'a route through both relays');
        void rb.server.drainFleet(ra.at, 10);
        assert.ok(ra.server.node.drainSeconds(world.sim.now) > 0, 'relay A drains');
        assert.equal(rb.server.node.drainSeconds(world.sim.now), 0, 'relay B does not');
        world.drive(frames, () => ra.server.node.sessionCount === 0, 12_000 * MS, 'relay A empty');
        const first = decodeRoute(alice.route as string).entries[0];
        assert.equal(first && `${first.relay.address}:${first.relay.port}`, rb.at, "alice's primary is relay B");
        void ra.server.drainFleet('*', 10);
        assert.ok(rb.server.node.drainSeconds(world.sim.now) > 0, 'relay B drains too');
      },
      true,
    ),
  );
});

// ------------------------------------------------------------------ two-hop routes over trunks (docs/RELAY.md "Trunks")

/** Every (sender, destination) a relay's socket sent to, by relay `host:port`. */
function sendsOf(world: World): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  world.sim.onSend = (from, to) => {
    const k = `${from.address}:${from.port}`;
    let s = out.get(k);
    if (!s) out.set(k, (s = new Set()));
    s.add(to.address);
  };
  return out;
}

/** The sockets a simulated host opened (its IP), found by port. */
function socketsOn(world: World, ip: string): SimSocket[] {
  const out: SimSocket[] = [];
  for (let port = 1; port < 65536; port++) {
    const s = world.sim.socketAt({ address: ip, port });
    if (s) out.push(s);
  }
  return out;
}

/** Relay `host:port` of every open session of a relay client (the relays it holds a session with). */
function sessionRelays(p: { relay: NetworkingMessages['relay'] }): string[] {
  return (p.relay?.relayPings() ?? []).filter((x) => x.session).map((x) => `${x.relay.address}:${x.relay.port}`);
}

test('two-hop route (NetworkingMessages): X on relay A reaches Y on relay B through A, a trunk and B; reliable and unreliable messages both ways; A never sends to Y, B never to X; each peer holds a session with its own relay only', () => {
  withSeed(seedOr(1810), (seed) => {
    const world = new World(seed, LINK);
    const sends = sendsOf(world);
    const store = new MemoryFleetStore(() => world.sim.now);
    const [ra, rb] = [world.relay({ open: true, fleet: { store, region: 'eu' } }), world.relay({ open: true, fleet: { store, region: 'us' } })] as const;
    const x = new NetworkingMessages({ relays: [ra.address], runtime: world.peerRuntime() });
    const y = new NetworkingMessages({ relays: [rb.address], runtime: world.peerRuntime() });
    const frames = [x, y].map((p) => ({ frame: () => p.runCallbacks() }));
    try {
      world.drive(frames, () => x.registered && y.registered, 5000 * MS, 'directory registrations');
      y.on('sessionRequest', (id) => assert.equal(y.acceptSessionWithUser(id), true));
      const atY: string[] = [];
      const atX: string[] = [];
      let unreliableAtY = 0;
      const read = (): void => {
        for (const m of y.receiveMessagesOnChannel(0, 100)) atY.push(Buffer.from(m.payload).toString());
        unreliableAtY += y.receiveMessagesOnChannel(1, 100).length;
        for (const m of x.receiveMessagesOnChannel(0, 100)) atX.push(Buffer.from(m.payload).toString());
      };
      for (let i = 0; i < 20; i++) {
        assert.equal(x.sendMessageToUser(y.getIdentity(), Buffer.from(`x${i}`), SendFlags.Reliable, 0), Result.OK);
        assert.equal(x.sendMessageToUser(y.getIdentity(), Buffer.from('u'), SendFlags.Unreliable, 1), Result.OK);
        world.run(frames, 50 * MS, read);
      }
      world.drive(frames, () => atY.length === 20, 10_000 * MS, 'every reliable message at Y', read);
      assert.deepEqual(atY, Array.from({ length: 20 }, (_, i) => `x${i}`));
      assert.ok(unreliableAtY >= 15, `unreliable messages arrive (${unreliableAtY} of 20)`);
      assert.equal(y.sendMessageToUser(x.getIdentity(), Buffer.from('back'), SendFlags.Reliable, 0), Result.OK);
      world.drive(frames, () => atX.length > 0, 5000 * MS, "Y's answer at X", read);
      assert.deepEqual(atX, ['back']);

      const [ipX, ipY] = [socketsOn(world, '10.0.1.1'), socketsOn(world, '10.0.1.2')].map((s) => s[0]?.local.address);
      assert.ok(ipX && ipY);
      assert.deepEqual(sessionRelays(x), [ra.at], 'X holds a session with relay A only');
      assert.deepEqual(sessionRelays(y), [rb.at], 'Y holds a session with relay B only');
      assert.ok(!rb.server.node.sessions().some((s) => s.address === ipX), "relay B holds no session from X's address");
      assert.ok(!ra.server.node.sessions().some((s) => s.address === ipY), "relay A holds no session from Y's address");
      assert.ok(!(sends.get(rb.at)?.has(ipX) ?? false), 'relay B never sent a datagram to X');
      assert.ok(!(sends.get(ra.at)?.has(ipY) ?? false), 'relay A never sent a datagram to Y');
      assert.ok(sends.get(ra.at)?.has('10.0.0.2') && sends.get(rb.at)?.has('10.0.0.1'), 'the relays talk to each other');
      const [sa, sb] = [ra.server.node.stats, rb.server.node.stats];
      assert.equal(sa.trunksOpened + sb.trunksOpened, 1, 'one trunk between the two relays');
      assert.equal(sa.trunksAccepted + sb.trunksAccepted, 1);
      assert.equal(sa.trunks, 1);
      assert.equal(sb.trunks, 1);
      assert.ok(sa.trunkPacketsOut > 0 && sb.trunkPacketsIn > 0 && sb.trunkPacketsOut > 0 && sa.trunkPacketsIn > 0, 'datagrams crossed the trunk both ways');
      assert.equal(sa.forwardedPackets, sa.trunkPacketsIn + sa.trunkPacketsOut, 'every datagram relay A forwarded crossed the trunk');
      assert.equal(sb.forwardedPackets, sb.trunkPacketsIn + sb.trunkPacketsOut, 'every datagram relay B forwarded crossed the trunk');
      assert.equal(sa.trunkUnauthenticated + sb.trunkUnauthenticated + sa.trunksRefused + sb.trunksRefused, 0);
      assert.equal(sb.offers, 1, "Y was asked (an offer naming X's proven peer id), and accepted");
      console.log(`# seed ${seed}: trunk packets A->B ${sa.trunkPacketsOut}, B->A ${sb.trunkPacketsOut}`);
    } finally {
      x.close();
      y.close();
      world.close();
    }
  });
});

test('two-hop route (NetworkManager): managers on different relays open each other and exchange reliable and unreliable channel messages over the trunk', () => {
  withSeed(seedOr(1811), (seed) => {
    const world = new World(seed, LINK);
    const store = new MemoryFleetStore(() => world.sim.now);
    const [ra, rb] = [world.relay({ open: true, fleet: { store } }), world.relay({ open: true, fleet: { store } })] as const;
    const a = new NetworkManager({ relays: [ra.address], runtime: world.peerRuntime() });
    const b = new NetworkManager({ relays: [rb.address], runtime: world.peerRuntime() });
    const frames = [a, b].map((m) => ({ frame: () => (m.runCallbacks(), m.flush()) }));
    try {
      world.drive(frames, () => a.route !== null && b.route !== null, 5000 * MS, 'routes');
      world.run(frames, 200 * MS); // the relays read each other from the registry
      assert.equal(a.openPeer(b.getPeerId(), b.route as string), DiscordResult.Ok);
      assert.equal(b.openPeer(a.getPeerId(), a.route as string), DiscordResult.Ok);
      world.drive(frames, () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5000 * MS, 'connected');
      for (const [m, other] of [[a, b], [b, a]] as const) {
        assert.equal(m.openChannel(other.getPeerId(), 0, true), DiscordResult.Ok);
        assert.equal(m.openChannel(other.getPeerId(), 1, false), DiscordResult.Ok);
      }
      const got: { from: bigint; ch: number; s: string }[] = [];
      for (const m of [a, b]) m.on('message', (from, ch, d) => got.push({ from, ch, s: Buffer.from(d).toString() }));
      for (let i = 0; i < 10; i++) {
        assert.equal(a.sendMessage(b.getPeerId(), 0, Buffer.from(`a${i}`)), DiscordResult.Ok);
        assert.equal(b.sendMessage(a.getPeerId(), 0, Buffer.from(`b${i}`)), DiscordResult.Ok);
        assert.equal(a.sendMessage(b.getPeerId(), 1, Buffer.from('pos')), DiscordResult.Ok);
        world.run(frames, 30 * MS);
      }
      const reliable = (from: bigint): string[] => got.filter((g) => g.from === from && g.ch === 0).map((g) => g.s);
      world.drive(frames, () => reliable(a.getPeerId()).length === 10 && reliable(b.getPeerId()).length === 10, 5000 * MS, 'every reliable message');
      assert.deepEqual(reliable(a.getPeerId()), Array.from({ length: 10 }, (_, i) => `a${i}`));
      assert.deepEqual(reliable(b.getPeerId()), Array.from({ length: 10 }, (_, i) => `b${i}`));
      assert.ok(got.filter((g) => g.ch === 1).length >= 8, 'unreliable messages arrive');
      const [sa, sb] = [ra.server.node.stats, rb.server.node.stats];
      assert.equal(sa.trunks + sb.trunks, 2, 'one trunk, seen from both ends');
      assert.ok(sa.trunkPacketsOut > 0 && sb.trunkPacketsOut > 0);
      assert.equal(sa.sessionsOpened, 1, 'relay A: only its own peer');
      assert.equal(sb.sessionsOpened, 1, 'relay B: only its own peer');
      assert.equal(sa.offers + sb.offers, 0, 'each manager permitted the other: no offers');
    } finally {
      a.close();
      b.close();
      world.close();
    }
  });
});

interface TrunkPair {
  readonly world: World;
  readonly store: MemoryFleetStore;
  readonly relays: ReturnType<World['relay']>[];
  readonly x: NetworkingMessages;
  readonly y: NetworkingMessages;
  readonly frames: Framed[];
  /** Reliable messages Y received on channel 0, in order (read by {@link TrunkPair.read}). */
  readonly atY: string[];
  readonly read: () => void;
}

/**
 * Relays in one fleet (A, B, then the rest); X uses `xRelays` (indexes), Y `yRelays`, none discovering the fleet; relay
 * links to peers are 5 ms, except those to the relays in `slow` (25 ms), so that a peer's first relay is its primary.
 * X sends Y a first reliable message, which links them.
 */
function trunkPair(seed: number, count: number, xRelays: number[], yRelays: number[], slow: number[], body: (p: TrunkPair) => void): void {
  const world = new World(seed, LINK);
  const store = new MemoryFleetStore(() => world.sim.now);
  const relays = Array.from({ length: count }, () => world.relay({ open: true, fleet: { store } }));
  const pick = (ix: number[]): string[] => ix.map((i) => (relays[i] as { address: string }).address);
  const x = new NetworkingMessages({ relays: pick(xRelays), runtime: world.peerRuntime() });
  const y = new NetworkingMessages({ relays: pick(yRelays), runtime: world.peerRuntime() });
  for (const ip of ['10.0.1.1', '10.0.1.2']) {
    for (const sock of socketsOn(world, ip)) {
      for (const i of slow) {
        const r = world.sim.socketAt((relays[i] as { server: { local: { address: string; port: number } } }).server.local);
        if (r) world.sim.setLinks(sock, r, { latencyUs: 25_000, jitterUs: 1_000 });
      }
    }
  }
  const frames = [x, y].map((p) => ({ frame: () => p.runCallbacks() }));
  const atY: string[] = [];
  const read = (): void => {
    for (const m of y.receiveMessagesOnChannel(0, 100)) atY.push(Buffer.from(m.payload).toString());
  };
  try {
    world.drive(frames, () => x.registered && y.registered, 5000 * MS, 'directory registrations');
    world.run(frames, 300 * MS); // pings settle: the fast relays are the primaries
    y.on('sessionRequest', (id) => assert.equal(y.acceptSessionWithUser(id), true));
    assert.equal(x.sendMessageToUser(y.getIdentity(), Buffer.from('first'), SendFlags.Reliable, 0), Result.OK);
    world.drive(frames, () => atY.length > 0, 10_000 * MS, 'the first message at Y', read);
    body({ world, store, relays, x, y, frames, atY, read });
  } finally {
    x.close();
    y.close();
    world.close();
  }
}

test('a forged trunk is refused and counted: a hello under a key that is no fleet member, a member key without its secret; frames injected into a trunk (replayed, retagged, from elsewhere) are dropped and counted, and Y gets each message once', () => {
  withSeed(seedOr(1812), (seed) =>
    trunkPair(seed, 2, [0], [1], [], ({ world, store, relays: [ra, rb], x, y, frames, atY, read }) => {
      assert.ok(ra && rb);
      const sb = rb.server.node.stats;
      assert.equal(sb.trunks, 1);
      const provider = seededCryptoProvider(seed + 1);
      const forger = world.sim.openSocket({ address: '10.0.9.9', port: 27100 });
      let answers = 0;
      forger.onMessage = () => answers++;
      const bAt = rb.server.local;
      const hello = (secret: Uint8Array, opener: Uint8Array): Uint8Array => {
        const id = new Uint8Array(8);
        const nonce = new Uint8Array(16);
        provider.fillRandom(id);
        provider.fillRandom(nonce);
        return encodeTrunkHello(provider, secret, opener, rb.server.publicKey, id, nonce);
      };
      // 1. A relay of its own, not in the registry: a valid MAC under a key B does not know as a member's.
      const stranger = provider.generateKeyExchange();
      forger.send(hello(provider.deriveSharedSecret(stranger, rb.server.publicKey) as Uint8Array, stranger.publicKey), bAt);
      // 2. Relay A's public key, without A's secret.
      const guess = new Uint8Array(32);
      provider.fillRandom(guess);
      forger.send(hello(guess, ra.server.publicKey), bAt);
      world.run(frames, 200 * MS, read);
      assert.equal(sb.trunksRefused, 2, 'both hellos refused');
      assert.equal(answers, 0, 'the forger got no answer');
      assert.equal(sb.trunks, 1, 'no trunk made');
      assert.deepEqual(rb.server.node.trunkPeers(), [ra.at]);
      // 1,000 hellos under new keys from spoofed addresses within 100 ms: each refused for one set lookup; the
      // registry is read again for them at most every 250 ms.
      let reads = 0;
      const members = store.members.bind(store);
      store.members = (set: string) => (reads++, members(set));
      const bSock = world.sim.socketAt(bAt);
      assert.ok(bSock);
      for (let i = 0; i < 1000; i++) {
        const k = provider.generateKeyExchange();
        world.sim.inject({ address: `10.9.${i >> 8}.${i & 0xff}`, port: 40000 }, bSock, hello(provider.deriveSharedSecret(k, rb.server.publicKey) as Uint8Array, k.publicKey), world.sim.now + i * 100);
      }
      world.run(frames, 150 * MS, read);
      assert.equal(sb.trunksRefused, 1002, 'every forged hello refused');
      assert.ok(reads <= 2, `registry reads for them: ${reads}`);
      assert.equal(sb.trunks, 1);

      // Frames on the real trunk, captured on the way from A to B.
      const captured: Uint8Array[] = [];
      world.sim.onSend = (from, to, data) => {
        if (`${from.address}:${from.port}` === ra.at && `${to.address}:${to.port}` === rb.at && data[0] === RelayMsg.TrunkData) captured.push(data.slice());
      };
      for (let i = 0; i < 5; i++) {
        assert.equal(x.sendMessageToUser(y.getIdentity(), Buffer.from(`m${i}`), SendFlags.Reliable, 0), Result.OK);
        world.run(frames, 40 * MS, read);
      }
      world.drive(frames, () => atY.length === 6, 5000 * MS, 'the five messages at Y', read);
      world.sim.onSend = null;
      const frame = captured[captured.length - 1];
      assert.ok(frame, 'a TRUNK_DATA frame was captured');
      const aAddr = ra.server.local;
      const before = { replayed: sb.trunkReplayed, unauth: sb.trunkUnauthenticated, in: sb.trunkPacketsIn };
      world.sim.inject(aAddr, bSock, frame); // a replay, from A's address
      const retagged = frame.slice();
      retagged[20] = (retagged[20] as number) ^ 1; // the sequence tag
      world.sim.inject(aAddr, bSock, retagged);
      world.sim.inject({ address: '10.0.9.9', port: 27100 }, bSock, frame); // from elsewhere
      world.run(frames, 200 * MS, read);
      assert.equal(sb.trunkReplayed - before.replayed, 1, 'the replay dropped');
      assert.equal(sb.trunkUnauthenticated - before.unauth, 2, 'the retagged frame and the one from elsewhere dropped');
      assert.deepEqual(atY, ['first', 'm0', 'm1', 'm2', 'm3', 'm4'], 'each message once, in order');
      assert.equal(answers, 0);
    }),
  );
});

for (const [killed, seed] of [
  ['A', 1813],
  ['B', 1814],
] as const) {
  test(`a relay of the trunk dies (relay ${killed}, ${killed === 'A' ? "X's" : "Y's"} primary): the peers move to their backups, and every reliable message sent meanwhile arrives once, in order`, () => {
    withSeed(seedOr(seed), (s) =>
      // X on A (backup C), Y on B (backup C): C is 25 ms away from both, so A and B are the primaries.
      trunkPair(s, 3, [0, 2], [1, 2], [2], ({ world, relays: [ra, rb, rc], x, y, frames, atY, read }) => {
        assert.ok(ra && rb && rc);
        assert.equal(ra.server.node.stats.trunks, 1, 'X and Y are linked over the trunk A-B');
        assert.equal(x.relay?.primary?.address, ra.server.local.address);
        assert.equal(y.relay?.primary?.address, rb.server.local.address);
        let sent = 1;
        const send = (): void => {
          assert.equal(x.sendMessageToUser(y.getIdentity(), Buffer.from(`m${sent++}`), SendFlags.Reliable, 0), Result.OK);
        };
        for (let i = 0; i < 10; i++) {
          send();
          world.run(frames, 50 * MS, read);
        }
        const dead = killed === 'A' ? ra : rb;
        world.kill(dead.at);
        const killedAt = world.sim.now;
        const n = atY.length;
        let movedAt = -1;
        while (world.sim.now - killedAt < 8000 * MS) {
          send();
          world.run(frames, 50 * MS, read);
          if (movedAt < 0 && atY.length > n + 2) movedAt = world.sim.now;
        }
        world.drive(frames, () => atY.length === sent, 10_000 * MS, 'every reliable message at Y', read);
        assert.deepEqual(atY, ['first', ...Array.from({ length: sent - 1 }, (_, i) => `m${i + 1}`)], 'every message once, in order');
        console.log(`# seed ${s}: relay ${killed} killed; messages flowed again ${(movedAt - killedAt) / MS} ms later`);
        const moved = killed === 'A' ? x : y;
        assert.equal(moved.relay?.primary?.address, rc.server.local.address, 'the peer of the dead relay moved to its backup');
        assert.ok(sessionRelays(x).every((r) => r !== rb.at) && sessionRelays(y).every((r) => r !== ra.at), "neither peer opened a session on the other's relay");
      }),
    );
  });
}
