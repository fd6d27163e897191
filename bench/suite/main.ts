// The benchmark suite: netlane against raw UDP, TCP, ws, ENet, KCP and WebRTC, each contender in its own
// server and client processes on loopback, alternating round by round after a warm-up, with the plain
// harnesses of bench/plain run in the same rounds as a check of the ruler itself.
//   npm run bench                  full suite (under 15 minutes)
//   npm run bench -- --quick       smaller counts and shorter runs (under 3 minutes)
//   npm run bench -- --only pingpong,bulk    a subset (plain: the plain harnesses alone)
//       --contenders udp,netlane   only these contenders (by contender or label)
//       --rounds N                 rounds per comparison
//       --place pinned|free        ping-pong under one placement only
//       --out FILE                 where a subset run writes (default bench/results/partial.json)
//   npm run bench -- --only fleet  the relay fleet (docs/RELAY.md "Performance"): directory, two-hop forwarding; needs redis-server (only with --only)
//   npm run bench -- --render bench/results/full.json[,more.json]   (tables from saved runs, merged; nothing measured)
// Writes bench/results/full.json (quick.json, partial.json) and regenerates the tables of docs/BENCHMARKS.md
// between its markers (a full or quick run, or --render).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BENCH_DIR, type Mode } from './common.js';
import { BULK_UDP, renderTables, renderGoals, type Suite } from './report.js';
import { runPlain, type PlainMeasure, type PlainRun } from '../plain/lib.js';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const onlyArg = args[args.indexOf('--only') + 1];
const ONLY = args.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : null;
const contArg = args[args.indexOf('--contenders') + 1];
const CONTENDERS_ONLY = args.includes('--contenders') && contArg ? new Set(contArg.split(',')) : null;
const roundsArg = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : null;
const outArg = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;
/** `--place pinned` or `--place free`: ping-pong under that placement only. */
const placeArg = args.includes('--place') ? args[args.indexOf('--place') + 1] : undefined;
/** Old behaviours, to measure what each cost (see peer.ts): `servers` keeps every contender's server alive through a comparison. */
const LEGACY = new Set((process.env.BENCH_LEGACY ?? '').split(','));
const HOST = '127.0.0.1';
const PEER = new URL('./peer.js', import.meta.url).pathname;
const SCALE = new URL('./scale.js', import.meta.url).pathname;
const RELAY = new URL('./relay.js', import.meta.url).pathname;
const ROOT = join(BENCH_DIR, '..');

/** One row of a comparison: a contender, the mode it sends in, and the label the tables show. */
interface Entry {
  readonly label: string;
  readonly contender: string;
  readonly mode: Mode;
}
const e = (label: string, contender: string, mode: Mode = 'reliable'): Entry => ({ label, contender, mode });

/** Where the processes run: pinned to CPU 0 or free; in the loss namespace or on the host's loopback. */
interface Place {
  readonly pin: boolean;
  readonly netns: string | null;
}
const FREE: Place = { pin: false, netns: null };
const PINNED: Place = { pin: true, netns: null };

type Run = Record<string, number | string | null>;

function command(place: Place, script: string, rest: string[]): [string, string[]] {
  const argv = [process.execPath, script, ...rest];
  if (place.pin) argv.unshift('taskset', '-c', '0');
  if (place.netns) argv.unshift('ip', 'netns', 'exec', place.netns);
  return [argv[0] as string, argv.slice(1)];
}

/** Each child's stdout lines, read by one reader for the child's whole life (a reader per wait could drop lines). */
const readers = new WeakMap<ChildProcess, { lines: string[]; wake: (() => void) | null; exited: boolean }>();

function reader(proc: ChildProcess): { lines: string[]; wake: (() => void) | null; exited: boolean } {
  const known = readers.get(proc);
  if (known) return known;
  const state = { lines: [] as string[], wake: null as (() => void) | null, exited: false };
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (l) => {
    state.lines.push(l);
    state.wake?.();
  });
  proc.once('exit', () => {
    state.exited = true;
    state.wake?.();
  });
  readers.set(proc, state);
  return state;
}

