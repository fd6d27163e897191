import type { ConfigValues } from '../core/config.js';
import type { MessageVisitor } from '../core/packet-receiver.js';
import type { ConnectionStatus, LaneStatus } from '../core/stats.js';
import { ConnectionState, Result, type SocketAddress } from '../core/types.js';
import type { PeerInfo } from '../crypto/types.js';
import { LANE_CHANNELS, type PeerHost, type PeerPolicy, type PeerSession } from '../peer/index.js';
import { E } from '../peer/types.js';
import { Deque } from '../util/deque.js';
import { relayedStack, closeStack, type RelayedOptions, type RelayedStack } from './relayed.js';
import type { SocketsConnection } from './sockets-connection.js';

// NetworkingSockets' P2P connections (`connectP2P`, `createListenSocketP2P`): sessions of one relayed peer
// host per instance (the engine NetworkingMessages and NetworkManager stand on: one socket, one timer, the
// relays' directory, links by consent, failover), shown through the GNS connection API. A listen socket
// takes every link offer, and each connection that follows is a request the application accepts or closes.

/** Messages a P2P session may queue before its connection exists (while its route is looked up). */
const MAX_OUTBOX_MESSAGES = 1024;
const MAX_OUTBOX_BYTES = 1 << 20;
/** What a relayed connection shows as its remote address: never the peer's (GNS shows none for P2P). */
const NO_ADDRESS: SocketAddress = Object.freeze({ address: '::', port: 0 });

/** The facade's data on a session: its connection, once the application knows one. */
export interface P2PSessionApp {
  conn: SessionConnection | null;
}

/** What the facade does when a P2P connection appears or changes. */
export interface P2PHooks {
  /** A connection from a peer to `conn.virtualPort`, not accepted yet (it is Connecting): false if no listen socket has that port. */
  incoming(conn: SessionConnection): boolean;
  /** The connection's API state changed from `oldState` (its new state is `conn.state()`). */
  changed(conn: SessionConnection, oldState: ConnectionState): void;
  /** The connection's receive queue went from empty to not empty. */
  readable(conn: SessionConnection): void;
  /** The connection's send queue drained after a send it refused with LimitExceeded. */
  writable(conn: SessionConnection): void;
}

/** A message taken off a connection before it closed, kept for the application. */
interface Held {
  readonly lane: number;
  readonly messageNumber: number;
  readonly reliable: boolean;
  readonly data: Uint8Array;
  readonly receivedAtUs: number;
}

/** The relayed side of one NetworkingSockets instance. */
export class SocketsP2P {
  readonly stack: RelayedStack<P2PSessionApp>;
  readonly host: PeerHost<P2PSessionApp>;
  /** A P2P listen socket is open: link offers are taken, connections are requests. */
  listening = false;
  readonly #hooks: P2PHooks;

  constructor(options: RelayedOptions, hooks: P2PHooks) {
    this.#hooks = hooks;
    const policy: PeerPolicy = {
      dial: 'sender',
      afterEnd: 'fail',
      requests: true,
      requirePeerId: true,
      queueReliable: false,
      maxOutboxMessages: MAX_OUTBOX_MESSAGES,
      maxOutboxBytes: MAX_OUTBOX_BYTES,
      idleTimeoutUs: null,
      routeOnConnect: 'inBand',
      findRoutes: true,
    };
    const live: PeerPolicy = Object.defineProperty({ ...policy }, 'acceptOffers', { get: () => this.listening, enumerable: true });
    this.stack = relayedStack<P2PSessionApp>({ ...options, register: true }, live, {
      app: () => ({ conn: null }),
      onServiced: () => this.#serviced(),
      beforeUnlink: (s) => s.app.conn?.hold(this.stack.runtime.scheduler.now()),
    });
    this.host = this.stack.host;
  }

  /** This instance's identity on the relays, `id:N`. */
  get identity(): string {
    return `id:${this.stack.peerId}`;
  }

