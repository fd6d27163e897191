/**
 * Duplicate and replay detection for 64-bit packet numbers (held as JS numbers, exact below 2^53).
 * Remembers the largest number seen and a bitmap of the `WINDOW` numbers below it. A number older than
 * the window is refused: it could be a replay that the bitmap can no longer tell apart.
 *
 * `isNew` is a pure check; `mark` records. Callers mark only after a packet authenticates
 *, so forged packets cannot move the window.
 */
export class ReplayWindow {
  /** Bits remembered below the largest packet number. */
  static readonly WINDOW = 2048;
  /**
   * The bitmap, allocated at the first gap or reordering. Until then the numbers seen are exactly the run
   * `#low..#largest` (in-order arrival, the common case on an idle or clean path), and no bitmap is needed.
   */
  #bits: Uint32Array | null = null;
  #low = -1;
  #largest = -1;

  /** Largest packet number marked so far, or -1. */
  get largest(): number {
    return this.#largest;
  }

  isNew(pn: number): boolean {
    if (pn > this.#largest) return true;
    if (this.#largest - pn >= ReplayWindow.WINDOW) return false;
    const bits = this.#bits;
    if (bits === null) return pn < this.#low;
    const bit = pn % ReplayWindow.WINDOW;
    return ((bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0;
  }

  mark(pn: number): void {
    const W = ReplayWindow.WINDOW;
    let bits = this.#bits;
    if (bits === null) {
      if (this.#largest < 0) {
        this.#low = this.#largest = pn;
        return;
      }
      if (pn === this.#largest + 1) {
        this.#largest = pn;
        return;
      }
      // The first gap or late packet: the run seen so far goes into a bitmap (its last WINDOW numbers).
      bits = this.#bits = new Uint32Array(W / 32);
      for (let p = Math.max(this.#low, this.#largest - W + 1); p <= this.#largest; p++) {
        const b = p % W;
        bits[b >>> 5] = (bits[b >>> 5] as number) | (1 << (b & 31));
      }
    }
    if (pn > this.#largest) {
      const shift = pn - this.#largest;
      if (shift >= W) {
        bits.fill(0);
      } else {
        // Clear the bits of the numbers that enter the window between the old and new largest.
        for (let p = this.#largest + 1; p < pn; p++) {
          const b = p % W;
          bits[b >>> 5] = (bits[b >>> 5] as number) & ~(1 << (b & 31));
        }
      }
      this.#largest = pn;
    }
    const bit = pn % W;
    bits[bit >>> 5] = (bits[bit >>> 5] as number) | (1 << (bit & 31));
  }
}
