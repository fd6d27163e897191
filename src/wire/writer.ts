import { WireError } from './errors.js';
import { VARINT_MAX } from './reader.js';

/** Bytes a varint of this value takes on the wire (RFC 9000 section 16). */
export function varintSize(v: number): number {
  if (v < 0x40) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x40000000) return 4;
  return 8;
}

/** Ranges up to this long are copied by a loop in {@link Writer.bytesRange} (no view object). */
const SHORT_COPY_BYTES = 256;

/**
 * A bounds-checked cursor that encodes into a buffer owned by the caller. Nothing here allocates.
 */
export class Writer {
  #buf: Uint8Array;
  #pos: number;
  #end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  reset(buf: Uint8Array, start = 0, end = buf.length): void {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  get position(): number {
    return this.#pos;
  }

  set position(p: number) {
    this.#pos = p;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  /** The bytes written since `start`. */
  written(start = 0): Uint8Array {
    return this.#buf.subarray(start, this.#pos);
  }

  #need(n: number, field: string): void {
    if (this.#end - this.#pos < n) throw new WireError(field, `needs ${n} bytes, ${this.#end - this.#pos} free`);
  }

  u8(v: number, field: string): void {
    this.#need(1, field);
    this.#buf[this.#pos++] = v;
  }

  u16(v: number, field: string): void {
    this.#need(2, field);
    const b = this.#buf;
    b[this.#pos++] = v >>> 8;
    b[this.#pos++] = v;
  }

  u32(v: number, field: string): void {
    this.#need(4, field);
    const b = this.#buf;
    b[this.#pos++] = v >>> 24;
    b[this.#pos++] = v >>> 16;
    b[this.#pos++] = v >>> 8;
    b[this.#pos++] = v;
  }

  /** Little-endian signed 32-bit integer; a value that is not an int32 is refused, not wrapped. */
  i32le(v: number, field: string): void {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new WireError(field, `int32 out of range: ${v}`);
    this.#need(4, field);
    const b = this.#buf;
    b[this.#pos++] = v;
    b[this.#pos++] = v >>> 8;
    b[this.#pos++] = v >>> 16;
    b[this.#pos++] = v >>> 24;
  }

  /** Big-endian unsigned 64-bit integer (ids). */
  u64(v: bigint, field: string): void {
    if (v < 0n || v >= 1n << 64n) throw new WireError(field, `u64 out of range: ${v}`);
    this.u32(Number(v >> 32n), field);
    this.u32(Number(v & 0xffffffffn), field);
  }

  varint(v: number, field: string): void {
    if (!(v >= 0 && v <= VARINT_MAX) || !Number.isInteger(v)) throw new WireError(field, `varint out of range: ${v}`);
    const b = this.#buf;
    if (v < 0x40) {
      this.#need(1, field);
      b[this.#pos++] = v;
    } else if (v < 0x4000) {
      this.#need(2, field);
      b[this.#pos++] = 0x40 | (v >>> 8);
      b[this.#pos++] = v;
    } else if (v < 0x40000000) {
      this.#need(4, field);
      b[this.#pos++] = 0x80 | (v >>> 24);
      b[this.#pos++] = v >>> 16;
      b[this.#pos++] = v >>> 8;
      b[this.#pos++] = v;
    } else {
      this.#need(8, field);
      const hi = Math.floor(v / 4294967296);
      const lo = v >>> 0;
      b[this.#pos++] = 0xc0 | (hi >>> 24);
      b[this.#pos++] = hi >>> 16;
      b[this.#pos++] = hi >>> 8;
      b[this.#pos++] = hi;
      b[this.#pos++] = lo >>> 24;
      b[this.#pos++] = lo >>> 16;
      b[this.#pos++] = lo >>> 8;
      b[this.#pos++] = lo;
    }
  }

  bytes(src: Uint8Array, field: string): void {
    this.#need(src.length, field);
    this.#buf.set(src, this.#pos);
    this.#pos += src.length;
  }

  /**
   * Writes `src[start, end)`. A short range is copied byte by byte, so that no view of it is made; a
   * longer one (bulk data, where a view per packet costs nothing that matters) through `set`.
   */
  bytesRange(src: Uint8Array, start: number, end: number, field: string): void {
    const n = end - start;
    this.#need(n, field);
    const buf = this.#buf;
    const at = this.#pos;
    if (n <= SHORT_COPY_BYTES) {
      for (let i = 0; i < n; i++) buf[at + i] = src[start + i] as number;
    } else {
      buf.set(src.subarray(start, end), at);
    }
    this.#pos = at + n;
  }

  zeros(n: number, field: string): void {
    this.#need(n, field);
    this.#buf.fill(0, this.#pos, this.#pos + n);
    this.#pos += n;
  }
}
