import type { ConfigValues } from '../core/config.js';
import type { Endpoint } from '../core/endpoint.js';
import type { MessageVisitor } from '../core/packet-receiver.js';
import type { ConnectionStatus, LaneStatus } from '../core/stats.js';
import type { ConnectionState, Result, SocketAddress } from '../core/types.js';
import type { PeerInfo } from '../crypto/types.js';

/**
 * What NetworkingSockets asks of one connection, whichever way it goes: a connection of an endpoint of its own
 * (`connect`, `createListenSocket`, socket pairs: {@link EndpointConnection}) or a session of the instance's
 * relayed peer host (`connectP2P`, `createListenSocketP2P`: src/api/sockets-p2p.ts). Lanes are the application's.
 */
export interface SocketsConnection {
  accept(now: number): Result;
  /** Closes it (the handle is forgotten by the caller). */
  close(now: number, reason: number, debug: string, linger: boolean): void;
  /** The core's answer: a message number (> 0) or a negated Result. */
  send(now: number, data: Uint8Array, flags: number, lane: number): number;
  flush(now: number): Result;
  configureLanes(priorities: readonly number[], weights: readonly number[]): Result;
  receiveEach(now: number, max: number, visit: MessageVisitor): number;
  pendingMessages(): number;
  laneCount(): number;
  state(): ConnectionState;
  endInfo(): { readonly reason: number; readonly debug: string } | null;
  peerInfo(): PeerInfo | null;
  /** Where its datagrams go: the peer's address, or a placeholder for a relayed connection (never the peer's). */
  remoteAddress(): SocketAddress | null;
  status(now: number): ConnectionStatus | null;
  laneStatus(lane: number): LaneStatus | null;
  connectionConfig(): ConfigValues | null;
  reconfigure(values: Partial<Record<string, number>>): Result;
}

/** A connection of an endpoint (one UDP socket per listen socket or outgoing connection, as GNS). */
export class EndpointConnection implements SocketsConnection {
  readonly #ep: Endpoint;
  readonly #cid: number;

  constructor(endpoint: Endpoint, cid: number) {
    this.#ep = endpoint;
    this.#cid = cid;
  }

  accept(now: number): Result {
    return this.#ep.accept(now, this.#cid);
  }

  close(now: number, reason: number, debug: string, linger: boolean): void {
    this.#ep.close(now, this.#cid, reason, debug, linger);
  }

  send(now: number, data: Uint8Array, flags: number, lane: number): number {
    return this.#ep.send(now, this.#cid, data, flags, lane);
  }

  flush(now: number): Result {
    return this.#ep.flush(now, this.#cid);
  }

  configureLanes(priorities: readonly number[], weights: readonly number[]): Result {
    return this.#ep.configureLanes(this.#cid, priorities, weights);
  }

  receiveEach(_now: number, max: number, visit: MessageVisitor): number {
    return this.#ep.receiveEach(this.#cid, max, visit);
  }

  pendingMessages(): number {
    return this.#ep.pendingMessages(this.#cid);
  }

  laneCount(): number {
    return this.#ep.laneCount(this.#cid);
  }

  state(): ConnectionState {
    return this.#ep.state(this.#cid);
  }

  endInfo(): { reason: number; debug: string } | null {
    return this.#ep.endInfo(this.#cid);
  }

  peerInfo(): PeerInfo | null {
    return this.#ep.peerInfo(this.#cid);
  }

  remoteAddress(): SocketAddress | null {
    return this.#ep.remoteAddress(this.#cid);
  }

  status(now: number): ConnectionStatus | null {
    return this.#ep.status(now, this.#cid);
  }

  laneStatus(lane: number): LaneStatus | null {
    return this.#ep.laneStatus(this.#cid, lane);
  }

  connectionConfig(): ConfigValues | null {
    return this.#ep.connectionConfig(this.#cid);
  }

  reconfigure(values: Partial<Record<string, number>>): Result {
    return this.#ep.reconfigure(this.#cid, values);
  }
}
