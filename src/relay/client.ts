import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { SocketAddress } from '../core/types.js';
import type { CryptoProvider, SigningKey } from '../crypto/provider.js';
import { bytesEqual } from '../crypto/provider.js';
import { monotonicUs, type Clock } from '../io/clock.js';
import type { DatagramTransport } from '../io/driver.js';
import { literalLookup } from '../io/udp.js';
import { NetlaneError } from '../util/errors.js';
import { WireError } from '../wire/errors.js';
import {
  DirCode,
  PATH_MAC_BYTES,
  RelayMsg,
  ROUTE_VERSION,
  UP_HEADER_BYTES,
  addressKey,
  decodeRelayControl,
  decodeRoute,
  dirRegisterSigned,
  encodeRelayControl,
  encodeRoute,
  type RelayControl,
  type Route,
} from './protocol.js';

/** Options of a {@link RelayClient}. */
export interface RelayClientOptions {
  /** The relays to use: pinged at start, the best becomes the primary, the next the backup. */
  readonly relays: readonly SocketAddress[];
  /** The operator's ticket; none for relays in `--open` mode. */
  readonly ticket?: Uint8Array | null;
  /** Local IP to bind. Default `0.0.0.0` (or `::` if a relay is IPv6). */
  readonly bindAddress?: string;
  readonly provider: CryptoProvider;
  readonly clock?: Clock;
  /** Called when this client's own route changes (a new primary or backup relay, a new session). */
  readonly onRoute?: (route: string, parsed: Route) => void;
  /** Keepalive to the primary relay, ms. Default 200. Backup and other relays get one a second. */
  readonly keepaliveMs?: number;
  /** A relay not heard from for this long is dead, ms. Default 1200. */
  readonly relayTimeoutMs?: number;
  /** How often every configured relay is pinged to look for a better one, ms. Default 5000. */
  readonly probeIntervalMs?: number;
  /** A relay must be this much better (ms and fraction) for this long (ms) before the primary moves. Default 10 ms, 10 %, 10 s. */
  readonly hysteresis?: { readonly ms: number; readonly fraction: number; readonly holdMs: number };
  /** Sees every datagram received, before any processing (for audits: the IP privacy test). */
  readonly tap?: (data: Uint8Array, from: SocketAddress) => void;
  /** Keep the process alive while the client runs. Default false. */
  readonly keepProcessAlive?: boolean;
  /**
   * Registers this key's peer id and the client's route in the identity directory of every relay in the
   * route, and again whenever the route changes. Without it, nothing is registered (lookups still work).
   */
  readonly directoryKey?: SigningKey;
  /** Wall clock, unix seconds, for directory registrations. Default: the system clock. */
  readonly unixSeconds?: () => number;
}

/** How a directory lookup ended: the route, or why there is none. */
export type LookupResult = { readonly ok: true; readonly route: string; readonly parsed: Route } | { readonly ok: false; readonly why: 'notFound' | 'unreachable' | 'noRelay' };

/** Counters of a relay client. */
export interface RelayClientStats {
  datagramsSent: number;
  datagramsReceived: number;
  /** End-to-end datagrams with no usable link yet (queued up to a bound, then dropped). */
  noLinkDrops: number;
  /** Datagrams from an address that is not a relay we use, or malformed relay messages. */
  refused: number;
  relayDeaths: number;
  primaryChanges: number;
  relinks: number;
  linkFailures: number;
  pathChallengesAnswered: number;
  sessionsRefused: number;
  /** Directory registrations a relay accepted / refused. */
  dirRegistered: number;
  dirRegisterRefused: number;
  dirLookups: number;
}

interface Lookup {
  readonly peerId: bigint;
  readonly requestId: number;
  readonly done: ((r: LookupResult) => void)[];
  /** Relays still to ask, in order; the head is being asked. */
  readonly relays: RelayState[];
  sentUs: number;
  tries: number;
  notFound: boolean;
}

type SessionPhase = 'none' | 'pinging' | 'requesting' | 'open';

