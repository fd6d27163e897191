import { WireError } from './errors.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';
import { MAX_CLOSE_DEBUG_BYTES, utf8Truncate } from './frames.js';

/**
 * Control packets: everything that is not a data packet (first byte below 0x80). They carry the
 * handshake and the stateless replies. docs/WIRE_FORMAT.md "Control packets" has the layouts.
 *
 *   0x01 HELLO            version(4) clientCid(4) zero padding to at least HELLO_MIN_SIZE bytes
 *   0x02 CHALLENGE        version(4) clientCid(4) cookieLen(1) cookie
 *   0x03 CONNECT_REQUEST  version(4) clientCid(4) cookieLen(1) cookie payloadLen(varint) payload
 *   0x04 CONNECT_OK       clientCid(4) serverCid(4) payloadLen(varint) payload
 *   0x05 CLOSED           destinationCid(4) sourceCid(4) reason(2) debugLen(1) debug
 *   0x06 NO_CONNECTION    destinationCid(4) sourceCid(4)
 *
 * The CONNECT_REQUEST / CONNECT_OK payloads belong to the handshake's crypto layer; the core carries
 * them opaquely.
 */
export const ControlType = {
  Hello: 0x01,
  Challenge: 0x02,
  ConnectRequest: 0x03,
  ConnectOk: 0x04,
  Closed: 0x05,
  NoConnection: 0x06,
} as const;

/**
 * A HELLO is padded to at least this many bytes, so that the stateless CHALLENGE reply (at most
 * 1 + 4 + 4 + 1 + 255 bytes) is never larger than the request: no amplification.
 */
export const HELLO_MIN_SIZE = 512;
export const MAX_COOKIE_SIZE = 255;
/** Largest handshake payload a control packet may carry. */
export const MAX_HANDSHAKE_PAYLOAD = 4096;

export interface HelloPacket {
  type: 'hello';
  version: number;
  clientCid: number;
  /** Total datagram length, padding included. */
  length: number;
}
export interface ChallengePacket {
  type: 'challenge';
  version: number;
  clientCid: number;
  cookie: Uint8Array;
}
export interface ConnectRequestPacket {
  type: 'connectRequest';
  version: number;
  clientCid: number;
  cookie: Uint8Array;
  payload: Uint8Array;
}
export interface ConnectOkPacket {
  type: 'connectOk';
  clientCid: number;
  serverCid: number;
  payload: Uint8Array;
}
export interface ClosedPacket {
  type: 'closed';
  destinationCid: number;
  sourceCid: number;
  reason: number;
  debug: string;
}
export interface NoConnectionPacket {
  type: 'noConnection';
  destinationCid: number;
  sourceCid: number;
}
export type ControlPacket = HelloPacket | ChallengePacket | ConnectRequestPacket | ConnectOkPacket | ClosedPacket | NoConnectionPacket;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Decodes a control packet. Throws {@link WireError} (and nothing else) on malformed input. */
export function decodeControl(bytes: Uint8Array): ControlPacket {
  const r = new Reader(bytes);
  const t = r.u8('control.type');
  let p: ControlPacket;
  switch (t) {
    case ControlType.Hello: {
      if (bytes.length < HELLO_MIN_SIZE) throw new WireError('hello.length', `hello shorter than ${HELLO_MIN_SIZE} bytes`);
      p = { type: 'hello', version: r.u32('hello.version'), clientCid: r.u32('hello.clientCid'), length: bytes.length };
      r.rest();
      break;
    }
    case ControlType.Challenge: {
      const version = r.u32('challenge.version');
      const clientCid = r.u32('challenge.clientCid');
      const cookie = r.bytes(r.u8('challenge.cookieLength'), 'challenge.cookie');
      p = { type: 'challenge', version, clientCid, cookie };
      break;
    }
    case ControlType.ConnectRequest: {
      const version = r.u32('connectRequest.version');
      const clientCid = r.u32('connectRequest.clientCid');
      const cookie = r.bytes(r.u8('connectRequest.cookieLength'), 'connectRequest.cookie');
      const n = r.varint('connectRequest.payloadLength');
      if (n > MAX_HANDSHAKE_PAYLOAD) throw new WireError('connectRequest.payloadLength', 'payload too large');
      p = { type: 'connectRequest', version, clientCid, cookie, payload: r.bytes(n, 'connectRequest.payload') };
      break;
    }
    case ControlType.ConnectOk: {
      const clientCid = r.u32('connectOk.clientCid');
      const serverCid = r.u32('connectOk.serverCid');
      const n = r.varint('connectOk.payloadLength');
      if (n > MAX_HANDSHAKE_PAYLOAD) throw new WireError('connectOk.payloadLength', 'payload too large');
      p = { type: 'connectOk', clientCid, serverCid, payload: r.bytes(n, 'connectOk.payload') };
      break;
    }
    case ControlType.Closed: {
      const destinationCid = r.u32('closed.destinationCid');
      const sourceCid = r.u32('closed.sourceCid');
      const reason = r.u16('closed.reason');
      const n = r.u8('closed.debugLength');
      if (n > MAX_CLOSE_DEBUG_BYTES) throw new WireError('closed.debugLength', `debug text over ${MAX_CLOSE_DEBUG_BYTES} bytes`);
      let debug: string;
      try {
        debug = utf8Decoder.decode(r.bytes(n, 'closed.debug'));
      } catch (e) {
        if (e instanceof WireError) throw e;
        throw new WireError('closed.debug', 'not UTF-8');
      }
      p = { type: 'closed', destinationCid, sourceCid, reason, debug };
      break;
    }
    case ControlType.NoConnection:
      p = { type: 'noConnection', destinationCid: r.u32('noConnection.destinationCid'), sourceCid: r.u32('noConnection.sourceCid') };
      break;
    default:
      throw new WireError('control.type', `unknown control packet type 0x${t.toString(16)}`);
  }
  if (r.remaining !== 0) throw new WireError('control.trailing', `${r.remaining} bytes after the packet`);
  return p;
}

