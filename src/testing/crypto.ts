import { SecureHandshake, type SecureHandshakeOptions } from '../crypto/handshake.js';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import { SeededRng } from '../util/rng.js';

/**
 * A node:crypto provider whose randomness comes from a seed, so that a simulated run (keys, nonces,
 * cookies, every ciphertext byte) replays exactly. Predictable keys: tests only.
 */
export function seededCryptoProvider(seed: number): NodeCryptoProvider {
  const rng = new SeededRng(seed ^ 0x2545f491);
  return new NodeCryptoProvider({
    fillRandom: (out) => {
      for (let i = 0; i < out.length; i++) out[i] = rng.nextU32() & 0xff;
    },
  });
}

/** A {@link SecureHandshake} on a seeded provider with a fixed wall clock (unix seconds). */
export function seededHandshake(seed: number, options: Partial<SecureHandshakeOptions> = {}, unixSeconds = 1_800_000_000): SecureHandshake {
  return new SecureHandshake({ provider: seededCryptoProvider(seed), unixSeconds: () => unixSeconds, ...options });
}
