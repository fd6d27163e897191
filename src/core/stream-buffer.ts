import { Writer } from '../wire/writer.js';
import { encodeMessageHeader } from '../wire/message-framing.js';

/** The buffer of every stream that has held nothing yet. */
const NO_BYTES = new Uint8Array(0);
/** The first buffer a stream takes (when its first reliable message is queued). */
const FIRST_BYTES = 4096;
/** One writer for every stream: each append resets it (single-threaded, used within the call). */
const writer = new Writer(NO_BYTES);

/**
 * A lane's outgoing reliable byte stream, from the oldest unacknowledged byte to the newest queued one.
 * Bytes are addressed by absolute stream offset. Storage is one contiguous growable array, compacted
 * when the acknowledged prefix is released, so every range is a single `subarray` view. Nothing is
 * allocated before the first reliable message: a lane that only sends unreliably, or not at all, holds no buffer.
 */
export class StreamBuffer {
  #buf = NO_BYTES;
  #start = 0;
  #len = 0;
  /** Stream offset of the first byte held. */
  base = 0;

  /** Stream offset one past the newest byte. */
  get end(): number {
    return this.base + this.#len;
  }

  /** Appends one framed message (header + payload) and returns its end offset. */
  appendMessage(data: Uint8Array, gap: number): number {
    this.#ensure(data.length + 16);
    const w = writer;
    w.reset(this.#buf, this.#start + this.#len);
    encodeMessageHeader(w, data.length, gap);
    const p = w.position;
    this.#buf.set(data, p);
    this.#len = p + data.length - this.#start;
    return this.end;
  }

  /** Writes `len` bytes from stream offset `offset` with `w` (no view made for a short range). */
  copyTo(w: Writer, offset: number, len: number, field: string): void {
    const i = this.#start + (offset - this.base);
    w.bytesRange(this.#buf, i, i + len, field);
  }

  /** A view of `len` bytes from stream offset `offset` (valid until the next append or release). */
  view(offset: number, len: number): Uint8Array {
    const i = this.#start + (offset - this.base);
    return this.#buf.subarray(i, i + len);
  }

  /** Drops every byte below stream offset `upTo`. */
  release(upTo: number): void {
    const n = Math.min(upTo - this.base, this.#len);
    if (n <= 0) return;
    this.#start += n;
    this.#len -= n;
    this.base += n;
    if (this.#len === 0) this.#start = 0;
  }

  #ensure(extra: number): void {
    const need = this.#len + extra;
    if (this.#start + need <= this.#buf.length) return;
    if (this.#buf.length === 0 && need <= FIRST_BYTES) {
      this.#buf = new Uint8Array(FIRST_BYTES);
      this.#start = 0;
      return;
    }
    if (need <= this.#buf.length / 2) {
      // Plenty of room once the released prefix is reclaimed.
      this.#buf.copyWithin(0, this.#start, this.#start + this.#len);
    } else {
      let cap = Math.max(FIRST_BYTES, this.#buf.length) * 2;
      while (cap < need * 2) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#start + this.#len));
      this.#buf = next;
    }
    this.#start = 0;
  }
}
