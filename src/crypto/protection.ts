import type { ConnectionKeys } from './types.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AeadCipher, type Aead, type CryptoProvider } from './provider.js';
import { ViewCache, copySecret } from '../util/slab.js';

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);
const LABEL_KEY = enc.encode('netlane key');
const LABEL_IV = enc.encode('netlane iv');
const LABEL_UPDATE = enc.encode('netlane ku');

/** Plaintexts up to this size open into the shared buffer below (a packet is at most 1400 bytes); a larger one gets its own. */
const SHARED_PLAIN_BYTES = 2048;
/**
 * What every session of the process opens into, and the nonce every seal and open computes into: the
 * process is one thread and a plaintext is consumed before the next packet is opened, so no session
 * needs memory of its own for either. The exact-size views are cached, so an open allocates nothing.
 */
const sharedPlain = new ViewCache(SHARED_PLAIN_BYTES);
const sharedNonce = new Uint8Array(AEAD_NONCE_BYTES);

/**
 * Packet protection under one key: an AEAD, and `material` = the IV (bytes 0..11, what {@link packetNonce}
 * reads) then the secret the next key comes from (bytes 12..43). The material is one view into a shared
 * slab, so that a generation costs an object, its AEAD and two views, not three typed arrays of its own.
 */
interface KeyGeneration {
  readonly aead: Aead;
  readonly material: Uint8Array;
}

const IV_BYTES = 12;
const SECRET_BYTES = 32;
/** The IV and the secret of a generation, side by side (see {@link KeyGeneration}). */
const material = new Uint8Array(IV_BYTES + SECRET_BYTES);

function generation(provider: CryptoProvider, cipher: AeadCipher, secret: Uint8Array): KeyGeneration {
  const aead = provider.aead(cipher, provider.hkdf(secret, EMPTY, LABEL_KEY, 32));
  material.set(provider.hkdf(secret, EMPTY, LABEL_IV, IV_BYTES), 0);
  material.set(secret, IV_BYTES);
  const g = { aead, material: copySecret(material) };
  material.fill(0);
  return g;
}

function nextGeneration(provider: CryptoProvider, cipher: AeadCipher, g: KeyGeneration): KeyGeneration {
  return generation(provider, cipher, provider.hkdf(g.material.subarray(IV_BYTES), EMPTY, LABEL_UPDATE, 32));
}

/** nonce = IV xor the packet number as a 64-bit big-endian integer in the last 8 bytes. */
export function packetNonce(out: Uint8Array, iv: Uint8Array, pn: number): Uint8Array {
  const hi = Math.floor(pn / 0x1_0000_0000);
  const lo = pn >>> 0;
  for (let i = 0; i < 4; i++) out[i] = iv[i] as number;
  out[4] = (iv[4] as number) ^ (hi >>> 24);
  out[5] = (iv[5] as number) ^ ((hi >>> 16) & 0xff);
  out[6] = (iv[6] as number) ^ ((hi >>> 8) & 0xff);
  out[7] = (iv[7] as number) ^ (hi & 0xff);
  out[8] = (iv[8] as number) ^ (lo >>> 24);
  out[9] = (iv[9] as number) ^ ((lo >>> 16) & 0xff);
  out[10] = (iv[10] as number) ^ ((lo >>> 8) & 0xff);
  out[11] = (iv[11] as number) ^ (lo & 0xff);
  return out;
}

/**
 * AEAD packet protection with key updates (as QUIC, RFC 9001 section 6). Each direction has a
 * traffic secret; key and IV come from it by HKDF, and a key update replaces it by HKDF of itself.
 * The header's key phase bit says which generation sealed a packet. After `updateAfter` packets
 * under one key, and once the peer has shown (by sending under the current key) that it has it, the
 * sender moves to the next key and flips the bit; the receiver tries the next key for a flipped bit,
 * moves to it when a packet authenticates, and answers by updating its own send key. The previous
 * receive key stays for packets reordered across the update. Nothing changes before a packet
 * authenticates.
 */
