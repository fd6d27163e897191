import type { CongestionController } from './congestion.js';
import { queueTimeUs, type LaneScheduler } from './lane-scheduler.js';
import type { Recovery } from './recovery.js';
import { RateMeter, type ConnectionStatus, type LaneStatus } from './stats.js';
import { US_PER_MS } from './timers.js';
import { ConnectionState as S, apiState, type ConnectionState } from './types.js';

/** Stats interval: rates and quality are recomputed, and a STATS frame is sent, this often. */
export const STATS_INTERVAL_US = 1_000_000;
/** Connection quality travels in STATS frames as thousandths. */
export const QUALITY_SCALE = 1000;
/** What the status (and the STATS frame, for quality) reports for a value not measured yet. */
export const UNMEASURED = -1;
/**
 * Fewer packets expected than this in an interval (counted from the packet after the largest one of the
 * previous interval) and the interval's quality is not measured: a share of one or two packets says nothing.
 */
export const MIN_QUALITY_PACKETS = 8;
/** A meter closes its interval whenever the stats timer asks, however short the interval was. */
const METER_MIN_INTERVAL_US = 1;

/** The lifetime counters of a connection, as its status reports them; the modules that count write them where the connection keeps them. */
export type ConnectionCounters = Pick<
  ConnectionStatus,
  'packetsSent' | 'packetsReceived' | 'bytesSent' | 'bytesReceived' | 'retransmittedBytes' | 'duplicatePackets' | 'badPackets' | 'pathChanges' | 'pathChallengesSent' | 'pathResponsesSent' | 'pathValidationsFailed' | 'refusedPackets' | 'messagesSent' | 'messagesReceived' | 'unreliableDroppedSend'
>;

/** What a status report reads from its connection besides the counters. */
export interface StatusSource extends Readonly<ConnectionCounters> {
  readonly state: ConnectionState;
  readonly recovery: Recovery;
  readonly cc: CongestionController;
}

/**
 * The per-interval view of the link: send and receive rates, the share of the peer's packets that
 * arrived (local quality), the peer's view of ours (remote quality, from its STATS frames), and whether
 * our STATS frame is owed.
 */
export class IntervalStats {
  readonly outMeter = new RateMeter();
  readonly inMeter = new RateMeter();
  /** Share of the peer's packets that arrived last interval (0..1), or {@link UNMEASURED}. */
  qualityLocal = UNMEASURED;
  /** The peer's `qualityLocal` about our packets, from its last STATS frame. */
  qualityRemote = UNMEASURED;
  /** A STATS frame should ride on the next packet that carries an ACK. */
  reportDue = false;
  /** The first packet number the interval expects: the one after the previous interval's largest. */
  #fromPn = 0;
  /** Packets of this interval received with a number at or above {@link #fromPn}. */
  #counted = 0;
  #packets = 0;

  /** Whether a packet came in or went out in this interval (an idle connection's interval waits to be closed lazily). */
  get active(): boolean {
    return this.#packets > 0 || this.outMeter.packets > 0;
  }

