import type { SocketAddress, Transmit } from '../../core/types.js';
import { derivePeerId } from '../../crypto/identity.js';
import type { CryptoProvider, SigningKey } from '../../crypto/provider.js';
import { bytesEqual } from '../../crypto/provider.js';
import { Deque } from '../../util/deque.js';
import { NetlaneError } from '../../util/errors.js';
import { ReplayWindow } from '../../util/replay-window.js';
import { clientHopKeys, linkProofSigned, openDown, openSessionOk, sealUp, sessionOkNonce, type Opened } from '../hop.js';
import { FleetCode, MAX_PERMIT_IDS, RelayMsg, ROUTE_VERSION, SEALED_UP_TYPES, addressKey, tryDecodeRelayControl, encodeRelayControl, encodeRoute, type RelayControl, type Route } from '../protocol.js';
import { DEFAULT_HYSTERESIS, choose, usable, type Hysteresis } from './choice.js';
import { DirectoryClient } from './directory.js';
import { PathTable } from './paths.js';
import { DEAD_RETRY_US, DEFAULT_PATH_LINGER_US, NO_SESSION_CONFIRM_US, PERMIT_REFRESH_US, EXTRA_SESSION_IDLE_US, REFUSED_RETRY_US, REQUEST_RETRY_US, REQUEST_TRIES, SECONDARY_KEEPALIVE_US, SECONDARY_SILENCE_US, addRtt, median, newRelayState, type RelayState } from './state.js';

import type { RelayClientEvent, RelayClientOptions, RelayClientStats, RelayPing } from './types.js';

export { clearlyBetter, type Hysteresis } from './choice.js';
export type { RelayClientEvent, RelayClientOptions, RelayClientStats, RelayPing } from './types.js';
export type { LookupResult } from './directory.js';
export { isRelayPath } from './state.js';

/**
 * The client side of the relay network (docs/RELAY.md), sans-IO: inputs `handleDatagram(now, from,
 * bytes)` for datagrams from relays and `handleTimeout(now)`; outputs `pollTransmit`, `pollTimeout`,
 * `pollEvent`. It pings the relays, holds a primary and a warm backup session (moving with hysteresis),
 * publishes this client's route, links to peers' route tokens, fails over when a relay dies or drains,
 * registers in and looks up the identity directory, and answers path challenges after a rebinding.
 *
 * End-to-end datagrams travel on paths: `openPath` gives the stable virtual address (`relay:N`) the
 * endpoint sees; {@link wrap} turns the endpoint's datagram to that address into one to the relay, with
 * the hop header gathered in front; DATA_DOWN from a relay goes to {@link onData}. A `PeerHost` composes
 * it with an endpoint, and one io driver runs both with one timer.
 */
export class RelayClient {
  readonly stats: RelayClientStats = {
    datagramsSent: 0,
    datagramsReceived: 0,
    noLinkDrops: 0,
    refused: 0,
    relayDeaths: 0,
    primaryChanges: 0,
    relinks: 0,
    linkFailures: 0,
    linksNotAccepted: 0,
    pathChallengesAnswered: 0,
    relayKeyMismatches: 0,
    unauthenticated: 0,
    replayed: 0,
    offersReceived: 0,
    fleetRelaysLearnt: 0,
    sessionsRefused: 0,
    dirRegistered: 0,
    dirRegisterRefused: 0,
    dirLookups: 0,
  };
  /** Where end-to-end datagrams received on a path go (set by the owner: the endpoint's input). */
  onData: (now: number, vaddr: SocketAddress, data: Uint8Array) => void = () => undefined;
  /** Whether a connection uses a path (set by the owner): a path the peer made and no connection took is forgotten. */
  pathInUse: (vaddr: SocketAddress) => boolean = () => false;
  readonly #p: CryptoProvider;
  readonly #ticket: Uint8Array;
  readonly #identity: SigningKey;
  readonly #peerId: bigint;
  /** Peer ids whose link requests this client's relay sessions accept at once (see {@link permit}). */
  #permits: readonly bigint[] = [];
  readonly #relays = new Map<string, RelayState>();
  readonly #relayList: RelayState[] = [];
  readonly #paths: PathTable;
  readonly #keepaliveUs: number;
  readonly #timeoutUs: number;
  readonly #probeUs: number;
  readonly #hyst: Hysteresis;
  readonly #dir: DirectoryClient;
  readonly #out = new Deque<Transmit>();
  readonly #events = new Deque<RelayClientEvent>();
  #primary: RelayState | null = null;
  #backup: RelayState | null = null;
  #revision = 0;
  #route: string | null = null;
  #routeParsed: Route | null = null;
  #nextRequestId = 1;
  #nextProbeUs = 0;
  /** When every configured relay was last pinged (a probe): without a primary they are pinged again after REQUEST_RETRY_US. */
  #lastProbeUs = Number.NEGATIVE_INFINITY;
  #started = false;
  #closed = false;
  /** FLEET_LIST: whether to ask, the request in flight (0: none), and whether a relay answered it. */
  readonly #discover: boolean;
  #fleetRequestId = 0;
  #fleetAnswered = false;
  /** The earliest time something is due (relay retries, keepalives, timeouts, link retries, lingers). */
  #dueUs = 0;

