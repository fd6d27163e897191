// `npm run bench:crypto`: the cost of packet protection and of handshakes, each next to a baseline
// measured in the same run (absolute numbers drift on a shared machine).
// 1. Seal + open of a 1200 B packet through netlane's SessionKeys (nonce, AAD, key-phase logic, copies)
//    against raw node:crypto doing the same AES-256-GCM calls, alternating rounds; median of 7.
// 2. Full handshakes per second on one core: two Endpoints in memory, HELLO to Connected, in sequence.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Endpoint } from '../src/core/endpoint.js';
import { ConnectionState, type SocketAddress } from '../src/core/types.js';
import { SecureHandshake } from '../src/crypto/handshake.js';
import { NodeCryptoProvider } from '../src/crypto/node-provider.js';
import { SessionKeys } from '../src/crypto/protection.js';
import { AeadCipher } from '../src/crypto/provider.js';
import { SeededRng } from '../src/util/rng.js';

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

function netlaneRound(cipher: AeadCipher): number {
  const s1 = randomBytes(32);
  const s2 = randomBytes(32);
  const a = new SessionKeys(provider, cipher, s1, s2, 1 << 22);
  const b = new SessionKeys(provider, cipher, s2, s1, 1 << 22);
  const hdr = new Uint8Array(7).fill(0x80);
  const buf = new Uint8Array(SIZE);
  const plainLen = SIZE - 7 - 16;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    buf.fill(1, 7, 7 + plainLen);
    const n = a.seal(i, hdr, buf.subarray(7), plainLen);
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
console.log(`netlane crypto benchmark (node ${process.version}, ${provider.name}, ${N.toLocaleString('en-US')} packets of ${SIZE} B per round)`);
rawRound();
netlaneRound(AeadCipher.Aes256Gcm); // warm-up
const raw: number[] = [];
const ours: number[] = [];
const chacha: number[] = [];
for (let r = 0; r < 7; r++) {
  raw.push(rawRound());
  ours.push(netlaneRound(AeadCipher.Aes256Gcm));
  chacha.push(netlaneRound(AeadCipher.ChaCha20Poly1305));
}
const rm = median(raw);
const om = median(ours);
console.log(`raw node:crypto AES-256-GCM seal+open  ${fmt(rm)} packets/s (min ${fmt(Math.min(...raw))}, max ${fmt(Math.max(...raw))})`);
console.log(`netlane SessionKeys AES-256-GCM        ${fmt(om)} packets/s (min ${fmt(Math.min(...ours))}, max ${fmt(Math.max(...ours))}) = ${(om / rm).toFixed(3)} x raw`);
console.log(`netlane SessionKeys ChaCha20-Poly1305  ${fmt(median(chacha))} packets/s = ${(median(chacha) / rm).toFixed(3)} x raw AES`);

// An alternative provider, measured side by side when it is installed (it is not a dependency):
//   npm i --no-save sodium-native && npm run bench:crypto
interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array, npub: Uint8Array, k: Uint8Array): number;
}
let sodium: Sodium | null = null;
try {
  const name = 'sodium-native';
  sodium = ((await import(name)) as { default: Sodium }).default;
} catch {
  console.log('sodium-native: not installed (npm i --no-save sodium-native to compare it side by side)');
}
if (sodium) {
  const so = sodium;
  const sodiumRound = (): number => {
    const key = randomBytes(32);
    const nonce = Buffer.alloc(12);
    const ad = Buffer.alloc(7, 0x80);
    const m = Buffer.alloc(SIZE - 7 - 16, 3);
    const c = Buffer.alloc(SIZE - 7);
    const back = Buffer.alloc(SIZE - 7 - 16);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      nonce.writeUInt32BE(i, 8);
      so.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, ad, null, nonce, key);
      so.crypto_aead_chacha20poly1305_ietf_decrypt(back, null, c, ad, nonce, key);
    }
    return N / ((performance.now() - t0) / 1000);
  };
  const sr: number[] = [];
  const rr: number[] = [];
  for (let r = 0; r < 7; r++) {
    rr.push(rawRound());
    sr.push(sodiumRound());
  }
  console.log(`sodium-native ChaCha20-Poly1305 seal+open ${fmt(median(sr))} packets/s = ${(median(sr) / median(rr)).toFixed(2)} x raw node:crypto AES-256-GCM (${fmt(median(rr))}) in the same rounds`);
}
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
