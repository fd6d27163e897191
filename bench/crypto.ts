// `npm run bench:crypto`: the cost of packet protection and of handshakes, each next to a baseline
// measured in the same run (absolute numbers drift on a shared machine).
// 1. Seal and open, timed apart, of 64 B and 1200 B packets through each provider's AEAD: node:crypto
//    AES-256-GCM and ChaCha20-Poly1305, and sodium-native ChaCha20-Poly1305 when it is installed (it is an
//    optional dependency); alternating rounds, median of 7, in ns per call.
// 2. Seal + open of a 1200 B packet through netlane's SessionKeys (nonce, AAD, key-phase logic, copies)
//    against raw node:crypto doing the same AES-256-GCM calls, alternating rounds; median of 7.
// 3. Full handshakes per second on one core: two Endpoints in memory, HELLO to Connected, in sequence.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Endpoint } from '../src/core/endpoint.js';
import { ConnectionState, type SocketAddress } from '../src/core/types.js';
import { SecureHandshake } from '../src/crypto/handshake.js';
import { NodeCryptoProvider } from '../src/crypto/node-provider.js';
import { SodiumCryptoProvider } from '../src/crypto/sodium-provider.js';
import { SessionKeys } from '../src/crypto/protection.js';
import { AeadCipher, type CryptoProvider } from '../src/crypto/provider.js';
import { SeededRng } from '../src/util/rng.js';
import { aeadRound } from './aead.js';

const provider = new NodeCryptoProvider();
const SIZE = 1200;
const N = Number(process.env['BENCH_PACKETS'] ?? 50_000);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function rawRound(): number {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const aad = Buffer.alloc(7, 0x80);
  const pt = randomBytes(SIZE - 7 - 16);
  const out = Buffer.alloc(SIZE);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    iv.writeUInt32BE(i, 8);
    const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    c.setAAD(aad);
    const ct = c.update(pt);
    c.final();
    out.set(ct);
    out.set(c.getAuthTag(), ct.length);
    const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    d.setAuthTag(out.subarray(ct.length, ct.length + 16));
    d.setAAD(aad);
    d.update(out.subarray(0, ct.length));
    d.final();
  }
  return N / ((performance.now() - t0) / 1000);
}

function netlaneRound(p: CryptoProvider, cipher: AeadCipher): number {
  const s1 = randomBytes(32);
  const s2 = randomBytes(32);
  const a = new SessionKeys(p, cipher, s1, s2, 1 << 22);
  const b = new SessionKeys(p, cipher, s2, s1, 1 << 22);
  const hdr = new Uint8Array(7).fill(0x80);
  const buf = new Uint8Array(SIZE);
  const plainLen = SIZE - 7 - 16;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    buf.fill(1, 7, 7 + plainLen);
    const n = a.seal(i, hdr, buf.subarray(7, 7 + plainLen), buf, 7);
    if (!b.open(i, hdr, buf.subarray(7, 7 + n))) throw new Error('bench: open failed');
  }
  return N / ((performance.now() - t0) / 1000);
}

const A: SocketAddress = { address: '127.0.0.1', port: 1 };
const B: SocketAddress = { address: '127.0.0.1', port: 2 };

/** Returns [handshakes/s counting both sides, handshakes/s of the server's share of the work]. */
function handshakes(count: number): [number, number] {
  const server = new Endpoint({ rng: new SeededRng(2), listen: true, handshake: new SecureHandshake({ provider }), maxConnections: count + 10, maxConnectionsPerAddress: count + 10 });
  const client = new Endpoint({ rng: new SeededRng(1), handshake: new SecureHandshake({ provider }) });
  let now = 1;
  let serverMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const c = client.connect(now, B);
    for (let k = 0; k < 10 && client.state(c) !== ConnectionState.Connected; k++) {
      const sent: Uint8Array[] = [];
      for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now)) sent.push(t.data);
      const s0 = performance.now();
      for (const d of sent) server.handleDatagram(now, A, d);
      for (let e = server.pollEvent(); e; e = server.pollEvent()) if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) server.accept(now, e.connection);
      const back: Uint8Array[] = [];
      for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now)) back.push(t.data);
      serverMs += performance.now() - s0;
      for (const d of back) client.handleDatagram(now, B, d);
      now += 10;
    }
    if (client.state(c) !== ConnectionState.Connected) throw new Error('bench: handshake failed');
    while (client.pollEvent()) {
      /* drain */
    }
  }
  return [count / ((performance.now() - t0) / 1000), count / (serverMs / 1000)];
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const sodium = SodiumCryptoProvider.load();
console.log(`netlane crypto benchmark (node ${process.version}; providers: ${provider.name}; ${sodium ? sodium.name : 'sodium-native not installed'})`);


