import type { EndpointStats } from '../core/endpoint.js';
import type { ConnectionStatus } from '../core/stats.js';
import { SendFlags, type SocketAddress } from '../core/types.js';
import type { CryptoProvider, SigningKey } from '../crypto/provider.js';
import type { Clock } from '../io/clock.js';
import type { Runtime } from '../io/runtime.js';
import type { PeerHost, PeerPolicy, PeerSession } from '../peer/index.js';
import type { RelayAddress, RelayClient, RelayClientStats } from '../relay/index.js';
import { Result } from '../core/types.js';
import { NetlaneError } from '../util/errors.js';
import { Listeners } from '../util/listeners.js';
import { closeStack, parseRoute, rebindStack, relayedStack, type RelayTuning, type RelayedStack } from './relayed.js';
import { isIntegerIn } from './validate.js';
import type { ConfigOptions } from './networking-sockets.js';

/** Discord's `Result` codes (the values the GameSDK uses), for the results the network manager returns. */
export const DiscordResult = {
  Ok: 0,
  ServiceUnavailable: 1,
  InternalError: 4,
  InvalidPayload: 5,
  InvalidCommand: 6,
  NotFound: 9,
  Conflict: 10,
  InsufficientBuffer: 28,
  InvalidChannel: 32,
} as const;
export type DiscordResult = (typeof DiscordResult)[keyof typeof DiscordResult];

/** Options of a {@link NetworkManager}. */
export interface NetworkManagerOptions {
  /** Relay addresses (`host:port`): pinged at start; the best carries this peer's route, the next is the warm backup. */
  readonly relays: readonly (string | RelayAddress)[];
  /** The operator's relay ticket (bytes or base64url, from `netlane ticket`); none for relays in `--open` mode. */
  readonly ticket?: Uint8Array | string;
  /** This peer's Ed25519 key; the peer id is derived from it. Default: a fresh key. */
  readonly key?: SigningKey;
  /** Local IP of the relay socket. Default 0.0.0.0 (or :: for IPv6 relays). */
  readonly bindAddress?: string;
  readonly provider?: CryptoProvider;
  readonly clock?: Clock;
  /** Sockets, timers and randomness. Default: real UDP; `SimNetwork.runtime(ip)` (netlane/testing) runs the manager in virtual time. */
  readonly runtime?: Runtime;
  /** Keep the process alive while the manager is open. Default false. */
  readonly keepProcessAlive?: boolean;
  /** Configuration of every connection, GNS names (`TimeoutConnected`, `FakePacketLoss_Send`, ...). Throws ERR_NETLANE_CONFIG on a bad one. */
  readonly connectionConfig?: ConfigOptions;
  /** Relay client tuning (keepalive, failover timeout, hysteresis) and a tap on every datagram received. */
  readonly relayOptions?: RelayTuning;
}

/** Counters of a {@link NetworkManager}. */
export interface NetworkManagerStats {
  /** Messages dropped because the receiver has no channel open with that id. */
  droppedNoChannel: number;
  /** Messages dropped because the receiver's channel has the other reliability. */
  droppedWrongReliability: number;
  /** Connections from peers that were never opened, or not by peer id, or not the key holder of the id dialled: closed. */
  refusedPeers: number;
  /** Connections that ended while their peer was open (the manager reconnects). */
  connectionsLost: number;
  /** In-band route updates received from peers. */
  routeUpdatesReceived: number;
  readonly relay: RelayClientStats;
  readonly endpoint: EndpointStats;
}

/** A `message` listener: `(peerId, channelId, data)`, as `OnMessage`. */
export type MessageListener = (peerId: bigint, channelId: number, data: Uint8Array) => void;
/** A `routeUpdate` listener: `(route)`, as `OnRouteUpdate`. */
export type RouteListener = (route: string) => void;

interface Channel {
  readonly reliable: boolean;
}

interface Written {
  readonly channel: number;
  readonly reliable: boolean;
  readonly data: Uint8Array;
}

/** What the manager keeps per peer beside the session: channels, and messages written but not flushed. */
interface PeerApp {
  readonly channels: Map<number, Channel>;
  written: Written[];
  writtenBytes: number;
}

