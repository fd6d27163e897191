/**
 * A clock that moves only when told to: for driving an Endpoint by hand in tests.
 * Time is integer microseconds, like every `now` in the core.
 */
export class ManualClock {
  #nowUs: number;

  constructor(startUs = 0) {
    this.#nowUs = startUs;
  }

  get nowUs(): number {
    return this.#nowUs;
  }

  /** Moves forward by `us` (never backwards). */
  advance(us: number): number {
    if (us < 0) throw new RangeError('ManualClock cannot go backwards');
    this.#nowUs += us;
    return this.#nowUs;
  }

  /** Jumps to `us` if it is later than now. */
  advanceTo(us: number): number {
    if (us > this.#nowUs) this.#nowUs = us;
    return this.#nowUs;
  }
}
