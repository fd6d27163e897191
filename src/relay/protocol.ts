import type { SocketAddress } from '../core/types.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { WireError } from '../wire/errors.js';
import { readAddress, writeAddress } from '../wire/address.js';
import { fromBase64Url, toBase64Url } from '../util/bytes.js';

/**
 * The relay protocol (docs/RELAY.md): what a client and a relay node say to each other. Big-endian.
 * Everything before a session is validated by a cookie; nothing a relay sends before that is larger
 * than what it received. End-to-end netlane packets ride inside DATA messages, opaque to the relay.
 */
export const RelayMsg = {
  Ping: 0x01,
  Pong: 0x02,
  SessionRequest: 0x03,
  SessionOk: 0x04,
  Refused: 0x05,
  LinkRequest: 0x06,
  LinkOk: 0x07,
  LinkFailed: 0x08,
  Keepalive: 0x09,
  KeepaliveAck: 0x0a,
  PathChallenge: 0x0b,
  PathResponse: 0x0c,
  CloseSession: 0x0d,
  NoSession: 0x0e,
  DataUp: 0x10,
  DataDown: 0x11,
  DirRegister: 0x12,
  DirRegisterResult: 0x13,
  DirLookup: 0x14,
  DirLookupResult: 0x15,
  LinkOffer: 0x16,
  LinkAnswer: 0x17,
  Permit: 0x18,
  RotateToken: 0x19,
  TokenRotated: 0x1a,
  Unlink: 0x1b,
  FleetList: 0x1c,
  FleetListResult: 0x1d,
  /** A link to a peer on another relay of the fleet, through this relay and a trunk (docs/RELAY.md "Trunks"). */
  LinkRemote: 0x1e,
  /** A session's control message to its relay, sealed with the session's up key (docs/RELAY.md "Sealed control"). */
  Sealed: 0x20,
  /** A relay's control message to a session, sealed with the session's down key. */
  SealedDown: 0x21,
  /** Relay to relay (docs/RELAY.md "Trunks"): opening a trunk, in the clear with a MAC. */
  TrunkHello: 0x30,
  /** The answer to a TRUNK_HELLO, with a tag under the new trunk's key. */
  TrunkOk: 0x31,
  /** A trunk message sealed under the trunk's control key of its direction. */
  TrunkSealed: 0x32,
  /** An end-to-end packet on a trunk link, with a sequence tag under the trunk's data key of its direction. */
  TrunkData: 0x33,
  /** Trunk messages (inside TRUNK_SEALED only). */
  TrunkLinkRequest: 0x40,
  TrunkLinkOk: 0x41,
  TrunkLinkFailed: 0x42,
  TrunkUnlink: 0x43,
  TrunkKeepalive: 0x44,
  TrunkClose: 0x45,
} as const;

export const RELAY_PROTOCOL_VERSION = 2;
/** A PING is padded to at least this many bytes, so that a PONG (33 bytes) never amplifies. */
export const MIN_PING_BYTES = 512;
/** A SESSION_REQUEST is padded to at least this many bytes (larger than any answer to it). */
export const MIN_SESSION_REQUEST_BYTES = 256;
export const COOKIE_BYTES = 20;
export const SESSION_ID_BYTES = 8;
/** X25519 public keys (the relay's static key, the client's ephemeral one), bytes. */
export const RELAY_PUBLIC_KEY_BYTES = 32;
/** The sequence tag of a DATA_UP: one AES block over the sequence number and the link id. */
export const DATA_TAG_BYTES = 16;
/** Hop header of a DATA_UP: type, session id, link id, sequence tag. */
export const UP_HEADER_BYTES = 1 + SESSION_ID_BYTES + 2 + DATA_TAG_BYTES;
/** Hop header of a DATA_DOWN: type, link id. */
export const DOWN_HEADER_BYTES = 3;
/** Largest datagram either side sends or accepts. */
export const MAX_RELAY_DATAGRAM = 1500;

/** Why a relay refused a session or a link (REFUSED / LINK_FAILED codes). One code for every ticket failure: no oracle. */
export const RefuseCode = {
  Ticket: 1,
  Quota: 2,
  Draining: 3,
  Full: 4,
  BadRoute: 5,
  LinkLimit: 6,
  /** The target session refused the link (an offer that expires is not answered: the requester's retries make a new one). */
  NotAccepted: 7,
  /** The target has too many offers waiting, or this session makes offers too fast: try later. */
  Busy: 8,
  /** The link request's identity proof does not verify. */
  BadProof: 9,
  /** The network block of this address holds the most sessions open mode allows. */
  AddressQuota: 10,
  /** LINK_REMOTE: this relay has no trunk to the relay named (not in its fleet under that key, or not answering). */
  NoTrunk: 11,
} as const;

