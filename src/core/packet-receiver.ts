import type { ConnectionKeys } from '../crypto/types.js';
import { ReplayWindow } from '../util/replay-window.js';
import { FrameFields, FrameType, decodeFrameInto } from '../wire/frames.js';
import { decodeDataHeader, expandPacketNumber, type DataHeader } from '../wire/header.js';
import { Reader } from '../wire/reader.js';
import { ViewCache, region } from '../util/slab.js';
import { ACK_DELAY_SHIFT, type AckTracker } from './ack-tracker.js';
import type { ConfigValues } from './config.js';
import type { ConnectionCounters, IntervalStats } from './connection-status.js';
import type { Recovery } from './recovery.js';
import { ProtocolViolation, RecvLane, type MessageSink } from './recv-lane.js';
import { EndReason, type ReceivedMessage } from './types.js';

/** What `Endpoint.receiveEach` calls for every message it takes: its lane, number, kind, bytes (its own) and arrival (µs). */
export type MessageVisitor = (lane: number, messageNumber: number, reliable: boolean, data: Uint8Array, receivedAtUs: number) => void;

/** Messages the receive queue has room for at its first message (an idle connection's queue stays small). */
const FIRST_MESSAGES = 8;
/** The storage of every receive queue that has held nothing yet (never written: a push grows first). */
const NO_NUMBERS = new Float64Array(0);
const NO_FLAGS = new Uint8Array(0);

/**
 * The receive queue: messages waiting for the application, as parallel rings (no record per message;
 * {@link PacketReceiver.receive} makes one when it hands a message out). Grows by doubling.
 */
class MessageRing {
  #data: (Uint8Array | undefined)[] = [];
  #lane = NO_NUMBERS;
  #number = NO_NUMBERS;
  #reliable = NO_FLAGS;
  #at = NO_NUMBERS;
  #head = 0;
  length = 0;
  /** The room the first growth past {@link FIRST_MESSAGES} jumps to (the expected busy size). */
  readonly #reserve: number;

  constructor(reserve: number) {
    this.#reserve = reserve;
  }

