import type { SocketAddress } from '../core/types.js';
import { Admission } from '../util/admission.js';
import type { Rng } from '../util/rng.js';

/** Most unauthenticated datagrams handled per pass (one event-loop turn) unless told otherwise. */
export const DEFAULT_ADMISSION_BUDGET = 256;
/**
 * Unauthenticated datagrams and the replies they cause may take this share of the clock on average, so
 * that under a sustained flood reading the socket keeps the rest (libuv reads at most 32 datagrams per
 * turn) and the kernel's buffer does not overflow and drop at random...
 */
const WORK_SHARE = 0.5;
/**
 * ...and run this far ahead of it, µs: a burst of new sources (every source of a flood is new at its
 * start) is answered in a few tens of milliseconds, while the kernel's receive buffer (4 MiB asked, some
 * 6,500 small datagrams) holds what arrives meanwhile.
 */
const WORK_BURST_US = 20_000;
/** Longest pass, µs: the most a pass holds the event loop (and the socket unread). */
const PASS_MAX_US = 2_000;
/** Most datagrams of each admission class waiting at once unless told otherwise (a power of two). */
export const DEFAULT_ADMISSION_CAPACITY = 1024;
/**
 * Under load, a source gets one datagram of each kind (first byte) per this long on average, µs. Each wait
 * is drawn from half to one and a half of it, so that the sources of a flood, all let in at its start, do
 * not come back together.
 */
const SOURCE_INTERVAL_US = 1_000_000;
/** The queue counts as loaded for this long after it last held a budget, kept datagrams over a pass, or shed a source, µs. */
const LOAD_HOLD_US = 1_000_000;
/** Sources remembered while loaded (a power of two): each has two candidate slots. */
const SOURCE_SLOTS = 8192;
/** Where the second candidate slot comes from in a source's hash. */
const SECOND_SLOT_SHIFT = 13;

/** Counters of an {@link AdmissionQueue}. */
export interface AdmissionStats {
  /** Unauthenticated datagrams queued for a pass (the same event-loop turn's unless loaded). */
  queued: number;
  /** Unauthenticated datagrams dropped unprocessed while loaded: over their source's share, or pushed out of a full queue. */
  shed: number;
}

/** Options of an {@link AdmissionQueue}. */
export interface AdmissionOptions {
  /** Most datagrams handed on per {@link AdmissionQueue.drain}. Default {@link DEFAULT_ADMISSION_BUDGET}. */
  readonly budget?: number;
  /** Most datagrams waiting per class; rounded up to a power of two. Default {@link DEFAULT_ADMISSION_CAPACITY}. */
  readonly capacity?: number;
}

/** A bounded stack of datagrams: newest out first; when full, the oldest gives way. */
class Stack {
  readonly #mask: number;
  readonly #data: (Uint8Array | undefined)[];
  readonly #from: (SocketAddress | undefined)[];
  /** The oldest entry; the newest is at `#head + size - 1`. */
  #head = 0;
  size = 0;

  constructor(capacity: number) {
    let c = 16;
    while (c < capacity) c *= 2;
    this.#mask = c - 1;
    this.#data = new Array<Uint8Array | undefined>(c);
    this.#from = new Array<SocketAddress | undefined>(c);
  }