/** Answers of the identity directory (DIR_REGISTER_RESULT and DIR_LOOKUP_RESULT codes). */
export const DirCode = {
  Ok: 0,
  /** The signature does not verify, or the key does not derive the claimed peer id. */
  BadSignature: 1,
  /** The route does not name the registering session on this relay. */
  BadRoute: 2,
  /** Older than the registration held, or outside the relay's clock window. */
  Stale: 3,
  RateLimited: 4,
  NotFound: 5,
  /** The relay is in a fleet and could not reach the fleet's store (Redis) to answer: ask again later, or another relay. */
  StoreUnavailable: 6,
  /**
   * The relay is in a fleet and could not reach the store: the route is the one this relay last read from the store
   * for that id (it may be out of date; the end-to-end handshake still proves the peer's key).
   */
  StaleRoute: 7,
} as const;

/** Answers of FLEET_LIST_RESULT (`code`). */
export const FleetCode = {
  Ok: 0,
  /** The relay is in no fleet: it knows no relay but itself. */
  NoFleet: 1,
  /** The fleet's store could not be reached: ask again later. */
  StoreUnavailable: 2,
  RateLimited: 3,
} as const;

/** One relay of a fleet, as FLEET_LIST_RESULT carries it: address and key, region label, load (0-255) and whether it drains. */
export interface FleetRelay {
  readonly relay: RelayAddress;
  readonly region: string;
  readonly load: number;
  readonly draining: boolean;
}

/** Most relays one FLEET_LIST_RESULT carries (a request names the offset of the first; `total` says how many there are). */
export const MAX_FLEET_LIST_ENTRIES = 12;
/** The longest region label, ASCII. */
export const MAX_REGION_CHARS = 32;

/** Ed25519 public keys and signatures, bytes. */
export const DIR_PUBLIC_KEY_BYTES = 32;
export const DIR_SIGNATURE_BYTES = 64;
/** The longest route string a directory entry holds (a four-relay IPv6 route is 431 characters). */
export const MAX_DIR_ROUTE_CHARS = 768;
const DIR_LABEL = new TextEncoder().encode('netlane-directory-register-v2');

/**
 * What a DIR_REGISTER's signature covers: a label, the public key, the time and the route. The relay
 * derives the peer id from the key, so nobody registers an id without holding the key it comes from.
 */
export function dirRegisterSigned(publicKey: Uint8Array, unixSeconds: number, route: string): Uint8Array {
  const out = new Uint8Array(DIR_LABEL.length + DIR_PUBLIC_KEY_BYTES + 4 + route.length);
  out.set(DIR_LABEL);
  out.set(publicKey, DIR_LABEL.length);
  new DataView(out.buffer).setUint32(DIR_LABEL.length + DIR_PUBLIC_KEY_BYTES, unixSeconds >>> 0);
  for (let i = 0; i < route.length; i++) out[DIR_LABEL.length + DIR_PUBLIC_KEY_BYTES + 4 + i] = route.charCodeAt(i) & 0x7f;
  return out;
}

/**
 * Relay messages. PING, PONG, SESSION_REQUEST, REFUSED and NO_SESSION travel in the clear; every other
 * one travels sealed (docs/RELAY.md "Sealed control"): the client's inside a SEALED frame under its
 * session's up key, the relay's inside a SEALED_DOWN (or, for SESSION_OK, its own frame) under the down
 * key. The session a sealed message belongs to is the frame's, so the messages themselves name none.
 */
