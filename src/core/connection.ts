import type { ConnectionKeys, HandshakeLayer, PeerInfo } from '../crypto/types.js';
import type { HeapEntry } from '../util/heap.js';
import { WireError } from '../wire/errors.js';
import { AckTracker, MAX_ACK_DELAY_US } from './ack-tracker.js';
import type { ConfigValues } from './config.js';
import { CongestionController } from './congestion.js';
import { IntervalStats, STATS_INTERVAL_US, connectionStatus, laneStatus, type ConnectionCounters, type StatusSource } from './connection-status.js';
import { HandshakeDriver } from './handshake-driver.js';
import { LaneScheduler, type SendQueueCounters } from './lane-scheduler.js';
import { PacketBuilder, PendingFrames, type PacketHost } from './packet-builder.js';
import { PacketReceiver, type MessageVisitor, type ReceiverHost } from './packet-receiver.js';
import { DirectPaths, type DirectPathHost, type DirectPathInfo } from './direct-path.js';
import { PathValidator, type PathHost } from './path.js';
import { ProtocolViolation } from './recv-lane.js';
import { Recovery } from './recovery.js';
import { INITIAL_RTT_US } from './rtt.js';
import { canTransition, STATE_NAMES } from './state.js';
import type { ConnectionStatus, LaneStatus } from './stats.js';
import { NO_TIME, Timer, TimerTable, US_PER_MS, keepaliveDeadline, statsDeadline, timersFor } from './timers.js';
import { ConnectionState as S, EndReason, Result, apiState, sameAddress, type ConnectionState, type EndpointEvent, type ReceivedMessage, type SocketAddress, type Transmit } from './types.js';

/** What a connection needs from its endpoint (the Endpoint implements it). */
export interface ConnectionHost {
  emit(event: EndpointEvent): void;
  /** The connection's receive queue went from empty to non-empty. */
  readable(conn: Connection): void;
  /** A send was refused with LimitExceeded, and the send queue has drained enough to take it now. */
  writable(conn: Connection): void;
  /** 32 unpredictable bits (path challenges). */
  random32(): number;
}

/** Configuration values the handshake or the packet size fixed: a live connection cannot change them. */
const FIXED_AT_CREATION = ['MTU_PacketSize', 'Unencrypted', 'Cipher', 'IP_AllowWithoutAuth', 'IPLocalHost_AllowWithoutAuth', 'KeyUpdatePackets'] as const;
/** FinWait lasts this many probe timeouts, so that the peer's retransmissions still meet our CLOSE. */
const FIN_WAIT_PTOS = 3;
/** FinWait lasts at least this long, however small the RTT estimate. */
const FIN_WAIT_MIN_US = 1_000_000;
/** FinWait lasts at most this long, so that a dead path does not hold the connection in the table. */
const FIN_WAIT_MAX_US = 5_000_000;
/** Our CLOSE is sent again this many times during FinWait, a probe timeout apart: it is not acknowledged, and may be lost. */
const CLOSE_REPEATS = 2;

/**
 * One connection: the state machine and the public commands and inputs, which it hands to its parts:
 * the handshake driver, the lane scheduler (send queue), the packet builder and receiver, recovery and
 * congestion control, the timer table, and the interval stats. Every state change goes through
 * `#setState`; the parts report what happened and the connection decides the transition.
 * Sans-IO: inputs are `handleDatagram` and `handleTimeout`, output is drained with `pollTransmit`.
 * The endpoint owns the table of connections and routes to them.
 */
