// NetworkingSockets' connection limits in virtual time: per address (IPv4 /32, IPv6 /64) on connections
// pending and live, per listen socket, and as a global value; what a refused client sees (ClosedByPeer,
// 5011, the setting named), the listen socket's counters, and that a refusal is a small CLOSED that costs
// the server no state and no signature check. Over real UDP with the server in its own process:
// test/integration/limits.test.ts. Every test reports its seed (replay: NETLANE_SEED=<seed>).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConfigScope, ConnectionState, EndReason, GetConfigValueResult, type ConfigOptions, type NetworkingSockets, type SocketStats, type StatusChangedInfo } from '../../src/index.js';
import { seededHandshake } from '../../src/testing/crypto.js';
import { decodeControl } from '../../src/wire/control.js';
import { inSim, type SocketsWorld } from '../support/sockets-world.js';

const LIMIT = EndReason.Misc_ConnectionLimit;

/** A listen socket on `ip` (a new IP if none) that accepts each connection while `accepting()` says so; `pending` holds those it did not accept. */
interface Listener {
  readonly sockets: NetworkingSockets;
  readonly listen: number;
  readonly target: string;
  readonly accepted: number[];
  readonly pending: number[];
  /** Signature checks the listen socket's handshake made. */
  verifications(): number;
  stats(): SocketStats;
}

function listener(w: SocketsWorld, options: ConfigOptions = {}, ip?: string, accepting: () => boolean = () => true): Listener {
  const handshake = seededHandshake(w.world.seed + 7);
  const sockets = w.instance({ handshake }, ip);
  const accepted: number[] = [];
  const pending: number[] = [];
  const listen = sockets.createListenSocket('0.0.0.0:27015', {
    ...options,
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      if (info.info.state !== ConnectionState.Connecting) return;
      if (accepting()) {
        assert.equal(sockets.acceptConnection(info.connection), 1);
        accepted.push(info.connection);
      } else pending.push(info.connection);
    },
  });
  assert.notEqual(listen, 0, 'the listen socket opens');
  const addr = sockets.getListenSocketAddress(listen);
  assert.ok(addr);
  const target = addr.address.includes(':') ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
  return { sockets, listen, target, accepted, pending, verifications: () => handshake.verifications, stats: () => sockets.getSocketStats(listen) as SocketStats };
}

/** How the connections of `c` stand: connected, refused (ClosedByPeer with 5011), and the refusals' debug texts. */
function outcome(c: NetworkingSockets, conns: readonly number[]): { connected: number; refused: number; connecting: number; debug: Set<string> } {
  const r = { connected: 0, refused: 0, connecting: 0, debug: new Set<string>() };
  for (const h of conns) {
    const info = c.getConnectionInfo(h);
    if (info?.state === ConnectionState.Connected) r.connected++;
    else if (info?.state === ConnectionState.Connecting) r.connecting++;
    else if (info?.state === ConnectionState.ClosedByPeer && info.endReason === LIMIT) {
      r.refused++;
      r.debug.add(info.endDebug);
    } else assert.fail(`connection ${h} ended otherwise: ${JSON.stringify(info)}`);
  }
  return r;
}

/** Opens `n` connections from `c` to `l` at once and runs until each is connected or refused (and the server's frames ran). */
function open(w: SocketsWorld, c: NetworkingSockets, l: Listener, n: number, into: number[] = []): number[] {
  const made = Array.from({ length: n }, () => c.connect(l.target));
  for (const h of made) assert.notEqual(h, 0);
  into.push(...made);
  w.until(() => outcome(c, made).connecting === 0, 5000, `${n} connections settled`);
  return made;
}

/** Status callbacks of an instance, by connection. */
function recordEvents(c: NetworkingSockets): Map<number, StatusChangedInfo[]> {
  const events = new Map<number, StatusChangedInfo[]>();
  c.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (i: StatusChangedInfo) => {
    const list = events.get(i.connection) ?? [];
    list.push(i);
    events.set(i.connection, list);
  });
  return events;
}

