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
  readonly #bits = new Uint32Array(ReplayWindow.WINDOW / 32);
  #largest = -1;

  /** Largest packet number marked so far, or -1. */
  get largest(): number {
    return this.#largest;
  }

  isNew(pn: number): boolean {
    if (pn > this.#largest) return true;
    if (this.#largest - pn >= ReplayWindow.WINDOW) return false;
    const bit = pn % ReplayWindow.WINDOW;
    return ((this.#bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0;
  }

  mark(pn: number): void {
    const W = ReplayWindow.WINDOW;
    if (pn > this.#largest) {
      const shift = this.#largest < 0 ? W : pn - this.#largest;
      if (shift >= W) {
        this.#bits.fill(0);
      } else {
        // Clear the bits of the numbers that enter the window between the old and new largest.
        for (let p = this.#largest + 1; p < pn; p++) {
          const b = p % W;
          this.#bits[b >>> 5] = (this.#bits[b >>> 5] as number) & ~(1 << (b & 31));
        }
      }
      this.#largest = pn;
    }
    const bit = pn % W;
    this.#bits[bit >>> 5] = (this.#bits[bit >>> 5] as number) | (1 << (bit & 31));
  }
}
