import type { Endpoint, EndpointStats } from '../core/endpoint.js';
import { ConnectionState, Result as CoreResult, SendFlags, type ReceivedMessage, type SocketAddress } from '../core/types.js';
import { SecureHandshake } from '../crypto/handshake.js';
import { derivePeerId } from '../crypto/identity.js';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import type { CryptoProvider, SigningKey } from '../crypto/provider.js';
import { monotonicUs, type Clock } from '../io/clock.js';
import { EndpointDriver } from '../io/driver.js';
import { randomSeed } from '../io/random.js';
import { RelayClient, type RelayClientOptions, type RelayClientStats } from '../relay/client.js';
import type { Route } from '../relay/protocol.js';
import { NetlaneError } from '../util/errors.js';
import { Listeners } from '../util/listeners.js';
import { SeededRng } from '../util/rng.js';
import { InBand, connectionStore, ensureLane, parseRelays, parseRoute, parseTicket, pathInUse, peerIdOf, relayedEndpoint, routeFromMessage, routeMessage } from './relayed.js';
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
  readonly relays: readonly (string | SocketAddress)[];
  /** The operator's relay ticket (bytes or base64url, from `netlane ticket`); none for relays in `--open` mode. */
  readonly ticket?: Uint8Array | string;
  /** This peer's Ed25519 key; the peer id is derived from it. Default: a fresh key. */
  readonly key?: SigningKey;
  /** Local IP of the relay socket. Default 0.0.0.0 (or :: for IPv6 relays). */
  readonly bindAddress?: string;
  readonly provider?: CryptoProvider;
  readonly clock?: Clock;
  /** Keep the process alive while the manager is open. Default false. */
  readonly keepProcessAlive?: boolean;
  /** Configuration of every connection, GNS names (`TimeoutConnected`, `FakePacketLoss_Send`, ...). Throws ERR_NETLANE_CONFIG on a bad one. */
  readonly connectionConfig?: ConfigOptions;
  /** Relay client tuning (keepalive, failover timeout, hysteresis, tap). */
  readonly relayOptions?: Partial<Pick<RelayClientOptions, 'keepaliveMs' | 'relayTimeoutMs' | 'probeIntervalMs' | 'hysteresis' | 'tap'>>;
}

/** Counters of a {@link NetworkManager}. */
export interface NetworkManagerStats {
  /** Messages dropped because the receiver has no channel open with that id. */
  droppedNoChannel: number;
  /** Messages dropped because the receiver's channel has the other reliability. */
  droppedWrongReliability: number;
  /** Connections from peers that were never opened, or not by peer id: closed (held ones when they time out). */
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

interface Outgoing {
  readonly lane: number;
  readonly reliable: boolean;
  readonly data: Uint8Array;
}

interface Peer {
  readonly id: bigint;
  route: Route;
  readonly channels: Map<number, Channel>;
  /** The connection (endpoint handle), 0 while none. */
  cid: number;
  vaddr: SocketAddress | null;
  connected: boolean;
  /** Written by sendMessage, put on the connection by flush (once connected). */
  outbox: Outgoing[];
  outboxBytes: number;
  laneCount: number;
  /** How the last connection to this peer ended (reason, debug), or null. */
  lastEnd: { readonly reason: number; readonly debug: string } | null;
}

/** Highest channel id: channels are lanes 1..128 (lane 0 carries the manager's own messages). Godot's binding documents 0-127. */
export const MAX_CHANNEL_ID = 127;
/** Messages (or bytes) sendMessage queues per peer before it answers InsufficientBuffer. */
const MAX_OUTBOX_MESSAGES = 8192;
const MAX_OUTBOX_BYTES = 8 << 20;

/**
 * Discord GameSDK's network manager (seeds 000 and 001), on netlane: peers by 64-bit id, reached by a
 * route string through relays, with numbered reliable and unreliable channels. Every connection is an
 * ordinary netlane connection, encrypted end to end; the relays only forward. Nobody learns another
 * peer's IP address: routes hold relay addresses and opaque tokens only.
 *
 * As in the GameSDK: `sendMessage` queues and `flush()` writes; events (`message`, `routeUpdate`) fire
 * only inside `runCallbacks()`; a message arrives only on a channel the receiver has open with the same
 * reliability. Both sides `openPeer` each other; the peer with the lower id makes the connection.
 */
export class NetworkManager {
  readonly #provider: CryptoProvider;
  readonly #clock: Clock;
  readonly #peerId: bigint;
  readonly #endpoint: Endpoint;
  readonly #relay: RelayClient;
  readonly #driver: EndpointDriver;
  readonly #peers = new Map<bigint, Peer>();
  readonly #byCid = new Map<number, Peer>();
  /** Incoming connections from peers not opened yet: peer id -> endpoint handle. */
  readonly #waiting = new Map<bigint, number>();
  readonly #readable = new Set<number>();
  /** Handshakes completed per peer: a failover that keeps the connection adds none. */
  readonly #handshakes = new Map<bigint, number>();
  readonly #routeEvents: string[] = [];
  readonly #listeners = new Listeners<{ message: MessageListener; routeUpdate: RouteListener }>(['message', 'routeUpdate']);
  readonly #scratch: ReceivedMessage[] = [];
  readonly #stats: Omit<NetworkManagerStats, 'relay' | 'endpoint'> = { droppedNoChannel: 0, droppedWrongReliability: 0, refusedPeers: 0, connectionsLost: 0, routeUpdatesReceived: 0 };
  #closed = false;

