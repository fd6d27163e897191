// Flood resilience over real UDP (issue 16, docs/RUNTIME.md "Under a flood"). A server in a child process
// (flood-server.ts: a NetworkingSockets listen socket, or a relay) is flooded with 100,000 spoofed handshake
// packets from 2,048 loopback source addresses by another child process (flood-sender.ts: as fast as it can
// send, each send with a callback, at the lowest CPU priority, since an attacker's CPU is not the server's).
// Legitimate clients in this process connect (NetworkingSockets: until Connected; the relay: a
// NetworkManager until its relay session is open) every SPACING_MS, first without the flood, then during it.
// After the flood's first WAVE_MS their p99 must stay within RATIO x the quiet p99 (or FLOOR_MS); those that
// start in it, while the server answers every new source once, within WAVE_BOUND_MS; and the server's event
// loop, as its monitorEventLoopDelay reports, must never stall for more than MAX_STALL_MS. The first flood
// warms up the server's JIT and is reported, not judged; timing on a shared 2-core machine is noisy (a round
// fails about half the time there, on one slow connect at the flood's start), so a failed round is measured
// again, up to ROUNDS rounds in all. Figures are printed either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { createInterface } from 'node:readline';
import { ConnectionState, NetworkManager, NetworkingSockets } from '../../src/index.js';

const PACKETS = 100_000;
const SOURCES = 2048;
/** After the flood's first WAVE_MS, the connect p99 may be this many times the quiet p99... */
const RATIO = 3;
/**
 * ...or this many ms, whichever is larger: a relay session takes 3-4 ms quiet, and a server that spends most
 * of its time reading the flood adds queueing of up to some 30 ms here (the kernel's buffer and its own).
 */
const FLOOR_MS = 50;
/**
 * The first datagram of each of the flood's 2,048 sources is let in (each source's share), so in its first
 * tens of milliseconds the server answers 2,048 new sources (some 20 ms of CPU, while it reads the flood at
 * some 5 µs a datagram): a client that starts then waits for that. Connects that start in this window of
 * the flood are judged on their own...
 */
const WAVE_MS = 100;
/** ...each must get in within this: under the 500 ms after which a client repeats a lost HELLO (nothing of its was lost). */
const WAVE_BOUND_MS = 250;
/**
 * When the kernel dropped datagrams in a round (the flood overran the server's socket buffer), a legitimate
 * client's handshake packet may be among them: the client sends it again after its retry interval, which no
 * server can shorten. Such a round's bounds grow by this much.
 */
const KERNEL_DROP_ALLOWANCE_MS = 1000;
const MAX_STALL_MS = 50;
/** Legitimate connects measured without the flood. */
const QUIET_CONNECTS = 20;
/** A legitimate connect starts this often, ms, quiet and during the flood. */
const SPACING_MS = 40;
/** A connect that takes longer counts as this long (it failed). */
const CONNECT_TIMEOUT_MS = 3000;
/** Judged rounds at most (after the warm-up flood): a failed one is measured again; the first pass ends it. */
const ROUNDS = 10;

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
 * Legitimate clients: each `connect()` resolves with its time, ms, until the server took it (CONNECT_TIMEOUT_MS
 * if it did not). Each has its own socket, open until `closeAll()`, so that no port of this process is used
 * twice in a round (a new client on the port of a handshake the server saw under load within the last second
 * may wait for a retry: its per-source share, docs/RUNTIME.md).
 */
interface Clients {
  connect(): Promise<number>;
  closeAll(): void;
  close(): void;
}

/** Resolves with the ms from now until `done` is called, or CONNECT_TIMEOUT_MS. */
function timed(start: (done: () => void) => void): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(CONNECT_TIMEOUT_MS), CONNECT_TIMEOUT_MS);
    start(() => {
      clearTimeout(t);
      resolve(performance.now() - t0);
    });
  });
}

