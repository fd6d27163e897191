// Argument checks the three facades share, for callers in plain JavaScript: a flag word or an index that
// is not a number, not an integer or out of range is refused with the facade's own result, never coerced
// (NaN & Reliable is 0: Unreliable; lanes['0'] is lane 0).

/**
 * The send flag bits a facade accepts: NoNagle 1, NoDelay 4, Reliable 8, GNS's UseCurrentThread 16
 * (accepted; netlane's sends never wait for another thread), AutoRestartBrokenSession 32
 * (NetworkingMessages) and netlane's Latest 64.
 */
export const SEND_FLAG_BITS = 1 | 4 | 8 | 16 | 32 | 64;

/** Whether `v` is a number, an integer, and in [min, max]: a string, NaN, 1.5 or an out-of-range value is not. */
export function isIntegerIn(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** Whether `flags` is a combination of {@link SEND_FLAG_BITS} (0 is Unreliable). */
export function isSendFlags(flags: unknown): flags is number {
  return isIntegerIn(flags, 0, SEND_FLAG_BITS) && (flags & ~SEND_FLAG_BITS) === 0;
}
