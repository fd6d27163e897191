import type { SocketAddress } from '../core/types.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { RelayNode, type RelayNodeOptions } from '../relay/node/index.js';
import { fleetChannel, type FleetResult, type FleetWork } from '../relay/node/fleet.js';
import { RelayMsg, formatRelayAddress } from '../relay/protocol.js';
import { NetlaneError } from '../util/errors.js';
import { Admission } from '../util/admission.js';
import type { Rng } from '../util/rng.js';
import { AdmissionQueue, type AdmissionOptions } from './admission.js';
import type { Clock } from './clock.js';
import { whenBound, type DatagramTransport } from './driver.js';
import type { FleetStore, MaybePromise } from './fleet-store.js';
import { runtimeWithClock, udpRuntime, type Runtime } from './runtime.js';
import type { Scheduler, TimerHandle } from './scheduler.js';
import { WebRtcGateway, type WebRtcGatewayOptions } from './webrtc-gateway.js';
import { WsGateway, type WsGatewayOptions } from './ws-gateway.js';

/** Kernel buffers of a relay's socket: a relay carries many clients' bursts at once. */
const RELAY_RECV_BUFFER_BYTES = 8 << 20;
const RELAY_SEND_BUFFER_BYTES = 4 << 20;

/** Options of {@link RelayServer.open}: where to listen, plus the node's policy. */
export interface RelayServerOptions extends Omit<RelayNodeOptions, 'provider' | 'send' | 'unixSeconds' | 'fleet'> {
  /** IP literal to bind. Default 127.0.0.1 (the embedded relay); `0.0.0.0` or `::` for a public relay. */
  readonly address?: string;
  /** UDP port; 0 picks a free one. */
  readonly port?: number;
  readonly provider?: CryptoProvider;
  /** Monotonic clock, integer µs. Default: the runtime's. */
  readonly clock?: Clock;
  /** Sockets and timers. Default: real UDP; `SimNetwork.runtime(ip)` puts the relay inside a simulation. */
  readonly runtime?: Runtime;
  /** Wall clock, unix seconds (tickets, route tokens, directory). Default: the runtime's (the system clock). */
  readonly unixSeconds?: () => number;
  /** Keep the process alive while the relay runs. Default true for `netlane relay`; false for an embedded relay. */
  readonly keepProcessAlive?: boolean;
  /** The queue of unauthenticated datagrams (pings, session requests): its per-pass budget and capacity. */
  readonly admission?: AdmissionOptions;
  /** Joins a fleet through `store` (docs/RELAY.md "The fleet"). Without it the relay is alone. */
  readonly fleet?: RelayFleetOptions;
  /** Transports beside UDP for clients that cannot send UDP: `ws`, a WebSocket gateway, and `webrtc`, a WebRTC data-channel gateway, for browsers (docs/BROWSER.md). */
  readonly gateways?: { readonly ws?: WsGatewayOptions; readonly webrtc?: WebRtcGatewayOptions };
}

/** The fleet a {@link RelayServer} joins: its store (shared by the fleet's relays) and how this relay shows in the registry. */
export interface RelayFleetOptions {
  /** The fleet's store: a {@link MemoryFleetStore} shared in one process, or {@link openRedisFleetStore}'s. The caller closes it. */
  readonly store: FleetStore;
  /** Region label in the registry (ASCII, at most 32 characters). Default empty. */
  readonly region?: string;
  /** The IP clients reach this relay at. Default the bound address (required when that is 0.0.0.0 or ::). */
  readonly advertise?: string;
  /** Prefix of the fleet's keys and channels. Default `netlane:`. */
  readonly prefix?: string;
}

/**
 * A sans-IO {@link RelayNode} on one socket with one timer, armed at the node's `pollTimeout()`: one
 * process, one port, one core. The forwarding path sends the received buffer itself, rewritten in place
 * by the node: no copy and no allocation per datagram. Pings and session requests, which cost work before
 * any session exists, go through an {@link AdmissionQueue} drained in one pass per event-loop turn, as the
 * endpoint driver's handshakes do (docs/RUNTIME.md "Under a flood").
 */
