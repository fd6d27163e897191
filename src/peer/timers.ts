import { IndexedHeap, type HeapEntry } from '../util/heap.js';
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

/** A session's place in the timer heap. */
interface Slot<A> extends HeapEntry {
  readonly s: PeerSession<A>;
}

/**
 * The peer layer's timers: each session's deadline follows from its state (a lookup to retry, a finding
 * deadline, a request to repeat, a crossing's wait, the idle timeout), and the sessions sit in a min-heap
 * keyed by it, so that `dueUs` is a peek and `run` looks only at the sessions whose deadline has come.
 * Commands that set an earlier deadline call `lower(s, at)`; deadlines that only move later (the idle
 * timeout, as the session is used) are found when the old one comes, and the session goes back with the new.
 */
export class SessionTimers<A> {
  readonly #idleUs: number | null;
  readonly #heap = new IndexedHeap<Slot<A>>();
  readonly #slots = new Map<PeerSession<A>, Slot<A>>();
  /** The sessions one `run` found due (reused). */
  readonly #due: Slot<A>[] = [];

  constructor(idleUs: number | null) {
    this.#idleUs = idleUs;
  }

  /** The earliest deadline of any session, µs (+Infinity: none). */
  get dueUs(): number {
    return this.#heap.peek()?.heapKey ?? Number.POSITIVE_INFINITY;
  }

  /** Session `s` has something due at `atUs` (or earlier than thought). */
  lower(s: PeerSession<A>, atUs: number): void {
    if (atUs === Number.POSITIVE_INFINITY) return;
    let slot = this.#slots.get(s);
    if (!slot) this.#slots.set(s, (slot = { s, heapKey: atUs, heapIndex: -1 }));
    if (!this.#heap.has(slot) || atUs < slot.heapKey) this.#heap.set(slot, atUs);
  }

  /** The session is gone: its deadlines with it. */
  forget(s: PeerSession<A>): void {
    const slot = this.#slots.get(s);
    if (!slot) return;
    this.#heap.delete(slot);
    this.#slots.delete(s);
  }

  /** Fires the deadlines that have passed, of the sessions whose deadline has come, and puts each back at its next. */
  run(now: number, host: SessionTimerHost<A>): void {
    const heap = this.#heap;
    const due = this.#due;
    for (let top = heap.peek(); top !== undefined && top.heapKey <= now; top = heap.peek()) due.push(heap.pop() as Slot<A>);
    const idleUs = this.#idleUs;
    for (let i = 0; i < due.length; i++) {
      const slot = due[i] as Slot<A>;
      const s = slot.s;
      if (this.#slots.get(s) !== slot) continue; // forgotten by an earlier one's handler
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
      if (idleUs !== null && now - s.lastUsedUs >= idleUs && host.idleTimeout(now, s, idleUs)) {
        this.forget(s);
        continue;
      }
      if (this.#slots.get(s) !== slot) continue; // a handler closed it
      const next = nextDeadline(s, idleUs);
      if (next === Number.POSITIVE_INFINITY) heap.delete(slot);
      else if (!heap.has(slot) || next < slot.heapKey) heap.set(slot, next);
    }
    while (due.length > 0) due.pop(); // not `length = 0`, which drops the array's storage (the next push allocates)
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
