import type { Endpoint } from '../core/endpoint.js';
import { ConnectionState, Result, SendFlags, type ConnectionStatusChangedEvent, type ReceivedMessage, type SansIo, type SocketAddress, type Transmit } from '../core/types.js';
import { isRelayPath, type RelayClient, type RelayClientEvent } from '../relay/client/index.js';
import { OFFER_LIFETIME_US, type Route } from '../relay/protocol.js';
import { Admission } from '../util/admission.js';
import { Deque } from '../util/deque.js';
import { WireError } from '../wire/errors.js';
import { DATA_FLAG, peekDestinationCid } from '../wire/header.js';
import { decodeInBand, encodeDirect, encodeRouteUpdate, type DirectOffer } from '../wire/in-band.js';
import { acceptedCandidates, allowsDirect, offeredCandidates, type DirectPathSetting } from './direct.js';
import { sendOnChannel, writeOutbox } from './channels.js';
import { identifyCaller } from './incoming.js';
import { Routes } from './routes.js';
import { SessionTimers, type SessionTimerHost } from './timers.js';
import { PeerSession, type SessionState } from './session.js';
import { E, IDLE_GRACE_US, PERMIT_LINGER_US, REQUEST_REPEAT_US, type PeerEvent, type PeerHostOptions, type PeerPolicy, type PeerSpec, type PeerStats } from './types.js';

export type { PeerEvent, PeerHostOptions, PeerPolicy, PeerSpec, PeerStats } from './types.js';

/**
 * The peer-session layer both relayed facades stand on, sans-IO: an endpoint, its relay client and the
 * sessions, run by one io driver with one timer (inputs `handleDatagram` / `handleTimeout`, outputs
 * `pollTransmit` / `pollTimeout` / `pollEvent`). It owns what a session is: finding the peer's route,
 * dialling, the crossing rule, the identity check after the handshake, reconnecting, the outbox before
 * Connected, the idle timeout, and the in-band route updates that follow a relay change. A facade only
 * translates identities, result codes and its delivery style.
 */
export class PeerHost<A = unknown> implements SansIo, SessionTimerHost<A> {
  readonly endpoint: Endpoint;
  readonly relay: RelayClient | null;
  readonly stats: PeerStats = {
    sessionRequests: 0,
    sessionsAccepted: 0,
    sessionsFailed: 0,
    idleTimeouts: 0,
    quietCloses: 0,
    connectionsLost: 0,
    duplicateConnections: 0,
    identityMismatches: 0,
    refusedPeers: 0,
    protocolViolations: 0,
    routeUpdatesReceived: 0,
    lookups: 0,
    strayDatagrams: 0,
    directOffersSent: 0,
    directOffersReceived: 0,
    directOffersIgnored: 0,
  };
  readonly localPeerId: bigint;
  readonly #o: PeerHostOptions<A>;
  readonly #policy: PeerPolicy;
  readonly #sessions = new Map<string, PeerSession<A>>();
  readonly #byCid = new Map<number, PeerSession<A>>();
  /** Connected sessions with queued messages (written after every input until their buffers take them). */
  readonly #pending = new Set<PeerSession<A>>();
  readonly #events = new Deque<PeerEvent<A>>();
  readonly #timers: SessionTimers<A>;
  readonly #scratch: ReceivedMessage[] = [];
  /** The connection being closed for a protocol violation: reads of it return nothing. */
  #violating = 0;
  readonly #routes: Routes<A>;
  #closed = false;
  /** The wanted sessions changed: the relays' permits follow (see {@link #syncPermits}). */
  #permitsDirty = false;
  /** Peer ids no longer wanted, still permitted until then (µs): what was just queued to them (a close) still gets through. */
  readonly #leaving = new Map<bigint, number>();
  #leavingDueUs = Number.POSITIVE_INFINITY;
  /** The relay client's reflexive-address revision the sessions' candidates were last sent at. */
  #reflexiveSeen = 0;
  /**
   * Connections closed with linger and still delivering their queued reliable data, by handle: their peer stays
   * permitted and their relay path open until the endpoint has let them go.
   */
  readonly #lingering = new Map<number, { readonly vaddr: SocketAddress | null; readonly peerId: bigint | null }>();

