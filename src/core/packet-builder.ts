import type { ConnectionKeys } from '../crypto/types.js';
import { encodeControl, type ControlPacket } from '../wire/control.js';
import {
  FrameType,
  ackFrameSize,
  encodeAckRanges,
  encodeClose,
  encodeFrame,
  encodeReliableHeader,
  encodeUnreliableHeader,
  reliableHeaderSize,
  unreliableHeaderSize,
} from '../wire/frames.js';
import { encodeDataHeader, packetNumberLength, type DataHeader } from '../wire/header.js';
import { Writer, varintSize } from '../wire/writer.js';
import { MAX_ACK_RANGES, RELIABLE_ACK_DELAY_US, type AckTracker } from './ack-tracker.js';
import type { ConfigValues } from './config.js';
import type { CongestionController } from './congestion.js';
import type { ConnectionCounters, IntervalStats } from './connection-status.js';
import { PACKET_SLACK_BYTES, smallUnreliableHead, type LaneScheduler } from './lane-scheduler.js';
import type { PathValidator, ProbeSource } from './path.js';
import type { Recovery, SentPacket } from './recovery.js';
import type { SendItem, SendLane } from './send-lane.js';
import { NO_TIME } from './timers.js';
import { Slabs, ViewCache } from '../util/slab.js';
import type { SocketAddress, Transmit } from './types.js';

/** A segment smaller than this is not started at the end of a packet ("no tiny slivers", GNS). */
const MIN_SEGMENT_BYTES = 16;
/** An ACK frame gives up its oldest ranges to stay within this (a third of a default packet), so data still fits beside it. */
const ACK_FRAME_BUDGET_BYTES = 400;
/** A STATS frame is only added with more room than this: its largest realistic encoding (1 + 2 + 8 + 8 bytes) with some to spare. */
const STATS_FRAME_ROOM_BYTES = 24;
/** No segment is this long (a packet is smaller), so the size of its length varint bounds any segment header. */
const SEGMENT_LENGTH_BOUND = 0xffff;
/** The type byte that starts every frame. */
const FRAME_TYPE_BYTES = 1;
/** The packet scratch: the largest MTU (1400) and room for any key's overhead. */
const SCRATCH_BYTES = 2048;
/**
 * A packet is written and sealed in place in one scratch buffer shared by every connection (the process
 * is one thread), through cached exact-size views of its header and payload (what libsodium takes), then
 * copied into a slab shared by every connection and handed to the socket as a view of it: the one object
 * a packet costs. A view stays valid while the kernel send is queued because its region is never written again.
 */
const scratch = new ViewCache(SCRATCH_BYTES);
const TX_SLAB_BYTES = 64 * 1024;
const txSlabs = new Slabs(TX_SLAB_BYTES);
/** Room for the largest control packet: a CONNECT_REQUEST with its cookie and handshake payload. */
const CONTROL_PACKET_MAX_BYTES = 8192;

/** What the packet builder reads from its connection, and the counters it keeps there. */
export interface PacketHost extends Pick<ConnectionCounters, 'packetsSent' | 'bytesSent' | 'retransmittedBytes'> {
  readonly config: ConfigValues;
  readonly remote: SocketAddress;
  readonly remoteCid: number;
  readonly endReason: number;
  readonly endDebug: string;
}

/**
 * Frames owed to the peer outside the data flow: set by timers and the close paths, cleared by the
 * builder once written, so that each is sent once however many packets are built.
 */
export class PendingFrames {
  /** The probe timeout fired: an ack-eliciting packet goes out even if the window is full. */
  probe = false;
  /** Keepalive: a PING goes out. */
  ping = false;
  /** A CLOSE frame with the connection's end reason goes out. */
  close = false;
  /** When the last CLOSE frame left: stray packets after a close are answered at most once per RTT. */
  lastCloseSentUs = -NO_TIME;
}

/** Bytes of a LANE frame moving the packet's segments from lane `cur` to `lane` (none if already there). */
function laneFrameSize(cur: number, lane: number): number {
  return lane !== cur ? FRAME_TYPE_BYTES + varintSize(lane) : 0;
}

/** Moves the packet's segments to `lane` with a LANE frame when they are on another; returns the lane they are on. */
function selectLane(w: Writer, cur: number, lane: number): number {
  if (lane !== cur) {
    w.u8(FrameType.Lane, 'lane');
    w.varint(lane, 'lane.lane');
  }
  return lane;
}

