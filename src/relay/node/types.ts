import type { CryptoProvider, KeyExchangePair } from '../../crypto/provider.js';
import type { TicketFailure, TicketKeys } from '../ticket.js';
import type { FleetOptions } from './fleet.js';

/**
 * Sends one datagram: `(data, port, address)`, the argument order of node:dgram. `data` may be reused after the call returns.
 *
 * The node writes its output through this sink, not into a queue the io side polls, because of the forwarding
 * path: a DATA_UP is rewritten in place into a DATA_DOWN and handed on as a view of the received buffer. A queue
 * would have to hold that view (or a copy) until the next poll, and allocate an entry per forwarded datagram;
 * the sink sends it before `handleDatagram` returns, so the receive buffer is free again and nothing is allocated.
 */
export type RelaySend = (data: Uint8Array, port: number, address: string) => void;

/** Options of a {@link RelayNode}. */
export interface RelayNodeOptions {
  /** Randomness, MACs, the route token AEAD and signature checks. */
  readonly provider: CryptoProvider;
  /** Where every datagram the node sends goes (see {@link RelaySend}). */
  readonly send: RelaySend;
  /**
   * The relay's static X25519 key: clients name its public half with the relay's address (`host:port#key`), and
   * every session key is agreed with it. Default: a fresh key from `provider` (clients must then learn it).
   */
  readonly staticKey?: KeyExchangePair;
  /** Ticket keys trusted. Without any, only `open` mode admits clients. */
  readonly ticketKeys?: TicketKeys;
  /** Development mode: sessions without a ticket are admitted (rate `openKbps`, `openSessionsPerAddress` per address). */
  readonly open?: boolean;
  /**
   * Wall clock, unix seconds, for ticket validity, route token expiry and directory registrations. The node reads
   * no clock of its own; {@link RelayServer} passes the system clock when its options give none.
   */
  readonly unixSeconds: () => number;
  /** Most sessions held. Default 10,000. */
  readonly maxSessions?: number;
  /** Most links per session. Default 64. */
  readonly maxLinksPerSession?: number;
  /** Sessions without a ticket per client address, in open mode. Default 8. */
  readonly openSessionsPerAddress?: number;
  /** Sessions without a ticket per network block (IPv4 /24, IPv6 /64), in open mode. Default 64. */
  readonly openSessionsPerNetwork?: number;
  /** Link requests that cost an identity check or make an offer, per session per second. Default 8. */
  readonly linkRequestRate?: number;
  /** Rate cap per session in open mode, kbit/s. Default 200,000 (200 Mbit/s). */
  readonly openKbps?: number;
  /** A session that sends nothing for this long is reaped. Default 30 s. */
  readonly idleTimeoutUs?: number;
  /** Route tokens expire after this long (a client refreshes its session before). Default 24 h. */
  readonly tokenLifetimeS?: number;
  /** NO_SESSION replies allowed per second, for the whole relay. Default 4 (as GNS). */
  readonly noSessionReplyRate?: number;
  /** Directory registrations allowed per session per second. Default 4. */
  readonly dirRegisterRate?: number;
  /** Directory lookups allowed per session per second. Default 50. */
  readonly dirLookupRate?: number;
  /** A registration's time may differ from the relay's clock by this much, s. Default 120. */
  readonly dirClockWindowS?: number;
  /**
   * Joins a fleet (docs/RELAY.md "The fleet"): the node keeps a registry record and its directory entries in the
   * fleet's store, and asks the store what it does not hold, through {@link RelayNode.pollFleet} and
   * {@link RelayNode.handleFleetResult}. Without it, the node is alone (no store work at all).
   */
  readonly fleet?: FleetOptions;
}

