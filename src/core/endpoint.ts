import { addressGroup } from '../util/address.js';
import { Admission } from '../util/admission.js';
import { Deque } from '../util/deque.js';
import { IndexedHeap } from '../util/heap.js';
import { NetlaneError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { ControlType, decodeControl, encodeControl, type ControlPacket } from '../wire/control.js';
import { WireError } from '../wire/errors.js';
import { DATA_FLAG, peekDestinationCid } from '../wire/header.js';
import { DEFAULT_CONFIG, resolveConfig, type ConfigValues } from './config.js';
import { Connection, type ConnectionHost } from './connection.js';
import type { MessageVisitor } from './packet-receiver.js';
import type { DirectPathInfo } from './direct-path.js';
import type { HandshakeLayer, PeerInfo } from '../crypto/types.js';
import type { ConnectionStatus, LaneStatus } from './stats.js';
import { US_PER_S } from './timers.js';
import { ConnectionState as S, EndReason, Result, apiState, sameAddress, type ConnectionState, type EndpointEvent, type ReceivedMessage, type SocketAddress, type Transmit } from './types.js';

/**
 * The limits a listening endpoint admits new connections under, unless told otherwise: GNS's 8191
 * connections in all, and per address (IPv4 /32, IPv6 /64) 256 connections and 16 of them pending.
 * docs/PORTING.md argues the numbers.
 */
export const DEFAULT_LIMITS: ConnectionLimits = Object.freeze({ maxConnections: 8191, maxConnectionsPerAddress: 256, maxPendingPerAddress: 16 });
/** Stateless replies per second unless `statelessReplyRate` says otherwise. */
const DEFAULT_STATELESS_REPLY_RATE = 1000;
/** The reply bucket holds 1/this of a second's replies, so that a burst stays short. */
const REPLY_BURST_DIVISOR = 10;
/** Shortest datagram worth a look: a data packet's flags byte and destination connection id. */
const MIN_DATAGRAM_BYTES = 5;
/** Size of a NO_CONNECTION reply (type, two connection ids): smaller datagrams get none, so a reply never amplifies. */
const NO_CONNECTION_BYTES = 9;
/** Room for the largest stateless reply: a CHALLENGE with a full cookie, or CLOSED with its debug text. */
const STATELESS_REPLY_MAX_BYTES = 512;
/** Messages `receive` moves per call unless told otherwise. */
const DEFAULT_RECEIVE_BATCH = 256;

/** Options of an {@link Endpoint}, resolved once at construction. */
export interface EndpointOptions {
  /** Randomness for connection ids (seeded in tests). Keys and cookies come from the handshake's CryptoProvider. */
  readonly rng: Rng;
  /** Configuration values for every connection of this endpoint (GNS names). */
  readonly config?: Partial<Record<string, number>>;
  /** Accept incoming connections (act as a listen socket). */
  readonly listen?: boolean;
  /** The handshake's crypto layer: a `SecureHandshake` (crypto/), which holds this endpoint's key and certificate. */
  readonly handshake: HandshakeLayer;
  /** Stateless NO_CONNECTION and CLOSED replies allowed per second; bursts of a tenth of it. Default 1000. (A CHALLENGE is always answered: it is smaller than the padded HELLO.) */
  readonly statelessReplyRate?: number;
  /** Most connections the table holds. Default 8191 (as GNS). */
  readonly maxConnections?: number;
  /** Most incoming connections one address (IPv4 /32, IPv6 /64) holds, pending or connected. Default 256. */
  readonly maxConnectionsPerAddress?: number;
  /** Most incoming connections one address holds that the application has not accepted yet. Default 16. */
  readonly maxPendingPerAddress?: number;
  /**
   * Connection migration (RFC 9000 section 9): an authenticated packet from a new address that is the
   * newest its connection has seen starts a path validation of that address (a PATH_CHALLENGE sent there,
   * at most 3x the bytes received from it until it answers), and the connection moves there once the
   * PATH_RESPONSE comes back from it. The peer's NAT rebinding and relay link changes survive this way.
   * Default true. False: packets from any address but the connection's are dropped (counted as bad).
   */
  readonly migration?: boolean;
  /**
   * Queue a "writable again" notice ({@link Endpoint.pollWritable}) when a connection that refused a send
   * with LimitExceeded can take it. Default false: an owner that never reads the notices is not given any.
   */
  readonly writableNotices?: boolean;
}

/**
 * What a listening endpoint admits. A CONNECT_REQUEST with a valid cookie that would go past a limit is
 * refused before any state or crypto work, with a CLOSED (5011, `Misc_ConnectionLimit`) under the stateless
 * reply rate limit. Lowering a limit closes no connection; it refuses new ones.
 */
export interface ConnectionLimits {
  /** Most connections the table holds, closing ones (FinWait, up to 5 s) included. */
  readonly maxConnections: number;
  /**
   * Most incoming connections from one address group (`addressGroup`: IPv4 /32, IPv6 /64) in state
   * Connecting or Connected. Counted against the address each connected from.
   */
  readonly maxConnectionsPerAddress: number;
  /** Most incoming connections from one address group in state Connecting: not accepted yet. */
  readonly maxPendingPerAddress: number;
}

/** What one address group holds: connections Connecting (pending), and Connecting or Connected (live). */
interface AddressLoad {
  pending: number;
  live: number;
}

/** Endpoint-wide counters: traffic that never reached a connection. */
export interface EndpointStats {
  datagramsReceived: number;
  /** Datagrams dropped before reaching a connection: malformed, unknown type, too short. */
  datagramsMalformed: number;
  /** Data packets for a connection id we do not have. */
  unknownConnection: number;
  /** Handshake packets refused: bad cookie, not listening, wrong state. */
  handshakeRefused: number;
  statelessRepliesSent: number;
  /** Stateless replies suppressed by the rate limit. */
  statelessRepliesLimited: number;
  /** CONNECT_REQUESTs refused (CLOSED 5011) because the table held `maxConnections`. A client whose CLOSED was lost asks again and is counted again. */
  refusedMaxConnections: number;
  /** CONNECT_REQUESTs refused because the address group held `maxConnectionsPerAddress` connections. */
  refusedMaxConnectionsPerAddress: number;
  /** CONNECT_REQUESTs refused because the address group held `maxPendingPerAddress` connections not accepted yet. */
  refusedMaxPendingPerAddress: number;
  /**
   * `handleTimeout` calls, and the connections they looked at: only those whose deadline had come (the
   * timer heap's top), never the whole table. `timerVisits / timeoutCalls` is the work per timer.
   */
  timeoutCalls: number;
  timerVisits: number;
  /** Deadlines recomputed: once per connection an input, a command or a transmit touched, before the next poll. */
  timerUpdates: number;
}

/** The key of a server's connection by client address and id: one flat string (a template literal would keep a chain of parts per connection). */
function clientKey(from: SocketAddress, clientCid: number): string {
  return [from.address, from.port, clientCid].join('|');
}

/**
 * The sans-IO endpoint: one UDP socket's worth of protocol. It owns the connection table, routes
 * datagrams by destination connection id, answers unknown connections statelessly (rate-limited), and
 * runs the server side of the handshake without keeping state before a valid cookie.
 *
 * Inputs: {@link handleDatagram}, {@link handleTimeout} and the commands. Outputs, drained after every
 * input: {@link pollTransmit}, {@link pollTimeout}, {@link pollEvent}. Inputs never throw on network input.
 */
export class Endpoint implements ConnectionHost {
  #config: ConfigValues;
  readonly stats: EndpointStats = {
    datagramsReceived: 0,
    datagramsMalformed: 0,
    unknownConnection: 0,
    handshakeRefused: 0,
    statelessRepliesSent: 0,
    statelessRepliesLimited: 0,
    refusedMaxConnections: 0,
    refusedMaxConnectionsPerAddress: 0,
    refusedMaxPendingPerAddress: 0,
    timeoutCalls: 0,
    timerVisits: 0,
    timerUpdates: 0,
  };
  readonly #rng: Rng;
  readonly #handshake: HandshakeLayer;
  #listen: boolean;
  #limits: ConnectionLimits;
  readonly #migration: boolean;
  readonly #writableNotices: boolean;
  readonly #conns = new Map<number, Connection>();
  /** Server: (client address, client cid) -> connection, to answer repeated CONNECT_REQUESTs. */
  readonly #byClient = new Map<string, Connection>();
  /** Server: what each address group holds (groups with a live connection only). */
  readonly #load = new Map<string, AddressLoad>();
  /**
   * Connections that may have something to send, in round-robin order, each once (`sendQueued` set): a ring,
   * since a Set's delete and re-add per datagram allocates as its table rehashes. A reaped connection is
   * skipped when it comes up.
   */
  readonly #dirty = new Deque<Connection>();
  /**
   * Every connection with a deadline, keyed by it (µs): `pollTimeout` is a peek and `handleTimeout` pops what
   * is due. A key may be early (the connection is looked at, finds nothing due, and goes back with its real
   * deadline), never late: whatever can move a deadline touches its connection ({@link #touch}).
   */
  readonly #timers = new IndexedHeap<Connection>();
  /** Connections whose deadline may have moved since it was last computed (each once, `timerDirty` set). */
  readonly #touched: Connection[] = [];
  /** The connections one `handleTimeout` found due (reused). */
  readonly #due: Connection[] = [];
  readonly #events = new Deque<EndpointEvent>();
  /** Connections whose receive queue became non-empty since the last `pollReadable`. */
  readonly #readable = new Deque<number>();
  /** Connections that refused a send with LimitExceeded and can take it now, since the last `pollWritable`. */
  readonly #writable = new Deque<number>();
  readonly #stateless = new Deque<Transmit>();
  readonly #replyRate: number;
  /** Most tokens the reply bucket holds. */
  readonly #replyBurst: number;
  #replyTokens: number;
  #replyTokensUs = 0;

  constructor(options: EndpointOptions) {
    this.#rng = options.rng;
    this.#config = options.config ? resolveConfig(options.config) : DEFAULT_CONFIG;
    this.#handshake = options.handshake;
    this.#listen = options.listen ?? false;
    this.#limits = DEFAULT_LIMITS;
    this.setLimits(options);
    this.#migration = options.migration ?? true;
    this.#writableNotices = options.writableNotices ?? false;
    this.#replyRate = options.statelessReplyRate ?? DEFAULT_STATELESS_REPLY_RATE;
    this.#replyBurst = Math.max(1, this.#replyRate / REPLY_BURST_DIVISOR);
    this.#replyTokens = this.#replyBurst;
  }

  /** ConnectionHost: queue an event. @internal */
  emit(event: EndpointEvent): void {
    if (event.type === 'connectionStatusChanged') this.#account(event.connection, event.oldState, event.state);
    this.#events.push(event);
  }

  /** ConnectionHost: a connection has messages to receive. @internal */
  readable(conn: Connection): void {
    this.#readable.push(conn.localCid);
  }

  /** ConnectionHost: a send refused with LimitExceeded would be taken now. @internal */
  writable(conn: Connection): void {
    if (this.#writableNotices) this.#writable.push(conn.localCid);
  }

  /** ConnectionHost: randomness for path challenges (the endpoint's, as for connection ids). @internal */
  random32(): number {
    return this.#rng.nextU32();
  }

  /** Whether new incoming connections are accepted (HELLOs answered). */
  get listening(): boolean {
    return this.#listen;
  }

  set listening(on: boolean) {
    this.#listen = on;
  }

  /** The limits new incoming connections are admitted under. */
  get limits(): ConnectionLimits {
    return this.#limits;
  }

  /** Changes the limits that new incoming connections are admitted under; values not given stay. Throws ERR_NETLANE_CONFIG on a value that is not an integer >= 1. */
  setLimits(limits: Partial<ConnectionLimits>): void {
    const next = { ...this.#limits };
    for (const k of ['maxConnections', 'maxConnectionsPerAddress', 'maxPendingPerAddress'] as const) {
      const v = limits[k];
      if (v === undefined) continue;
      if (!Number.isInteger(v) || v < 1) throw new NetlaneError('ERR_NETLANE_CONFIG', `${k} must be an integer >= 1, got ${v}`);
      next[k] = v;
    }
    this.#limits = Object.freeze(next);
  }

  /** Configuration for connections made or accepted from now on. */
  get config(): ConfigValues {
    return this.#config;
  }

  /** Replaces the configuration new connections start with (a listen socket's scope); unnamed values take their defaults. Throws ERR_NETLANE_CONFIG on a bad value. */
  setConfig(values: Partial<Record<string, number>>): void {
    this.#config = resolveConfig(values);
  }

  /**
   * Changes configuration values of a live connection. Throws ERR_NETLANE_CONFIG on a bad value;
   * returns InvalidState if a value fixed at creation would change, InvalidParam for an unknown handle.
   */
  reconfigure(handle: number, values: Partial<Record<string, number>>): Result {
    const c = this.#conns.get(handle);
    if (!c) return Result.InvalidParam;
    const ok = c.reconfigure(resolveConfig(values, c.config));
    this.#touch(c);
    return ok ? Result.OK : Result.InvalidState;
  }

  /** The current configuration of a connection, or null for an unknown handle. */
  connectionConfig(handle: number): ConfigValues | null {
    return this.#conns.get(handle)?.config ?? null;
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  // ---------------------------------------------------------------- commands

  /** Starts a connection to `remote` (to its `virtualPort`, named in the signed handshake; -1: none). Returns its handle. */
  connect(now: number, remote: SocketAddress, config?: Partial<Record<string, number>>, virtualPort = -1): number {
    if (this.#conns.size >= this.#limits.maxConnections) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'too many connections');
    const cfg = config ? resolveConfig(config, this.#config) : this.#config;
    const conn = new Connection(this, this.#handshake, this.#newCid(), remote, false, cfg, now);
    this.#conns.set(conn.localCid, conn);
    conn.startClient(now, virtualPort);
    this.#wake(conn);
    return conn.localCid;
  }

  /** Accepts an incoming connection (state `Connecting` on a listening endpoint). */
  accept(now: number, handle: number, config?: Partial<Record<string, number>>): Result {
    const c = this.#conns.get(handle);
    if (!c) return Result.InvalidParam;
    const r = c.accept(now, config ? resolveConfig(config, c.config) : null);
    this.#wake(c);
    return r;
  }

  /** `closeConnection(conn, reason, debug, linger)`. The handle is invalid afterwards. `internal`: a library reason (5xxx) the peer sees as it is. */
  close(now: number, handle: number, reason = 0, debug = '', linger = false, internal = false): Result {
    const c = this.#conns.get(handle);
    if (!c || !c.close(now, reason, debug, linger, internal)) return Result.InvalidParam;
    this.#wake(c);
    return Result.OK;
  }

  /**
   * Queues a message (flags from `SendFlags`). Returns the message number (>= 1), or a negated
   * `Result` code: -LimitExceeded when the send buffer is full, -InvalidParam for a bad lane or size,
   * -InvalidState when the connection cannot send, -Ignored for a dropped NoDelay message.
   */
  send(now: number, handle: number, data: Uint8Array, flags: number, lane = 0): number {
    const c = this.#conns.get(handle);
    if (!c) return -Result.InvalidParam;
    const r = c.send(now, data, flags, lane);
    if (r > 0) this.#wake(c);
    return r;
  }

  /** `flushMessagesOnConnection`: send queued messages without waiting for Nagle. */
  flush(now: number, handle: number): Result {
    const c = this.#conns.get(handle);
    if (!c) return Result.InvalidParam;
    c.flush(now);
    this.#wake(c);
    return Result.OK;
  }

  /** `configureConnectionLanes`. */
  configureLanes(handle: number, priorities: readonly number[], weights: readonly number[]): Result {
    const c = this.#conns.get(handle);
    if (!c) return Result.InvalidParam;
    this.#touch(c);
    return c.configureLanes(priorities, weights);
  }

  /** Moves up to `max` received messages of a connection into `out`; returns how many. */
  receive(handle: number, out: ReceivedMessage[], max = DEFAULT_RECEIVE_BATCH): number {
    const c = this.#conns.get(handle);
    if (!c || c.state === S.FinWait || c.state === S.Linger || c.state === S.Dead) return 0;
    return c.receive(out, max);
  }

  /**
   * Takes up to `max` received messages of a connection, calling `visit(lane, messageNumber, reliable,
   * data, receivedAtUs)` for each, without a record per message; returns how many.
   */
  receiveEach(handle: number, max: number, visit: MessageVisitor): number {
    const c = this.#conns.get(handle);
    if (!c || c.state === S.FinWait || c.state === S.Linger || c.state === S.Dead) return 0;
    return c.receiveEach(max, visit);
  }

  /** Received messages waiting in a connection's queue (0 for an unknown handle). */
  pendingMessages(handle: number): number {
    return this.#conns.get(handle)?.pendingReceived ?? 0;
  }

  /** Lanes configured on a connection (0 for an unknown handle). */
  laneCount(handle: number): number {
    return this.#conns.get(handle)?.laneCount ?? 0;
  }

  /** API-visible state of a connection (`None` for unknown or closed handles). */
  state(handle: number): ConnectionState {
    const c = this.#conns.get(handle);
    return c ? apiState(c.state) : S.None;
  }

  /** Whether the endpoint still holds the connection (a closed one lingering or finishing its close included). */
  holds(handle: number): boolean {
    return this.#conns.has(handle);
  }

  /** The end reason and debug text of a connection that closed or failed. */
  endInfo(handle: number): { reason: number; debug: string } | null {
    const c = this.#conns.get(handle);
    return c ? { reason: c.endReason, debug: c.endDebug } : null;
  }

  /** What the handshake established about the peer (identity, authentication, cipher), or null before it. */
  peerInfo(handle: number): PeerInfo | null {
    return this.#conns.get(handle)?.peer ?? null;
  }

  remoteAddress(handle: number): SocketAddress | null {
    return this.#conns.get(handle)?.remote ?? null;
  }

  /** The path a connection falls back to (its relayed one) when direct paths are allowed, else where its packets go; null: no such connection. */
  homeAddress(handle: number): SocketAddress | null {
    return this.#conns.get(handle)?.homeAddress ?? null;
  }

  /**
   * Allows direct paths for a connection (docs/P2P.md): its path now becomes its fallback, and `candidates`
   * (the peer's addresses, sent end to end) are probed. Called again, it adds candidates. Returns false
   * for an unknown handle.
   */
  addDirectCandidates(now: number, handle: number, candidates: readonly SocketAddress[], penaltyUs = 0): boolean {
    const c = this.#conns.get(handle);
    if (!c) return false;
    c.enableDirect(now, penaltyUs);
    c.addDirectCandidates(now, candidates);
    this.#wake(c);
    return true;
  }

  /** A connection's direct and relayed paths, or null (unknown handle, or direct paths not allowed). */
  /** Whether direct paths are allowed for this connection (its peer's candidates were given): only then may a datagram from outside its relayed path reach it. */
  directEnabled(handle: number): boolean {
    return this.#conns.get(handle)?.directEnabled ?? false;
  }

  directInfo(handle: number): DirectPathInfo | null {
    return this.#conns.get(handle)?.directInfo() ?? null;
  }

  status(now: number, handle: number): ConnectionStatus | null {
    return this.#conns.get(handle)?.status(now) ?? null;
  }

  laneStatus(handle: number, lane: number): LaneStatus | null {
    return this.#conns.get(handle)?.laneStatus(lane) ?? null;
  }

  /** Bytes the connection may send now: congestion window and pacer, less what is queued. */
  sendBudget(now: number, handle: number): number {
    return this.#conns.get(handle)?.sendBudget(now) ?? 0;
  }

  // ---------------------------------------------------------------- inputs

  /**
   * What a datagram is to an io driver's admission control (SansIo.admission): `Now` if it is for a
   * connection this endpoint has (a data packet with a known destination id, or a CHALLENGE, CONNECT_OK,
   * CLOSED or NO_CONNECTION naming one); `Cookie` for a CONNECT_REQUEST; `New` for the rest (HELLOs, packets
   * for unknown connections), which cost work before any authentication. Reads five bytes and one map.
   */
  admission(data: Uint8Array): Admission {
    if (data.length < MIN_DATAGRAM_BYTES) return Admission.New;
    const first = data[0] as number;
    if (first === ControlType.ConnectRequest) return Admission.Cookie;
    // Where the packet names our connection id: after the flags byte, or after a CHALLENGE's version.
    let at: number;
    if ((first & DATA_FLAG) !== 0 || first === ControlType.ConnectOk || first === ControlType.Closed || first === ControlType.NoConnection) at = 1;
    else if (first === ControlType.Challenge) at = 5;
    else return Admission.New;
    if (data.length < at + 4) return Admission.New;
    const cid = (((data[at] as number) << 24) | ((data[at + 1] as number) << 16) | ((data[at + 2] as number) << 8) | (data[at + 3] as number)) >>> 0;
    return this.#conns.has(cid) ? Admission.Now : Admission.New;
  }

  /** A datagram from the network. Never throws; bad input is dropped and counted. */
  handleDatagram(now: number, from: SocketAddress, data: Uint8Array): void {
    this.stats.datagramsReceived++;
    if (data.length < MIN_DATAGRAM_BYTES) {
      this.stats.datagramsMalformed++;
      return;
    }
    const first = data[0] as number;
    if ((first & DATA_FLAG) !== 0) {
      const cid = peekDestinationCid(data);
      const c = this.#conns.get(cid);
      if (!c) {
        this.stats.unknownConnection++;
        // Tell the sender, but never with more bytes than it sent, and rate-limited.
        if (data.length >= NO_CONNECTION_BYTES) this.#statelessReply(now, from, { type: 'noConnection', destinationCid: 0, sourceCid: cid });
        return;
      }
      if (!sameAddress(c.remote, from)) {
        // Without migration, packets from another address are dropped. With it, an authenticated newest
        // packet starts a path validation of its address, and the connection moves once that address answers.
        if (!this.#migration) {
          c.badPackets++;
          return;
        }
        c.handleDatagram(now, data, from);
      } else c.handleDatagram(now, data);
      this.#wake(c);
      this.#reap(c);
      return;
    }
    let p: ControlPacket;
    try {
      p = decodeControl(data);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.stats.datagramsMalformed++;
      return;
    }
    this.#handleControl(now, from, p);
  }

  #handleControl(now: number, from: SocketAddress, p: ControlPacket): void {
    switch (p.type) {
      case 'hello': {
        if (!this.#listen) {
          this.stats.handshakeRefused++;
          return;
        }
        // The HELLO names the newest version the client speaks; we answer with the newest both speak.
        const version = Math.min(p.version, this.#handshake.maxProtocolVersion);
        if (version < this.#handshake.minProtocolVersion) {
          this.stats.handshakeRefused++;
          this.#statelessReply(now, from, { type: 'closed', destinationCid: p.clientCid, sourceCid: 0, reason: EndReason.Remote_BadProtocolVersion, debug: `protocol ${p.version} is older than ${this.#handshake.minProtocolVersion}` });
          return;
        }
        // Not rate-limited: a CHALLENGE is far smaller than the padded HELLO (no amplification), and a
        // global limit would let a spoofed flood starve real clients of cookies.
        const cookie = this.#handshake.issueCookie(now, from, p.clientCid);
        this.#queueReply(from, { type: 'challenge', version, clientCid: p.clientCid, cookie });
        return;
      }
      case 'connectRequest': {
        if (!this.#listen || !this.#handshake.checkCookie(now, from, p.clientCid, p.cookie)) {
          this.stats.handshakeRefused++;
          return;
        }
        const key = clientKey(from, p.clientCid);
        const existing = this.#byClient.get(key);
        if (existing) {
          existing.onDuplicateConnectRequest();
          this.#wake(existing);
          return;
        }
        if (p.version < this.#handshake.minProtocolVersion || p.version > this.#handshake.maxProtocolVersion) {
          this.stats.handshakeRefused++;
          this.#statelessReply(now, from, { type: 'closed', destinationCid: p.clientCid, sourceCid: 0, reason: EndReason.Remote_BadProtocolVersion, debug: 'unsupported protocol version' });
          return;
        }
        // Limits before any crypto work or state: a refusal costs a lookup and a small CLOSED.
        const group = addressGroup(from.address);
        const refusal = this.#overLimit(group);
        if (refusal !== null) {
          this.#statelessReply(now, from, { type: 'closed', destinationCid: p.clientCid, sourceCid: 0, reason: EndReason.Misc_ConnectionLimit, debug: refusal });
          return;
        }
        const serverCid = this.#newCid();
        const out = this.#handshake.acceptClient(from, p.clientCid, serverCid, p.version, p.cookie, p.payload, this.#config);
        if (!out.ok) {
          this.stats.handshakeRefused++;
          this.#statelessReply(now, from, { type: 'closed', destinationCid: p.clientCid, sourceCid: 0, reason: out.reason, debug: out.debug });
          return;
        }
        const conn = new Connection(this, this.#handshake, serverCid, from, true, this.#config, now);
        this.#conns.set(serverCid, conn);
        this.#byClient.set(key, conn);
        conn.clientKey = key;
        if (group !== null) {
          conn.addressGroup = group;
          if (!this.#load.has(group)) this.#load.set(group, { pending: 0, live: 0 });
        }
        conn.startServer(now, p.clientCid, out.keys, out.replyPayload, out.peer); // None -> Connecting: counted in #account
        this.#touch(conn);
        return;
      }
      case 'challenge':
      case 'connectOk':
      case 'noConnection': {
        const c = this.#conns.get(p.type === 'noConnection' ? p.destinationCid : p.clientCid);
        if (!c || c.isServer || !sameAddress(c.remote, from)) {
          this.stats.handshakeRefused++;
          return;
        }
        if (p.type === 'challenge') c.onChallenge(now, p.version, p.cookie);
        else if (p.type === 'connectOk') c.onConnectOk(now, p.serverCid, p.payload);
        else c.onNoConnection(now);
        this.#wake(c);
        return;
      }
      case 'closed': {
        let c = p.destinationCid !== 0 ? this.#conns.get(p.destinationCid) : undefined;
        if (!c) c = this.#byClient.get(clientKey(from, p.sourceCid));
        if (!c || !sameAddress(c.remote, from) || (c.remoteCid !== 0 && c.remoteCid !== p.sourceCid && p.sourceCid !== 0)) {
          this.stats.handshakeRefused++;
          return;
        }
        c.onClosedControl(now, p.reason, p.debug);
        this.#wake(c);
        return;
      }
      default: {
        const never: never = p;
        void never;
      }
    }
  }

  /** Why a new incoming connection from `group` would break a limit (the CLOSED's debug text, naming the setting), counted; null if it fits. */
  #overLimit(group: string | null): string | null {
    const lim = this.#limits;
    if (this.#conns.size >= lim.maxConnections) {
      this.stats.refusedMaxConnections++;
      return 'Too many connections (Netlane_MaxConnections).';
    }
    const load = group === null ? undefined : this.#load.get(group);
    if (!load) return null;
    if (load.pending >= lim.maxPendingPerAddress) {
      this.stats.refusedMaxPendingPerAddress++;
      return 'Too many pending connections from this address (Netlane_MaxPendingPerAddress).';
    }
    if (load.live >= lim.maxConnectionsPerAddress) {
      this.stats.refusedMaxConnectionsPerAddress++;
      return 'Too many connections from this address (Netlane_MaxConnectionsPerAddress).';
    }
    return null;
  }

  /** Keeps the address groups' counts as an incoming connection's API state moves (pending: Connecting; live: Connecting or Connected). */
  #account(cid: number, from: ConnectionState, to: ConnectionState): void {
    const group = this.#conns.get(cid)?.addressGroup ?? null;
    const load = group === null ? undefined : this.#load.get(group);
    if (!load) return;
    load.pending += Number(to === S.Connecting) - Number(from === S.Connecting);
    load.live += Number(to === S.Connecting || to === S.Connected) - Number(from === S.Connecting || from === S.Connected);
    if (load.live === 0) this.#load.delete(group as string);
  }

  #statelessReply(now: number, to: SocketAddress, p: ControlPacket): void {
    if (now > this.#replyTokensUs) {
      this.#replyTokens = Math.min(this.#replyBurst, this.#replyTokens + ((now - this.#replyTokensUs) * this.#replyRate) / US_PER_S);
      this.#replyTokensUs = now;
    }
    if (this.#replyTokens < 1) {
      this.stats.statelessRepliesLimited++;
      return;
    }
    this.#replyTokens -= 1;
    this.#queueReply(to, p);
  }

  #queueReply(to: SocketAddress, p: ControlPacket): void {
    const buf = new Uint8Array(STATELESS_REPLY_MAX_BYTES);
    const n = encodeControl(buf, p);
    this.#stateless.push({ destination: to, data: buf.subarray(0, n) });
    this.stats.statelessRepliesSent++;
  }

  /**
   * Fires expired timers: of the connections whose deadline has come (the top of the timer heap), each
   * once; the others are not looked at. Deadlines that inputs and commands moved since the last
   * {@link pollTimeout} are not recomputed first: those connections are about to be polled for transmit,
   * which moves them again, and the next `pollTimeout` computes each once (and returns `now` if one is due).
   */
  handleTimeout(now: number): void {
    this.stats.timeoutCalls++;
    const heap = this.#timers;
    const due = this.#due;
    for (let top = heap.peek(); top !== undefined && top.heapKey <= now; top = heap.peek()) due.push(heap.pop() as Connection);
    this.stats.timerVisits += due.length;
    for (let i = 0; i < due.length; i++) {
      const c = due[i] as Connection;
      const at = c.nextTimeoutUs(now);
      if (at <= now) {
        c.handleTimeout(now);
        this.#wake(c); // back in the heap at its next deadline, before the next poll
        this.#reap(c);
      } else if (!c.timerDirty && at !== Number.POSITIVE_INFINITY) {
        heap.set(c, at); // an early key: back at the deadline just computed
      }
    }
    while (due.length > 0) due.pop(); // not `length = 0`, which drops the array's storage (the next push allocates)
  }

  /**
   * Our local address changed (the io driver moved to a new port): every connection sends a PING from
   * it, so that each peer sees the new address and validates it at once rather than at the next packet.
   */
  handleRebind(): void {
    for (const c of this.#conns.values()) {
      c.onLocalRebind();
      this.#wake(c);
    }
  }

  #reap(c: Connection): void {
    if (c.state !== S.Dead) return;
    this.#conns.delete(c.localCid);
    this.#timers.delete(c);
    const key = c.clientKey;
    if (key !== null && this.#byClient.get(key) === c) this.#byClient.delete(key);
  }

  /** The connection may have something to send, and its deadline may have moved. */
  #wake(c: Connection): void {
    this.#queueSend(c);
    this.#touch(c);
  }

  /** Puts the connection at the back of the send queue unless it is there already. */
  #queueSend(c: Connection): void {
    if (c.sendQueued) return;
    c.sendQueued = true;
    this.#dirty.push(c);
  }

  /** The connection's deadline may have moved: it is recomputed before the next poll (once, however often touched). */
  #touch(c: Connection): void {
    if (c.timerDirty) return;
    c.timerDirty = true;
    this.#touched.push(c);
  }

  /** Recomputes the deadlines of the touched connections: the heap is exact again (or early, never late). */
  #settleTimers(now: number): void {
    const list = this.#touched;
    if (list.length === 0) return;
    const heap = this.#timers;
    this.stats.timerUpdates += list.length;
    for (let i = 0; i < list.length; i++) {
      const c = list[i] as Connection;
      c.timerDirty = false;
      const at = c.state === S.Dead ? Number.POSITIVE_INFINITY : c.nextTimeoutUs(now);
      if (at === Number.POSITIVE_INFINITY) heap.delete(c);
      else heap.set(c, at);
    }
    while (list.length > 0) list.pop(); // not `length = 0`, which drops the array's storage (the next push allocates)
  }

  // ---------------------------------------------------------------- outputs

  /** The next datagram to send, or null when there is nothing to send now. */
  pollTransmit(now: number): Transmit | null {
    const s = this.#stateless.shift();
    if (s) return s;
    const dirty = this.#dirty;
    for (let c = dirty.shift(); c; c = dirty.shift()) {
      c.sendQueued = false;
      if (this.#conns.get(c.localCid) !== c) continue; // reaped while queued
      const t = c.pollTransmit(now);
      this.#touch(c); // sending moves the ack, loss, pacing and keepalive deadlines
      if (t) {
        this.#queueSend(c); // back of the line: round robin between connections
        return t;
      }
      this.#reap(c);
    }
    return null;
  }

  /** Absolute time (µs) at which `handleTimeout` must be called next, or null if never. */
  pollTimeout(now: number): number | null {
    this.#settleTimers(now);
    const top = this.#timers.peek();
    return top === undefined ? null : Math.max(now, Math.ceil(top.heapKey));
  }

  /** The handle of a connection that has received messages waiting since it was last reported, or null. */
  pollReadable(): number | null {
    return this.#readable.shift() ?? null;
  }

  /**
   * A connection that refused a send with LimitExceeded and has since drained enough to take it (once
   * per refusal, edge-triggered); null when none, and always null unless the endpoint was made with
   * `writableNotices`.
   */
  pollWritable(): number | null {
    return this.#writable.shift() ?? null;
  }

  /** The next event, or null. */
  pollEvent(): EndpointEvent | null {
    return this.#events.shift() ?? null;
  }

  #newCid(): number {
    for (;;) {
      const id = this.#rng.nextU32();
      if (id !== 0 && !this.#conns.has(id)) return id;
    }
  }
}
