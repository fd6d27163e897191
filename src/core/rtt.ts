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
   * `ackDelayUs` what the peer says it held the ack (RFC 9002 section 5.3), at most `maxAckDelayUs`.
   * The peer's delay is subtracted from every sample, the first included, and the minimum is that of
   * the samples so adjusted. RFC 9002 keeps the minimum unadjusted and subtracts only when the result
   * stays at or above it; but a peer that holds every ack for the next packet of a 30 Hz game reports
   * delays of up to 33 ms on every sample, the unadjusted minimum then includes them, and the guard
   * kept the smoothed RTT that much above the path's. The peer is authenticated and its delay capped
   * at `maxAckDelayUs`: one that overstates it can only make its own connection probe early.
   */
  update(sampleUs: number, ackDelayUs: number, maxAckDelayUs: number): void {
    this.latestUs = sampleUs;
    const delay = Math.min(ackDelayUs, maxAckDelayUs);
    const adjusted = sampleUs > delay ? sampleUs - delay : sampleUs;
    if (adjusted < this.minUs) this.minUs = adjusted;
    if (!this.hasSample) {
      this.hasSample = true;
      this.smoothedUs = adjusted;
      this.varianceUs = adjusted / 2;
      return;
    }
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
