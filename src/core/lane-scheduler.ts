import { MAX_LANES } from '../wire/frames.js';
import { MAX_RELIABLE_MESSAGE_SIZE, MAX_UNRELIABLE_MESSAGE_SIZE, type ConfigValues } from './config.js';
import type { CongestionController } from './congestion.js';
import type { ConnectionCounters } from './connection-status.js';
import type { RecoveryListener } from './recovery.js';
import { SendLane } from './send-lane.js';
import { NO_TIME, Timer, US_PER_S, type TimerTable } from './timers.js';
import { Result, SendFlags } from './types.js';
import { copyBytes } from '../util/slab.js';

/** NoDelay messages that cannot leave within this are dropped (GNS documents ~200 ms). */
const NO_DELAY_LIMIT_US = 200_000;
/** Largest lane weight (GNS takes weights as 16-bit values). */
const MAX_LANE_WEIGHT = 0xffff;
/**
 * Room a data packet keeps for its header, AEAD tag and frame headers. Queued data of at least
 * `MTU_PacketSize` less this fills a packet, so Nagle has no reason to hold it.
 */
export const PACKET_SLACK_BYTES = 64;
/**
 * How many bytes of packets of small unreliable messages may be in flight past a full congestion window
 * (in MTUs). A position sent beside a bulk transfer on another lane would otherwise wait for acks to open a
 * window the transfer keeps full, a round trip or more (in a loss recovery, or while the receiving process
 * is busy: milliseconds); the allowance lets it leave at once, paced, and bounds what the exception puts in
 * flight. Such packets carry nothing else.
 */
const PAST_WINDOW_MTUS = 2;

/** How long `bytes` of queued data take to leave at `pacingRate` (bytes per second), in µs. */
export function queueTimeUs(bytes: number, pacingRate: number): number {
  return Math.round((bytes * US_PER_S) / Math.max(1, pacingRate));
}

/**
 * The room in a packet (its slack included) that `lane`'s next message needs when it is an unreliable
 * message not yet started that fits one packet; 0 otherwise.
 */
export function smallUnreliableHead(lane: SendLane, mtu: number): number {
  const item = lane.items.peek();
  if (!item || item.reliable || item.sent !== 0) return 0;
  const n = (item.data as Uint8Array).length + PACKET_SLACK_BYTES;
  return n <= mtu ? n : 0;
}

/** The connection's counters the send queue keeps. */
export type SendQueueCounters = Pick<ConnectionCounters, 'messagesSent' | 'unreliableDroppedSend'>;

/**
 * The send side of a connection: its lanes, what is queued on them, when it wants to go (Nagle), and
 * which lane goes next: strict priority (lowest value first), then weighted fair queueing inside a
 * priority class. Recovery reports acknowledged and lost segments here because the lanes own them.
 */
export class LaneScheduler implements RecoveryListener {
  /** Lane `i` at index `i`; the count only grows (a new array of exactly that size: `push` would leave spare slots). */
  lanes: SendLane[] = [new SendLane(0)];
  /** Unsent bytes over all lanes (new reliable stream bytes + unreliable). */
  pendingBytes = 0;
  readonly #timers: TimerTable;
  readonly #cc: CongestionController;
  readonly #counters: SendQueueCounters;

  constructor(timers: TimerTable, cc: CongestionController, counters: SendQueueCounters) {
    this.#timers = timers;
    this.#cc = cc;
    this.#counters = counters;
  }

