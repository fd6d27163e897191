import type { SocketAddress } from '../core/types.js';
import { TimeHeap } from '../util/heap.js';
import type { Rng } from '../util/rng.js';

/**
 * Fake network conditions for one direction of one socket, as GameNetworkingSockets defines them
 * (`FakePacketLoss_Send`, `FakePacketLag_Send`, ...; docs/PORTING.md lists the names). Percentages are
 * 0..100, times milliseconds, rates bytes per second. They are applied in GNS's order: rate limit, loss,
 * lag, jitter, reorder, duplicate.
 */
export interface FakeConditions {
  readonly lossPct: number;
  readonly lagMs: number;
  /** Share of packets held back `reorderTimeMs` extra, so that later packets overtake them. */
  readonly reorderPct: number;
  readonly reorderTimeMs: number;
  /** Share of packets delivered twice; the copy comes up to `dupTimeMaxMs` later. */
  readonly dupPct: number;
  readonly dupTimeMaxMs: number;
  /** Jitter: `jitterPct`% of packets get an exponential extra delay of mean `jitterAvgMs`, capped at `jitterMaxMs`. Later packets never overtake a jittered one. */
  readonly jitterAvgMs: number;
  readonly jitterMaxMs: number;
  readonly jitterPct: number;
  /** Token-bucket policer: packets beyond `rateLimitBytesPerSec` (with a burst of `rateLimitBurstBytes`) are dropped. 0 = off. */
  readonly rateLimitBytesPerSec: number;
  readonly rateLimitBurstBytes: number;
}

/** No fake conditions (GNS defaults). */
export const NO_FAKE_CONDITIONS: FakeConditions = Object.freeze({
  lossPct: 0,
  lagMs: 0,
  reorderPct: 0,
  reorderTimeMs: 15,
  dupPct: 0,
  dupTimeMaxMs: 10,
  jitterAvgMs: 0,
  jitterMaxMs: 100,
  jitterPct: 75,
  rateLimitBytesPerSec: 0,
  rateLimitBurstBytes: 16_384,
});

/** What a {@link FakeLink} did to the datagrams it saw. */
export interface FakeLinkStats {
  /** Dropped by `lossPct`. */
  lost: number;
  /** Dropped by the rate limit. */
  rateLimited: number;
  delayed: number;
  reordered: number;
  duplicated: number;
}

/** A datagram held back by a {@link FakeLink}. */
export interface DelayedDatagram {
  readonly atUs: number;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly peer: SocketAddress;
}

/**
 * One direction of fake conditions. `admit` decides the fate of a datagram: pass now (true), or drop
 * or hold it (false). Held datagrams come out of `pollDue` in delivery order. With no conditions set,
 * `admit` returns true and allocates nothing.
 */
export class FakeLink {
  readonly stats: FakeLinkStats = { lost: 0, rateLimited: 0, delayed: 0, reordered: 0, duplicated: 0 };
  readonly #rng: Rng;
  readonly #held = new TimeHeap<DelayedDatagram>();
  #c: FakeConditions = NO_FAKE_CONDITIONS;
  #active = false;
  #seq = 0;
  /** Latest in-order delivery time: nothing that is not reordered is delivered before it ("clumping"). */
  #lastUs = 0;
  #tokens = 0;
  #tokensUs = 0;

  constructor(rng: Rng) {
    this.#rng = rng;
  }

  /** Whether any condition is set (or datagrams are still held): `admit` may then hold or drop. */
  get active(): boolean {
    return this.#active || this.#held.length > 0;
  }

  get conditions(): FakeConditions {
    return this.#c;
  }

  set conditions(c: FakeConditions) {
    this.#c = c;
    this.#active = c.lossPct > 0 || c.lagMs > 0 || c.reorderPct > 0 || c.dupPct > 0 || (c.jitterAvgMs > 0 && c.jitterPct > 0) || c.rateLimitBytesPerSec > 0;
    this.#tokens = c.rateLimitBurstBytes;
  }

  /** Whether the datagram passes untouched right now. If false it was dropped or is held for `pollDue`. */
  admit(now: number, data: Uint8Array, peer: SocketAddress): boolean {
    if (!this.#active) return this.#held.length === 0 || this.#hold(now, now, data, peer);
    const c = this.#c;
    const rng = this.#rng;
    if (c.rateLimitBytesPerSec > 0) {
      this.#tokens = Math.min(c.rateLimitBurstBytes, this.#tokens + ((now - this.#tokensUs) * c.rateLimitBytesPerSec) / 1e6);
      this.#tokensUs = now;
      if (this.#tokens < data.length) {
        this.stats.rateLimited++;
        return false;
      }
      this.#tokens -= data.length;
    }
    if (c.lossPct > 0 && rng.next() * 100 < c.lossPct) {
      this.stats.lost++;
      return false;
    }
    let at = now + c.lagMs * 1000;
    if (c.jitterAvgMs > 0 && rng.next() * 100 < c.jitterPct) {
      at += Math.min(c.jitterMaxMs, -Math.log(1 - rng.next()) * c.jitterAvgMs) * 1000;
    }
    if (c.reorderPct > 0 && rng.next() * 100 < c.reorderPct) {
      this.stats.reordered++;
      at += c.reorderTimeMs * 1000;
    } else {
      at = Math.max(at, this.#lastUs);
      this.#lastUs = at;
    }
    if (c.dupPct > 0 && rng.next() * 100 < c.dupPct) {
      this.stats.duplicated++;
      // The copy is a separate buffer: the receiver may decrypt in place.
      this.#push(at + rng.next() * c.dupTimeMaxMs * 1000, data.slice(), peer);
    }
    return this.#hold(now, Math.round(at), data, peer);
  }

  /** Holds the datagram unless it may go now and nothing is held before it. */
  #hold(now: number, at: number, data: Uint8Array, peer: SocketAddress): boolean {
    if (at <= now && this.#held.length === 0) return true;
    this.stats.delayed++;
    this.#push(at, data, peer);
    return false;
  }

  #push(at: number, data: Uint8Array, peer: SocketAddress): void {
    this.#held.push({ atUs: Math.round(at), seq: this.#seq++, data, peer });
  }

  /** When the next held datagram is due; +Infinity if none. */
  nextDueUs(): number {
    return this.#held.peek()?.atUs ?? Number.POSITIVE_INFINITY;
  }

  /** The next held datagram due at `now`, or null. */
  pollDue(now: number): DelayedDatagram | null {
    const top = this.#held.peek();
    if (!top || top.atUs > now) return null;
    return this.#held.pop() ?? null;
  }

  /** Forgets every held datagram (the socket closed). */
  clear(): void {
    this.#held.clear();
  }
}
