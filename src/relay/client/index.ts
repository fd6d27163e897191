import type { SocketAddress, Transmit } from '../../core/types.js';
import type { CryptoProvider, SigningKey } from '../../crypto/provider.js';
import { bytesEqual } from '../../crypto/provider.js';
import { Deque } from '../../util/deque.js';
import { NetlaneError } from '../../util/errors.js';
import { WireError } from '../../wire/errors.js';
import { PATH_MAC_BYTES, RelayMsg, ROUTE_VERSION, addressKey, decodeRelayControl, encodeRelayControl, encodeRoute, type RelayControl, type Route } from '../protocol.js';
import { DEFAULT_HYSTERESIS, choose, usable, type Hysteresis } from './choice.js';
import { DirectoryClient, type DirectoryStats, type LookupResult } from './directory.js';
import {
  DEAD_RETRY_US,
  DEFAULT_PATH_LINGER_US,
  EXTRA_SESSION_IDLE_US,
  MAX_QUEUED_PER_PATH,
  REFUSED_RETRY_US,
  REQUEST_RETRY_US,
  REQUEST_TRIES,
  SECONDARY_KEEPALIVE_US,
  addRtt,
  median,
  newPath,
  newRelayState,
  writeHopHeader,
  type Path,
  type RelayState,
} from './state.js';

export { clearlyBetter, type Hysteresis } from './choice.js';
export type { LookupResult } from './directory.js';

/** Options of a {@link RelayClient}. */
export interface RelayClientOptions {
  /** The relays to use: pinged at start, the best becomes the primary, the next the backup. */
  readonly relays: readonly SocketAddress[];
  /** The operator's ticket; none for relays in `--open` mode. */
  readonly ticket?: Uint8Array | null;
  readonly provider: CryptoProvider;
  /** Keepalive to the primary relay, ms. Default 200. Backup and other relays get one a second. */
  readonly keepaliveMs?: number;
  /** A relay not heard from for this long is dead, ms. Default 1200. */
  readonly relayTimeoutMs?: number;
  /** How often every configured relay is pinged to look for a better one, ms. Default 5000. */
  readonly probeIntervalMs?: number;
  /** A relay must be this much better (ms and fraction) for this long (ms) before the primary moves. Default 10 ms, 10 %, 10 s. */
  readonly hysteresis?: Hysteresis;
  /**
   * Registers this key's peer id and the client's route in the identity directory of every relay in the
   * route, and again whenever the route changes. Without it, nothing is registered (lookups still work).
   */
  readonly directoryKey?: SigningKey;
  /** Wall clock, unix seconds, for directory registrations (the runtime's). */
  readonly unixSeconds: () => number;
}

/** Counters of a relay client. */
export interface RelayClientStats extends DirectoryStats {
  datagramsSent: number;
  datagramsReceived: number;
  /** End-to-end datagrams with no usable link yet (queued up to a bound, then dropped). */
  noLinkDrops: number;
  /** Malformed or unexpected relay messages. */
  refused: number;
  relayDeaths: number;
  primaryChanges: number;
  relinks: number;
  linkFailures: number;
  pathChallengesAnswered: number;
  sessionsRefused: number;
}

/** What a relay client tells its owner, drained with {@link RelayClient.pollEvent}. */
export type RelayClientEvent = { readonly type: 'route'; readonly route: string; readonly parsed: Route } | { readonly type: 'lookup'; readonly peerId: bigint; readonly result: LookupResult };

/** A relay's state as the client sees it (for stats and tests). */
export interface RelayPing {
  readonly relay: SocketAddress;
  /** Median round trip, ms; -1 if none measured. */
  readonly pingMs: number;
  readonly session: boolean;
  readonly primary: boolean;
  readonly dead: boolean;
  readonly draining: boolean;
}

