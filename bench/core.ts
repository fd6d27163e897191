// `npm run bench:core`: throughput of the sans-IO core alone. Two connected Endpoints in one process,
// datagrams handed across in memory, no sockets; encrypted (AES-256-GCM, the default) and, for
// reference, with `Unencrypted` negotiated by both sides. Reports messages per
// second for 100-byte reliable and unreliable messages and MB/s for 64 KiB reliable messages, next to a
// baseline measured in the same run (copying the same bytes through a plain array queue), because
// absolute numbers on a shared machine drift.
import { Endpoint } from '../src/core/endpoint.js';
import { ConnectionState, SendFlags, type ReceivedMessage, type SocketAddress } from '../src/core/types.js';
import { SeededRng } from '../src/util/rng.js';
import { SecureHandshake } from '../src/crypto/handshake.js';
import { NodeCryptoProvider } from '../src/crypto/node-provider.js';

const provider = new NodeCryptoProvider();
const A: SocketAddress = { address: '127.0.0.1', port: 1 };
const B: SocketAddress = { address: '127.0.0.1', port: 2 };

function nowUs(): number {
  return Math.round(performance.now() * 1000);
}

function pair(encrypted: boolean): { a: Endpoint; b: Endpoint; ca: number; cb: number } {
  const cfg = { Unencrypted: encrypted ? 0 : 3, SendRateMin: 0x10000000, SendRateMax: 0x10000000, SendBufferSize: 16 * 1024 * 1024, RecvBufferSize: 64 * 1024 * 1024, RecvBufferMessages: 1_000_000, RecvMaxMessageSize: 1 << 20 };
  const a = new Endpoint({ rng: new SeededRng(1), config: cfg, handshake: new SecureHandshake({ provider }) });
  const b = new Endpoint({ rng: new SeededRng(2), config: cfg, listen: true, handshake: new SecureHandshake({ provider }) });
  const ca = a.connect(nowUs(), B);
  let cb = 0;
  for (let i = 0; i < 100 && (a.state(ca) !== ConnectionState.Connected || cb === 0); i++) {
    pump(a, b);
    for (let e = b.pollEvent(); e; e = b.pollEvent()) {
      if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) {
        cb = e.connection;
        b.accept(nowUs(), cb);
      }
    }
    while (a.pollEvent()) {
      /* drain */
    }
  }
  if (a.state(ca) !== ConnectionState.Connected) throw new Error('bench: handshake failed');
  return { a, b, ca, cb };
}

/** Moves every pending datagram across both ways and fires due timers. Returns datagrams moved. */
function pump(a: Endpoint, b: Endpoint): number {
  let n = 0;
  const now = nowUs();
  a.handleTimeout(now);
  b.handleTimeout(now);
  for (let t = a.pollTransmit(now); t; t = a.pollTransmit(now)) {
    b.handleDatagram(now, A, t.data);
    n++;
  }
  for (let t = b.pollTransmit(now); t; t = b.pollTransmit(now)) {
    a.handleDatagram(now, B, t.data);
    n++;
  }
  return n;
}

function runMessages(size: number, flags: number, total: number, encrypted: boolean): { perSec: number; delivered: number; datagrams: number } {
  const { a, b, ca, cb } = pair(encrypted);
  const msg = new Uint8Array(size).fill(7);
  const out: ReceivedMessage[] = [];
  let sent = 0;
  let delivered = 0;
  let datagrams = 0;
  const t0 = performance.now();
  const deadline = t0 + 20_000;
  while (delivered < total && performance.now() < deadline) {
    const now = nowUs();
    // Keep about 2000 messages queued.
    while (sent < total && sent - delivered < 2000) {
      if (a.send(now, ca, msg, flags) < 0) break;
      sent++;
    }
    a.flush(now, ca);
    const moved = pump(a, b);
    datagrams += moved;
    out.length = 0;
    while (b.receive(cb, out, 4096) > 0) {
      delivered += out.length;
      out.length = 0;
    }
    // Unreliable messages may be dropped: stop once everything was sent and the link went quiet.
    if (flags === SendFlags.Unreliable && sent === total && moved === 0 && a.status(now, ca)!.pendingUnreliable === 0) break;
  }
  const dt = (performance.now() - t0) / 1000;
  return { perSec: delivered / dt, delivered, datagrams };
}

function baselineCopies(size: number, total: number): number {
  // The floor: copy each message into a queue and out again, which any message library must do.
  const msg = new Uint8Array(size).fill(7);
  const q: Uint8Array[] = [];
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    q.push(msg.slice());
    if (q.length >= 1000) {
      for (const m of q) sink += m.slice()[0] as number;
      q.length = 0;
    }
  }
  if (sink < 0) console.log(sink);
  return total / ((performance.now() - t0) / 1000);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const N = Number(process.env['BENCH_MESSAGES'] ?? 1_000_000);
console.log(`netlane core benchmark (node ${process.version}, ${N.toLocaleString('en-US')} messages per case, no I/O)`);
const base = baselineCopies(100, N);
console.log(`baseline: copy a 100 B message in and out of a queue     ${fmt(base)} msg/s`);
for (const encrypted of [true, false]) {
  const label = encrypted ? 'AES-256-GCM' : 'unencrypted';
  const rel = runMessages(100, SendFlags.Reliable, N, encrypted);
  console.log(`${label}: 100 B reliable   ${fmt(rel.perSec)} msg/s  (${(rel.perSec / base).toFixed(3)} x baseline, ${fmt(rel.datagrams)} datagrams)`);
  const unrel = runMessages(100, SendFlags.Unreliable, N, encrypted);
  console.log(`${label}: 100 B unreliable ${fmt(unrel.perSec)} msg/s  (${(unrel.perSec / base).toFixed(3)} x baseline, ${fmt(unrel.delivered)} of ${fmt(N)} delivered)`);
  const bigN = Math.max(200, Math.round(N / 500));
  const big = runMessages(65536, SendFlags.Reliable, bigN, encrypted);
  console.log(`${label}: 64 KiB reliable  ${((big.perSec * 65536) / 1e6).toFixed(1)} MB/s (${fmt(big.perSec)} msg/s)`);
}
