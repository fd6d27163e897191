import type { Endpoint, EndpointStats } from '../core/endpoint.js';
import { ConnectionState, Result, SendFlags, type ReceivedMessage, type SocketAddress } from '../core/types.js';
import { SecureHandshake } from '../crypto/handshake.js';
import { derivePeerId, identityToString, parseIdentity } from '../crypto/identity.js';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import type { CryptoProvider, SigningKey } from '../crypto/provider.js';
import { monotonicUs, type Clock } from '../io/clock.js';
import { EndpointDriver, type DatagramTransport } from '../io/driver.js';
import { randomSeed } from '../io/random.js';
import { UdpSocket } from '../io/udp.js';
import { RelayClient, type LookupResult, type RelayClientOptions, type RelayClientStats } from '../relay/client.js';
import { addressKey, type Route } from '../relay/protocol.js';
import { Deque } from '../util/deque.js';
import { NetlaneError } from '../util/errors.js';
import { Listeners } from '../util/listeners.js';
import { SeededRng } from '../util/rng.js';
import { InBand, connectionStore, ensureLane, parseRelays, parseTicket, pathInUse, peerIdOf, relayedEndpoint, routeFromMessage, routeMessage } from './relayed.js';
import { parseAddress, type ConfigOptions } from './networking-sockets.js';
import { Limits } from './types.js';

/**
 * `NetworkingConnectionEnd` with the seed's names and values (GodotSteam's Networking Messages class
 * reference), plus the two reasons a Messages session closes its own connection with.
 */
export const NetworkingConnectionEnd = {
  CONNECTION_END_INVALID: 0,
  CONNECTION_END_APP_MIN: 1000,
  CONNECTION_END_MAX: 1999,
  CONNECTION_END_APP_EXCEPTION_MIN: 2000,
  CONNECTION_END_APP_EXCEPTION_MAX: 2999,
  CONNECTION_END_LOCAL_MIN: 3000,
  CONNECTION_END_LOCAL_OFFLINE_MODE: 3001,
  CONNECTION_END_LOCAL_MANY_RELAY_CONNECTIVITY: 3002,
  CONNECTION_END_LOCAL_HOSTED_SERVER_PRIMARY_RELAY: 3003,
  CONNECTION_END_LOCAL_NETWORK_CONFIG: 3004,
  CONNECTION_END_LOCAL_RIGHTS: 3005,
  CONNECTION_END_LOCAL_MAX: 3999,
  CONNECTION_END_REMOTE_MIN: 4000,
  CONNECTION_END_REMOTE_TIMEOUT: 4001,
  CONNECTION_END_REMOTE_BAD_CRYPT: 4002,
  CONNECTION_END_REMOTE_BAD_CERT: 4003,
  CONNECTION_END_REMOTE_NOT_LOGGED_IN: 4004,
  CONNECTION_END_REMOTE_NOT_RUNNING_APP: 4005,
  CONNECTION_END_BAD_PROTOCOL_VERSION: 4006,
  CONNECTION_END_REMOTE_MAX: 4999,
  CONNECTION_END_MISC_MIN: 5000,
  CONNECTION_END_MISC_GENERIC: 5001,
  CONNECTION_END_MISC_INTERNAL_ERROR: 5002,
  CONNECTION_END_MISC_TIMEOUT: 5003,
  CONNECTION_END_MISC_RELAY_CONNECTIVITY: 5004,
  CONNECTION_END_MISC_STEAM_CONNECTIVITY: 5005,
  CONNECTION_END_MISC_NO_RELAY_SESSIONS_TO_CLIENT: 5006,
  CONNECTION_END_MISC_MAX: 5999,
  /** `closeSessionWithUser`, or the last channel closed (GNS `k_ESteamNetConnectionEnd_P2P_SessionClosed`). */
  SESSION_CLOSED: 1001,
  /** The session was idle for the idle timeout (GNS `k_ESteamNetConnectionEnd_P2P_SessionIdleTimeout`). */
  SESSION_IDLE_TIMEOUT: 1002,
  /** netlane: both sides dialled at once; this one of the two connections gives way (the session carries on over the other). */
  SESSION_DUPLICATE: 1003,
} as const;

/** `k_nSteamNetworkingSend_AutoRestartBrokenSession`: a send to a user whose session failed starts a new one. */
export const AUTO_RESTART_BROKEN_SESSION = 32;

/**
 * Who a message goes to or came from: a peer id (`bigint`, found through the relays' identity
 * directory), or an `ip:address:port` string (a direct UDP peer, no relay). `id:N` strings are taken as
 * the peer id N.
 */
export type NetworkingIdentity = bigint | string;

/** A message received with `receiveMessagesOnChannel`, with every field of the seed. */
export class NetworkingMessagesMessage {
  /** The payload: plain bytes, this message's own memory. Decode it; never evaluate it. */
  readonly payload: Uint8Array;
  /** Always 0: the connection under a session is not the application's (as GNS). */
  readonly connection = 0;
  /** The sender. */
  readonly identity: NetworkingIdentity;
  /** The receiving session's user data (always 0: sessions carry none). */
  readonly receiverUserData = 0;
  /** Local time (µs, the facade's clock) when it arrived. */
  readonly timeReceived: number;
  /** The sender's number for it, per channel (per lane). */
  readonly messageNumber: number;
  readonly channel: number;
  /** `SendFlags.Reliable` (8) for a reliable message, 0 for an unreliable one. */
  readonly flags: number;
  /** The sender's user data (always 0: nothing carries it over the wire). */
  readonly senderUserData = 0;

  constructor(payload: Uint8Array, identity: NetworkingIdentity, timeReceived: number, messageNumber: number, channel: number, flags: number) {
    this.payload = payload;
    this.identity = identity;
    this.timeReceived = timeReceived;
    this.messageNumber = messageNumber;
    this.channel = channel;
    this.flags = flags;
  }

  /** Payload length in bytes. */
  get size(): number {
    return this.payload.length;
  }
}

