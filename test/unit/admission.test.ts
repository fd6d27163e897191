// AdmissionQueue (src/io/admission.ts): the bounded, budgeted queue of unauthenticated datagrams that the
// endpoint driver and the relay server share. Pure: a seeded Rng, a clock the test moves.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { SocketAddress } from '../../src/core/types.js';
import { AdmissionQueue, READ_BATCH } from '../../src/io/admission.js';
import { Admission } from '../../src/util/admission.js';
import { SeededRng } from '../../src/util/rng.js';

const HELLO = 0x01;
const CONNECT_REQUEST = 0x03;
const src = (i: number): SocketAddress => ({ address: `10.${(i >> 8) & 0xff}.${i & 0xff}.1`, port: 1024 + (i % 50_000) });

/** A datagram of `kind` (its first byte) carrying `n` in bytes 1-4, so that the test can see the order. */
function datagram(kind: number, n: number): Uint8Array {
  const d = new Uint8Array(16);
  d[0] = kind;
  new DataView(d.buffer).setUint32(1, n);
  return d;
}

const tag = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset).getUint32(1);

/** Drains one pass in virtual time (the clock stands still): the tags handed on, in order. */
function pass(q: AdmissionQueue, now: number, received = 0): number[] {
  const out: number[] = [];
  q.drain(now, received, () => now, (d) => out.push(tag(d)));
  return out;
}

test('unloaded: everything waits for the pass and is handed on oldest first, cookies before new datagrams', () => {
  const q = new AdmissionQueue(new SeededRng(1));
  assert.ok(q.offer(0, Admission.New, datagram(HELLO, 1), src(1)));
  assert.ok(q.offer(0, Admission.New, datagram(HELLO, 2), src(2)));
  assert.ok(q.offer(0, Admission.Cookie, datagram(CONNECT_REQUEST, 3), src(3)));
  assert.ok(q.offer(0, Admission.New, datagram(HELLO, 4), src(1)), 'the same source again: not loaded, no share applies');
  assert.equal(q.size, 4);
  assert.deepEqual(pass(q, 0), [3, 1, 2, 4]);
  assert.equal(q.size, 0);
  assert.deepEqual(q.stats, { queued: 4, shed: 0 });
});

test('a pass hands on at most the budget; the rest waits for the next pass, and the queue is then loaded', () => {
  const q = new AdmissionQueue(new SeededRng(1), { budget: 8 });
  for (let i = 0; i < 20; i++) assert.ok(q.offer(0, Admission.New, datagram(HELLO, i), src(i)));
  assert.deepEqual(pass(q, 0), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(q.size, 12);
  // Loaded now (and since it first held a budget, at the 9th offer): a source that had its share while
  // loaded is shed (and counted); one seen only before the load, or a new one, is not.
  assert.equal(q.offer(10, Admission.New, datagram(HELLO, 100), src(10)), false, 'src(10) was let in while the queue held a budget');
  assert.ok(q.offer(10, Admission.New, datagram(HELLO, 104), src(0)));
  assert.ok(q.offer(10, Admission.New, datagram(HELLO, 101), src(500)));
  assert.ok(q.offer(10, Admission.Cookie, datagram(CONNECT_REQUEST, 102), src(500)), 'another kind of datagram from that source has its own share');
  assert.equal(q.offer(10, Admission.Cookie, datagram(CONNECT_REQUEST, 103), src(500)), false);
  assert.equal(q.stats.shed, 2);
});

test('while loaded each source and kind gets about one datagram a second: a flood from fixed sources cannot crowd out a new client', () => {
  const q = new AdmissionQueue(new SeededRng(7), { budget: 16 });
  const sources = 2048;
  let admitted = 0;
  let legit = 0;
  // 200,000 datagrams over 2 s from 2,048 sources, drained 16 per ms (far less than arrives); a new client every 100 ms.
  let now = 0;
  for (let i = 0; i < 200_000; i++) {
    now = i * 10;
    if (q.offer(now, Admission.New, datagram(HELLO, i), src(i % sources))) admitted++;
    if (i % 10_000 === 5_000) {
      assert.ok(q.offer(now, Admission.New, datagram(HELLO, 1_000_000 + i), { address: '192.0.2.1', port: 40_000 + i / 10_000 }), 'a new client is always let in');
      legit++;
    }
    if (i % 100 === 99) pass(q, now);
  }
  // Each source is let in at first and then once every 0.5-1.5 s: about 2 per source in 2 s.
  assert.ok(admitted < sources * 3, `let in ${admitted} of 200,000`);
  assert.ok(admitted >= sources, `every source got its first datagram in (${admitted})`);
  assert.equal(q.stats.shed + q.stats.queued, 200_000 + legit);
});

test('a full queue gives up its oldest datagram for a new one, and counts it', () => {
  const q = new AdmissionQueue(new SeededRng(1), { capacity: 16, budget: 1000 });
  for (let i = 0; i < 20; i++) assert.ok(q.offer(0, Admission.New, datagram(HELLO, i), src(i)));
  assert.equal(q.size, 16);
  assert.equal(q.stats.shed, 4);
  assert.deepEqual(pass(q, 0), [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
});

test('a pass stops on the clock: about a read batch worth when the socket has more waiting, up to a millisecond when it is empty', () => {
  const q = new AdmissionQueue(new SeededRng(1));
  for (let i = 0; i < 200; i++) q.offer(0, Admission.New, datagram(HELLO, i), src(i));
  let t = 0;
  const clock = (): number => (t += 10); // every datagram "costs" 10 µs
  let n = 0;
  q.drain(0, READ_BATCH, clock, () => n++);
  assert.ok(n >= 5 && n <= 12, `backlogged socket: ${n} datagrams in about 100 µs`);
  n = 0;
  t = 0;
  q.drain(0, 3, clock, () => n++);
  assert.ok(n >= 50 && n <= 110, `empty socket: ${n} datagrams in about 1 ms`);
  n = 0;
  t = 1e9;
  q.drain(0, READ_BATCH, clock, () => n++);
  assert.equal(n, 1, 'at least one datagram per pass, however late');
});

test('cookies have the first half of a pass, new datagrams the second, so neither class starves the other', () => {
  const q = new AdmissionQueue(new SeededRng(1));
  for (let i = 0; i < 100; i++) {
    q.offer(0, Admission.Cookie, datagram(CONNECT_REQUEST, i), src(i));
    q.offer(0, Admission.New, datagram(HELLO, 1000 + i), src(i));
  }
  let t = 0;
  const kinds: number[] = [];
  q.drain(0, READ_BATCH, () => (t += 5), (d) => kinds.push(d[0] as number));
  const cookies = kinds.filter((k) => k === CONNECT_REQUEST).length;
  const fresh = kinds.length - cookies;
  assert.ok(cookies > 0 && fresh > 0, `both classes served: ${cookies} cookies, ${fresh} new`);
  assert.ok(kinds[0] === CONNECT_REQUEST && kinds.lastIndexOf(CONNECT_REQUEST) < kinds.indexOf(HELLO), `cookies first: ${kinds.join(',')}`);
});
