// The demo's options (`npm start -- ...` and `netlane demo ...`), read by both.
import { usageError, type OptionSpecs, type Options } from './args.js';

export const DEMO_OPTIONS = {
  duration: { type: 'string' },
  lag: { type: 'string' },
  loss: { type: 'string' },
  failover: { type: 'string' },
  watch: { type: 'boolean' },
  plain: { type: 'boolean' },
} as const satisfies OptionSpecs;

export const DEMO_USAGE = `  netlane demo [--duration S] [--lag MS] [--loss PCT] [--failover kill|drain] [--watch] [--plain]   (npm start -- ...)
      Runs the demo for S seconds (default 10) over UDP on 127.0.0.1 with fake lag (default 40 ms) and loss
      (default 5 %) on every send: a server and a client (NetworkingSockets), and two peers through two embedded
      relays (NetworkManager) whose relay is killed (or drained) halfway, so that the connection moves to the
      other. Redrawn in place on a terminal (--plain: a line a second); --watch draws the net graph. Exits 0
      when every reliable message arrived, once and in order, and the failover happened.`;

/** The demo's settings, checked (a usage error names the option). */
export function demoSettings(o: Options): { durationS: number; lagMs: number; lossPct: number; failoverMode: 'kill' | 'drain'; watch: boolean; plain: boolean } {
  const failover = o.string('failover')?.value ?? 'kill';
  if (failover !== 'kill' && failover !== 'drain') usageError('--failover must be kill or drain');
  return {
    durationS: o.number('duration', 10, 0.1, 86_400),
    lagMs: o.number('lag', 40, 0, 10_000),
    lossPct: o.number('loss', 5, 0, 100),
    failoverMode: failover,
    watch: o.flag('watch'),
    plain: o.flag('plain'),
  };
}