/** What `sessionFailed` carries (`SteamNetworkingMessagesSessionFailed_t`). */
export interface SessionFailedInfo {
  /** A `NetworkingConnectionEnd` value. */
  readonly reason: number;
  readonly identity: NetworkingIdentity;
  /** The session's connection state when it failed: 4 (closed by peer) or 5 (problem detected locally). */
  readonly state: number;
  readonly debugMessage: string;
}

/** What `getSessionConnectionInfo` returns: the state, and the seed's connection and status fields when asked. */
export interface SessionConnectionInfo {
  /** 0 none, 1 connecting, 2 finding route (looking the identity up), 3 connected, 4 closed by peer, 5 problem detected locally. */
  readonly state: number;
  // With getConnection:
  readonly identity?: NetworkingIdentity;
  readonly userData?: number;
  readonly listenSocket?: number;
  /** Where the packets go: the peer's address for a direct session, the relay's for a relayed one (the peer's IP is never known). */
  readonly remoteAddress?: string;
  readonly remotePop?: number;
  readonly popRelay?: number;
  readonly connectionState?: number;
  readonly endReason?: number;
  readonly endDebug?: string;
  readonly debugDescription?: string;
  /** `ConnectionInfoFlags`: Unauthenticated 1, Unencrypted 2. */
  readonly infoFlags?: number;
  // With getStatus:
  readonly ping?: number;
  readonly localQuality?: number;
  readonly remoteQuality?: number;
  readonly packetsOutPerSecond?: number;
  readonly bytesOutPerSecond?: number;
  readonly packetsInPerSecond?: number;
  readonly bytesInPerSecond?: number;
  /** Bytes per second the congestion controller allows. */
  readonly sendRate?: number;
  readonly pendingUnreliable?: number;
  readonly pendingReliable?: number;
  readonly sendUnacknowledgedReliable?: number;
  /** µs before a message queued now would be sent. */
  readonly queueTime?: number;
}

/** Options of {@link NetworkingMessages}. */
export interface NetworkingMessagesOptions {
  /** Relay addresses (`host:port`): this peer's id is registered in their directory; peer ids are looked up there. */
  readonly relays?: readonly (string | SocketAddress)[];
  /** The operator's relay ticket (bytes or base64url); none for relays in `--open` mode. */
  readonly ticket?: Uint8Array | string;
  /**
   * A local UDP address (`ip:port`) for direct `ip:` identities. Default: none when relays are given
   * (nobody learns this peer's IP), `0.0.0.0:0` otherwise.
   */
  readonly bind?: string;
  /** This peer's Ed25519 key: its peer id derives from it. Default: a fresh key. */
  readonly key?: SigningKey;
  readonly provider?: CryptoProvider;
  readonly clock?: Clock;
  /** Wall clock, unix seconds (directory registrations). Default: the system clock. */
  readonly unixSeconds?: () => number;
  /** Keep the process alive while open. Default false. */
  readonly keepProcessAlive?: boolean;
  /** Configuration of every session's connection, GNS names (`TimeoutInitial`, `FakePacketLoss_Send`, ...). */
  readonly connectionConfig?: ConfigOptions;
  /** Relay client tuning. */
  readonly relayOptions?: Partial<Pick<RelayClientOptions, 'keepaliveMs' | 'relayTimeoutMs' | 'probeIntervalMs' | 'hysteresis' | 'tap' | 'bindAddress'>>;
  /** A session unused for this long closes (reason 1002, no callback). Default 180,000 ms (3 minutes, as GNS). */
  readonly sessionIdleTimeoutMs?: number;
}

/** Counters of a {@link NetworkingMessages}. */
export interface NetworkingMessagesStats {
  /** `sessionRequest` events posted (repeats included). */
  sessionRequests: number;
  sessionsAccepted: number;
  /** `sessionFailed` events posted. */
  sessionsFailed: number;
  /** Sessions closed by the idle timeout. */
  idleTimeouts: number;
  /** Connections of a session that ended while idle: closed quietly (the next send reconnects). */
  quietCloses: number;
  /** Crossing connections (both sides sent first): one of the two is closed. */
  duplicateConnections: number;
  /** Connections whose far end was not the key holder of the peer id dialled: closed with 4003. */
  identityMismatches: number;
  /** Connections closed because the peer broke the in-band protocol (4008). */
  protocolViolations: number;
  /** Directory lookups made. */
  lookups: number;
  /** Received messages not read yet. */
  queuedMessages: number;
  /** Datagrams the fake network conditions dropped (FakePacketLoss_Send / _Recv), both directions. */
  readonly fakeLost: number;
  readonly relay: RelayClientStats | null;
  readonly endpoint: EndpointStats;
}

interface Outgoing {
  readonly channel: number;
  readonly flags: number;
  readonly data: Uint8Array;
}

interface Failure {
  readonly state: number;
  readonly reason: number;
  readonly debug: string;
}

interface Session {
  readonly key: string;
  readonly identity: NetworkingIdentity;
  /** The peer id, for `id` identities (dialled through the directory). */
  readonly peerId: bigint | null;
  /** The address, for `ip` identities (dialled directly). */
  readonly direct: SocketAddress | null;
  cid: number;
  incoming: boolean;
  accepted: boolean;
  connected: boolean;
  everConnected: boolean;
  /** Looking the peer id up in the directory (state FindingRoute). */
  finding: boolean;
  lookupInFlight: boolean;
  nextLookupUs: number;
  findDeadlineUs: number;
  /** Why the last lookup found nothing: what the session fails with at the deadline. */
  lastMiss: 'notFound' | 'unreachable' | 'noRelay';
  /** Counts connection attempts: a lookup answer for an older attempt is ignored. */
  attempt: number;
  vaddr: SocketAddress | null;
  route: Route | null;
  /** Messages sent before the connection is up (all reliable, as GNS), or while it is full. */
  outbox: Outgoing[];
  outboxBytes: number;
  readonly channels: Set<number>;
  lastUsedUs: number;
  failure: Failure | null;
  /** Our dial lost a crossing to the peer's: waiting (until then, µs) for the peer's connection. 0 when not. */
  awaitPeerUntilUs: number;
  requestPostedUs: number;
  laneCount: number;
}

