import type { KeyExchangePair } from '../../crypto/provider.js';
import { Admission } from '../../util/admission.js';
import { toHex } from '../../util/bytes.js';
import { FleetCode, MAX_RELAY_DATAGRAM, RelayMsg, tryDecodeRelayControl, type RelayControl } from '../protocol.js';
import { MIN_DRAIN_S, RelayContext, US_PER_S } from './context.js';
import { CookieJar } from './cookies.js';
import { Directory } from './directory.js';
import { Fleet, type FleetResult, type FleetWork } from './fleet.js';
import { Forwarder } from './forwarding.js';
import { LinkBroker } from './links.js';
import { SessionTable, observedAddress, type Session } from './sessions.js';
import { NodeTimer, TimerTable, nextReapScanUs } from './timers.js';
import { RouteTokens } from './tokens.js';
import { TrunkTable } from './trunks.js';
import { newRelayStats, type RelayNodeOptions, type RelayStats } from './types.js';

export type { RelayNodeOptions, RelaySend, RelayStats } from './types.js';
export type { FleetOptions, FleetOrder, FleetResult, FleetWork } from './fleet.js';
export { FLEET_REFRESH_US, FLEET_TTL_MS, fleetChannel } from './fleet.js';

/** Default of {@link RelayNodeOptions.maxSessions}. */
const DEFAULT_MAX_SESSIONS = 10_000;
/** Default of {@link RelayNodeOptions.maxLinksPerSession}. */
const DEFAULT_MAX_LINKS_PER_SESSION = 64;
/** Default of {@link RelayNodeOptions.openSessionsPerAddress}. */
const DEFAULT_OPEN_SESSIONS_PER_ADDRESS = 8;
/** Default of {@link RelayNodeOptions.openSessionsPerNetwork}. */
const DEFAULT_OPEN_SESSIONS_PER_NETWORK = 64;
/** Default of {@link RelayNodeOptions.linkRequestRate}, per session. */
const DEFAULT_LINK_REQUESTS_PER_S = 8;
/** Default of {@link RelayNodeOptions.openKbps}: 200 Mbit/s. */
const DEFAULT_OPEN_KBPS = 200_000;
/** Default of {@link RelayNodeOptions.idleTimeoutUs}: 30 s. */
const DEFAULT_IDLE_TIMEOUT_US = 30_000_000;
/** Default of {@link RelayNodeOptions.tokenLifetimeS}: 24 h. */
const DEFAULT_TOKEN_LIFETIME_S = 86_400;
/** Default of {@link RelayNodeOptions.noSessionReplyRate}, replies per second for the whole relay (as GNS). */
const DEFAULT_NO_SESSION_REPLIES_PER_S = 4;
/** Default of {@link RelayNodeOptions.dirRegisterRate}, per session. */
const DEFAULT_DIR_REGISTERS_PER_S = 4;
/** Default of {@link RelayNodeOptions.dirLookupRate}, per session. */
const DEFAULT_DIR_LOOKUPS_PER_S = 50;
/** Default of {@link RelayNodeOptions.dirClockWindowS}. */
const DEFAULT_DIR_CLOCK_WINDOW_S = 120;
/** Microseconds in a millisecond (the idle times of {@link RelayNode.sessions}). */
const US_PER_MS = 1000;

/** What {@link RelayNode.sessions} tells of a session: never its keys. */
export interface SessionSummary {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly user: string | null;
  readonly links: number;
  readonly idleMs: number;
  /** End-to-end datagrams (and their payload bytes) the session sent that were forwarded. */
  readonly upPackets: number;
  readonly upBytes: number;
  /** End-to-end datagrams (and their payload bytes) forwarded to the session. */
  readonly downPackets: number;
  readonly downBytes: number;
}

