// FakeLink: GNS's fake network conditions, in virtual time with a seeded Rng.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { FakeLink, NO_FAKE_CONDITIONS, type FakeConditions } from '../../src/io/fake-network.js';
import { SeededRng } from '../../src/util/rng.js';

const PEER = { address: '127.0.0.1', port: 1 };

/** Sends `n` numbered datagrams, one every `gapUs`, and returns [number, delivery time] in delivery order. */
function run(c: Partial<FakeConditions>, n: number, gapUs: number, seed = 1, size = 100): { out: [number, number][]; link: FakeLink } {
  const link = new FakeLink(new SeededRng(seed));
  link.conditions = { ...NO_FAKE_CONDITIONS, ...c };
  const out: [number, number][] = [];
  const drain = (now: number): void => {
    for (let d = link.pollDue(now); d; d = link.pollDue(now)) out.push([new DataView(d.data.buffer, d.data.byteOffset).getUint32(0), now]);
  };
  let now = 0;
  for (let i = 0; i < n; i++) {
    now = i * gapUs;
    drain(now);
    const data = new Uint8Array(size);
    new DataView(data.buffer).setUint32(0, i);
    if (link.admit(now, data, PEER)) out.push([i, now]);
  }
  for (let t = now; link.nextDueUs() !== Number.POSITIVE_INFINITY; t = link.nextDueUs()) drain(t);
  return { out, link };
}

test('no conditions: every datagram passes at once', () => {
  const { out, link } = run({}, 1000, 100);
  assert.equal(out.length, 1000);
  assert.ok(out.every(([i, t]) => t === i * 100));
  assert.deepEqual(link.stats, { lost: 0, rateLimited: 0, delayed: 0, reordered: 0, duplicated: 0 });
});

test('loss drops about the given percentage (seed 1)', () => {
  const { out, link } = run({ lossPct: 10 }, 20_000, 10);
  assert.equal(out.length + link.stats.lost, 20_000);
  assert.ok(Math.abs(link.stats.lost / 20_000 - 0.1) < 0.01, `lost ${link.stats.lost}`);
});

test('lag delays every datagram by exactly the lag, in order', () => {
  const { out } = run({ lagMs: 20 }, 500, 1000);
  assert.equal(out.length, 500);
  out.forEach(([i, t], k) => {
    assert.equal(i, k);
    assert.equal(t, i * 1000 + 20_000);
  });
});

test('reorder holds some datagrams back so that later ones overtake them', () => {
  const { out, link } = run({ reorderPct: 10, reorderTimeMs: 5 }, 5000, 1000);
  assert.equal(out.length, 5000);
  let inversions = 0;
  for (let k = 1; k < out.length; k++) if ((out[k]?.[0] as number) < (out[k - 1]?.[0] as number)) inversions++;
  assert.ok(inversions > 300 && link.stats.reordered > 400, `inversions ${inversions}, reordered ${link.stats.reordered}`);
});

test('duplicates arrive twice, the copy within dupTimeMax', () => {
  const { out, link } = run({ dupPct: 20, dupTimeMaxMs: 10 }, 5000, 1000);
  assert.equal(out.length, 5000 + link.stats.duplicated);
  const first = new Map<number, number>();
  for (const [i, t] of out) {
    const f = first.get(i);
    if (f === undefined) first.set(i, t);
    else assert.ok(t - f <= 10_000);
  }
  assert.ok(Math.abs(link.stats.duplicated / 5000 - 0.2) < 0.03);
});

test('jitter delays some datagrams, capped, and nothing overtakes a jittered one', () => {
  const { out } = run({ jitterAvgMs: 5, jitterMaxMs: 20, jitterPct: 50 }, 5000, 1000);
  assert.equal(out.length, 5000);
  out.forEach(([i], k) => assert.equal(i, k, 'delivery order is send order (clumping)'));
  const delays = out.map(([i, t]) => t - i * 1000);
  // Clumping never adds to the cap: a datagram waits at most for one sent earlier, itself at most Max late.
  assert.ok(Math.max(...delays) <= 20_000, 'capped at jitterMaxMs');
  assert.ok(delays.filter((d) => d > 0).length > 1000, 'about half are delayed');
});

test('rate limit: a token bucket drops what exceeds rate and burst', () => {
  // 1000-byte datagrams every 1 ms = 1 MB/s offered against 200 kB/s.
  const { out, link } = run({ rateLimitBytesPerSec: 200_000, rateLimitBurstBytes: 16_384 }, 5000, 1000, 1, 1000);
  const passed = out.length;
  assert.equal(passed + link.stats.rateLimited, 5000);
  // 5 s at 200 kB/s = 1000 datagrams, plus the burst.
  assert.ok(passed >= 1000 && passed <= 1000 + 17, `passed ${passed}`);
});

test('the same seed gives the same fate to every datagram', () => {
  const c = { lossPct: 5, lagMs: 3, jitterAvgMs: 2, jitterPct: 30, reorderPct: 3, dupPct: 2 };
  assert.deepEqual(run(c, 3000, 300, 99).out, run(c, 3000, 300, 99).out);
  assert.notDeepEqual(run(c, 3000, 300, 99).out, run(c, 3000, 300, 100).out);
});