  /** Pushes a datagram; returns false if the oldest had to give way. */
  push(data: Uint8Array, from: SocketAddress): boolean {
    const full = this.size > this.#mask;
    if (full) {
      this.#data[this.#head] = undefined;
      this.#from[this.#head] = undefined;
      this.#head = (this.#head + 1) & this.#mask;
      this.size--;
    }
    const i = (this.#head + this.size) & this.#mask;
    this.#data[i] = data;
    this.#from[i] = from;
    this.size++;
    return !full;
  }

  /** Hands the newest datagram to `handle` (the stack must not be empty). */
  pop(handle: (data: Uint8Array, from: SocketAddress) => void): void {
    const i = (this.#head + this.size - 1) & this.#mask;
    const data = this.#data[i] as Uint8Array;
    const from = this.#from[i] as SocketAddress;
    this.#data[i] = undefined;
    this.#from[i] = undefined;
    this.size--;
    handle(data, from);
  }

  clear(): void {
    this.#data.fill(undefined);
    this.#from.fill(undefined);
    this.#head = 0;
    this.size = 0;
  }
}

/**
 * Bounded work for unauthenticated input (docs/RUNTIME.md "Under a flood"), shared by the endpoint driver
 * and the relay server: datagrams that cost work before anything authenticates their sender (handshakes,
 * relay pings and session requests) wait here and are handed to the node a bounded amount per pass, one
 * pass per event-loop turn: at most `budget` datagrams and 2 ms of clock time, their replies included, and
 * on average half of the clock (with 20 ms of slack for bursts). So a flood never holds the event loop, the
 * socket keeps being read, and established traffic, which never waits here, keeps flowing.
 *
 * Newest first: under overload the datagrams that waited longest are the ones given up (pushed out of a
 * full stack), and a client that just sent its HELLO is answered in the next pass rather than after the
 * backlog. Datagrams that return a cookie ({@link Admission.Cookie}: the second step of a handshake the node
 * already answered, checked for the price of one MAC) are served before new ones for the first half of
 * each pass, so that a client answered just before a flood is not buried under it; new ones
 * ({@link Admission.New}) have the second half, so that neither class can starve the other.
 *
 * While loaded (within a second of holding a budget, keeping datagrams over a pass or shedding a source),
 * each source (address and port) gets a share of each kind of datagram (its first byte: a HELLO, a
 * CONNECT_REQUEST, a relay PING): about one a second; the rest is shed and counted. A client's handshake
 * (one HELLO, then one CONNECT_REQUEST, from a fresh port) fits in its share, so a flood from a fixed set of
 * sources cannot crowd it out; a flood from ever-new sources is bounded by the budget and the capacity
 * alone. Sources live in a fixed table of hashed slots (seeded, so that nobody can aim collisions),
 * allocated the first time the queue is loaded. Nothing allocates per datagram.
 */
export class AdmissionQueue {
  readonly stats: AdmissionStats = { queued: 0, shed: 0 };
  readonly #budget: number;
  readonly #cookies: Stack;
  readonly #fresh: Stack;
  #loadedUntilUs = Number.NEGATIVE_INFINITY;
  /** Clock time the passes may still spend (WORK_SHARE, WORK_BURST_US), µs, as of `#creditAtUs`. */
  #creditUs = WORK_BURST_US;
  #creditAtUs = Number.NEGATIVE_INFINITY;
  readonly #rng: Rng;
  #seed = 0;
  /** Per slot: the hash of the source and kind holding it (0: free) and when it may next be let in, µs. */
  #slotKey: Uint32Array | null = null;
  #slotAt: Float64Array | null = null;

  /** `rng` seeds the source hash (drawn when the queue is first loaded) and spreads the sources' waits. */
  constructor(rng: Rng, options: AdmissionOptions = {}) {
    this.#rng = rng;
    this.#budget = Math.max(1, options.budget ?? DEFAULT_ADMISSION_BUDGET);
    const capacity = options.capacity ?? DEFAULT_ADMISSION_CAPACITY;
    this.#cookies = new Stack(capacity);
    this.#fresh = new Stack(capacity);
  }

  /** Datagrams waiting. */
  get size(): number {
    return this.#cookies.size + this.#fresh.size;
  }

  /** Queues a datagram of class `kind` for a {@link drain}, or sheds it (see the class). Returns whether it was queued. */
  offer(now: number, kind: typeof Admission.Cookie | typeof Admission.New, data: Uint8Array, from: SocketAddress): boolean {
    if (this.size >= this.#budget) this.#loadedUntilUs = now + LOAD_HOLD_US;
    if (now < this.#loadedUntilUs && !this.#admitSource(now, data, from)) {
      this.#loadedUntilUs = now + LOAD_HOLD_US;
      this.stats.shed++;
      return false;
    }
    if (!(kind === Admission.Cookie ? this.#cookies : this.#fresh).push(data, from)) this.stats.shed++;
    this.stats.queued++;
    return true;
  }

  /**
   * One pass: hands datagrams, newest first, to `handle` (which also sends what they cause) while the pass
   * has budget and clock time (at most PASS_MAX_US, and no more than the work share has left): cookies
   * for the first half of that time, then new ones, then cookies again. At least one datagram; in virtual
   * time, where the clock stands still during a pass, the budget alone counts. Returns whether more are
   * waiting (the queue then counts as loaded).
   */
  drain(now: number, clock: () => number, handle: (data: Uint8Array, from: SocketAddress) => void): boolean {
    if (now > this.#creditAtUs) this.#creditUs = Math.min(WORK_BURST_US, this.#creditUs + (now - this.#creditAtUs) * WORK_SHARE);
    this.#creditAtUs = now;
    const passUs = Math.min(PASS_MAX_US, this.#creditUs);
    let n = this.#serve(this.#cookies, 0, now, clock, passUs / 2, handle);
    n = this.#serve(this.#fresh, n, now, clock, passUs, handle);
    this.#serve(this.#cookies, n, now, clock, passUs, handle);
    this.#creditUs -= clock() - now;
    if (this.size === 0) return false;
    this.#loadedUntilUs = now + LOAD_HOLD_US;
    return true;
  }

  /** Pops from `stack` while the pass has budget and time up to `untilUs` (`n` handed on so far); returns the new `n`. */
  #serve(stack: Stack, n: number, now: number, clock: () => number, untilUs: number, handle: (data: Uint8Array, from: SocketAddress) => void): number {
    for (; stack.size > 0 && n < this.#budget && (n === 0 || clock() - now < untilUs); n++) stack.pop(handle);
    return n;
  }

  /** Drops everything waiting (uncounted: the owner is closing). */
  clear(): void {
    this.#cookies.clear();
    this.#fresh.clear();
  }

  /** Whether the source and kind of a datagram has a share left at `now`; if so it is taken. */
  #admitSource(now: number, data: Uint8Array, from: SocketAddress): boolean {
    let keys = this.#slotKey;
    let next = this.#slotAt as Float64Array;
    if (!keys) {
      keys = this.#slotKey = new Uint32Array(SOURCE_SLOTS);
      next = this.#slotAt = new Float64Array(SOURCE_SLOTS);
      this.#seed = this.#rng.nextU32();
    }
    const h = sourceHash(this.#seed, from, data[0] ?? 0);
    const a = h & (SOURCE_SLOTS - 1);
    const b = (h >>> SECOND_SLOT_SHIFT) & (SOURCE_SLOTS - 1);
    let slot: number;
    if (keys[a] === h) slot = a;
    else if (keys[b] === h) slot = b;
    else {
      // A source not held takes the candidate slot whose holder may come back soonest (the quietest).
      slot = (next[a] as number) <= (next[b] as number) ? a : b;
      keys[slot] = h;
      next[slot] = now;
    }
    if ((next[slot] as number) > now) return false;
    next[slot] = now + SOURCE_INTERVAL_US * (0.5 + this.#rng.next());
    return true;
  }
}

/** FNV-1a of the kind of datagram, the address's characters and the port, from `seed`; never 0 (a free slot). */
function sourceHash(seed: number, from: SocketAddress, kind: number): number {
  const s = from.address;
  let h = Math.imul(((0x811c9dc5 ^ seed) >>> 0) ^ kind, 0x01000193);
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (from.port & 0xff), 0x01000193);
  h = Math.imul(h ^ (from.port >>> 8), 0x01000193);
  return h >>> 0 || 1;
}
