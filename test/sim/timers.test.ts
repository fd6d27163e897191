// Timers of many connections on one endpoint, in virtual time: every keepalive, idle timeout and handshake
// retry fires at its deadline, an idle connection costs one PING and its ACK per keepalive interval, and the
// endpoint's work per timer is what is due, not the whole table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from '../../src/core/connection.js';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, EndReason, SendFlags, type SocketAddress } from '../../src/core/types.js';
import { SimNetwork, type SimHost } from '../../src/testing/sim-network.js';
import { seededHandshake } from '../../src/testing/crypto.js';
import { SeededRng } from '../../src/util/rng.js';
import { ControlType, decodeControl } from '../../src/wire/control.js';
import { CLIENT_ADDR, SERVER_ADDR, drain, seedOr, withSeed } from '../support/sim.js';

const KEEPALIVE_MS = 1000;
const TIMEOUT_MS = 4000;
const CONFIG = { KeepaliveInterval: KEEPALIVE_MS, TimeoutConnected: TIMEOUT_MS };
/** The keepalive grid (1/32 of the interval) and the path's round trip: a PING may come this much after the interval. */
const GRID_US = (KEEPALIVE_MS * 1000) / 32;
const LATENCY_US = 5000;
const MANY_LIMITS = { maxConnectionsPerAddress: 8191, maxPendingPerAddress: 8191 };

interface World {
  sim: SimNetwork;
  server: SimHost;
  client: SimHost;
  /** Client handle -> server handle, learned from a first message that names the client handle. */
  pairs: Map<number, number>;
  /** When each server handle's connection closed, and why. */
  serverEnds: Map<number, { atUs: number; reason: number }>;
  clientEnds: Map<number, { atUs: number; reason: number }>;
  /** When a data packet for each server handle, and for each client handle, was last delivered. */
  lastToServer: Map<number, number>;
  lastToClient: Map<number, number>;
  /** Set by a test: whether a data packet of the connection with this client handle is dropped now. */
  drop: ((clientHandle: number, now: number) => boolean) | null;
}

/** The destination connection id of a data packet, or -1 for anything else. */
function dataCid(d: Uint8Array): number {
  if (d.length < 5 || ((d[0] as number) & 0x80) === 0) return -1;
  return (((d[1] as number) << 24) | ((d[2] as number) << 16) | ((d[3] as number) << 8) | (d[4] as number)) >>> 0;
}

/**
 * `n` connections from one client endpoint to one server endpoint, opened `spacingUs` apart so that their
 * deadlines differ. Each connection's first message names its client handle, so the test can pair them.
 */