/** Resolves with the next stdout line starting with `prefix` (other lines are skipped), or rejects after `ms`. */
function lineFrom(proc: ChildProcess, prefix: string, ms: number): Promise<string> {
  const r = reader(proc);
  return new Promise((resolve, reject) => {
    const finish = (f: () => void): void => {
      clearTimeout(timer);
      r.wake = null;
      f();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`no ${prefix.trim()} within ${ms} ms`))), ms);
    const check = (): void => {
      for (let l = r.lines.shift(); l !== undefined; l = r.lines.shift()) {
        if (l.startsWith(prefix)) return finish(() => resolve(l.slice(prefix.length)));
      }
      if (r.exited) finish(() => reject(new Error(`process exited before ${prefix.trim()}`)));
    };
    r.wake = check;
    check();
  });
}

const children = new Set<ChildProcess>();
function start(place: Place, script: string, rest: string[]): ChildProcess {
  const [cmd, argv] = command(place, script, rest);
  const p = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'ignore'] });
  children.add(p);
  p.once('exit', () => children.delete(p));
  return p;
}
function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });
}

async function server(contender: string, place: Place, measure: string): Promise<{ port: number; proc: ChildProcess } | { error: string }> {
  const proc = start(place, PEER, ['server', contender, HOST, measure]);
  try {
    return { port: Number(await lineFrom(proc, 'READY ', 15_000)), proc };
  } catch (err) {
    await stop(proc);
    return { error: (err as Error).message };
  }
}

async function client(entry: Entry, port: number, place: Place, measure: string, params: Record<string, unknown>, capMs: number): Promise<Run> {
  const proc = start(place, PEER, ['client', entry.contender, HOST, String(port), measure, JSON.stringify({ ...params, mode: entry.mode, capMs })]);
  try {
    return JSON.parse(await lineFrom(proc, 'RESULT ', capMs + 15_000)) as Run;
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    await stop(proc);
  }
}

let epoch = 1;

/** The plain harness (bench/plain) that checks an entry of the suite, by label. */
const PLAIN: Record<string, string> = { udp: 'udp', [BULK_UDP]: 'udp', tcp: 'tcp', ws: 'ws', enet: 'enet', kcp: 'kcp', webrtc: 'webrtc', netlane: 'netlane' };
/** The plain harnesses that have a bulk measure. */
const PLAIN_BULK: ReadonlySet<string> = new Set(['udp', 'netlane']);

interface PlainCheck {
  readonly what: PlainMeasure;
  readonly env: Record<string, number>;
  readonly into: Record<string, Run[]>;
}

/** Whether an entry (by label) has a plain harness for this check. */
function plainFor(label: string, check: PlainCheck): string | undefined {
  const name = PLAIN[label];
  return name && (check.what !== 'bulk' || PLAIN_BULK.has(name)) ? name : undefined;
}

async function plainRun(name: string, place: Place, check: PlainCheck): Promise<void> {
  const r = (await runPlain(name, check.what, place.pin, check.env)) as PlainRun & Run;
  (check.into[name] ??= []).push(r);
  process.stdout.write(`  plain ${check.what} ${name}${place.pin ? ' pinned' : ''}: ${summary(r)}\n`);
}

/**
 * Runs `measure` for every entry at one placement: `rounds` rounds, each running every entry once in turn,
 * so that a slow moment of the machine hits all contenders alike. Each run has a server of its own, started
 * before and stopped after it: no other contender's process is alive while one is measured. With `plain`,
 * each entry that has a plain harness also runs it, right after its own run.
 */
async function compare(all: readonly Entry[], place: Place, measure: string, params: Record<string, unknown>, rounds: number, capMs: number, plain?: PlainCheck): Promise<Record<string, Run[]>> {
  const entries = CONTENDERS_ONLY ? all.filter((x) => CONTENDERS_ONLY.has(x.contender) || CONTENDERS_ONLY.has(x.label)) : all;
  const out: Record<string, Run[]> = {};
  const shared = new Map<string, Awaited<ReturnType<typeof server>>>();
  if (LEGACY.has('servers')) for (const en of entries) if (!shared.has(en.contender)) shared.set(en.contender, await server(en.contender, place, measure));
  for (let r = 0; r < (roundsArg ?? rounds); r++) {
    for (const en of entries) {
      const s = shared.get(en.contender) ?? (await server(en.contender, place, measure));
      const run = 'error' in s ? { error: s.error } : await client(en, s.port, place, measure, { ...params, epoch: epoch++ & 0x7fff }, capMs);
      if (!shared.has(en.contender) && !('error' in s)) await stop(s.proc);
      (out[en.label] ??= []).push(run);
      process.stdout.write(`  ${measure} ${en.label}${place.pin ? ' pinned' : ''}${place.netns ? ' (loss)' : ''}: ${summary(run)}\n`);
      const name = plain && plainFor(en.label, plain);
      if (plain && name) await plainRun(name, place, plain);
    }
  }
  for (const s of shared.values()) if (!('error' in s)) await stop(s.proc);
  return out;
}