  push(lane: number, messageNumber: number, reliable: boolean, data: Uint8Array, receivedAtUs: number): void {
    if (this.length === this.#data.length) this.#grow();
    const i = (this.#head + this.length) % this.#data.length;
    this.#data[i] = data;
    this.#lane[i] = lane;
    this.#number[i] = messageNumber;
    this.#reliable[i] = reliable ? 1 : 0;
    this.#at[i] = receivedAtUs;
    this.length++;
  }

  /** Index of the oldest message (call {@link drop} after reading it). */
  get head(): number {
    return this.#head;
  }

  dataAt(i: number): Uint8Array {
    return this.#data[i] as Uint8Array;
  }
  laneAt(i: number): number {
    return this.#lane[i] as number;
  }
  numberAt(i: number): number {
    return this.#number[i] as number;
  }
  reliableAt(i: number): boolean {
    return this.#reliable[i] === 1;
  }
  receivedAt(i: number): number {
    return this.#at[i] as number;
  }

  /** Forgets the oldest message. */
  drop(): void {
    this.#data[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#data.length;
    this.length--;
  }

  #grow(): void {
    const cap = this.#data.length;
    const n = cap === 0 ? FIRST_MESSAGES : cap === FIRST_MESSAGES ? this.#reserve : cap * 2;
    const data = new Array<Uint8Array | undefined>(n).fill(undefined);
    const lane = new Float64Array(n);
    const num = new Float64Array(n);
    const rel = new Uint8Array(n);
    const at = new Float64Array(n);
    for (let k = 0; k < this.length; k++) {
      const i = (this.#head + k) % cap;
      data[k] = this.#data[i];
      lane[k] = this.#lane[i] as number;
      num[k] = this.#number[i] as number;
      rel[k] = this.#reliable[i] as number;
      at[k] = this.#at[i] as number;
    }
    this.#data = data;
    this.#lane = lane;
    this.#number = num;
    this.#reliable = rel;
    this.#at = at;
    this.#head = 0;
  }
}

/** The receive queue's room once it has held more than 8 messages; it grows on demand beyond. */
const RECV_QUEUE_INITIAL_MESSAGES = 64;
/** Smallest sealed payload worth opening: the AEAD tag plus one frame type byte. */
const MIN_PAYLOAD_BYTES = 1;
/** Datagrams up to this size (every packet of a 1400-byte MTU) are opened from the scratch below; larger ones through views of their own. */
const RX_SCRATCH_BYTES = 2048;
/**
 * A received packet is copied here before it is opened, so that its header and sealed part are cached
 * exact-size views (what libsodium takes) rather than two new views per packet. Shared by every
 * connection of the process: a packet is opened before the next one is copied.
 */
const rxScratch = new ViewCache(RX_SCRATCH_BYTES);

/**
 * The reader, frame and header objects a packet is decoded into, one for all the connections of the
 * process: a packet is opened and its frames run without a packet of another connection in between, and
 * an idle connection so holds none of them (nor the last datagram a reader of its own would point to).
 */
const SHARED_READER = new Reader(new Uint8Array(0));
const SHARED_FRAME = new FrameFields();
const SHARED_HEADER: DataHeader = { keyPhase: false, destinationCid: 0, truncatedPn: 0, pnLength: 2 };

/** What the receive path needs from its connection: configuration, counters, and the events that change its state. */
export interface ReceiverHost extends Pick<ConnectionCounters, 'badPackets' | 'duplicatePackets' | 'packetsReceived' | 'bytesReceived' | 'refusedPackets' | 'messagesReceived'> {
  readonly config: ConfigValues;
  readonly localCid: number;
  /** A CLOSE frame arrived. */
  onPeerClose(now: number, reason: number, debug: string): void;
  /** An ACK frame was processed (a lingering connection may be done). */
  onAckFrame(now: number): void;
  /** The receive queue went from empty to non-empty. */
  onReadable(): void;
  /** A PATH_CHALLENGE arrived (`data` is only valid during the call). */
  onPathChallenge(data: Uint8Array): void;
  /** A PATH_RESPONSE arrived (`data` is only valid during the call). */
  onPathResponse(now: number, data: Uint8Array): void;
}

/**
 * The receive side of a connection: authenticates data packets (header, replay window, AEAD), runs
 * their frames, reassembles messages per lane and queues them for the application. Packets that would
 * overflow the receive buffers are refused unacknowledged, so the sender retries later.
 */
export class PacketReceiver implements MessageSink {
  readonly #host: ReceiverHost;
  readonly #recovery: Recovery;
  readonly #ack: AckTracker;
  readonly #interval: IntervalStats;
  readonly #replay = new ReplayWindow();
  readonly #r = SHARED_READER;
  /** The frame being run: one object refilled for every frame. */
  readonly #f = SHARED_FRAME;
  readonly #hdr = SHARED_HEADER;
  readonly #lanes: (RecvLane | undefined)[] = [];
  readonly #queue = new MessageRing(RECV_QUEUE_INITIAL_MESSAGES);
  #queueBytes = 0;
  #droppedQueueFull = 0;
  /** The packet being processed: its number, its arrival, and whether it is the newest yet. */
  #pn = 0;
  #nowUs = 0;
  #newest = false;

  constructor(host: ReceiverHost, recovery: Recovery, ack: AckTracker, interval: IntervalStats) {
    this.#host = host;
    this.#recovery = recovery;
    this.#ack = ack;
    this.#interval = interval;
  }

  /** The newest packet number received (-1 before any). */
  get largestPn(): number {
    return this.#replay.largest;
  }

  /** Whether the packet last opened is newer than every packet before it (only such a packet may move the path). */
  /** Whether the packet last processed carried a frame other than PADDING, PATH_CHALLENGE and PATH_RESPONSE (RFC 9000 9.1: only such a packet moves the peer's path). */
  nonProbing = false;

  get newest(): boolean {
    return this.#newest;
  }

  /** Messages waiting for the application. */
  get length(): number {
    return this.#queue.length;
  }

  /** Unreliable messages dropped on receive: incomplete, stale `Latest`, or the queue was full. */
  droppedUnreliable(): number {
    let n = this.#droppedQueueFull;
    for (const l of this.#lanes) if (l) n += l.droppedUnreliable;
    return n;
  }

  /**
   * Authenticates a data packet and records it as received. Returns its plaintext, or null when it is
   * malformed, a duplicate or forged (counted, never thrown).
   */
  open(keys: ConnectionKeys, data: Uint8Array): Uint8Array | null {
    const host = this.#host;
    const r = this.#r;
    const hdr = this.#hdr;
    let headerLen: number;
    try {
      r.reset(data);
      decodeDataHeader(r, hdr);
      headerLen = r.position;
    } catch {
      host.badPackets++;
      return null;
    }
    if (data.length - headerLen < keys.overhead + MIN_PAYLOAD_BYTES) {
      host.badPackets++;
      return null;
    }
    const replay = this.#replay;
    const pn = expandPacketNumber(replay.largest, hdr.truncatedPn, hdr.pnLength);
    if (!replay.isNew(pn)) {
      host.duplicatePackets++;
      return null;
    }
    const len = data.length;
    let plain: Uint8Array | null;
    if (len <= RX_SCRATCH_BYTES) {
      rxScratch.bytes.set(data, 0);
      plain = keys.open(pn, rxScratch.view(0, headerLen), rxScratch.view(headerLen, len - headerLen));
    } else {
      plain = keys.open(pn, region(data, 0, headerLen), region(data, headerLen, data.length - headerLen));
    }
    if (!plain) {
      host.badPackets++;
      return null;
    }
    this.#newest = pn > replay.largest;
    this.#pn = pn;
    replay.mark(pn);
    host.packetsReceived++;
    host.bytesReceived += data.length;
    this.#interval.onReceived(pn, data.length);
    return plain;
  }

  /**
   * Runs the frames of the packet just opened. Throws `WireError` or `ProtocolViolation` when the peer
   * broke the protocol. `lingering`: data frames are discarded (GNS), acks still count.
   */
  processFrames(now: number, plain: Uint8Array, lingering: boolean): void {
    const host = this.#host;
    const r = this.#r;
    r.reset(plain);
    this.#nowUs = now;
    let lane = 0;
    let ackEliciting = false;
    let immediate = false;
    let reliable = false;
    let refused = false;
    const f = this.#f;
    this.nonProbing = false;
    while (r.remaining > 0) {
      decodeFrameInto(r, f);
      const t = f.type;
      if (t !== FrameType.Padding && t !== FrameType.PathChallenge && t !== FrameType.PathResponse) this.nonProbing = true;
      switch (t) {
        case FrameType.Padding:
          break;
        case FrameType.Ping:
          ackEliciting = true;
          immediate = true;
          break;
        case FrameType.Ack:
          if (!this.#recovery.onAck(now, f.lo, f.hi, f.ackDelay << ACK_DELAY_SHIFT)) {
            throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, 'ack of a packet never sent');
          }
          host.onAckFrame(now);
          break;
        case FrameType.Lane:
          lane = f.lane;
          break;
        case FrameType.Reliable: {
          ackEliciting = true;
          reliable = true;
          if (lingering) break;
          const rl = this.#lane(lane);
          const end = f.offset + (f.dataEnd - f.dataStart);
          // A segment at the lane's next offset is refused only when the application's queue is full: it
          // fills the hole that out-of-order data waits for, so refusing it would deadlock a full buffer.
          if (rl.isNewReliable(f.offset, end) && (f.offset > rl.nextOffset ? this.#full() : this.#queueFull())) {
            refused = true;
            break;
          }
          if (!rl.onReliable(f.offset, plain, f.dataStart, f.dataEnd, host.config.RecvBufferSize - this.#queueBytes)) refused = true;
          break;
        }
        case FrameType.Unreliable:
          ackEliciting = true;
          if (lingering) break;
          // Only the application's queue limits unreliable data: another lane's out-of-order bytes do not.
          if (this.#queueFull()) {
            if (f.offset === 0) this.#droppedQueueFull++;
            break;
          }
          this.#lane(lane).onUnreliable(f.messageNumber, f.offset, f.last, f.latest, plain, f.dataStart, f.dataEnd);
          break;
        case FrameType.Close:
          host.onPeerClose(now, f.reason, f.debug);
          return;
        case FrameType.Stats:
          this.#interval.onPeerStats(f.quality);
          break;
        case FrameType.PathChallenge:
          host.onPathChallenge(plain.subarray(f.dataStart, f.dataEnd));
          break;
        case FrameType.PathResponse:
          host.onPathResponse(now, plain.subarray(f.dataStart, f.dataEnd));
          break;
        default:
          break; // decodeFrameInto throws on any other type
      }
    }
    if (refused) {
      // Not acknowledged: the sender sees the packet as lost and retries (GNS Test_recv_buf_full).
      host.refusedPackets++;
      return;
    }
    this.#ack.onPacket(now, this.#pn, ackEliciting, immediate, reliable);
  }

  #lane(i: number): RecvLane {
    let l = this.#lanes[i];
    if (!l) {
      l = new RecvLane(i, this, this.#host.config.RecvMaxMessageSize);
      this.#lanes[i] = l;
    }
    return l;
  }

  /** The application's receive queue is at its message or byte limit. */
  #queueFull(): boolean {
    const cfg = this.#host.config;
    return this.#queue.length >= cfg.RecvBufferMessages || this.#queueBytes >= cfg.RecvBufferSize;
  }

  /** The receive buffers are full: the application's queue, or it and the lanes' held bytes together. */
  #full(): boolean {
    const cfg = this.#host.config;
    if (this.#queueFull()) return true;
    let held = this.#queueBytes;
    for (const l of this.#lanes) if (l) held += l.oooBytes + l.partialReliableBytes;
    return held >= cfg.RecvBufferSize;
  }

  /** MessageSink: a lane completed a message. */
  deliver(lane: number, messageNumber: number, reliable: boolean, data: Uint8Array): void {
    const host = this.#host;
    this.#queue.push(lane, messageNumber, reliable, data, this.#nowUs);
    if (this.#queue.length === 1) host.onReadable();
    this.#queueBytes += data.length;
    host.messagesReceived++;
  }

  /** Moves up to `max` received messages into `out` (a record each); returns how many. */
  receive(out: ReceivedMessage[], max: number): number {
    const q = this.#queue;
    const connection = this.#host.localCid;
    let n = 0;
    while (n < max && q.length > 0) {
      const i = q.head;
      const data = q.dataAt(i);
      out.push({ connection, lane: q.laneAt(i), messageNumber: q.numberAt(i), reliable: q.reliableAt(i), data, receivedAtUs: q.receivedAt(i) });
      q.drop();
      this.#queueBytes -= data.length;
      n++;
    }
    return n;
  }

  /** Takes up to `max` received messages, calling `visit` for each (no record is made); returns how many. */
  receiveEach(max: number, visit: MessageVisitor): number {
    const q = this.#queue;
    let n = 0;
    while (n < max && q.length > 0) {
      const i = q.head;
      const data = q.dataAt(i);
      const lane = q.laneAt(i);
      const num = q.numberAt(i);
      const reliable = q.reliableAt(i);
      const at = q.receivedAt(i);
      q.drop();
      this.#queueBytes -= data.length;
      n++;
      visit(lane, num, reliable, data, at);
    }
    return n;
  }
}
