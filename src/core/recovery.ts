import { Deque } from '../util/deque.js';
import type { CongestionController, RateSnapshot } from './congestion.js';
import { GRANULARITY_US, RttEstimator } from './rtt.js';
import { MAX_ACK_DELAY_US, RELIABLE_ACK_DELAY_US, UNRELIABLE_ACK_DELAY_US } from './ack-tracker.js';

/**
 * Until reordering has been seen, a packet with this many later packets acknowledged is lost at once
 * (RFC 8985 6.2: the reordering window is zero while no reordering is seen and DupThresh packets are acked).
 */
const PACKET_THRESHOLD = 3;
/** PTO backoff stops doubling here. */
const MAX_PTO_BACKOFF = 6;
/** A spurious loss widens the reordering window for this many recoveries (RFC 8985 6.2 reo_wnd_persist). */
const REO_WND_PERSIST = 16;
/** The reordering window starts at min RTT / this (RFC 8985 6.2). */
const REO_WND_MIN_RTT_DIVISOR = 4;
/** The reordering window's multiplier grows no further (it is bounded by the smoothed RTT anyway). */
const MAX_REO_WND_MULT = 64;
/** A packet declared lost is remembered this many smoothed RTTs, so that a late ack of it shows the loss was spurious. */
const LOST_MEMORY_RTTS = 2;
/** No packet is waited for: `lossTimeUs` and `#recoveryEndPn` when unset. */
const NONE = -1;

/** A sent data packet, kept until acknowledged or declared lost (and a little longer, to see a spurious loss). */
export interface SentPacket extends RateSnapshot {
  pn: number;
  ackEliciting: boolean;
  inFlight: boolean;
  /** It carried a PING: the peer acknowledges it at once. */
  ping: boolean;
  /** It carried a STATS frame: lost, the frame is sent again (with the values of the moment). */
  stats: boolean;
  /** Reliable segments carried: flat triples [lane, offset, length, ...]. */
  readonly segments: number[];
  /** Acknowledged, or no longer tracked: nothing more happens to it. */
  done: boolean;
  /** Declared lost (still waiting for a late ack that would make the loss spurious). */
  lost: boolean;
  lostAtUs: number;
}

/** What recovery tells the connection. */
export interface RecoveryListener {
  onSegmentAcked(lane: number, offset: number, len: number): void;
  onSegmentLost(lane: number, offset: number, len: number): void;
}

/**
 * Sender-side reliability: the sent-packet log, ACK processing, RTT samples, RACK loss detection
 * (RFC 8985: time since a later-sent packet was delivered, with an adaptive reordering window), the
 * tail-loss probe at about 2 smoothed RTTs, then the probe timeout with exponential backoff
 * (RFC 9002 section 6.2). docs/CONGESTION.md describes it.
 */
export class Recovery {
  readonly rtt = new RttEstimator();
  readonly #cc: CongestionController;
  readonly #listener: RecoveryListener;
  readonly #log = new Deque<SentPacket>(256);
  readonly #pool: SentPacket[] = [];
  /** Packet number of the log's first entry. */
  #firstPn = 0;
  nextPn = 0;
  /** A packet with a STATS frame was lost (or, without data, not acknowledged before a later one): the frame is owed again. */
  statsLost = false;
  largestAcked = -1;
  ptoCount = 0;
  #lossTimeUs = Number.POSITIVE_INFINITY;
  #lastAckElicitingUs = 0;
  /** The ack delay the peer may apply to the newest ack-eliciting packet (0 if it carried a PING). */
  #lastAckDelayUs = UNRELIABLE_ACK_DELAY_US;
  ackElicitingInFlight = 0;
  /** Packets numbered below this were sent on a path the connection has left: their acks measure nothing. */
  #pathFirstPn = 0;

  // RACK (RFC 8985): the newest delivered packet's send time and RTT, and the reordering window state.
  #rackXmitUs = 0;
  #rackRttUs = 0;
  /** A packet was acknowledged after a later-sent one: from now on the reordering window applies to every packet. */
  reorderingSeen = false;
  #reoWndMult = 1;
  #reoWndPersist = 0;
  /** The window grows at most once per round trip: until this packet is acked (RFC 8985 RACK.dsack_round). */
  #spuriousRoundPn = NONE;
  /** In recovery until this packet (the newest sent when a loss was declared) is acknowledged. */
  #recoveryEndPn = NONE;

  // Lifetime counters.
  packetsLost = 0;
  bytesLost = 0;
  packetsAcked = 0;
  /** Packets declared lost and acknowledged afterwards (any kind), and those of them that carried reliable data. */
  spuriousLosses = 0;
  packetsSpuriouslyRetransmitted = 0;

