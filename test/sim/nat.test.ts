// NAT boxes in SimNetwork (sim.addNat), with raw sockets: outbound source rewriting, inbound translation
// per filtering variant, endpoint-dependent ("symmetric") mapping, expiry and reboot, link conditions
// through a NAT, hole punching between two NATs, and a real Endpoint handshake from behind a NAT. Every
// test reports its seed; a failure names it (replay: NETLANE_SEED=<seed>).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState } from '../../src/core/types.js';
import type { SocketAddress } from '../../src/core/types.js';
import { SimNetwork, type SimSocket, type NatFiltering, type NatMapping, type SimNat, type TraceEntry } from '../../src/testing/index.js';
import { seededHandshake } from '../../src/testing/crypto.js';
import { SeededRng } from '../../src/util/rng.js';
import { mesh, pump } from '../support/relayed.js';
import { seedOr, withSeed } from '../support/sim.js';
import { World } from '../support/world.js';

const MS = 1000;
const S = 1_000_000;
const PUB_A = '203.0.113.1';
const PUB_B = '198.18.0.1';
const SERVER: SocketAddress = { address: '198.51.100.1', port: 3478 };
const SERVER_ALT_PORT: SocketAddress = { address: '198.51.100.1', port: 3479 };
const OTHER: SocketAddress = { address: '198.51.100.2', port: 3478 };

interface Got {
  from: SocketAddress;
  text: string;
  atUs: number;
}

/** A socket opened the way a facade opens one (sim.runtime(ip).openUdp), recording what it receives. */
function open(sim: SimNetwork, ip: string, port: number): { sock: SimSocket; got: Got[] } {
  const sock = sim.runtime(ip).openUdp({ address: '0.0.0.0', port }) as SimSocket;
  const got: Got[] = [];
  sock.onMessage = (data, from) => void got.push({ from: { ...from }, text: new TextDecoder().decode(data), atUs: sim.now });
  return { sock, got };
}

function send(s: SimSocket, to: SocketAddress, text: string): void {
  s.send(new TextEncoder().encode(text), to);
}

/** A client at 10.0.1.2:5000 behind NAT A, and sockets at SERVER, SERVER_ALT_PORT and OTHER. */
function world(seed: number, mapping: NatMapping, filtering: NatFiltering, lifetimeUs?: number) {
  const sim = new SimNetwork(seed, { latencyUs: 5 * MS, jitterUs: 1 * MS });
  const nat = sim.addNat({ publicAddress: PUB_A, inside: ['10.0.1.2', '10.0.1.3'], mapping, filtering, portStart: 20000, ...(lifetimeUs === undefined ? {} : { mappingLifetimeUs: lifetimeUs }) });
  const client = open(sim, '10.0.1.2', 5000);
  const server = open(sim, SERVER.address, SERVER.port);
  const serverAlt = open(sim, SERVER_ALT_PORT.address, SERVER_ALT_PORT.port);
  const other = open(sim, OTHER.address, OTHER.port);
  return { sim, nat, client, server, serverAlt, other };
}

const FILTERINGS: readonly NatFiltering[] = ['endpointIndependent', 'addressDependent', 'addressAndPortDependent'];