export class Connection implements ConnectionCounters, SendQueueCounters, PacketHost, ReceiverHost, PathHost, DirectPathHost, StatusSource, HeapEntry {
  /** The endpoint's timer heap: this connection's deadline as last computed, and its place there. @internal */
  heapKey = NO_TIME;
  /** @internal */
  heapIndex = -1;
  /** The endpoint must recompute this connection's deadline before its next `pollTimeout`. @internal */
  timerDirty = false;
  /** The connection is in the endpoint's queue of connections that may have something to send. @internal */
  sendQueued = false;
  /** Server: the endpoint's key of this connection by client address and id (repeated CONNECT_REQUESTs). @internal */
  clientKey: string | null = null;
  /** Server: the address group the connection was admitted under (the per-address limits), or null. @internal */
  addressGroup: string | null = null;
  /** Our connection id: the handle, and the destination id of packets sent to us. */
  readonly localCid: number;
  /** The peer's connection id (0 until known). */
  remoteCid = 0;
  /**
   * Where packets go: the peer's validated address. Changes only when the endpoint allows migration, an
   * authenticated newest packet arrived from elsewhere, and that address answered a path challenge.
   */
  remote: SocketAddress;
  readonly isServer: boolean;
  /** The live configuration; `reconfigure` replaces it. */
  config: ConfigValues;
  /** Why the connection ended (EndReason) and the text that goes with it; set once it ends. */
  endReason: number = EndReason.Invalid;
  endDebug = '';
  /** Who the peer is, once the handshake has checked it. */
  peer: PeerInfo | null = null;
  readonly cc: CongestionController;
  readonly recovery: Recovery;

  // Lifetime counters (ConnectionStatus); the parts count here through their host interfaces.
  packetsSent = 0;
  packetsReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  retransmittedBytes = 0;
  duplicatePackets = 0;
  badPackets = 0;
  /** Times the connection moved to a new, validated peer address (migration). */
  pathChanges = 0;
  pathChallengesSent = 0;
  pathResponsesSent = 0;
  pathValidationsFailed = 0;
  refusedPackets = 0;
  messagesSent = 0;
  messagesReceived = 0;
  unreliableDroppedSend = 0;

  #state: ConnectionState = S.None;
  #stateEnteredUs = 0;
  readonly #host: ConnectionHost;
  #keys: ConnectionKeys | null = null;
  /** A CLOSED control packet is owed: the connection closed before the client had keys for a CLOSE frame. */
  #closedControlPending = false;
  /** A send was refused with LimitExceeded: the host hears once unsent bytes fall to this (-1: nobody waits). */
  #writableAt = -1;
  /** The idle and keepalive timers run from these. */
  #lastRecvUs: number;
  #lastKeepaliveUs = 0;
  /** Server: when the last packet that asked for an ack arrived (the client keeps the connection alive; see keepaliveDeadline). */
  #lastAskedUs = Number.NEGATIVE_INFINITY;
  /** FinWait ends then; until then our CLOSE goes out again `#closeRepeats` more times. */
  #finWaitEndUs = 0;
  #closeRepeats = 0;
  readonly #timers = new TimerTable();
  readonly #ack = new AckTracker();
  readonly #frames = new PendingFrames();
  readonly #interval = new IntervalStats();
  readonly #lanes: LaneScheduler;
  readonly #hs: HandshakeDriver;
  readonly #rx: PacketReceiver;
  readonly #tx: PacketBuilder;
  readonly #path: PathValidator;
  /** Direct paths beside the relayed one (docs/P2P.md), or null: none were allowed for this connection. */
  #direct: DirectPaths | null = null;
  /** Where the packet being processed came from when that is not `remote` (null: from `remote`). */
  #from: SocketAddress | null = null;

