// Relay forwarding: netlane's relay node against a naive dgram forwarder, each in its own process.
//
//   node dist/bench/suite/relay.js forwarder naive|netlane     prints "READY <port>", forwards until killed
//   node dist/bench/suite/relay.js forwarder fleet <redis url>  a netlane relay in the fleet of that Redis
//   node dist/bench/suite/relay.js load <port> naive|netlane <size> <ms>   prints "RESULT <json>"
//   node dist/bench/suite/relay.js load <port> two-hop <size> <ms> <key> <port2> <key2>
//   node dist/bench/suite/relay.js directory <port> <key> <port2> <key2> <n>   prints "RESULT <json>"
//
// directory: n sessions on the first relay each register an identity (DIR_REGISTER, signed before the clock
// starts), 64 in flight: registrations answered per second; then 16 sessions on the second relay look the n ids
// up (DIR_LOOKUP, answered from Redis, 256 in flight): lookups answered with the route per second.
// two-hop: A has a session on the first relay, B on the second (two fleet relays, two processes); each asks its
// relay for a link to the other's token with LINK_REMOTE, so every datagram goes A -> relay 1 -> trunk ->
// relay 2 -> B (and back on B's link).
// The load process holds two endpoints, A and B. For netlane it opens two relay sessions (ping, cookie,
// session request) and links them; for the naive forwarder each endpoint says hello and the forwarder
// pairs the first two addresses it sees. Then: (1) ping-pong A -> B -> A through the forwarder, one at a
// time, for the round-trip percentiles; (2) A floods B with a window of 256 datagrams in flight, for
// the forwarded packets per second. Both forwarders get the same datagrams, sizes and window.
import dgram from 'node:dgram';
import { once } from 'node:events';
import { NodeCryptoProvider } from '../../src/crypto/node-provider.js';
import { DirCode, ROUTE_VERSION, RelayMsg, UP_HEADER_BYTES, dirRegisterSigned, encodeRoute, type RelayAddress, type RelayControl } from '../../src/relay/protocol.js';
import { openRedisFleetStore } from '../../src/io/fleet-store.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { HopSession } from '../../src/testing/relay-hop.js';
import { nowUs, quantile } from './common.js';

const [, , role, ...rest] = process.argv;

if (role === 'forwarder') {
  if (rest[0] === 'fleet') {
    const store = await openRedisFleetStore(rest[1] ?? '');
    // Many sessions from one address, and the directory's per-session budgets lifted: this measures the relay's work.
    const relay = RelayServer.open({ address: '127.0.0.1', port: 0, open: true, openKbps: 10_000_000, keepProcessAlive: true, fleet: { store }, openSessionsPerAddress: 1_000_000, openSessionsPerNetwork: 1_000_000, dirRegisterRate: 1_000_000, dirLookupRate: 1_000_000 });
    console.log(`READY ${relay.local.port} ${Buffer.from(relay.publicKey).toString('base64url')}`);
  } else if (rest[0] === 'netlane') {
    // The rate cap is checked per datagram as always, set high enough not to bind: this measures forwarding.
    const relay = RelayServer.open({ address: '127.0.0.1', port: 0, open: true, openKbps: 10_000_000, keepProcessAlive: true });
    console.log(`READY ${relay.local.port} ${Buffer.from(relay.publicKey).toString('base64url')}`);
  } else {
    // The control: every datagram from one of the first two addresses goes to the other, untouched.
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 4 << 20 });
    const peers: { address: string; port: number }[] = [];
    sock.on('message', (msg, r) => {
      let i = peers.findIndex((p) => p.port === r.port && p.address === r.address);
      if (i < 0 && peers.length < 2) i = peers.push({ address: r.address, port: r.port }) - 1;
      const to = peers[1 - i];
      if (i >= 0 && to && msg.length > 1) sock.send(msg, to.port, to.address);
    });
    sock.bind(0, '127.0.0.1', () => console.log(`READY ${sock.address().port}`));
  }
} else if (role === 'directory') {
  const [p1, k1, p2, k2, nS] = rest;
  const key = (k: string | undefined): Uint8Array => new Uint8Array(Buffer.from(k ?? '', 'base64url'));
  console.log(`RESULT ${JSON.stringify(await directory(Number(p1), key(k1), Number(p2), key(k2), Number(nS)))}`);
  process.exit(0);
} else if (role === 'load') {
  const [portS, mode, sizeS, msS, keyS, port2S, key2S] = rest;
  const key = (k: string | undefined): Uint8Array => new Uint8Array(Buffer.from(k ?? '', 'base64url'));
  const second = mode === 'two-hop' ? { port: Number(port2S), key: key(key2S) } : null;
  console.log(`RESULT ${JSON.stringify(await load(Number(portS), mode !== 'naive', Number(sizeS), Number(msS), key(keyS), second))}`);
  process.exit(0);
}

