import type { CryptoProvider } from '../../crypto/provider.js';
import { bytesEqual } from '../../crypto/provider.js';
import { COOKIE_BYTES } from '../protocol.js';
import { US_PER_S, readU32, writeU32 } from './context.js';

/** A cookie is accepted for this long after the relay gave it, s. */
export const COOKIE_VALID_S = 10;
/** The cookie key rotates this often, s; a cookie made under the previous key is still accepted. */
export const COOKIE_ROTATION_S = 60;
/** The HMAC-SHA256 key of the cookies, bytes. */
const COOKIE_KEY_BYTES = 32;
/** The truncated MAC at the front of a cookie, bytes; the relay's time in seconds (u32) follows it. */
const COOKIE_MAC_BYTES = 16;
/** The time field, in the cookie and in the MAC input, bytes. */
const COOKIE_TIME_BYTES = 4;
/** The port field of the MAC input, bytes. */
const COOKIE_PORT_BYTES = 2;
/** Characters of the address that enter the MAC (an IPv6 literal has at most 45). */
const COOKIE_ADDRESS_MAX_CHARS = 64;

/**
 * Stateless cookies (docs/RELAY.md "Before a session"): a PONG carries `HMAC-SHA256(key, time, port, address)`
 * truncated to 16 bytes, then the relay's time in seconds. A SESSION_REQUEST must return it from the same
 * address within {@link COOKIE_VALID_S}. The relay keeps no state per cookie: only the current and previous key.
 */
export class CookieJar {
  readonly #p: CryptoProvider;
  #key = new Uint8Array(COOKIE_KEY_BYTES);
  #prev = new Uint8Array(COOKIE_KEY_BYTES);
  /** The rotation period the current key belongs to; -1 before the first cookie. */
  #epoch = -1;
  readonly #macIn = new Uint8Array(COOKIE_TIME_BYTES + COOKIE_PORT_BYTES + COOKIE_ADDRESS_MAX_CHARS);

  constructor(provider: CryptoProvider) {
    this.#p = provider;
  }

  /** The cookie for `address`:`port` at `now` (µs), {@link COOKIE_BYTES} long. */
  issue(now: number, address: string, port: number): Uint8Array {
    const nowS = Math.floor(now / US_PER_S);
    this.#rotate(nowS);
    const out = new Uint8Array(COOKIE_BYTES);
    out.set(this.#mac(this.#key, address, port, nowS).subarray(0, COOKIE_MAC_BYTES));
    writeU32(out, COOKIE_MAC_BYTES, nowS);
    return out;
  }

  /** Whether `cookie` is one this relay gave `address`:`port` less than {@link COOKIE_VALID_S} ago. */
  check(now: number, address: string, port: number, cookie: Uint8Array): boolean {
    const nowS = Math.floor(now / US_PER_S);
    this.#rotate(nowS);
    const t = readU32(cookie, COOKIE_MAC_BYTES);
    if (t > nowS || nowS - t > COOKIE_VALID_S) return false;
    const mac = cookie.subarray(0, COOKIE_MAC_BYTES);
    // A cookie made just before a rotation is checked under the previous key.
    if (bytesEqual(this.#mac(this.#key, address, port, t).subarray(0, COOKIE_MAC_BYTES), mac)) return true;
    return bytesEqual(this.#mac(this.#prev, address, port, t).subarray(0, COOKIE_MAC_BYTES), mac);
  }

  #mac(key: Uint8Array, address: string, port: number, t: number): Uint8Array {
    const b = this.#macIn;
    writeU32(b, 0, t);
    b[COOKIE_TIME_BYTES] = port >>> 8;
    b[COOKIE_TIME_BYTES + 1] = port & 0xff;
    const head = COOKIE_TIME_BYTES + COOKIE_PORT_BYTES;
    const n = Math.min(COOKIE_ADDRESS_MAX_CHARS, address.length);
    for (let i = 0; i < n; i++) b[head + i] = address.charCodeAt(i) & 0xff;
    return this.#p.hmacSha256(key, b.subarray(0, head + n));
  }

  #rotate(nowS: number): void {
    const epoch = Math.floor(nowS / COOKIE_ROTATION_S);
    if (epoch === this.#epoch) return;
    this.#prev = epoch === this.#epoch + 1 ? this.#key : new Uint8Array(COOKIE_KEY_BYTES);
    this.#key = new Uint8Array(COOKIE_KEY_BYTES);
    this.#p.fillRandom(this.#key);
    this.#epoch = epoch;
  }
}
