// One process of a benchmark run: a server, or a client that runs one measure and prints its result.
//   node dist/bench/suite/peer.js server CONTENDER HOST [MEASURE]
//       prints `READY <port>`, then serves until killed.
//   node dist/bench/suite/peer.js client CONTENDER HOST PORT MEASURE JSON_PARAMS
//       prints `RESULT <json>` and exits.
// The server answers every measure: it echoes pings, counts data and reports, and records position ages.
import {
  HEADER,
  Kind,
  epochOf,
  kindOf,
  mainThread,
  message,
  modeOf,
  nowUs,
  quantile,
  seqOf,
  timeOf,
  view,
  type Contender,
  type Link,
  type Mode,
} from './common.js';
import { contender, enetOptions } from './contenders.js';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';

/**
 * The server sends a Progress message each time this many more Data bytes have arrived, to a contender
 * {@link heldByWindow} (its `flood` waits for them). The others get none: their senders are held by their own
 * send buffers, and a reliable message back every 32 KiB put netlane's 100 B flood at 0.55x of its plain
 * harness in a full run (`BENCH_LEGACY=progress` sends them to every contender).
 */
const PROGRESS_EVERY = 32 * 1024;

/** Whether `flood` holds the contender to a window of unacknowledged bytes (its send buffer does not push back: raw UDP, ENet, KCP). */
const heldByWindow = (c: Contender): boolean => !c.backPressure || LEGACY.has('window');

/**
 * The server's garbage collections, as [start, end] pairs in `nowUs` time (the clock positions are
 * stamped with), and whether each was a full collection: the head-of-line result then says how much of the
 * receiver's time went to collections and how many of the worst position ages overlapped one. Watched only
 * with `BENCH_LEGACY=gcwatch`, by a server started for that measure ({@link watchGc}): a `PerformanceObserver`
 * of `gc` entries made the receiving process run a mark-compact every 150-340 ms beside the 64 KiB bulk (the
 * received buffers no longer died young), and netlane's with-bulk p99 read 5,745 µs with it against 3,318 µs
 * without (docs/BENCHMARKS.md "Is the ruler straight?").
 */
const gcs: { start: number; end: number; full: boolean }[] = [];
let gcWatched = false;
const watchGc = (): void => {
  gcWatched = true;
  new PerformanceObserver((list) => {
    const now = nowUs();
    const at = performance.now();
    for (const e of list.getEntries()) {
      const start = now - (at - e.startTime) * 1000;
      const kind = (e.toJSON() as { detail?: { kind?: number } | null }).detail?.kind;
      gcs.push({ start, end: start + e.duration * 1000, full: kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR });
    }
  }).observe({ entryTypes: ['gc'] });
};

/**
 * Receiver figures over the positions of one head-of-line measure (sent at `arrival - age`): its collections,
 * and its waits for a CPU (`waits[i]`: what the main thread waited, runnable, between the arrivals of
 * positions i - 1 and i).
 */
function receiverFigures(arrivals: number[], ages: number[], waits: number[]): Record<string, number> {
  if (arrivals.length === 0) return {};
  const from = (arrivals[0] as number) - (ages[0] as number);
  const to = arrivals.at(-1) as number;
  let gcMs = 0;
  let gcFull = 0;
  for (const g of gcs) {
    if (g.end < from || g.start > to) continue;
    gcMs += (g.end - g.start) / 1000;
    if (g.full) gcFull++;
  }
  // The worst 1 % of ages (at least one): how many of them waited through a collection.
  const order = ages.map((_, i) => i).sort((x, y) => (ages[y] as number) - (ages[x] as number));
  const worst = order.slice(0, Math.max(1, Math.ceil(ages.length / 100)));
  let inGc = 0;
  let waited = 0;
  for (const i of worst) {
    const arrived = arrivals[i] as number;
    const sent = arrived - (ages[i] as number);
    if (gcs.some((g) => g.end >= sent && g.start <= arrived)) inGc++;
    // Waited for a CPU, since the previous position arrived, for at least half of this one's age.
    if ((waits[i] ?? 0) >= (ages[i] as number) / 2) waited++;
  }
  let cpuWait = 0;
  for (const w of waits) cpuWait += w;
  return { ...(gcWatched ? { gcMs: Math.round(gcMs), gcFull, worstInGc: inGc } : {}), cpuWaitMs: Math.round(cpuWait / 1000), worstCpuWait: waited, worst: worst.length };
}

