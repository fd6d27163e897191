/**
 * The cryptographic primitives netlane uses, behind one interface so that the protocol code never
 * touches a crypto library directly. {@link NodeCryptoProvider} implements it with node:crypto;
 * {@link SodiumCryptoProvider} runs ChaCha20-Poly1305 through the optional sodium-native package and
 * the rest through node:crypto; {@link defaultCryptoProvider} picks between them. Every method checks
 * its inputs and throws {@link NetlaneError} on misuse; network input never reaches a throwing path
 * (AEAD open and signature checks return false / -1 instead).
 */
import { NetlaneError } from '../util/errors.js';

/** An AEAD cipher under one key. Tags are always 16 bytes and nonces always 12 bytes. */
export interface Aead {
  readonly cipher: AeadCipher;
  /**
   * Encrypts `plaintext` with `aad` authenticated, writing ciphertext followed by the 16-byte tag to
   * `out` at `outOffset`. `out` may be `plaintext`'s buffer (in place). Returns the sealed length.
   */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number;
  /**
   * Decrypts `sealed` (ciphertext followed by a 16-byte tag) into `out` at `outOffset`. Returns the
   * plaintext length, or -1 when it does not authenticate (a shorter tag never authenticates); the
   * bytes of `out` it would have written are unspecified then.
   */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array, outOffset: number): number;
}

/**
 * AES-128 on single 16-byte blocks under one key (the relay hop's data sequence tags). Cheap: no nonce,
 * no tag, the cipher object is kept between calls.
 */
export interface BlockCipher {
  /** Encrypts the block at `src[srcAt]` into `dst[dstAt]` (16 bytes each; they may overlap). */
  encrypt(src: Uint8Array, srcAt: number, dst: Uint8Array, dstAt: number): void;
  /** Decrypts the block at `src[srcAt]` into `dst[dstAt]`. */
  decrypt(src: Uint8Array, srcAt: number, dst: Uint8Array, dstAt: number): void;
}

/** Bytes of a {@link BlockCipher} block and key. */
export const BLOCK_BYTES = 16;

/** AEAD ciphers by wire id (docs/WIRE_FORMAT.md "Cipher ids"). */
export const AeadCipher = {
  /** No encryption (debugging only; both sides must ask for it). */
  Null: 1,
  Aes256Gcm: 2,
  ChaCha20Poly1305: 3,
} as const;
export type AeadCipher = (typeof AeadCipher)[keyof typeof AeadCipher];

export const AEAD_TAG_BYTES = 16;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_KEY_BYTES = 32;

/** An X25519 key pair. `privateKey` is opaque to everything but the provider that made it. */
export interface KeyExchangePair {
  readonly publicKey: Uint8Array;
  readonly privateKey: unknown;
}

/** An Ed25519 signing key. `seed` is the 32-byte private seed (RFC 8032). */
export interface SigningKey {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
  readonly privateKey: unknown;
}

/** Options every provider takes. */
export interface CryptoProviderOptions {
  /**
   * Replaces the random source. For deterministic tests only (netlane/testing seeds it); a
   * predictable source makes every key predictable.
   */
  readonly fillRandom?: (out: Uint8Array) => void;
  /** Replaces the provider's name (the fallback of `defaultCryptoProvider` names why sodium-native is not used). */
  readonly name?: string;
}

/** A 32-byte key seed: a copy of `seed` (checked), or fresh bytes from `fill`. Throws ERR_NETLANE_INVALID_ARGUMENT for another length. */
export function seedOrFresh(seed: Uint8Array | undefined, fill: (out: Uint8Array) => void, what: string): Uint8Array {
  if (seed === undefined) {
    const s = new Uint8Array(32);
    fill(s);
    return s;
  }
  if (seed.length !== 32) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `${what} seed must be 32 bytes, got ${seed.length}`);
  return seed.slice();
}

export interface CryptoProvider {
  /** What runs the primitives, for logs: `node:crypto`, `sodium-native ChaCha20-Poly1305 + node:crypto`, or a fallback with its reason. */
  readonly name: string;
  /**
   * The AEAD this provider runs fastest. With `Cipher` = 0 (automatic) the handshake lists it first
   * (docs/WIRE_FORMAT.md "Cipher ids"). Absent: AES-256-GCM.
   */
  readonly preferredCipher?: AeadCipher;
  /** Fills `out` with cryptographically strong random bytes. */
  fillRandom(out: Uint8Array): void;
  /** A fresh X25519 key pair, or the one for a 32-byte private `seed` (a stored key). */
  generateKeyExchange(seed?: Uint8Array): KeyExchangePair;
  /**
   * X25519(own private key, peer public key). Returns null for a peer key that is not 32 bytes, is
   * all-zero or has small order, or when the shared secret is all zero.
   */
  deriveSharedSecret(own: KeyExchangePair, peerPublicKey: Uint8Array): Uint8Array | null;
  /** A fresh Ed25519 key, or the one for `seed` (32 bytes). */
  signingKey(seed?: Uint8Array): SigningKey;
  sign(key: SigningKey, message: Uint8Array): Uint8Array;
  /** Whether `signature` (64 bytes) is `publicKey`'s signature of `message`. Never throws on bad input. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  sha256(...parts: readonly Uint8Array[]): Uint8Array;
  hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array;
  /** HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes. */
  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /** An AEAD under `key` (32 bytes). `AeadCipher.Null` is not an AEAD and is refused. */
  aead(cipher: AeadCipher, key: Uint8Array): Aead;
  /** AES-128 on single blocks under `key` (16 bytes). */
  blockCipher(key: Uint8Array): BlockCipher;
}

/**
 * X25519 public keys of small order (and their encodings with the top bit set, which RFC 7748
 * decoders ignore): a peer sending one of these could force a known shared secret.
 */
const SMALL_ORDER: readonly string[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];
const SMALL_ORDER_BYTES: readonly Uint8Array[] = SMALL_ORDER.map((h) => {
  const b = new Uint8Array(32);
  for (let i = 0; i < 32; i++) b[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return b;
});

/** Whether a 32-byte X25519 public key has small order (compared with the top bit cleared). */
export function isSmallOrderX25519(key: Uint8Array): boolean {
  if (key.length !== 32) return true;
  for (const bad of SMALL_ORDER_BYTES) {
    let diff = ((key[31] as number) & 0x7f) ^ (bad[31] as number);
    for (let i = 0; i < 31; i++) diff |= (key[i] as number) ^ (bad[i] as number);
    if (diff === 0) return true;
  }
  return false;
}

/** Whether every byte is zero (constant time in the length). */
export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i] as number;
  return acc === 0;
}

/** Constant-time comparison of two byte strings of equal length (false if lengths differ). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= (a[i] as number) ^ (b[i] as number);
  return acc === 0;
}
