import { resolveConfig } from '../core/config.js';
import { Endpoint, type EndpointStats } from '../core/endpoint.js';
import { STATE_NAMES } from '../core/state.js';
import { ConnectionState, Result, SendFlags, type SocketAddress } from '../core/types.js';
import type { HandshakeLayer } from '../crypto/types.js';
import type { Clock } from '../io/clock.js';
import { EndpointDriver, MemoryTransport, whenBound, type DatagramTransport } from '../io/driver.js';
import { channels } from '../io/diagnostics.js';
import type { FakeLinkStats } from '../io/fake-network.js';
import type { Runtime } from '../io/runtime.js';
import { platformRuntime } from '../io/platform.js';
import { localPeer, type LocalPeer } from '../peer/identity.js';
import { MAX_VIRTUAL_PORT } from '../crypto/types.js';
import type { SigningKey } from '../crypto/provider.js';
import type { RelayAddress } from '../relay/index.js';
import { peerIdOf } from '../peer/incoming.js';
import { EndpointConnection, type SocketsConnection } from './sockets-connection.js';
import { SocketsP2P, type SessionConnection } from './sockets-p2p.js';
import type { RelayTuning } from './relayed.js';
import { Deque } from '../util/deque.js';
import { NetlaneError } from '../util/errors.js';
import { SeededRng, type Rng } from '../util/rng.js';
import { ipFamily, parseAddress } from '../util/address.js';
import {
  CONFIG_INFO,
  ConfigScope,
  ConfigStore,
  ConfigValue,
  GetConfigValueResult,
  MTU_OVERHEAD,
  checkConfigValue,
  configId,
  configScale,
  storeFrom,
  type ConfigKey,
  type ConfigName,
  type ConfigValueInfo,
  type SeedConfigName,
  type StoredConfig,
} from './config.js';
import { formatDetailedStatus } from './detailed-status.js';
import { isIntegerIn, isSendFlags } from './validate.js';
import {
  DebugOutputType,
  INVALID_HANDLE,
  Limits,
  NetworkingMessage,
  type ConnectionInfo,
  type ConnectionRealTimeStatus,
  type DebugOutputFunction,
  type LaneRealTimeStatus,
  type OutgoingMessage,
  type SendResult,
  type StatusChangedCallback,
  type StatusChangedInfo,
} from './types.js';

/** What {@link NetworkingSockets.getSocketStats} reports. */
export interface SocketStats extends EndpointStats {
  readonly fakeSend: FakeLinkStats;
  readonly fakeRecv: FakeLinkStats;
  /** `send` calls the operating system refused. */
  readonly sendErrors: number;
  /** Unauthenticated datagrams (handshakes, packets for no connection) dropped unprocessed under load (docs/RUNTIME.md "Under a flood"). */
  readonly datagramsShed: number;
}

/** Options of a {@link NetworkingSockets} instance. */
export interface NetworkingSocketsOptions {
  /** The handshake layer: who we are and whom we trust. Default: a `SecureHandshake` with a fresh Ed25519 key on the runtime's provider (sodium-native's ChaCha20-Poly1305 and node:crypto, or node:crypto alone). */
  readonly handshake?: HandshakeLayer;
  /** Seed of the fake network conditions' randomness. Default: random; read it back from `fakeSeed` to replay. */
  readonly fakeSeed?: number;
  /** Keep the process alive while sockets are open. Default false: like a timer with `unref`, an idle library never holds a process. */
  readonly keepProcessAlive?: boolean;
  /** Time source in µs. Default: the process's monotonic clock. */
  readonly clock?: Clock;
  /** Sockets, timers and randomness. Default: real UDP (`udpRuntime`); `SimNetwork.runtime(ip)` runs the facade in virtual time. */
  readonly runtime?: Runtime;
  /**
   * Called when a connection's receive queue goes from empty to not empty (edge-triggered, right after
   * the datagram that filled it is processed). A netlane extension for event-driven programs that
   * do not poll every frame: receive from that connection until it returns fewer messages than asked, or
   * the next message will not call again. Messages can arrive before the status callback that reports
   * the connection Connected (the peer's first message completes the connection): then it is called
   * once more right after that callback. The handle is the connection's, even when it is in a poll group.
   * What it sends in answer leaves at once, in the same event-loop callback.
   */
  readonly onReadable?: (connection: number) => void;
  /**
   * Called once after `sendMessageToConnection` (or `sendMessages`) refused a message on a connection
   * with `LimitExceeded`, when the connection's send queue has drained so far that the refused message
   * would be taken now (and at the latest when half of `SendBufferSize` is free). A netlane extension:
   * a bulk sender sends until LimitExceeded and resumes here, instead of retrying on every turn.
   */
  readonly onWritable?: (connection: number) => void;
  /**
   * Relays for P2P connections (`connectP2P`, `createListenSocketP2P`), each `host:port#key` as `netlane relay`
   * prints it: the instance registers its identity (`getIdentity`) in their directory and reaches peers by
   * theirs, end-to-end encrypted, without either side learning the other's address (docs/RELAY.md).
   */
  readonly relays?: readonly (string | RelayAddress)[];
  /** The operator's relay ticket (bytes or base64url); none for relays in `--open` mode. */
  readonly ticket?: Uint8Array | string;
  /** This instance's Ed25519 key (its identity, `id:N`). Default: a fresh one. With `handshake` given, P2P connections use this key (or a fresh one). */
  readonly key?: SigningKey;
  /** Relay client tuning and the local address of the P2P socket. */
  readonly relayOptions?: RelayTuning & { readonly bindAddress?: string };
}

/** Configuration given when creating a listen socket or a connection: values by name (GNS `SteamNetworkingConfigValue_t[]`). */
export type ConfigOptions = Partial<Record<ConfigName | SeedConfigName, StoredConfig>>;

/** Process-wide values (`k_ESteamNetworkingConfig_Global`). */
const GLOBAL_CONFIG = new ConfigStore(null);

/** What the facade asks of a site's io driver (a direct endpoint's or the relayed peer host's). */
type SiteDriver = Pick<EndpointDriver, 'kick' | 'flushNow' | 'service' | 'close' | 'transport' | 'fakeSend' | 'fakeRecv' | 'admission' | 'setFakeConditions'>;

/** One endpoint on one transport, with the connections the API knows on it (the P2P site: the relayed peer host's). */
interface Site {
  readonly driver: SiteDriver;
  readonly endpoint: Endpoint;
  readonly byCid: Map<number, ConnRecord>;
  readonly listen: ListenRecord | null;
  /** Where the site's fake network conditions come from; null for in-memory pairs (no fake conditions, as GNS). */
  fakeFrom: ConfigStore | null;
}

interface ListenRecord {
  readonly handle: number;
  /** A P2P listen socket's virtual port; -1 for an IP listen socket. */
  readonly virtualPort: number;
  readonly site: Site;
  readonly config: ConfigStore;
  readonly conns: Set<ConnRecord>;
  /** Accepted connections with messages waiting (receiveMessagesOnListenSocket). */
  readonly ready: Set<ConnRecord>;
  closing: boolean;
}

interface ConnRecord {
  readonly handle: number;
  readonly site: Site;
  /** The endpoint's handle (0 for a P2P connection, whose connection is a relayed session's). */
  readonly cid: number;
  readonly conn: SocketsConnection;
  /** The same connection when it is a P2P one (a session of the relayed peer host), else null. */
  readonly p2p: SessionConnection | null;
  readonly listen: ListenRecord | null;
  readonly config: ConfigStore;
  /** The connection has its own socket (so fake conditions can be set on it alone). */
  readonly ownsSite: boolean;
  /** In-memory socket pair (`LoopbackBuffers`). */
  readonly memory: boolean;
  readonly remote: SocketAddress;
  userData: number;
  name: string;
  group: PollGroupRecord | null;
}

