// Connection migration on the direct path (RFC 9000 sections 8.2 and 9), in virtual time: a client whose
// port changes (a NAT rebinding) keeps its connection, the server moves only after the new address answers
// a path challenge and sends it at most 3x what it received from it until then, a packet replayed from
// another address moves nothing, and a move to another IP starts the RTT estimate and congestion control over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, SendFlags, sameAddress, type ReceivedMessage, type SocketAddress } from '../../src/core/types.js';
import type { ConnectionStatus } from '../../src/core/stats.js';
import { EndpointDriver } from '../../src/io/driver.js';
import { seededHandshake } from '../../src/testing/crypto.js';
import { SimNetwork, type LinkConditions, type SimHost, type SimSocket } from '../../src/testing/sim-network.js';
import { SeededRng } from '../../src/util/rng.js';
import { seedOr, withSeed } from '../support/sim.js';

const SERVER: SocketAddress = { address: '10.0.0.2', port: 27015 };
const CLIENT_IP = '10.0.0.1';
const S = 1_000_000;
const MS = 1000;

interface MovingPair {
  readonly sim: SimNetwork;
  readonly server: SimHost;
  /** Server-side handle. */
  readonly s: number;
  /** The client's endpoint, on an io driver over simulated sockets, so that it can rebind to a new port. */
  readonly client: Endpoint;
  readonly c: number;
  readonly driver: EndpointDriver<Endpoint>;
  /** The client's socket now. */
  socket(): SimSocket;
  /** Moves the client to a new socket (a new port on `ip`), as a NAT rebinding does; returns its address. */
  rebind(ip?: string, link?: Partial<LinkConditions>): SocketAddress;
}

/** A server endpoint at SERVER and a client endpoint on a driver at CLIENT_IP, connected. `migration` given to both when set. */
function movingPair(seed: number, link: Partial<LinkConditions>, migration?: boolean): MovingPair {
  const sim = new SimNetwork(seed, link);
  const rng = new SeededRng(seed ^ 0x5bd1e995);
  const opts = migration === undefined ? {} : { migration };
  const server = sim.addHost(SERVER, new Endpoint({ rng: rng.fork(), listen: true, handshake: seededHandshake(seed + 1), ...opts }));
  const client = new Endpoint({ rng: rng.fork(), handshake: seededHandshake(seed + 2), ...opts });
  const driver = new EndpointDriver(client, sim.openSocket({ address: CLIENT_IP, port: 0 }), {
    scheduler: sim.scheduler,
    rng: rng.fork(),
    onServiced: () => {
      while (client.pollEvent() !== null) {
        // status changes are read from the endpoint's state
      }
    },
  });
  let s = 0;
  server.onEvent = (e) => {
    if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) {
      s = e.connection;
      server.endpoint.accept(sim.now, s);
    }
  };
  const c = client.connect(sim.now, SERVER);
  driver.kick();
  const ok = sim.runUntil(() => client.state(c) === ConnectionState.Connected && s !== 0 && server.endpoint.state(s) === ConnectionState.Connected, 30 * S);
  assert.ok(ok, 'handshake');
  server.onEvent = null;
  return {
    sim,
    server,
    s,
    client,
    c,
    driver,
    socket: () => driver.transport as SimSocket,
    rebind: (ip = CLIENT_IP, cond) => {
      const next = sim.openSocket({ address: ip, port: 0 });
      if (cond) sim.setLinks(next, server, cond);
      driver.rebind(next);
      return next.local;
    },
  };
}

const key = (a: SocketAddress): string => `${a.address}:${a.port}`;
const isData = (d: Uint8Array): boolean => ((d[0] as number) & 0x80) !== 0;

/**
 * Watches what the server sends to, and receives from, client addresses other than the one its
 * connection sends to at that moment (its validated address): per address, bytes out and bytes in.
 */
function watchUnvalidated(p: MovingPair): { sent: Map<string, number>; received: Map<string, number>; maxRatio: () => number } {
  const sent = new Map<string, number>();
  const received = new Map<string, number>();
  const add = (m: Map<string, number>, a: SocketAddress, n: number): void => void m.set(key(a), (m.get(key(a)) ?? 0) + n);
  p.sim.onSend = (from, to, data) => {
    const remote = p.server.endpoint.remoteAddress(p.s);
    if (sameAddress(from, SERVER) && isData(data) && remote && !sameAddress(remote, to)) add(sent, to, data.length);
  };
  p.sim.intercept = (from, to, data) => {
    const remote = p.server.endpoint.remoteAddress(p.s);
    if (sameAddress(to, SERVER) && isData(data) && remote && !sameAddress(remote, from)) add(received, from, data.length);
    return data;
  };
  const maxRatio = (): number => Math.max(0, ...[...sent].map(([a, n]) => n / (received.get(a) ?? 0)));
  return { sent, received, maxRatio };
}

