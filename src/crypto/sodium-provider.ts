// The only file of netlane that loads sodium-native (an optional dependency). It is loaded on first use,
// never at import, and a missing or broken package leaves node:crypto doing everything.
import { createRequire } from 'node:module';
import { debuglog } from 'node:util';
import { NetlaneError } from '../util/errors.js';
import { copySecret, region } from '../util/slab.js';
import { NodeCryptoProvider, type NodeCryptoProviderOptions } from './node-provider.js';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AeadCipher, type Aead, type BlockCipher, type CryptoProvider, type KeyExchangePair, type SigningKey } from './provider.js';

/** The part of sodium-native netlane calls (its names; sodium-native 4.x and 5.x). */
interface SodiumApi {
  /** Writes the ciphertext to `c` (may be `m`, in place) and the tag to `mac`. */
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(c: Uint8Array, mac: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  /** Checks the tag at the end of `c` and writes the plaintext to `m`; throws when it does not authenticate. */
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
}

/** The outcome of loading sodium-native: the module, or why not. */
export type SodiumLoad = { readonly ok: true; readonly sodium: SodiumApi } | { readonly ok: false; readonly reason: string };

const log = debuglog('netlane');
const hex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));

/** RFC 8439 section 2.8.2, checked once when the package loads: a binary that gets it wrong is not used. */
function selfTest(s: SodiumApi): string | null {
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('070000004041424344454647');
  const aad = hex('50515253c0c1c2c3c4c5c6c7');
  const m = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
  const c = m.slice();
  const tag = new Uint8Array(AEAD_TAG_BYTES);
  s.crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, tag, c, aad, null, nonce, key);
  const want = '1ae10b594f09e26a7e902ecbd0600691';
  let got = '';
  for (const b of tag) got += b.toString(16).padStart(2, '0');
  return got === want && c[0] === 0xd3 && c[c.length - 1] === 0x16 ? null : `ChaCha20-Poly1305 self-test failed (tag ${got})`;
}

/**
 * Loads a sodium-native module by `specifier` (tests name a missing one) and checks it: the two AEAD
 * functions exist and compute the RFC 8439 vector. Never throws.
 */
export function loadSodium(specifier: string): SodiumLoad {
  try {
    const mod = createRequire(import.meta.url)(specifier) as Partial<SodiumApi> | null;
    if (typeof mod?.crypto_aead_chacha20poly1305_ietf_encrypt_detached !== 'function' || typeof mod.crypto_aead_chacha20poly1305_ietf_decrypt !== 'function') {
      return { ok: false, reason: `${specifier} has no crypto_aead_chacha20poly1305_ietf functions` };
    }
    const sodium = mod as SodiumApi;
    const bad = selfTest(sodium);
    return bad ? { ok: false, reason: bad } : { ok: true, sodium };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { ok: false, reason: (message.split('\n')[0] ?? message).slice(0, 160) };
  }
}

let loaded: SodiumLoad | undefined;

/** sodium-native, loaded on the first call and remembered (a failure too). */
export function sodiumStatus(): SodiumLoad {
  if (!loaded) {
    loaded = loadSodium('sodium-native');
    log(loaded.ok ? 'crypto provider: sodium-native loaded; ChaCha20-Poly1305 runs through it' : `crypto provider: node:crypto only (sodium-native not loaded: ${loaded.reason})`);
  }
  return loaded;
}

/** The tag every seal writes through: the process is one thread and a seal copies it out before it returns. */
const sharedTag = new Uint8Array(AEAD_TAG_BYTES);

/**
 * ChaCha20-Poly1305 (RFC 8439, IETF 96-bit nonce) through libsodium. Seals in place (or copies the
 * plaintext into `out` first), writes the tag through a 16-byte scratch shared by all keys and opens straight into the
 * caller's buffer: no buffer is allocated per call (a typed-array view when `out` is not exactly the
 * plaintext's size). libsodium checks the tag before it decrypts.
 */
class SodiumChaChaAead implements Aead {
  readonly cipher = AeadCipher.ChaCha20Poly1305;
  readonly #s: SodiumApi;
  /** A copy in a shared slab (`copySecret`): a view, not a typed array and buffer of its own. */
  readonly #key: Uint8Array;

  constructor(sodium: SodiumApi, key: Uint8Array) {
    if (key.length !== AEAD_KEY_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `AEAD key must be ${AEAD_KEY_BYTES} bytes, got ${key.length}`);
    this.#s = sodium;
    this.#key = copySecret(key);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number {
    if (nonce.length !== AEAD_NONCE_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `nonce must be ${AEAD_NONCE_BYTES} bytes, got ${nonce.length}`);
    const n = plaintext.length;
    if (!(outOffset >= 0) || outOffset + n + AEAD_TAG_BYTES > out.length) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'output buffer too small for ciphertext and tag');
    let c = plaintext;
    if (plaintext.buffer !== out.buffer || plaintext.byteOffset !== out.byteOffset + outOffset) {
      out.set(plaintext, outOffset); // set() copies through a temporary when the two overlap
      c = region(out, outOffset, n);
    }
    const tag = sharedTag;
    this.#s.crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, tag, c, aad, null, nonce, this.#key);
    const at = outOffset + n;
    for (let i = 0; i < AEAD_TAG_BYTES; i++) out[at + i] = tag[i] as number;
    return n + AEAD_TAG_BYTES;
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array, outOffset: number): number {
    if (nonce.length !== AEAD_NONCE_BYTES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `nonce must be ${AEAD_NONCE_BYTES} bytes, got ${nonce.length}`);
    const n = sealed.length - AEAD_TAG_BYTES;
    if (n < 0) return -1; // too short to hold a full tag: never authenticates
    if (!(outOffset >= 0) || outOffset + n > out.length) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'output buffer too small for plaintext');
    const m = outOffset === 0 && out.length === n ? out : region(out, outOffset, n);
    try {
      this.#s.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, sealed, aad, nonce, this.#key);
    } catch {
      return -1;
    }
    return n;
  }
}