  constructor(cc: CongestionController, listener: RecoveryListener) {
    this.#cc = cc;
    this.#listener = listener;
  }

  /** A recycled (or new) record for the next packet; fill it, then call {@link onSent}. */
  allocate(): SentPacket {
    const p = this.#pool.pop();
    if (p) {
      const s = p.segments;
      while (s.length > 0) s.pop(); // not `length = 0`, which drops the array's storage (the next push allocates)
      p.done = false;
      p.lost = false;
      p.ping = false;
      p.pastWindow = false;
      p.stats = false;
      return p;
    }
    return { pn: 0, ackEliciting: false, inFlight: false, ping: false, stats: false, segments: [], done: false, lost: false, lostAtUs: 0, delivered: 0, deliveredTimeUs: 0, firstSentTimeUs: 0, appLimited: false, timeSentUs: 0, size: 0, pastWindow: false };
  }

  onSent(now: number, p: SentPacket): void {
    p.pn = this.nextPn++;
    if (this.#log.length === 0) this.#firstPn = p.pn;
    p.timeSentUs = now;
    // Only packets in flight are paced (RFC 9002 section 7.7). A pure ACK spends no pacer tokens: a receiver of a
    // bulk transfer sends tens of thousands a second, and at a rate that has never had a round-trip sample they
    // once left it seconds of pacing debt, so that its first reply waited behind its own ACKs.
    if (p.inFlight) this.#cc.onPacketSent(now, p.size, p);
    if (p.ackEliciting) {
      this.ackElicitingInFlight++;
      this.#lastAckElicitingUs = now;
      // What the peer's ack tracker does with it (ack-tracker.ts): at once for a PING, soon for reliable data.
      this.#lastAckDelayUs = p.ping ? 0 : p.segments.length > 0 ? RELIABLE_ACK_DELAY_US : UNRELIABLE_ACK_DELAY_US;
    }
    this.#log.push(p);
  }

  #get(pn: number): SentPacket | undefined {
    return this.#log.at(pn - this.#firstPn);
  }