type QueuedEvent = { readonly type: 'request'; readonly identity: NetworkingIdentity } | { readonly type: 'failed'; readonly info: SessionFailedInfo };

/** `sessionRequest` listener: the identity that wants to talk. */
export type SessionRequestListener = (identity: NetworkingIdentity) => void;
/** `sessionFailed` listener. */
export type SessionFailedListener = (info: SessionFailedInfo) => void;

/** Channels 0..253 have a lane each (lanes 1..254); any other int32 channel rides lane 0 with a 5-byte header. */
const LANE_CHANNELS = 254;
const MAX_OUTBOX_MESSAGES = 8192;
/** What a session queues before its connection is up: GNS's default send buffer. */
const MAX_OUTBOX_BYTES = 512 * 1024;
/** Received messages held unread (all channels) before the facade stops taking more from the connections (their peers then wait). */
const MAX_QUEUED_MESSAGES = 8192;
const REQUEST_REPEAT_US = 1_000_000;
const LOOKUP_RETRY_US = 500_000;
const TICK_MS = 100;
const DEFAULT_IDLE_MS = 180_000;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/**
 * Steam's `ISteamNetworkingMessages` as GodotSteam binds it (seeds 002 and 003), on netlane: send to a
 * user by identity on a channel, and sessions are made implicitly. Each session is one netlane
 * connection, encrypted end to end and authenticated by the peer's key; through relays by peer id
 * (looked up in the relays' identity directory), or directly to an `ip:` identity.
 *
 * As in GNS: the first message from a user raises `sessionRequest` (repeated every second while its
 * connection attempt lives), and nothing from that user is delivered until the session is accepted
 * (`acceptSessionWithUser`, or sending to the user). A failed session raises `sessionFailed` and refuses
 * sends (NoConnection, 3) until it is closed or a send passes `AUTO_RESTART_BROKEN_SESSION`. Closing the
 * last channel with a user closes the session. Sessions idle for 3 minutes close without a callback.
 * Events fire inside `runCallbacks()`; messages are read with `receiveMessagesOnChannel` at any time.
 *
 * Unlike GNS, each channel 0-253 is its own lane: a lost packet on one channel never stalls another.
 */