/** Writes reliable stream bytes `[offset, offset + len)` of `lane` and records them in `sent` for recovery. */
function writeReliable(w: Writer, lane: SendLane, offset: number, len: number, sent: SentPacket): void {
  encodeReliableHeader(w, offset, len, true);
  lane.stream.copyTo(w, offset, len, 'reliable.data');
  sent.segments.push(lane.index, offset, len);
}

/**
 * The writer and header a packet is built with, one for all the connections of the process (a packet is
 * built and sealed without another in between): an idle connection holds none of its own.
 */
const SHARED_WRITER = new Writer(scratch.bytes);
const SHARED_HEADER: DataHeader = { keyPhase: false, destinationCid: 0, truncatedPn: 0, pnLength: 2 };

/**
 * Assembles a connection's outgoing packets in the scratch shared by every connection (each is copied
 * into a slab once sealed): control packets during the handshake and close, and data packets carrying ACK, CLOSE,
 * STATS, PING, retransmissions, then new data in lane-scheduler order.
 */
export class PacketBuilder {
  readonly #host: PacketHost;
  readonly #recovery: Recovery;
  readonly #cc: CongestionController;
  readonly #ack: AckTracker;
  readonly #lanes: LaneScheduler;
  readonly #interval: IntervalStats;
  readonly #frames: PendingFrames;
  readonly #path: PathValidator;
  readonly #w = SHARED_WRITER;
  readonly #hdr = SHARED_HEADER;
  /** The lane the packet being written last selected (a LANE frame switches it). */
  #curLane = 0;

  constructor(host: PacketHost, recovery: Recovery, cc: CongestionController, ack: AckTracker, lanes: LaneScheduler, interval: IntervalStats, frames: PendingFrames, path: PathValidator) {
    this.#host = host;
    this.#recovery = recovery;
    this.#cc = cc;
    this.#ack = ack;
    this.#lanes = lanes;
    this.#interval = interval;
    this.#frames = frames;
    this.#path = path;
  }

  /** Encodes a control packet to the peer (handshake, CLOSED). */
  control(p: ControlPacket): Transmit {
    const buf = new Uint8Array(CONTROL_PACKET_MAX_BYTES);
    const n = encodeControl(buf, p);
    const host = this.#host;
    host.packetsSent++;
    host.bytesSent += n;
    return { destination: host.remote, data: buf.slice(0, n) };
  }