describe('SimNat: outbound', () => {
  it('endpoint-independent mapping: one public port for every destination, the inside port kept', () =>
    withSeed(seedOr(2101), (seed) => {
      const w = world(seed, 'endpointIndependent', 'addressAndPortDependent');
      send(w.client.sock, SERVER, 'hello server');
      send(w.client.sock, OTHER, 'hello other');
      w.sim.runFor(50 * MS);
      assert.deepEqual(w.server.got.map((g) => [g.from, g.text]), [[{ address: PUB_A, port: 5000 }, 'hello server']]);
      assert.deepEqual(w.other.got.map((g) => [g.from, g.text]), [[{ address: PUB_A, port: 5000 }, 'hello other']]);
      // The server's answer to the public address reaches the client, from the server's address.
      send(w.server.sock, { address: PUB_A, port: 5000 }, 'welcome');
      w.sim.runFor(50 * MS);
      assert.deepEqual(w.client.got.map((g) => [g.from, g.text]), [[SERVER, 'welcome']]);
      assert.deepEqual(w.nat.externalAddress({ address: '10.0.1.2', port: 5000 }), { address: PUB_A, port: 5000 });
      const st = w.nat.stats;
      assert.equal(st.outboundTranslated, 2);
      assert.equal(st.inboundTranslated, 1);
      assert.equal(st.inboundDropped, 0);
      assert.equal(st.mappings, 1);
    }));

  it('endpoint-independent mapping: a second inside host on the same port gets the next port from portStart', () =>
    withSeed(seedOr(2102), (seed) => {
      const w = world(seed, 'endpointIndependent', 'endpointIndependent');
      const second = open(w.sim, '10.0.1.3', 5000);
      send(w.client.sock, SERVER, 'a');
      send(second.sock, SERVER, 'b');
      w.sim.runFor(50 * MS);
      const seen = new Map(w.server.got.map((g) => [g.text, g.from.port]));
      assert.equal(seen.get('a'), 5000);
      assert.equal(seen.get('b'), 20000);
      send(w.server.sock, { address: PUB_A, port: 20000 }, 'to b');
      send(w.server.sock, { address: PUB_A, port: 5000 }, 'to a');
      w.sim.runFor(50 * MS);
      assert.deepEqual(second.got.map((g) => g.text), ['to b']);
      assert.deepEqual(w.client.got.map((g) => g.text), ['to a']);
    }));

  it('endpoint-dependent mapping: a new public port per destination, sequential from portStart', () =>
    withSeed(seedOr(2103), (seed) => {
      const w = world(seed, 'endpointDependent', 'addressAndPortDependent');
      send(w.client.sock, SERVER, 'one');
      send(w.client.sock, SERVER_ALT_PORT, 'two');
      send(w.client.sock, OTHER, 'three');
      send(w.client.sock, SERVER, 'one again');
      w.sim.runFor(50 * MS);
      assert.deepEqual(w.server.got.map((g) => g.from), [{ address: PUB_A, port: 20000 }, { address: PUB_A, port: 20000 }]);
      assert.deepEqual(w.serverAlt.got.map((g) => g.from), [{ address: PUB_A, port: 20001 }]);
      assert.deepEqual(w.other.got.map((g) => g.from), [{ address: PUB_A, port: 20002 }]);
      assert.equal(w.nat.stats.mappings, 3);
      assert.deepEqual(w.nat.externalAddress({ address: '10.0.1.2', port: 5000 }, OTHER), { address: PUB_A, port: 20002 });
      // OTHER answering on the port SERVER saw is refused: that mapping never sent to OTHER.
      send(w.other.sock, { address: PUB_A, port: 20000 }, 'wrong port');
      send(w.other.sock, { address: PUB_A, port: 20002 }, 'right port');
      w.sim.runFor(50 * MS);
      assert.deepEqual(w.client.got.map((g) => g.text), ['right port']);
      assert.equal(w.nat.stats.inboundDropped, 1);
    }));

  it('inside hosts of one NAT talk without translation; hairpin and private destinations from outside are dropped', () =>
    withSeed(seedOr(2104), (seed) => {
      const w = world(seed, 'endpointIndependent', 'endpointIndependent');
      const second = open(w.sim, '10.0.1.3', 6000);
      send(w.client.sock, { address: '10.0.1.3', port: 6000 }, 'lan');
      w.sim.runFor(50 * MS);
      assert.deepEqual(second.got.map((g) => [g.from, g.text]), [[{ address: '10.0.1.2', port: 5000 }, 'lan']]);
      assert.equal(w.nat.stats.outboundTranslated, 0);
      // Through the NAT's own public address (hairpin): not supported, dropped.
      send(w.client.sock, SERVER, 'open a mapping');
      w.sim.runFor(50 * MS);
      send(second.sock, { address: PUB_A, port: 5000 }, 'hairpin');
      // From outside straight to a private IP: not routable.
      send(w.server.sock, { address: '10.0.1.2', port: 5000 }, 'private');
      w.sim.runFor(50 * MS);
      assert.equal(w.client.got.length, 0);
      assert.equal(w.nat.stats.hairpinDropped, 1);
      assert.equal(w.nat.stats.inboundDropped, 1);
    }));
});