/** NetworkingSockets connects, until Connected (seen on the status channel, when the driver sees it). */
class SocketClients implements Clients {
  readonly #sockets = new NetworkingSockets();
  readonly #pending = new Map<number, () => void>();
  readonly #open: number[] = [];
  readonly #onStatus = (m: unknown): void => {
    const { connection, state } = m as { connection: number; state: number };
    if (state === ConnectionState.Connected) this.#pending.get(connection)?.();
  };

  constructor(private readonly port: number) {
    diagnosticsChannel.subscribe('netlane:connection:status', this.#onStatus);
  }

  connect(): Promise<number> {
    return timed((done) => {
      const conn = this.#sockets.connect(`127.0.0.1:${this.port}`);
      this.#open.push(conn);
      this.#pending.set(conn, () => {
        this.#pending.delete(conn);
        this.#sockets.runCallbacks();
        done();
      });
    });
  }

  closeAll(): void {
    for (const c of this.#open.splice(0)) this.#sockets.closeConnection(c, 0, '', false);
    this.#pending.clear();
    this.#sockets.runCallbacks();
  }

  close(): void {
    diagnosticsChannel.unsubscribe('netlane:connection:status', this.#onStatus);
    this.#sockets.close();
  }
}

/** NetworkManagers, until their relay session is open (PING, PONG, SESSION_REQUEST, SESSION_OK), looked at every ms. */
class RelayClients implements Clients {
  readonly #open: NetworkManager[] = [];
  readonly #pending = new Map<NetworkManager, () => void>();
  readonly #poll = setInterval(() => {
    for (const [nm, done] of this.#pending) {
      if (nm.relay.primary === null) continue;
      this.#pending.delete(nm);
      done();
    }
  }, 1);

  constructor(private readonly relay: string) {}

  connect(): Promise<number> {
    return timed((done) => {
      const nm = new NetworkManager({ relays: [this.relay], bindAddress: '127.0.0.1' });
      this.#open.push(nm);
      this.#pending.set(nm, done);
    });
  }

  closeAll(): void {
    for (const nm of this.#open.splice(0)) nm.close();
    this.#pending.clear();
  }

  close(): void {
    this.closeAll();
    clearInterval(this.#poll);
  }
}

/** Starts a connect every SPACING_MS while `more(started)` holds; resolves with every connect's time. */
async function series(clients: Clients, more: (started: number) => boolean): Promise<number[]> {
  const all: Promise<number>[] = [];
  while (more(all.length)) {
    all.push(clients.connect());
    await new Promise((r) => setTimeout(r, SPACING_MS));
  }
  return Promise.all(all);
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
  stats: Record<string, number>;
}

async function report(server: Child): Promise<Report> {
  server.send('report');
  return JSON.parse(await server.line(5000, 'the server report')) as Report;
}

const describeRound = (what: string, times: number[], r: Report): string =>
  `${what}: connect p99 ${fmt(p99(times))} ms (n ${times.length}); server: loop delay max ${r.maxDelayMs} ms p99 ${r.p99DelayMs} ms, longest GC ${r.maxGcMs} ms, cpu ${r.cpuMs} ms`;

/** The scenario: a server and a sender of `mode`, a warm-up flood, then up to ROUNDS judged rounds. */
async function flood(mode: 'sockets' | 'relay', makeClients: (port: number, relay: string) => Clients): Promise<void> {
  const server = new Child(['dist/test/integration/flood-server.js', mode]);
  let sender: Child | null = null;
  let clients: Clients | null = null;
  try {
    const { port, key } = JSON.parse(await server.line(5000, 'the server port')) as { port: number; key: string };
    sender = new Child(['dist/test/integration/flood-sender.js', mode, String(port), String(PACKETS), String(SOURCES)]);
    assert.equal(await sender.line(10_000, 'the sender ready'), 'ready');
    clients = makeClients(port, key);
    for (let round = 0; ; round++) {
      const name = round === 0 ? `${mode} warm-up` : `${mode} round ${round}`;
      await report(server);
      const quiet = await series(clients, (n) => n < QUIET_CONNECTS);
      const q = await report(server);
      sender.send('go');
      let floodDone: string | null = null;
      const flooding = sender.line(30_000, 'the flood').then((l) => (floodDone = l));
      const during = await series(clients, () => floodDone === null);
      await flooding;
      const f = await report(server);
      clients.closeAll();
      const { sent, ms } = JSON.parse(floodDone ?? '{}') as { sent: number; ms: number };
      const wave = during.slice(0, Math.ceil(WAVE_MS / SPACING_MS));
      const after = during.slice(wave.length);
      const drops = f.kernelDrops - q.kernelDrops;
      const allowance = drops > 0 ? KERNEL_DROP_ALLOWANCE_MS : 0;
      const bound = Math.max(RATIO * p99(quiet), FLOOR_MS) + allowance;
      const waveBound = WAVE_BOUND_MS + allowance;
      const pass = p99(after) <= bound && Math.max(...wave) <= waveBound && f.maxDelayMs <= MAX_STALL_MS;
      console.log(`# ${name}: ${describeRound('quiet', quiet, q)}`);
      console.log(`# ${name}: ${describeRound(`flood of ${sent} in ${ms} ms`, during, f)}, kernel drops ${f.kernelDrops - q.kernelDrops}`);
      console.log(`# ${name}: after the first ${WAVE_MS} ms p99 ${fmt(p99(after))} ms (bound ${fmt(bound)}), in them max ${fmt(Math.max(...wave))} ms (bound ${waveBound}${allowance > 0 ? `, both with ${allowance} ms for a handshake packet among the kernel's ${drops} drops` : ''}): ${pass ? 'pass' : 'FAIL'}`);
      console.log(`# ${name}: slowest (ms into the flood: ms) ${during.map((t, i) => [i * SPACING_MS, t] as const).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([at, t]) => `${at}: ${fmt(t)}`).join(', ')}`);
      console.log(`# ${name}: server totals ${JSON.stringify({ ...f.stats, kernelDrops: f.kernelDrops })}`);
      if (round === 0) continue;
      if (pass || round === ROUNDS) {
        assert.ok(p99(after) <= bound, `${name}: connect p99 during the flood ${fmt(p99(after))} ms > ${fmt(bound)} ms (quiet p99 ${fmt(p99(quiet))} ms)`);
        assert.ok(Math.max(...wave) <= waveBound, `${name}: a connect in the flood's first ${WAVE_MS} ms took ${fmt(Math.max(...wave))} ms`);
        assert.ok(f.maxDelayMs <= MAX_STALL_MS, `${name}: the server's event loop stalled ${f.maxDelayMs} ms`);
        return;
      }
    }
  } finally {
    clients?.close();
    sender?.kill();
    server.kill();
  }
}

const title = (who: string): string => `flood: ${PACKETS} spoofed handshake packets from ${SOURCES} sources at ${who}; legitimate clients get in within ${RATIO}x their quiet p99 (${FLOOR_MS} ms at least; ${WAVE_BOUND_MS} ms in the flood's first ${WAVE_MS} ms), the event loop never stalls over ${MAX_STALL_MS} ms`;

test(title('a NetworkingSockets listen socket (HELLO, CONNECT_REQUEST without or with a forged cookie)'), { timeout: 60_000 }, () => flood('sockets', (port) => new SocketClients(port)));

test(title('a relay (PING, SESSION_REQUEST with a forged cookie)'), { timeout: 60_000 }, () => flood('relay', (_port, relay) => new RelayClients(relay)));
