import type { CryptoProvider, SigningKey } from '../../crypto/provider.js';
import { DirCode, decodeRoute, dirRegisterSigned, type RelayControl, type Route } from '../protocol.js';
import { WireError } from '../../wire/errors.js';
import { LOOKUP_TRIES, REFUSED_RETRY_US, REQUEST_RETRY_US, REQUEST_TRIES, type RelayState } from './state.js';

// The identity directory, client side: registering this client's peer id and route with every relay of
// its route (again on each route change), and looking peer ids up, primary first (docs/RELAY.md).

/** How a directory lookup ended: the route, or why there is none. */
export type LookupResult = { readonly ok: true; readonly route: string; readonly parsed: Route; /** The relay could not reach its fleet's store and answered the route it last read there (STALE_ROUTE). */ readonly stale?: true } | { readonly ok: false; readonly why: 'notFound' | 'unreachable' | 'noRelay' };

/** Counters of the directory client (part of the relay client's stats). */
export interface DirectoryStats {
  dirRegistered: number;
  dirRegisterRefused: number;
  dirLookups: number;
}

interface Registration {
  /** The route this relay acknowledged, and one in flight. */
  acked: string | null;
  pending: string | null;
  requestId: number;
  sentUs: number;
  tries: number;
  /** After a refusal or no answer, the next registration waits until then. */
  retryAtUs: number;
}

interface Lookup {
  readonly peerId: bigint;
  readonly requestId: number;
  /** Relays still to ask, in order; the head is being asked. */
  readonly relays: RelayState[];
  sentUs: number;
  tries: number;
  notFound: boolean;
}

/** What the directory needs of the relay client: sending control messages, request ids, and the clocks. */
export interface DirectoryHost {
  sendControl(r: RelayState, m: RelayControl): void;
  nextRequestId(): number;
  unixSeconds(now: number): number;
  /** A lookup finished. */
  lookupDone(peerId: bigint, result: LookupResult): void;
}

/** Registrations per relay and lookups in flight, with their retries (driven by the relay client's timer). */
export class DirectoryClient {
  readonly #host: DirectoryHost;
  readonly #p: CryptoProvider;
  readonly #key: SigningKey | null;
  readonly #stats: DirectoryStats;
  readonly #regs = new Map<RelayState, Registration>();
  readonly #lookups = new Map<number, Lookup>();

  constructor(host: DirectoryHost, provider: CryptoProvider, key: SigningKey | null, stats: DirectoryStats) {
    this.#host = host;
    this.#p = provider;
    this.#key = key;
    this.#stats = stats;
  }