interface End {
  sock: dgram.Socket;
  /** The forwarder's port this end sends to. */
  port: number;
  /**
   * What goes in front of each payload: the hop headers (netlane: each with its own sequence tag, made before
   * the run, back to back in one buffer so that the load keeps no object per header) or, for the naive
   * forwarder, one stand-in of the same size.
   */
  headers: Buffer;
  count: number;
  next: number;
  onData: (d: Buffer) => void;
}

async function end(port: number): Promise<End> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 4 << 20 });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  return { sock, port, headers: Buffer.alloc(UP_HEADER_BYTES), count: 1, next: 0, onData: () => undefined };
}

/** A LINK_REMOTE asked until LINK_OK (the relays may first have to read each other from the registry and open the trunk). */
async function linkRemote(e: End, hop: HopSession, requestId: number, relay: RelayAddress, token: Uint8Array): Promise<number> {
  let answer: RelayControl | null = null;
  const on = (msg: Buffer): void => {
    const m = msg[0] === RelayMsg.SealedDown ? hop.open(msg) : null;
    if (m && (m.type === 'linkOk' || m.type === 'linkFailed') && m.requestId === requestId) answer = m;
  };
  e.sock.on('message', on);
  try {
    for (const end = Date.now() + 10_000; Date.now() < end; ) {
      e.sock.send(hop.seal(hop.linkRemote(requestId, relay, token)), e.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 250));
      const got = answer as RelayControl | null;
      if (got?.type === 'linkOk') return got.linkId;
      if (got?.type === 'linkFailed') throw new Error(`LINK_REMOTE refused: code ${got.code}`);
    }
    throw new Error('no LINK_OK for LINK_REMOTE within 10 s');
  } finally {
    e.sock.off('message', on);
  }
}

/** One control exchange with the relay: send `data`, wait for the first control answer (opened by `hop`). */
async function ask(e: End, port: number, data: Uint8Array, hop: HopSession, accept = false): Promise<RelayControl | 'sessionOk'> {
  const answer = new Promise<RelayControl | 'sessionOk'>((resolve, reject) => {
    const on = (msg: Buffer): void => {
      if (msg[0] === RelayMsg.DataDown) return;
      e.sock.off('message', on);
      if (accept) {
        if (hop.accept(msg)) resolve('sessionOk');
        else reject(new Error('the SESSION_OK does not open with the relay key'));
        return;
      }
      const m = hop.open(msg);
      if (m) resolve(m);
      else reject(new Error('an answer that does not open'));
    };
    e.sock.on('message', on);
  });
  e.sock.send(data, port, '127.0.0.1');
  return answer;
}

async function session(e: End, port: number, relayKey: Uint8Array): Promise<HopSession> {
  const hop = new HopSession(new NodeCryptoProvider(), relayKey);
  const pong = await ask(e, port, hop.ping(), hop);
  if (pong === 'sessionOk' || pong.type !== 'pong') throw new Error('no pong');
  await ask(e, port, hop.request(pong.cookie), hop, true);
  return hop;
}

/** Hop headers for `count` datagrams on `linkId`, each with the next sequence tag, back to back (made before the run, so that the load does not pay for them). */
function headers(hop: HopSession, linkId: number, count: number): Buffer {
  const all = Buffer.alloc(count * UP_HEADER_BYTES);
  for (let i = 0; i < count; i++) hop.headerInto(all.subarray(i * UP_HEADER_BYTES, (i + 1) * UP_HEADER_BYTES), linkId);
  return all;
}