  constructor(options: RelayClientOptions) {
    if (options.relays.length === 0) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'at least one relay is needed');
    this.#p = options.provider;
    this.#ticket = options.ticket ?? new Uint8Array(0);
    this.#identity = options.identityKey;
    this.#peerId = derivePeerId(this.#p, options.identityKey.publicKey);
    this.#keepaliveUs = (options.keepaliveMs ?? 200) * 1000;
    this.#timeoutUs = (options.relayTimeoutMs ?? 1200) * 1000;
    this.#probeUs = (options.probeIntervalMs ?? 5000) * 1000;
    this.#hyst = options.hysteresis ?? DEFAULT_HYSTERESIS;
    this.#discover = options.discoverFleet ?? false;
    const unixSeconds = options.unixSeconds;
    this.#dir = new DirectoryClient(
      {
        sendControl: (r, m) => this.#sendControl(r, m),
        nextRequestId: () => this.#requestId(),
        unixSeconds: () => unixSeconds(),
        lookupDone: (peerId, result) => this.#events.push({ type: 'lookup', peerId, result }),
      },
      this.#p,
      options.directoryKey ?? null,
      this.stats,
    );
    this.#paths = new PathTable(
      {
        relayAt: (addr, key) => this.#relay(addr, key, false),
        linkIdentity: (r) => this.#linkIdentity(r),
        wantSession: (r, now) => this.#wantSession(r, now),
        carrier: () => [this.#primary, this.#backup].find((r): r is RelayState => usable(r) && r.phase === 'open') ?? null,
        sendControl: (r, m) => this.#sendControl(r, m),
        transmit: (t) => this.#out.push(t),
        nextRequestId: () => this.#requestId(),
        dueAt: (atUs) => (this.#dueUs = Math.min(this.#dueUs, atUs)),
        pathInUse: (vaddr) => this.pathInUse(vaddr),
        refused: (path) => this.#events.push({ type: 'linkRefused', vaddr: path.vaddr }),
      },
      this.stats,
    );
    for (const r of options.relays) {
      if (!this.#relay(r, r.publicKey, true)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `relay ${addressKey(r)} is given twice with different keys`);
    }
  }

  // ---------------------------------------------------------------- queries

  /** This client's route string (public information only), or null until the first relay session is open. */
  get route(): string | null {
    return this.#route;
  }

  /** The primary relay's address, or null. */
  get primary(): SocketAddress | null {
    return this.#primary?.addr ?? null;
  }

  /** Whether every relay in this client's route has acknowledged its current directory registration. */
  get registered(): boolean {
    return this.#dir.registered(this.#route, [this.#primary, this.#backup]);
  }

  /**
   * Our addresses as the primary and backup relays see them (a reflexive address each, as a STUN server
   * answers; sealed, so only we read them), the primary's first, without repeats. Candidates for direct
   * paths (docs/P2P.md). Behind an endpoint-dependent NAT each relay sees another port, and none of them
   * is the one a peer would see.
   */
  reflexiveAddresses(): SocketAddress[] {
    const out: SocketAddress[] = [];
    for (const r of [this.#primary, this.#backup]) {
      const a = r?.phase === 'open' ? r.observed : null;
      if (a && !out.some((b) => b.port === a.port && b.address === a.address)) out.push(a);
    }
    return out;
  }

  /** Grows whenever a relay reports another reflexive address (see {@link reflexiveAddresses}). */
  reflexiveChanges = 0;

  /** Whether `from` is a relay this client talks to (its datagrams go to {@link handleDatagram}). */
  isRelay(from: SocketAddress): boolean {
    return this.#find(from) !== undefined;
  }

  /** Paths held now: one per connection through a relay, and those lingering after a close. */
  get pathCount(): number {
    return this.#paths.size;
  }

  /** Which relay carries a path now (for stats and tests), or null. */
  pathRelay(vaddr: SocketAddress): SocketAddress | null {
    return this.#paths.get(vaddr)?.relay?.addr ?? null;
  }

  /** Round-trip estimates to the relays (median of recent samples). */
  relayPings(): RelayPing[] {
    return this.#relayList.map((r) => ({ relay: r.addr, pingMs: r.rtts.length ? Math.round(median(r.rtts) / 100) / 10 : -1, session: r.phase === 'open', primary: r === this.#primary, dead: r.dead, draining: r.draining }));
  }

  // ---------------------------------------------------------------- commands

  /**
   * A path to the peer that owns `route`: returns the virtual address to give the endpoint at once;
   * datagrams sent before the link is up are queued (a few) and leave when it is.
   */
  openPath(now: number, route: Route): SocketAddress {
    return this.#paths.open(now, route).vaddr;
  }

  /**
   * A newer route for the peer behind `vaddr` (updatePeer, the peer's in-band announcement, a lookup).
   * The path moves when the relay it uses is not in the new route or is failing; otherwise it stays. A
   * path the peer made (to our token, on one of our relays) stays while that relay works: the peer's
   * route names the peer's relays, not ours, and a second link would leave each side sending on another
   * link, the connection migrating back and forth between them.
   */
  updatePath(now: number, vaddr: SocketAddress, route: Route): void {
    this.#paths.update(now, vaddr, route);
  }

  /**
   * Forgets a path after `lingerUs`, so that what the endpoint queued on it just now (a close) still
   * leaves, unless `stillUsed()` says by then that a connection uses it again (crossing dials share one).
   */
  closePathLater(now: number, vaddr: SocketAddress, stillUsed: () => boolean, lingerUs = DEFAULT_PATH_LINGER_US): void {
    const path = this.#paths.get(vaddr);
    if (!path) return;
    path.forgetAtUs = now + lingerUs;
    path.stillUsed = stillUsed;
    this.#dueUs = Math.min(this.#dueUs, path.forgetAtUs);
  }

  /**
   * Looks a peer id up in the identity directory: the primary relay first, then every other relay this
   * client has a session with, until one knows it. The answer comes as a `lookup` event: the route, or
   * notFound (no relay has it), unreachable (no relay answered) or noRelay (no relay session is open).
   */
  lookup(now: number, peerId: bigint): void {
    const open = this.#closed ? [] : this.#relayList.filter((r) => r.phase === 'open' && !r.dead);
    open.sort((a, b) => (a === this.#primary ? -1 : b === this.#primary ? 1 : 0));
    this.#dir.lookup(now, peerId, open);
    this.#dueUs = Math.min(this.#dueUs, now + REQUEST_RETRY_US);
  }

  /**
   * The endpoint's datagram to a path, as a datagram to the path's relay with the hop header in front
   * (the transmit record is the path's own, reused: consume it before the next call). Null when the link
   * is not up: the datagram is queued (a few per path) or dropped and counted.
   */
  wrap(t: Transmit): Transmit | null {
    if (this.#closed) {
      this.stats.noLinkDrops++;
      return null;
    }
    return this.#paths.wrap(t);
  }

  /**
   * The peer ids whose link requests this client accepts at once, on every relay session (now and when one
   * opens): the peers it wants (Discord's `openPeer`). A request from anyone else reaches this client as a
   * `linkOffer` event, for {@link answerOffer}; until it is accepted, nothing from that peer reaches here.
   */
  permit(now: number, peerIds: readonly bigint[]): void {
    this.#permits = [...peerIds];
    for (const r of this.#relayList) if (r.phase === 'open') this.#sendPermits(r, now);
    this.#dueUs = Math.min(this.#dueUs, now + PERMIT_REFRESH_US);
  }

  /**
   * Accepts or refuses a `linkOffer` (its relay, offer id and peer id, as the event gave them): the link is made,
   * or the requester hears NOT_ACCEPTED. The relay acts only if that offer, from that peer, still waits.
   */
  answerOffer(relay: SocketAddress, offerId: number, peerId: bigint, accept: boolean): void {
    const r = this.#find(relay);
    if (r && r.phase === 'open') this.#sendControl(r, { type: 'linkAnswer', offerId, peerId, accept });
  }

  /**
   * New route tokens on every relay of this client's route: a new route (revision + 1, a `route` event) follows
   * when they arrive, and nobody holding the old route can ask for a link any more. Links made already stay.
   */
  rotateRoute(now: number): void {
    for (const r of [this.#primary, this.#backup]) {
      if (!r || r.phase !== 'open') continue;
      r.rotateRequestId = this.#requestId();
      r.rotateTries = 0;
      this.#rotate(r, now);
    }
  }

  /** The local address changed (a NAT rebinding): keepalives now, so the relays challenge and move the sessions. */
  handleRebind(now: number): void {
    for (const r of this.#relayList) if (r.phase === 'open') this.#keepalive(r, now);
  }

  /** Closes the relay sessions (the CLOSE_SESSION messages wait in `pollTransmit`). Nothing is sent after. */
  close(): void {
    if (this.#closed) return;
    for (const r of this.#relayList) if (r.phase === 'open') this.#sendControl(r, { type: 'closeSession' });
    this.#closed = true;
    this.#dir.close(); // lookups in flight end (noRelay): nothing will answer them now
  }

  // ---------------------------------------------------------------- outputs

  pollTransmit(): Transmit | null {
    return this.#out.shift() ?? null;
  }

  pollEvent(): RelayClientEvent | null {
    return this.#events.shift() ?? null;
  }

  /** Absolute time (µs) of the next `handleTimeout`, or null once closed. */
  pollTimeout(): number | null {
    if (this.#closed) return null;
    return this.#started ? this.#dueUs : 0;
  }

  // ---------------------------------------------------------------- inputs

  /**
   * A datagram from `from`. Returns false, touching nothing, when `from` is not a relay this client knows
   * (the owner then has it: a direct peer's, or a stray); a relay's malformed datagram is refused and counted.
   */
  handleDatagram(now: number, from: SocketAddress, data: Uint8Array): boolean {
    const r = this.#find(from);
    if (!r) return false;
    if (this.#closed) return true;
    this.stats.datagramsReceived++;
    if (data.length < 1) {
      this.stats.refused++;
      return true;
    }
    if (data[0] === RelayMsg.DataDown) {
      if (data.length < 4 || r.phase !== 'open') {
        this.stats.refused++;
        return true;
      }
      r.lastHeardUs = now;
      const linkId = ((data[1] as number) << 8) | (data[2] as number);
      this.onData(now, this.#paths.down(r, linkId, now).vaddr, data.subarray(3));
      return true;
    }
    const m = this.#open(r, data, now);
    if (!m) return true;
    this.#control(r, m, now);
    this.#dueUs = now; // control changes deadlines: the next handleTimeout recomputes them
    return true;
  }

  /** Fires what is due at `now` and recomputes the next deadline. */
  handleTimeout(now: number): void {
    if (this.#closed) return;
    this.#started = true; // the first probe below pings every relay
    if (now < this.#dueUs) return;
    let due = Number.POSITIVE_INFINITY;
    for (const r of [...this.#relayList]) due = Math.min(due, this.#relayTimers(r, now)); // a copy: an unused peer's relay may be forgotten
    due = Math.min(due, this.#dir.handleTimeout(now));
    this.#dir.register(now, this.#route, [this.#primary, this.#backup]);
    due = Math.min(due, this.#dir.nextRetryUs(now));
    due = Math.min(due, this.#paths.handleTimeout(now));
    // Probe every configured relay now and then: dead ones may be back, another may be better. Without a
    // primary, every REQUEST_RETRY_US: not on every call (a datagram makes one), or each stray pong would
    // ping every relay again, replacing the nonces of the pings in flight, so that their pongs are strays too.
    if (now >= this.#nextProbeUs || (!this.#primary && now >= this.#lastProbeUs + REQUEST_RETRY_US)) {
      this.#nextProbeUs = now + this.#probeUs;
      this.#lastProbeUs = now;
      for (const r of this.#relayList) if (r.configured && r.phase !== 'pinging' && r.phase !== 'requesting' && now >= r.retryAtUs) this.#ping(r, now);
      // A FLEET_LIST that went unanswered is asked again with the probes.
      if (!this.#fleetAnswered && this.#primary?.phase === 'open') this.#askFleet(this.#primary);
    }
    due = Math.min(due, this.#primary ? this.#nextProbeUs : this.#lastProbeUs + REQUEST_RETRY_US);
    this.#choose(now);
    this.#dueUs = due;
  }

  /**
   * A relay's control datagram, opened: SESSION_OK with the request's keys, SEALED_DOWN with the session's
   * (its counter against the replay window), PONG, REFUSED and NO_SESSION in the clear. Null (counted) for
   * anything that does not authenticate, repeats, or is not a relay's message.
   */
  #open(r: RelayState, data: Uint8Array, now: number): RelayControl | null {
    const stats = this.stats;
    let o: Opened | null = null;
    if (data[0] === RelayMsg.SessionOk) {
      const nonce = sessionOkNonce(data);
      if (r.phase !== 'requesting' || !r.requestKeys || !nonce || !bytesEqual(nonce, r.clientNonce)) {
        stats.refused++;
        return null;
      }
      o = openSessionOk(r.requestKeys, data);
      if (!o) {
        // Whoever answered does not hold the relay's key: not the relay we were told of (or a forgery).
        stats.relayKeyMismatches++;
        return null;
      }
      r.downWindow = new ReplayWindow();
    } else if (data[0] === RelayMsg.SealedDown) {
      if (!r.keys) {
        stats.refused++;
        return null;
      }
      o = openDown(r.keys, data);
      if (!o) {
        stats.unauthenticated++;
        return null;
      }
      if (!r.downWindow.isNew(o.counter)) {
        stats.replayed++;
        return null;
      }
      r.sealedHeardUs = now;
      r.noSessionAtUs = -1; // the relay still has the session: a NO_SESSION seen meanwhile was not its
    } else {
      const m = tryDecodeRelayControl(data);
      if (m && (m.type === 'pong' || m.type === 'refused' || m.type === 'noSession')) return m;
      stats.refused++;
      return null;
    }
    r.downWindow.mark(o.counter);
    return o.message;
  }

  // ---------------------------------------------------------------- timers

  /** Retries, keepalives, the relay timeout and idle extra sessions of one relay; returns its next deadline. */
  #relayTimers(r: RelayState, now: number): number {
    switch (r.phase) {
      case 'pinging':
        if (now - r.pingSentUs >= REQUEST_RETRY_US) {
          if (r.pingTries >= REQUEST_TRIES) this.#lose(r, now, true);
          else this.#ping(r, now);
        }
        return r.phase === 'pinging' ? r.pingSentUs + REQUEST_RETRY_US : Math.max(now, r.retryAtUs);
      case 'requesting':
        if (now - r.requestSentUs >= REQUEST_RETRY_US) {
          if (r.requestTries >= REQUEST_TRIES) this.#lose(r, now, true);
          else this.#requestSession(r, now);
        }
        return r.phase === 'requesting' ? r.requestSentUs + REQUEST_RETRY_US : Math.max(now, r.retryAtUs);
      case 'open': {
        const primary = r === this.#primary;
        const silenceUs = primary ? this.#timeoutUs : Math.max(this.#timeoutUs, SECONDARY_SILENCE_US);
        const heardUs = Math.max(r.lastHeardUs, r.watchSinceUs);
        if (now - heardUs > silenceUs) {
          this.#lose(r, now, true);
          return Math.max(now, r.retryAtUs);
        }
        const interval = primary ? this.#keepaliveUs : SECONDARY_KEEPALIVE_US;
        if (r.noSessionAtUs >= 0 && r.sealedHeardUs < r.noSessionAtUs && now - r.noSessionAtUs >= NO_SESSION_CONFIRM_US) {
          // Nothing sealed since the relay said it has no session for us: it is gone (the relay restarted or reaped it).
          this.#lose(r, now, false);
          return Math.max(now, r.retryAtUs);
        }
        if (now - r.keepaliveSentUs >= interval) this.#keepalive(r, now);
        let due = Math.min(r.keepaliveSentUs + interval, heardUs + silenceUs + 1);
        if (r.noSessionAtUs >= 0 && r.sealedHeardUs < r.noSessionAtUs) due = Math.min(due, r.noSessionAtUs + NO_SESSION_CONFIRM_US);
        if (this.#permits.length > 0) {
          if (now - r.permitsSentUs >= PERMIT_REFRESH_US) this.#sendPermits(r, now);
          due = Math.min(due, r.permitsSentUs + PERMIT_REFRESH_US);
        }
        if (r.rotateRequestId !== 0) {
          if (now - r.rotateSentUs >= REQUEST_RETRY_US) {
            if (r.rotateTries >= REQUEST_TRIES) r.rotateRequestId = 0;
            else this.#rotate(r, now);
          }
          if (r.rotateRequestId !== 0) due = Math.min(due, r.rotateSentUs + REQUEST_RETRY_US);
        }
        if (r !== this.#primary && r !== this.#backup) due = Math.min(due, this.#idleExtraSession(r, now));
        return due;
      }
      case 'none':
        return r.configured && r.retryAtUs > now ? r.retryAtUs : Number.POSITIVE_INFINITY;
    }
  }

  /** Sessions on a peer's relay close once no path has used them for {@link EXTRA_SESSION_IDLE_US}. */
  #idleExtraSession(r: RelayState, now: number): number {
    if (this.#paths.uses(r)) {
      r.idleSinceUs = -1;
      return Number.POSITIVE_INFINITY;
    }
    if (r.idleSinceUs < 0) r.idleSinceUs = now;
    if (now - r.idleSinceUs <= EXTRA_SESSION_IDLE_US) return r.idleSinceUs + EXTRA_SESSION_IDLE_US + 1;
    if (r.sessionId) this.#sendControl(r, { type: 'closeSession' });
    r.phase = 'none';
    forgetSession(r);
    this.#dir.forget(r);
    // A relay only peers' routes named is forgotten with its session (a route naming it again brings it back).
    if (!r.configured) this.#forgetRelay(r);
    return Number.POSITIVE_INFINITY;
  }

  // ---------------------------------------------------------------- relays and sessions

  #find(from: SocketAddress): RelayState | undefined {
    for (const x of this.#relayList) if (x.addr.port === from.port && x.addr.address === from.address) return x;
    return undefined;
  }

  #forgetRelay(r: RelayState): void {
    this.#relays.delete(r.key);
    const i = this.#relayList.indexOf(r);
    if (i >= 0) this.#relayList.splice(i, 1);
  }

  /** The relay at `addr` (made if new), or null when the one known there has another key: a route naming it with a wrong key is not followed. */
  #relay(addr: SocketAddress, publicKey: Uint8Array, configured: boolean): RelayState | null {
    const key = addressKey(addr);
    let r = this.#relays.get(key);
    if (r) return bytesEqual(r.publicKey, publicKey) ? r : null;
    r = newRelayState(addr, key, publicKey, configured);
    this.#relays.set(key, r);
    this.#relayList.push(r);
    return r;
  }

  /** Asks `r` which relays its fleet has (docs/RELAY.md "The fleet"). */
  #askFleet(r: RelayState): void {
    if (!this.#discover) return;
    this.#fleetRequestId = this.#requestId();
    this.#sendControl(r, { type: 'fleetList', requestId: this.#fleetRequestId, offset: 0 });
  }

  /** A FLEET_LIST_RESULT: every relay it names (with its key) is pinged from now on, as a configured one; the next page is asked for. */
  #onFleetList(r: RelayState, m: Extract<RelayControl, { type: 'fleetListResult' }>, now: number): void {
    if (m.requestId !== this.#fleetRequestId || this.#fleetRequestId === 0) return;
    this.#fleetRequestId = 0;
    if (m.code !== FleetCode.Ok && m.code !== FleetCode.NoFleet) return; // asked again at the next probe
    this.#fleetAnswered = true;
    for (const f of m.relays) {
      const before = this.#relays.get(addressKey(f.relay));
      if (before?.configured) continue;
      const known = this.#relay(f.relay, f.relay.publicKey, true);
      if (!known) continue; // known with another key (from a route): not followed
      known.configured = true;
      this.stats.fleetRelaysLearnt++;
    }
    for (const f of m.relays) {
      const known = this.#relays.get(addressKey(f.relay));
      if (known && known.phase === 'none' && known.rtts.length === 0 && !known.pingOutstanding && now >= known.retryAtUs) this.#ping(known, now);
    }
    const next = m.offset + m.relays.length;
    if (m.code === FleetCode.Ok && m.relays.length > 0 && next < m.total && next <= 255) {
      this.#fleetRequestId = this.#requestId();
      this.#sendControl(r, { type: 'fleetList', requestId: this.#fleetRequestId, offset: next });
    }
  }

  #requestId(): number {
    return (this.#nextRequestId = (this.#nextRequestId % 0xffff) + 1);
  }

  /** Sends a control message to `r`: sealed under the session's up key (dropped if no session is open), or in the clear (PING, SESSION_REQUEST). */
  #sendControl(r: RelayState, m: RelayControl): void {
    if (this.#closed) return; // a path opened after close() goes nowhere
    let data: Uint8Array;
    if (SEALED_UP_TYPES.has(m.type)) {
      if (!r.keys || !r.sessionId) return;
      data = sealUp(r.keys, r.sessionId, r.upCounter++, m);
    } else data = encodeRelayControl(m);
    this.stats.datagramsSent++;
    this.#out.push({ destination: r.addr, data });
  }

  /** The identity a link request on `r` proves: the peer id, its key, and the session's proof (signed once per session). */
  #linkIdentity(r: RelayState): { peerId: bigint; publicKey: Uint8Array; proof: Uint8Array } | null {
    if (!r.keys) return null;
    r.proof ??= this.#p.sign(this.#identity, linkProofSigned(r.publicKey, r.keys.binding));
    return { peerId: this.#peerId, publicKey: this.#identity.publicKey, proof: r.proof };
  }

  /** Tells `r` the permitted peer ids: the first message replaces what it had, the rest add, the last completes the set. */
  #sendPermits(r: RelayState, now: number): void {
    const ids = this.#permits;
    r.permitsSentUs = now;
    let i = 0;
    do {
      this.#sendControl(r, { type: 'permit', reset: i === 0, complete: i + MAX_PERMIT_IDS >= ids.length, peerIds: ids.slice(i, i + MAX_PERMIT_IDS) });
      i += MAX_PERMIT_IDS;
    } while (i < ids.length);
  }

  #rotate(r: RelayState, now: number): void {
    r.rotateSentUs = now;
    r.rotateTries++;
    this.#sendControl(r, { type: 'rotateToken', requestId: r.rotateRequestId });
  }

  #ping(r: RelayState, now: number): void {
    this.#p.fillRandom(r.pingNonce);
    r.pingOutstanding = true;
    r.pingSentUs = now;
    r.pingTries++;
    this.#sendControl(r, { type: 'ping', version: 1, nonce: r.pingNonce });
  }

  /** Opens a session on `r` unless it has one or is opening one. */
  #wantSession(r: RelayState, now: number): void {
    if (r.phase !== 'none' || now < r.retryAtUs) return;
    r.phase = 'pinging';
    r.pingTries = 0;
    this.#ping(r, now);
  }

  /**
   * A SESSION_REQUEST to `r`. The first try draws a nonce and an ephemeral X25519 key and derives the session's
   * keys with the relay's static key (bound to the cookie, the nonce and the ticket); retries repeat the request.
   */
  #requestSession(r: RelayState, now: number): void {
    if (r.requestTries === 0) {
      if (!r.cookie) return;
      this.#p.fillRandom(r.clientNonce);
      const eph = this.#p.generateKeyExchange();
      r.requestCookie = r.cookie;
      r.requestPublic = eph.publicKey;
      r.requestKeys = clientHopKeys(this.#p, eph, r.publicKey, r.cookie, r.clientNonce, this.#ticket);
    }
    if (!r.requestKeys || !r.requestCookie || !r.requestPublic) {
      this.stats.relayKeyMismatches++; // not an X25519 public key: this relay cannot be used
      return;
    }
    r.requestSentUs = now;
    r.requestTries++;
    this.#sendControl(r, { type: 'sessionRequest', cookie: r.requestCookie, clientNonce: r.clientNonce, clientPublic: r.requestPublic, ticket: this.#ticket });
  }

  #keepalive(r: RelayState, now: number): void {
    if (!r.sessionId) return;
    r.keepaliveSeq = (r.keepaliveSeq + 1) >>> 0;
    r.keepaliveSentUs = now;
    this.#sendControl(r, { type: 'keepalive', seq: r.keepaliveSeq });
  }

  /** The session on `r` is gone (relay dead, restarted, or reaped us): its links too. */
  #lose(r: RelayState, now: number, dead: boolean): void {
    if (dead && !r.dead) this.stats.relayDeaths++;
    r.dead = dead;
    r.phase = 'none';
    forgetSession(r);
    r.cookie = null;
    r.retryAtUs = now + (dead ? DEAD_RETRY_US : 0);
    this.#dir.forget(r);
    this.#paths.lost(r, now);
    this.#choose(now);
  }

  /** Picks the primary and backup; opens sessions they need; publishes a new route when they change. */
  #choose(now: number): void {
    const c = choose(this.#relayList, this.#primary, this.#backup, this.#hyst, now);
    for (const r of c.warm) this.#wantSession(r, now); // warm it up before moving
    if (c.primary !== this.#primary) {
      if (this.#primary) this.stats.primaryChanges++;
      this.#primary = c.primary;
      // Its silence window shrinks to the primary's: it is watched from now, and asked at once.
      if (c.primary && c.primary.phase === 'open') {
        c.primary.watchSinceUs = now;
        this.#keepalive(c.primary, now);
      }
    }
    this.#backup = c.backup;
    if (c.primary) this.#wantSession(c.primary, now);
    if (c.backup) this.#wantSession(c.backup, now);
    this.#publish(now);
  }

  #publish(now: number): void {
    const entries = [this.#primary, this.#backup].filter((r): r is RelayState => r !== null && r.phase === 'open' && r.token !== null).map((r) => ({ relay: r.addr, publicKey: r.publicKey, token: r.token as Uint8Array }));
    if (entries.length === 0 || this.#primary?.phase !== 'open') return;
    const cur = this.#routeParsed;
    if (cur && cur.entries.length === entries.length && cur.entries.every((e, i) => addressKey(e.relay) === addressKey((entries[i] as { relay: SocketAddress }).relay) && bytesEqual(e.token, (entries[i] as { token: Uint8Array }).token))) return;
    const next: Route = { version: ROUTE_VERSION, revision: this.#revision + 1, entries };
    this.#revision = next.revision;
    this.#routeParsed = next;
    this.#route = encodeRoute(next);
    this.#dir.register(now, this.#route, [this.#primary, this.#backup]);
    this.#events.push({ type: 'route', route: this.#route });
  }

  // ---------------------------------------------------------------- control messages

  #control(r: RelayState, m: RelayControl, now: number): void {
    switch (m.type) {
      case 'pong': {
        if (!r.pingOutstanding || !bytesEqual(m.nonce, r.pingNonce)) return;
        r.pingOutstanding = false;
        addRtt(r, now - r.pingSentUs);
        r.cookie = m.cookie;
        r.lastHeardUs = now;
        r.draining = m.drainSeconds > 0;
        r.dead = false;
        if (r.phase === 'pinging') {
          r.phase = 'requesting';
          r.requestTries = 0;
          this.#requestSession(r, now);
        }
        if (!this.#primary) this.#choose(now);
        return;
      }
      case 'sessionOk': {
        // Opened with the request's keys (see #open): the relay holds its key. The session starts.
        r.phase = 'open';
        r.sessionId = m.sessionId.slice();
        r.keys = r.requestKeys;
        r.requestKeys = null;
        r.upCounter = 0;
        r.dataSeq = 0;
        r.proof = null;
        r.token = m.token.slice();
        r.lastHeardUs = now;
        r.keepaliveSentUs = now;
        r.draining = m.drainSeconds > 0;
        r.sealedHeardUs = now;
        r.noSessionAtUs = -1;
        r.rotateRequestId = 0;
        if (this.#permits.length > 0) this.#sendPermits(r, now);
        this.#paths.sessionOpen(r, now);
        if (!this.#fleetAnswered) this.#askFleet(r);
        this.#choose(now);
        this.#publish(now);
        return;
      }
      case 'fleetListResult':
        r.lastHeardUs = now;
        this.#onFleetList(r, m, now);
        return;
      case 'refused': {
        if (r.phase !== 'requesting' || !bytesEqual(m.clientNonce, r.clientNonce)) return;
        r.requestKeys = null;
        this.stats.sessionsRefused++;
        r.phase = 'none';
        r.draining = true; // not usable for now; a later pong clears it
        r.retryAtUs = now + REFUSED_RETRY_US;
        this.#choose(now);
        return;
      }
      case 'linkOk':
      case 'linkFailed':
        if (this.#paths.linkResult(r, m, now)) r.lastHeardUs = now;
        return;
      case 'keepaliveAck': {
        if (r.phase !== 'open') return;
        if (m.seq === r.keepaliveSeq && m.seq !== 0) addRtt(r, now - r.keepaliveSentUs);
        r.lastHeardUs = now;
        if (m.observed && (!r.observed || r.observed.port !== m.observed.port || r.observed.address !== m.observed.address)) {
          r.observed = m.observed;
          this.reflexiveChanges++;
        }
        if (m.drainSeconds > 0 && !r.draining) {
          r.draining = true;
          // Make before break: move the paths and the route now, while the old links still work.
          this.#paths.drain(r, now);
          this.#choose(now);
        }
        return;
      }
      case 'pathChallenge': {
        // Sealed: it is our relay's, and our answer (sealed too) proves the new address is ours.
        if (r.phase !== 'open') return;
        this.stats.pathChallengesAnswered++;
        this.#sendControl(r, { type: 'pathResponse', challenge: m.challenge });
        return;
      }
      case 'linkOffer': {
        if (r.phase !== 'open') return;
        r.lastHeardUs = now;
        this.stats.offersReceived++;
        // A peer we permit (its request crossed our PERMIT) is accepted at once; anyone else is the owner's question.
        if (this.#permits.includes(m.peerId)) this.#sendControl(r, { type: 'linkAnswer', offerId: m.offerId, peerId: m.peerId, accept: true });
        else this.#events.push({ type: 'linkOffer', relay: r.addr, offerId: m.offerId, peerId: m.peerId, user: m.user });
        return;
      }
      case 'tokenRotated': {
        if (r.phase !== 'open') return;
        r.lastHeardUs = now;
        if (m.requestId === r.rotateRequestId) r.rotateRequestId = 0;
        r.token = m.token.slice();
        this.#publish(now);
        return;
      }
      case 'noSession': {
        // In the clear, so possibly forged by anyone on the path: a sealed keepalive asks the relay, and the
        // session is given up only if nothing sealed answers within NO_SESSION_CONFIRM_US.
        if (r.phase !== 'open' || !r.sessionId || !bytesEqual(m.sessionId, r.sessionId) || r.noSessionAtUs >= 0) return;
        r.noSessionAtUs = now;
        this.#keepalive(r, now);
        return;
      }
      case 'dirRegisterResult':
        r.lastHeardUs = now;
        this.#dir.onRegisterResult(r, m, now);
        return;
      case 'dirLookupResult':
        r.lastHeardUs = now;
        this.#dir.onLookupResult(r, m, now);
        return;
      default:
        this.stats.refused++;
    }
  }
}

/** Forgets a relay's session: its id, keys and token (the relay state stays, for pings and a new session). */
function forgetSession(r: RelayState): void {
  r.sessionId = null;
  r.keys = null;
  r.requestKeys = null;
  r.proof = null;
  r.token = null;
}
