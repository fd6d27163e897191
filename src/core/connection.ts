import { Deque } from '../util/deque.js';
import { ReplayWindow } from '../util/replay-window.js';
import { Reader } from '../wire/reader.js';
import { Writer, varintSize } from '../wire/writer.js';
import { WireError } from '../wire/errors.js';
import { decodeDataHeader, encodeDataHeader, expandPacketNumber, packetNumberLength, type DataHeader } from '../wire/header.js';
import {
  FrameType,
  ackFrameSize,
  decodeFrame,
  encodeAckRanges,
  encodeClose,
  encodeFrame,
  encodeReliableHeader,
  encodeUnreliableHeader,
  reliableHeaderSize,
  unreliableHeaderSize,
} from '../wire/frames.js';
import { encodeControl, HELLO_MIN_SIZE, type ControlPacket } from '../wire/control.js';
import { AckTracker, ACK_DELAY_SHIFT } from './ack-tracker.js';
import { CongestionController } from './congestion.js';
import { MAX_RELIABLE_MESSAGE_SIZE, MAX_UNRELIABLE_MESSAGE_SIZE, type ConfigValues } from './config.js';
import type { ClientHandshake, ConnectionKeys, HandshakeLayer, PeerInfo } from '../crypto/types.js';
import { ProtocolViolation, RecvLane, type MessageSink } from './recv-lane.js';
import { Recovery, type RecoveryListener, type SentPacket } from './recovery.js';
import { SendLane } from './send-lane.js';
import { canTransition, STATE_NAMES } from './state.js';
import { RateMeter, type ConnectionStatus, type LaneStatus } from './stats.js';
import { ConnectionState as S, EndReason, Result, SendFlags, apiState, type ConnectionState, type EndpointEvent, type ReceivedMessage, type SocketAddress, type Transmit } from './types.js';

/** What a connection needs from its endpoint (the Endpoint implements it). */
export interface ConnectionHost {
  emit(event: EndpointEvent): void;
  /** The connection's receive queue went from empty to non-empty. */
  readable(conn: Connection): void;
}

/** Client handshake packets are repeated this often until answered (GNS k_usecConnectRetryInterval). */
const HANDSHAKE_RETRY_US = 500_000;
/** A cookie older than this is refreshed with a new HELLO instead of being reused. */
const COOKIE_REFRESH_US = 2_500_000;
/** NoDelay messages that cannot leave within this are dropped (GNS documents ~200 ms). */
const NO_DELAY_LIMIT_US = 200_000;
/** Stats interval: rates and quality are recomputed, and a STATS frame is sent, this often. */
const STATS_INTERVAL_US = 1_000_000;
/** A segment smaller than this is not started at the end of a packet ("no tiny slivers", GNS). */
const MIN_SEGMENT_BYTES = 16;

const NO_TIME = Number.POSITIVE_INFINITY;

/**
 * One connection: the state machine, the handshake as the core sees it, reliable and unreliable
 * lanes, acknowledgements, loss recovery, congestion control and pacing, Nagle, timers and stats.
 * Sans-IO: inputs are `handleDatagram` and `handleTimeout`, output is drained with `pollTransmit`.
 * The endpoint owns the table of connections and routes to them.
 */
export class Connection implements MessageSink, RecoveryListener {
  /** Our connection id: the handle, and the destination id of packets sent to us. */
  readonly localCid: number;
  /** The peer's connection id (0 until known). */
  remoteCid = 0;
  /** Where packets go. Changes only when the endpoint allows migration and an authenticated, newest packet arrives from elsewhere. */
  remote: SocketAddress;
  /** Times the path moved to a new address (migration). */
  pathChanges = 0;
  readonly isServer: boolean;
  config: ConfigValues;

  #state: ConnectionState = S.None;
  endReason: number = EndReason.Invalid;
  endDebug = '';
  readonly #host: ConnectionHost;
  readonly #handshake: HandshakeLayer;
  #stateEnteredUs = 0;

  // Handshake.
  #clientHs: ClientHandshake | null = null;
  #cookie: Uint8Array | null = null;
  #cookieAtUs = 0;
  #hsPhase: 'hello' | 'request' | 'done' = 'done';
  #hsRetryUs = NO_TIME;
  #hsRequestFirstUs = 0;
  #hsRequestsSent = 0;
  #sendHello = false;
  #sendRequest = false;
  #sendConnectOk = false;
  #connectOkPayload: Uint8Array | null = null;
  #keys: ConnectionKeys | null = null;
  /** The negotiated protocol version (client: from the CHALLENGE). */
  #version = 0;
  /** Who the peer is, once the handshake has checked it. */
  peer: PeerInfo | null = null;

  // Close.
  #closeFramePending = false;
  #closedControlPending = false;
  #lastCloseSentUs = -NO_TIME;
  #finWaitEndUs = NO_TIME;

  // Transport.
  readonly cc: CongestionController;
  readonly recovery: Recovery;
  readonly #ack = new AckTracker();
  readonly #replay = new ReplayWindow();
  readonly #lanes: SendLane[] = [new SendLane(0)];
  readonly #recvLanes: (RecvLane | undefined)[] = [];
  readonly #recvQueue = new Deque<ReceivedMessage>(64);
  #recvQueueBytes = 0;
  /** Unsent bytes over all lanes (new reliable stream bytes + unreliable). */
  #pendingBytes = 0;
  #nagleDeadlineUs = NO_TIME;
  #lastRecvUs = 0;
  #lastKeepaliveUs = 0;
  #pingPending = false;
  #probePending = false;
  #statsPending = false;
  #statsRollUs = 0;
  #intervalFirstPn = -1;
  #intervalPackets = 0;
  #qualityLocal = -1;
  #qualityRemote = -1;
  readonly #outMeter = new RateMeter();
  readonly #inMeter = new RateMeter();

