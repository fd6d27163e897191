import { WireError } from './errors.js';

/** Largest value a QUIC-style varint may carry here: JS numbers are exact up to 2^53 - 1. */
export const VARINT_MAX = Number.MAX_SAFE_INTEGER;

/**
 * A bounds-checked cursor over received bytes. Reads of byte strings return views (`subarray`), never
 * copies. Every read takes the name of the field it reads, which a {@link WireError} reports.
 */
export class Reader {
  #buf: Uint8Array;
  #pos: number;
  #end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  /** Points the reader at new bytes (lets a hot path reuse one Reader). */
  reset(buf: Uint8Array, start = 0, end = buf.length): void {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  get position(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number, field: string): void {
    if (this.#end - this.#pos < n) throw new WireError(field, `needs ${n} bytes, ${this.#end - this.#pos} left`);
  }

  u8(field: string): number {
    this.#need(1, field);
    return this.#buf[this.#pos++] as number;
  }

  /** Big-endian unsigned 16-bit integer. */
  u16(field: string): number {
    this.#need(2, field);
    const b = this.#buf;
    const p = this.#pos;
    this.#pos = p + 2;
    return ((b[p] as number) << 8) | (b[p + 1] as number);
  }

  /** Big-endian unsigned 32-bit integer. */
  u32(field: string): number {
    this.#need(4, field);
    const b = this.#buf;
    const p = this.#pos;
    this.#pos = p + 4;
    return (((b[p] as number) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) >>> 0;
  }

  /** Little-endian signed 32-bit integer (the in-band channel number, as GNS writes it). */
  i32le(field: string): number {
    this.#need(4, field);
    const b = this.#buf;
    const p = this.#pos;
    this.#pos = p + 4;
    return (b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 24);
  }

  /** Big-endian unsigned 64-bit integer (ids). */
  u64(field: string): bigint {
    const hi = this.u32(field);
    return (BigInt(hi) << 32n) | BigInt(this.u32(field));
  }

  /** Peeks the next byte without consuming it; -1 at the end. */
  peek(): number {
    return this.#pos < this.#end ? (this.#buf[this.#pos] as number) : -1;
  }

  /**
   * QUIC variable-length integer (RFC 9000 section 16): the two high bits of the first byte give the
   * length (1, 2, 4 or 8 bytes). Values above 2^53 - 1 are refused.
   */
  varint(field: string): number {
    this.#need(1, field);
    const b = this.#buf;
    const p = this.#pos;
    const first = b[p] as number;
    switch (first >>> 6) {
      case 0:
        this.#pos = p + 1;
        return first;
      case 1:
        this.#need(2, field);
        this.#pos = p + 2;
        return ((first & 0x3f) << 8) | (b[p + 1] as number);
      case 2:
        this.#need(4, field);
        this.#pos = p + 4;
        return (((first & 0x3f) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) >>> 0;
      default: {
        this.#need(8, field);
        const hi = (((first & 0x3f) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) >>> 0;
        const lo = (((b[p + 4] as number) << 24) | ((b[p + 5] as number) << 16) | ((b[p + 6] as number) << 8) | (b[p + 7] as number)) >>> 0;
        if (hi > 0x1fffff) throw new WireError(field, 'varint exceeds 2^53 - 1');
        this.#pos = p + 8;
        return hi * 4294967296 + lo;
      }
    }
  }

  /** A view of the next `n` bytes. */
  bytes(n: number, field: string): Uint8Array {
    if (n < 0) throw new WireError(field, 'negative length');
    this.#need(n, field);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  /** A view of everything left. */
  rest(): Uint8Array {
    const v = this.#buf.subarray(this.#pos, this.#end);
    this.#pos = this.#end;
    return v;
  }

  /** The bytes the reader walks (positions index into them). */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** Steps over the next `n` bytes and returns where they start in {@link buffer} (no view made). */
  take(n: number, field: string): number {
    if (n < 0) throw new WireError(field, 'negative length');
    this.#need(n, field);
    const at = this.#pos;
    this.#pos = at + n;
    return at;
  }

  /** Steps over everything left; returns where it started in {@link buffer}. */
  takeRest(): number {
    const at = this.#pos;
    this.#pos = this.#end;
    return at;
  }

  skip(n: number, field: string): void {
    this.#need(n, field);
    this.#pos += n;
  }
}
