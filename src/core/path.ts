import { FrameType, PATH_DATA_BYTES, PATH_FRAME_BYTES, encodePathFrame } from '../wire/frames.js';
import type { Writer } from '../wire/writer.js';
import { MAX_ACK_DELAY_US } from './ack-tracker.js';
import { INITIAL_RTT_US } from './rtt.js';
import { NO_TIME } from './timers.js';
import { sameAddress, type SocketAddress } from './types.js';

/** Bytes sent to an address under validation stay within this multiple of the bytes received from it (RFC 9000 8.1). */
export const AMPLIFICATION_FACTOR = 3;
/** Challenges one validation sends at most. Each is remembered: a late answer to an earlier one still counts. */
const MAX_CHALLENGES = 6;
/** A validation is abandoned after this many times the larger of the current probe timeout and the initial one (RFC 9000 8.2.4). */
const VALIDATION_PTOS = 3;
/** The probe timeout of a path with no RTT sample yet (RFC 9002 6.2.1 with the initial RTT). */
const INITIAL_PTO_US = INITIAL_RTT_US + 4 * (INITIAL_RTT_US / 2) + MAX_ACK_DELAY_US;

/** What path validation needs from its connection: where packets go now, randomness, and the counters it keeps there. */
export interface PathHost {
  /** The validated peer address packets go to. */
  readonly remote: SocketAddress;
  /** 32 unpredictable bits (challenge data). */
  random32(): number;
  pathChallengesSent: number;
  pathResponsesSent: number;
  pathValidationsFailed: number;
}

/** What a probe packet's frames come from: path validation, or the direct-path prober (direct-path.ts). */
export interface ProbeSource {
  /** Where a probe packet must go now, or null; the next {@link writeProbe} writes what this decided. */
  probeTo(remote: SocketAddress, fixedBytes: number, now: number): SocketAddress | null;
  writeProbe(w: Writer, now: number): void;
  /** A probe packet of `bytes` left for `to`. */
  onProbeSent(to: SocketAddress, bytes: number): void;
}

/**
 * Path validation (RFC 9000 8.2) for a connection whose peer may change address. An authenticated
 * packet from another address that is the newest the connection has seen starts a validation of that
 * address: a PATH_CHALLENGE (8 random bytes) is sent there, again after a probe timeout (doubling),
 * until the matching PATH_RESPONSE arrives from that address or the validation is abandoned. Until then
 * the connection keeps sending to its validated address, and the address under validation gets no
 * more than {@link AMPLIFICATION_FACTOR} times the bytes received from it. The validator never moves the
 * connection itself: {@link onResponse} says when the address is proven and the connection moves.
 *
 * It also answers the peer's challenges: a PATH_RESPONSE goes back on the path the challenge came from,
 * in an ordinary packet when that is the validated address, in a probe packet of its own otherwise.
 * Nothing here allocates after construction.
 */
export class PathValidator implements ProbeSource {
  readonly #host: PathHost;
  /** The address under validation, or null. */
  #probe: SocketAddress | null = null;
  /** The challenges sent to it, {@link PATH_DATA_BYTES} each (allocated by the first validation: most connections never migrate). */
  #challenges: Uint8Array | null = null;
  #sent = 0;
  /** Authenticated bytes received from the address under validation, and bytes sent to it. */
  #bytesFrom = 0;
  #bytesTo = 0;
  #challengeDue = false;
  /** The wait before the next challenge, doubled after each one. */
  #retryWaitUs = 0;
  #retryAtUs = NO_TIME;
  #deadlineUs = NO_TIME;
  /** A PATH_RESPONSE owed: to where (null: none), and its data. */
  #responseTo: SocketAddress | null = null;
  #response: Uint8Array | null = null;
  /** What the probe packet being built carries (set by {@link probeTo}, used by {@link writeProbe}). */
  #planResponse = false;
  #planChallenge = false;

  constructor(host: PathHost) {
    this.#host = host;
  }

  /** Whether a probe packet may be owed (a cheap test before {@link probeTo}). */
  get wantsProbe(): boolean {
    return this.#responseTo !== null || this.#challengeDue;
  }

  /**
   * An authenticated packet of `bytes` came from `from`, which is not the validated address. `newest`:
   * it has the highest packet number seen so far; only such a packet starts a validation (an old or
   * reordered one never does). `ptoUs`: the current probe timeout, which paces the challenges.
   */
  onPacketFrom(now: number, from: SocketAddress, bytes: number, newest: boolean, ptoUs: number): void {
    const probe = this.#probe;
    if (probe !== null && sameAddress(probe, from)) {
      this.#bytesFrom += bytes;
      return;
    }
    if (!newest) return;
    if (probe !== null) this.#host.pathValidationsFailed++; // a newer address replaces it
    this.#probe = from;
    this.#challenges ??= new Uint8Array(MAX_CHALLENGES * PATH_DATA_BYTES);
    this.#bytesFrom = bytes;
    this.#bytesTo = 0;
    this.#sent = 0;
    this.#challengeDue = true;
    this.#retryWaitUs = ptoUs;
    this.#retryAtUs = NO_TIME;
    this.#deadlineUs = now + VALIDATION_PTOS * Math.max(ptoUs, INITIAL_PTO_US);
  }