export class SessionKeys implements ConnectionKeys {
  readonly overhead = AEAD_TAG_BYTES;
  readonly encrypted = true;
  keyUpdates = 0;
  readonly #provider: CryptoProvider;
  readonly #cipher: AeadCipher;
  readonly #updateAfter: number;
  #send: KeyGeneration;
  #sendPhase = false;
  #sentUnderKey = 0;
  /** The peer has sent under our current send generation, so it holds that key. */
  #peerConfirmed = false;
  #recv: KeyGeneration;
  #recvPhase = false;
  #recvPrev: KeyGeneration | null = null;
  #recvNext: KeyGeneration | null = null;
  /** Lowest packet number seen under the current receive generation. */
  #recvFirstPn = 0;

  constructor(provider: CryptoProvider, cipher: AeadCipher, sendSecret: Uint8Array, recvSecret: Uint8Array, updateAfter: number) {
    this.#provider = provider;
    this.#cipher = cipher;
    this.#updateAfter = Math.max(1, updateAfter);
    this.#send = generation(provider, cipher, sendSecret);
    this.#recv = generation(provider, cipher, recvSecret);
  }

  get sendPhase(): boolean {
    return this.#sendPhase;
  }

  seal(pn: number, header: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number {
    const n = this.#send.aead.seal(packetNonce(sharedNonce, this.#send.material, pn), header, plaintext, out, outOffset);
    if (++this.#sentUnderKey >= this.#updateAfter && this.#peerConfirmed) this.#updateSend();
    return n;
  }

  open(pn: number, header: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    const phase = ((header[0] as number) & 0x40) !== 0;
    let g: KeyGeneration | null;
    if (phase === this.#recvPhase) g = this.#recv;
    else if (pn < this.#recvFirstPn) g = this.#recvPrev;
    else g = this.#recvNext ??= nextGeneration(this.#provider, this.#cipher, this.#recv);
    if (!g || sealed.length < AEAD_TAG_BYTES) return null;
    // A view of exactly the plaintext's size: a provider opens straight into it, and it is what we return.
    const size = sealed.length - AEAD_TAG_BYTES;
    const plain = size <= SHARED_PLAIN_BYTES ? sharedPlain.view(0, size) : new Uint8Array(size);
    const n = g.aead.open(packetNonce(sharedNonce, g.material, pn), header, sealed, plain, 0);
    if (n < 0) return null;
    if (g === this.#recvNext) {
      this.#recvPrev = this.#recv;
      this.#recv = g;
      this.#recvNext = null;
      this.#recvPhase = phase;
      this.#recvFirstPn = pn;
      if (this.#sendPhase !== phase) this.#updateSend(); // the peer started an update: follow it
      this.#peerConfirmed = true;
    } else if (g === this.#recv) {
      if (pn < this.#recvFirstPn) this.#recvFirstPn = pn;
      if (phase === this.#sendPhase) this.#peerConfirmed = true;
    }
    return plain;
  }

  #updateSend(): void {
    this.#send = nextGeneration(this.#provider, this.#cipher, this.#send);
    this.#sendPhase = !this.#sendPhase;
    this.#sentUnderKey = 0;
    this.#peerConfirmed = false;
    this.keyUpdates++;
  }
}

/** No encryption (`Unencrypted`, negotiated by both sides): packets go in the clear, untagged. */
export const NULL_KEYS: ConnectionKeys = Object.freeze({
  overhead: 0,
  sendPhase: false,
  encrypted: false,
  keyUpdates: 0,
  seal: (_pn: number, _header: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number => {
    if (plaintext.buffer !== out.buffer || plaintext.byteOffset !== out.byteOffset + outOffset) out.set(plaintext, outOffset);
    return plaintext.length;
  },
  open: (_pn: number, _header: Uint8Array, sealed: Uint8Array): Uint8Array => sealed,
});

export const CIPHER_NAMES: Readonly<Record<number, string>> = {
  [AeadCipher.Null]: 'none',
  [AeadCipher.Aes256Gcm]: 'AES-256-GCM',
  [AeadCipher.ChaCha20Poly1305]: 'ChaCha20-Poly1305',
};
