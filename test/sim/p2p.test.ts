// Direct peer-to-peer paths (docs/P2P.md) in virtual time: two NetworkingMessages peers connected through a
// relay move to a direct path when both allow it (P2P_Transport_ICE_Enable), keep their keys, lanes and
// message numbers, fall back to the relay when the direct path dies, and never send each other a datagram
// when either side does not allow it. NetworkManager never goes direct. Every test names its seed when it
// fails (replay: NETLANE_SEED=N).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkingMessages, type NetworkingMessagesOptions } from '../../src/api/networking-messages.js';
import { NetworkManager } from '../../src/api/network-manager.js';
import { SendFlags, type SocketAddress } from '../../src/core/types.js';
import { isRelayPath } from '../../src/relay/client/index.js';
import { DOWN_HEADER_BYTES, RelayMsg } from '../../src/relay/protocol.js';
import type { RelayServer } from '../../src/io/relay-server.js';
import type { NatMapping, SimNat, SimSocket, WireStats } from '../../src/testing/index.js';
import { seedOr, withSeed } from '../support/sim.js';
import { World, type Framed } from '../support/world.js';

const LINK = { latencyUs: 5_000, jitterUs: 1_000 };
const MS = 1000;
const ALL = 0x7fffffff;
const RELAY_DATA_DOWN = RelayMsg.DataDown;
const text = (d: Uint8Array): string => Buffer.from(d).toString();

/** Two NetworkingMessages peers and one relay; `a` sends numbered reliable messages to `b` on channel 1. */
class Pair {
  readonly world: World;
  readonly relay: RelayServer;
  readonly a: NetworkingMessages;
  readonly b: NetworkingMessages;
  /** The peers' socket addresses, as the sim saw them send (filled by the tap). */
  readonly addrs = new Map<NetworkingMessages, SocketAddress>();
  /** Datagrams that went from one peer's address straight to the other's. */
  directDatagrams = 0;
  readonly got: string[] = [];
  sent = 0;
  /** The NATs in front of a and b, when the pair was made behind NATs. */
  readonly nats: SimNat[] = [];
  readonly #frames: Framed[];

  constructor(seed: number, a: Partial<NetworkingMessagesOptions>, b: Partial<NetworkingMessagesOptions>, nats?: [NatMapping, NatMapping]) {
    this.world = new World(seed, LINK);
    // world.peerRuntime() hands out 10.0.1.1 and 10.0.1.2: one behind each NAT, which filters inbound
    // datagrams by address and port (port-restricted cone, or symmetric with an endpoint-dependent mapping).
    if (nats) {
      nats.forEach((mapping, i) =>
        this.nats.push(this.world.sim.addNat({ publicAddress: PUBLIC[i] as string, inside: [`10.0.1.${i + 1}`], mapping, filtering: 'addressAndPortDependent' })),
      );
    }
    const r = this.world.relay();
    this.relay = r.server;
    const relays = [r.address];
    const runtimeA = this.world.peerRuntime();
    const runtimeB = this.world.peerRuntime();
    this.a = new NetworkingMessages({ relays, runtime: runtimeA, ...a });
    this.b = new NetworkingMessages({ relays, runtime: runtimeB, ...b });
    for (const p of [this.a, this.b]) p.on('sessionRequest', (id) => assert.equal(p.acceptSessionWithUser(id), true));
    const ips = ['10.0.1.1', '10.0.1.2'];
    this.world.sim.onSend = (from, to) => {
      if (ips.includes(from.address) && ips.includes(to.address)) this.directDatagrams++;
    };
    this.#frames = [{ frame: () => this.a.runCallbacks() }, { frame: () => this.b.runCallbacks() }, { frame: () => this.#read() }];
    this.until(() => this.a.registered && this.b.registered, 5000, 'directory registrations');
  }

