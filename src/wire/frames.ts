import { WireError } from './errors.js';
import type { Reader } from './reader.js';
import { varintSize, type Writer } from './writer.js';

/**
 * Frames inside the (decrypted) payload of a data packet. docs/WIRE_FORMAT.md "Frames" specifies each.
 * Every frame starts with a type byte:
 *
 *   0x00        PADDING     a run of zero bytes
 *   0x01        PING        asks for an ack now (keepalive, probe)
 *   0x02        ACK         received packet ranges and the ack delay
 *   0x03        LANE        selects the lane of the segments that follow (lane 0 at packet start)
 *   0x04-0x05   RELIABLE    reliable stream segment; bit 0: explicit length
 *   0x06        CLOSE       reason code and debug text
 *   0x07        STATS       the sender's view of the link (quality, receive rates)
 *   0x08        PATH_CHALLENGE  8 unpredictable bytes: is the peer at the address this packet goes to?
 *   0x09        PATH_RESPONSE   the 8 bytes of a PATH_CHALLENGE, echoed on the path it came from
 *   0x10-0x1f   UNRELIABLE  unreliable message segment; bit 0: explicit length, bit 1: last fragment,
 *                           bit 2: offset present, bit 3: Latest delivery
 *
 * Anything else is a protocol error. A segment without an explicit length runs to the end of the packet.
 */
export const FrameType = {
  Padding: 0x00,
  Ping: 0x01,
  Ack: 0x02,
  Lane: 0x03,
  Reliable: 0x04,
  Close: 0x06,
  Stats: 0x07,
  PathChallenge: 0x08,
  PathResponse: 0x09,
  Unreliable: 0x10,
} as const;

export const SEG_HAS_LENGTH = 0x01;
export const UNREL_LAST = 0x02;
export const UNREL_HAS_OFFSET = 0x04;
export const UNREL_LATEST = 0x08;

/** Lanes are numbered 0..254 (255 lanes). */
export const MAX_LANES = 255;
/** Debug text in a CLOSE frame is at most this many UTF-8 bytes. */
export const MAX_CLOSE_DEBUG_BYTES = 128;
/** A PATH_CHALLENGE or PATH_RESPONSE carries this many bytes (RFC 9000 19.17). */
export const PATH_DATA_BYTES = 8;
/** Encoded size of a PATH_CHALLENGE or PATH_RESPONSE frame: the type byte and the data. */
export const PATH_FRAME_BYTES = 1 + PATH_DATA_BYTES;

export interface PaddingFrame {
  type: 'padding';
  length: number;
}
export interface PingFrame {
  type: 'ping';
}
/**
 * ACK: ranges of received packet numbers, ascending and disjoint (`lo[i]..hi[i]` inclusive); the largest
 * acknowledged packet is `hi[hi.length - 1]`. `ackDelay` is in units of 8 microseconds.
 */
export interface AckFrame {
  type: 'ack';
  ackDelay: number;
  lo: number[];
  hi: number[];
}
export interface LaneFrame {
  type: 'lane';
  lane: number;
}
export interface ReliableFrame {
  type: 'reliable';
  /** Byte offset in the lane's reliable stream. */
  offset: number;
  data: Uint8Array;
  explicitLength: boolean;
}
export interface UnreliableFrame {
  type: 'unreliable';
  messageNumber: number;
  /** Byte offset of this fragment within the message. */
  offset: number;
  last: boolean;
  latest: boolean;
  data: Uint8Array;
  explicitLength: boolean;
}
export interface CloseFrame {
  type: 'close';
  reason: number;
  debug: string;
}
/** STATS: `quality` in permille (0..1000) or -1 for unknown; receive rates measured by the sender. */
export interface StatsFrame {
  type: 'stats';
  quality: number;
  inPacketsPerSec: number;
  inBytesPerSec: number;
}

/** PATH_CHALLENGE (RFC 9000 19.17): the receiver echoes `data` in a PATH_RESPONSE on the path the challenge came from. */
export interface PathChallengeFrame {
  type: 'pathChallenge';
  /** {@link PATH_DATA_BYTES} bytes. */
  data: Uint8Array;
}
/** PATH_RESPONSE (RFC 9000 19.18): the data of a PATH_CHALLENGE, echoed. */
export interface PathResponseFrame {
  type: 'pathResponse';
  /** {@link PATH_DATA_BYTES} bytes. */
  data: Uint8Array;
}

