/** An item scheduled at `atUs`; `seq` breaks ties so that equal times keep insertion order. */
export interface Scheduled {
  readonly atUs: number;
  readonly seq: number;
}

/** Binary min-heap on (atUs, seq): deterministic order for timers and delayed packets. */
export class TimeHeap<T extends Scheduled> {
  readonly #h: T[] = [];

  get length(): number {
    return this.#h.length;
  }

  /** The earliest item, without removing it. */
  peek(): T | undefined {
    return this.#h[0];
  }

  push(e: T): void {
    const h = this.#h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(e, h[p] as T)) break;
      h[i] = h[p] as T;
      i = p;
    }
    h[i] = e;
  }

  pop(): T | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && less(h[r] as T, h[l] as T) ? r : l;
      if (!less(h[c] as T, last)) break;
      h[i] = h[c] as T;
      i = c;
    }
    h[i] = last;
    return top;
  }

  clear(): void {
    this.#h.length = 0;
  }
}

function less(a: Scheduled, b: Scheduled): boolean {
  return a.atUs < b.atUs || (a.atUs === b.atUs && a.seq < b.seq);
}

/** What an {@link IndexedHeap} holds: its key and its place in the heap, both written by the heap only. */
export interface HeapEntry {
  /** The key the heap orders by (smallest first). Read it; change it through {@link IndexedHeap.set}. */
  heapKey: number;
  /** Where the entry sits in the heap's array, -1 when it is not in the heap. */
  heapIndex: number;
}

/**
 * A binary min-heap of entries that know their place, so that an entry's key can change and an entry can
 * leave in O(log n), without a search: the connection table's deadlines. Equal keys come out in an order
 * that depends only on the sequence of calls (deterministic), not in insertion order.
 */
export class IndexedHeap<T extends HeapEntry> {
  readonly #h: T[] = [];

  get size(): number {
    return this.#h.length;
  }

  /** The entry with the smallest key, without removing it. */
  peek(): T | undefined {
    return this.#h[0];
  }

  /** Whether `e` is in this heap. */
  has(e: T): boolean {
    return e.heapIndex >= 0 && this.#h[e.heapIndex] === e;
  }

  /** Puts `e` in the heap with `key`, or moves it there if it is in already. */
  set(e: T, key: number): void {
    if (!this.has(e)) {
      e.heapKey = key;
      e.heapIndex = this.#h.length;
      this.#h.push(e);
      this.#up(e.heapIndex);
      return;
    }
    const old = e.heapKey;
    e.heapKey = key;
    if (key < old) this.#up(e.heapIndex);
    else if (key > old) this.#down(e.heapIndex);
  }

  /** Takes `e` out of the heap; nothing happens if it is not in it. */
  delete(e: T): void {
    if (!this.has(e)) return;
    const h = this.#h;
    const i = e.heapIndex;
    const last = h.pop() as T;
    e.heapIndex = -1;
    if (last === e) return;
    h[i] = last;
    last.heapIndex = i;
    this.#up(i);
    this.#down(last.heapIndex);
  }

  /** Removes and returns the entry with the smallest key. */
  pop(): T | undefined {
    const top = this.#h[0];
    if (top) this.delete(top);
    return top;
  }

  /** Empties the heap. */
  clear(): void {
    for (const e of this.#h) e.heapIndex = -1;
    this.#h.length = 0;
  }

  #up(i: number): void {
    const h = this.#h;
    const e = h[i] as T;
    const k = e.heapKey;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = h[p] as T;
      if (pe.heapKey <= k) break;
      h[i] = pe;
      pe.heapIndex = i;
      i = p;
    }
    h[i] = e;
    e.heapIndex = i;
  }

  #down(i: number): void {
    const h = this.#h;
    const n = h.length;
    const e = h[i] as T;
    const k = e.heapKey;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let ce = h[l] as T;
      if (r < n && (h[r] as T).heapKey < ce.heapKey) {
        c = r;
        ce = h[r] as T;
      }
      if (ce.heapKey >= k) break;
      h[i] = ce;
      ce.heapIndex = i;
      i = c;
    }
    h[i] = e;
    e.heapIndex = i;
  }
}