  #read(): void {
    for (const m of this.b.receiveMessagesOnChannel(1, 100)) this.got.push(text(m.payload));
    this.a.receiveMessagesOnChannel(1, 100);
  }

  /** Sends the next numbered reliable message from a to b. */
  send(): void {
    assert.equal(this.a.sendMessageToUser(this.b.getIdentity(), Buffer.from(`m${this.sent}`), SendFlags.Reliable, 1), 1);
    this.sent++;
  }

  until(done: () => boolean, ms: number, what: string, each?: () => void): void {
    this.world.drive(this.#frames, done, ms * MS, what, each);
  }

  run(ms: number, each?: () => void): void {
    this.world.run(this.#frames, ms * MS, each);
  }

  /** What went straight from NAT A to NAT B and back (live counters), when the pair is behind NATs. */
  betweenNats(): [WireStats, WireStats] {
    const [a, b] = this.nats as [SimNat, SimNat];
    return [this.world.sim.wireStats(a.publicAddress, b.publicAddress), this.world.sim.wireStats(b.publicAddress, a.publicAddress)];
  }

  pathOf(p: NetworkingMessages, other: NetworkingMessages): string | undefined {
    return p.getSessionConnectionInfo(other.getIdentity(), true).path;
  }

  /** Every message a sent arrived once, in order. */
  checkDelivery(): void {
    assert.deepEqual(this.got, Array.from({ length: this.sent }, (_, i) => `m${i}`));
  }

  close(): void {
    this.a.close();
    this.b.close();
    this.world.close();
  }
}

function inPair(seed: number, a: Partial<NetworkingMessagesOptions>, b: Partial<NetworkingMessagesOptions>, fn: (p: Pair) => void, nats?: [NatMapping, NatMapping]): void {
  withSeed(seed, () => {
    const p = new Pair(seed, a, b, nats);
    try {
      fn(p);
      console.log(`# virtual ${p.world.sim.now / 1e6} s`);
    } finally {
      p.close();
    }
  });
}

const ON = { connectionConfig: { P2P_Transport_ICE_Enable: ALL } };
/** The NATs' public addresses (documentation ranges, RFC 5737). */
const PUBLIC = ['203.0.113.1', '198.51.100.1'] as const;

test('both sides allow direct paths: the session moves off the relay, and every message arrives once, in order', () => {
  inPair(seedOr(2171), ON, ON, (p) => {
    p.until(() => p.pathOf(p.a, p.b) === 'direct' && p.pathOf(p.b, p.a) === 'direct', 5000, 'a direct path', () => p.send());
    const forwardedAtMove = p.relay.node.stats.forwardedPackets;
    const directAtMove = p.directDatagrams;
    const sentAtMove = p.sent;
    p.run(3000, () => p.send()); // 3 s more: ~300 messages, every one on the direct path
    p.until(() => p.got.length === p.sent, 2000, 'every message');
    p.checkDelivery();
    const forwardedAfter = p.relay.node.stats.forwardedPackets - forwardedAtMove;
    console.log(`# ${sentAtMove} messages before the move; after it ${p.sent - sentAtMove} messages, ${p.directDatagrams - directAtMove} direct datagrams, ${forwardedAfter} forwarded by the relay`);
    // After the move the relay forwards only the relayed path's challenges and answers (one each way every
    // 2 s, docs/P2P.md), never the messages.
    assert.ok(forwardedAfter <= 8, `the relay forwarded ${forwardedAfter} datagrams after the move`);
    assert.ok(p.directDatagrams - directAtMove >= p.sent - sentAtMove, 'the messages went direct');
    // Status: the path and both round trips (the direct one shorter: one hop of 5 ms each way, against two).
    const st = p.a.getSessionConnectionInfo(p.b.getIdentity(), true, true);
    assert.equal(st.path, 'direct');
    assert.ok((st.pingDirect ?? -1) >= 0 && (st.pingRelayed ?? -1) >= 0, `pings ${st.pingDirect} / ${st.pingRelayed}`);
    assert.ok((st.pingDirect as number) < (st.pingRelayed as number), `direct ${st.pingDirect} ms, relayed ${st.pingRelayed} ms`);
    assert.match(st.remoteAddress ?? '', /^10\.0\.1\.2:/, 'on a direct path the remote address is the peer');
  });
});

test('the direct path dies: back on the relay within a second, with no reliable message lost', () => {
  inPair(seedOr(2172), ON, ON, (p) => {
    p.until(() => p.pathOf(p.a, p.b) === 'direct' && p.pathOf(p.b, p.a) === 'direct', 5000, 'a direct path', () => p.send());
    p.run(500, () => p.send());
    const aAddr = p.a.getSessionConnectionInfo(p.b.getIdentity(), true).remoteAddress as string;
    const [host, port] = aAddr.split(':') as [string, string];
    // Cut the direct path both ways: a's socket to b's and back (the relay path stays).
    const aSock = firstSocketOf(p, '10.0.1.1');
    p.world.sim.partitionAddresses(aSock, { address: host, port: Number(port) });
    const cutAt = p.world.sim.now;
    p.until(() => p.pathOf(p.a, p.b) === 'relayed' && p.pathOf(p.b, p.a) === 'relayed', 2000, 'the fallback', () => p.send());
    const tookMs = (p.world.sim.now - cutAt) / MS;
    console.log(`# back on the relay ${tookMs} ms after the cut`);
    assert.ok(tookMs <= 1000, `the fallback took ${tookMs} ms`);
    p.run(1000, () => p.send());
    p.until(() => p.got.length === p.sent, 3000, 'every message');
    p.checkDelivery();
    assert.equal(p.a.getSessionConnectionInfo(p.b.getIdentity(), true, true).connectionState, 3, 'still the same connection, connected');
  });
});

test('one side does not allow direct paths: no datagram between the peers, and no address is offered', () => {
  inPair(seedOr(2173), ON, {}, (p) => {
    p.until(() => p.got.length >= 50, 5000, 'messages', () => p.send());
    p.run(3000, () => p.send());
    assert.equal(p.directDatagrams, 0, 'datagrams between the peers');
    assert.equal(p.pathOf(p.a, p.b), 'relayed');
    const sa = p.a.getStats();
    const sb = p.b.getStats();
    assert.equal(sa.directOffersSent, 1, 'a said it allows direct paths (no address)');
    assert.equal(sb.directOffersIgnored, 1, 'b ignored it');
    assert.equal(sb.directOffersSent, 0);
    assert.equal(sa.directOffersReceived, 0, 'b offered no candidates');
  });
});

test("a session whose direct paths are off stays off even when the facade allows them for another user: the peer's packet from its own address is dropped, never challenged", () => {
  inPair(seedOr(2178), {}, ON, (p) => {
    // a allows direct paths with somebody else only: the widest setting of a's facade is on.
    assert.equal(p.a.setUserDirectPaths(12345n, ALL), true);
    p.until(() => p.got.length >= 20, 5000, 'messages', () => p.send());
    const aSock = firstSocketOf(p, '10.0.1.1');
    const bSide: SocketAddress = { address: '10.0.1.2', port: 40000 };
    let replayed = 0;
    // The next end-to-end packets b sends through the relay arrive instead from b's own address, as if b
    // (who holds the keys) sent them there: the newest packets a gets, authenticated, from a non-relay.
    p.world.sim.intercept = (from, to, data) => {
      if (to.address !== '10.0.1.1' || !from.address.startsWith('10.0.0.') || data[0] !== RELAY_DATA_DOWN || replayed >= 5) return data;
      replayed++;
      p.world.sim.inject(bSide, p.world.sim.socketAt(aSock) as SimSocket, data.slice(DOWN_HEADER_BYTES));
      return null;
    };
    const directBefore = p.directDatagrams;
    p.run(2000, () => p.send());
    p.world.sim.intercept = null;
    p.until(() => p.got.length === p.sent, 3000, 'every message');
    p.checkDelivery();
    console.log(`# ${replayed} packets of b's arrived from b's own address; a sent ${p.directDatagrams - directBefore} datagrams to it`);
    assert.equal(replayed, 5);
    assert.equal(p.directDatagrams - directBefore, 0, "a sent nothing to b's address (no challenge, no data)");
    assert.equal(p.pathOf(p.a, p.b), 'relayed');
  });
});

test('neither side allows direct paths (the default): nothing is offered, nothing goes direct', () => {
  inPair(seedOr(2174), {}, {}, (p) => {
    p.until(() => p.got.length >= 50, 5000, 'messages', () => p.send());
    p.run(2000, () => p.send());
    assert.equal(p.directDatagrams, 0);
    assert.equal(p.a.getStats().directOffersSent + p.b.getStats().directOffersSent, 0);
  });
});

test('NetworkManager never goes direct, and its peers never send each other a datagram', () => {
  withSeed(seedOr(2175), (seed) => {
    const world = new World(seed, LINK);
    const relays = [world.relay().address];
    const a = new NetworkManager({ relays, runtime: world.peerRuntime() });
    const b = new NetworkManager({ relays, runtime: world.peerRuntime() });
    let direct = 0;
    world.sim.onSend = (from, to) => {
      if (from.address.startsWith('10.0.1.') && to.address.startsWith('10.0.1.')) direct++;
    };
    try {
      world.drive([], () => a.route !== null && b.route !== null, 5_000_000, 'routes');
      assert.equal(a.openPeer(b.getPeerId(), b.route as string), 0);
      assert.equal(b.openPeer(a.getPeerId(), a.route as string), 0);
      const flush: Framed = { frame: () => (a.flush(), b.flush()) };
      world.drive([flush], () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5_000_000, 'connected');
      assert.equal(a.openChannel(b.getPeerId(), 0, true), 0);
      assert.equal(b.openChannel(a.getPeerId(), 0, true), 0);
      world.run([flush], 3_000_000, () => a.sendMessage(b.getPeerId(), 0, Buffer.from('x')));
      assert.equal(direct, 0, 'datagrams between the peers');
      assert.equal(a.peerStatus(b.getPeerId())?.connected, true);
    } finally {
      a.close();
      b.close();
      world.close();
    }
  });
});

test('behind two endpoint-independent NATs: the peers learn their public addresses from the relay, punch through both, and go direct', () => {
  inPair(
    seedOr(2176),
    ON,
    ON,
    (p) => {
      const [natA, natB] = p.nats as [SimNat, SimNat];
      const [aToB, bToA] = p.betweenNats();
      p.until(() => p.pathOf(p.a, p.b) === 'direct' && p.pathOf(p.b, p.a) === 'direct', 5000, 'a direct path', () => p.send());
      const movedAt = p.world.sim.now;
      const forwardedAtMove = p.relay.node.stats.forwardedPackets;
      const deliveredAtMove = aToB.delivered;
      const sentAtMove = p.sent;
      p.run(3000, () => p.send());
      p.until(() => p.got.length === p.sent, 2000, 'every message');
      p.checkDelivery();
      const forwardedAfter = p.relay.node.stats.forwardedPackets - forwardedAtMove;
      console.log(
        `# direct ${movedAt / 1e6} s after the start; after the move ${p.sent - sentAtMove} messages, ${aToB.delivered - deliveredAtMove} datagrams NAT A -> NAT B, ` +
          `${forwardedAfter} forwarded by the relay; NAT drops ${natA.stats.inboundDropped}/${natB.stats.inboundDropped} (probes before the holes opened)`,
      );
      assert.ok(aToB.delivered - deliveredAtMove >= p.sent - sentAtMove, 'the messages crossed both NATs straight');
      assert.ok(bToA.delivered > 0, 'and the acknowledgements came back the same way');
      assert.ok(forwardedAfter <= 8, `the relay forwarded ${forwardedAfter} datagrams after the move`);
      // The peer's address on the direct path is its NAT's public one, learned from the relay.
      assert.match(p.a.getSessionConnectionInfo(p.b.getIdentity(), true).remoteAddress ?? '', /^198\.51\.100\.1:/);
      assert.match(p.b.getSessionConnectionInfo(p.a.getIdentity(), true).remoteAddress ?? '', /^203\.0\.113\.1:/);
    },
    ['endpointIndependent', 'endpointIndependent'],
  );
});

test('behind a symmetric NAT (endpoint-dependent mapping): no hole opens, the session stays on the relay and loses nothing', () => {
  inPair(
    seedOr(2177),
    ON,
    ON,
    (p) => {
      const [aToB, bToA] = p.betweenNats();
      p.until(() => p.got.length >= 50, 5000, 'messages', () => p.send());
      // Past the 10 s in which the peers probe each other's candidates.
      p.run(12_000, () => p.send());
      p.until(() => p.got.length === p.sent, 2000, 'every message');
      p.checkDelivery();
      const da = p.a.getStats();
      console.log(
        `# probes NAT A -> NAT B ${aToB.sent} (delivered ${aToB.delivered}), NAT B -> NAT A ${bToA.sent} (delivered ${bToA.delivered}); ` +
          `offers sent ${da.directOffersSent}, received ${da.directOffersReceived}`,
      );
      assert.ok(da.directOffersReceived >= 1 && p.b.getStats().directOffersReceived >= 1, 'candidates were exchanged');
      assert.ok(aToB.sent > 0 && bToA.sent > 0, 'both sides probed');
      assert.equal(aToB.delivered + bToA.delivered, 0, 'no probe got through: each NAT filters the other');
      assert.equal(p.pathOf(p.a, p.b), 'relayed');
      assert.equal(p.pathOf(p.b, p.a), 'relayed');
    },
    ['endpointIndependent', 'endpointDependent'],
  );
});

/** The socket of the peer at `ip` (its address as the sim knows it). */
function firstSocketOf(p: Pair, ip: string): SocketAddress {
  for (let port = 1; port < 65536; port++) {
    const s = p.world.sim.socketAt({ address: ip, port });
    if (s && !isRelayPath(s.local)) return s.local;
  }
  throw new Error(`no socket at ${ip}`);
}
