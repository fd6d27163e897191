import type { CryptoProvider } from '../crypto/provider.js';
import { AeadCipher, bytesEqual } from '../crypto/provider.js';
import { toHex } from '../util/bytes.js';
import { WireError } from '../wire/errors.js';
import { derivePeerId } from '../crypto/identity.js';
import {
  COOKIE_BYTES,
  DirCode,
  DOWN_HEADER_BYTES,
  MAX_RELAY_DATAGRAM,
  PATH_MAC_BYTES,
  RefuseCode,
  RelayMsg,
  SESSION_KEY_BYTES,
  UP_HEADER_BYTES,
  decodeRelayControl,
  decodeRoute,
  dirRegisterSigned,
  encodeRelayControl,
  type RelayControl,
} from './protocol.js';
import { verifyTicket, type TicketFailure, type TicketKeys } from './ticket.js';

/** Sends one datagram: `(data, port, address)`, the argument order of node:dgram. `data` may be reused after the call returns. */
export type RelaySend = (data: Uint8Array, port: number, address: string) => void;

/** Options of a {@link RelayNode}. */
export interface RelayNodeOptions {
  readonly provider: CryptoProvider;
  readonly send: RelaySend;
  /** Ticket keys trusted. Without any, only `open` mode admits clients. */
  readonly ticketKeys?: TicketKeys;
  /** Development mode: sessions without a ticket are admitted (rate `openKbps`, `openSessionsPerAddress` per address). */
  readonly open?: boolean;
  /** Wall clock, unix seconds, for ticket validity. Default: the system clock. */
  readonly unixSeconds?: () => number;
  /** Most sessions held. Default 10,000. */
  readonly maxSessions?: number;
  /** Most links per session. Default 64. */
  readonly maxLinksPerSession?: number;
  /** Sessions without a ticket per client address, in open mode. Default 8. */
  readonly openSessionsPerAddress?: number;
  /** Rate cap per session in open mode, kbit/s. Default 200,000 (200 Mbit/s). */
  readonly openKbps?: number;
  /** A session that sends nothing for this long is reaped. Default 30 s. */
  readonly idleTimeoutUs?: number;
  /** Route tokens expire after this long (a client refreshes its session before). Default 24 h. */
  readonly tokenLifetimeS?: number;
  /** NO_SESSION replies allowed per second, for the whole relay. Default 4 (as GNS). */
  readonly noSessionReplyRate?: number;
  /** Directory registrations allowed per session per second. Default 4. */
  readonly dirRegisterRate?: number;
  /** Directory lookups allowed per session per second. Default 50. */
  readonly dirLookupRate?: number;
  /** A registration's time may differ from the relay's clock by this much, s. Default 120. */
  readonly dirClockWindowS?: number;
}

/** Counters of a relay node. */
export interface RelayStats {
  datagramsIn: number;
  bytesIn: number;
  datagramsOut: number;
  bytesOut: number;
  malformed: number;
  pings: number;
  /** Session requests and path responses dropped for a bad or stale cookie or MAC: no reply, no state. */
  cookieRefused: number;
  /** Ed25519 verifications done (only ever after a valid cookie). */
  signatureChecks: number;
  ticketRefused: number;
  ticketRefusedBy: Record<TicketFailure | 'reused' | 'quota' | 'missing', number>;
  sessionsOpened: number;
  sessionsClosed: number;
  sessionsReaped: number;
  linksCreated: number;
  linkRefused: number;
  forwardedPackets: number;
  forwardedBytes: number;
  /** Data dropped by a session's rate cap. */
  rateLimited: number;
  /** Data for a link the session does not have. */
  noLink: number;
  /** Data or keepalives naming a session the relay does not have. */
  unknownSession: number;
  noSessionRepliesLimited: number;
  /** Datagrams from an address a session has not validated yet (rebinding in progress, or a forgery). */
  unvalidatedPath: number;
  pathChallenges: number;
  rebinds: number;
  /** Identity directory: registrations accepted, refused (by DirCode name), lookups answered. */
  dirRegistered: number;
  dirRefusedBy: { badSignature: number; badRoute: number; stale: number; rateLimited: number };
  dirLookups: number;
  dirNotFound: number;
  dirLookupsLimited: number;
  /** Identities in the directory now. */
  dirEntries: number;
}

/** One identity in the directory: the route its key holder registered, and the session that did. */
interface DirEntry {
  readonly route: string;
  readonly session: Session;
  readonly unixSeconds: number;
}

