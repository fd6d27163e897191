import { US_PER_S } from './timers.js';

/** Real-time status of a connection (GNS `SteamNetConnectionRealTimeStatus_t`, plus netlane extras). */
export interface ConnectionStatus {
  state: number;
  /** Smoothed RTT in ms; -1 before the first sample. */
  ping: number;
  /** RTT detail, microseconds. */
  rttSmoothedUs: number;
  rttVarianceUs: number;
  rttMinUs: number;
  /** Share of the peer's packets that arrived, last interval (0..1); -1 unknown. */
  connectionQualityLocal: number;
  /** The same, as the peer reports it about our packets; -1 unknown. */
  connectionQualityRemote: number;
  outPacketsPerSec: number;
  outBytesPerSec: number;
  inPacketsPerSec: number;
  inBytesPerSec: number;
  /** Current pacing rate, bytes per second. */
  sendRateBytesPerSec: number;
  /** Congestion window and bytes in flight. */
  cwndBytes: number;
  bytesInFlight: number;
  /** Unsent bytes (unreliable; reliable including retransmissions). */
  pendingUnreliable: number;
  pendingReliable: number;
  sentUnackedReliable: number;
  /** Estimated µs before a message queued now would be sent. */
  queueTimeUs: number;
  /** What `send` may add now without waiting (window and pacer less what is queued). */
  sendBudgetBytes: number;
  // Lifetime counters.
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Packets declared lost (by RACK or a probe's ack); `packetsSpuriouslyRetransmitted` of them were only late. */
  packetsLost: number;
  /**
   * Packets with reliable data declared lost and acknowledged afterwards: they had been reordered or
   * delayed, not lost, and their data was (or would have been) retransmitted for nothing.
   */
  packetsSpuriouslyRetransmitted: number;
  retransmittedBytes: number;
  duplicatePackets: number;
  /** Packets that failed authentication (dropped, counted). */
  badPackets: number;
  /** Times the connection moved to a new peer address after validating it (migration: NAT rebinding, another relay link). */
  pathChanges: number;
  /** PATH_CHALLENGEs sent to peer addresses under validation. */
  pathChallengesSent: number;
  /** PATH_RESPONSEs sent: the peer validating our address. */
  pathResponsesSent: number;
  /** Validations abandoned: no answer from the address in time (a spoofed or replayed packet, a dead path), or a newer address replaced it. */
  pathValidationsFailed: number;
  /** Packets not accepted because receive buffers were full (left unacked). */
  refusedPackets: number;
  messagesSent: number;
  messagesReceived: number;
  /** Unreliable messages dropped before sending (NoDelay, closing). */
  unreliableDroppedSend: number;
  /** Unreliable messages dropped on receive (incomplete, stale Latest, queue full). */
  unreliableDroppedRecv: number;
  /** Key updates this side has made (send direction). */
  keyUpdates: number;
}

/** Per-lane status (GNS `SteamNetConnectionRealTimeLaneStatus_t`). */
export interface LaneStatus {
  pendingUnreliable: number;
  pendingReliable: number;
  sentUnackedReliable: number;
  queueTimeUs: number;
}

/** Rolling per-second rates over fixed intervals. */
export class RateMeter {
  #intervalStartUs = 0;
  #packets = 0;
  #bytes = 0;
  packetsPerSec = 0;
  bytesPerSec = 0;

  add(bytes: number): void {
    this.#packets++;
    this.#bytes += bytes;
  }

  /** Packets counted in the interval so far. */
  get packets(): number {
    return this.#packets;
  }

  /** Closes the interval if `intervalUs` passed. Returns true when it did. */
  roll(now: number, intervalUs: number): boolean {
    const dt = now - this.#intervalStartUs;
    if (dt < intervalUs) return false;
    this.packetsPerSec = Math.round((this.#packets * US_PER_S) / dt);
    this.bytesPerSec = Math.round((this.#bytes * US_PER_S) / dt);
    this.#packets = 0;
    this.#bytes = 0;
    this.#intervalStartUs = now;
    return true;
  }
}
