import type { ClientHandshake, ConnectionKeys, HandshakeLayer, HandshakeOutcome, PeerInfo } from '../crypto/types.js';
import { HELLO_MIN_SIZE, type ControlPacket } from '../wire/control.js';
import type { ConfigValues } from './config.js';
import { Timer, type TimerTable } from './timers.js';
import type { SocketAddress } from './types.js';

/** Client handshake packets are repeated this often until answered (GNS k_usecConnectRetryInterval). */
const HANDSHAKE_RETRY_US = 500_000;
/** A cookie older than this is refreshed with a new HELLO instead of being reused. */
const COOKIE_REFRESH_US = 2_500_000;
/** A HELLO is padded to the MTU, but never past this: larger datagrams risk fragmentation before the path is known. */
const HELLO_MAX_PAD_BYTES = 1200;

/**
 * Where the client's handshake stands: waiting for a CHALLENGE, waiting for CONNECT_OK, or finished.
 * A server connection is `done` from the start: its handshake ran before it existed.
 */
export type HandshakePhase = 'hello' | 'request' | 'done';

/**
 * The handshake as one connection drives it: the client's HELLO / CONNECT_REQUEST exchange with its
 * retries and cookie refresh, and the server's CONNECT_OK (repeated when a CONNECT_REQUEST is).
 * It decides which control packet is owed; the connection owns the state changes that follow.
 */
export class HandshakeDriver {
  readonly #layer: HandshakeLayer;
  readonly #timers: TimerTable;
  #client: ClientHandshake | null = null;
  #phase: HandshakePhase = 'done';
  #cookie: Uint8Array | null = null;
  #cookieAtUs = 0;
  /** The negotiated protocol version (client: from the CHALLENGE). */
  #version = 0;
  #requestFirstUs = 0;
  #requestsSent = 0;
  #sendHello = false;
  #sendRequest = false;
  #sendConnectOk = false;
  #connectOkPayload: Uint8Array | null = null;

  constructor(layer: HandshakeLayer, timers: TimerTable) {
    this.#layer = layer;
    this.#timers = timers;
  }

  /** Where the client's handshake stands. */
  get phase(): HandshakePhase {
    return this.#phase;
  }

  /** Client: starts the exchange with a HELLO. */
  startClient(now: number, localCid: number, remote: SocketAddress, config: ConfigValues, virtualPort = -1): void {
    this.#client = this.#layer.startClient(localCid, remote, config, virtualPort);
    this.#phase = 'hello';
    this.#sendHello = true;
    this.#timers.set(Timer.HandshakeRetry, now + HANDSHAKE_RETRY_US);
  }

  /** Server: the CONNECT_OK payload to send once the application accepts. */
  startServer(replyPayload: Uint8Array): void {
    this.#connectOkPayload = replyPayload;
  }

  /** Server: the client sent an authenticated packet, so it has our CONNECT_OK: no repeat is owed again, and its payload goes. */
  confirmed(): void {
    this.#connectOkPayload = null;
    this.#sendConnectOk = false;
  }

  /** Server: CONNECT_OK is owed (the application accepted, or the client repeated its CONNECT_REQUEST). */
  sendConnectOk(): void {
    this.#sendConnectOk = true;
  }

  /** Why the client cannot take protocol `version` from a CHALLENGE, or null when it can. */
  refuseVersion(version: number): string | null {
    const l = this.#layer;
    if (version >= l.minProtocolVersion && version <= l.maxProtocolVersion) return null;
    return `server offered protocol ${version}; we speak ${l.minProtocolVersion}..${l.maxProtocolVersion}`;
  }

  /** Client: a CHALLENGE with an acceptable version arrived; the first one moves on to CONNECT_REQUEST. */
  onChallenge(now: number, version: number, cookie: Uint8Array): void {
    this.#version = version;
    this.#cookie = cookie.slice();
    this.#cookieAtUs = now;
    if (this.#phase === 'hello') {
      this.#phase = 'request';
      this.#requestsSent = 0;
      this.#sendRequest = true;
      this.#timers.set(Timer.HandshakeRetry, now + HANDSHAKE_RETRY_US);
    }
  }

  /** Client: checks a CONNECT_OK; null when none is expected (no CONNECT_REQUEST outstanding). */
  finish(serverCid: number, payload: Uint8Array): HandshakeOutcome<{ keys: ConnectionKeys; peer: PeerInfo }> | null {
    if (this.#phase !== 'request' || !this.#client) return null;
    return this.#client.finish(serverCid, payload);
  }

  /**
   * Client: the CONNECT_OK checked. Stops the retries and returns the handshake's RTT sample, or null
   * when the CONNECT_REQUEST was repeated and the answer could be to either (Karn).
   */
  complete(now: number): number | null {
    this.#phase = 'done';
    this.#timers.stop(Timer.HandshakeRetry);
    this.#sendRequest = false;
    this.#client = null;
    this.#cookie = null;
    return this.#requestsSent === 1 ? now - this.#requestFirstUs : null;
  }

  /** Client: the retry timer fired. Repeats CONNECT_REQUEST while the cookie is fresh, else starts over with HELLO. */
  onRetryTimer(now: number): void {
    this.#timers.set(Timer.HandshakeRetry, now + HANDSHAKE_RETRY_US);
    if (this.#phase === 'request' && now - this.#cookieAtUs < COOKIE_REFRESH_US) this.#sendRequest = true;
    else {
      this.#phase = 'hello';
      this.#sendHello = true;
    }
  }

  /** The handshake packet owed now, or null. */
  poll(now: number, localCid: number, remoteCid: number, config: ConfigValues): ControlPacket | null {
    if (this.#sendHello) {
      this.#sendHello = false;
      return {
        type: 'hello',
        version: this.#layer.maxProtocolVersion,
        clientCid: localCid,
        length: Math.max(HELLO_MIN_SIZE, Math.min(config.MTU_PacketSize, HELLO_MAX_PAD_BYTES)),
      };
    }
    if (this.#sendRequest && this.#cookie && this.#client) {
      this.#sendRequest = false;
      if (this.#requestsSent === 0) this.#requestFirstUs = now;
      this.#requestsSent++;
      return { type: 'connectRequest', version: this.#version, clientCid: localCid, cookie: this.#cookie, payload: this.#client.request(this.#cookie, this.#version) };
    }
    if (this.#sendConnectOk && this.#connectOkPayload) {
      this.#sendConnectOk = false;
      return { type: 'connectOk', clientCid: remoteCid, serverCid: localCid, payload: this.#connectOkPayload };
    }
    return null;
  }
}
