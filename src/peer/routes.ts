import type { Endpoint } from '../core/endpoint.js';
import { ConnectionState, SendFlags, type SocketAddress } from '../core/types.js';
import { isRelayPath, type LookupResult, type RelayClient } from '../relay/client/index.js';
import { decodeRoute, type Route } from '../relay/protocol.js';
import { encodeRouteUpdate } from '../wire/in-band.js';
import type { PeerSession, SessionState } from './session.js';
import type { SessionTimers } from './timers.js';
import { E, LOOKUP_RETRY_US, type PeerStats } from './types.js';

// Routes, for the peer layer: finding a peer's route in the relays' directory (FindingRoute), telling
// connected peers when this peer's own route changes, and following a peer's new route (re-linking its path).

/** What route keeping needs of the peer host. */
export interface RoutesHost<A> {
  readonly endpoint: Endpoint;
  readonly relay: RelayClient | null;
  readonly stats: PeerStats;
  readonly timers: SessionTimers<A>;
  session(key: string): PeerSession<A> | undefined;
  sessions(): IterableIterator<PeerSession<A>>;
  dial(now: number, s: PeerSession<A>, vaddr: SocketAddress): void;
  fail(now: number, s: PeerSession<A>, apiState: number, reason: number, debug: string): void;
}

/** The peer layer's route logic over its host's sessions. */
export class Routes<A> {
  readonly #h: RoutesHost<A>;

  constructor(host: RoutesHost<A>) {
    this.#h = host;
  }

  /** Asks the directory for a finding session's route (one lookup in flight, retried every 500 ms). */
  lookup(now: number, s: PeerSession<A>): void {
    const st = s.state;
    const relay = this.#h.relay;
    if (st.kind !== 'findingRoute' || st.inFlight || s.peerId === null || !relay) return;
    st.inFlight = true;
    st.nextLookupUs = now + LOOKUP_RETRY_US;
    this.#h.timers.lower(s, st.nextLookupUs);
    this.#h.stats.lookups++;
    relay.lookup(now, s.peerId);
  }

  /** The directory answered for `peerId`: a finding session dials or retries; an accepted one learns where to re-link. */
  lookupDone(now: number, peerId: bigint, r: LookupResult): void {
    const s = this.#h.session(`id:${peerId}`);
    const st = s?.state;
    if (!s || !st) return;
    if (st.kind !== 'findingRoute') {
      // The route of a peer that dialled us (routeOnConnect 'lookup'): where to re-link if its relay fails.
      const vaddr = s.vaddr;
      if (r.ok && !s.route && vaddr && isRelayPath(vaddr)) {
        s.route = r.parsed;
        this.#h.relay?.updatePath(now, vaddr, r.parsed);
      }
      return;
    }
    st.inFlight = false;
    if (r.ok) {
      s.route = r.parsed;
      this.#h.dial(now, s, (this.#h.relay as RelayClient).openPath(now, r.parsed));
      return;
    }
    // The peer may not have registered yet, or our relay session may not be up yet: retry until the deadline.
    if (r.why !== 'unreachable' || st.lastMiss === 'unreachable') st.lastMiss = r.why;
    if (now >= st.deadlineUs) this.findingExpired(now, s, st);
    else this.#h.timers.lower(s, Math.min(st.nextLookupUs, st.deadlineUs));
  }

  /** A finding session's deadline passed with no route: it fails with why the last lookup found none. */
  findingExpired(now: number, s: PeerSession<A>, st: Extract<SessionState, { kind: 'findingRoute' }>): void {
    const P = ConnectionState.ProblemDetectedLocally;
    if (st.lastMiss === 'notFound') this.#h.fail(now, s, P, E.NotLoggedIn, `peer id ${s.peerId} is not in the relays' directory`);
    else if (st.lastMiss === 'noRelay') this.#h.fail(now, s, P, E.NoRelay, 'no relay session is open');
    else this.#h.fail(now, s, P, E.RelayConnectivity, 'no relay answered the directory lookup');
  }

  /** This peer's route changed: connected relayed peers hear it in-band at once; finding sessions look again. */
  ownRouteChanged(now: number, route: string): void {
    const msg = encodeRouteUpdate(route);
    const ep = this.#h.endpoint;
    for (const s of this.#h.sessions()) {
      const st = s.state;
      if (st.kind === 'connected' && isRelayPath(st.vaddr)) {
        ep.send(now, st.cid, msg, SendFlags.Reliable, 0);
        ep.flush(now, st.cid);
      } else if (st.kind === 'findingRoute') {
        st.nextLookupUs = now; // the relay session is up: look again now
        this.#h.timers.lower(s, now);
      }
    }
  }

  /** A peer's in-band route update: its path re-links if the peer's relay changed. A route this version cannot read is ignored. */
  peerRouteUpdate(now: number, s: PeerSession<A>, text: string): void {
    let route: Route;
    try {
      route = decodeRoute(text);
    } catch {
      return; // as a newer peer's extension would be
    }
    this.#h.stats.routeUpdatesReceived++;
    const vaddr = s.vaddr;
    if (!vaddr || !isRelayPath(vaddr) || (s.route && route.revision <= s.route.revision)) return;
    s.route = route;
    this.#h.relay?.updatePath(now, vaddr, route);
  }
}
