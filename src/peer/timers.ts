import type { PeerSession } from './session.js';

/** What the session timers call back into (the peer host). */
export interface SessionTimerHost<A> {
  lookup(now: number, s: PeerSession<A>): void;
  findingExpired(now: number, s: PeerSession<A>, st: Extract<PeerSession<A>['state'], { kind: 'findingRoute' }>): void;
  peerNeverCame(now: number, s: PeerSession<A>): void;
  repeatRequest(now: number, s: PeerSession<A>, st: Extract<PeerSession<A>['state'], { kind: 'awaitingAccept' | 'offered' }>): void;
  /** A link offer nobody accepted expired: the session is idle again. */
  offerExpired(now: number, s: PeerSession<A>): void;
  /** Returns whether the session closed. */
  idleTimeout(now: number, s: PeerSession<A>, idleUs: number): boolean;
}

/**
 * The peer layer's timers as one table: each session's deadline follows from its state (a lookup to
 * retry, a finding deadline, a request to repeat, a crossing's wait, the idle timeout), and `dueUs` is the
 * earliest of them. Commands that set an earlier deadline lower it; `run` fires what is due and recomputes.
 */
export class SessionTimers<A> {
  /** The earliest deadline of any session, µs (+Infinity: none). */
  dueUs = Number.POSITIVE_INFINITY;
  readonly #idleUs: number | null;

  constructor(idleUs: number | null) {
    this.#idleUs = idleUs;
  }

  /** Something is due at `atUs` (or earlier than thought). */
  lower(atUs: number): void {
    if (atUs < this.dueUs) this.dueUs = atUs;
  }

  /** Fires every deadline that has passed and computes the next one. */
  run(now: number, sessions: Iterable<PeerSession<A>>, host: SessionTimerHost<A>): void {
    let due = Number.POSITIVE_INFINITY;
    const idleUs = this.#idleUs;
    for (const s of [...sessions]) {
      const st = s.state;
      switch (st.kind) {
        case 'findingRoute':
          if (now >= st.deadlineUs) host.findingExpired(now, s, st); // an answer still in flight comes too late
          else if (!st.inFlight && now >= st.nextLookupUs) host.lookup(now, s);
          break;
        case 'awaitingAccept':
          if (now >= st.repeatAtUs) host.repeatRequest(now, s, st);
          break;
        case 'offered':
          if (now >= st.untilUs) host.offerExpired(now, s);
          else if (now >= st.repeatAtUs) host.repeatRequest(now, s, st);
          break;
        case 'awaitingPeer':
          if (now >= st.untilUs) host.peerNeverCame(now, s);
          break;
        default:
          break;
      }
      if (idleUs !== null && now - s.lastUsedUs >= idleUs && host.idleTimeout(now, s, idleUs)) continue;
      due = Math.min(due, nextDeadline(s, idleUs));
    }
    this.dueUs = due;
  }
}

/** A session's next deadline, from its state and its last use. */
function nextDeadline<A>(s: PeerSession<A>, idleUs: number | null): number {
  const st = s.state;
  let due = Number.POSITIVE_INFINITY;
  if (st.kind === 'findingRoute') due = st.inFlight ? st.deadlineUs : Math.min(st.nextLookupUs, st.deadlineUs);
  else if (st.kind === 'awaitingAccept') due = st.repeatAtUs;
  else if (st.kind === 'offered') due = Math.min(st.repeatAtUs, st.untilUs);
  else if (st.kind === 'awaitingPeer') due = st.untilUs;
  if (idleUs !== null) due = Math.min(due, s.lastUsedUs + idleUs);
  return due;
}
