/** The ring of every deque that has not held anything yet (never written: a push allocates first). */
const NO_SLOTS: never[] = [];
/** Slots of a deque's first ring: an idle connection's queues hold a few items at most. */
const FIRST_SLOTS = 8;

/**
 * A FIFO queue on a growable ring buffer: push and shift are O(1) and do not allocate once warm
 * (unlike `Array.prototype.shift`, which is O(n)). Nothing is allocated until the first push, and the
 * first ring has 8 slots: the many queues of idle connections stay small.
 */
export class Deque<T> {
  #buf: (T | undefined)[] = NO_SLOTS;
  #head = 0;
  #len = 0;
  /** The ring the first growth past 8 slots jumps to (a power of two). */
  readonly #reserve: number;

  /** `capacity`: the room taken at once when the deque first holds more than 8 items (the expected busy size). */
  constructor(capacity = 16) {
    let c = 16;
    while (c < capacity) c *= 2;
    this.#reserve = c;
  }

  get length(): number {
    return this.#len;
  }

  push(v: T): void {
    if (this.#len === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#len) & (this.#buf.length - 1)] = v;
    this.#len++;
  }

  shift(): T | undefined {
    if (this.#len === 0) return undefined;
    const v = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#buf.length - 1);
    this.#len--;
    return v;
  }

  peek(): T | undefined {
    return this.#len === 0 ? undefined : this.#buf[this.#head];
  }

  /** The i-th element from the front (0 = front). */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.#len) return undefined;
    return this.#buf[(this.#head + i) & (this.#buf.length - 1)];
  }

  clear(): void {
    this.#buf.fill(undefined);
    this.#head = 0;
    this.#len = 0;
  }

  #grow(): void {
    const old = this.#buf;
    const next = new Array<T | undefined>(old.length === 0 ? FIRST_SLOTS : old.length === FIRST_SLOTS ? this.#reserve : old.length * 2);
    for (let i = 0; i < this.#len; i++) next[i] = old[(this.#head + i) & (old.length - 1)];
    this.#buf = next;
    this.#head = 0;
  }
}