export type RelayControl =
  | { type: 'ping'; version: number; nonce: Uint8Array }
  | { type: 'pong'; nonce: Uint8Array; cookie: Uint8Array; load: number; drainSeconds: number }
  | { type: 'sessionRequest'; cookie: Uint8Array; clientNonce: Uint8Array; clientPublic: Uint8Array; ticket: Uint8Array }
  | { type: 'sessionOk'; sessionId: Uint8Array; drainSeconds: number; idleSeconds: number; token: Uint8Array }
  | { type: 'refused'; clientNonce: Uint8Array; code: number }
  | { type: 'linkRequest'; requestId: number; token: Uint8Array; peerId: bigint; publicKey: Uint8Array; proof: Uint8Array }
  | { type: 'linkOk'; requestId: number; linkId: number }
  | { type: 'linkFailed'; requestId: number; code: number }
  | { type: 'linkOffer'; offerId: number; peerId: bigint; user: string }
  | { type: 'linkAnswer'; offerId: number; peerId: bigint; accept: boolean }
  | { type: 'permit'; reset: boolean; complete: boolean; peerIds: readonly bigint[] }
  | { type: 'rotateToken'; requestId: number }
  | { type: 'tokenRotated'; requestId: number; token: Uint8Array }
  | { type: 'unlink'; linkId: number }
  | { type: 'keepalive'; seq: number }
  | { type: 'keepaliveAck'; seq: number; drainSeconds: number; load: number; observed: SocketAddress | null }
  | { type: 'pathChallenge'; challenge: Uint8Array }
  | { type: 'pathResponse'; challenge: Uint8Array }
  | { type: 'closeSession' }
  | { type: 'noSession'; sessionId: Uint8Array }
  | { type: 'dirRegister'; requestId: number; unixSeconds: number; publicKey: Uint8Array; route: string; signature: Uint8Array }
  | { type: 'dirRegisterResult'; requestId: number; code: number }
  | { type: 'dirLookup'; requestId: number; peerId: bigint }
  | { type: 'dirLookupResult'; requestId: number; code: number; peerId: bigint; route: string }
  | { type: 'fleetList'; requestId: number; offset: number }
  | { type: 'fleetListResult'; requestId: number; code: number; total: number; offset: number; relays: readonly FleetRelay[] }
  | { type: 'linkRemote'; requestId: number; relay: RelayAddress; token: Uint8Array; peerId: bigint; publicKey: Uint8Array; proof: Uint8Array }
  | { type: 'trunkLinkRequest'; linkId: number; token: Uint8Array; peerId: bigint; user: string }
  | { type: 'trunkLinkOk'; linkId: number; peerLinkId: number }
  | { type: 'trunkLinkFailed'; linkId: number; code: number }
  | { type: 'trunkUnlink'; linkId: number }
  | { type: 'trunkKeepalive'; seq: number }
  | { type: 'trunkClose' };

/** The message types a client sends sealed; a relay accepts nothing else inside a SEALED frame. */
export const SEALED_UP_TYPES: ReadonlySet<RelayControl['type']> = new Set(['linkRequest', 'linkAnswer', 'permit', 'rotateToken', 'unlink', 'keepalive', 'pathResponse', 'closeSession', 'dirRegister', 'dirLookup', 'fleetList', 'linkRemote']);
/** The message types a relay sends sealed; a client accepts nothing else inside a SEALED_DOWN frame. */
export const SEALED_DOWN_TYPES: ReadonlySet<RelayControl['type']> = new Set(['linkOk', 'linkFailed', 'linkOffer', 'tokenRotated', 'keepaliveAck', 'pathChallenge', 'dirRegisterResult', 'dirLookupResult', 'fleetListResult']);
/** The messages one relay sends another inside TRUNK_SEALED; nothing else is accepted there, and these nowhere else. */
export const TRUNK_TYPES: ReadonlySet<RelayControl['type']> = new Set(['trunkLinkRequest', 'trunkLinkOk', 'trunkLinkFailed', 'trunkUnlink', 'trunkKeepalive', 'trunkClose']);
/** A link offer waits this long for its target's answer, µs; the requester's retries then make a new one. */
export const OFFER_LIFETIME_US = 10_000_000;
/** PERMIT flags: the first message of a set replaces what the relay had; the last completes it (links to peers no longer permitted are cut then). */
const PERMIT_RESET = 1;
const PERMIT_COMPLETE = 2;
/** Most peer ids one PERMIT carries. */
export const MAX_PERMIT_IDS = 64;
/** The identity proof of a LINK_REQUEST: an Ed25519 signature. */
export const LINK_PROOF_BYTES = 64;
/** The longest user name a LINK_OFFER carries (a ticket's user). */
export const MAX_OFFER_USER_BYTES = 64;