export type Frame = PaddingFrame | PingFrame | AckFrame | LaneFrame | ReliableFrame | UnreliableFrame | CloseFrame | StatsFrame | PathChallengeFrame | PathResponseFrame;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * One frame as the receive path reads it: a single object, refilled by {@link decodeFrameInto} for every
 * frame of every packet, so that reading a packet allocates nothing. `type` is the frame's type byte with
 * its flag bits cleared (a {@link FrameType} value); only the fields of that type are meaningful, and
 * they stay valid until the next decode. Segment and path data are positions in the reader's buffer.
 */
export class FrameFields {
  type = 0;
  /** LANE: the lane. PADDING: the run's length. */
  lane = 0;
  /** RELIABLE: stream offset. UNRELIABLE: byte offset of the fragment. */
  offset = 0;
  messageNumber = 0;
  last = false;
  latest = false;
  explicitLength = false;
  /** Segment or path data: `[dataStart, dataEnd)` of the reader's buffer. */
  dataStart = 0;
  dataEnd = 0;
  /** ACK: delay in units of 8 µs, and the ranges ascending (`lo[i]..hi[i]`; arrays reused). */
  ackDelay = 0;
  readonly lo: number[] = [];
  readonly hi: number[] = [];
  /** CLOSE. */
  reason = 0;
  debug = '';
  /** STATS (quality in permille, -1 unknown). */
  quality = 0;
  inPacketsPerSec = 0;
  inBytesPerSec = 0;
}

/** Decodes one frame into `f`. Throws {@link WireError} (and nothing else) on malformed input. */
export function decodeFrameInto(r: Reader, f: FrameFields): void {
  const t = r.u8('frame.type');
  if (t >= FrameType.Unreliable && t <= 0x1f) {
    f.type = FrameType.Unreliable;
    f.messageNumber = r.varint('unreliable.messageNumber');
    f.offset = (t & UNREL_HAS_OFFSET) !== 0 ? r.varint('unreliable.offset') : 0;
    f.explicitLength = (t & SEG_HAS_LENGTH) !== 0;
    f.last = (t & UNREL_LAST) !== 0;
    f.latest = (t & UNREL_LATEST) !== 0;
    f.dataStart = f.explicitLength ? r.take(r.varint('unreliable.length'), 'unreliable.data') : r.takeRest();
    f.dataEnd = r.position;
    return;
  }
  f.type = t;
  switch (t) {
    case FrameType.Padding: {
      let length = 1;
      while (r.peek() === 0) {
        r.skip(1, 'padding');
        length++;
      }
      f.lane = length;
      return;
    }
    case FrameType.Ping:
      return;
    case FrameType.Ack:
      decodeAckInto(r, f);
      return;
    case FrameType.Lane: {
      const lane = r.varint('lane.lane');
      if (lane >= MAX_LANES) throw new WireError('lane.lane', `lane ${lane} >= ${MAX_LANES}`);
      f.lane = lane;
      return;
    }
    case FrameType.Reliable:
    case FrameType.Reliable | SEG_HAS_LENGTH: {
      f.type = FrameType.Reliable;
      f.offset = r.varint('reliable.offset');
      f.explicitLength = (t & SEG_HAS_LENGTH) !== 0;
      f.dataStart = f.explicitLength ? r.take(r.varint('reliable.length'), 'reliable.data') : r.takeRest();
      f.dataEnd = r.position;
      if (f.offset + (f.dataEnd - f.dataStart) > Number.MAX_SAFE_INTEGER) throw new WireError('reliable.offset', 'stream offset overflow');
      return;
    }
    case FrameType.Close: {
      const reason = r.varint('close.reason');
      if (reason > 0xffff) throw new WireError('close.reason', 'reason code above 65535');
      const n = r.varint('close.debugLength');
      if (n > MAX_CLOSE_DEBUG_BYTES) throw new WireError('close.debugLength', `debug text over ${MAX_CLOSE_DEBUG_BYTES} bytes`);
      const bytes = r.bytes(n, 'close.debug');
      try {
        f.debug = utf8Decoder.decode(bytes);
      } catch {
        throw new WireError('close.debug', 'not UTF-8');
      }
      f.reason = reason;
      return;
    }
    case FrameType.Stats: {
      const q = r.varint('stats.quality');
      if (q > 1001) throw new WireError('stats.quality', 'quality above 1000 permille');
      f.quality = q - 1;
      f.inPacketsPerSec = r.varint('stats.inPacketsPerSec');
      f.inBytesPerSec = r.varint('stats.inBytesPerSec');
      return;
    }
    case FrameType.PathChallenge:
      f.dataStart = r.take(PATH_DATA_BYTES, 'pathChallenge.data');
      f.dataEnd = r.position;
      return;
    case FrameType.PathResponse:
      f.dataStart = r.take(PATH_DATA_BYTES, 'pathResponse.data');
      f.dataEnd = r.position;
      return;
    default:
      throw new WireError('frame.type', `unknown frame type 0x${t.toString(16)}`);
  }
}