  /**
   * Processes an ACK frame (ranges ascending). Returns false if it acknowledges a packet never sent,
   * which is a protocol violation.
   */
  onAck(now: number, lo: readonly number[], hi: readonly number[], ackDelayUs: number): boolean {
    const largest = hi[hi.length - 1] as number;
    if (largest >= this.nextPn) return false;
    const prevLargest = this.largestAcked;
    let newestAcked: SentPacket | undefined;
    let anyEliciting = false;
    for (let i = lo.length - 1; i >= 0; i--) {
      const a = Math.max(lo[i] as number, this.#firstPn);
      for (let pn = hi[i] as number; pn >= a; pn--) {
        const p = this.#get(pn);
        if (!p || p.done) continue;
        // Delivered after a later-sent packet was: the path reorders (RFC 8985 6.2 RACK.reordering_seen).
        if (pn < prevLargest) this.reorderingSeen = true;
        if (p.lost) {
          this.#spuriousAck(p);
          continue;
        }
        if (!newestAcked) newestAcked = p;
        if (p.ackEliciting) anyEliciting = true;
        this.#ackPacket(now, p);
      }
    }
    if (largest > this.largestAcked) this.largestAcked = largest;
    if (!newestAcked) {
      this.#compact(now);
      return true;
    }
    // RACK: the most recently sent packet delivered so far, and its round trip (ack delay included).
    if (newestAcked.pn === largest && largest > prevLargest) {
      this.#rackXmitUs = newestAcked.timeSentUs;
      this.#rackRttUs = now - newestAcked.timeSentUs;
    }
    if (this.#recoveryEndPn !== NONE && this.largestAcked >= this.#recoveryEndPn) this.#endRecovery();
    if (this.#spuriousRoundPn !== NONE && this.largestAcked >= this.#spuriousRoundPn) this.#spuriousRoundPn = NONE;
    let sample = 0;
    // RTT sample only from the largest acked packet, when it is newly acked and ack-eliciting (RFC 9002 5.1),
    // and was sent on the current path.
    if (newestAcked.pn === largest && anyEliciting && largest >= this.#pathFirstPn) {
      sample = now - newestAcked.timeSentUs;
      this.rtt.update(sample, ackDelayUs, MAX_ACK_DELAY_US);
    }
    this.#detectLosses(now);
    this.ptoCount = 0;
    this.#cc.onAckBatchEnd(now, sample);
    this.#compact(now);
    return true;
  }

  #ackPacket(now: number, p: SentPacket): void {
    p.done = true;
    this.packetsAcked++;
    if (p.inFlight) this.#cc.onPacketAcked(now, p, p.pn >= this.#pathFirstPn);
    if (p.ackEliciting) this.ackElicitingInFlight--;
    const s = p.segments;
    for (let k = 0; k < s.length; k += 3) this.#listener.onSegmentAcked(s[k] as number, s[k + 1] as number, s[k + 2] as number);
  }

  /**
   * A packet declared lost was acknowledged after all: it had only been reordered. Its data is
   * delivered (a retransmission not sent yet is dropped), and the reordering window widens, at most
   * once per round trip, for the next {@link REO_WND_PERSIST} recoveries (RFC 8985 6.2, with the ack
   * of the packet itself in place of a DSACK).
   */
  #spuriousAck(p: SentPacket): void {
    p.done = true;
    this.spuriousLosses++;
    const s = p.segments;
    if (s.length > 0) this.packetsSpuriouslyRetransmitted++;
    for (let k = 0; k < s.length; k += 3) this.#listener.onSegmentAcked(s[k] as number, s[k + 1] as number, s[k + 2] as number);
    if (this.#spuriousRoundPn === NONE) {
      this.#spuriousRoundPn = this.nextPn;
      if (this.#reoWndMult < MAX_REO_WND_MULT) this.#reoWndMult++;
      this.#reoWndPersist = REO_WND_PERSIST;
    }
  }

  #losePacket(now: number, p: SentPacket): void {
    p.lost = true;
    if (p.stats) this.statsLost = true;
    p.lostAtUs = now;
    if (p.inFlight) {
      this.packetsLost++;
      this.bytesLost += p.size;
      this.#cc.onPacketLost(p);
    }
    if (p.ackEliciting) this.ackElicitingInFlight--;
    if (this.#recoveryEndPn === NONE) this.#recoveryEndPn = this.nextPn - 1;
    const s = p.segments;
    for (let k = 0; k < s.length; k += 3) this.#listener.onSegmentLost(s[k] as number, s[k + 1] as number, s[k + 2] as number);
  }

  /** Every packet outstanding when recovery began is acked: one recovery fewer keeps the window wide. */
  #endRecovery(): void {
    this.#recoveryEndPn = NONE;
    if (this.#reoWndPersist > 0 && --this.#reoWndPersist === 0) this.#reoWndMult = 1;
  }

  /**
   * RFC 8985 6.2: the time a packet sent before the newest delivered one is given to arrive out of
   * order. Zero while no reordering was seen and recovery is on or `PACKET_THRESHOLD` later packets are
   * acked; otherwise min RTT / 4 times the multiplier, at most the smoothed RTT.
   */
  reorderWindowUs(pn: number): number {
    if (!this.reorderingSeen && (this.#recoveryEndPn !== NONE || this.largestAcked - pn >= PACKET_THRESHOLD)) return 0;
    const rtt = this.rtt;
    const minRtt = Number.isFinite(rtt.minUs) ? rtt.minUs : rtt.smoothedUs;
    return Math.min(Math.floor((this.#reoWndMult * minRtt) / REO_WND_MIN_RTT_DIVISOR), rtt.smoothedUs);
  }

  /**
   * RACK (RFC 8985 6.2): a packet sent before the newest delivered one is lost once RACK.rtt plus the
   * reordering window have passed since it was sent. Sets the loss timer for those not lost yet.
   */
  #detectLosses(now: number): void {
    this.#lossTimeUs = Number.POSITIVE_INFINITY;
    if (this.largestAcked < 0) return;
    const end = Math.min(this.largestAcked, this.nextPn - 1);
    const rackRtt = this.#rackRttUs;
    for (let pn = this.#firstPn; pn < end; pn++) {
      const p = this.#get(pn);
      if (!p || p.done || p.lost) continue;
      if (!p.inFlight) {
        p.done = true; // nothing to recover in a pure ack, but the STATS frame it may carry
        if (p.stats) this.statsLost = true;
        continue;
      }
      if (p.timeSentUs > this.#rackXmitUs) continue; // sent after the newest delivered packet (same timestamp is earlier)
      const deadline = p.timeSentUs + rackRtt + this.reorderWindowUs(pn);
      if (now >= deadline) this.#losePacket(now, p);
      else if (deadline < this.#lossTimeUs) this.#lossTimeUs = deadline;
    }
  }

  /** Drops settled records from the front: acknowledged ones, and lost ones remembered long enough. */
  #compact(now: number): void {
    const forgetBefore = now - LOST_MEMORY_RTTS * this.rtt.smoothedUs;
    while (this.#log.length > 0) {
      const p = this.#log.peek() as SentPacket;
      if (!p.done && !(p.lost && p.lostAtUs <= forgetBefore)) break;
      p.done = true;
      this.#pool.push(this.#log.shift() as SentPacket);
      this.#firstPn++;
    }
  }

  /** When recovery needs `onTimeout` (loss timer or probe); +Infinity if never. */
  timeoutUs(): number {
    if (this.#lossTimeUs !== Number.POSITIVE_INFINITY) return this.#lossTimeUs;
    if (this.ackElicitingInFlight === 0) return Number.POSITIVE_INFINITY;
    return this.#lastAckElicitingUs + this.probeDelayUs();
  }

  /**
   * The wait before the next probe. The first is a tail-loss probe (RFC 8985 7.2): 2 x smoothed RTT
   * (at least the timer granularity), plus the peer's ack delay when only one packet is in flight and
   * the peer may hold its ack, and never later than the PTO. Each later one waits the PTO (RFC 9002
   * 6.2.1), doubling.
   */
  probeDelayUs(): number {
    const rtt = this.rtt;
    const pto = rtt.ptoUs(this.#lastAckDelayUs);
    if (this.ptoCount > 0) return pto * (1 << Math.min(this.ptoCount - 1, MAX_PTO_BACKOFF));
    const tlp = Math.max(2 * rtt.smoothedUs, GRANULARITY_US) + (this.ackElicitingInFlight === 1 ? this.#lastAckDelayUs : 0);
    return Math.min(tlp, pto);
  }

  /** Current probe timeout including backoff (what other timers scale with). */
  ptoUs(): number {
    return this.rtt.ptoUs(MAX_ACK_DELAY_US) * (1 << Math.min(this.ptoCount, MAX_PTO_BACKOFF));
  }

  /**
   * Fires the loss timer or the probe. Returns true when a probe fired: the caller must send one
   * ack-eliciting probe packet, with new data if any is queued; otherwise it calls {@link queueProbeData}.
   */
  onTimeout(now: number): boolean {
    if (this.#lossTimeUs !== Number.POSITIVE_INFINITY) {
      if (now < this.#lossTimeUs) return false;
      this.#detectLosses(now);
      this.#compact(now);
      return false;
    }
    if (this.ackElicitingInFlight === 0 || now < this.#lastAckElicitingUs + this.probeDelayUs()) return false;
    this.ptoCount++;
    this.#lastAckElicitingUs = now; // the backoff runs from the probe
    return true;
  }

  /**
   * No new data is queued for the probe: reliable data outstanding is queued again. The tail-loss
   * probe takes the newest packet's (the tail is what was lost); a later probe, after a whole PTO
   * without an ack, takes every outstanding packet's, as an RTO does (RFC 8985 7.3): the lanes send it
   * lowest offset first, so the data the receiver waits for goes first, whichever packet carried it.
   */
  queueProbeData(): void {
    const n = this.#log.length;
    const tail = this.ptoCount <= 1;
    for (let k = 0; k < n; k++) {
      const p = this.#log.at(tail ? n - 1 - k : k) as SentPacket;
      if (p.done || p.lost || p.segments.length === 0) continue;
      const s = p.segments;
      for (let j = 0; j < s.length; j += 3) this.#listener.onSegmentLost(s[j] as number, s[j + 1] as number, s[j + 2] as number);
      if (tail) return;
    }
  }

  /**
   * The connection moved to another path. `resetEstimates` (another peer IP): the RTT estimate and the
   * congestion controller start over, and acks of packets sent before now measure nothing. Either way
   * the probe backoff, earned on the old path, is forgotten.
   */
  onPathChange(resetEstimates: boolean): void {
    this.ptoCount = 0;
    if (!resetEstimates) return;
    this.rtt.reset();
    this.#cc.reset();
    this.#pathFirstPn = this.nextPn;
  }

  /**
   * The path everything in flight went on failed (a direct path fell silent): every outstanding packet
   * counts as lost now, so that its reliable data goes again at once on the next path.
   */
  loseInFlight(now: number): void {
    const n = this.#log.length;
    for (let k = 0; k < n; k++) {
      const p = this.#log.at(k) as SentPacket;
      if (!p.done && !p.lost) this.#losePacket(now, p);
    }
    this.#lossTimeUs = Number.POSITIVE_INFINITY;
  }

  /** Forgets every outstanding packet (the connection stopped sending). */
  discardAll(): void {
    while (this.#log.length > 0) {
      const p = this.#log.shift() as SentPacket;
      if (!p.done && !p.lost && p.inFlight) this.#cc.onPacketDiscarded(p);
      this.#firstPn++;
    }
    this.ackElicitingInFlight = 0;
    this.#lossTimeUs = Number.POSITIVE_INFINITY;
  }
}
