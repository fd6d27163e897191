// The crypto provider of the browser build: audited pure-JS primitives (@noble/ciphers, @noble/curves,
// @noble/hashes), randomness from globalThis.crypto.getRandomValues. No node: module, no Buffer: it runs in
// browsers, workers and Node alike. WebCrypto has these primitives but only behind promises, and the
// CryptoProvider interface (the handshake and the per-packet path) is synchronous.
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm, unsafe as aesBlocks } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { NetlaneError } from '../util/errors.js';
import { copySecret } from '../util/slab.js';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AeadCipher, BLOCK_BYTES, isAllZero, isSmallOrderX25519, seedOrFresh, type Aead, type BlockCipher, type CryptoProvider, type CryptoProviderOptions, type KeyExchangePair, type SigningKey } from './provider.js';

/** Most bytes one getRandomValues call fills (the Web Crypto limit). */
const RANDOM_CHUNK = 65_536;

/** Fills `out` from the platform's CSPRNG (`globalThis.crypto.getRandomValues`: browsers, workers, Node 20+). */
export function webRandom(out: Uint8Array): void {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (!c?.getRandomValues) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'globalThis.crypto.getRandomValues is not available');
  for (let at = 0; at < out.length; at += RANDOM_CHUNK) c.getRandomValues(out.subarray(at, Math.min(out.length, at + RANDOM_CHUNK)));
}

function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== AEAD_NONCE_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `nonce must be ${AEAD_NONCE_BYTES} bytes, got ${nonce.length}`);
}

/**
 * ChaCha20-Poly1305 and AES-256-GCM through @noble/ciphers. ChaCha20-Poly1305 seals and opens straight
 * into the caller's buffer (a view per call, no copy); noble's GCM has no output argument, so its result is
 * copied. Open checks the tag before it decrypts.
 */
class NobleAead implements Aead {
  readonly cipher: AeadCipher;
  readonly #key: Uint8Array;