  constructor(host: ConnectionHost, handshake: HandshakeLayer, localCid: number, remote: SocketAddress, isServer: boolean, config: ConfigValues, now: number) {
    this.#host = host;
    this.localCid = localCid;
    this.remote = remote;
    this.isServer = isServer;
    this.config = config;
    this.cc = new CongestionController(config.MTU_PacketSize, config.SendRateMin, config.SendRateMax, INITIAL_RTT_US);
    this.#lanes = new LaneScheduler(this.#timers, this.cc, this);
    this.recovery = new Recovery(this.cc, this.#lanes);
    this.#hs = new HandshakeDriver(handshake, this.#timers);
    this.#rx = new PacketReceiver(this, this.recovery, this.#ack, this.#interval);
    this.#path = new PathValidator(this);
    this.#tx = new PacketBuilder(this, this.recovery, this.cc, this.#ack, this.#lanes, this.#interval, this.#frames, this.#path);
    this.#lastRecvUs = now;
    this.#armIdle();
    this.#armKeepalive();
    this.#timers.set(Timer.Stats, statsDeadline(now, STATS_INTERVAL_US));
  }

  /** The internal state (API-visible through `apiState`). */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The one place the state changes (STYLE.md habit 4). Emits an event when the API-visible state changes. */
  #setState(now: number, next: ConnectionState): void {
    const prev = this.#state;
    if (prev === next) return;
    if (!canTransition(prev, next)) {
      throw new Error(`netlane internal error: illegal transition ${STATE_NAMES.get(prev)} -> ${STATE_NAMES.get(next)}`);
    }
    this.#state = next;
    this.#stateEnteredUs = now;
    if (next === S.Connecting) this.#armConnect();
    if (next === S.ClosedByPeer || next === S.ProblemDetectedLocally || next === S.FinWait) this.#stopTransport();
    if (next === S.FinWait) {
      this.#finWaitEndUs = now + Math.min(FIN_WAIT_MAX_US, Math.max(FIN_WAIT_MIN_US, FIN_WAIT_PTOS * this.recovery.ptoUs()));
      this.#closeRepeats = this.#frames.close ? CLOSE_REPEATS : 0;
      this.#armFinWait(now);
    }
    const oldApi = apiState(prev);
    const newApi = apiState(next);
    if (oldApi !== newApi && !(prev === S.None && next === S.Connecting && !this.isServer)) {
      this.#host.emit({ type: 'connectionStatusChanged', connection: this.localCid, oldState: oldApi, state: newApi, remote: this.remote, endReason: this.endReason, endDebug: this.endDebug });
    }
  }