  /** Builds one data packet, or returns null when nothing is due. `closing`: a CLOSE frame (and ACK) only. */
  data(now: number, keys: ConnectionKeys, closing: boolean): Transmit | null {
    const host = this.#host;
    const cfg = host.config;
    const cc = this.#cc;
    const ack = this.#ack;
    const frames = this.#frames;
    const interval = this.#interval;
    const probe = frames.probe;
    const ping = frames.ping;
    if (this.#recovery.statsLost) {
      // A lost STATS frame is owed again, with today's figures (a newer interval's frame supersedes it anyway).
      this.#recovery.statsLost = false;
      interval.reportDue = true;
    }
    const ackDue = ack.pending && ack.dueUs <= now;
    let wantData = false;
    /** The window is full: only small unreliable messages go, past it (LaneScheduler.windowNeed). */
    let smallOnly = false;
    if (!closing) {
      const at = this.#lanes.dataWantedAtUs(cfg.MTU_PacketSize);
      if (at <= now) {
        const need = probe ? 0 : this.#lanes.windowNeed(cfg.MTU_PacketSize);
        wantData = probe || (need !== 0 && cc.nextSendTimeUs(now, Math.abs(need)) <= now);
        smallOnly = need < 0;
      }
    }
    const response = !closing && this.#path.responseOwedTo(host.remote);
    // A STATS frame due goes at once with an ACK owed soon (within RELIABLE_ACK_DELAY_US) for an ack-eliciting
    // packet, never with an ACK of ACK-only packets (a non-ack-eliciting packet answering non-ack-eliciting ones:
    // idle peers would trade them each second). The ACK of unreliable data waits for the next packet, and the
    // STATS frame with it: sent early, it would add a datagram per interval to traffic that carries its ACKs.
    if (!wantData && !ackDue && !frames.close && !probe && !ping && !response && !(interval.reportDue && ack.dueUs - now <= RELIABLE_ACK_DELAY_US)) {
      if (!closing && this.#lanes.pendingBytes === 0) cc.onAppLimited();
      return null;
    }
    const w = this.#w;
    const headerLen = this.#startPacket(keys);
    const sent = this.#recovery.allocate();
    let ackEliciting = false;

    if (response) this.#path.writeResponse(w);
    if (ack.pending) this.#writeAck(now, w);
    if (frames.close) {
      encodeClose(w, host.endReason, host.endDebug);
      frames.close = false;
      frames.lastCloseSentUs = now;
    }
    if (!closing) {
      if (interval.reportDue && w.remaining > STATS_FRAME_ROOM_BYTES) {
        encodeFrame(w, { type: 'stats', quality: interval.wireQuality(), inPacketsPerSec: interval.inMeter.packetsPerSec, inBytesPerSec: interval.inMeter.bytesPerSec });
        interval.reportDue = false;
        sent.stats = true;
      }
      if (probe || ping) {
        w.u8(FrameType.Ping, 'ping');
        ackEliciting = true;
        sent.ping = true;
        frames.probe = false;
        frames.ping = false;
      }
      if (wantData) {
        if (smallOnly ? this.#writeSmallUnreliable(now, w) : this.#writeData(now, w, sent)) ackEliciting = true;
      }
    }
    if (w.position === headerLen) return null; // the unused record is left to the garbage collector
    sent.ackEliciting = ackEliciting;
    sent.inFlight = ackEliciting;
    sent.pastWindow = smallOnly;
    return { destination: host.remote, data: this.#seal(now, keys, headerLen, sent) };
  }

  /**
   * Builds a probe packet: path frames alone (PATH_CHALLENGE, PATH_RESPONSE) for an address other than
   * the connection's, as `path` decides (the path validator, within that address's amplification
   * budget, or the direct-path prober). Null when none is due. Probe packets are not congestion
   * controlled and are not retransmitted: their source repeats its challenge on its own timer.
   */
  probe(now: number, keys: ConnectionKeys, path: ProbeSource = this.#path): Transmit | null {
    const headerLen = this.#startPacket(keys);
    const to = path.probeTo(this.#host.remote, headerLen + keys.overhead, now);
    if (to === null) return null;
    path.writeProbe(this.#w, now);
    const sent = this.#recovery.allocate();
    sent.ackEliciting = false;
    sent.inFlight = false;
    const data = this.#seal(now, keys, headerLen, sent);
    path.onProbeSent(to, data.length);
    return { destination: to, data };
  }

  /** Writes the header of the next data packet at the start of the scratch; returns the position where its payload starts. */
  #startPacket(keys: ConnectionKeys): number {
    const recovery = this.#recovery;
    const pn = recovery.nextPn;
    const w = this.#w;
    const mtu = this.#host.config.MTU_PacketSize;
    w.reset(scratch.bytes, 0, mtu - keys.overhead);
    const hdr = this.#hdr;
    hdr.keyPhase = keys.sendPhase;
    hdr.destinationCid = this.#host.remoteCid;
    hdr.pnLength = packetNumberLength(pn, recovery.largestAcked);
    hdr.truncatedPn = pn;
    encodeDataHeader(w, hdr);
    return w.position;
  }

  /**
   * Seals the packet in place in the scratch (frames written after `headerEnd`), hands `sent` to recovery,
   * counts it; returns the packet, copied into a slab (a view).
   */
  #seal(now: number, keys: ConnectionKeys, headerEnd: number, sent: SentPacket): Uint8Array {
    const recovery = this.#recovery;
    const pn = recovery.nextPn;
    const payloadLen = this.#w.position - headerEnd;
    const sealedLen = keys.seal(pn, scratch.view(0, headerEnd), scratch.view(headerEnd, payloadLen), scratch.bytes, headerEnd);
    const total = headerEnd + sealedLen;
    sent.size = total;
    recovery.onSent(now, sent);
    const host = this.#host;
    host.packetsSent++;
    host.bytesSent += total;
    this.#interval.outMeter.add(total);
    const at = txSlabs.reserve(total);
    txSlabs.bytes.set(scratch.view(0, total), at);
    return txSlabs.commit(at, total);
  }

  #writeAck(now: number, w: Writer): void {
    const ack = this.#ack;
    const { lo, hi, size: n } = ack.received;
    if (n === 0) return;
    const delay = ack.ackDelay(now);
    // Newest ranges first; keep as many as fit in the budget.
    let from = Math.max(0, n - MAX_ACK_RANGES);
    while (from < n - 1 && ackFrameSize(lo, hi, from, n, delay) > Math.min(w.remaining, ACK_FRAME_BUDGET_BYTES)) from++;
    if (ackFrameSize(lo, hi, from, n, delay) > w.remaining) return;
    encodeAckRanges(w, lo, hi, from, n, delay);
    ack.onAckSent();
  }

  /**
   * Writes data in the scheduler's order (strict priority, then weighted fair queueing); a lane's
   * retransmissions go before its new data, but not before another lane's turn, so that a lossy bulk
   * lane's repairs do not hold up small messages on another lane. Returns true if any data was written.
   */
  #writeData(now: number, w: Writer, sent: SentPacket): boolean {
    const sched = this.#lanes;
    this.#curLane = 0;
    let wrote = false;
    while (w.remaining > MIN_SEGMENT_BYTES / 2) {
      const lane = sched.pick();
      if (!lane) break;
      const rt = lane.retransmit;
      if (!rt.isEmpty()) {
        const a = rt.lo[0] as number;
        const b = rt.hi[0] as number;
        if (a < lane.stream.base) {
          rt.removeBelow(lane.stream.base);
          continue;
        }
        const avail = w.remaining - laneFrameSize(this.#curLane, lane.index) - reliableHeaderSize(a, SEGMENT_LENGTH_BOUND, true);
        if (avail < Math.min(MIN_SEGMENT_BYTES, b - a + 1)) break;
        const len = Math.min(b - a + 1, avail);
        this.#curLane = selectLane(w, this.#curLane, lane.index);
        writeReliable(w, lane, a, len, sent);
        rt.remove(a, a + len - 1);
        this.#host.retransmittedBytes += len;
        sched.chargeRetransmission(lane, len);
        wrote = true;
        continue;
      }
      const item = lane.items.peek();
      if (!item) break;
      const laneHdr = laneFrameSize(this.#curLane, lane.index);
      let len: number;
      if (item.reliable) {
        const a = lane.sentOffset;
        const avail = w.remaining - laneHdr - reliableHeaderSize(a, SEGMENT_LENGTH_BOUND, true);
        const want = item.end - a;
        if (avail < Math.min(MIN_SEGMENT_BYTES, want)) break;
        len = Math.min(want, avail);
        this.#curLane = selectLane(w, this.#curLane, lane.index);
        writeReliable(w, lane, a, len, sent);
        lane.sentOffset += len;
        if (lane.sentOffset === item.end) lane.items.shift();
      } else {
        if (item.sent === 0 && now > item.dropAfterUs) {
          sched.dropLate(lane, (item.data as Uint8Array).length);
          continue;
        }
        len = this.#writeUnreliable(w, lane, item, laneHdr);
        if (len === 0) break;
      }
      sched.charge(lane, len);
      wrote = true;
    }
    sched.settle();
    return wrote;
  }

  /**
   * Writes the small unreliable messages at the heads of the lanes (those {@link smallUnreliableHead}
   * counts) that fit the packet, and nothing else: what goes past a full window. Returns whether any went.
   */
  #writeSmallUnreliable(now: number, w: Writer): boolean {
    const sched = this.#lanes;
    const mtu = this.#host.config.MTU_PacketSize;
    this.#curLane = 0;
    let wrote = false;
    for (const lane of sched.lanes) {
      while (smallUnreliableHead(lane, mtu) > 0) {
        const item = lane.items.peek() as SendItem;
        if (now > item.dropAfterUs) {
          sched.dropLate(lane, (item.data as Uint8Array).length);
          continue;
        }
        const len = this.#writeUnreliable(w, lane, item, laneFrameSize(this.#curLane, lane.index));
        if (len === 0) break;
        sched.charge(lane, len);
        wrote = true;
      }
    }
    sched.settle();
    return wrote;
  }

  /**
   * Writes what fits of unreliable message `item`, the head of `lane` (`laneHdr`: the room a LANE frame
   * takes before it); returns the bytes of it written, 0 when none fit. A message that fits a packet is
   * started in a fresh packet rather than fragmented.
   */
  #writeUnreliable(w: Writer, lane: SendLane, item: SendItem, laneHdr: number): number {
    const data = item.data as Uint8Array;
    const left = data.length - item.sent;
    const avail = w.remaining - laneHdr - unreliableHeaderSize(item.messageNumber, item.sent, SEGMENT_LENGTH_BOUND, true);
    const fresh = this.#host.config.MTU_PacketSize - PACKET_SLACK_BYTES;
    if (avail < left && item.sent === 0 && (left <= fresh || avail < MIN_SEGMENT_BYTES)) return 0;
    if (avail <= 0) return 0;
    const len = Math.min(left, avail);
    this.#curLane = selectLane(w, this.#curLane, lane.index);
    const last = item.sent + len === data.length;
    encodeUnreliableHeader(w, item.messageNumber, item.sent, len, last, item.latest, true);
    w.bytesRange(data, item.sent, item.sent + len, 'unreliable.data');
    item.sent += len;
    lane.pendingUnreliableBytes -= len;
    if (last) lane.items.shift();
    return len;
  }
}
