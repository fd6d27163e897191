import type { SocketAddress } from '../core/types.js';
import { Admission } from '../util/admission.js';
import type { Rng } from '../util/rng.js';

/** Most unauthenticated datagrams handled per pass (one event-loop turn) unless told otherwise. */
const DEFAULT_ADMISSION_BUDGET = 256;
/** libuv reads at most this many datagrams from a socket per event-loop turn (uv__udp_recvmsg). */
export const READ_BATCH = 32;
/**
 * Clock time of a pass after a turn that read a full batch, µs: the socket has more waiting, and a pass
 * much longer than reading a batch (some 100-150 µs in Node) would leave it unread, overflow the kernel's
 * buffer and lose datagrams at random, established traffic's included.
 */
const PASS_BACKLOGGED_US = 100;
/** Clock time of a pass after a turn that emptied the socket, µs: the time reading does not need. */
const PASS_IDLE_US = 1_000;
/** Most datagrams of each admission class waiting at once unless told otherwise (a power of two). */
const DEFAULT_ADMISSION_CAPACITY = 4096;
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
  /** Most datagrams handed on per {@link AdmissionQueue.drain}. Default 256. */
  readonly budget?: number;
  /** Most datagrams waiting per class; rounded up to a power of two. Default 4096. */
  readonly capacity?: number;
}

/** A bounded FIFO of datagrams: when full, the oldest gives way. */
class Queue {
  readonly #mask: number;
  readonly #data: (Uint8Array | undefined)[];
  readonly #from: (SocketAddress | undefined)[];
  /** The oldest entry. */
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

  /** Hands the oldest datagram to `handle` (the queue must not be empty). */
  shift(handle: (data: Uint8Array, from: SocketAddress) => void): void {
    const i = this.#head;
    const data = this.#data[i] as Uint8Array;
    const from = this.#from[i] as SocketAddress;
    this.#data[i] = undefined;
    this.#from[i] = undefined;
    this.#head = (i + 1) & this.#mask;
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
 * pass per event-loop turn: at most `budget` datagrams and a bounded clock time, their replies included:
 * about what reading a batch takes while the socket has more waiting, up to 1 ms when it is empty. So a
 * flood never holds the event loop, the socket keeps being read as fast as it fills (what reading does
 * not need goes to the queue), and established traffic, which never waits here, keeps flowing.
 *
 * Oldest first, and when a queue is full its oldest datagram gives way (it has waited longest; its sender's
 * retry comes soonest), so that no datagram waits longer than a full queue takes. Datagrams that return a
 * cookie ({@link Admission.Cookie}: the second step of a handshake the node already answered, checked for
 * the price of one MAC) have the first half of each pass, so that a client answered just before a flood
 * is not queued behind its new sources; new ones ({@link Admission.New}) have the second half, so that
 * neither class can starve the other.
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
  readonly #cookies: Queue;
  readonly #fresh: Queue;
  #loadedUntilUs = Number.NEGATIVE_INFINITY;
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
    this.#cookies = new Queue(capacity);
    this.#fresh = new Queue(capacity);
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
   * One pass: hands datagrams, oldest first, to `handle` (which also sends what they cause) while the pass
   * has budget and clock time: PASS_BACKLOGGED_US if the socket delivered a full READ_BATCH since the last
   * pass (`received`, every datagram counted), PASS_IDLE_US if not. Cookies have the first half of that
   * time, new ones the rest, then cookies again. At least one datagram; in virtual time, where the clock
   * stands still during a pass, the budget alone counts. Returns whether more are waiting (the queue then
   * counts as loaded).
   */
  drain(now: number, received: number, clock: () => number, handle: (data: Uint8Array, from: SocketAddress) => void): boolean {
    const passUs = received >= READ_BATCH ? PASS_BACKLOGGED_US : PASS_IDLE_US;
    let n = this.#serve(this.#cookies, 0, now, clock, passUs / 2, handle);
    n = this.#serve(this.#fresh, n, now, clock, passUs, handle);
    this.#serve(this.#cookies, n, now, clock, passUs, handle);
    if (this.size === 0) return false;
    this.#loadedUntilUs = now + LOAD_HOLD_US;
    return true;
  }

  /** Shifts from `queue` while the pass has budget and time up to `untilUs` (`n` handed on so far); returns the new `n`. */
  #serve(queue: Queue, n: number, now: number, clock: () => number, untilUs: number, handle: (data: Uint8Array, from: SocketAddress) => void): number {
    for (; queue.size > 0 && n < this.#budget && (n === 0 || clock() - now < untilUs); n++) queue.shift(handle);
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