export class NetworkingMessages {
  readonly #provider: CryptoProvider;
  readonly #clock: Clock;
  readonly #peerId: bigint;
  readonly #endpoint: Endpoint;
  readonly #relay: RelayClient | null;
  readonly #udp: UdpSocket | null;
  readonly #driver: EndpointDriver;
  readonly #idleUs: number;
  readonly #timeoutInitialUs: number;
  readonly #sessions = new Map<string, Session>();
  readonly #byCid = new Map<number, Session>();
  readonly #readable = new Set<number>();
  readonly #channels = new Map<number, Deque<NetworkingMessagesMessage>>();
  readonly #events: QueuedEvent[] = [];
  readonly #listeners = new Listeners<{ sessionRequest: SessionRequestListener; sessionFailed: SessionFailedListener }>(['sessionRequest', 'sessionFailed']);
  readonly #scratch: ReceivedMessage[] = [];
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #stats: Omit<NetworkingMessagesStats, 'relay' | 'endpoint' | 'fakeLost'> = {
    sessionRequests: 0,
    sessionsAccepted: 0,
    sessionsFailed: 0,
    idleTimeouts: 0,
    quietCloses: 0,
    duplicateConnections: 0,
    identityMismatches: 0,
    protocolViolations: 0,
    lookups: 0,
    queuedMessages: 0,
  };
  #closed = false;

  constructor(options: NetworkingMessagesOptions = {}) {
    this.#provider = options.provider ?? new NodeCryptoProvider();
    this.#clock = options.clock ?? monotonicUs;
    const key = options.key ?? this.#provider.signingKey();
    this.#peerId = derivePeerId(this.#provider, key.publicKey);
    this.#idleUs = (options.sessionIdleTimeoutMs ?? DEFAULT_IDLE_MS) * 1000;
    if (!(this.#idleUs > 0)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'sessionIdleTimeoutMs must be positive');
    const store = connectionStore(options.connectionConfig);
    const relays = parseRelays(options.relays ?? []);
    const keepAlive = options.keepProcessAlive ?? false;
    const bind = options.bind ?? (relays.length === 0 ? '0.0.0.0:0' : null);
    let udp: UdpSocket | null = null;
    if (bind !== null) {
      const a = parseAddress(bind);
      if (!a) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `bad bind address ${bind}`);
      udp = UdpSocket.open({ address: a.address, port: a.port });
    }
    this.#udp = udp;
    const ticket = parseTicket(options.ticket);
    this.#relay =
      relays.length === 0
        ? null
        : new RelayClient({
            ...options.relayOptions,
            relays,
            ticket,
            provider: this.#provider,
            clock: this.#clock,
            keepProcessAlive: keepAlive,
            directoryKey: key,
            ...(options.unixSeconds ? { unixSeconds: options.unixSeconds } : {}),
            onRoute: (route) => this.#ownRouteChanged(route),
          });
    this.#endpoint = relayedEndpoint(new SecureHandshake({ provider: this.#provider, key }), this.#relay !== null, store);
    this.#timeoutInitialUs = (store.coreValues().TimeoutInitial ?? 10_000) * 1000;
    const transport: DatagramTransport = this.#relay && udp ? new MuxTransport(this.#relay, udp) : ((this.#relay ?? udp) as DatagramTransport);
    this.#driver = new EndpointDriver(this.#endpoint, transport, { clock: this.#clock, rng: new SeededRng(randomSeed()), keepProcessAlive: keepAlive, onServiced: () => this.#serviced() });
    const fake = store.fakeConditions();
    this.#driver.setFakeConditions(fake.send, fake.recv);
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    if (!keepAlive) this.#timer.unref();
  }

  // ---------------------------------------------------------------- the seed's API

  /**
   * Sends `data` to a user on `channel` (`SendMessageToUser`), making the session if there is none
   * (and accepting the user's pending request, if any). Returns an `EResult`: OK (1); NoConnection (3)
   * when the session failed and `AUTO_RESTART_BROKEN_SESSION` is not in `flags`; InvalidParam (8) for a
   * bad identity, channel or size; LimitExceeded (25) when the session's send buffer is full.
   * Until the connection is up, messages are queued and sent reliably (as GNS does).
   */
  sendMessageToUser(identity: NetworkingIdentity, data: Uint8Array, flags: number = SendFlags.Unreliable, channel = 0): number {
    if (!(data instanceof Uint8Array)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'data must be a Uint8Array or Buffer');
    if (this.#closed) return Result.NoConnection;
    if (!Number.isInteger(channel) || channel < INT32_MIN || channel > INT32_MAX || !Number.isInteger(flags) || data.length > Limits.maxMessageSize) return Result.InvalidParam;
    const who = this.#resolve(identity);
    if (!who || who.peerId === this.#peerId) return Result.InvalidParam;
    let s = this.#sessions.get(who.key);
    if (!s) {
      if ((who.peerId === null || !this.#relay) && (who.direct === null || !this.#udp)) return Result.InvalidParam; // no way to reach it
      s = this.#newSession(who.key, who.identity, who.peerId, who.direct);
    }
    const now = this.#clock();
    if (s.cid !== 0 && s.incoming && !s.accepted) this.#accept(s, now);
    if (s.cid === 0 && !s.finding && s.awaitPeerUntilUs === 0) {
      if (s.failure) {
        if ((flags & AUTO_RESTART_BROKEN_SESSION) === 0) return Result.NoConnection;
        s.failure = null;
      }
      if (s.peerId === null && s.direct === null) return Result.NoConnection; // a peer that can only reach us
      this.#start(s, now);
    }
    s.channels.add(channel);
    s.lastUsedUs = now;
    const f = flags & ~AUTO_RESTART_BROKEN_SESSION;
    if (!s.connected || s.outbox.length > 0) {
      if (s.outbox.length >= MAX_OUTBOX_MESSAGES || s.outboxBytes + data.length > MAX_OUTBOX_BYTES) return Result.LimitExceeded;
      s.outbox.push({ channel, flags: s.connected ? f : SendFlags.Reliable, data: data.slice() });
      s.outboxBytes += data.length;
      if (s.connected) this.#write(s, now);
      return Result.OK;
    }
    const r = this.#send(s, now, channel, data, f);
    if (r < 0 && r !== -Result.Ignored) return -r;
    this.#driver.kick();
    return Result.OK;
  }

  /** Up to `max` messages received on `channel` from any user (`ReceiveMessagesOnChannel`), oldest first. */
  receiveMessagesOnChannel(channel: number, max = 32): NetworkingMessagesMessage[] {
    const q = this.#channels.get(channel);
    const limit = Math.floor(max);
    if (!q || q.length === 0 || !(limit > 0)) return [];
    const out: NetworkingMessagesMessage[] = [];
    for (let m = q.shift(); m !== undefined; m = out.length < limit ? q.shift() : undefined) out.push(m);
    this.#stats.queuedMessages -= out.length;
    if (this.#readable.size > 0) this.#pull(this.#clock());
    return out;
  }

  /** Accepts a user's pending session request (`AcceptSessionWithUser`); false if there is no session with a connection. */
  acceptSessionWithUser(identity: NetworkingIdentity): boolean {
    const s = this.#find(identity);
    if (!s || s.cid === 0) return false;
    const now = this.#clock();
    if (s.incoming && !s.accepted) this.#accept(s, now);
    s.lastUsedUs = now;
    return true;
  }

  /** Closes the session with a user now (`CloseSessionWithUser`, reason 1001); its unread messages are discarded. */
  closeSessionWithUser(identity: NetworkingIdentity): boolean {
    const s = this.#find(identity);
    if (!s) return false;
    this.#destroy(s, NetworkingConnectionEnd.SESSION_CLOSED, 'CloseSessionWithUser');
    return true;
  }

  /**
   * Done with a user on one channel (`CloseChannelWithUser`): its unread messages there are discarded;
   * when no channel with the user is left open, the session closes. False if the channel was not open
   * (sending or receiving on it opens it).
   */
  closeChannelWithUser(identity: NetworkingIdentity, channel: number): boolean {
    const s = this.#find(identity);
    if (!s || !s.channels.delete(channel)) return false;
    this.#purge(s, channel);
    if (s.channels.size === 0) this.#destroy(s, NetworkingConnectionEnd.SESSION_CLOSED, 'Last channel closed');
    return true;
  }

  /** The session's state (`GetSessionConnectionInfo`), with the connection and status fields when asked for. State 0 if there is no session. */
  getSessionConnectionInfo(identity: NetworkingIdentity, getConnection = false, getStatus = false): SessionConnectionInfo {
    const s = this.#find(identity);
    if (!s) return { state: ConnectionState.None };
    const ep = this.#endpoint;
    const now = this.#clock();
    let state: number = ConnectionState.None;
    let endReason = 0;
    let endDebug = '';
    if (s.cid !== 0) {
      state = ep.state(s.cid);
      const end = ep.endInfo(s.cid);
      endReason = end?.reason ?? 0;
      endDebug = end?.debug ?? '';
    } else if (s.finding) state = ConnectionState.FindingRoute;
    else if (s.awaitPeerUntilUs !== 0) state = ConnectionState.Connecting;
    else if (s.failure) {
      state = s.failure.state;
      endReason = s.failure.reason;
      endDebug = s.failure.debug;
    }
    let info: SessionConnectionInfo = { state };
    if (getConnection) {
      let remote = '';
      if (s.vaddr) {
        const via = s.vaddr.address === 'relay' ? this.#relay?.pathRelay(s.vaddr) : s.vaddr;
        remote = via ? addressKey(via) : '';
      }
      info = {
        ...info,
        identity: s.identity,
        userData: 0,
        listenSocket: 0,
        remoteAddress: remote,
        remotePop: 0,
        popRelay: 0,
        connectionState: state,
        endReason,
        endDebug,
        debugDescription: `Messages session with ${s.key}${s.cid ? ` (#${s.cid})` : ''}`,
        infoFlags: s.cid ? (ep.peerInfo(s.cid)?.flags ?? 0) : 0,
      };
    }
    if (getStatus) {
      const st = s.cid ? ep.status(now, s.cid) : null;
      info = {
        ...info,
        ping: st?.ping ?? -1,
        localQuality: st?.connectionQualityLocal ?? -1,
        remoteQuality: st?.connectionQualityRemote ?? -1,
        packetsOutPerSecond: st?.outPacketsPerSec ?? 0,
        bytesOutPerSecond: st?.outBytesPerSec ?? 0,
        packetsInPerSecond: st?.inPacketsPerSec ?? 0,
        bytesInPerSecond: st?.inBytesPerSec ?? 0,
        sendRate: st?.sendRateBytesPerSec ?? 0,
        pendingUnreliable: st?.pendingUnreliable ?? 0,
        pendingReliable: (st?.pendingReliable ?? 0) + s.outboxBytes,
        sendUnacknowledgedReliable: st?.sentUnackedReliable ?? 0,
        queueTime: st?.queueTimeUs ?? 0,
      };
    }
    return info;
  }

  /** Fires the queued `sessionRequest` and `sessionFailed` events (GodotSteam's `run_callbacks`). */
  runCallbacks(): void {
    for (let e = this.#events.shift(); e !== undefined; e = this.#events.shift()) {
      if (e.type === 'request') for (const fn of this.#listeners.of('sessionRequest')) fn(e.identity);
      else for (const fn of this.#listeners.of('sessionFailed')) fn(e.info);
    }
  }

  /** `sessionRequest(identity)` (network_messages_session_request) or `sessionFailed(info)` (network_messages_session_failed). */
  on(event: 'sessionRequest', fn: SessionRequestListener): this;
  on(event: 'sessionFailed', fn: SessionFailedListener): this;
  on(event: 'sessionRequest' | 'sessionFailed', fn: SessionRequestListener | SessionFailedListener): this {
    this.#listeners.on(event, fn as never);
    return this;
  }

  off(event: 'sessionRequest' | 'sessionFailed', fn: SessionRequestListener | SessionFailedListener): this {
    this.#listeners.off(event, fn as never);
    return this;
  }

  // ---------------------------------------------------------------- netlane extras

  /** This peer's id (derived from its key): what others pass to `sendMessageToUser`. */
  getIdentity(): bigint {
    return this.#peerId;
  }

  /** The UDP address direct peers reach this one at (`ip:` identities), or null without a direct socket. */
  get localAddress(): SocketAddress | null {
    return this.#udp?.local ?? null;
  }

  /** This peer's route through the relays, or null (no relays, or no relay session yet). */
  get route(): string | null {
    return this.#relay?.route ?? null;
  }

  /** Whether this peer's id is registered in the directory of every relay in its route. */
  get registered(): boolean {
    return this.#relay?.registered ?? false;
  }

  /** The relay client, or null without relays. */
  get relay(): RelayClient | null {
    return this.#relay;
  }

  getStats(): NetworkingMessagesStats {
    const fakeLost = this.#driver.fakeSend.stats.lost + this.#driver.fakeRecv.stats.lost;
    return { ...this.#stats, fakeLost, relay: this.#relay ? { ...this.#relay.stats } : null, endpoint: { ...this.#endpoint.stats } };
  }

  /** Closes every session and the sockets. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const now = this.#clock();
    for (const s of this.#sessions.values()) if (s.cid !== 0) this.#endpoint.close(now, s.cid, 1000, 'Shutting down', false);
    this.#driver.service();
    this.#driver.close();
  }

  // ---------------------------------------------------------------- sessions

  #resolve(identity: NetworkingIdentity): { key: string; identity: NetworkingIdentity; peerId: bigint | null; direct: SocketAddress | null } | null {
    if (typeof identity === 'bigint') return identity > 0n && identity < 1n << 64n ? { key: `id:${identity}`, identity, peerId: identity, direct: null } : null;
    if (typeof identity !== 'string') throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'identity must be a bigint peer id or an identity string');
    let parsed;
    try {
      parsed = parseIdentity(identity);
    } catch {
      return null;
    }
    if (parsed.kind === 'id') return { key: `id:${parsed.id}`, identity: parsed.id, peerId: parsed.id, direct: null };
    const key = identityToString(parsed);
    if (parsed.kind === 'ip') return { key, identity: key, peerId: null, direct: { address: parsed.address, port: parsed.port } };
    return { key, identity: key, peerId: null, direct: null };
  }

  #find(identity: NetworkingIdentity): Session | null {
    const who = this.#resolve(identity);
    return who ? (this.#sessions.get(who.key) ?? null) : null;
  }

  #newSession(key: string, identity: NetworkingIdentity, peerId: bigint | null, direct: SocketAddress | null): Session {
    const s: Session = {
      key,
      identity,
      peerId,
      direct,
      cid: 0,
      incoming: false,
      accepted: false,
      connected: false,
      everConnected: false,
      finding: false,
      lookupInFlight: false,
      nextLookupUs: 0,
      findDeadlineUs: 0,
      lastMiss: 'unreachable',
      attempt: 0,
      vaddr: null,
      route: null,
      outbox: [],
      outboxBytes: 0,
      channels: new Set(),
      lastUsedUs: this.#clock(),
      failure: null,
      awaitPeerUntilUs: 0,
      requestPostedUs: 0,
      laneCount: 1,
    };
    this.#sessions.set(key, s);
    return s;
  }

  /** Starts a connection: directly to an `ip` identity, or by looking a peer id up first (FindingRoute). */
  #start(s: Session, now: number): void {
    s.attempt++;
    s.lastMiss = 'unreachable';
    if (s.direct) {
      this.#dial(s, now, s.direct);
      return;
    }
    s.finding = true;
    s.findDeadlineUs = now + this.#timeoutInitialUs;
    s.nextLookupUs = now;
    this.#lookup(s, now);
  }

  #lookup(s: Session, now: number): void {
    const relay = this.#relay;
    if (!relay || s.peerId === null || s.lookupInFlight) return;
    s.lookupInFlight = true;
    s.nextLookupUs = now + LOOKUP_RETRY_US;
    this.#stats.lookups++;
    const attempt = s.attempt;
    relay.lookup(s.peerId, (r) => this.#found(s, attempt, r));
  }

  #found(s: Session, attempt: number, r: LookupResult): void {
    s.lookupInFlight = false;
    if (this.#closed || this.#sessions.get(s.key) !== s || s.attempt !== attempt || !s.finding || s.cid !== 0) return;
    const now = this.#clock();
    if (r.ok) {
      s.finding = false;
      s.route = r.parsed;
      this.#dial(s, now, (this.#relay as RelayClient).openPath(r.parsed));
      return;
    }
    // The peer may not have registered yet, or our relay session may not be up yet: retry until TimeoutInitial.
    if (r.why !== 'unreachable' || s.lastMiss === 'unreachable') s.lastMiss = r.why;
    if (now < s.findDeadlineUs) return;
    const E = NetworkingConnectionEnd;
    if (r.why === 'notFound') this.#fail(s, ConnectionState.ProblemDetectedLocally, E.CONNECTION_END_REMOTE_NOT_LOGGED_IN, `peer id ${s.peerId} is not in the relays' directory`);
    else if (r.why === 'noRelay') this.#fail(s, ConnectionState.ProblemDetectedLocally, E.CONNECTION_END_LOCAL_MANY_RELAY_CONNECTIVITY, 'no relay session is open');
    else this.#fail(s, ConnectionState.ProblemDetectedLocally, E.CONNECTION_END_MISC_RELAY_CONNECTIVITY, 'no relay answered the directory lookup');
  }

  #dial(s: Session, now: number, vaddr: SocketAddress): void {
    s.vaddr = vaddr;
    s.cid = this.#endpoint.connect(now, vaddr);
    s.incoming = false;
    s.accepted = true;
    s.connected = false;
    this.#byCid.set(s.cid, s);
    this.#driver.kick();
  }

  #accept(s: Session, now: number): void {
    this.#endpoint.accept(now, s.cid);
    s.accepted = true;
    s.lastUsedUs = now;
    this.#stats.sessionsAccepted++;
    this.#driver.kick();
    // The peer dialled us: learn its route too, so that this side can re-link if the peer's relay fails.
    const relay = this.#relay;
    if (relay && !s.route && s.peerId !== null && s.vaddr?.address === 'relay') {
      relay.lookup(s.peerId, (r) => {
        if (r.ok && !s.route && s.vaddr?.address === 'relay' && this.#sessions.get(s.key) === s) {
          s.route = r.parsed;
          relay.updatePath(s.vaddr, r.parsed);
        }
      });
    }
  }

  /** The session failed: it keeps the failure (sends answer NoConnection) and `sessionFailed` is posted. Queued messages are dropped. */
  #fail(s: Session, state: number, reason: number, debug: string): void {
    if (s.cid !== 0) this.#unlink(s, reason, debug);
    s.finding = false;
    s.failure = { state, reason, debug };
    s.outbox = [];
    s.outboxBytes = 0;
    this.#stats.sessionsFailed++;
    this.#events.push({ type: 'failed', info: { reason, identity: s.identity, state, debugMessage: debug } });
  }

  /** Detaches and closes the session's connection (the messages it already received are taken first). */
  #unlink(s: Session, reason: number, debug: string): void {
    const cid = s.cid;
    if (cid === 0) return;
    const vaddr = s.vaddr;
    s.cid = 0;
    s.vaddr = null;
    s.connected = false;
    s.incoming = false;
    s.accepted = false;
    const now = this.#clock();
    this.#pullFrom(s, cid, Infinity, now);
    this.#endpoint.close(now, cid, reason, debug, false);
    this.#byCid.delete(cid);
    this.#readable.delete(cid);
    // The relay path goes a little later, so that the close leaves on it first; crossing dials and a quick
    // reconnect share one path, so it stays while a connection uses it.
    if (vaddr && vaddr.address === 'relay') this.#relay?.closePathLater(vaddr, () => pathInUse(this.#endpoint, this.#byCid.keys(), vaddr));
    this.#driver.kick();
  }

  /** Ends a session: its connection closes with `reason`, its unread messages go. No callback. */
  #destroy(s: Session, reason: number, debug: string): void {
    if (s.cid !== 0) this.#unlink(s, reason, debug);
    for (const ch of [...this.#channels.keys()]) this.#purge(s, ch);
    this.#sessions.delete(s.key);
  }

  /** Drops a session's unread messages on one channel. */
  #purge(s: Session, channel: number): void {
    const q = this.#channels.get(channel);
    if (!q) return;
    const kept = new Deque<NetworkingMessagesMessage>(q.length);
    for (let m = q.shift(); m !== undefined; m = q.shift()) {
      if (m.identity !== s.identity) kept.push(m);
      else this.#stats.queuedMessages--;
    }
    this.#channels.set(channel, kept);
  }

  // ---------------------------------------------------------------- sending

  /** One message on the connection: on its channel's lane, or on lane 0 with a channel header. */
  #send(s: Session, now: number, channel: number, data: Uint8Array, flags: number): number {
    const ep = this.#endpoint;
    if (channel >= 0 && channel < LANE_CHANNELS) {
      const lane = channel + 1;
      s.laneCount = ensureLane(ep, s.cid, lane, s.laneCount);
      return ep.send(now, s.cid, data, flags, lane);
    }
    const wide = new Uint8Array(5 + data.length);
    wide[0] = InBand.ChannelMessage;
    new DataView(wide.buffer).setInt32(1, channel, true);
    wide.set(data, 5);
    return ep.send(now, s.cid, wide, flags, 0);
  }

  /** Moves queued messages onto a connected session's connection, as far as its send buffer takes them. */
  #write(s: Session, now: number): void {
    if (!s.connected || s.outbox.length === 0) return;
    let i = 0;
    for (; i < s.outbox.length; i++) {
      const m = s.outbox[i] as Outgoing;
      const r = this.#send(s, now, m.channel, m.data, m.flags);
      if (r === -Result.LimitExceeded) break; // the rest waits for room
      s.outboxBytes -= m.data.length;
    }
    s.outbox = i === s.outbox.length ? [] : s.outbox.slice(i);
    this.#endpoint.flush(now, s.cid);
    this.#driver.kick();
  }

  #ownRouteChanged(route: string): void {
    const now = this.#clock();
    const msg = routeMessage(route);
    for (const s of this.#sessions.values()) {
      if (s.connected && s.vaddr?.address === 'relay') {
        this.#endpoint.send(now, s.cid, msg, SendFlags.Reliable, 0);
        this.#endpoint.flush(now, s.cid);
      }
      if (s.finding) s.nextLookupUs = now; // the relay session is up: look again now
    }
    this.#driver.kick();
  }

  // ---------------------------------------------------------------- receiving

  /** After every service pass of the driver: connection events, then received messages. */
  #serviced(): void {
    const ep = this.#endpoint;
    const now = this.#clock();
    for (let e = ep.pollEvent(); e; e = ep.pollEvent()) {
      if (e.type !== 'connectionStatusChanged') continue;
      const cid = e.connection;
      if (e.oldState === ConnectionState.None && e.state === ConnectionState.Connecting && !this.#byCid.has(cid)) {
        this.#incoming(cid, now);
        continue;
      }
      const s = this.#byCid.get(cid);
      if (!s) {
        if (e.state === ConnectionState.ClosedByPeer || e.state === ConnectionState.ProblemDetectedLocally) ep.close(now, cid, 0, '', false);
        continue;
      }
      if (e.state === ConnectionState.Connected) this.#connected(s, now);
      else if (e.state === ConnectionState.ClosedByPeer || e.state === ConnectionState.ProblemDetectedLocally) this.#ended(s, e.state, now);
    }
    for (let cid = ep.pollReadable(); cid !== null; cid = ep.pollReadable()) this.#readable.add(cid);
    if (this.#readable.size > 0) this.#pull(now);
  }

  #connected(s: Session, now: number): void {
    const ep = this.#endpoint;
    const got = ep.peerInfo(s.cid)?.identity ?? '';
    if (!s.incoming && s.peerId !== null && got !== `id:${s.peerId}`) {
      // Whoever answered is not the holder of this peer id's key (a relay in the middle, a stale route).
      this.#stats.identityMismatches++;
      this.#fail(s, ConnectionState.ProblemDetectedLocally, NetworkingConnectionEnd.CONNECTION_END_REMOTE_BAD_CERT, `expected id:${s.peerId}, the peer is ${got}`);
      return;
    }
    s.connected = true;
    s.everConnected = true;
    s.lastUsedUs = now;
    s.laneCount = ep.laneCount(s.cid);
    this.#write(s, now);
  }

  /** The session's connection closed or failed. Idle and once connected: quietly (the next send reconnects). Otherwise: sessionFailed. */
  #ended(s: Session, state: number, now: number): void {
    const ep = this.#endpoint;
    const end = ep.endInfo(s.cid) ?? { reason: 0, debug: '' };
    const st = ep.status(now, s.cid);
    const idle = s.outbox.length === 0 && (st === null || (st.pendingReliable === 0 && st.sentUnackedReliable === 0));
    if (s.incoming && !s.accepted) {
      // A request never accepted: dropped silently (the requester's side fails).
      this.#unlink(s, 0, '');
      if (s.channels.size === 0) this.#sessions.delete(s.key);
      return;
    }
    if (!s.incoming && !s.connected && end.reason === NetworkingConnectionEnd.SESSION_DUPLICATE) {
      // We dialled as the peer did and the peer kept its own connection: the session waits for it, messages kept.
      this.#unlink(s, end.reason, end.debug);
      s.awaitPeerUntilUs = now + this.#timeoutInitialUs;
      return;
    }
    if (s.everConnected && idle) {
      this.#stats.quietCloses++;
      this.#unlink(s, end.reason, end.debug);
      return;
    }
    this.#fail(s, state, end.reason, end.debug);
  }

  #incoming(cid: number, now: number): void {
    const ep = this.#endpoint;
    const idText = ep.peerInfo(cid)?.identity ?? '';
    const remote = ep.remoteAddress(cid);
    const certId = peerIdOf(idText);
    if (!remote || idText === '' || certId === this.#peerId) {
      ep.close(now, cid, NetworkingConnectionEnd.CONNECTION_END_MISC_GENERIC, 'Not a session peer', false);
      return;
    }
    const relayed = remote.address === 'relay';
    // Relayed peers are known by their authenticated identity; direct ones by their address (what a reply dials).
    const key = relayed ? (certId !== null ? `id:${certId}` : idText) : identityToString({ kind: 'ip', address: remote.address, port: remote.port });
    let s = this.#sessions.get(key);
    let wanted = false;
    if (s) this.#byCid.set(cid, s); // before the old connection goes: it may share this one's relay path
    if (s && s.cid !== 0) {
      if (!s.incoming && !s.connected) {
        // Both sides sent first: keep the connection the lower peer id made.
        this.#stats.duplicateConnections++;
        if (certId !== null && this.#peerId < certId) {
          this.#byCid.delete(cid);
          ep.close(now, cid, NetworkingConnectionEnd.SESSION_DUPLICATE, 'Duplicate connection', false);
          return;
        }
        this.#unlink(s, NetworkingConnectionEnd.SESSION_DUPLICATE, 'Duplicate connection');
        wanted = true;
      } else this.#unlink(s, 1000, 'Replaced by a new connection'); // the peer started over
    }
    if (!s) s = this.#newSession(key, relayed ? (certId ?? idText) : key, relayed ? certId : null, relayed ? null : remote);
    wanted ||= s.finding || s.outbox.length > 0 || s.awaitPeerUntilUs !== 0;
    s.finding = false;
    s.awaitPeerUntilUs = 0;
    s.failure = null;
    s.cid = cid;
    s.incoming = true;
    s.accepted = false;
    s.connected = false;
    s.vaddr = remote;
    this.#byCid.set(cid, s);
    if (relayed && s.route) this.#relay?.updatePath(remote, s.route);
    if (wanted) this.#accept(s, now);
    else this.#request(s, now);
  }

  #request(s: Session, now: number): void {
    s.requestPostedUs = now;
    this.#stats.sessionRequests++;
    this.#events.push({ type: 'request', identity: s.identity });
  }

  /** Takes received messages off the connections into the channel queues, up to the unread limit. */
  #pull(now: number): void {
    for (const cid of this.#readable) {
      const room = MAX_QUEUED_MESSAGES - this.#stats.queuedMessages;
      if (room <= 0) return; // the application is behind: the connections hold the rest (and their peers wait)
      const s = this.#byCid.get(cid);
      if (!s) {
        this.#readable.delete(cid);
        continue;
      }
      if (this.#pullFrom(s, cid, room, now)) this.#readable.delete(cid);
    }
  }

  /** Takes up to `room` messages from one connection; true when it has none left. */
  #pullFrom(s: Session, cid: number, room: number, now: number): boolean {
    const ep = this.#endpoint;
    const out = this.#scratch;
    while (room > 0) {
      const want = Math.min(256, room);
      const n = ep.receive(cid, out, want);
      for (let i = 0; i < n; i++) this.#deliver(s, out[i] as ReceivedMessage, now);
      out.length = 0;
      room -= n;
      if (n < want) return true;
      if (this.#byCid.get(cid) !== s) return true; // the connection was closed while delivering
    }
    return false;
  }

  #deliver(s: Session, m: ReceivedMessage, now: number): void {
    let channel: number;
    let data = m.data;
    if (m.lane === 0) {
      const type = data[0];
      if (type === InBand.Route) {
        const r = routeFromMessage(data);
        if (r && s.vaddr?.address === 'relay' && (!s.route || r.revision > s.route.revision)) {
          s.route = r;
          this.#relay?.updatePath(s.vaddr, r);
        }
        return;
      }
      if (type !== InBand.ChannelMessage || data.length < 5) {
        this.#stats.protocolViolations++;
        this.#fail(s, ConnectionState.ProblemDetectedLocally, 4008, 'malformed in-band message');
        return;
      }
      channel = new DataView(data.buffer, data.byteOffset, data.byteLength).getInt32(1, true);
      data = data.subarray(5);
    } else channel = m.lane - 1;
    let q = this.#channels.get(channel);
    if (!q) this.#channels.set(channel, (q = new Deque()));
    q.push(new NetworkingMessagesMessage(data, s.identity, m.receivedAtUs, m.messageNumber, channel, m.reliable ? SendFlags.Reliable : 0));
    this.#stats.queuedMessages++;
    s.channels.add(channel);
    s.lastUsedUs = now;
  }

  // ---------------------------------------------------------------- timers

  /** Every 100 ms: directory lookups to retry, repeated session requests, idle sessions, queued sends. */
  #tick(): void {
    if (this.#closed) return;
    const now = this.#clock();
    for (const s of this.#sessions.values()) {
      if (s.finding) {
        if (!s.lookupInFlight && now >= s.nextLookupUs) this.#lookup(s, now);
        else if (!s.lookupInFlight && now >= s.findDeadlineUs) this.#found(s, s.attempt, { ok: false, why: s.lastMiss });
      }
      if (s.cid !== 0 && s.incoming && !s.accepted && now - s.requestPostedUs >= REQUEST_REPEAT_US) this.#request(s, now);
      if (s.awaitPeerUntilUs !== 0 && s.cid === 0 && now >= s.awaitPeerUntilUs) {
        s.awaitPeerUntilUs = 0;
        this.#fail(s, ConnectionState.ProblemDetectedLocally, NetworkingConnectionEnd.CONNECTION_END_MISC_TIMEOUT, "the peer's connection did not come after a crossing");
      }
      if (s.connected && s.outbox.length > 0) this.#write(s, now);
      if (now - s.lastUsedUs >= this.#idleUs) this.#idle(s, now);
    }
  }

  /** The idle timeout: closes the session (1002, no callback), unless data is still moving (then it waits 1 s more). */
  #idle(s: Session, now: number): void {
    if (s.cid !== 0) {
      const st = this.#endpoint.status(now, s.cid);
      if (s.outbox.length > 0 || (st && (st.pendingReliable > 0 || st.sentUnackedReliable > 0))) {
        s.lastUsedUs = now - this.#idleUs + 1_000_000;
        return;
      }
    }
    this.#stats.idleTimeouts++;
    this.#destroy(s, NetworkingConnectionEnd.SESSION_IDLE_TIMEOUT, 'Session Idle Timeout');
  }
}

/** A relay client and a UDP socket under one endpoint: virtual `relay:N` addresses go to the relay client, the rest to the socket. */
class MuxTransport implements DatagramTransport {
  readonly local: SocketAddress;
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  readonly #relay: RelayClient;
  readonly #udp: UdpSocket;

  constructor(relay: RelayClient, udp: UdpSocket) {
    this.#relay = relay;
    this.#udp = udp;
    this.local = udp.local;
    relay.onMessage = (d, from) => this.onMessage(d, from);
    udp.onMessage = (d, from) => this.onMessage(d, from);
  }

  send(data: Uint8Array, to: SocketAddress): void {
    if (to.address === 'relay') this.#relay.send(data, to);
    else this.#udp.send(data, to);
  }

  keepProcessAlive(yes: boolean): void {
    this.#relay.keepProcessAlive(yes);
    this.#udp.keepProcessAlive(yes);
  }

  close(): void {
    this.#relay.close();
    this.#udp.close();
  }
}