function world(seed: number, n: number, spacingUs: number, config: Partial<Record<string, number>> = CONFIG, latencyUs = LATENCY_US): World {
  const sim = new SimNetwork(seed, { latencyUs });
  const rng = new SeededRng(seed);
  const server = sim.addHost(SERVER_ADDR, new Endpoint({ rng: rng.fork(), listen: true, config, handshake: seededHandshake(seed + 1), ...MANY_LIMITS }));
  const client = sim.addHost(CLIENT_ADDR, new Endpoint({ rng: rng.fork(), config, handshake: seededHandshake(seed + 2) }));
  const w: World = { sim, server, client, pairs: new Map(), serverEnds: new Map(), clientEnds: new Map(), lastToServer: new Map(), lastToClient: new Map(), drop: null };
  const clientOf = new Map<number, number>(); // server handle -> client handle, once paired
  sim.intercept = (from, _to, data, now) => {
    const cid = dataCid(data);
    if (cid < 0) return data;
    const toServer = from.address === CLIENT_ADDR.address;
    const c = toServer ? clientOf.get(cid) : cid;
    if (w.drop && c !== undefined && w.drop(c, now)) return null;
    (toServer ? w.lastToServer : w.lastToClient).set(cid, now);
    return data;
  };
  const ended = (map: Map<number, { atUs: number; reason: number }>, ep: Endpoint) => (e: Parameters<NonNullable<SimHost['onEvent']>>[0]) => {
    if (e.type !== 'connectionStatusChanged') return;
    if (e.state === ConnectionState.ClosedByPeer || e.state === ConnectionState.ProblemDetectedLocally) {
      map.set(e.connection, { atUs: sim.now, reason: e.endReason });
      ep.close(sim.now, e.connection);
    }
  };
  const serverEnded = ended(w.serverEnds, server.endpoint);
  server.onEvent = (e) => {
    if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) server.endpoint.accept(sim.now, e.connection);
    serverEnded(e);
  };
  client.onEvent = ended(w.clientEnds, client.endpoint);
  const handles: number[] = [];
  for (let i = 0; i < n; i++) {
    handles.push(client.endpoint.connect(sim.now, SERVER_ADDR));
    sim.runFor(spacingUs);
  }
  const connected = (): boolean => handles.every((h) => client.endpoint.state(h) === ConnectionState.Connected);
  assert.ok(sim.runUntil(connected, 10_000_000), `seed ${seed}: not every connection connected`);
  for (const h of handles) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, h);
    client.endpoint.send(sim.now, h, b, SendFlags.Reliable);
  }
  const ready = (): boolean => {
    for (let s = server.endpoint.pollReadable(); s !== null; s = server.endpoint.pollReadable()) {
      for (const m of drain(server, s)) w.pairs.set(new DataView(m.data.buffer, m.data.byteOffset, 4).getUint32(0), s);
    }
    return w.pairs.size === n;
  };
  assert.ok(sim.runUntil(ready, 2_000_000), `seed ${seed}: the first messages did not all arrive`);
  for (const [c, s] of w.pairs) clientOf.set(s, c);
  return w;
}

test('hundreds of idle connections on one endpoint: each sends its keepalive PING on time, the server only answers, and nothing times out', () => {
  withSeed(seedOr(1701), (seed) => {
    const n = 300;
    const w = world(seed, n, 3_000);
    const { sim } = w;
    // Client -> server data packets carry the server's handle; server -> client ones the client's.
    const clientSends = new Map<number, number[]>();
    const serverSends = new Map<number, number>();
    sim.onSend = (from, _to, data, now) => {
      const cid = dataCid(data);
      if (cid < 0) return;
      if (from.address === CLIENT_ADDR.address) {
        const times = clientSends.get(cid) ?? [];
        times.push(now);
        clientSends.set(cid, times);
      } else serverSends.set(cid, (serverSends.get(cid) ?? 0) + 1);
    };
    sim.runFor(1_000_000); // the first messages' acks settle
    clientSends.clear();
    serverSends.clear();
    const start = sim.now;
    const spanUs = 20_000_000;
    sim.runFor(spanUs);
    assert.equal(w.serverEnds.size + w.clientEnds.size, 0, 'no connection timed out');
    let worst = 0;
    for (const [c, s] of w.pairs) {
      const times = clientSends.get(s) ?? [];
      // One PING per interval (plus the round trip its ACK takes, rounded up to the grid), from the start on.
      assert.ok(times.length >= spanUs / (KEEPALIVE_MS * 1000 + 2 * LATENCY_US + GRID_US) - 1, `connection ${c}: ${times.length} keepalives in ${spanUs / 1e6} s`);
      const gaps = [times[0]! - start, ...times.slice(1).map((t, i) => t - times[i]!)];
      for (const g of gaps) worst = Math.max(worst, g);
      for (const g of gaps.slice(1)) assert.ok(g >= KEEPALIVE_MS * 1000, `connection ${c}: keepalives ${g} us apart, under the interval`);
      // The server answers each PING with one ACK and sends no PING of its own.
      assert.ok((serverSends.get(c) ?? 0) <= times.length, `connection ${c}: server sent ${serverSends.get(c)} packets for ${times.length} PINGs`);
    }
    const bound = KEEPALIVE_MS * 1000 + 2 * LATENCY_US + GRID_US + 1000;
    console.log(`# ${n} idle connections: the longest silence before a keepalive ${worst} us (bound ${bound} us)`);
    assert.ok(worst <= bound, `a keepalive came ${worst} us after the last one, past ${bound} us`);
  });
});

