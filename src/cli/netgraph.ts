// The net graph: a stats snapshot (what a relay or server serves at GET /stats.json, or what the demo builds
// from its own connections) rendered as lines of text, as Steam's net graph shows a connection: ping, quality
// local/remote, loss, in and out rates, queued bytes per lane, and a 60-second sparkline of ping and of rate.
// Pure: no clock, no terminal; `netlane top` and the demo's --watch draw what it returns.

import type { StatsConnection, StatsSnapshot } from '../io/metrics.js';

export type { StatsConnection, StatsSnapshot };

/** Seconds of history a sparkline shows. */
export const GRAPH_SECONDS = 60;
const BARS = '▁▂▃▄▅▆▇█';

interface Series {
  /** Samples by unix second; the newest last. */
  readonly seconds: number[];
  readonly ping: number[];
  readonly rate: number[];
}

/**
 * The last {@link GRAPH_SECONDS} seconds of ping and rate of each connection, one sample per second (a later
 * snapshot of the same second replaces the sample). Fed by the caller; a connection gone from the snapshots
 * is forgotten once its newest sample is older than the window.
 */
export class NetGraphHistory {
  readonly #series = new Map<string, Series>();

  add(s: StatsSnapshot): void {
    const sec = Math.floor(s.unixMs / 1000);
    for (const c of s.connections) {
      let h = this.#series.get(c.id);
      if (!h) {
        h = { seconds: [], ping: [], rate: [] };
        this.#series.set(c.id, h);
      }
      const last = h.seconds.length - 1;
      if (last >= 0 && h.seconds[last] === sec) {
        h.ping[last] = c.pingMs;
        h.rate[last] = c.inBytesPerSec + c.outBytesPerSec;
      } else {
        h.seconds.push(sec);
        h.ping.push(c.pingMs);
        h.rate.push(c.inBytesPerSec + c.outBytesPerSec);
      }
    }
    for (const [id, h] of this.#series) {
      while (h.seconds.length > 0 && (h.seconds[0] ?? 0) <= sec - GRAPH_SECONDS) {
        h.seconds.shift();
        h.ping.shift();
        h.rate.shift();
      }
      if (h.seconds.length === 0) this.#series.delete(id);
    }
  }

  /** The samples of the window ending at `unixMs`, one per second, oldest first; NaN where a second has none. */
  window(id: string, which: 'ping' | 'rate', unixMs: number): number[] {
    const out = new Array<number>(GRAPH_SECONDS).fill(Number.NaN);
    const h = this.#series.get(id);
    if (!h) return out;
    const end = Math.floor(unixMs / 1000);
    const values = which === 'ping' ? h.ping : h.rate;
    h.seconds.forEach((sec, i) => {
      const k = GRAPH_SECONDS - 1 - (end - sec);
      if (k >= 0 && k < GRAPH_SECONDS) out[k] = values[i] ?? Number.NaN;
    });
    return out;
  }
}

/** A sparkline of `values` (NaN or negative: no sample, a space), scaled from 0 to their largest. */
export function sparkline(values: readonly number[]): string {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  let out = '';
  for (const v of values) {
    if (!(v >= 0)) out += ' ';
    else out += BARS[max === 0 ? 0 : Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1) + 0.5))];
  }
  return out;
}

/** Bytes per second, as people read them: `812 B/s`, `12.3 KB/s`, `4.05 MB/s`. */
export function rate(bytesPerSec: number): string {
  return `${bytes(bytesPerSec)}/s`;
}