describe('NetworkingSockets limits in virtual time: per address', () => {
  it('defaults: one address opening 300 connections, 16 at a time, holds 256; 44 are refused with 5011 in their status callback; another address still connects; the refusals cost no state, no signature check and no amplification', (t) =>
    inSim(t, 5101, (w) => {
      const l = listener(w);
      assert.deepEqual(l.sockets.getConfigValue('Netlane_MaxConnectionsPerAddress', ConfigScope.ListenSocket, l.listen), { result: GetConfigValueResult.OKInherited, value: 256 });
      assert.deepEqual(l.sockets.getConfigValue('Netlane_MaxPendingPerAddress', ConfigScope.ListenSocket, l.listen), { result: GetConfigValueResult.OKInherited, value: 16 });
      // Every handshake datagram between the server and the attacker's sockets, by socket.
      const attackerIp = '10.0.9.1';
      const handshakes = new Map<number, { type: string; size: number; toServer: boolean }[]>();
      w.world.sim.intercept = (from, to, data) => {
        const client = from.address === attackerIp ? from : to.address === attackerIp ? to : null;
        if (client && ((data[0] as number) & 0x80) === 0) {
          const list = handshakes.get(client.port) ?? [];
          list.push({ type: decodeControl(data).type, size: data.length, toServer: client === from });
          handshakes.set(client.port, list);
        }
        return data;
      };
      const attacker = w.instance({}, attackerIp);
      const events = recordEvents(attacker);
      const conns: number[] = [];
      for (let i = 0; i < 300; i += 16) open(w, attacker, l, Math.min(16, 300 - i), conns);
      const r = outcome(attacker, conns);
      t.diagnostic(`one address opening 300 connections: ${r.connected} established, ${r.refused} refused with ${LIMIT}`);
      assert.equal(r.connected, 256, 'the per-address limit');
      assert.equal(r.refused, 44);
      assert.deepEqual([...r.debug], ['Too many connections from this address (Netlane_MaxConnectionsPerAddress).']);
      const refused = conns.filter((h) => attacker.getConnectionInfo(h)?.state === ConnectionState.ClosedByPeer);
      for (const h of refused) {
        const last = events.get(h)?.at(-1);
        assert.equal(last?.oldState, ConnectionState.Connecting, 'the refused client hears it while connecting');
        assert.equal(last?.info.state, ConnectionState.ClosedByPeer);
        assert.equal(last?.info.endReason, 5011);
      }
      const st = l.stats();
      assert.equal(st.refusedMaxConnectionsPerAddress, 44, 'counted by kind');
      assert.equal(st.refusedMaxPendingPerAddress, 0);
      assert.equal(st.refusedMaxConnections, 0);
      assert.equal(l.accepted.length, 256, 'no status callback, no connection on the server for a refused client');
      assert.equal(l.verifications(), 256, 'no signature check for a refused client');
      // Each refused socket: its CONNECT_REQUEST was answered by one CLOSED, smaller than the request.
      const established = new Set(l.accepted.map((h) => l.sockets.getConnectionInfo(h)?.addressRemote.port));
      let refusedSockets = 0;
      for (const [port, list] of handshakes) {
        if (established.has(port)) continue;
        refusedSockets++;
        const request = list.filter((d) => d.toServer && d.type === 'connectRequest');
        const answers = list.filter((d) => !d.toServer && d.type === 'closed');
        assert.equal(request.length, 1);
        assert.equal(answers.length, 1);
        assert.ok((answers[0]?.size ?? 0) < (request[0]?.size ?? 0), `CLOSED ${answers[0]?.size} B < CONNECT_REQUEST ${request[0]?.size} B`);
        const sent = list.filter((d) => d.toServer).reduce((a, d) => a + d.size, 0);
        const got = list.filter((d) => !d.toServer).reduce((a, d) => a + d.size, 0);
        assert.ok(got < sent, `the refused socket got ${got} B for the ${sent} B it sent`);
      }
      assert.equal(refusedSockets, 44);
      // Someone else is not refused; the attacker still is.
      const other = w.instance();
      assert.deepEqual(outcome(other, open(w, other, l, 1)), { connected: 1, refused: 0, connecting: 0, debug: new Set() });
      assert.equal(outcome(attacker, open(w, attacker, l, 1)).refused, 1);
      // Closing some frees room for as many.
      for (const h of conns.slice(0, 3)) attacker.closeConnection(h);
      w.run(50);
      assert.equal(outcome(attacker, open(w, attacker, l, 4)).connected, 3);
    }));

  it('pending: while the server does not accept, one address holds 16 connections in Connecting; the 4 more of a burst of 20 are refused (Netlane_MaxPendingPerAddress); accepting frees the room', (t) =>
    inSim(t, 5102, (w) => {
      let accepting = false;
      const l = listener(w, {}, undefined, () => accepting);
      const c = w.instance();
      const burst = Array.from({ length: 20 }, () => c.connect(l.target));
      w.until(() => outcome(c, burst).refused === 4 && l.pending.length === 16, 5000, '16 pending, 4 refused');
      const r = outcome(c, burst);
      t.diagnostic(`a burst of 20 from one address to a server that does not accept: ${l.pending.length} pending, ${r.refused} refused`);
      assert.deepEqual([...r.debug], ['Too many pending connections from this address (Netlane_MaxPendingPerAddress).']);
      assert.equal(l.stats().refusedMaxPendingPerAddress, 4);
      assert.equal(l.stats().refusedMaxConnectionsPerAddress, 0);
      for (const h of l.pending) assert.equal(l.sockets.getConnectionInfo(h)?.state, ConnectionState.Connecting);
      assert.equal(outcome(c, open(w, c, l, 1)).refused, 1, 'still full');
      // The application accepts what waits: pending drops to 0 and new connections from the address come in.
      accepting = true;
      for (const h of l.pending.splice(0)) assert.equal(l.sockets.acceptConnection(h), 1);
      w.until(() => outcome(c, burst).connecting === 0, 5000, 'the accepted 16 connected');
      assert.equal(outcome(c, burst).connected, 16);
      assert.equal(outcome(c, open(w, c, l, 5)).connected, 5);
      assert.equal(l.stats().refusedMaxPendingPerAddress, 5, 'the burst and the one refused while full');
    }));

  it('IPv6: two addresses in one /64 share the limit; an address in another /64 has its own', (t) =>
    inSim(t, 5103, (w) => {
      const l = listener(w, { Netlane_MaxConnectionsPerAddress: 4 }, '2001:db8:ff::1');
      const a = w.instance({}, '2001:db8:1:2::10');
      const b = w.instance({}, '2001:db8:1:2:ffff::20');
      const c = w.instance({}, '2001:db8:1:3::30');
      const fromA = outcome(a, open(w, a, l, 3));
      const fromB = outcome(b, open(w, b, l, 3));
      const fromC = outcome(c, open(w, c, l, 3));
      t.diagnostic(`limit 4: 2001:db8:1:2::10 ${fromA.connected}/3 and 2001:db8:1:2:ffff::20 ${fromB.connected}/3 (one /64), 2001:db8:1:3::30 ${fromC.connected}/3`);
      assert.equal(fromA.connected, 3);
      assert.equal(fromB.connected, 1, 'the fourth of the /64');
      assert.equal(fromB.refused, 2);
      assert.equal(fromC.connected, 3, 'another /64');
      assert.equal(l.stats().refusedMaxConnectionsPerAddress, 2);
      assert.equal(l.sockets.getConnectionInfo(l.accepted[3] as number)?.addressRemote.address, '2001:db8:1:2:ffff::20', 'the server sees the address itself');
    }));
});

