import { derivePeerId } from '../../crypto/identity.js';
import { WireError } from '../../wire/errors.js';
import { DirCode, decodeRoute, dirRegisterSigned, type RelayControl } from '../protocol.js';
import { US_PER_S, type RelayContext } from './context.js';
import { registrationOrder, type Fleet } from './fleet.js';
import type { Session, SessionTable } from './sessions.js';
import type { RelayStats } from './types.js';

/** One identity in the directory: the route its key holder registered, and the session that did. */
interface DirEntry {
  readonly route: string;
  readonly session: Session;
  readonly unixSeconds: number;
  /** The route's revision: within one second, it orders two registrations (they may arrive out of order). */
  readonly revision: number;
}

/** The directory's limits, as resolved from the node's options. */
export interface DirectoryPolicy {
  readonly registersPerS: number;
  readonly lookupsPerS: number;
  /** A registration's time may differ from the relay's clock by this much, s. */
  readonly clockWindowS: number;
}

/**
 * The identity directory (docs/RELAY.md "The identity directory"): peer id -> the route its key holder registered,
 * in memory. Registrations and lookups are rate-limited per session (budgets kept on the session); an entry goes
 * when its session goes. In a fleet, accepted registrations are written to the fleet's store too, and a lookup
 * this relay's own entries cannot answer is asked of the store (answered when the store answers).
 */
export class Directory {
  readonly #ctx: RelayContext;
  readonly #sessions: SessionTable;
  readonly #policy: DirectoryPolicy;
  readonly #entries = new Map<bigint, DirEntry>();
  readonly #fleet: Fleet | null;

  constructor(ctx: RelayContext, sessions: SessionTable, policy: DirectoryPolicy, fleet: Fleet | null) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#policy = policy;
    this.#fleet = fleet;
  }

  /** Writes every entry to the fleet's store again (the refresh that keeps their TTL, and fills a store that lost them). */
  refreshFleet(now: number): void {
    const fleet = this.#fleet;
    if (!fleet) return;
    for (const [id, e] of this.#entries) fleet.registered(now, id, e.route, registrationOrder(e.unixSeconds, e.revision));
  }

  /** The route registered for a peer id, or null. */
  route(peerId: bigint): string | null {
    return this.#entries.get(peerId)?.route ?? null;
  }

  /** Drops the entry a session that is going registered, unless a newer registration replaced it. */
  forget(s: Session): void {
    const e = s.dirId !== null ? this.#entries.get(s.dirId) : undefined;
    if (e?.session === s) {
      this.#entries.delete(s.dirId as bigint);
      this.#fleet?.forgot(s.dirId as bigint, e.route);
    }
    this.#ctx.stats.dirEntries = this.#entries.size;
  }

  /**
   * A session registers its peer id and route. Cheap checks first, the signature last: the rate, the
   * route (it must name this very session, so a copied registration is useless elsewhere), the time
   * (not older than what is held), then the Ed25519 signature by the key the id derives from.
   */
  register(now: number, s: Session, m: Extract<RelayControl, { type: 'dirRegister' }>): void {
    const ctx = this.#ctx;
    const answer = (code: number): void => this.#sessions.send(s, { type: 'dirRegisterResult', requestId: m.requestId, code });
    const refuse = (code: number, why: keyof RelayStats['dirRefusedBy']): void => {
      ctx.stats.dirRefusedBy[why]++;
      answer(code);
    };
    this.#refill(now, s);
    if (s.dirRegisterTokens < 1) return refuse(DirCode.RateLimited, 'rateLimited');
    s.dirRegisterTokens -= 1;
    let names = false;
    let revision = 0;
    try {
      const route = decodeRoute(m.route);
      names = route.entries.some((e) => this.#sessions.byToken(e.token) === s);
      revision = route.revision;
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
    if (!names) return refuse(DirCode.BadRoute, 'badRoute');
    const id = derivePeerId(ctx.provider, m.publicKey);
    const held = this.#entries.get(id);
    const older = held !== undefined && (m.unixSeconds < held.unixSeconds || (m.unixSeconds === held.unixSeconds && revision < held.revision));
    if (Math.abs(m.unixSeconds - ctx.unixSeconds()) > this.#policy.clockWindowS || older) return refuse(DirCode.Stale, 'stale');
    if (held && held.session === s && held.route === m.route) return answer(DirCode.Ok); // a retransmission
    ctx.stats.signatureChecks++;
    if (!ctx.provider.verify(m.publicKey, dirRegisterSigned(m.publicKey, m.unixSeconds, m.route), m.signature)) return refuse(DirCode.BadSignature, 'badSignature');
    if (s.dirId !== null && s.dirId !== id) {
      const previous = this.#entries.get(s.dirId);
      if (previous?.session === s) {
        this.#entries.delete(s.dirId);
        this.#fleet?.forgot(s.dirId, previous.route);
      }
    }
    s.dirId = id;
    this.#entries.set(id, { route: m.route, session: s, unixSeconds: m.unixSeconds, revision });
    this.#fleet?.registered(now, id, m.route, registrationOrder(m.unixSeconds, revision));
    ctx.stats.dirRegistered++;
    ctx.stats.dirEntries = this.#entries.size;
    answer(DirCode.Ok);
  }

  /**
   * A session looks a peer id up: its registered route, or NOT_FOUND. Rate-limited per session. In a fleet, an id
   * this relay does not hold is asked of the store: the answer (the route, NOT_FOUND or STORE_UNAVAILABLE) comes later.
   */
  lookup(now: number, s: Session, m: Extract<RelayControl, { type: 'dirLookup' }>): void {
    const ctx = this.#ctx;
    if (!this.spendLookup(now, s)) {
      this.#sessions.send(s, { type: 'dirLookupResult', requestId: m.requestId, code: DirCode.RateLimited, peerId: m.peerId, route: '' });
      return;
    }
    ctx.stats.dirLookups++;
    const e = this.#entries.get(m.peerId);
    if (!e && this.#fleet) return this.#fleet.lookup(now, s, m);
    if (!e) ctx.stats.dirNotFound++;
    this.#sessions.send(s, { type: 'dirLookupResult', requestId: m.requestId, code: e ? DirCode.Ok : DirCode.NotFound, peerId: m.peerId, route: e?.route ?? '' });
  }

  /** Spends one of a session's lookups (a FLEET_LIST costs one); false, counted, if none is left. */
  spendLookup(now: number, s: Session): boolean {
    this.#refill(now, s);
    if (s.dirLookupTokens < 1) {
      this.#ctx.stats.dirLookupsLimited++;
      return false;
    }
    s.dirLookupTokens -= 1;
    return true;
  }

  #refill(now: number, s: Session): void {
    if (now <= s.dirTokensAtUs) return;
    const { registersPerS, lookupsPerS } = this.#policy;
    const dt = (now - s.dirTokensAtUs) / US_PER_S;
    s.dirRegisterTokens = Math.min(registersPerS, s.dirRegisterTokens + dt * registersPerS);
    s.dirLookupTokens = Math.min(lookupsPerS, s.dirLookupTokens + dt * lookupsPerS);
    s.dirTokensAtUs = now;
  }
}