function serveLink(c: Contender, link: Link): void {
  const replyMode: Mode = c.modes.includes('reliable') ? 'reliable' : 'unreliable';
  const progress = heldByWindow(c) || LEGACY.has('progress');
  let epoch = -1;
  let count = 0;
  let bytes = 0;
  let nextProgress = PROGRESS_EVERY;
  let positions = 0;
  let ages: number[] = [];
  let arrivals: number[] = [];
  let waits: number[] = [];
  let lastRunDelay = 0;
  const seen = new Set<number>();
  link.onMessage = (d) => {
    const b = view(d);
    const kind = kindOf(b);
    if (kind === Kind.Ping) {
      link.send(b, modeOf(b));
      link.flush();
      return;
    }
    if (epochOf(b) !== epoch) {
      // A measure's warm-up runs in an epoch of its own; what of it arrives after the next epoch began
      // (bulk data still queued on its lane while positions of the next epoch arrive on theirs) is not counted.
      if (seen.has(epochOf(b))) return;
      seen.add(epoch);
      epoch = epochOf(b);
      count = 0;
      bytes = 0;
      nextProgress = PROGRESS_EVERY;
      positions = 0;
      ages = [];
      arrivals = [];
      waits = [];
      lastRunDelay = mainThread().wait;
      gcs.length = 0;
    }
    if (kind === Kind.Data) {
      count++;
      bytes += b.length;
      if (progress && bytes >= nextProgress) {
        nextProgress = bytes + PROGRESS_EVERY;
        link.send(message(HEADER, Kind.Progress, replyMode, epoch, count, bytes), replyMode);
        link.flush();
      }
    } else if (kind === Kind.Position) {
      positions++;
      const now = nowUs();
      ages.push(now - timeOf(b));
      arrivals.push(now);
      const ran = mainThread().wait;
      waits.push(ran - lastRunDelay);
      lastRunDelay = ran;
    } else if (kind === Kind.Report) {
      const gc = receiverFigures(arrivals, ages, waits);
      ages.sort((x, y) => x - y);
      const body = Buffer.from(JSON.stringify({ count, bytes, positions, p50: quantile(ages, 0.5), p99: quantile(ages, 0.99), p999: quantile(ages, 0.999), max: ages.at(-1) ?? null, ...gc }));
      const m = message(HEADER + body.length, Kind.Result, replyMode, epoch, 0);
      m.set(body, HEADER);
      link.send(m, replyMode);
      link.flush();
    }
  };
}

async function server(c: Contender, host: string): Promise<void> {
  const { port } = await c.serve(host, (link) => serveLink(c, link));
  process.stdout.write(`READY ${port}\n`);
  process.on('SIGTERM', () => process.exit(0));
}

interface Params {
  epoch: number;
  mode: Mode;
  /** Ping-pong: round trips measured, after `warm` unmeasured ones and at least `warmMs` (below). */
  n?: number;
  warm?: number;
  /** Throughput and head-of-line: how long to send, ms (after a warm-up of `warmMs`; ping-pong: its least warm-up). */
  durationMs?: number;
  warmMs?: number;
  /** Ping-pong: the warm-up ends after this long (ms) even short of `warm` round trips (TCP at 5 % loss waits 200 ms per loss). */
  warmMaxMs?: number;
  size?: number;
  /** Head-of-line: run a reliable bulk transfer (64 KiB messages) under the position stream. */
  bulk?: boolean;
  /** Connect rate: connections to open, and how many at once. */
  connections?: number;
  concurrency?: number;
  /** The whole measure must end by then (ms); what was measured so far is reported. */
  capMs: number;
}

type Result = Record<string, number | string | null>;

/**
 * Behaviours of the old suite, kept switchable so that what each cost can be measured again:
 * `BENCH_LEGACY=alloc,watchdog,enetpeers,window,progress` (and `servers`, in main.ts; docs/BENCHMARKS.md).
 */
