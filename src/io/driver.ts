import type { SansIo, SocketAddress } from '../core/types.js';
import { Admission } from '../util/admission.js';
import type { Rng } from '../util/rng.js';
import { AdmissionQueue, type AdmissionOptions } from './admission.js';
import { FakeLink, type FakeConditions } from './fake-network.js';
import type { Scheduler, TimerHandle } from './scheduler.js';

/** Where an {@link EndpointDriver} sends and receives datagrams: a {@link UdpSocket} or a {@link MemoryTransport}. */
export interface DatagramTransport {
  readonly local: SocketAddress;
  /** Set by the driver: called for every datagram that arrives. */
  onMessage: (data: Uint8Array, from: SocketAddress) => void;
  /** Sends one datagram: `header` (when given) then `data`, gathered without a copy. */
  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void;
  keepProcessAlive(yes: boolean): void;
  close(): void;
  /** Sends the kernel refused (a real socket counts them). */
  readonly sendErrors?: number;
  /** True while an asynchronous bind (Bun) has not completed: `local` may still have port 0. Absent: bound. */
  readonly binding?: boolean;
  /** Resolves with the bound local address; rejects with ERR_NETLANE_SOCKET if the bind failed. Absent: bound at once. */
  bound?(): Promise<SocketAddress>;
}

/** Resolves with a transport's bound local address (at once for a transport bound when opened). */
export function whenBound(t: DatagramTransport): Promise<SocketAddress> {
  return t.bound ? t.bound() : Promise.resolve(t.local);
}

/**
 * An in-process transport: datagrams are handed to the peer transport without a socket (used by
 * `createSocketPair(false)`). Delivery is synchronous; the receiving driver processes it on its next service.
 */
export class MemoryTransport implements DatagramTransport {
  readonly local: SocketAddress;
  peer: MemoryTransport | null = null;
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  #closed = false;

  constructor(local: SocketAddress) {
    this.local = local;
  }

  /** Two transports wired to each other. */
  static pair(a: SocketAddress, b: SocketAddress): [MemoryTransport, MemoryTransport] {
    const x = new MemoryTransport(a);
    const y = new MemoryTransport(b);
    x.peer = y;
    y.peer = x;
    return [x, y];
  }

  send(data: Uint8Array, _to: SocketAddress, header?: Uint8Array): void {
    const p = this.peer;
    if (this.#closed || !p || p.#closed) return;
    if (header) {
      const d = new Uint8Array(header.length + data.length);
      d.set(header);
      d.set(data, header.length);
      data = d;
    }
    p.onMessage(data, this.local);
  }

  keepProcessAlive(): void {
    // Nothing to keep alive: there is no socket.
  }

  close(): void {
    this.#closed = true;
  }
}

/** Options of an {@link EndpointDriver}. */
export interface DriverOptions<N extends SansIo> {
  /** Time and the one timer: real ({@link realScheduler}) or virtual (`SimNetwork.scheduler`). */
  readonly scheduler: Scheduler;
  /** Seeded randomness for the fake network conditions. */
  readonly rng: Rng;
  /** Called after every service pass: the owner drains the endpoint's events and readable connections. */
  readonly onServiced: (driver: EndpointDriver<N>) => void;
  /** Keep the process alive while the socket is open. Default false: an idle library never holds a process. */
  readonly keepProcessAlive?: boolean;
  /** The queue of unauthenticated datagrams: its per-pass budget and capacity. */
  readonly admission?: AdmissionOptions;
}

/** Most datagrams sent in one service pass before yielding to the event loop. */
const MAX_SENDS_PER_PASS = 4096;

/**
 * Runs one sans-IO node (an `Endpoint`, or a `PeerHost`: endpoint, relay client and peer sessions) on
 * one transport: feeds it datagrams, drains its output after every input and command, and keeps exactly
 * one timer, re-armed at the earliest of `node.pollTimeout()` and the fake network's next held datagram.
 * Received datagrams of established traffic are processed at once; those the node calls unauthenticated
 * (`node.admission`) wait in an {@link AdmissionQueue}, and the pass of each event-loop turn hands them on,
 * a bounded number and time per pass (docs/RUNTIME.md "Under a flood"). Output is drained in one pass per
 * event-loop turn (the scheduler's `soon`), so that a burst of datagrams or of `send` calls shares packets
 * and acks.
 */
export class EndpointDriver<N extends SansIo = SansIo> {
  readonly node: N;
  #transport: DatagramTransport;
  /** Fake conditions on datagrams we send and on datagrams we receive. */
  readonly fakeSend: FakeLink;
  readonly fakeRecv: FakeLink;
  /** Unauthenticated datagrams waiting for the next pass; `admission.stats` counts what was shed. */
  readonly admission: AdmissionQueue;
  readonly #sched: Scheduler;
  readonly #onServiced: (driver: EndpointDriver<N>) => void;
  #timer: TimerHandle | null = null;
  #timerAtUs = Number.POSITIVE_INFINITY;
  #immediate: TimerHandle | null = null;
  /** The clock of the current pass, for the queued datagrams it hands to the node, and what they sent. */
  #passUs = 0;
  #passSends = 0;
  /** Datagrams received since the last pass: a full read batch means the socket has more waiting. */
  #received = 0;
  #closed = false;
  #keepAlive: boolean;
  /** Inside a pass or a response: a datagram arriving now (from a synchronous transport) waits for the pass. */
  #passing = false;
  /** A command asked for a pass (`kick`) since the flag was cleared: the owner sent something. */
  #commanded = false;