/** Highest channel id: channels are lanes 1..128 (lane 0 carries the in-band messages). Godot's binding documents 0-127. */
export const MAX_CHANNEL_ID = 127;
/** Messages (or bytes) sendMessage holds per peer before it answers InsufficientBuffer. */
const MAX_WRITTEN_MESSAGES = 8192;
const MAX_WRITTEN_BYTES = 8 << 20;
/** The end reason `closePeer` gives the peer (GNS's generic application close). */
const CLOSE_PEER_REASON = 1000;
/** Messages `runCallbacks` takes from one connection per read. */
const RECEIVE_BATCH = 256;

/** Discord's sessions: both sides open each other, the lower id dials, a lost connection is made again. */
const POLICY: PeerPolicy = Object.freeze({
  dial: 'lowerId',
  afterEnd: 'redial',
  requests: false,
  requirePeerId: true,
  queueReliable: false,
  maxOutboxMessages: MAX_WRITTEN_MESSAGES,
  maxOutboxBytes: MAX_WRITTEN_BYTES,
  idleTimeoutUs: null,
  routeOnConnect: 'inBand',
  findRoutes: false,
});

/**
 * Discord GameSDK's network manager (seeds 000 and 001), on netlane: peers by 64-bit id, reached by a
 * route string through relays, with numbered reliable and unreliable channels. Every connection is an
 * ordinary netlane connection, encrypted end to end; the relays only forward. Nobody learns another
 * peer's IP address: routes hold relay addresses and opaque tokens only.
 *
 * As in the GameSDK: `sendMessage` queues and `flush()` writes; events (`message`, `routeUpdate`) fire
 * only inside `runCallbacks()`; a message arrives only on a channel the receiver has open with the same
 * reliability. Both sides `openPeer` each other; the peer with the lower id makes the connection. The
 * sessions themselves (dialling, reconnecting, route updates) are the peer layer's (`src/peer/`).
 */
export class NetworkManager {
  readonly #stack: RelayedStack<PeerApp>;
  readonly #host: PeerHost<PeerApp>;
  readonly #readable = new Set<PeerSession<PeerApp>>();
  /** Peers with messages sendMessage wrote and flush has not handed over yet. */
  readonly #written = new Set<PeerSession<PeerApp>>();
  readonly #routeEvents: string[] = [];
  readonly #listeners = new Listeners<{ message: MessageListener; routeUpdate: RouteListener }>(['message', 'routeUpdate']);
  readonly #stats = { droppedNoChannel: 0, droppedWrongReliability: 0, heldTimedOut: 0 };
  #deliverTo: PeerSession<PeerApp> | null = null;
  #closed = false;

  constructor(options: NetworkManagerOptions) {
    this.#stack = relayedStack<PeerApp>(
      {
        relays: options.relays,
        ...pick(options, ['ticket', 'key', 'provider', 'clock', 'runtime', 'keepProcessAlive', 'connectionConfig', 'bindAddress']),
        ...(options.relayOptions ? { relayTuning: options.relayOptions } : {}),
      },
      POLICY,
      { app: () => ({ channels: new Map(), written: [], writtenBytes: 0 }), onServiced: () => this.#serviced() },
    );
    this.#host = this.#stack.host;
  }

  // ---------------------------------------------------------------- the GameSDK API

  /** This peer's id (`GetPeerId`): 64 bits derived from its key, so nobody else can claim it. */
  getPeerId(): bigint {
    return this.#stack.peerId;
  }

  /** This peer's current route, or null until the first relay session is open (then `routeUpdate` fires). */
  get route(): string | null {
    return this.relay.route;
  }

