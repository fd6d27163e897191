import { bytesEqual, type KeyExchangePair } from '../../crypto/provider.js';
import { addressGroup, ipFamily } from '../../util/address.js';
import { toHex } from '../../util/bytes.js';
import { ReplayWindow } from '../../util/replay-window.js';
import { openUp, relayHopKeys, sealDown, sealSessionOk, sealedUpCounter, SEALED_SESSION_AT, type HopKeys } from '../hop.js';
import { RefuseCode, SESSION_ID_BYTES, type RelayControl } from '../protocol.js';
import { verifyTicket, type TicketKeys } from '../ticket.js';
import { US_PER_S, readU32, type RelayContext } from './context.js';
import type { CookieJar } from './cookies.js';
import { rateBurstBytes, rateBytesPerUs, type Link } from './forwarding.js';
import { tokenGeneration, type RouteTokens } from './tokens.js';
import type { Trunk } from './trunks.js';
import type { RelayStats } from './types.js';

/** The random challenge of a PATH_CHALLENGE, bytes. */
const PATH_CHALLENGE_BYTES = 8;
/** A sealed PATH_CHALLENGE on the wire (type, counter, sealed type and challenge, tag), bytes. */
const PATH_CHALLENGE_MESSAGE_BYTES = 1 + 8 + 1 + PATH_CHALLENGE_BYTES + 16;
/** A candidate address gets at most one PATH_CHALLENGE this often, µs. */
const PATH_CHALLENGE_INTERVAL_US = 50_000;
/** A candidate address gets at most this many bytes of challenges per byte it sent. */
const PATH_CHALLENGE_MAX_AMPLIFICATION = 3;
/** Addresses under validation per session, at most: a new one replaces the oldest, so that an attacker sending from one address cannot displace the client's. */
const MAX_CANDIDATES = 4;
/** A removed session's request (address, port, client nonce) is not answered again for this long, µs: its cookie (10 s) has expired by then, so no replay can recreate a session with the same keys and counter 0. */
const RETIRED_REQUEST_US = 11_000_000;
/** Where the low 32 bits of a session id start (the table's key; the high 32 bits are checked). */
const SESSION_ID_LO_AT = 4;
/** The load byte of PONG and KEEPALIVE_ACK: sessions held as a share of the most, on 0..255. */
const MAX_LOAD = 255;

/** An address that named a session without being its own: a NAT rebinding in progress, or a forgery. */
export interface PathCandidate {
  readonly address: string;
  readonly port: number;
  readonly challenge: Uint8Array;
  bytesIn: number;
  bytesOut: number;
  lastSentUs: number;
}

/** A link asked for by a session on another relay of the fleet, over a trunk (docs/RELAY.md "Trunks"). */
export interface RemoteAsker {
  readonly trunk: Trunk;
  /** The other relay's id of the link on the trunk. */
  readonly linkId: number;
  /** The requester's peer id, as the other relay proved it. */
  readonly peerId: bigint;
  readonly user: string;
}

/** A link another session asked for, waiting for this session's consent (never holding a link slot). */
export interface Offer {
  readonly id: number;
  /** The requester's session here, or null when it asked from another relay (`remote`). */
  readonly from: Session | null;
  readonly remote: RemoteAsker | null;
  /** The request the answer goes to (the latest retry's). */
  requestId: number;
  readonly expiresUs: number;
  /** When the target was last told of it. */
  sentUs: number;
}