/**
 * {@link CryptoProvider} whose ChaCha20-Poly1305 runs through sodium-native: seal + open cost about a
 * third of node:crypto's AES-256-GCM at 1200 bytes and a fifth at 64 bytes, where node:crypto's per-call
 * cipher setup dominates (`npm run bench:crypto`, docs/BENCHMARKS.md).
 * sodium-native has no AES-256-GCM, and nothing else here is on the packet path, so everything else
 * (AES-256-GCM, X25519, Ed25519, SHA-256, HMAC, HKDF, AES-128 blocks, randomness) is node:crypto's.
 * It prefers ChaCha20-Poly1305. Make one with {@link SodiumCryptoProvider.load}.
 */
export class SodiumCryptoProvider implements CryptoProvider {
  readonly name: string;
  readonly preferredCipher: AeadCipher = AeadCipher.ChaCha20Poly1305;
  readonly #node: NodeCryptoProvider;
  readonly #sodium: SodiumApi;

  /** @internal {@link SodiumCryptoProvider.load} makes one. */
  constructor(sodium: SodiumApi, options: NodeCryptoProviderOptions = {}) {
    this.#sodium = sodium;
    this.#node = new NodeCryptoProvider(options);
    this.name = options.name ?? `sodium-native ChaCha20-Poly1305 + node:crypto${options.fillRandom ? ' (seeded test randomness)' : ''}`;
  }

  /** The provider, or null when sodium-native is not installed or does not load (`NODE_DEBUG=netlane` prints why). */
  static load(options: NodeCryptoProviderOptions = {}): SodiumCryptoProvider | null {
    const s = sodiumStatus();
    return s.ok ? new SodiumCryptoProvider(s.sodium, options) : null;
  }

  fillRandom(out: Uint8Array): void {
    this.#node.fillRandom(out);
  }

  generateKeyExchange(seed?: Uint8Array): KeyExchangePair {
    return this.#node.generateKeyExchange(seed);
  }

  deriveSharedSecret(own: KeyExchangePair, peerPublicKey: Uint8Array): Uint8Array | null {
    return this.#node.deriveSharedSecret(own, peerPublicKey);
  }

  signingKey(seed?: Uint8Array): SigningKey {
    return this.#node.signingKey(seed);
  }

  sign(key: SigningKey, message: Uint8Array): Uint8Array {
    return this.#node.sign(key, message);
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    return this.#node.verify(publicKey, message, signature);
  }

  sha256(...parts: readonly Uint8Array[]): Uint8Array {
    return this.#node.sha256(...parts);
  }

  hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
    return this.#node.hmacSha256(key, ...parts);
  }

  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    return this.#node.hkdf(ikm, salt, info, length);
  }

  aead(cipher: AeadCipher, key: Uint8Array): Aead {
    return cipher === AeadCipher.ChaCha20Poly1305 ? new SodiumChaChaAead(this.#sodium, key) : this.#node.aead(cipher, key);
  }

  blockCipher(key: Uint8Array): BlockCipher {
    return this.#node.blockCipher(key);
  }
}

/**
 * The provider a facade uses when none is given: {@link SodiumCryptoProvider} when sodium-native loads,
 * else {@link NodeCryptoProvider} named `node:crypto (sodium-native not loaded: <reason>)`. With
 * `sodium: false`, node:crypto alone (`NETLANE_CRYPTO=node` in the environment does that for the real runtime).
 */
export function defaultCryptoProvider(options: NodeCryptoProviderOptions & { readonly sodium?: boolean } = {}): CryptoProvider {
  const { sodium = true, ...rest } = options;
  return sodium ? providerFromLoad(sodiumStatus(), rest) : new NodeCryptoProvider(rest);
}

/** @internal The provider for a load outcome: sodium's, or node:crypto named with the reason (tests pass a failed load). */
export function providerFromLoad(load: SodiumLoad, options: NodeCryptoProviderOptions = {}): CryptoProvider {
  if (load.ok) return new SodiumCryptoProvider(load.sodium, options);
  const base = options.fillRandom ? 'node:crypto (seeded test randomness)' : 'node:crypto';
  return new NodeCryptoProvider({ ...options, name: options.name ?? `${base} (sodium-native not loaded: ${load.reason})` });
}
