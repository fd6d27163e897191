import { RangeSet } from '../util/range-set.js';

/** The smallest ring a lane takes at its first out-of-order segment. */
const FIRST_RING_BYTES = 16 * 1024;
/** The ring of every lane that has held nothing out of order yet. */
const NO_RING = new Uint8Array(0);

/**
 * The reliable stream bytes of one lane that arrived ahead of a hole, held until the hole fills.
 *
 * Bytes are written at their stream offset into one ring (a power of two, indexed by offset modulo its
 * size) and the offsets held are kept as numeric ranges, so holding a segment costs a copy and no
 * object: a lane recovering from a loss at full rate keeps thousands of segments without making
 * garbage (a copy of each segment in a buffer of its own would hand V8 thousands of off-heap backing
 * stores to track, each freed only by a full collection). The ring covers the stream from the lane's
 * next in-order offset to the furthest byte held; it grows by doubling when a segment lands beyond it,
 * never shrinks, and is allocated at the first out-of-order segment (a lane that never sees one holds
 * nothing).
 */
export class ReorderBuffer {
  #ring = NO_RING;
  #mask = -1;
  /** Stream offsets held (inclusive ranges); every one is at or above the lane's next in-order offset. */
  readonly #held = new RangeSet();
  /** Bytes held (the sum of the ranges' lengths). */
  bytes = 0;

  /** Bytes of the ring (0 before the first out-of-order segment). */
  get capacity(): number {
    return this.#ring.length;
  }

  isEmpty(): boolean {
    return this.#held.isEmpty();
  }

  /** Whether every byte of `[from, end)` is held. */
  covers(from: number, end: number): boolean {
    return end > from && this.#held.covers(from, end - 1);
  }

  /**
   * Holds `src[start, end)`, the stream bytes from `offset` (above `next`, the lane's next in-order
   * offset); true at once when every byte is held already. Returns false, holding nothing, when that would take the bytes held past `limitBytes` or
   * the ring past the smallest power of two that covers `limitBytes`.
   */
  hold(next: number, offset: number, src: Uint8Array, start: number, end: number, limitBytes: number): boolean {
    const n = end - start;
    if (this.#held.covers(offset, offset + n - 1)) return true;
    if (this.bytes + n > limitBytes) return false;
    const span = offset + n - next;
    if (span > this.#ring.length && !this.#grow(span, limitBytes)) return false;
    this.#write(offset, src, start, n);
    this.bytes += this.#held.add(offset, offset + n - 1);
    return true;
  }

  /**
   * Passes the held bytes that continue the stream at `next` to `feed` (in at most two contiguous
   * pieces of the ring per range), releases them with any held bytes below `next`, and returns the new
   * next in-order offset. `feed` reads the bytes during the call and keeps nothing.
   */
  release(next: number, feed: (ring: Uint8Array, from: number, to: number) => void): number {
    const held = this.#held;
    while (!held.isEmpty()) {
      const lo = held.min();
      if (lo > next) break;
      const hi = held.hi[0] as number;
      held.remove(lo, hi);
      this.bytes -= hi - lo + 1;
      const end = hi + 1;
      if (end <= next) continue;
      this.#read(next, end - next, feed);
      next = end;
    }
    return next;
  }

  /** Doubles the ring until it covers `span` bytes, moving what it holds; false beyond the limit's size. */
  #grow(span: number, limitBytes: number): boolean {
    let cap = Math.max(FIRST_RING_BYTES, this.#ring.length);
    while (cap < span) cap *= 2;
    let max = FIRST_RING_BYTES;
    while (max < limitBytes) max *= 2;
    if (cap > max) return false;
    const old = this.#ring;
    const oldMask = this.#mask;
    this.#ring = new Uint8Array(cap);
    this.#mask = cap - 1;
    const held = this.#held;
    for (let i = 0; i < held.size; i++) {
      const lo = held.lo[i] as number;
      const n = (held.hi[i] as number) - lo + 1;
      const at = lo & oldMask;
      const first = Math.min(n, old.length - at);
      this.#write(lo, old, at, first);
      if (first < n) this.#write(lo + first, old, 0, n - first);
    }
    return true;
  }

  /** Writes `src[start, start + n)` at stream offset `offset` (wrapping around the ring). */
  #write(offset: number, src: Uint8Array, start: number, n: number): void {
    const ring = this.#ring;
    const at = offset & this.#mask;
    const first = Math.min(n, ring.length - at);
    ring.set(src.subarray(start, start + first), at);
    if (first < n) ring.set(src.subarray(start + first, start + n), 0);
  }

  #read(offset: number, n: number, feed: (ring: Uint8Array, from: number, to: number) => void): void {
    const ring = this.#ring;
    const at = offset & this.#mask;
    const first = Math.min(n, ring.length - at);
    feed(ring, at, at + first);
    if (first < n) feed(ring, 0, n - first);
  }
}
