import { ConnectionState as S, type ConnectionState } from './types.js';

/** The deadline of a timer that is not armed: it never wins {@link TimerTable.next}. */
export const NO_TIME = Number.POSITIVE_INFINITY;

/** Configuration durations are in milliseconds; the core's clock is in microseconds. */
export const US_PER_MS = 1000;

/** Rates are per second; the core's clock is in microseconds. */
export const US_PER_S = 1_000_000;

/**
 * The connection's timers, one slot each in its {@link TimerTable}; {@link timersFor} says which can
 * fire in which state. The slots the connection owns are set when the event that moves them happens.
 * `Ack`, `Loss`, `Send` and `Path` mirror deadlines that the ack tracker, recovery, the pacer and the path
 * validator own and move on every packet, so they are copied from them each time the next deadline is asked for.
 */
export const Timer = {
  /** Connecting: the handshake gives up (`TimeoutInitial`). */
  Connect: 0,
  /** Client, connecting: HELLO or CONNECT_REQUEST goes out again. */
  HandshakeRetry: 1,
  /** Nothing heard from the peer for `TimeoutConnected`: the connection has failed. */
  Idle: 2,
  /** Nothing heard or sent for `KeepaliveInterval`: a PING goes out. */
  Keepalive: 3,
  /**
   * The stats interval ends: rates and quality are recomputed and a STATS frame is owed. A wake-up only
   * while packets came or went in the interval (the connection adds it to its mask); an idle interval is
   * closed by the next packet in or out, status read or other timer, so that idle connections cost none.
   */
  Stats: 4,
  /** An ACK is due. */
  Ack: 5,
  /** Loss detection or the probe timeout. */
  Loss: 6,
  /** Queued data wants to go and the window and pacer let a packet out. */
  Send: 7,
  /**
   * Small queued messages stop waiting for company. Never a wake-up by itself: it feeds `Send`, which
   * also waits for the window and the pacer, so no state's mask holds it.
   */
  Nagle: 8,
  /** FinWait is over: the connection is dead and the endpoint forgets it. */
  FinWait: 9,
  /** Path validation: a PATH_CHALLENGE goes out again, or the validation is abandoned. */
  Path: 10,
} as const;
/** One of the {@link Timer} kinds. */
export type Timer = (typeof Timer)[keyof typeof Timer];

const TIMER_COUNT = Object.keys(Timer).length;

/** A set of {@link Timer} kinds, bit `1 << kind` each. */
export type TimerMask = number;

const HANDSHAKE_TIMERS: TimerMask = (1 << Timer.Connect) | (1 << Timer.HandshakeRetry);
const TRANSPORT_TIMERS: TimerMask = (1 << Timer.Idle) | (1 << Timer.Keepalive) | (1 << Timer.Ack) | (1 << Timer.Loss) | (1 << Timer.Send) | (1 << Timer.Path);
const CLOSING_TIMERS: TimerMask = 1 << Timer.FinWait;
const NO_TIMERS: TimerMask = 0;

/** Keepalive deadlines fall on a grid of 1/this of the interval, so that idle connections share wake-ups. */
const KEEPALIVE_GRID_DIVISOR = 32;
/**
 * A server's keepalive waits this many intervals after a packet that asked for an ack (the client's PING or
 * data): the client keeps the connection alive, and its next PING comes first. With one rule on both sides,
 * both would PING each interval: each one's deadline runs from the other's last packet, so they fall together.
 */
const KEEPALIVE_ANSWERED_FACTOR = 1.5;

/**
 * When the keepalive PING goes out: `intervalUs` after the last packet heard or the last PING sent, and (a
 * server) 1.5 intervals after the last heard packet that asked for an ack (`lastAskedUs`; -Infinity for a
 * client), rounded up to a grid of 1/32 of the interval (250 ms at the default 8 s) so that the keepalives
 * of many idle connections share an endpoint's wake-ups. An idle connection so costs one PING and its ACK
 * per interval, from the client while it lives.
 */
export function keepaliveDeadline(lastRecvUs: number, lastKeepaliveUs: number, lastAskedUs: number, intervalUs: number): number {
  const at = Math.max(lastRecvUs + intervalUs, lastKeepaliveUs + intervalUs, lastAskedUs + intervalUs * KEEPALIVE_ANSWERED_FACTOR);
  const grid = Math.max(1, Math.floor(intervalUs / KEEPALIVE_GRID_DIVISOR));
  return Math.ceil(at / grid) * grid;
}

/** The stats intervals of an endpoint's connections end on a common grid of 1/8 s, so that they share wake-ups. */
const STATS_GRID_US = 125_000;

/** When a stats interval that starts at `now` ends: `intervalUs` later, rounded up to the grid (at most 1/8 s longer). */
export function statsDeadline(now: number, intervalUs: number): number {
  return Math.ceil((now + intervalUs) / STATS_GRID_US) * STATS_GRID_US;
}

/**
 * The timers that can fire in `state`. `inFlight`: ack-eliciting packets are outstanding; their acks or
 * the probe timeout already show whether the peer lives, so the keepalive is left out.
 */
export function timersFor(state: ConnectionState, inFlight: boolean): TimerMask {
  switch (state) {
    case S.Connecting:
      return HANDSHAKE_TIMERS;
    case S.Connected:
    case S.Linger:
      return inFlight ? TRANSPORT_TIMERS & ~(1 << Timer.Keepalive) : TRANSPORT_TIMERS;
    case S.FinWait:
      return CLOSING_TIMERS;
    case S.None:
    case S.FindingRoute:
    case S.ClosedByPeer:
    case S.ProblemDetectedLocally:
    case S.Dead:
      return NO_TIMERS;
    default: {
      const never: never = state;
      return never;
    }
  }
}

/**
 * Every deadline of one connection in one place (absolute µs, {@link NO_TIME} when not armed), so that
 * the next wake-up is one scan and no timer hides in a field of its own. Which timers count depends on
 * the connection's state: the caller names them with a {@link TimerMask} from {@link timersFor}.
 */
export class TimerTable {
  /** A plain array of doubles: smaller than a Float64Array (no ArrayBuffer, no external store) for the same reads. */
  readonly #at: number[] = new Array<number>(TIMER_COUNT).fill(NO_TIME);

  /** The deadline of `t` ({@link NO_TIME} when not armed). */
  get(t: Timer): number {
    return this.#at[t] as number;
  }

  /** Arms `t` for `atUs`, replacing its deadline. */
  set(t: Timer, atUs: number): void {
    this.#at[t] = atUs;
  }

  /** Disarms `t`. */
  stop(t: Timer): void {
    this.#at[t] = NO_TIME;
  }

  /** Whether `t` is armed and its deadline has come. */
  expired(t: Timer, now: number): boolean {
    return now >= (this.#at[t] as number);
  }

  /** The earliest deadline among the timers in `mask`, or {@link NO_TIME}. */
  next(mask: TimerMask): number {
    const at = this.#at;
    let t = NO_TIME;
    for (let i = 0; i < TIMER_COUNT; i++) {
      if ((mask & (1 << i)) !== 0 && (at[i] as number) < t) t = at[i] as number;
    }
    return t;
  }
}
