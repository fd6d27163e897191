import { monotonicUs, type Clock } from './clock.js';

/** A handle of a timer armed with {@link Scheduler.at}. */
export type TimerHandle = unknown;

/**
 * Where an io driver gets its time and its one timer: the process's clock and `setTimeout` /
 * `setImmediate` ({@link realScheduler}), or a simulated network's virtual time (`SimNetwork.scheduler`),
 * so that the same driver runs in real time and, deterministically, in virtual time.
 */
export interface Scheduler {
  /** Now, integer microseconds, monotonic. */
  now(): number;
  /** Calls `fn` at `atUs` (or a little later, never earlier in virtual time). */
  at(atUs: number, fn: () => void, keepProcessAlive: boolean): TimerHandle;
  /** Calls `fn` after the current event-loop turn, before any timer due later. */
  soon(fn: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
  cancelSoon(handle: TimerHandle): void;
}

/** Real time on `clock` (default the process's monotonic clock): `setTimeout` (millisecond resolution, rounded up) and `setImmediate`. */
export function realTime(clock: Clock = monotonicUs): Scheduler {
  return {
    now: clock,
    at(atUs, fn, keepProcessAlive) {
      const t = setTimeout(fn, Math.max(0, Math.ceil((atUs - clock()) / 1000)));
      if (!keepProcessAlive) t.unref();
      return t;
    },
    soon: (fn) => setImmediate(fn),
    cancel: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    cancelSoon: (h) => clearImmediate(h as ReturnType<typeof setImmediate>),
  };
}

/** Real time on the process's monotonic clock. */
export const realScheduler: Scheduler = realTime();
