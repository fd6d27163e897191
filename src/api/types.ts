import type { ConnectionState, SocketAddress } from '../core/types.js';

/** Levels of debug output (`ESteamNetworkingSocketsDebugOutputType`): a callback gets messages at or below its level. */
export const DebugOutputType = { None: 0, Bug: 1, Error: 2, Important: 3, Warning: 4, Msg: 5, Verbose: 6, Debug: 7, Everything: 8 } as const;
export type DebugOutputType = (typeof DebugOutputType)[keyof typeof DebugOutputType];

/** Receives debug output: `(level, message)`. */
export type DebugOutputFunction = (level: DebugOutputType, message: string) => void;

/** The invalid handle (`k_HSteamNetConnection_Invalid`, `k_HSteamListenSocket_Invalid`, `k_HSteamNetPollGroup_Invalid`). */
export const INVALID_HANDLE = 0;

/** Limits (`Library.maxCloseMessageLength`, `Library.maxCloseReasonValue`, `Library.maxMessageSize`). */
export const Limits = {
  /** Longest close debug text, bytes. */
  maxCloseMessageLength: 128,
  /** Largest application close reason. */
  maxCloseReasonValue: 2999,
  /** Largest reliable message, bytes (unreliable: 65,536). */
  maxMessageSize: 524_288,
  /** Most lanes a connection has (`configureConnectionLanes`); lanes are 0 to this - 1. */
  maxLanes: 255,
} as const;

/** `SteamNetConnectionInfo_t`: who a connection is with and how it ended. */
export interface ConnectionInfo {
  /** The peer's identity (`id:...`, `str:...`, `ip:...`), or '' before the handshake has established it. */
  readonly identityRemote: string;
  readonly userData: number;
  /** The listen socket that accepted it, or 0 for a connection we initiated. */
  readonly listenSocket: number;
  readonly addressRemote: SocketAddress;
  readonly state: ConnectionState;
  readonly endReason: number;
  readonly endDebug: string;
  /** A description for logs: handle, name and peer. */
  readonly connectionDescription: string;
  /** `ConnectionInfoFlags`: Unauthenticated (1), Unencrypted (2), LoopbackBuffers (4). */
  readonly flags: number;
}

/** Status callback argument (`SteamNetConnectionStatusChangedCallback_t`). The info is a snapshot from when the change happened. */
export interface StatusChangedInfo {
  readonly connection: number;
  readonly info: ConnectionInfo;
  readonly oldState: ConnectionState;
}

/** A status-changed callback. */
export type StatusChangedCallback = (info: StatusChangedInfo) => void;

/** `SteamNetConnectionRealTimeStatus_t` (the seed's `ConnectionStatus`). */
export interface ConnectionRealTimeStatus {
  readonly state: ConnectionState;
  /** Smoothed round trip, ms; -1 before the first sample. */
  readonly ping: number;
  /** Share of the peer's packets that arrived in the last interval (0..1); -1 unknown. */
  readonly connectionQualityLocal: number;
  /** The same as the peer measures our packets; -1 unknown. */
  readonly connectionQualityRemote: number;
  readonly outPacketsPerSecond: number;
  readonly outBytesPerSecond: number;
  readonly inPacketsPerSecond: number;
  readonly inBytesPerSecond: number;
  /** The rate the congestion controller allows, bytes per second. */
  readonly sendRateBytesPerSecond: number;
  readonly pendingUnreliable: number;
  readonly pendingReliable: number;
  readonly sentUnackedReliable: number;
  /** Estimated µs before a message queued now would be sent. */
  readonly queueTimeUs: number;
}

/** Per-lane status (`SteamNetConnectionRealTimeLaneStatus_t`). */
export interface LaneRealTimeStatus {
  readonly pendingUnreliable: number;
  readonly pendingReliable: number;
  readonly sentUnackedReliable: number;
  readonly queueTimeUs: number;
}

/** A message to send with `sendMessages`. */
export interface OutgoingMessage {
  readonly connection: number;
  readonly data: Uint8Array;
  /** `SendFlags`; default Unreliable. */
  readonly flags?: number;
  readonly lane?: number;
}

/** What `sendMessageToConnection` returns: the result, and on OK the message's number on its lane. */
export interface SendResult {
  readonly result: number;
  readonly messageNumber: number;
}

/** A received message (`SteamNetworkingMessage_t`, the seed's `NetworkingMessage`). */
export class NetworkingMessage {
  /** The payload. It is this message's own memory: keep it as long as you like. */
  readonly data: Uint8Array;
  /** The connection it came on. */
  readonly connection: number;
  /** The sender's identity. */
  readonly identityPeer: string;
  /** The connection's user data when the message was received. */
  readonly connectionUserData: number;
  /** Local time (µs, `time()`) when the message was received. */
  readonly timeReceived: number;
  /** The sender's number for it; numbers increase by one per message on a lane. */
  readonly messageNumber: number;
  /** The lane it came on (GNS `m_idxLane`). */
  readonly lane: number;
  /** `SendFlags.Reliable` for a reliable message, otherwise `SendFlags.Unreliable`. */
  readonly flags: number;

  constructor(data: Uint8Array, connection: number, identityPeer: string, connectionUserData: number, timeReceived: number, messageNumber: number, lane: number, flags: number) {
    this.data = data;
    this.connection = connection;
    this.identityPeer = identityPeer;
    this.connectionUserData = connectionUserData;
    this.timeReceived = timeReceived;
    this.messageNumber = messageNumber;
    this.lane = lane;
    this.flags = flags;
  }

  /** Payload length in bytes (`m_cbSize`, the seed's `length`). */
  get size(): number {
    return this.data.length;
  }

  /** The seed's name for the lane. */
  get channel(): number {
    return this.lane;
  }

  /** Copies the payload into `target` at `offset`; returns the bytes copied. */
  copyTo(target: Uint8Array, offset = 0): number {
    const n = Math.min(this.data.length, target.length - offset);
    target.set(n === this.data.length ? this.data : this.data.subarray(0, n), offset);
    return n;
  }

  /** GNS `Release()` / the seed's `Destroy()`: nothing to free in JavaScript; kept for ported code. */
  release(): void {
    // The garbage collector owns the memory.
  }
}