/** One relay session: its id and keys, its validated address, its links, its rate bucket and directory budgets. */
export interface Session {
  readonly idHi: number;
  readonly idLo: number;
  readonly id: Uint8Array;
  readonly keys: HopKeys;
  /** The route token of the current generation; older generations' tokens name nothing. */
  token: Uint8Array;
  tokenGeneration: number;
  readonly nonceKey: string;
  address: string;
  port: number;
  readonly user: string | null;
  readonly ticketId: string | null;
  /** The key id of the ticket's signing key (null in open mode): a fleet-wide revocation of the key closes the session. */
  readonly ticketKeyId: number | null;
  readonly links: (Link | undefined)[];
  linkCount: number;
  /** Token bucket, bytes. */
  tokens: number;
  tokensAtUs: number;
  readonly bytesPerUs: number;
  readonly burst: number;
  lastSeenUs: number;
  /** Addresses that named the session and are being challenged (at most {@link MAX_CANDIDATES}). */
  readonly candidates: PathCandidate[];
  /** The peer id this session registered in the directory, if any. */
  dirId: bigint | null;
  /** Token buckets for directory registrations and lookups (requests). */
  dirRegisterTokens: number;
  dirLookupTokens: number;
  dirTokensAtUs: number;
  /** Counters of sealed control seen from the client, and DATA_UP sequence numbers: replays are dropped. */
  readonly upWindow: ReplayWindow;
  readonly dataWindow: ReplayWindow;
  /**
   * Counters and sequence numbers seen from addresses other than the session's: each may start or refresh one
   * path validation, once. Copies of a captured datagram raced from many addresses make one candidate, not many.
   */
  readonly foreignUp: ReplayWindow;
  readonly foreignData: ReplayWindow;
  /** The next counter of a sealed message to the client. */
  downCounter: number;
  /** The peer id this session proved with its key in a LINK_REQUEST, once checked. */
  peerId: bigint | null;
  /** Peer ids whose link requests this session accepts at once (PERMIT). */
  readonly permits: Set<bigint>;
  /** The counter of the PERMIT that started the set held: an older one (reordered on the way) is ignored. */
  permitsFrom: number;
  /** Link requests waiting for this session's answer, by offer id. */
  readonly offers: Map<number, Offer>;
  nextOfferId: number;
  /** Token bucket for the offers and proof checks this session's link requests cost. */
  linkTokens: number;
  linkTokensAtUs: number;
  /** End-to-end datagrams this session sent that were forwarded, and their payload bytes. */
  upPackets: number;
  upBytes: number;
  /** End-to-end datagrams forwarded to this session, and their payload bytes. */
  downPackets: number;
  downBytes: number;
}

/** The admission and lifetime policy of a {@link SessionTable}, as resolved from the node's options. */
export interface SessionPolicy {
  readonly trust: TicketKeys;
  readonly open: boolean;
  readonly maxSessions: number;
  readonly openSessionsPerAddress: number;
  readonly openSessionsPerNetwork: number;
  readonly openKbps: number;
  readonly idleTimeoutUs: number;
  readonly tokenLifetimeS: number;
  readonly noSessionRepliesPerS: number;
  /** The directory's budgets, with which every session starts full. */
  readonly dirRegistersPerS: number;
  readonly dirLookupsPerS: number;
  /** The link request budget (offers and proof checks) every session starts with. */
  readonly linkRequestsPerS: number;
}

/** A sealed message from a session's validated address, opened, with its counter (the order the client sent it in). */
export interface SealedFrom {
  readonly s: Session;
  readonly m: RelayControl;
  readonly counter: number;
}

/** Ticket ids revoked fleet-wide that a relay remembers (a ticket lives at most 24 h; beyond this, the oldest goes). */
export const MAX_REVOKED_TICKETS = 65_536;

/**
 * The session table: admission (cookie, drain and capacity, ticket, ticket binding, quota; or the open mode's
 * per-address and per-network limits), the key agreement, lookups by id and by route token, sealed control (the
 * replay window, then the AEAD), the validated-address check every message passes (NO_SESSION answers, path
 * challenges, rebinding), and the end of sessions (close, reap, drain). `release` is told of every session
 * that goes, after the table has forgotten it.
 */
