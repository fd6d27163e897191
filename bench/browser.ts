// `npm run bench:browser`: what the browser build costs, next to Node's own path measured in the same run.
// 1. Crypto: seal and open (ns per call, median of 5 rounds) of 64 B and 1200 B packets through the browser
//    provider (@noble, pure JS: ChaCha20-Poly1305 and AES-256-GCM) and node:crypto's AES-256-GCM; X25519,
//    Ed25519 sign and verify (operations/s).
// 2. Through one relay on 127.0.0.1: a NetworkManager of the browser build (browserRuntime: the WebSocket
//    gateway, @noble; the `ws` package stands in for the browser's WebSocket) to a NetworkManager on UDP,
//    against the same pair with both on UDP: the round trip of a 100 B reliable message (median and p99 of
//    BENCH_PINGS, default 2000, one at a time), and 100 B reliable messages/s one way for BENCH_SECONDS (default 3).
// Both peers and the relay share this one process (and its core): a browser and a server would not.
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { NetworkManager } from '../src/api/network-manager.js';
import { NobleCryptoProvider } from '../src/crypto/noble-provider.js';
import { NodeCryptoProvider } from '../src/crypto/node-provider.js';
import { AeadCipher, type CryptoProvider } from '../src/crypto/provider.js';
import { browserRuntime } from '../src/io/browser/runtime.js';
import type { WebSocketLike } from '../src/io/browser/websocket-transport.js';
import { RelayServer } from '../src/io/relay-server.js';
import { addressKey } from '../src/relay/protocol.js';

const PINGS = Number(process.env['BENCH_PINGS'] ?? 2000);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function aead(p: CryptoProvider, cipher: AeadCipher, size: number, n: number): [number, number] {
  const a = p.aead(cipher, randomBytes(32));
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array(7).fill(0x80);
  const buf = new Uint8Array(size + 16).fill(1);
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    nonce[11] = i & 0xff;
    a.seal(nonce, aad, buf.subarray(0, size), buf, 0);
  }
  const seal = ((performance.now() - t0) * 1e6) / n;
  a.seal(nonce, aad, buf.subarray(0, size), buf, 0);
  const out = new Uint8Array(size);
  t0 = performance.now();
  for (let i = 0; i < n; i++) if (a.open(nonce, aad, buf, out, 0) !== size) throw new Error('bench: open failed');
  return [seal, ((performance.now() - t0) * 1e6) / n];
}

function opsPerSec(n: number, fn: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return n / ((performance.now() - t0) / 1000);
}

