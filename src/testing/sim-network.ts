import { SeededRng } from '../util/rng.js';
import { TimeHeap } from '../util/heap.js';
import type { Endpoint } from '../core/endpoint.js';
import type { EndpointEvent, SocketAddress } from '../core/types.js';
import { channels } from '../io/diagnostics.js';
import type { DatagramTransport } from '../io/driver.js';
import type { Runtime } from '../io/runtime.js';
import type { Scheduler } from '../io/scheduler.js';
import { NetlaneError } from '../util/errors.js';
import { seededCryptoProvider } from './crypto.js';
import { SimNat, type SimNatOptions } from './sim-nat.js';

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

/** A send hook: sees every datagram a host or socket sends, as it leaves (before link conditions). */
export type SendTap = (from: SocketAddress, to: SocketAddress, data: Uint8Array, nowUs: number) => void;

/** One end of a link: a host or a socket. */
export type LinkEnd = SimHost | SimSocket;

/** Counters of one link direction. */
export interface LinkStats {
  sent: number;
  delivered: number;
  dropped: number;
  queueDropped: number;
  duplicated: number;
  bytesDelivered: number;
}

/** Datagrams from one IP to another as they cross the network, with NAT translation applied (see {@link SimNetwork.wireStats}). */
export interface WireStats {
  /** Put on the wire: sent, past the sender's NAT, lost on the way or not. */
  sent: number;
  /** Delivered to a host or socket (past the receiver's NAT, if any). */
  delivered: number;
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
  // 0 delivery, 1 timer, 2 injected delivery (no link, no intercept), 3 a scheduled call,
  // 4 arrival at a NAT's public address (translated, or dropped, when it arrives)
  kind: 0 | 1 | 2 | 3 | 4;
  host: SimHost | SimSocket | null;
  from: SocketAddress | null;
  data: Uint8Array | null;
  fn: (() => void) | null;
  /** Deliveries: the destination as sent, and the link the datagram crossed. */
  to?: SocketAddress;
  link?: Link;
}

/**
 * A datagram socket inside a {@link SimNetwork} (from `sim.runtime(ip).openUdp`): what an io driver
 * runs a facade on in virtual time. Datagrams cross the same links, conditions and intercept as those
 * of endpoint hosts.
 */
export class SimSocket implements DatagramTransport {
  readonly local: SocketAddress;
  readonly key: string;
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  readonly #sim: SimNetwork;
  readonly #send: (from: SimSocket, to: SocketAddress, data: Uint8Array) => void;
  closed = false;

  constructor(sim: SimNetwork, local: SocketAddress, send: (from: SimSocket, to: SocketAddress, data: Uint8Array) => void) {
    this.#sim = sim;
    this.local = local;
    this.key = `${local.address}:${local.port}`;
    this.#send = send;
    channels.socketOpen.publish({ local });
  }

  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    if (this.closed) return;
    let d = data;
    if (header) {
      d = new Uint8Array(header.length + data.length);
      d.set(header);
      d.set(data, header.length);
    }
    this.#send(this, to, d);
  }

  keepProcessAlive(): void {
    // Virtual time keeps nothing alive.
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#sim.closeSocket(this);
    channels.socketClose.publish({ local: this.local });
  }
}

/**
 * A deterministic network in virtual time: endpoints exchange datagrams through links with latency,
 * jitter, loss, burst loss, duplication, reordering, a bandwidth cap with a finite queue, an MTU and
 * partitions. The same seed and the same inputs give the same trace. No real time passes.
 *
 * NAT boxes ({@link SimNetwork.addNat}) put private IPs behind a public one. Link conditions stay
 * between the real endpoints: a datagram from a host behind a NAT to a relay crosses the link from the
 * host's own (private) key to the relay's, and the relay's answer to the NAT's public address crosses
 * the link from the relay to the inside host the NAT maps it to (resolved when it is sent), so
 * `setLinks(client, relay, ...)` shapes both directions whether or not the client is behind a NAT. A
 * datagram to a public port with no live mapping when it is sent crosses the link to that public
 * address itself (default conditions unless set).
 */