const cases: { label: string; p: CryptoProvider; cipher: AeadCipher }[] = [
  { label: 'node:crypto   AES-256-GCM      ', p: provider, cipher: AeadCipher.Aes256Gcm },
  { label: 'node:crypto   ChaCha20-Poly1305', p: provider, cipher: AeadCipher.ChaCha20Poly1305 },
];
if (sodium) cases.push({ label: 'sodium-native ChaCha20-Poly1305', p: sodium, cipher: AeadCipher.ChaCha20Poly1305 });
for (const size of [64, 1200]) {
  const seals = cases.map(() => [] as number[]);
  const opens = cases.map(() => [] as number[]);
  for (const c of cases) aeadRound(c.p, c.cipher, size, 5000); // warm-up
  for (let r = 0; r < 7; r++) {
    cases.forEach((c, i) => {
      const [s, o] = aeadRound(c.p, c.cipher, size, N);
      seals[i]?.push(s);
      opens[i]?.push(o);
    });
  }
  const base = median(seals[0] ?? []) + median(opens[0] ?? []);
  cases.forEach((c, i) => {
    const s = median(seals[i] ?? []);
    const o = median(opens[i] ?? []);
    console.log(`${String(size).padStart(4)} B  ${c.label}  seal ${fmt(s).padStart(5)} ns  open ${fmt(o).padStart(5)} ns  = ${(base / (s + o)).toFixed(2)} x node:crypto AES-256-GCM`);
  });
}

rawRound();
netlaneRound(provider, AeadCipher.Aes256Gcm); // warm-up
const raw: number[] = [];
const ours: number[] = [];
const chacha: number[] = [];
const fast: number[] = [];
for (let r = 0; r < 7; r++) {
  raw.push(rawRound());
  ours.push(netlaneRound(provider, AeadCipher.Aes256Gcm));
  chacha.push(netlaneRound(provider, AeadCipher.ChaCha20Poly1305));
  if (sodium) fast.push(netlaneRound(sodium, AeadCipher.ChaCha20Poly1305));
}
const rm = median(raw);
const om = median(ours);
console.log(`1200 B packets seal+open, ${N.toLocaleString('en-US')} per round:`);
console.log(`raw node:crypto AES-256-GCM seal+open                ${fmt(rm)} packets/s (min ${fmt(Math.min(...raw))}, max ${fmt(Math.max(...raw))})`);
console.log(`netlane SessionKeys AES-256-GCM (node:crypto)        ${fmt(om)} packets/s (min ${fmt(Math.min(...ours))}, max ${fmt(Math.max(...ours))}) = ${(om / rm).toFixed(3)} x raw`);
console.log(`netlane SessionKeys ChaCha20-Poly1305 (node:crypto)  ${fmt(median(chacha))} packets/s = ${(median(chacha) / rm).toFixed(3)} x raw AES`);
if (sodium) console.log(`netlane SessionKeys ChaCha20-Poly1305 (sodium-native) ${fmt(median(fast))} packets/s (min ${fmt(Math.min(...fast))}, max ${fmt(Math.max(...fast))}) = ${(median(fast) / rm).toFixed(3)} x raw AES`);
handshakes(50);
const both: number[] = [];
const serverOnly: number[] = [];
for (let r = 0; r < 5; r++) {
  const [b, s] = handshakes(400);
  both.push(b);
  serverOnly.push(s);
}
console.log(`handshakes, server side on one core      ${fmt(median(serverOnly))}/s (min ${fmt(Math.min(...serverOnly))}, max ${fmt(Math.max(...serverOnly))})`);
console.log(`handshakes, client and server together   ${fmt(median(both))}/s (min ${fmt(Math.min(...both))}, max ${fmt(Math.max(...both))})`);