describe('SimNat: inbound filtering', () => {
  for (const filtering of FILTERINGS) {
    it(`${filtering} filtering: which sources reach the inside endpoint`, () =>
      withSeed(seedOr(2110 + FILTERINGS.indexOf(filtering)), (seed) => {
        const w = world(seed, 'endpointIndependent', filtering);
        const pub = { address: PUB_A, port: 5000 };
        // Before any outbound traffic there is no mapping: everything is dropped, whatever the filtering.
        send(w.server.sock, pub, 'early');
        w.sim.runFor(50 * MS);
        assert.equal(w.nat.stats.inboundDropped, 1);
        send(w.client.sock, SERVER, 'out');
        w.sim.runFor(50 * MS);
        send(w.server.sock, pub, 'same ip and port');
        send(w.serverAlt.sock, pub, 'same ip, other port');
        send(w.other.sock, pub, 'other ip');
        w.sim.runFor(50 * MS);
        const expected: Record<NatFiltering, string[]> = {
          endpointIndependent: ['same ip and port', 'same ip, other port', 'other ip'],
          addressDependent: ['same ip and port', 'same ip, other port'],
          addressAndPortDependent: ['same ip and port'],
        };
        assert.deepEqual(w.client.got.map((g) => g.text).sort(), [...expected[filtering]].sort());
        assert.equal(w.nat.stats.inboundTranslated, expected[filtering].length);
        assert.equal(w.nat.stats.inboundDropped, 1 + 3 - expected[filtering].length);
        // Sending to a destination opens the filter for it.
        send(w.client.sock, OTHER, 'now to other');
        w.sim.runFor(50 * MS);
        send(w.other.sock, pub, 'other ip, after');
        w.sim.runFor(50 * MS);
        assert.equal(w.client.got.at(-1)?.text, 'other ip, after');
      }));
  }
});

describe('SimNat: mapping lifetime', () => {
  it('a mapping expires after its lifetime without outbound traffic; outbound traffic refreshes it; inbound does not', () =>
    withSeed(seedOr(2120), (seed) => {
      const w = world(seed, 'endpointIndependent', 'endpointIndependent', 30 * S);
      const pub = { address: PUB_A, port: 5000 };
      send(w.client.sock, SERVER, 'open');
      // Inbound every 10 s for 60 s: delivered only while the mapping lives (30 s after the one outbound datagram).
      for (let i = 1; i <= 6; i++) {
        w.sim.runFor(10 * S);
        send(w.server.sock, pub, `in ${i}`);
      }
      w.sim.runFor(1 * S);
      assert.deepEqual(w.client.got.map((g) => g.text), ['in 1', 'in 2']);
      assert.equal(w.nat.stats.mappings, 0);
      // Outbound every 20 s keeps it alive for 100 s.
      w.client.got.length = 0;
      for (let i = 0; i < 5; i++) {
        send(w.client.sock, SERVER, `keepalive ${i}`);
        w.sim.runFor(20 * S);
        send(w.server.sock, pub, `in ${i}`);
        w.sim.runFor(1 * MS);
      }
      w.sim.runFor(1 * S);
      assert.equal(w.client.got.length, 5);
      assert.equal(w.nat.stats.mappings, 1);
    }));

  it('expireAll (a NAT reboot) drops every mapping; the next outbound datagram makes a new one', () =>
    withSeed(seedOr(2121), (seed) => {
      const w = world(seed, 'endpointDependent', 'addressAndPortDependent');
      send(w.client.sock, SERVER, 'open');
      w.sim.runFor(50 * MS);
      const before = w.server.got[0]?.from;
      assert.deepEqual(before, { address: PUB_A, port: 20000 });
      w.nat.expireAll();
      assert.equal(w.nat.stats.mappings, 0);
      send(w.server.sock, before, 'lost');
      w.sim.runFor(50 * MS);
      assert.equal(w.client.got.length, 0);
      assert.equal(w.nat.stats.inboundDropped, 1);
      send(w.client.sock, SERVER, 'again');
      w.sim.runFor(50 * MS);
      const after = w.server.got[1]?.from;
      assert.deepEqual(after, { address: PUB_A, port: 20001 }, 'the rebooted NAT hands out another port');
      send(w.server.sock, after, 'found');
      w.sim.runFor(50 * MS);
      assert.deepEqual(w.client.got.map((g) => g.text), ['found']);
    }));
});