test('the defaults: an idle connection costs one PING and its ACK per 8 s (KeepaliveInterval), and a lost PING is repaired before TimeoutConnected (10 s)', () => {
  withSeed(seedOr(1706), (seed) => {
    const n = 20;
    const w = world(seed, n, 50_000, {}, 50_000); // default configuration, 100 ms round trip
    const { sim } = w;
    const sends = { client: 0, server: 0 };
    sim.onSend = (from, _to, data) => {
      if (dataCid(data) >= 0) sends[from.address === CLIENT_ADDR.address ? 'client' : 'server']++;
    };
    sim.runFor(2_000_000); // the first messages' acks settle
    sends.client = sends.server = 0;
    const spanS = 80;
    sim.runFor(spanS * 1_000_000);
    assert.equal(w.serverEnds.size + w.clientEnds.size, 0, 'no connection timed out');
    const perConn = sends.client / n;
    console.log(`# ${n} idle connections, ${spanS} s, defaults: ${perConn} client and ${sends.server / n} server packets per connection`);
    // One PING per 8 s plus its round trip and the 250 ms grid (5 s would be 16 in 80 s), and one ACK each.
    assert.ok(perConn <= spanS / 8 + 1 && perConn >= spanS / 8.5 - 1, `${perConn} keepalives per connection in ${spanS} s`);
    assert.ok(sends.server <= sends.client, `server sent ${sends.server} packets for ${sends.client} PINGs`);
    // Each connection's next packet (its keepalive PING) is lost: the probe timer sends it again in time.
    const dropped = new Set<number>();
    w.drop = (c) => !dropped.has(c) && dropped.add(c) !== undefined;
    sim.runFor(30_000_000);
    assert.equal(dropped.size, n, 'a packet of every connection was dropped');
    assert.equal(w.serverEnds.size + w.clientEnds.size, 0, 'no connection timed out after losing its PING');
  });
});

test('idle timeouts close exactly the connections that went silent, each at its last packet + TimeoutConnected, on both sides', () => {
  withSeed(seedOr(1702), (seed) => {
    const n = 300;
    const w = world(seed, n, 2_000);
    const { sim } = w;
    // Every 7th connection goes silent at a time of its own: its packets, both ways, are dropped from then on.
    const silentFromUs = new Map<number, number>(); // client handle -> when
    const clients = [...w.pairs.keys()];
    clients.forEach((c, i) => {
      if (i % 7 === 0) silentFromUs.set(c, sim.now + 200_000 + i * 3_000);
    });
    w.drop = (c, now) => now >= (silentFromUs.get(c) ?? Number.POSITIVE_INFINITY);
    sim.runFor(3_000_000 + TIMEOUT_MS * 1000);
    assert.equal(w.serverEnds.size, silentFromUs.size, `the server closed ${w.serverEnds.size} connections, ${silentFromUs.size} went silent`);
    assert.equal(w.clientEnds.size, silentFromUs.size, `the client closed ${w.clientEnds.size} connections, ${silentFromUs.size} went silent`);
    let worst = 0;
    for (const c of silentFromUs.keys()) {
      const s = w.pairs.get(c)!;
      const se = w.serverEnds.get(s);
      const ce = w.clientEnds.get(c);
      assert.ok(se && ce, `connection ${c} went silent but was not closed on both sides`);
      assert.equal(se.reason, EndReason.Misc_Timeout);
      assert.equal(ce.reason, EndReason.Misc_Timeout);
      const dServer = se.atUs - (w.lastToServer.get(s)! + TIMEOUT_MS * 1000);
      const dClient = ce.atUs - (w.lastToClient.get(c)! + TIMEOUT_MS * 1000);
      worst = Math.max(worst, Math.abs(dServer), Math.abs(dClient));
    }
    console.log(`# ${silentFromUs.size} of ${n} connections went silent: each closed within ${worst} us of its last packet + ${TIMEOUT_MS} ms`);
    assert.ok(worst <= 1000, `an idle timeout fired ${worst} us off its deadline`);
    for (const [c, s] of w.pairs) {
      if (silentFromUs.has(c)) continue;
      assert.equal(w.client.endpoint.state(c), ConnectionState.Connected, `live connection ${c} was closed`);
      assert.equal(w.server.endpoint.state(s), ConnectionState.Connected, `live connection ${s} was closed on the server`);
    }
  });
});

