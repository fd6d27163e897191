import type { DirectPathInfo } from '../core/direct-path.js';
import { ConnectionState, Result, SendFlags, type ReceivedMessage, type SocketAddress } from '../core/types.js';
import type { DirectPathSetting } from '../peer/direct.js';
import { MAX_CHANNEL, MIN_CHANNEL, identityToString, isRelayPath, parseIdentity, peerIdOf, type PeerHost, type PeerPolicy, type PeerSession, type PeerSpec } from '../peer/index.js';
import { addressKey, type RelayClient } from '../relay/index.js';
import { ConfigValue } from './config.js';
import { Deque } from '../util/deque.js';
import { NetlaneError } from '../util/errors.js';
import { Listeners } from '../util/listeners.js';
import { closeStack, rebindStack, relayedStack, type RelayedStack } from './relayed.js';
import { Limits } from './types.js';
import { isIntegerIn, isSendFlags } from './validate.js';
import { AUTO_RESTART_BROKEN_SESSION, NetworkingConnectionEnd, NetworkingMessagesMessage, type NetworkingIdentity, type NetworkingMessagesOptions, type NetworkingMessagesStats, type SessionConnectionInfo, type SessionFailedInfo } from './messages-types.js';

export { AUTO_RESTART_BROKEN_SESSION, NetworkingConnectionEnd, NetworkingMessagesMessage, type NetworkingIdentity, type NetworkingMessagesOptions, type NetworkingMessagesStats, type SessionConnectionInfo, type SessionFailedInfo } from './messages-types.js';

type QueuedEvent = { readonly type: 'request'; readonly identity: NetworkingIdentity } | { readonly type: 'failed'; readonly info: SessionFailedInfo };

/** `sessionRequest` listener: the identity that wants to talk. */
export type SessionRequestListener = (identity: NetworkingIdentity) => void;
/** `sessionFailed` listener. */
export type SessionFailedListener = (info: SessionFailedInfo) => void;

/** What the facade keeps per session: the identity as the application gives it, and the channels in use. */
interface SessionApp {
  readonly identity: NetworkingIdentity;
  readonly channels: Set<number>;
}

const MAX_OUTBOX_MESSAGES = 8192;
/** What a session queues before its connection is up: GNS's default send buffer. */
const MAX_OUTBOX_BYTES = 512 * 1024;
/** Received messages held unread (all channels) before the facade stops taking more from the connections (their peers then wait). */
const MAX_QUEUED_MESSAGES = 8192;
/** Messages taken from one connection per read. */
const RECEIVE_BATCH = 256;
const DEFAULT_IDLE_MS = 180_000;

/**
 * Steam's `ISteamNetworkingMessages` as GodotSteam binds it (seeds 002 and 003), on netlane: send to a
 * user by identity on a channel, and sessions are made implicitly. Each session is one netlane
 * connection, encrypted end to end and authenticated by the peer's key; through relays by peer id
 * (looked up in the relays' identity directory), or directly to an `ip:` identity.
 *
 * As in GNS: the first message from a user raises `sessionRequest` (repeated every second while its
 * connection attempt lives), and nothing from that user is delivered until the session is accepted
 * (`acceptSessionWithUser`, or sending to the user). A failed session raises `sessionFailed` and refuses
 * sends (NoConnection, 3) until it is closed or a send passes `AUTO_RESTART_BROKEN_SESSION`. Closing the
 * last channel with a user closes the session. Sessions idle for 3 minutes close without a callback.
 * Events fire inside `runCallbacks()`; messages are read with `receiveMessagesOnChannel` at any time.
 * The sessions themselves are the peer layer's (`src/peer/`); this class translates.
 *
 * Unlike GNS, each channel 0-253 is its own lane: a lost packet on one channel never stalls another.
 */
