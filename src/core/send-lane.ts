import { Deque } from '../util/deque.js';
import { RangeSet } from '../util/range-set.js';
import { StreamBuffer } from './stream-buffer.js';

/** What a lane reads before it has written a structure of its own (never written: see `SendLane.stream`). */
const NO_STREAM = new StreamBuffer();
const NO_RANGES = new RangeSet();
const NO_ITEMS = new Deque<SendItem>();

/** One queued send: a run of reliable stream bytes, or one unreliable message. */
export interface SendItem {
  reliable: boolean;
  /** Reliable: stream offset one past the run's last byte. */
  end: number;
  /** Unreliable: the message. */
  data: Uint8Array | null;
  messageNumber: number;
  /** Unreliable: bytes already sent (fragments). */
  sent: number;
  latest: boolean;
  /** Unreliable with NoDelay: drop if not started by this time (µs); otherwise +Infinity. */
  dropAfterUs: number;
}

/**
 * The send side of one lane: a reliable byte stream with retransmission bookkeeping, an unreliable
 * queue, message numbering, and the lane's scheduling parameters (priority, weight, virtual time).
 * Reliable and unreliable messages leave in the order they were queued.
 */
export class SendLane {
  readonly index: number;
  /** Lower values are served first (GNS). */
  priority = 0;
  weight = 1;
  /** Weighted-fair-queueing virtual time: bytes sent divided by weight. */
  vtime = 0;

  #stream: StreamBuffer | null = null;
  /** First reliable stream byte never sent. */
  sentOffset = 0;
  #acked: RangeSet | null = null;
  #retransmit: RangeSet | null = null;
  #items: Deque<SendItem> | null = null;
  nextMessageNumber = 1;
  #lastReliableNumber = 0;
  pendingUnreliableBytes = 0;

  constructor(index: number) {
    this.index = index;
  }

  /**
   * The reliable byte stream. A lane makes it, and each structure below, at its first write: until then
   * this is an empty one shared by every lane (never written: only the lane's own methods write, and they
   * write to the lane's own), so that an idle lane is one object.
   */
  get stream(): StreamBuffer {
    return this.#stream ?? NO_STREAM;
  }

  /** Acked stream ranges at or above `stream.base`. */
  get acked(): RangeSet {
    return this.#acked ?? NO_RANGES;
  }

  /** Stream ranges waiting to be sent again. */
  get retransmit(): RangeSet {
    return this.#retransmit ?? NO_RANGES;
  }

  /** What is queued, in order: runs of reliable stream bytes and unreliable messages. */
  get items(): Deque<SendItem> {
    return this.#items ?? NO_ITEMS;
  }

  /** @internal Which of its structures the lane has made (tests: an idle or unreliable-only lane holds none it does not use). */
  holds(): { stream: boolean; acked: boolean; retransmit: boolean; items: boolean } {
    return { stream: this.#stream !== null, acked: this.#acked !== null, retransmit: this.#retransmit !== null, items: this.#items !== null };
  }

  /** Reliable bytes queued but never sent. */
  get pendingNewReliableBytes(): number {
    return this.stream.end - this.sentOffset;
  }

  /** Reliable bytes waiting for retransmission. */
  retransmitBytes(): number {
    let n = 0;
    const { lo, hi, size } = this.retransmit;
    for (let i = 0; i < size; i++) n += (hi[i] as number) - (lo[i] as number) + 1;
    return n;
  }

  /** Reliable bytes sent and not yet acknowledged. */
  sentUnackedBytes(): number {
    let acked = 0;
    const { lo, hi, size } = this.acked;
    for (let i = 0; i < size; i++) acked += (hi[i] as number) - (lo[i] as number) + 1;
    return this.sentOffset - this.stream.base - acked;
  }

  hasData(): boolean {
    return this.items.length > 0;
  }

  /** Queues a reliable message; returns its message number. */
  queueReliable(data: Uint8Array): number {
    const num = this.nextMessageNumber++;
    const end = (this.#stream ??= new StreamBuffer()).appendMessage(data, num - this.#lastReliableNumber);
    this.#lastReliableNumber = num;
    const items = (this.#items ??= new Deque<SendItem>());
    const tail = items.length > 0 ? items.at(items.length - 1) : undefined;
    if (tail && tail.reliable) {
      tail.end = end; // consecutive reliable messages form one run
    } else {
      items.push({ reliable: true, end, data: null, messageNumber: num, sent: 0, latest: false, dropAfterUs: Number.POSITIVE_INFINITY });
    }
    return num;
  }

  /** Queues an unreliable message; returns its message number. */
  queueUnreliable(data: Uint8Array, latest: boolean, dropAfterUs: number): number {
    const num = this.nextMessageNumber++;
    (this.#items ??= new Deque<SendItem>()).push({ reliable: false, end: 0, data, messageNumber: num, sent: 0, latest, dropAfterUs });
    this.pendingUnreliableBytes += data.length;
    return num;
  }

  /** A sent stream range was acknowledged. */
  onAcked(offset: number, len: number): void {
    const stream = this.stream;
    const last = offset + len - 1;
    if (last < stream.base) return;
    const acked = (this.#acked ??= new RangeSet());
    acked.add(Math.max(offset, stream.base), last);
    if (this.#retransmit && !this.#retransmit.isEmpty()) this.#retransmit.remove(offset, last);
    // Release the acknowledged prefix.
    if (acked.size > 0 && (acked.lo[0] as number) <= stream.base) {
      const newBase = (acked.hi[0] as number) + 1;
      acked.removeBelow(newBase);
      stream.release(newBase);
    }
  }

  /** A sent stream range was lost: queue the parts not acknowledged since. */
  onLost(offset: number, len: number): void {
    let a = Math.max(offset, this.stream.base);
    const b = offset + len - 1;
    if (b < a) return;
    const { lo, hi, size } = this.acked;
    for (let i = 0; i < size && a <= b; i++) {
      const l = lo[i] as number;
      const h = hi[i] as number;
      if (h < a) continue;
      if (l > b) break;
      if (l > a) (this.#retransmit ??= new RangeSet()).add(a, l - 1);
      a = h + 1;
    }
    if (a <= b) (this.#retransmit ??= new RangeSet()).add(a, b);
  }

  /** Everything sent has been acknowledged and nothing is queued. */
  allReliableDone(): boolean {
    return this.stream.base === this.stream.end;
  }

  /** Drops all queued unreliable messages (connection ending). Returns how many. */
  dropUnreliable(): number {
    const items = this.#items;
    if (!items) return 0;
    let n = 0;
    const keep: SendItem[] = [];
    while (items.length > 0) {
      const it = items.shift() as SendItem;
      if (it.reliable) keep.push(it);
      else n++;
    }
    for (const it of keep) items.push(it);
    this.pendingUnreliableBytes = 0;
    return n;
  }
}
