import type { SocketAddress } from './types.js';

/**
 * The packet-protection seam. The core seals every data packet's payload with the header as associated
 * data, and opens every received one before reading a frame. The "Secure handshake and packet
 * protection" work supplies AEAD implementations; until then {@link PlaintextHandshake} supplies a
 * null protection with no tag.
 */
export interface PacketProtection {
  /** Bytes the seal adds (the AEAD tag). */
  readonly overhead: number;
  /**
   * Seals `payload` in place. `header` is associated data; `pn` is the full packet number (the nonce).
   * `payload` has `overhead` spare bytes after `length`. Returns the sealed length.
   */
  seal(pn: number, header: Uint8Array, payload: Uint8Array, length: number): number;
  /** Opens `sealed` (a view the caller owns for the call). Returns the plaintext view, or null if it does not authenticate. */
  open(pn: number, header: Uint8Array, sealed: Uint8Array): Uint8Array | null;
}

/** Keys for one connection: one protection per direction. */
export interface ConnectionKeys {
  readonly send: PacketProtection;
  readonly recv: PacketProtection;
}

/** Outcome of a handshake step. A failure closes the connection with `reason`. */
export type HandshakeOutcome<T> = ({ readonly ok: true } & T) | { readonly ok: false; readonly reason: number; readonly debug: string };

/** Client side of one handshake. */
export interface ClientHandshake {
  /** Payload of the CONNECT_REQUEST. */
  readonly requestPayload: Uint8Array;
  /** Checks the server's CONNECT_OK payload and yields the connection keys. */
  finish(serverCid: number, replyPayload: Uint8Array): HandshakeOutcome<{ keys: ConnectionKeys }>;
}

/**
 * The handshake's crypto layer as the core sees it: stateless cookies and the opaque payloads of
 * CONNECT_REQUEST / CONNECT_OK. The protocol version goes in HELLO, CHALLENGE and CONNECT_REQUEST.
 */
export interface HandshakeLayer {
  readonly protocolVersion: number;
  /** Cookie for a HELLO from `from` naming `clientCid` (no state kept). */
  issueCookie(now: number, from: SocketAddress, clientCid: number): Uint8Array;
  /** Whether `cookie` was issued by this endpoint to `from` for `clientCid`, recently. */
  checkCookie(now: number, from: SocketAddress, clientCid: number, cookie: Uint8Array): boolean;
  /** Starts a client handshake for a new connection. */
  startClient(clientCid: number): ClientHandshake;
  /** Server: checks a CONNECT_REQUEST payload; yields the CONNECT_OK payload and the keys. */
  acceptClient(clientCid: number, serverCid: number, requestPayload: Uint8Array): HandshakeOutcome<{ replyPayload: Uint8Array; keys: ConnectionKeys }>;
}

/** Protection that does nothing: plaintext packets, no tag. */
export const NULL_PROTECTION: PacketProtection = Object.freeze({
  overhead: 0,
  seal: (_pn: number, _header: Uint8Array, _payload: Uint8Array, length: number): number => length,
  open: (_pn: number, _header: Uint8Array, sealed: Uint8Array): Uint8Array => sealed,
});

const NULL_KEYS: ConnectionKeys = Object.freeze({ send: NULL_PROTECTION, recv: NULL_PROTECTION });
const EMPTY = new Uint8Array(0);

/**
 * The plaintext handshake the core uses until the secure handshake lands: no keys, empty payloads.
 * Its cookie is a keyed 64-bit mix (not a MAC): it stops naive spoofing in tests; the secure layer
 * replaces it with HMAC-SHA256.
 */
export class PlaintextHandshake implements HandshakeLayer {
  readonly protocolVersion = 1;
  readonly #secret: number;

  /** `secret` keys the cookie (take it from the endpoint's Rng). */
  constructor(secret: number) {
    this.#secret = secret >>> 0;
  }

  issueCookie(now: number, from: SocketAddress, clientCid: number): Uint8Array {
    return this.#cookie(Math.floor(now / 1_000_000) & 0xffff, from, clientCid);
  }

  checkCookie(now: number, from: SocketAddress, clientCid: number, cookie: Uint8Array): boolean {
    if (cookie.length !== 8) return false;
    const tick = ((cookie[0] as number) << 8) | (cookie[1] as number);
    const age = ((Math.floor(now / 1_000_000) & 0xffff) - tick + 0x10000) & 0xffff;
    if (age > 4) return false;
    const expect = this.#cookie(tick, from, clientCid);
    for (let i = 0; i < 8; i++) if (expect[i] !== cookie[i]) return false;
    return true;
  }

  startClient(): ClientHandshake {
    return { requestPayload: EMPTY, finish: () => ({ ok: true, keys: NULL_KEYS }) };
  }

  acceptClient(): HandshakeOutcome<{ replyPayload: Uint8Array; keys: ConnectionKeys }> {
    return { ok: true, replyPayload: EMPTY, keys: NULL_KEYS };
  }

  #cookie(tick: number, from: SocketAddress, clientCid: number): Uint8Array {
    let h1 = this.#secret ^ 0x9e3779b9;
    let h2 = Math.imul(this.#secret, 0x85ebca6b) ^ tick;
    const mix = (v: number): void => {
      h1 = Math.imul(h1 ^ v, 0x01000193) >>> 0;
      h2 = Math.imul((h2 ^ (v << 7)) + h1, 0xc2b2ae35) >>> 0;
    };
    for (let i = 0; i < from.address.length; i++) mix(from.address.charCodeAt(i));
    mix(from.port);
    mix(clientCid);
    mix(tick);
    const out = new Uint8Array(8);
    out[0] = tick >>> 8;
    out[1] = tick;
    out[2] = h1 >>> 24;
    out[3] = h1 >>> 16;
    out[4] = h1 >>> 8;
    out[5] = h2 >>> 24;
    out[6] = h2 >>> 16;
    out[7] = h2 >>> 8;
    return out;
  }
}
