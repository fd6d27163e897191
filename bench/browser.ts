// `npm run bench:browser`: what the browser build costs, next to Node's own path measured in the same run.
// 1. Crypto: seal and open (ns per call, median of 5 rounds) of 64 B and 1200 B packets through the browser
//    provider (@noble, pure JS: ChaCha20-Poly1305 and AES-256-GCM) and node:crypto's AES-256-GCM; X25519,
//    Ed25519 sign and verify (operations/s).
// 2. Through one relay on 127.0.0.1: a NetworkManager of the browser build (browserRuntime: the WebSocket
//    gateway, the `ws` package standing in for the browser's WebSocket; or the WebRTC gateway, node-datachannel's
//    RTCPeerConnection standing in for the browser's; @noble) to a NetworkManager on UDP, against the same
//    pair with both on UDP: the round trip of a 100 B reliable message (median and p99 of
//    BENCH_PINGS, default 2000, one at a time), and 100 B reliable messages/s one way for BENCH_SECONDS (default 3).
// 3. In headless Chromium (when it is installed): the same crypto in the page, with WebCrypto's AES-256-GCM
//    (a promise per call) beside @noble's, and the round trip from a page on the browser build, through each
//    gateway (the page's own WebSocket, its own RTCPeerConnection), to a NetworkManager on UDP in this process
//    that echoes (BENCH_PINGS, serviced every task).
// Both peers and the relay share this machine's two cores (in 2, one process): a browser and a server would not.
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { NetworkManager } from '../src/api/network-manager.js';
import { NobleCryptoProvider } from '../src/crypto/noble-provider.js';
import { NodeCryptoProvider } from '../src/crypto/node-provider.js';
import { AeadCipher, type CryptoProvider } from '../src/crypto/provider.js';
import { browserRuntime } from '../src/io/browser/runtime.js';
import type { WebSocketLike } from '../src/io/browser/websocket-transport.js';
import { RelayServer } from '../src/io/relay-server.js';
import { aeadRound } from './aead.js';
import { addressKey } from '../src/relay/protocol.js';
import { browserSkip, launch, relayWithGateway, serve } from '../test/browser/support.js';
import { loopbackPeerConnection as rtcPeerConnection, releaseWebRtc } from '../test/support/webrtc.js';

const PINGS = Number(process.env['BENCH_PINGS'] ?? 2000);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');


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
        const [s, o] = aeadRound(p, c, size, n);
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

