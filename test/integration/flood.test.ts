// Flood resilience over real UDP (issue 16): a server in a child process (test/integration/flood-server.ts) is
// flooded with 100,000 spoofed handshake packets from 2,048 loopback sources by another child process
// (flood-sender.ts), as fast as that process can send. Legitimate NetworkingSockets clients in this process
// connect before and during the flood; during it their p99 connect time must stay within 3x the quiet p99
// (or FLOOR_MS), and the server's event loop must never stall for more than MAX_STALL_MS
// (monitorEventLoopDelay in the server process). Timing on a shared machine is noisy: a failed round is
// measured once more before the test fails, and the figures are printed either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { createInterface } from 'node:readline';
import { ConnectionState, NetworkingSockets } from '../../src/index.js';

const PACKETS = 100_000;
const SOURCES = 2048;
/** Flood p99 may be this many times the quiet p99... */
const RATIO = 3;
/** ...or this many ms, whichever is larger (a 2 ms quiet p99 must not make the test flaky). */
const FLOOR_MS = 20;
const MAX_STALL_MS = 50;
/** Legitimate connects measured without the flood. */
const QUIET_CONNECTS = 20;
/** A legitimate connect starts this often, ms, quiet and during the flood. */
const SPACING_MS = 20;
/** A connect that takes longer counts as this long (it failed). */
const CONNECT_TIMEOUT_MS = 3000;
const ROUNDS = 2;

/** A child process speaking JSON lines (or `ready`) on stdout and taking commands on stdin. */
class Child {
  readonly proc: ChildProcess;
  readonly #lines: string[] = [];
  #waiter: (() => void) | null = null;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      this.#lines.push(l);
      this.#waiter?.();
    });
    this.proc.once('exit', () => this.#waiter?.());
  }

  send(line: string): void {
    this.proc.stdin?.write(`${line}\n`);
  }

  /** The next line on stdout (bounded wait). */
  async line(timeoutMs: number, what: string): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`${what}: the child exited (${this.proc.exitCode ?? this.proc.signalCode})`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#waiter = null;
    }
    return this.#lines.shift() as string;
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

/**
 * Connect times (ms) of legitimate clients, each from its own socket, until Connected. The connections stay
 * open until {@link closeAll}, so that no port of this process is used twice in a round (a new client on the
 * port of a handshake the server saw within its per-source share would wait for a retry: docs/RUNTIME.md).
 */