/** Encodes a control message (for a sealed type: the plaintext a frame seals) into a fresh buffer, padded where the protocol says so. */
export function encodeRelayControl(m: RelayControl): Uint8Array {
  const variable = ('ticket' in m ? m.ticket.length : 0) + ('token' in m ? m.token.length : 0) + ('route' in m ? m.route.length : 0) + ('peerIds' in m ? m.peerIds.length * 8 : 0) + ('user' in m ? m.user.length * 3 : 0) + ('relays' in m ? m.relays.length * (20 + RELAY_PUBLIC_KEY_BYTES + 3 + MAX_REGION_CHARS) : 0);
  const buf = new Uint8Array(Math.max(m.type === 'ping' ? MIN_PING_BYTES : m.type === 'sessionRequest' ? MIN_SESSION_REQUEST_BYTES : 0, 192 + variable));
  const w = new Writer(buf);
  switch (m.type) {
    case 'ping':
      w.u8(RelayMsg.Ping, 'type');
      w.u8(m.version, 'version');
      w.bytes(m.nonce, 'nonce');
      w.zeros(MIN_PING_BYTES - w.position, 'padding');
      break;
    case 'pong':
      w.u8(RelayMsg.Pong, 'type');
      w.bytes(m.nonce, 'nonce');
      w.bytes(m.cookie, 'cookie');
      w.u8(m.load, 'load');
      w.u16(m.drainSeconds, 'drainSeconds');
      break;
    case 'sessionRequest':
      w.u8(RelayMsg.SessionRequest, 'type');
      w.u8(RELAY_PROTOCOL_VERSION, 'version');
      w.bytes(m.cookie, 'cookie');
      w.bytes(m.clientNonce, 'clientNonce');
      w.bytes(m.clientPublic, 'clientPublic');
      w.u16(m.ticket.length, 'ticketLength');
      w.bytes(m.ticket, 'ticket');
      if (w.position < MIN_SESSION_REQUEST_BYTES) w.zeros(MIN_SESSION_REQUEST_BYTES - w.position, 'padding');
      break;
    case 'sessionOk':
      w.u8(RelayMsg.SessionOk, 'type');
      w.bytes(m.sessionId, 'sessionId');
      w.u16(m.drainSeconds, 'drainSeconds');
      w.u16(m.idleSeconds, 'idleSeconds');
      w.u8(m.token.length, 'tokenLength');
      w.bytes(m.token, 'token');
      break;
    case 'refused':
      w.u8(RelayMsg.Refused, 'type');
      w.bytes(m.clientNonce, 'clientNonce');
      w.u8(m.code, 'code');
      break;
    case 'linkRequest':
      w.u8(RelayMsg.LinkRequest, 'type');
      w.u16(m.requestId, 'requestId');
      w.u8(m.token.length, 'tokenLength');
      w.bytes(m.token, 'token');
      w.u64(m.peerId, 'peerId');
      w.bytes(m.publicKey, 'publicKey');
      w.bytes(m.proof, 'proof');
      break;
    case 'linkOk':
      w.u8(RelayMsg.LinkOk, 'type');
      w.u16(m.requestId, 'requestId');
      w.u16(m.linkId, 'linkId');
      break;
    case 'linkFailed':
      w.u8(RelayMsg.LinkFailed, 'type');
      w.u16(m.requestId, 'requestId');
      w.u8(m.code, 'code');
      break;
    case 'linkOffer': {
      w.u8(RelayMsg.LinkOffer, 'type');
      w.u16(m.offerId, 'offerId');
      w.u64(m.peerId, 'peerId');
      const user = new TextEncoder().encode(m.user);
      w.u8(user.length, 'userLength');
      w.bytes(user, 'user');
      break;
    }
    case 'linkAnswer':
      w.u8(RelayMsg.LinkAnswer, 'type');
      w.u16(m.offerId, 'offerId');
      w.u64(m.peerId, 'peerId');
      w.u8(m.accept ? 1 : 0, 'accept');
      break;
    case 'permit':
      w.u8(RelayMsg.Permit, 'type');
      w.u8((m.reset ? PERMIT_RESET : 0) | (m.complete ? PERMIT_COMPLETE : 0), 'flags');
      w.u8(m.peerIds.length, 'count');
      for (const id of m.peerIds) w.u64(id, 'peerId');
      break;
    case 'rotateToken':
      w.u8(RelayMsg.RotateToken, 'type');
      w.u16(m.requestId, 'requestId');
      break;
    case 'tokenRotated':
      w.u8(RelayMsg.TokenRotated, 'type');
      w.u16(m.requestId, 'requestId');
      w.u8(m.token.length, 'tokenLength');
      w.bytes(m.token, 'token');
      break;
    case 'unlink':
      w.u8(RelayMsg.Unlink, 'type');
      w.u16(m.linkId, 'linkId');
      break;
    case 'keepalive':
      w.u8(RelayMsg.Keepalive, 'type');
      w.u32(m.seq, 'seq');
      break;
    case 'keepaliveAck':
      w.u8(RelayMsg.KeepaliveAck, 'type');
      w.u32(m.seq, 'seq');
      w.u16(m.drainSeconds, 'drainSeconds');
      w.u8(m.load, 'load');
      if (m.observed) writeAddress(w, m.observed);
      break;
    case 'pathChallenge':
      w.u8(RelayMsg.PathChallenge, 'type');
      w.bytes(m.challenge, 'challenge');
      break;
    case 'pathResponse':
      w.u8(RelayMsg.PathResponse, 'type');
      w.bytes(m.challenge, 'challenge');
      break;
    case 'closeSession':
      w.u8(RelayMsg.CloseSession, 'type');
      break;
    case 'noSession':
      w.u8(RelayMsg.NoSession, 'type');
      w.bytes(m.sessionId, 'sessionId');
      break;
    case 'dirRegister':
      w.u8(RelayMsg.DirRegister, 'type');
      w.u16(m.requestId, 'requestId');
      w.u32(m.unixSeconds, 'unixSeconds');
      w.bytes(m.publicKey, 'publicKey');
      writeAscii(w, m.route);
      w.bytes(m.signature, 'signature');
      break;
    case 'dirRegisterResult':
      w.u8(RelayMsg.DirRegisterResult, 'type');
      w.u16(m.requestId, 'requestId');
      w.u8(m.code, 'code');
      break;
    case 'dirLookup':
      w.u8(RelayMsg.DirLookup, 'type');
      w.u16(m.requestId, 'requestId');
      w.u64(m.peerId, 'peerId');
      break;
    case 'dirLookupResult':
      w.u8(RelayMsg.DirLookupResult, 'type');
      w.u16(m.requestId, 'requestId');
      w.u8(m.code, 'code');
      w.u64(m.peerId, 'peerId');
      writeAscii(w, m.route);
      break;
    case 'fleetList':
      w.u8(RelayMsg.FleetList, 'type');
      w.u16(m.requestId, 'requestId');
      w.u8(m.offset, 'offset');
      break;
    case 'fleetListResult':
      if (m.relays.length > MAX_FLEET_LIST_ENTRIES) throw new WireError('fleetListResult.count', `${m.relays.length} > ${MAX_FLEET_LIST_ENTRIES}`);
      w.u8(RelayMsg.FleetListResult, 'type');
      w.u16(m.requestId, 'requestId');
      w.u8(m.code, 'code');
      w.u8(m.total, 'total');
      w.u8(m.offset, 'offset');
      w.u8(m.relays.length, 'count');
      for (const f of m.relays) {
        writeAddress(w, f.relay);
        w.bytes(f.relay.publicKey, 'relayKey');
        w.u8(f.load, 'load');
        w.u8(f.draining ? 1 : 0, 'flags');
        if (f.region.length > MAX_REGION_CHARS) throw new WireError('fleetListResult.region', `${f.region.length} > ${MAX_REGION_CHARS} characters`);
        w.u8(f.region.length, 'regionLength');
        for (let i = 0; i < f.region.length; i++) w.u8(f.region.charCodeAt(i) & 0x7f, 'region');
      }
      break;
    case 'linkRemote':
      w.u8(RelayMsg.LinkRemote, 'type');
      w.u16(m.requestId, 'requestId');
      writeAddress(w, m.relay);
      w.bytes(m.relay.publicKey, 'relayKey');
      w.u8(m.token.length, 'tokenLength');
      w.bytes(m.token, 'token');
      w.u64(m.peerId, 'peerId');
      w.bytes(m.publicKey, 'publicKey');
      w.bytes(m.proof, 'proof');
      break;
    case 'trunkLinkRequest': {
      w.u8(RelayMsg.TrunkLinkRequest, 'type');
      w.u16(m.linkId, 'linkId');
      w.u8(m.token.length, 'tokenLength');
      w.bytes(m.token, 'token');
      w.u64(m.peerId, 'peerId');
      const user = new TextEncoder().encode(m.user);
      if (user.length > MAX_OFFER_USER_BYTES) throw new WireError('trunkLinkRequest.user', `${user.length} > ${MAX_OFFER_USER_BYTES} bytes`);
      w.u8(user.length, 'userLength');
      w.bytes(user, 'user');
      break;
    }
    case 'trunkLinkOk':
      w.u8(RelayMsg.TrunkLinkOk, 'type');
      w.u16(m.linkId, 'linkId');
      w.u16(m.peerLinkId, 'peerLinkId');
      break;
    case 'trunkLinkFailed':
      w.u8(RelayMsg.TrunkLinkFailed, 'type');
      w.u16(m.linkId, 'linkId');
      w.u8(m.code, 'code');
      break;
    case 'trunkUnlink':
      w.u8(RelayMsg.TrunkUnlink, 'type');
      w.u16(m.linkId, 'linkId');
      break;
    case 'trunkKeepalive':
      w.u8(RelayMsg.TrunkKeepalive, 'type');
      w.u32(m.seq, 'seq');
      break;
    case 'trunkClose':
      w.u8(RelayMsg.TrunkClose, 'type');
      break;
  }
  return buf.slice(0, w.position);
}

