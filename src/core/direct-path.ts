import { PATH_DATA_BYTES } from '../wire/frames.js';
import type { Writer } from '../wire/writer.js';
import { writeChallenge, type ProbeSource } from './path.js';
import { NO_TIME } from './timers.js';
import { sameAddress, type SocketAddress } from './types.js';

/** Most candidate addresses a connection probes for a direct path; more are ignored. */
export const MAX_CANDIDATES = 8;
/** A candidate is challenged at once, then after 50 ms, doubling up to {@link PROBE_MAX_GAP_US}. */
const PROBE_FIRST_GAP_US = 50_000;
const PROBE_MAX_GAP_US = 1_000_000;
/** A candidate that never answered is given up this long after it was given (both sides' NATs must open). */
const PUNCH_WINDOW_US = 10_000_000;
/** While direct, a PING goes out when nothing came from the direct path for this long (its acks prove it alive). */
export const DIRECT_KEEPALIVE_US = 100_000;
/** While direct, nothing from the direct path for this long: the connection moves back to its relayed path. */
export const DIRECT_SILENCE_US = 500_000;
/** While direct, the client challenges the relayed path this often: its round trip stays known (the relay sessions stay open on their own keepalives). */
const HOME_PROBE_US = 2_000_000;
/** After a fallback, the candidates are probed again from this long later. */
const REPROBE_AFTER_US = 2_000_000;
/** A validated direct path is taken when its round trip plus the penalty is at most the relayed one's plus this. */
const TOLERANCE_US = 5_000;
/** Distinct candidate addresses a connection takes over its life (offers replace the set; this bounds what a peer can make it probe). */
const MAX_CANDIDATES_EVER = 4 * MAX_CANDIDATES;
/** Times a peer's offers may start the probing of one candidate again after its window ended. */
const MAX_RESTARTS = 3;
/** Challenges remembered per path: an answer to any of them counts, and times its round trip. */
const KEPT_CHALLENGES = 4;

/** What the direct-path prober needs from its connection. */
export interface DirectPathHost {
  /** Where packets go now. */
  readonly remote: SocketAddress;
  /** The client of the connection: it chooses the path, and the other side follows. */
  readonly isServer: boolean;
  random32(): number;
  /** The smoothed round trip of the path in use, µs, or -1 before a sample. */
  pathRttUs(): number;
  /** Move to `to`; `failed`: the path left did not answer (what was in flight there is lost). */
  moveTo(now: number, to: SocketAddress, failed: boolean): void;
  /** An ack-eliciting packet is owed on the path in use (a PING). */
  requestPing(): void;
}

/** A direct path's and the relayed path's state as the status reports it. */
export interface DirectPathInfo {
  /** Whether packets go on a direct path now. */
  readonly direct: boolean;
  /** The latest round trip measured on the direct path in use or last validated, µs; -1 none. */
  readonly directRttUs: number;
  /** The latest round trip measured on the relayed path, µs; -1 none. */
  readonly relayedRttUs: number;
  /** Candidates given, validated, challenges sent, moves back to the relayed path. */
  readonly candidates: number;
  readonly validations: number;
  readonly probesSent: number;
  readonly fallbacks: number;
}

class ProbedPath {
  readonly addr: SocketAddress;
  readonly challenges = new Uint8Array(KEPT_CHALLENGES * PATH_DATA_BYTES);
  readonly sentAtUs = new Float64Array(KEPT_CHALLENGES);
  sent = 0;
  nextAtUs: number;
  gapUs = PROBE_FIRST_GAP_US;
  giveUpAtUs: number;
  validated = false;
  /** Times an offer started its probing again. */
  restarts = 0;
  rttUs = -1;
  lastHeardUs = -1;

  constructor(addr: SocketAddress, now: number, giveUpAtUs: number) {
    this.addr = addr;
    this.nextAtUs = now;
    this.giveUpAtUs = giveUpAtUs;
  }

  /** The round trip to an answer carrying `data`, or -1 if it echoes none of the remembered challenges. */
  answered(now: number, data: Uint8Array): number {
    const n = Math.min(this.sent, KEPT_CHALLENGES);
    for (let i = 0; i < n; i++) {
      let same = true;
      for (let k = 0; k < PATH_DATA_BYTES; k++) {
        if (this.challenges[i * PATH_DATA_BYTES + k] !== data[k]) {
          same = false;
          break;
        }
      }
      if (same) return now - (this.sentAtUs[i] as number);
    }
    return -1;
  }
}