interface Link {
  readonly peer: Session;
  readonly peerLinkId: number;
}

interface PathCandidate {
  readonly address: string;
  readonly port: number;
  readonly challenge: Uint8Array;
  bytesIn: number;
  bytesOut: number;
  lastSentUs: number;
}

interface Session {
  readonly idHi: number;
  readonly idLo: number;
  readonly id: Uint8Array;
  readonly key: Uint8Array;
  readonly token: Uint8Array;
  readonly nonceKey: string;
  address: string;
  port: number;
  readonly user: string | null;
  readonly ticketId: string | null;
  readonly links: (Link | undefined)[];
  linkCount: number;
  /** Token bucket, bytes. */
  tokens: number;
  tokensAtUs: number;
  readonly bytesPerUs: number;
  readonly burst: number;
  lastSeenUs: number;
  candidate: PathCandidate | null;
  /** The peer id this session registered in the directory, if any. */
  dirId: bigint | null;
  /** Token buckets for directory registrations and lookups (requests). */
  dirRegisterTokens: number;
  dirLookupTokens: number;
  dirTokensAtUs: number;
}

const COOKIE_VALID_S = 10;
const COOKIE_ROTATION_S = 60;
const TOKEN_KID = 1;
const TOKEN_PLAIN_BYTES = 12;
const PATH_LABEL = new TextEncoder().encode('netlane-relay-path');
const NOW_S_SCALE = 1e6;

/**
 * A relay node, sans-IO (DESIGN.md section 6, docs/RELAY.md): it holds relay sessions, each opened
 * with a cookie and a ticket, links between sessions named by route tokens, and forwards end-to-end
 * datagrams between linked sessions, rewriting only the hop header. It never parses what it forwards.
 *
 * Inputs: {@link handleDatagram} and {@link handleTimeout} (call about once a second). Output goes
 * through the `send` callback given at construction. Network input never throws.
 */
export class RelayNode {
  readonly stats: RelayStats = {
    datagramsIn: 0,
    bytesIn: 0,
    datagramsOut: 0,
    bytesOut: 0,
    malformed: 0,
    pings: 0,
    cookieRefused: 0,
    signatureChecks: 0,
    ticketRefused: 0,
    ticketRefusedBy: { malformed: 0, unknownKey: 0, revokedKey: 0, notYetValid: 0, expired: 0, tooLong: 0, badSignature: 0, reused: 0, quota: 0, missing: 0 },
    sessionsOpened: 0,
    sessionsClosed: 0,
    sessionsReaped: 0,
    linksCreated: 0,
    linkRefused: 0,
    forwardedPackets: 0,
    forwardedBytes: 0,
    rateLimited: 0,
    noLink: 0,
    unknownSession: 0,
    noSessionRepliesLimited: 0,
    unvalidatedPath: 0,
    pathChallenges: 0,
    rebinds: 0,
    dirRegistered: 0,
    dirRefusedBy: { badSignature: 0, badRoute: 0, stale: 0, rateLimited: 0 },
    dirLookups: 0,
    dirNotFound: 0,
    dirLookupsLimited: 0,
    dirEntries: 0,
  };
  readonly #p: CryptoProvider;
  readonly #send: RelaySend;
  readonly #trust: TicketKeys;
  readonly #open: boolean;
  readonly #unixSeconds: () => number;
  readonly #maxSessions: number;
  readonly #maxLinks: number;
  readonly #openPerAddress: number;
  readonly #openKbps: number;
  readonly #idleUs: number;
  readonly #tokenLifetimeS: number;
  readonly #noSessionRate: number;
  readonly #dirRegisterRate: number;
  readonly #dirLookupRate: number;
  readonly #dirWindowS: number;
  /** The identity directory (DESIGN.md section 6): peer id -> its registered route. In memory, this relay only. */
  readonly #directory = new Map<bigint, DirEntry>();
  /** Sessions by the low 32 bits of their id (unique by construction); the high bits are checked. */
  readonly #sessions = new Map<number, Session>();
  /** `address/clientNonce` -> session: a repeated request gets the same answer. */
  readonly #byNonce = new Map<string, Session>();
  /** ticketId -> the client address that first used it, until the ticket expires (unix s). */
  readonly #ticketBinding = new Map<string, { address: string; expiresAt: number }>();
  /** user -> sessions held (ticketed), or address -> sessions (open mode). */
  readonly #perOwner = new Map<string, number>();
  readonly #tokenAead;
  #cookieKey: Uint8Array;
  #cookiePrev: Uint8Array;
  #cookieEpoch = -1;
  readonly #cookieIn = new Uint8Array(4 + 2 + 64);
  #noSessionTokens: number;
  #noSessionAtUs = 0;
  #drainUntilUs = 0;
  #nowUs = 0;

