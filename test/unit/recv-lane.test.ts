import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RecvLane, type MessageSink } from '../../src/core/recv-lane.js';
import { StreamBuffer } from '../../src/core/stream-buffer.js';

interface Delivered {
  number: number;
  data: number[];
}

function lane(base: number): { lane: RecvLane; got: Delivered[] } {
  const got: Delivered[] = [];
  const sink: MessageSink = { deliver: (_lane, number, _reliable, data) => got.push({ number, data: [...data] }) };
  const l = new RecvLane(0, sink, 1 << 20);
  l.nextOffset = base;
  return { lane: l, got };
}

/** A framed reliable stream of `sizes` messages (message i filled with i's low byte), from stream offset `base`. */
function stream(sizes: readonly number[], base: number): { bytes: Uint8Array; messages: Delivered[] } {
  const s = new StreamBuffer();
  s.base = base;
  const messages: Delivered[] = [];
  sizes.forEach((n, i) => {
    const data = new Uint8Array(n).fill(i & 0xff);
    s.appendMessage(data, 1);
    messages.push({ number: i + 1, data: [...data] });
  });
  return { bytes: s.view(base, s.end - base).slice(), messages };
}

const caseArb = fc.record({
  sizes: fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 40 }),
  // Near 2^32 the ring's index (offset modulo its size) is taken past the 32-bit boundary.
  base: fc.constantFrom(0, 2 ** 32 - 5000, 2 ** 40 + 12345),
  cut: fc.integer({ min: 1, max: 1400 }),
  seed: fc.integer(),
  duplicates: fc.integer({ min: 0, max: 30 }),
});

test('a reliable lane delivers every message once and in order whatever the order, duplication and overlap of its segments', () => {
  fc.assert(
    fc.property(caseArb, ({ sizes, base, cut, seed, duplicates }) => {
      const { bytes, messages } = stream(sizes, base);
      // Segments of `cut` bytes, then copies of random stretches (overlapping and straddling segment edges).
      const segs: [number, number][] = [];
      for (let a = 0; a < bytes.length; a += cut) segs.push([a, Math.min(bytes.length, a + cut)]);
      let r = seed >>> 0;
      const rand = (n: number): number => {
        r = (Math.imul(r, 1103515245) + 12345) >>> 0;
        return r % n;
      };
      for (let k = 0; k < duplicates && bytes.length > 0; k++) {
        const a = rand(bytes.length);
        segs.push([a, Math.min(bytes.length, a + 1 + rand(2 * cut))]);
      }
      for (let i = segs.length - 1; i > 0; i--) {
        const j = rand(i + 1);
        [segs[i], segs[j]] = [segs[j] as [number, number], segs[i] as [number, number]];
      }
      const { lane: l, got } = lane(base);
      for (const [a, b] of segs) assert.equal(l.onReliable(base + a, bytes, a, b, 1 << 30), true);
      assert.deepEqual(got, messages);
      assert.equal(l.nextOffset, base + bytes.length);
      assert.equal(l.oooBytes, 0, 'nothing held once the stream is complete');
    }),
    { numRuns: 300 },
  );
});

test('a reliable lane refuses a segment it cannot hold within its limit and takes it when the sender retries after the hole fills', () => {
  const { bytes, messages } = stream([5000, 5000, 5000, 5000], 0);
  const { lane: l, got } = lane(0);
  const limit = 8192;
  // Everything but the first 1000 bytes arrives: the lane holds what fits and refuses the rest.
  const refused: [number, number][] = [];
  for (let a = 1000; a < bytes.length; a += 1000) {
    const b = Math.min(bytes.length, a + 1000);
    if (!l.onReliable(a, bytes, a, b, limit)) refused.push([a, b]);
    assert.ok(l.oooBytes <= limit, `${l.oooBytes} bytes held beyond the limit of ${limit}`);
  }
  assert.ok(refused.length > 0, 'some segments were refused');
  assert.equal(got.length, 0);
  // The hole fills: what was held is delivered; the refused segments, retried, complete the stream.
  assert.equal(l.onReliable(0, bytes, 0, 1000, limit), true);
  for (const [a, b] of refused) assert.equal(l.onReliable(a, bytes, a, b, limit), true);
  assert.deepEqual(got, messages);
  assert.equal(l.oooBytes, 0);
});

test('a segment whose bytes are all held already is taken again however full the lane is', () => {
  const { bytes } = stream([3000], 0);
  const { lane: l } = lane(0);
  assert.equal(l.onReliable(1000, bytes, 1000, 2000, 1000), true);
  assert.equal(l.onReliable(1000, bytes, 1000, 2000, 1000), true, 'a duplicate is known, not refused');
  assert.equal(l.onReliable(2000, bytes, 2000, 2500, 1000), false, 'new bytes beyond the limit are refused');
  assert.equal(l.isNewReliable(1200, 1800), false);
  assert.equal(l.isNewReliable(1500, 2100), true);
});
