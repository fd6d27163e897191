import { SecureHandshake, type SecureHandshakeOptions } from '../crypto/handshake.js';
import { NobleCryptoProvider } from '../crypto/noble-provider.js';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { SodiumCryptoProvider } from '../crypto/sodium-provider.js';
import { NetlaneError } from '../util/errors.js';
import { SeededRng } from '../util/rng.js';

/** Options of {@link seededCryptoProvider}. */
export interface SeededCryptoProviderOptions {
  /**
   * Run ChaCha20-Poly1305 through sodium-native ({@link SodiumCryptoProvider}, which prefers it) instead
   * of node:crypto alone (which prefers AES-256-GCM). Default false, so that what a simulation negotiates
   * never depends on whether the optional package is installed. Throws `ERR_NETLANE_INVALID_STATE` when
   * it is not.
   */
  readonly sodium?: boolean;
  /** Run everything on the browser build's provider ({@link NobleCryptoProvider}, pure JS; it prefers ChaCha20-Poly1305). */
  readonly noble?: boolean;
}

/**
 * A provider whose randomness comes from a seed, so that a simulated run (keys, nonces, cookies, every
 * ciphertext byte) replays exactly. node:crypto alone unless `sodium` is set: with `Cipher` automatic,
 * seeded peers negotiate AES-256-GCM whether or not sodium-native is installed. Predictable keys: tests only.
 */
export function seededCryptoProvider(seed: number, options: SeededCryptoProviderOptions = {}): CryptoProvider {
  const rng = new SeededRng(seed ^ 0x2545f491);
  const fillRandom = (out: Uint8Array): void => {
    for (let i = 0; i < out.length; i++) out[i] = rng.nextU32() & 0xff;
  };
  if (options.noble) return new NobleCryptoProvider({ fillRandom });
  if (!options.sodium) return new NodeCryptoProvider({ fillRandom });
  const p = SodiumCryptoProvider.load({ fillRandom });
  if (!p) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'sodium-native is not installed or does not load (NODE_DEBUG=netlane says why)');
  return p;
}

/** A {@link SecureHandshake} on a seeded node:crypto provider with a fixed wall clock (unix seconds). */
export function seededHandshake(seed: number, options: Partial<SecureHandshakeOptions> = {}, unixSeconds = 1_800_000_000): SecureHandshake {
  return new SecureHandshake({ provider: seededCryptoProvider(seed), unixSeconds: () => unixSeconds, ...options });
}
