// What the crypto benchmarks share: the cost of one AEAD's seal and open.
import { randomBytes } from 'node:crypto';
import type { AeadCipher, CryptoProvider } from '../src/crypto/provider.js';

/** ns per seal and per open of `size`-byte plaintexts through one AEAD, `n` calls each. */
export function aeadRound(p: CryptoProvider, cipher: AeadCipher, size: number, n: number): [number, number] {
  const aead = p.aead(cipher, randomBytes(32));
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array(7).fill(0x80);
  const buf = new Uint8Array(size + 16).fill(1);
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    nonce[11] = i & 0xff;
    aead.seal(nonce, aad, buf.subarray(0, size), buf, 0);
  }
  const seal = ((performance.now() - t0) * 1e6) / n;
  buf.fill(2, 0, size);
  aead.seal(nonce, aad, buf.subarray(0, size), buf, 0);
  const out = new Uint8Array(size);
  t0 = performance.now();
  for (let i = 0; i < n; i++) if (aead.open(nonce, aad, buf, out, 0) !== size) throw new Error('bench: open failed');
  const open = ((performance.now() - t0) * 1e6) / n;
  return [seal, open];
}
