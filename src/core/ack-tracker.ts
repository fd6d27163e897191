import { RangeSet } from '../util/range-set.js';

/** Ranges kept to report in ACK frames; older ones are forgotten (the sender then treats them as lost). */
export const MAX_ACK_RANGES = 32;
/** Ack after this many ack-eliciting packets without waiting (RFC 9000 section 13.2.2). */
const ACK_ELICITING_THRESHOLD = 2;
/**
 * Longest we hold the ack of a packet carrying only unreliable data, microseconds: long enough that the
 * next packet a game sends anyway carries it (a 30 Hz sender's next packet comes 33 ms later, plus its
 * timer's lateness), so that two-way unreliable traffic at 30 Hz or faster needs no ACK-only packets; a
 * one-way flow is acked every second packet (`ACK_ELICITING_THRESHOLD`) or after this. Senders assume
 * this value for such packets (recovery.ts).
 */
export const UNRELIABLE_ACK_DELAY_US = 50_000;
/**
 * Longest we hold any ack (RFC 9000 max_ack_delay): the reported ack delay a peer subtracts from its RTT
 * samples is capped at this (RFC 9002 section 5.3), and timers scaled by the probe timeout include it.
 */
export const MAX_ACK_DELAY_US = UNRELIABLE_ACK_DELAY_US;
/**
 * Longest we hold the ack of a packet carrying reliable data: long enough for an answer the
 * application sends at once to carry it, short enough that the sender's tail-loss probe
 * (2 x RTT + this, recovery.ts) does not fire before it arrives. Senders assume this value.
 */
export const RELIABLE_ACK_DELAY_US = 1000;
/** ACK delay field unit: 8 microseconds (2^3). */
export const ACK_DELAY_SHIFT = 3;

/**
 * Receive-side bookkeeping for acknowledgements: which packet numbers arrived, and when an ACK frame
 * is due (RFC 9000 section 13.2).
 */
export class AckTracker {
  readonly received = new RangeSet();
  #largestTimeUs = 0;
  #unackedEliciting = 0;
  /** There is something in `received` the peer has not been told. */
  pending = false;
  /** When an ACK must go out (+Infinity: no deadline). */
  dueUs = Number.POSITIVE_INFINITY;

  /**
   * Records an accepted packet. `immediate`: it carried a PING (acked at once); `reliable`: it carried
   * reliable data (acked within {@link RELIABLE_ACK_DELAY_US}, others within {@link UNRELIABLE_ACK_DELAY_US}).
   */
  onPacket(now: number, pn: number, ackEliciting: boolean, immediate: boolean, reliable = false): void {
    const largest = this.received.max();
    const outOfOrder = largest >= 0 && pn !== largest + 1;
    this.received.add(pn, pn);
    this.received.trimOldest(MAX_ACK_RANGES);
    if (pn > largest) this.#largestTimeUs = now;
    this.pending = true;
    if (!ackEliciting) return;
    this.#unackedEliciting++;
    if (immediate || outOfOrder || this.#unackedEliciting >= ACK_ELICITING_THRESHOLD) this.dueUs = now;
    else this.dueUs = Math.min(this.dueUs, now + (reliable ? RELIABLE_ACK_DELAY_US : UNRELIABLE_ACK_DELAY_US));
  }

  /** ACK delay to report, in wire units. */
  ackDelay(now: number): number {
    return Math.max(0, now - this.#largestTimeUs) >>> ACK_DELAY_SHIFT;
  }

  /** An ACK of everything received is owed now (the path changed: earlier ones went to the old address). */
  ackNow(now: number): void {
    if (this.received.max() < 0) return;
    this.pending = true;
    this.dueUs = now;
  }

  /** An ACK frame describing everything in `received` was sent. */
  onAckSent(): void {
    this.pending = false;
    this.#unackedEliciting = 0;
    this.dueUs = Number.POSITIVE_INFINITY;
  }
}
