import { SeededRng } from '../util/rng.js';
import { TimeHeap } from '../util/heap.js';
import type { Endpoint } from '../core/endpoint.js';
import type { EndpointEvent, SocketAddress } from '../core/types.js';

/** Conditions of one direction of a simulated link. All probabilities are 0..1, times microseconds. */
export interface LinkConditions {
  /** One-way delay. */
  latencyUs: number;
  /** Uniform extra delay in [-jitterUs, +jitterUs] (never below zero total). */
  jitterUs: number;
  /** Independent random loss. */
  loss: number;
  /** Gilbert-Elliott burst loss: chance per packet of entering the bad state. */
  burstEnter: number;
  /** Chance per packet of leaving the bad state (all packets are lost while in it). */
  burstExit: number;
  /** Chance that a packet is delivered twice (the copy after up to `duplicateDelayUs` more). */
  duplicate: number;
  duplicateDelayUs: number;
  /** Chance that a packet is held back `reorderDelayUs` extra, so later ones overtake it. */
  reorder: number;
  reorderDelayUs: number;
  /** Bottleneck rate in bytes per second (0: unlimited). */
  bandwidthBytesPerSec: number;
  /** Bytes the bottleneck queue holds before it tail-drops. */
  queueBytes: number;
  /** Largest datagram carried; larger ones are dropped. */
  mtu: number;
  /** Drop everything (a partition in this direction). */
  blackhole: boolean;
}

export const PERFECT_LINK: Readonly<LinkConditions> = Object.freeze({
  latencyUs: 0,
  jitterUs: 0,
  loss: 0,
  burstEnter: 0,
  burstExit: 1,
  duplicate: 0,
  duplicateDelayUs: 0,
  reorder: 0,
  reorderDelayUs: 0,
  bandwidthBytesPerSec: 0,
  queueBytes: 1 << 30,
  mtu: 65_535,
  blackhole: false,
});

/** What an intercept hook decides for a datagram: deliver these bytes (maybe changed), or drop (null). */
export type Intercept = (from: SocketAddress, to: SocketAddress, data: Uint8Array, nowUs: number) => Uint8Array | null;

/** Counters of one link direction. */
export interface LinkStats {
  sent: number;
  delivered: number;
  dropped: number;
  queueDropped: number;
  duplicated: number;
  bytesDelivered: number;
}

/** One entry of the delivery trace (determinism checks). */
export interface TraceEntry {
  readonly atUs: number;
  readonly from: string;
  readonly to: string;
  readonly length: number;
  readonly checksum: number;
}

/** A participant: an Endpoint at an address. */
export class SimHost {
  readonly address: SocketAddress;
  readonly key: string;
  readonly endpoint: Endpoint;
  /** Every event the endpoint emitted, in order. */
  readonly events: EndpointEvent[] = [];
  /** Called for each event as it is drained. */
  onEvent: ((e: EndpointEvent) => void) | null = null;
  timerAtUs = Number.POSITIVE_INFINITY;

  constructor(address: SocketAddress, endpoint: Endpoint) {
    this.address = address;
    this.key = `${address.address}:${address.port}`;
    this.endpoint = endpoint;
  }
}

interface Link {
  cond: LinkConditions;
  busyUntilUs: number;
  bad: boolean;
  stats: LinkStats;
}

interface SimEvent {
  atUs: number;
  seq: number;
  kind: 0 | 1 | 2; // 0 delivery, 1 timer, 2 injected delivery (no link, no intercept)
  host: SimHost;
  from: SocketAddress | null;
  data: Uint8Array | null;
}

/**
 * A deterministic network in virtual time: endpoints exchange datagrams through links with latency,
 * jitter, loss, burst loss, duplication, reordering, a bandwidth cap with a finite queue, an MTU and
 * partitions. The same seed and the same inputs give the same trace. No real time passes.
 */
