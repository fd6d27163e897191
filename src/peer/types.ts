import type { DirectPathSetting } from './direct.js';
import type { Endpoint } from '../core/endpoint.js';
import type { ConnectionStatusChangedEvent, SocketAddress } from '../core/types.js';
import type { RelayClient } from '../relay/client/index.js';
import type { PeerSession } from './session.js';

/** How a facade's sessions behave where the Discord and Steam models differ (docs/STATE_MACHINE.md, "Peer sessions"). */
export interface PeerPolicy {
  /**
   * Who makes the connection. `lowerId`: only the peer with the lower id dials, the other waits (Discord's
   * network manager: both sides open each other). `sender`: whoever sends first (Steam's messages); when
   * both do at once, the connection the lower id made is kept.
   */
  readonly dial: 'lowerId' | 'sender';
  /**
   * After a wanted session's connection ends. `redial`: connect again (or wait for the peer). `quietOrFail`: idle
   * if it had connected and nothing was in flight, else failed. `fail`: failed (a NetworkingSockets connection,
   * which ends for good).
   */
  readonly afterEnd: 'redial' | 'quietOrFail' | 'fail';
  /** Raise a `request` event (repeated every second) for a connection from a peer that is not wanted. */
  readonly requests: boolean;
  /**
   * Link offers are answered yes at once (a NetworkingSockets P2P listen socket: a public server), so that the
   * peer's connection comes and waits for the application's accept as a request. Read at each offer.
   */
  readonly acceptOffers?: boolean;
  /** Relayed peers must present a peer id; others are closed with 5001. */
  readonly requirePeerId: boolean;
  /** Messages queued before the connection is up go reliably (as GNS does). */
  readonly queueReliable: boolean;
  readonly maxOutboxMessages: number;
  readonly maxOutboxBytes: number;
  /** A session unused this long closes (reason 1002, a `closed` event); null: never. */
  readonly idleTimeoutUs: number | null;
  /**
   * How a relayed peer learns this side's route (to re-link when our relay fails). `inBand`: sent on the
   * connection when it is up. `lookup`: the side that accepts looks the dialler up in the directory
   * instead, so that nothing but the application's data is in flight on an idle session (Steam's quiet close).
   */
  readonly routeOnConnect: 'inBand' | 'lookup';
  /** A peer id with no known route is looked up in the relays' directory (Steam); otherwise it waits for `updateRoute` (Discord: the lobby gives routes). */
  readonly findRoutes: boolean;
}

/** What the peer layer tells its facade, drained with {@link PeerHost.pollEvent}. */
export type PeerEvent<A> =
  /** A peer that is not wanted made a connection: accept it with `want`. Repeated every second while it waits. */
  | { readonly type: 'request'; readonly session: PeerSession<A> }
  | { readonly type: 'connected'; readonly session: PeerSession<A> }
  /** The session failed (`failed` state): the reason and debug text are in its state. */
  | { readonly type: 'failed'; readonly session: PeerSession<A> }
  /** A connection of the session ended and the session carries on (idle, waiting, or dialling again). `state`: the API state it ended in (4 or 5). */
  | { readonly type: 'ended'; readonly session: PeerSession<A>; readonly state: number; readonly reason: number; readonly debug: string }
  /** The peer layer closed the session itself (the idle timeout): it is gone. */
  | { readonly type: 'closed'; readonly session: PeerSession<A>; readonly reason: number }
  /** This peer's own route changed (a new relay session, failover, drain, a better relay). */
  | { readonly type: 'route'; readonly route: string };

/** Counters of the peer layer. */
export interface PeerStats {
  sessionRequests: number;
  /** Connections from peers accepted (by the application, or at once for a wanted peer). */
  sessionsAccepted: number;
  sessionsFailed: number;
  idleTimeouts: number;
  /** Connections of a session that ended while idle: closed quietly (the next send reconnects). */
  quietCloses: number;
  /** Connections that ended and were made again (redial policy). */
  connectionsLost: number;
  /** Crossing connections (both sides dialled): one of the two is closed. */
  duplicateConnections: number;
  /** Connections whose far end was not the key holder of the peer id dialled: closed with 4003. */
  identityMismatches: number;
  /** Connections from peers that are not session peers (no identity, our own id, no peer id where one is needed). */
  refusedPeers: number;
  /** Connections closed because the peer broke the in-band protocol (4008). */
  protocolViolations: number;
  routeUpdatesReceived: number;
  lookups: number;
  /** Datagrams from neither a relay nor (with direct peers allowed) anyone: dropped. */
  strayDatagrams: number;
  /** DIRECT messages sent (direct-path candidates, docs/P2P.md), received, and received while direct paths are not allowed here (ignored). */
  directOffersSent: number;
  directOffersReceived: number;
  directOffersIgnored: number;
}

/** Options of a {@link PeerHost}. */
export interface PeerHostOptions<A> {
  readonly endpoint: Endpoint;
  /** The relay client, or null for direct peers only. */
  readonly relay: RelayClient | null;
  /** Whether datagrams from addresses that are not relays reach the endpoint (direct `ip:` peers). */
  readonly direct: boolean;
  readonly localPeerId: bigint;
  readonly policy: PeerPolicy;
  /** How long a directory lookup may take, and a peer that won a crossing may take to connect, µs (TimeoutInitial). */
  readonly timeoutInitialUs: number;
  /** The facade's data for a new session. */
  readonly app: (key: string) => A;
  /** Called before a session's connection is closed: the facade takes the messages it has received. */
  readonly beforeUnlink?: (session: PeerSession<A>) => void;
  /** Sees every datagram received, before any processing (for audits: the IP privacy test). */
  readonly tap?: (data: Uint8Array, from: SocketAddress) => void;
  /** Sees every connection status change (for diagnostics channels). */
  readonly observe?: (e: ConnectionStatusChangedEvent) => void;
  /**
   * Direct paths beside the relayed ones (docs/P2P.md): the `P2P_Transport_ICE_Enable` mask and penalty in
   * force for the session with `key`, read when its connection comes up and whenever candidates come or go;
   * for `null`, the widest any session has (whether datagrams from non-relays may reach the endpoint at all).
   * Absent: never (NetworkManager).
   */
  readonly directPaths?: (key: string | null) => DirectPathSetting;
  /** This host's addresses with the socket's port: the `Private` candidates. */
  readonly hostAddresses?: () => readonly SocketAddress[];
}

/** Where a new session is reached: a peer id (through the relays, by `route` or a directory lookup) or an address. */
export interface PeerSpec {
  readonly key: string;
  readonly peerId: bigint | null;
  readonly direct: SocketAddress | null;
}


/** A peer no longer wanted stays permitted at the relays this long, µs: longer than a closed path lingers (500 ms), so its close leaves first. */
export const PERMIT_LINGER_US = 1_000_000;
/** A waiting connection's request is raised again this often (Steam). */
export const REQUEST_REPEAT_US = 1_000_000;
/** A finding session asks the directory again this often. */
export const LOOKUP_RETRY_US = 500_000;
/** An idle-timed-out session with data still moving gets this much more. */
export const IDLE_GRACE_US = 1_000_000;
/** The end reasons the peer layer closes connections and fails sessions with (GNS's values). */
export const E = { Shutdown: 1000, SessionClosed: 1001, SessionIdleTimeout: 1002, Duplicate: 1003, Replaced: 1000, Generic: 5001, BadCert: 4003, NotLoggedIn: 4004, ProtocolViolation: 4008, Timeout: 5003, RelayConnectivity: 5004, NoRelay: 3002, LinkNotAccepted: 5012 } as const;