  constructor(options: NetworkManagerOptions) {
    this.#provider = options.provider ?? new NodeCryptoProvider();
    this.#clock = options.clock ?? monotonicUs;
    const key = options.key ?? this.#provider.signingKey();
    this.#peerId = derivePeerId(this.#provider, key.publicKey);
    const relays = parseRelays(options.relays);
    const ticket = parseTicket(options.ticket);
    const store = connectionStore(options.connectionConfig);
    this.#endpoint = relayedEndpoint(new SecureHandshake({ provider: this.#provider, key }), true, store);
    this.#relay = new RelayClient({
      ...options.relayOptions,
      relays,
      ticket,
      provider: this.#provider,
      clock: this.#clock,
      keepProcessAlive: options.keepProcessAlive ?? false,
      ...(options.bindAddress !== undefined ? { bindAddress: options.bindAddress } : {}),
      onRoute: (route, parsed) => this.#ownRouteChanged(route, parsed),
    });
    this.#driver = new EndpointDriver(this.#endpoint, this.#relay, { clock: this.#clock, rng: new SeededRng(randomSeed()), keepProcessAlive: options.keepProcessAlive ?? false, onServiced: () => this.#serviced() });
    const fake = store.fakeConditions();
    this.#driver.setFakeConditions(fake.send, fake.recv);
  }

  // ---------------------------------------------------------------- the GameSDK API

  /** This peer's id (`GetPeerId`): 64 bits derived from its key, so nobody else can claim it. */
  getPeerId(): bigint {
    return this.#peerId;
  }

  /** This peer's current route, or null until the first relay session is open (then `routeUpdate` fires). */
  get route(): string | null {
    return this.#relay.route;
  }

  /** Opens a connection to a peer that broadcast `route` (`OpenPeer`). The peer opens us too. */
  openPeer(peerId: bigint, route: string): DiscordResult {
    if (!this.#checkId(peerId) || peerId === this.#peerId) return DiscordResult.InvalidCommand;
    if (this.#peers.has(peerId)) return DiscordResult.Conflict;
    const parsed = parseRoute(route);
    if (!parsed) return DiscordResult.InvalidPayload;
    const peer: Peer = { id: peerId, route: parsed, channels: new Map(), cid: 0, vaddr: null, connected: false, outbox: [], outboxBytes: 0, laneCount: 1, lastEnd: null };
    this.#peers.set(peerId, peer);
    const waiting = this.#waiting.get(peerId);
    if (waiting !== undefined) {
      this.#waiting.delete(peerId);
      this.#adopt(peer, waiting);
    } else if (this.#peerId < peerId) this.#connect(peer);
    this.#driver.kick();
    return DiscordResult.Ok;
  }

  /** A peer's new route (`UpdatePeer`), from a lobby member update. Older revisions are ignored. */
  updatePeer(peerId: bigint, route: string): DiscordResult {
    const peer = this.#checkId(peerId) ? this.#peers.get(peerId) : undefined;
    if (!peer) return DiscordResult.NotFound;
    const parsed = parseRoute(route);
    if (!parsed) return DiscordResult.InvalidPayload;
    this.#newPeerRoute(peer, parsed);
    return DiscordResult.Ok;
  }

  /** Disconnects from a peer (`ClosePeer`); its channels close with it. */
  closePeer(peerId: bigint): DiscordResult {
    const peer = this.#checkId(peerId) ? this.#peers.get(peerId) : undefined;
    if (!peer) return DiscordResult.NotFound;
    this.#peers.delete(peerId);
    if (peer.cid !== 0) this.#dropConnection(peer, 1000, 'ClosePeer', true);
    this.#driver.kick();
    return DiscordResult.Ok;
  }

  /** Opens channel `channelId` (0-127) to a peer (`OpenChannel`). Reopening changes its reliability. */
  openChannel(peerId: bigint, channelId: number, reliable: boolean): DiscordResult {
    const peer = this.#checkId(peerId) ? this.#peers.get(peerId) : undefined;
    if (!peer) return DiscordResult.NotFound;
    if (!validChannel(channelId)) return DiscordResult.InvalidChannel;
    peer.channels.set(channelId, { reliable: reliable === true });
    return DiscordResult.Ok;
  }

  /** Closes a channel (`CloseChannel`): messages on it are no longer sent or delivered. */
  closeChannel(peerId: bigint, channelId: number): DiscordResult {
    const peer = this.#checkId(peerId) ? this.#peers.get(peerId) : undefined;
    if (!peer) return DiscordResult.NotFound;
    if (!validChannel(channelId) || !peer.channels.delete(channelId)) return DiscordResult.InvalidChannel;
    return DiscordResult.Ok;
  }

  /**
   * Queues `data` to a peer on an open channel (`SendMessage`); `flush()` writes it. InsufficientBuffer
   * when the peer's queue is full (8192 messages or 8 MiB not yet accepted by the connection).
   */
  sendMessage(peerId: bigint, channelId: number, data: Uint8Array): DiscordResult {
    if (!(data instanceof Uint8Array)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'data must be a Uint8Array or Buffer');
    const peer = this.#checkId(peerId) ? this.#peers.get(peerId) : undefined;
    if (!peer) return DiscordResult.NotFound;
    const ch = validChannel(channelId) ? peer.channels.get(channelId) : undefined;
    if (!ch) return DiscordResult.InvalidChannel;
    if (peer.outbox.length >= MAX_OUTBOX_MESSAGES || peer.outboxBytes + data.length > MAX_OUTBOX_BYTES) return DiscordResult.InsufficientBuffer;
    peer.outbox.push({ lane: channelId + 1, reliable: ch.reliable, data: data.slice() });
    peer.outboxBytes += data.length;
    return DiscordResult.Ok;
  }

  /** Writes every queued message out (`Flush`): call it at the end of each frame. */
  flush(): DiscordResult {
    if (this.#closed) return DiscordResult.ServiceUnavailable;
    const now = this.#clock();
    for (const peer of this.#peers.values()) this.#write(peer, now);
    this.#driver.service();
    return DiscordResult.Ok;
  }

  /** Delivers what arrived: `routeUpdate`, then `message` events (`RunCallbacks`). Events fire only here. */
  runCallbacks(): DiscordResult {
    if (this.#closed) return DiscordResult.ServiceUnavailable;
    for (let r = this.#routeEvents.shift(); r !== undefined; r = this.#routeEvents.shift()) for (const fn of this.#listeners.of('routeUpdate')) fn(r);
    const ep = this.#endpoint;
    const out = this.#scratch;
    for (const cid of this.#readable) {
      this.#readable.delete(cid);
      const peer = this.#byCid.get(cid);
      for (let n = ep.receive(cid, out, 256); n > 0; n = ep.receive(cid, out, 256)) {
        for (let i = 0; i < n; i++) {
          const m = out[i] as ReceivedMessage;
          if (peer) this.#deliver(peer, m);
        }
        out.length = 0;
        if (n < 256) break;
      }
    }
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
    return { ...this.#stats, relay: { ...this.#relay.stats }, endpoint: { ...this.#endpoint.stats } };
  }

  /** The relay client under the manager (relay pings, path relay, `rebind` for NAT tests). */
  get relay(): RelayClient {
    return this.#relay;
  }

  /**
   * A peer's connection state, path and counters, or null if the peer is not open. `lastEnd` is how its
   * last connection ended (a GNS end reason and debug text; the manager has reconnected since if it could).
   */
  peerStatus(peerId: bigint): { connected: boolean; relay: SocketAddress | null; pathChanges: number; badPackets: number; queued: number; handshakes: number; lastEnd: { readonly reason: number; readonly debug: string } | null } | null {
    const peer = this.#peers.get(peerId);
    if (!peer) return null;
    const st = peer.cid ? this.#endpoint.status(this.#clock(), peer.cid) : null;
    return { connected: peer.connected, relay: peer.vaddr ? this.#relay.pathRelay(peer.vaddr) : null, pathChanges: st?.pathChanges ?? 0, badPackets: st?.badPackets ?? 0, queued: peer.outbox.length, handshakes: this.#handshakes.get(peerId) ?? 0, lastEnd: peer.lastEnd };
  }

  /** Closes every connection and the relay sessions. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of this.#peers.values()) if (peer.cid !== 0) this.#endpoint.close(this.#clock(), peer.cid, 1000, 'Shutting down', false);
    this.#driver.service();
    this.#driver.close();
  }

  // ---------------------------------------------------------------- plumbing

  #checkId(peerId: bigint): boolean {
    if (typeof peerId !== 'bigint') throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'peerId must be a bigint');
    return peerId > 0n && peerId < 1n << 64n;
  }

  #connect(peer: Peer): void {
    const vaddr = this.#relay.openPath(peer.route);
    peer.vaddr = vaddr;
    peer.cid = this.#endpoint.connect(this.#clock(), vaddr);
    peer.connected = false;
    this.#byCid.set(peer.cid, peer);
  }

  /** Takes an incoming connection (already authenticated as `peer.id`) for `peer`. */
  #adopt(peer: Peer, cid: number): void {
    if (peer.cid !== 0) this.#dropConnection(peer, 1000, 'Duplicate connection', false);
    peer.cid = cid;
    peer.connected = false;
    peer.vaddr = this.#endpoint.remoteAddress(cid);
    this.#byCid.set(cid, peer);
    if (peer.vaddr) this.#relay.updatePath(peer.vaddr, peer.route);
    this.#endpoint.accept(this.#clock(), cid);
  }

  #dropConnection(peer: Peer, reason: number, debug: string, forget: boolean): void {
    this.#endpoint.close(this.#clock(), peer.cid, reason, debug, false);
    this.#byCid.delete(peer.cid);
    this.#readable.delete(peer.cid);
    const vaddr = peer.vaddr;
    if (forget && vaddr) this.#relay.closePathLater(vaddr, () => pathInUse(this.#endpoint, this.#byCid.keys(), vaddr)); // after the close has left on it
    peer.cid = 0;
    peer.connected = false;
  }

  #newPeerRoute(peer: Peer, route: Route): void {
    if (route.revision < peer.route.revision) return; // a stale lobby update
    peer.route = route;
    if (peer.vaddr) this.#relay.updatePath(peer.vaddr, route);
  }

  #ownRouteChanged(route: string, _parsed: Route): void {
    this.#routeEvents.push(route);
    // Tell connected peers in-band at once; the application also republishes it (routeUpdate).
    const msg = routeMessage(route);
    const now = this.#clock();
    for (const peer of this.#peers.values()) {
      if (!peer.connected) continue;
      this.#endpoint.send(now, peer.cid, msg, SendFlags.Reliable, 0);
      this.#endpoint.flush(now, peer.cid);
    }
    this.#driver.kick();
  }

  #write(peer: Peer, now: number): void {
    if (!peer.connected || peer.outbox.length === 0) return;
    const ep = this.#endpoint;
    let i = 0;
    for (; i < peer.outbox.length; i++) {
      const m = peer.outbox[i] as Outgoing;
      peer.laneCount = ensureLane(ep, peer.cid, m.lane, peer.laneCount);
      const r = ep.send(now, peer.cid, m.data, m.reliable ? SendFlags.Reliable : SendFlags.Unreliable, m.lane);
      if (r === -CoreResult.LimitExceeded) break; // the connection's buffer is full: the rest waits for the next flush
      peer.outboxBytes -= m.data.length;
    }
    peer.outbox = i === peer.outbox.length ? [] : peer.outbox.slice(i);
    ep.flush(now, peer.cid);
  }

  #deliver(peer: Peer, m: ReceivedMessage): void {
    if (m.lane === 0) {
      if (m.data[0] === InBand.Route) {
        const parsed = routeFromMessage(m.data);
        if (parsed) {
          this.#stats.routeUpdatesReceived++;
          this.#newPeerRoute(peer, parsed);
        }
      }
      return;
    }
    const ch = peer.channels.get(m.lane - 1);
    if (!ch) {
      this.#stats.droppedNoChannel++;
      return;
    }
    if (ch.reliable !== m.reliable) {
      this.#stats.droppedWrongReliability++;
      return;
    }
    for (const fn of this.#listeners.of('message')) fn(peer.id, m.lane - 1, m.data);
  }

  /** After every service pass of the driver: connection events, readable connections. */
  #serviced(): void {
    const ep = this.#endpoint;
    for (let e = ep.pollEvent(); e; e = ep.pollEvent()) {
      if (e.type !== 'connectionStatusChanged') continue;
      const cid = e.connection;
      if (e.oldState === ConnectionState.None && e.state === ConnectionState.Connecting && !this.#byCid.has(cid)) {
        this.#incoming(cid);
        continue;
      }
      const peer = this.#byCid.get(cid);
      if (!peer) {
        if (e.state === ConnectionState.ClosedByPeer || e.state === ConnectionState.ProblemDetectedLocally) {
          // A held connection from a peer never opened: it timed out.
          for (const [id, held] of this.#waiting) {
            if (held !== cid) continue;
            this.#waiting.delete(id);
            this.#stats.refusedPeers++;
          }
          ep.close(this.#clock(), cid, 0, '', false);
        }
        continue;
      }
      if (e.state === ConnectionState.Connected) {
        if (ep.peerInfo(cid)?.identity !== `id:${peer.id}`) {
          // Whoever answered is not the holder of this peer id's key (a relay in the middle, a stale route).
          this.#stats.refusedPeers++;
          peer.lastEnd = { reason: 4003, debug: `expected peer id ${peer.id}` };
          this.#dropConnection(peer, 4003, `expected peer id ${peer.id}`, true);
          peer.vaddr = null;
          if (this.#peerId < peer.id && !this.#closed) this.#connect(peer);
          continue;
        }
        peer.connected = true;
        peer.laneCount = ep.laneCount(cid);
        this.#handshakes.set(peer.id, (this.#handshakes.get(peer.id) ?? 0) + 1);
        const route = this.#relay.route;
        if (route) ep.send(this.#clock(), cid, routeMessage(route), SendFlags.Reliable, 0);
        this.#write(peer, this.#clock());
        this.#driver.kick();
      } else if (e.state === ConnectionState.ClosedByPeer || e.state === ConnectionState.ProblemDetectedLocally) {
        // The peer is still open here: count it and connect again (the lower id makes the connection).
        this.#stats.connectionsLost++;
        peer.lastEnd = ep.endInfo(cid);
        this.#dropConnection(peer, 0, '', true);
        peer.vaddr = null;
        if (this.#peers.get(peer.id) === peer && this.#peerId < peer.id && !this.#closed) this.#connect(peer);
      }
    }
    for (let cid = ep.pollReadable(); cid !== null; cid = ep.pollReadable()) this.#readable.add(cid);
  }

  #incoming(cid: number): void {
    const ep = this.#endpoint;
    const identity = ep.peerInfo(cid)?.identity ?? '';
    const id = peerIdOf(identity) ?? 0n;
    if (id === 0n || id === this.#peerId) {
      this.#stats.refusedPeers++;
      ep.close(this.#clock(), cid, 5001, 'NetworkManager peers are identified by peer id', false);
      return;
    }
    const peer = this.#peers.get(id);
    if (!peer) {
      // Not opened (yet): hold it; openPeer adopts it, or it times out.
      const old = this.#waiting.get(id);
      if (old !== undefined) ep.close(this.#clock(), old, 1000, 'Replaced', false);
      this.#waiting.set(id, cid);
      return;
    }
    // Both sides dialled at once: keep the connection the lower id made.
    if (peer.cid !== 0 && this.#peerId < id) {
      ep.close(this.#clock(), cid, 1000, 'Duplicate connection', false);
      return;
    }
    this.#adopt(peer, cid);
  }
}

function validChannel(channelId: number): boolean {
  return Number.isInteger(channelId) && channelId >= 0 && channelId <= MAX_CHANNEL_ID;
}