interface RelayState {
  readonly addr: SocketAddress;
  readonly key: string;
  /** `addr.address` as the socket takes it (IPv4-mapped on a dual-stack socket). */
  readonly sendAddress: string;
  readonly configured: boolean;
  /** Recent round-trip samples, µs (pongs and keepalive answers). */
  readonly rtts: number[];
  phase: SessionPhase;
  cookie: Uint8Array | null;
  pingNonce: Uint8Array;
  pingSentUs: number;
  pingTries: number;
  clientNonce: Uint8Array;
  requestSentUs: number;
  requestTries: number;
  sessionId: Uint8Array | null;
  sessionKey: Uint8Array | null;
  token: Uint8Array | null;
  lastHeardUs: number;
  keepaliveSeq: number;
  keepaliveSentUs: number;
  /** Keepalive seq -> time sent, for RTT (only the latest is kept). */
  keepaliveSeqSentUs: number;
  /** The relay announced a drain deadline, or stopped answering: not used for new paths until it answers again. */
  draining: boolean;
  dead: boolean;
  retryAtUs: number;
  betterSinceUs: number;
  /** Paths by this relay's link id, for received data. */
  readonly links: (Path | undefined)[];
  /** Time the last path on it went away (extra sessions close after a while). */
  idleSinceUs: number;
  /** The route registered in this relay's directory (acknowledged), and one in flight. */
  dirRoute: string | null;
  dirPending: string | null;
  dirRequestId: number;
  dirSentUs: number;
  dirTries: number;
  /** After a refusal or no answer, the next registration waits until then. */
  dirRetryAtUs: number;
}

interface Path {
  /** The address the endpoint sees: stable for the life of the path, whatever relay carries it. */
  readonly vaddr: SocketAddress;
  /** The peer's route, when known: where to re-link after a relay fails. */
  route: Route | null;
  relay: RelayState | null;
  linkId: number;
  /** Hop header for this link (type, session id, link id). */
  header: Buffer;
  /** A link request in flight. */
  pendingRelay: RelayState | null;
  requestId: number;
  requestSentUs: number;
  requestTries: number;
  readonly queue: Uint8Array[];
  /** Made by the peer's link request (we learnt it from data), not by us. */
  readonly incoming: boolean;
}

const MAX_QUEUED = 64;
const VIRTUAL_ADDRESS = 'relay';
const PATH_LABEL = new TextEncoder().encode('netlane-relay-path');
const TICK_MS = 50;

/**
 * The client side of the relay network (DESIGN.md section 6, docs/RELAY.md), as a {@link DatagramTransport}
 * under a normal endpoint: the end-to-end handshake and data run over relay links, encrypted end to end.
 *
 * The endpoint sees one stable virtual address per path (`relay:N`); underneath, the client pings the
 * relays, holds a primary and a backup session, publishes its route, links to peers' route tokens, fails
 * over when a relay dies or drains, moves to a better relay with hysteresis, and answers the relay's path
 * challenges when its own address changes (NAT rebinding), which leaves the route as it was.
 */
export class RelayClient implements DatagramTransport {
  local: SocketAddress;
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
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
  readonly #p: CryptoProvider;
  readonly #clock: Clock;
  readonly #ticket: Uint8Array;
  readonly #relays = new Map<string, RelayState>();
  readonly #relayList: RelayState[] = [];
  readonly #paths = new Map<number, Path>();
  readonly #onRoute: ((route: string, parsed: Route) => void) | undefined;
  readonly #tap: ((data: Uint8Array, from: SocketAddress) => void) | undefined;
  readonly #keepaliveUs: number;
  readonly #timeoutUs: number;
  readonly #probeUs: number;
  readonly #hyst: { readonly ms: number; readonly fraction: number; readonly holdMs: number };
  readonly #bind: string;
  readonly #keepAlive: boolean;
  readonly #dirKey: SigningKey | null;
  readonly #unixSeconds: () => number;
  readonly #lookups = new Map<number, Lookup>();
  #closing: { readonly vaddr: SocketAddress; readonly atUs: number; readonly stillUsed: () => boolean }[] = [];
  #sock: dgram.Socket;
  readonly #mapped: boolean;
  #timer: ReturnType<typeof setInterval>;
  #primary: RelayState | null = null;
  #backup: RelayState | null = null;
  #revision = 0;
  #route: string | null = null;
  #routeParsed: Route | null = null;
  #nextVport = 1;
  #nextRequestId = 1;
  #lastProbeUs = 0;
  #closed = false;

