import type { CryptoProvider } from '../../crypto/provider.js';
import { encodeRelayControl, type RelayControl } from '../protocol.js';
import type { RelaySend, RelayStats } from './types.js';

/** Microseconds in a second: `now` is in integer µs, the wire and tickets count seconds. */
export const US_PER_S = 1_000_000;
/** A drain lasts at least this long, s. */
export const MIN_DRAIN_S = 1;
/** While draining, the deadline is announced as at least this many seconds: 0 on the wire means "not draining". */
const MIN_ANNOUNCED_DRAIN_S = 1;

/**
 * What the parts of a relay node share: the crypto provider, the wall clock, the counters, the output sink and
 * the drain deadline. One per node; the session table, the forwarder and the directory each hold it.
 */
export class RelayContext {
  /** The node's counters (the object {@link RelayNode.stats} shows). */
  readonly stats: RelayStats;
  /** Randomness, MACs, AEADs and signatures. */
  readonly provider: CryptoProvider;
  /** Wall clock, unix seconds (tickets, route tokens, directory times). */
  readonly unixSeconds: () => number;
  readonly #send: RelaySend;
  /** The drain deadline, µs; 0 while the node is not draining. */
  drainUntilUs = 0;

  constructor(provider: CryptoProvider, send: RelaySend, unixSeconds: () => number, stats: RelayStats) {
    this.provider = provider;
    this.#send = send;
    this.unixSeconds = unixSeconds;
    this.stats = stats;
  }

  /** Sends one datagram and counts it. `data` may be a view of a received buffer (the forwarding path). */
  out(data: Uint8Array, port: number, address: string): void {
    this.stats.datagramsOut++;
    this.stats.bytesOut += data.length;
    this.#send(data, port, address);
  }

  /** Encodes a control message and sends it. */
  reply(m: RelayControl, port: number, address: string): void {
    this.out(encodeRelayControl(m), port, address);
  }

  /** Seconds until the drain deadline (at least 1 while draining), 0 when not draining. */
  drainSeconds(now: number): number {
    return this.drainUntilUs === 0 ? 0 : Math.max(MIN_ANNOUNCED_DRAIN_S, Math.ceil((this.drainUntilUs - now) / US_PER_S));
  }
}

/** The big-endian u32 at `b[at]` (session ids, cookie times). */
export function readU32(b: Uint8Array, at: number): number {
  return (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0;
}

/** Writes `v` as a big-endian u32 at `b[at]`. */
export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}
