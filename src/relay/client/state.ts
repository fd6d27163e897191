import type { SocketAddress, Transmit } from '../../core/types.js';
import { ReplayWindow } from '../../util/replay-window.js';
import { writeDataTag, type HopKeys } from '../hop.js';
import { DATA_TAG_BYTES, RelayMsg, UP_HEADER_BYTES, type Route, type RouteEntry } from '../protocol.js';

// The relay client's state records and its named timings (docs/RELAY.md, "The client").

/** Ping and session-request retries: every 250 ms, 8 tries, then the relay counts as dead. */
export const REQUEST_RETRY_US = 250_000;
export const REQUEST_TRIES = 8;
/** Directory lookups: 4 tries per relay, 250 ms apart, then the next relay is asked. */
export const LOOKUP_TRIES = 4;
/** Keepalives to relays other than the primary (backup, peers' relays). */
export const SECONDARY_KEEPALIVE_US = 1_000_000;
/**
 * A relay other than the primary is dead after this much silence: four keepalive rounds, so that a lost
 * keepalive or answer (one round in five at 10 % loss each way) never kills a warm backup and republishes
 * the route. The primary, with a keepalive every 200 ms, has the shorter `relayTimeoutMs` (1.2 s).
 */
export const SECONDARY_SILENCE_US = 4 * SECONDARY_KEEPALIVE_US + 200_000;
/** NO_SESSION travels in the clear (anyone on the path can forge one): the session is given up only if nothing sealed comes from the relay for this long after it, µs. */
export const NO_SESSION_CONFIRM_US = 300_000;
/** The permitted peer ids are told to every relay session again this often, µs (a PERMIT may be lost). */
export const PERMIT_REFRESH_US = 5_000_000;
/** A relay that refused a session, or a registration it refused or never answered, is retried after this. */
export const REFUSED_RETRY_US = 5_000_000;
/** A dead relay is pinged again after this. */
export const DEAD_RETRY_US = 2_000_000;
/** Sessions on a peer's relay (neither primary nor backup) close after this long with no path on them. */
export const EXTRA_SESSION_IDLE_US = 60_000_000;
/** Round-trip samples kept per relay (their median is its ping). */
export const RTT_SAMPLES = 5;
/** End-to-end datagrams queued per path while its link is not up; more are dropped and counted. */
export const MAX_QUEUED_PER_PATH = 64;
/** The address of every path the endpoint sees: `relay:N`, N the path's number. */
export const VIRTUAL_ADDRESS = 'relay';
/** Whether an address is a relay path (`relay:N`) rather than a UDP address. */
export function isRelayPath(a: SocketAddress): boolean {
  return a.address === VIRTUAL_ADDRESS;
}

/** A path the peer made (a DATA_DOWN on a new link) that no connection has taken after this is forgotten (covers a handshake). */
export const UNCLAIMED_PATH_US = 10_000_000;
/** How long a closed path lingers by default, so that a close just queued on it still leaves. */
export const DEFAULT_PATH_LINGER_US = 500_000;

/** Where a relay session is: none, pinging for a cookie, requesting a session, open. */
export type SessionPhase = 'none' | 'pinging' | 'requesting' | 'open';

/** One relay this client knows: configured ones, and those that peers' routes name. */
export interface RelayState {
  readonly addr: SocketAddress;
  readonly key: string;
  /** The relay's static public key: a session there is agreed with it, and a relay without it cannot answer. */
  readonly publicKey: Uint8Array;
  /** Configured, or learnt from a fleet's registry (FLEET_LIST): pinged, and a candidate for primary and backup. */
  configured: boolean;
  /** Recent round-trip samples, µs (pongs and keepalive answers). */
  readonly rtts: number[];
  phase: SessionPhase;
  cookie: Uint8Array | null;
  readonly pingNonce: Uint8Array;
  /** A ping is waiting for its pong (only its nonce is accepted, once). */
  pingOutstanding: boolean;
  pingSentUs: number;
  pingTries: number;
  readonly clientNonce: Uint8Array;
  /** The cookie, ephemeral key and keys of the session request in flight (its retries repeat them). */
  requestCookie: Uint8Array | null;
  requestKeys: HopKeys | null;
  requestPublic: Uint8Array | null;
  requestSentUs: number;
  requestTries: number;
  sessionId: Uint8Array | null;
  /** The open session's keys, counters and replay window. */
  keys: HopKeys | null;
  upCounter: number;
  dataSeq: number;
  downWindow: ReplayWindow;
  /** This client's identity proof for the session (signed once, sent in every link request). */
  proof: Uint8Array | null;
  /** When something sealed last came from the relay (µs): what a NO_SESSION is checked against. */
  sealedHeardUs: number;
  /** When a NO_SESSION for the open session came, or -1: confirmed by silence, refuted by anything sealed. */
  noSessionAtUs: number;
  /** When the permits were last sent on this session, µs. */
  permitsSentUs: number;
  /** A ROTATE_TOKEN waiting for its answer: its request id, when it was sent, the tries (0: none waiting). */
  rotateRequestId: number;
  rotateSentUs: number;
  rotateTries: number;
  token: Uint8Array | null;
  lastHeardUs: number;
  /** Silence is counted from the later of this and `lastHeardUs`: the time it became the primary (its window shrank then). */
  watchSinceUs: number;
  keepaliveSeq: number;
  keepaliveSentUs: number;
  /** Our address as this relay sees it (its KEEPALIVE_ACK says), or null: a reflexive address for direct paths. */
  observed: SocketAddress | null;
  /** The relay announced a drain deadline, or refused us: not used for new paths until it answers again. */
  draining: boolean;
  dead: boolean;
  retryAtUs: number;
  /** Since when this relay has been clearly better than the primary (hysteresis), or -1. */
  betterSinceUs: number;
  /** Paths by this relay's link id, for received data. */
  readonly links: (Path | undefined)[];
  /** Time the last path on it went away (extra sessions close after a while), or -1. */
  idleSinceUs: number;
}