  /**
   * A connection to the peer with `peerId` (found through the relays' directory), or null: one is open to it
   * already (one connection per pair of identities), or no relay can be reached.
   */
  connect(now: number, peerId: bigint, virtualPort: number, coreConfig: Partial<Record<string, number>>): SessionConnection | null {
    const key = `id:${peerId}`;
    if (peerId === this.stack.peerId || this.host.session(key)) return null;
    const s = this.host.open(now, { key, peerId, direct: null });
    s.coreConfig = coreConfig;
    s.virtualPort = virtualPort;
    const conn = new SessionConnection(this, s, false);
    s.app.conn = conn;
    if (!this.host.want(now, s)) {
      this.host.close(now, s, 0, '');
      return null;
    }
    this.stack.driver.kick();
    return conn;
  }

  /** After each service pass: the peer layer's events become the connections' state changes. */
  #serviced(): void {
    const host = this.host;
    const now = this.stack.runtime.scheduler.now();
    for (let e = host.pollEvent(); e; e = host.pollEvent()) {
      switch (e.type) {
        case 'request': {
          const s = e.session;
          const old = s.app.conn;
          if (old && (old.boundCid === s.cid || old.boundCid === 0)) break; // a repeat, or our own connection's peer
          // The peer started over on a new connection while its old one was up: the old one ends, the new one is a request.
          if (old) this.#endConn(old, ConnectionState.ClosedByPeer, E.Replaced, 'Replaced by a new connection');
          s.app.conn = null;
          if (!this.listening) {
            // Nobody listens: the link offer (or the connection) is refused at once.
            host.close(now, s, E.Generic, 'No P2P listen socket', false, true);
            break;
          }
          if (s.state.kind !== 'awaitingAccept') break;
          const conn = new SessionConnection(this, s, true);
          if (!this.#hooks.incoming(conn)) {
            host.close(now, s, E.Generic, `No P2P listen socket on virtual port ${conn.virtualPort}`, false, true);
            break;
          }
          s.app.conn = conn;
          break;
        }
        case 'connected':
          e.session.app.conn?.connectedNow(this.#hooks);
          break;
        case 'failed': {
          const st = e.session.state;
          if (st.kind === 'failed') this.#end(now, e.session, st.state, st.reason, st.debug);
          break;
        }
        case 'ended':
          this.#end(now, e.session, e.state, e.reason, e.debug);
          break;
        default:
          break; // 'closed' (no idle timeout here) and 'route' (nothing to tell)
      }
    }
    for (let s = host.pollReadable(); s; s = host.pollReadable()) {
      const conn = s.app.conn;
      if (conn && !conn.closedByApp) this.#hooks.readable(conn);
    }
    for (let s = host.pollWritable(); s; s = host.pollWritable()) {
      const conn = s.app.conn;
      if (conn && !conn.closedByApp) this.#hooks.writable(conn);
    }
  }

  /** A session's connection ended: the application's connection shows it (its handle stays until closed); the session goes. */
  #end(now: number, s: PeerSession<P2PSessionApp>, state: number, reason: number, debug: string): void {
    const conn = s.app.conn;
    this.host.close(now, s, 0, '');
    if (conn) this.#endConn(conn, state === ConnectionState.ClosedByPeer ? ConnectionState.ClosedByPeer : ConnectionState.ProblemDetectedLocally, reason, debug);
  }

  #endConn(conn: SessionConnection, state: ConnectionState, reason: number, debug: string): void {
    if (conn.closedByApp || conn.ended) return;
    const old = conn.state();
    conn.ended = { state, reason, debug };
    if (old !== state) this.#hooks.changed(conn, old);
  }

  close(): void {
    closeStack(this.stack);
  }
}

/** One P2P connection: a session of the relayed peer host. App lane L is the connection's lane L + 1 (lane 0 carries the in-band messages). */
export class SessionConnection implements SocketsConnection {
  /** The peer's identity, `id:N`. */
  readonly identity: string;
  /** The session's connection this one is (0 until it has one): a later one from the same peer is a new connection. */
  boundCid: number;
  /** The virtual port: the peer's one it connects to, or (incoming) ours its signed request names; -1 for none. */
  readonly virtualPort: number;
  /** How it ended, once it has: then the session is gone. */
  ended: { readonly state: ConnectionState; readonly reason: number; readonly debug: string } | null = null;
  closedByApp = false;
  readonly #p2p: SocketsP2P;
  readonly #s: PeerSession<P2PSessionApp>;
  readonly #held = new Deque<Held>();
  #lanes = 1;
  #priorities: readonly number[] = [0];
  #weights: readonly number[] = [1];
  /** The core connection the application's lanes were last configured on. */
  #lanesOn = 0;
  #peer: PeerInfo | null = null;
  #reported: ConnectionState = ConnectionState.Connecting;