/**
 * A relay node, sans-IO (docs/RELAY.md): it holds relay sessions, each opened with a cookie, a ticket
 * and a key agreement with the relay's static key; links between sessions that both consented, named by
 * route tokens; and forwards end-to-end datagrams between linked sessions, rewriting only the hop header.
 * It never parses what it forwards. Session control travels sealed under the session's keys.
 *
 * Inputs: {@link handleDatagram}, and {@link handleTimeout} at {@link pollTimeout}. Output goes through the
 * `send` sink given at construction, not a queue to poll: a forwarded datagram is the received buffer itself,
 * rewritten in place, and leaves before `handleDatagram` returns (see {@link RelaySend}). Network input never
 * throws. The node reads no clock: `now` is integer µs of a monotonic clock, and the wall clock is an option.
 */
export class RelayNode {
  /** The node's counters, updated in place. */
  readonly stats: RelayStats = newRelayStats();
  readonly #ctx: RelayContext;
  readonly #cookies: CookieJar;
  readonly #sessions: SessionTable;
  readonly #forwarder: Forwarder;
  readonly #directory: Directory;
  readonly #links: LinkBroker;
  readonly #fleet: Fleet | null;
  readonly #trunks: TrunkTable;
  readonly #key: KeyExchangePair;
  readonly #timers = new TimerTable();
  /** The time of the last datagram, for {@link sessions}. */
  #nowUs = 0;