  constructor(options: RelayNodeOptions) {
    this.#p = options.provider;
    this.#send = options.send;
    this.#trust = options.ticketKeys ?? { keys: new Map(), revoked: new Set() };
    this.#open = options.open ?? false;
    this.#unixSeconds = options.unixSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.#maxSessions = options.maxSessions ?? 10_000;
    this.#maxLinks = Math.min(options.maxLinksPerSession ?? 64, 0xffff);
    this.#openPerAddress = options.openSessionsPerAddress ?? 8;
    this.#openKbps = options.openKbps ?? 200_000;
    this.#idleUs = options.idleTimeoutUs ?? 30_000_000;
    this.#tokenLifetimeS = options.tokenLifetimeS ?? 86_400;
    this.#noSessionRate = options.noSessionReplyRate ?? 4;
    this.#noSessionTokens = this.#noSessionRate;
    this.#dirRegisterRate = options.dirRegisterRate ?? 4;
    this.#dirLookupRate = options.dirLookupRate ?? 50;
    this.#dirWindowS = options.dirClockWindowS ?? 120;
    const tokenKey = new Uint8Array(32);
    this.#p.fillRandom(tokenKey);
    this.#tokenAead = this.#p.aead(AeadCipher.Aes256Gcm, tokenKey);
    this.#cookieKey = new Uint8Array(32);
    this.#cookiePrev = new Uint8Array(32);
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  get linkCount(): number {
    let n = 0;
    for (const s of this.#sessions.values()) n += s.linkCount;
    return n / 2;
  }

  /** Seconds until the drain deadline, 0 when not draining. */
  drainSeconds(now: number): number {
    return this.#drainUntilUs === 0 ? 0 : Math.max(1, Math.ceil((this.#drainUntilUs - now) / 1e6));
  }

  /** Starts draining: no new sessions; clients are told the deadline in every PONG and keepalive answer. */
  drain(now: number, seconds: number): void {
    this.#drainUntilUs = now + Math.max(1, seconds) * 1e6;
  }

  /** Whether a drain is finished: every session gone or the deadline passed. */
  drained(now: number): boolean {
    return this.#drainUntilUs !== 0 && (this.#sessions.size === 0 || now >= this.#drainUntilUs);
  }

  // ---------------------------------------------------------------- input

  /** One datagram from `address`:`port`. Never throws. `data` may be rewritten in place and forwarded. */
  handleDatagram(now: number, address: string, port: number, data: Uint8Array): void {
    this.#nowUs = now;
    const st = this.stats;
    st.datagramsIn++;
    st.bytesIn += data.length;
    if (data.length < 1 || data.length > MAX_RELAY_DATAGRAM) {
      st.malformed++;
      return;
    }
    if (data[0] === RelayMsg.DataUp) {
      this.#forward(now, address, port, data);
      return;
    }
    let m: RelayControl;
    try {
      m = decodeRelayControl(data);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      st.malformed++;
      return;
    }
    this.#control(now, address, port, data.length, m);
  }

  #forward(now: number, address: string, port: number, data: Uint8Array): void {
    if (data.length <= UP_HEADER_BYTES) {
      this.stats.malformed++;
      return;
    }
    const s = this.#from(now, address, port, data.length, data, 1);
    if (!s) return;
    const link = s.links[((data[9] as number) << 8) | (data[10] as number)];
    if (!link) {
      this.stats.noLink++;
      return;
    }
    const n = data.length - UP_HEADER_BYTES;
    if (now > s.tokensAtUs) {
      s.tokens = Math.min(s.burst, s.tokens + (now - s.tokensAtUs) * s.bytesPerUs);
      s.tokensAtUs = now;
    }
    if (s.tokens < n) {
      this.stats.rateLimited++;
      return;
    }
    s.tokens -= n;
    // Rewrite the 11-byte up header into the 3-byte down header in place: no copy of the payload.
    const out = data.subarray(UP_HEADER_BYTES - DOWN_HEADER_BYTES);
    out[0] = RelayMsg.DataDown;
    out[1] = link.peerLinkId >>> 8;
    out[2] = link.peerLinkId & 0xff;
    this.stats.forwardedPackets++;
    this.stats.forwardedBytes += n;
    this.#out(out, link.peer.port, link.peer.address);
  }

  #session(data: Uint8Array, at: number): Session | null {
    const hi = (((data[at] as number) << 24) | ((data[at + 1] as number) << 16) | ((data[at + 2] as number) << 8) | (data[at + 3] as number)) >>> 0;
    const lo = (((data[at + 4] as number) << 24) | ((data[at + 5] as number) << 16) | ((data[at + 6] as number) << 8) | (data[at + 7] as number)) >>> 0;
    const s = this.#sessions.get(lo);
    return s && s.idHi === hi ? s : null;
  }