  #reg(r: RelayState): Registration {
    let g = this.#regs.get(r);
    if (!g) this.#regs.set(r, (g = { acked: null, pending: null, requestId: 0, sentUs: 0, tries: 0, retryAtUs: 0 }));
    return g;
  }

  /** Whether every open relay of `relays` has acknowledged `route`. */
  registered(route: string | null, relays: readonly (RelayState | null)[]): boolean {
    if (!route || !this.#key) return false;
    return relays.every((r) => r === null || r.phase !== 'open' || this.#regs.get(r)?.acked === route);
  }

  /** Registers `route` with each of `relays` that has not acknowledged it and is not already being asked. */
  register(now: number, route: string | null, relays: readonly (RelayState | null)[]): void {
    if (!route || !this.#key) return;
    for (const r of relays) {
      if (!r || r.phase !== 'open') continue;
      const g = this.#reg(r);
      if (g.acked === route || g.pending === route || now < g.retryAtUs) continue;
      g.pending = route;
      g.tries = 0;
      g.requestId = this.#host.nextRequestId();
      this.#sendRegister(r, g, now);
    }
  }

  #sendRegister(r: RelayState, g: Registration, now: number): void {
    const key = this.#key;
    if (!key || !g.pending || !r.sessionId) return;
    const t = this.#host.unixSeconds(now);
    g.sentUs = now;
    g.tries++;
    const signature = this.#p.sign(key, dirRegisterSigned(key.publicKey, t, g.pending));
    this.#host.sendControl(r, { type: 'dirRegister', requestId: g.requestId, unixSeconds: t, publicKey: key.publicKey, route: g.pending, signature });
  }

  /** A relay's session is gone: what it acknowledged is gone with it. */
  forget(r: RelayState): void {
    this.#regs.delete(r);
  }

  /** Starts a lookup of `peerId` on `relays` (primary first); a lookup of the same id in flight is joined. */
  lookup(now: number, peerId: bigint, relays: RelayState[]): void {
    for (const l of this.#lookups.values()) if (l.peerId === peerId) return;
    if (relays.length === 0) {
      this.#host.lookupDone(peerId, { ok: false, why: 'noRelay' });
      return;
    }
    const l: Lookup = { peerId, requestId: this.#host.nextRequestId(), relays, sentUs: 0, tries: 0, notFound: false };
    this.#lookups.set(l.requestId, l);
    this.#ask(l, now);
  }

  #ask(l: Lookup, now: number): void {
    // Relays whose session went since the lookup began are skipped: the next open one is asked.
    while (l.relays.length > 0 && !(l.relays[0]?.sessionId && l.relays[0].phase === 'open')) l.relays.shift();
    const r = l.relays[0];
    if (!r || !r.sessionId) {
      this.#end(l, { ok: false, why: l.notFound ? 'notFound' : 'unreachable' });
      return;
    }
    l.sentUs = now;
    l.tries++;
    this.#stats.dirLookups++;
    this.#host.sendControl(r, { type: 'dirLookup', requestId: l.requestId, peerId: l.peerId });
  }

  /** The relay at the head of the lookup's list did not know the id, or did not answer: ask the next. */
  #next(l: Lookup, now: number): void {
    l.relays.shift();
    l.tries = 0;
    this.#ask(l, now);
  }

  #end(l: Lookup, result: LookupResult): void {
    this.#lookups.delete(l.requestId);
    this.#host.lookupDone(l.peerId, result);
  }

  /** The client closed: every lookup in flight ends with noRelay. */
  close(): void {
    for (const l of [...this.#lookups.values()]) this.#end(l, { ok: false, why: 'noRelay' });
  }

  /** A DIR_REGISTER_RESULT from `r`. */
  onRegisterResult(r: RelayState, m: Extract<RelayControl, { type: 'dirRegisterResult' }>, now: number): void {
    const g = this.#regs.get(r);
    if (!g || g.pending === null || m.requestId !== g.requestId) return;
    if (m.code === DirCode.Ok) {
      g.acked = g.pending;
      this.#stats.dirRegistered++;
    } else {
      this.#stats.dirRegisterRefused++;
      g.retryAtUs = now + REFUSED_RETRY_US;
    }
    g.pending = null;
  }

  /** A DIR_LOOKUP_RESULT from `r`. */
  onLookupResult(r: RelayState, m: Extract<RelayControl, { type: 'dirLookupResult' }>, now: number): void {
    const l = this.#lookups.get(m.requestId);
    if (!l || l.relays[0] !== r || m.peerId !== l.peerId) return;
    if (m.code === DirCode.Ok || m.code === DirCode.StaleRoute) {
      let parsed: Route | null = null;
      try {
        parsed = decodeRoute(m.route);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
      }
      if (parsed) return this.#end(l, m.code === DirCode.StaleRoute ? { ok: true, route: m.route, parsed, stale: true } : { ok: true, route: m.route, parsed });
    }
    if (m.code === DirCode.NotFound) l.notFound = true;
    this.#next(l, now);
  }

  /** Retries what is due; returns the earliest time something else falls due. */
  handleTimeout(now: number): number {
    let due = Number.POSITIVE_INFINITY;
    for (const [r, g] of this.#regs) {
      if (g.pending === null || r.phase !== 'open') continue;
      if (now - g.sentUs >= REQUEST_RETRY_US) {
        if (g.tries >= REQUEST_TRIES) {
          g.pending = null;
          g.retryAtUs = now + REFUSED_RETRY_US;
          continue;
        }
        this.#sendRegister(r, g, now);
      }
      due = Math.min(due, g.sentUs + REQUEST_RETRY_US);
    }
    for (const l of [...this.#lookups.values()]) {
      if (now - l.sentUs >= REQUEST_RETRY_US) {
        if (l.tries >= LOOKUP_TRIES) this.#next(l, now);
        else this.#ask(l, now);
      }
      if (this.#lookups.has(l.requestId)) due = Math.min(due, l.sentUs + REQUEST_RETRY_US);
    }
    return due;
  }

  /** When a refused or unanswered registration may be tried again (the client re-registers then). */
  nextRetryUs(now: number): number {
    let due = Number.POSITIVE_INFINITY;
    for (const g of this.#regs.values()) if (g.pending === null && g.retryAtUs > now) due = Math.min(due, g.retryAtUs);
    return due;
  }
}