  /** Opens a connection to a peer that broadcast `route` (`OpenPeer`). The peer opens us too. ServiceUnavailable once closed. */
  openPeer(peerId: bigint, route: string): DiscordResult {
    if (this.#closed) return DiscordResult.ServiceUnavailable;
    if (!checkId(peerId) || peerId === this.#stack.peerId) return DiscordResult.InvalidCommand;
    const key = `id:${peerId}`;
    if (this.#host.session(key)?.wanted) return DiscordResult.Conflict;
    const parsed = parseRoute(route);
    if (!parsed) return DiscordResult.InvalidPayload;
    const now = this.#now();
    const s = this.#host.open(now, { key, peerId, direct: null });
    this.#host.updateRoute(now, s, parsed);
    this.#host.want(now, s);
    this.#stack.driver.kick();
    return DiscordResult.Ok;
  }

  /** A peer's new route (`UpdatePeer`), from a lobby member update. Older revisions are ignored. */
  updatePeer(peerId: bigint, route: string): DiscordResult {
    const s = this.#peer(peerId);
    if (!s) return DiscordResult.NotFound;
    const parsed = parseRoute(route);
    if (!parsed) return DiscordResult.InvalidPayload;
    this.#host.updateRoute(this.#now(), s, parsed);
    this.#stack.driver.kick();
    return DiscordResult.Ok;
  }

  /** Disconnects from a peer (`ClosePeer`); its channels close with it. */
  closePeer(peerId: bigint): DiscordResult {
    const s = this.#peer(peerId);
    if (!s) return DiscordResult.NotFound;
    this.#readable.delete(s);
    this.#written.delete(s);
    this.#host.close(this.#now(), s, CLOSE_PEER_REASON, 'ClosePeer');
    this.#stack.driver.kick();
    return DiscordResult.Ok;
  }

  /**
   * Opens channel `channelId` (0-127) to a peer (`OpenChannel`). Reopening changes its reliability.
   * InvalidChannel for a channel that is not an integer in 0-127; `reliable` must be a boolean
   * (ERR_NETLANE_INVALID_ARGUMENT otherwise, never read as false).
   */
  openChannel(peerId: bigint, channelId: number, reliable: boolean): DiscordResult {
    if (typeof reliable !== 'boolean') throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'reliable must be a boolean');
    const s = this.#peer(peerId);
    if (!s) return DiscordResult.NotFound;
    if (!validChannel(channelId)) return DiscordResult.InvalidChannel;
    s.app.channels.set(channelId, { reliable });
    return DiscordResult.Ok;
  }

  /** Closes a channel (`CloseChannel`): messages on it are no longer sent or delivered. */
  closeChannel(peerId: bigint, channelId: number): DiscordResult {
    const s = this.#peer(peerId);
    if (!s) return DiscordResult.NotFound;
    if (!validChannel(channelId) || !s.app.channels.delete(channelId)) return DiscordResult.InvalidChannel;
    return DiscordResult.Ok;
  }

  /**
   * Queues `data` to a peer on an open channel (`SendMessage`); `flush()` writes it. InsufficientBuffer
   * when the peer's queue is full (8192 messages or 8 MiB not yet accepted by the connection).
   */
  sendMessage(peerId: bigint, channelId: number, data: Uint8Array): DiscordResult {
    if (!(data instanceof Uint8Array)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'data must be a Uint8Array or Buffer');
    const s = this.#peer(peerId);
    if (!s) return DiscordResult.NotFound;
    const ch = validChannel(channelId) ? s.app.channels.get(channelId) : undefined;
    if (!ch) return DiscordResult.InvalidChannel;
    const app = s.app;
    if (app.written.length + s.outbox.length >= MAX_WRITTEN_MESSAGES || app.writtenBytes + s.outboxBytes + data.length > MAX_WRITTEN_BYTES) return DiscordResult.InsufficientBuffer;
    app.written.push({ channel: channelId, reliable: ch.reliable, data: data.slice() });
    this.#written.add(s);
    app.writtenBytes += data.length;
    return DiscordResult.Ok;
  }

  /** Writes every queued message out (`Flush`): call it at the end of each frame. */
  flush(): DiscordResult {
    if (this.#closed) return DiscordResult.ServiceUnavailable;
    const now = this.#now();
    for (const s of this.#written) this.#write(now, s);
    this.#stack.driver.service();
    return DiscordResult.Ok;
  }

  /** Delivers what arrived: `routeUpdate`, then `message` events (`RunCallbacks`). Events fire only here. */
  runCallbacks(): DiscordResult {
    if (this.#closed) return DiscordResult.ServiceUnavailable;
    for (let r = this.#routeEvents.shift(); r !== undefined; r = this.#routeEvents.shift()) for (const fn of this.#listeners.of('routeUpdate')) fn(r);
    const now = this.#now();
    for (const s of this.#readable) {
      this.#readable.delete(s);
      this.#deliverTo = s;
      while (this.#host.receive(now, s, RECEIVE_BATCH, this.#deliver) === RECEIVE_BATCH);
    }
    this.#deliverTo = null;
    return DiscordResult.Ok;
  }

  /** `message(peerId, channelId, data)` or `routeUpdate(route)`. */
  on(event: 'message', fn: MessageListener): this;
  on(event: 'routeUpdate', fn: RouteListener): this;
  on(event: 'message' | 'routeUpdate', fn: MessageListener | RouteListener): this {
    this.#listeners.on(event, fn as never);
    return this;
  }

  off(event: 'message' | 'routeUpdate', fn: MessageListener | RouteListener): this {
    this.#listeners.off(event, fn as never);
    return this;
  }

  // ---------------------------------------------------------------- netlane extras

  /** Counters: dropped messages by reason, lost connections, and the relay client's and endpoint's counters. */
  getStats(): NetworkManagerStats {
    const p = this.#host.stats;
    return {
      droppedNoChannel: this.#stats.droppedNoChannel,
      droppedWrongReliability: this.#stats.droppedWrongReliability,
      refusedPeers: p.refusedPeers + p.identityMismatches + this.#stats.heldTimedOut,
      connectionsLost: p.connectionsLost,
      routeUpdatesReceived: p.routeUpdatesReceived,
      relay: { ...this.relay.stats },
      endpoint: { ...this.#host.endpoint.stats },
    };
  }

  /** The relay client under the manager (relay pings, which relay carries a path). */
  get relay(): RelayClient {
    return this.#host.relay as RelayClient;
  }

  /** The local address of the manager's socket (what the relays see). */
  get localAddress(): SocketAddress {
    return this.#stack.driver.transport.local;
  }

  /**
   * New route tokens on this peer's relays (netlane's addition): a new route follows (`routeUpdate`, to
   * republish), and nobody holding an older route can ask its relays for a link any more. Connections made
   * already stay. ServiceUnavailable once closed.
   */
  rotateRoute(): DiscordResult {
    if (this.#closed) return DiscordResult.ServiceUnavailable;
    this.relay.rotateRoute(this.#now());
    this.#stack.driver.kick();
    return DiscordResult.Ok;
  }

  /** Moves to a new local port, as a NAT rebinding would: the relays challenge the new address; the route stays. Throws ERR_NETLANE_INVALID_STATE once closed (a closed manager opens no socket). */
  rebind(): void {
    rebindStack(this.#stack, this.#closed);
  }

  /**
   * A peer's connection state, path and counters (packets that failed authentication, and duplicates: a
   * relay drops replays, so these stay 0 unless the path duplicates), or null if the peer is not open. `lastEnd` is how its
   * last connection ended (a GNS end reason and debug text; the manager has reconnected since if it could).
   * `ping` (ms, -1 before the first sample), `qualityLocal` / `qualityRemote` (the share of packets that
   * arrived last interval, each way; -1 unknown) and the in and out rates (bytes/s) are the connection's own
   * (what a net graph shows; 0 and -1 while there is no connection).
   */
  peerStatus(peerId: bigint): { connected: boolean; relay: SocketAddress | null; pathChanges: number; badPackets: number; duplicatePackets: number; queued: number; handshakes: number; lastEnd: { readonly reason: number; readonly debug: string } | null; ping: number; qualityLocal: number; qualityRemote: number; inBytesPerSec: number; outBytesPerSec: number } | null {
    const s = this.#peer(peerId);
    if (!s) return null;
    const st = s.cid ? this.#host.endpoint.status(this.#now(), s.cid) : null;
    const vaddr = s.vaddr;
    return { connected: s.connected, relay: vaddr ? this.relay.pathRelay(vaddr) : null, pathChanges: st?.pathChanges ?? 0, badPackets: st?.badPackets ?? 0, duplicatePackets: st?.duplicatePackets ?? 0, queued: s.app.written.length + s.outbox.length, handshakes: s.handshakes, lastEnd: s.lastEnd, ping: st?.ping ?? -1, qualityLocal: st?.connectionQualityLocal ?? -1, qualityRemote: st?.connectionQualityRemote ?? -1, inBytesPerSec: st?.inBytesPerSec ?? 0, outBytesPerSec: st?.outBytesPerSec ?? 0 };
  }

  /**
   * A peer's connection figures (ping, quality, rates, what is queued), with the queued bytes of the given
   * channels, or null if the peer is not open or has no connection now. A netlane extra (the GameSDK has none):
   * what the demo's net graph shows.
   */
  peerRealTimeStatus(peerId: bigint, channels: readonly number[] = []): { status: ConnectionStatus; queuedBytesPerChannel: number[] } | null {
    const s = this.#peer(peerId);
    if (!s?.cid) return null;
    const ep = this.#host.endpoint;
    const status = ep.status(this.#now(), s.cid);
    if (!status) return null;
    const queuedBytesPerChannel = channels.map((c) => {
      const l = isIntegerIn(c, 0, MAX_CHANNEL_ID) ? ep.laneStatus(s.cid, c + 1) : null;
      return l ? l.pendingReliable + l.pendingUnreliable : 0;
    });
    return { status, queuedBytesPerChannel };
  }

  /** Closes every connection and the relay sessions. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeStack(this.#stack);
  }

  // ---------------------------------------------------------------- plumbing

  #now(): number {
    return this.#stack.runtime.scheduler.now();
  }

  /** An opened peer's session (held connections from peers not opened are not peers yet). */
  #peer(peerId: bigint): PeerSession<PeerApp> | undefined {
    const s = checkId(peerId) ? this.#host.session(`id:${peerId}`) : undefined;
    return s?.wanted ? s : undefined;
  }

  /** Hands what sendMessage wrote to the session, as far as it takes it; the rest waits for the next flush. */
  #write(now: number, s: PeerSession<PeerApp>): void {
    const app = s.app;
    if (app.written.length === 0) {
      this.#written.delete(s);
      return;
    }
    let i = 0;
    for (; i < app.written.length; i++) {
      const m = app.written[i] as Written;
      if (this.#host.send(now, s, m.channel, m.data, m.reliable ? SendFlags.Reliable : SendFlags.Unreliable, true) === Result.LimitExceeded) break;
      app.writtenBytes -= m.data.length;
    }
    app.written = i === app.written.length ? [] : app.written.slice(i);
    if (app.written.length === 0) this.#written.delete(s);
    this.#host.flush(now, s);
  }

  readonly #deliver = (channel: number, data: Uint8Array, m: { readonly reliable: boolean }): void => {
    const s = this.#deliverTo as PeerSession<PeerApp>;
    const ch = s.app.channels.get(channel);
    if (!ch) this.#stats.droppedNoChannel++;
    else if (ch.reliable !== m.reliable) this.#stats.droppedWrongReliability++;
    else for (const fn of this.#listeners.of('message')) fn(s.peerId as bigint, channel, data);
  };

  /** After every service pass of the driver: the peer layer's events, readable sessions. */
  #serviced(): void {
    const host = this.#host;
    for (let e = host.pollEvent(); e; e = host.pollEvent()) {
      if (e.type === 'route') this.#routeEvents.push(e.route);
      else if (e.type === 'ended' && !e.session.wanted) {
        // A held connection from a peer never opened: it timed out.
        this.#stats.heldTimedOut++;
        host.close(this.#now(), e.session, 0, '');
      }
    }
    for (let s = host.pollReadable(); s; s = host.pollReadable()) this.#readable.add(s);
  }
}

function checkId(peerId: bigint): boolean {
  if (typeof peerId !== 'bigint') throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'peerId must be a bigint');
  return peerId > 0n && peerId < 1n << 64n;
}

function validChannel(channelId: number): boolean {
  return isIntegerIn(channelId, 0, MAX_CHANNEL_ID);
}

/** The options of `o` named in `keys` that are set (exactOptionalPropertyTypes: no explicit undefined). */
function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