interface PollGroupRecord {
  readonly handle: number;
  readonly members: Set<ConnRecord>;
  readonly ready: Set<ConnRecord>;
}

interface QueuedCallback {
  readonly fn: StatusChangedCallback | null;
  readonly info: StatusChangedInfo;
}

/** Most status callbacks queued before the oldest are dropped (GNS asserts at 100). */
const MAX_QUEUED_CALLBACKS = 4096;
const LOOPBACK_BUFFERS_FLAG = 4;
/** What a send with a bad handle, flags, lane or size gets. */
const INVALID_SEND: SendResult = Object.freeze({ result: Result.InvalidParam, messageNumber: 0 });
const NO_CONNECTION: SendResult = Object.freeze({ result: Result.NoConnection, messageNumber: 0 });

/** The quick status of a P2P connection before its connection exists (or after it went): nothing measured yet. */
const NO_STATUS: ConnectionRealTimeStatus = Object.freeze({
  state: ConnectionState.Connecting,
  ping: -1,
  connectionQualityLocal: -1,
  connectionQualityRemote: -1,
  outPacketsPerSecond: 0,
  outBytesPerSecond: 0,
  inPacketsPerSecond: 0,
  inBytesPerSecond: 0,
  sendRateBytesPerSecond: 0,
  pendingUnreliable: 0,
  pendingReliable: 0,
  sentUnackedReliable: 0,
  queueTimeUs: 0,
});

/** The array #take fills when it fills none (never written). */
const NO_MESSAGES: NetworkingMessage[] = [];

/**
 * The GameNetworkingSockets API (as ValveSockets-CSharp wraps it), over netlane's core and real UDP.
 * Listen sockets, connections and poll groups are numeric handles; 0 is invalid. Status changes are
 * queued and delivered by {@link runCallbacks} or {@link dispatchCallback}, on your schedule.
 * Each listen socket and each outgoing connection has its own UDP socket, as in GNS; the P2P connections
 * (`connectP2P`, `createListenSocketP2P`, with `relays`) share one socket, through the relays.
 */
export class NetworkingSockets {
  /** The seed of the fake network conditions (print it to replay a run). */
  readonly fakeSeed: number;
  readonly #handshake: HandshakeLayer;
  readonly #clock: Clock;
  readonly #keepAlive: boolean;
  readonly #runtime: Runtime;
  readonly #cidRng: Rng;
  readonly #fakeRng: SeededRng;
  readonly #iface = new ConfigStore(GLOBAL_CONFIG);
  readonly #conns = new Map<number, ConnRecord>();
  readonly #listens = new Map<number, ListenRecord>();
  readonly #groups = new Map<number, PollGroupRecord>();
  readonly #sites = new Set<Site>();
  readonly #callbacks = new Deque<QueuedCallback>();
  #nextHandle = 1;
  #nextPipePort = 1;
  #debugLevel: DebugOutputType = DebugOutputType.None;
  #debugFn: DebugOutputFunction | null = null;
  /** The crypto provider's name, for the debug output. */
  readonly #cryptoName: string;
  #closed = false;
  readonly #onReadable: ((connection: number) => void) | undefined;
  readonly #onWritable: ((connection: number) => void) | undefined;
  readonly #options: NetworkingSocketsOptions;
  /** Who this instance is (its key and identity), unless a handshake layer was given. */
  readonly #me: LocalPeer | null;
  /** The relayed side (P2P connections), made at the first P2P call. */
  #p2p: SocketsP2P | null = null;
  #p2pSite: Site | null = null;
  /** The P2P listen sockets by virtual port. */
  readonly #p2pListens = new Map<number, ListenRecord>();
  readonly #byConn = new Map<SessionConnection, ConnRecord>();