/** A mutable transmit record: a path reuses one for every datagram (the driver consumes it at once). */
export interface MutableTransmit extends Transmit {
  destination: SocketAddress;
  data: Uint8Array;
  header?: Uint8Array;
}

/** One end-to-end path through a relay link, seen by the endpoint as one stable virtual address. */
export interface Path {
  readonly vaddr: SocketAddress;
  /** The peer's route, when known: where to re-link after a relay fails. */
  route: Route | null;
  relay: RelayState | null;
  linkId: number;
  /** A two-hop link (docs/RELAY.md "Trunks"): the peer's route entry its relay forwards to over a trunk; null for one hop. */
  via: RouteEntry | null;
  /** The route entry a link request in flight on {@link pendingRelay} asks its relay to reach over a trunk, or null. */
  pendingVia: RouteEntry | null;
  /** `carrier>target` relay pairs that answered NO_TRUNK (or never answered): that entry is reached the old way. */
  readonly noTrunk: Set<string>;
  /** Hop header for this link (type, session id, link id; the sequence tag is made per datagram). */
  readonly header: Uint8Array;
  readonly tx: MutableTransmit;
  /** A link request in flight, on this relay. */
  pendingRelay: RelayState | null;
  requestId: number;
  requestSentUs: number;
  requestTries: number;
  readonly queue: Uint8Array[];
  /** Made by the peer's link request (we learnt it from data), not by us. */
  readonly incoming: boolean;
  /** The peer's relay refused the link (the peer did not consent): no more link requests. */
  refused: boolean;
  /** The peer's relay answered BUSY: ask again after a retry interval, even while an old link still carries data. */
  busy: boolean;
  /** When a lingering close forgets it (or +Infinity), and what may keep it. */
  forgetAtUs: number;
  stillUsed: (() => boolean) | null;
}

export function newRelayState(addr: SocketAddress, key: string, publicKey: Uint8Array, configured: boolean): RelayState {
  return {
    addr: { address: addr.address, port: addr.port },
    key,
    publicKey: publicKey.slice(),
    configured,
    rtts: [],
    phase: 'none',
    cookie: null,
    pingNonce: new Uint8Array(8),
    pingOutstanding: false,
    pingSentUs: 0,
    pingTries: 0,
    clientNonce: new Uint8Array(8),
    requestCookie: null,
    requestKeys: null,
    requestPublic: null,
    requestSentUs: 0,
    requestTries: 0,
    sessionId: null,
    keys: null,
    upCounter: 0,
    dataSeq: 0,
    downWindow: new ReplayWindow(),
    proof: null,
    sealedHeardUs: 0,
    noSessionAtUs: -1,
    permitsSentUs: 0,
    rotateRequestId: 0,
    rotateSentUs: 0,
    rotateTries: 0,
    token: null,
    lastHeardUs: 0,
    observed: null,
    watchSinceUs: 0,
    keepaliveSeq: 0,
    keepaliveSentUs: 0,
    draining: false,
    dead: false,
    retryAtUs: 0,
    betterSinceUs: -1,
    links: [],
    idleSinceUs: -1,
  };
}

export function newPath(port: number, incoming: boolean): Path {
  const vaddr = { address: VIRTUAL_ADDRESS, port };
  const header = new Uint8Array(UP_HEADER_BYTES);
  header[0] = RelayMsg.DataUp;
  return { vaddr, route: null, relay: null, linkId: -1, via: null, pendingVia: null, noTrunk: new Set(), header, tx: { destination: vaddr, data: header, header }, pendingRelay: null, requestId: 0, requestSentUs: 0, requestTries: 0, queue: [], incoming, refused: false, busy: false, forgetAtUs: Number.POSITIVE_INFINITY, stillUsed: null };
}

/** Writes the hop header of `path` for its link on `r`: DATA_UP, the session id, the link id. */
export function writeHopHeader(path: Path, r: RelayState, linkId: number): void {
  const h = path.header;
  h.set(r.sessionId as Uint8Array, 1);
  h[UP_HEADER_BYTES - DATA_TAG_BYTES - 2] = linkId >>> 8;
  h[UP_HEADER_BYTES - DATA_TAG_BYTES - 1] = linkId & 0xff;
  path.tx.destination = r.addr;
}

/** Scratch block for sequence tags (one at a time: the client is single-threaded). */
const TAG_BLOCK = new Uint8Array(16);

/**
 * The hop header of the next datagram on `path`'s link: the link's header with a fresh sequence tag. A new
 * buffer each time: the socket may still hold the previous one (a send the kernel deferred).
 */
export function nextHopHeader(path: Path, r: RelayState): Uint8Array {
  const h = path.header.slice();
  if (r.keys) writeDataTag(r.keys.data, r.dataSeq++, h, TAG_BLOCK);
  return h;
}

export function addRtt(r: RelayState, rttUs: number): void {
  r.rtts.push(rttUs);
  if (r.rtts.length > RTT_SAMPLES) r.rtts.shift();
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}
