// The demo's options (`npm start -- ...` and `netlane demo ...`), read by both.
import type { OptionSpecs, Options } from './args.js';

export const DEMO_OPTIONS = {
  duration: { type: 'string' },
  lag: { type: 'string' },
  loss: { type: 'string' },
  'relay-duration': { type: 'string' },
} as const satisfies OptionSpecs;

export const DEMO_USAGE = `  netlane demo [--duration S] [--lag MS] [--loss PCT] [--relay-duration S]   (npm start -- ...)
      Runs the demo: a server and a client over UDP on 127.0.0.1 with fake lag (default 40 ms) and loss
      (default 5 %) on every send, for S seconds (default 10); then two peers through an embedded relay
      (default 3 s). Exits 0 when every reliable message arrived, once and in order.`;

/** The demo's settings, checked (a usage error names the option). */
export function demoSettings(o: Options): { durationS: number; lagMs: number; lossPct: number; relayDurationS: number } {
  return {
    durationS: o.number('duration', 10, 0.1, 86_400),
    lagMs: o.number('lag', 40, 0, 10_000),
    lossPct: o.number('loss', 5, 0, 100),
    relayDurationS: o.number('relay-duration', 3, 0.1, 86_400),
  };
}