/** Bytes: `812 B`, `12.3 KB`, `4.05 MB` (1 KB = 1024 B). */
export function bytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MB`;
}

const percent = (q: number): string => (q < 0 ? '  ?  ' : `${(q * 100).toFixed(1)}%`);

/** Options of {@link renderNetGraph}. */
export interface NetGraphOptions {
  /** Lines are cut to this many columns (the terminal's width). Default: not cut. */
  readonly width?: number;
  /** A title in place of `netlane <kind>`. */
  readonly title?: string;
}

/**
 * The net graph of a snapshot: a header, then per connection its state, ping, quality local and remote,
 * loss (the share of the peer's packets that did not arrive, from the local quality), in and out rates, the
 * queued bytes of each lane, and the sparklines of ping and of rate (in + out) over the last 60 seconds of
 * `history` (add the snapshot to it first), then the numeric totals. Without connections it says so.
 */
export function renderNetGraph(snapshot: StatsSnapshot, history: NetGraphHistory, options: NetGraphOptions = {}): string[] {
  const at = new Date(snapshot.unixMs).toISOString().slice(11, 19);
  const n = snapshot.connections.length;
  const lines = [`${options.title ?? `netlane ${snapshot.kind}`} · ${n} connection${n === 1 ? '' : 's'} · ${at} UTC`];
  if (n === 0) lines.push('  (no connections)');
  for (const c of snapshot.connections) {
    const loss = c.qualityLocal < 0 ? '  ?  ' : `${((1 - c.qualityLocal) * 100).toFixed(1)}%`;
    const lanes = c.queuedBytesPerLane.length === 0 ? 'none' : c.queuedBytesPerLane.map((b, i) => `${i}:${bytes(b)}`).join(' ');
    const pings = history.window(c.id, 'ping', snapshot.unixMs);
    const rates = history.window(c.id, 'rate', snapshot.unixMs);
    const peak = (v: number[]): number => v.reduce((m, x) => (x > m ? x : m), 0);
    lines.push(
      `${c.name || c.id}  [${c.state}]`,
      `  ping ${c.pingMs < 0 ? '  ?' : String(Math.round(c.pingMs)).padStart(3)} ms   quality ${percent(c.qualityLocal)} local / ${percent(c.qualityRemote)} remote   loss ${loss}`,
      `  in  ${rate(c.inBytesPerSec).padStart(11)} ${String(Math.round(c.inPacketsPerSec)).padStart(5)} pkt/s   out ${rate(c.outBytesPerSec).padStart(11)} ${String(Math.round(c.outPacketsPerSec)).padStart(5)} pkt/s`,
      `  queued per lane: ${lanes}`,
      `  ping |${sparkline(pings)}| max ${Math.round(peak(pings))} ms`,
      `  rate |${sparkline(rates)}| max ${rate(peak(rates))}`,
    );
  }
  const totals = Object.entries(snapshot.totals).filter((e): e is [string, number] => typeof e[1] === 'number');
  if (totals.length > 0) lines.push(`totals: ${totals.map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(1)}`).join('  ')}`);
  const w = options.width;
  return w !== undefined && w > 0 ? lines.map((l) => cut(l, w)) : lines;
}

/** A line cut to `width` characters (code points: the bars are one column each). */
function cut(line: string, width: number): string {
  const chars = [...line];
  return chars.length <= width ? line : chars.slice(0, width).join('');
}

/**
 * Draws frames in place on a terminal, or as plain lines elsewhere: on a TTY each frame moves the cursor up
 * over the previous one and clears to the end of the screen before writing; piped, a frame is written as it
 * is, followed by a blank line. Returns what to write for `lines` (no I/O: the caller writes it).
 */
export class FrameWriter {
  readonly #tty: boolean;
  #previous: readonly string[] = [];

  constructor(tty: boolean) {
    this.#tty = tty;
  }

  frame(lines: readonly string[]): string {
    const body = lines.join('\n') + '\n';
    if (!this.#tty) return body + '\n';
    const out = `${this.#up()}\r\x1b[J${body}`;
    this.#previous = lines;
    return out;
  }

  /** A line that stays above the frames (an event): on a TTY the frame moves down under it, drawn again as it was. */
  above(line: string): string {
    if (!this.#tty) return line + '\n';
    const again = this.#previous.length > 0 ? this.#previous.join('\n') + '\n' : '';
    return `${this.#up()}\r\x1b[J${line}\n${again}`;
  }

  #up(): string {
    return this.#previous.length > 0 ? `\x1b[${this.#previous.length}A` : '';
  }
}
