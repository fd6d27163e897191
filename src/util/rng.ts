/**
 * Seeded pseudo-random numbers. The core never calls `Math.random`: every random choice it makes
 * (connection ids, jitter in tests) comes from an injected {@link Rng}, so that a seed replays a run.
 */
export interface Rng {
  /** A uniformly distributed float in [0, 1). */
  next(): number;
  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number;
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Chaotic generator), seeded through splitmix32.
 * Fast, 128 bits of state, good statistical quality; not cryptographic.
 */
export class SeededRng implements Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  /** The seed this generator was made from, to print when a test fails. */
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    let s = this.seed;
    const mix = (): number => {
      // splitmix32 step
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = mix();
    this.#b = mix();
    this.#c = mix();
    this.#d = mix();
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    this.#c = ((c << 21) | (c >>> 11)) + t | 0;
    return t >>> 0;
  }

  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** An integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p` (0..1). */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A derived generator: independent stream for a sub-component, still determined by the seed. */
  fork(): SeededRng {
    return new SeededRng(this.nextU32());
  }
}
