// What every contender of the benchmark suite offers, and the bench's own message header.
// Every contender carries the same messages: the first 16 bytes are this header, the rest is padding.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** How a message is sent: contenders without unreliable delivery (TCP, ws, KCP) send everything reliably. */
export type Mode = 'reliable' | 'unreliable';

/** One connection of one contender, seen the same way by every measure. */
export interface Link {
  /** Queues or sends one message. False when the library refuses it now (its send buffer is full). */
  send(data: Uint8Array, mode: Mode): boolean;
  /** Writes out what `send` queued: the end of a game frame. */
  flush(): void;
  /** Whether the library takes more without growing its buffer past the bench's cap. */
  writable(): boolean;
  /** Set by the measure: every message that arrives. */
  onMessage: (data: Uint8Array) => void;
  close(): void;
  /** Datagrams per second each way over the library's last interval, where it measures them (the scale test). */
  packetRates?(): { out: number; in: number };
}

/** A library under test: how to serve and how to connect. */
export interface Contender {
  readonly name: string;
  /** Delivery modes it has; `unreliable` falls back to reliable where it is missing. */
  readonly modes: readonly Mode[];
  /** Largest message it can carry (raw UDP: one datagram; larger bulk messages are cut into pieces). */
  readonly maxMessage: number;
  /**
   * Whether its send buffer pushes back (`writable()` false at SEND_BUFFER_CAP or the library's own limit).
   * Those without (raw UDP, ENet, KCP) are held to a window of unacknowledged bytes instead.
   */
  readonly backPressure: boolean;
  serve(host: string, onLink: (link: Link) => void): Promise<{ port: number; close(): void }>;
  connect(host: string, port: number): Promise<Link>;
}

/** A send buffer no contender may grow past: the same back-pressure for all of them. */
export const SEND_BUFFER_CAP = 1 << 20;

/** Message kinds (byte 0). */
export const Kind = {
  /** Echoed back as is, in the same mode. */
  Ping: 1,
  /** Counted by the server. */
  Data: 2,
  /** Asks the server for its counters; answered with Result. */
  Report: 3,
  Result: 4,
  /** A position update: the server records its age. */
  Position: 5,
  /** The server's running total of Data bytes, so that the sender keeps a window. */
  Progress: 6,
} as const;

export const HEADER = 16;

/** Microseconds on the system's monotonic clock: the same clock in every process of this machine. */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Header: kind u8, mode u8 (1 reliable), epoch u16, seq u32, send time f64 µs. The epoch names the client
 * run: the server resets its counters when it changes, so no reset message has to survive loss.
 */
export function message(size: number, kind: number, mode: Mode, epoch: number, seq: number, t = nowUs()): Buffer {
  const b = Buffer.allocUnsafe(Math.max(size, HEADER));
  b[0] = kind;
  b[1] = mode === 'reliable' ? 1 : 0;
  b.writeUInt16LE(epoch & 0xffff, 2);
  b.writeUInt32LE(seq >>> 0, 4);
  b.writeDoubleLE(t, 8);
  return b;
}

export function view(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export const kindOf = (b: Buffer): number => b[0] ?? 0;
export const modeOf = (b: Buffer): Mode => (b[1] === 1 ? 'reliable' : 'unreliable');
export const epochOf = (b: Buffer): number => b.readUInt16LE(2);
export const seqOf = (b: Buffer): number => b.readUInt32LE(4);
export const timeOf = (b: Buffer): number => b.readDoubleLE(8);

/** `host:port`, with an IPv6 host in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export const BENCH_DIR = fileURLToPath(new URL('../../../bench/', import.meta.url));

/** Imports a contender's package from bench/node_modules (never from netlane's own dependencies). */
export async function importBench<T>(name: string): Promise<T> {
  if (!existsSync(join(BENCH_DIR, 'node_modules'))) throw new Error('bench/node_modules is missing: run npm run bench once');
  const { load } = (await import(pathToFileURL(join(BENCH_DIR, 'load.mjs')).href)) as { load: (n: string) => Promise<Record<string, unknown>> };
  const m = await load(name);
  // A CommonJS package arrives as `default`; its named exports may or may not be detected.
  const d = m.default;
  return (d && (typeof d === 'object' || typeof d === 'function') ? { ...(d as object), ...m } : m) as T;
}

/** Resolves when `fn` returns true, checked every `everyMs`; rejects after `timeoutMs`. */
export function until(fn: () => boolean, timeoutMs: number, what: string, everyMs = 1): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = (): void => {
      if (fn()) resolve();
      else if (Date.now() - t0 > timeoutMs) reject(new Error(`timed out after ${timeoutMs} ms: ${what}`));
      else setTimeout(tick, everyMs);
    };
    tick();
  });
}

/**
 * This process's main thread, from Linux's /proc/self/schedstat (ns): `cpu`, how long (µs) it has run on a CPU,
 * and `wait`, how long it has waited, runnable, for one, since it started. Zeros where the file is missing, so
 * that a figure reads 0, not a guess.
 */
export function mainThread(): { cpu: number; wait: number } {
  try {
    const [cpu = '0', wait = '0'] = readFileSync('/proc/self/schedstat', 'latin1').split(' ');
    return { cpu: Number(cpu) / 1000, wait: Number(wait) / 1000 };
  } catch {
    return { cpu: 0, wait: 0 };
  }
}