  constructor(options: NetworkingSocketsOptions = {}) {
    this.#options = options;
    this.#onReadable = options.onReadable;
    this.#onWritable = options.onWritable;
    this.#runtime = options.runtime ?? platformRuntime(options.clock);
    this.#clock = this.#runtime.scheduler.now;
    if (options.handshake) {
      this.#handshake = options.handshake;
      this.#cryptoName = (options.handshake as { readonly provider?: { readonly name?: string } }).provider?.name ?? 'a custom handshake layer';
      this.#me = null;
    } else {
      const provider = this.#runtime.provider();
      this.#me = localPeer(provider, options.key, this.#runtime.unixSeconds);
      this.#handshake = this.#me.handshake;
      this.#cryptoName = provider.name;
    }
    this.#cidRng = this.#runtime.rng();
    this.#keepAlive = options.keepProcessAlive ?? false;
    this.fakeSeed = (options.fakeSeed ?? this.#runtime.randomSeed()) >>> 0;
    this.#fakeRng = new SeededRng(this.fakeSeed);
  }

  /** Local monotonic time in microseconds (`SteamNetworkingUtils()->GetLocalTimestamp()`, the seed's `Library.Time`). */
  time(): number {
    return this.#clock();
  }

  // ---------------------------------------------------------------- sockets and connections

  /**
   * Opens a UDP socket that accepts connections (`CreateListenSocketIP`). `::` listens on IPv4 and
   * IPv6. Returns the listen socket handle, or 0 if the socket cannot be opened, an option is bad or
   * this instance is closed (the reason goes to the debug output). `Netlane_MaxConnections`,
   * `Netlane_MaxConnectionsPerAddress` and `Netlane_MaxPendingPerAddress` limit what it accepts.
   */
  createListenSocket(address: SocketAddress | string, options: ConfigOptions = {}): number {
    if (this.#refuseClosed() || this.#refuseIp()) return INVALID_HANDLE;
    const local = this.#address(address);
    const store = local && this.#storeWith(this.#iface, options);
    if (!local || !store) return INVALID_HANDLE;
    const endpoint = new Endpoint({ rng: this.#cidRng, config: store.coreValues(), listen: true, handshake: this.#handshake, writableNotices: this.#onWritable !== undefined, ...store.limits() });
    let sock: DatagramTransport;
    try {
      sock = this.#runtime.openUdp({ address: local.address, port: local.port, keepProcessAlive: this.#keepAlive });
    } catch (e) {
      this.#debug(DebugOutputType.Error, (e as Error).message);
      return INVALID_HANDLE;
    }
    const handle = this.#nextHandle++;
    // Under a runtime that binds after the call (Bun), a bind that fails later closes the listen socket.
    if (sock.binding) {
      whenBound(sock).then(
        (a) => this.#debug(DebugOutputType.Msg, `listen socket ${handle} bound on [${a.address}]:${a.port}`),
        (e: unknown) => {
          this.#debug(DebugOutputType.Error, `listen socket ${handle}: ${(e as Error).message}`);
          this.closeListenSocket(handle);
        },
      );
    }
    const listen: { -readonly [K in keyof ListenRecord]: ListenRecord[K] } = { handle, virtualPort: -1, site: null as unknown as Site, config: store, conns: new Set(), ready: new Set(), closing: false };
    listen.site = this.#newSite(endpoint, sock, listen, store);
    this.#listens.set(handle, listen);
    this.#debug(DebugOutputType.Msg, `listen socket ${handle} on [${sock.local.address}]:${sock.local.port}`);
    return handle;
  }

  /**
   * Connects to a server (`ConnectByIPAddress`). Returns the connection handle at once, in state
   * Connecting; a status callback reports Connected or the failure. Returns 0 for a bad address or
   * option, or once this instance is closed.
   */
  connect(address: SocketAddress | string, options: ConfigOptions = {}): number {
    if (this.#refuseClosed() || this.#refuseIp()) return INVALID_HANDLE;
    const remote = this.#address(address);
    const store = remote && this.#storeWith(this.#iface, options);
    if (!remote || !store) return INVALID_HANDLE;
    const endpoint = new Endpoint({ rng: this.#cidRng, config: store.coreValues(), handshake: this.#handshake, writableNotices: this.#onWritable !== undefined });
    let sock: DatagramTransport;
    try {
      sock = this.#runtime.openUdp({ address: ipFamily(remote.address) === 6 ? '::' : '0.0.0.0', port: 0, connectTo: remote, keepProcessAlive: this.#keepAlive });
    } catch (e) {
      this.#debug(DebugOutputType.Error, (e as Error).message);
      return INVALID_HANDLE;
    }
    const site = this.#newSite(endpoint, sock, null, store);
    const cid = endpoint.connect(this.#clock(), remote);
    const rec = this.#newConn(site, cid, null, store, true, false, remote);
    site.driver.kick();
    return rec.handle;
  }

  /**
   * Listens for P2P connections through the relays (`CreateListenSocketP2P`): this instance's identity
   * (`getIdentity`) is registered in the relays' directory, every peer's link offer is taken, and each
   * connection that follows is announced Connecting for `acceptConnection` (or `closeConnection`), as on an
   * IP listen socket. Needs `relays`. The virtual port (0..2^31-1) names the listen socket: a client's signed
   * request names the one it connects to, and one that names no open port is refused (5001). Returns 0 with no
   * relays, a port that has a P2P listen socket already, a bad port or option, or once this instance is closed.
   */
  createListenSocketP2P(virtualPort: number, options: ConfigOptions = {}): number {
    if (this.#refuseClosed()) return INVALID_HANDLE;
    if (!isIntegerIn(virtualPort, 0, MAX_VIRTUAL_PORT)) {
      this.#debug(DebugOutputType.Error, `bad virtual port ${String(virtualPort)}`);
      return INVALID_HANDLE;
    }
    const taken = this.#p2pListens.get(virtualPort);
    if (taken) {
      this.#debug(DebugOutputType.Error, `P2P listen socket ${taken.handle} has virtual port ${virtualPort} already`);
      return INVALID_HANDLE;
    }
    const store = this.#storeWith(this.#iface, options);
    const site = store && this.#p2pSiteOrNull();
    if (!store || !site) return INVALID_HANDLE;
    const handle = this.#nextHandle++;
    const listen: ListenRecord = { handle, virtualPort, site, config: store, conns: new Set(), ready: new Set(), closing: false };
    this.#listens.set(handle, listen);
    this.#p2pListens.set(virtualPort, listen);
    (this.#p2p as SocketsP2P).listening = true;
    this.#p2pFake();
    this.#debug(DebugOutputType.Msg, `P2P listen socket ${handle} (virtual port ${virtualPort}) as ${(this.#p2p as SocketsP2P).identity}`);
    return handle;
  }

  /**
   * Connects to a peer by identity through the relays (`ConnectP2P`): `id:N`, as its `getIdentity` says. Its
   * route comes from the relays' directory; the connection is end-to-end encrypted and authenticated (the peer
   * must hold that identity's key, else it ends with 4003), and neither side learns the other's address
   * (`addressRemote` is `[::]:0`). Returns the handle at once, Connecting; a status callback reports Connected
   * (the peer accepted) or the failure. Needs `relays`. Returns 0 for a bad identity or option, with no relays,
   * when a P2P connection to that identity is open already (one per pair), or once this instance is closed.
   */
  connectP2P(identity: string, virtualPort: number, options: ConfigOptions = {}): number {
    if (this.#refuseClosed()) return INVALID_HANDLE;
    const peerId = typeof identity === 'string' ? peerIdOf(identity) : null;
    if (peerId === null || !isIntegerIn(virtualPort, 0, MAX_VIRTUAL_PORT)) {
      this.#debug(DebugOutputType.Error, `bad P2P identity ${String(identity)} or virtual port ${String(virtualPort)}: give id:N and an integer port`);
      return INVALID_HANDLE;
    }
    const store = this.#storeWith(this.#iface, options);
    const site = store && this.#p2pSiteOrNull();
    if (!store || !site) return INVALID_HANDLE;
    if (store.hasOwnFakeConditions()) this.#debug(DebugOutputType.Warning, 'P2P connections share one socket: set fake network conditions on the P2P listen socket or the SocketsInterface scope, not on a connection');
    const conn = (this.#p2p as SocketsP2P).connect(this.#clock(), peerId, virtualPort, store.coreValues());
    if (!conn) {
      this.#debug(DebugOutputType.Error, `no P2P connection to ${identity}: it is this instance, one is open to it already, or no relay can be reached`);
      return INVALID_HANDLE;
    }
    return this.#newConn(site, 0, null, store, false, false, conn.remoteAddress(), conn).handle;
  }

  /** The local address of the one socket P2P connections share (a netlane extension, for firewall rules and audits), or null before the first P2P call. */
  getP2PSocketAddress(): SocketAddress | null {
    return this.#p2pSite ? { ...this.#p2pSite.driver.transport.local } : null;
  }

  /** This instance's identity (`GetIdentity`): `id:N`, what `connectP2P` takes; null with a custom handshake layer and no relays. */
  getIdentity(): string | null {
    if (this.#p2p) return this.#p2p.identity;
    return this.#me ? `id:${this.#me.peerId}` : null;
  }

  /** The relayed side, made at the first P2P call; null (with debug output) with no relays or a socket that cannot open. */
  #p2pSiteOrNull(): Site | null {
    if (this.#p2pSite) return this.#p2pSite;
    const o = this.#options;
    if (!o.relays || o.relays.length === 0) {
      this.#debug(DebugOutputType.Error, 'P2P connections need relays (the relays option)');
      return null;
    }
    const { bindAddress, ...tuning } = o.relayOptions ?? {};
    let p2p: SocketsP2P;
    try {
      p2p = new SocketsP2P(
        {
          relays: o.relays,
          runtime: this.#runtime,
          relayTuning: tuning,
          keepProcessAlive: this.#keepAlive,
          connectionConfig: {},
          writableNotices: this.#onWritable !== undefined,
          ...(bindAddress !== undefined ? { bindAddress } : {}),
          ...(o.ticket !== undefined ? { ticket: o.ticket } : {}),
          ...(this.#me ? { key: this.#me.key } : o.key ? { key: o.key } : {}),
        },
        {
          incoming: (conn) => {
            const listen = this.#p2pListens.get(conn.virtualPort);
            if (!listen) return false;
            const store = new ConfigStore(listen.config);
            conn.configure(store.coreValues());
            this.#p2pChanged(this.#newConn(listen.site, 0, listen, store, false, false, conn.remoteAddress(), conn), ConnectionState.None);
            return true;
          },
          changed: (conn, old) => {
            const rec = this.#byConn.get(conn);
            if (rec) this.#p2pChanged(rec, old);
          },
          readable: (conn) => {
            const rec = this.#byConn.get(conn);
            if (rec) this.#readable(rec);
          },
          writable: (conn) => {
            const rec = this.#byConn.get(conn);
            if (rec) this.#onWritable?.(rec.handle);
          },
        },
      );
    } catch (e) {
      this.#debug(DebugOutputType.Error, (e as Error).message);
      return null;
    }
    this.#p2p = p2p;
    const site: Site = { driver: p2p.stack.driver, endpoint: p2p.host.endpoint, byCid: new Map(), listen: null, fakeFrom: this.#iface };
    this.#p2pSite = site;
    this.#sites.add(site);
    this.#refreshFake(site);
    return site;
  }

  /** P2P connections share one socket: its fake conditions are those of the oldest P2P listen socket still open (the map keeps them in the order they were made), else the instance's. */
  #p2pFake(): void {
    const site = this.#p2pSite;
    if (!site) return;
    site.fakeFrom = this.#p2pListens.values().next().value?.config ?? this.#iface;
    this.#refreshFake(site);
  }

  /** A P2P connection's state changed: a queued status callback, as a direct connection's. */
  #p2pChanged(rec: ConnRecord, oldState: ConnectionState): void {
    const st = rec.conn.state();
    const end = rec.conn.endInfo();
    this.#queueStatus(rec, oldState, st, end?.reason ?? 0, end?.debug ?? '');
  }

  /** Accepts an incoming connection (state Connecting, announced by a status callback). */
  acceptConnection(conn: number): Result {
    const rec = this.#conns.get(conn);
    if (!rec) return Result.InvalidParam;
    if (!rec.listen) return Result.InvalidState;
    const r = rec.conn.accept(this.#clock());
    rec.site.driver.kick();
    return r;
  }

  /**
   * Closes a connection and frees its handle (`CloseConnection`). `reason` 1000-2999 and `debug`
   * (at most 128 bytes) reach the peer. With `linger`, queued reliable data is still delivered first.
   * Unread received messages are discarded. Returns false for an unknown or already closed handle.
   */
  closeConnection(conn: number, reason = 0, debug = '', linger = false): boolean {
    const rec = this.#conns.get(conn);
    if (!rec) return false;
    rec.conn.close(this.#clock(), reason, debug, linger);
    this.#forget(rec);
    rec.site.driver.kick();
    return true;
  }

  /**
   * Closes a listen socket and every connection it accepted; their peers see `remoteReason` (reason
   * 1000). The UDP socket stays open until those connections have finished closing.
   */
  closeListenSocket(listenSocket: number, remoteReason = 'Listen socket closed'): boolean {
    const listen = this.#listens.get(listenSocket);
    if (!listen) return false;
    const now = this.#clock();
    for (const rec of listen.conns) {
      rec.conn.close(now, 1000, remoteReason, false);
      this.#forget(rec);
    }
    listen.closing = true;
    if (listen.virtualPort >= 0) {
      this.#p2pListens.delete(listen.virtualPort);
      (this.#p2p as SocketsP2P).listening = this.#p2pListens.size > 0;
      this.#p2pFake();
    } else listen.site.endpoint.listening = false;
    this.#listens.delete(listenSocket);
    listen.site.driver.kick();
    return true;
  }

  /**
   * The local address of a listen socket (with the port the system chose for port 0), or null. Under a
   * runtime that binds after `createListenSocket` returns (Bun), a socket asked for port 0 has no address
   * until it is bound: null until then ({@link listenSocketBound} waits for it).
   */
  getListenSocketAddress(listenSocket: number): SocketAddress | null {
    const l = this.#listens.get(listenSocket);
    if (!l || l.virtualPort >= 0) return null; // a P2P listen socket has no address of its own
    const t = l.site.driver.transport;
    return t.binding && t.local.port === 0 ? null : { ...t.local };
  }

  /**
   * Resolves with a listen socket's bound address: at once under Node and Deno, whose bind completes inside
   * `createListenSocket`; after the bind under Bun. Rejects with `NetlaneError` ERR_NETLANE_INVALID_ARGUMENT for
   * an unknown handle, ERR_NETLANE_SOCKET if the bind failed (the listen socket is then closed). A netlane
   * extension: GNS binds synchronously.
   */
  listenSocketBound(listenSocket: number): Promise<SocketAddress> {
    const l = this.#listens.get(listenSocket);
    if (!l) return Promise.reject(new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `no listen socket ${listenSocket}`));
    return whenBound(l.site.driver.transport);
  }

  /**
   * Two connections talking to each other (`CreateSocketPair`), connected at once with no callbacks.
   * Without `useNetworkLoopback` they exchange packets in memory, unencrypted, with no fake conditions.
   * With it they use two UDP sockets on 127.0.0.1, encrypted, with fake conditions like any connection.
   * Returns the two handles, or null if the sockets cannot be opened or this instance is closed.
   */
  createSocketPair(useNetworkLoopback = false, options: ConfigOptions = {}): [number, number] | null {
    if (this.#refuseClosed() || (useNetworkLoopback && this.#refuseIp())) return null;
    const storeA = this.#storeWith(this.#iface, options);
    const storeB = this.#storeWith(this.#iface, options);
    if (!storeA || !storeB) return null;
    const extra = useNetworkLoopback ? {} : { Unencrypted: 3 };
    const a = new Endpoint({ rng: this.#cidRng, config: { ...storeA.coreValues(), ...extra }, handshake: this.#handshake, writableNotices: this.#onWritable !== undefined });
    const b = new Endpoint({ rng: this.#cidRng, config: { ...storeB.coreValues(), ...extra }, listen: true, handshake: this.#handshake, writableNotices: this.#onWritable !== undefined });
    let ta: DatagramTransport;
    let tb: DatagramTransport;
    if (useNetworkLoopback) {
      try {
        const sa = this.#runtime.openUdp({ address: '127.0.0.1', port: 0, keepProcessAlive: this.#keepAlive });
        try {
          tb = this.#runtime.openUdp({ address: '127.0.0.1', port: 0, keepProcessAlive: this.#keepAlive });
        } catch (e) {
          sa.close();
          throw e;
        }
        ta = sa;
        if (ta.binding || tb.binding) {
          ta.close();
          tb.close();
          throw new NetlaneError('ERR_NETLANE_SOCKET', 'createSocketPair(true) needs sockets bound at once; this runtime (Bun) binds after the call');
        }
      } catch (e) {
        this.#debug(DebugOutputType.Error, (e as Error).message);
        return null;
      }
    } else {
      const port = this.#nextPipePort;
      this.#nextPipePort = (port + 2) % 65534;
      [ta, tb] = MemoryTransport.pair({ address: '127.0.0.1', port: port + 1 }, { address: '127.0.0.1', port: port + 2 });
    }
    const cids = handshakeInMemory(this.#clock(), a, ta.local, b, tb.local);
    b.listening = false;
    if (!cids) {
      ta.close();
      tb.close();
      this.#debug(DebugOutputType.Bug, 'socket pair handshake did not complete');
      return null;
    }
    const siteA = this.#newSite(a, ta, null, useNetworkLoopback ? storeA : null);
    const siteB = this.#newSite(b, tb, null, useNetworkLoopback ? storeB : null);
    const ra = this.#newConn(siteA, cids[0], null, storeA, true, !useNetworkLoopback, tb.local);
    const rb = this.#newConn(siteB, cids[1], null, storeB, true, !useNetworkLoopback, ta.local);
    return [ra.handle, rb.handle];
  }

  // ---------------------------------------------------------------- sending

  /**
   * Queues a message (`SendMessageToConnection`). `flags` are `SendFlags` (default Unreliable); `lane`
   * must have been configured. Returns OK with the message number; InvalidParam for an unknown handle,
   * flags that are not an integer combination of the send flags, a lane that is not an integer or not
   * configured, or a message over the limit; NoConnection once the connection has ended;
   * LimitExceeded when the send buffer is full; Ignored for a NoDelay message that cannot go out now.
   */
  sendMessageToConnection(conn: number, data: Uint8Array, flags: number = SendFlags.Unreliable, lane = 0): SendResult {
    const rec = this.#conns.get(conn);
    if (!rec) return INVALID_SEND;
    if (!(data instanceof Uint8Array)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'data must be a Uint8Array or Buffer');
    if (!isSendFlags(flags) || !isIntegerIn(lane, 0, Limits.maxLanes - 1)) return INVALID_SEND;
    const c = rec.conn;
    const r = c.send(this.#clock(), data, flags, lane);
    if (r < 0) {
      // The core says InvalidState for any connection that cannot send; GNS says NoConnection once it has ended.
      const st = c.state();
      if (r === -Result.InvalidState && (st === ConnectionState.ClosedByPeer || st === ConnectionState.ProblemDetectedLocally)) return NO_CONNECTION;
      return { result: -r, messageNumber: 0 };
    }
    rec.site.driver.kick();
    return { result: Result.OK, messageNumber: r };
  }

  /**
   * Sends a batch (`SendMessages`). Returns, per message, its message number (> 0) or a negated
   * `Result`. After a failure, later messages to the same connection are not sent and get 0 (as GNS).
   */
  sendMessages(messages: readonly OutgoingMessage[]): number[] {
    const out: number[] = [];
    let failed: Set<number> | null = null;
    for (const m of messages) {
      if (failed?.has(m.connection)) {
        out.push(0);
        continue;
      }
      // Only a missing flags or lane takes the default: null is a bad value, as any other.
      const r = this.sendMessageToConnection(m.connection, m.data, m.flags === undefined ? SendFlags.Unreliable : m.flags, m.lane === undefined ? 0 : m.lane);
      if (r.result === Result.OK) out.push(r.messageNumber);
      else {
        out.push(-r.result);
        (failed ??= new Set()).add(m.connection);
      }
    }
    return out;
  }

  /** Sends queued messages now instead of waiting for the Nagle timer (`FlushMessagesOnConnection`). */
  flushMessagesOnConnection(conn: number): Result {
    const rec = this.#conns.get(conn);
    if (!rec) return Result.InvalidParam;
    const r = rec.conn.flush(this.#clock());
    rec.site.driver.flushNow();
    return r;
  }

  /**
   * Sets the number of lanes and their priorities (lower first) and weights (shares within a
   * priority) (`ConfigureConnectionLanes`). Lanes may be added, never removed. Defaults: priority 0, weight 1.
   */
  configureConnectionLanes(conn: number, numLanes: number, priorities?: readonly number[], weights?: readonly number[]): Result {
    const rec = this.#conns.get(conn);
    if (!rec) return Result.InvalidParam;
    if (!isIntegerIn(numLanes, 1, Limits.maxLanes)) return Result.InvalidParam;
    if ((priorities && priorities.length < numLanes) || (weights && weights.length < numLanes)) return Result.InvalidParam;
    const p = Array.from({ length: numLanes }, (_, i) => priorities?.[i] ?? 0);
    const w = Array.from({ length: numLanes }, (_, i) => weights?.[i] ?? 1);
    return rec.conn.configureLanes(p, w);
  }

  // ---------------------------------------------------------------- receiving

  /** Up to `max` received messages of one connection, in order per lane; null for an unknown handle. */
  receiveMessagesOnConnection(conn: number, max = 32): NetworkingMessage[] | null {
    const rec = this.#conns.get(conn);
    if (!rec) return null;
    // An array of the messages' count (a grown one takes room for 17 to hold one), trimmed if fewer come.
    const out = new Array<NetworkingMessage>(Math.max(0, Math.min(max, rec.conn.pendingMessages())));
    const n = this.#take(rec, out, 0, max);
    if (n < out.length) out.length = n;
    return out;
  }

  /** Up to `max` messages from any connection accepted on a listen socket; null for an unknown handle. */
  receiveMessagesOnListenSocket(listenSocket: number, max = 32): NetworkingMessage[] | null {
    const l = this.#listens.get(listenSocket);
    return l ? this.#takeReady(l.ready, max) : null;
  }

  /** Creates a poll group: one place to receive from many connections. */
  createPollGroup(): number {
    const handle = this.#nextHandle++;
    this.#groups.set(handle, { handle, members: new Set(), ready: new Set() });
    return handle;
  }

  /** Destroys a poll group; its connections stay open, in no group. */
  destroyPollGroup(group: number): boolean {
    const g = this.#groups.get(group);
    if (!g) return false;
    for (const rec of g.members) rec.group = null;
    this.#groups.delete(group);
    return true;
  }

  /** Puts a connection in a poll group (0 takes it out of its group). Messages already waiting move with it. */
  setConnectionPollGroup(conn: number, group: number): boolean {
    const rec = this.#conns.get(conn);
    const g = group === INVALID_HANDLE ? null : this.#groups.get(group);
    if (!rec || g === undefined) return false;
    if (rec.group) {
      rec.group.members.delete(rec);
      rec.group.ready.delete(rec);
    }
    rec.group = g;
    if (g) {
      g.members.add(rec);
      if (rec.conn.pendingMessages() > 0) g.ready.add(rec);
    }
    return true;
  }

  /**
   * Up to `max` messages from the connections of a poll group; null for an unknown handle. Order is
   * kept per connection; connections take turns.
   */
  receiveMessagesOnPollGroup(group: number, max = 32): NetworkingMessage[] | null {
    const g = this.#groups.get(group);
    return g ? this.#takeReady(g.ready, max) : null;
  }

  #takeReady(ready: Set<ConnRecord>, max: number): NetworkingMessage[] {
    const out: NetworkingMessage[] = [];
    for (const rec of ready) {
      if (out.length >= max) break;
      const want = max - out.length;
      const got = this.#take(rec, out, out.length, want);
      ready.delete(rec);
      // Still more: go to the back of the line so that one busy connection cannot starve the others.
      if (got === want && rec.conn.pendingMessages() > 0) ready.add(rec);
    }
    return out;
  }

  /** Takes up to `max` messages of a connection into `out[at...]`; returns how many. */
  #take(rec: ConnRecord, out: NetworkingMessage[], at: number, max: number): number {
    const c = rec.conn;
    this.#into = out;
    this.#intoAt = at;
    this.#intoRec = rec;
    this.#intoIdentity = c.peerInfo()?.identity ?? '';
    const n = c.receiveEach(this.#clock(), max, this.#wrap);
    this.#into = NO_MESSAGES;
    this.#intoRec = null;
    return n;
  }

  // The array #take fills, where, and for which connection: #wrap reads them (a bound visitor, so that a
  // message costs its NetworkingMessage and nothing else).
  #into: NetworkingMessage[] = NO_MESSAGES;
  #intoAt = 0;
  #intoRec: ConnRecord | null = null;
  #intoIdentity = '';

  readonly #wrap = (lane: number, messageNumber: number, reliable: boolean, data: Uint8Array, receivedAtUs: number): void => {
    const rec = this.#intoRec as ConnRecord;
    this.#into[this.#intoAt++] = new NetworkingMessage(data, rec.handle, this.#intoIdentity, rec.userData, receivedAtUs, messageNumber, lane, reliable ? SendFlags.Reliable : SendFlags.Unreliable);
  };

  // ---------------------------------------------------------------- information

  /** Who a connection is with, its state and why it ended (`GetConnectionInfo`); null for an unknown handle. */
  getConnectionInfo(conn: number): ConnectionInfo | null {
    const rec = this.#conns.get(conn);
    return rec ? this.#info(rec) : null;
  }

  /** Ping, quality, rates and queues (`GetQuickConnectionStatus`); null for an unknown handle. */
  getQuickConnectionStatus(conn: number): ConnectionRealTimeStatus | null {
    const rec = this.#conns.get(conn);
    if (!rec) return null;
    const s = rec.conn.status(this.#clock());
    // A P2P connection with no connection of the core yet (its route being looked up) or none any more: what is known.
    if (!s) return rec.p2p ? { ...NO_STATUS, state: rec.conn.state() } : null;
    return {
      state: rec.conn.state(),
      ping: s.ping,
      connectionQualityLocal: s.connectionQualityLocal,
      connectionQualityRemote: s.connectionQualityRemote,
      outPacketsPerSecond: s.outPacketsPerSec,
      outBytesPerSecond: s.outBytesPerSec,
      inPacketsPerSecond: s.inPacketsPerSec,
      inBytesPerSecond: s.inBytesPerSec,
      sendRateBytesPerSecond: s.sendRateBytesPerSec,
      pendingUnreliable: s.pendingUnreliable,
      pendingReliable: s.pendingReliable,
      sentUnackedReliable: s.sentUnackedReliable,
      queueTimeUs: s.queueTimeUs,
    };
  }

  /**
   * The quick status plus the first `numLanes` lanes (`GetConnectionRealTimeStatus`). InvalidParam for
   * an unknown handle or more lanes than configured.
   */
  getConnectionRealTimeStatus(conn: number, numLanes = 0): { result: Result; status: ConnectionRealTimeStatus | null; lanes: LaneRealTimeStatus[] } {
    const rec = this.#conns.get(conn);
    const status = this.getQuickConnectionStatus(conn);
    if (!rec || !status) return { result: Result.InvalidParam, status: null, lanes: [] };
    const c = rec.conn;
    if (!Number.isInteger(numLanes) || numLanes < 0 || numLanes > c.laneCount()) return { result: Result.InvalidParam, status: null, lanes: [] };
    const lanes: LaneRealTimeStatus[] = [];
    for (let i = 0; i < numLanes; i++) {
      const l = c.laneStatus(i);
      if (l) lanes.push({ ...l });
    }
    return { result: Result.OK, status, lanes };
  }

  /**
   * The handles of every connection the application has not closed yet, in the order they were made (not in GNS,
   * which has no such call: for a metrics endpoint, see `startMetricsServer`).
   */
  listConnections(): number[] {
    return [...this.#conns.keys()];
  }

  /** The lanes a connection has (1 until `configureConnectionLanes`); -1 for an unknown handle. */
  getConnectionLaneCount(conn: number): number {
    const rec = this.#conns.get(conn);
    return rec ? rec.conn.laneCount() : -1;
  }

  /** Detailed statistics as readable text (`GetDetailedConnectionStatus`); null for an unknown handle. */
  getDetailedConnectionStatus(conn: number): string | null {
    const rec = this.#conns.get(conn);
    if (!rec) return null;
    const c = rec.conn;
    const s = c.status(this.#clock());
    if (!s) return null;
    return formatDetailedStatus(this.#info(rec), s, c.peerInfo(), c.laneCount(), (i) => c.laneStatus(i));
  }

  /**
   * Counters of the UDP socket under a listen socket or an outgoing connection: datagrams that never
   * reached a connection (malformed, unknown connection, refused handshakes), connections refused at a
   * limit (`refusedMaxConnections`, `refusedMaxConnectionsPerAddress`, `refusedMaxPendingPerAddress`),
   * stateless replies, what the fake conditions did, and failed sends. Null for an unknown handle.
   */
  getSocketStats(handle: number): SocketStats | null {
    const site = this.#listens.get(handle)?.site ?? this.#conns.get(handle)?.site;
    if (!site) return null;
    const d = site.driver;
    const sendErrors = d.transport.sendErrors ?? 0;
    return { ...site.endpoint.stats, fakeSend: { ...d.fakeSend.stats }, fakeRecv: { ...d.fakeRecv.stats }, sendErrors, datagramsShed: d.admission.stats.shed };
  }

  /** Sets the connection's user data (a safe integer; -1 means none). Received messages and callbacks carry it. */
  setConnectionUserData(conn: number, userData: number): boolean {
    const rec = this.#conns.get(conn);
    if (!rec || !Number.isSafeInteger(userData)) return false;
    rec.userData = userData;
    return true;
  }

  /** The connection's user data, or -1 for an unknown handle (or none set). */
  getConnectionUserData(conn: number): number {
    return this.#conns.get(conn)?.userData ?? -1;
  }

  /** Names a connection for debug output. */
  setConnectionName(conn: number, name: string): boolean {
    const rec = this.#conns.get(conn);
    if (!rec) return false;
    rec.name = name;
    return true;
  }

  /** The connection's name, or null for an unknown handle. */
  getConnectionName(conn: number): string | null {
    return this.#conns.get(conn)?.name ?? null;
  }

  // ---------------------------------------------------------------- configuration

  /**
   * Sets a configuration value at a scope (`SetConfigValue`): Global (process-wide), SocketsInterface
   * (this instance), ListenSocket or Connection (`scopeObj` is the handle). `null` clears it, so that the
   * wider scope's value applies again. Connection values apply to that connection now; wider scopes
   * apply to connections created or accepted afterwards, and fake network conditions apply at once.
   * Returns false for an unknown value or handle, a value out of range, or a value that a live
   * connection cannot change (`MTU_PacketSize`, `Unencrypted`, ...).
   */
  setConfigValue(value: ConfigKey, scope: ConfigScope, scopeObj: number, v: StoredConfig | null): boolean {
    const id = configId(value);
    const info = id === null ? undefined : CONFIG_INFO.get(id);
    if (!info) {
      this.#debug(DebugOutputType.Warning, `unknown config value ${String(value)}`);
      return false;
    }
    if (typeof v === 'number') v *= configScale(value);
    const bad = checkConfigValue(info, v);
    if (bad) {
      this.#debug(DebugOutputType.Warning, bad);
      return false;
    }
    const store = this.#scopeStore(scope, scopeObj);
    if (!store) return false;
    const old = store.own(info.id);
    store.set(info.id, v);
    if (!this.#apply(info, scope, scopeObj)) {
      store.set(info.id, old ?? null);
      return false;
    }
    return true;
  }

  /**
   * Reads a configuration value (`GetConfigValue`): OK if set at this scope, OKInherited if it comes
   * from a wider scope or the default, BadValue for an unknown value, BadScopeObj for an unknown handle.
   */
  getConfigValue(value: ConfigKey, scope: ConfigScope, scopeObj = 0): { result: GetConfigValueResult; value: StoredConfig | null } {
    const scale = configScale(value);
    const r = this.#getConfigValue(value, scope, scopeObj);
    return scale !== 1 && typeof r.value === 'number' ? { result: r.result, value: r.value / scale } : r;
  }

  #getConfigValue(value: ConfigKey, scope: ConfigScope, scopeObj: number): { result: GetConfigValueResult; value: StoredConfig | null } {
    const id = configId(value);
    const info = id === null ? undefined : CONFIG_INFO.get(id);
    if (!info) return { result: GetConfigValueResult.BadValue, value: null };
    const store = this.#scopeStore(scope, scopeObj);
    if (!store) return { result: GetConfigValueResult.BadScopeObj, value: null };
    if (info.id === ConfigValue.MTU_DataSize) {
      const mtu = this.getConfigValue(ConfigValue.MTU_PacketSize, scope, scopeObj).value as number;
      return { result: GetConfigValueResult.OKInherited, value: mtu - MTU_OVERHEAD };
    }
    const own = store.own(info.id);
    if (own !== undefined) return { result: GetConfigValueResult.OK, value: own };
    const rec = scope === ConfigScope.Connection ? this.#conns.get(scopeObj) : undefined;
    if (rec && info.kind === 'core') {
      // What the connection runs with: inherited when it was created, possibly since changed.
      const live = rec.conn.connectionConfig();
      if (live) return { result: GetConfigValueResult.OKInherited, value: live[info.name as keyof typeof live] };
    }
    if (rec && info.id === ConfigValue.ConnectionUserData) return { result: GetConfigValueResult.OKInherited, value: rec.userData };
    return { result: GetConfigValueResult.OKInherited, value: store.lookup(info.id) ?? info.def };
  }

  /** The name of a configuration value id, or null if unknown (`GetConfigValueInfo`). */
  getConfigValueName(value: number): ConfigName | null {
    return CONFIG_INFO.get(value)?.name ?? null;
  }

  /** Type, scope kind, default and range of a configuration value, or null if unknown. */
  getConfigValueInfo(value: ConfigKey): ConfigValueInfo | null {
    const id = configId(value);
    return id === null ? null : (CONFIG_INFO.get(id) ?? null);
  }

  /** The seed's `SetConfigurationValue`: a process-wide value. */
  setGlobalConfigValue(value: ConfigKey, v: StoredConfig | null): boolean {
    return this.setConfigValue(value, ConfigScope.Global, 0, v);
  }

  /** The seed's `SetConnectionConfigurationValue`. */
  setConnectionConfigValue(conn: number, value: ConfigKey, v: StoredConfig | null): boolean {
    return this.setConfigValue(value, ConfigScope.Connection, conn, v);
  }

  /** The seed's `GetConnectionConfigurationValue`: the value in effect, or null for an unknown value or handle. */
  getConnectionConfigValue(conn: number, value: ConfigKey): StoredConfig | null {
    const r = this.getConfigValue(value, ConfigScope.Connection, conn);
    return r.result > 0 ? r.value : null;
  }

  #scopeStore(scope: ConfigScope, obj: number): ConfigStore | null {
    switch (scope) {
      case ConfigScope.Global:
        return GLOBAL_CONFIG;
      case ConfigScope.SocketsInterface:
        return this.#iface;
      case ConfigScope.ListenSocket:
        return this.#listens.get(obj)?.config ?? null;
      case ConfigScope.Connection:
        return this.#conns.get(obj)?.config ?? null;
      default:
        return null;
    }
  }

  /** Makes a changed value take effect. False (and the caller reverts) if it cannot. */
  #apply(info: ConfigValueInfo, scope: ConfigScope, obj: number): boolean {
    const rec = scope === ConfigScope.Connection ? this.#conns.get(obj) : undefined;
    if (rec) {
      if (info.kind === 'limit') return false; // a listen socket's value, not a connection's
      if (info.kind === 'core') {
        try {
          return rec.conn.reconfigure({ [info.name]: (rec.config.lookup(info.id) ?? info.def) as number }) === Result.OK;
        } catch {
          return false;
        }
      }
      if (info.kind === 'fake') {
        // Fake conditions live at the socket: only a connection with its own socket can have its own.
        if (!rec.ownsSite || rec.memory) return false;
        this.#refreshFake(rec.site);
      }
      if (info.id === ConfigValue.ConnectionUserData) rec.userData = (rec.config.own(info.id) as number | undefined) ?? -1;
      return true;
    }
    // Listen sockets take new values at once: the defaults their new connections inherit, and their limits.
    const listens = scope === ConfigScope.ListenSocket ? [this.#listens.get(obj)] : [...this.#listens.values()];
    if (info.kind === 'core') {
      try {
        for (const l of listens) if (l) resolveConfig(l.config.coreValues());
      } catch {
        return false;
      }
      for (const l of listens) if (l && l.virtualPort < 0) l.site.endpoint.setConfig(l.config.coreValues());
    }
    if (info.kind === 'limit') for (const l of listens) if (l && l.virtualPort < 0) l.site.endpoint.setLimits(l.config.limits());
    if (info.kind === 'fake') for (const site of this.#sites) this.#refreshFake(site);
    return true;
  }

  #refreshFake(site: Site): void {
    if (!site.fakeFrom) return;
    const f = site.fakeFrom.fakeConditions();
    site.driver.setFakeConditions(f.send, f.recv);
  }

  /** A new store under `parent` holding `options`, or null (with debug output) if an option is bad. */
  #storeWith(parent: ConfigStore, options: ConfigOptions): ConfigStore | null {
    const store = storeFrom(parent, options);
    if (typeof store === 'string') {
      this.#debug(DebugOutputType.Error, store);
      return null;
    }
    return store;
  }

  // ---------------------------------------------------------------- callbacks and debug output

  /**
   * Delivers queued status changes to the callback registered (`Callback_ConnectionStatusChanged`,
   * at connection, listen socket, interface or global scope) when each change happened (`RunCallbacks`).
   */
  runCallbacks(): void {
    const n = this.#callbacks.length;
    for (let i = 0; i < n; i++) {
      const c = this.#callbacks.shift() as QueuedCallback;
      c.fn?.(c.info);
      this.#announceWaiting(c.info);
    }
  }

  /**
   * After the callback that reports a connection Connected: messages that arrived before it (a peer's
   * first message comes with the packet that completes the connection) were announced by `onReadable`
   * to a program that did not know the connection yet, so they are announced once more.
   */
  #announceWaiting(info: StatusChangedInfo): void {
    if (info.info.state !== ConnectionState.Connected || !this.#onReadable) return;
    const rec = this.#conns.get(info.connection);
    if (rec && rec.conn.pendingMessages() > 0) this.#onReadable(rec.handle);
  }

  /** Delivers the oldest queued status change to `callback`, if there is one (the seed's `DispatchCallback`). */
  dispatchCallback(callback: StatusChangedCallback): boolean {
    const c = this.#callbacks.shift();
    if (!c) return false;
    callback(c.info);
    this.#announceWaiting(c.info);
    return true;
  }

  /** Sends debug output at `level` and below to `fn` (`SetDebugOutputFunction`); null turns it off. */
  setDebugOutputFunction(level: DebugOutputType, fn: DebugOutputFunction | null): void {
    this.#debugLevel = fn ? level : DebugOutputType.None;
    this.#debugFn = fn;
    this.#debug(DebugOutputType.Msg, `crypto provider: ${this.#cryptoName}`);
  }

  #debug(level: DebugOutputType, message: string): void {
    if (level <= this.#debugLevel) this.#debugFn?.(level, message);
  }

  /** True (with debug output) when the runtime's sockets reach relays only (a browser): no socket by IP address. */
  #refuseIp(): boolean {
    if (this.#runtime.relaysOnly) this.#debug(DebugOutputType.Error, 'this runtime reaches relays only (a browser): use connectP2P through the relays');
    return this.#runtime.relaysOnly === true;
  }

  /** True (with debug output) once `close` has run: a closed instance opens no socket. */
  #refuseClosed(): boolean {
    if (this.#closed) this.#debug(DebugOutputType.Error, 'this NetworkingSockets is closed');
    return this.#closed;
  }

  /**
   * Closes every connection and socket of this instance (the seed's `Deinitialize`). Handles become
   * invalid, and `connect`, `createListenSocket` and `createSocketPair` are refused from then on.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const rec of [...this.#conns.values()]) this.closeConnection(rec.handle, 1000, 'Shutting down');
    for (const h of [...this.#listens.keys()]) this.closeListenSocket(h, 'Shutting down');
    if (this.#p2p && this.#p2pSite) {
      this.#p2p.close();
      this.#sites.delete(this.#p2pSite);
    }
    for (const site of this.#sites) {
      site.driver.service(); // puts the close packets on the wire
      site.driver.close();
    }
    this.#sites.clear();
    this.#groups.clear();
  }

  // ---------------------------------------------------------------- plumbing

  #newSite(endpoint: Endpoint, transport: DatagramTransport, listen: ListenRecord | null, fakeFrom: ConfigStore | null): Site {
    const byCid = new Map<number, ConnRecord>();
    let site: Site | null = null;
    const driver = new EndpointDriver(endpoint, transport, {
      scheduler: this.#runtime.scheduler,
      rng: this.#fakeRng,
      keepProcessAlive: this.#keepAlive,
      onServiced: () => this.#drain(site as Site),
    });
    site = { driver, endpoint, byCid, listen, fakeFrom };
    this.#sites.add(site);
    this.#refreshFake(site);
    return site;
  }

  /** A connection the API knows: of the site's endpoint (`cid`), or a P2P one (`p2p`, with `cid` 0). */
  #newConn(site: Site, cid: number, listen: ListenRecord | null, config: ConfigStore, ownsSite: boolean, memory: boolean, remote: SocketAddress, p2p: SessionConnection | null = null): ConnRecord {
    const userData = config.lookup(ConfigValue.ConnectionUserData);
    const conn = p2p ?? new EndpointConnection(site.endpoint, cid);
    const rec: ConnRecord = { handle: this.#nextHandle++, site, cid, conn, p2p, listen, config, ownsSite, memory, remote, userData: typeof userData === 'number' ? userData : -1, name: '', group: null };
    if (p2p) this.#byConn.set(p2p, rec);
    else site.byCid.set(cid, rec);
    this.#conns.set(rec.handle, rec);
    listen?.conns.add(rec);
    return rec;
  }

  #forget(rec: ConnRecord): void {
    this.#conns.delete(rec.handle);
    if (rec.p2p) this.#byConn.delete(rec.p2p);
    else rec.site.byCid.delete(rec.cid);
    if (rec.listen) {
      rec.listen.conns.delete(rec);
      rec.listen.ready.delete(rec);
    }
    if (rec.group) {
      rec.group.members.delete(rec);
      rec.group.ready.delete(rec);
    }
  }

  /** After each service pass of a site: status changes become queued callbacks; readable connections become ready. */
  #drain(site: Site): void {
    const ep = site.endpoint;
    for (let e = ep.pollEvent(); e; e = ep.pollEvent()) {
      if (e.type === 'warning') {
        this.#debug(DebugOutputType.Warning, `connection ${site.byCid.get(e.connection)?.handle ?? '?'}: ${e.message}`);
        continue;
      }
      let rec = site.byCid.get(e.connection);
      if (!rec) {
        const listen = site.listen;
        if (!listen || listen.closing || e.oldState !== ConnectionState.None || e.state !== ConnectionState.Connecting) continue;
        rec = this.#newConn(site, e.connection, listen, new ConfigStore(listen.config), false, false, e.remote);
      }
      this.#queueStatus(rec, e.oldState, e.state, e.endReason, e.endDebug);
    }
    for (let cid = ep.pollReadable(); cid !== null; cid = ep.pollReadable()) {
      const rec = site.byCid.get(cid);
      if (rec) this.#readable(rec);
    }
    for (let cid = ep.pollWritable(); cid !== null; cid = ep.pollWritable()) {
      const rec = site.byCid.get(cid);
      if (rec) this.#onWritable?.(rec.handle);
    }
    // A site nobody uses any more closes its socket once its connections have finished closing.
    if (site.byCid.size === 0 && (!site.listen || site.listen.closing) && ep.connectionCount === 0) {
      site.driver.close();
      this.#sites.delete(site);
    }
  }

  /** A connection's receive queue went from empty to not empty: its listen socket and poll group have it ready, and `onReadable` hears. */
  #readable(rec: ConnRecord): void {
    rec.listen?.ready.add(rec);
    rec.group?.ready.add(rec);
    this.#onReadable?.(rec.handle);
  }

  /** A status change of a connection: a queued callback, the diagnostics channel, the debug output. */
  #queueStatus(rec: ConnRecord, oldState: ConnectionState, state: ConnectionState, endReason: number, endDebug: string): void {
    const info = this.#info(rec);
    const fn = rec.config.lookup(ConfigValue.Callback_ConnectionStatusChanged);
    if (this.#callbacks.length >= MAX_QUEUED_CALLBACKS) {
      this.#callbacks.shift();
      this.#debug(DebugOutputType.Bug, `more than ${MAX_QUEUED_CALLBACKS} status callbacks queued: call runCallbacks()`);
    }
    this.#callbacks.push({ fn: typeof fn === 'function' ? (fn as StatusChangedCallback) : null, info: { connection: rec.handle, info, oldState } });
    if (channels.connectionStatus.hasSubscribers) channels.connectionStatus.publish({ connection: rec.handle, oldState, state, remote: info.addressRemote, endReason, endDebug });
    this.#debug(DebugOutputType.Msg, `${info.connectionDescription}: ${STATE_NAMES.get(oldState)} -> ${STATE_NAMES.get(state)}${endReason ? ` (${endReason} ${endDebug})` : ''}`);
  }

  #info(rec: ConnRecord): ConnectionInfo {
    const c = rec.conn;
    const peer = c.peerInfo();
    const end = c.endInfo();
    const remote = c.remoteAddress() ?? rec.remote;
    const identity = peer?.identity ?? rec.p2p?.identity ?? '';
    return {
      identityRemote: identity,
      userData: rec.userData,
      listenSocket: rec.listen?.handle ?? INVALID_HANDLE,
      addressRemote: remote,
      state: c.state(),
      endReason: end?.reason ?? 0,
      endDebug: end?.debug ?? '',
      connectionDescription: `#${rec.handle}${rec.name ? ` '${rec.name}'` : ''} ${rec.memory ? 'pipe' : rec.p2p ? 'P2P' : `[${remote.address}]:${remote.port}`}${identity ? ` ${identity}` : ''}`,
      flags: (peer?.flags ?? 0) | (rec.memory ? LOOPBACK_BUFFERS_FLAG : 0),
    };
  }

  #address(a: SocketAddress | string): SocketAddress | null {
    const parsed = typeof a === 'string' ? parseAddress(a) : a;
    if (!parsed || ipFamily(parsed.address) === 0 || !Number.isInteger(parsed.port) || parsed.port < 0 || parsed.port > 65535) {
      this.#debug(DebugOutputType.Error, `bad address ${typeof a === 'string' ? a : `${a.address}:${a.port}`}`);
      return null;
    }
    return { address: parsed.address, port: parsed.port };
  }
}

export { parseAddress };

/**
 * Runs the handshake between two fresh endpoints by handing packets across in memory (bounded),
 * so that a socket pair starts connected without callbacks, as GNS's does. Returns both handles.
 */
function handshakeInMemory(now: number, a: Endpoint, aAddr: SocketAddress, b: Endpoint, bAddr: SocketAddress): [number, number] | null {
  const ca = a.connect(now, bAddr);
  let cb = 0;
  for (let round = 0; round < 16; round++) {
    let moved = false;
    for (let t = a.pollTransmit(now); t; t = a.pollTransmit(now)) {
      b.handleDatagram(now, aAddr, t.data);
      moved = true;
    }
    for (let e = b.pollEvent(); e; e = b.pollEvent()) {
      if (e.type === 'connectionStatusChanged' && e.oldState === ConnectionState.None) {
        cb = e.connection;
        b.accept(now, cb);
      }
    }
    for (let t = b.pollTransmit(now); t; t = b.pollTransmit(now)) {
      a.handleDatagram(now, bAddr, t.data);
      moved = true;
    }
    if (cb !== 0 && a.state(ca) === ConnectionState.Connected && b.state(cb) === ConnectionState.Connected) {
      while (a.pollEvent());
      while (b.pollEvent());
      return [ca, cb];
    }
    if (!moved) break;
  }
  return null;
}
