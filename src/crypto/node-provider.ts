// The only file of netlane that imports node:crypto (sodium-provider.ts loads sodium-native and delegates here).
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, createSecretKey, diffieHellman, randomFillSync, sign, verify, type Cipher, type Decipher, type KeyObject } from 'node:crypto';
import { NetlaneError } from '../util/errors.js';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AeadCipher, BLOCK_BYTES, isAllZero, isSmallOrderX25519, seedOrFresh, type Aead, type BlockCipher, type CryptoProvider, type CryptoProviderOptions, type KeyExchangePair, type SigningKey } from './provider.js';

// PKCS #8 prefixes for a raw 32-byte private key (RFC 8410): lets a seed become a key object.
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

function b64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

const ZERO_SALT = Buffer.alloc(32);
const PLACEHOLDER_X = Buffer.alloc(32).toString('base64url');

/**
 * A private key object from a raw 32-byte seed. A JWK import (about 40 µs) is ten times cheaper than
 * a PKCS #8 import here; Node derives the public half from `d` and ignores `x`. The PKCS #8 path
 * stays as a fallback should a Node version insist on a matching `x`.
 */
function privateFromSeed(crv: 'X25519' | 'Ed25519', seed: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv, d: b64url(seed), x: PLACEHOLDER_X }, format: 'jwk' });
  } catch {
    return createPrivateKey({ key: Buffer.concat([crv === 'X25519' ? X25519_PKCS8 : ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  }
}

function rawPublic(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x as string, 'base64url'));
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

const NODE_CIPHER: Record<number, 'aes-256-gcm' | 'chacha20-poly1305'> = {
  [AeadCipher.Aes256Gcm]: 'aes-256-gcm',
  [AeadCipher.ChaCha20Poly1305]: 'chacha20-poly1305',
};

class NodeAead implements Aead {
  readonly cipher: AeadCipher;
  readonly #name: 'aes-256-gcm' | 'chacha20-poly1305';
  readonly #key: KeyObject;

  constructor(cipher: AeadCipher, key: Uint8Array) {
    const name = NODE_CIPHER[cipher];
    if (!name) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `cipher ${cipher} is not an AEAD`);
    if (key.length !== AEAD_KEY_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `AEAD key must be ${AEAD_KEY_BYTES} bytes, got ${key.length}`);
    this.cipher = cipher;
    this.#name = name;
    this.#key = createSecretKey(asBuffer(key));
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number {
    if (nonce.length !== AEAD_NONCE_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `nonce must be ${AEAD_NONCE_BYTES} bytes, got ${nonce.length}`);
    if (outOffset + plaintext.length + AEAD_TAG_BYTES > out.length) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'output buffer too small for ciphertext and tag');
    // authTagLength is explicit: Node otherwise accepts (and for GCM produces) other tag lengths.
    // (The GCM overload types the options; ChaCha20-Poly1305 takes the same ones.)
    const c = createCipheriv(this.#name as 'aes-256-gcm', this.#key, nonce, { authTagLength: AEAD_TAG_BYTES });
    c.setAAD(aad, { plaintextLength: plaintext.length });
    const ct = c.update(plaintext);
    c.final();
    out.set(ct, outOffset);
    out.set(c.getAuthTag(), outOffset + ct.length);
    return ct.length + AEAD_TAG_BYTES;
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array, outOffset: number): number {
    if (nonce.length !== AEAD_NONCE_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `nonce must be ${AEAD_NONCE_BYTES} bytes, got ${nonce.length}`);
    const n = sealed.length - AEAD_TAG_BYTES;
    if (n < 0) return -1; // too short to hold a full tag: never authenticates
    if (outOffset + n > out.length) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'output buffer too small for plaintext');
    const d = createDecipheriv(this.#name as 'aes-256-gcm', this.#key, nonce, { authTagLength: AEAD_TAG_BYTES });
    d.setAuthTag(sealed.subarray(n));
    d.setAAD(aad, { plaintextLength: n });
    const pt = d.update(sealed.subarray(0, n));
    try {
      d.final();
    } catch {
      return -1;
    }
    out.set(pt, outOffset);
    return n;
  }
}

/** AES-128-ECB without padding, one block per call: the cipher objects live as long as the key. */
class NodeBlockCipher implements BlockCipher {
  readonly #enc: Cipher;
  readonly #dec: Decipher;

  constructor(key: Uint8Array) {
    if (key.length !== BLOCK_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `a block cipher key is ${BLOCK_BYTES} bytes, got ${key.length}`);
    this.#enc = createCipheriv('aes-128-ecb', asBuffer(key), null).setAutoPadding(false);
    this.#dec = createDecipheriv('aes-128-ecb', asBuffer(key), null).setAutoPadding(false);
  }

  encrypt(src: Uint8Array, srcAt: number, dst: Uint8Array, dstAt: number): void {
    dst.set(this.#enc.update(src.subarray(srcAt, srcAt + BLOCK_BYTES)), dstAt);
  }

  decrypt(src: Uint8Array, srcAt: number, dst: Uint8Array, dstAt: number): void {
    dst.set(this.#dec.update(src.subarray(srcAt, srcAt + BLOCK_BYTES)), dstAt);
  }
}

/** Options of {@link NodeCryptoProvider}. */
export type NodeCryptoProviderOptions = CryptoProviderOptions;

/** {@link CryptoProvider} on node:crypto (OpenSSL). */
export class NodeCryptoProvider implements CryptoProvider {
  readonly name: string;
  /** node:crypto builds a cipher per packet either way; its AES-256-GCM is the cheaper of the two (`npm run bench:crypto`). */
  readonly preferredCipher: AeadCipher = AeadCipher.Aes256Gcm;
  readonly #fill: (out: Uint8Array) => void;

  constructor(options: NodeCryptoProviderOptions = {}) {
    this.#fill = options.fillRandom ?? ((out) => randomFillSync(out));
    this.name = options.name ?? (options.fillRandom ? 'node:crypto (seeded test randomness)' : 'node:crypto');
  }

  fillRandom(out: Uint8Array): void {
    this.#fill(out);
  }

  generateKeyExchange(seed?: Uint8Array): KeyExchangePair {
    if (seed !== undefined && seed.length !== 32) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `an X25519 seed is 32 bytes, got ${seed.length}`);
    const own = seed ?? new Uint8Array(32);
    if (!seed) this.#fill(own);
    const privateKey = privateFromSeed('X25519', own);
    if (!seed) own.fill(0);
    return { publicKey: rawPublic(createPublicKey(privateKey)), privateKey };
  }

  deriveSharedSecret(own: KeyExchangePair, peerPublicKey: Uint8Array): Uint8Array | null {
    if (peerPublicKey.length !== 32 || isSmallOrderX25519(peerPublicKey)) return null;
    let secret: Buffer;
    try {
      // A JWK import is an order of magnitude cheaper than SPKI here (measured on the 2-core CI machines).
      const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(peerPublicKey) }, format: 'jwk' });
      secret = diffieHellman({ privateKey: own.privateKey as KeyObject, publicKey: pub });
    } catch {
      return null;
    }
    return isAllZero(secret) ? null : new Uint8Array(secret);
  }

  signingKey(seed?: Uint8Array): SigningKey {
    const s = seedOrFresh(seed, this.#fill, 'an Ed25519');
    const privateKey = privateFromSeed('Ed25519', s);
    return { publicKey: rawPublic(createPublicKey(privateKey)), seed: s, privateKey };
  }

  sign(key: SigningKey, message: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, message, key.privateKey as KeyObject));
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey) }, format: 'jwk' });
      return verify(null, message, pub, signature);
    } catch {
      return false;
    }
  }

  sha256(...parts: readonly Uint8Array[]): Uint8Array {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  }

  hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
    const h = createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  }

  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    if (!(length > 0 && length <= 255 * 32)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `HKDF length must be 1..${255 * 32}`);
    // RFC 5869 on createHmac: a third of hkdfSync's cost for the short outputs the handshake needs.
    const prk = createHmac('sha256', salt.length > 0 ? salt : ZERO_SALT).update(ikm).digest();
    const out = new Uint8Array(length);
    let t: Buffer = Buffer.alloc(0);
    for (let i = 0, o = 0; o < length; i++) {
      t = createHmac('sha256', prk).update(t).update(info).update(new Uint8Array([i + 1])).digest();
      out.set(t.subarray(0, Math.min(32, length - o)), o);
      o += 32;
    }
    prk.fill(0);
    return out;
  }

  aead(cipher: AeadCipher, key: Uint8Array): Aead {
    return new NodeAead(cipher, key);
  }

  blockCipher(key: Uint8Array): BlockCipher {
    return new NodeBlockCipher(key);
  }
}
