import { MAX_ADDRESS_BYTES, readAddress, writeAddress, type WireAddress } from './address.js';
import { WireError } from './errors.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

/**
 * In-band messages: what the relayed facades (NetworkManager, NetworkingMessages) say to each other as
 * messages on lane 0 of an end-to-end connection, inside its encryption. docs/WIRE_FORMAT.md "In-band
 * messages" has the layouts.
 *
 *   0x01 ROUTE            route string (ASCII base64url, 1..MAX_ROUTE_STRING_BYTES bytes, to the end)
 *   0x02 CHANNEL_MESSAGE  channel (int32 little-endian) | payload (to the end, may be empty)
 *   0x03 DIRECT           flags (u8; 1: the sender allows direct paths) | count (u8, at most
 *                         MAX_DIRECT_CANDIDATES) | count addresses (family u8 4/6, 4 or 16 bytes, port u16)
 */
export const InBandType = {
  /** The sender's new route string: the receiver re-links to it when the sender's relay changes. */
  Route: 0x01,
  /** NetworkingMessages: a message on a channel with no lane of its own (outside 0..253). */
  ChannelMessage: 0x02,
  /** NetworkingMessages with direct paths allowed: the sender's candidate addresses for a direct path (docs/P2P.md). */
  Direct: 0x03,
} as const;

/** Most candidate addresses one DIRECT message carries. */
export const MAX_DIRECT_CANDIDATES = 8;
/** DIRECT flag: the sender allows direct paths (its candidates may follow). */
export const DIRECT_ALLOWED = 1;

/** Longest route string a ROUTE message may carry, in bytes (one byte a character). */
export const MAX_ROUTE_STRING_BYTES = 1024;

/** Bytes of a CHANNEL_MESSAGE before its payload: the type byte and the int32 channel. */
export const CHANNEL_HEADER_BYTES = 5;

/** A decoded ROUTE message. */
export interface RouteUpdate {
  type: 'route';
  /** The sender's route string (base64url); the codec checks its characters, not what it encodes. */
  route: string;
}

/** A decoded CHANNEL_MESSAGE. */
export interface ChannelMessage {
  type: 'channelMessage';
  /** The NetworkingMessages channel, an int32. */
  channel: number;
  /** The message: a view of the decoded bytes (no copy), possibly empty. */
  payload: Uint8Array;
}

/** A decoded DIRECT message. */
export interface DirectOffer {
  type: 'direct';
  /** The sender allows direct paths. */
  allowed: boolean;
  /** Its candidate addresses (none yet, in the first message of a connection). */
  candidates: WireAddress[];
}

/** What {@link decodeInBand} returns. */
export type InBandMessage = RouteUpdate | ChannelMessage | DirectOffer;

/** A DIRECT message. Throws {@link WireError} for more than {@link MAX_DIRECT_CANDIDATES} candidates or one that is not an IP address. */
export function encodeDirect(allowed: boolean, candidates: readonly WireAddress[]): Uint8Array {
  if (candidates.length > MAX_DIRECT_CANDIDATES) throw new WireError('inBand.direct', `${candidates.length} candidates, more than ${MAX_DIRECT_CANDIDATES}`);
  const buf = new Uint8Array(3 + candidates.length * MAX_ADDRESS_BYTES);
  const w = new Writer(buf);
  w.u8(InBandType.Direct, 'inBand.type');
  w.u8(allowed ? DIRECT_ALLOWED : 0, 'inBand.flags');
  w.u8(candidates.length, 'inBand.count');
  for (const c of candidates) writeAddress(w, c);
  return buf.subarray(0, w.position);
}

/** `A-Z a-z 0-9 - _`: the characters a route string is made of. */
function isBase64urlCode(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

function checkRouteLength(n: number): void {
  if (n === 0) throw new WireError('inBand.route', 'empty route');
  if (n > MAX_ROUTE_STRING_BYTES) throw new WireError('inBand.route', `${n} bytes, more than ${MAX_ROUTE_STRING_BYTES}`);
}

/**
 * A ROUTE message: the type byte, then the route string as ASCII. Throws {@link WireError} for a route that
 * {@link decodeInBand} would refuse (empty, longer than {@link MAX_ROUTE_STRING_BYTES}, or not base64url).
 */
export function encodeRouteUpdate(route: string): Uint8Array {
  checkRouteLength(route.length);
  const out = new Uint8Array(1 + route.length);
  out[0] = InBandType.Route;
  for (let i = 0; i < route.length; i++) {
    const c = route.charCodeAt(i);
    if (!isBase64urlCode(c)) throw new WireError('inBand.route', `character ${i} is not base64url`);
    out[1 + i] = c;
  }
  return out;
}

/**
 * Writes the {@link CHANNEL_HEADER_BYTES}-byte CHANNEL_MESSAGE header (type byte, int32 LE channel) into
 * `out` at `offset`, for a payload the caller puts right after it. Returns the bytes written (5). Throws
 * {@link WireError} if `channel` is not an int32 or `out` has no room.
 */
export function encodeChannelHeader(out: Uint8Array, channel: number, offset = 0): number {
  const w = new Writer(out, offset);
  w.u8(InBandType.ChannelMessage, 'inBand.type');
  w.i32le(channel, 'inBand.channel');
  return CHANNEL_HEADER_BYTES;
}

/** A CHANNEL_MESSAGE: the header, then a copy of `payload`. Throws {@link WireError} if `channel` is not an int32. */
export function encodeChannelMessage(channel: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(CHANNEL_HEADER_BYTES + payload.length);
  encodeChannelHeader(out, channel);
  out.set(payload, CHANNEL_HEADER_BYTES);
  return out;
}

/**
 * Decodes an in-band message (a whole message received on lane 0). A channel message's payload is a view of
 * `data`. Throws {@link WireError} (and nothing else) for empty input, an unknown type, a route that is
 * empty, too long or not base64url, a channel message shorter than {@link CHANNEL_HEADER_BYTES} bytes, or a
 * DIRECT message that is truncated, has too many candidates or bytes after them.
 */
export function decodeInBand(data: Uint8Array): InBandMessage {
  const r = new Reader(data);
  const t = r.u8('inBand.type');
  switch (t) {
    case InBandType.Route: {
      const b = r.rest();
      checkRouteLength(b.length);
      for (let i = 0; i < b.length; i++) {
        if (!isBase64urlCode(b[i] as number)) throw new WireError('inBand.route', `byte ${i} (0x${(b[i] as number).toString(16)}) is not base64url`);
      }
      return { type: 'route', route: String.fromCharCode(...b) };
    }
    case InBandType.ChannelMessage: {
      const channel = r.i32le('inBand.channel');
      return { type: 'channelMessage', channel, payload: r.rest() };
    }
    case InBandType.Direct: {
      const flags = r.u8('inBand.flags');
      const count = r.u8('inBand.count');
      if (count > MAX_DIRECT_CANDIDATES) throw new WireError('inBand.count', `${count} candidates, more than ${MAX_DIRECT_CANDIDATES}`);
      const candidates: WireAddress[] = [];
      for (let i = 0; i < count; i++) candidates.push(readAddress(r));
      if (r.remaining > 0) throw new WireError('inBand.direct', `${r.remaining} bytes after the candidates`);
      return { type: 'direct', allowed: (flags & DIRECT_ALLOWED) !== 0, candidates };
    }
    default:
      throw new WireError('inBand.type', `unknown in-band message type 0x${t.toString(16)}`);
  }
}