export const LEGACY = new Set((process.env.BENCH_LEGACY ?? '').split(','));

async function pingPong(link: Link, p: Params): Promise<Result> {
  const n = p.n ?? 1000;
  const warm = p.warm ?? 100;
  const size = p.size ?? 64;
  const rtts: number[] = [];
  let seq = 0;
  let lost = 0;
  let sentAt = 0;
  const timeoutMs = p.mode === 'reliable' ? 2000 : 200;
  const deadline = performance.now() + p.capMs;
  // Warm-up: `warm` round trips and at least `warmMs`, past the JIT's first compilations; `start` is the first
  // measured ping.
  const warmUntil = performance.now() + (p.warmMs ?? 0);
  const warmLimit = performance.now() + (p.warmMaxMs ?? Number.POSITIVE_INFINITY);
  let start = -1;
  // One buffer for the run: only the sequence number changes, and only once the previous ping is back.
  const ping = message(size, Kind.Ping, p.mode, p.epoch, 0, 0);
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  await new Promise<void>((resolve) => {
    const send = (): void => {
      if (start < 0 && ((seq >= warm && performance.now() >= warmUntil) || performance.now() >= warmLimit)) start = seq;
      if ((start >= 0 && seq >= start + n) || performance.now() > deadline) {
        resolve();
        return;
      }
      sentAt = performance.now();
      if (LEGACY.has('alloc')) link.send(message(size, Kind.Ping, p.mode, p.epoch, seq, nowUs()), p.mode);
      else {
        ping.writeUInt32LE(seq >>> 0, 4);
        link.send(ping, p.mode);
      }
      link.flush();
    };
    link.onMessage = (d) => {
      const b = view(d);
      if (kindOf(b) !== Kind.Ping || seqOf(b) !== seq) return;
      if (start >= 0) rtts.push((performance.now() - sentAt) * 1000);
      seq++;
      send();
    };
    // A lost ping (unreliable contenders) is counted and the next one sent; the cap ends a stalled run.
    // The check runs every `timeoutMs`: a lost ping waits 1-2 timeouts, and the timer wakes no one meanwhile.
    let last = -1;
    const check = (): void => {
      if (performance.now() > deadline) return resolve();
      if (seq === last) {
        lost++;
        seq++;
        send();
      }
      last = seq;
      watchdog = setTimeout(check, timeoutMs);
    };
    watchdog = LEGACY.has('watchdog')
      ? setInterval(() => {
          if (performance.now() > deadline) resolve();
          else if (performance.now() - sentAt > timeoutMs) {
            lost++;
            seq++;
            send();
          }
        }, 50)
      : setTimeout(check, timeoutMs);
    send();
  });
  clearTimeout(watchdog);
  clearInterval(watchdog);
  rtts.sort((a, b) => a - b);
  return { samples: rtts.length, lost, p50: quantile(rtts, 0.5), p99: quantile(rtts, 0.99), p999: quantile(rtts, 0.999), max: rtts.at(-1) ?? null };
}

/**
 * Sends Data for `ms` as fast as the contender takes it: while `writable()` (its send buffer under
 * SEND_BUFFER_CAP or its own limit). A contender whose send buffer does not push back (raw UDP, ENet, KCP)
 * is held to a window of unacknowledged bytes instead, which the server's Progress messages open. Each
 * event-loop turn sends until the contender or the window says stop, at most 64 messages (256 KiB), so
 * that the process reads its sockets between bursts. The window held every contender until it measured
 * WebRTC at 0.6x and netlane at 0.75x of their plain harnesses (docs/BENCHMARKS.md; `BENCH_LEGACY=window`
 * brings it back, `BENCH_WINDOW=bytes` and `BENCH_BURST=messages` change the two limits). Every message is
 * the same buffer, never modified.
 */
