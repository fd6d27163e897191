import type { Endpoint } from '../core/endpoint.js';
import type { SocketAddress } from '../core/types.js';
import type { Rng } from '../util/rng.js';
import type { Clock } from './clock.js';
import { FakeLink, type FakeConditions } from './fake-network.js';

/** Where an {@link EndpointDriver} sends and receives datagrams: a {@link UdpSocket} or a {@link MemoryTransport}. */
export interface DatagramTransport {
  readonly local: SocketAddress;
  /** Set by the driver: called for every datagram that arrives. */
  onMessage: (data: Uint8Array, from: SocketAddress) => void;
  send(data: Uint8Array, to: SocketAddress): void;
  keepProcessAlive(yes: boolean): void;
  close(): void;
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

  send(data: Uint8Array): void {
    const p = this.peer;
    if (!this.#closed && p && !p.#closed) p.onMessage(data, this.local);
  }

  keepProcessAlive(): void {
    // Nothing to keep alive: there is no socket.
  }

  close(): void {
    this.#closed = true;
  }
}

/** Options of an {@link EndpointDriver}. */
export interface DriverOptions {
  readonly clock: Clock;
  /** Seeded randomness for the fake network conditions. */
  readonly rng: Rng;
  /** Called after every service pass: the owner drains the endpoint's events and readable connections. */
  readonly onServiced: (driver: EndpointDriver) => void;
  /** Keep the process alive while the socket is open. Default false: an idle library never holds a process. */
  readonly keepProcessAlive?: boolean;
}

/** Most datagrams sent in one service pass before yielding to the event loop. */
const MAX_SENDS_PER_PASS = 4096;

/**
 * Runs one sans-IO {@link Endpoint} on one transport with real time: feeds it datagrams, drains its
 * output after every input and command, and keeps exactly one timer, re-armed at the earliest of
 * `endpoint.pollTimeout()` and the fake network's next held datagram. Received datagrams are processed
 * at once; output is drained in one pass per event-loop turn (`setImmediate`), so that a burst of
 * datagrams or of `send` calls shares packets and acks.
 */
export class EndpointDriver {
  readonly endpoint: Endpoint;
  readonly transport: DatagramTransport;
  /** Fake conditions on datagrams we send and on datagrams we receive. */
  readonly fakeSend: FakeLink;
  readonly fakeRecv: FakeLink;
  readonly #clock: Clock;
  readonly #onServiced: (driver: EndpointDriver) => void;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAtUs = Number.POSITIVE_INFINITY;
  #immediate: ReturnType<typeof setImmediate> | null = null;
  #closed = false;
  readonly #keepAlive: boolean;

  constructor(endpoint: Endpoint, transport: DatagramTransport, options: DriverOptions) {
    this.endpoint = endpoint;
    this.transport = transport;
    this.#clock = options.clock;
    this.#onServiced = options.onServiced;
    this.#keepAlive = options.keepProcessAlive ?? false;
    this.fakeSend = new FakeLink(options.rng);
    this.fakeRecv = new FakeLink(options.rng);
    transport.keepProcessAlive(this.#keepAlive);
    transport.onMessage = (data, from) => this.#receive(data, from);
  }

  /** Sets the fake network conditions of both directions. */
  setFakeConditions(send: FakeConditions, recv: FakeConditions): void {
    this.fakeSend.conditions = send;
    this.fakeRecv.conditions = recv;
  }

  #receive(data: Uint8Array, from: SocketAddress): void {
    if (this.#closed) return;
    const now = this.#clock();
    if (this.fakeRecv.admit(now, data, from)) this.endpoint.handleDatagram(now, from, data);
    this.kick();
  }

  /** Asks for a service pass on this turn of the event loop (after a command such as `send`). */
  kick(): void {
    if (this.#immediate || this.#closed) return;
    this.#immediate = setImmediate(this.#onImmediate);
  }

  readonly #onImmediate = (): void => {
    this.#immediate = null;
    this.service();
  };

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAtUs = Number.POSITIVE_INFINITY;
    this.service();
  };

  /** Runs the endpoint now: due datagrams, expired timers, everything it wants sent; then re-arms the timer. */
  service(): void {
    if (this.#closed) return;
    const ep = this.endpoint;
    let now = this.#clock();
    for (let d = this.fakeRecv.pollDue(now); d; d = this.fakeRecv.pollDue(now)) ep.handleDatagram(now, d.peer, d.data);
    ep.handleTimeout(now); // fires only what has expired; one scan, not a pollTimeout scan and then this one
    let sends = this.#transmit(now, MAX_SENDS_PER_PASS);
    this.#onServiced(this);
    if (this.#closed) return;
    // What the owner sent from inside onServiced (an echo, a reply) leaves now, not one event-loop turn later.
    if (this.#immediate && sends < MAX_SENDS_PER_PASS) {
      clearImmediate(this.#immediate);
      this.#immediate = null;
      now = this.#clock(); // the owner's sends are stamped later than the pass began
      sends += this.#transmit(now, MAX_SENDS_PER_PASS - sends);
    }
    if (sends === MAX_SENDS_PER_PASS) {
      this.kick();
      return;
    }
    this.#arm(now, Math.min(ep.pollTimeout(now) ?? Number.POSITIVE_INFINITY, this.fakeSend.nextDueUs(), this.fakeRecv.nextDueUs()));
  }

  /** Sends up to `max` datagrams the endpoint has ready, through the fake conditions; returns how many it took. */
  #transmit(now: number, max: number): number {
    const ep = this.endpoint;
    let sends = 0;
    for (; sends < max; sends++) {
      const t = ep.pollTransmit(now);
      if (!t) break;
      if (this.fakeSend.admit(now, t.data, t.destination)) this.transport.send(t.data, t.destination);
    }
    for (let d = this.fakeSend.pollDue(now); d; d = this.fakeSend.pollDue(now)) this.transport.send(d.data, d.peer);
    return sends;
  }

  #arm(now: number, atUs: number): void {
    if (atUs === Number.POSITIVE_INFINITY) {
      if (this.#timer) clearTimeout(this.#timer);
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
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAtUs = atUs;
    this.#timer = setTimeout(this.#onTimer, Math.ceil((atUs - now) / 1000));
    if (!this.#keepAlive) this.#timer.unref();
  }

  /** Stops the timer and closes the transport. Connections still in the endpoint are abandoned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
    this.fakeSend.clear();
    this.fakeRecv.clear();
    this.transport.close();
  }
}