/** {@link decodeRelayControl}, or null for a malformed message (what a receiver counts and drops). */
export function tryDecodeRelayControl(b: Uint8Array): RelayControl | null {
  try {
    return decodeRelayControl(b);
  } catch (e) {
    if (e instanceof WireError) return null;
    throw e;
  }
}

/** Decodes a control message (a clear one, or the plaintext of a sealed one). Throws WireError on anything malformed (callers drop and count). */
export function decodeRelayControl(b: Uint8Array): RelayControl {
  const r = new Reader(b);
  const type = r.u8('type');
  let m: RelayControl;
  switch (type) {
    case RelayMsg.Ping: {
      if (b.length < MIN_PING_BYTES) throw new WireError('ping', `shorter than ${MIN_PING_BYTES} bytes`);
      m = { type: 'ping', version: r.u8('version'), nonce: r.bytes(8, 'nonce') };
      return m; // the rest is padding
    }
    case RelayMsg.Pong:
      m = { type: 'pong', nonce: r.bytes(8, 'nonce'), cookie: r.bytes(COOKIE_BYTES, 'cookie'), load: r.u8('load'), drainSeconds: r.u16('drainSeconds') };
      break;
    case RelayMsg.SessionRequest: {
      if (b.length < MIN_SESSION_REQUEST_BYTES) throw new WireError('sessionRequest', `shorter than ${MIN_SESSION_REQUEST_BYTES} bytes`);
      const version = r.u8('version');
      if (version !== RELAY_PROTOCOL_VERSION) throw new WireError('sessionRequest.version', `unsupported version ${version}`);
      const cookie = r.bytes(COOKIE_BYTES, 'cookie');
      const clientNonce = r.bytes(8, 'clientNonce');
      const clientPublic = r.bytes(RELAY_PUBLIC_KEY_BYTES, 'clientPublic');
      const ticket = r.bytes(r.u16('ticketLength'), 'ticket');
      return { type: 'sessionRequest', cookie, clientNonce, clientPublic, ticket }; // the rest is padding
    }
    case RelayMsg.SessionOk:
      m = { type: 'sessionOk', sessionId: r.bytes(SESSION_ID_BYTES, 'sessionId'), drainSeconds: r.u16('drainSeconds'), idleSeconds: r.u16('idleSeconds'), token: r.bytes(r.u8('tokenLength'), 'token') };
      break;
    case RelayMsg.Refused:
      m = { type: 'refused', clientNonce: r.bytes(8, 'clientNonce'), code: r.u8('code') };
      break;
    case RelayMsg.LinkRequest:
      m = { type: 'linkRequest', requestId: r.u16('requestId'), token: r.bytes(r.u8('tokenLength'), 'token'), peerId: r.u64('peerId'), publicKey: r.bytes(DIR_PUBLIC_KEY_BYTES, 'publicKey'), proof: r.bytes(LINK_PROOF_BYTES, 'proof') };
      break;
    case RelayMsg.LinkOk:
      m = { type: 'linkOk', requestId: r.u16('requestId'), linkId: r.u16('linkId') };
      break;
    case RelayMsg.LinkFailed:
      m = { type: 'linkFailed', requestId: r.u16('requestId'), code: r.u8('code') };
      break;
    case RelayMsg.LinkOffer: {
      const offerId = r.u16('offerId');
      const peerId = r.u64('peerId');
      const n = r.u8('userLength');
      if (n > MAX_OFFER_USER_BYTES) throw new WireError('linkOffer.user', `${n} > ${MAX_OFFER_USER_BYTES} bytes`);
      m = { type: 'linkOffer', offerId, peerId, user: new TextDecoder().decode(r.bytes(n, 'user')) };
      break;
    }
    case RelayMsg.LinkAnswer: {
      const offerId = r.u16('offerId');
      const peerId = r.u64('peerId');
      const accept = r.u8('accept');
      if (accept > 1) throw new WireError('linkAnswer.accept', `${accept} is not 0 or 1`);
      m = { type: 'linkAnswer', offerId, peerId, accept: accept === 1 };
      break;
    }
    case RelayMsg.Permit: {
      const flags = r.u8('flags');
      if ((flags & ~(PERMIT_RESET | PERMIT_COMPLETE)) !== 0) throw new WireError('permit.flags', `unknown flags ${flags}`);
      const n = r.u8('count');
      if (n > MAX_PERMIT_IDS) throw new WireError('permit.count', `${n} > ${MAX_PERMIT_IDS}`);
      const peerIds: bigint[] = [];
      for (let i = 0; i < n; i++) peerIds.push(r.u64('peerId'));
      m = { type: 'permit', reset: (flags & PERMIT_RESET) !== 0, complete: (flags & PERMIT_COMPLETE) !== 0, peerIds };
      break;
    }
    case RelayMsg.RotateToken:
      m = { type: 'rotateToken', requestId: r.u16('requestId') };
      break;
    case RelayMsg.TokenRotated:
      m = { type: 'tokenRotated', requestId: r.u16('requestId'), token: r.bytes(r.u8('tokenLength'), 'token') };
      break;
    case RelayMsg.Unlink:
      m = { type: 'unlink', linkId: r.u16('linkId') };
      break;
    case RelayMsg.Keepalive:
      m = { type: 'keepalive', seq: r.u32('seq') };
      break;
    case RelayMsg.KeepaliveAck:
      m = { type: 'keepaliveAck', seq: r.u32('seq'), drainSeconds: r.u16('drainSeconds'), load: r.u8('load'), observed: null };
      if (r.remaining > 0) m.observed = readAddress(r);
      break;
    case RelayMsg.PathChallenge:
      m = { type: 'pathChallenge', challenge: r.bytes(8, 'challenge') };
      break;
    case RelayMsg.PathResponse:
      m = { type: 'pathResponse', challenge: r.bytes(8, 'challenge') };
      break;
    case RelayMsg.CloseSession:
      m = { type: 'closeSession' };
      break;
    case RelayMsg.NoSession:
      m = { type: 'noSession', sessionId: r.bytes(SESSION_ID_BYTES, 'sessionId') };
      break;
    case RelayMsg.DirRegister:
      m = {
        type: 'dirRegister',
        requestId: r.u16('requestId'),
        unixSeconds: r.u32('unixSeconds'),
        publicKey: r.bytes(DIR_PUBLIC_KEY_BYTES, 'publicKey'),
        route: readAscii(r),
        signature: r.bytes(DIR_SIGNATURE_BYTES, 'signature'),
      };
      break;
    case RelayMsg.DirRegisterResult:
      m = { type: 'dirRegisterResult', requestId: r.u16('requestId'), code: r.u8('code') };
      break;
    case RelayMsg.DirLookup:
      m = { type: 'dirLookup', requestId: r.u16('requestId'), peerId: r.u64('peerId') };
      break;
    case RelayMsg.DirLookupResult:
      m = { type: 'dirLookupResult', requestId: r.u16('requestId'), code: r.u8('code'), peerId: r.u64('peerId'), route: readAscii(r) };
      break;
    case RelayMsg.FleetList:
      m = { type: 'fleetList', requestId: r.u16('requestId'), offset: r.u8('offset') };
      break;
    case RelayMsg.FleetListResult: {
      const requestId = r.u16('requestId');
      const code = r.u8('code');
      const total = r.u8('total');
      const offset = r.u8('offset');
      const n = r.u8('count');
      if (n > MAX_FLEET_LIST_ENTRIES) throw new WireError('fleetListResult.count', `${n} > ${MAX_FLEET_LIST_ENTRIES}`);
      const relays: FleetRelay[] = [];
      for (let i = 0; i < n; i++) {
        const a = readAddress(r);
        const publicKey = r.bytes(RELAY_PUBLIC_KEY_BYTES, 'relayKey').slice();
        const load = r.u8('load');
        const flags = r.u8('flags');
        if (flags > 1) throw new WireError('fleetListResult.flags', `unknown flags ${flags}`);
        const len = r.u8('regionLength');
        if (len > MAX_REGION_CHARS) throw new WireError('fleetListResult.region', `${len} > ${MAX_REGION_CHARS} characters`);
        const region = r.bytes(len, 'region');
        for (const c of region) if (c > 0x7f) throw new WireError('fleetListResult.region', 'not ASCII');
        relays.push({ relay: { ...a, publicKey }, region: String.fromCharCode(...region), load, draining: flags === 1 });
      }
      m = { type: 'fleetListResult', requestId, code, total, offset, relays };
      break;
    }
    case RelayMsg.LinkRemote: {
      const requestId = r.u16('requestId');
      const a = readAddress(r);
      const relay = { ...a, publicKey: r.bytes(RELAY_PUBLIC_KEY_BYTES, 'relayKey').slice() };
      m = { type: 'linkRemote', requestId, relay, token: r.bytes(r.u8('tokenLength'), 'token'), peerId: r.u64('peerId'), publicKey: r.bytes(DIR_PUBLIC_KEY_BYTES, 'publicKey'), proof: r.bytes(LINK_PROOF_BYTES, 'proof') };
      break;
    }
    case RelayMsg.TrunkLinkRequest: {
      const linkId = r.u16('linkId');
      const token = r.bytes(r.u8('tokenLength'), 'token');
      const peerId = r.u64('peerId');
      const n = r.u8('userLength');
      if (n > MAX_OFFER_USER_BYTES) throw new WireError('trunkLinkRequest.user', `${n} > ${MAX_OFFER_USER_BYTES} bytes`);
      m = { type: 'trunkLinkRequest', linkId, token, peerId, user: new TextDecoder().decode(r.bytes(n, 'user')) };
      break;
    }
    case RelayMsg.TrunkLinkOk:
      m = { type: 'trunkLinkOk', linkId: r.u16('linkId'), peerLinkId: r.u16('peerLinkId') };
      break;
    case RelayMsg.TrunkLinkFailed:
      m = { type: 'trunkLinkFailed', linkId: r.u16('linkId'), code: r.u8('code') };
      break;
    case RelayMsg.TrunkUnlink:
      m = { type: 'trunkUnlink', linkId: r.u16('linkId') };
      break;
    case RelayMsg.TrunkKeepalive:
      m = { type: 'trunkKeepalive', seq: r.u32('seq') };
      break;
    case RelayMsg.TrunkClose:
      m = { type: 'trunkClose' };
      break;
    default:
      throw new WireError('type', `unknown relay message 0x${type.toString(16)}`);
  }
  if (r.remaining !== 0) throw new WireError('trailer', `${r.remaining} trailing bytes`);
  return m;
}