function flood(link: Link, c: Contender, p: Params, epoch: number, ms: number, sizeOverride?: number): Promise<{ sent: number; sentBytes: number }> {
  const size = Math.min(sizeOverride ?? p.size ?? 100, c.maxMessage);
  const mode = p.mode;
  const windowBytes = Number(process.env.BENCH_WINDOW ?? 0) || Math.min(Math.max(1 << 20, 4 * size), 2048 * size);
  const windowed = heldByWindow(c);
  const data = message(size, Kind.Data, mode, epoch, 0, 0);
  const turnBudget = Number(process.env.BENCH_BURST ?? 0) || Math.max(1, Math.min(64, (256 * 1024) / size));
  let acked = 0;
  let lastProgressMs = performance.now();
  let sent = 0;
  let sentBytes = 0;
  const prev = link.onMessage;
  link.onMessage = (d) => {
    const b = view(d);
    if (kindOf(b) === Kind.Progress && epochOf(b) === (epoch & 0xffff)) {
      acked = Math.max(acked, timeOf(b));
      lastProgressMs = performance.now();
    } else prev(d);
  };
  return new Promise((resolve) => {
    const end = performance.now() + ms;
    const turn = (): void => {
      const now = performance.now();
      if (now >= end) {
        link.onMessage = prev;
        resolve({ sent, sentBytes });
        return;
      }
      // Progress lost (unreliable contenders): after 50 ms without any, open the window again.
      if (sentBytes - acked >= windowBytes && now - lastProgressMs > 50) {
        acked = sentBytes;
        lastProgressMs = now;
      }
      let budget = turnBudget;
      while (budget-- > 0 && (!windowed || sentBytes - acked < windowBytes) && link.writable()) {
        if (!link.send(LEGACY.has('alloc') ? message(size, Kind.Data, mode, epoch, sent) : data, mode)) break;
        sent++;
        sentBytes += size;
      }
      link.flush();
      setImmediate(turn);
    };
    turn();
  });
}

/** Asks for the server's counters (again every 100 ms: the request or the answer may be lost). */
function report(link: Link, c: Contender, epoch: number, capMs: number): Promise<Record<string, number | null> | null> {
  const mode: Mode = c.modes.includes('reliable') ? 'reliable' : 'unreliable';
  return new Promise((resolve) => {
    const ask = (): void => {
      link.send(message(HEADER, Kind.Report, mode, epoch, 0), mode);
      link.flush();
    };
    const prev = link.onMessage;
    const again = setInterval(ask, 100);
    const give = setTimeout(() => finish(null), capMs);
    const finish = (r: Record<string, number | null> | null): void => {
      clearInterval(again);
      clearTimeout(give);
      link.onMessage = prev;
      resolve(r);
    };
    link.onMessage = (d) => {
      const b = view(d);
      if (kindOf(b) === Kind.Result && epochOf(b) === (epoch & 0xffff)) finish(JSON.parse(b.subarray(HEADER).toString()) as Record<string, number | null>);
      else prev(d);
    };
    ask();
  });
}

async function throughput(link: Link, c: Contender, p: Params): Promise<Result> {
  const warmEpoch = p.epoch * 2;
  const epoch = p.epoch * 2 + 1;
  link.onMessage = () => undefined;
  await flood(link, c, p, warmEpoch, p.warmMs ?? 300);
  const t0 = nowUs();
  const { sent, sentBytes } = await flood(link, c, p, epoch, p.durationMs ?? 2000);
  const r = await report(link, c, epoch, Math.max(1000, p.capMs - (p.durationMs ?? 2000) - (p.warmMs ?? 300)));
  const secs = (nowUs() - t0) / 1e6;
  if (!r) return { error: 'no report from the server' };
  const count = r.count ?? 0;
  const bytes = r.bytes ?? 0;
  return { msgsPerSec: count / secs, mbPerSec: bytes / secs / 1e6, sent, sentBytes, received: count, loss: sent > 0 ? 1 - count / sent : 0, seconds: secs };
}