  constructor(cipher: AeadCipher, key: Uint8Array) {
    if (cipher !== AeadCipher.Aes256Gcm && cipher !== AeadCipher.ChaCha20Poly1305) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `cipher ${cipher} is not an AEAD`);
    if (key.length !== AEAD_KEY_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `AEAD key must be ${AEAD_KEY_BYTES} bytes, got ${key.length}`);
    this.cipher = cipher;
    this.#key = copySecret(key);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number {
    checkNonce(nonce);
    const n = plaintext.length;
    if (!(outOffset >= 0) || outOffset + n + AEAD_TAG_BYTES > out.length) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'output buffer too small for ciphertext and tag');
    const dst = out.subarray(outOffset, outOffset + n + AEAD_TAG_BYTES);
    if (this.cipher === AeadCipher.ChaCha20Poly1305) chacha20poly1305(this.#key, nonce, aad).encrypt(plaintext, dst); // copies the plaintext in first (set() survives overlap)
    else dst.set(gcm(this.#key, nonce, aad).encrypt(plaintext));
    return n + AEAD_TAG_BYTES;
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array, outOffset: number): number {
    checkNonce(nonce);
    const n = sealed.length - AEAD_TAG_BYTES;
    if (n < 0) return -1; // too short to hold a full tag: never authenticates
    if (!(outOffset >= 0) || outOffset + n > out.length) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'output buffer too small for plaintext');
    const dst = out.subarray(outOffset, outOffset + n);
    try {
      if (this.cipher === AeadCipher.ChaCha20Poly1305) chacha20poly1305(this.#key, nonce, aad).decrypt(sealed, dst);
      else dst.set(gcm(this.#key, nonce, aad).decrypt(sealed));
    } catch {
      return -1;
    }
    return n;
  }
}

/**
 * AES-128 on single blocks with the key schedules expanded once (noble's low-level block functions, which
 * work in place on an aligned 16-byte block): no allocation per block.
 */
class NobleBlockCipher implements BlockCipher {
  readonly #enc: Uint32Array;
  readonly #dec: Uint32Array;
  /** The block being worked on: aligned, owned, copied in and out. */
  readonly #block = new Uint8Array(BLOCK_BYTES);

  constructor(key: Uint8Array) {
    if (key.length !== BLOCK_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `a block cipher key is ${BLOCK_BYTES} bytes, got ${key.length}`);
    this.#enc = aesBlocks.expandKeyLE(key);
    this.#dec = aesBlocks.expandKeyDecLE(key);
  }

  encrypt(src: Uint8Array, srcAt: number, dst: Uint8Array, dstAt: number): void {
    const b = this.#block;
    b.set(src.subarray(srcAt, srcAt + BLOCK_BYTES));
    aesBlocks.encryptBlock(this.#enc, b);
    dst.set(b, dstAt);
  }

  decrypt(src: Uint8Array, srcAt: number, dst: Uint8Array, dstAt: number): void {
    const b = this.#block;
    b.set(src.subarray(srcAt, srcAt + BLOCK_BYTES));
    aesBlocks.decryptBlock(this.#dec, b);
    dst.set(b, dstAt);
  }
}

/** Options of {@link NobleCryptoProvider}. */
export type NobleCryptoProviderOptions = CryptoProviderOptions;

/**
 * {@link CryptoProvider} on @noble/ciphers, @noble/curves and @noble/hashes (audited, pure JavaScript, no
 * dependencies), for browsers: the same wire bytes as node:crypto for the same keys and nonces
 * (`test/sim/crypto-providers.test.ts`). Pure-JS ChaCha20-Poly1305 is faster than pure-JS AES-256-GCM
 * (docs/BROWSER.md "Crypto"), so it prefers ChaCha20-Poly1305; it still speaks AES-256-GCM to a peer that
 * insists.
 */
export class NobleCryptoProvider implements CryptoProvider {
  readonly name: string;
  readonly preferredCipher: AeadCipher = AeadCipher.ChaCha20Poly1305;
  readonly #fill: (out: Uint8Array) => void;

  constructor(options: NobleCryptoProviderOptions = {}) {
    this.#fill = options.fillRandom ?? webRandom;
    this.name = options.name ?? `@noble (pure JS)${options.fillRandom ? ' (seeded test randomness)' : ''}`;
  }

  fillRandom(out: Uint8Array): void {
    this.#fill(out);
  }

  generateKeyExchange(seed?: Uint8Array): KeyExchangePair {
    const privateKey = seedOrFresh(seed, this.#fill, 'an X25519');
    return { publicKey: x25519.getPublicKey(privateKey), privateKey };
  }

  deriveSharedSecret(own: KeyExchangePair, peerPublicKey: Uint8Array): Uint8Array | null {
    if (peerPublicKey.length !== 32 || isSmallOrderX25519(peerPublicKey)) return null;
    let secret: Uint8Array;
    try {
      secret = x25519.getSharedSecret(own.privateKey as Uint8Array, peerPublicKey);
    } catch {
      return null;
    }
    return isAllZero(secret) ? null : secret;
  }

  signingKey(seed?: Uint8Array): SigningKey {
    const s = seedOrFresh(seed, this.#fill, 'an Ed25519');
    return { publicKey: ed25519.getPublicKey(s), seed: s, privateKey: s };
  }

  sign(key: SigningKey, message: Uint8Array): Uint8Array {
    return ed25519.sign(message, key.seed);
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      // zip215 off: RFC 8032's strict decoding (canonical encodings only), as OpenSSL checks.
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  }

  sha256(...parts: readonly Uint8Array[]): Uint8Array {
    const h = sha256.create();
    for (const p of parts) h.update(p);
    return h.digest();
  }

  hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
    const h = hmac.create(sha256, key);
    for (const p of parts) h.update(p);
    return h.digest();
  }

  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    if (!(length > 0 && length <= 255 * 32)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `HKDF length must be 1..${255 * 32}`);
    // An empty salt is HMAC's zero key, as RFC 5869 asks for a salt not given.
    return hkdf(sha256, ikm, salt, info, length);
  }

  aead(cipher: AeadCipher, key: Uint8Array): Aead {
    return new NobleAead(cipher, key);
  }

  blockCipher(key: Uint8Array): BlockCipher {
    return new NobleBlockCipher(key);
  }
}