describe('SimNat: links', () => {
  it('link conditions and counters stay between the real endpoints, both ways through the NAT', () =>
    withSeed(seedOr(2130), (seed) => {
      const w = world(seed, 'endpointIndependent', 'addressAndPortDependent');
      w.sim.setLinks(w.client.sock, w.server.sock, { latencyUs: 40 * MS, jitterUs: 0 });
      send(w.client.sock, SERVER, 'ping');
      w.sim.runUntil(() => w.server.got.length > 0, 1 * S);
      assert.equal(w.server.got[0]?.atUs, 40 * MS);
      send(w.server.sock, { address: PUB_A, port: 5000 }, 'pong');
      w.sim.runUntil(() => w.client.got.length > 0, 1 * S);
      assert.equal(w.client.got[0]?.atUs, 80 * MS, 'the answer to the public address crossed the server-to-client link');
      assert.equal(w.sim.linkStats(w.client.sock, w.server.sock).delivered, 1);
      assert.equal(w.sim.linkStats(w.server.sock, w.client.sock).delivered, 1);
      assert.deepEqual(w.sim.wireStats(PUB_A, SERVER.address), { sent: 1, delivered: 1 });
      assert.deepEqual(w.sim.wireStats(SERVER.address, PUB_A), { sent: 1, delivered: 1 });
      // A partition between the real endpoints cuts the NATed path too.
      w.sim.partitionAddresses(w.client.sock.local, SERVER);
      send(w.server.sock, { address: PUB_A, port: 5000 }, 'cut');
      w.sim.runFor(1 * S);
      assert.equal(w.client.got.length, 1);
    }));

  it('the same seed gives the same trace through NATs under loss and jitter; another seed does not', () => {
    const seed = seedOr(2131);
    const run = (s: number): TraceEntry[] => {
      const sim = new SimNetwork(s, { latencyUs: 20 * MS, jitterUs: 10 * MS, loss: 0.2 });
      sim.addNat({ publicAddress: PUB_A, inside: ['10.0.1.2'], mapping: 'endpointDependent', filtering: 'addressDependent' });
      const c = open(sim, '10.0.1.2', 0);
      const srv = open(sim, SERVER.address, SERVER.port);
      srv.sock.onMessage = (data, from) => srv.sock.send(data, from);
      sim.trace = [];
      for (let i = 0; i < 200; i++) {
        send(c.sock, i % 2 ? SERVER : OTHER, `m${i}`);
        sim.runFor(5 * MS);
      }
      sim.runFor(1 * S);
      return sim.trace;
    };
    withSeed(seed, () => {
      const a = run(seed);
      assert.ok(a.length > 50, `trace has ${a.length} entries`);
      assert.deepEqual(run(seed), a);
      assert.notDeepEqual(run(seed + 1), a);
    });
  });
});

/**
 * Two clients, behind NAT A and NAT B, learn each other's public address from a rendezvous server at
 * SERVER (each sees the other as the server saw it), then both send probes to each other at the same
 * moment, every 100 ms for a second. Returns what each received directly from the other.
 */