/** The plain harnesses alone (`--only plain`), `rounds` rounds. */
async function plainOnly(place: Place, check: PlainCheck, rounds: number): Promise<void> {
  const names = [...new Set(Object.values(PLAIN))].filter((n) => (!CONTENDERS_ONLY || CONTENDERS_ONLY.has(n)) && (check.what !== 'bulk' || PLAIN_BULK.has(n)));
  for (let r = 0; r < (roundsArg ?? rounds); r++) for (const n of names) await plainRun(n, place, check);
}

function summary(r: Run): string {
  if (r.error) return `error: ${r.error}`;
  return Object.entries(r)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => `${k}=${Number(v) >= 100 ? Math.round(Number(v)) : Number(v).toFixed(3)}`)
    .join(' ');
}

// ---------------------------------------------------------------- the loss namespace
class LossNamespace {
  readonly name = `nlbench${process.pid}`;
  #made = false;

  /** Makes the namespace, or returns why it cannot. */
  make(): string | null {
    if (process.getuid?.() !== 0) return 'needs root (ip netns add)';
    if (spawnSync('sh', ['-c', 'command -v nft']).status !== 0) {
      spawnSync('apt-get', ['install', '-y', '-q', 'nftables'], { stdio: 'ignore' });
      if (spawnSync('sh', ['-c', 'command -v nft']).status !== 0) return 'nft is not installed and apt-get install nftables failed';
    }
    const ok = (argv: string[]): boolean => spawnSync(argv[0] as string, argv.slice(1), { stdio: 'ignore' }).status === 0;
    if (!ok(['ip', 'netns', 'add', this.name])) return 'ip netns add failed';
    this.#made = true;
    // One dropped packet must be one wire-sized packet: MTU 1500, no segmentation offload on lo.
    if (!ok(['ip', '-n', this.name, 'link', 'set', 'lo', 'up', 'mtu', '1500'])) return 'cannot bring up lo in the namespace';
    ok(['ip', '-n', this.name, 'link', 'set', 'lo', 'gso_max_segs', '1']);
    return this.setLoss(0) ? null : 'nft cannot load a ruleset in the namespace';
  }

  /** Drops `pct`% of TCP and UDP packets on the input hook (each direction), as network loss does. */
  setLoss(pct: number): boolean {
    const rules = `flush ruleset\ntable inet lossy {\n  chain in {\n    type filter hook input priority 0; policy accept;\n    meta l4proto { tcp, udp } numgen random mod 100 < ${pct} counter drop\n  }\n}\n`;
    return spawnSync('ip', ['netns', 'exec', this.name, 'nft', '-f', '-'], { input: rules }).status === 0;
  }