/** A route string in a directory message: u16 length, then ASCII (base64url, or empty). */
function writeAscii(w: Writer, s: string): void {
  w.u16(s.length, 'routeLength');
  for (let i = 0; i < s.length; i++) w.u8(s.charCodeAt(i) & 0x7f, 'route');
}

function readAscii(r: Reader): string {
  const n = r.u16('routeLength');
  if (n > MAX_DIR_ROUTE_CHARS) throw new WireError('routeLength', `${n} > ${MAX_DIR_ROUTE_CHARS}`);
  const b = r.bytes(n, 'route');
  for (const c of b) if (c > 0x7f) throw new WireError('route', 'not ASCII');
  return String.fromCharCode(...b);
}

// ------------------------------------------------------------------ route strings

export const ROUTE_VERSION = 2;
/** Most relay entries in one route (primary and backups). */
export const MAX_ROUTE_ENTRIES = 4;

/** A relay: its UDP address and its static X25519 public key (what `netlane relay` prints as `host:port#key`). */
export interface RelayAddress extends SocketAddress {
  readonly publicKey: Uint8Array;
}

/** One relay a peer can be reached through: the relay (address and key) and the peer's token there. */
export interface RouteEntry {
  readonly relay: SocketAddress;
  /** The relay's static public key: a client opening a session there proves it talks to that relay. */
  readonly publicKey: Uint8Array;
  readonly token: Uint8Array;
}

