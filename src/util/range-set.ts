/**
 * A set of non-negative integers stored as sorted, disjoint, non-adjacent inclusive ranges.
 * Used for received packet numbers (ack ranges) and for stream bytes (acked / to retransmit).
 *
 * Storage is two parallel number arrays, so inserting does not allocate a range object.
 * Most inserts extend the last range (in-order arrival), which is O(1).
 */
export class RangeSet {
  /** Range starts, ascending. */
  readonly lo: number[] = [];
  /** Range ends (inclusive), ascending. */
  readonly hi: number[] = [];

  get size(): number {
    return this.lo.length;
  }

  isEmpty(): boolean {
    return this.lo.length === 0;
  }

  /** Smallest member, or -1 when empty. */
  min(): number {
    return this.lo.length === 0 ? -1 : (this.lo[0] as number);
  }

  /** Largest member, or -1 when empty. */
  max(): number {
    const n = this.hi.length;
    return n === 0 ? -1 : (this.hi[n - 1] as number);
  }

  clear(): void {
    this.lo.length = 0;
    this.hi.length = 0;
  }

  /** Index of the first range whose end is >= v (binary search); size when none. */
  #lowerBound(v: number): number {
    let l = 0;
    let r = this.hi.length;
    while (l < r) {
      const m = (l + r) >>> 1;
      if ((this.hi[m] as number) < v) l = m + 1;
      else r = m;
    }
    return l;
  }

  has(v: number): boolean {
    const i = this.#lowerBound(v);
    return i < this.lo.length && (this.lo[i] as number) <= v;
  }

  /** True when every member of [a, b] is in the set. */
  covers(a: number, b: number): boolean {
    const i = this.#lowerBound(a);
    return i < this.lo.length && (this.lo[i] as number) <= a && (this.hi[i] as number) >= b;
  }

  /** Adds [a, b] (inclusive). Returns the number of values that were not already present. */
  add(a: number, b: number): number {
    if (b < a) return 0;
    const n = this.lo.length;
    // Fast path: appending at or just after the end.
    if (n === 0 || a > (this.hi[n - 1] as number) + 1) {
      this.lo.push(a);
      this.hi.push(b);
      return b - a + 1;
    }
    if (a >= (this.lo[n - 1] as number) && a <= (this.hi[n - 1] as number) + 1) {
      const old = this.hi[n - 1] as number;
      if (b <= old) return 0;
      this.hi[n - 1] = b;
      return b - old;
    }
    // General case: find the ranges that touch [a-1, b+1] and merge them.
    const i = this.#lowerBound(a === 0 ? 0 : a - 1);
    let added = b - a + 1;
    let newLo = a;
    let newHi = b;
    let j = i;
    while (j < this.lo.length && (this.lo[j] as number) <= b + 1) {
      const l = this.lo[j] as number;
      const h = this.hi[j] as number;
      const ol = Math.max(l, a);
      const oh = Math.min(h, b);
      if (oh >= ol) added -= oh - ol + 1;
      if (l < newLo) newLo = l;
      if (h > newHi) newHi = h;
      j++;
    }
    if (j === i) {
      this.lo.splice(i, 0, newLo);
      this.hi.splice(i, 0, newHi);
    } else {
      this.lo[i] = newLo;
      this.hi[i] = newHi;
      if (j - i > 1) {
        this.lo.splice(i + 1, j - i - 1);
        this.hi.splice(i + 1, j - i - 1);
      }
    }
    return added;
  }

  /** Removes [a, b] (inclusive). */
  remove(a: number, b: number): void {
    if (b < a) return;
    let i = this.#lowerBound(a);
    while (i < this.lo.length) {
      const l = this.lo[i] as number;
      const h = this.hi[i] as number;
      if (l > b) break;
      if (l < a && h > b) {
        // split
        this.hi[i] = a - 1;
        this.lo.splice(i + 1, 0, b + 1);
        this.hi.splice(i + 1, 0, h);
        return;
      }
      if (l < a) {
        this.hi[i] = a - 1;
        i++;
      } else if (h > b) {
        this.lo[i] = b + 1;
        return;
      } else {
        this.lo.splice(i, 1);
        this.hi.splice(i, 1);
      }
    }
  }

  /** Removes every member below v. */
  removeBelow(v: number): void {
    let k = 0;
    while (k < this.lo.length && (this.hi[k] as number) < v) k++;
    if (k > 0) {
      this.lo.splice(0, k);
      this.hi.splice(0, k);
    }
    if (this.lo.length > 0 && (this.lo[0] as number) < v) this.lo[0] = v;
  }

  /** Drops the oldest ranges until at most `maxRanges` remain. */
  trimOldest(maxRanges: number): void {
    const extra = this.lo.length - maxRanges;
    if (extra > 0) {
      this.lo.splice(0, extra);
      this.hi.splice(0, extra);
    }
  }
}
