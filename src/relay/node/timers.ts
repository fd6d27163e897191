/**
 * The period of the reap scan, µs: while the node holds sessions or ticket bindings, it looks for idle sessions
 * and expired bindings this often. It is the 250 ms tick with which the relay server called `handleTimeout` before
 * the node reported `pollTimeout`, so an idle session goes as it did then: at the first tick after its idle
 * timeout, at most one period late.
 */
export const REAP_SCAN_INTERVAL_US = 250_000;

/** The node's timers: the rows of its {@link TimerTable}. */
export const NodeTimer = {
  /** Reaps idle sessions and forgets expired ticket bindings; re-armed every {@link REAP_SCAN_INTERVAL_US} while there is any. */
  ReapScan: 0,
  /** Ends a drain: every session still held goes. Armed by `drain`, once. */
  DrainDeadline: 1,
  /** In a fleet: writes the registry record and refreshes the directory's entries in the store, every 5 s. */
  FleetRefresh: 2,
} as const;
/** One of the node's timers. */
export type NodeTimer = (typeof NodeTimer)[keyof typeof NodeTimer];
/** Rows of the table. */
const TIMER_COUNT = 3;

/** The time of the reap scan after one at `now`: the next multiple of {@link REAP_SCAN_INTERVAL_US}, so scans never drift. */
export function nextReapScanUs(now: number): number {
  return (Math.floor(now / REAP_SCAN_INTERVAL_US) + 1) * REAP_SCAN_INTERVAL_US;
}

/**
 * The node's timer table: one absolute due time (µs) per {@link NodeTimer}, +Infinity while a timer is not armed.
 * `pollTimeout` is its earliest row, and `handleTimeout` runs the rows that are due, so an io runner keeps exactly
 * one timer for the whole node.
 */
export class TimerTable {
  readonly #dueUs = new Float64Array(TIMER_COUNT).fill(Number.POSITIVE_INFINITY);

  /** Arms `timer` at `atUs`, replacing any earlier or later time. */
  arm(timer: NodeTimer, atUs: number): void {
    this.#dueUs[timer] = atUs;
  }

  /** Arms `timer` at `atUs` unless it is already armed at or before then. */
  armBy(timer: NodeTimer, atUs: number): void {
    if (atUs < (this.#dueUs[timer] as number)) this.#dueUs[timer] = atUs;
  }

  /** Disarms `timer`. */
  disarm(timer: NodeTimer): void {
    this.#dueUs[timer] = Number.POSITIVE_INFINITY;
  }

  /** Whether `timer` is armed at or before `now`. */
  isDue(timer: NodeTimer, now: number): boolean {
    return (this.#dueUs[timer] as number) <= now;
  }

  /** The earliest due time of any timer, +Infinity when none is armed. */
  next(): number {
    let t = Number.POSITIVE_INFINITY;
    for (let i = 0; i < TIMER_COUNT; i++) t = Math.min(t, this.#dueUs[i] as number);
    return t;
  }
}