export class SessionTable {
  readonly #ctx: RelayContext;
  readonly #cookies: CookieJar;
  readonly #tokens: RouteTokens;
  readonly #policy: SessionPolicy;
  readonly #key: KeyExchangePair;
  readonly #release: (s: Session) => void;
  /** Sessions by the low 32 bits of their id (unique by construction); the high bits are checked. */
  readonly #sessions = new Map<number, Session>();
  /** `address/clientNonce` -> session: a repeated request gets the same answer. */
  readonly #byNonce = new Map<string, Session>();
  /** The requests of removed sessions, until when they are ignored (µs). */
  readonly #retired = new Map<string, number>();
  /** ticketId -> the client address that first used it, until the ticket expires (unix s). */
  readonly #ticketBinding = new Map<string, { address: string; expiresAt: number }>();
  /** user -> sessions held (ticketed), or address and network block -> sessions (open mode). */
  readonly #perOwner = new Map<string, number>();
  #noSessionTokens: number;
  #noSessionAtUs = 0;

  /** Ticket key ids refused: the configured ones, and those revoked fleet-wide since. */
  readonly #revokedKeys: Set<number>;
  /** The trust tickets are verified against: the configured keys, with {@link #revokedKeys}. */
  readonly #trust: TicketKeys;
  /** Ticket ids (hex) revoked fleet-wide, in the order revoked (at most {@link MAX_REVOKED_TICKETS}). */
  readonly #revokedTickets = new Set<string>();

  constructor(ctx: RelayContext, cookies: CookieJar, tokens: RouteTokens, policy: SessionPolicy, key: KeyExchangePair, release: (s: Session) => void) {
    this.#revokedKeys = new Set(policy.trust.revoked);
    this.#trust = { keys: policy.trust.keys, revoked: this.#revokedKeys };
    this.#ctx = ctx;
    this.#cookies = cookies;
    this.#tokens = tokens;
    this.#policy = policy;
    this.#key = key;
    this.#release = release;
    this.#noSessionTokens = policy.noSessionRepliesPerS;
  }

  /** Sessions held. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Whether a reap scan has nothing to look at: no session, no ticket binding, no retired request. */
  get empty(): boolean {
    return this.#sessions.size === 0 && this.#ticketBinding.size === 0 && this.#retired.size === 0;
  }

