import { WireError } from './errors.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

/**
 * Data packet header (docs/WIRE_FORMAT.md "Data packets"):
 *
 *   flags(1) | destination connection id (4, big-endian) | packet number (2 or 4, truncated, big-endian)
 *
 * flags: bit 7 = 1 (data packet), bit 6 = key phase, bits 5..1 = 0 (reserved), bit 0 = packet number
 * length (0: 2 bytes, 1: 4 bytes). The whole header is the AEAD's associated data.
 */
export const DATA_FLAG = 0x80;
export const KEY_PHASE_FLAG = 0x40;
export const PN_LONG_FLAG = 0x01;
const RESERVED_BITS = 0x3e;

/** Largest data header: 1 + 4 + 4. */
export const MAX_DATA_HEADER_SIZE = 9;

/** A decoded data packet header. `truncatedPn` must be expanded with {@link expandPacketNumber}. */
export interface DataHeader {
  keyPhase: boolean;
  destinationCid: number;
  /** Packet number as sent (16 or 32 bits). */
  truncatedPn: number;
  /** 2 or 4. */
  pnLength: 2 | 4;
}

export function decodeDataHeader(r: Reader, out: DataHeader): void {
  const flags = r.u8('header.flags');
  if ((flags & DATA_FLAG) === 0) throw new WireError('header.flags', 'not a data packet');
  if ((flags & RESERVED_BITS) !== 0) throw new WireError('header.flags', 'reserved bits set');
  out.keyPhase = (flags & KEY_PHASE_FLAG) !== 0;
  out.destinationCid = r.u32('header.destinationCid');
  if ((flags & PN_LONG_FLAG) !== 0) {
    out.pnLength = 4;
    out.truncatedPn = r.u32('header.packetNumber');
  } else {
    out.pnLength = 2;
    out.truncatedPn = r.u16('header.packetNumber');
  }
}

export function encodeDataHeader(w: Writer, h: DataHeader): void {
  w.u8(DATA_FLAG | (h.keyPhase ? KEY_PHASE_FLAG : 0) | (h.pnLength === 4 ? PN_LONG_FLAG : 0), 'header.flags');
  w.u32(h.destinationCid, 'header.destinationCid');
  if (h.pnLength === 4) w.u32(h.truncatedPn >>> 0, 'header.packetNumber');
  else w.u16(h.truncatedPn & 0xffff, 'header.packetNumber');
}

/**
 * How many packet-number bytes to send so that the receiver can expand them unambiguously
 * (RFC 9000 section 17.1): the window must cover twice the distance to the peer's largest ack.
 */
export function packetNumberLength(pn: number, largestAckedByPeer: number): 2 | 4 {
  const unacked = largestAckedByPeer < 0 ? pn + 1 : pn - largestAckedByPeer;
  return unacked < 0x4000 ? 2 : 4;
}

/**
 * Expands a truncated packet number to the full value closest to `largestReceived + 1`
 * (RFC 9000 appendix A.3).
 */
export function expandPacketNumber(largestReceived: number, truncated: number, bytes: 2 | 4): number {
  const expected = largestReceived + 1;
  const win = bytes === 2 ? 0x10000 : 0x100000000;
  const half = win / 2;
  const t = bytes === 2 ? truncated & 0xffff : truncated >>> 0;
  const candidate = expected - (expected % win) + t;
  if (candidate <= expected - half && candidate + win < Number.MAX_SAFE_INTEGER) return candidate + win;
  if (candidate > expected + half && candidate >= win) return candidate - win;
  return candidate;
}

/** The destination connection id of a data packet (bytes 1-4), read without decoding the header; the caller checks the length (at least 5). */
export function peekDestinationCid(data: Uint8Array): number {
  return (((data[1] as number) << 24) | ((data[2] as number) << 16) | ((data[3] as number) << 8) | (data[4] as number)) >>> 0;
}