function decodeAckInto(r: Reader, f: FrameFields): void {
  const largest = r.varint('ack.largest');
  const ackDelay = r.varint('ack.ackDelay');
  const count = r.varint('ack.rangeCount');
  // Each further range takes at least two bytes, so a count beyond that is a lie.
  if (count > r.remaining / 2) throw new WireError('ack.rangeCount', 'more ranges than bytes');
  const first = r.varint('ack.firstRange');
  if (first > largest) throw new WireError('ack.firstRange', 'range below packet number 0');
  const lo = f.lo;
  const hi = f.hi;
  lo.length = count + 1;
  hi.length = count + 1;
  let curHi = largest;
  let curLo = largest - first;
  lo[count] = curLo;
  hi[count] = curHi;
  for (let i = count - 1; i >= 0; i--) {
    const gap = r.varint('ack.gap');
    const len = r.varint('ack.rangeLength');
    curHi = curLo - gap - 2;
    curLo = curHi - len;
    if (curLo < 0) throw new WireError('ack.gap', 'range below packet number 0');
    lo[i] = curLo;
    hi[i] = curHi;
  }
  f.ackDelay = ackDelay;
}

/** Decodes one frame as a value of its own (tests, vectors, tools; the receive path uses {@link decodeFrameInto}). Throws {@link WireError} (and nothing else) on malformed input. */
export function decodeFrame(r: Reader): Frame {
  const f = new FrameFields();
  decodeFrameInto(r, f);
  const data = (): Uint8Array => r.buffer.subarray(f.dataStart, f.dataEnd);
  switch (f.type) {
    case FrameType.Unreliable:
      return { type: 'unreliable', messageNumber: f.messageNumber, offset: f.offset, last: f.last, latest: f.latest, data: data(), explicitLength: f.explicitLength };
    case FrameType.Padding:
      return { type: 'padding', length: f.lane };
    case FrameType.Ping:
      return { type: 'ping' };
    case FrameType.Ack:
      return { type: 'ack', ackDelay: f.ackDelay, lo: f.lo.slice(), hi: f.hi.slice() };
    case FrameType.Lane:
      return { type: 'lane', lane: f.lane };
    case FrameType.Reliable:
      return { type: 'reliable', offset: f.offset, data: data(), explicitLength: f.explicitLength };
    case FrameType.Close:
      return { type: 'close', reason: f.reason, debug: f.debug };
    case FrameType.Stats:
      return { type: 'stats', quality: f.quality, inPacketsPerSec: f.inPacketsPerSec, inBytesPerSec: f.inBytesPerSec };
    case FrameType.PathChallenge:
      return { type: 'pathChallenge', data: data() };
    default:
      return { type: 'pathResponse', data: data() };
  }
}

/**
 * Writes an ACK frame for the ranges `lo[from..to)`/`hi[from..to)` (ascending), newest first.
 * Used both for frame values and straight from a RangeSet's arrays on the send path.
 */
export function encodeAckRanges(w: Writer, lo: ArrayLike<number>, hi: ArrayLike<number>, from: number, to: number, ackDelay: number): void {
  const top = to - 1;
  const largest = hi[top] as number;
  w.u8(FrameType.Ack, 'ack.type');
  w.varint(largest, 'ack.largest');
  w.varint(ackDelay, 'ack.ackDelay');
  w.varint(top - from, 'ack.rangeCount');
  w.varint(largest - (lo[top] as number), 'ack.firstRange');
  for (let i = top - 1; i >= from; i--) {
    w.varint((lo[i + 1] as number) - (hi[i] as number) - 2, 'ack.gap');
    w.varint((hi[i] as number) - (lo[i] as number), 'ack.rangeLength');
  }
}

/** Encoded size of an ACK frame over `lo[from..to)`/`hi[from..to)`. */
export function ackFrameSize(lo: ArrayLike<number>, hi: ArrayLike<number>, from: number, to: number, ackDelay: number): number {
  const top = to - 1;
  const largest = hi[top] as number;
  let n = 1 + varintSize(largest) + varintSize(ackDelay) + varintSize(top - from) + varintSize(largest - (lo[top] as number));
  for (let i = top - 1; i >= from; i--) {
    n += varintSize((lo[i + 1] as number) - (hi[i] as number) - 2) + varintSize((hi[i] as number) - (lo[i] as number));
  }
  return n;
}

/** Writes a RELIABLE segment header; the caller writes `length` data bytes after it. */
export function encodeReliableHeader(w: Writer, offset: number, length: number, explicitLength: boolean): void {
  w.u8(FrameType.Reliable | (explicitLength ? SEG_HAS_LENGTH : 0), 'reliable.type');
  w.varint(offset, 'reliable.offset');
  if (explicitLength) w.varint(length, 'reliable.length');
}