function holePunch(seed: number, mappingA: NatMapping, mappingB: NatMapping, filtering: NatFiltering) {
  const sim = new SimNetwork(seed, { latencyUs: 15 * MS, jitterUs: 3 * MS });
  const natA = sim.addNat({ publicAddress: PUB_A, inside: ['10.0.1.2'], mapping: mappingA, filtering });
  const natB = sim.addNat({ publicAddress: PUB_B, inside: ['192.168.7.20'], mapping: mappingB, filtering });
  const a = open(sim, '10.0.1.2', 0);
  const b = open(sim, '192.168.7.20', 0);
  const rendezvous = open(sim, SERVER.address, SERVER.port);
  send(a.sock, SERVER, 'register a');
  send(b.sock, SERVER, 'register b');
  sim.runUntil(() => rendezvous.got.length === 2, 1 * S);
  const seenA = rendezvous.got.find((g) => g.text === 'register a')?.from;
  const seenB = rendezvous.got.find((g) => g.text === 'register b')?.from;
  assert.ok(seenA && seenB, 'both registered');
  assert.equal(seenA.address, PUB_A);
  assert.equal(seenB.address, PUB_B);
  // The rendezvous server tells each client where it saw the other.
  send(rendezvous.sock, seenA, `peer ${seenB.address}:${seenB.port}`);
  send(rendezvous.sock, seenB, `peer ${seenA.address}:${seenA.port}`);
  sim.runUntil(() => a.got.length === 1 && b.got.length === 1, 1 * S);
  const peerOf = (got: Got[]): SocketAddress => {
    const [address, port] = (got[0]?.text ?? '').slice('peer '.length).split(':');
    return { address: address ?? '', port: Number(port) };
  };
  const peerForA = peerOf(a.got);
  const peerForB = peerOf(b.got);
  sim.setLinks(a.sock, b.sock, { latencyUs: 25 * MS, jitterUs: 5 * MS, loss: 0.1 });
  for (let i = 0; i < 10; i++) {
    send(a.sock, peerForA, `a probe ${i}`);
    send(b.sock, peerForB, `b probe ${i}`);
    sim.runFor(100 * MS);
  }
  sim.runFor(1 * S);
  const direct = (got: Got[], from: string) => got.filter((g) => g.text.startsWith(`${from} probe`));
  return { sim, natA, natB, a, b, aGot: direct(a.got, 'b'), bGot: direct(b.got, 'a') };
}

describe('SimNat: hole punching', () => {
  it('succeeds between two endpoint-independent-mapping NATs with address-and-port-dependent filtering', () =>
    withSeed(seedOr(2140), (seed) => {
      const h = holePunch(seed, 'endpointIndependent', 'endpointIndependent', 'addressAndPortDependent');
      // 10 probes each way over a 10% loss link. Both sides send at the same moment and the link has
      // latency, so each NAT has opened toward the other before the other's first probe arrives.
      assert.ok(h.aGot.length >= 5, `a received ${h.aGot.length} probes from b`);
      assert.ok(h.bGot.length >= 5, `b received ${h.bGot.length} probes from a`);
      assert.ok(h.aGot.every((g) => g.from.address === PUB_B));
      assert.ok(h.bGot.every((g) => g.from.address === PUB_A));
      assert.equal(h.natA.stats.inboundDropped + h.natB.stats.inboundDropped, 0);
      assert.equal(h.sim.wireStats(PUB_A, PUB_B).delivered, h.bGot.length, 'the probes went straight from NAT A to NAT B');
      assert.equal(h.sim.wireStats(PUB_B, PUB_A).delivered, h.aGot.length);
      assert.equal(h.sim.linkStats(h.a.sock, h.b.sock).delivered, h.bGot.length, 'over the link between the two clients');
    }));

  it('fails when one NAT has endpoint-dependent mapping (its probes leave from a port the other never sent to)', () =>
    withSeed(seedOr(2141), (seed) => {
      const h = holePunch(seed, 'endpointIndependent', 'endpointDependent', 'addressAndPortDependent');
      assert.equal(h.aGot.length, 0);
      assert.equal(h.bGot.length, 0);
      assert.ok(h.natA.stats.inboundDropped >= 5, `NAT A dropped ${h.natA.stats.inboundDropped}`);
      assert.ok(h.natB.stats.inboundDropped >= 5, `NAT B dropped ${h.natB.stats.inboundDropped}`);
      assert.ok(h.sim.wireStats(PUB_B, PUB_A).sent >= 10, 'B did send to A');
      assert.equal(h.sim.wireStats(PUB_B, PUB_A).delivered, 0);
    }));
});