  /** A PATH_CHALLENGE arrived from `from`: its PATH_RESPONSE is owed there (only the latest challenge is answered). */
  onChallenge(from: SocketAddress, data: Uint8Array): void {
    this.#responseTo = from;
    (this.#response ??= new Uint8Array(PATH_DATA_BYTES)).set(data);
  }

  /**
   * A PATH_RESPONSE arrived from `from`. Returns true when it echoes one of our challenges and came from
   * the address they went to: that address is proven, the validation is over, and the connection moves
   * there. Anything else is ignored.
   */
  onResponse(from: SocketAddress, data: Uint8Array): boolean {
    const probe = this.#probe;
    if (probe === null || !sameAddress(probe, from)) return false;
    const c = this.#challenges as Uint8Array; // a validation is under way
    for (let i = 0; i < this.#sent; i++) {
      let same = true;
      for (let k = 0; k < PATH_DATA_BYTES; k++) {
        if (c[i * PATH_DATA_BYTES + k] !== data[k]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.#stop();
        return true;
      }
    }
    return false;
  }

  #stop(): void {
    this.#probe = null;
    this.#challengeDue = false;
    this.#retryAtUs = NO_TIME;
    this.#deadlineUs = NO_TIME;
  }

  /** When {@link onTimeout} has something to do: the next challenge or giving up ({@link NO_TIME}: never). */
  timeoutUs(): number {
    if (this.#probe === null) return NO_TIME;
    return Math.min(this.#retryAtUs, this.#deadlineUs);
  }

  onTimeout(now: number): void {
    if (this.#probe === null) return;
    if (now >= this.#deadlineUs) {
      this.#host.pathValidationsFailed++;
      this.#stop();
      return;
    }
    if (now >= this.#retryAtUs) {
      this.#retryAtUs = NO_TIME;
      this.#challengeDue = this.#sent < MAX_CHALLENGES;
    }
  }

  /**
   * Where a probe packet must go now, or null: a PATH_RESPONSE owed to an address other than `remote`,
   * and a PATH_CHALLENGE due to the address under validation if `fixedBytes` (the packet's header and
   * AEAD overhead) and the frames fit its amplification budget. The next {@link writeProbe} writes what
   * this decided.
   */
  probeTo(remote: SocketAddress, fixedBytes: number): SocketAddress | null {
    const probe = this.#probe;
    const resp = this.#responseTo;
    this.#planResponse = resp !== null && !sameAddress(resp, remote);
    const to = this.#planResponse ? resp : probe;
    this.#planChallenge = false;
    if (to === null) return null;
    if (this.#challengeDue && probe !== null && sameAddress(probe, to)) {
      const size = fixedBytes + PATH_FRAME_BYTES * (this.#planResponse ? 2 : 1);
      this.#planChallenge = this.#bytesTo + size <= AMPLIFICATION_FACTOR * this.#bytesFrom;
    }
    return this.#planResponse || this.#planChallenge ? to : null;
  }

  /** Writes the frames {@link probeTo} decided on; `now` times the next challenge. */
  writeProbe(w: Writer, now: number): void {
    if (this.#planResponse) this.writeResponse(w);
    if (this.#planChallenge) {
      const c = (this.#challenges as Uint8Array).subarray(this.#sent * PATH_DATA_BYTES, (this.#sent + 1) * PATH_DATA_BYTES);
      writeChallenge(w, c, this.#host);
      this.#sent++;
      this.#host.pathChallengesSent++;
      this.#challengeDue = false;
      this.#retryAtUs = now + this.#retryWaitUs;
      this.#retryWaitUs *= 2;
    }
  }

  /** A probe packet of `bytes` left for `to`: it counts against that address's amplification budget. */
  onProbeSent(to: SocketAddress, bytes: number): void {
    const probe = this.#probe;
    if (probe !== null && sameAddress(probe, to)) this.#bytesTo += bytes;
  }

  /** Whether a PATH_RESPONSE is owed on the validated path, `remote` (it rides in an ordinary packet). */
  responseOwedTo(remote: SocketAddress): boolean {
    const resp = this.#responseTo;
    return resp !== null && sameAddress(resp, remote);
  }

  /** Writes the PATH_RESPONSE owed (see {@link responseOwedTo}). */
  writeResponse(w: Writer): void {
    encodePathFrame(w, FrameType.PathResponse, this.#response as Uint8Array); // set with #responseTo
    this.#responseTo = null;
    this.#host.pathResponsesSent++;
  }

  /** The connection stopped sending: nothing more is owed. */
  clear(): void {
    this.#stop();
    this.#responseTo = null;
  }
}

/** Fills `c` (a challenge's {@link PATH_DATA_BYTES}) with fresh random bytes and writes it as a PATH_CHALLENGE. */
export function writeChallenge(w: Writer, c: Uint8Array, rng: { random32(): number }): void {
  for (let k = 0; k < PATH_DATA_BYTES; k += 4) {
    const r = rng.random32();
    c[k] = r >>> 24;
    c[k + 1] = (r >>> 16) & 0xff;
    c[k + 2] = (r >>> 8) & 0xff;
    c[k + 3] = r & 0xff;
  }
  encodePathFrame(w, FrameType.PathChallenge, c);
}