/** Encodes a control packet into `out`; returns the number of bytes written. */
export function encodeControl(out: Uint8Array, p: ControlPacket): number {
  const w = new Writer(out);
  switch (p.type) {
    case 'hello':
      w.u8(ControlType.Hello, 'control.type');
      w.u32(p.version, 'hello.version');
      w.u32(p.clientCid, 'hello.clientCid');
      w.zeros(Math.max(0, Math.max(p.length, HELLO_MIN_SIZE) - w.position), 'hello.padding');
      break;
    case 'challenge':
      w.u8(ControlType.Challenge, 'control.type');
      w.u32(p.version, 'challenge.version');
      w.u32(p.clientCid, 'challenge.clientCid');
      if (p.cookie.length > MAX_COOKIE_SIZE) throw new WireError('challenge.cookie', 'cookie too long');
      w.u8(p.cookie.length, 'challenge.cookieLength');
      w.bytes(p.cookie, 'challenge.cookie');
      break;
    case 'connectRequest':
      w.u8(ControlType.ConnectRequest, 'control.type');
      w.u32(p.version, 'connectRequest.version');
      w.u32(p.clientCid, 'connectRequest.clientCid');
      if (p.cookie.length > MAX_COOKIE_SIZE) throw new WireError('connectRequest.cookie', 'cookie too long');
      w.u8(p.cookie.length, 'connectRequest.cookieLength');
      w.bytes(p.cookie, 'connectRequest.cookie');
      w.varint(p.payload.length, 'connectRequest.payloadLength');
      w.bytes(p.payload, 'connectRequest.payload');
      break;
    case 'connectOk':
      w.u8(ControlType.ConnectOk, 'control.type');
      w.u32(p.clientCid, 'connectOk.clientCid');
      w.u32(p.serverCid, 'connectOk.serverCid');
      w.varint(p.payload.length, 'connectOk.payloadLength');
      w.bytes(p.payload, 'connectOk.payload');
      break;
    case 'closed': {
      const debug = utf8Truncate(p.debug, MAX_CLOSE_DEBUG_BYTES);
      w.u8(ControlType.Closed, 'control.type');
      w.u32(p.destinationCid, 'closed.destinationCid');
      w.u32(p.sourceCid, 'closed.sourceCid');
      w.u16(p.reason, 'closed.reason');
      w.u8(debug.length, 'closed.debugLength');
      w.bytes(debug, 'closed.debug');
      break;
    }
    case 'noConnection':
      w.u8(ControlType.NoConnection, 'control.type');
      w.u32(p.destinationCid, 'noConnection.destinationCid');
      w.u32(p.sourceCid, 'noConnection.sourceCid');
      break;
    default: {
      const never: never = p;
      throw new WireError('control.type', `unknown control packet ${(never as ControlPacket).type}`);
    }
  }
  return w.position;
}