export class SimNetwork {
  readonly rng: SeededRng;
  /** Virtual time in microseconds. */
  now = 0;
  readonly #hosts = new Map<string, SimHost>();
  readonly #sockets = new Map<string, SimSocket>();
  readonly #nextPort = new Map<string, number>();
  readonly #links = new Map<string, Link>();
  readonly #nats: SimNat[] = [];
  readonly #natByInside = new Map<string, SimNat>();
  readonly #natByPublic = new Map<string, SimNat>();
  readonly #wire = new Map<string, Map<string, WireStats>>();
  #defaults: LinkConditions;
  readonly #heap = new TimeHeap<SimEvent>();
  #seq = 0;
  #sameTimeSteps = 0;
  intercept: Intercept | null = null;
  /** Called for every datagram sent, when it is sent (what a sender put on the wire, lost or not; addresses as the sender sees them, before any NAT). */
  onSend: SendTap | null = null;
  /**
   * Called for every datagram that leaves its sender's NAT (or its sender, when not behind one), with
   * the addresses as seen between NATs: the source after translation, the destination as sent. Datagrams
   * a NAT drops on the way out (hairpin, private destination, no free port) do not reach it.
   */
  onWire: SendTap | null = null;
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

  /**
   * Adds a NAT box in front of the private IPs `options.inside` (see {@link SimNat}). Throws
   * ERR_NETLANE_INVALID_ARGUMENT if an IP is already behind a NAT or is a NAT's public address.
   */
  addNat(options: SimNatOptions): SimNat {
    const nat = new SimNat(options, () => this.now);
    const ips = [nat.publicAddress, ...nat.inside];
    for (const ip of ips) {
      if (this.#natByInside.has(ip) || this.#natByPublic.has(ip)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `${ip} already belongs to a NAT`);
    }
    if (new Set(ips).size !== ips.length) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'a NAT lists an IP twice');
    this.#nats.push(nat);
    this.#natByPublic.set(nat.publicAddress, nat);
    for (const ip of nat.inside) this.#natByInside.set(ip, nat);
    return nat;
  }

  /** The NAT boxes, in the order they were added. */
  get nats(): readonly SimNat[] {
    return this.#nats;
  }

  /**
   * Datagrams from IP `fromIp` to IP `toIp` as they cross the network (after the sender's NAT, before
   * the receiver's): e.g. `wireStats(natA.publicAddress, natB.publicAddress)` counts what went straight
   * from behind NAT A to NAT B, not through a relay. One direction; a live object that keeps counting.
   */
  wireStats(fromIp: string, toIp: string): WireStats {
    let row = this.#wire.get(fromIp);
    if (!row) {
      row = new Map();
      this.#wire.set(fromIp, row);
    }
    let w = row.get(toIp);
    if (!w) {
      w = { sent: 0, delivered: 0 };
      row.set(toIp, w);
    }
    return w;
  }

  /** Sets the conditions of the link from `a` to `b` (one direction), starting from the defaults. */
  setLink(a: LinkEnd, b: LinkEnd, cond: Partial<LinkConditions>): void {
    const l = this.#link(a.key, b.key);
    l.cond = { ...this.#defaults, ...cond };
  }

  /** Sets both directions between `a` and `b`. */
  setLinks(a: LinkEnd, b: LinkEnd, cond: Partial<LinkConditions>): void {
    this.setLink(a, b, cond);
    this.setLink(b, a, cond);
  }

  /** Changes some conditions of an existing direction, keeping the others. */
  updateLink(a: LinkEnd, b: LinkEnd, cond: Partial<LinkConditions>): void {
    const l = this.#link(a.key, b.key);
    l.cond = { ...l.cond, ...cond };
  }

  linkStats(a: LinkEnd, b: LinkEnd): LinkStats {
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
      this.#route(h.key, h.address, t.destination, t.data);
    }
    for (let e = ep.pollEvent(); e; e = ep.pollEvent()) {
      h.events.push(e);
      h.onEvent?.(e);
    }
    // An event handler may have issued commands: send what they queued.
    for (let guard = 0; guard < 1_000_000; guard++) {
      const t = ep.pollTransmit(this.now);
      if (!t) break;
      this.#route(h.key, h.address, t.destination, t.data);
    }
    const at = ep.pollTimeout(this.now);
    const when = at === null ? Number.POSITIVE_INFINITY : at;
    if (when !== h.timerAtUs) {
      h.timerAtUs = when;
      if (when !== Number.POSITIVE_INFINITY) this.#heap.push({ atUs: when, seq: this.#seq++, kind: 1, host: h, from: null, data: null, fn: null });
    }
  }