  constructor(node: N, transport: DatagramTransport, options: DriverOptions<N>) {
    this.node = node;
    this.#transport = transport;
    this.#sched = options.scheduler;
    this.#onServiced = options.onServiced;
    this.#keepAlive = options.keepProcessAlive ?? false;
    this.fakeSend = new FakeLink(options.rng);
    this.fakeRecv = new FakeLink(options.rng);
    this.admission = new AdmissionQueue(options.rng, options.admission);
    this.#attach(transport);
  }

  /** The transport datagrams go through now (a rebinding replaces it). */
  get transport(): DatagramTransport {
    return this.#transport;
  }

  /** The driver's clock, µs. */
  now(): number {
    return this.#sched.now();
  }

  #attach(transport: DatagramTransport): void {
    transport.keepProcessAlive(this.#keepAlive);
    transport.onMessage = (data, from) => this.#receive(data, from);
  }

  /**
   * Moves to another transport (a new local port, as a NAT rebinding does) and closes the old one; the
   * node's `handleRebind(now)`, if it has one, then tells its peers (relays challenge the new address).
   */
  rebind(next: DatagramTransport): void {
    const old = this.#transport;
    this.#transport = next;
    this.#attach(next);
    old.onMessage = () => undefined;
    old.close();
    this.node.handleRebind?.(this.#sched.now());
    this.kick();
  }

  /** Sets the fake network conditions of both directions. */
  setFakeConditions(send: FakeConditions, recv: FakeConditions): void {
    this.fakeSend.conditions = send;
    this.fakeRecv.conditions = recv;
  }

  #receive(data: Uint8Array, from: SocketAddress): void {
    if (this.#closed) return;
    this.#received++;
    const now = this.#sched.now();
    if (this.fakeRecv.admit(now, data, from)) {
      // A shed datagram changed nothing: it needs no pass (under a flood most need none).
      if (!this.#input(now, data, from)) return;
      if (!this.#passing) this.#respond();
    }
    this.kick();
  }

  /**
   * Right after a datagram was handled: the owner sees what it delivered, and what the owner sends in
   * answer (an echo, a reply) leaves in this same callback, with the acks it carries. When the owner
   * sends nothing, acks and the rest wait for the pass at the end of the event-loop turn, so that a
   * burst of datagrams shares them.
   */
  #respond(): void {
    this.#passing = true;
    this.#commanded = false;
    try {
      this.#onServiced(this);
    } finally {
      this.#passing = false;
    }
    if (this.#closed || !this.#commanded) return;
    this.#transmit(this.#sched.now(), MAX_SENDS_PER_PASS);
  }

  /** Established traffic is handled at once; unauthenticated datagrams wait for the pass. Returns false if shed. */
  #input(now: number, data: Uint8Array, from: SocketAddress): boolean {
    const ep = this.node;
    const kind = ep.admission?.(data, from) ?? Admission.Now;
    if (kind !== Admission.Now) return this.admission.offer(now, kind, data, from);
    ep.handleDatagram(now, from, data);
    return true;
  }

  readonly #clock = (): number => this.#sched.now();

  /** One queued datagram of a pass, and what it caused sent at once: the pass's time budget covers both. */
  readonly #admit = (data: Uint8Array, from: SocketAddress): void => {
    this.node.handleDatagram(this.#passUs, from, data);
    this.#passSends += this.#transmit(this.#passUs, MAX_SENDS_PER_PASS - this.#passSends);
  };

  /** Asks for a service pass on this turn of the event loop (after a command such as `send`). */
  kick(): void {
    this.#commanded = true;
    if (this.#immediate || this.#closed) return;
    this.#immediate = this.#sched.soon(this.#onImmediate);
  }

  /**
   * Sends what the node has ready now (`flush`), without the rest of a pass (timers, callbacks), which
   * still runs at the end of the turn: a server flushing each of a thousand connections from its tick
   * pays for its datagrams, not for a thousand passes. From inside a pass or a response (a program
   * flushing from a callback) it leaves the sending to the drain that follows the callbacks.
   */
  flushNow(): void {
    if (!this.#passing && !this.#closed) {
      this.#passing = true;
      try {
        this.#transmit(this.#sched.now(), MAX_SENDS_PER_PASS);
      } finally {
        this.#passing = false;
      }
    }
    this.kick();
  }

  readonly #onImmediate = (): void => {
    this.#immediate = null;
    this.#pass(true);
  };

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAtUs = Number.POSITIVE_INFINITY;
    this.#pass(false);
  };

  /** Runs the node now: due datagrams, expired timers, everything it wants sent; then re-arms the timer. */
  service(): void {
    this.#pass(false);
  }

  /**
   * A service pass. Only the pass of the event-loop turn (`admit`, run by `soon` after the turn's reads)
   * hands queued unauthenticated datagrams on: it knows what the turn read, and so how long it may take.
   */
  #pass(admit: boolean): void {
    if (this.#closed) return;
    const outer = this.#passing;
    this.#passing = true;
    try {
      this.#passBody(admit);
    } finally {
      this.#passing = outer;
    }
  }

  #passBody(admit: boolean): void {
    const ep = this.node;
    let now = this.#sched.now();
    for (let d = this.fakeRecv.pollDue(now); d; d = this.fakeRecv.pollDue(now)) this.#input(now, d.data, d.peer);
    this.#passUs = now;
    this.#passSends = 0;
    // At most one budget of unauthenticated datagrams per pass: the rest wait for the next turn.
    let more = this.admission.size > 0;
    if (more && admit) {
      more = this.admission.drain(now, this.#received, this.#clock, this.#admit);
      this.#received = 0;
    }
    ep.handleTimeout(now); // fires only what has expired; one scan, not a pollTimeout scan and then this one
    let sends = this.#passSends + this.#transmit(now, MAX_SENDS_PER_PASS - this.#passSends);
    this.#onServiced(this);
    if (this.#closed) return;
    // What the owner sent from inside onServiced (an echo, a reply) leaves now, not one event-loop turn later.
    if (this.#immediate && sends < MAX_SENDS_PER_PASS) {
      this.#sched.cancelSoon(this.#immediate);
      this.#immediate = null;
      now = this.#sched.now(); // the owner's sends are stamped later than the pass began
      sends += this.#transmit(now, MAX_SENDS_PER_PASS - sends);
    }
    if (sends === MAX_SENDS_PER_PASS || more) {
      this.kick();
      return;
    }
    this.#arm(now, Math.min(ep.pollTimeout(now) ?? Number.POSITIVE_INFINITY, this.fakeSend.nextDueUs(), this.fakeRecv.nextDueUs()));
  }

  /** Sends up to `max` datagrams the node has ready, through the fake conditions; returns how many it took. */
  #transmit(now: number, max: number): number {
    const ep = this.node;
    const tx = this.#transport;
    let sends = 0;
    for (; sends < max; sends++) {
      const t = ep.pollTransmit(now);
      if (!t) break;
      let data = t.data;
      if (t.header) {
        if (!this.fakeSend.active) {
          tx.send(data, t.destination, t.header); // a relay hop header in front, gathered by the socket
          continue;
        }
        data = concat(t.header, data); // a held datagram outlives the path's reused header
      }
      if (this.fakeSend.admit(now, data, t.destination)) tx.send(data, t.destination);
    }
    for (let d = this.fakeSend.pollDue(now); d; d = this.fakeSend.pollDue(now)) tx.send(d.data, d.peer);
    return sends;
  }

  #arm(now: number, atUs: number): void {
    if (atUs === Number.POSITIVE_INFINITY) {
      if (this.#timer) this.#sched.cancel(this.#timer);
      this.#timer = null;
      this.#timerAtUs = atUs;
      return;
    }
    if (atUs <= now) {
      this.kick();
      return;
    }
    // A timer that fires early is harmless (the pass finds nothing due and re-arms); one that fires late is not.
    if (this.#timer && this.#timerAtUs <= atUs) return;
    if (this.#timer) this.#sched.cancel(this.#timer);
    this.#timerAtUs = atUs;
    this.#timer = this.#sched.at(atUs, this.#onTimer, this.#keepAlive);
  }

  /** Whether the driver keeps the process alive (its transport and timer). */
  get keepsProcessAlive(): boolean {
    return this.#keepAlive;
  }

  /** Keeps the process alive while the transport is open, or not (the timer follows on its next arming). */
  keepProcessAlive(yes: boolean): void {
    this.#keepAlive = yes;
    this.#transport.keepProcessAlive(yes);
  }

  /** Stops the timer and closes the transport. Connections still in the endpoint are abandoned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) this.#sched.cancel(this.#timer);
    if (this.#immediate) this.#sched.cancelSoon(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
    this.fakeSend.clear();
    this.fakeRecv.clear();
    this.admission.clear();
    this.#transport.close();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const d = new Uint8Array(a.length + b.length);
  d.set(a);
  d.set(b, a.length);
  return d;
}
