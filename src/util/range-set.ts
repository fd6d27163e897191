/** Ranges a set has room for at its first insert (64 bytes an array: V8 keeps them on its heap). */
const FIRST_RANGES = 8;
/** The storage of every set that has held nothing yet (never written: an insert grows first). */
const NO_RANGES = new Float64Array(0);

/**
 * A set of non-negative integers stored as sorted, disjoint, non-adjacent inclusive ranges.
 * Used for received packet numbers (ack ranges) and for stream bytes (acked / to retransmit).
 *
 * Storage is two parallel Float64Arrays (exact for every integer below 2^53) and a count: inserting,
 * removing and trimming shift in place and allocate nothing, and the arrays only grow, by doubling
 * (nothing is allocated before the first insert: idle connections' sets stay empty).
 * Most inserts extend the last range (in-order arrival), which is O(1).
 */
export class RangeSet {
  #lo = NO_RANGES;
  #hi = NO_RANGES;
  #n = 0;

  /** Range starts, ascending: entries `[0, size)` (the array may be longer; it is replaced when the set grows). */
  get lo(): Float64Array {
    return this.#lo;
  }

  /** Range ends (inclusive), ascending: entries `[0, size)`. */
  get hi(): Float64Array {
    return this.#hi;
  }

  /** Number of ranges. */
  get size(): number {
    return this.#n;
  }

  isEmpty(): boolean {
    return this.#n === 0;
  }

  /** Smallest member, or -1 when empty. */
  min(): number {
    return this.#n === 0 ? -1 : (this.#lo[0] as number);
  }

  /** Largest member, or -1 when empty. */
  max(): number {
    const n = this.#n;
    return n === 0 ? -1 : (this.#hi[n - 1] as number);
  }

  clear(): void {
    this.#n = 0;
  }

  /** Index of the first range whose end is >= v (binary search); size when none. */
  #lowerBound(v: number): number {
    const hi = this.#hi;
    let l = 0;
    let r = this.#n;
    while (l < r) {
      const m = (l + r) >>> 1;
      if ((hi[m] as number) < v) l = m + 1;
      else r = m;
    }
    return l;
  }

  has(v: number): boolean {
    const i = this.#lowerBound(v);
    return i < this.#n && (this.#lo[i] as number) <= v;
  }

  /** True when every member of [a, b] is in the set. */
  covers(a: number, b: number): boolean {
    const i = this.#lowerBound(a);
    return i < this.#n && (this.#lo[i] as number) <= a && (this.#hi[i] as number) >= b;
  }

  /** Opens a gap of one range at index `i` (ranges from `i` move up by one). */
  #insertAt(i: number, a: number, b: number): void {
    const n = this.#n;
    if (n === this.#lo.length) {
      const cap = n === 0 ? FIRST_RANGES : n * 2;
      const lo = new Float64Array(cap);
      const hi = new Float64Array(cap);
      lo.set(this.#lo);
      hi.set(this.#hi);
      this.#lo = lo;
      this.#hi = hi;
    }
    const lo = this.#lo;
    const hi = this.#hi;
    if (i < n) {
      lo.copyWithin(i + 1, i, n);
      hi.copyWithin(i + 1, i, n);
    }
    lo[i] = a;
    hi[i] = b;
    this.#n = n + 1;
  }

  /** Removes ranges `[i, j)` (later ranges move down). */
  #removeRanges(i: number, j: number): void {
    const n = this.#n;
    if (j >= n) {
      this.#n = i;
      return;
    }
    this.#lo.copyWithin(i, j, n);
    this.#hi.copyWithin(i, j, n);
    this.#n = n - (j - i);
  }

  /** Adds [a, b] (inclusive). Returns the number of values that were not already present. */
  add(a: number, b: number): number {
    if (b < a) return 0;
    const n = this.#n;
    const lo = this.#lo;
    const hi = this.#hi;
    // Fast path: appending at or just after the end.
    if (n === 0 || a > (hi[n - 1] as number) + 1) {
      this.#insertAt(n, a, b);
      return b - a + 1;
    }
    if (a >= (lo[n - 1] as number) && a <= (hi[n - 1] as number) + 1) {
      const old = hi[n - 1] as number;
      if (b <= old) return 0;
      hi[n - 1] = b;
      return b - old;
    }
    // General case: find the ranges that touch [a-1, b+1] and merge them.
    const i = this.#lowerBound(a === 0 ? 0 : a - 1);
    let added = b - a + 1;
    let newLo = a;
    let newHi = b;
    let j = i;
    while (j < n && (lo[j] as number) <= b + 1) {
      const l = lo[j] as number;
      const h = hi[j] as number;
      const ol = Math.max(l, a);
      const oh = Math.min(h, b);
      if (oh >= ol) added -= oh - ol + 1;
      if (l < newLo) newLo = l;
      if (h > newHi) newHi = h;
      j++;
    }
    if (j === i) {
      this.#insertAt(i, newLo, newHi);
    } else {
      lo[i] = newLo;
      hi[i] = newHi;
      if (j - i > 1) this.#removeRanges(i + 1, j);
    }
    return added;
  }

  /** Removes [a, b] (inclusive). */
  remove(a: number, b: number): void {
    if (b < a) return;
    let i = this.#lowerBound(a);
    while (i < this.#n) {
      const lo = this.#lo;
      const hi = this.#hi;
      const l = lo[i] as number;
      const h = hi[i] as number;
      if (l > b) break;
      if (l < a && h > b) {
        // split
        hi[i] = a - 1;
        this.#insertAt(i + 1, b + 1, h);
        return;
      }
      if (l < a) {
        hi[i] = a - 1;
        i++;
      } else if (h > b) {
        lo[i] = b + 1;
        return;
      } else {
        this.#removeRanges(i, i + 1);
      }
    }
  }

  /** Removes every member below v. */
  removeBelow(v: number): void {
    const hi = this.#hi;
    let k = 0;
    while (k < this.#n && (hi[k] as number) < v) k++;
    if (k > 0) this.#removeRanges(0, k);
    if (this.#n > 0 && (this.#lo[0] as number) < v) this.#lo[0] = v;
  }

  /** Drops the oldest ranges until at most `maxRanges` remain. */
  trimOldest(maxRanges: number): void {
    const extra = this.#n - maxRanges;
    if (extra > 0) this.#removeRanges(0, extra);
  }
}
