import type { EndpointStats } from '../core/endpoint.js';
import type { CryptoProvider, SigningKey } from '../crypto/provider.js';
import type { Clock } from '../io/clock.js';
import type { Runtime } from '../io/runtime.js';
import type { RelayAddress, RelayClientStats } from '../relay/index.js';
import type { ConfigOptions } from './networking-sockets.js';
import type { RelayTuning } from './relayed.js';

// The values and shapes of NetworkingMessages (seeds 002 and 003): end reasons, received messages, the
// session info, options and counters.

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
  /** Where the packets go: the peer's address for an `ip:` session or on a direct path (docs/P2P.md), else the relay's (the peer's IP is not known). */
  readonly remoteAddress?: string;
  readonly remotePop?: number;
  readonly popRelay?: number;
  readonly connectionState?: number;
  readonly endReason?: number;
  readonly endDebug?: string;
  readonly debugDescription?: string;
  /** `ConnectionInfoFlags`: Unauthenticated 1, Unencrypted 2. */
  readonly infoFlags?: number;
  /** The path packets take now: through a relay, on a direct path to the peer (docs/P2P.md), to an `ip:` peer, or none yet. */
  readonly path?: 'relayed' | 'direct' | 'udp' | 'none';
  // With getStatus:
  /** Smoothed round trip of the path in use, ms. */
  readonly ping?: number;
  /** The latest round trip of the direct path, and of the relayed one, ms; -1 unknown or none. */
  readonly pingDirect?: number;
  readonly pingRelayed?: number;
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
  readonly relays?: readonly (string | RelayAddress)[];
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
  /** Wall clock, unix seconds (directory registrations). Default: the runtime's (the system clock). */
  readonly unixSeconds?: () => number;
  /** Sockets, timers and randomness. Default: real UDP; `SimNetwork.runtime(ip)` (netlane/testing) runs it in virtual time. */
  readonly runtime?: Runtime;
  /** Keep the process alive while open. Default false. */
  readonly keepProcessAlive?: boolean;
  /** Configuration of every session's connection, GNS names (`TimeoutInitial`, `FakePacketLoss_Send`, ...). */
  readonly connectionConfig?: ConfigOptions;
  /** Relay client tuning, a tap on every datagram received, and the socket's local IP when there is no `bind`. */
  readonly relayOptions?: RelayTuning & { readonly bindAddress?: string };
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
  /** DIRECT messages (docs/P2P.md) sent, received, and received while direct paths are not allowed here (ignored). */
  directOffersSent: number;
  directOffersReceived: number;
  directOffersIgnored: number;
  /** Received messages not read yet. */
  queuedMessages: number;
  /** Datagrams the fake network conditions dropped (FakePacketLoss_Send / _Recv), both directions. */
  readonly fakeLost: number;
  /** Unauthenticated datagrams from direct peers shed unprocessed under a flood (docs/RUNTIME.md "Under a flood"). */
  readonly datagramsShed: number;
  readonly relay: RelayClientStats | null;
  readonly endpoint: EndpointStats;
}