/**
 * Direct paths for a relayed connection (docs/P2P.md): the peer's candidate addresses, which it sent end
 * to end, are challenged (PATH_CHALLENGE in probe packets, from both sides at once, so that both NATs
 * open); an answer from the address challenged validates it. The client of the connection chooses: it
 * moves to a validated direct path whose round trip is not worse than the relayed one's by more than the
 * penalty, challenges the relayed path every 2 s (which times it), pings the direct
 * path when it hears nothing, and moves back to the relayed path after {@link DIRECT_SILENCE_US} of
 * silence there. The server follows: its client's newest non-probing packet from a path it validated
 * (a candidate, or the relayed path) moves it there at once. Keys, lanes and message numbers stay: it
 * is one connection on two paths.
 */
export class DirectPaths implements ProbeSource {
  readonly #host: DirectPathHost;
  /** The relayed path: where the connection started, and where it falls back. */
  readonly home: ProbedPath;
  readonly #candidates: ProbedPath[] = [];
  readonly #penaltyUs: number;
  /** The path a probe packet being built goes to (set by {@link probeTo}). */
  #plan: ProbedPath | null = null;
  #lastPingUs = -1;
  /** Distinct candidates taken so far (at most {@link MAX_CANDIDATES_EVER}). */
  #taken = 0;
  validations = 0;
  probesSent = 0;
  fallbacks = 0;

  constructor(host: DirectPathHost, penaltyUs: number, now: number) {
    this.#host = host;
    this.#penaltyUs = penaltyUs;
    this.home = new ProbedPath(host.remote, now, Number.POSITIVE_INFINITY);
    this.home.nextAtUs = NO_TIME; // probed only while direct
    this.home.validated = true;
    this.home.lastHeardUs = now;
  }

  /** The candidate in use, or null while on the relayed path. */
  get #current(): ProbedPath | null {
    const r = this.#host.remote;
    for (const c of this.#candidates) if (sameAddress(c.addr, r)) return c;
    return null;
  }

  get direct(): boolean {
    return this.#current !== null;
  }