  constructor(p2p: SocketsP2P, s: PeerSession<P2PSessionApp>, incoming: boolean) {
    this.#p2p = p2p;
    this.#s = s;
    this.identity = s.key;
    this.boundCid = incoming ? s.cid : 0;
    this.virtualPort = incoming ? (p2p.host.endpoint.peerInfo(s.cid)?.virtualPort ?? -1) : s.virtualPort;
  }

  /** The handle of the session's connection, or 0 (none yet, or this connection has ended). */
  #live(): number {
    return this.ended ? 0 : this.#s.cid;
  }

  /** The session's connection is up: the application's lanes go on it, and the state change is reported. */
  connectedNow(hooks: P2PHooks): void {
    if (this.closedByApp || this.ended) return;
    this.boundCid = this.#s.cid;
    this.#lanesOn = 0;
    this.#coreLanes();
    this.#peer = this.#p2p.host.endpoint.peerInfo(this.#s.cid);
    const old = this.#reported;
    if (old === ConnectionState.Connected) return; // a crossing's other connection took over: the same connection to the application
    this.#reported = ConnectionState.Connected;
    hooks.changed(this, old);
  }

  /** Before the session's connection closes: what it received is kept for the application. */
  hold(now: number): void {
    if (this.closedByApp) return;
    const cid = this.#s.cid;
    if (cid === 0) return;
    this.#peer = this.#p2p.host.endpoint.peerInfo(cid) ?? this.#peer;
    for (let guard = 0; guard < 1 << 20 && this.#p2p.host.endpoint.pendingMessages(cid) > 0; guard++) {
      if (this.#p2p.host.receive(now, this.#s, 256, this.#keep) === 0) break;
    }
  }

  readonly #keep = (channel: number, data: Uint8Array, m: { readonly messageNumber: number; readonly reliable: boolean; readonly receivedAtUs: number }): void => {
    // Every lane the peer sends on, as GNS (a receiver need not configure the sender's lanes).
    if (channel >= 0) this.#held.push({ lane: channel, messageNumber: m.messageNumber, reliable: m.reliable, data, receivedAtUs: m.receivedAtUs });
  };

  /** Makes the core connection carry the application's lanes (behind the in-band lane 0); the core's answer. */
  #coreLanes(): Result {
    const cid = this.#s.cid;
    if (cid === 0 || this.#lanesOn === cid) return Result.OK;
    this.#lanesOn = cid;
    const ep = this.#p2p.host.endpoint;
    const n = Math.max(this.#lanes + 1, ep.laneCount(cid));
    const p = [0];
    const w = [1];
    for (let i = 1; i < n; i++) {
      p.push(this.#priorities[i - 1] ?? 0);
      w.push(this.#weights[i - 1] ?? 1);
    }
    const r = ep.configureLanes(cid, p, w);
    this.#s.laneCount = ep.laneCount(cid);
    return r;
  }

  /** The configuration the connection runs with once accepted (its listen socket's values). */
  configure(values: Partial<Record<string, number>>): void {
    this.#s.coreConfig = values;
  }

  accept(now: number): Result {
    if (this.ended || this.#s.state.kind !== 'awaitingAccept') return Result.InvalidState;
    this.#p2p.host.want(now, this.#s);
    return Result.OK;
  }

  close(now: number, reason: number, debug: string, linger: boolean): void {
    if (this.closedByApp) return;
    this.closedByApp = true;
    this.#held.clear();
    if (!this.ended) this.#p2p.host.close(now, this.#s, reason, debug, linger);
  }

  send(now: number, data: Uint8Array, flags: number, lane: number): number {
    if (this.ended || this.closedByApp) return -Result.InvalidState;
    if (lane >= this.#lanes) return -Result.InvalidParam;
    const s = this.#s;
    if (s.connected && s.outbox.length === 0) {
      this.#coreLanes();
      return this.#p2p.host.endpoint.send(now, s.cid, data, flags, lane + 1);
    }
    // Until the connection is up (its route being looked up, its handshake, a crossing settling) the session
    // queues it, behind what it queued before: a connection that loses a crossing takes nothing with it.
    const r = this.#p2p.host.send(now, s, lane, data, flags);
    return r === Result.OK ? 0 : -r;
  }

  flush(now: number): Result {
    if (this.#live() !== 0) this.#p2p.host.flush(now, this.#s);
    return Result.OK;
  }

  configureLanes(priorities: readonly number[], weights: readonly number[]): Result {
    // The connection's lane 0 carries the in-band messages: 254 lanes are left for the application.
    if (priorities.length < this.#lanes || priorities.length > LANE_CHANNELS) return Result.InvalidParam;
    this.#lanes = priorities.length;
    this.#priorities = [...priorities];
    this.#weights = [...weights];
    this.#lanesOn = 0;
    return this.ended ? Result.OK : this.#coreLanes();
  }

  receiveEach(now: number, max: number, visit: MessageVisitor): number {
    let n = 0;
    for (let m = this.#held.peek(); m && n < max; m = this.#held.peek()) {
      this.#held.shift();
      visit(m.lane, m.messageNumber, m.reliable, m.data, m.receivedAtUs);
      n++;
    }
    if (n >= max || this.closedByApp || this.#live() === 0) return n;
    // In-band messages (lane 0) are the peer layer's: they are taken but not counted.
    this.#visitor = visit;
    this.#visited = n;
    for (let guard = 0; guard < 64 && this.#visited < max; guard++) if (this.#p2p.host.receive(now, this.#s, max - this.#visited, this.#pass) === 0) break;
    this.#visitor = null;
    return this.#visited;
  }

  // The visitor receiveEach passes messages on to and how many it got (a bound function, no closure per call).
  #visitor: MessageVisitor | null = null;
  #visited = 0;
  readonly #pass = (channel: number, data: Uint8Array, m: { readonly messageNumber: number; readonly reliable: boolean; readonly receivedAtUs: number }): void => {
    if (channel < 0) return;
    (this.#visitor as MessageVisitor)(channel, m.messageNumber, m.reliable, data, m.receivedAtUs);
    this.#visited++;
  };

  pendingMessages(): number {
    const cid = this.#live();
    return this.#held.length + (cid !== 0 ? this.#p2p.host.endpoint.pendingMessages(cid) : 0);
  }

  laneCount(): number {
    return this.#lanes;
  }

  state(): ConnectionState {
    if (this.ended) return this.ended.state;
    return this.#reported;
  }

  endInfo(): { reason: number; debug: string } | null {
    return this.ended ? { reason: this.ended.reason, debug: this.ended.debug } : null;
  }

  peerInfo(): PeerInfo | null {
    const cid = this.#live();
    return (cid !== 0 ? this.#p2p.host.endpoint.peerInfo(cid) : null) ?? this.#peer;
  }

  remoteAddress(): SocketAddress {
    return NO_ADDRESS;
  }

  status(now: number): ConnectionStatus | null {
    const cid = this.#live();
    return cid !== 0 ? this.#p2p.host.endpoint.status(now, cid) : null;
  }

  laneStatus(lane: number): LaneStatus | null {
    const cid = this.#live();
    return cid !== 0 && lane < this.#lanes ? this.#p2p.host.endpoint.laneStatus(cid, lane + 1) : null;
  }

  connectionConfig(): ConfigValues | null {
    const cid = this.#live();
    return cid !== 0 ? this.#p2p.host.endpoint.connectionConfig(cid) : null;
  }

  reconfigure(values: Partial<Record<string, number>>): Result {
    if (this.ended || this.closedByApp) return Result.InvalidState; // its session may carry a newer connection
    this.#s.coreConfig = { ...this.#s.coreConfig, ...values };
    const cid = this.#s.cid;
    return cid !== 0 ? this.#p2p.host.endpoint.reconfigure(cid, values) : Result.OK;
  }
}
