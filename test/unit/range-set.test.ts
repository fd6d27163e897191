import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RangeSet } from '../../src/util/range-set.js';

/** The set's members, from its ranges. */
function members(rs: RangeSet): number[] {
  const out: number[] = [];
  for (let i = 0; i < rs.size; i++) for (let v = rs.lo[i] as number; v <= (rs.hi[i] as number); v++) out.push(v);
  return out;
}

/** A reference: the same set as a sorted array of members, and its ranges. */
function referenceRanges(ref: Set<number>): [number, number][] {
  const vs = [...ref].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const v of vs) {
    const last = out[out.length - 1];
    if (last && last[1] === v - 1) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

type Op = { op: 'add' | 'remove'; a: number; len: number } | { op: 'removeBelow'; a: number } | { op: 'trimOldest'; n: number } | { op: 'clear' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('add' as const), a: fc.integer({ min: 0, max: 600 }), len: fc.integer({ min: 0, max: 6 }) }), weight: 8 },
  { arbitrary: fc.record({ op: fc.constant('remove' as const), a: fc.integer({ min: 0, max: 600 }), len: fc.integer({ min: 0, max: 30 }) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('removeBelow' as const), a: fc.integer({ min: 0, max: 600 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('trimOldest' as const), n: fc.integer({ min: 0, max: 40 }) }), weight: 1 },
  { arbitrary: fc.constant({ op: 'clear' as const }), weight: 1 },
);

test('RangeSet behaves like a reference set under random adds, removes, removeBelow, trimOldest and clear (growing past its first storage)', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 50, maxLength: 400 }), (ops) => {
      const rs = new RangeSet();
      const ref = new Set<number>();
      for (const o of ops) {
        switch (o.op) {
          case 'add': {
            let fresh = 0;
            for (let v = o.a; v <= o.a + o.len; v++) {
              if (!ref.has(v)) fresh++;
              ref.add(v);
            }
            assert.equal(rs.add(o.a, o.a + o.len), fresh, `add(${o.a}, ${o.a + o.len})`);
            break;
          }
          case 'remove':
            for (let v = o.a; v <= o.a + o.len; v++) ref.delete(v);
            rs.remove(o.a, o.a + o.len);
            break;
          case 'removeBelow':
            for (const v of [...ref]) if (v < o.a) ref.delete(v);
            rs.removeBelow(o.a);
            break;
          case 'trimOldest': {
            const ranges = referenceRanges(ref);
            for (const [lo, hi] of ranges.slice(0, Math.max(0, ranges.length - o.n))) for (let v = lo; v <= hi; v++) ref.delete(v);
            rs.trimOldest(o.n);
            break;
          }
          case 'clear':
            ref.clear();
            rs.clear();
            break;
        }
        const want = referenceRanges(ref);
        assert.equal(rs.size, want.length, 'range count');
        for (let i = 0; i < want.length; i++) assert.deepEqual([rs.lo[i], rs.hi[i]], want[i], `range ${i}`);
      }
      assert.deepEqual(members(rs), [...ref].sort((a, b) => a - b));
      const sorted = [...ref].sort((a, b) => a - b);
      assert.equal(rs.min(), sorted[0] ?? -1);
      assert.equal(rs.max(), sorted[sorted.length - 1] ?? -1);
      for (let v = 0; v <= 640; v += 7) {
        assert.equal(rs.has(v), ref.has(v), `has(${v})`);
        assert.equal(rs.covers(v, v + 2), ref.has(v) && ref.has(v + 1) && ref.has(v + 2), `covers(${v}, ${v + 2})`);
      }
    }),
    { numRuns: 300, seed: 1701 },
  );
});

test('RangeSet holds many ranges: a thousand disjoint ones, inserted out of order, then merged back into one', () => {
  const rs = new RangeSet();
  for (let i = 999; i >= 0; i--) rs.add(i * 3, i * 3);
  assert.equal(rs.size, 1000);
  assert.equal(rs.lo[500], 1500);
  for (let i = 0; i < 1000; i++) rs.add(i * 3 + 1, i * 3 + 2);
  assert.equal(rs.size, 1);
  assert.deepEqual([rs.min(), rs.max()], [0, 2999]);
});