  /** Every session, in the order they opened. */
  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** The load byte of PONG and KEEPALIVE_ACK. */
  load(): number {
    return Math.min(MAX_LOAD, Math.floor((this.#sessions.size * MAX_LOAD) / this.#policy.maxSessions));
  }

  /** The session whose id is at `bytes[at]`, or null. */
  byId(bytes: Uint8Array, at: number): Session | null {
    const s = this.#sessions.get(readU32(bytes, at + SESSION_ID_LO_AT));
    return s && s.idHi === readU32(bytes, at) ? s : null;
  }

  /** The session a route token names, or null if the token is forged, expired, of a rotated generation, or its session is gone. */
  byToken(token: Uint8Array): Session | null {
    const plain = this.#tokens.open(token);
    if (!plain) return null;
    const s = this.byId(plain, 0);
    return s && s.tokenGeneration === tokenGeneration(plain) ? s : null;
  }

  /** Sends a sealed message to a session's validated address. */
  send(s: Session, m: RelayControl): void {
    this.#ctx.out(sealDown(s.keys, s.downCounter++, m), s.port, s.address);
  }

  /**
   * The session a DATA_UP names (its id at `bytes[at]`), whether or not it came from the session's validated
   * address; null, after answering NO_SESSION (rate-limited), if there is no such session.
   */
  named(now: number, address: string, port: number, bytes: Uint8Array, at: number): Session | null {
    const s = this.byId(bytes, at);
    if (!s) this.#noSession(now, address, port, bytes.subarray(at, at + SESSION_ID_BYTES));
    return s;
  }

  /**
   * A DATA_UP (its tag fresh and the session's) from an address other than the session's: a NAT rebinding, or
   * a captured datagram raced from elsewhere. The address is challenged; nothing is forwarded from it.
   */
  unvalidated(now: number, s: Session, address: string, port: number, size: number, seq: number): void {
    if (!s.foreignData.isNew(seq)) return;
    s.foreignData.mark(seq);
    this.#unvalidated(now, s, address, port, size);
  }

  /**
   * A SEALED frame: the session it names, its counter against the replay window (before any crypto), the
   * AEAD, then the address. A PATH_RESPONSE from the session's candidate address moves the session; anything
   * else from another address gets a path challenge and is not acted on. Returns what the caller handles.
   */
  sealed(now: number, address: string, port: number, data: Uint8Array): SealedFrom | null {
    const stats = this.#ctx.stats;
    const s = this.byId(data, SEALED_SESSION_AT);
    if (!s) {
      this.#noSession(now, address, port, data.subarray(SEALED_SESSION_AT, SEALED_SESSION_AT + SESSION_ID_BYTES));
      return null;
    }
    const counter = sealedUpCounter(data);
    if (counter < 0 || !s.upWindow.isNew(counter)) {
      stats.replayed++;
      return null;
    }
    const o = openUp(s.keys, data);
    if (!o) {
      stats.unauthenticated++;
      return null;
    }
    if (s.port === port && s.address === address) {
      s.upWindow.mark(o.counter);
      s.lastSeenUs = now;
      return { s, m: o.message, counter: o.counter };
    }
    // From another address: only a PATH_RESPONSE that moves the session uses up its counter. Anything else is
    // not acted on, and its counter stays usable: a copy raced from elsewhere cannot suppress the original.
    if (o.message.type === 'pathResponse' && this.#pathResponse(now, s, address, port, o.message.challenge)) s.upWindow.mark(o.counter);
    else if (s.foreignUp.isNew(o.counter)) {
      s.foreignUp.mark(o.counter);
      this.#unvalidated(now, s, address, port, data.length);
    }
    return null;
  }

  /** A SESSION_REQUEST: the cookie first (no answer without it), then drain and capacity, the ticket, its binding, the quota, the key agreement. */
  request(now: number, address: string, port: number, m: Extract<RelayControl, { type: 'sessionRequest' }>): void {
    const ctx = this.#ctx;
    const policy = this.#policy;
    // 1. The cookie, before anything else: a spoofed source never gets past this, and gets no answer.
    if (!this.#cookies.check(now, address, port, m.cookie)) {
      ctx.stats.cookieRefused++;
      return;
    }
    const nonceKey = `${address}|${port}|${toHex(m.clientNonce)}`;
    const again = this.#byNonce.get(nonceKey);
    if (again) {
      this.#sessionOk(again, m.clientNonce, now);
      return;
    }
    if ((this.#retired.get(nonceKey) ?? 0) > now) {
      ctx.stats.replayed++; // the request of a session that is gone: its keys must not serve a second one
      return;
    }
    const refuse = (code: number): void => ctx.reply({ type: 'refused', clientNonce: m.clientNonce, code }, port, address);
    if (ctx.drainUntilUs !== 0) return refuse(RefuseCode.Draining);
    if (this.#sessions.size >= policy.maxSessions) return refuse(RefuseCode.Full);
    // 2. The ticket: format, key, time, then the signature; then its binding to one address; then the quota.
    let user: string | null = null;
    let ticketId: string | null = null;
    let ticketKeyId: number | null = null;
    let kbps = policy.openKbps;
    let ticketExpiry = 0;
    if (m.ticket.length > 0 || !policy.open) {
      const failed = (why: keyof RelayStats['ticketRefusedBy']): void => {
        ctx.stats.ticketRefused++;
        ctx.stats.ticketRefusedBy[why]++;
        refuse(why === 'quota' ? RefuseCode.Quota : RefuseCode.Ticket);
      };
      if (m.ticket.length === 0) return failed('missing');
      const v = verifyTicket(ctx.provider, this.#trust, m.ticket, ctx.unixSeconds(), () => ctx.stats.signatureChecks++);
      if (!v.ok) return failed(v.why);
      ticketId = toHex(v.ticket.ticketId);
      if (this.#revokedTickets.has(ticketId)) return failed('revokedTicket');
      ticketKeyId = v.ticket.keyId;
      const bound = this.#ticketBinding.get(ticketId);
      if (bound !== undefined && bound.address !== `${address}|${port}`) return failed('reused');
      ticketExpiry = v.ticket.expiresAt;
      user = v.ticket.user;
      kbps = v.ticket.maxKbps;
      if ((this.#perOwner.get(`user|${user}`) ?? 0) >= v.ticket.maxSessions) return failed('quota');
    } else {
      // Open mode: a few sessions per address, and a bound per network block (/24, /64), so that one host's
      // many addresses cannot fill the relay.
      if ((this.#perOwner.get(`addr|${address}`) ?? 0) >= policy.openSessionsPerAddress) {
        ctx.stats.openRefusedBy.address++;
        return refuse(RefuseCode.Quota);
      }
      if ((this.#perOwner.get(`net|${networkOf(address)}`) ?? 0) >= policy.openSessionsPerNetwork) {
        ctx.stats.openRefusedBy.network++;
        return refuse(RefuseCode.AddressQuota);
      }
    }
    // 3. The key agreement: the relay's static key with the client's ephemeral one, bound to this request.
    const keys = relayHopKeys(ctx.provider, this.#key, m);
    if (!keys) {
      ctx.stats.malformed++;
      return;
    }
    if (ticketId && !this.#ticketBinding.has(ticketId)) this.#ticketBinding.set(ticketId, { address: `${address}|${port}`, expiresAt: ticketExpiry });
    const s = this.#newSession(now, address, port, user, ticketId, ticketKeyId, kbps, nonceKey, keys);
    this.#sessionOk(s, m.clientNonce, now);
  }

  /** A new route token generation: every older token of the session names nothing from now on. */
  rotateToken(s: Session, requestId: number): void {
    s.tokenGeneration++;
    s.token = this.#tokens.seal(s.id, this.#ctx.unixSeconds() + this.#policy.tokenLifetimeS, s.tokenGeneration);
    this.#ctx.stats.tokensRotated++;
    this.send(s, { type: 'tokenRotated', requestId, token: s.token });
  }

  /** A CLOSE_SESSION (sealed, from the session's address). */
  close(now: number, s: Session): void {
    this.#remove(s, now);
    this.#ctx.stats.sessionsClosed++;
  }

  /** Reaps the sessions silent for longer than the idle timeout, and forgets the ticket bindings that expired. */
  reap(now: number): void {
    for (const s of this.#sessions.values()) {
      if (now - s.lastSeenUs > this.#policy.idleTimeoutUs) {
        this.#remove(s, now);
        this.#ctx.stats.sessionsReaped++;
      }
    }
    const nowS = this.#ctx.unixSeconds();
    for (const [id, b] of this.#ticketBinding) if (b.expiresAt <= nowS) this.#ticketBinding.delete(id);
    for (const [k, until] of this.#retired) if (until <= now) this.#retired.delete(k);
  }

  /**
   * A revocation (fleet-wide, docs/RELAY.md "Revocation and drain"): tickets signed with key `keyId`, or the ticket
   * `ticketId` (hex), are refused from now on, and the sessions opened with them close at once. Returns how many closed.
   */
  revoke(now: number, r: { readonly keyId: number } | { readonly ticketId: string }): number {
    let closed = 0;
    if ('keyId' in r) this.#revokedKeys.add(r.keyId);
    else {
      if (this.#revokedTickets.size >= MAX_REVOKED_TICKETS) this.#revokedTickets.delete(this.#revokedTickets.values().next().value as string);
      this.#revokedTickets.add(r.ticketId);
    }
    for (const s of this.#sessions.values()) {
      if ('keyId' in r ? s.ticketKeyId !== r.keyId : s.ticketId !== r.ticketId) continue;
      this.#remove(s, now);
      closed++;
    }
    this.#ctx.stats.sessionsRevoked += closed;
    return closed;
  }

  /** Removes every session (the drain deadline). */
  removeAll(now: number): void {
    for (const s of this.#sessions.values()) this.#remove(s, now);
  }

  /**
   * The path challenge's answer from a candidate address: the session moves there (a NAT rebinding); the route
   * is unchanged. In open mode the new address must have room under the per-address and per-network caps (a
   * session moved there counts there), or the move is refused. Returns whether the session moved.
   */
  #pathResponse(now: number, s: Session, address: string, port: number, challenge: Uint8Array): boolean {
    const ctx = this.#ctx;
    const c = s.candidates.find((x) => x.address === address && x.port === port);
    if (!c || !bytesEqual(c.challenge, challenge)) {
      ctx.stats.unauthenticated++;
      return false;
    }
    if (s.user === null && address !== s.address) {
      const policy = this.#policy;
      const overAddress = (this.#perOwner.get(`addr|${address}`) ?? 0) >= policy.openSessionsPerAddress;
      const sameNet = networkOf(address) === networkOf(s.address);
      if (overAddress || (!sameNet && (this.#perOwner.get(`net|${networkOf(address)}`) ?? 0) >= policy.openSessionsPerNetwork)) {
        ctx.stats.openRefusedBy[overAddress ? 'address' : 'network']++;
        return false;
      }
    }
    this.#owned(s, -1);
    s.address = address;
    s.port = port;
    s.candidates.length = 0;
    s.lastSeenUs = now;
    this.#owned(s, +1);
    const binding = s.ticketId ? this.#ticketBinding.get(s.ticketId) : undefined;
    if (binding) binding.address = `${address}|${port}`;
    ctx.stats.rebinds++;
    this.send(s, { type: 'keepaliveAck', seq: 0, drainSeconds: ctx.drainSeconds(now), load: this.load(), observed: observedAddress(s) });
    return true;
  }

  /** Answers data naming a session we do not have, rarely: the sender learns to open a new one. 9 bytes for at least 11. */
  #noSession(now: number, address: string, port: number, id: Uint8Array): void {
    const ctx = this.#ctx;
    const rate = this.#policy.noSessionRepliesPerS;
    ctx.stats.unknownSession++;
    if (now > this.#noSessionAtUs) {
      this.#noSessionTokens = Math.min(rate, this.#noSessionTokens + ((now - this.#noSessionAtUs) * rate) / US_PER_S);
      this.#noSessionAtUs = now;
    }
    if (this.#noSessionTokens < 1 || id.length < SESSION_ID_BYTES) {
      ctx.stats.noSessionRepliesLimited++;
      return;
    }
    this.#noSessionTokens -= 1;
    ctx.reply({ type: 'noSession', sessionId: id.slice() }, port, address);
  }

  /**
   * A datagram for a session from an address other than its own: a NAT rebinding, or a forgery. Nothing
   * is forwarded from it; the new address gets a sealed PATH_CHALLENGE, with at most 3x the bytes it sent us.
   * Only the session's client can open the challenge and answer it.
   */
  #unvalidated(now: number, s: Session, address: string, port: number, size: number): void {
    const ctx = this.#ctx;
    ctx.stats.unvalidatedPath++;
    let c = s.candidates.find((x) => x.address === address && x.port === port);
    if (c) {
      // The most recently active candidate goes last: a new one replaces the stalest.
      s.candidates.splice(s.candidates.indexOf(c), 1);
      s.candidates.push(c);
    } else {
      const challenge = new Uint8Array(PATH_CHALLENGE_BYTES);
      ctx.provider.fillRandom(challenge);
      c = { address, port, challenge, bytesIn: 0, bytesOut: 0, lastSentUs: -Infinity };
      if (s.candidates.length >= MAX_CANDIDATES) s.candidates.shift();
      s.candidates.push(c);
    }
    c.bytesIn += size;
    if (now - c.lastSentUs < PATH_CHALLENGE_INTERVAL_US || c.bytesOut + PATH_CHALLENGE_MESSAGE_BYTES > PATH_CHALLENGE_MAX_AMPLIFICATION * c.bytesIn) return;
    c.bytesOut += PATH_CHALLENGE_MESSAGE_BYTES;
    c.lastSentUs = now;
    ctx.stats.pathChallenges++;
    ctx.out(sealDown(s.keys, s.downCounter++, { type: 'pathChallenge', challenge: c.challenge }), port, address);
  }

  #newSession(now: number, address: string, port: number, user: string | null, ticketId: string | null, ticketKeyId: number | null, kbps: number, nonceKey: string, keys: HopKeys): Session {
    const { provider } = this.#ctx;
    const policy = this.#policy;
    const id = new Uint8Array(SESSION_ID_BYTES);
    let lo: number;
    do {
      provider.fillRandom(id);
      lo = readU32(id, SESSION_ID_LO_AT);
    } while (this.#sessions.has(lo));
    const bytesPerUs = rateBytesPerUs(kbps);
    const burst = rateBurstBytes(bytesPerUs);
    const s: Session = {
      idHi: readU32(id, 0),
      idLo: lo,
      id,
      keys,
      token: this.#tokens.seal(id, this.#ctx.unixSeconds() + policy.tokenLifetimeS, 0),
      tokenGeneration: 0,
      nonceKey,
      address,
      port,
      user,
      ticketId,
      ticketKeyId,
      links: [],
      linkCount: 0,
      tokens: burst,
      tokensAtUs: now,
      bytesPerUs,
      burst,
      lastSeenUs: now,
      candidates: [],
      dirId: null,
      dirRegisterTokens: policy.dirRegistersPerS,
      dirLookupTokens: policy.dirLookupsPerS,
      dirTokensAtUs: now,
      upWindow: new ReplayWindow(),
      dataWindow: new ReplayWindow(),
      foreignUp: new ReplayWindow(),
      foreignData: new ReplayWindow(),
      downCounter: 0,
      peerId: null,
      permits: new Set(),
      permitsFrom: -1,
      offers: new Map(),
      nextOfferId: 1,
      linkTokens: policy.linkRequestsPerS,
      linkTokensAtUs: now,
      upPackets: 0,
      upBytes: 0,
      downPackets: 0,
      downBytes: 0,
    };
    this.#sessions.set(lo, s);
    this.#byNonce.set(nonceKey, s);
    this.#owned(s, +1);
    this.#ctx.stats.sessionsOpened++;
    return s;
  }

  /** What a session counts against: its ticket's user, or (open mode) its address and its network block. */
  #owners(s: Session): string[] {
    return s.user !== null ? [`user|${s.user}`] : [`addr|${s.address}`, `net|${networkOf(s.address)}`];
  }

  #owned(s: Session, delta: number): void {
    for (const k of this.#owners(s)) {
      const n = (this.#perOwner.get(k) ?? 0) + delta;
      if (n <= 0) this.#perOwner.delete(k);
      else this.#perOwner.set(k, n);
    }
  }

  #sessionOk(s: Session, clientNonce: Uint8Array, now: number): void {
    const ctx = this.#ctx;
    const m = { type: 'sessionOk', sessionId: s.id, drainSeconds: ctx.drainSeconds(now), idleSeconds: Math.round(this.#policy.idleTimeoutUs / US_PER_S), token: s.token } as const;
    ctx.out(sealSessionOk(s.keys, clientNonce, s.downCounter++, m), s.port, s.address);
  }

  #remove(s: Session, now: number): void {
    this.#sessions.delete(s.idLo);
    this.#byNonce.delete(s.nonceKey);
    this.#retired.set(s.nonceKey, now + RETIRED_REQUEST_US);
    this.#owned(s, -1);
    this.#release(s);
  }
}

/** The network block open mode counts sessions by: an IPv4 address's /24, an IPv6 address's /64. */
function networkOf(address: string): string {
  return addressGroup(address, 24) ?? address;
}

/**
 * The session's address as this relay sees it, for the client's own use (KEEPALIVE_ACK: a reflexive
 * address, as a STUN server answers). Sealed under the session's down key, so only its owner reads it.
 * An IPv4-mapped IPv6 address (a relay bound to `::`) is given as the IPv4 address it maps.
 */
export function observedAddress(s: Session): { address: string; port: number } | null {
  const raw = s.address;
  const a = raw.startsWith('::ffff:') && raw.includes('.') ? raw.slice(7) : raw;
  // A gateway's client (`ws/N`, `rtc/N`) has no UDP address to report; nor has a scoped IPv6 one a portable one.
  return ipFamily(a) === 0 || a.includes('%') ? null : { address: a, port: s.port };
}