  info(): DirectPathInfo {
    let rtt = -1;
    for (const c of this.#candidates) if (c.validated && c.rttUs >= 0) rtt = c.rttUs;
    const cur = this.#current;
    if (cur) rtt = Math.max(0, this.#host.pathRttUs());
    return {
      direct: cur !== null,
      directRttUs: rtt,
      relayedRttUs: cur ? this.home.rttUs : this.#host.pathRttUs(),
      candidates: this.#candidates.length,
      validations: this.validations,
      probesSent: this.probesSent,
      fallbacks: this.fallbacks,
    };
  }

  /**
   * The peer's candidates: they replace the ones it gave before (but the one in use). A known one whose
   * window ended is probed again, at most {@link MAX_RESTARTS} times; at most {@link MAX_CANDIDATES_EVER}
   * distinct addresses are ever taken, so a peer cannot make this side probe without end.
   */
  addCandidates(now: number, addrs: readonly SocketAddress[]): void {
    const cur = this.#current;
    for (let i = this.#candidates.length - 1; i >= 0; i--) {
      const c = this.#candidates[i] as ProbedPath;
      if (c !== cur && !addrs.some((a) => sameAddress(a, c.addr))) this.#candidates.splice(i, 1);
    }
    for (const a of addrs) {
      if (sameAddress(a, this.home.addr)) continue;
      const known = this.#candidates.find((c) => sameAddress(c.addr, a));
      if (known) {
        if (!known.validated && known.nextAtUs === NO_TIME && known.restarts < MAX_RESTARTS) {
          known.restarts++;
          this.#restart(known, now);
        }
        continue;
      }
      if (this.#candidates.length >= MAX_CANDIDATES || this.#taken >= MAX_CANDIDATES_EVER) continue;
      this.#taken++;
      this.#candidates.push(new ProbedPath({ address: a.address, port: a.port }, now, now + PUNCH_WINDOW_US));
    }
  }

  #restart(c: ProbedPath, at: number): void {
    c.nextAtUs = at;
    c.gapUs = PROBE_FIRST_GAP_US;
    c.giveUpAtUs = at + PUNCH_WINDOW_US;
  }

  /** The path `a` is, or null. */
  #find(a: SocketAddress): ProbedPath | null {
    if (sameAddress(a, this.home.addr)) return this.home;
    for (const c of this.#candidates) if (sameAddress(c.addr, a)) return c;
    return null;
  }

  /**
   * A PATH_RESPONSE from `from`. Returns true when it answers one of our challenges there: the path is
   * validated (and timed), and the client moves to it if it is a candidate worth taking.
   */
  onResponse(now: number, from: SocketAddress, data: Uint8Array): boolean {
    const p = this.#find(from);
    if (!p) return false;
    const rtt = p.answered(now, data);
    if (rtt < 0) return false;
    p.rttUs = rtt;
    p.lastHeardUs = now;
    if (p === this.home) return true;
    if (!p.validated) {
      p.validated = true;
      this.validations++;
    }
    p.nextAtUs = NO_TIME;
    if (!this.#host.isServer && this.#current === null) {
      const relayed = this.#host.pathRttUs();
      if (relayed < 0 || rtt + this.#penaltyUs <= relayed + TOLERANCE_US) this.#move(now, p, false);
      else p.nextAtUs = now + HOME_PROBE_US; // compared again later
    }
    return true;
  }

  /**
   * An authenticated packet from `from` (the path in use or another). `steering`: it carries frames
   * other than path probes and is the newest seen, so that the server follows the client to its path.
   * Returns true when the packet's address is one of these paths (no other validation is needed).
   */
  onPacket(now: number, from: SocketAddress, steering: boolean): boolean {
    const p = this.#find(from);
    if (!p) return false;
    p.lastHeardUs = now;
    if (steering && this.#host.isServer && p.validated && !sameAddress(from, this.#host.remote)) this.#move(now, p, false);
    return true;
  }

  #move(now: number, to: ProbedPath, failed: boolean): void {
    const from = this.#current;
    for (const c of this.#candidates) if (c !== to && !c.validated) c.nextAtUs = NO_TIME; // the search is over
    if (to === this.home) this.home.nextAtUs = NO_TIME;
    else {
      to.lastHeardUs = now;
      if (from === null) this.home.rttUs = this.#host.pathRttUs(); // the relayed path's smoothed round trip, until a challenge times it
      if (!this.#host.isServer) this.home.nextAtUs = now + HOME_PROBE_US;
    }
    if (failed && from) {
      from.validated = false;
      this.#restart(from, now + REPROBE_AFTER_US);
      this.fallbacks++;
    }
    this.#host.moveTo(now, to.addr, failed);
  }

  /** When {@link onTimeout} has something to do, or {@link NO_TIME}. */
  timeoutUs(): number {
    let at = this.home.nextAtUs;
    for (const c of this.#candidates) {
      if (c.nextAtUs < at) at = c.nextAtUs;
    }
    const cur = this.#current;
    if (cur) {
      const heard = cur.lastHeardUs;
      at = Math.min(at, heard + DIRECT_SILENCE_US, Math.max(heard, this.#lastPingUs) + DIRECT_KEEPALIVE_US);
    }
    return at;
  }

  onTimeout(now: number): void {
    const cur = this.#current;
    // A window that ended ends every probe there (a validated path not taken, compared again, too):
    // the same rule as wantsProbe's, so that no deadline stays in the past.
    for (const c of this.#candidates) {
      if (c.nextAtUs !== NO_TIME && now >= c.giveUpAtUs && c !== cur) c.nextAtUs = NO_TIME;
    }
    if (!cur) return;
    if (now - cur.lastHeardUs >= DIRECT_SILENCE_US) {
      this.#move(now, this.home, true);
      return;
    }
    if (now - cur.lastHeardUs >= DIRECT_KEEPALIVE_US && now - this.#lastPingUs >= DIRECT_KEEPALIVE_US) {
      this.#lastPingUs = now;
      this.#host.requestPing();
    }
  }

  /** Whether a challenge is due somewhere now (a cheap test before {@link probeTo}). */
  wantsProbe(now: number): boolean {
    if (this.home.nextAtUs <= now) return true;
    for (const c of this.#candidates) if (c.nextAtUs <= now && now < c.giveUpAtUs) return true;
    return false;
  }

  /** Where the next probe packet goes (a challenge is due there), or null. `fixedBytes` is unused: these need no amplification budget. */
  probeTo(_remote: SocketAddress, _fixedBytes: number, now: number): SocketAddress | null {
    let plan: ProbedPath | null = this.home.nextAtUs <= now ? this.home : null;
    if (!plan) for (const c of this.#candidates) if (c.nextAtUs <= now && now < c.giveUpAtUs) { plan = c; break; }
    this.#plan = plan;
    return plan?.addr ?? null;
  }

  /** Writes the PATH_CHALLENGE {@link probeTo} planned, and schedules the next one there. */
  writeProbe(w: Writer, now: number): void {
    const p = this.#plan as ProbedPath; // set by probeTo
    const slot = p.sent % KEPT_CHALLENGES;
    const c = p.challenges.subarray(slot * PATH_DATA_BYTES, (slot + 1) * PATH_DATA_BYTES);
    writeChallenge(w, c, this.#host);
    p.sentAtUs[slot] = now;
    p.sent++;
    this.probesSent++;
    if (p === this.home) p.nextAtUs = now + HOME_PROBE_US;
    else {
      p.nextAtUs = now + p.gapUs;
      p.gapUs = Math.min(2 * p.gapUs, PROBE_MAX_GAP_US);
    }
  }

  onProbeSent(_to: SocketAddress, _bytes: number): void {}
}
