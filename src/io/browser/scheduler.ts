import { monotonicUs, type Clock } from '../clock.js';
import type { Scheduler } from '../scheduler.js';

/** The part of a MessageChannel port used here (the DOM's; Node's has `unref` too, and its typings lack `onmessage`). */
interface Port {
  onmessage: (() => void) | null;
  postMessage(message: null): void;
  unref?: () => void;
}

/** A callback waiting for the end of the current task (cancelled ones stay in the queue, skipped). */
interface Soon {
  fn: (() => void) | null;
}

/**
 * The browser's {@link Scheduler}: the page's monotonic clock, `setTimeout` for the one timer, and a
 * MessageChannel message for `soon` (a new task after the current one, as Node's `setImmediate`; unlike a
 * zero `setTimeout` it is never clamped to 4 ms). The callbacks asked for in one task share one message.
 * `keepProcessAlive` means nothing in a page.
 */
export function browserScheduler(clock: Clock = monotonicUs): Scheduler {
  let queue: Soon[] = [];
  const port = new MessageChannel() as unknown as { readonly port1: Port; readonly port2: Port };
  port.port1.onmessage = () => {
    const run = queue;
    queue = [];
    for (const s of run) {
      const fn = s.fn;
      s.fn = null;
      fn?.();
    }
  };
  // Node has MessageChannel too, whose port would hold the process open once it listens: unref it, after onmessage.
  port.port1.unref?.();
  return {
    now: clock,
    at: (atUs, fn) => setTimeout(fn, Math.max(0, Math.ceil((atUs - clock()) / 1000))),
    soon(fn) {
      const s: Soon = { fn };
      if (queue.push(s) === 1) port.port2.postMessage(null);
      return s;
    },
    cancel: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    cancelSoon: (h) => {
      (h as Soon).fn = null;
    },
  };
}
