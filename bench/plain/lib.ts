// The plain harnesses' one shared helper: the command line of a harness process, quantiles, the result
// line, the contenders' packages, and (for the runner) spawning a server and a client process.
//   node dist/bench/plain/<contender>.js server pingpong|flood|bulk        prints PORT <n>; for flood and bulk, the RESULT
//   node dist/bench/plain/<contender>.js client pingpong|flood|bulk <port> for pingpong, prints the RESULT
// (bulk: `udp` and `netlane` only)
// Ping-pong: one 64 B message at a time, echoed; `N` (20,000) round trips timed after `WARM` (2000) and at least
// `PP_WARM_MS` (3000) ms: past the JIT's compilations and the recompilations after its first deoptimizations
// (netlane's go on for 2-3 s of ping-pong, each job taking the pinned CPU for up to tens of ms), and enough
// samples that a fresh process's first major collection weighs in the p99 no more than any other pause.
// Flood: the client sends 100 B messages for as long as it lives; the server counts those that arrive
// in `MS` (1500) ms, starting `WARM_MS` (500) ms after the first one.
// Bulk: the same, with `BULK` (512 KiB) messages (raw UDP: 1200 B datagrams); the server counts bytes.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const [role = '', measure = '', port = '0'] = process.argv.slice(2);
export const SERVER = role === 'server';
export const PINGPONG = measure === 'pingpong';
export const BULK_MODE = measure === 'bulk';
export const PORT = Number(port);
export const HOST = '127.0.0.1';
const env = (k: string, d: number): number => Number(process.env[k] ?? d);
/** A message's size: 64 B ping-pong, 100 B flood, `BULK` (512 KiB) bulk. */
export const SIZE = PINGPONG ? 64 : BULK_MODE ? env('BULK', 512 * 1024) : 100;
export const N = env('N', 20_000);
export const WARM = env('WARM', 2000);
export const MS = env('MS', 1500);
export const WARM_MS = env('WARM_MS', 500);
export const PP_WARM_MS = env('PP_WARM_MS', 3000);

/** A package of bench/package.json (the contenders'), imported from bench/, never one of netlane's own dependencies. */
export async function bench<T>(name: string): Promise<T> {
  const { load } = (await import(new URL('../../../bench/load.mjs', import.meta.url).href)) as { load(n: string): Promise<{ default?: unknown }> };
  const m = await load(name);
  return { ...(m.default as object), ...m } as T;
}

export function listening(p: number): void {
  process.stdout.write(`PORT ${p}\n`);
}

export function result(r: object): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
  process.exit(0);
}

/** Round trips (µs) to p50 / p99 / p99.9, nearest rank. */
export function latency(rtts: number[]): { p50: number; p99: number; p999: number; samples: number } {
  rtts.sort((a, b) => a - b);
  const q = (x: number): number => rtts[Math.min(rtts.length - 1, Math.floor(x * rtts.length))] ?? Number.NaN;
  return { p50: q(0.5), p99: q(0.99), p999: q(0.999), samples: rtts.length };
}

/**
 * The client side of a ping-pong: `send()` sends one 64 B ping; the harness calls the returned function
 * on each echo. Prints the result after WARM + N round trips.
 */
export function pingpong(send: () => void): () => void {
  const rtts: number[] = [];
  const warmUntil = performance.now() + PP_WARM_MS;
  let warm = 0;
  let t = performance.now();
  send();
  return () => {
    const now = performance.now();
    if (warm < WARM || now < warmUntil) warm++;
    else rtts.push((now - t) * 1000);
    if (rtts.length === N) result(latency(rtts));
    t = performance.now();
    send();
  };
}

/**
 * The server side of a flood or bulk run: call on every message that arrives, with how many it stands for
 * (flood) or its bytes (bulk); prints messages/s (flood) or MB/s (bulk) over the window.
 */
export function counter(): (messages?: number) => void {
  let start = 0;
  let end = 0;
  let count = 0;
  return (messages = 1) => {
    const now = performance.now();
    if (start === 0) {
      start = now + WARM_MS;
      end = start + MS;
    }
    if (now >= end) result(BULK_MODE ? { mbPerSec: count / (MS / 1000) / 1e6 } : { msgsPerSec: count / (MS / 1000) });
    else if (now >= start) count += messages;
  };
}

// ------------------------------------------------------------------ the runner side
export interface PlainRun {
  p50?: number;
  p99?: number;
  p999?: number;
  msgsPerSec?: number;
  mbPerSec?: number;
  error?: string;
}

function line(p: ChildProcess, prefix: string, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: p.stdout as NodeJS.ReadableStream });
    const timer = setTimeout(() => reject(new Error(`no ${prefix.trim()} within ${ms} ms`)), ms);
    rl.on('line', (l) => {
      if (!l.startsWith(prefix)) return;
      clearTimeout(timer);
      rl.close();
      resolve(l.slice(prefix.length));
    });
    p.once('exit', () => reject(new Error(`exited before ${prefix.trim()}`)));
  });
}

/** Runs one harness (`udp`, `tcp`, `ws`, `enet`, `kcp`, `webrtc`, `netlane`; bulk: `udp`, `netlane`) once: a server and a client process. */
export type PlainMeasure = 'pingpong' | 'flood' | 'bulk';

export async function runPlain(contender: string, what: PlainMeasure, pin: boolean, env: Record<string, number> = {}, timeoutMs = 60_000): Promise<PlainRun> {
  const script = fileURLToPath(new URL(`./${contender}.js`, import.meta.url));
  const start = (args: string[]): ChildProcess => {
    const argv = [process.execPath, script, ...args];
    if (pin) argv.unshift('taskset', '-c', '0');
    return spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', process.env.PLAIN_STDERR ? 'inherit' : 'ignore'], env: { ...process.env, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) } });
  };
  const server = start(['server', what]);
  let client: ChildProcess | undefined;
  try {
    const p = await line(server, 'PORT ', 15_000);
    client = start(['client', what, p]);
    return JSON.parse(await line(what === 'pingpong' ? client : server, 'RESULT ', timeoutMs)) as PlainRun;
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    await Promise.all([server, client].map((c) => c && c.exitCode === null && c.signalCode === null && new Promise((r) => c.once('exit', r).kill('SIGKILL'))));
  }
}

/** `npm run bench:plain -- [--pin] [--rounds N] contender[,contender] [pingpong|flood|bulk]` (this file): prints each run. */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const a = process.argv.slice(2);
  const pin = a.includes('--pin');
  const rounds = a.includes('--rounds') ? Number(a[a.indexOf('--rounds') + 1]) : 1;
  const rest = a.filter((x, i) => !x.startsWith('--') && a[i - 1] !== '--rounds');
  const names = (rest[0] ?? 'udp,tcp,ws,enet,kcp,webrtc,netlane').split(',');
  const measures = rest[1] ? [rest[1] as PlainMeasure] : (['pingpong', 'flood'] as const);
  for (let r = 0; r < rounds; r++) for (const m of measures) for (const n of names) console.log(`${n} ${m}${pin ? ' pinned' : ''}: ${JSON.stringify(await runPlain(n, m, pin))}`);
}