test('hundreds of connections to an unreachable server: every HELLO retry goes at its 500 ms, every connection fails at TimeoutInitial', () => {
  withSeed(seedOr(1703), (seed) => {
    const sim = new SimNetwork(seed, { latencyUs: LATENCY_US });
    const client = sim.addHost(CLIENT_ADDR, new Endpoint({ rng: new SeededRng(seed), config: { TimeoutInitial: 3000 }, handshake: seededHandshake(seed) }));
    const nowhere: SocketAddress = { address: '10.9.9.9', port: 1 };
    const hellos = new Map<number, number[]>();
    sim.onSend = (_from, _to, data, now) => {
      if (data[0] !== ControlType.Hello) return;
      const p = decodeControl(data);
      if (p.type !== 'hello') return;
      const times = hellos.get(p.clientCid) ?? [];
      times.push(now);
      hellos.set(p.clientCid, times);
    };
    const started = new Map<number, number>();
    const ended = new Map<number, { atUs: number; reason: number }>();
    client.onEvent = (e) => {
      if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.ProblemDetectedLocally) ended.set(e.connection, { atUs: sim.now, reason: e.endReason });
    };
    for (let i = 0; i < 250; i++) {
      started.set(client.endpoint.connect(sim.now, nowhere), sim.now);
      sim.runFor(1_700);
    }
    sim.runFor(4_000_000);
    assert.equal(ended.size, started.size, `${ended.size} of ${started.size} connections failed`);
    for (const [h, t0] of started) {
      const times = hellos.get(h) ?? [];
      assert.deepEqual(
        times.map((t) => t - t0),
        [0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000],
        `connection ${h}: HELLOs at these times after connect`,
      );
      const e = ended.get(h)!;
      assert.equal(e.reason, EndReason.Misc_Timeout);
      assert.equal(e.atUs - t0, 3_000_000, `connection ${h} failed ${e.atUs - t0} us after it started`);
    }
  });
});

test('the endpoint works only on the connections that are due: 1,000 idle connections, no scan of the table per timer or poll', () => {
  withSeed(seedOr(1704), (seed) => {
    const n = 1000;
    const w = world(seed, n, 5_000); // connections 5 ms apart: their deadlines spread over 5 s
    const { sim, server } = w;
    // Count every deadline computation, on whichever endpoint: the work a timer or a poll costs.
    const proto = Connection.prototype as unknown as { nextTimeoutUs: (now: number) => number; handleTimeout: (now: number) => void };
    const original = proto.nextTimeoutUs;
    const originalHandle = proto.handleTimeout;
    let computed = 0;
    let fired = 0;
    proto.nextTimeoutUs = function (this: Connection, now: number): number {
      computed++;
      return original.call(this, now);
    };
    proto.handleTimeout = function (this: Connection, now: number): void {
      if (this.isServer) fired++;
      originalHandle.call(this, now);
    };
    const ep = server.endpoint;
    const handle = ep.handleTimeout.bind(ep);
    let calls = 0;
    let worstVisits = 0;
    ep.handleTimeout = (now: number): void => {
      const before = ep.stats.timerVisits;
      handle(now);
      calls++;
      worstVisits = Math.max(worstVisits, ep.stats.timerVisits - before);
    };
    try {
      sim.runFor(1_000_000);
      computed = 0;
      fired = 0;
      const stats0 = { ...ep.stats };
      const spanUs = 10_000_000;
      sim.runFor(spanUs);
      const visits = ep.stats.timerVisits - stats0.timerVisits;
      const exchanges = (n * spanUs) / (KEEPALIVE_MS * 1000); // keepalive PINGs (and their ACKs) in the span
      console.log(`# ${n} idle connections, ${spanUs / 1e6} s: ${calls} timer calls on the server, ${visits} connections visited (at most ${worstVisits} in one call), ${fired} of them due; ${computed} deadlines computed on both endpoints for ${exchanges} keepalive exchanges`);
      assert.equal(w.serverEnds.size + w.clientEnds.size, 0);
      // A scan would visit all n at each call and compute every deadline at every poll of either endpoint.
      // Here a call visits the connections whose deadline has come (many at once: the stats intervals share a
      // grid), and little more than those: at most two visits per keepalive exchange, nearly all of them due.
      assert.ok(visits <= 2 * exchanges, `${visits} visits for ${exchanges} keepalive exchanges`);
      assert.ok(fired >= 0.9 * visits, `only ${fired} of the ${visits} connections visited were due`);
      assert.ok(worstVisits < n, `one handleTimeout call looked at all ${n} connections`);
      assert.ok(computed <= 12 * exchanges, `${computed} deadline computations for ${exchanges} keepalive exchanges`);
    } finally {
      proto.nextTimeoutUs = original;
      proto.handleTimeout = originalHandle;
    }
  });
});