  /** An authenticated packet `pn` of `bytes` arrived. */
  onReceived(pn: number, bytes: number): void {
    this.inMeter.add(bytes);
    this.#packets++;
    // A packet from before the interval (reordered) was expected, and counted missing, by the previous one.
    if (pn >= this.#fromPn) this.#counted++;
  }

  /** Closes the interval: `largestPn` is the newest packet number received so far. */
  roll(now: number, largestPn: number): void {
    this.outMeter.roll(now, METER_MIN_INTERVAL_US);
    this.inMeter.roll(now, METER_MIN_INTERVAL_US);
    // Counted from the packet after the previous interval's largest, so that packets lost at the start of
    // the interval (or the very first ones) are missing from the share rather than outside it.
    const expected = largestPn - this.#fromPn + 1;
    this.qualityLocal = expected < MIN_QUALITY_PACKETS ? UNMEASURED : Math.min(1, this.#counted / expected);
    if (largestPn >= this.#fromPn) this.#fromPn = largestPn + 1;
    this.#counted = 0;
    this.#packets = 0;
    this.reportDue = true;
  }

  /** Our quality as the STATS frame carries it. */
  wireQuality(): number {
    return this.qualityLocal < 0 ? UNMEASURED : Math.round(this.qualityLocal * QUALITY_SCALE);
  }

  /** The peer's STATS frame arrived with `quality` in wire units. */
  onPeerStats(quality: number): void {
    this.qualityRemote = quality < 0 ? UNMEASURED : quality / QUALITY_SCALE;
  }
}

/**
 * The real-time status of a connection. `droppedRecv` and `keyUpdates` come from the receive path and
 * the keys; `sendBudget` is what `Connection.sendBudget` says now.
 */
export function connectionStatus(src: StatusSource, lanes: LaneScheduler, interval: IntervalStats, droppedRecv: number, sendBudget: number, keyUpdates: number): ConnectionStatus {
  let pendingReliable = 0;
  let pendingUnreliable = 0;
  let unacked = 0;
  for (const lane of lanes.lanes) {
    pendingReliable += lane.pendingNewReliableBytes + lane.retransmitBytes();
    pendingUnreliable += lane.pendingUnreliableBytes;
    unacked += lane.sentUnackedBytes();
  }
  const rtt = src.recovery.rtt;
  const cc = src.cc;
  return {
    state: apiState(src.state),
    ping: rtt.hasSample ? Math.round(rtt.smoothedUs / US_PER_MS) : UNMEASURED,
    rttSmoothedUs: rtt.smoothedUs,
    rttVarianceUs: rtt.varianceUs,
    rttMinUs: Number.isFinite(rtt.minUs) ? rtt.minUs : UNMEASURED,
    connectionQualityLocal: interval.qualityLocal,
    connectionQualityRemote: interval.qualityRemote,
    outPacketsPerSec: interval.outMeter.packetsPerSec,
    outBytesPerSec: interval.outMeter.bytesPerSec,
    inPacketsPerSec: interval.inMeter.packetsPerSec,
    inBytesPerSec: interval.inMeter.bytesPerSec,
    sendRateBytesPerSec: Math.round(cc.pacingRate),
    cwndBytes: Math.round(cc.cwnd),
    bytesInFlight: cc.bytesInFlight,
    pendingUnreliable,
    pendingReliable,
    sentUnackedReliable: unacked,
    queueTimeUs: src.state === S.Connected ? queueTimeUs(pendingReliable + pendingUnreliable, cc.pacingRate) : Number.MAX_SAFE_INTEGER,
    sendBudgetBytes: sendBudget,
    packetsSent: src.packetsSent,
    packetsReceived: src.packetsReceived,
    bytesSent: src.bytesSent,
    bytesReceived: src.bytesReceived,
    packetsLost: src.recovery.packetsLost,
    packetsSpuriouslyRetransmitted: src.recovery.packetsSpuriouslyRetransmitted,
    retransmittedBytes: src.retransmittedBytes,
    duplicatePackets: src.duplicatePackets,
    badPackets: src.badPackets,
    pathChanges: src.pathChanges,
    pathChallengesSent: src.pathChallengesSent,
    pathResponsesSent: src.pathResponsesSent,
    pathValidationsFailed: src.pathValidationsFailed,
    refusedPackets: src.refusedPackets,
    messagesSent: src.messagesSent,
    messagesReceived: src.messagesReceived,
    unreliableDroppedSend: src.unreliableDroppedSend,
    unreliableDroppedRecv: droppedRecv,
    keyUpdates,
  };
}

/** The status of lane `index`, or null when there is no such lane. */
export function laneStatus(lanes: LaneScheduler, index: number, pacingRate: number): LaneStatus | null {
  const l = lanes.lanes[index];
  if (!l) return null;
  const pendingReliable = l.pendingNewReliableBytes + l.retransmitBytes();
  // Queue time under weighted sharing: this lane gets weight / (sum of busy weights in its class).
  let classWeight = 0;
  let higherPending = 0;
  for (const o of lanes.lanes) {
    const busy = o.items.length > 0 || !o.retransmit.isEmpty() || o === l;
    if (!busy) continue;
    if (o.priority === l.priority) classWeight += o.weight;
    else if (o.priority < l.priority) higherPending += o.pendingNewReliableBytes + o.pendingUnreliableBytes;
  }
  const share = l.weight / Math.max(1, classWeight);
  const mine = pendingReliable + l.pendingUnreliableBytes;
  return {
    pendingUnreliable: l.pendingUnreliableBytes,
    pendingReliable,
    sentUnackedReliable: l.sentUnackedBytes(),
    queueTimeUs: queueTimeUs(higherPending + mine / share, pacingRate),
  };
}
