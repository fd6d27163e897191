/**
 * Public vocabulary of the core: states, end reasons, send flags, result codes, events.
 * Numeric values follow GameNetworkingSockets so that the facades translate 1:1.
 */
import type { Admission } from '../util/admission.js';

/**
 * Connection states (docs/STATE_MACHINE.md). Negative values are internal and
 * appear as `None` through the API.
 */
export const ConnectionState = {
  None: 0,
  Connecting: 1,
  FindingRoute: 2,
  Connected: 3,
  ClosedByPeer: 4,
  ProblemDetectedLocally: 5,
  FinWait: -1,
  Linger: -2,
  Dead: -3,
} as const;
/** One of the {@link ConnectionState} values. */
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** The state the API reports: internal states collapse to `None`. */
export function apiState(s: ConnectionState): ConnectionState {
  return s < 0 ? ConnectionState.None : s;
}

/** Why a connection ended. Ranges as GameNetworkingSockets (`ESteamNetConnectionEnd`). */
export const EndReason = {
  Invalid: 0,
  /** 1000-1999: the application closed the connection normally. */
  App_Generic: 1000,
  App_Max: 1999,
  /** 2000-2999: the application closed it in an unusual way. */
  AppException_Generic: 2000,
  AppException_Max: 2999,
  /** 3000-3999: a problem on this side. */
  Local_OfflineMode: 3001,
  Local_NetworkConfig: 3004,
  /** 4000-4999: a problem with the remote host or between us. */
  Remote_Timeout: 4001,
  Remote_BadCrypt: 4002,
  Remote_BadCert: 4003,
  Remote_BadProtocolVersion: 4006,
  /** netlane: the peer sent an authenticated packet that breaks the protocol. */
  Remote_ProtocolViolation: 4008,
  /** 5000-5999: everything else. */
  Misc_Generic: 5001,
  Misc_InternalError: 5002,
  Misc_Timeout: 5003,
  Misc_PeerSentNoConnection: 5010,
  /**
   * netlane: a listen socket refused a new connection at one of its limits (`Netlane_MaxConnections`,
   * `Netlane_MaxConnectionsPerAddress`, `Netlane_MaxPendingPerAddress`); the debug text names the limit.
   */
  Misc_ConnectionLimit: 5011,
  /** netlane: the peer's relay refused the link to the peer (it did not accept it, or the requester's identity proof failed). */
  Misc_LinkNotAccepted: 5012,
} as const;
/** An end reason: one of {@link EndReason}, or an application's own code in 1000-2999. */
export type EndReason = number;

/**
 * Flags for `send` (GNS `k_nSteamNetworkingSend_*` values, plus netlane's `Latest`).
 * `Latest`: unreliable, and an older Latest message on the lane is never delivered after a newer one.
 */
export const SendFlags = {
  Unreliable: 0,
  NoNagle: 1,
  UnreliableNoNagle: 1,
  NoDelay: 4,
  UnreliableNoDelay: 5,
  Reliable: 8,
  ReliableNoNagle: 9,
  Latest: 64,
} as const;

/** Result codes (Steam `EResult` values used by GameNetworkingSockets). */
export const Result = {
  OK: 1,
  Fail: 2,
  NoConnection: 3,
  InvalidParam: 8,
  InvalidState: 11,
  LimitExceeded: 25,
  Ignored: 41,
} as const;
/** One of the {@link Result} codes. */
export type Result = (typeof Result)[keyof typeof Result];

/** A UDP address (or a simulated one). */
export interface SocketAddress {
  readonly address: string;
  readonly port: number;
}

/** Address equality by value: addresses arrive as fresh objects with every datagram. */
export function sameAddress(a: SocketAddress, b: SocketAddress): boolean {
  return a.port === b.port && a.address === b.address;
}

/** A datagram the endpoint wants sent. `data` belongs to the caller. */
export interface Transmit {
  readonly destination: SocketAddress;
  readonly data: Uint8Array;
  /** Bytes that go in front of `data` (a relay hop header), gathered by the socket instead of copied. */
  readonly header?: Uint8Array;
}

/**
 * The sans-IO contract every protocol engine of netlane keeps (an `Endpoint`, a `PeerHost`, a relay
 * node's runner): inputs `handle*(now, ...)`, outputs drained with `poll*` after every input, time as
 * an argument in integer µs. One io driver runs it with one timer, at `pollTimeout(now)`.
 */
export interface SansIo {
  handleDatagram(now: number, from: SocketAddress, data: Uint8Array): void;
  /** Fires whatever is due at `now`; calling it early is harmless. */
  handleTimeout(now: number): void;
  pollTransmit(now: number): Transmit | null;
  /** Absolute time (µs) of the next `handleTimeout`, or null if nothing is pending. */
  pollTimeout(now: number): number | null;
  /** The local address changed (a new port, as a NAT rebinding): tell whoever must validate it. */
  handleRebind?(now: number): void;
  /**
   * How an io driver may treat a datagram, from a cheap look at its first bytes (see {@link Admission}):
   * established traffic it hands to `handleDatagram` at once; unauthenticated input it may defer to a
   * bounded, budgeted queue and shed under load. Without this method every datagram is handled at once.
   */
  admission?(data: Uint8Array, from: SocketAddress): Admission;
}

/** A message delivered to the application. */
export interface ReceivedMessage {
  /** Handle of the connection it arrived on. */
  readonly connection: number;
  readonly lane: number;
  /** Per-lane message number assigned by the sender (shared by reliable and unreliable messages). */
  readonly messageNumber: number;
  readonly reliable: boolean;
  readonly data: Uint8Array;
  /** When the core delivered it (virtual or real microseconds). */
  readonly receivedAtUs: number;
}

/** Output events, drained with `Endpoint.pollEvent()`. */
export type EndpointEvent = ConnectionStatusChangedEvent | ConnectionWarningEvent;

/** Something the application should know about a connection that is not a state change (for example an unauthenticated peer allowed with `IP_AllowWithoutAuth` = 1). */
export interface ConnectionWarningEvent {
  readonly type: 'warning';
  readonly connection: number;
  readonly message: string;
}

/**
 * A connection's API-visible state changed. A new incoming connection appears as a change from
 * `None` to `Connecting`; the application answers with `accept` or `close`.
 */
export interface ConnectionStatusChangedEvent {
  readonly type: 'connectionStatusChanged';
  readonly connection: number;
  readonly oldState: ConnectionState;
  readonly state: ConnectionState;
  readonly remote: SocketAddress;
  readonly endReason: EndReason;
  readonly endDebug: string;
}
