// `netlane top`: the live net graph of a running relay or server. Fetches GET /stats.json from its metrics
// endpoint (`--metrics HOST:PORT` on the relay or server) once a second and redraws the net graph
// (src/cli/netgraph.ts) in place on a terminal, or writes each frame as plain lines when stdout is not a TTY.
// A first fetch that fails ends it with one line on stderr (exit code 1); a later one shows in the frame and
// is tried again a second later. Also runs on its own: node dist/src/cli/top.js --url http://127.0.0.1:9464
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { FrameWriter, NetGraphHistory, renderNetGraph, type StatsSnapshot } from './netgraph.js';

export const TOP_USAGE = `  netlane top [--url http://HOST:PORT] [--interval MS] [--count N] [--plain]
      Shows the live net graph of a relay or server started with --metrics HOST:PORT: per connection ping,
      quality local/remote, loss, in and out rates, queued bytes per lane and 60-second sparklines of ping and
      rate, redrawn in place every second (default --url http://127.0.0.1:9464). --count stops after N frames;
      --plain writes plain lines even on a terminal.`;

/** How long one fetch may take before it counts as failed. */
const FETCH_TIMEOUT_MS = 2000;

/** Where `top` writes, and whether stdout is a terminal (and how wide). */
export interface TopOutput {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly tty: boolean;
  readonly columns?: number;
}

/** Checks a parsed body against the snapshot shape; returns the reason when it is not one. */
export function snapshotProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'not a JSON object';
  const s = v as Record<string, unknown>;
  if (s['kind'] !== 'relay' && s['kind'] !== 'server') return 'kind is neither "relay" nor "server"';
  if (typeof s['unixMs'] !== 'number') return 'no unixMs';
  if (!Array.isArray(s['connections'])) return 'no connections array';
  for (const c of s['connections'] as unknown[]) {
    const r = c as Record<string, unknown>;
    if (typeof c !== 'object' || c === null || typeof r['id'] !== 'string' || typeof r['pingMs'] !== 'number' || !Array.isArray(r['queuedBytesPerLane'])) return 'a connection without id, pingMs or queuedBytesPerLane';
  }
  return null;
}

/** One fetch of the snapshot: the snapshot, or a one-line reason it could not be had. */
async function fetchSnapshot(url: string): Promise<StatsSnapshot | string> {
  let body: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    body = await res.text();
    if (!res.ok) return `${url} answered HTTP ${res.status}`;
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.cause?.code ?? err.cause?.message ?? (err.name === 'TimeoutError' ? `no answer within ${FETCH_TIMEOUT_MS} ms` : err.message);
    return `cannot connect to ${url}: ${why}`;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `${url} did not answer JSON`;
  }
  const problem = snapshotProblem(parsed);
  return problem === null ? (parsed as StatsSnapshot) : `${url} did not answer a netlane stats snapshot: ${problem}`;
}

/** Runs `netlane top` with `args` (the words after `top`); resolves with the exit code. */
export async function top(args: readonly string[], io: TopOutput): Promise<number> {
  let values: { url?: string; interval?: string; count?: string; plain?: boolean };
  try {
    ({ values } = parseArgs({ args: [...args], options: { url: { type: 'string' }, interval: { type: 'string' }, count: { type: 'string' }, plain: { type: 'boolean' } } }));
  } catch (e) {
    io.err(`netlane top: ${(e as Error).message}\n`);
    return 2;
  }
  const base = (values.url ?? 'http://127.0.0.1:9464').replace(/\/+$/, '');
  const intervalMs = Number(values.interval ?? 1000);
  const count = Number(values.count ?? 0);
  if (!/^https?:\/\/[^/]+$/.test(base) || !(intervalMs >= 10) || !(Number.isInteger(count) && count >= 0)) {
    io.err(`netlane top: --url must be http://HOST:PORT, --interval at least 10 ms, --count a whole number\n`);
    return 2;
  }
  const url = `${base}/stats.json`;
  const screen = new FrameWriter(io.tty && !values.plain);
  const history = new NetGraphHistory();
  let last: StatsSnapshot | null = null;
  for (let frame = 1; count === 0 || frame <= count; frame++) {
    const got = await fetchSnapshot(url);
    if (typeof got === 'string') {
      if (last === null) {
        io.err(`netlane top: ${got}\n`);
        return 1;
      }
      io.out(screen.frame([...renderNetGraph(last, history, io.columns ? { width: io.columns } : {}), `(${got}; trying again)`]));
    } else {
      last = got;
      history.add(got);
      io.out(screen.frame(renderNetGraph(got, history, io.columns && io.tty ? { width: io.columns } : {})));
    }
    if (count !== 0 && frame === count) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return 0;
}

/** Whether this file is the program being run (not imported by netlane.ts). */
function isMain(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(argv1)).href;
  } catch {
    return false;
  }
}

/** The process's stdout and stderr as {@link top}'s output. */
export function processOutput(): TopOutput {
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    tty: process.stdout.isTTY === true,
    ...(process.stdout.columns ? { columns: process.stdout.columns } : {}),
  };
}

if (isMain()) process.exitCode = await top(process.argv.slice(2), processOutput());