async function pathBench(kind: 'ws' | 'webrtc' | 'udp'): Promise<{ rtt: number[]; perSec: number }> {
  const relay = RelayServer.open({ open: true, gateways: { ws: { port: 0 }, webrtc: { port: 0 } } });
  const ws = await (relay.wsGateway as NonNullable<typeof relay.wsGateway>).listening;
  const rtc = await (relay.webrtcGateway as NonNullable<typeof relay.webrtcGateway>).listening;
  const key = addressKey(relay.local);
  const webSocket = (url: string): WebSocketLike => new WebSocket(url) as unknown as WebSocketLike;
  const runtime =
    kind === 'ws'
      ? browserRuntime({ gateways: { [key]: `ws://${addressKey(ws)}/` }, webSocket })
      : kind === 'webrtc'
        ? browserRuntime({ transport: 'webrtc', gateways: { [key]: `http://${addressKey(rtc)}/` }, rtcPeerConnection })
        : null;
  const a = runtime ? new NetworkManager({ relays: [relay.address], runtime }) : new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
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
for (const kind of ['udp', 'ws', 'webrtc'] as const) {
  const r = await pathBench(kind);
  const label = { ws: 'browser build over the ws gateway -> UDP', webrtc: 'browser build over the webrtc gateway -> UDP', udp: 'UDP -> UDP (the same relay)' }[kind];
  console.log(`   ${label.padEnd(46)} rtt ${fmt(median(r.rtt)).padStart(6)} / ${fmt(pct(r.rtt, 0.99)).padStart(6)} µs   ${fmt(r.perSec).padStart(8)} msg/s`);
}
async function chromiumBench(): Promise<void> {
  if (browserSkip()) return;
  const browser = await launch();
  const site = await serve();
  type Api = Record<string, (...a: unknown[]) => unknown>;
  const open = async (): Promise<<T>(fn: string, ...args: unknown[]) => Promise<T>> => {
    const page = await browser.newPage();
    await page.goto(`${site.url}/test/browser/page.html`);
    await page.waitForFunction(() => (globalThis as { netlaneTest?: { ready: boolean } }).netlaneTest?.ready === true);
    return <T>(fn: string, ...args: unknown[]): Promise<T> => page.evaluate(([f, a]) => ((globalThis as never as { netlaneTest: Api }).netlaneTest[f as string] as (...x: unknown[]) => T)(...(a as unknown[])), [fn, args] as const) as Promise<T>;
  };
  try {
    const c = await (await open())<Record<string, number>>('cryptoBench', 2000);
    console.log('\n3. in headless Chromium (ns per seal + open)');
    for (const [k, v] of Object.entries(c)) console.log(`   ${k.padEnd(40)} ${fmt(v).padStart(9)}`);
    for (const kind of ['ws', 'webrtc'] as const) {
      const r = await pagePath(await open(), kind);
      console.log(`   page -> ${kind} gateway -> UDP peer, 100 B reliable: round trip median ${fmt(median(r.rtt))} µs, p99 ${fmt(pct(r.rtt, 0.99))} µs (${r.rtt.length} pings); ${fmt(r.perSec)} msg/s one way`);
    }
  } finally {
    await site.close();
    await browser.close();
  }
}

/** A page on the browser build through gateway `kind` to an echoing NetworkManager on UDP: round trips, then one-way messages/s. */
async function pagePath(call: <T>(fn: string, ...args: unknown[]) => Promise<T>, kind: 'ws' | 'webrtc'): Promise<{ rtt: number[]; perSec: number }> {
  const { relay, url } = await relayWithGateway(kind);
  const echo = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
  try {
    const gateways = { [addressKey(relay.local)]: url };
    const started = await call<{ peerId: string; route: string }>('start', { relays: [relay.address], gateways, transport: kind === 'ws' ? 'websocket' : 'webrtc', config: {} });
    await spin([echo], () => echo.route !== null, 5000, 'route');
    const pageId = BigInt(started.peerId);
    echo.openPeer(pageId, started.route);
    echo.openChannel(pageId, 1, true);
    let bulk = 0;
    echo.on('message', (_p, ch, d) => {
      if (ch === 1 && d[0] === 1) echo.sendMessage(pageId, 1, d);
      else if (ch === 1 && d[0] === 2) bulk++;
    });
    await call('open', echo.getPeerId().toString(), echo.route);
    let connected = false;
    let asking = false;
    await spin(
      [echo],
      () => {
        if (!asking && !connected) {
          asking = true;
          void call<boolean>('connected', echo.getPeerId().toString()).then((c) => {
            connected = c;
            asking = false;
          });
        }
        return connected && echo.peerStatus(pageId)?.connected === true;
      },
      10_000,
      'the page connected',
    );
    let rtt: number[] | null = null;
    void call<number[]>('pingpong', echo.getPeerId().toString(), PINGS).then((r) => (rtt = r));
    await spin([echo], () => rtt !== null, 60_000, 'page round trips');
    // One way: the page keeps its queue topped up for BENCH_SECONDS; what arrives after its first half second counts.
    let t0 = 0;
    let from = 0;
    let ms: number | null = null;
    void call<number>('bulk', echo.getPeerId().toString(), SECONDS * 1000 + 500).then((m) => (ms = m));
    const start = performance.now();
    await spin(
      [echo],
      () => {
        if (t0 === 0 && performance.now() - start >= 500) {
          t0 = performance.now();
          from = bulk;
        }
        return ms !== null;
      },
      SECONDS * 1000 + 10_000,
      'the page\'s one-way run',
    );
    const perSec = (bulk - from) / ((performance.now() - t0) / 1000);
    await call('close');
    return { rtt: rtt as unknown as number[], perSec };
  } finally {
    echo.close();
    relay.close();
  }
}
await chromiumBench();

// The pings' WebSocket client sockets close asynchronously, and node-datachannel holds the process until its cleanup().
releaseWebRtc();
process.exit(0);
