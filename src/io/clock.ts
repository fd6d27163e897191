import { performance } from 'node:perf_hooks';

/** A monotonic clock in integer microseconds; it never goes back and never resets while the process lives. */
export type Clock = () => number;

/** The process's monotonic clock (`performance.now()`, microseconds since the process started). */
export const monotonicUs: Clock = () => Math.round(performance.now() * 1000);
