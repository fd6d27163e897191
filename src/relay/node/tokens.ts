import type { Aead, CryptoProvider } from '../../crypto/provider.js';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AeadCipher } from '../../crypto/provider.js';
import { SESSION_ID_BYTES } from '../protocol.js';

/** The key id in the first byte of a route token (room for a key rotation). */
const TOKEN_KID = 1;
/** The key id field, bytes. */
const TOKEN_KID_BYTES = 1;
/** The expiry field (unix seconds, u32), bytes. */
const TOKEN_EXPIRY_BYTES = 4;
/** The generation field (u32): a session's tokens of older generations are void (it rotated them). */
const TOKEN_GENERATION_BYTES = 4;
/** What a token seals: session id 8 | expiry u32 | generation u32. */
const TOKEN_PLAIN_BYTES = SESSION_ID_BYTES + TOKEN_EXPIRY_BYTES + TOKEN_GENERATION_BYTES;
/** Where the sealed part starts: after the key id and the nonce. */
const TOKEN_SEALED_AT = TOKEN_KID_BYTES + AEAD_NONCE_BYTES;
/** A whole route token: kid 1 | nonce 12 | AES-256-GCM(session id 8 | expiry u32 | generation u32) | tag 16 = 45 bytes. */
export const ROUTE_TOKEN_BYTES = TOKEN_SEALED_AT + TOKEN_PLAIN_BYTES + AEAD_TAG_BYTES;

/**
 * Route tokens (docs/RELAY.md "Route tokens"): a session's name in route strings, sealed under a key only this
 * relay holds (drawn at construction, so a restarted relay's tokens are void). A token holds no client address;
 * nobody but the relay can read or forge one.
 */
export class RouteTokens {
  readonly #p: CryptoProvider;
  readonly #aead: Aead;
  readonly #unixSeconds: () => number;

  /** Draws the token key from `provider`; `unixSeconds` is the wall clock token expiry is checked against. */
  constructor(provider: CryptoProvider, unixSeconds: () => number) {
    this.#p = provider;
    this.#unixSeconds = unixSeconds;
    const key = new Uint8Array(AEAD_KEY_BYTES);
    provider.fillRandom(key);
    this.#aead = provider.aead(AeadCipher.Aes256Gcm, key);
  }

  /** A fresh token for the session `id` (8 bytes) of `generation`, valid until `expiresAtS` (unix seconds). */
  seal(id: Uint8Array, expiresAtS: number, generation: number): Uint8Array {
    const out = new Uint8Array(ROUTE_TOKEN_BYTES);
    out[0] = TOKEN_KID;
    const nonce = out.subarray(TOKEN_KID_BYTES, TOKEN_SEALED_AT);
    this.#p.fillRandom(nonce);
    const plain = new Uint8Array(TOKEN_PLAIN_BYTES);
    plain.set(id);
    const v = new DataView(plain.buffer);
    v.setUint32(SESSION_ID_BYTES, expiresAtS >>> 0);
    v.setUint32(SESSION_ID_BYTES + TOKEN_EXPIRY_BYTES, generation >>> 0);
    this.#aead.seal(nonce, out.subarray(0, TOKEN_KID_BYTES), plain, out, TOKEN_SEALED_AT);
    return out;
  }

  /**
   * The session id a token names (the first {@link SESSION_ID_BYTES} of the result, its generation after the
   * expiry: {@link tokenGeneration}), or null if the token is not one of ours or has expired. Whether that
   * session still exists, and still has that generation, is the session table's question.
   */
  open(token: Uint8Array): Uint8Array | null {
    if (token.length !== ROUTE_TOKEN_BYTES || token[0] !== TOKEN_KID) return null;
    const plain = new Uint8Array(TOKEN_PLAIN_BYTES);
    if (this.#aead.open(token.subarray(TOKEN_KID_BYTES, TOKEN_SEALED_AT), token.subarray(0, TOKEN_KID_BYTES), token.subarray(TOKEN_SEALED_AT), plain, 0) !== TOKEN_PLAIN_BYTES) return null;
    if (new DataView(plain.buffer).getUint32(SESSION_ID_BYTES) <= this.#unixSeconds()) return null;
    return plain;
  }
}

/** The generation of an opened token (the result of {@link RouteTokens.open}). */
export function tokenGeneration(plain: Uint8Array): number {
  return new DataView(plain.buffer, plain.byteOffset).getUint32(SESSION_ID_BYTES + TOKEN_EXPIRY_BYTES);
}