async function load(port: number, netlane: boolean, size: number, ms: number, relayKey: Uint8Array, second: { port: number; key: Uint8Array } | null): Promise<{ pktsPerSec: number; p50: number; p99: number; p999: number; lost: number }> {
  const a = await end(port);
  const b = await end(second?.port ?? port);
  if (second) {
    const sa = await session(a, port, relayKey);
    const sb = await session(b, second.port, second.key);
    // Each permits the other (no answer), then asks its own relay for a link to the other's token on the other relay.
    a.sock.send(sa.seal({ type: 'permit', reset: true, complete: true, peerIds: [sb.peerId] }), port, '127.0.0.1');
    b.sock.send(sb.seal({ type: 'permit', reset: true, complete: true, peerIds: [sa.peerId] }), second.port, '127.0.0.1');
    const la = await linkRemote(a, sa, 1, { address: '127.0.0.1', port: second.port, publicKey: second.key }, sb.token as Uint8Array);
    const lb = await linkRemote(b, sb, 2, { address: '127.0.0.1', port, publicKey: relayKey }, sa.token as Uint8Array);
    a.count = Math.ceil((ms / 1000 + 3) * 150_000);
    a.headers = headers(sa, la, a.count);
    b.count = 40_000;
    b.headers = headers(sb, lb, b.count);
  } else if (netlane) {
    const sa = await session(a, port, relayKey);
    const sb = await session(b, port, relayKey);
    // B permits A (no answer), then each links to the other's token: one link, seen from both sides.
    b.sock.send(sb.seal({ type: 'permit', reset: true, complete: true, peerIds: [sa.peerId] }), port, '127.0.0.1');
    const la = await ask(a, port, sa.seal(sa.linkRequest(1, sb.token as Uint8Array)), sa);
    const lb = await ask(b, port, sb.seal(sb.linkRequest(2, sa.token as Uint8Array)), sb);
    if (la === 'sessionOk' || lb === 'sessionOk' || la.type !== 'linkOk' || lb.type !== 'linkOk') throw new Error('no link');
    // Enough headers for the whole run at well above the rates measured here.
    a.count = Math.ceil((ms / 1000 + 3) * 150_000);
    a.headers = headers(sa, la.linkId, a.count);
    b.count = 40_000;
    b.headers = headers(sb, lb.linkId, b.count);
  } else {
    for (const e of [a, b]) e.headers[0] = RelayMsg.DataUp;
    a.sock.send(a.headers, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 20));
    b.sock.send(b.headers, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 20));
  }
  // What the receiver sees: a 3-byte down header (netlane) or the whole datagram (naive).
  const skip = netlane ? 3 : UP_HEADER_BYTES;
  for (const e of [a, b]) e.sock.on('message', (m: Buffer) => m.length > skip && (!netlane || m[0] === RelayMsg.DataDown) && e.onData(m));
  const payload = Buffer.alloc(size);
  const send = (e: End): void => {
    // A view of the next header (the naive forwarder's one stand-in every time): as cheap as a send of a fixed header.
    const h = e.headers.subarray(e.next * UP_HEADER_BYTES, (e.next + 1) * UP_HEADER_BYTES);
    if (e.next < e.count - 1) e.next++;
    e.sock.send([h, payload], e.port, '127.0.0.1');
  };

  // 1. Ping-pong: A -> B -> A, one at a time.
  const rtts: number[] = [];
  let t0 = 0;
  let pong: (() => void) | null = null;
  b.onData = () => send(b);
  a.onData = () => {
    rtts.push(nowUs() - t0);
    pong?.();
  };
  const ppEnd = Date.now() + Math.min(2000, ms / 2);
  for (let i = 0; i < 20_000 && Date.now() < ppEnd; i++) {
    const got = new Promise<void>((r) => (pong = r));
    t0 = nowUs();
    send(a);
    const timeout = new Promise<void>((r) => setTimeout(r, 200));
    await Promise.race([got, timeout]);
  }
  rtts.splice(0, Math.min(200, rtts.length >> 2)); // warm-up

  // 2. Flood A -> B with a window of 256 datagrams; a window lost to drops is given back after 5 ms of silence.
  let sent = 0;
  let delivered = 0;
  let credit = 256;
  let lastDelivered = 0;
  const pump = (): void => {
    for (let k = 0; k < 64 && credit > 0; k++) {
      send(a);
      sent++;
      credit--;
    }
  };
  b.onData = () => {
    delivered++;
    credit++;
    if (credit >= 64) pump();
  };
  a.onData = () => undefined;
  const kick = setInterval(() => {
    if (delivered === lastDelivered) credit = Math.max(credit, 128);
    lastDelivered = delivered;
    pump();
  }, 5);
  pump();
  await new Promise((r) => setTimeout(r, 300));
  const d0 = delivered;
  const s0 = sent;
  const start = nowUs();
  await new Promise((r) => setTimeout(r, ms));
  const seconds = (nowUs() - start) / 1e6;
  const got = delivered - d0;
  const out = sent - s0;
  clearInterval(kick);
  a.sock.close();
  b.sock.close();
  rtts.sort((x, y) => x - y);
  return { pktsPerSec: Math.round(got / seconds), p50: quantile(rtts, 0.5), p99: quantile(rtts, 0.99), p999: quantile(rtts, 0.999), lost: Math.max(0, 1 - got / Math.max(1, out)) };
}