test('NAT rebinding: 10 MB from server to client while the client port changes every 5 s: byte-exact, the same connection, the server moves after each path challenge, at most 3x to an unvalidated address', () => {
  withSeed(seedOr(1601), (seed) => {
    const p = movingPair(seed, { latencyUs: 20 * MS, jitterUs: 2 * MS, loss: 0.01, bandwidthBytesPerSec: 400_000, queueBytes: 64 * 1024 });
    const { sim, server, s, client, c } = p;
    const identities = [server.endpoint.peerInfo(s)?.identity, client.peerInfo(c)?.identity];
    const watch = watchUnvalidated(p);
    const TOTAL = 10 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    const rng = new SeededRng(seed);
    const data = new Uint8Array(TOTAL);
    for (let i = 0; i < TOTAL; i += 4) new DataView(data.buffer).setUint32(i, rng.nextU32());
    const got = new Uint8Array(TOTAL);
    let sent = 0;
    let received = 0;
    const out: ReceivedMessage[] = [];
    const rebinds: { atUs: number; to: SocketAddress }[] = [];
    /** How long after each rebind the server's connection moved to the new address. */
    const movedAfterUs: number[] = [];
    let minRttBefore = -1;
    let nextRebindUs = sim.now + 5 * S;
    const done = (): boolean => {
      while (sent < TOTAL && server.endpoint.send(sim.now, s, data.subarray(sent, Math.min(TOTAL, sent + CHUNK)), SendFlags.Reliable) > 0) sent = Math.min(TOTAL, sent + CHUNK);
      out.length = 0;
      client.receive(c, out, 1024);
      for (const m of out) {
        got.set(m.data, received);
        received += m.data.length;
      }
      const pending = rebinds[movedAfterUs.length];
      if (pending && sameAddress(server.endpoint.remoteAddress(s) as SocketAddress, pending.to)) movedAfterUs.push(sim.now - pending.atUs);
      if (sim.now >= nextRebindUs && received < TOTAL) {
        if (rebinds.length === 0) minRttBefore = server.endpoint.status(sim.now, s)?.rttMinUs ?? -1;
        rebinds.push({ atUs: sim.now, to: p.rebind() });
        nextRebindUs += 5 * S;
      }
      return received === TOTAL;
    };
    const ok = sim.runUntil(done, 300 * S);
    const ss = server.endpoint.status(sim.now, s) as ConnectionStatus;
    const cs = client.status(sim.now, c) as ConnectionStatus;
    console.log(
      `# NAT rebinding: ${TOTAL / 1024 / 1024} MB in ${(sim.now / S).toFixed(1)} s virtual over ${rebinds.length} port changes: ${received === TOTAL && Buffer.compare(got, data) === 0 ? 'byte-exact' : 'NOT byte-exact'}, ` +
        `migrations ${ss.pathChanges}, moved ${movedAfterUs.map((u) => Math.round(u / MS)).join('/')} ms after each change, challenges ${ss.pathChallengesSent} (responses ${cs.pathResponsesSent}), ` +
        `bytes to unvalidated addresses ${[...watch.sent.values()].join('/')} = ${watch.maxRatio().toFixed(2)}x max of those received from them, states ${client.state(c)}/${server.endpoint.state(s)}`,
    );
    assert.ok(ok, `${received} of ${TOTAL} bytes arrived; client state ${client.state(c)} end ${JSON.stringify(client.endInfo(c))}, server state ${server.endpoint.state(s)} end ${JSON.stringify(server.endpoint.endInfo(s))}`);
    assert.equal(Buffer.compare(got, data), 0, 'byte-exact');
    assert.ok(rebinds.length >= 4, `${rebinds.length} port changes during the transfer`);
    assert.equal(client.state(c), ConnectionState.Connected);
    assert.equal(server.endpoint.state(s), ConnectionState.Connected, 'the same server handle, still connected');
    assert.deepEqual([server.endpoint.peerInfo(s)?.identity, client.peerInfo(c)?.identity], identities, 'the same peers');
    assert.deepEqual(server.endpoint.remoteAddress(s), rebinds[rebinds.length - 1]?.to, 'the server sends to the latest port');
    assert.equal(ss.pathChanges, rebinds.length, 'one migration per port change');
    assert.equal(movedAfterUs.length, rebinds.length);
    assert.ok(Math.max(...movedAfterUs) < 1 * S, 'each move within a second');
    assert.equal(ss.pathValidationsFailed, 0);
    assert.ok(ss.pathChallengesSent >= rebinds.length && cs.pathResponsesSent >= rebinds.length);
    assert.equal(watch.sent.size, rebinds.length, 'each new address was challenged before the move');
    assert.ok(watch.maxRatio() <= 3, `${watch.maxRatio()}x sent to an unvalidated address`);
    assert.ok(ss.rttMinUs > 0 && ss.rttMinUs <= minRttBefore, `min RTT ${minRttBefore} us before, ${ss.rttMinUs} us after: a port change keeps the RTT estimate (RFC 9000 9.4)`);
  });
});