  remove(): void {
    if (this.#made) spawnSync('ip', ['netns', 'del', this.name]);
    this.#made = false;
  }
}

// ---------------------------------------------------------------- server scale
async function scale(connections: number, idleMs: number, idleSettleMs: number, busyMs: number): Promise<Run> {
  const ask = async (p: ChildProcess, cmd: string): Promise<Record<string, number>> => {
    const reply = lineFrom(p, 'REPLY ', 30_000);
    p.stdin?.write(`${cmd}\n`);
    return JSON.parse(await reply) as Record<string, number>;
  };
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const srv = spawn(process.execPath, ['--expose-gc', SCALE, 'server', HOST], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.add(srv);
  const clients: ChildProcess[] = [];
  try {
    const port = await lineFrom(srv, 'READY ', 15_000);
    const before = await ask(srv, 'MEM');
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) clients.push(start(FREE, SCALE, ['client', HOST, port, String(connections / 2)]));
    await Promise.all(clients.map((c) => lineFrom(c, 'READY ', 120_000)));
    const connectSecs = (Date.now() - t0) / 1000;
    await sleep(500);
    const after = await ask(srv, 'MEM');
    const per = (k: string): number => ((after[k] ?? 0) - (before[k] ?? 0)) / connections;
    // Idle in two windows: `idleMs` after as long again unmeasured, and (the goal's) `idleMs` after a minute
    // unmeasured in all. The keepalive path runs some 125 times a second, so V8 goes on compiling it for most of
    // the first minute (docs/RUNTIME.md "Timers, and what an idle connection costs").
    await sleep(idleMs);
    await ask(srv, 'MARK');
    await sleep(idleMs);
    const early = await ask(srv, 'REPORT');
    await sleep(idleSettleMs);
    await ask(srv, 'MARK');
    await sleep(idleMs);
    const idle = await ask(srv, 'REPORT');
    await ask(srv, 'GO');
    await Promise.all(clients.map((c) => ask(c, 'GO')));
    await sleep(1000);
    await Promise.all([srv, ...clients].map((p) => ask(p, 'MARK')));
    await sleep(busyMs);
    const busy = await ask(srv, 'REPORT');
    const down = await Promise.all(clients.map((c) => ask(c, 'REPORT')));
    return {
      connections,
      connectSeconds: connectSecs,
      idleCpuPct: idle.cpuPct ?? null,
      idleMainCpuPct: idle.mainCpuPct ?? null,
      idleEarlyCpuPct: early.cpuPct ?? null,
      idleEarlyMainCpuPct: early.mainCpuPct ?? null,
      idleEarlyAfterSeconds: idleMs / 1000,
      idleAfterSeconds: (2 * idleMs + idleSettleMs) / 1000,
      heapPerConn: per('heapUsed'),
      externalPerConn: per('external'),
      rssPerConn: per('rss'),
      busyCpuPct: busy.cpuPct ?? null,
      upPerSec: busy.perSec ?? null,
      upP50: busy.p50 ?? null,
      upP99: busy.p99 ?? null,
      upP999: busy.p999 ?? null,
      serverPacketsOutPerSec: busy.packetsOutPerSec ?? null,
      serverPacketsInPerSec: busy.packetsInPerSec ?? null,
      downPerSec: down.reduce((s, d) => s + (d.perSec ?? 0), 0),
      downP50: Math.max(...down.map((d) => d.p50 ?? 0)),
      downP99: Math.max(...down.map((d) => d.p99 ?? 0)),
      downP999: Math.max(...down.map((d) => d.p999 ?? 0)),
      busySeconds: busyMs / 1000,
    };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    await Promise.all([srv, ...clients].map(stop));
  }
}

// ---------------------------------------------------------------- the suite
const ALL_PINGPONG = [e('udp', 'udp', 'unreliable'), e('tcp', 'tcp'), e('ws', 'ws'), e('enet', 'enet'), e('kcp', 'kcp'), e('webrtc', 'webrtc'), e('netlane', 'netlane'), e('netlane unreliable', 'netlane', 'unreliable'), e('netlane unencrypted', 'netlane-plain')];
const RELIABLE_SMALL = [e('tcp', 'tcp'), e('tcp batched', 'tcp-batch'), e('ws', 'ws'), e('enet', 'enet'), e('kcp', 'kcp'), e('webrtc', 'webrtc'), e('netlane', 'netlane'), e('netlane unencrypted', 'netlane-plain')];
const UNRELIABLE_SMALL = [e('udp', 'udp', 'unreliable'), e('enet unreliable', 'enet', 'unreliable'), e('webrtc unreliable', 'webrtc', 'unreliable'), e('netlane unreliable', 'netlane', 'unreliable'), e('netlane unencrypted unreliable', 'netlane-plain', 'unreliable')];
const BULK = [e('udp (1200 B datagrams)', 'udp', 'unreliable'), e('tcp', 'tcp'), e('ws', 'ws'), e('enet', 'enet'), e('webrtc', 'webrtc'), e('netlane', 'netlane'), e('netlane unencrypted', 'netlane-plain')];
const LOSSY = [e('tcp', 'tcp'), e('ws', 'ws'), e('enet', 'enet'), e('kcp', 'kcp'), e('webrtc', 'webrtc'), e('netlane', 'netlane')];
const HOL = [e('tcp', 'tcp'), e('ws', 'ws'), e('enet', 'enet'), e('webrtc', 'webrtc'), e('netlane', 'netlane')];
const CONNECT = [e('tcp', 'tcp'), e('ws', 'ws'), e('enet', 'enet'), e('netlane', 'netlane'), e('netlane unencrypted', 'netlane-plain')];

const Q = QUICK
  ? { rounds: 1, pp: 1000, ppWarm: 500, ppWarmMs: 200, lossWarmMs: 200, ms: 400, warmMs: 200, lossLevels: [0, 5], lossPp: 300, lossMs: 400, lossCapMs: 6000, holMs: 1000, holWarmMs: 200, conns: 300, scaleConns: 200, scaleIdleMs: 500, scaleIdleSettleMs: 500, scaleBusyMs: 2000 }
  : { rounds: 3, pp: 20_000, ppWarm: 2000, ppWarmMs: 3000, lossWarmMs: 500, ms: 1500, warmMs: 500, lossLevels: [0, 2, 5], lossPp: 5000, lossMs: 1500, lossCapMs: 12_000, holMs: 15_000, holWarmMs: 1000, conns: 1000, scaleConns: 1000, scaleIdleMs: 20_000, scaleIdleSettleMs: 20_000, scaleBusyMs: 30_000 };

const want = (m: string): boolean => !ONLY || ONLY.has(m);

function installContenders(): void {
  if (existsSync(join(BENCH_DIR, 'node_modules', 'ws'))) return;
  console.log('installing the contenders into bench/node_modules (once)...');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: BENCH_DIR, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm ci in bench/ failed');
}

/** One relay-forwarding run: a forwarder process (`naive` or `netlane`) and a load process. */
async function relayRun(kind: string, size: number): Promise<Run> {
  const fw = start(FREE, RELAY, ['forwarder', kind]);
  try {
    const [port = '', key = ''] = (await lineFrom(fw, 'READY ', 15_000)).split(' ');
    const load = start(FREE, RELAY, ['load', port, kind, String(size), String(Q.ms), key]);
    try {
      return JSON.parse(await lineFrom(load, 'RESULT ', Q.ms + 20_000)) as Run;
    } finally {
      await stop(load);
    }
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    await stop(fw);
  }
}

/**
 * The fleet (docs/RELAY.md "Trunks"): two `fleet` relay processes on one redis-server. Directory registrations on the
 * first and lookups of them on the second; then, round by round, forwarding through the naive forwarder, one netlane
 * relay, and two fleet relays (A -> relay 1 -> trunk -> relay 2 -> B), each with the load of the relay measure.
 */
async function fleetMeasure(m: Suite['measures'], rounds: number): Promise<void> {
  const { startRedis } = await import('../../test/support/redis.js');
  const redis = await startRedis();
  const relays = [start(FREE, RELAY, ['forwarder', 'fleet', redis.url]), start(FREE, RELAY, ['forwarder', 'fleet', redis.url])];
  try {
    const [[p1 = '', k1 = ''], [p2 = '', k2 = '']] = (await Promise.all(relays.map((r) => lineFrom(r, 'READY ', 15_000)))).map((l) => l.split(' ')) as [string[], string[]];
    const dir = start(FREE, RELAY, ['directory', p1, k1, p2, k2, String(QUICK ? 500 : 2000)]);
    try {
      const r = JSON.parse(await lineFrom(dir, 'RESULT ', 120_000)) as Run;
      m.fleetDirectory = { fleet: [r] };
      console.log(`  fleet directory: ${summary(r)}`);
    } finally {
      await stop(dir);
    }
    for (const size of [128, 1200]) {
      const runs: Record<string, Run[]> = { naive: [], netlane: [], 'two-hop': [] };
      for (let round = 0; round < rounds; round++) {
        for (const kind of ['naive', 'netlane', 'two-hop']) {
          let r: Run;
          if (kind === 'two-hop') {
            const load = start(FREE, RELAY, ['load', p1, 'two-hop', String(size), String(Q.ms), k1, p2, k2]);
            try {
              r = JSON.parse(await lineFrom(load, 'RESULT ', Q.ms + 30_000)) as Run;
            } catch (err) {
              r = { error: (err as Error).message };
            } finally {
              await stop(load);
            }
          } else r = await relayRun(kind, size);
          runs[kind]?.push(r);
          console.log(`  fleet forwarding ${size} B ${kind}: ${summary(r)}`);
        }
      }
      m[`fleetForward${size}`] = runs;
    }
  } finally {
    for (const r of relays) await stop(r);
    await redis.stop();
  }
}

/** One step of the run: its name, its estimated cost (s, from the cost model) and what it does. */
interface Step {
  readonly name: string;
  readonly estimate: number;
  readonly run: () => Promise<void>;
}

/** Seconds each kind of run takes beyond what it measures: processes started, imports, connects. */
const OVERHEAD = { suite: 0.7, plain: 0.6, relay: 0.8 };
const mmss = (secs: number): string => `${Math.floor(Math.round(secs) / 60)}:${String(Math.round(secs) % 60).padStart(2, '0')}`;

/**
 * Runs the steps, printing after each `[k/N] step, elapsed m:ss, about m:ss left`: what the model plans for
 * the steps left, scaled by how long the done steps took against the model (with 30 s of the model's own
 * word in it, so that one short step does not swing the estimate).
 */
async function runSteps(steps: readonly Step[]): Promise<void> {
  const t0 = Date.now();
  let estimatedDone = 0;
  for (const [i, step] of steps.entries()) {
    await step.run();
    estimatedDone += step.estimate;
    const elapsed = (Date.now() - t0) / 1000;
    const left = steps.slice(i + 1).reduce((s, x) => s + x.estimate, 0) * ((elapsed + 30) / (estimatedDone + 30));
    console.log(`[${i + 1}/${steps.length}] ${step.name}, elapsed ${mmss(elapsed)}, about ${mmss(left)} left`);
  }
}

async function main(): Promise<void> {
  installContenders();
  const began = Date.now();
  const suite: Suite = {
    command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    date: new Date().toISOString(),
    node: process.version,
    machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}`,
    quick: QUICK,
    rounds: roundsArg ?? Q.rounds,
    measures: {},
    notes: [],
  };
  const m = suite.measures;
  const steps: Step[] = [];
  const R = roundsArg ?? Q.rounds;
  const count = (list: readonly Entry[]): number => (CONTENDERS_ONLY ? list.filter((x) => CONTENDERS_ONLY.has(x.contender) || CONTENDERS_ONLY.has(x.label)).length : list.length);
  const plains = (list: readonly Entry[], what: PlainMeasure): number =>
    list.filter((x) => plainFor(x.label, { what, env: {}, into: {} }) && (!CONTENDERS_ONLY || CONTENDERS_ONLY.has(x.contender) || CONTENDERS_ONLY.has(x.label))).length;
  /** A comparison as a step: its cost is runs x (overhead + what one run measures), plain checks included. */
  const step = (name: string, list: readonly Entry[], rounds: number, perRun: number, run: () => Promise<void>, plainPerRun = 0, plainWhat: PlainMeasure = 'pingpong'): void => {
    const withPlain = plainPerRun > 0 && want('plain');
    steps.push({ name, estimate: rounds * (count(list) * (OVERHEAD.suite + perRun) + (withPlain ? plains(list, plainWhat) * (OVERHEAD.plain + plainPerRun) : 0)), run });
  };

  const ppParams = { n: Q.pp, warm: Q.ppWarm, warmMs: Q.ppWarmMs, size: 64 };
  const ppSecs = ((Q.pp + Q.ppWarm) * 150) / 1e6 + Q.ppWarmMs / 1000;
  const plainPp = { N: Q.pp, WARM: Q.ppWarm, PP_WARM_MS: Q.ppWarmMs };
  const plainFl = { MS: Q.ms, WARM_MS: Q.warmMs };
  const check = (what: PlainMeasure, key: string, env: Record<string, number>): PlainCheck | undefined => (want('plain') ? { what, env, into: (m[key] ??= {}) } : undefined);
  if (want('pingpong')) {
    if (placeArg !== 'pinned') step('ping-pong, 64 B, free', ALL_PINGPONG, R, ppSecs, async () => void (m.pingpongFree = await compare(ALL_PINGPONG, FREE, 'pingpong', ppParams, R, 60_000, check('pingpong', 'plainPingpongFree', plainPp))), ppSecs);
    if (placeArg !== 'free') step('ping-pong, 64 B, pinned', ALL_PINGPONG, R, ppSecs, async () => void (m.pingpongPinned = await compare(ALL_PINGPONG, PINNED, 'pingpong', ppParams, R, 60_000, check('pingpong', 'plainPingpongPinned', plainPp))), ppSecs);
  } else if (want('plain') && !want('throughput')) {
    // `--only plain`: the plain harnesses alone. Listed with pingpong or throughput, they run in its rounds.
    const only = (what: PlainMeasure, place: Place, key: string, env: Record<string, number>, secs: number, name: string): void =>
      void steps.push({ name, estimate: R * (what === 'bulk' ? PLAIN_BULK.size : 7) * (OVERHEAD.plain + secs), run: () => plainOnly(place, { what, env, into: (m[key] ??= {}) }, R) });
    only('pingpong', FREE, 'plainPingpongFree', plainPp, ppSecs, 'plain ping-pong, free');
    only('pingpong', PINNED, 'plainPingpongPinned', plainPp, ppSecs, 'plain ping-pong, pinned');
    only('flood', FREE, 'plainFlood', plainFl, (Q.ms + Q.warmMs) / 1000, 'plain flood, 100 B');
    if (!want('bulk')) only('bulk', FREE, 'plainBulk', { ...plainFl, BULK: 512 * 1024 }, (Q.ms + Q.warmMs) / 1000, 'plain bulk, 512 KiB');
  }
  const tput = { durationMs: Q.ms, warmMs: Q.warmMs, size: 100 };
  const tputSecs = (Q.ms + Q.warmMs) / 1000 + 0.2;
  if (want('throughput')) {
    // The plain flood checks both tables: raw UDP (unreliable) in the second, the reliable contenders in the first.
    const fl = check('flood', 'plainFlood', plainFl);
    step('small reliable messages, 100 B', RELIABLE_SMALL, R, tputSecs, async () => void (m.reliableSmall = await compare(RELIABLE_SMALL, FREE, 'throughput', tput, R, 30_000, fl)), tputSecs);
    step('small unreliable messages, 100 B', UNRELIABLE_SMALL, R, tputSecs, async () => void (m.unreliableSmall = await compare(UNRELIABLE_SMALL, FREE, 'throughput', tput, R, 30_000, fl)), tputSecs);
  }
  if (want('bulk')) {
    step('bulk, 64 KiB reliable', BULK, R, tputSecs, async () => void (m.bulk64k = await compare(BULK, FREE, 'throughput', { ...tput, size: 64 * 1024 }, R, 30_000)));
    // The plain bulk harnesses (raw UDP and netlane) check the 512 KiB table.
    const bk = check('bulk', 'plainBulk', { ...plainFl, BULK: 512 * 1024 });
    step('bulk, 512 KiB reliable', BULK, R, tputSecs, async () => void (m.bulk512k = await compare(BULK, FREE, 'throughput', { ...tput, size: 512 * 1024 }, R, 30_000, bk)), tputSecs, 'bulk');
  }
  if (want('loss') || want('hol')) {
    const ns = new LossNamespace();
    let why: string | null = null;
    const place: Place = { pin: false, netns: ns.name };
    steps.push({
      name: 'loss namespace',
      estimate: 0.5,
      run: async () => {
        why = ns.make();
        if (why) {
          suite.notes.push(`Loss and head-of-line measures skipped: ${why}.`);
          console.log(`loss measures skipped: ${why}`);
        }
      },
    });
    const inNs = (name: string, list: readonly Entry[], perRun: number, loss: number, fn: () => Promise<void>): void =>
      step(name, list, 1, perRun, async () => {
        if (why) return;
        ns.setLoss(loss);
        await fn();
      });
    if (want('loss')) {
      for (const pct of Q.lossLevels) {
        inNs(`ping-pong at ${pct} % loss`, LOSSY, (Q.ppWarm + Q.lossPp) * (pct > 0 ? 500 : 100) / 1e6 + Q.lossWarmMs / 1000 + 0.3, pct, async () => void (m[`lossPingpong${pct}`] = await compare(LOSSY, place, 'pingpong', { n: Q.lossPp, warm: Q.ppWarm, warmMs: Q.lossWarmMs, warmMaxMs: 2 * Q.lossWarmMs, size: 64 }, 1, Q.lossCapMs)));
        inNs(`100 B reliable at ${pct} % loss`, LOSSY, (Q.lossMs + Q.warmMs) / 1000 + 0.5, pct, async () => void (m[`lossThroughput${pct}`] = await compare(LOSSY, place, 'throughput', { ...tput, durationMs: Q.lossMs }, 1, 30_000)));
      }
    }
    if (want('hol')) {
      inNs('head-of-line, positions alone, 5 % loss', HOL, (Q.holMs + Q.holWarmMs) / 1000 + 0.5, 5, async () => void (m.holAlone = await compare(HOL, place, 'hol', { durationMs: Q.holMs, warmMs: Q.holWarmMs, bulk: false }, 1, Q.holMs + Q.holWarmMs + 20_000)));
      inNs('head-of-line, positions with bulk, 5 % loss', HOL, (Q.holMs + Q.holWarmMs) / 1000 + 0.5, 5, async () => void (m.holBulk = await compare(HOL, place, 'hol', { durationMs: Q.holMs, warmMs: Q.holWarmMs, bulk: true }, 1, Q.holMs + Q.holWarmMs + 20_000)));
    }
    steps.push({ name: 'loss namespace removed', estimate: 0.1, run: async () => ns.remove() });
  }
  if (want('relay')) {
    for (const size of [128, 1200]) {
      steps.push({
        name: `relay forwarding, ${size} B`,
        estimate: R * 2 * (OVERHEAD.relay + Q.ms / 1000 + Math.min(2, Q.ms / 2000) + 0.3),
        run: async () => {
          const runs: Record<string, Run[]> = { naive: [], netlane: [] };
          for (let round = 0; round < R; round++)
            for (const kind of ['naive', 'netlane']) {
              const r = await relayRun(kind, size);
              runs[kind]?.push(r);
              console.log(`  relay ${size} B ${kind}: ${summary(r)}`);
            }
          m[`relay${size}`] = runs;
        },
      });
    }
  }
  if (want('fleet') && ONLY) {
    steps.push({ name: 'fleet: directory, two-hop forwarding', estimate: 10 + R * 6 * (OVERHEAD.relay + Q.ms / 1000 + 1.3), run: () => fleetMeasure(m, R) });
  }
  if (want('connect')) step('connections per second', CONNECT, R, Q.conns / 1500, async () => void (m.connect = await compare(CONNECT, FREE, 'connect', { connections: Q.conns, concurrency: 16 }, R, 60_000)));
  if (want('scale')) {
    steps.push({
      name: `server scale, ${Q.scaleConns} connections`,
      estimate: 3 + Q.scaleConns / 800 + (3 * Q.scaleIdleMs + Q.scaleIdleSettleMs + Q.scaleBusyMs) / 1000 + 2,
      run: async () => {
        const r = await scale(Q.scaleConns, Q.scaleIdleMs, Q.scaleIdleSettleMs, Q.scaleBusyMs);
        console.log(`  scale: ${summary(r)}`);
        m.scale = { netlane: [r] };
      },
    });
  }
  console.log(`${steps.length} steps, about ${mmss(steps.reduce((x, st) => x + st.estimate, 0))} planned`);
  await runSteps(steps);
  suite.seconds = Math.round((Date.now() - began) / 1000);
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const file = outArg ?? join(dir, ONLY || CONTENDERS_ONLY || roundsArg || placeArg ? 'partial.json' : QUICK ? 'quick.json' : 'full.json');
  writeFileSync(file, `${JSON.stringify(suite, null, 1)}\n`);
  const partial = Boolean(ONLY || CONTENDERS_ONLY || roundsArg || placeArg);
  if (!partial) render(suite);
  console.log(`done in ${suite.seconds} s: ${file}${partial ? '' : ', docs/BENCHMARKS.md'}`);
}

/** Several saved runs as one: measures of later files replace those of earlier ones; notes and commands are kept. */
function merge(files: readonly string[]): Suite {
  const all = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Suite);
  const first = all[0];
  if (!first) throw new Error('--render needs a file');
  if (all.length === 1) return first;
  return {
    ...first,
    command: all.map((x) => x.command).join('; '),
    seconds: all.reduce((t, x) => t + (x.seconds ?? 0), 0),
    measures: Object.assign({}, ...all.map((x) => x.measures)) as Suite['measures'],
    notes: all.flatMap((x) => x.notes),
    sources: files.map((f) => f.replace(/^.*bench\/results\//, 'bench/results/')),
  };
}

/** Rewrites the generated parts of docs/BENCHMARKS.md: the tables and the goals, each between its markers. */
function render(suite: Suite): void {
  const doc = join(ROOT, 'docs', 'BENCHMARKS.md');
  let text = readFileSync(doc, 'utf8');
  for (const [name, body] of [
    ['suite', renderTables(suite)],
    ['goals', renderGoals(suite)],
  ] as const) {
    const begin = `<!-- ${name}:begin -->`;
    const end = `<!-- ${name}:end -->`;
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i < 0 || j < i) throw new Error(`docs/BENCHMARKS.md has no ${name} markers`);
    text = `${text.slice(0, i + begin.length)}\n${body}\n${text.slice(j)}`;
  }
  writeFileSync(doc, text);
}

const cleanup = (): void => {
  for (const p of children) void stop(p);
  spawnSync('sh', ['-c', `ip netns del nlbench${process.pid} 2>/dev/null`]);
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
const renderArg = args.includes('--render') ? args[args.indexOf('--render') + 1] : undefined;
try {
  if (renderArg) render(merge(renderArg.split(',')));
  else await main();
} finally {
  cleanup();
}