/** Counters of a relay node. */
export interface RelayStats {
  datagramsIn: number;
  bytesIn: number;
  datagramsOut: number;
  bytesOut: number;
  malformed: number;
  pings: number;
  /** Session requests dropped for a bad or stale cookie: no reply, no state. */
  cookieRefused: number;
  /** Ed25519 verifications done (only ever after a valid cookie). */
  signatureChecks: number;
  ticketRefused: number;
  ticketRefusedBy: Record<TicketFailure | 'reused' | 'quota' | 'missing' | 'revokedTicket', number>;
  sessionsOpened: number;
  sessionsClosed: number;
  sessionsReaped: number;
  /** Sessions closed by a fleet-wide revocation of their ticket or its key. */
  sessionsRevoked: number;
  /** Fleet messages (revocation, drain) that did not parse, or named nothing. */
  fleetBadMessages: number;
  linksCreated: number;
  linkRefused: number;
  forwardedPackets: number;
  forwardedBytes: number;
  /** Sealed control or data whose counter or sequence number was seen already (replays), dropped. */
  replayed: number;
  /** Sealed control that does not open, DATA_UP whose sequence tag is not the session's, or a wrong path response. */
  unauthenticated: number;
  /** Open-mode session requests refused by the per-address and per-network caps. */
  openRefusedBy: { address: number; network: number };
  /** Link requests whose identity proof did not verify. */
  linkProofRefused: number;
  /** Link offers made, refused by their target, and refused because the target had too many waiting or the requester asked too fast. */
  offers: number;
  offersRefused: number;
  offersBusy: number;
  /** Peer ids a PERMIT carried beyond a session's limit. */
  permitsDropped: number;
  /** Links cut because a session stopped permitting the peer at the other end. */
  linksCut: number;
  tokensRotated: number;
  /** Data dropped by a session's rate cap. */
  rateLimited: number;
  /** Data for a link the session does not have. */
  noLink: number;
  /** Data or keepalives naming a session the relay does not have. */
  unknownSession: number;
  noSessionRepliesLimited: number;
  /** Datagrams from an address a session has not validated yet (rebinding in progress, or a forgery). */
  unvalidatedPath: number;
  pathChallenges: number;
  rebinds: number;
  /** Identity directory: registrations accepted, refused (by DirCode name), lookups answered. */
  dirRegistered: number;
  dirRefusedBy: { badSignature: number; badRoute: number; stale: number; rateLimited: number };
  dirLookups: number;
  dirNotFound: number;
  dirLookupsLimited: number;
  /** Identities in the directory now. */
  dirEntries: number;
  /** Fleet: store writes done and failed; lookups asked of the store, found there, answered STORE_UNAVAILABLE. */
  fleetWrites: number;
  fleetWriteFailures: number;
  fleetLookups: number;
  fleetFound: number;
  fleetStoreUnavailable: number;
  /** Lookups answered STALE_ROUTE from the routes last read from the store, while it could not be reached. */
  fleetStale: number;
  /** Times the store answered again after failing: each time, the registry record and every entry are written again at once. */
  fleetRejoins: number;
  /** FLEET_LIST answered from the store; questions refused because too many waited for the store. */
  fleetLists: number;
  fleetBusy: number;
  /** 1 while the store's last answer was a success, else 0. */
  fleetStoreUp: number;
  /** Trunks (docs/RELAY.md "Trunks"): open now; opened by this relay; accepted from another; gone (silence, close, replaced). */
  trunks: number;
  trunksOpened: number;
  trunksAccepted: number;
  trunksClosed: number;
  /** TRUNK_HELLOs refused: the key is not a fleet member's (as the registry was last read), or the MAC does not verify. */
  trunksRefused: number;
  /** Links made over trunks (at this end). */
  trunkLinks: number;
  /** Datagrams sent on trunks (DATA_UP rewritten into TRUNK_DATA) and received from them (TRUNK_DATA into DATA_DOWN). */
  trunkPacketsOut: number;
  trunkPacketsIn: number;
  /** Trunk frames from an address that is not the trunk's, naming no trunk, or whose seal or tag does not verify; and replays. */
  trunkUnauthenticated: number;
  trunkReplayed: number;
  /** LINK_REMOTE answered NO_TRUNK (the relay named is not a member, or does not answer), or waiting when a trunk went. */
  noTrunk: number;
}

/** A {@link RelayStats} with every counter at zero. */
export function newRelayStats(): RelayStats {
  return {
    datagramsIn: 0,
    bytesIn: 0,
    datagramsOut: 0,
    bytesOut: 0,
    malformed: 0,
    pings: 0,
    cookieRefused: 0,
    signatureChecks: 0,
    ticketRefused: 0,
    ticketRefusedBy: { malformed: 0, unknownKey: 0, revokedKey: 0, notYetValid: 0, expired: 0, tooLong: 0, badSignature: 0, reused: 0, quota: 0, missing: 0, revokedTicket: 0 },
    sessionsOpened: 0,
    sessionsClosed: 0,
    sessionsReaped: 0,
    sessionsRevoked: 0,
    fleetBadMessages: 0,
    linksCreated: 0,
    linkRefused: 0,
    forwardedPackets: 0,
    forwardedBytes: 0,
    replayed: 0,
    unauthenticated: 0,
    openRefusedBy: { address: 0, network: 0 },
    linkProofRefused: 0,
    offers: 0,
    offersRefused: 0,
    offersBusy: 0,
    permitsDropped: 0,
    linksCut: 0,
    tokensRotated: 0,
    rateLimited: 0,
    noLink: 0,
    unknownSession: 0,
    noSessionRepliesLimited: 0,
    unvalidatedPath: 0,
    pathChallenges: 0,
    rebinds: 0,
    dirRegistered: 0,
    dirRefusedBy: { badSignature: 0, badRoute: 0, stale: 0, rateLimited: 0 },
    dirLookups: 0,
    dirNotFound: 0,
    dirLookupsLimited: 0,
    dirEntries: 0,
    fleetWrites: 0,
    fleetWriteFailures: 0,
    fleetLookups: 0,
    fleetFound: 0,
    fleetStoreUnavailable: 0,
    fleetStale: 0,
    fleetRejoins: 0,
    fleetLists: 0,
    fleetBusy: 0,
    fleetStoreUp: 0,
    trunks: 0,
    trunksOpened: 0,
    trunksAccepted: 0,
    trunksClosed: 0,
    trunksRefused: 0,
    trunkLinks: 0,
    trunkPacketsOut: 0,
    trunkPacketsIn: 0,
    trunkUnauthenticated: 0,
    trunkReplayed: 0,
    noTrunk: 0,
  };
}
