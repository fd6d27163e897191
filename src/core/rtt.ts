/**
 * Round-trip time estimation (RFC 9002 section 5), in integer microseconds.
 */
export const INITIAL_RTT_US = 333_000;
/** Timer granularity (RFC 9002 kGranularity). */
export const GRANULARITY_US = 1000;

/** Smoothed RTT, its variance and minimum: recovery's loss and probe timers are derived from them. */
export class RttEstimator {
  latestUs = 0;
  smoothedUs = INITIAL_RTT_US;
  varianceUs = INITIAL_RTT_US / 2;
  minUs = Number.POSITIVE_INFINITY;
  hasSample = false;

  /** Back to the initial estimate: the path changed (RFC 9000 9.4); the next sample starts afresh. */
  reset(): void {
    this.latestUs = 0;
    this.smoothedUs = INITIAL_RTT_US;
    this.varianceUs = INITIAL_RTT_US / 2;
    this.minUs = Number.POSITIVE_INFINITY;
    this.hasSample = false;
  }

  /**
   * Takes one sample: `sampleUs` is now minus the send time of the newest newly acked packet,
   * `ackDelayUs` what the peer says it held the ack (RFC 9002 section 5.3).
   */
  update(sampleUs: number, ackDelayUs: number, maxAckDelayUs: number): void {
    this.latestUs = sampleUs;
    if (sampleUs < this.minUs) this.minUs = sampleUs;
    if (!this.hasSample) {
      this.hasSample = true;
      this.smoothedUs = sampleUs;
      this.varianceUs = sampleUs / 2;
      return;
    }
    const delay = Math.min(ackDelayUs, maxAckDelayUs);
    // Subtract the peer's ack delay only when the result stays at or above the minimum (RFC 9002 5.3).
    const adjusted = sampleUs >= this.minUs + delay ? sampleUs - delay : sampleUs;
    this.varianceUs = Math.round((3 * this.varianceUs + Math.abs(this.smoothedUs - adjusted)) / 4);
    this.smoothedUs = Math.round((7 * this.smoothedUs + adjusted) / 8);
  }

  /** Probe timeout before backoff (RFC 9002 section 6.2.1). */
  ptoUs(maxAckDelayUs: number): number {
    return this.smoothedUs + Math.max(4 * this.varianceUs, GRANULARITY_US) + maxAckDelayUs;
  }

  /** Time threshold for loss: 9/8 of the larger of smoothed and latest RTT (RFC 9002 6.1.2). */
  lossDelayUs(): number {
    return Math.max(Math.ceil((9 * Math.max(this.smoothedUs, this.latestUs)) / 8), GRANULARITY_US);
  }
}