describe('NetworkingSockets limits in virtual time: connections per listen socket', () => {
  it('Netlane_MaxConnections on a listen socket: 4 of 6 clients on 6 addresses get in, 2 are refused; raising it at ListenSocket scope lets the next in', (t) =>
    inSim(t, 5201, (w) => {
      const l = listener(w, { Netlane_MaxConnections: 4 });
      const clients = Array.from({ length: 6 }, () => w.instance());
      const conns = clients.map((c) => c.connect(l.target));
      w.until(() => clients.every((c, i) => outcome(c, [conns[i] as number]).connecting === 0), 5000, 'six clients settled');
      const states = clients.map((c, i) => outcome(c, [conns[i] as number]));
      const connected = states.filter((s) => s.connected === 1).length;
      t.diagnostic(`Netlane_MaxConnections 4: ${connected} of 6 connected`);
      assert.equal(connected, 4);
      assert.deepEqual(new Set(states.flatMap((s) => [...s.debug])), new Set(['Too many connections (Netlane_MaxConnections).']));
      assert.equal(l.stats().refusedMaxConnections, 2);
      assert.deepEqual(l.sockets.getConfigValue('Netlane_MaxConnections', ConfigScope.ListenSocket, l.listen), { result: GetConfigValueResult.OK, value: 4 });
      assert.equal(l.sockets.setConfigValue('Netlane_MaxConnections', ConfigScope.ListenSocket, l.listen, 0), false, 'at least 1');
      assert.equal(l.sockets.setConfigValue('Netlane_MaxConnections', ConfigScope.Connection, l.accepted[0] as number, 10), false, 'a listen socket value, not a connection value');
      assert.ok(l.sockets.setConfigValue('Netlane_MaxConnections', ConfigScope.ListenSocket, l.listen, 5));
      const late = w.instance();
      assert.equal(outcome(late, open(w, late, l, 1)).connected, 1, 'the raised limit applies at once');
      assert.equal(outcome(late, open(w, late, l, 1)).refused, 1, 'and holds at 5');
    }));

  it('Netlane_MaxConnections as a global value: a listen socket without its own value takes it, one with its own value keeps that', (t) =>
    inSim(t, 5202, (w) => {
      const probe = w.instance();
      assert.ok(probe.setGlobalConfigValue('Netlane_MaxConnections', 3));
      try {
        const global = listener(w);
        const own = listener(w, { Netlane_MaxConnections: 5 });
        assert.deepEqual(global.sockets.getConfigValue('Netlane_MaxConnections', ConfigScope.ListenSocket, global.listen), { result: GetConfigValueResult.OKInherited, value: 3 });
        const tally = (l: Listener): number => {
          const clients = Array.from({ length: 6 }, () => w.instance());
          return clients.reduce((n, c) => n + outcome(c, open(w, c, l, 1)).connected, 0);
        };
        const inGlobal = tally(global);
        const inOwn = tally(own);
        t.diagnostic(`global 3: ${inGlobal} of 6 connected; listen socket's own 5: ${inOwn} of 6`);
        assert.equal(inGlobal, 3);
        assert.equal(inOwn, 5);
        assert.equal(global.stats().refusedMaxConnections, 3);
        assert.equal(own.stats().refusedMaxConnections, 1);
      } finally {
        probe.setGlobalConfigValue('Netlane_MaxConnections', null);
      }
    }));
});