export class NetworkingMessages {
  readonly #stack: RelayedStack<SessionApp>;
  readonly #host: PeerHost<SessionApp>;
  readonly #direct: boolean;
  readonly #readable = new Set<PeerSession<SessionApp>>();
  readonly #channels = new Map<number, Deque<NetworkingMessagesMessage>>();
  readonly #events: QueuedEvent[] = [];
  readonly #listeners = new Listeners<{ sessionRequest: SessionRequestListener; sessionFailed: SessionFailedListener }>(['sessionRequest', 'sessionFailed']);
  #queued = 0;
  #pullInto: PeerSession<SessionApp> | null = null;
  #closed = false;
  /** Direct paths (docs/P2P.md): the facade's setting (its `connectionConfig`), and per-user ones by session key. */
  readonly #directDefault: DirectPathSetting;
  readonly #directByKey = new Map<string, DirectPathSetting>();
  #directWidest: DirectPathSetting;

  constructor(options: NetworkingMessagesOptions = {}) {
    const idleMs = options.sessionIdleTimeoutMs ?? DEFAULT_IDLE_MS;
    if (!(idleMs > 0)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'sessionIdleTimeoutMs must be positive');
    const relays = options.relays ?? [];
    const bind = options.bind ?? (relays.length === 0 ? '0.0.0.0:0' : null);
    this.#direct = bind !== null;
    const { bindAddress, ...tuning } = options.relayOptions ?? {};
    const policy: PeerPolicy = {
      dial: 'sender',
      afterEnd: 'quietOrFail',
      requests: true,
      requirePeerId: false,
      queueReliable: true,
      maxOutboxMessages: MAX_OUTBOX_MESSAGES,
      maxOutboxBytes: MAX_OUTBOX_BYTES,
      idleTimeoutUs: idleMs * 1000,
      routeOnConnect: 'lookup',
      findRoutes: true,
    };
    this.#stack = relayedStack<SessionApp>(
      {
        relays,
        bind,
        register: true,
        relayTuning: tuning,
        ...(bindAddress !== undefined ? { bindAddress } : {}),
        ...(options.ticket !== undefined ? { ticket: options.ticket } : {}),
        ...(options.key ? { key: options.key } : {}),
        ...(options.provider ? { provider: options.provider } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.runtime ? { runtime: options.runtime } : {}),
        ...(options.unixSeconds ? { unixSeconds: options.unixSeconds } : {}),
        ...(options.keepProcessAlive !== undefined ? { keepProcessAlive: options.keepProcessAlive } : {}),
        ...(options.connectionConfig ? { connectionConfig: options.connectionConfig } : {}),
        directPaths: (key) => (key === null ? this.#directWidest : (this.#directByKey.get(key) ?? this.#directDefault)),
      },
      policy,
      { app: (key) => ({ identity: identityOfKey(key), channels: new Set() }), onServiced: () => this.#serviced(), beforeUnlink: (s) => this.#pullFrom(s, Infinity) },
    );
    this.#host = this.#stack.host;
    // The facade's direct-path setting, from its connectionConfig as the stack's store validated it.
    const cfg = this.#stack.store;
    this.#directDefault = { enable: numberOr(cfg.lookup(ConfigValue.P2P_Transport_ICE_Enable), 0), penaltyUs: numberOr(cfg.lookup(ConfigValue.P2P_Transport_ICE_Penalty), 0) * 1000 };
    this.#directWidest = this.#directDefault;
  }

  // ---------------------------------------------------------------- the seed's API

  /**
   * Sends `data` to a user on `channel` (`SendMessageToUser`), making the session if there is none
   * (and accepting the user's pending request, if any). Returns an `EResult`: OK (1); NoConnection (3)
   * when the session failed and `AUTO_RESTART_BROKEN_SESSION` is not in `flags`, or after `close`;
   * InvalidParam (8) for a bad identity or size, flags that are not an integer combination of the send
   * flags, or a channel that is not an int32; LimitExceeded (25) when the session's send buffer is full.
   * Until the connection is up, messages are queued and sent reliably (as GNS does).
   */
  sendMessageToUser(identity: NetworkingIdentity, data: Uint8Array, flags: number = SendFlags.Unreliable, channel = 0): number {
    if (!(data instanceof Uint8Array)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'data must be a Uint8Array or Buffer');
    if (this.#closed) return Result.NoConnection;
    if (!isIntegerIn(channel, MIN_CHANNEL, MAX_CHANNEL) || !isSendFlags(flags) || data.length > Limits.maxMessageSize) return Result.InvalidParam;
    const who = this.#resolve(identity);
    if (!who || who.peerId === this.#stack.peerId) return Result.InvalidParam;
    const host = this.#host;
    let s = host.session(who.key);
    if (!s) {
      if ((who.peerId === null || !host.relay) && (who.direct === null || !this.#direct)) return Result.InvalidParam; // no way to reach it
      s = host.open(this.#now(), who);
    }
    const now = this.#now();
    if (s.state.kind === 'failed') {
      if ((flags & AUTO_RESTART_BROKEN_SESSION) === 0) return Result.NoConnection;
      host.restart(s);
    }
    if (!host.want(now, s)) return Result.NoConnection; // a peer that can only reach us
    s.app.channels.add(channel);
    const r = host.send(now, s, channel, data, flags & ~AUTO_RESTART_BROKEN_SESSION);
    this.#stack.driver.kick();
    return r;
  }

  /** Up to `max` messages received on `channel` from any user (`ReceiveMessagesOnChannel`), oldest first. */
  receiveMessagesOnChannel(channel: number, max = 32): NetworkingMessagesMessage[] {
    const q = this.#channels.get(channel);
    const limit = Math.floor(max);
    if (!q || q.length === 0 || !(limit > 0)) return [];
    const out: NetworkingMessagesMessage[] = [];
    for (let m = q.shift(); m !== undefined; m = out.length < limit ? q.shift() : undefined) out.push(m);
    this.#queued -= out.length;
    if (this.#readable.size > 0) this.#pull();
    return out;
  }

  /** Accepts a user's pending session request (`AcceptSessionWithUser`); false if there is no session with a connection. */
  acceptSessionWithUser(identity: NetworkingIdentity): boolean {
    const s = this.#find(identity);
    // A session with a request: the peer's connection waiting, or its link offer through a relay.
    if (!s || (s.cid === 0 && s.state.kind !== 'offered')) return false;
    this.#host.want(this.#now(), s);
    this.#stack.driver.kick();
    return true;
  }

  /** Closes the session with a user now (`CloseSessionWithUser`, reason 1001); its unread messages are discarded. */
  closeSessionWithUser(identity: NetworkingIdentity): boolean {
    const s = this.#find(identity);
    if (!s) return false;
    this.#destroy(s, NetworkingConnectionEnd.SESSION_CLOSED, 'CloseSessionWithUser');
    return true;
  }

  /**
   * Done with a user on one channel (`CloseChannelWithUser`): its unread messages there are discarded;
   * when no channel with the user is left open, the session closes. False if the channel was not open
   * (sending or receiving on it opens it).
   */
  closeChannelWithUser(identity: NetworkingIdentity, channel: number): boolean {
    const s = this.#find(identity);
    if (!s || !s.app.channels.delete(channel)) return false;
    this.#purge(s, channel);
    if (s.app.channels.size === 0) this.#destroy(s, NetworkingConnectionEnd.SESSION_CLOSED, 'Last channel closed');
    return true;
  }

  /**
   * Direct peer-to-peer paths with one user (docs/P2P.md), overriding the facade's
   * `P2P_Transport_ICE_Enable` / `P2P_Transport_ICE_Penalty` (ms) for that user's sessions from their next
   * connection on (`enable` null: back to the facade's). Returns false for an identity that is not a
   * user or a value out of range. NetworkManager has no such setting: it never goes direct.
   */
  setUserDirectPaths(identity: NetworkingIdentity, enable: number | null, penaltyMs = 0): boolean {
    const who = this.#resolve(identity);
    if (!who || !(penaltyMs >= 0) || (enable !== null && !isIntegerIn(enable, 0, 0x7fffffff))) return false;
    if (enable === null) this.#directByKey.delete(who.key);
    else this.#directByKey.set(who.key, { enable, penaltyUs: penaltyMs * 1000 });
    let widest = this.#directDefault.enable;
    for (const d of this.#directByKey.values()) widest |= d.enable;
    this.#directWidest = { enable: widest, penaltyUs: 0 };
    return true;
  }

  /** The session's state (`GetSessionConnectionInfo`), with the connection and status fields when asked for. State 0 if there is no session. */
  getSessionConnectionInfo(identity: NetworkingIdentity, getConnection = false, getStatus = false): SessionConnectionInfo {
    const s = this.#find(identity);
    if (!s) return { state: ConnectionState.None };
    const ep = this.#host.endpoint;
    const now = this.#now();
    const direct = s.cid ? ep.directInfo(s.cid) : null;
    const st = s.state;
    let state: number = ConnectionState.None;
    let endReason = 0;
    let endDebug = '';
    if (s.cid !== 0) {
      state = ep.state(s.cid);
      const end = ep.endInfo(s.cid);
      endReason = end?.reason ?? 0;
      endDebug = end?.debug ?? '';
    } else if (st.kind === 'findingRoute') state = ConnectionState.FindingRoute;
    else if (st.kind === 'awaitingPeer' || st.kind === 'offered') state = ConnectionState.Connecting;
    else if (st.kind === 'failed') {
      state = st.state;
      endReason = st.reason;
      endDebug = st.debug;
    }
    let info: SessionConnectionInfo = { state };
    if (getConnection) {
      let remote = '';
      const vaddr = s.vaddr;
      if (vaddr) {
        const via = !isRelayPath(vaddr) ? vaddr : direct?.direct ? ep.remoteAddress(s.cid) : this.#host.relay?.pathRelay(vaddr);
        remote = via ? addressKey(via) : '';
      }
      info = {
        ...info,
        identity: s.app.identity,
        userData: 0,
        listenSocket: 0,
        remoteAddress: remote,
        remotePop: 0,
        popRelay: 0,
        connectionState: state,
        endReason,
        endDebug,
        debugDescription: `Messages session with ${s.key}${s.cid ? ` (#${s.cid})` : ''}`,
        infoFlags: s.cid ? (ep.peerInfo(s.cid)?.flags ?? 0) : 0,
        path: !vaddr ? 'none' : !isRelayPath(vaddr) ? 'udp' : direct?.direct ? 'direct' : 'relayed',
      };
    }
    if (getStatus) {
      const cs = s.cid ? ep.status(now, s.cid) : null;
      info = {
        ...info,
        ping: cs?.ping ?? -1,
        localQuality: cs?.connectionQualityLocal ?? -1,
        remoteQuality: cs?.connectionQualityRemote ?? -1,
        packetsOutPerSecond: cs?.outPacketsPerSec ?? 0,
        bytesOutPerSecond: cs?.outBytesPerSec ?? 0,
        packetsInPerSecond: cs?.inPacketsPerSec ?? 0,
        bytesInPerSecond: cs?.inBytesPerSec ?? 0,
        sendRate: cs?.sendRateBytesPerSec ?? 0,
        pendingUnreliable: cs?.pendingUnreliable ?? 0,
        pendingReliable: (cs?.pendingReliable ?? 0) + s.outboxBytes,
        sendUnacknowledgedReliable: cs?.sentUnackedReliable ?? 0,
        queueTime: cs?.queueTimeUs ?? 0,
        ...pathPings(direct, cs?.ping ?? -1, s.vaddr),
      };
    }
    return info;
  }

  /** Fires the queued `sessionRequest` and `sessionFailed` events (GodotSteam's `run_callbacks`). */
  runCallbacks(): void {
    for (let e = this.#events.shift(); e !== undefined; e = this.#events.shift()) {
      if (e.type === 'request') for (const fn of this.#listeners.of('sessionRequest')) fn(e.identity);
      else for (const fn of this.#listeners.of('sessionFailed')) fn(e.info);
    }
  }

  /** `sessionRequest(identity)` (network_messages_session_request) or `sessionFailed(info)` (network_messages_session_failed). */
  on(event: 'sessionRequest', fn: SessionRequestListener): this;
  on(event: 'sessionFailed', fn: SessionFailedListener): this;
  on(event: 'sessionRequest' | 'sessionFailed', fn: SessionRequestListener | SessionFailedListener): this {
    this.#listeners.on(event, fn as never);
    return this;
  }

  off(event: 'sessionRequest' | 'sessionFailed', fn: SessionRequestListener | SessionFailedListener): this {
    this.#listeners.off(event, fn as never);
    return this;
  }

  // ---------------------------------------------------------------- netlane extras

  /** This peer's id (derived from its key): what others pass to `sendMessageToUser`. */
  getIdentity(): bigint {
    return this.#stack.peerId;
  }

  /** The UDP address direct peers reach this one at (`ip:` identities), or null without a direct socket. */
  get localAddress(): SocketAddress | null {
    return this.#direct ? this.#stack.driver.transport.local : null;
  }

  /** This peer's route through the relays, or null (no relays, or no relay session yet). */
  get route(): string | null {
    return this.#host.relay?.route ?? null;
  }

  /** Whether this peer's id is registered in the directory of every relay in its route. */
  get registered(): boolean {
    return this.#host.relay?.registered ?? false;
  }

  /** The relay client, or null without relays. */
  get relay(): RelayClient | null {
    return this.#host.relay;
  }

  /** Moves to a new local port, as a NAT rebinding would (tests): the relays challenge the new address. Throws ERR_NETLANE_INVALID_STATE once closed (a closed instance opens no socket). */
  rebind(): void {
    rebindStack(this.#stack, this.#closed);
  }

  getStats(): NetworkingMessagesStats {
    const d = this.#stack.driver;
    const p = this.#host.stats;
    return {
      sessionRequests: p.sessionRequests,
      sessionsAccepted: p.sessionsAccepted,
      sessionsFailed: p.sessionsFailed,
      idleTimeouts: p.idleTimeouts,
      quietCloses: p.quietCloses,
      duplicateConnections: p.duplicateConnections,
      identityMismatches: p.identityMismatches,
      protocolViolations: p.protocolViolations,
      lookups: p.lookups,
      directOffersSent: p.directOffersSent,
      directOffersReceived: p.directOffersReceived,
      directOffersIgnored: p.directOffersIgnored,
      queuedMessages: this.#queued,
      fakeLost: d.fakeSend.stats.lost + d.fakeRecv.stats.lost,
      datagramsShed: d.admission.stats.shed,
      relay: this.#host.relay ? { ...this.#host.relay.stats } : null,
      endpoint: { ...this.#host.endpoint.stats },
    };
  }

  /** Closes every session and the sockets. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeStack(this.#stack);
  }

  // ---------------------------------------------------------------- sessions

  #now(): number {
    return this.#stack.runtime.scheduler.now();
  }

  #resolve(identity: NetworkingIdentity): PeerSpec | null {
    if (typeof identity === 'bigint') return identity > 0n && identity < 1n << 64n ? { key: `id:${identity}`, peerId: identity, direct: null } : null;
    if (typeof identity !== 'string') throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'identity must be a bigint peer id or an identity string');
    let parsed;
    try {
      parsed = parseIdentity(identity);
    } catch {
      return null;
    }
    if (parsed.kind === 'id') return { key: `id:${parsed.id}`, peerId: parsed.id, direct: null };
    const key = identityToString(parsed);
    if (parsed.kind === 'ip') return { key, peerId: null, direct: { address: parsed.address, port: parsed.port } };
    return { key, peerId: null, direct: null };
  }

  #find(identity: NetworkingIdentity): PeerSession<SessionApp> | null {
    const who = this.#resolve(identity);
    return who ? (this.#host.session(who.key) ?? null) : null;
  }

  /** Ends a session: its connection closes with `reason`, its unread messages go. No callback. */
  #destroy(s: PeerSession<SessionApp>, reason: number, debug: string): void {
    this.#host.close(this.#now(), s, reason, debug);
    this.#forget(s);
  }

  #forget(s: PeerSession<SessionApp>): void {
    this.#readable.delete(s);
    for (const ch of [...this.#channels.keys()]) this.#purge(s, ch);
  }

  /** Drops a session's unread messages on one channel. */
  #purge(s: PeerSession<SessionApp>, channel: number): void {
    const q = this.#channels.get(channel);
    if (!q) return;
    const kept = new Deque<NetworkingMessagesMessage>(q.length);
    for (let m = q.shift(); m !== undefined; m = q.shift()) {
      if (m.identity !== s.app.identity) kept.push(m);
      else this.#queued--;
    }
    this.#channels.set(channel, kept);
  }

  // ---------------------------------------------------------------- receiving

  /** After every service pass of the driver: the peer layer's events, then received messages. */
  #serviced(): void {
    const host = this.#host;
    for (let e = host.pollEvent(); e; e = host.pollEvent()) {
      if (e.type === 'route') continue;
      const s = e.session;
      switch (e.type) {
        case 'request':
          this.#events.push({ type: 'request', identity: s.app.identity });
          break;
        case 'failed': {
          const st = s.state;
          if (st.kind === 'failed') this.#events.push({ type: 'failed', info: { reason: st.reason, identity: s.app.identity, state: st.state, debugMessage: st.debug } });
          break;
        }
        case 'closed':
          this.#forget(s);
          break;
        case 'ended':
          // A request that was never accepted and left nothing behind: the session goes with it.
          if (!s.wanted && s.state.kind === 'idle' && s.app.channels.size === 0) host.close(this.#now(), s, 0, '');
          break;
        case 'connected':
          break;
      }
    }
    for (let s = host.pollReadable(); s; s = host.pollReadable()) this.#readable.add(s);
    if (this.#readable.size > 0) this.#pull();
  }

  /** Takes received messages off the connections into the channel queues, up to the unread limit. */
  #pull(): void {
    for (const s of this.#readable) {
      const room = MAX_QUEUED_MESSAGES - this.#queued;
      if (room <= 0) return; // the application is behind: the connections hold the rest (and their peers wait)
      if (this.#pullFrom(s, room)) this.#readable.delete(s);
    }
  }

  /** Takes up to `room` messages from a session's connection; true when it has none left. */
  #pullFrom(s: PeerSession<SessionApp>, room: number): boolean {
    const now = this.#now();
    const cid = s.cid;
    this.#pullInto = s;
    try {
      while (room > 0) {
        const want = Math.min(RECEIVE_BATCH, room);
        const n = this.#host.receive(now, s, want, this.#deliver);
        room -= n;
        if (n < want || s.cid !== cid) return true;
      }
      return false;
    } finally {
      this.#pullInto = null;
    }
  }

  readonly #deliver = (channel: number, data: Uint8Array, m: ReceivedMessage): void => {
    const s = this.#pullInto as PeerSession<SessionApp>;
    let q = this.#channels.get(channel);
    if (!q) this.#channels.set(channel, (q = new Deque()));
    q.push(new NetworkingMessagesMessage(data, s.app.identity, m.receivedAtUs, m.messageNumber, channel, m.reliable ? SendFlags.Reliable : 0));
    this.#queued++;
    s.app.channels.add(channel);
  };
}

/** The identity the application sees for a session key: a bigint for `id:N`, the key string otherwise. */
function identityOfKey(key: string): NetworkingIdentity {
  return peerIdOf(key) ?? key;
}

function numberOr(v: unknown, fallback: number): number {
  return typeof v === 'number' ? v : fallback;
}

/** The round trips of a session's paths, ms (-1 unknown): the direct one's and the relayed one's. */
function pathPings(d: DirectPathInfo | null, ping: number, vaddr: SocketAddress | null): { pingDirect: number; pingRelayed: number } {
  if (d) return { pingDirect: d.directRttUs < 0 ? -1 : d.directRttUs / 1000, pingRelayed: d.relayedRttUs < 0 ? -1 : d.relayedRttUs / 1000 };
  const relayed = vaddr !== null && isRelayPath(vaddr);
  return { pingDirect: relayed ? -1 : ping, pingRelayed: relayed ? ping : -1 };
}