  constructor(options: PeerHostOptions<A>) {
    this.#o = options;
    this.#policy = options.policy;
    this.endpoint = options.endpoint;
    this.relay = options.relay;
    this.localPeerId = options.localPeerId;
    this.#timers = new SessionTimers(this.#policy.idleTimeoutUs);
    this.#routes = new Routes<A>({
      endpoint: this.endpoint,
      relay: this.relay,
      stats: this.stats,
      timers: this.#timers,
      session: (key) => this.#sessions.get(key),
      sessions: () => this.#sessions.values(),
      dial: (now, s, vaddr) => this.#dial(now, s, vaddr),
      fail: (now, s, apiState, reason, debug) => this.fail(now, s, apiState, reason, debug),
    });
    if (this.relay) {
      this.relay.onData = (now, vaddr, data) => this.endpoint.handleDatagram(now, vaddr, data);
      this.relay.pathInUse = (vaddr) => this.#pathInUse(vaddr);
    }
  }

  // ---------------------------------------------------------------- sessions: commands

  /** The session with `key`, or undefined. */
  session(key: string): PeerSession<A> | undefined {
    return this.#sessions.get(key);
  }

  sessions(): IterableIterator<PeerSession<A>> {
    return this.#sessions.values();
  }

  /** The session for `spec`, made (idle, not wanted) if there is none. */
  open(now: number, spec: PeerSpec): PeerSession<A> {
    let s = this.#sessions.get(spec.key);
    if (!s) {
      s = new PeerSession<A>(spec.key, spec.peerId, spec.direct, this.#o.app(spec.key), now);
      this.#sessions.set(spec.key, s);
      // Its idle deadline only moves later with use: the timer table recomputes it when it falls due.
      if (this.#policy.idleTimeoutUs !== null) this.#timers.lower(s, now + this.#policy.idleTimeoutUs);
    }
    return s;
  }

  /**
   * The application wants this peer: a waiting connection from it is accepted, and an idle or failed
   * session starts one (by address, by route, or by looking the peer id up first). Returns false when the
   * session cannot be reached (no address, no route, no relay).
   */
  want(now: number, s: PeerSession<A>): boolean {
    this.#setWanted(now, s, true);
    this.#syncPermits(now);
    s.lastUsedUs = now;
    const st = s.state;
    if (st.kind === 'awaitingAccept') {
      this.#accept(now, s, st.cid, st.vaddr);
      return true;
    }
    if (st.kind === 'offered') {
      // The peer asked for a link: our permit (and this answer) let it through now, and the peer dials.
      this.relay?.answerOffer(st.relay, st.offerId, st.peerId, true);
      this.#waitForPeer(s, now + this.#o.timeoutInitialUs);
      return true;
    }
    if (st.kind !== 'idle' && st.kind !== 'failed') return true;
    return this.#start(now, s);
  }

  /** A newer route for a relayed peer (a lobby update): its path moves if its relay is no longer in it. */
  updateRoute(now: number, s: PeerSession<A>, route: Route): void {
    if (s.route && route.revision < s.route.revision) return; // a stale update
    s.route = route;
    const vaddr = s.vaddr;
    if (vaddr && isRelayPath(vaddr)) this.relay?.updatePath(now, vaddr, route);
    else if (s.wanted && s.state.kind === 'idle' && !this.#closed) this.#start(now, s); // it was waiting for a route
  }

  /**
   * Ends a session: its connection closes with `reason` (no event; with `linger`, after its queued reliable data;
   * `internal`: a library reason the peer sees as it is, not mapped into the application's range), it is forgotten.
   */
  close(now: number, s: PeerSession<A>, reason: number, debug: string, linger = false, internal = false): void {
    const cid = s.cid;
    if (cid !== 0) {
      if (linger) {
        this.#lingering.set(cid, { vaddr: s.vaddr, peerId: s.peerId });
        this.#permitsDirty = true;
      }
      this.#unlink(now, s, reason, debug, linger, internal);
    }
    // A link offer never accepted is refused: the requester hears it at once.
    const st = s.state;
    if (st.kind === 'offered') this.relay?.answerOffer(st.relay, st.offerId, st.peerId, false);
    this.#pending.delete(s);
    if (this.#sessions.get(s.key) === s) this.#sessions.delete(s.key); // a session closed twice never takes a newer one with it
    this.#timers.forget(s);
    if ((s.wanted || s.admitted) && s.peerId !== null) this.#unpermit(now, s.peerId);
    this.#syncPermits(now);
  }

  /**
   * A failed session may start again (its next `want`), as a new session: it finds the peer's route
   * afresh, since the one it had may be what failed (a stale route, or a lying directory's).
   */
  restart(s: PeerSession<A>): void {
    if (s.state.kind !== 'failed') return;
    s.route = null;
    s.transition({ kind: 'idle' });
  }

  /**
   * Sends on a session's channel: at once when connected (returns the core's answer), else queued
   * (reliably, with `queueReliable`). Returns a `Result`: OK, LimitExceeded (the session's queue or the
   * connection's buffer is full), or the core's refusal. `owned`: the caller gives up `data` (no copy).
   */
  send(now: number, s: PeerSession<A>, channel: number, data: Uint8Array, flags: number, owned = false): number {
    s.lastUsedUs = now;
    if (!s.connected || s.outbox.length > 0) {
      if (s.outbox.length >= this.#policy.maxOutboxMessages || s.outboxBytes + data.length > this.#policy.maxOutboxBytes) return Result.LimitExceeded;
      s.outbox.push({ channel, flags: s.connected || !this.#policy.queueReliable ? flags : SendFlags.Reliable, data: owned ? data : data.slice() });
      s.outboxBytes += data.length;
      if (s.connected) this.#write(now, s);
      return Result.OK;
    }
    const r = sendOnChannel(this.endpoint, now, s, channel, data, flags);
    return r < 0 && r !== -Result.Ignored ? -r : Result.OK;
  }

  /** Sends what Nagle holds on a connected session now. */
  flush(now: number, s: PeerSession<A>): void {
    if (s.connected) this.endpoint.flush(now, s.cid);
  }

  /**
   * Takes up to `max` received messages of a session, calling `fn(channel, data, message)` for each
   * (in-band messages are handled here and not passed on). Returns how many the connection gave: fewer
   * than `max` means it has none left.
   */
  receive(now: number, s: PeerSession<A>, max: number, fn: (channel: number, data: Uint8Array, m: ReceivedMessage) => void): number {
    const cid = s.cid;
    if (cid === 0 || cid === this.#violating) return 0;
    const out = this.#scratch;
    const n = this.endpoint.receive(cid, out, max);
    let violation: string | null = null;
    let i = 0;
    for (; i < n && violation === null; i++) {
      const m = out[i] as ReceivedMessage;
      if (m.lane !== 0) fn(m.lane - 1, m.data, m);
      else violation = this.#inBand(now, s, m, fn);
    }
    while (out.length > 0) out.pop(); // not `length = 0`, which drops the array's storage (the next push allocates)
    if (n > 0) s.lastUsedUs = now;
    if (violation !== null) {
      // The peer broke the in-band protocol: nothing after the bad message is delivered, and the facade's
      // last pull before the close (beforeUnlink) reads nothing more from this connection.
      this.stats.protocolViolations++;
      this.#violating = cid;
      this.#ended(now, s, ConnectionState.ProblemDetectedLocally, E.ProtocolViolation, `malformed in-band message: ${violation}`, false);
      this.#violating = 0;
    }
    return n;
  }

  /** The next session whose connection has messages to read, or null. A session may come more than once. */
  pollReadable(): PeerSession<A> | null {
    for (let cid = this.endpoint.pollReadable(); cid !== null; cid = this.endpoint.pollReadable()) {
      const s = this.#byCid.get(cid);
      if (s) return s;
    }
    return null;
  }

  /** The next session whose connection's send queue drained after a refused send (endpoints made with `writableNotices`), or null. */
  pollWritable(): PeerSession<A> | null {
    for (let cid = this.endpoint.pollWritable(); cid !== null; cid = this.endpoint.pollWritable()) {
      const s = this.#byCid.get(cid);
      if (s) return s;
    }
    return null;
  }

  pollEvent(): PeerEvent<A> | null {
    return this.#events.shift() ?? null;
  }

  /**
   * Closes every connection (reason 1000); what they send waits in `pollTransmit`. Drain it (the close
   * leaves on the relay paths), then {@link closeRelays}.
   */
  shutdown(now: number): void {
    if (this.#closed) return;
    for (const s of this.#sessions.values()) if (s.cid !== 0) this.endpoint.close(now, s.cid, E.Shutdown, 'Shutting down', false);
    this.#closed = true;
  }

  /** Closes the relay sessions (their CLOSE_SESSION waits in `pollTransmit`); nothing goes through a relay after. */
  closeRelays(): void {
    this.relay?.close();
  }

  // ---------------------------------------------------------------- sans-IO inputs and outputs

  /**
   * What a datagram is to the io driver's admission control: a relay's (or, with no direct peers, anyone's:
   * a stray costs a lookup) is handled at once; a direct peer's is classified by the endpoint, so that a flood
   * of spoofed handshakes at a `bind` socket is bounded per turn as a NetworkingSockets listen socket's is.
   */
  admission(data: Uint8Array, from: SocketAddress): Admission {
    if ((!this.#o.direct && !this.#directAllowed()) || this.relay?.isRelay(from)) return Admission.Now;
    return this.endpoint.admission(data);
  }

  /** The direct-path setting in force for a session (docs/P2P.md), or null: none allowed. */
  #directSetting(s: PeerSession<A>): DirectPathSetting | null {
    const d = this.#o.directPaths?.(s.key) ?? null;
    return d && allowsDirect(d.enable) ? d : null;
  }

  /** Whether any session may use a direct path (datagrams from non-relays may reach the endpoint). */
  #directAllowed(): boolean {
    const d = this.#o.directPaths;
    return d !== undefined && allowsDirect(d(null).enable);
  }

  handleDatagram(now: number, from: SocketAddress, data: Uint8Array): void {
    this.#o.tap?.(data, from);
    const relay = this.relay;
    if (relay && relay.handleDatagram(now, from, data)) {
      // a relay's datagram: its DATA_DOWN went to the endpoint through onData
    } else if (this.#o.direct) this.endpoint.handleDatagram(now, from, data);
    else if ((data[0] ?? 0) & DATA_FLAG && data.length >= 5 && this.endpoint.directEnabled(peekDestinationCid(data)) && this.endpoint.admission(data) === Admission.Now) {
      // A direct path's packet (a probe or data of a connection whose session allows direct paths, both
      // ways): nothing else comes from a non-relay, so that a session without them never answers one.
      this.endpoint.handleDatagram(now, from, data);
    } else {
      this.stats.strayDatagrams++;
      return;
    }
    this.#settle(now);
  }

  handleTimeout(now: number): void {
    this.endpoint.handleTimeout(now);
    this.relay?.handleTimeout(now);
    this.#settle(now);
    if (!this.#closed && now >= this.#timers.dueUs) this.#timers.run(now, this);
  }

  handleRebind(now: number): void {
    this.relay?.handleRebind(now);
  }

  pollTransmit(now: number): Transmit | null {
    const relay = this.relay;
    if (relay) {
      const c = relay.pollTransmit();
      if (c) return c;
    }
    for (let t = this.endpoint.pollTransmit(now); t; t = this.endpoint.pollTransmit(now)) {
      if (isRelayPath(t.destination)) {
        const w = relay?.wrap(t) ?? null;
        if (w) return w;
      } else if (this.#o.direct || this.#directAllowed()) return t;
    }
    return null;
  }

  pollTimeout(now: number): number | null {
    let at = this.endpoint.pollTimeout(now) ?? Number.POSITIVE_INFINITY;
    const r = this.relay?.pollTimeout() ?? null;
    if (r !== null && r < at) at = r;
    if (!this.#closed && this.#timers.dueUs < at) at = this.#timers.dueUs;
    if (!this.#closed && this.#leavingDueUs < at) at = this.#leavingDueUs;
    return at === Number.POSITIVE_INFINITY ? null : at;
  }

  // ---------------------------------------------------------------- what happened: relay and endpoint events

  /** After every input: the relay client's and the endpoint's events, and queued messages that now fit. */
  #settle(now: number): void {
    const relay = this.relay;
    if (relay) {
      for (let e = relay.pollEvent(); e; e = relay.pollEvent()) {
        if (e.type === 'lookup') this.#routes.lookupDone(now, e.peerId, e.result);
        else if (e.type === 'linkOffer') this.#offer(now, e);
        else if (e.type === 'linkRefused') this.#linkRefused(now, e.vaddr);
        else {
          this.#routes.ownRouteChanged(now, e.route);
          this.#events.push({ type: 'route', route: e.route });
        }
      }
    }
    this.#syncPermits(now);
    if (relay && relay.reflexiveChanges !== this.#reflexiveSeen) {
      this.#reflexiveSeen = relay.reflexiveChanges;
      for (const s of this.#sessions.values()) if (s.directAllowedByPeer) this.#sendCandidates(now, s);
    }
    const ep = this.endpoint;
    for (let e = ep.pollEvent(); e; e = ep.pollEvent()) if (e.type === 'connectionStatusChanged') this.#status(now, e);
    if (this.#lingering.size > 0) this.#lingerDone(now);
    if (this.#pending.size > 0) for (const s of this.#pending) this.#write(now, s);
  }

  #status(now: number, e: ConnectionStatusChangedEvent): void {
    this.#o.observe?.(e);
    const cid = e.connection;
    const s = this.#byCid.get(cid);
    if (!s) {
      if (e.oldState === ConnectionState.None && e.state === ConnectionState.Connecting) this.#incoming(now, cid);
      else if (e.state === ConnectionState.ClosedByPeer || e.state === ConnectionState.ProblemDetectedLocally) this.endpoint.close(now, cid, 0, '', false);
      return;
    }
    if (e.state === ConnectionState.Connected) this.#connected(now, s);
    else if (e.state === ConnectionState.ClosedByPeer || e.state === ConnectionState.ProblemDetectedLocally) {
      const end = this.endpoint.endInfo(cid) ?? { reason: 0, debug: '' };
      this.#ended(now, s, e.state, end.reason, end.debug, this.#idle(now, s));
    }
  }

  /** A connection from a peer: which session it belongs to, and whether it is accepted, held or refused. */
  #incoming(now: number, cid: number): void {
    const ep = this.endpoint;
    if (this.#closed) {
      ep.close(now, cid, E.Shutdown, 'Shutting down', false);
      return;
    }
    const caller = identifyCaller(ep, cid, this.localPeerId, this.#policy);
    if (!caller.ok) {
      this.stats.refusedPeers++;
      ep.close(now, cid, E.Generic, 'Not a session peer', false);
      return;
    }
    const { key, remote, relayed, peerId: certId } = caller;
    let s = this.#sessions.get(key);
    if (s && s.cid !== 0) {
      const st = s.state;
      if (st.kind === 'connecting' && !st.incoming) {
        // Both sides dialled at once: keep the connection the lower peer id made.
        this.stats.duplicateConnections++;
        if (certId !== null && this.localPeerId < certId) {
          ep.close(now, cid, E.Duplicate, 'Duplicate connection', false);
          return;
        }
        this.#byCid.set(cid, s); // before the old connection goes: they may share one relay path
        this.#unlink(now, s, E.Duplicate, 'Duplicate connection');
      } else if (st.kind === 'connected' && !st.incoming && certId !== null && this.localPeerId < certId && now - st.sinceUs < this.#o.timeoutInitialUs) {
        // Our connection won a crossing and is up: this is the peer's losing dial, a retransmission still on
        // its way (the peer has closed it). Replacing ours with it would lose what is in flight on ours.
        this.stats.duplicateConnections++;
        ep.close(now, cid, E.Duplicate, 'Duplicate connection', false);
        return;
      } else {
        this.#byCid.set(cid, s);
        this.#unlink(now, s, E.Replaced, 'Replaced by a new connection'); // the peer started over
        // A connection that ends for good (NetworkingSockets): the new one is a new request for the application.
        if (this.#policy.afterEnd === 'fail') this.#setWanted(now, s, false);
      }
    }
    s ??= this.open(now, { key, peerId: relayed ? certId : null, direct: relayed ? null : remote });
    this.#byCid.set(cid, s);
    if (relayed && s.route) this.relay?.updatePath(now, remote, s.route);
    if (s.wanted) this.#accept(now, s, cid, remote);
    else {
      const repeatAtUs = this.#policy.requests ? now + REQUEST_REPEAT_US : Number.POSITIVE_INFINITY;
      s.transition({ kind: 'awaitingAccept', cid, vaddr: remote, repeatAtUs });
      this.#timers.lower(s, repeatAtUs);
      this.#request(s);
    }
  }

  /**
   * A peer asks its relay for a link to us, and we have not permitted it (links by consent, docs/RELAY.md).
   * With session requests (Steam), the application hears of it as a request for the offered peer id: accepting
   * it permits the peer, and the link follows. Otherwise (Discord) the offer waits: opening that peer permits it.
   */
  #offer(now: number, e: Extract<RelayClientEvent, { type: 'linkOffer' }>): void {
    if (this.#closed || !this.#policy.requests || e.peerId === this.localPeerId) return;
    const s = this.open(now, { key: `id:${e.peerId}`, peerId: e.peerId, direct: null });
    const st = s.state;
    if (s.wanted || s.admitted) {
      this.relay?.answerOffer(e.relay, e.offerId, e.peerId, true);
      return;
    }
    if (this.#policy.acceptOffers && (st.kind === 'idle' || st.kind === 'failed')) {
      // A public server: the peer is let through (permitted until its session closes), and its connection
      // comes as a request the application accepts or refuses.
      s.admitted = true;
      this.#leaving.delete(e.peerId);
      this.#permitsDirty = true;
      this.relay?.answerOffer(e.relay, e.offerId, e.peerId, true);
      this.#waitForPeer(s, now + this.#o.timeoutInitialUs);
      return;
    }
    if (st.kind !== 'idle' && st.kind !== 'offered' && st.kind !== 'failed') return;
    const untilUs = now + OFFER_LIFETIME_US;
    if (st.kind === 'offered') {
      s.transition({ kind: 'offered', relay: e.relay, offerId: e.offerId, peerId: e.peerId, repeatAtUs: st.repeatAtUs, untilUs });
      return;
    }
    s.transition({ kind: 'offered', relay: e.relay, offerId: e.offerId, peerId: e.peerId, repeatAtUs: now + REQUEST_REPEAT_US, untilUs });
    this.#timers.lower(s, now + REQUEST_REPEAT_US);
    this.#request(s);
  }

  /** Our link to a peer was refused by its relay (the peer did not accept): the session's connection there fails with 5012, not a timeout. */
  #linkRefused(now: number, vaddr: SocketAddress): void {
    for (const s of this.#sessions.values()) {
      const v = s.vaddr;
      if (v && v.address === vaddr.address && v.port === vaddr.port && s.state.kind === 'connecting') {
        this.fail(now, s, ConnectionState.ProblemDetectedLocally, E.LinkNotAccepted, 'the peer did not accept a link through its relay');
        return;
      }
    }
  }

  #setWanted(now: number, s: PeerSession<A>, wanted: boolean): void {
    if (s.wanted === wanted) return;
    s.wanted = wanted;
    if (s.peerId === null || s.admitted) return;
    if (wanted) {
      this.#leaving.delete(s.peerId);
      this.#permitsDirty = true;
    } else this.#unpermit(now, s.peerId);
  }

  /** A peer is no longer wanted: it stays permitted for PERMIT_LINGER_US (its link is cut at the relay after). */
  #unpermit(now: number, peerId: bigint): void {
    const until = now + PERMIT_LINGER_US;
    this.#leaving.set(peerId, until);
    if (until < this.#leavingDueUs) this.#leavingDueUs = until;
  }

  /**
   * The relays permit links from exactly the peers of the sessions wanted now, and for a moment those just let
   * go (so that the close queued to them still leaves on the link before the relay cuts it).
   */
  #syncPermits(now: number): void {
    if (!this.relay) return;
    if (now >= this.#leavingDueUs) {
      let next = Number.POSITIVE_INFINITY;
      for (const [id, until] of this.#leaving) {
        if (until <= now) {
          this.#leaving.delete(id);
          this.#permitsDirty = true;
        } else if (until < next) next = until;
      }
      this.#leavingDueUs = next;
    }
    if (!this.#permitsDirty) return;
    this.#permitsDirty = false;
    const ids = new Set<bigint>(this.#leaving.keys());
    for (const x of this.#sessions.values()) if ((x.wanted || x.admitted) && x.peerId !== null) ids.add(x.peerId);
    for (const l of this.#lingering.values()) if (l.peerId !== null) ids.add(l.peerId);
    this.relay.permit(now, [...ids]);
  }

  /** Raises a `request` event for a session awaiting acceptance (when the policy wants them). */
  #request(s: PeerSession<A>): void {
    if (!this.#policy.requests) return;
    this.stats.sessionRequests++;
    this.#events.push({ type: 'request', session: s });
  }

  #accept(now: number, s: PeerSession<A>, cid: number, vaddr: SocketAddress): void {
    this.endpoint.accept(now, cid, s.coreConfig);
    this.stats.sessionsAccepted++;
    s.transition({ kind: 'connecting', cid, vaddr, incoming: true });
    if (this.#policy.routeOnConnect === 'lookup' && !s.route && s.peerId !== null && isRelayPath(vaddr)) this.relay?.lookup(now, s.peerId);
  }

  #connected(now: number, s: PeerSession<A>): void {
    const st = s.state;
    if (st.kind !== 'connecting') return;
    const got = this.endpoint.peerInfo(st.cid)?.identity ?? '';
    if (!st.incoming && s.peerId !== null && got !== `id:${s.peerId}`) {
      // Whoever answered is not the holder of this peer id's key (a relay in the middle, a stale route):
      // that route is not dialled again; the peer is looked up again, or waits for a new route.
      this.stats.identityMismatches++;
      s.route = null;
      this.#ended(now, s, ConnectionState.ProblemDetectedLocally, E.BadCert, `expected id:${s.peerId}, the peer is ${got}`, false);
      return;
    }
    s.transition({ kind: 'connected', cid: st.cid, vaddr: st.vaddr, incoming: st.incoming, sinceUs: now });
    s.handshakes++;
    s.lastUsedUs = now;
    s.laneCount = this.endpoint.laneCount(st.cid);
    // The peer learns this side's route at once, so that it can re-link if our relay fails.
    const route = this.relay?.route;
    if (route && isRelayPath(st.vaddr) && this.#policy.routeOnConnect === 'inBand') this.endpoint.send(now, st.cid, encodeRouteUpdate(route), SendFlags.Reliable, 0);
    // Direct paths allowed here: say so, without addresses; they go once the peer says the same.
    s.directAllowedByPeer = false;
    s.directSentRevision = -1;
    if (isRelayPath(st.vaddr) && this.#directSetting(s)) {
      this.endpoint.send(now, st.cid, encodeDirect(true, []), SendFlags.Reliable, 0);
      this.stats.directOffersSent++;
    }
    this.#events.push({ type: 'connected', session: s });
    this.#write(now, s);
  }

  /** Whether nothing of the session is queued or unacknowledged (a connection that ends now loses nothing). */
  #idle(now: number, s: PeerSession<A>): boolean {
    if (s.outbox.length > 0) return false;
    const st = this.endpoint.status(now, s.cid);
    return st === null || (st.pendingReliable === 0 && st.sentUnackedReliable === 0);
  }

  /** A session's connection ended (closed by the peer, failed, or ended by us for a reason): where the session goes next. */
  #ended(now: number, s: PeerSession<A>, apiState: number, reason: number, debug: string, idle: boolean): void {
    const st = s.state;
    s.lastEnd = { reason, debug };
    if (st.kind === 'awaitingAccept') {
      // A request never accepted: dropped silently (the requester's side fails).
      this.#unlink(now, s, 0, '');
      s.transition({ kind: 'idle' });
      this.#events.push({ type: 'ended', session: s, state: apiState, reason, debug });
      return;
    }
    if (st.kind === 'connecting' && !st.incoming && reason === E.Duplicate) {
      // We dialled as the peer did and the peer kept its own connection: wait for it, messages kept.
      this.#unlink(now, s, reason, debug);
      this.#waitForPeer(s, now + this.#o.timeoutInitialUs);
      return;
    }
    if (this.#policy.afterEnd === 'redial') {
      this.stats.connectionsLost++;
      this.#unlink(now, s, reason, debug);
      s.transition({ kind: 'idle' });
      if (s.wanted) this.#start(now, s);
      this.#events.push({ type: 'ended', session: s, state: apiState, reason, debug });
      return;
    }
    if (this.#policy.afterEnd === 'quietOrFail' && s.handshakes > 0 && idle && st.kind === 'connected') {
      this.stats.quietCloses++;
      this.#unlink(now, s, reason, debug);
      s.transition({ kind: 'idle' });
      this.#setWanted(now, s, false); // the next send wants it again; a connection from the peer is a new request
      this.#events.push({ type: 'ended', session: s, state: apiState, reason, debug });
      return;
    }
    this.fail(now, s, apiState, reason, debug);
  }

  /** The session fails: its connection closes, its queue is dropped, a `failed` event is raised. */
  fail(now: number, s: PeerSession<A>, apiState: number, reason: number, debug: string): void {
    if (s.state.kind === 'failed') return;
    if (s.cid !== 0) this.#unlink(now, s, reason, debug);
    // Steam: a broken session is not wanted until the application restarts it; a connection from the peer is a new request.
    if (this.#policy.afterEnd !== 'redial') this.#setWanted(now, s, false);
    s.clearOutbox();
    this.#pending.delete(s);
    s.transition({ kind: 'failed', state: apiState, reason, debug });
    this.stats.sessionsFailed++;
    this.#events.push({ type: 'failed', session: s });
  }

  /** Detaches and closes a session's connection (the facade takes its received messages first). Its relay path goes a little later, so that the close leaves on it. */
  #unlink(now: number, s: PeerSession<A>, reason: number, debug: string, linger = false, internal = false): void {
    const cid = s.cid;
    if (cid === 0) return;
    const vaddr = s.vaddr;
    this.#o.beforeUnlink?.(s);
    this.endpoint.close(now, cid, reason, debug, linger, internal);
    if (this.#byCid.get(cid) === s) this.#byCid.delete(cid);
    if (vaddr && isRelayPath(vaddr)) this.relay?.closePathLater(now, vaddr, () => this.#pathInUse(vaddr));
  }

  /** Lingering connections the endpoint has let go (delivered, or timed out): their peer's permit and their path go now. */
  #lingerDone(now: number): void {
    for (const [cid, l] of this.#lingering) {
      if (this.endpoint.holds(cid)) continue;
      this.#lingering.delete(cid);
      if (l.peerId !== null) this.#unpermit(now, l.peerId);
      const vaddr = l.vaddr;
      if (vaddr && isRelayPath(vaddr)) this.relay?.closePathLater(now, vaddr, () => this.#pathInUse(vaddr));
    }
  }

  /** Whether a connection still uses relay path `vaddr` (crossing dials and a quick reconnect share one, a lingering close keeps it). */
  #pathInUse(vaddr: SocketAddress): boolean {
    for (const [c, l] of this.#lingering) if (l.vaddr && l.vaddr.port === vaddr.port && l.vaddr.address === vaddr.address && this.endpoint.holds(c)) return true;
    for (const c of this.#byCid.keys()) {
      const a = this.endpoint.homeAddress(c); // a connection on a direct path keeps its relayed one as the fallback
      if (a && a.port === vaddr.port && a.address === vaddr.address) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- starting connections

  /** From idle or failed: dial the address, dial the route, wait for the peer (it has the lower id), or find the route. */
  #start(now: number, s: PeerSession<A>): boolean {
    if (s.state.kind === 'failed') s.transition({ kind: 'idle' });
    if (s.direct) {
      if (!this.#o.direct) return false;
      this.#dial(now, s, s.direct);
      return true;
    }
    const relay = this.relay;
    if (s.peerId === null || !relay) return false;
    if (this.#policy.dial === 'lowerId' && this.localPeerId > s.peerId) {
      this.#waitForPeer(s, Number.POSITIVE_INFINITY);
      return true;
    }
    if (s.route) {
      this.#dial(now, s, relay.openPath(now, s.route));
      return true;
    }
    if (!this.#policy.findRoutes) return true; // no route: it stays idle until it has one (updateRoute)
    s.transition({ kind: 'findingRoute', deadlineUs: now + this.#o.timeoutInitialUs, nextLookupUs: now, inFlight: false, lastMiss: 'unreachable' });
    this.#timers.lower(s, now + this.#o.timeoutInitialUs);
    this.#routes.lookup(now, s);
    return true;
  }

  #waitForPeer(s: PeerSession<A>, untilUs: number): void {
    s.transition({ kind: 'awaitingPeer', untilUs });
    this.#timers.lower(s, untilUs);
  }

  /** Dials `vaddr` for a session (a relay path or the peer's address). */
  #dial(now: number, s: PeerSession<A>, vaddr: SocketAddress): void {
    const cid = this.endpoint.connect(now, vaddr, s.coreConfig, s.virtualPort);
    this.#byCid.set(cid, s);
    s.transition({ kind: 'connecting', cid, vaddr, incoming: false });
  }

  lookup(now: number, s: PeerSession<A>): void {
    this.#routes.lookup(now, s);
  }

  findingExpired(now: number, s: PeerSession<A>, st: Extract<SessionState, { kind: 'findingRoute' }>): void {
    this.#routes.findingExpired(now, s, st);
  }

  /** The peer that won a crossing did not connect in time. */
  peerNeverCame(now: number, s: PeerSession<A>): void {
    this.fail(now, s, ConnectionState.ProblemDetectedLocally, E.Timeout, "the peer's connection did not come after a crossing");
  }

  /** A link offer nobody accepted expired. */
  offerExpired(_now: number, s: PeerSession<A>): void {
    s.transition({ kind: 'idle' });
  }

  /** Repeats a waiting session's request. */
  repeatRequest(now: number, s: PeerSession<A>, st: Extract<SessionState, { kind: 'awaitingAccept' | 'offered' }>): void {
    st.repeatAtUs = now + REQUEST_REPEAT_US;
    this.#request(s);
  }

  /** The idle timeout: the session closes (1002, a `closed` event), unless data still moves (then it gets a second more). */
  idleTimeout(now: number, s: PeerSession<A>, idleUs: number): boolean {
    if (s.cid !== 0 && !this.#idle(now, s)) {
      s.lastUsedUs = now - idleUs + IDLE_GRACE_US;
      return false;
    }
    this.stats.idleTimeouts++;
    this.close(now, s, E.SessionIdleTimeout, 'Session Idle Timeout');
    this.#events.push({ type: 'closed', session: s, reason: E.SessionIdleTimeout });
    return true;
  }

  // ---------------------------------------------------------------- sending and in-band messages

  /** Moves queued messages onto a connected session's connection, as far as its send buffer takes them. */
  #write(now: number, s: PeerSession<A>): void {
    if (s.connected && writeOutbox(this.endpoint, now, s)) this.#pending.add(s);
    else this.#pending.delete(s);
  }



  /**
   * A lane-0 message: a route update (re-link to the peer's new relay) or a wide-channel message. Returns
   * null, or what is wrong with it (a protocol violation, which the caller handles once its batch is done).
   */
  #inBand(now: number, s: PeerSession<A>, m: ReceivedMessage, fn: (channel: number, data: Uint8Array, m: ReceivedMessage) => void): string | null {
    let msg;
    try {
      msg = decodeInBand(m.data);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      return e.message;
    }
    if (msg.type === 'channelMessage') {
      fn(msg.channel, msg.payload, m);
      return null;
    }
    if (msg.type === 'direct') {
      this.#directOffer(now, s, msg);
      return null;
    }
    this.#routes.peerRouteUpdate(now, s, msg.route);
    return null;
  }

  // ---------------------------------------------------------------- direct paths (docs/P2P.md)

  /**
   * The peer's DIRECT message. Ignored (counted) unless direct paths are allowed here and the session is
   * connected through a relay. Otherwise its candidates are probed, and ours go back once (again when a
   * relay reports a new reflexive address).
   */
  #directOffer(now: number, s: PeerSession<A>, msg: DirectOffer): void {
    this.stats.directOffersReceived++;
    const setting = this.#directSetting(s);
    const vaddr = s.vaddr;
    if (!setting || !msg.allowed || !s.connected || !vaddr || !isRelayPath(vaddr)) {
      this.stats.directOffersIgnored++;
      return;
    }
    s.directAllowedByPeer = true;
    this.endpoint.addDirectCandidates(now, s.cid, acceptedCandidates(setting, msg.candidates), setting.penaltyUs);
    this.#sendCandidates(now, s);
  }

  /** Our candidates to a peer that allows direct paths, unless they went already at this revision. */
  #sendCandidates(now: number, s: PeerSession<A>): void {
    const setting = this.#directSetting(s);
    const rev = this.relay?.reflexiveChanges ?? 0;
    if (!setting || !s.connected || s.directSentRevision === rev) return;
    s.directSentRevision = rev;
    const candidates = offeredCandidates(setting, this.#o.hostAddresses?.() ?? [], this.relay?.reflexiveAddresses() ?? []);
    this.endpoint.send(now, s.cid, encodeDirect(true, candidates), SendFlags.Reliable, 0);
    this.stats.directOffersSent++;
  }
}
