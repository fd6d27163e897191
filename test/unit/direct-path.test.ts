// The direct-path prober (src/core/direct-path.ts) on its own, driven as a connection drives it: its deadline,
// onTimeout, and the probes it asks for. A deadline it leaves in the past would spin the connection's timer; a
// peer's offers must not make it probe without end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectPaths, type DirectPathHost } from '../../src/core/direct-path.js';
import type { SocketAddress } from '../../src/core/types.js';
import { PATH_DATA_BYTES } from '../../src/wire/frames.js';
import { Reader } from '../../src/wire/reader.js';
import { Writer } from '../../src/wire/writer.js';

const RELAYED: SocketAddress = { address: 'relay/1', port: 1 };

function host(relayedRttUs: number): DirectPathHost & { remote: SocketAddress; moves: number } {
  let seq = 1;
  return {
    remote: RELAYED,
    isServer: false,
    moves: 0,
    random32: () => seq++,
    pathRttUs: () => relayedRttUs,
    moveTo(_now, to) {
      this.remote = to;
      this.moves++;
    },
    requestPing() {},
  };
}

/** Runs the prober from `from` to `until` µs as a connection would; `answer` decides which probes the peer answers. Returns the probes sent, per address. */
function drive(d: DirectPaths, from: number, until: number, answer: (to: SocketAddress) => boolean): { probes: Map<string, number>; wakes: number } {
  const probes = new Map<string, number>();
  let now = from;
  let wakes = 0;
  for (; wakes < 100_000; wakes++) {
    const at = d.timeoutUs();
    if (at > until) break;
    assert.ok(at >= now || wakes === 0 || at === now, 'deadline not behind the clock');
    now = Math.max(now, at);
    d.onTimeout(now);
    while (d.wantsProbe(now)) {
      const to = d.probeTo(RELAYED, 0, now) as SocketAddress;
      const buf = new Uint8Array(64);
      const w = new Writer(buf);
      d.writeProbe(w, now);
      const key = `${to.address}:${to.port}`;
      probes.set(key, (probes.get(key) ?? 0) + 1);
      // The frame: type byte, then the challenge; the peer echoes it.
      const challenge = new Reader(buf.subarray(1, 1 + PATH_DATA_BYTES)).bytes(PATH_DATA_BYTES, 'challenge');
      if (answer(to)) d.onResponse(now + 1000, to, challenge);
    }
    const next = d.timeoutUs();
    assert.ok(next > now, `after onTimeout(${now}) the deadline ${next} is past the clock: the timer would spin`);
  }
  assert.ok(wakes < 100_000, 'the prober kept waking');
  return { probes, wakes };
}

test('a validated direct path that is worse than the relayed one is compared again until its window ends, and then the deadline clears (no timer spin)', () => {
  const h = host(10_000); // relayed 10 ms
  const d = new DirectPaths(h, 50_000, 0); // a 50 ms penalty: the direct path never wins
  const cand = { address: '203.0.113.9', port: 4000 };
  d.addCandidates(0, [cand]);
  const { probes } = drive(d, 0, 60_000_000, () => true);
  assert.equal(h.moves, 0, 'never moved');
  assert.ok((probes.get('203.0.113.9:4000') ?? 0) <= 6, `probes of the validated path: ${probes.get('203.0.113.9:4000')}`);
  assert.equal(d.timeoutUs(), Number.POSITIVE_INFINITY, 'nothing left to do after the window');
});

test('an unanswered candidate gets about 14 probes in its 10 s window, then none', () => {
  const d = new DirectPaths(host(10_000), 0, 0);
  d.addCandidates(0, [{ address: '198.51.100.7', port: 5000 }]);
  const { probes } = drive(d, 0, 60_000_000, () => false);
  assert.equal(probes.get('198.51.100.7:5000'), 14);
  assert.equal(d.timeoutUs(), Number.POSITIVE_INFINITY);
});

test("a peer's repeated offers restart a given-up candidate at most 3 times, replace the set, and never add more than 32 addresses in all", () => {
  const d = new DirectPaths(host(10_000), 0, 0);
  const a = { address: '192.0.2.1', port: 1 };
  let sent = 0;
  let now = 0;
  // The same offer every 11 s, 10 times: 1 window + 3 restarts.
  for (let i = 0; i < 10; i++) {
    d.addCandidates(now, [a]);
    const r = drive(d, now, now + 11_000_000, () => false);
    sent += r.probes.get('192.0.2.1:1') ?? 0;
    now += 11_000_000;
  }
  assert.equal(sent, 4 * 14, 'four windows of 14 probes');
  // Offers of 8 new addresses each, 10 times: at most 32 distinct addresses probed, 8 at a time.
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) {
    const offer = Array.from({ length: 8 }, (_, k) => ({ address: `198.18.${i}.${k + 1}`, port: 7 }));
    d.addCandidates(now, offer);
    assert.ok(d.info().candidates <= 8, `${d.info().candidates} candidates held`);
    const r = drive(d, now, now + 11_000_000, () => false);
    for (const k of r.probes.keys()) seen.add(k);
    now += 11_000_000;
  }
  assert.equal(seen.size, 31, 'the first address took one of the 32; then 31 more, and no others');
});
