import type { SocketAddress } from '../core/types.js';
import type { Route } from '../relay/protocol.js';
import { Deque } from '../util/deque.js';
import { NetlaneError } from '../util/errors.js';

// A peer session: what the relayed facades (NetworkManager, NetworkingMessages) call a peer or a session
// with a user. Its states are a closed union, changed only by `transition`, which checks the table
// below (docs/STATE_MACHINE.md, "Peer sessions").

/** Why a directory lookup found no route (what the session fails with at its deadline). */
export type LookupMiss = 'notFound' | 'unreachable' | 'noRelay';

/** A session's state. Each state carries what only it needs; `cid` is the endpoint's connection handle. */
export type SessionState =
  /** No connection and none wanted now: new, or its connection ended quietly. A send (or open) starts one. */
  | { readonly kind: 'idle' }
  /** Looking the peer id up in the relays' directory (API state FindingRoute). */
  | { readonly kind: 'findingRoute'; readonly deadlineUs: number; nextLookupUs: number; inFlight: boolean; lastMiss: LookupMiss }
  /** A connection in progress: ours (`incoming` false) or the peer's, accepted. */
  | { readonly kind: 'connecting'; readonly cid: number; readonly vaddr: SocketAddress; readonly incoming: boolean }
  /**
   * The peer asked its relay for a link to us (an offer naming its proven peer id) and the application has not
   * accepted: a request is raised, repeated every second, until the offer expires (`untilUs`; the peer's
   * retries renew it). Nothing from the peer reaches us meanwhile.
   */
  | { readonly kind: 'offered'; readonly relay: SocketAddress; readonly offerId: number; readonly peerId: bigint; repeatAtUs: number; readonly untilUs: number }
  /** The peer's connection, not accepted yet (a request raised, or held until the application opens the peer). */
  | { readonly kind: 'awaitingAccept'; readonly cid: number; readonly vaddr: SocketAddress; repeatAtUs: number }
  /** The peer makes the connection (it has the lower id, or won a crossing); until `untilUs` (+Infinity: for good). */
  | { readonly kind: 'awaitingPeer'; readonly untilUs: number }
  /** `sinceUs`: when the connection came up (a crossing's losing dial may still arrive for a while after). */
  | { readonly kind: 'connected'; readonly cid: number; readonly vaddr: SocketAddress; readonly incoming: boolean; readonly sinceUs: number }
  /** The session failed: sends are refused until it is restarted or closed. `state` is the API state it failed in (4 or 5). */
  | { readonly kind: 'failed'; readonly state: number; readonly reason: number; readonly debug: string };

export type SessionKind = SessionState['kind'];

/** Allowed transitions: from each state, the states it may go to. Anything else is a bug (ERR_NETLANE_INTERNAL). */
export const TRANSITIONS: { readonly [K in SessionKind]: readonly SessionKind[] } = {
  idle: ['findingRoute', 'connecting', 'awaitingAccept', 'awaitingPeer', 'offered'],
  offered: ['offered', 'awaitingPeer', 'awaitingAccept', 'connecting', 'idle'],
  findingRoute: ['connecting', 'awaitingAccept', 'failed', 'idle'],
  connecting: ['connected', 'connecting', 'awaitingAccept', 'awaitingPeer', 'failed', 'idle'],
  awaitingAccept: ['connecting', 'awaitingAccept', 'idle', 'failed'],
  awaitingPeer: ['connecting', 'awaitingAccept', 'failed', 'idle'],
  connected: ['connecting', 'awaitingAccept', 'awaitingPeer', 'failed', 'idle'],
  failed: ['idle', 'findingRoute', 'connecting', 'awaitingAccept', 'awaitingPeer', 'offered'],
};

/** A message queued on a session before its connection is up, or while its send buffer is full. */
export interface Outgoing {
  readonly channel: number;
  readonly flags: number;
  readonly data: Uint8Array;
}

/**
 * One peer, by identity: its state, its route (relayed peers), what waits to be sent, and the facade's
 * own data (`app`: channels and their reliability, say). Facades read it; only the peer layer writes it.
 */
export class PeerSession<A = unknown> {
  /** `id:N` for a peer id, `ip:HOST:PORT` for a direct peer, or another identity string. */
  readonly key: string;
  /** The peer id, for peers reached by id (through the relays). */
  readonly peerId: bigint | null;
  /** The address, for peers reached directly. */
  readonly direct: SocketAddress | null;
  readonly app: A;
  #state: SessionState = { kind: 'idle' };
  /** The peer's route, when known: where to dial, and where to re-link when its relay changes. */
  route: Route | null = null;
  /** The application wants this peer (opened it, sent to it, accepted it): its connections are accepted at once. */
  wanted = false;
  /** The relays let this peer through though it is not wanted yet (a listening socket took its link offer): its connection waits as a request. */
  admitted = false;
  /** Configuration values for this session's connections (NetworkingSockets' per-connection options), or undefined: the endpoint's. */
  coreConfig: Partial<Record<string, number>> | undefined = undefined;
  /** The peer's virtual port this session's connections go to (NetworkingSockets' `connectP2P`), or -1. */
  virtualPort = -1;
  /** Completed handshakes (a failover that keeps the connection adds none). */
  handshakes = 0;
  /** How the last connection ended, or null. */
  lastEnd: { readonly reason: number; readonly debug: string } | null = null;
  lastUsedUs: number;
  readonly outbox = new Deque<Outgoing>();
  outboxBytes = 0;
  laneCount = 1;
  /** Direct paths (docs/P2P.md), for the connection now: the peer said it allows them, and the candidate revision we sent (-1: none). */
  directAllowedByPeer = false;
  directSentRevision = -1;

  constructor(key: string, peerId: bigint | null, direct: SocketAddress | null, app: A, now: number) {
    this.key = key;
    this.peerId = peerId;
    this.direct = direct;
    this.app = app;
    this.lastUsedUs = now;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** The connection handle, or 0 when the state has none. */
  get cid(): number {
    const s = this.#state;
    return s.kind === 'connecting' || s.kind === 'connected' || s.kind === 'awaitingAccept' ? s.cid : 0;
  }

  /** Where the connection's datagrams go (a relay path `relay:N`, or the peer's address), or null. */
  get vaddr(): SocketAddress | null {
    const s = this.#state;
    return s.kind === 'connecting' || s.kind === 'connected' || s.kind === 'awaitingAccept' ? s.vaddr : null;
  }

  get connected(): boolean {
    return this.#state.kind === 'connected';
  }

  /** The one place a session's state changes; throws ERR_NETLANE_INTERNAL for a move the table does not allow. */
  transition(next: SessionState): void {
    const from = this.#state.kind;
    if (!TRANSITIONS[from].includes(next.kind)) throw new NetlaneError('ERR_NETLANE_INTERNAL', `peer session ${this.key}: ${from} -> ${next.kind} is not a transition`);
    this.#state = next;
  }

  /** Drops everything queued. */
  clearOutbox(): void {
    this.outbox.clear();
    this.outboxBytes = 0;
  }
}
