import { MAX_UNRELIABLE_MESSAGE_SIZE } from './config.js';
import { EndReason } from './types.js';
import { copyBytes, SLAB_MAX_COPY } from '../util/slab.js';
import { ReorderBuffer } from './reorder-buffer.js';

/**
 * Thrown inside frame processing when an authenticated peer breaks the protocol; the connection
 * catches it and closes with `reason`.
 */
export class ProtocolViolation extends Error {
  readonly reason: number;
  constructor(reason: number, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Where a lane delivers complete messages. */
export interface MessageSink {
  deliver(lane: number, messageNumber: number, reliable: boolean, data: Uint8Array): void;
}

interface Partial {
  messageNumber: number;
  /** Total size once the last fragment arrived; -1 before. */
  total: number;
  received: number;
  latest: boolean;
  offsets: number[];
  pieces: Uint8Array[];
}

/** Unreliable messages being reassembled at once on one lane; the oldest is dropped beyond this. */
const MAX_PARTIAL_MESSAGES = 4;
/** Largest message-number jump accepted on the reliable stream (GNS's lurch check). */
const MAX_RELIABLE_NUMBER_GAP = 1_000_000;

const PhaseSize = 0;
const PhaseGap = 1;
const PhaseBody = 2;

/**
 * The receive side of one lane: reassembles the reliable byte stream (in order, exactly once), parses
 * the in-stream message framing incrementally, and reassembles unreliable fragments.
 */
export class RecvLane {
  readonly index: number;
  readonly #sink: MessageSink;
  readonly #maxMessageSize: number;

  /** Every reliable stream byte below this was passed to the framing parser. */
  nextOffset = 0;
  readonly #ooo = new ReorderBuffer();
  /** Feeds bytes the reorder buffer releases to the framing parser (one function for the lane's life). */
  readonly #feedHeld = (ring: Uint8Array, from: number, to: number): void => this.#feed(ring, from, to);

  // Incremental framing parser (wire/message-framing.ts describes the format).
  #phase = PhaseSize;
  #varValue = 0;
  #varRemaining = 0;
  #size = 0;
  #gap = 1;
  #body: Uint8Array | null = null;
  #bodyFill = 0;
  /** Where a small message split across segments is gathered before its copy into a slab (made at the first). */
  #smallBody: Uint8Array | null = null;
  #lastReliableNumber = 0;

  readonly #partials: Partial[] = [];
  #latestDelivered = 0;
  /** Unreliable messages dropped on receive (incomplete fragments, stale Latest). */
  droppedUnreliable = 0;

  constructor(index: number, sink: MessageSink, maxMessageSize: number) {
    this.index = index;
    this.#sink = sink;
    this.#maxMessageSize = maxMessageSize;
  }

  /** Bytes held out of order. */
  get oooBytes(): number {
    return this.#ooo.bytes;
  }

  /** Whether a reliable segment ending at `end` carries bytes not yet received. */
  isNewReliable(offset: number, end: number): boolean {
    if (end <= this.nextOffset) return false;
    return !this.#ooo.covers(Math.max(offset, this.nextOffset), end);
  }

  /**
   * A reliable segment, `buf[start, end)` (read now, never kept). Returns false when it cannot be
   * buffered (the packet must then stay unacked so the sender retries); true when taken or already known.
   */
  onReliable(offset: number, buf: Uint8Array, start: number, end: number, oooLimitBytes: number): boolean {
    const length = end - start;
    const last = offset + length;
    if (last <= this.nextOffset) return true;
    if (offset <= this.nextOffset) {
      this.#feed(buf, start + (this.nextOffset - offset), end);
      this.nextOffset = last;
      if (!this.#ooo.isEmpty()) this.nextOffset = this.#ooo.release(last, this.#feedHeld);
      return true;
    }
    return this.#ooo.hold(this.nextOffset, offset, buf, start, end, oooLimitBytes);
  }

  /** Runs the framing parser over in-order stream bytes `chunk[from, n)`. */
  #feed(chunk: Uint8Array, from: number, n: number): void {
    let p = from;
    while (p < n) {
      if (this.#phase === PhaseBody) {
        const body = this.#body as Uint8Array;
        const take = Math.min(n - p, this.#size - this.#bodyFill);
        body.set(chunk.subarray(p, p + take), this.#bodyFill);
        this.#bodyFill += take;
        p += take;
        if (this.#bodyFill === this.#size) this.#completeReliable(body === this.#smallBody ? copyBytes(body, 0, this.#size) : body);
        continue;
      }
      // Varint byte (size or gap).
      const byte = chunk[p++] as number;
      if (this.#varRemaining === 0) {
        const len = 1 << (byte >>> 6);
        this.#varValue = byte & 0x3f;
        this.#varRemaining = len - 1;
      } else {
        this.#varValue = this.#varValue * 256 + byte;
        this.#varRemaining--;
      }
      if (this.#varRemaining !== 0) continue;
      const v = this.#varValue;
      if (this.#phase === PhaseSize) {
        this.#size = Math.floor(v / 2);
        if (this.#size > this.#maxMessageSize) {
          throw new ProtocolViolation(EndReason.Misc_Generic, `reliable message of ${this.#size} bytes exceeds RecvMaxMessageSize ${this.#maxMessageSize}`);
        }
        if ((v & 1) === 1) {
          this.#phase = PhaseGap;
          continue;
        }
        this.#gap = 1;
      } else {
        this.#gap = v + 2;
        if (this.#gap > MAX_RELIABLE_NUMBER_GAP) throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, 'reliable message number lurch');
      }
      // Header complete. Fast path: the whole body is in this chunk.
      if (n - p >= this.#size) {
        const msg = copyBytes(chunk, p, p + this.#size);
        p += this.#size;
        this.#phase = PhaseSize;
        this.#deliverReliable(msg);
      } else {
        this.#body = this.#size <= SLAB_MAX_COPY ? (this.#smallBody ??= new Uint8Array(SLAB_MAX_COPY)) : new Uint8Array(this.#size);
        this.#bodyFill = 0;
        this.#phase = PhaseBody;
      }
    }
  }

  #completeReliable(body: Uint8Array): void {
    this.#body = null;
    this.#phase = PhaseSize;
    this.#deliverReliable(body);
  }

  #deliverReliable(msg: Uint8Array): void {
    this.#lastReliableNumber += this.#gap;
    this.#sink.deliver(this.index, this.#lastReliableNumber, true, msg);
  }

  /** A reliable message is half-parsed (bytes held outside the app queue). */
  get partialReliableBytes(): number {
    return this.#phase === PhaseBody ? this.#bodyFill : 0;
  }

  /** An unreliable segment, `buf[start, stop)` (read now, never kept). Never retransmitted, so each fragment arrives at most once. */
  onUnreliable(messageNumber: number, offset: number, last: boolean, latest: boolean, buf: Uint8Array, start: number, stop: number): void {
    const end = offset + (stop - start);
    if (end > MAX_UNRELIABLE_MESSAGE_SIZE) throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, `unreliable message beyond ${MAX_UNRELIABLE_MESSAGE_SIZE} bytes`);
    if (messageNumber === 0) throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, 'unreliable message number 0');
    if (latest && messageNumber <= this.#latestDelivered) {
      this.droppedUnreliable += offset === 0 ? 1 : 0;
      return;
    }
    if (offset === 0 && last) {
      this.#deliverUnreliable(messageNumber, latest, copyBytes(buf, start, stop));
      return;
    }
    let part: Partial | undefined;
    for (const q of this.#partials) if (q.messageNumber === messageNumber) part = q;
    if (!part) {
      if (this.#partials.length >= MAX_PARTIAL_MESSAGES) {
        // Evict the oldest message: its lost fragment is not coming back.
        let oldest = 0;
        for (let i = 1; i < this.#partials.length; i++) {
          if ((this.#partials[i] as Partial).messageNumber < (this.#partials[oldest] as Partial).messageNumber) oldest = i;
        }
        this.#partials.splice(oldest, 1);
        this.droppedUnreliable++;
      }
      part = { messageNumber, total: -1, received: 0, latest, offsets: [], pieces: [] };
      this.#partials.push(part);
    }
    for (let i = 0; i < part.offsets.length; i++) {
      const o = part.offsets[i] as number;
      const l = (part.pieces[i] as Uint8Array).length;
      if (offset < o + l && o < end) throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, 'overlapping unreliable fragments');
    }
    if (last) {
      if (part.total !== -1) throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, 'two last fragments');
      part.total = end;
    }
    if (part.total !== -1 && end > part.total) throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, 'fragment beyond message end');
    part.offsets.push(offset);
    part.pieces.push(buf.slice(start, stop));
    part.received += stop - start;
    if (part.total !== -1 && part.received === part.total) {
      const msg = new Uint8Array(part.total);
      for (let i = 0; i < part.offsets.length; i++) msg.set(part.pieces[i] as Uint8Array, part.offsets[i] as number);
      this.#partials.splice(this.#partials.indexOf(part), 1);
      this.#deliverUnreliable(messageNumber, part.latest, msg);
    }
  }

  #deliverUnreliable(messageNumber: number, latest: boolean, msg: Uint8Array): void {
    if (latest) {
      if (messageNumber <= this.#latestDelivered) {
        this.droppedUnreliable++;
        return;
      }
      this.#latestDelivered = messageNumber;
      // Older Latest messages still being reassembled can never be delivered now.
      for (let i = this.#partials.length - 1; i >= 0; i--) {
        const q = this.#partials[i] as Partial;
        if (q.latest && q.messageNumber < messageNumber) {
          this.#partials.splice(i, 1);
          this.droppedUnreliable++;
        }
      }
    }
    this.#sink.deliver(this.index, messageNumber, false, msg);
  }
}
