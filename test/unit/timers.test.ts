// The structures an endpoint's timers and an idle connection's state rest on, against plain references:
// the indexed heap against a sorted list, the lazy replay window against a set, the lazy deque against an array.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IndexedHeap, type HeapEntry } from '../../src/util/heap.js';
import { ReplayWindow } from '../../src/util/replay-window.js';
import { Deque } from '../../src/util/deque.js';
import { keepaliveDeadline, statsDeadline } from '../../src/core/timers.js';
import { seedOr } from '../support/sim.js';

interface Item extends HeapEntry {
  readonly id: number;
}

/** One operation on the heap: set an item's key (insert or move), delete an item, or pop the smallest. */
type Op = { kind: 'set'; id: number; key: number } | { kind: 'delete'; id: number } | { kind: 'pop' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), id: fc.nat(40), key: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.double({ min: 0, max: 1e12, noNaN: true })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), id: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pop' as const) }) },
);

test('IndexedHeap: after any sequence of sets (inserts, earlier and later keys), deletes and pops, it agrees with a sorted reference', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 20, maxLength: 300 }), (ops) => {
      const heap = new IndexedHeap<Item>();
      const items = new Map<number, Item>();
      const ref = new Map<number, number>(); // id -> key of what the heap should hold
      const item = (id: number): Item => {
        let it = items.get(id);
        if (!it) items.set(id, (it = { id, heapKey: 0, heapIndex: -1 }));
        return it;
      };
      const smallest = (): number => Math.min(...ref.values());
      for (const o of ops) {
        if (o.kind === 'set') {
          heap.set(item(o.id), o.key);
          ref.set(o.id, o.key);
        } else if (o.kind === 'delete') {
          heap.delete(item(o.id));
          ref.delete(o.id);
        } else {
          const top = heap.pop();
          if (ref.size === 0) assert.equal(top, undefined);
          else {
            assert.ok(top, 'pop returned nothing from a non-empty heap');
            assert.equal(top.heapKey, smallest(), 'pop returned an entry that is not the smallest');
            assert.equal(ref.get(top.id), top.heapKey);
            ref.delete(top.id);
          }
        }
        assert.equal(heap.size, ref.size);
        assert.equal(heap.peek()?.heapKey, ref.size === 0 ? undefined : smallest());
        for (const [id, it] of items) assert.equal(heap.has(it), ref.has(id), `membership of ${id}`);
      }
      // Draining gives every remaining key in order.
      const out: number[] = [];
      for (let e = heap.pop(); e; e = heap.pop()) out.push(e.heapKey);
      assert.deepEqual(out, [...ref.values()].sort((a, b) => a - b));
    }),
    { seed: seedOr(1801), numRuns: 400 },
  );
});

test('ReplayWindow: in-order runs, gaps, late packets and replays are judged as a set of seen numbers within the window judges them', () => {
  const W = ReplayWindow.WINDOW;
  const step = fc.oneof(
    { weight: 8, arbitrary: fc.constant(1) }, // the next number: the in-order run the window keeps without a bitmap
    { weight: 2, arbitrary: fc.integer({ min: 2, max: 40 }) }, // a gap
    { weight: 1, arbitrary: fc.integer({ min: W - 5, max: W + 5 }) }, // a jump of about a window
    { weight: 3, arbitrary: fc.integer({ min: -60, max: 0 }) }, // a late packet or a replay
    { weight: 1, arbitrary: fc.integer({ min: -W - 5, max: -W + 5 }) }, // at the window's edge
  );
  fc.assert(
    fc.property(fc.nat(100_000), fc.array(step, { minLength: 20, maxLength: 400 }), (start, steps) => {
      const w = new ReplayWindow();
      const seen = new Set<number>();
      let largest = -1;
      let pn = start;
      for (const s of steps) {
        pn = Math.max(0, pn + s);
        const expected = pn > largest || (largest - pn < W && !seen.has(pn));
        assert.equal(w.isNew(pn), expected, `isNew(${pn}) with largest ${largest}`);
        if (expected) {
          w.mark(pn);
          seen.add(pn);
          largest = Math.max(largest, pn);
        }
        assert.equal(w.largest, largest);
      }
    }),
    { seed: seedOr(1802), numRuns: 300 },
  );
});

test('Deque: pushes and shifts past its small first ring and its reserve agree with an array', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.oneof(fc.nat(1000), fc.constant(-1)), { minLength: 20, maxLength: 600 }), (reserve, ops) => {
      const d = new Deque<number>(reserve);
      const ref: number[] = [];
      for (const v of ops) {
        if (v < 0) assert.equal(d.shift(), ref.shift());
        else {
          d.push(v);
          ref.push(v);
        }
        assert.equal(d.length, ref.length);
        assert.equal(d.peek(), ref[0]);
        assert.equal(d.at(ref.length - 1), ref[ref.length - 1]);
      }
      d.clear();
      assert.equal(d.length, 0);
      assert.equal(d.shift(), undefined);
    }),
    { seed: seedOr(1803), numRuns: 200 },
  );
});

test('keepalive and stats deadlines: never early, on their grids, and a server waits for the client that keeps the connection alive', () => {
  const I = 5_000_000;
  const grid = I / 32;
  // A client: the interval after the last packet heard or the last PING sent, rounded up to 1/32 of the interval.
  assert.equal(keepaliveDeadline(1_000_000, 0, Number.NEGATIVE_INFINITY, I), 6_093_750);
  assert.equal(keepaliveDeadline(1_000_000, 3_000_000, Number.NEGATIVE_INFINITY, I), 8_125_000);
  // A server that just heard an ack-eliciting packet (the client's PING) waits 1.5 intervals from it.
  assert.equal(keepaliveDeadline(1_000_000, 0, 1_000_000, I), 8_593_750);
  for (const last of [0, 1, 123_457, 9_999_999]) {
    const at = keepaliveDeadline(last, 0, Number.NEGATIVE_INFINITY, I);
    assert.ok(at >= last + I && at < last + I + grid && at % grid === 0, `keepalive after ${last}: ${at}`);
    const s = statsDeadline(last, 1_000_000);
    assert.ok(s >= last + 1_000_000 && s < last + 1_125_000 && s % 125_000 === 0, `stats after ${last}: ${s}`);
  }
});
