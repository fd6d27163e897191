import { Deque } from '../util/deque.js';
import type { CongestionController, RateSnapshot } from './congestion.js';
import { RttEstimator } from './rtt.js';
import { MAX_ACK_DELAY_US } from './ack-tracker.js';

/** Packets acked after this many later ones are acked make a packet lost (RFC 9002 kPacketThreshold). */
const PACKET_THRESHOLD = 3;
/** PTO backoff stops doubling here. */
const MAX_PTO_BACKOFF = 6;

/** A sent data packet, kept until acknowledged or declared lost. */
export interface SentPacket extends RateSnapshot {
  pn: number;
  ackEliciting: boolean;
  inFlight: boolean;
  /** Reliable segments carried: flat triples [lane, offset, length, ...]. */
  readonly segments: number[];
  done: boolean;
}

/** What recovery tells the connection. */
export interface RecoveryListener {
  onSegmentAcked(lane: number, offset: number, len: number): void;
  onSegmentLost(lane: number, offset: number, len: number): void;
}

/**
 * Sender-side reliability: the sent-packet log, ACK processing, RTT samples, loss detection after
 * 3 later packets or 9/8 RTT, and the probe timeout with exponential backoff (RFC 9002 sections 5-6).
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
  largestAcked = -1;
  ptoCount = 0;
  #lossTimeUs = Number.POSITIVE_INFINITY;
  #lastAckElicitingUs = 0;
  ackElicitingInFlight = 0;
  /** Packets numbered below this were sent on a path the connection has left: their acks measure nothing. */
  #pathFirstPn = 0;

  // Lifetime counters.
  packetsLost = 0;
  bytesLost = 0;
  packetsAcked = 0;

  constructor(cc: CongestionController, listener: RecoveryListener) {
    this.#cc = cc;
    this.#listener = listener;
  }

  /** A recycled (or new) record for the next packet; fill it, then call {@link onSent}. */
  allocate(): SentPacket {
    const p = this.#pool.pop();
    if (p) {
      p.segments.length = 0;
      p.done = false;
      return p;
    }
    return { pn: 0, ackEliciting: false, inFlight: false, segments: [], done: false, delivered: 0, deliveredTimeUs: 0, firstSentTimeUs: 0, appLimited: false, timeSentUs: 0, size: 0 };
  }

  onSent(now: number, p: SentPacket): void {
    p.pn = this.nextPn++;
    if (this.#log.length === 0) this.#firstPn = p.pn;
    p.timeSentUs = now;
    if (p.inFlight) this.#cc.onPacketSent(now, p.size, p);
    else this.#cc.onUnpacedSent(now, p.size);
    if (p.ackEliciting) {
      this.ackElicitingInFlight++;
      this.#lastAckElicitingUs = now;
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
    let newestAcked: SentPacket | undefined;
    let anyEliciting = false;
    for (let i = lo.length - 1; i >= 0; i--) {
      const a = Math.max(lo[i] as number, this.#firstPn);
      for (let pn = hi[i] as number; pn >= a; pn--) {
        const p = this.#get(pn);
        if (!p || p.done) continue;
        if (!newestAcked) newestAcked = p;
        if (p.ackEliciting) anyEliciting = true;
        this.#ackPacket(now, p);
      }
    }
    if (!newestAcked) return true;
    if (largest > this.largestAcked) this.largestAcked = largest;
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
    this.#compact();
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

  #losePacket(p: SentPacket): void {
    p.done = true;
    if (p.inFlight) {
      this.packetsLost++;
      this.bytesLost += p.size;
      this.#cc.onPacketLost(p.size);
    }
    if (p.ackEliciting) this.ackElicitingInFlight--;
    const s = p.segments;
    for (let k = 0; k < s.length; k += 3) this.#listener.onSegmentLost(s[k] as number, s[k + 1] as number, s[k + 2] as number);
  }

  /** RFC 9002 section 6.1: packet and time thresholds. Sets the loss timer for packets not yet lost. */
  #detectLosses(now: number): void {
    this.#lossTimeUs = Number.POSITIVE_INFINITY;
    if (this.largestAcked < 0) return;
    const lossDelay = this.rtt.lossDelayUs();
    const lostSendTime = now - lossDelay;
    const end = Math.min(this.largestAcked, this.nextPn - 1);
    for (let pn = this.#firstPn; pn < end; pn++) {
      const p = this.#get(pn);
      if (!p || p.done) continue;
      if (!p.inFlight) {
        p.done = true; // nothing to recover in a pure ack
        continue;
      }
      if (p.timeSentUs <= lostSendTime || this.largestAcked - pn >= PACKET_THRESHOLD) {
        this.#losePacket(p);
      } else if (p.timeSentUs + lossDelay < this.#lossTimeUs) {
        this.#lossTimeUs = p.timeSentUs + lossDelay;
      }
    }
  }

  #compact(): void {
    while (this.#log.length > 0 && (this.#log.peek() as SentPacket).done) {
      this.#pool.push(this.#log.shift() as SentPacket);
      this.#firstPn++;
    }
  }

  /** When recovery needs `onTimeout` (loss timer or PTO); +Infinity if never. */
  timeoutUs(): number {
    if (this.#lossTimeUs !== Number.POSITIVE_INFINITY) return this.#lossTimeUs;
    if (this.ackElicitingInFlight === 0) return Number.POSITIVE_INFINITY;
    return this.#lastAckElicitingUs + this.ptoUs();
  }

  /** Current probe timeout including backoff. */
  ptoUs(): number {
    return this.rtt.ptoUs(MAX_ACK_DELAY_US) * (1 << Math.min(this.ptoCount, MAX_PTO_BACKOFF));
  }

  /**
   * Fires the loss timer or the PTO. Returns true when a PTO fired: the caller must send one
   * ack-eliciting probe packet; the oldest unacked reliable data is queued for it.
   */
  onTimeout(now: number): boolean {
    if (this.#lossTimeUs !== Number.POSITIVE_INFINITY) {
      if (now < this.#lossTimeUs) return false;
      this.#detectLosses(now);
      this.#compact();
      return false;
    }
    if (this.ackElicitingInFlight === 0 || now < this.#lastAckElicitingUs + this.ptoUs()) return false;
    this.ptoCount++;
    // Probe with the oldest outstanding reliable data so that a lost tail is repaired quickly.
    for (let i = 0; i < this.#log.length; i++) {
      const p = this.#log.at(i) as SentPacket;
      if (p.done || p.segments.length === 0) continue;
      const s = p.segments;
      for (let k = 0; k < s.length; k += 3) this.#listener.onSegmentLost(s[k] as number, s[k + 1] as number, s[k + 2] as number);
      break;
    }
    this.#lastAckElicitingUs = now; // the backoff runs from the probe
    return true;
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

  /** Forgets every outstanding packet (the connection stopped sending). */
  discardAll(): void {
    while (this.#log.length > 0) {
      const p = this.#log.shift() as SentPacket;
      if (!p.done && p.inFlight) this.#cc.onPacketDiscarded(p.size);
      this.#firstPn++;
    }
    this.ackElicitingInFlight = 0;
    this.#lossTimeUs = Number.POSITIVE_INFINITY;
  }
}