  #out(data: Uint8Array, port: number, address: string): void {
    this.stats.datagramsOut++;
    this.stats.bytesOut += data.length;
    this.#send(data, port, address);
  }

  #reply(m: RelayControl, port: number, address: string): void {
    this.#out(encodeRelayControl(m), port, address);
  }

  #control(now: number, address: string, port: number, size: number, m: RelayControl): void {
    switch (m.type) {
      case 'ping': {
        this.stats.pings++;
        // 33 bytes for a request of at least 512: never an amplifier, and no state kept.
        this.#reply({ type: 'pong', nonce: m.nonce, cookie: this.#cookie(now, address, port), load: this.#load(), drainSeconds: this.drainSeconds(now) }, port, address);
        return;
      }
      case 'sessionRequest':
        this.#sessionRequest(now, address, port, m);
        return;
      case 'linkRequest': {
        const s = this.#from(now, address, port, size, m.sessionId, 0);
        if (!s) return;
        const code = this.#link(s, m.token, now);
        if (typeof code === 'number') {
          this.stats.linkRefused++;
          this.#reply({ type: 'linkFailed', requestId: m.requestId, code }, port, address);
        } else this.#reply({ type: 'linkOk', requestId: m.requestId, linkId: code.id }, port, address);
        return;
      }
      case 'keepalive': {
        const s = this.#from(now, address, port, size, m.sessionId, 0);
        if (!s) return;
        this.#reply({ type: 'keepaliveAck', seq: m.seq, drainSeconds: this.drainSeconds(now), load: this.#load() }, port, address);
        return;
      }
      case 'pathResponse': {
        const s = this.#session(m.sessionId, 0);
        const c = s?.candidate;
        if (!s || !c || c.address !== address || c.port !== port || !bytesEqual(c.challenge, m.challenge) || !bytesEqual(this.#pathMac(s, m.challenge), m.mac)) {
          this.stats.cookieRefused++;
          return;
        }
        // The new address proved it holds the session key: move the session (NAT rebinding). The route is unchanged.
        this.#owned(s, -1);
        s.address = address;
        s.port = port;
        s.candidate = null;
        s.lastSeenUs = now;
        this.#owned(s, +1);
        const binding = s.ticketId ? this.#ticketBinding.get(s.ticketId) : undefined;
        if (binding) binding.address = `${address}|${port}`;
        this.stats.rebinds++;
        this.#reply({ type: 'keepaliveAck', seq: 0, drainSeconds: this.drainSeconds(now), load: this.#load() }, port, address);
        return;
      }
      case 'dirRegister':
      case 'dirLookup': {
        const s = this.#from(now, address, port, size, m.sessionId, 0);
        if (!s) return;
        if (m.type === 'dirRegister') this.#dirRegister(now, s, m);
        else this.#dirLookup(now, s, m);
        return;
      }
      case 'closeSession': {
        const s = this.#session(m.sessionId, 0);
        if (s && s.port === port && s.address === address) {
          this.#remove(s);
          this.stats.sessionsClosed++;
        }
        return;
      }
      default:
        // Messages only a relay sends: a client never sends them.
        this.stats.malformed++;
    }
  }

  /**
   * The session a message names (its id at `bytes[at]`), if it came from the session's validated address (the session
   * is then seen alive). Otherwise null, after answering NO_SESSION (rate-limited) or a path challenge.
   */
  #from(now: number, address: string, port: number, size: number, bytes: Uint8Array, at: number): Session | null {
    const s = this.#session(bytes, at);
    if (!s) {
      this.#noSession(now, address, port, bytes.subarray(at, at + 8));
      return null;
    }
    if (s.port !== port || s.address !== address) {
      this.#unvalidated(now, s, address, port, size);
      return null;
    }
    s.lastSeenUs = now;
    return s;
  }

  #load(): number {
    return Math.min(255, Math.floor((this.#sessions.size * 255) / this.#maxSessions));
  }

  /** Answers data naming a session we do not have, rarely: the sender learns to open a new one. 9 bytes for at least 11. */
  #noSession(now: number, address: string, port: number, id: Uint8Array): void {
    this.stats.unknownSession++;
    if (now > this.#noSessionAtUs) {
      this.#noSessionTokens = Math.min(this.#noSessionRate, this.#noSessionTokens + ((now - this.#noSessionAtUs) * this.#noSessionRate) / 1e6);
      this.#noSessionAtUs = now;
    }
    if (this.#noSessionTokens < 1) {
      this.stats.noSessionRepliesLimited++;
      return;
    }
    this.#noSessionTokens -= 1;
    this.#reply({ type: 'noSession', sessionId: id.slice() }, port, address);
  }

  /**
   * A datagram for a session from an address other than its own: a NAT rebinding, or a forgery. Nothing
   * is forwarded from it; the new address gets a PATH_CHALLENGE, with at most 3x the bytes it sent us.
   */
  #unvalidated(now: number, s: Session, address: string, port: number, size: number): void {
    this.stats.unvalidatedPath++;
    let c = s.candidate;
    if (!c || c.address !== address || c.port !== port) {
      const challenge = new Uint8Array(8);
      this.#p.fillRandom(challenge);
      c = s.candidate = { address, port, challenge, bytesIn: 0, bytesOut: 0, lastSentUs: -Infinity };
    }
    c.bytesIn += size;
    const msg = 9;
    if (now - c.lastSentUs < 50_000 || c.bytesOut + msg > 3 * c.bytesIn) return;
    c.bytesOut += msg;
    c.lastSentUs = now;
    this.stats.pathChallenges++;
    this.#reply({ type: 'pathChallenge', challenge: c.challenge }, port, address);
  }

  #pathMac(s: Session, challenge: Uint8Array): Uint8Array {
    return this.#p.hmacSha256(s.key, PATH_LABEL, challenge).subarray(0, PATH_MAC_BYTES);
  }

  // ---------------------------------------------------------------- cookies

  #cookieMac(key: Uint8Array, address: string, port: number, t: number): Uint8Array {
    const b = this.#cookieIn;
    b[0] = t >>> 24;
    b[1] = (t >>> 16) & 0xff;
    b[2] = (t >>> 8) & 0xff;
    b[3] = t & 0xff;
    b[4] = port >>> 8;
    b[5] = port & 0xff;
    const n = Math.min(64, address.length);
    for (let i = 0; i < n; i++) b[6 + i] = address.charCodeAt(i) & 0xff;
    return this.#p.hmacSha256(key, b.subarray(0, 6 + n));
  }

  #rotateCookieKey(nowS: number): void {
    const epoch = Math.floor(nowS / COOKIE_ROTATION_S);
    if (epoch === this.#cookieEpoch) return;
    this.#cookiePrev = epoch === this.#cookieEpoch + 1 ? this.#cookieKey : new Uint8Array(32);
    this.#cookieKey = new Uint8Array(32);
    this.#p.fillRandom(this.#cookieKey);
    this.#cookieEpoch = epoch;
  }

  /** HMAC-SHA256(key, time, port, address), 16 bytes, then the time (relay seconds): valid for 10 s. */
  #cookie(now: number, address: string, port: number): Uint8Array {
    const nowS = Math.floor(now / NOW_S_SCALE);
    this.#rotateCookieKey(nowS);
    const out = new Uint8Array(COOKIE_BYTES);
    out.set(this.#cookieMac(this.#cookieKey, address, port, nowS).subarray(0, 16));
    out[16] = nowS >>> 24;
    out[17] = (nowS >>> 16) & 0xff;
    out[18] = (nowS >>> 8) & 0xff;
    out[19] = nowS & 0xff;
    return out;
  }

  #checkCookie(now: number, address: string, port: number, cookie: Uint8Array): boolean {
    const nowS = Math.floor(now / NOW_S_SCALE);
    this.#rotateCookieKey(nowS);
    const t = (((cookie[16] as number) << 24) | ((cookie[17] as number) << 16) | ((cookie[18] as number) << 8) | (cookie[19] as number)) >>> 0;
    if (t > nowS || nowS - t > COOKIE_VALID_S) return false;
    const mac = cookie.subarray(0, 16);
    // A cookie made just before a rotation is checked under the previous key.
    if (bytesEqual(this.#cookieMac(this.#cookieKey, address, port, t).subarray(0, 16), mac)) return true;
    return bytesEqual(this.#cookieMac(this.#cookiePrev, address, port, t).subarray(0, 16), mac);
  }

  // ---------------------------------------------------------------- sessions

  #sessionRequest(now: number, address: string, port: number, m: Extract<RelayControl, { type: 'sessionRequest' }>): void {
    // 1. The cookie, before anything else: a spoofed source never gets past this, and gets no answer.
    if (!this.#checkCookie(now, address, port, m.cookie)) {
      this.stats.cookieRefused++;
      return;
    }
    const nonceKey = `${address}|${port}|${toHex(m.clientNonce)}`;
    const again = this.#byNonce.get(nonceKey);
    if (again) {
      this.#sessionOk(again, m.clientNonce, now);
      return;
    }
    const refuse = (code: number): void => this.#reply({ type: 'refused', clientNonce: m.clientNonce, code }, port, address);
    if (this.#drainUntilUs !== 0) return refuse(RefuseCode.Draining);
    if (this.#sessions.size >= this.#maxSessions) return refuse(RefuseCode.Full);
    // 2. The ticket: format, key, time, then the signature; then its binding to one address; then the quota.
    let user: string | null = null;
    let ticketId: string | null = null;
    let kbps = this.#openKbps;
    let owner = `addr|${address}`;
    let ownerMax = this.#openPerAddress;
    let ticketExpiry = 0;
    if (m.ticket.length > 0 || !this.#open) {
      const failed = (why: keyof RelayStats['ticketRefusedBy']): void => {
        this.stats.ticketRefused++;
        this.stats.ticketRefusedBy[why]++;
        refuse(why === 'quota' ? RefuseCode.Quota : RefuseCode.Ticket);
      };
      if (m.ticket.length === 0) return failed('missing');
      const v = verifyTicket(this.#p, this.#trust, m.ticket, this.#unixSeconds(), () => this.stats.signatureChecks++);
      if (!v.ok) return failed(v.why);
      ticketId = toHex(v.ticket.ticketId);
      const bound = this.#ticketBinding.get(ticketId);
      if (bound !== undefined && bound.address !== `${address}|${port}`) return failed('reused');
      ticketExpiry = v.ticket.expiresAt;
      user = v.ticket.user;
      kbps = v.ticket.maxKbps;
      owner = `user|${user}`;
      ownerMax = v.ticket.maxSessions;
    }
    if ((this.#perOwner.get(owner) ?? 0) >= ownerMax) {
      this.stats.ticketRefused++;
      this.stats.ticketRefusedBy.quota++;
      return refuse(RefuseCode.Quota);
    }
    if (ticketId && !this.#ticketBinding.has(ticketId)) this.#ticketBinding.set(ticketId, { address: `${address}|${port}`, expiresAt: ticketExpiry });
    const s = this.#newSession(now, address, port, user, ticketId, kbps, nonceKey);
    this.#sessionOk(s, m.clientNonce, now);
  }

  #newSession(now: number, address: string, port: number, user: string | null, ticketId: string | null, kbps: number, nonceKey: string): Session {
    const id = new Uint8Array(8);
    let lo: number;
    do {
      this.#p.fillRandom(id);
      lo = (((id[4] as number) << 24) | ((id[5] as number) << 16) | ((id[6] as number) << 8) | (id[7] as number)) >>> 0;
    } while (this.#sessions.has(lo));
    const hi = (((id[0] as number) << 24) | ((id[1] as number) << 16) | ((id[2] as number) << 8) | (id[3] as number)) >>> 0;
    const key = new Uint8Array(SESSION_KEY_BYTES);
    this.#p.fillRandom(key);
    const bytesPerUs = (kbps * 1000) / 8 / 1e6;
    const burst = Math.max(65_536, bytesPerUs * 100_000);
    const s: Session = {
      idHi: hi,
      idLo: lo,
      id,
      key,
      token: this.#sealToken(id, this.#unixSeconds() + this.#tokenLifetimeS),
      nonceKey,
      address,
      port,
      user,
      ticketId,
      links: [],
      linkCount: 0,
      tokens: burst,
      tokensAtUs: now,
      bytesPerUs,
      burst,
      lastSeenUs: now,
      candidate: null,
      dirId: null,
      dirRegisterTokens: this.#dirRegisterRate,
      dirLookupTokens: this.#dirLookupRate,
      dirTokensAtUs: now,
    };
    this.#sessions.set(lo, s);
    this.#byNonce.set(nonceKey, s);
    this.#owned(s, +1);
    this.stats.sessionsOpened++;
    return s;
  }

  #owner(s: Session): string {
    return s.user !== null ? `user|${s.user}` : `addr|${s.address}`;
  }

  #owned(s: Session, delta: number): void {
    const k = this.#owner(s);
    const n = (this.#perOwner.get(k) ?? 0) + delta;
    if (n <= 0) this.#perOwner.delete(k);
    else this.#perOwner.set(k, n);
  }

  #sessionOk(s: Session, clientNonce: Uint8Array, now: number): void {
    this.#reply({ type: 'sessionOk', clientNonce, sessionId: s.id, sessionKey: s.key, drainSeconds: this.drainSeconds(now), idleSeconds: Math.round(this.#idleUs / 1e6), token: s.token }, s.port, s.address);
  }

  #remove(s: Session): void {
    this.#sessions.delete(s.idLo);
    this.#byNonce.delete(s.nonceKey);
    this.#owned(s, -1);
    for (const l of s.links) {
      if (!l) continue;
      l.peer.links[l.peerLinkId] = undefined;
      l.peer.linkCount--;
    }
    s.links.length = 0;
    s.linkCount = 0;
    if (s.dirId !== null && this.#directory.get(s.dirId)?.session === s) this.#directory.delete(s.dirId);
    this.stats.dirEntries = this.#directory.size;
  }

  // ---------------------------------------------------------------- the identity directory

  #refillDir(now: number, s: Session): void {
    if (now <= s.dirTokensAtUs) return;
    const dt = (now - s.dirTokensAtUs) / 1e6;
    s.dirRegisterTokens = Math.min(this.#dirRegisterRate, s.dirRegisterTokens + dt * this.#dirRegisterRate);
    s.dirLookupTokens = Math.min(this.#dirLookupRate, s.dirLookupTokens + dt * this.#dirLookupRate);
    s.dirTokensAtUs = now;
  }

  /**
   * A session registers its peer id and route. Cheap checks first, the signature last: the rate, the
   * route (it must name this very session, so a copied registration is useless elsewhere), the time
   * (not older than what is held), then the Ed25519 signature by the key the id derives from.
   */
  #dirRegister(now: number, s: Session, m: Extract<RelayControl, { type: 'dirRegister' }>): void {
    const answer = (code: number): void => this.#reply({ type: 'dirRegisterResult', requestId: m.requestId, code }, s.port, s.address);
    const refuse = (code: number, why: keyof RelayStats['dirRefusedBy']): void => {
      this.stats.dirRefusedBy[why]++;
      answer(code);
    };
    this.#refillDir(now, s);
    if (s.dirRegisterTokens < 1) return refuse(DirCode.RateLimited, 'rateLimited');
    s.dirRegisterTokens -= 1;
    let names = false;
    try {
      names = decodeRoute(m.route).entries.some((e) => this.#openToken(e.token) === s);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
    if (!names) return refuse(DirCode.BadRoute, 'badRoute');
    const id = derivePeerId(this.#p, m.publicKey);
    const held = this.#directory.get(id);
    if (Math.abs(m.unixSeconds - this.#unixSeconds()) > this.#dirWindowS || (held && m.unixSeconds < held.unixSeconds)) return refuse(DirCode.Stale, 'stale');
    if (held && held.session === s && held.route === m.route) return answer(DirCode.Ok); // a retransmission
    this.stats.signatureChecks++;
    if (!this.#p.verify(m.publicKey, dirRegisterSigned(m.publicKey, m.unixSeconds, m.route), m.signature)) return refuse(DirCode.BadSignature, 'badSignature');
    if (s.dirId !== null && s.dirId !== id && this.#directory.get(s.dirId)?.session === s) this.#directory.delete(s.dirId);
    s.dirId = id;
    this.#directory.set(id, { route: m.route, session: s, unixSeconds: m.unixSeconds });
    this.stats.dirRegistered++;
    this.stats.dirEntries = this.#directory.size;
    answer(DirCode.Ok);
  }

  /** A session looks a peer id up: its registered route, or NOT_FOUND. Rate-limited per session. */
  #dirLookup(now: number, s: Session, m: Extract<RelayControl, { type: 'dirLookup' }>): void {
    this.#refillDir(now, s);
    if (s.dirLookupTokens < 1) {
      this.stats.dirLookupsLimited++;
      this.#reply({ type: 'dirLookupResult', requestId: m.requestId, code: DirCode.RateLimited, peerId: m.peerId, route: '' }, s.port, s.address);
      return;
    }
    s.dirLookupTokens -= 1;
    this.stats.dirLookups++;
    const e = this.#directory.get(m.peerId);
    if (!e) this.stats.dirNotFound++;
    this.#reply({ type: 'dirLookupResult', requestId: m.requestId, code: e ? DirCode.Ok : DirCode.NotFound, peerId: m.peerId, route: e?.route ?? '' }, s.port, s.address);
  }

  /** The route registered for a peer id on this relay, or null (for status output and tests). */
  lookup(peerId: bigint): string | null {
    return this.#directory.get(peerId)?.route ?? null;
  }

  // ---------------------------------------------------------------- route tokens and links

  /** kid(1) | nonce(12) | AES-256-GCM(session id 8 | expiry u32) with a 16-byte tag: 41 bytes, no client address. */
  #sealToken(id: Uint8Array, expiresAtS: number): Uint8Array {
    const out = new Uint8Array(1 + 12 + TOKEN_PLAIN_BYTES + 16);
    out[0] = TOKEN_KID;
    const nonce = out.subarray(1, 13);
    this.#p.fillRandom(nonce);
    const plain = new Uint8Array(TOKEN_PLAIN_BYTES);
    plain.set(id);
    new DataView(plain.buffer).setUint32(8, expiresAtS >>> 0);
    this.#tokenAead.seal(nonce, out.subarray(0, 1), plain, out, 13);
    return out;
  }

  #openToken(token: Uint8Array): Session | null {
    if (token.length !== 1 + 12 + TOKEN_PLAIN_BYTES + 16 || token[0] !== TOKEN_KID) return null;
    const plain = new Uint8Array(TOKEN_PLAIN_BYTES);
    if (this.#tokenAead.open(token.subarray(1, 13), token.subarray(0, 1), token.subarray(13), plain, 0) !== TOKEN_PLAIN_BYTES) return null;
    if (new DataView(plain.buffer).getUint32(8) <= this.#unixSeconds()) return null;
    return this.#session(plain, 0);
  }

  /** Links `s` to the session a route token names (or finds the link they already share). Returns the link id on `s`'s side, or a refusal code. */
  #link(s: Session, token: Uint8Array, now: number): { id: number } | number {
    const t = this.#openToken(token);
    if (!t || t === s) return RefuseCode.BadRoute;
    for (let i = 0; i < s.links.length; i++) if (s.links[i]?.peer === t) return { id: i };
    if (s.linkCount >= this.#maxLinks || t.linkCount >= this.#maxLinks) return RefuseCode.LinkLimit;
    const a = freeSlot(s.links);
    const b = freeSlot(t.links);
    s.links[a] = { peer: t, peerLinkId: b };
    t.links[b] = { peer: s, peerLinkId: a };
    s.linkCount++;
    t.linkCount++;
    t.lastSeenUs = Math.max(t.lastSeenUs, now - this.#idleUs / 2);
    this.stats.linksCreated++;
    return { id: a };
  }

  // ---------------------------------------------------------------- timers

  /** Reaps idle sessions. Call about once a second. */
  handleTimeout(now: number): void {
    for (const s of this.#sessions.values()) {
      if (now - s.lastSeenUs > this.#idleUs) {
        this.#remove(s);
        this.stats.sessionsReaped++;
      }
    }
    const nowS = this.#unixSeconds();
    for (const [id, b] of this.#ticketBinding) if (b.expiresAt <= nowS) this.#ticketBinding.delete(id);
    if (this.#drainUntilUs !== 0 && now >= this.#drainUntilUs) {
      for (const s of this.#sessions.values()) this.#remove(s);
    }
  }

  /** Session summaries, for `netlane relay` status lines and tests. Never includes keys. */
  sessions(): { id: string; address: string; port: number; user: string | null; links: number; idleMs: number }[] {
    return [...this.#sessions.values()].map((s) => ({ id: toHex(s.id), address: s.address, port: s.port, user: s.user, links: s.linkCount, idleMs: Math.round((this.#nowUs - s.lastSeenUs) / 1000) }));
  }
}

function freeSlot(links: (Link | undefined)[]): number {
  for (let i = 0; i < links.length; i++) if (!links[i]) return i;
  return links.length;
}