/** Size of a RELIABLE segment header. */
export function reliableHeaderSize(offset: number, length: number, explicitLength: boolean): number {
  return 1 + varintSize(offset) + (explicitLength ? varintSize(length) : 0);
}

/** Writes an UNRELIABLE segment header; the caller writes the fragment bytes after it. */
export function encodeUnreliableHeader(w: Writer, messageNumber: number, offset: number, length: number, last: boolean, latest: boolean, explicitLength: boolean): void {
  const t = FrameType.Unreliable | (explicitLength ? SEG_HAS_LENGTH : 0) | (last ? UNREL_LAST : 0) | (offset !== 0 ? UNREL_HAS_OFFSET : 0) | (latest ? UNREL_LATEST : 0);
  w.u8(t, 'unreliable.type');
  w.varint(messageNumber, 'unreliable.messageNumber');
  if (offset !== 0) w.varint(offset, 'unreliable.offset');
  if (explicitLength) w.varint(length, 'unreliable.length');
}

/** Size of an UNRELIABLE segment header. */
export function unreliableHeaderSize(messageNumber: number, offset: number, length: number, explicitLength: boolean): number {
  return 1 + varintSize(messageNumber) + (offset !== 0 ? varintSize(offset) : 0) + (explicitLength ? varintSize(length) : 0);
}

/** Encodes a CLOSE frame. Debug text is cut to {@link MAX_CLOSE_DEBUG_BYTES} on a character boundary. */
export function encodeClose(w: Writer, reason: number, debug: string): void {
  const bytes = utf8Truncate(debug, MAX_CLOSE_DEBUG_BYTES);
  w.u8(FrameType.Close, 'close.type');
  w.varint(reason, 'close.reason');
  w.varint(bytes.length, 'close.debugLength');
  w.bytes(bytes, 'close.debug');
}

/** UTF-8 bytes of `s`, cut to at most `max` bytes without splitting a character. */
export function utf8Truncate(s: string, max: number): Uint8Array {
  const bytes = utf8Encoder.encode(s);
  if (bytes.length <= max) return bytes;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) so a character is never split.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Writes a PATH_CHALLENGE (`type` {@link FrameType.PathChallenge}) or PATH_RESPONSE frame; `data` holds {@link PATH_DATA_BYTES} bytes. */
export function encodePathFrame(w: Writer, type: typeof FrameType.PathChallenge | typeof FrameType.PathResponse, data: Uint8Array): void {
  if (data.length !== PATH_DATA_BYTES) throw new WireError('path.data', `path data must be ${PATH_DATA_BYTES} bytes`);
  w.u8(type, 'path.type');
  w.bytes(data, 'path.data');
}

/** Encodes any frame value (tests, vectors, and the rarely used frames on the send path). */
export function encodeFrame(w: Writer, f: Frame): void {
  switch (f.type) {
    case 'padding':
      w.zeros(f.length, 'padding');
      return;
    case 'ping':
      w.u8(FrameType.Ping, 'ping.type');
      return;
    case 'ack':
      if (f.lo.length === 0 || f.lo.length !== f.hi.length) throw new WireError('ack.ranges', 'an ack needs at least one range');
      encodeAckRanges(w, f.lo, f.hi, 0, f.lo.length, f.ackDelay);
      return;
    case 'lane':
      w.u8(FrameType.Lane, 'lane.type');
      w.varint(f.lane, 'lane.lane');
      return;
    case 'reliable':
      encodeReliableHeader(w, f.offset, f.data.length, f.explicitLength);
      w.bytes(f.data, 'reliable.data');
      return;
    case 'unreliable':
      encodeUnreliableHeader(w, f.messageNumber, f.offset, f.data.length, f.last, f.latest, f.explicitLength);
      w.bytes(f.data, 'unreliable.data');
      return;
    case 'close':
      encodeClose(w, f.reason, f.debug);
      return;
    case 'stats':
      w.u8(FrameType.Stats, 'stats.type');
      w.varint(f.quality + 1, 'stats.quality');
      w.varint(f.inPacketsPerSec, 'stats.inPacketsPerSec');
      w.varint(f.inBytesPerSec, 'stats.inBytesPerSec');
      return;
    case 'pathChallenge':
      encodePathFrame(w, FrameType.PathChallenge, f.data);
      return;
    case 'pathResponse':
      encodePathFrame(w, FrameType.PathResponse, f.data);
      return;
    default: {
      const never: never = f;
      throw new WireError('frame.type', `unknown frame ${(never as Frame).type}`);
    }
  }
}
