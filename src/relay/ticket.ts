import type { CryptoProvider, SigningKey } from '../crypto/provider.js';
import { caKeyId } from '../crypto/certificate.js';
import { NetlaneError } from '../util/errors.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { WireError } from '../wire/errors.js';

/**
 * A relay ticket (docs/RELAY.md "Tickets"): the operator's permission for one user to open relay
 * sessions, signed with an Ed25519 ticket key and checked offline by any relay that knows the key.
 *
 *   version u8 | keyId u32 | issuedAt u32 | expiresAt u32 | ticketId 16 | userLength u8 | user |
 *   maxSessions u8 | maxKbps u32 | signature 64 (over "netlane-ticket-v1" and every byte before it)
 */
export interface Ticket {
  readonly keyId: number;
  /** Unix seconds. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  /** 16 random bytes; a relay binds it to the first address that uses it. */
  readonly ticketId: Uint8Array;
  /** Who the operator issued it to (UTF-8, 1..64 bytes). */
  readonly user: string;
  /** Sessions the user may hold on one relay at once. */
  readonly maxSessions: number;
  /** Rate cap per session, kilobits per second. */
  readonly maxKbps: number;
}

export const TICKET_VERSION = 1;
/** Longest lifetime a relay accepts (24 h). */
export const MAX_TICKET_LIFETIME_S = 86_400;
/** Clock skew allowed on `issuedAt`. */
export const TICKET_SKEW_S = 30;
export const MAX_TICKET_BYTES = 512;
const SIG_BYTES = 64;
const LABEL = new TextEncoder().encode('netlane-ticket-v1');
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** The ticket key id of an Ed25519 public key: the first 4 bytes of its certificate key id. */
export function ticketKeyId(provider: CryptoProvider, publicKey: Uint8Array): number {
  const id = caKeyId(provider, publicKey);
  return (((id[0] as number) << 24) | ((id[1] as number) << 16) | ((id[2] as number) << 8) | (id[3] as number)) >>> 0;
}

/** Signs a ticket. Throws NetlaneError for fields out of range. */
export function signTicket(provider: CryptoProvider, key: SigningKey, t: Omit<Ticket, 'keyId' | 'ticketId'> & { ticketId?: Uint8Array }): Uint8Array {
  const user = enc.encode(t.user);
  if (user.length < 1 || user.length > 64) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'ticket user must be 1..64 UTF-8 bytes');
  if (!(t.expiresAt > t.issuedAt) || t.expiresAt - t.issuedAt > MAX_TICKET_LIFETIME_S) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'ticket lifetime must be 1 s .. 24 h');
  if (!Number.isInteger(t.maxSessions) || t.maxSessions < 1 || t.maxSessions > 255) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'maxSessions must be 1..255');
  if (!Number.isInteger(t.maxKbps) || t.maxKbps < 1 || t.maxKbps > 0xffffffff) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'maxKbps must be a positive 32-bit integer');
  const ticketId = t.ticketId ?? new Uint8Array(16);
  if (!t.ticketId) provider.fillRandom(ticketId);
  const buf = new Uint8Array(64 + user.length + SIG_BYTES);
  const w = new Writer(buf);
  w.u8(TICKET_VERSION, 'ticket.version');
  w.u32(ticketKeyId(provider, key.publicKey), 'ticket.keyId');
  w.u32(t.issuedAt, 'ticket.issuedAt');
  w.u32(t.expiresAt, 'ticket.expiresAt');
  w.bytes(ticketId, 'ticket.ticketId');
  w.u8(user.length, 'ticket.userLength');
  w.bytes(user, 'ticket.user');
  w.u8(t.maxSessions, 'ticket.maxSessions');
  w.u32(t.maxKbps, 'ticket.maxKbps');
  const body = buf.subarray(0, w.position);
  w.bytes(provider.sign(key, signedBytes(body)), 'ticket.signature');
  return buf.slice(0, w.position);
}

function signedBytes(body: Uint8Array): Uint8Array {
  const b = new Uint8Array(LABEL.length + body.length);
  b.set(LABEL);
  b.set(body, LABEL.length);
  return b;
}

/** Parses a ticket without checking it. Throws WireError if malformed. */
export function decodeTicket(b: Uint8Array): { ticket: Ticket; body: Uint8Array; signature: Uint8Array } {
  if (b.length > MAX_TICKET_BYTES) throw new WireError('ticket', 'too long');
  const r = new Reader(b);
  const version = r.u8('ticket.version');
  if (version !== TICKET_VERSION) throw new WireError('ticket.version', `unsupported ticket version ${version}`);
  const keyId = r.u32('ticket.keyId');
  const issuedAt = r.u32('ticket.issuedAt');
  const expiresAt = r.u32('ticket.expiresAt');
  const ticketId = r.bytes(16, 'ticket.ticketId');
  const userBytes = r.bytes(r.u8('ticket.userLength'), 'ticket.user');
  let user: string;
  try {
    user = dec.decode(userBytes);
  } catch {
    throw new WireError('ticket.user', 'not UTF-8');
  }
  const maxSessions = r.u8('ticket.maxSessions');
  const maxKbps = r.u32('ticket.maxKbps');
  const bodyEnd = r.position;
  const signature = r.bytes(SIG_BYTES, 'ticket.signature');
  if (r.remaining !== 0) throw new WireError('ticket', 'trailing bytes');
  if (userBytes.length === 0 || maxSessions === 0) throw new WireError('ticket', 'empty user or no sessions');
  return { ticket: { keyId, issuedAt, expiresAt, ticketId, user, maxSessions, maxKbps }, body: b.subarray(0, bodyEnd), signature };
}

/** The ticket keys a relay trusts. */
export interface TicketKeys {
  /** keyId -> Ed25519 public key. */
  readonly keys: ReadonlyMap<number, Uint8Array>;
  /** Key ids no longer accepted. */
  readonly revoked: ReadonlySet<number>;
}

/** Why a ticket was refused (for counters and logs only: the client always sees the same REFUSED). */
export type TicketFailure = 'malformed' | 'unknownKey' | 'revokedKey' | 'notYetValid' | 'expired' | 'tooLong' | 'badSignature';

/**
 * Checks a ticket in the order of docs/RELAY.md: format, key known and not revoked, time bounds,
 * and only then the signature (the expensive step). `nowS` is unix seconds.
 */
export function verifyTicket(provider: CryptoProvider, trust: TicketKeys, bytes: Uint8Array, nowS: number, onSignatureCheck?: () => void): { ok: true; ticket: Ticket } | { ok: false; why: TicketFailure } {
  let d: ReturnType<typeof decodeTicket>;
  try {
    d = decodeTicket(bytes);
  } catch (e) {
    if (e instanceof WireError) return { ok: false, why: 'malformed' };
    throw e;
  }
  const t = d.ticket;
  if (trust.revoked.has(t.keyId)) return { ok: false, why: 'revokedKey' };
  const key = trust.keys.get(t.keyId);
  if (!key) return { ok: false, why: 'unknownKey' };
  if (t.issuedAt > nowS + TICKET_SKEW_S) return { ok: false, why: 'notYetValid' };
  if (t.expiresAt <= nowS) return { ok: false, why: 'expired' };
  if (t.expiresAt - t.issuedAt > MAX_TICKET_LIFETIME_S || t.expiresAt <= t.issuedAt) return { ok: false, why: 'tooLong' };
  onSignatureCheck?.();
  if (!provider.verify(key, signedBytes(d.body), d.signature)) return { ok: false, why: 'badSignature' };
  return { ok: true, ticket: t };
}