const PATH_LABEL = new TextEncoder().encode('netlane-relay-path');

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
    pathChallengesAnswered: 0,
    sessionsRefused: 0,
    dirRegistered: 0,
    dirRegisterRefused: 0,
    dirLookups: 0,
  };
  /** Where end-to-end datagrams received on a path go (set by the owner: the endpoint's input). */
  onData: (now: number, vaddr: SocketAddress, data: Uint8Array) => void = () => undefined;
  readonly #p: CryptoProvider;
  readonly #ticket: Uint8Array;
  readonly #relays = new Map<string, RelayState>();
  readonly #relayList: RelayState[] = [];
  readonly #paths = new Map<number, Path>();
  readonly #keepaliveUs: number;
  readonly #timeoutUs: number;
  readonly #probeUs: number;
  readonly #hyst: Hysteresis;
  readonly #dir: DirectoryClient;
  readonly #out = new Deque<Transmit>();
  readonly #events: RelayClientEvent[] = [];
  #primary: RelayState | null = null;
  #backup: RelayState | null = null;
  #revision = 0;
  #route: string | null = null;
  #routeParsed: Route | null = null;
  #nextVport = 1;
  #nextRequestId = 1;
  #nextProbeUs = 0;
  #started = false;
  #closed = false;
  /** The earliest time something is due (relay retries, keepalives, timeouts, link retries, lingers). */
  #dueUs = 0;

  constructor(options: RelayClientOptions) {
    if (options.relays.length === 0) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'at least one relay is needed');
    this.#p = options.provider;
    this.#ticket = options.ticket ?? new Uint8Array(0);
    this.#keepaliveUs = (options.keepaliveMs ?? 200) * 1000;
    this.#timeoutUs = (options.relayTimeoutMs ?? 1200) * 1000;
    this.#probeUs = (options.probeIntervalMs ?? 5000) * 1000;
    this.#hyst = options.hysteresis ?? DEFAULT_HYSTERESIS;
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
    for (const r of options.relays) this.#relay(r, true);
  }

  // ---------------------------------------------------------------- queries

  /** This client's route string (public information only), or null until the first relay session is open. */
  get route(): string | null {
    return this.#route;
  }

  get routeParsed(): Route | null {
    return this.#routeParsed;
  }

  /** The primary relay's address, or null. */
  get primary(): SocketAddress | null {
    return this.#primary?.addr ?? null;
  }

  /** Whether every relay in this client's route has acknowledged its current directory registration. */
  get registered(): boolean {
    return this.#dir.registered(this.#route, [this.#primary, this.#backup]);
  }

  /** Whether `from` is a relay this client talks to (its datagrams go to {@link handleDatagram}). */
  isRelay(from: SocketAddress): boolean {
    return this.#find(from) !== undefined;
  }

  /** Which relay carries a path now (for stats and tests), or null. */
  pathRelay(vaddr: SocketAddress): SocketAddress | null {
    return this.#paths.get(vaddr.port)?.relay?.addr ?? null;
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
    const path = this.#newPath(false);
    path.route = route;
    this.#relink(path, now);
    return path.vaddr;
  }

  /**
   * A newer route for the peer behind `vaddr` (updatePeer, the peer's in-band announcement, a lookup).
   * The path moves when the relay it uses is not in the new route or is failing; otherwise it stays.
   */
  updatePath(now: number, vaddr: SocketAddress, route: Route): void {
    const path = this.#paths.get(vaddr.port);
    if (!path || (path.route && route.revision <= path.route.revision)) return;
    path.route = route;
    const r = path.relay;
    const stays = usable(r) && route.entries.some((e) => addressKey(e.relay) === r.key);
    if (!stays) this.#relink(path, now);
  }

  /** Forgets a path at once (its connection is gone). */
  closePath(vaddr: SocketAddress): void {
    const path = this.#paths.get(vaddr.port);
    if (!path) return;
    this.#paths.delete(vaddr.port);
    this.#releaseLink(path);
  }

  /**
   * Forgets a path after `lingerUs`, so that what the endpoint queued on it just now (a close) still
   * leaves, unless `stillUsed()` says by then that a connection uses it again (crossing dials share one).
   */
  closePathLater(now: number, vaddr: SocketAddress, stillUsed: () => boolean, lingerUs = DEFAULT_PATH_LINGER_US): void {
    const path = this.#paths.get(vaddr.port);
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
    const path = this.#paths.get(t.destination.port);
    if (!path || this.#closed) {
      this.stats.noLinkDrops++;
      return null;
    }
    const r = path.relay;
    if (!r || r.phase !== 'open' || path.linkId < 0) {
      if (path.queue.length < MAX_QUEUED_PER_PATH) path.queue.push(t.data);
      else this.stats.noLinkDrops++;
      return null;
    }
    this.stats.datagramsSent++;
    path.tx.data = t.data;
    return path.tx;
  }

  /** The local address changed (a NAT rebinding): keepalives now, so the relays challenge and move the sessions. */
  handleRebind(now: number): void {
    for (const r of this.#relayList) if (r.phase === 'open') this.#keepalive(r, now);
  }

  /** Closes the relay sessions (the CLOSE_SESSION messages wait in `pollTransmit`). Nothing is sent after. */
  close(): void {
    if (this.#closed) return;
    for (const r of this.#relayList) if (r.sessionId && r.phase === 'open') this.#sendControl(r, { type: 'closeSession', sessionId: r.sessionId });
    this.#closed = true;
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

  /** A datagram from `from`; anything not from a relay this client uses is refused and counted. */
  handleDatagram(now: number, from: SocketAddress, data: Uint8Array): void {
    if (this.#closed) return;
    this.stats.datagramsReceived++;
    const r = this.#find(from);
    if (!r || data.length < 1) {
      this.stats.refused++;
      return;
    }
    if (data[0] === RelayMsg.DataDown) {
      if (data.length < 4 || r.phase !== 'open') {
        this.stats.refused++;
        return;
      }
      r.lastHeardUs = now;
      const linkId = ((data[1] as number) << 8) | (data[2] as number);
      let path = r.links[linkId];
      if (!path) {
        // A link the peer made to our token: a new path; the endpoint authenticates what comes on it.
        path = this.#newPath(true);
        this.#bindLink(path, r, linkId);
      }
      this.onData(now, path.vaddr, data.subarray(3));
      return;
    }
    let m: RelayControl;
    try {
      m = decodeRelayControl(data);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.stats.refused++;
      return;
    }
    this.#control(r, m, now);
    this.#dueUs = now; // control changes deadlines: the next handleTimeout recomputes them
  }

  /** Fires what is due at `now` and recomputes the next deadline. */
  handleTimeout(now: number): void {
    if (this.#closed) return;
    if (!this.#started) {
      this.#started = true;
      for (const r of this.#relayList) this.#ping(r, now);
    }
    if (now < this.#dueUs) return;
    let due = Number.POSITIVE_INFINITY;
    for (const r of this.#relayList) due = Math.min(due, this.#relayTimers(r, now));
    due = Math.min(due, this.#dir.handleTimeout(now));
    this.#dir.register(now, this.#route, [this.#primary, this.#backup]);
    due = Math.min(due, this.#dir.nextRetryUs(now));
    for (const path of [...this.#paths.values()]) due = Math.min(due, this.#pathTimers(path, now));
    // Probe every configured relay now and then: dead ones may be back, another may be better. A ping still
    // in flight is not replaced: a new nonce would make its pong unrecognisable (and, with no primary yet,
    // every refused pong would ping again: a storm that never finds one).
    if (now >= this.#nextProbeUs || !this.#primary) {
      this.#nextProbeUs = now + this.#probeUs;
      for (const r of this.#relayList) if (r.configured && r.phase !== 'pinging' && r.phase !== 'requesting' && now >= r.retryAtUs && now - r.pingSentUs >= REQUEST_RETRY_US) this.#ping(r, now);
    }
    due = Math.min(due, this.#primary ? this.#nextProbeUs : now + REQUEST_RETRY_US);
    this.#choose(now);
    this.#dueUs = due;
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
        if (now - r.lastHeardUs > this.#timeoutUs) {
          this.#lose(r, now, true);
          return Math.max(now, r.retryAtUs);
        }
        const interval = r === this.#primary ? this.#keepaliveUs : SECONDARY_KEEPALIVE_US;
        if (now - r.keepaliveSentUs >= interval) this.#keepalive(r, now);
        let due = Math.min(r.keepaliveSentUs + interval, r.lastHeardUs + this.#timeoutUs + 1);
        if (r !== this.#primary && r !== this.#backup) due = Math.min(due, this.#idleExtraSession(r, now));
        return due;
      }
      case 'none':
        return r.configured && r.retryAtUs > now ? r.retryAtUs : Number.POSITIVE_INFINITY;
    }
  }

  /** Sessions on a peer's relay close once no path has used them for {@link EXTRA_SESSION_IDLE_US}. */
  #idleExtraSession(r: RelayState, now: number): number {
    const used = r.links.some((p) => p !== undefined) || [...this.#paths.values()].some((p) => p.pendingRelay === r);
    if (used) {
      r.idleSinceUs = -1;
      return Number.POSITIVE_INFINITY;
    }
    if (r.idleSinceUs < 0) r.idleSinceUs = now;
    if (now - r.idleSinceUs <= EXTRA_SESSION_IDLE_US) return r.idleSinceUs + EXTRA_SESSION_IDLE_US + 1;
    if (r.sessionId) this.#sendControl(r, { type: 'closeSession', sessionId: r.sessionId });
    r.phase = 'none';
    r.sessionId = null;
    r.sessionKey = null;
    r.token = null;
    this.#dir.forget(r);
    return Number.POSITIVE_INFINITY;
  }

  /** A path's lingering close and its link request retries; returns its next deadline. */
  #pathTimers(path: Path, now: number): number {
    if (now >= path.forgetAtUs) {
      path.forgetAtUs = Number.POSITIVE_INFINITY;
      if (!path.stillUsed?.()) {
        this.closePath(path.vaddr);
        return Number.POSITIVE_INFINITY;
      }
      path.stillUsed = null;
    }
    let due = path.forgetAtUs;
    const r = path.pendingRelay;
    if (r && r.phase === 'open') {
      if (now - path.requestSentUs >= REQUEST_RETRY_US) {
        if (path.requestTries >= REQUEST_TRIES) {
          path.pendingRelay = null;
          this.stats.linkFailures++;
        } else this.#requestLink(path, r, now);
      }
      if (path.pendingRelay) due = Math.min(due, path.requestSentUs + REQUEST_RETRY_US);
    } else if (!r && (!path.relay || path.relay.dead) && path.route) {
      this.#relink(path, now);
      if (!path.pendingRelay) due = Math.min(due, now + REQUEST_RETRY_US);
    }
    return due;
  }

  // ---------------------------------------------------------------- relays and sessions

  #find(from: SocketAddress): RelayState | undefined {
    for (const x of this.#relayList) if (x.addr.port === from.port && x.addr.address === from.address) return x;
    return undefined;
  }

  #relay(addr: SocketAddress, configured: boolean): RelayState {
    const key = addressKey(addr);
    let r = this.#relays.get(key);
    if (r) return r;
    r = newRelayState(addr, key, configured);
    this.#relays.set(key, r);
    this.#relayList.push(r);
    return r;
  }

  #requestId(): number {
    return (this.#nextRequestId = (this.#nextRequestId % 0xffff) + 1);
  }

  #sendControl(r: RelayState, m: RelayControl): void {
    if (this.#closed) return; // a path opened after close() goes nowhere
    this.stats.datagramsSent++;
    this.#out.push({ destination: r.addr, data: encodeRelayControl(m) });
  }

  #ping(r: RelayState, now: number): void {
    this.#p.fillRandom(r.pingNonce);
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

  #requestSession(r: RelayState, now: number): void {
    if (!r.cookie) return;
    if (r.requestTries === 0) this.#p.fillRandom(r.clientNonce);
    r.requestSentUs = now;
    r.requestTries++;
    this.#sendControl(r, { type: 'sessionRequest', cookie: r.cookie, clientNonce: r.clientNonce, ticket: this.#ticket });
  }

  #keepalive(r: RelayState, now: number): void {
    if (!r.sessionId) return;
    r.keepaliveSeq = (r.keepaliveSeq + 1) >>> 0;
    r.keepaliveSentUs = now;
    this.#sendControl(r, { type: 'keepalive', sessionId: r.sessionId, seq: r.keepaliveSeq });
  }

  /** The session on `r` is gone (relay dead, restarted, or reaped us): its links too. */
  #lose(r: RelayState, now: number, dead: boolean): void {
    if (dead && !r.dead) this.stats.relayDeaths++;
    r.dead = dead;
    r.phase = 'none';
    r.sessionId = null;
    r.sessionKey = null;
    r.token = null;
    r.cookie = null;
    r.retryAtUs = now + (dead ? DEAD_RETRY_US : 0);
    this.#dir.forget(r);
    for (let i = 0; i < r.links.length; i++) {
      const path = r.links[i];
      if (!path) continue;
      r.links[i] = undefined;
      path.relay = null;
      path.linkId = -1;
      this.#relink(path, now);
    }
    for (const path of this.#paths.values()) if (path.pendingRelay === r) this.#relink(path, now);
    this.#choose(now);
  }

  /** Picks the primary and backup; opens sessions they need; publishes a new route when they change. */
  #choose(now: number): void {
    const c = choose(this.#relayList, this.#primary, this.#backup, this.#hyst, now);
    for (const r of c.warm) this.#wantSession(r, now); // warm it up before moving
    if (c.primary !== this.#primary) {
      if (this.#primary) this.stats.primaryChanges++;
      this.#primary = c.primary;
    }
    this.#backup = c.backup;
    if (c.primary) this.#wantSession(c.primary, now);
    if (c.backup) this.#wantSession(c.backup, now);
    this.#publish(now);
  }

  #publish(now: number): void {
    const entries = [this.#primary, this.#backup].filter((r): r is RelayState => r !== null && r.phase === 'open' && r.token !== null).map((r) => ({ relay: r.addr, token: r.token as Uint8Array }));
    if (entries.length === 0 || this.#primary?.phase !== 'open') return;
    const cur = this.#routeParsed;
    if (cur && cur.entries.length === entries.length && cur.entries.every((e, i) => addressKey(e.relay) === addressKey((entries[i] as { relay: SocketAddress }).relay) && bytesEqual(e.token, (entries[i] as { token: Uint8Array }).token))) return;
    const next: Route = { version: ROUTE_VERSION, revision: this.#revision + 1, entries };
    this.#revision = next.revision;
    this.#routeParsed = next;
    this.#route = encodeRoute(next);
    this.#dir.register(now, this.#route, [this.#primary, this.#backup]);
    this.#events.push({ type: 'route', route: this.#route, parsed: next });
  }

  // ---------------------------------------------------------------- paths and links

  #newPath(incoming: boolean): Path {
    const path = newPath(this.#nextVport++, incoming);
    this.#paths.set(path.vaddr.port, path);
    return path;
  }

  /** Links `path` through the first relay of its route that is alive, opening a session there if needed. */
  #relink(path: Path, now: number): void {
    const route = path.route;
    if (!route) return; // a path the peer made: it re-links, or tells us its new route
    let target: RelayState | null = null;
    for (const e of route.entries) {
      const r = this.#relay(e.relay, false);
      if (usable(r)) {
        target = r;
        break;
      }
    }
    if (!target || (path.relay === target && path.linkId >= 0)) return;
    path.pendingRelay = target;
    path.requestTries = 0;
    path.requestId = this.#requestId();
    if (target.phase === 'open') this.#requestLink(path, target, now);
    else this.#wantSession(target, now);
    this.#dueUs = Math.min(this.#dueUs, now + REQUEST_RETRY_US);
  }

  #requestLink(path: Path, r: RelayState, now: number): void {
    const token = path.route?.entries.find((e) => addressKey(e.relay) === r.key)?.token ?? null;
    if (!token || !r.sessionId) return;
    path.requestSentUs = now;
    path.requestTries++;
    this.#sendControl(r, { type: 'linkRequest', sessionId: r.sessionId, requestId: path.requestId, token });
  }

  /**
   * A path lets go of its link's slot (it closes, or moves to another link). When both peers linked to
   * each other's token, the relay gave both of this client's paths one link (the peer's, seen in data, and
   * ours, from LINK_OK): the other path gets the slot back, so that what arrives on the link still reaches
   * the connection on it rather than a new path no connection knows.
   */
  #releaseLink(path: Path): void {
    const r = path.relay;
    if (!r || r.links[path.linkId] !== path) return;
    let heir: Path | undefined;
    for (const p of this.#paths.values()) if (p !== path && p.relay === r && p.linkId === path.linkId) heir = p;
    r.links[path.linkId] = heir;
  }

  #bindLink(path: Path, r: RelayState, linkId: number): void {
    this.#releaseLink(path);
    if (path.relay) this.stats.relinks++;
    path.relay = r;
    path.linkId = linkId;
    path.pendingRelay = null;
    r.links[linkId] = path;
    r.idleSinceUs = -1;
    writeHopHeader(path, r, linkId);
    // What the endpoint sent before the link was up leaves now, in order.
    for (const d of path.queue.splice(0)) {
      this.stats.datagramsSent++;
      this.#out.push({ destination: r.addr, data: d, header: path.header.slice() });
    }
  }

  // ---------------------------------------------------------------- control messages

  #control(r: RelayState, m: RelayControl, now: number): void {
    switch (m.type) {
      case 'pong': {
        if (!bytesEqual(m.nonce, r.pingNonce)) return;
        r.pingNonce.fill(0);
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
        if (r.phase !== 'requesting' || !bytesEqual(m.clientNonce, r.clientNonce)) return;
        r.phase = 'open';
        r.sessionId = m.sessionId.slice();
        r.sessionKey = m.sessionKey.slice();
        r.token = m.token.slice();
        r.lastHeardUs = now;
        r.keepaliveSentUs = now;
        r.draining = m.drainSeconds > 0;
        for (const path of this.#paths.values()) if (path.pendingRelay === r) this.#requestLink(path, r, now);
        this.#choose(now);
        this.#publish(now);
        return;
      }
      case 'refused': {
        if (r.phase !== 'requesting' || !bytesEqual(m.clientNonce, r.clientNonce)) return;
        this.stats.sessionsRefused++;
        r.phase = 'none';
        r.draining = true; // not usable for now; a later pong clears it
        r.retryAtUs = now + REFUSED_RETRY_US;
        this.#choose(now);
        return;
      }
      case 'linkOk':
      case 'linkFailed': {
        for (const path of this.#paths.values()) {
          if (path.pendingRelay !== r || path.requestId !== m.requestId) continue;
          r.lastHeardUs = now;
          if (m.type === 'linkOk') this.#bindLink(path, r, m.linkId);
          else {
            // The peer's session there is gone (BAD_ROUTE): try its next relay; its new route will follow.
            this.stats.linkFailures++;
            path.pendingRelay = null;
            if (path.route) path.route = { ...path.route, entries: path.route.entries.filter((e) => addressKey(e.relay) !== r.key) };
            this.#relink(path, now);
          }
          return;
        }
        return;
      }
      case 'keepaliveAck': {
        if (r.phase !== 'open') return;
        if (m.seq === r.keepaliveSeq && m.seq !== 0) addRtt(r, now - r.keepaliveSentUs);
        r.lastHeardUs = now;
        if (m.drainSeconds > 0 && !r.draining) {
          r.draining = true;
          // Make before break: move the paths and the route now, while the old links still work.
          for (const path of r.links) if (path) this.#relink(path, now);
          this.#choose(now);
        }
        return;
      }
      case 'pathChallenge': {
        if (r.phase !== 'open' || !r.sessionId || !r.sessionKey) return;
        const mac = this.#p.hmacSha256(r.sessionKey, PATH_LABEL, m.challenge).subarray(0, PATH_MAC_BYTES);
        this.stats.pathChallengesAnswered++;
        this.#sendControl(r, { type: 'pathResponse', sessionId: r.sessionId, challenge: m.challenge, mac });
        return;
      }
      case 'noSession': {
        if (r.phase === 'open' && r.sessionId && bytesEqual(m.sessionId, r.sessionId)) this.#lose(r, now, false);
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