describe('SimNat: endpoints', () => {
  it('an Endpoint behind a NAT connects to one at a public address, which sees the NAT address as the client', () =>
    withSeed(seedOr(2150), (seed) => {
      const sim = new SimNetwork(seed, { latencyUs: 10 * MS, jitterUs: 2 * MS, loss: 0.05 });
      const nat: SimNat = sim.addNat({ publicAddress: PUB_A, inside: ['10.0.1.2'], mapping: 'endpointDependent', filtering: 'addressAndPortDependent' });
      const rng = new SeededRng(seed);
      const server = sim.addHost(SERVER, new Endpoint({ rng: rng.fork(), listen: true, handshake: seededHandshake(seed + 1) }));
      const client = sim.addHost({ address: '10.0.1.2', port: 40000 }, new Endpoint({ rng: rng.fork(), handshake: seededHandshake(seed + 2) }));
      let s = 0;
      server.onEvent = (e) => {
        if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) {
          s = e.connection;
          server.endpoint.accept(sim.now, e.connection);
        }
      };
      const c = client.endpoint.connect(sim.now, SERVER);
      const ok = sim.runUntil(() => client.endpoint.state(c) === ConnectionState.Connected && s !== 0 && server.endpoint.state(s) === ConnectionState.Connected, 30 * S);
      assert.ok(ok, `handshake through the NAT (client state ${client.endpoint.state(c)})`);
      assert.deepEqual(server.endpoint.remoteAddress(s), { address: PUB_A, port: 1024 });
      assert.ok(nat.stats.inboundTranslated > 0);
      assert.equal(nat.stats.mappings, 1);
    }));
});

describe('SimNat: relayed facades', () => {
  it('NetworkManagers behind two NATs talk through a relay, which sees only the NATs\' public addresses', () =>
    withSeed(seedOr(2160), (seed) => {
      const world = new World(seed, { latencyUs: 5 * MS, jitterUs: 1 * MS });
      // world.peerRuntime() hands out 10.0.1.1, 10.0.1.2: one behind each NAT.
      const natA = world.sim.addNat({ publicAddress: PUB_A, inside: ['10.0.1.1'], mapping: 'endpointIndependent', filtering: 'addressAndPortDependent' });
      const natB = world.sim.addNat({ publicAddress: PUB_B, inside: ['10.0.1.2'], mapping: 'endpointDependent', filtering: 'addressAndPortDependent' });
      const relay = world.relay();
      try {
        const nms = mesh(world, [relay.address], 2);
        assert.deepEqual(nms.map((nm) => nm.localAddress.address), ['10.0.1.1', '10.0.1.2']);
        assert.deepEqual(relay.server.node.sessions().map((s) => s.address).sort(), [PUB_B, PUB_A].sort());
        const got = [0, 0];
        nms.forEach((nm, i) => nm.on('message', () => (got[i] = (got[i] ?? 0) + 1)));
        let sent = 0;
        pump(world, nms, () => got.every((g) => g >= 20), 10 * S, 'messages both ways', () => {
          if (sent++ >= 20) return;
          for (const a of nms) for (const b of nms) if (a !== b) a.sendMessage(b.getPeerId(), 1, new TextEncoder().encode(`hello ${sent}`));
        });
        assert.ok(natA.stats.inboundTranslated > 20 && natB.stats.inboundTranslated > 20);
        assert.equal(natA.stats.inboundDropped + natB.stats.inboundDropped, 0);
        assert.equal(world.sim.wireStats(PUB_A, PUB_B).sent + world.sim.wireStats(PUB_B, PUB_A).sent, 0, 'nothing went straight between the NATs');
        for (const nm of nms) nm.close();
      } finally {
        world.close();
      }
    }));
});