function cryptoBench(): void {
  const noble = new NobleCryptoProvider();
  const node = new NodeCryptoProvider();
  console.log('\n1. crypto (ns per call, median of 5 rounds; seal / open)');
  const rows: [string, CryptoProvider, AeadCipher][] = [
    ['@noble ChaCha20-Poly1305', noble, AeadCipher.ChaCha20Poly1305],
    ['@noble AES-256-GCM', noble, AeadCipher.Aes256Gcm],
    ['node:crypto AES-256-GCM', node, AeadCipher.Aes256Gcm],
  ];
  for (const size of [64, 1200]) {
    for (const [label, p, c] of rows) {
      const seals: number[] = [];
      const opens: number[] = [];
      const n = p === noble && c === AeadCipher.Aes256Gcm ? 2000 : 10_000;
      for (let r = 0; r < 5; r++) {
        const [s, o] = aead(p, c, size, n);
        seals.push(s);
        opens.push(o);
      }
      console.log(`   ${String(size).padStart(4)} B  ${label.padEnd(26)} ${fmt(median(seals)).padStart(8)} / ${fmt(median(opens)).padStart(8)}`);
    }
  }
  for (const [label, p] of [['@noble', noble], ['node:crypto', node]] as const) {
    const a = p.generateKeyExchange();
    const b = p.generateKeyExchange();
    const k = p.signingKey();
    const msg = randomBytes(200);
    const sig = p.sign(k, msg);
    const x = opsPerSec(300, () => p.deriveSharedSecret(a, b.publicKey));
    const s = opsPerSec(300, () => p.sign(k, msg));
    const v = opsPerSec(300, () => p.verify(k.publicKey, msg, sig));
    console.log(`   ${label.padEnd(12)} X25519 ${fmt(x)}/s, Ed25519 sign ${fmt(s)}/s, verify ${fmt(v)}/s`);
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Runs both managers' frames every event-loop turn until `done()`; throws after `ms`. */
async function spin(nms: NetworkManager[], done: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!done()) {
    for (const nm of nms) {
      nm.runCallbacks();
      nm.flush();
    }
    if (performance.now() > end) throw new Error(`bench: no ${what} within ${ms} ms`);
    await turn();
  }
}

async function pathBench(kind: 'ws' | 'udp'): Promise<{ rtt: number[]; perSec: number }> {
  const relay = RelayServer.open({ open: true, gateways: { ws: { port: 0 } } });
  const gw = await (relay.wsGateway as NonNullable<typeof relay.wsGateway>).listening;
  const gateways = { [addressKey(relay.local)]: `ws://${addressKey(gw)}/` };
  const webSocket = (url: string): WebSocketLike => new WebSocket(url) as unknown as WebSocketLike;
  const a = kind === 'ws' ? new NetworkManager({ relays: [relay.address], runtime: browserRuntime({ gateways, webSocket }) }) : new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
  const b = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
  const nms = [a, b];
  try {
    await spin(nms, () => a.route !== null && b.route !== null, 5000, 'routes');
    for (const [x, y] of [[a, b], [b, a]] as const) {
      x.openPeer(y.getPeerId(), y.route as string);
      x.openChannel(y.getPeerId(), 1, true);
    }
    await spin(nms, () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 10_000, 'connection');
    const bId = b.getPeerId();
    const aId = a.getPeerId();
    b.on('message', (_p, ch, d) => ch === 1 && d[0] === 1 && b.sendMessage(aId, 1, d));
    let echoed = 0;
    a.on('message', () => echoed++);
    const ping = new Uint8Array(100).fill(1);
    const rtt: number[] = [];
    for (let i = 0; i < PINGS + 100; i++) {
      const want = echoed + 1;
      const t0 = performance.now();
      a.sendMessage(bId, 1, ping);
      await spin(nms, () => echoed >= want, 5000, 'echo');
      if (i >= 100) rtt.push((performance.now() - t0) * 1000);
    }
    // One way: keep the sender's queue topped up; count what arrives after half a second of warm-up.
    let got = 0;
    b.on('message', (_p, ch, d) => ch === 1 && d[0] === 2 && got++);
    const bulk = new Uint8Array(100).fill(2);
    const warm = performance.now() + 500;
    let from = 0;
    let at = 0;
    await spin(
      nms,
      () => {
        for (let k = 0; k < 200 && (a.peerStatus(bId)?.queued ?? 0) < 4000; k++) a.sendMessage(bId, 1, bulk);
        const now = performance.now();
        if (at === 0 && now >= warm) {
          at = now;
          from = got;
        }
        return at > 0 && now - at >= SECONDS * 1000;
      },
      SECONDS * 1000 + 5000,
      'the one-way run',
    );
    const perSec = (got - from) / ((performance.now() - at) / 1000);
    return { rtt, perSec };
  } finally {
    for (const nm of nms) nm.close();
    relay.close();
  }
}

console.log(`netlane browser build benchmark (node ${process.version}, ${PINGS} pings, ${SECONDS} s one way)`);
cryptoBench();
console.log('\n2. through one relay on 127.0.0.1, 100 B reliable messages (round trip µs median / p99; messages/s one way)');
for (const kind of ['udp', 'ws'] as const) {
  const r = await pathBench(kind);
  const label = kind === 'ws' ? 'browser build over the ws gateway -> UDP' : 'UDP -> UDP (the same relay)';
  console.log(`   ${label.padEnd(42)} rtt ${fmt(median(r.rtt)).padStart(6)} / ${fmt(pct(r.rtt, 0.99)).padStart(6)} µs   ${fmt(r.perSec).padStart(8)} msg/s`);
}
// The pings' WebSocket client sockets close asynchronously; nothing else is left to wait for.
process.exit(0);
