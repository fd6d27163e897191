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
