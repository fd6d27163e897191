// The benchmark suite: netlane against raw UDP, TCP, ws, ENet, KCP and WebRTC, each contender in its own
// server and client processes on loopback, alternating round by round after a warm-up.
//   npm run bench                  full suite (under 10 minutes)
//   npm run bench -- --quick       smaller counts and shorter runs (under 2 minutes)
//   npm run bench -- --only pingpong,bulk
//   npm run bench -- --render bench/results/full.json    (tables from a saved run, nothing measured)
// Writes bench/results/latest.json and regenerates the tables of docs/BENCHMARKS.md between its markers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BENCH_DIR, type Mode } from './common.js';
import { renderTables, type Suite } from './report.js';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const onlyArg = args[args.indexOf('--only') + 1];
const ONLY = args.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : null;
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
function stop(p: ChildProcess): void {
  if (p.exitCode === null && p.pid !== undefined) p.kill('SIGTERM');
}

async function server(contender: string, place: Place): Promise<{ port: number; proc: ChildProcess } | { error: string }> {
  const proc = start(place, PEER, ['server', contender, HOST]);
  try {
    return { port: Number(await lineFrom(proc, 'READY ', 15_000)), proc };
  } catch (err) {
    stop(proc);
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
    stop(proc);
  }
}

let epoch = 1;

/**
 * Runs `measure` for every entry at one placement: one server per contender, then `rounds` rounds, each
 * running every entry's client once in turn, so that a slow moment of the machine hits all contenders alike.
 */
async function compare(entries: readonly Entry[], place: Place, measure: string, params: Record<string, unknown>, rounds: number, capMs: number): Promise<Record<string, Run[]>> {
  const out: Record<string, Run[]> = {};
  const servers = new Map<string, Awaited<ReturnType<typeof server>>>();
  for (const en of entries) if (!servers.has(en.contender)) servers.set(en.contender, await server(en.contender, place));
  for (let r = 0; r < rounds; r++) {
    for (const en of entries) {
      const s = servers.get(en.contender);
      const run = !s || 'error' in s ? { error: s ? s.error : 'no server' } : await client(en, s.port, place, measure, { ...params, epoch: epoch++ & 0x7fff }, capMs);
      (out[en.label] ??= []).push(run);
      process.stdout.write(`  ${measure} ${en.label}${place.pin ? ' pinned' : ''}${place.netns ? ' (loss)' : ''}: ${summary(run)}\n`);
    }
  }
  for (const s of servers.values()) if (!('error' in s)) stop(s.proc);
  return out;
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
async function scale(connections: number, idleMs: number, busyMs: number): Promise<Run> {
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
      heapPerConn: per('heapUsed'),
      externalPerConn: per('external'),
      rssPerConn: per('rss'),
      busyCpuPct: busy.cpuPct ?? null,
      upPerSec: busy.perSec ?? null,
      upP50: busy.p50 ?? null,
      upP99: busy.p99 ?? null,
      downPerSec: down.reduce((s, d) => s + (d.perSec ?? 0), 0),
      downP99: Math.max(...down.map((d) => d.p99 ?? 0)),
      busySeconds: busyMs / 1000,
    };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    for (const p of [srv, ...clients]) stop(p);
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
  ? { rounds: 1, pp: 1000, ppWarm: 500, ms: 400, warmMs: 200, lossLevels: [0, 5], lossPp: 100, lossMs: 400, lossCapMs: 6000, holMs: 1000, conns: 300, scaleConns: 200, scaleIdleMs: 500, scaleBusyMs: 2000 }
  : { rounds: 3, pp: 5000, ppWarm: 2000, ms: 1500, warmMs: 500, lossLevels: [0, 2, 5], lossPp: 1000, lossMs: 1500, lossCapMs: 12_000, holMs: 5000, conns: 1000, scaleConns: 1000, scaleIdleMs: 5000, scaleBusyMs: 30_000 };

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
      stop(load);
    }
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    stop(fw);
  }
}