  /**
   * Queues a message on a connection that may send. Returns the message number (>= 1) or a negated
   * `Result` code, so that the hot path allocates nothing. `connected`: NoDelay messages are refused
   * before the connection is up, since they could not leave in time.
   */
  queue(now: number, data: Uint8Array, flags: number, laneIndex: number, cfg: ConfigValues, connected: boolean): number {
    const lane = this.lanes[laneIndex];
    if (!lane) return -Result.InvalidParam;
    const reliable = (flags & SendFlags.Reliable) !== 0;
    const size = data.length;
    if (reliable) {
      if (size > MAX_RELIABLE_MESSAGE_SIZE || size > cfg.SendBufferSize) return -Result.InvalidParam;
    } else if (size > MAX_UNRELIABLE_MESSAGE_SIZE) {
      return -Result.InvalidParam;
    }
    if (this.pendingBytes + size > cfg.SendBufferSize) return -Result.LimitExceeded;
    const wasIdle = lane.items.length === 0;
    let num: number;
    let queued = size;
    if (reliable) {
      const before = lane.stream.end;
      num = lane.queueReliable(data);
      queued = lane.stream.end - before; // framing header included
    } else {
      let dropAfter = NO_TIME;
      if ((flags & SendFlags.NoDelay) !== 0) {
        // NoDelay: refuse now if it cannot go out soon (not connected yet, or the queue is too deep).
        if (!connected || queueTimeUs(this.pendingBytes, this.#cc.pacingRate) > NO_DELAY_LIMIT_US) {
          this.#counters.unreliableDroppedSend++;
          lane.nextMessageNumber++;
          return -Result.Ignored;
        }
        dropAfter = now + NO_DELAY_LIMIT_US;
      }
      // Copy: the caller may reuse its buffer as soon as send returns.
      num = lane.queueUnreliable(copyBytes(data, 0, data.length), (flags & SendFlags.Latest) !== 0, dropAfter);
      if (size <= cfg.MTU_PacketSize - PACKET_SLACK_BYTES) this.#cc.onSmallUnreliable(now);
    }
    this.#counters.messagesSent++;
    if (wasIdle) this.#activate(lane);
    this.pendingBytes += queued;
    if ((flags & SendFlags.NoNagle) !== 0) this.#timers.set(Timer.Nagle, now);
    else if (this.#timers.get(Timer.Nagle) === NO_TIME) this.#timers.set(Timer.Nagle, now + cfg.NagleTime);
    return num;
  }

  /** Ends the Nagle wait: whatever is queued may go now. */
  flush(now: number): void {
    if (this.pendingBytes > 0) this.#timers.set(Timer.Nagle, now);
  }

  /** `configureConnectionLanes`: lane count may only grow; weights >= 1; lower priority value first. */
  configure(priorities: readonly number[], weights: readonly number[]): Result {
    const n = priorities.length;
    if (n < 1 || n > MAX_LANES || weights.length !== n || n < this.lanes.length) return Result.InvalidParam;
    for (let i = 0; i < n; i++) {
      const w = weights[i] as number;
      const p = priorities[i] as number;
      if (!Number.isInteger(w) || w < 1 || w > MAX_LANE_WEIGHT || !Number.isInteger(p)) return Result.InvalidParam;
    }
    if (this.lanes.length < n) {
      const added: SendLane[] = [];
      for (let i = this.lanes.length; i < n; i++) added.push(new SendLane(i));
      this.lanes = this.lanes.concat(added);
    }
    for (let i = 0; i < n; i++) {
      const lane = this.lanes[i] as SendLane;
      lane.priority = priorities[i] as number;
      lane.weight = weights[i] as number;
    }
    return Result.OK;
  }

  /** Lowest priority value first; inside a class the lane with the least weighted service. Retransmissions make a lane busy too. */
  pick(): SendLane | null {
    let best: SendLane | null = null;
    for (const lane of this.lanes) {
      if (lane.items.length === 0 && lane.retransmit.isEmpty()) continue;
      if (!best || lane.priority < best.priority || (lane.priority === best.priority && lane.vtime < best.vtime)) best = lane;
    }
    return best;
  }

  /** A lane that becomes busy starts at the class's current virtual time: idle lanes bank no credit. */
  #activate(lane: SendLane): void {
    let min = NO_TIME;
    for (const l of this.lanes) if (l !== lane && l.priority === lane.priority && l.items.length > 0 && l.vtime < min) min = l.vtime;
    if (min !== NO_TIME && lane.vtime < min) lane.vtime = min;
    if (min === NO_TIME) {
      // Whole class idle: restart everyone's clock to keep numbers small.
      for (const l of this.lanes) if (l.priority === lane.priority) l.vtime = 0;
    }
  }

  /** `len` new bytes of `lane` went into a packet: they leave the queue and count as the lane's service. */
  charge(lane: SendLane, len: number): void {
    this.pendingBytes -= len;
    lane.vtime += len / lane.weight;
  }

  /** `len` bytes of `lane` were retransmitted: they count as the lane's service (they were never in `pendingBytes`). */
  chargeRetransmission(lane: SendLane, len: number): void {
    lane.vtime += len / lane.weight;
  }

  /** The unreliable message at the head of `lane` missed its NoDelay deadline: dropped rather than sent late. */
  dropLate(lane: SendLane, size: number): void {
    lane.items.shift();
    lane.pendingUnreliableBytes -= size;
    this.pendingBytes -= size;
    this.#counters.unreliableDroppedSend++;
  }

  /** A packet was filled: once nothing is queued, nothing waits for Nagle either. */
  settle(): void {
    if (this.pendingBytes === 0) this.#timers.stop(Timer.Nagle);
  }

  /** When queued data wants to go: retransmissions now; new data at the Nagle deadline, or now when it fills a packet. */
  dataWantedAtUs(mtu: number): number {
    for (const lane of this.lanes) if (!lane.retransmit.isEmpty()) return 0;
    if (this.pendingBytes === 0) return NO_TIME;
    if (this.pendingBytes >= mtu - PACKET_SLACK_BYTES) return 0;
    return this.#timers.get(Timer.Nagle);
  }

  /**
   * The room the next packet needs from the window and the pacer: a full packet, unless the lane served
   * next starts with a small unreliable message, which then needs only its own size. A small message on
   * its own lane so waits for no more than its own bytes of pacing, however much bulk queues elsewhere.
   */
  nextPacketBytes(mtu: number): number {
    const lane = this.pick();
    if (!lane || !lane.retransmit.isEmpty()) return mtu;
    const item = lane.items.peek();
    if (!item || item.reliable) return mtu;
    return Math.min(mtu, (item.data as Uint8Array).length - item.sent + PACKET_SLACK_BYTES);
  }

  /**
   * What the congestion window lets the next data packet be: the bytes it needs from the pacer
   * ({@link nextPacketBytes}) when the window has room for it; when it has not but a lane's next message is
   * a whole unreliable one that fits a packet, minus the bytes of that message (a packet of such messages
   * only, which may go past the window within {@link PAST_WINDOW_MTUS}); 0 when the window
   * holds everything.
   */
  windowNeed(mtu: number): number {
    const need = this.nextPacketBytes(mtu);
    const cc = this.#cc;
    if (cc.windowOpen(need)) return need;
    let best: SendLane | null = null;
    let small = 0;
    for (const lane of this.lanes) {
      const n = smallUnreliableHead(lane, mtu);
      if (n > 0 && (!best || lane.priority < best.priority || (lane.priority === best.priority && lane.vtime < best.vtime))) {
        best = lane;
        small = n;
      }
    }
    return small > 0 && cc.pastWindowBytes + small <= PAST_WINDOW_MTUS * mtu ? -small : 0;
  }

  /** Every reliable byte queued so far has been acknowledged. */
  allReliableDone(): boolean {
    for (const lane of this.lanes) if (!lane.allReliableDone()) return false;
    return true;
  }

  /** Drops every queued unreliable message (the connection is ending); they count as dropped. */
  dropUnreliable(): void {
    for (const lane of this.lanes) this.#counters.unreliableDroppedSend += lane.dropUnreliable();
  }

  /** Lingering: only reliable data is left to send, and it goes without waiting for Nagle. */
  linger(now: number): void {
    this.dropUnreliable();
    let n = 0;
    for (const lane of this.lanes) n += lane.pendingNewReliableBytes + lane.pendingUnreliableBytes;
    this.pendingBytes = n;
    this.#timers.set(Timer.Nagle, now);
  }

  /** RecoveryListener: a reliable segment was acknowledged. */
  onSegmentAcked(lane: number, offset: number, len: number): void {
    this.lanes[lane]?.onAcked(offset, len);
  }

  /** RecoveryListener: a reliable segment was lost (or is probed). */
  onSegmentLost(lane: number, offset: number, len: number): void {
    this.lanes[lane]?.onLost(offset, len);
  }
}