class Connector {
  readonly #sockets = new NetworkingSockets();
  readonly #open: number[] = [];
  readonly #pending = new Map<number, (ms: number) => void>();
  readonly #started = new Map<number, number>();
  readonly #onStatus = (m: unknown): void => {
    const { connection, state } = m as { connection: number; state: number };
    const done = this.#pending.get(connection);
    if (!done || state !== ConnectionState.Connected) return;
    done(performance.now() - (this.#started.get(connection) as number));
  };

  constructor(private readonly port: number) {
    diagnosticsChannel.subscribe('netlane:connection:status', this.#onStatus);
  }

  /** One connect: resolves with its time (CONNECT_TIMEOUT_MS if it did not connect). */
  connect(): Promise<number> {
    const conn = this.#sockets.connect(`127.0.0.1:${this.port}`);
    this.#open.push(conn);
    this.#started.set(conn, performance.now());
    return new Promise((resolve) => {
      const t = setTimeout(() => finish(CONNECT_TIMEOUT_MS), CONNECT_TIMEOUT_MS);
      const finish = (ms: number): void => {
        clearTimeout(t);
        this.#pending.delete(conn);
        this.#sockets.runCallbacks();
        resolve(ms);
      };
      this.#pending.set(conn, finish);
    });
  }

  /** Starts a connect every SPACING_MS while `more(started)` holds; resolves with every connect's time. */
  async series(more: (started: number) => boolean): Promise<number[]> {
    const all: Promise<number>[] = [];
    while (more(all.length)) {
      all.push(this.connect());
      await new Promise((r) => setTimeout(r, SPACING_MS));
    }
    return Promise.all(all);
  }

  closeAll(): void {
    for (const c of this.#open.splice(0)) this.#sockets.closeConnection(c, 0, '', false);
    this.#started.clear();
  }

  close(): void {
    diagnosticsChannel.unsubscribe('netlane:connection:status', this.#onStatus);
    this.#sockets.close();
  }
}

const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(xs.length * 0.99) - 1)] as number;
const fmt = (x: number): string => x.toFixed(1);

/** What the server process reports about the time since its last report (flood-server.ts). */
interface Report {
  maxDelayMs: number;
  p99DelayMs: number;
  maxGcMs: number;
  cpuMs: number;
  kernelDrops: number;
  stats: { datagramsReceived: number; handshakeRefused: number; statelessRepliesSent: number; datagramsShed: number };
}

async function report(server: Child): Promise<Report> {
  server.send('report');
  return JSON.parse(await server.line(5000, 'the server report')) as Report;
}

const describe = (what: string, times: number[], r: Report): string =>
  `${what}: connect p99 ${fmt(p99(times))} ms (n ${times.length}); server: loop delay max ${r.maxDelayMs} ms p99 ${r.p99DelayMs} ms, longest GC ${r.maxGcMs} ms, cpu ${r.cpuMs} ms`;

test(`flood: ${PACKETS} spoofed handshake packets from ${SOURCES} sources; legitimate connects stay within ${RATIO}x their quiet p99 and the server's event loop never stalls more than ${MAX_STALL_MS} ms`, { timeout: 60_000 }, async () => {
  const server = new Child(['dist/test/integration/flood-server.js', 'sockets']);
  let sender: Child | null = null;
  let connector: Connector | null = null;
  try {
    const { port } = JSON.parse(await server.line(5000, 'the server port')) as { port: number };
    sender = new Child(['dist/test/integration/flood-sender.js', 'sockets', String(port), String(PACKETS), String(SOURCES)]);
    assert.equal(await sender.line(10_000, 'the sender ready'), 'ready');
    connector = new Connector(port);
    for (let round = 1; ; round++) {
      await report(server);
      const quiet = await connector.series((n) => n < QUIET_CONNECTS);
      const q = await report(server);
      sender.send('go');
      let floodDone: string | null = null;
      const flooding = sender.line(30_000, 'the flood').then((l) => (floodDone = l));
      const during = await connector.series(() => floodDone === null);
      await flooding;
      const f = await report(server);
      connector.closeAll();
      const { sent, ms } = JSON.parse(floodDone ?? '{}') as { sent: number; ms: number };
      const bound = Math.max(RATIO * p99(quiet), FLOOR_MS);
      const pass = p99(during) <= bound && f.maxDelayMs <= MAX_STALL_MS;
      console.log(`# round ${round}: ${describe('quiet', quiet, q)}`);
      console.log(`# round ${round}: ${describe(`flood of ${sent} in ${ms} ms`, during, f)}; connect bound ${fmt(bound)} ms: ${pass ? 'pass' : 'FAIL'}`);
      console.log(`# round ${round}: slowest connects (ms after the flood began: ms) ${during.map((t, i) => [i * SPACING_MS, t] as const).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([at, t]) => `${at}: ${fmt(t)}`).join(', ')}`);
      console.log(`# round ${round}: server totals: ${JSON.stringify({ ...f.stats, kernelDrops: f.kernelDrops })}`);
      if (pass || round === ROUNDS) {
        assert.ok(p99(during) <= bound, `connect p99 during the flood ${fmt(p99(during))} ms > ${fmt(bound)} ms (quiet p99 ${fmt(p99(quiet))} ms)`);
        assert.ok(f.maxDelayMs <= MAX_STALL_MS, `the server's event loop stalled ${f.maxDelayMs} ms`);
        break;
      }
    }
  } finally {
    connector?.close();
    sender?.kill();
    server.kill();
  }
});