/** A decoded route string. Public information only: relay addresses and keys, and opaque tokens. */
export interface Route {
  readonly version: number;
  /** Grows with every change of the owner's route; receivers ignore a revision older than the one they have. */
  readonly revision: number;
  /** The primary relay first, then the backups. */
  readonly entries: readonly RouteEntry[];
}

/** `host:port#key` (brackets around an IPv6 host; the key in base64url): how a relay is named in configuration. */
export function formatRelayAddress(r: RelayAddress): string {
  return `${addressKey(r)}#${toBase64Url(r.publicKey)}`;
}

/** The key part of `host:port#key`, or null if `s` has none or it is not a 32-byte base64url key. Returns the address part too. */
export function splitRelayKey(s: string): { address: string; publicKey: Uint8Array } | null {
  const at = s.lastIndexOf('#');
  if (at < 0) return null;
  const key = s.slice(at + 1);
  if (!/^[A-Za-z0-9_-]{43}$/.test(key)) return null;
  const publicKey = fromBase64Url(key);
  return publicKey?.length === RELAY_PUBLIC_KEY_BYTES ? { address: s.slice(0, at), publicKey } : null;
}

/** `base64url(version, revision, count, (relay address, relay key, token)...)`. */
export function encodeRoute(route: Route): string {
  const buf = new Uint8Array(8 + route.entries.length * (19 + RELAY_PUBLIC_KEY_BYTES + 1 + 255));
  const w = new Writer(buf);
  w.u8(route.version, 'route.version');
  w.u32(route.revision, 'route.revision');
  w.u8(route.entries.length, 'route.count');
  for (const e of route.entries) {
    writeAddress(w, e.relay);
    w.bytes(e.publicKey, 'route.relayKey');
    w.u8(e.token.length, 'route.tokenLength');
    w.bytes(e.token, 'route.token');
  }
  return toBase64Url(buf.subarray(0, w.position));
}