async function main(): Promise<void> {
  installContenders();
  const began = Date.now();
  const suite: Suite = {
    command: `npm run bench${QUICK ? ' -- --quick' : ''}${ONLY ? ` -- --only ${[...ONLY].join(',')}` : ''}`,
    date: new Date().toISOString(),
    node: process.version,
    machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}`,
    quick: QUICK,
    rounds: Q.rounds,
    measures: {},
    notes: [],
  };
  const m = suite.measures;
  const ppParams = { n: Q.pp, warm: Q.ppWarm, size: 64 };
  if (want('pingpong')) {
    console.log('ping-pong, 64 B');
    m.pingpongFree = await compare(ALL_PINGPONG, FREE, 'pingpong', ppParams, Q.rounds, 60_000);
    m.pingpongPinned = await compare(ALL_PINGPONG, PINNED, 'pingpong', ppParams, Q.rounds, 60_000);
  }
  const tput = { durationMs: Q.ms, warmMs: Q.warmMs, size: 100 };
  if (want('throughput')) {
    console.log('small messages, 100 B one way');
    m.reliableSmall = await compare(RELIABLE_SMALL, FREE, 'throughput', tput, Q.rounds, 30_000);
    m.unreliableSmall = await compare(UNRELIABLE_SMALL, FREE, 'throughput', tput, Q.rounds, 30_000);
  }
  if (want('bulk')) {
    console.log('bulk, reliable');
    m.bulk64k = await compare(BULK, FREE, 'throughput', { ...tput, size: 64 * 1024 }, Q.rounds, 30_000);
    m.bulk512k = await compare(BULK, FREE, 'throughput', { ...tput, size: 512 * 1024 }, Q.rounds, 30_000);
  }
  if (want('loss') || want('hol')) {
    const ns = new LossNamespace();
    const why = ns.make();
    if (why) {
      suite.notes.push(`Loss and head-of-line measures skipped: ${why}.`);
      console.log(`loss measures skipped: ${why}`);
    } else {
      const place: Place = { pin: false, netns: ns.name };
      try {
        if (want('loss')) {
          for (const pct of Q.lossLevels) {
            console.log(`loss ${pct}% each way (nftables in ${ns.name})`);
            ns.setLoss(pct);
            m[`lossPingpong${pct}`] = await compare(LOSSY, place, 'pingpong', { n: Q.lossPp, warm: 50, size: 64 }, 1, Q.lossCapMs);
            m[`lossThroughput${pct}`] = await compare(LOSSY, place, 'throughput', { ...tput, durationMs: Q.lossMs }, 1, 30_000);
          }
        }
        if (want('hol')) {
          console.log('head-of-line: 60 Hz positions with and without a bulk transfer, 5% loss');
          ns.setLoss(5);
          m.holAlone = await compare(HOL, place, 'hol', { durationMs: Q.holMs, bulk: false }, 1, Q.holMs + 20_000);
          m.holBulk = await compare(HOL, place, 'hol', { durationMs: Q.holMs, bulk: true }, 1, Q.holMs + 20_000);
        }
      } finally {
        ns.remove();
      }
    }
  }
  if (want('relay')) {
    for (const size of [128, 1200]) {
      console.log(`relay forwarding, ${size} B: netlane relay node vs a naive dgram forwarder`);
      const runs: Record<string, Run[]> = { naive: [], netlane: [] };
      for (let round = 0; round < Q.rounds; round++) for (const kind of ['naive', 'netlane']) runs[kind]?.push(await relayRun(kind, size));
      m[`relay${size}`] = runs;
    }
  }
  if (want('connect')) {
    console.log('connections per second');
    m.connect = await compare(CONNECT, FREE, 'connect', { connections: Q.conns, concurrency: 16 }, Q.rounds, 60_000);
  }
  if (want('scale')) {
    console.log(`server scale: ${Q.scaleConns} netlane connections from 2 client processes, 30 Hz x 100 B each way`);
    const r = await scale(Q.scaleConns, Q.scaleIdleMs, Q.scaleBusyMs);
    console.log(`  ${summary(r)}`);
    m.scale = { netlane: [r] };
  }
  suite.seconds = Math.round((Date.now() - began) / 1000);
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, ONLY ? 'partial.json' : QUICK ? 'quick.json' : 'full.json');
  writeFileSync(file, `${JSON.stringify(suite, null, 1)}\n`);
  if (!ONLY) render(suite);
  console.log(`done in ${suite.seconds} s: ${file}${ONLY ? '' : ', docs/BENCHMARKS.md'}`);
}

/** Rewrites the tables of docs/BENCHMARKS.md between its markers. */
function render(suite: Suite): void {
  const doc = join(ROOT, 'docs', 'BENCHMARKS.md');
  const text = readFileSync(doc, 'utf8');
  const begin = '<!-- suite:begin -->';
  const end = '<!-- suite:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error('docs/BENCHMARKS.md has no suite markers');
  writeFileSync(doc, `${text.slice(0, i + begin.length)}\n${renderTables(suite)}\n${text.slice(j)}`);
}

const cleanup = (): void => {
  for (const p of children) stop(p);
  spawnSync('sh', ['-c', `ip netns del nlbench${process.pid} 2>/dev/null`]);
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
const renderArg = args.includes('--render') ? args[args.indexOf('--render') + 1] : undefined;
try {
  if (renderArg) render(JSON.parse(readFileSync(renderArg, 'utf8')) as Suite);
  else await main();
} finally {
  cleanup();
}