async function headOfLine(link: Link, c: Contender, p: Params): Promise<Result> {
  const ms = p.durationMs ?? 5000;
  const posMode: Mode = c.modes.includes('unreliable') ? 'unreliable' : 'reliable';
  link.onMessage = () => undefined;
  // One phase: positions at 60 Hz for `phaseMs`, under a bulk transfer of the same length when `p.bulk`.
  // The warm-up phase (its own epoch, which the server does not report) runs the same code past the JIT's
  // first compilations, so that the measured phase's first positions are not its worst ages.
  const phase = async (epoch: number, phaseMs: number): Promise<number> => {
    let positions = 0;
    const bulk = p.bulk ? flood(link, c, { ...p, mode: 'reliable' }, epoch, phaseMs, 64 * 1024) : null;
    const t0 = nowUs();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = nowUs();
        if (now - t0 >= phaseMs * 1000) {
          resolve();
          return;
        }
        link.send(message(100, Kind.Position, posMode, epoch, positions++), posMode);
        link.flush();
        const next = t0 + (positions * 1e6) / 60;
        setTimeout(tick, Math.max(0, (next - nowUs()) / 1000));
      };
      tick();
    });
    if (bulk) await bulk; // it ends on its own after the same `phaseMs`
    return positions;
  };
  if ((p.warmMs ?? 0) > 0) await phase(p.epoch * 2, p.warmMs ?? 0);
  const epoch = p.epoch * 2 + 1;
  const positions = await phase(epoch, ms);
  const r = await report(link, c, epoch, 20_000);
  if (!r) return { error: 'no report from the server' };
  return { positions, received: r.positions ?? 0, p50: r.p50 ?? null, p99: r.p99 ?? null, p999: r.p999 ?? null, max: r.max ?? null, bulkMBps: r.bytes ? r.bytes / (ms / 1000) / 1e6 : 0, serverGcMs: r.gcMs ?? null, serverGcFull: r.gcFull ?? null, worstInGc: r.worstInGc ?? null, serverCpuWaitMs: r.cpuWaitMs ?? null, worstCpuWait: r.worstCpuWait ?? null, worst: r.worst ?? null };
}

async function connectRate(c: Contender, host: string, port: number, p: Params): Promise<Result> {
  const total = p.connections ?? 200;
  const conc = p.concurrency ?? 16;
  let started = 0;
  let done = 0;
  let failed = 0;
  const t0 = nowUs();
  const deadline = t0 + p.capMs * 1000;
  const worker = async (): Promise<void> => {
    while (started < total && nowUs() < deadline) {
      started++;
      try {
        const l = await c.connect(host, port);
        done++;
        l.close();
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  const secs = (nowUs() - t0) / 1e6;
  return { perSec: done / secs, done, failed };
}

async function client(c: Contender, host: string, port: number, measure: string, p: Params): Promise<Result> {
  if (measure === 'connect') return connectRate(c, host, port, p);
  const link = await c.connect(host, port);
  try {
    if (measure === 'pingpong') return await pingPong(link, p);
    if (measure === 'throughput') return await throughput(link, c, p);
    if (measure === 'hol') return await headOfLine(link, c, p);
    throw new Error(`unknown measure ${measure}`);
  } finally {
    link.close();
  }
}

const [role, name, host, ...rest] = process.argv.slice(2);
if (!role || !name || !host) {
  console.error('usage: peer.js server CONTENDER HOST [MEASURE] | client CONTENDER HOST PORT MEASURE PARAMS');
  process.exit(2);
}
const c = contender(name);
const measureArg = role === 'server' ? rest[0] : rest[1];
enetOptions.peers = LEGACY.has('enetpeers') ? 4000 : measureArg === 'connect' ? 256 : 32;
if (role === 'server') {
  if (measureArg === 'hol' && LEGACY.has('gcwatch')) watchGc();
  await server(c, host);
} else {
  const [port, measure, params] = rest;
  const p = JSON.parse(params ?? '{}') as Params;
  const hard = setTimeout(() => {
    process.stdout.write(`RESULT ${JSON.stringify({ error: `no result within ${p.capMs + 5000} ms` })}\n`);
    process.exit(1);
  }, p.capMs + 5000);
  hard.unref();
  try {
    const r = await client(c, host, Number(port), measure ?? '', p);
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
  } catch (e) {
    process.stdout.write(`RESULT ${JSON.stringify({ error: (e as Error).message })}\n`);
  }
  process.exit(0);
}