export class SimNetwork {
  readonly rng: SeededRng;
  /** Virtual time in microseconds. */
  now = 0;
  readonly #hosts = new Map<string, SimHost>();
  readonly #links = new Map<string, Link>();
  #defaults: LinkConditions;
  readonly #heap = new TimeHeap<SimEvent>();
  #seq = 0;
  #sameTimeSteps = 0;
  intercept: Intercept | null = null;
  /** When set, every delivered datagram is appended. */
  trace: TraceEntry[] | null = null;

  constructor(seed: number, defaults: Partial<LinkConditions> = {}) {
    this.rng = new SeededRng(seed);
    this.#defaults = { ...PERFECT_LINK, ...defaults };
  }

  get seed(): number {
    return this.rng.seed;
  }

  /** Adds an endpoint at `address`. */
  addHost(address: SocketAddress, endpoint: Endpoint): SimHost {
    const h = new SimHost(address, endpoint);
    this.#hosts.set(h.key, h);
    return h;
  }

  /** Sets the conditions of the link from `a` to `b` (one direction), starting from the defaults. */
  setLink(a: SimHost, b: SimHost, cond: Partial<LinkConditions>): void {
    const l = this.#link(a.key, b.key);
    l.cond = { ...this.#defaults, ...cond };
  }

  /** Sets both directions between `a` and `b`. */
  setLinks(a: SimHost, b: SimHost, cond: Partial<LinkConditions>): void {
    this.setLink(a, b, cond);
    this.setLink(b, a, cond);
  }

  /** Changes some conditions of an existing direction, keeping the others. */
  updateLink(a: SimHost, b: SimHost, cond: Partial<LinkConditions>): void {
    const l = this.#link(a.key, b.key);
    l.cond = { ...l.cond, ...cond };
  }

  linkStats(a: SimHost, b: SimHost): LinkStats {
    return this.#link(a.key, b.key).stats;
  }

  /** Cuts (or heals) both directions between two hosts. */
  partition(a: SimHost, b: SimHost, cut = true): void {
    this.updateLink(a, b, { blackhole: cut });
    this.updateLink(b, a, { blackhole: cut });
  }

  #link(from: string, to: string): Link {
    const k = `${from}>${to}`;
    let l = this.#links.get(k);
    if (!l) {
      l = { cond: { ...this.#defaults }, busyUntilUs: 0, bad: false, stats: { sent: 0, delivered: 0, dropped: 0, queueDropped: 0, duplicated: 0, bytesDelivered: 0 } };
      this.#links.set(k, l);
    }
    return l;
  }

  /** Drains every host's output (call after issuing commands outside the simulation loop). */
  flush(): void {
    for (const h of this.#hosts.values()) this.#drain(h);
  }

  #drain(h: SimHost): void {
    const ep = h.endpoint;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const t = ep.pollTransmit(this.now);
      if (!t) break;
      this.#route(h, t.destination, t.data);
    }
    for (let e = ep.pollEvent(); e; e = ep.pollEvent()) {
      h.events.push(e);
      h.onEvent?.(e);
    }
    // An event handler may have issued commands: send what they queued.
    for (let guard = 0; guard < 1_000_000; guard++) {
      const t = ep.pollTransmit(this.now);
      if (!t) break;
      this.#route(h, t.destination, t.data);
    }
    const at = ep.pollTimeout(this.now);
    const when = at === null ? Number.POSITIVE_INFINITY : at;
    if (when !== h.timerAtUs) {
      h.timerAtUs = when;
      if (when !== Number.POSITIVE_INFINITY) this.#heap.push({ atUs: when, seq: this.#seq++, kind: 1, host: h, from: null, data: null });
    }
  }

  #route(from: SimHost, to: SocketAddress, data: Uint8Array): void {
    const dest = this.#hosts.get(`${to.address}:${to.port}`);
    const link = this.#link(from.key, dest ? dest.key : `${to.address}:${to.port}`);
    const c = link.cond;
    const rng = this.rng;
    link.stats.sent++;
    if (!dest || c.blackhole || data.length > c.mtu) {
      link.stats.dropped++;
      return;
    }
    // Burst loss state machine, then independent loss.
    if (link.bad) {
      if (rng.chance(c.burstExit)) link.bad = false;
    } else if (rng.chance(c.burstEnter)) {
      link.bad = true;
    }
    if (link.bad || rng.chance(c.loss)) {
      link.stats.dropped++;
      return;
    }
    let departUs = this.now;
    if (c.bandwidthBytesPerSec > 0) {
      const queuedBytes = Math.max(0, link.busyUntilUs - this.now) * (c.bandwidthBytesPerSec / 1e6);
      if (queuedBytes + data.length > c.queueBytes) {
        link.stats.queueDropped++;
        return;
      }
      departUs = Math.max(this.now, link.busyUntilUs) + (data.length * 1e6) / c.bandwidthBytesPerSec;
      link.busyUntilUs = departUs;
    }
    const bytes = data.slice();
    const jitter = c.jitterUs > 0 ? (rng.next() * 2 - 1) * c.jitterUs : 0;
    let arrive = departUs + Math.max(0, c.latencyUs + jitter);
    if (rng.chance(c.reorder)) arrive += c.reorderDelayUs;
    this.#heap.push({ atUs: Math.round(arrive), seq: this.#seq++, kind: 0, host: dest, from: from.address, data: bytes });
    if (rng.chance(c.duplicate)) {
      link.stats.duplicated++;
      this.#heap.push({ atUs: Math.round(arrive + rng.next() * c.duplicateDelayUs), seq: this.#seq++, kind: 0, host: dest, from: from.address, data: bytes.slice() });
    }
  }

