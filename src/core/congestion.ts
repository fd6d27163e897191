/**
 * Congestion control: a BBR-style model (Cardwell et al., "BBR: Congestion-Based Congestion Control",
 * ACM Queue 2016; draft-cardwell-iccrg-bbr-congestion-control) with pacing. docs/CONGESTION.md explains
 * the choice: the model estimates the bottleneck bandwidth and the minimum RTT from delivery-rate samples
 * and sends at that rate, so random (non-congestive) loss does not collapse the rate the way it does a
 * loss-based controller such as NewReno or CUBIC.
 *
 * The pacing rate is clamped into [SendRateMin, SendRateMax]. Every packet that counts as in flight
 * (reliable and unreliable data alike) is charged to the window and the pacer.
 */

import { GRANULARITY_US } from './rtt.js';
import { US_PER_S } from './timers.js';

const STARTUP_GAIN = 2.885; // 2/ln(2)
const DRAIN_GAIN = 1 / STARTUP_GAIN;
const PROBE_BW_GAINS = [1.25, 0.75, 1, 1, 1, 1, 1, 1] as const;
const CWND_GAIN = 2;
const BW_WINDOW_ROUNDS = 10;
const MIN_RTT_WINDOW_US = 10_000_000;
const PROBE_RTT_DURATION_US = 200_000;
const INITIAL_WINDOW_PACKETS = 32;
const MIN_WINDOW_PACKETS = 4;
/** Packets of headroom the window keeps above the bandwidth-delay product, for acks that arrive in bunches. */
const WINDOW_HEADROOM_PACKETS = 3;
/** The window holds SendRateMin for this many minimum RTTs, so that the floor rate is never window-limited. */
const RATE_MIN_WINDOW_RTTS = 2;
/** The pacer always lets this many packets out back to back, however low the rate. */
const MIN_BURST_PACKETS = 2;
/** Beyond that, the pacer's bucket holds this long at the current rate: a turn of the event loop's worth. */
const PACER_BURST_US = 1000;
/** The pacer's bucket never holds more than this, however high the rate. */
const MAX_BURST_BYTES = 64 * 1024;
/**
 * A sender held by the pacer and woken late (a real timer fires up to a millisecond or two after the
 * send time it was armed for) may send what the pacer would have let out meanwhile, up to this long of
 * the rate: the pacer keeps its average rate instead of losing the timer's lateness at every wait.
 */
const MAX_LATE_CREDIT_US = 2000;
/** BBR's full-pipe test: a round whose bandwidth estimate grew by less than this factor counts as flat. */
const FULL_BW_GROWTH = 1.25;
/** BBR's full-pipe test: this many flat rounds in a row and the pipe is full. */
const FULL_BW_ROUNDS = 3;
/** ProbeBw starts in one of the cruising phases (gain 1), after the probing and draining ones. */
const FIRST_CRUISE_PHASE = 2;
/** ProbeBw phase length before any RTT sample. */
const DEFAULT_PHASE_US = 100_000;
/**
 * The window is sized for a round trip of at least this long. A peer on an event loop acks once per
 * loop turn, so on a fast path (loopback, a LAN) the round trip under load is a turn or two, not the
 * idle minimum: a window of btlBw x 100 us would stall the sender every turn (docs/BENCHMARKS.md).
 */
const MIN_WINDOW_RTT_US = 2000;
/**
 * The floor while the connection also carries small unreliable messages (a game's positions beside a
 * transfer): the bulk then keeps less in flight, so that a position waits behind less of it in the
 * receiver's socket and event loop, at some cost in bulk throughput on fast paths (docs/CONGESTION.md).
 */
const MIN_WINDOW_RTT_MIXED_US = 500;
/**
 * The window's gain while the connection also carries small unreliable messages: one bandwidth-delay product
 * rather than two. On a fast path the bandwidth estimate runs high (a receiver that drains its socket in one
 * turn acks a burst at once), and two of them kept a few milliseconds of bulk ahead of each position.
 */
const MIXED_CWND_GAIN = 1;
/** A small unreliable message keeps the mixed floor for this long after it is queued. */
const MIXED_HOLD_US = 250_000;