test('a message on any of hundreds of idle connections leaves at its Nagle deadline, and a lost one is repaired by the probe timer, not the next keepalive', () => {
  withSeed(seedOr(1705), (seed) => {
    const n = 300;
    const w = world(seed, n, 2_000);
    const { sim, client, server } = w;
    sim.runFor(500_000);
    const nagleUs = 5000; // NagleTime's default
    const sentAt = new Map<number, number>(); // client handle -> when its message was queued
    const lose = new Set<number>(); // client handles whose message's first packet is dropped
    const lostOnce = new Set<number>();
    w.drop = (c) => {
      if (!lose.has(c) || lostOnce.has(c) || !sentAt.has(c)) return false;
      lostOnce.add(c); // the first data packet after the message was queued: the message's
      return true;
    };
    const delays: number[] = [];
    const repaired: number[] = [];
    const clients = [...w.pairs.keys()];
    const byServer = new Map([...w.pairs].map(([c, s]) => [s, c]));
    let next = 0;
    sim.runUntil(() => {
      // One message every 2.9 ms, on the connections in turn: each waits for Nagle from an idle deadline of its own.
      while (next < clients.length && sim.now >= 600_000 + next * 2_900) {
        const c = clients[next]!;
        if (next % 5 === 0) lose.add(c);
        client.endpoint.send(sim.now, c, new Uint8Array(50), SendFlags.Reliable);
        sentAt.set(c, sim.now);
        next++;
      }
      for (let s = server.endpoint.pollReadable(); s !== null; s = server.endpoint.pollReadable()) {
        const c = byServer.get(s)!;
        for (const m of drain(server, s)) {
          if (m.data.length !== 50) continue;
          const d = m.receivedAtUs - sentAt.get(c)!;
          (lose.has(c) ? repaired : delays).push(d);
        }
      }
      return repaired.length + delays.length === n;
    }, 3_000_000);
    assert.equal(repaired.length + delays.length, n, `${repaired.length + delays.length} of ${n} messages arrived`);
    const worst = Math.max(...delays);
    const worstRepair = Math.max(...repaired);
    console.log(`# ${n} connections: a message arrived at most ${worst} us after it was sent (Nagle ${nagleUs} us + ${LATENCY_US} us on the way); a lost one at most ${worstRepair} us`);
    assert.ok(worst <= nagleUs + LATENCY_US + 1000, `a message took ${worst} us`);
    assert.ok(worstRepair < KEEPALIVE_MS * 1000 / 4, `a lost message took ${worstRepair} us to be repaired`);
  });
});