  // Packet assembly scratch (one per connection; the transmit copies out of it).
  readonly #scratch: Uint8Array;
  readonly #w: Writer;
  readonly #r = new Reader(new Uint8Array(0));
  readonly #hdr: DataHeader = { keyPhase: false, destinationCid: 0, truncatedPn: 0, pnLength: 2 };

  // Lifetime counters (ConnectionStatus).
  packetsSent = 0;
  packetsReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  retransmittedBytes = 0;
  duplicatePackets = 0;
  badPackets = 0;
  refusedPackets = 0;
  messagesSent = 0;
  messagesReceived = 0;
  unreliableDroppedSend = 0;
  #unreliableDroppedRecvQueue = 0;

  constructor(host: ConnectionHost, handshake: HandshakeLayer, localCid: number, remote: SocketAddress, isServer: boolean, config: ConfigValues, now: number) {
    this.#host = host;
    this.#handshake = handshake;
    this.localCid = localCid;
    this.remote = remote;
    this.isServer = isServer;
    this.config = config;
    this.#scratch = new Uint8Array(config.MTU_PacketSize + 64);
    this.#w = new Writer(this.#scratch);
    this.cc = new CongestionController(config.MTU_PacketSize, config.SendRateMin, config.SendRateMax, 333_000);
    this.recovery = new Recovery(this.cc, this);
    this.#lastRecvUs = now;
    this.#statsRollUs = now;
  }

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
    if (next === S.ClosedByPeer || next === S.ProblemDetectedLocally || next === S.FinWait) this.#stopTransport();
    if (next === S.FinWait) {
      this.#finWaitEndUs = now + Math.min(5_000_000, Math.max(1_000_000, 3 * this.recovery.ptoUs()));
    }
    const oldApi = apiState(prev);
    const newApi = apiState(next);
    if (oldApi !== newApi && !(prev === S.None && next === S.Connecting && !this.isServer)) {
      this.#host.emit({ type: 'connectionStatusChanged', connection: this.localCid, oldState: oldApi, state: newApi, remote: this.remote, endReason: this.endReason, endDebug: this.endDebug });
    }
  }

  #stopTransport(): void {
    this.recovery.discardAll();
    for (const lane of this.#lanes) this.unreliableDroppedSend += lane.dropUnreliable();
    this.#probePending = false;
    this.#pingPending = false;
  }

  // ---------------------------------------------------------------- handshake

  /** Client: starts connecting. */
  startClient(now: number): void {
    this.#clientHs = this.#handshake.startClient(this.localCid, this.remote, this.config);
    this.#setState(now, S.Connecting);
    this.#hsPhase = 'hello';
    this.#sendHello = true;
    this.#hsRetryUs = now + HANDSHAKE_RETRY_US;
  }

  /** Server: a CONNECT_REQUEST with a valid cookie made this connection. */
  startServer(now: number, clientCid: number, keys: ConnectionKeys, replyPayload: Uint8Array, peer: PeerInfo): void {
    this.remoteCid = clientCid;
    this.#keys = keys;
    this.peer = peer;
    this.#connectOkPayload = replyPayload;
    this.#setState(now, S.Connecting);
    if (peer.warning) this.#host.emit({ type: 'warning', connection: this.localCid, message: peer.warning });
  }

  /**
   * Applies new configuration to a live connection. Values fixed by the handshake or the packet size
   * (`MTU_PacketSize`, `Unencrypted`, `Cipher`, `IP_AllowWithoutAuth`, `IPLocalHost_AllowWithoutAuth`,
   * `KeyUpdatePackets`) cannot change once the connection exists: returns false if one would.
   */
  reconfigure(next: ConfigValues): boolean {
    const cur = this.config;
    if (
      next.MTU_PacketSize !== cur.MTU_PacketSize ||
      next.Unencrypted !== cur.Unencrypted ||
      next.Cipher !== cur.Cipher ||
      next.IP_AllowWithoutAuth !== cur.IP_AllowWithoutAuth ||
      next.IPLocalHost_AllowWithoutAuth !== cur.IPLocalHost_AllowWithoutAuth ||
      next.KeyUpdatePackets !== cur.KeyUpdatePackets
    ) {
      return false;
    }
    this.config = next;
    this.cc.setRateLimits(next.SendRateMin, next.SendRateMax);
    return true;
  }

  /** Server: the application accepted. */
  accept(now: number, config: ConfigValues | null): Result {
    if (!this.isServer || this.#state !== S.Connecting) return Result.InvalidState;
    if (config && !this.reconfigure(config)) return Result.InvalidParam;
    this.#setState(now, S.Connected);
    this.#lastRecvUs = now;
    this.#sendConnectOk = true;
    return Result.OK;
  }

  /** Client: a CHALLENGE arrived. */
  onChallenge(now: number, version: number, cookie: Uint8Array): void {
    if (this.#state !== S.Connecting || this.isServer || this.#hsPhase === 'done') return;
    if (version < this.#handshake.minProtocolVersion || version > this.#handshake.maxProtocolVersion) {
      this.#problem(now, EndReason.Remote_BadProtocolVersion, `server offered protocol ${version}; we speak ${this.#handshake.minProtocolVersion}..${this.#handshake.maxProtocolVersion}`);
      return;
    }
    this.#version = version;
    this.#cookie = cookie.slice();
    this.#cookieAtUs = now;
    if (this.#hsPhase === 'hello') {
      this.#hsPhase = 'request';
      this.#hsRequestsSent = 0;
      this.#sendRequest = true;
      this.#hsRetryUs = now + HANDSHAKE_RETRY_US;
    }
  }

  /** Server: a repeated CONNECT_REQUEST (its CONNECT_OK was lost). */
  onDuplicateConnectRequest(): void {
    if (this.#state === S.Connected) this.#sendConnectOk = true;
  }

  /** Client: CONNECT_OK arrived. */
  onConnectOk(now: number, serverCid: number, payload: Uint8Array): void {
    if (this.#state !== S.Connecting || this.isServer || this.#hsPhase !== 'request' || !this.#clientHs) return;
    const out = this.#clientHs.finish(serverCid, payload);
    if (!out.ok) {
      this.#problem(now, out.reason, out.debug);
      return;
    }
    this.#keys = out.keys;
    this.peer = out.peer;
    if (out.peer.warning) this.#host.emit({ type: 'warning', connection: this.localCid, message: out.peer.warning });
    this.remoteCid = serverCid;
    this.#hsPhase = 'done';
    this.#hsRetryUs = NO_TIME;
    this.#sendRequest = false;
    this.#clientHs = null;
    // Karn: only an unambiguous exchange gives an RTT sample.
    if (this.#hsRequestsSent === 1) this.recovery.rtt.update(now - this.#hsRequestFirstUs, 0, 0);
    this.#lastRecvUs = now;
    this.#setState(now, S.Connected);
  }

  /** A CLOSED control packet from the peer (handshake-time close). */
  onClosedControl(now: number, reason: number, debug: string): void {
    if (this.#state === S.Connecting || this.#state === S.Connected || this.#state === S.FindingRoute) {
      this.#closedByPeer(now, reason, debug);
    }
  }

  /** NO_CONNECTION from the peer's address: it has no such connection. Only trusted while connecting. */
  onNoConnection(now: number): void {
    if (this.#state === S.Connecting && !this.isServer && this.#hsPhase === 'request') {
      this.#closedByPeer(now, EndReason.Misc_PeerSentNoConnection, 'peer has no such connection');
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
    const lane = this.#lanes[laneIndex];
    if (!lane) return -Result.InvalidParam;
    const reliable = (flags & SendFlags.Reliable) !== 0;
    const size = data.length;
    if (reliable) {
      if (size > MAX_RELIABLE_MESSAGE_SIZE || size > this.config.SendBufferSize) return -Result.InvalidParam;
    } else if (size > MAX_UNRELIABLE_MESSAGE_SIZE) {
      return -Result.InvalidParam;
    }
    if (this.#pendingBytes + size > this.config.SendBufferSize) return -Result.LimitExceeded;
    const wasIdle = lane.items.length === 0;
    let num: number;
    let queued = size;
    if (reliable) {
      const before = lane.stream.end;
      num = lane.queueReliable(data);
      queued = lane.stream.end - before; // framing header included
    } else {
      let dropAfter = NO_TIME;
      if ((flags & SendFlags.NoDelay) !== 0) {
        // NoDelay: refuse now if it cannot go out soon (not connected yet, or the queue is too deep).
        if (st !== S.Connected || this.#queueTimeUs(this.#pendingBytes) > NO_DELAY_LIMIT_US) {
          this.unreliableDroppedSend++;
          lane.nextMessageNumber++;
          return -Result.Ignored;
        }
        dropAfter = now + NO_DELAY_LIMIT_US;
      }
      // Copy: the caller may reuse its buffer as soon as send returns.
      num = lane.queueUnreliable(data.slice(), (flags & SendFlags.Latest) !== 0, dropAfter);
    }
    this.messagesSent++;
    if (wasIdle) this.#activateLane(lane);
    this.#pendingBytes += queued;
    if ((flags & SendFlags.NoNagle) !== 0) this.#nagleDeadlineUs = now;
    else if (this.#nagleDeadlineUs === NO_TIME) this.#nagleDeadlineUs = now + this.config.NagleTime;
    return num;
  }

  /** Sends queued messages without waiting for the Nagle timer. */
  flush(now: number): void {
    if (this.#pendingBytes > 0) this.#nagleDeadlineUs = now;
  }

  /** `configureConnectionLanes`: lane count may only grow; weights >= 1; lower priority value first. */
  configureLanes(priorities: readonly number[], weights: readonly number[]): Result {
    const n = priorities.length;
    if (n < 1 || n > 255 || weights.length !== n || n < this.#lanes.length) return Result.InvalidParam;
    for (let i = 0; i < n; i++) {
      const w = weights[i] as number;
      const p = priorities[i] as number;
      if (!Number.isInteger(w) || w < 1 || w > 0xffff || !Number.isInteger(p)) return Result.InvalidParam;
    }
    while (this.#lanes.length < n) this.#lanes.push(new SendLane(this.#lanes.length));
    for (let i = 0; i < n; i++) {
      const lane = this.#lanes[i] as SendLane;
      lane.priority = priorities[i] as number;
      lane.weight = weights[i] as number;
    }
    return Result.OK;
  }

  get laneCount(): number {
    return this.#lanes.length;
  }

  /**
   * `closeConnection`: reason outside 1000-2999 becomes 1999 (GNS). With `linger`, pending reliable data
   * is still delivered before the connection goes away. Returns false when the handle is already closed.
   */
  close(now: number, reason: number, debug: string, linger: boolean): boolean {
    const st = this.#state;
    if (st === S.FinWait || st === S.Linger || st === S.Dead) return false;
    if (st === S.Connecting || st === S.FindingRoute || st === S.Connected) {
      if (reason === 0) reason = EndReason.App_Generic;
      if (reason < 1000 || reason > 2999) {
        reason = EndReason.App_Max;
        debug = 'Invalid numeric reason code';
      }
      if (debug === '') debug = reason < 2000 ? 'Application closed connection' : 'Application closed connection in an unusual way';
      this.endReason = reason;
      this.endDebug = debug;
    }
    if (st === S.Connected) {
      if (linger && !this.#allReliableDone()) {
        this.#setState(now, S.Linger);
        for (const lane of this.#lanes) this.unreliableDroppedSend += lane.dropUnreliable();
        this.#recomputePending();
        this.#nagleDeadlineUs = now;
        return true;
      }
      this.#closeFramePending = this.#keys !== null;
    } else if (st === S.Connecting || st === S.FindingRoute) {
      // No keys on the client yet: a plain CLOSED control packet tells the server.
      this.#closedControlPending = true;
    }
    this.#setState(now, S.FinWait);
    return true;
  }

  #allReliableDone(): boolean {
    for (const lane of this.#lanes) if (!lane.allReliableDone()) return false;
    return true;
  }

  #recomputePending(): void {
    let n = 0;
    for (const lane of this.#lanes) n += lane.pendingNewReliableBytes + lane.pendingUnreliableBytes;
    this.#pendingBytes = n;
  }

  /** Moves up to `max` received messages into `out`. */
  receive(out: ReceivedMessage[], max: number): number {
    let n = 0;
    while (n < max && this.#recvQueue.length > 0) {
      const m = this.#recvQueue.shift() as ReceivedMessage;
      this.#recvQueueBytes -= m.data.length;
      out.push(m);
      n++;
    }
    return n;
  }

  get pendingReceived(): number {
    return this.#recvQueue.length;
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
    if (this.#keys && st !== S.Connecting) this.#closeFramePending = true;
    else if (this.remoteCid !== 0 || !this.isServer) this.#closedControlPending = st === S.Connecting && this.#hsPhase !== 'hello';
    this.#setState(now, S.ProblemDetectedLocally);
  }

  #closedByPeer(now: number, reason: number, debug: string): void {
    this.endReason = reason;
    this.endDebug = debug;
    if (this.#state === S.Linger) {
      this.#setState(now, S.FinWait);
      return;
    }
    this.#setState(now, S.ClosedByPeer);
  }

  // ---------------------------------------------------------------- receive path

  /**
   * An authenticated-or-not data packet addressed to this connection. Never throws. `from` is set when
   * it came from an address other than `remote` and the endpoint allows migration: the path moves there
   * if the packet authenticates and is the newest seen (an old or replayed packet never moves it).
   */
  handleDatagram(now: number, data: Uint8Array, from: SocketAddress | null = null): void {
    const st = this.#state;
    if (st === S.Dead) return;
    const keys = this.#keys;
    if (!keys || (this.isServer && st === S.Connecting)) {
      this.badPackets++; // keys not ready, or data before the application accepted
      return;
    }
    const r = this.#r;
    const hdr = this.#hdr;
    let headerLen: number;
    try {
      r.reset(data);
      decodeDataHeader(r, hdr);
      headerLen = r.position;
    } catch {
      this.badPackets++;
      return;
    }
    if (data.length - headerLen < keys.overhead + 1) {
      this.badPackets++;
      return;
    }
    const pn = expandPacketNumber(this.#replay.largest, hdr.truncatedPn, hdr.pnLength);
    if (!this.#replay.isNew(pn)) {
      this.duplicatePackets++;
      return;
    }
    const plain = keys.open(pn, data.subarray(0, headerLen), data.subarray(headerLen));
    if (!plain) {
      this.badPackets++;
      return;
    }
    if (from !== null && pn > this.#replay.largest) {
      this.remote = from;
      this.pathChanges++;
    }
    this.#replay.mark(pn);
    this.#lastRecvUs = now;
    this.packetsReceived++;
    this.bytesReceived += data.length;
    this.#inMeter.add(data.length);
    this.#intervalPackets++;
    if (this.#intervalFirstPn < 0) this.#intervalFirstPn = pn;
    if (st === S.FinWait || st === S.ClosedByPeer || st === S.ProblemDetectedLocally) {
      // Stray packet after close: remind the peer (once per RTT at most).
      if (st !== S.ClosedByPeer && now - this.#lastCloseSentUs >= this.recovery.rtt.smoothedUs) this.#closeFramePending = true;
      return;
    }
    try {
      this.#processFrames(now, pn, plain);
    } catch (e) {
      if (e instanceof WireError) this.#problem(now, EndReason.Remote_ProtocolViolation, `malformed frame: ${e.message}`);
      else if (e instanceof ProtocolViolation) this.#problem(now, e.reason, e.message);
      else throw e;
    }
  }

  #processFrames(now: number, pn: number, plain: Uint8Array): void {
    const r = this.#r;
    r.reset(plain);
    let lane = 0;
    let ackEliciting = false;
    let immediate = false;
    let refused = false;
    const lingering = this.#state === S.Linger;
    while (r.remaining > 0) {
      const f = decodeFrame(r);
      switch (f.type) {
        case 'padding':
          break;
        case 'ping':
          ackEliciting = true;
          immediate = true;
          break;
        case 'ack':
          if (!this.recovery.onAck(now, f.lo, f.hi, f.ackDelay << ACK_DELAY_SHIFT)) {
            throw new ProtocolViolation(EndReason.Remote_ProtocolViolation, 'ack of a packet never sent');
          }
          this.#afterAck(now);
          break;
        case 'lane':
          lane = f.lane;
          break;
        case 'reliable': {
          ackEliciting = true;
          if (lingering) break; // GNS: data received while lingering is discarded
          const rl = this.#recvLane(lane);
          const end = f.offset + f.data.length;
          if (rl.isNewReliable(f.offset, end) && this.#recvQueueFull()) {
            refused = true;
            break;
          }
          if (!rl.onReliable(f.offset, f.data, this.config.RecvBufferSize - this.#recvQueueBytes)) refused = true;
          break;
        }
        case 'unreliable':
          ackEliciting = true;
          if (lingering) break;
          if (this.#recvQueueFull()) {
            if (f.offset === 0) this.#unreliableDroppedRecvQueue++;
            break;
          }
          this.#recvLane(lane).onUnreliable(f.messageNumber, f.offset, f.last, f.latest, f.data);
          break;
        case 'close':
          this.#closedByPeer(now, f.reason, f.debug);
          return;
        case 'stats':
          this.#qualityRemote = f.quality < 0 ? -1 : f.quality / 1000;
          break;
        default: {
          const never: never = f;
          void never;
        }
      }
    }
    if (refused) {
      // Not acknowledged: the sender sees the packet as lost and retries (GNS Test_recv_buf_full).
      this.refusedPackets++;
      return;
    }
    this.#ack.onPacket(now, pn, ackEliciting, immediate);
  }

  #afterAck(now: number): void {
    if (this.#state === S.Linger && this.#allReliableDone()) {
      this.#closeFramePending = true;
      this.#setState(now, S.FinWait);
    }
  }

  #recvLane(i: number): RecvLane {
    let l = this.#recvLanes[i];
    if (!l) {
      l = new RecvLane(i, this, this.config.RecvMaxMessageSize);
      this.#recvLanes[i] = l;
    }
    return l;
  }

  #recvQueueFull(): boolean {
    if (this.#recvQueue.length >= this.config.RecvBufferMessages) return true;
    let held = this.#recvQueueBytes;
    for (const l of this.#recvLanes) if (l) held += l.oooBytes + l.partialReliableBytes;
    return held >= this.config.RecvBufferSize;
  }

  /** MessageSink: a lane completed a message. */
  deliver(lane: number, messageNumber: number, reliable: boolean, data: Uint8Array): void {
    this.#recvQueue.push({ connection: this.localCid, lane, messageNumber, reliable, data, receivedAtUs: this.#lastRecvUs });
    if (this.#recvQueue.length === 1) this.#host.readable(this);
    this.#recvQueueBytes += data.length;
    this.messagesReceived++;
  }

  /** RecoveryListener: a reliable segment was acknowledged. */
  onSegmentAcked(lane: number, offset: number, len: number): void {
    this.#lanes[lane]?.onAcked(offset, len);
  }

  /** RecoveryListener: a reliable segment was lost (or is probed). */
  onSegmentLost(lane: number, offset: number, len: number): void {
    this.#lanes[lane]?.onLost(offset, len);
  }

  // ---------------------------------------------------------------- timers

  /** Absolute time (µs) of this connection's next timer; +Infinity if none. */
  nextTimeoutUs(now: number): number {
    const st = this.#state;
    switch (st) {
      case S.Connecting: {
        const give = this.#stateEnteredUs + this.config.TimeoutInitial * 1000;
        return Math.min(give, this.isServer ? NO_TIME : this.#hsRetryUs);
      }
      case S.FinWait:
        return this.#finWaitEndUs;
      case S.Connected:
      case S.Linger: {
        let t = this.#lastRecvUs + this.config.TimeoutConnected * 1000;
        t = Math.min(t, this.recovery.timeoutUs(), this.#statsRollUs + STATS_INTERVAL_US);
        if (this.#ack.pending) t = Math.min(t, this.#ack.dueUs);
        if (this.recovery.ackElicitingInFlight === 0) t = Math.min(t, Math.max(this.#lastRecvUs, this.#lastKeepaliveUs) + this.config.KeepaliveInterval * 1000);
        const dataAt = this.#dataWantedAtUs();
        if (dataAt !== NO_TIME && this.cc.windowOpen()) t = Math.min(t, Math.max(dataAt, this.cc.nextSendTimeUs(now, this.config.MTU_PacketSize)));
        return t;
      }
      default:
        return NO_TIME;
    }
  }

  /** When queued data wants to go (retransmissions now; new data at the Nagle deadline or when a packet is full). */
  #dataWantedAtUs(): number {
    for (const lane of this.#lanes) if (!lane.retransmit.isEmpty()) return 0;
    if (this.#pendingBytes === 0) return NO_TIME;
    if (this.#pendingBytes >= this.config.MTU_PacketSize - 64) return 0;
    return this.#nagleDeadlineUs;
  }

  /** Fires whatever timers have expired. */
  handleTimeout(now: number): void {
    const st = this.#state;
    if (st === S.Connecting) {
      if (now >= this.#stateEnteredUs + this.config.TimeoutInitial * 1000) {
        this.#problem(now, EndReason.Misc_Timeout, this.isServer ? "App didn't accept or close incoming connection in time." : 'Timed out attempting to connect');
        return;
      }
      if (!this.isServer && now >= this.#hsRetryUs) {
        this.#hsRetryUs = now + HANDSHAKE_RETRY_US;
        if (this.#hsPhase === 'request' && now - this.#cookieAtUs < COOKIE_REFRESH_US) this.#sendRequest = true;
        else {
          this.#hsPhase = 'hello';
          this.#sendHello = true;
        }
      }
      return;
    }
    if (st === S.FinWait) {
      if (now >= this.#finWaitEndUs) this.#setState(now, S.Dead);
      return;
    }
    if (st !== S.Connected && st !== S.Linger) return;
    if (now >= this.#lastRecvUs + this.config.TimeoutConnected * 1000) {
      this.#problem(now, EndReason.Misc_Timeout, 'Connection timed out: nothing heard from the peer');
      return;
    }
    if (this.recovery.onTimeout(now)) this.#probePending = true;
    if (this.recovery.ackElicitingInFlight === 0 && now >= Math.max(this.#lastRecvUs, this.#lastKeepaliveUs) + this.config.KeepaliveInterval * 1000) {
      this.#pingPending = true;
      this.#lastKeepaliveUs = now;
    }
    this.#rollStats(now);
  }

  #rollStats(now: number): void {
    if (now - this.#statsRollUs < STATS_INTERVAL_US) return;
    this.#outMeter.roll(now, 1);
    this.#inMeter.roll(now, 1);
    const largest = this.#replay.largest;
    if (this.#intervalFirstPn >= 0 && largest >= this.#intervalFirstPn) {
      const expected = largest - this.#intervalFirstPn + 1;
      this.#qualityLocal = Math.min(1, this.#intervalPackets / expected);
    }
    this.#intervalFirstPn = -1;
    this.#intervalPackets = 0;
    this.#statsRollUs = now;
    this.#statsPending = true;
  }

  // ---------------------------------------------------------------- send path

  /** The next datagram this connection wants sent now, or null. */
  pollTransmit(now: number): Transmit | null {
    if (this.#sendHello) {
      this.#sendHello = false;
      return this.#control({
        type: 'hello',
        version: this.#handshake.maxProtocolVersion,
        clientCid: this.localCid,
        length: Math.max(HELLO_MIN_SIZE, Math.min(this.config.MTU_PacketSize, 1200)),
      });
    }
    if (this.#sendRequest && this.#cookie && this.#clientHs) {
      this.#sendRequest = false;
      if (this.#hsRequestsSent === 0) this.#hsRequestFirstUs = now;
      this.#hsRequestsSent++;
      return this.#control({ type: 'connectRequest', version: this.#version, clientCid: this.localCid, cookie: this.#cookie, payload: this.#clientHs.request(this.#cookie, this.#version) });
    }
    if (this.#sendConnectOk && this.#connectOkPayload) {
      this.#sendConnectOk = false;
      return this.#control({ type: 'connectOk', clientCid: this.remoteCid, serverCid: this.localCid, payload: this.#connectOkPayload });
    }
    if (this.#closedControlPending) {
      this.#closedControlPending = false;
      return this.#control({ type: 'closed', destinationCid: this.remoteCid, sourceCid: this.localCid, reason: this.endReason, debug: this.endDebug });
    }
    const st = this.#state;
    if (!this.#keys) return null;
    if (st === S.Connected || st === S.Linger) return this.#buildDataPacket(now, false);
    if (this.#closeFramePending && (st === S.FinWait || st === S.ProblemDetectedLocally)) return this.#buildDataPacket(now, true);
    return null;
  }

  #control(p: ControlPacket): Transmit {
    const buf = new Uint8Array(8192);
    const n = encodeControl(buf, p);
    this.packetsSent++;
    this.bytesSent += n;
    return { destination: this.remote, data: buf.slice(0, n) };
  }

  /**
   * Builds one data packet: ACK, CLOSE, STATS, PING, retransmissions, then new data by lane
   * priority and weight. Returns null when nothing is due. `closing`: only a CLOSE frame.
   */
  #buildDataPacket(now: number, closing: boolean): Transmit | null {
    const keys = this.#keys as ConnectionKeys;
    const cfg = this.config;
    const cc = this.cc;
    const probe = this.#probePending;
    const ping = this.#pingPending;
    const ackDue = this.#ack.pending && this.#ack.dueUs <= now;
    let wantData = false;
    if (!closing) {
      const at = this.#dataWantedAtUs();
      wantData = at <= now && (probe || (cc.windowOpen() && cc.nextSendTimeUs(now, cfg.MTU_PacketSize) <= now));
    }
    if (!wantData && !ackDue && !this.#closeFramePending && !probe && !ping && !(this.#statsPending && this.#ack.pending)) {
      if (!closing && this.#pendingBytes === 0) cc.onAppLimited();
      return null;
    }
    const pn = this.recovery.nextPn;
    const w = this.#w;
    const limit = cfg.MTU_PacketSize - keys.overhead;
    w.reset(this.#scratch, 0, limit);
    const hdr = this.#hdr;
    hdr.keyPhase = keys.sendPhase;
    hdr.destinationCid = this.remoteCid;
    hdr.pnLength = packetNumberLength(pn, this.recovery.largestAcked);
    hdr.truncatedPn = pn;
    encodeDataHeader(w, hdr);
    const headerLen = w.position;
    const sent = this.recovery.allocate();
    let ackEliciting = false;

    if (this.#ack.pending) this.#writeAck(now, w);
    if (this.#closeFramePending) {
      encodeClose(w, this.endReason, this.endDebug);
      this.#closeFramePending = false;
      this.#lastCloseSentUs = now;
    }
    if (!closing) {
      if (this.#statsPending && w.remaining > 24) {
        encodeFrame(w, { type: 'stats', quality: this.#qualityLocal < 0 ? -1 : Math.round(this.#qualityLocal * 1000), inPacketsPerSec: this.#inMeter.packetsPerSec, inBytesPerSec: this.#inMeter.bytesPerSec });
        this.#statsPending = false;
      }
      if (probe || ping) {
        w.u8(FrameType.Ping, 'ping');
        ackEliciting = true;
        this.#probePending = false;
        this.#pingPending = false;
      }
      if (wantData) {
        if (this.#writeData(now, w, sent)) ackEliciting = true;
      }
    }
    const payloadLen = w.position - headerLen;
    if (payloadLen === 0) return null; // the unused record is left to the garbage collector
    const sealedLen = keys.seal(pn, this.#scratch.subarray(0, headerLen), this.#scratch.subarray(headerLen), payloadLen);
    const total = headerLen + sealedLen;
    sent.ackEliciting = ackEliciting;
    sent.inFlight = ackEliciting;
    sent.size = total;
    this.recovery.onSent(now, sent);
    this.packetsSent++;
    this.bytesSent += total;
    this.#outMeter.add(total);
    return { destination: this.remote, data: this.#scratch.slice(0, total) };
  }

  #writeAck(now: number, w: Writer): void {
    const { lo, hi } = this.#ack.received;
    const n = lo.length;
    if (n === 0) return;
    const delay = this.#ack.ackDelay(now);
    // Newest ranges first; keep as many as fit in a third of the packet.
    let from = Math.max(0, n - 32);
    while (from < n - 1 && ackFrameSize(lo, hi, from, n, delay) > Math.min(w.remaining, 400)) from++;
    if (ackFrameSize(lo, hi, from, n, delay) > w.remaining) return;
    encodeAckRanges(w, lo, hi, from, n, delay);
    this.#ack.onAckSent();
  }

  /** Writes retransmissions, then new data. Returns true if any data was written. */
  #writeData(now: number, w: Writer, sent: SentPacket): boolean {
    let curLane = 0;
    let wrote = false;
    const lanes = this.#lanes;
    // 1. Retransmissions first, lanes in priority order (GNS sends retries before new data).
    for (let li = 0; li < lanes.length; li++) {
      const lane = lanes[li] as SendLane;
      const rt = lane.retransmit;
      while (!rt.isEmpty()) {
        let a = rt.lo[0] as number;
        const b = rt.hi[0] as number;
        if (a < lane.stream.base) {
          rt.removeBelow(lane.stream.base);
          continue;
        }
        a = Math.max(a, lane.stream.base);
        const laneHdr = lane.index !== curLane ? 1 + varintSize(lane.index) : 0;
        const avail = w.remaining - laneHdr - reliableHeaderSize(a, 0xffff, true);
        if (avail < Math.min(MIN_SEGMENT_BYTES, b - a + 1)) return wrote;
        const len = Math.min(b - a + 1, avail);
        if (laneHdr > 0) {
          w.u8(FrameType.Lane, 'lane');
          w.varint(lane.index, 'lane.lane');
          curLane = lane.index;
        }
        encodeReliableHeader(w, a, len, true);
        w.bytes(lane.stream.view(a, len), 'reliable.data');
        rt.remove(a, a + len - 1);
        sent.segments.push(lane.index, a, len);
        this.retransmittedBytes += len;
        wrote = true;
      }
    }
    // 2. New data, chosen by strict priority, then weighted fair queueing within a priority class.
    while (w.remaining > MIN_SEGMENT_BYTES / 2) {
      const lane = this.#pickLane();
      if (!lane) break;
      const item = lane.items.peek();
      if (!item) break;
      const laneHdr = lane.index !== curLane ? 1 + varintSize(lane.index) : 0;
      let len: number;
      if (item.reliable) {
        const a = lane.sentOffset;
        const avail = w.remaining - laneHdr - reliableHeaderSize(a, 0xffff, true);
        const want = item.end - a;
        if (avail < Math.min(MIN_SEGMENT_BYTES, want)) break;
        len = Math.min(want, avail);
        if (laneHdr > 0) {
          w.u8(FrameType.Lane, 'lane');
          w.varint(lane.index, 'lane.lane');
          curLane = lane.index;
        }
        encodeReliableHeader(w, a, len, true);
        w.bytes(lane.stream.view(a, len), 'reliable.data');
        lane.sentOffset += len;
        sent.segments.push(lane.index, a, len);
        if (lane.sentOffset === item.end) lane.items.shift();
      } else {
        const data = item.data as Uint8Array;
        if (item.sent === 0 && now > item.dropAfterUs) {
          // NoDelay: it could not leave in time; drop it rather than send it late.
          lane.items.shift();
          lane.pendingUnreliableBytes -= data.length;
          this.#pendingBytes -= data.length;
          this.unreliableDroppedSend++;
          continue;
        }
        const left = data.length - item.sent;
        const avail = w.remaining - laneHdr - unreliableHeaderSize(item.messageNumber, item.sent, 0xffff, true);
        // Start a message that fits a packet in a fresh packet rather than fragmenting it.
        const fresh = this.config.MTU_PacketSize - 64;
        if (avail < left && item.sent === 0 && (left <= fresh || avail < MIN_SEGMENT_BYTES)) break;
        if (avail <= 0) break;
        len = Math.min(left, avail);
        if (laneHdr > 0) {
          w.u8(FrameType.Lane, 'lane');
          w.varint(lane.index, 'lane.lane');
          curLane = lane.index;
        }
        const last = item.sent + len === data.length;
        encodeUnreliableHeader(w, item.messageNumber, item.sent, len, last, item.latest, true);
        w.bytes(data.subarray(item.sent, item.sent + len), 'unreliable.data');
        item.sent += len;
        lane.pendingUnreliableBytes -= len;
        if (last) lane.items.shift();
      }
      this.#pendingBytes -= len;
      lane.vtime += len / lane.weight;
      wrote = true;
    }
    if (this.#pendingBytes === 0) this.#nagleDeadlineUs = NO_TIME;
    return wrote;
  }

  /** Lowest priority value first; inside a class the lane with the least weighted service. */
  #pickLane(): SendLane | null {
    let best: SendLane | null = null;
    for (const lane of this.#lanes) {
      if (lane.items.length === 0) continue;
      if (!best || lane.priority < best.priority || (lane.priority === best.priority && lane.vtime < best.vtime)) best = lane;
    }
    return best;
  }

  /** A lane that becomes busy starts at the class's current virtual time: idle lanes bank no credit. */
  #activateLane(lane: SendLane): void {
    let min = NO_TIME;
    for (const l of this.#lanes) if (l !== lane && l.priority === lane.priority && l.items.length > 0 && l.vtime < min) min = l.vtime;
    if (min !== NO_TIME && lane.vtime < min) lane.vtime = min;
    if (min === NO_TIME) {
      // Whole class idle: restart everyone's clock to keep numbers small.
      for (const l of this.#lanes) if (l.priority === lane.priority) l.vtime = 0;
    }
  }

  // ---------------------------------------------------------------- status

  #queueTimeUs(bytes: number): number {
    return Math.round((bytes * 1e6) / Math.max(1, this.cc.pacingRate));
  }

  /** Bytes the window and pacer allow now, less what is already queued. */
  sendBudget(now: number): number {
    if (this.#state !== S.Connected) return 0;
    return Math.max(0, Math.floor(this.cc.sendAllowance(now)) - this.#pendingBytes);
  }

  status(now: number): ConnectionStatus {
    let pendingReliable = 0;
    let pendingUnreliable = 0;
    let unacked = 0;
    for (const lane of this.#lanes) {
      pendingReliable += lane.pendingNewReliableBytes + lane.retransmitBytes();
      pendingUnreliable += lane.pendingUnreliableBytes;
      unacked += lane.sentUnackedBytes();
    }
    let droppedRecv = this.#unreliableDroppedRecvQueue;
    for (const l of this.#recvLanes) if (l) droppedRecv += l.droppedUnreliable;
    const rtt = this.recovery.rtt;
    const connected = this.#state === S.Connected;
    return {
      state: apiState(this.#state),
      ping: rtt.hasSample ? Math.round(rtt.smoothedUs / 1000) : -1,
      rttSmoothedUs: rtt.smoothedUs,
      rttVarianceUs: rtt.varianceUs,
      rttMinUs: Number.isFinite(rtt.minUs) ? rtt.minUs : -1,
      connectionQualityLocal: this.#qualityLocal,
      connectionQualityRemote: this.#qualityRemote,
      outPacketsPerSec: this.#outMeter.packetsPerSec,
      outBytesPerSec: this.#outMeter.bytesPerSec,
      inPacketsPerSec: this.#inMeter.packetsPerSec,
      inBytesPerSec: this.#inMeter.bytesPerSec,
      sendRateBytesPerSec: Math.round(this.cc.pacingRate),
      cwndBytes: Math.round(this.cc.cwnd),
      bytesInFlight: this.cc.bytesInFlight,
      pendingUnreliable,
      pendingReliable,
      sentUnackedReliable: unacked,
      queueTimeUs: connected ? this.#queueTimeUs(pendingReliable + pendingUnreliable) : Number.MAX_SAFE_INTEGER,
      sendBudgetBytes: this.sendBudget(now),
      packetsSent: this.packetsSent,
      packetsReceived: this.packetsReceived,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      packetsLost: this.recovery.packetsLost,
      retransmittedBytes: this.retransmittedBytes,
      duplicatePackets: this.duplicatePackets,
      badPackets: this.badPackets,
      pathChanges: this.pathChanges,
      refusedPackets: this.refusedPackets,
      messagesSent: this.messagesSent,
      messagesReceived: this.messagesReceived,
      unreliableDroppedSend: this.unreliableDroppedSend,
      unreliableDroppedRecv: droppedRecv,
      keyUpdates: this.#keys?.keyUpdates ?? 0,
    };
  }

  laneStatus(lane: number): LaneStatus | null {
    const l = this.#lanes[lane];
    if (!l) return null;
    const pendingReliable = l.pendingNewReliableBytes + l.retransmitBytes();
    // Queue time under weighted sharing: this lane gets weight / (sum of busy weights in its class).
    let classWeight = 0;
    let higherPending = 0;
    for (const o of this.#lanes) {
      const busy = o.items.length > 0 || !o.retransmit.isEmpty() || o === l;
      if (!busy) continue;
      if (o.priority === l.priority) classWeight += o.weight;
      else if (o.priority < l.priority) higherPending += o.pendingNewReliableBytes + o.pendingUnreliableBytes;
    }
    const share = l.weight / Math.max(1, classWeight);
    const mine = pendingReliable + l.pendingUnreliableBytes;
    return {
      pendingUnreliable: l.pendingUnreliableBytes,
      pendingReliable,
      sentUnackedReliable: l.sentUnackedBytes(),
      queueTimeUs: this.#queueTimeUs(higherPending + mine / share),
    };
  }
}