/** Parses a route string; throws WireError if it is not one. */
export function decodeRoute(s: string): Route {
  if (typeof s !== 'string' || s.length === 0 || s.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(s)) throw new WireError('route', 'not base64url');
  const bytes = fromBase64Url(s);
  if (!bytes) throw new WireError('route', 'not base64url');
  const r = new Reader(bytes);
  const version = r.u8('route.version');
  if (version !== ROUTE_VERSION) throw new WireError('route.version', `unsupported route version ${version}`);
  const revision = r.u32('route.revision');
  const count = r.u8('route.count');
  if (count === 0 || count > MAX_ROUTE_ENTRIES) throw new WireError('route.count', `${count} entries`);
  const entries: RouteEntry[] = [];
  for (let i = 0; i < count; i++) {
    const relay = readAddress(r);
    const publicKey = r.bytes(RELAY_PUBLIC_KEY_BYTES, 'route.relayKey').slice();
    const token = r.bytes(r.u8('route.tokenLength'), 'route.token').slice();
    entries.push({ relay, publicKey, token });
  }
  if (r.remaining !== 0) throw new WireError('route', 'trailing bytes');
  return { version, revision, entries };
}

/** `host:port` of an address, with brackets for IPv6: the key under which both sides file a relay. */
export function addressKey(a: SocketAddress): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