test('a captured packet replayed from another address ahead of the original: the challenge goes there, nobody answers, the connection stays; an older packet from elsewhere challenges nothing', () => {
  withSeed(seedOr(1602), (seed) => {
    const p = movingPair(seed, { latencyUs: 20 * MS }, true);
    const { sim, server, s, client, c } = p;
    const clientAddr = p.socket().local;
    const attacker = sim.openSocket({ address: '10.0.0.66', port: 6666 });
    const late = sim.openSocket({ address: '10.0.0.67', port: 6667 });
    const heard = { attacker: 0, attackerBytes: 0, late: 0 };
    attacker.onMessage = (d) => {
      heard.attacker++;
      heard.attackerBytes += d.length;
    };
    late.onMessage = () => heard.late++;
    let next = 0;
    let sentMessages = 0;
    const out: ReceivedMessage[] = [];
    const traffic = (): void => {
      if (client.send(sim.now, c, Uint8Array.of(sentMessages & 0xff, sentMessages >> 8, 1, 2, 3, 4, 5, 6), SendFlags.Reliable | SendFlags.NoNagle) > 0) sentMessages++;
      p.driver.kick();
      out.length = 0;
      server.endpoint.receive(s, out, 1024);
      for (const m of out) {
        assert.equal((m.data[0] as number) | ((m.data[1] as number) << 8), next & 0xffff, 'in order, each once');
        next++;
      }
    };
    const run = (us: number): void => {
      const end = sim.now + us;
      while (sim.now < end) {
        traffic();
        sim.runFor(5 * MS);
      }
    };
    run(1 * S);
    // Whether the server's connection ever pointed at another address than the client's, seen at every datagram in or out.
    let strayed = false;
    const watchRemote = (): void => void (strayed ||= !sameAddress(server.endpoint.remoteAddress(s) as SocketAddress, clientAddr));
    sim.onSend = watchRemote;
    // 1. The attacker copies a client packet in flight and delivers it from its own address first; the original arrives 2 ms later.
    let replayedBytes = 0;
    sim.intercept = (from, to, data, now) => {
      watchRemote();
      if (replayedBytes > 0 || !sameAddress(to, SERVER) || !sameAddress(from, clientAddr) || !isData(data)) return data;
      replayedBytes = data.length;
      sim.inject(attacker.local, server, data, now);
      sim.inject(from, server, data, now + 2 * MS);
      return null;
    };
    run(5 * S);
    const ss = server.endpoint.status(sim.now, s) as ConnectionStatus;
    console.log(`# replay from another address: ${replayedBytes} B replayed; the attacker got ${heard.attacker} datagrams, ${heard.attackerBytes} B (${(heard.attackerBytes / replayedBytes).toFixed(2)}x); challenges ${ss.pathChallengesSent}, failed validations ${ss.pathValidationsFailed}, migrations ${ss.pathChanges}; ${next} messages delivered in order`);
    assert.ok(replayedBytes > 0);
    assert.ok(!strayed, 'the connection never moved, not even for a moment');
    assert.equal(ss.pathChanges, 0);
    assert.ok(heard.attacker >= 1 && ss.pathChallengesSent >= 1, 'the challenge went to the replaying address');
    assert.ok(heard.attackerBytes <= 3 * replayedBytes, `the attacker got ${heard.attackerBytes} B for ${replayedBytes} B replayed`);
    assert.equal(ss.pathValidationsFailed, 1, 'the validation was abandoned');
    assert.equal(client.state(c), ConnectionState.Connected);
    assert.equal(server.endpoint.state(s), ConnectionState.Connected);
    assert.ok(next > 1000, `${next} messages delivered`);
    // 2. A client packet is held back and delivered from elsewhere after a newer one: it authenticates but is not the newest, so it starts nothing.
    let held: Uint8Array | null = null;
    let released = false;
    const challengesBefore = ss.pathChallengesSent;
    const receivedBefore = ss.packetsReceived;
    sim.intercept = (from, to, data, now) => {
      watchRemote();
      if (released || !sameAddress(to, SERVER) || !sameAddress(from, clientAddr) || !isData(data)) return data;
      if (held === null) {
        held = data;
        return null;
      }
      released = true;
      sim.inject(late.local, server, held, now + 1 * MS);
      return data;
    };
    run(2 * S);
    const after = server.endpoint.status(sim.now, s) as ConnectionStatus;
    assert.ok(released);
    assert.equal(heard.late, 0, 'nothing was sent to the address of an older packet');
    assert.equal(after.pathChallengesSent, challengesBefore);
    assert.ok(!strayed);
    assert.ok(after.packetsReceived > receivedBefore);
    assert.equal(server.endpoint.state(s), ConnectionState.Connected);
  });
});