  /**
   * Delivers `data` to `to` at `atUs` as if sent from `from` (which need not be a host): a spoofed or
   * replayed datagram. It bypasses link conditions, the intercept hook and the random source, so a run
   * with injections sees the same randomness as one without.
   */
  inject(from: SocketAddress, to: SimHost, data: Uint8Array, atUs: number = this.now): void {
    this.#heap.push({ atUs: Math.max(this.now, Math.round(atUs)), seq: this.#seq++, kind: 2, host: to, from, data: data.slice() });
  }

  /** Processes the next event. Returns false when nothing is left to do. */
  step(): boolean {
    this.flush();
    const ev = this.#heap.pop();
    if (!ev) return false;
    if (ev.atUs > this.now) {
      this.now = ev.atUs;
      this.#sameTimeSteps = 0;
    } else if (++this.#sameTimeSteps > 1_000_000) {
      throw new Error(`SimNetwork livelock: a million events at t=${this.now} us (seed ${this.seed})`);
    }
    const h = ev.host;
    if (ev.kind === 1) {
      if (ev.atUs !== h.timerAtUs) return true; // superseded timer
      h.timerAtUs = Number.POSITIVE_INFINITY;
      h.endpoint.handleTimeout(this.now);
    } else {
      let data = ev.data as Uint8Array;
      const from = ev.from as SocketAddress;
      if (ev.kind === 2) {
        h.endpoint.handleDatagram(this.now, from, data);
        this.#drain(h);
        return true;
      }
      if (this.intercept) {
        const d = this.intercept(from, h.address, data, this.now);
        if (!d) return true;
        data = d;
      }
      const link = this.#link(`${from.address}:${from.port}`, h.key);
      link.stats.delivered++;
      link.stats.bytesDelivered += data.length;
      if (this.trace) this.trace.push({ atUs: this.now, from: `${from.address}:${from.port}`, to: h.key, length: data.length, checksum: checksum(data) });
      h.endpoint.handleDatagram(this.now, from, data);
    }
    this.#drain(h);
    return true;
  }

  /** Runs until `done()` is true or `maxUs` of virtual time pass. Returns whether `done()` became true. */
  runUntil(done: () => boolean, maxUs: number): boolean {
    const end = this.now + maxUs;
    this.flush();
    for (;;) {
      if (done()) return true;
      const next = this.#heap.peek();
      if (!next || next.atUs > end) {
        this.now = Math.max(this.now, end);
        this.flush();
        return done();
      }
      this.step();
    }
  }

  /** Runs for `us` of virtual time. */
  runFor(us: number): void {
    this.runUntil(() => false, us);
  }
}

function checksum(d: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ (d[i] as number), 0x01000193);
  return h >>> 0;
}