  #route(fromKey: string, fromAddress: SocketAddress, to: SocketAddress, data: Uint8Array): void {
    this.onSend?.(fromAddress, to, data, this.now);
    let toKey = `${to.address}:${to.port}`;
    let wireFrom = fromAddress;
    // The NAT whose public address the datagram is sent to: translated (or dropped) when it arrives.
    let inbound: SimNat | undefined;
    let natDropped = false;
    if (this.#nats.length > 0) {
      const srcNat = this.#natByInside.get(fromAddress.address);
      const dstNat = this.#natByInside.get(to.address);
      if (dstNat && dstNat !== srcNat) {
        dstNat.countUnroutable();
        natDropped = true;
      } else if (srcNat && !dstNat) {
        if (to.address === srcNat.publicAddress) {
          srcNat.countHairpin();
          natDropped = true;
        } else {
          const pub = srcNat.translateOut(fromAddress, to);
          if (pub) wireFrom = pub;
          else natDropped = true;
        }
      }
      inbound = this.#natByPublic.get(to.address);
      if (inbound && !natDropped) {
        const inside = inbound.peek(to.port);
        if (inside) toKey = `${inside.address}:${inside.port}`;
      }
    }
    if (!natDropped) {
      this.onWire?.(wireFrom, to, data, this.now);
      this.wireStats(wireFrom.address, to.address).sent++;
    }
    const dest = inbound ? undefined : (this.#hosts.get(toKey) ?? this.#sockets.get(toKey));
    const link = this.#link(fromKey, toKey);
    const c = link.cond;
    const rng = this.rng;
    link.stats.sent++;
    if (natDropped || (!dest && !inbound) || c.blackhole || data.length > c.mtu) {
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
    const kind = inbound ? 4 : 0;
    const host = dest ?? null;
    this.#heap.push({ atUs: Math.round(arrive), seq: this.#seq++, kind, host, from: wireFrom, data: bytes, fn: null, to, link });
    if (rng.chance(c.duplicate)) {
      link.stats.duplicated++;
      this.#heap.push({ atUs: Math.round(arrive + rng.next() * c.duplicateDelayUs), seq: this.#seq++, kind, host, from: wireFrom, data: bytes.slice(), fn: null, to, link });
    }
  }

  /**
   * Delivers `data` to `to` at `atUs` as if sent from `from` (which need not be a host): a spoofed or
   * replayed datagram. It bypasses link conditions, the intercept hook, NATs and the random source, so a
   * run with injections sees the same randomness as one without.
   */
  inject(from: SocketAddress, to: SimHost | SimSocket, data: Uint8Array, atUs: number = this.now): void {
    this.#heap.push({ atUs: Math.max(this.now, Math.round(atUs)), seq: this.#seq++, kind: 2, host: to, from, data: data.slice(), fn: null });
  }

  /** Virtual time and timers for io drivers: `at` and `soon` become events of this simulation. */
  readonly scheduler: Scheduler = {
    now: () => this.now,
    at: (atUs, fn) => this.#call(Math.max(this.now, Math.round(atUs)), fn),
    soon: (fn) => this.#call(this.now, fn),
    cancel: (h) => ((h as SimEvent).fn = null),
    cancelSoon: (h) => ((h as SimEvent).fn = null),
  };

  #call(atUs: number, fn: () => void): SimEvent {
    const ev: SimEvent = { atUs, seq: this.#seq++, kind: 3, host: null, from: null, data: null, fn };
    this.#heap.push(ev);
    return ev;
  }

  /**
   * A runtime whose sockets live in this simulation at IP `ip` (any bind address is taken as `ip`; port 0
   * picks the next free port from one that differs by IP, in 40000-59999), with virtual time, seeded randomness and a wall clock that
   * starts at `unixStartS` and follows virtual time. A facade given it runs entirely in virtual time.
   */
  runtime(ip: string, unixStartS = 1_800_000_000): Runtime {
    let salt = 0;
    for (let i = 0; i < ip.length; i++) salt = Math.imul(salt ^ ip.charCodeAt(i), 0x01000193);
    const rng = new SeededRng((this.seed ^ salt) >>> 0);
    return {
      scheduler: this.scheduler,
      openUdp: (options) => this.openSocket({ address: ip, port: options.port }),
      rng: () => rng.fork(),
      randomSeed: () => rng.nextU32(),
      unixSeconds: () => unixStartS + Math.floor(this.now / 1_000_000),
      provider: () => seededCryptoProvider(rng.nextU32()),
    };
  }

  /** A socket at `address` (port 0: the next free one). Throws ERR_NETLANE_SOCKET if the address is taken. */
  openSocket(address: SocketAddress): SimSocket {
    let port = address.port;
    if (port === 0) {
      port = this.#nextPort.get(address.address) ?? firstPort(address.address);
      while (this.#sockets.has(`${address.address}:${port}`) || this.#hosts.has(`${address.address}:${port}`)) port++;
      this.#nextPort.set(address.address, port + 1);
    }
    const local = { address: address.address, port };
    const sock = new SimSocket(this, local, (from, to, data) => this.#route(from.key, from.local, to, data));
    if (this.#sockets.has(sock.key) || this.#hosts.has(sock.key)) throw new NetlaneError('ERR_NETLANE_SOCKET', `address in use: ${sock.key}`);
    this.#sockets.set(sock.key, sock);
    return sock;
  }

  /** Removes a closed socket: datagrams to its address are dropped from now on. */
  closeSocket(sock: SimSocket): void {
    if (this.#sockets.get(sock.key) === sock) this.#sockets.delete(sock.key);
  }

  /** The socket at `address`, if one is open. */
  socketAt(address: SocketAddress): SimSocket | null {
    return this.#sockets.get(`${address.address}:${address.port}`) ?? null;
  }

  /** Cuts (or heals) both directions between two addresses (hosts or sockets). */
  partitionAddresses(a: SocketAddress, b: SocketAddress, cut = true): void {
    const ka = `${a.address}:${a.port}`;
    const kb = `${b.address}:${b.port}`;
    const l1 = this.#link(ka, kb);
    l1.cond = { ...l1.cond, blackhole: cut };
    const l2 = this.#link(kb, ka);
    l2.cond = { ...l2.cond, blackhole: cut };
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
    if (ev.kind === 3) {
      const fn = ev.fn;
      ev.fn = null;
      fn?.();
      return true;
    }
    let h = ev.host as SimHost | SimSocket;
    if (ev.kind === 4) {
      // Arrival at a NAT's public address: its mapping and filtering decide now.
      const to = ev.to as SocketAddress;
      const nat = this.#natByPublic.get(to.address) as SimNat;
      const inside = nat.translateIn(ev.from as SocketAddress, to.port);
      const insideKey = inside ? `${inside.address}:${inside.port}` : '';
      const dest = inside ? (this.#hosts.get(insideKey) ?? this.#sockets.get(insideKey)) : undefined;
      if (!dest) {
        (ev.link as Link).stats.dropped++;
        return true;
      }
      h = dest;
    }
    if (ev.kind === 1) {
      const host = h as SimHost;
      if (ev.atUs !== host.timerAtUs) return true; // superseded timer
      host.timerAtUs = Number.POSITIVE_INFINITY;
      host.endpoint.handleTimeout(this.now);
    } else {
      let data = ev.data as Uint8Array;
      const from = ev.from as SocketAddress;
      if (ev.kind === 2) {
        this.#deliver(h, from, data);
        return true;
      }
      if (this.intercept) {
        const d = this.intercept(from, h instanceof SimHost ? h.address : h.local, data, this.now);
        if (!d) return true;
        data = d;
      }
      const link = ev.link ?? this.#link(`${from.address}:${from.port}`, h.key);
      link.stats.delivered++;
      link.stats.bytesDelivered += data.length;
      this.wireStats(from.address, (ev.to as SocketAddress).address).delivered++;
      if (this.trace) this.trace.push({ atUs: this.now, from: `${from.address}:${from.port}`, to: h.key, length: data.length, checksum: checksum(data) });
      this.#deliver(h, from, data);
      return true;
    }
    this.#drain(h as SimHost);
    return true;
  }

  #deliver(h: SimHost | SimSocket, from: SocketAddress, data: Uint8Array): void {
    if (h instanceof SimHost) {
      h.endpoint.handleDatagram(this.now, from, data);
      this.#drain(h);
    } else if (!h.closed) h.onMessage(data, from);
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

/** The first port an IP's sockets get: different IPs get different ports, so that a port seen in the wrong place stands out. */
function firstPort(ip: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip.charCodeAt(i), 0x01000193);
  return 40000 + ((h >>> 0) % 20000);
}

function checksum(d: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ (d[i] as number), 0x01000193);
  return h >>> 0;
}