export class RelayServer {
  readonly node: RelayNode;
  readonly #sock: DatagramTransport;
  readonly #sched: Scheduler;
  readonly #keepAlive: boolean;
  /** The one timer (null while the node has nothing due). */
  #timer: TimerHandle | null = null;
  #timerAtUs = Number.POSITIVE_INFINITY;
  #closed = false;
  #onDrained: (() => void) | null = null;
  #draining = false;
  /** Pings and session requests waiting for the next pass; `admission.stats` counts what was shed. */
  readonly admission: AdmissionQueue;
  #immediate: TimerHandle | null = null;
  /** The clock of the current pass, for the queued datagrams it hands to the node. */
  #passUs = 0;
  /** Datagrams received since the last pass: a full read batch means the socket has more waiting. */
  #received = 0;
  /** The fleet's store, or null outside a fleet. */
  readonly #store: FleetStore | null;
  /** The prefix of the fleet's keys and channels. */
  readonly #fleetPrefix: string;

  private constructor(sock: DatagramTransport, runtime: Runtime, options: RelayServerOptions) {
    this.#sock = sock;
    this.#sched = runtime.scheduler;
    this.#keepAlive = options.keepProcessAlive ?? false;
    // Drawn from only under load: a relay that never is leaves the runtime's randomness as it was.
    let rng: Rng | null = null;
    const lazy: Rng = { next: () => (rng ??= runtime.rng()).next(), nextU32: () => (rng ??= runtime.rng()).nextU32() };
    this.admission = new AdmissionQueue(lazy, options.admission);
    // One destination record, rewritten per send: the socket reads it before `send` returns.
    const to = { address: '', port: 0 };
    const provider = options.provider ?? runtime.provider();
    const staticKey = options.staticKey ?? provider.generateKeyExchange();
    const fleet = options.fleet;
    this.#store = fleet?.store ?? null;
    this.#fleetPrefix = fleet?.prefix ?? 'netlane:';
    let advertised: string | null = null;
    if (fleet) {
      const ip = fleet.advertise ?? sock.local.address;
      if (ip === '0.0.0.0' || ip === '::') throw new NetlaneError('ERR_NETLANE_CONFIG', `a relay bound to ${ip} in a fleet needs fleet.advertise (the IP clients reach it at)`);
      if (sock.local.port === 0) throw new NetlaneError('ERR_NETLANE_CONFIG', 'a relay in a fleet advertises its port: under a runtime that binds after the call (Bun), give a port or use RelayServer.openBound');
      advertised = formatRelayAddress({ address: ip, port: sock.local.port, publicKey: staticKey.publicKey });
    }
    this.node = new RelayNode({
      ...withoutFleet(options),
      staticKey,
      ...(fleet && advertised !== null ? { fleet: { address: advertised, ...(fleet.region !== undefined ? { region: fleet.region } : {}), ...(fleet.prefix !== undefined ? { prefix: fleet.prefix } : {}) } } : {}),
      provider,
      unixSeconds: options.unixSeconds ?? runtime.unixSeconds,
      send: (data, port, address) => {
        if (this.#closed) return;
        to.address = address;
        to.port = port;
        sock.send(data, to);
      },
    });
    sock.onMessage = (data, from) => {
      this.#received++;
      const now = this.#sched.now();
      const kind = this.node.admission(data);
      if (kind !== Admission.Now) {
        if (this.admission.offer(now, kind, data, from) && this.#immediate === null) this.#immediate = this.#sched.soon(this.#onImmediate);
        return;
      }
      this.node.handleDatagram(now, from.address, from.port, data);
      if (this.node.fleetBusy) this.#carry();
      // Forwarded data never moves an armed pollTimeout earlier: only an idle node (no timer), a drain, or control
      // (a trunk may start the reap scan before the fleet's next refresh) needs a look.
      if (this.#timer === null || this.#onDrained !== null || !isData(data)) this.#service(now);
    };
    sock.keepProcessAlive(this.#keepAlive);
    // In a fleet, the first registry record is due at once; revocations and drains come over pub/sub.
    if (this.#store) {
      for (const channel of this.node.fleetChannels) this.#subscribe(this.#store, channel);
      this.#service(this.#sched.now());
    }
  }

  /** The fleet's store, or null outside a fleet. */
  get fleetStore(): FleetStore | null {
    return this.#store;
  }

  /**
   * Carries the node's store work to the store. An answer the store has at once (the memory store) goes back to the
   * node before this returns; a promised one (Redis) when it settles. Either way through `handleFleetResult`.
   */
  #carry(): void {
    const store = this.#store;
    for (let w = this.node.pollFleet(); w !== null; w = this.node.pollFleet()) {
      if (!store) continue;
      let answer: MaybePromise<FleetResult>;
      try {
        answer = runFleetWork(store, w);
      } catch {
        answer = { id: w.id, ok: false };
      }
      if (answer instanceof Promise) {
        const id = w.id;
        answer.then(this.#deliver, () => this.#deliver({ id, ok: false }));
      } else this.node.handleFleetResult(this.#sched.now(), answer);
    }
  }

  /** Subscribes the node to a fleet channel; a subscription the store refuses is counted (`fleetSubscribeFailures`). */
  #subscribe(store: FleetStore, channel: string): void {
    const onMessage = (message: string): void => {
      if (this.#closed) return;
      const now = this.#sched.now();
      this.node.handleFleetMessage(now, channel, message);
      if (this.node.fleetBusy) this.#carry();
      this.#service(now);
    };
    const failed = (): void => {
      this.fleetSubscribeFailures++;
    };
    try {
      const p = store.subscribe(channel, onMessage);
      if (p instanceof Promise) p.catch(failed);
    } catch {
      failed();
    }
  }

  /** Subscriptions to the fleet's channels the store refused (the relay then hears no revocation or drain). */
  fleetSubscribeFailures = 0;

  /**
   * Publishes a revocation to the whole fleet (this relay included): tickets signed with ticket key `keyId`, or the
   * ticket `ticketId` (32 hex digits), are refused by every relay from then on, and their sessions close at once.
   */
  async revokeFleetWide(r: { readonly keyId: number } | { readonly ticketId: string }): Promise<void> {
    await this.#publish('revoke', JSON.stringify(r));
  }

  /** Publishes a drain order: the relay `HOST:PORT` (or `*`, every relay of the fleet) drains within `seconds`. */
  async drainFleet(relay: string, seconds: number): Promise<void> {
    await this.#publish('drain', JSON.stringify({ relay, seconds }));
  }

  async #publish(kind: 'revoke' | 'drain', message: string): Promise<void> {
    const store = this.#store;
    if (!store) throw new NetlaneError('ERR_NETLANE_CONFIG', 'this relay is in no fleet');
    await store.publish(fleetChannel(this.#fleetPrefix, kind), message);
  }

  /** A promised store answer: to the node, then whatever it sends or asks next. */
  readonly #deliver = (r: FleetResult): void => {
    if (this.#closed) return;
    const now = this.#sched.now();
    this.node.handleFleetResult(now, r);
    this.#carry();
    this.#service(now);
  };

  /**
   * Binds the socket and starts the node. Throws NetlaneError ERR_NETLANE_SOCKET. Under Node and Deno the socket
   * is bound when this returns; under Bun it binds after the call, and a port-0 relay's `local` and `address`
   * have port 0 until then: {@link RelayServer.openBound} waits for the bind.
   */
  static open(options: RelayServerOptions = {}): RelayServer {
    const runtime = RelayServer.#runtime(options);
    return new RelayServer(RelayServer.#socket(runtime, options), runtime, options);
  }

  /** {@link RelayServer.open}, resolving once the socket is bound under every runtime. Rejects with NetlaneError ERR_NETLANE_SOCKET. */
  static async openBound(options: RelayServerOptions = {}): Promise<RelayServer> {
    const runtime = RelayServer.#runtime(options);
    const sock = RelayServer.#socket(runtime, options);
    try {
      await whenBound(sock);
    } catch (e) {
      sock.close();
      throw e;
    }
    return new RelayServer(sock, runtime, options);
  }

  /** The WebSocket gateway, when `gateways.ws` asked for one (its `listening` says where). */
  get wsGateway(): WsGateway | null {
    const s = this.#sock;
    if (s instanceof WsGateway) return s;
    return s instanceof WebRtcGateway && s.innerTransport instanceof WsGateway ? s.innerTransport : null;
  }

  /** The WebRTC gateway, when `gateways.webrtc` asked for one (its `listening` says where its signaling endpoint is). */
  get webrtcGateway(): WebRtcGateway | null {
    return this.#sock instanceof WebRtcGateway ? this.#sock : null;
  }

  static #runtime(options: RelayServerOptions): Runtime {
    return options.runtime ?? (options.clock ? runtimeWithClock(options.clock) : udpRuntime);
  }

  /** The UDP socket, with the WebSocket gateway around it when `gateways.ws` asks for one, and the WebRTC gateway around that when `gateways.webrtc` does. */
  static #socket(runtime: Runtime, options: RelayServerOptions): DatagramTransport {
    const udp = runtime.openUdp({
      address: options.address ?? '127.0.0.1',
      port: options.port ?? 0,
      recvBufferSize: RELAY_RECV_BUFFER_BYTES,
      sendBufferSize: RELAY_SEND_BUFFER_BYTES,
      keepProcessAlive: options.keepProcessAlive ?? false,
    });
    const g = options.gateways;
    let sock: DatagramTransport = udp;
    try {
      if (g?.ws) sock = new WsGateway(sock, g.ws);
      if (g?.webrtc) sock = new WebRtcGateway(sock, g.webrtc);
      return sock;
    } catch (e) {
      sock.close();
      throw e;
    }
  }

  /** The local address (under Bun, with port 0 until a port-0 socket is bound). */
  get local(): SocketAddress {
    return this.#sock.local;
  }

  /** The relay's static public key (clients need it with the address). */
  get publicKey(): Uint8Array {
    return this.node.publicKey;
  }

  /** `host:port#key`: how clients name this relay (what `netlane relay` prints). */
  get address(): string {
    return formatRelayAddress({ ...this.local, publicKey: this.node.publicKey });
  }

  /** Whether {@link drain} was called (the relay refuses new sessions from then on; its health check answers 503). */
  get draining(): boolean {
    return this.#draining;
  }

  /** Sends the kernel refused. */
  get sendErrors(): number {
    return this.#sock.sendErrors ?? 0;
  }

  /** A pass over the queued pings and session requests; another follows next turn while some wait. */
  readonly #onImmediate = (): void => {
    this.#immediate = null;
    if (this.#closed) return;
    const now = this.#sched.now();
    this.#passUs = now;
    const more = this.admission.drain(now, this.#received, this.#clock, this.#admit);
    this.#received = 0;
    if (this.node.fleetBusy) this.#carry();
    if (more) this.#immediate = this.#sched.soon(this.#onImmediate);
    // A first session arms the reap scan.
    this.#service(now);
  };

  readonly #clock = (): number => this.#sched.now();

  readonly #admit = (data: Uint8Array, from: SocketAddress): void => {
    this.node.handleDatagram(this.#passUs, from.address, from.port, data);
  };

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAtUs = Number.POSITIVE_INFINITY;
    const now = this.#sched.now();
    this.node.handleTimeout(now);
    if (this.node.fleetBusy) this.#carry();
    this.#service(now);
  };

  /** Reports a finished drain, then keeps the one timer at the node's `pollTimeout()`. */
  #service(now: number): void {
    if (this.#onDrained && this.node.drained(now)) {
      const cb = this.#onDrained;
      this.#onDrained = null;
      cb();
    }
    if (this.#closed) return;
    const at = this.node.pollTimeout(now) ?? Number.POSITIVE_INFINITY;
    if (at === Number.POSITIVE_INFINITY) {
      if (this.#timer) this.#sched.cancel(this.#timer);
      this.#timer = null;
      this.#timerAtUs = at;
      return;
    }
    // A timer that fires early is harmless (nothing is due, it re-arms); one that fires late is not.
    if (this.#timer && this.#timerAtUs <= at) return;
    this.#arm(at);
  }

  #arm(atUs: number): void {
    if (this.#timer) this.#sched.cancel(this.#timer);
    this.#timerAtUs = atUs;
    this.#timer = this.#sched.at(atUs, this.#onTimer, this.#keepAlive);
  }

  /** Drains: refuses new sessions, tells clients the deadline, and calls `done` when every session is gone or at the deadline. */
  drain(seconds: number, done: () => void): void {
    const now = this.#sched.now();
    this.#draining = true;
    this.node.drain(now, seconds);
    this.#onDrained = done;
    // Already drained (no sessions): `done` runs from the timer, not inside this call.
    if (this.node.drained(now)) this.#arm(now);
    else this.#service(now);
  }

  /** Closes the socket; in a fleet, first deletes this relay's registry record (the store stays open: it is the caller's). */
  close(): void {
    if (this.#closed) return;
    if (this.#store) {
      this.node.leaveFleet();
      this.#carry();
    }
    this.#closed = true;
    if (this.#timer) this.#sched.cancel(this.#timer);
    if (this.#immediate) this.#sched.cancelSoon(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
    this.admission.clear();
    this.#sock.close();
  }
}

/** One piece of store work, done on `store`: its answer at once (a store that answers synchronously) or promised. Throws what the store throws. */
function runFleetWork(store: FleetStore, w: FleetWork): MaybePromise<FleetResult> {
  const id = w.id;
  const done: FleetResult = { id, ok: true };
  switch (w.kind) {
    case 'set':
      return after(store.set(w.key, w.value, w.ttlMs), () => (w.member ? after(store.addMember(w.member.set, w.member.member), () => done) : done));
    case 'setIfNewer':
      return after(store.setIfNewer(w.key, w.order, w.value, w.ttlMs), () => done);
    case 'get':
      return after(store.get(w.key), (value) => ({ id, ok: true, value }));
    case 'delete':
      return after(store.delete(w.key, ...(w.ifValue !== null ? [w.ifValue] : [])), () => (w.member ? after(store.removeMember(w.member.set, w.member.member), () => done) : done));
    case 'list':
      return after(store.members(w.set), (members) => after(store.getMany(members.map((m) => w.keyPrefix + m)), (values) => ({ id, ok: true, members, values })));
  }
}

/** `f(v)`, after `v` settles if it is a promise. */
function after<T, U>(v: MaybePromise<T>, f: (t: T) => MaybePromise<U>): MaybePromise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** Whether a datagram is forwarded data (DATA_UP, TRUNK_DATA): the hot path, which never needs the timer looked at. */
function isData(data: Uint8Array): boolean {
  return data[0] === RelayMsg.DataUp || data[0] === RelayMsg.TrunkData;
}

/** The node's part of a server's options (the server's `fleet` and `gateways` are not the node's). */
function withoutFleet(options: RelayServerOptions): Omit<RelayServerOptions, 'fleet' | 'gateways'> {
  const out: { -readonly [K in keyof RelayServerOptions]?: RelayServerOptions[K] } = { ...options };
  delete out.fleet;
  delete out.gateways;
  return out;
}