/** Moves the client of a warmed-up transfer to a new socket on `ip` whose link has 50 ms latency each way; the server's status when it moved and 3 s later. */
function moveTo(seed: number, ip: string): { atMove: ConnectionStatus; before: ConnectionStatus; after: ConnectionStatus; delivered: number } {
  const p = movingPair(seed, { latencyUs: 5 * MS, bandwidthBytesPerSec: 1_000_000, queueBytes: 64 * 1024 }, true);
  const { sim, server, s, client, c } = p;
  const chunk = new Uint8Array(16 * 1024).fill(7);
  let delivered = 0;
  const out: ReceivedMessage[] = [];
  const pump = (): void => {
    while (server.endpoint.send(sim.now, s, chunk, SendFlags.Reliable) > 0) {
      // keep the send buffer full
    }
    out.length = 0;
    client.receive(c, out, 1024);
    for (const m of out) delivered += m.data.length;
  };
  sim.runUntil(() => (pump(), false), 3 * S);
  const before = server.endpoint.status(sim.now, s) as ConnectionStatus;
  const to = p.rebind(ip, { latencyUs: 50 * MS, bandwidthBytesPerSec: 1_000_000, queueBytes: 64 * 1024 });
  let atMove: ConnectionStatus | null = null;
  sim.runUntil(() => {
    pump();
    if (sameAddress(server.endpoint.remoteAddress(s) as SocketAddress, to)) atMove = server.endpoint.status(sim.now, s);
    return atMove !== null;
  }, 5 * S);
  assert.ok(atMove, 'the server moved');
  sim.runUntil(() => (pump(), false), 3 * S);
  assert.equal(client.state(c), ConnectionState.Connected);
  return { atMove, before, after: server.endpoint.status(sim.now, s) as ConnectionStatus, delivered };
}

test('a move to another IP starts the RTT estimate and congestion control over (RFC 9000 9.4); a move to another port of the same IP keeps them', () => {
  withSeed(seedOr(1603), (seed) => {
    const ip = moveTo(seed, '10.0.0.9');
    const port = moveTo(seed, CLIENT_IP);
    const fmt = (st: ConnectionStatus): string => `ping ${st.ping} ms, min RTT ${st.rttMinUs} us, window ${st.cwndBytes} B, rate ${st.sendRateBytesPerSec} B/s`;
    console.log(`# another IP: before ${fmt(ip.before)}; at the move ${fmt(ip.atMove)}; 3 s later ${fmt(ip.after)}`);
    console.log(`# same IP, another port: before ${fmt(port.before)}; at the move ${fmt(port.atMove)}; 3 s later ${fmt(port.after)}`);
    assert.ok(ip.before.rttMinUs > 0 && ip.before.rttMinUs < 20 * MS, 'the first path has a ~10 ms RTT');
    assert.equal(ip.atMove.ping, -1, 'another IP: no RTT sample yet on the new path');
    assert.equal(ip.atMove.rttMinUs, -1);
    assert.equal(ip.atMove.cwndBytes, 32 * 1200, 'another IP: the initial window');
    assert.ok(ip.after.rttMinUs >= 100 * MS, `another IP: the new path's RTT is measured afresh (min ${ip.after.rttMinUs} us)`);
    assert.ok(port.atMove.ping > 0 && port.atMove.rttMinUs === port.before.rttMinUs, 'same IP: the estimate is kept');
    assert.ok(port.after.rttMinUs < 20 * MS, 'same IP: the minimum RTT is the old one');
    assert.equal(ip.after.pathChanges, 1);
    assert.equal(port.after.pathChanges, 1);
  });
});
