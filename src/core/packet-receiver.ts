import type { ConnectionKeys } from '../crypto/types.js';
import { Deque } from '../util/deque.js';
import { ReplayWindow } from '../util/replay-window.js';
import { FrameFields, FrameType, decodeFrameInto } from '../wire/frames.js';
import { decodeDataHeader, expandPacketNumber, type DataHeader } from '../wire/header.js';
import { Reader } from '../wire/reader.js';
import { ACK_DELAY_SHIFT, type AckTracker } from './ack-tracker.js';
import type { ConfigValues } from './config.js';
import type { ConnectionCounters, IntervalStats } from './connection-status.js';
import type { Recovery } from './recovery.js';
import { ProtocolViolation, RecvLane, type MessageSink } from './recv-lane.js';
import { EndReason, type ReceivedMessage } from './types.js';

/** The receive queue starts with room for this many messages and grows on demand. */
const RECV_QUEUE_INITIAL_MESSAGES = 64;
/** Smallest sealed payload worth opening: the AEAD tag plus one frame type byte. */
const MIN_PAYLOAD_BYTES = 1;

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
  readonly #queue = new Deque<ReceivedMessage>(RECV_QUEUE_INITIAL_MESSAGES);
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
    const plain = keys.open(pn, data.subarray(0, headerLen), data.subarray(headerLen));
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
    while (r.remaining > 0) {
      decodeFrameInto(r, f);
      switch (f.type) {
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
    this.#queue.push({ connection: host.localCid, lane, messageNumber, reliable, data, receivedAtUs: this.#nowUs });
    if (this.#queue.length === 1) host.onReadable();
    this.#queueBytes += data.length;
    host.messagesReceived++;
  }

  /** Moves up to `max` received messages into `out`; returns how many. */
  receive(out: ReceivedMessage[], max: number): number {
    let n = 0;
    while (n < max && this.#queue.length > 0) {
      const m = this.#queue.shift() as ReceivedMessage;
      this.#queueBytes -= m.data.length;
      out.push(m);
      n++;
    }
    return n;
  }
}