  #stopTransport(): void {
    this.recovery.discardAll();
    this.#path.clear();
    this.#lanes.dropUnreliable();
    this.#frames.probe = false;
    this.#frames.ping = false;
  }

  #warn(message: string): void {
    this.#host.emit({ type: 'warning', connection: this.localCid, message });
  }

  // ---------------------------------------------------------------- handshake

  /** Client: starts connecting (to `virtualPort` of the server's, named in the signed request; -1: none). */
  startClient(now: number, virtualPort = -1): void {
    this.#hs.startClient(now, this.localCid, this.remote, this.config, virtualPort);
    this.#setState(now, S.Connecting);
  }

  /** Server: a CONNECT_REQUEST with a valid cookie made this connection. */
  startServer(now: number, clientCid: number, keys: ConnectionKeys, replyPayload: Uint8Array, peer: PeerInfo): void {
    this.remoteCid = clientCid;
    this.#keys = keys;
    this.peer = peer;
    this.#hs.startServer(replyPayload);
    this.#setState(now, S.Connecting);
    if (peer.warning) this.#warn(peer.warning);
  }

  /**
   * Applies new configuration to a live connection. Values fixed by the handshake or the packet size
   * (`MTU_PacketSize`, `Unencrypted`, `Cipher`, `IP_AllowWithoutAuth`, `IPLocalHost_AllowWithoutAuth`,
   * `KeyUpdatePackets`) cannot change once the connection exists: returns false if one would.
   */
  reconfigure(next: ConfigValues): boolean {
    const cur = this.config;
    for (const key of FIXED_AT_CREATION) if (next[key] !== cur[key]) return false;
    this.config = next;
    this.cc.setRateLimits(next.SendRateMin, next.SendRateMax);
    // Timers armed from a configured duration move with it.
    if (this.#state === S.Connecting) this.#armConnect();
    this.#armIdle();
    this.#armKeepalive();
    return true;
  }

  /** Server: the application accepted. */
  accept(now: number, config: ConfigValues | null): Result {
    if (!this.isServer || this.#state !== S.Connecting) return Result.InvalidState;
    if (config && !this.reconfigure(config)) return Result.InvalidParam;
    this.#setState(now, S.Connected);
    this.#heard(now);
    this.#hs.sendConnectOk();
    return Result.OK;
  }

  /** Client: a CHALLENGE arrived. */
  onChallenge(now: number, version: number, cookie: Uint8Array): void {
    if (this.#state !== S.Connecting || this.isServer || this.#hs.phase === 'done') return;
    const refusal = this.#hs.refuseVersion(version);
    if (refusal !== null) {
      this.#problem(now, EndReason.Remote_BadProtocolVersion, refusal);
      return;
    }
    this.#hs.onChallenge(now, version, cookie);
  }

  /** Server: a repeated CONNECT_REQUEST (its CONNECT_OK was lost). */
  onDuplicateConnectRequest(): void {
    if (this.#state === S.Connected) this.#hs.sendConnectOk();
  }

  /** Client: CONNECT_OK arrived. */
  onConnectOk(now: number, serverCid: number, payload: Uint8Array): void {
    if (this.#state !== S.Connecting || this.isServer) return;
    const out = this.#hs.finish(serverCid, payload);
    if (!out) return;
    if (!out.ok) {
      this.#problem(now, out.reason, out.debug);
      return;
    }
    this.#keys = out.keys;
    this.peer = out.peer;
    if (out.peer.warning) this.#warn(out.peer.warning);
    this.remoteCid = serverCid;
    const rttUs = this.#hs.complete(now);
    if (rttUs !== null) this.recovery.rtt.update(rttUs, 0, 0);
    this.#heard(now);
    this.#setState(now, S.Connected);
  }

  /** A CLOSED control packet from the peer (handshake-time close). */
  onClosedControl(now: number, reason: number, debug: string): void {
    if (this.#state === S.Connecting || this.#state === S.Connected || this.#state === S.FindingRoute) {
      this.onPeerClose(now, reason, debug);
    }
  }

  /** NO_CONNECTION from the peer's address: it has no such connection. Only trusted while connecting. */
  onNoConnection(now: number): void {
    if (this.#state === S.Connecting && !this.isServer && this.#hs.phase === 'request') {
      this.onPeerClose(now, EndReason.Misc_PeerSentNoConnection, 'peer has no such connection');
    }
  }

  // ---------------------------------------------------------------- commands

  /**
   * Queues a message. Returns the message number (>= 1) on success, or the negated result code
   * (`-Result.LimitExceeded`, ...) so that the hot path allocates nothing.
   */
  send(now: number, data: Uint8Array, flags: number, laneIndex: number): number {
    const st = this.#state;
    if (st !== S.Connected && st !== S.Connecting && st !== S.FindingRoute) return -Result.InvalidState;
    const r = this.#lanes.queue(now, data, flags, laneIndex, this.config, st === S.Connected);
    if (r === -Result.LimitExceeded) {
      // Writable again once the refused message would fit, and at the latest when half the buffer is free.
      const at = Math.min(this.config.SendBufferSize - data.length, this.config.SendBufferSize >>> 1);
      this.#writableAt = this.#writableAt < 0 ? at : Math.min(this.#writableAt, at);
    }
    return r;
  }

  /** Tells the host once the send queue has drained to where a refused send would be taken. */
  #checkWritable(): void {
    if (this.#writableAt >= 0 && this.#lanes.pendingBytes <= this.#writableAt) {
      this.#writableAt = -1;
      if (this.#state === S.Connected) this.#host.writable(this);
    }
  }

  /** Sends queued messages without waiting for the Nagle timer. */
  flush(now: number): void {
    this.#lanes.flush(now);
  }

  /** `configureConnectionLanes`: lane count may only grow; weights >= 1; lower priority value first. */
  configureLanes(priorities: readonly number[], weights: readonly number[]): Result {
    return this.#lanes.configure(priorities, weights);
  }

  /** Lanes configured (at least 1). */
  get laneCount(): number {
    return this.#lanes.lanes.length;
  }

  /**
   * `closeConnection`: reason outside 1000-2999 becomes 1999 (GNS). With `linger`, pending reliable data
   * is still delivered before the connection goes away. Returns false when the handle is already closed.
   * `internal`: the library's own close (a refusal with a 5xxx reason): the reason is kept as it is.
   */
  close(now: number, reason: number, debug: string, linger: boolean, internal = false): boolean {
    const st = this.#state;
    if (st === S.FinWait || st === S.Linger || st === S.Dead) return false;
    if (st === S.Connecting || st === S.FindingRoute || st === S.Connected) {
      if (reason === 0) reason = EndReason.App_Generic;
      if (!internal && (reason < EndReason.App_Generic || reason > EndReason.AppException_Max)) {
        reason = EndReason.App_Max;
        debug = 'Invalid numeric reason code';
      }
      if (debug === '') debug = reason < EndReason.AppException_Generic ? 'Application closed connection' : 'Application closed connection in an unusual way';
      this.endReason = reason;
      this.endDebug = debug;
    }
    if (st === S.Connected) {
      if (linger && !this.#lanes.allReliableDone()) {
        this.#setState(now, S.Linger);
        this.#lanes.linger(now);
        return true;
      }
      this.#frames.close = this.#keys !== null;
    } else if (st === S.Connecting || st === S.FindingRoute) {
      // No keys on the client yet: a plain CLOSED control packet tells the server.
      this.#closedControlPending = true;
    }
    this.#setState(now, S.FinWait);
    return true;
  }

  /** Moves up to `max` received messages into `out`. */
  receive(out: ReceivedMessage[], max: number): number {
    return this.#rx.receive(out, max);
  }

  /** Takes up to `max` received messages, calling `visit` for each (no record made per message). */
  receiveEach(max: number, visit: MessageVisitor): number {
    return this.#rx.receiveEach(max, visit);
  }

  /** Received messages waiting for the application. */
  get pendingReceived(): number {
    return this.#rx.length;
  }

  // ---------------------------------------------------------------- failure and close paths

  #problem(now: number, reason: number, debug: string): void {
    const st = this.#state;
    if (st !== S.Connecting && st !== S.Connected && st !== S.FindingRoute) {
      if (st === S.Linger) {
        this.endReason = reason;
        this.endDebug = debug;
        this.#setState(now, S.FinWait);
      }
      return;
    }
    this.endReason = reason;
    this.endDebug = debug;
    if (this.#keys && st !== S.Connecting) this.#frames.close = true;
    else if (this.remoteCid !== 0 || !this.isServer) this.#closedControlPending = st === S.Connecting && this.#hs.phase !== 'hello';
    this.#setState(now, S.ProblemDetectedLocally);
  }

  /** ReceiverHost (and the control paths): the peer closed. */
  onPeerClose(now: number, reason: number, debug: string): void {
    // A CLOSE after we finished (a linger completed by an ACK earlier in the same packet): already handled.
    if (this.#state === S.FinWait || this.#state === S.Dead) return;
    this.endReason = reason;
    this.endDebug = debug;
    if (this.#state === S.Linger) {
      this.#setState(now, S.FinWait);
      return;
    }
    this.#setState(now, S.ClosedByPeer);
  }

  /** ReceiverHost: an ACK frame was processed; a lingering connection whose reliable data is all acknowledged closes. */
  onAckFrame(now: number): void {
    if (this.#state === S.Linger && this.#lanes.allReliableDone()) {
      this.#frames.close = true;
      this.#setState(now, S.FinWait);
    }
  }

  /** ReceiverHost: the receive queue went from empty to non-empty. */
  onReadable(): void {
    this.#host.readable(this);
  }

  // ---------------------------------------------------------------- receive path

  /**
   * An authenticated-or-not data packet addressed to this connection. Never throws. `from` is set when
   * it came from an address other than `remote` and the endpoint allows migration: the packet counts
   * if it authenticates, and when it is the newest seen that address is challenged (path validation);
   * the connection moves there once the peer answers from it (an old or replayed packet never starts
   * a validation, and an unanswered challenge never moves anything).
   */
  handleDatagram(now: number, data: Uint8Array, from: SocketAddress | null = null): void {
    const st = this.#state;
    if (st === S.Dead) return;
    const keys = this.#keys;
    if (!keys || (this.isServer && st === S.Connecting)) {
      this.badPackets++; // keys not ready, or data before the application accepted
      return;
    }
    const rx = this.#rx;
    this.#rollStats(now); // before this packet counts in the interval
    const plain = rx.open(keys, data);
    if (!plain) return;
    if (this.isServer) this.#hs.confirmed();
    this.#heard(now);
    if (st === S.FinWait || st === S.ClosedByPeer || st === S.ProblemDetectedLocally) {
      // Stray packet after close: remind the peer (once per RTT at most).
      if (st !== S.ClosedByPeer && now - this.#frames.lastCloseSentUs >= this.recovery.rtt.smoothedUs) this.#frames.close = true;
      return;
    }
    const source = from ?? this.remote;
    this.#from = from;
    try {
      rx.processFrames(now, plain, st === S.Linger);
    } catch (e) {
      if (e instanceof WireError) this.#problem(now, EndReason.Remote_ProtocolViolation, `malformed frame: ${e.message}`);
      else if (e instanceof ProtocolViolation) this.#problem(now, e.reason, e.message);
      else throw e;
    } finally {
      this.#from = null;
    }
    // Only the newest packet with frames other than path probes moves the peer's path (RFC 9000 9.1-9.3).
    const steering = rx.newest && rx.nonProbing && (this.#state === S.Connected || this.#state === S.Linger);
    const direct = this.#direct;
    if (direct !== null && direct.onPacket(now, source, steering)) {
      // one of this connection's paths: the direct-path prober decides
    } else if (from !== null && (direct === null || this.isServer) && !sameAddress(from, this.remote)) {
      // (a PATH_RESPONSE in this packet may have moved the connection to `from` already)
      this.#path.onPacketFrom(now, from, data.length, steering, this.recovery.rtt.ptoUs(MAX_ACK_DELAY_US));
    }
    if (this.isServer && this.#ack.dueUs !== NO_TIME) {
      // An ACK is owed: the client sent an ack-eliciting packet, and it keeps the connection alive.
      this.#lastAskedUs = now;
      this.#armKeepalive();
    }
  }

  /** ReceiverHost: a PATH_CHALLENGE arrived; its PATH_RESPONSE goes back on the path it came from. */
  onPathChallenge(data: Uint8Array): void {
    this.#path.onChallenge(this.#from ?? this.remote, data);
  }

  /** ReceiverHost: a PATH_RESPONSE arrived; if it proves the address it came from, the connection moves there. */
  onPathResponse(now: number, data: Uint8Array): void {
    const from = this.#from;
    if (this.#direct?.onResponse(now, from ?? this.remote, data)) return;
    if (from !== null && this.#path.onResponse(from, data)) this.#migrate(now, from);
  }

  // ---------------------------------------------------------------- direct paths

  /**
   * Allows direct paths for this connection, whose path now (a relay's) becomes the one it falls back
   * to; `penaltyUs` is added to a direct path's round trip when the client compares it with the relayed
   * one (`P2P_Transport_ICE_Penalty`). Once per connection; later calls do nothing.
   */
  enableDirect(now: number, penaltyUs: number): void {
    this.#direct ??= new DirectPaths(this, penaltyUs, now);
  }

  /** The peer's candidate addresses for a direct path (it sent them end to end): they are probed from now. */
  addDirectCandidates(now: number, addrs: readonly SocketAddress[]): void {
    this.#direct?.addCandidates(now, addrs);
  }

  /** Whether {@link enableDirect} was called. */
  get directEnabled(): boolean {
    return this.#direct !== null;
  }

  /** The direct and relayed paths' state, or null when direct paths are not allowed for this connection. */
  directInfo(): DirectPathInfo | null {
    return this.#direct?.info() ?? null;
  }

  /** The path packets fall back to (the relayed one) when direct paths are allowed, else the path in use. */
  get homeAddress(): SocketAddress {
    return this.#direct?.home.addr ?? this.remote;
  }

  /** DirectPathHost: the smoothed round trip of the path in use, µs, or -1. */
  pathRttUs(): number {
    const rtt = this.recovery.rtt;
    return rtt.hasSample ? rtt.smoothedUs : -1;
  }

  /** DirectPathHost: the connection moves to `to`; `failed`: what was in flight on the old path is lost, and goes again now. */
  moveTo(now: number, to: SocketAddress, failed: boolean): void {
    if (failed) this.recovery.loseInFlight(now);
    this.#migrate(now, to);
  }

  /** DirectPathHost: a PING is owed on the path in use. */
  requestPing(): void {
    this.#frames.ping = true;
  }

  /**
   * Moves the connection to `to`, a peer address that answered our challenge. Keys, lanes, streams and
   * message numbers stay; so do the RTT estimate and the congestion controller when only the port
   * changed (a NAT rebinding), otherwise both start over (RFC 9000 9.4). An ACK goes out at once on the
   * new path: the ones sent while it was being validated went to the old address.
   */
  #migrate(now: number, to: SocketAddress): void {
    const otherHost = to.address !== this.remote.address;
    this.remote = to;
    this.pathChanges++;
    this.recovery.onPathChange(otherHost);
    this.#ack.ackNow(now);
  }

  /** Our own address changed (the io driver rebound to a new port): a PING tells the peer where we are now. */
  onLocalRebind(): void {
    if (this.#state === S.Connected || this.#state === S.Linger) this.#frames.ping = true;
  }

  /** ConnectionHost's randomness, for path challenges. */
  random32(): number {
    return this.#host.random32();
  }

  // ---------------------------------------------------------------- timers

  #heard(now: number): void {
    this.#lastRecvUs = now;
    this.#armIdle();
    this.#armKeepalive();
  }

  /** The FinWait timer: the next repeat of our CLOSE, or the end of FinWait. */
  #armFinWait(now: number): void {
    this.#timers.set(Timer.FinWait, this.#closeRepeats > 0 ? Math.min(this.#finWaitEndUs, now + this.recovery.ptoUs()) : this.#finWaitEndUs);
  }

  #armConnect(): void {
    this.#timers.set(Timer.Connect, this.#stateEnteredUs + this.config.TimeoutInitial * US_PER_MS);
  }

  #armIdle(): void {
    this.#timers.set(Timer.Idle, this.#lastRecvUs + this.config.TimeoutConnected * US_PER_MS);
  }

  #armKeepalive(): void {
    this.#timers.set(Timer.Keepalive, keepaliveDeadline(this.#lastRecvUs, this.#lastKeepaliveUs, this.#lastAskedUs, this.config.KeepaliveInterval * US_PER_MS));
  }

  /** Absolute time (µs) of this connection's next timer; +Infinity if none. */
  nextTimeoutUs(now: number): number {
    const t = this.#timers;
    const st = this.#state;
    if (st === S.Connected || st === S.Linger) {
      // Mirror the deadlines the ack tracker, recovery and pacer move on every packet.
      const mtu = this.config.MTU_PacketSize;
      t.set(Timer.Loss, this.recovery.timeoutUs());
      t.set(Timer.Ack, this.#ack.pending ? this.#ack.dueUs : NO_TIME);
      const dataAt = this.#lanes.dataWantedAtUs(mtu);
      const need = dataAt !== NO_TIME ? this.#lanes.windowNeed(mtu) : 0;
      t.set(Timer.Send, need !== 0 ? Math.max(dataAt, this.cc.nextSendTimeUs(now, Math.abs(need))) : NO_TIME);
      t.set(Timer.Path, this.#direct ? Math.min(this.#path.timeoutUs(), this.#direct.timeoutUs()) : this.#path.timeoutUs());
    }
    const mask = timersFor(st, this.recovery.ackElicitingInFlight !== 0);
    // The stats interval wakes the connection only if it saw traffic; an idle one is closed lazily (#rollStats).
    return t.next((st === S.Connected || st === S.Linger) && this.#interval.active ? mask | (1 << Timer.Stats) : mask);
  }

  /** Fires whatever timers have expired. */
  handleTimeout(now: number): void {
    const t = this.#timers;
    const st = this.#state;
    switch (st) {
      case S.Connecting:
        if (t.expired(Timer.Connect, now)) {
          this.#problem(now, EndReason.Misc_Timeout, this.isServer ? "App didn't accept or close incoming connection in time." : 'Timed out attempting to connect');
          return;
        }
        if (!this.isServer && t.expired(Timer.HandshakeRetry, now)) this.#hs.onRetryTimer(now);
        return;
      case S.FinWait:
        if (!t.expired(Timer.FinWait, now)) return;
        if (now >= this.#finWaitEndUs) {
          this.#setState(now, S.Dead);
          return;
        }
        this.#closeRepeats--;
        this.#frames.close = true;
        this.#armFinWait(now);
        return;
      case S.Connected:
      case S.Linger:
        if (t.expired(Timer.Idle, now)) {
          this.#problem(now, EndReason.Misc_Timeout, 'Connection timed out: nothing heard from the peer');
          return;
        }
        if (this.recovery.onTimeout(now)) {
          // The tail-loss probe carries new data if any is queued, otherwise unacknowledged data again. A
          // later probe (a whole probe timeout without an ack) always queues the outstanding data again:
          // a receiver whose reorder buffer is full refuses new data beyond its hole, and only the hole's
          // bytes, which the lanes send before their new data, get an ack out of it.
          this.#frames.probe = true;
          if (this.recovery.ptoCount > 1 || this.#lanes.dataWantedAtUs(this.config.MTU_PacketSize) === NO_TIME) this.recovery.queueProbeData();
        }
        if (t.expired(Timer.Path, now)) {
          this.#path.onTimeout(now);
          this.#direct?.onTimeout(now);
        }
        if (this.recovery.ackElicitingInFlight === 0 && t.expired(Timer.Keepalive, now)) {
          this.#frames.ping = true;
          this.#lastKeepaliveUs = now;
          this.#armKeepalive();
        }
        this.#rollStats(now);
        return;
      case S.None:
      case S.FindingRoute:
      case S.ClosedByPeer:
      case S.ProblemDetectedLocally:
      case S.Dead:
        return;
      default: {
        const never: never = st;
        void never;
      }
    }
  }

  /** Closes the stats interval if it is over (Timer.Stats is never a wake-up of its own: see timers.ts). */
  #rollStats(now: number): void {
    const t = this.#timers;
    if (!t.expired(Timer.Stats, now) || (this.#state !== S.Connected && this.#state !== S.Linger)) return;
    this.#interval.roll(now, this.#rx.largestPn);
    t.set(Timer.Stats, statsDeadline(now, STATS_INTERVAL_US));
  }

  // ---------------------------------------------------------------- send path

  /** The next datagram this connection wants sent now, or null. */
  pollTransmit(now: number): Transmit | null {
    const hs = this.#hs.poll(now, this.localCid, this.remoteCid, this.config);
    if (hs) return this.#tx.control(hs);
    if (this.#closedControlPending) {
      this.#closedControlPending = false;
      return this.#tx.control({ type: 'closed', destinationCid: this.remoteCid, sourceCid: this.localCid, reason: this.endReason, debug: this.endDebug });
    }
    const st = this.#state;
    const keys = this.#keys;
    if (!keys) return null;
    if (st === S.Connected || st === S.Linger) {
      this.#rollStats(now); // a STATS frame owed since the interval ended rides on this packet
      if (this.#path.wantsProbe) {
        const probe = this.#tx.probe(now, keys);
        if (probe) return probe;
      }
      const direct = this.#direct;
      if (direct !== null && direct.wantsProbe(now)) {
        const probe = this.#tx.probe(now, keys, direct);
        if (probe) return probe;
      }
      const t = this.#tx.data(now, keys, false);
      if (this.#writableAt >= 0) this.#checkWritable();
      return t;
    }
    if (this.#frames.close && (st === S.FinWait || st === S.ProblemDetectedLocally)) return this.#tx.data(now, keys, true);
    return null;
  }

  // ---------------------------------------------------------------- status

  /** Bytes the window and pacer allow now, less what is already queued. */
  sendBudget(now: number): number {
    if (this.#state !== S.Connected) return 0;
    return Math.max(0, Math.floor(this.cc.sendAllowance(now)) - this.#lanes.pendingBytes);
  }

  /** The real-time status (`getConnectionRealTimeStatus`). */
  status(now: number): ConnectionStatus {
    this.#rollStats(now);
    return connectionStatus(this, this.#lanes, this.#interval, this.#rx.droppedUnreliable(), this.sendBudget(now), this.#keys?.keyUpdates ?? 0);
  }

  /** The status of one lane, or null for a lane that does not exist. */
  laneStatus(lane: number): LaneStatus | null {
    return laneStatus(this.#lanes, lane, this.cc.pacingRate);
  }
}
