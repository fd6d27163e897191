import type { Rng } from '../util/rng.js';

/**
 * An {@link Rng} drawing from the operating system's CSPRNG (`globalThis.crypto.getRandomValues`, in Node
 * and in browsers, through a 4 KiB pool), for values an attacker must not guess, such as connection ids on
 * a real network.
 */
export class CryptoRng implements Rng {
  readonly #pool = new Uint32Array(1024);
  #i = this.#pool.length;

  nextU32(): number {
    if (this.#i === this.#pool.length) {
      globalThis.crypto.getRandomValues(this.#pool);
      this.#i = 0;
    }
    return this.#pool[this.#i++] as number;
  }

  next(): number {
    return this.nextU32() / 4294967296;
  }
}

/** A random 32-bit seed (for fake network conditions when none is given). */
export function randomSeed(): number {
  return new CryptoRng().nextU32();
}