/** Sends `frames` over `e` with `window` in flight (one answer frees one), and resolves with the seconds until `frames.length` answers came. */
async function windowed(e: End, frames: readonly Uint8Array[], window: number, answered: (msg: Buffer) => boolean): Promise<number> {
  let next = 0;
  let got = 0;
  const t0 = nowUs();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got} of ${frames.length} answered in 30 s`)), 30_000);
    const pump = (): void => {
      while (next < frames.length && next - got < window) e.sock.send(frames[next++] as Uint8Array, e.port, '127.0.0.1');
    };
    e.sock.on('message', (msg: Buffer) => {
      if (!answered(msg)) return;
      if (++got === frames.length) {
        clearTimeout(timer);
        resolve();
      } else pump();
    });
    pump();
  });
  return (nowUs() - t0) / 1e6;
}

async function directory(port: number, key: Uint8Array, port2: number, key2: Uint8Array, n: number): Promise<{ registrationsPerSec: number; lookupsPerSec: number; found: number; n: number }> {
  const provider = new NodeCryptoProvider();
  // Registrations: n sessions on relay 1, from one socket (each answer is one SEALED_DOWN, counted unopened).
  const reg = await end(port);
  const unixSeconds = Math.floor(Date.now() / 1000);
  const frames: Uint8Array[] = [];
  const ids: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const hop = await session(reg, port, key);
    const route = encodeRoute({ version: ROUTE_VERSION, revision: 1, entries: [{ relay: { address: '127.0.0.1', port }, publicKey: key, token: hop.token as Uint8Array }] });
    const signature = provider.sign(hop.identity, dirRegisterSigned(hop.identity.publicKey, unixSeconds, route));
    frames.push(hop.seal({ type: 'dirRegister', requestId: i & 0xffff, unixSeconds, publicKey: hop.identity.publicKey, route, signature }));
    ids.push(hop.peerId);
  }
  const regSeconds = await windowed(reg, frames, 64, (m) => m[0] === RelayMsg.SealedDown);
  reg.sock.close();
  // Lookups: 16 sessions on relay 2 (each on its own socket, so that its answers open with its keys), the n ids round robin.
  const lookers = [];
  for (let i = 0; i < 16; i++) {
    const e = await end(port2);
    lookers.push({ e, hop: await session(e, port2, key2) });
  }
  let found = 0;
  const per = Math.ceil(n / lookers.length);
  const seconds = await Promise.all(
    lookers.map(({ e, hop }, j) => {
      const mine = ids.slice(j * per, (j + 1) * per);
      return windowed(
        e,
        mine.map((peerId, i) => hop.seal({ type: 'dirLookup', requestId: i & 0xffff, peerId })),
        16,
        (msg) => {
          const m = hop.open(msg);
          if (m?.type !== 'dirLookupResult') return false;
          if (m.code === DirCode.Ok) found++;
          return true;
        },
      );
    }),
  );
  for (const { e } of lookers) e.sock.close();
  return { registrationsPerSec: Math.round(n / regSeconds), lookupsPerSec: Math.round(n / Math.max(...seconds)), found, n };
}
