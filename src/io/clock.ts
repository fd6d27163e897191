/** A monotonic clock in integer microseconds; it never goes back and never resets while the process lives. */
export type Clock = () => number;

// globalThis.performance: Node's perf_hooks clock in Node, the page's or worker's in a browser.
const perf = globalThis.performance;

/** The process's (or page's) monotonic clock (`performance.now()`, microseconds since it started). */
export const monotonicUs: Clock = () => Math.round(perf.now() * 1000);