  constructor(options: RelayClientOptions) {
    if (options.relays.length === 0) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'at least one relay is needed');
    this.#p = options.provider;
    this.#clock = options.clock ?? monotonicUs;
    this.#ticket = options.ticket ?? new Uint8Array(0);
    this.#onRoute = options.onRoute;
    this.#tap = options.tap;
    this.#keepaliveUs = (options.keepaliveMs ?? 200) * 1000;
    this.#timeoutUs = (options.relayTimeoutMs ?? 1200) * 1000;
    this.#probeUs = (options.probeIntervalMs ?? 5000) * 1000;
    this.#hyst = options.hysteresis ?? { ms: 10, fraction: 0.1, holdMs: 10_000 };
    this.#keepAlive = options.keepProcessAlive ?? false;
    this.#dirKey = options.directoryKey ?? null;
    this.#unixSeconds = options.unixSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.#bind = options.bindAddress ?? (options.relays.some((r) => isIP(r.address) === 6) ? '::' : '0.0.0.0');
    this.#mapped = isIP(this.#bind) === 6;
    for (const r of options.relays) this.#relay(r, true);
    this.#sock = this.#open();
    const a = this.#sock.address();
    this.local = { address: a.address, port: a.port };
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    if (!this.#keepAlive) this.#timer.unref();
    const now = this.#clock();
    for (const r of this.#relayList) this.#ping(r, now);
  }

  #open(): dgram.Socket {
    const sock = dgram.createSocket({ type: isIP(this.#bind) === 6 ? 'udp6' : 'udp4', ipv6Only: false, lookup: literalLookup as never, recvBufferSize: 4 << 20, sendBufferSize: 1 << 20 });
    let failure: Error | null = null;
    sock.once('error', (e) => (failure = e));
    sock.bind({ address: this.#bind, port: 0, exclusive: true });
    if (failure) {
      sock.close();
      throw new NetlaneError('ERR_NETLANE_SOCKET', `cannot open relay client socket on ${this.#bind}: ${(failure as Error).message}`);
    }
    sock.on('error', () => undefined);
    sock.on('message', (msg, rinfo) => this.#receive(msg, rinfo.address, rinfo.port));
    if (!this.#keepAlive) sock.unref();
    return sock;
  }

  // ---------------------------------------------------------------- public

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

  /**
   * A path to the peer that owns `route`: returns the virtual address to give the endpoint at once;
   * datagrams sent before the link is up are queued (a few) and leave when it is.
   */
  openPath(route: Route): SocketAddress {
    const path = this.#newPath(false);
    path.route = route;
    this.#relink(path, this.#clock());
    return path.vaddr;
  }

  /**
   * A newer route for the peer behind `vaddr` (updatePeer, or the peer's in-band announcement). The
   * path moves when the relay it uses is not in the new route or is failing; otherwise it stays.
   */
  updatePath(vaddr: SocketAddress, route: Route): void {
    const path = this.#paths.get(vaddr.port);
    if (!path || (path.route && route.revision <= path.route.revision)) return;
    path.route = route;
    const usable = path.relay && !path.relay.dead && !path.relay.draining && route.entries.some((e) => addressKey(e.relay) === path.relay?.key);
    if (!usable) this.#relink(path, this.#clock());
  }

  /** Forgets a path (its connection is gone). */
  closePath(vaddr: SocketAddress): void {
    const path = this.#paths.get(vaddr.port);
    if (!path) return;
    this.#paths.delete(vaddr.port);
    if (path.relay && path.relay.links[path.linkId] === path) path.relay.links[path.linkId] = undefined;
  }

  /**
   * Looks a peer id up in the identity directory: asks the primary relay, then every other relay this
   * client has a session with, until one knows it. `done` gets the route, or notFound (no relay has it),
   * unreachable (no relay answered) or noRelay (no relay session is open).
   */
  lookup(peerId: bigint, done: (r: LookupResult) => void): void {
    for (const l of this.#lookups.values()) {
      if (l.peerId === peerId) {
        l.done.push(done);
        return;
      }
    }
    const relays = this.#closed ? [] : this.#relayList.filter((r) => r.phase === 'open' && !r.dead).sort((a, b) => (a === this.#primary ? -1 : b === this.#primary ? 1 : 0));
    if (relays.length === 0) {
      done({ ok: false, why: 'noRelay' });
      return;
    }
    const l: Lookup = { peerId, requestId: (this.#nextRequestId = (this.#nextRequestId % 0xffff) + 1), done: [done], relays, sentUs: 0, tries: 0, notFound: false };
    this.#lookups.set(l.requestId, l);
    this.#askLookup(l, this.#clock());
  }

  /** Whether every relay in this client's route has acknowledged its current directory registration. */
  get registered(): boolean {
    const route = this.#route;
    if (!route || !this.#dirKey) return false;
    return [this.#primary, this.#backup].every((r) => r === null || r.phase !== 'open' || r.dirRoute === route);
  }

  /**
   * Forgets a path after `lingerMs`, so that what the endpoint queued on it just now (a close) still leaves,
   * unless `stillUsed()` says by then that a connection uses the path again (crossing dials share a path).
   */
  closePathLater(vaddr: SocketAddress, stillUsed: () => boolean, lingerMs = 500): void {
    this.#closing.push({ vaddr, atUs: this.#clock() + lingerMs * 1000, stillUsed });
  }

  /** Which relay carries a path now (for stats and tests), or null. */
  pathRelay(vaddr: SocketAddress): SocketAddress | null {
    return this.#paths.get(vaddr.port)?.relay?.addr ?? null;
  }

  /** Round-trip estimates to the relays, ms (median of recent samples); -1 if none. */
  relayPings(): { relay: SocketAddress; pingMs: number; session: boolean; primary: boolean; dead: boolean; draining: boolean }[] {
    return this.#relayList.map((r) => ({ relay: r.addr, pingMs: r.rtts.length ? Math.round(median(r.rtts) / 100) / 10 : -1, session: r.phase === 'open', primary: r === this.#primary, dead: r.dead, draining: r.draining }));
  }

  /**
   * Moves to a new local port, as a NAT rebinding would: the relays see datagrams from a new address,
   * challenge it, and move the sessions once it answers. The route does not change.
   */
  rebind(): void {
    const old = this.#sock;
    this.#sock = this.#open();
    const a = this.#sock.address();
    this.local = { address: a.address, port: a.port };
    old.close();
    const now = this.#clock();
    for (const r of this.#relayList) if (r.phase === 'open') this.#keepalive(r, now);
  }

  send(data: Uint8Array, to: SocketAddress): void {
    const path = this.#paths.get(to.port);
    if (!path || this.#closed) {
      this.stats.noLinkDrops++;
      return;
    }
    const r = path.relay;
    if (!r || r.phase !== 'open' || path.linkId < 0) {
      if (path.queue.length < MAX_QUEUED) path.queue.push(data);
      else this.stats.noLinkDrops++;
      return;
    }
    this.stats.datagramsSent++;
    this.#sock.send([path.header, data], r.addr.port, r.sendAddress);
  }

  keepProcessAlive(yes: boolean): void {
    if (yes) {
      this.#sock.ref();
      this.#timer.ref();
    } else {
      this.#sock.unref();
      this.#timer.unref();
    }
  }

  /** Closes the relay sessions (telling the relays) and the socket. */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#timer);
    for (const r of this.#relayList) if (r.sessionId && r.phase === 'open') this.#sendControl(r, { type: 'closeSession', sessionId: r.sessionId });
    this.#closed = true;
    this.#sock.close();
  }

  // ---------------------------------------------------------------- relays and sessions

  #relay(addr: SocketAddress, configured: boolean): RelayState {
    const key = addressKey(addr);
    let r = this.#relays.get(key);
    if (r) return r;
    r = {
      addr: { address: addr.address, port: addr.port },
      key,
      sendAddress: this.#mapped && addr.address.indexOf(':') < 0 ? `::ffff:${addr.address}` : addr.address,
      configured,
      rtts: [],
      phase: 'none',
      cookie: null,
      pingNonce: new Uint8Array(8),
      pingSentUs: 0,
      pingTries: 0,
      clientNonce: new Uint8Array(8),
      requestSentUs: 0,
      requestTries: 0,
      sessionId: null,
      sessionKey: null,
      token: null,
      lastHeardUs: 0,
      keepaliveSeq: 0,
      keepaliveSentUs: 0,
      keepaliveSeqSentUs: 0,
      draining: false,
      dead: false,
      retryAtUs: 0,
      betterSinceUs: -1,
      links: [],
      idleSinceUs: -1,
      dirRoute: null,
      dirPending: null,
      dirRequestId: 0,
      dirSentUs: 0,
      dirTries: 0,
      dirRetryAtUs: 0,
    };
    this.#relays.set(key, r);
    this.#relayList.push(r);
    return r;
  }

  #sendControl(r: RelayState, m: RelayControl): void {
    if (this.#closed) return; // a path opened after close() goes nowhere
    const b = encodeRelayControl(m);
    this.stats.datagramsSent++;
    this.#sock.send(b, r.addr.port, r.sendAddress);
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
    r.keepaliveSeqSentUs = now;
    this.#sendControl(r, { type: 'keepalive', sessionId: r.sessionId, seq: r.keepaliveSeq });
  }

  #sample(r: RelayState, rttUs: number): void {
    r.rtts.push(rttUs);
    if (r.rtts.length > 5) r.rtts.shift();
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
    r.dirRoute = null;
    r.dirPending = null;
    r.retryAtUs = now + (dead ? 2_000_000 : 0);
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

  /** Picks the primary and backup among the relays; publishes a new route when they change. */
  #choose(now: number): void {
    const usable = (r: RelayState | null): r is RelayState => r !== null && !r.dead && !r.draining;
    const byRtt = this.#relayList.filter((r) => r.configured && usable(r) && r.rtts.length > 0).sort((a, b) => median(a.rtts) - median(b.rtts));
    let primary = this.#primary;
    if (!usable(primary)) {
      // Fail over: the backup if its session is open, else the best relay that answers.
      primary = usable(this.#backup) && this.#backup.phase === 'open' ? this.#backup : (byRtt[0] ?? null);
    } else if (primary.phase === 'open') {
      const better = this.#betterThan(primary, byRtt, now);
      if (better) primary = better;
    }
    let backup = usable(this.#backup) && this.#backup !== primary ? this.#backup : (byRtt.find((r) => r !== primary) ?? null);
    if (backup === primary) backup = null;
    if (primary !== this.#primary) {
      if (this.#primary) this.stats.primaryChanges++;
      this.#primary = primary;
    }
    this.#backup = backup;
    if (primary) this.#wantSession(primary, now);
    if (backup) this.#wantSession(backup, now);
    this.#publish();
  }

  /** A relay clearly better than the primary for long enough (hysteresis), or null. */
  #betterThan(primary: RelayState, byRtt: readonly RelayState[], now: number): RelayState | null {
    const p = primary.rtts.length ? median(primary.rtts) : Infinity;
    let pick: RelayState | null = null;
    for (const r of byRtt) {
      if (r === primary) continue;
      const better = clearlyBetter(median(r.rtts), p, this.#hyst.ms * 1000, this.#hyst.fraction);
      if (!better) {
        r.betterSinceUs = -1;
        continue;
      }
      if (r.betterSinceUs < 0) r.betterSinceUs = now;
      if (!pick && now - r.betterSinceUs >= this.#hyst.holdMs * 1000 && r.phase === 'open') pick = r;
      else if (r.phase === 'none') this.#wantSession(r, now); // warm it up before moving
    }
    if (pick) pick.betterSinceUs = -1;
    return pick;
  }

  #publish(): void {
    const entries = [this.#primary, this.#backup].filter((r): r is RelayState => r !== null && r.phase === 'open' && r.token !== null).map((r) => ({ relay: r.addr, token: r.token as Uint8Array }));
    if (entries.length === 0 || this.#primary?.phase !== 'open') return;
    const next: Route = { version: ROUTE_VERSION, revision: this.#revision + 1, entries };
    const cur = this.#routeParsed;
    if (cur && cur.entries.length === entries.length && cur.entries.every((e, i) => addressKey(e.relay) === addressKey((entries[i] as { relay: SocketAddress }).relay) && bytesEqual(e.token, (entries[i] as { token: Uint8Array }).token))) return;
    this.#revision = next.revision;
    this.#routeParsed = next;
    this.#route = encodeRoute(next);
    this.#register(this.#clock());
    this.#onRoute?.(this.#route, next);
  }

  // ---------------------------------------------------------------- the identity directory

  /** Registers the current route with every relay in it that has not acknowledged it yet. */
  #register(now: number): void {
    const route = this.#route;
    if (!route || !this.#dirKey) return;
    for (const r of [this.#primary, this.#backup]) {
      if (!r || r.phase !== 'open' || r.dirRoute === route || r.dirPending === route || now < r.dirRetryAtUs) continue;
      r.dirPending = route;
      r.dirTries = 0;
      r.dirRequestId = this.#nextRequestId = (this.#nextRequestId % 0xffff) + 1;
      this.#sendRegister(r, now);
    }
  }

  #sendRegister(r: RelayState, now: number): void {
    const key = this.#dirKey;
    const route = r.dirPending;
    if (!key || !route || !r.sessionId) return;
    const t = this.#unixSeconds();
    r.dirSentUs = now;
    r.dirTries++;
    const signature = this.#p.sign(key, dirRegisterSigned(key.publicKey, t, route));
    this.#sendControl(r, { type: 'dirRegister', sessionId: r.sessionId, requestId: r.dirRequestId, unixSeconds: t, publicKey: key.publicKey, route, signature });
  }

  #askLookup(l: Lookup, now: number): void {
    const r = l.relays[0];
    if (!r || !r.sessionId || r.phase !== 'open') {
      this.#endLookup(l, { ok: false, why: l.notFound ? 'notFound' : 'unreachable' });
      return;
    }
    l.sentUs = now;
    l.tries++;
    this.stats.dirLookups++;
    this.#sendControl(r, { type: 'dirLookup', sessionId: r.sessionId, requestId: l.requestId, peerId: l.peerId });
  }

  /** The relay at the head of the lookup's list did not know the id, or did not answer: ask the next. */
  #nextLookupRelay(l: Lookup, now: number): void {
    l.relays.shift();
    l.tries = 0;
    this.#askLookup(l, now);
  }

  #endLookup(l: Lookup, result: LookupResult): void {
    this.#lookups.delete(l.requestId);
    for (const fn of l.done) fn(result);
  }

  // ---------------------------------------------------------------- paths and links

  #newPath(incoming: boolean): Path {
    const vport = this.#nextVport++;
    const path: Path = { vaddr: { address: VIRTUAL_ADDRESS, port: vport }, route: null, relay: null, linkId: -1, header: Buffer.alloc(UP_HEADER_BYTES), pendingRelay: null, requestId: 0, requestTries: 0, requestSentUs: 0, queue: [], incoming };
    this.#paths.set(vport, path);
    return path;
  }

  /** Links `path` through the first relay of its route that is alive, opening a session there if needed. */
  #relink(path: Path, now: number): void {
    const route = path.route;
    if (!route) return; // a path the peer made: it re-links, or tells us its new route
    let target: RelayState | null = null;
    for (const e of route.entries) {
      const r = this.#relay(e.relay, false);
      if (!r.dead && !r.draining) {
        target = r;
        break;
      }
    }
    if (!target) return;
    if (path.relay === target && path.linkId >= 0) return;
    path.pendingRelay = target;
    path.requestTries = 0;
    path.requestId = this.#nextRequestId = (this.#nextRequestId % 0xffff) + 1;
    if (target.phase === 'open') this.#requestLink(path, target, now);
    else this.#wantSession(target, now);
  }

  #tokenFor(path: Path, r: RelayState): Uint8Array | null {
    return path.route?.entries.find((e) => addressKey(e.relay) === r.key)?.token ?? null;
  }

  #requestLink(path: Path, r: RelayState, now: number): void {
    const token = this.#tokenFor(path, r);
    if (!token || !r.sessionId) return;
    path.requestSentUs = now;
    path.requestTries++;
    this.#sendControl(r, { type: 'linkRequest', sessionId: r.sessionId, requestId: path.requestId, token });
  }

  #bindLink(path: Path, r: RelayState, linkId: number): void {
    if (path.relay && path.relay.links[path.linkId] === path) path.relay.links[path.linkId] = undefined;
    if (path.relay) this.stats.relinks++;
    path.relay = r;
    path.linkId = linkId;
    path.pendingRelay = null;
    r.links[linkId] = path;
    r.idleSinceUs = -1;
    const h = path.header;
    h[0] = RelayMsg.DataUp;
    h.set(r.sessionId as Uint8Array, 1);
    h[9] = linkId >>> 8;
    h[10] = linkId & 0xff;
    const q = path.queue.splice(0);
    for (const d of q) this.send(d, path.vaddr);
  }

  // ---------------------------------------------------------------- receive

  #receive(msg: Buffer, rawAddress: string, port: number): void {
    if (this.#closed) return;
    const address = this.#mapped && rawAddress.startsWith('::ffff:') && rawAddress.includes('.') ? rawAddress.slice(7) : rawAddress;
    this.#tap?.(msg, { address, port });
    this.stats.datagramsReceived++;
    let r: RelayState | undefined;
    for (const x of this.#relayList) {
      if (x.addr.port === port && x.addr.address === address) {
        r = x;
        break;
      }
    }
    if (!r || msg.length < 1) {
      this.stats.refused++;
      return;
    }
    const now = this.#clock();
    if (msg[0] === RelayMsg.DataDown) {
      if (msg.length < 4 || r.phase !== 'open') {
        this.stats.refused++;
        return;
      }
      r.lastHeardUs = now;
      const linkId = ((msg[1] as number) << 8) | (msg[2] as number);
      let path = r.links[linkId];
      if (!path) {
        // A link the peer made to our token: a new path; the endpoint authenticates what comes on it.
        path = this.#newPath(true);
        this.#bindLink(path, r, linkId);
      }
      this.onMessage(msg.subarray(3), path.vaddr);
      return;
    }
    let m: RelayControl;
    try {
      m = decodeRelayControl(msg);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.stats.refused++;
      return;
    }
    this.#control(r, m, now);
  }

  #control(r: RelayState, m: RelayControl, now: number): void {
    switch (m.type) {
      case 'pong': {
        if (!bytesEqual(m.nonce, r.pingNonce)) return;
        r.pingNonce.fill(0);
        this.#sample(r, now - r.pingSentUs);
        r.cookie = m.cookie;
        r.lastHeardUs = now;
        r.draining = m.drainSeconds > 0;
        if (r.dead) r.dead = false;
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
        this.#publish();
        return;
      }
      case 'refused': {
        if (r.phase !== 'requesting' || !bytesEqual(m.clientNonce, r.clientNonce)) return;
        this.stats.sessionsRefused++;
        r.phase = 'none';
        r.draining = true; // not usable for now; a later pong clears it
        r.retryAtUs = now + 5_000_000;
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
        if (m.seq === r.keepaliveSeq && m.seq !== 0) this.#sample(r, now - r.keepaliveSeqSentUs);
        r.lastHeardUs = now;
        const draining = m.drainSeconds > 0;
        if (draining && !r.draining) {
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
      case 'dirRegisterResult': {
        if (r.dirPending === null || m.requestId !== r.dirRequestId) return;
        r.lastHeardUs = now;
        if (m.code === DirCode.Ok) {
          r.dirRoute = r.dirPending;
          this.stats.dirRegistered++;
        } else {
          this.stats.dirRegisterRefused++;
          r.dirRetryAtUs = now + 5_000_000;
        }
        r.dirPending = null;
        return;
      }
      case 'dirLookupResult': {
        const l = this.#lookups.get(m.requestId);
        if (!l || l.relays[0] !== r || m.peerId !== l.peerId) return;
        r.lastHeardUs = now;
        if (m.code === DirCode.Ok) {
          let parsed: Route | null = null;
          try {
            parsed = decodeRoute(m.route);
          } catch (e) {
            if (!(e instanceof WireError)) throw e;
          }
          if (parsed) return this.#endLookup(l, { ok: true, route: m.route, parsed });
        }
        if (m.code === DirCode.NotFound) l.notFound = true;
        this.#nextLookupRelay(l, now);
        return;
      }
      default:
        this.stats.refused++;
    }
  }

  // ---------------------------------------------------------------- timers

  #tick(): void {
    if (this.#closed) return;
    const now = this.#clock();
    for (const r of this.#relayList) {
      switch (r.phase) {
        case 'pinging':
          if (now - r.pingSentUs >= 250_000) {
            if (r.pingTries >= 8) this.#lose(r, now, true);
            else this.#ping(r, now);
          }
          break;
        case 'requesting':
          if (now - r.requestSentUs >= 250_000) {
            if (r.requestTries >= 8) this.#lose(r, now, true);
            else this.#requestSession(r, now);
          }
          break;
        case 'open': {
          if (now - r.lastHeardUs > this.#timeoutUs) {
            this.#lose(r, now, true);
            break;
          }
          const interval = r === this.#primary ? this.#keepaliveUs : 1_000_000;
          if (now - r.keepaliveSentUs >= interval) this.#keepalive(r, now);
          // Sessions on a peer's relay close once no path has used them for a minute.
          if (r !== this.#primary && r !== this.#backup) {
            const used = r.links.some((p) => p !== undefined) || [...this.#paths.values()].some((p) => p.pendingRelay === r);
            if (used) r.idleSinceUs = -1;
            else if (r.idleSinceUs < 0) r.idleSinceUs = now;
            else if (now - r.idleSinceUs > 60_000_000) {
              if (r.sessionId) this.#sendControl(r, { type: 'closeSession', sessionId: r.sessionId });
              r.phase = 'none';
              r.sessionId = null;
              r.token = null;
            }
          }
          break;
        }
        case 'none':
          break;
      }
    }
    if (this.#closing.length > 0) {
      const due = this.#closing.filter((c) => now >= c.atUs);
      this.#closing = this.#closing.filter((c) => now < c.atUs);
      for (const c of due) if (!c.stillUsed()) this.closePath(c.vaddr);
    }
    for (const r of this.#relayList) {
      if (r.dirPending !== null && r.phase === 'open' && now - r.dirSentUs >= 250_000) {
        if (r.dirTries >= 8) {
          r.dirPending = null;
          r.dirRetryAtUs = now + 5_000_000;
        } else this.#sendRegister(r, now);
      }
    }
    this.#register(now);
    for (const l of this.#lookups.values()) {
      if (now - l.sentUs < 250_000) continue;
      if (l.tries >= 4) this.#nextLookupRelay(l, now);
      else this.#askLookup(l, now);
    }
    for (const path of this.#paths.values()) {
      const r = path.pendingRelay;
      if (r && r.phase === 'open' && now - path.requestSentUs >= 250_000) {
        if (path.requestTries >= 8) {
          path.pendingRelay = null;
          this.stats.linkFailures++;
        } else this.#requestLink(path, r, now);
      } else if (!r && (!path.relay || path.relay.dead) && path.route) this.#relink(path, now);
    }
    // Probe every configured relay now and then: dead ones may be back, another may be better.
    if (now - this.#lastProbeUs >= this.#probeUs || !this.#primary) {
      this.#lastProbeUs = now;
      for (const r of this.#relayList) if (r.configured && r.phase !== 'pinging' && r.phase !== 'requesting' && now >= r.retryAtUs) this.#ping(r, now);
    }
    this.#choose(now);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

/** Whether `candidateUs` beats `currentUs` by at least `marginUs` and by at least `fraction` of it (hysteresis). */
export function clearlyBetter(candidateUs: number, currentUs: number, marginUs: number, fraction: number): boolean {
  return candidateUs <= currentUs - marginUs && candidateUs <= currentUs * (1 - fraction);
}
