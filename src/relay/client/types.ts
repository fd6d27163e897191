import type { SocketAddress } from '../../core/types.js';
import type { RelayAddress } from '../protocol.js';
import type { SigningKey, CryptoProvider } from '../../crypto/provider.js';
import type { Hysteresis } from './choice.js';
import type { DirectoryStats, LookupResult } from './directory.js';
import type { PathStats } from './paths.js';

/** Options of a {@link RelayClient}. */
export interface RelayClientOptions {
  /** The relays to use, each with its static public key: pinged at start, the best becomes the primary, the next the backup. */
  readonly relays: readonly RelayAddress[];
  /** The operator's ticket; none for relays in `--open` mode. */
  readonly ticket?: Uint8Array | null;
  readonly provider: CryptoProvider;
  /** This client's identity key: link requests prove its peer id with it (the relay tells the peer who asks). */
  readonly identityKey: SigningKey;
  /** Keepalive to the primary relay, ms. Default 200. Backup and other relays get one a second. */
  readonly keepaliveMs?: number;
  /** A relay not heard from for this long is dead, ms. Default 1200. */
  readonly relayTimeoutMs?: number;
  /** How often every configured relay is pinged to look for a better one, ms. Default 5000. */
  readonly probeIntervalMs?: number;
  /** A relay must be this much better (ms and fraction) for this long (ms) before the primary moves. Default 10 ms, 10 %, 10 s. */
  readonly hysteresis?: Hysteresis;
  /**
   * Registers this key's peer id and the client's route in the identity directory of every relay in the
   * route, and again whenever the route changes. Without it, nothing is registered (lookups still work).
   */
  readonly directoryKey?: SigningKey;
  /**
   * Asks the relays it has sessions with which relays their fleet has (FLEET_LIST), and adds those to the relays it
   * pings and chooses from, so that one configured relay of a fleet is enough. Default false (a relay in no fleet
   * answers that it is in none).
   */
  readonly discoverFleet?: boolean;
  /** Wall clock, unix seconds, for directory registrations (the runtime's). */
  readonly unixSeconds: () => number;
}

/** Counters of a relay client. */
export interface RelayClientStats extends DirectoryStats, PathStats {
  datagramsReceived: number;
  /** Malformed or unexpected relay messages. */
  refused: number;
  relayDeaths: number;
  primaryChanges: number;
  pathChallengesAnswered: number;
  sessionsRefused: number;
  /** SESSION_OKs that did not open with the relay's expected key: the answer was not that relay's. */
  relayKeyMismatches: number;
  /** Sealed relay messages that did not authenticate, and ones seen already. */
  unauthenticated: number;
  replayed: number;
  offersReceived: number;
  /** Relays learnt from FLEET_LIST answers (added to those pinged). */
  fleetRelaysLearnt: number;
}

/** What a relay client tells its owner, drained with {@link RelayClient.pollEvent}. */
export type RelayClientEvent =
  | { readonly type: 'route'; readonly route: string }
  | { readonly type: 'lookup'; readonly peerId: bigint; readonly result: LookupResult }
  /** A peer (its peer id proven to the relay with its key; `user` its ticket's, or empty) asks for a link: {@link RelayClient.answerOffer}. */
  | { readonly type: 'linkOffer'; readonly relay: SocketAddress; readonly offerId: number; readonly peerId: bigint; readonly user: string }
  /** The peer's relay refused the link of the path at `vaddr`: the peer did not consent. */
  | { readonly type: 'linkRefused'; readonly vaddr: SocketAddress };

/** A relay's state as the client sees it (for stats and tests). */
export interface RelayPing {
  readonly relay: SocketAddress;
  /** Median round trip, ms; -1 if none measured. */
  readonly pingMs: number;
  readonly session: boolean;
  readonly primary: boolean;
  readonly dead: boolean;
  readonly draining: boolean;
}