const Mode = { Startup: 0, Drain: 1, ProbeBw: 2, ProbeRtt: 3 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** Per-packet bookkeeping the controller needs to take a delivery-rate sample when the packet is acked. */
export interface RateSnapshot {
  /** `delivered` when the packet was sent. */
  delivered: number;
  /** `deliveredTimeUs` when the packet was sent. */
  deliveredTimeUs: number;
  /** `firstSentTimeUs` when the packet was sent. */
  firstSentTimeUs: number;
  appLimited: boolean;
  timeSentUs: number;
  size: number;
  /** Sent past a full window (small unreliable messages only: LaneScheduler.windowNeed). */
  pastWindow: boolean;
}

/** One connection's congestion window and pacer, driven by recovery's sent, acked and lost packets. */
export class CongestionController {
  readonly #mtu: number;
  #rateMin: number;
  #rateMax: number;
  #mode: Mode = Mode.Startup;

  /** Bytes acknowledged so far (delivery-rate estimation, draft-cheng-iccrg-delivery-rate-estimation). */
  delivered = 0;
  deliveredTimeUs = 0;
  firstSentTimeUs = 0;
  /** `delivered` value until which samples are app-limited (0 = not app-limited). */
  #appLimitedUntil = 0;

  bytesInFlight = 0;
  /** The part of {@link bytesInFlight} sent past a full window ({@link RateSnapshot.pastWindow}). */
  pastWindowBytes = 0;
  /** Congestion window, bytes. */
  cwnd: number;
  /** Pacing rate, bytes per second, already clamped. */
  pacingRate: number;

  // Bandwidth max filter over the last BW_WINDOW_ROUNDS rounds (a small ring of per-round maxima).
  // A plain array of BW_WINDOW_ROUNDS zeros: a Float64Array of 80 bytes would add a buffer object and memory outside the heap.
  readonly #bwRounds: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  #btlBw = 0;
  #round = 0;
  #nextRoundDelivered = 0;
  #roundStart = false;

  #minRttUs = Number.POSITIVE_INFINITY;
  #minRttStampUs = 0;
  #probeRttDoneUs = 0;

  #fullBw = 0;
  #fullBwCount = 0;
  #filledPipe = false;
  #cycleIndex = 0;
  #cycleStampUs = 0;
  #priorCwnd = 0;

  // Pacer: a token bucket refilled at the pacing rate.
  #tokens: number;
  #tokensTimeUs = 0;
  /** The send time the pacer last gave a sender it held (0: none): lateness past it is credited. */
  #heldUntilUs = 0;
  /** Until then the window is sized with the mixed-traffic floor (a small unreliable message was queued). */
  #mixedUntilUs = 0;

  readonly #initialRttUs: number;

  constructor(mtu: number, rateMin: number, rateMax: number, initialRttUs: number) {
    this.#mtu = mtu;
    this.#rateMin = rateMin;
    this.#rateMax = rateMax;
    this.#initialRttUs = initialRttUs;
    this.cwnd = INITIAL_WINDOW_PACKETS * mtu;
    this.pacingRate = this.#initialRate();
    this.#tokens = this.#burst();
  }

  #initialRate(): number {
    return this.#clampRate((STARTUP_GAIN * this.cwnd * US_PER_S) / Math.max(this.#initialRttUs, GRANULARITY_US));
  }

  /**
   * Starts the model over, as on a new connection: the path moved to another peer address (RFC 9000
   * 9.4). The bandwidth and minimum RTT estimates, the mode and the window go back to their initial
   * values. What is in flight stays counted (its acks and losses still leave the flight), and the
   * delivery counters keep running, so that later rate samples stay consistent.
   */
  reset(): void {
    this.#mode = Mode.Startup;
    this.#appLimitedUntil = 0;
    this.#bwRounds.fill(0);
    this.#btlBw = 0;
    this.#nextRoundDelivered = this.delivered;
    this.#roundStart = false;
    this.#minRttUs = Number.POSITIVE_INFINITY;
    this.#minRttStampUs = 0;
    this.#probeRttDoneUs = 0;
    this.#fullBw = 0;
    this.#fullBwCount = 0;
    this.#filledPipe = false;
    this.#cycleIndex = 0;
    this.#cycleStampUs = 0;
    this.#priorCwnd = 0;
    this.cwnd = INITIAL_WINDOW_PACKETS * this.#mtu;
    this.pacingRate = this.#initialRate();
    this.#tokens = this.#burst();
    this.#heldUntilUs = 0;
    this.#mixedUntilUs = 0;
  }

  /** Bottleneck bandwidth estimate, bytes per second (0 before the first sample). */
  get bandwidth(): number {
    return this.#btlBw;
  }

  get minRttUs(): number {
    return this.#minRttUs;
  }

  get modeName(): string {
    return ['startup', 'drain', 'probe_bw', 'probe_rtt'][this.#mode] as string;
  }

  /** Changes the `SendRateMin`/`SendRateMax` clamp of a live connection. */
  setRateLimits(rateMin: number, rateMax: number): void {
    this.#rateMin = rateMin;
    this.#rateMax = rateMax;
    this.pacingRate = this.#clampRate(this.pacingRate);
  }

  #clampRate(r: number): number {
    return Math.min(this.#rateMax, Math.max(this.#rateMin, r));
  }

  /** Pacer burst allowance: two packets or 1 ms at the current rate, whichever is more. */
  #burst(): number {
    return Math.max(MIN_BURST_PACKETS * this.#mtu, Math.min(MAX_BURST_BYTES, this.pacingRate / (US_PER_S / PACER_BURST_US)));
  }

  #refill(now: number): void {
    if (now <= this.#tokensTimeUs) return;
    let cap = this.#burst();
    const held = this.#heldUntilUs;
    if (held !== 0 && now >= held) {
      // Woken after the send time the pacer gave: what a punctual timer would have let out since may go now.
      cap += (Math.min(now - held, MAX_LATE_CREDIT_US) * this.pacingRate) / US_PER_S;
      this.#heldUntilUs = 0;
    }
    const t = this.#tokens + ((now - this.#tokensTimeUs) * this.pacingRate) / US_PER_S;
    // Credit above the cap is kept until it is spent, but not refilled.
    this.#tokens = t <= cap ? t : Math.max(cap, this.#tokens);
    this.#tokensTimeUs = now;
  }

  /** Bytes the window and the pacer allow right now (never negative). */
  sendAllowance(now: number): number {
    this.#refill(now);
    return Math.max(0, Math.min(this.cwnd - this.bytesInFlight, this.#tokens));
  }

  /** Whether the window has room for another packet (of `bytes`, a full one by default). */
  windowOpen(bytes = this.#mtu): boolean {
    return this.bytesInFlight + bytes <= this.cwnd;
  }

  /** When the pacer will allow a packet of `bytes` (now, if it already does). */
  nextSendTimeUs(now: number, bytes: number): number {
    this.#refill(now);
    if (this.#tokens >= bytes) return now;
    const at = now + Math.ceil(((bytes - this.#tokens) * US_PER_S) / this.pacingRate);
    this.#heldUntilUs = at;
    return at;
  }

  /** Records a sent packet that counts in flight; fills `snap` for the later rate sample. */
  onPacketSent(now: number, bytes: number, snap: RateSnapshot): void {
    this.#refill(now);
    this.#tokens -= bytes;
    if (this.bytesInFlight === 0) {
      this.firstSentTimeUs = now;
      this.deliveredTimeUs = now;
    }
    snap.delivered = this.delivered;
    snap.deliveredTimeUs = this.deliveredTimeUs;
    snap.firstSentTimeUs = this.firstSentTimeUs;
    snap.appLimited = this.#appLimitedUntil !== 0;
    snap.timeSentUs = now;
    snap.size = bytes;
    this.bytesInFlight += bytes;
    if (snap.pastWindow) this.pastWindowBytes += bytes;
  }

  /**
   * A small unreliable message (at most a packet) was queued: for a while the window is sized for the
   * path's real round trip (floor {@link MIN_WINDOW_RTT_MIXED_US}), so that bulk beside it queues little.
   */
  onSmallUnreliable(now: number): void {
    this.#mixedUntilUs = now + MIXED_HOLD_US;
  }

  /** The sender has nothing to send: samples taken until this data is delivered are app-limited. */
  onAppLimited(): void {
    this.#heldUntilUs = 0; // nothing waits for the pacer any more: no lateness to make up
    if (this.bytesInFlight < this.cwnd) this.#appLimitedUntil = Math.max(1, this.delivered + this.bytesInFlight);
  }

  /**
   * A packet was acknowledged. Call once per newly acked packet, then {@link onAckBatchEnd}. `sample`:
   * false for a packet sent before the model was {@link reset} (on another path): it leaves the flight
   * and counts as delivered, but measures nothing.
   */
  onPacketAcked(now: number, p: RateSnapshot, sample = true): void {
    this.#leaveFlight(p);
    this.delivered += p.size;
    this.deliveredTimeUs = now;
    if (this.#appLimitedUntil !== 0 && this.delivered > this.#appLimitedUntil) this.#appLimitedUntil = 0;
    if (!sample) {
      this.firstSentTimeUs = p.timeSentUs;
      return;
    }
    // Round counting: a round ends when a packet sent after the previous round's end is acked.
    if (p.delivered >= this.#nextRoundDelivered) {
      this.#nextRoundDelivered = this.delivered;
      this.#round++;
      this.#roundStart = true;
      this.#bwRounds[this.#round % BW_WINDOW_ROUNDS] = 0;
    }
    const sendElapsed = p.timeSentUs - p.firstSentTimeUs;
    const ackElapsed = now - p.deliveredTimeUs;
    const interval = Math.max(sendElapsed, ackElapsed);
    this.firstSentTimeUs = p.timeSentUs;
    // A sample over less than one minimum RTT is distorted by ack compression (delivery-rate draft 3.3).
    if (interval <= 0 || interval < Math.min(this.#minRttUs, GRANULARITY_US)) return;
    const rate = ((this.delivered - p.delivered) * US_PER_S) / interval;
    // App-limited samples only count when they raise the estimate (they underestimate otherwise).
    if (!p.appLimited || rate > this.#btlBw) {
      const slot = this.#round % BW_WINDOW_ROUNDS;
      if (rate > (this.#bwRounds[slot] as number)) this.#bwRounds[slot] = rate;
      let m = 0;
      for (let i = 0; i < BW_WINDOW_ROUNDS; i++) if ((this.#bwRounds[i] as number) > m) m = this.#bwRounds[i] as number;
      this.#btlBw = m;
    }
  }

  /** A packet was declared lost: it leaves the flight. BBR does not cut its rate on loss. */
  onPacketLost(p: RateSnapshot): void {
    this.#leaveFlight(p);
  }

  /** A packet left the flight without being acked or lost (connection reset, abandoned probe). */
  onPacketDiscarded(p: RateSnapshot): void {
    this.#leaveFlight(p);
  }

  #leaveFlight(p: RateSnapshot): void {
    this.bytesInFlight = Math.max(0, this.bytesInFlight - p.size);
    if (p.pastWindow) this.pastWindowBytes = Math.max(0, this.pastWindowBytes - p.size);
  }

  /** Runs the model after an ack frame was processed. `rttUs` is the latest RTT sample or 0. */
  onAckBatchEnd(now: number, rttUs: number): void {
    if (rttUs > 0 && (rttUs <= this.#minRttUs || now - this.#minRttStampUs > MIN_RTT_WINDOW_US)) {
      const expired = now - this.#minRttStampUs > MIN_RTT_WINDOW_US && rttUs > this.#minRttUs;
      this.#minRttUs = rttUs;
      this.#minRttStampUs = now;
      if (expired && this.#mode !== Mode.ProbeRtt && this.#filledPipe) this.#enterProbeRtt(now);
    }
    if (this.#roundStart) {
      this.#roundStart = false;
      this.#checkFullPipe();
    }
    switch (this.#mode) {
      case Mode.Startup:
        if (this.#filledPipe) this.#mode = Mode.Drain;
        break;
      case Mode.Drain:
        if (this.bytesInFlight <= this.#bdp(1)) this.#enterProbeBw(now);
        break;
      case Mode.ProbeBw:
        this.#advanceCycle(now);
        break;
      case Mode.ProbeRtt:
        if (this.#probeRttDoneUs === 0 && this.bytesInFlight <= MIN_WINDOW_PACKETS * this.#mtu) {
          this.#probeRttDoneUs = now + PROBE_RTT_DURATION_US;
          this.#nextRoundDelivered = this.delivered;
        } else if (this.#probeRttDoneUs !== 0) {
          if (now >= this.#probeRttDoneUs) {
            this.#minRttStampUs = now;
            this.cwnd = Math.max(this.cwnd, this.#priorCwnd);
            if (this.#filledPipe) this.#enterProbeBw(now);
            else this.#mode = Mode.Startup;
          }
        }
        break;
    }
    this.#updateRates(now);
  }

  /** gain x bottleneck bandwidth x round trip, the round trip taken as at least `rttFloorUs`. */
  #bdp(gain: number, rttFloorUs = 0): number {
    if (this.#btlBw === 0 || !Number.isFinite(this.#minRttUs)) return INITIAL_WINDOW_PACKETS * this.#mtu;
    return (gain * this.#btlBw * Math.max(this.#minRttUs, rttFloorUs)) / US_PER_S;
  }

  #checkFullPipe(): void {
    if (this.#filledPipe || this.#appLimitedUntil !== 0) return;
    if (this.#btlBw >= this.#fullBw * FULL_BW_GROWTH) {
      this.#fullBw = this.#btlBw;
      this.#fullBwCount = 0;
      return;
    }
    if (++this.#fullBwCount >= FULL_BW_ROUNDS) this.#filledPipe = true;
  }

  #enterProbeBw(now: number): void {
    this.#mode = Mode.ProbeBw;
    // Start at a random-ish phase other than the draining one; determinism matters more than randomness.
    this.#cycleIndex = FIRST_CRUISE_PHASE + (this.#round % (PROBE_BW_GAINS.length - FIRST_CRUISE_PHASE));
    this.#cycleStampUs = now;
  }

  #advanceCycle(now: number): void {
    const minRtt = Number.isFinite(this.#minRttUs) ? this.#minRttUs : DEFAULT_PHASE_US;
    if (now - this.#cycleStampUs > minRtt) {
      this.#cycleIndex = (this.#cycleIndex + 1) % PROBE_BW_GAINS.length;
      this.#cycleStampUs = now;
    }
  }

  #enterProbeRtt(now: number): void {
    this.#mode = Mode.ProbeRtt;
    this.#priorCwnd = this.cwnd;
    this.#probeRttDoneUs = 0;
    void now;
  }

  #updateRates(now: number): void {
    let pacingGain: number;
    let cwndGain: number;
    switch (this.#mode) {
      case Mode.Startup:
        pacingGain = STARTUP_GAIN;
        cwndGain = STARTUP_GAIN;
        break;
      case Mode.Drain:
        pacingGain = DRAIN_GAIN;
        cwndGain = STARTUP_GAIN;
        break;
      case Mode.ProbeBw:
        pacingGain = PROBE_BW_GAINS[this.#cycleIndex] as number;
        cwndGain = CWND_GAIN;
        break;
      default:
        pacingGain = 1;
        cwndGain = 1;
    }
    if (this.#btlBw > 0) {
      // Before the pipe is known to be full, only raise the rate (app-limited starts underestimate).
      const rate = this.#clampRate(pacingGain * this.#btlBw);
      if (this.#filledPipe || rate > this.pacingRate) this.pacingRate = rate;
    }
    const minWindow = MIN_WINDOW_PACKETS * this.#mtu;
    if (this.#mode === Mode.ProbeRtt) {
      this.cwnd = minWindow;
    } else if (this.#btlBw > 0 && Number.isFinite(this.#minRttUs)) {
      const mixed = now < this.#mixedUntilUs;
      let target = this.#bdp(mixed ? Math.min(cwndGain, MIXED_CWND_GAIN) : cwndGain, mixed ? MIN_WINDOW_RTT_MIXED_US : MIN_WINDOW_RTT_US) + WINDOW_HEADROOM_PACKETS * this.#mtu;
      // The window must let SendRateMin through whatever the estimate says.
      target = Math.max(target, (this.#rateMin * this.#minRttUs * RATE_MIN_WINDOW_RTTS) / US_PER_S);
      if (this.#filledPipe) this.cwnd = Math.max(minWindow, target);
      else this.cwnd = Math.max(this.cwnd, target, minWindow);
    }
  }
}