  constructor(options: RelayNodeOptions) {
    const ctx = (this.#ctx = new RelayContext(options.provider, options.send, options.unixSeconds, this.stats));
    const tokens = new RouteTokens(ctx.provider, ctx.unixSeconds);
    const key = (this.#key = options.staticKey ?? ctx.provider.generateKeyExchange());
    const linkRequestsPerS = options.linkRequestRate ?? DEFAULT_LINK_REQUESTS_PER_S;
    this.#cookies = new CookieJar(ctx.provider);
    const idleTimeoutUs = options.idleTimeoutUs ?? DEFAULT_IDLE_TIMEOUT_US;
    const dirRegistersPerS = options.dirRegisterRate ?? DEFAULT_DIR_REGISTERS_PER_S;
    const dirLookupsPerS = options.dirLookupRate ?? DEFAULT_DIR_LOOKUPS_PER_S;
    this.#sessions = new SessionTable(
      ctx,
      this.#cookies,
      tokens,
      {
        trust: options.ticketKeys ?? { keys: new Map(), revoked: new Set() },
        open: options.open ?? false,
        maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
        openSessionsPerAddress: options.openSessionsPerAddress ?? DEFAULT_OPEN_SESSIONS_PER_ADDRESS,
        openSessionsPerNetwork: options.openSessionsPerNetwork ?? DEFAULT_OPEN_SESSIONS_PER_NETWORK,
        openKbps: options.openKbps ?? DEFAULT_OPEN_KBPS,
        idleTimeoutUs,
        tokenLifetimeS: options.tokenLifetimeS ?? DEFAULT_TOKEN_LIFETIME_S,
        noSessionRepliesPerS: options.noSessionReplyRate ?? DEFAULT_NO_SESSION_REPLIES_PER_S,
        dirRegistersPerS,
        dirLookupsPerS,
        linkRequestsPerS,
      },
      key,
      (s) => {
        this.#forwarder.unlink(s);
        this.#trunks.sessionGone(s);
        this.#directory.forget(s);
        this.#fleet?.sessionGone(s);
      },
    );
    const maxLinks = options.maxLinksPerSession ?? DEFAULT_MAX_LINKS_PER_SESSION;
    this.#fleet = options.fleet ? new Fleet(ctx, this.#sessions, options.fleet) : null;
    this.#trunks = new TrunkTable(ctx, this.#sessions, this.#fleet, key, maxLinks, idleTimeoutUs);
    this.#forwarder = new Forwarder(ctx, this.#sessions, this.#trunks, maxLinks, idleTimeoutUs);
    const links = (this.#links = new LinkBroker(ctx, this.#sessions, this.#forwarder, this.#trunks, key.publicKey, linkRequestsPerS));
    this.#trunks.host = { linkRequest: (now, t, m) => links.trunkRequest(now, t, m), gone: (t) => links.trunkGone(t) };
    this.#directory = new Directory(ctx, this.#sessions, { registersPerS: dirRegistersPerS, lookupsPerS: dirLookupsPerS, clockWindowS: options.dirClockWindowS ?? DEFAULT_DIR_CLOCK_WINDOW_S }, this.#fleet);
    // The first registry record goes out at the first handleTimeout.
    if (this.#fleet) this.#timers.arm(NodeTimer.FleetRefresh, 0);
  }

  /** The relay's static public key: clients name it with the relay's address. */
  get publicKey(): Uint8Array {
    return this.#key.publicKey;
  }

  /** Sessions held. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Links between sessions. */
  get linkCount(): number {
    return this.#forwarder.linkCount();
  }

  /** Seconds until the drain deadline, 0 when not draining. */
  drainSeconds(now: number): number {
    return this.#ctx.drainSeconds(now);
  }

  /** Starts draining: no new sessions; clients are told the deadline in every PONG and keepalive answer. */
  drain(now: number, seconds: number): void {
    this.#ctx.drainUntilUs = now + Math.max(MIN_DRAIN_S, seconds) * US_PER_S;
    this.#timers.arm(NodeTimer.DrainDeadline, this.#ctx.drainUntilUs);
    // The fleet learns at once that this relay drains.
    if (this.#fleet) this.#timers.arm(NodeTimer.FleetRefresh, now);
  }

  // ---------------------------------------------------------------- fleet

  /** Whether this node is in a fleet (was given {@link RelayNodeOptions.fleet}). */
  get inFleet(): boolean {
    return this.#fleet !== null;
  }

  /** Whether store work waits for {@link pollFleet}: an io runner asks after each input. */
  get fleetBusy(): boolean {
    return this.#fleet?.busy ?? false;
  }

  /** Whether the fleet's store answered the last question asked of it. */
  get fleetStoreUp(): boolean {
    return this.#fleet?.storeUp ?? false;
  }

  /**
   * The next piece of store work, or null (always null outside a fleet). The io runner carries it to the store and
   * hands the answer, however late, to {@link handleFleetResult}; the node never waits for it.
   */
  pollFleet(): FleetWork | null {
    return this.#fleet?.poll() ?? null;
  }

  /** The store's answer to a {@link pollFleet} work item (named by its id). An answer to nothing pending is dropped. */
  handleFleetResult(now: number, result: FleetResult): void {
    this.#nowUs = now;
    const fleet = this.#fleet;
    if (!fleet) return;
    fleet.result(now, result);
    if (fleet.takeMembersRead()) this.#trunks.membersRead(now);
    // The store is back: the registry record and every entry are written again at the next timer, not after a refresh period.
    if (fleet.takeRejoin()) this.#timers.arm(NodeTimer.FleetRefresh, now);
  }

  /** The pub/sub channels an io runner subscribes this node to (empty outside a fleet): revocation and drain. */
  get fleetChannels(): readonly string[] {
    return this.#fleet?.channels ?? [];
  }

  /**
   * A message published on one of {@link fleetChannels} (docs/RELAY.md "Revocation and drain"): a ticket key or a
   * ticket revoked (refused from now on, and its sessions closed at once), or a drain of this relay (or of every
   * relay). One that does not parse is counted (`fleetBadMessages`) and changes nothing.
   */
  handleFleetMessage(now: number, channel: string, message: string): void {
    this.#nowUs = now;
    const order = this.#fleet?.order(channel, message);
    if (!order) return;
    if (order.kind === 'drain') this.drain(now, order.seconds);
    else this.#sessions.revoke(now, 'keyId' in order ? { keyId: order.keyId } : { ticketId: order.ticketId });
  }

  /** Leaving the fleet (closing): the registry record is deleted (work for {@link pollFleet}). */
  leaveFleet(): void {
    this.#fleet?.leave();
  }

  /** Whether a drain is finished: every session gone or the deadline passed. */
  drained(now: number): boolean {
    const until = this.#ctx.drainUntilUs;
    return until !== 0 && (this.#sessions.size === 0 || now >= until);
  }

  // ---------------------------------------------------------------- input

  /**
   * What a datagram is to an io runner's admission control (docs/RUNTIME.md "Under a flood"): a
   * SESSION_REQUEST returns a cookie (`Cookie`), a PING costs a cookie and a PONG (`New`), both before any
   * session exists; everything else is for a session, or dropped for the price of a lookup (`Now`). Reads one byte.
   */
  admission(data: Uint8Array): Admission {
    const type = data[0];
    return type === RelayMsg.SessionRequest ? Admission.Cookie : type === RelayMsg.Ping || type === RelayMsg.TrunkHello ? Admission.New : Admission.Now;
  }

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
    switch (data[0]) {
      case RelayMsg.DataUp:
        this.#forwarder.forward(now, address, port, data);
        return;
      case RelayMsg.TrunkData:
        this.#trunks.forward(now, address, port, data);
        return;
      case RelayMsg.Sealed: {
        const got = this.#sessions.sealed(now, address, port, data);
        if (got) this.#sealed(now, got.s, got.m, got.counter);
        return;
      }
      case RelayMsg.TrunkSealed:
        this.#trunks.sealed(now, address, port, data);
        if (this.#fleet?.busy) this.#timers.armBy(NodeTimer.ReapScan, nextReapScanUs(now));
        return;
      case RelayMsg.TrunkHello:
        this.#trunks.hello(now, address, port, data);
        this.#armTrunks(now);
        return;
      case RelayMsg.TrunkOk:
        this.#trunks.ok(now, address, port, data);
        return;
    }
    const m = tryDecodeRelayControl(data);
    if (!m) {
      st.malformed++;
      return;
    }
    switch (m.type) {
      case 'ping':
        st.pings++;
        // 33 bytes for a request of at least 512: never an amplifier, and no state kept.
        this.#ctx.reply({ type: 'pong', nonce: m.nonce, cookie: this.#cookies.issue(now, address, port), load: this.#sessions.load(), drainSeconds: this.#ctx.drainSeconds(now) }, port, address);
        return;
      case 'sessionRequest':
        this.#sessions.request(now, address, port, m);
        // A first session (or binding) starts the reap scan; one already armed keeps its time.
        if (!this.#sessions.empty) this.#timers.armBy(NodeTimer.ReapScan, nextReapScanUs(now));
        return;
      default:
        // Only PING and SESSION_REQUEST travel in the clear from a client; the rest must be sealed.
        st.malformed++;
    }
  }

  /** A sealed control message from a session's validated address. */
  #sealed(now: number, s: Session, m: RelayControl, counter: number): void {
    const sessions = this.#sessions;
    switch (m.type) {
      case 'keepalive':
        sessions.send(s, { type: 'keepaliveAck', seq: m.seq, drainSeconds: this.#ctx.drainSeconds(now), load: sessions.load(), observed: observedAddress(s) });
        return;
      case 'linkRequest':
        this.#links.request(now, s, m);
        return;
      case 'linkRemote':
        this.#links.remote(now, s, m);
        this.#armTrunks(now);
        return;
      case 'linkAnswer':
        this.#links.answer(now, s, m, counter);
        return;
      case 'permit':
        this.#links.permit(now, s, m, counter);
        return;
      case 'rotateToken':
        sessions.rotateToken(s, m.requestId);
        return;
      case 'unlink':
        this.#forwarder.cut(s, m.linkId);
        return;
      case 'dirRegister':
        this.#directory.register(now, s, m);
        return;
      case 'dirLookup':
        this.#directory.lookup(now, s, m);
        if (this.#fleet?.waiting) this.#timers.armBy(NodeTimer.ReapScan, nextReapScanUs(now));
        return;
      case 'fleetList':
        this.#fleetList(now, s, m);
        return;
      case 'closeSession':
        sessions.close(now, s);
        return;
      default:
        // A PATH_RESPONSE from the session's own address answers nothing.
        this.stats.unauthenticated++;
    }
  }

  /** Trunks are timed by the reap scan: armed once there is one (or a registry read it waits for). */
  #armTrunks(now: number): void {
    if (this.#trunks.size > 0 || this.#fleet?.waiting) this.#timers.armBy(NodeTimer.ReapScan, nextReapScanUs(now));
  }

  /** The other relays this one has an open trunk with (`host:port` as their frames come from), for status and tests. */
  trunkPeers(): string[] {
    return this.#trunks.peers();
  }

  /** FLEET_LIST: from the store in a fleet (costs a lookup of the session's budget), NO_FLEET outside one. */
  #fleetList(now: number, s: Session, m: Extract<RelayControl, { type: 'fleetList' }>): void {
    if (!this.#fleet) {
      this.#sessions.send(s, { type: 'fleetListResult', requestId: m.requestId, code: FleetCode.NoFleet, total: 0, offset: m.offset, relays: [] });
      return;
    }
    if (!this.#directory.spendLookup(now, s)) {
      this.#sessions.send(s, { type: 'fleetListResult', requestId: m.requestId, code: FleetCode.RateLimited, total: 0, offset: m.offset, relays: [] });
      return;
    }
    this.#fleet.list(now, s, m);
    this.#timers.armBy(NodeTimer.ReapScan, nextReapScanUs(now));
  }

  /** The route registered for a peer id on this relay, or null (for status output and tests). */
  lookup(peerId: bigint): string | null {
    return this.#directory.route(peerId);
  }

  // ---------------------------------------------------------------- timers

  /**
   * The absolute time (µs) at which {@link handleTimeout} must next run, or null while no timer is armed (no
   * session, no ticket binding, no drain pending). It is the earliest row of the node's timer table: the reap
   * scan, every 250 ms while there are sessions or bindings, and the drain deadline. Never earlier than `now`.
   *
   * An io runner keeps one timer at this time and asks again after each `handleTimeout`. Datagrams never move
   * it earlier once it is finite, so a runner need not ask after each datagram while its timer is armed, only
   * when it has none (the first session arms the reap scan) and after {@link drain}.
   */
  pollTimeout(now: number): number | null {
    const at = this.#timers.next();
    return at === Number.POSITIVE_INFINITY ? null : Math.max(now, at);
  }

  /** Runs the timers that are due at `now`: the reap scan (idle sessions, expired ticket bindings) and the drain deadline. */
  handleTimeout(now: number): void {
    const timers = this.#timers;
    if (timers.isDue(NodeTimer.ReapScan, now)) {
      this.#sessions.reap(now);
      this.#links.expire(now);
      this.#fleet?.expire(now);
      this.#trunks.tick(now);
      if (this.#sessions.empty && this.#trunks.size === 0 && !this.#fleet?.waiting) timers.disarm(NodeTimer.ReapScan);
      else timers.arm(NodeTimer.ReapScan, nextReapScanUs(now));
    }
    if (timers.isDue(NodeTimer.DrainDeadline, now)) {
      this.#sessions.removeAll(now);
      timers.disarm(NodeTimer.DrainDeadline);
    }
    if (this.#fleet && timers.isDue(NodeTimer.FleetRefresh, now)) {
      this.#fleet.expire(now);
      this.#fleet.announce(now);
      this.#directory.refreshFleet(now);
      timers.arm(NodeTimer.FleetRefresh, now + this.#fleet.refreshUs);
    }
  }

  /** Session summaries, for `netlane relay` status lines and tests. Never includes keys. */
  sessions(): SessionSummary[] {
    return [...this.#sessions.values()].map((s) => ({
      id: toHex(s.id),
      address: s.address,
      port: s.port,
      user: s.user,
      links: s.linkCount,
      idleMs: Math.round((this.#nowUs - s.lastSeenUs) / US_PER_MS),
      upPackets: s.upPackets,
      upBytes: s.upBytes,
      downPackets: s.downPackets,
      downBytes: s.downBytes,
    }));
  }
}
