import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, SendFlags, Result } from '../../src/core/types.js';
import { connectedPair, drain, payload, check, withSeed, seedOr } from '../support/sim.js';

test('soak: 10 simulated minutes at 1000 ms latency, 100 ms jitter, 25% loss, 25% duplication', () => {
  withSeed(seedOr(61), (seed) => {
    const p = connectedPair(seed, { latencyUs: 1_000_000, jitterUs: 100_000, loss: 0.25, duplicate: 0.25, duplicateDelayUs: 100_000 });
    assert.equal(p.client.endpoint.peerInfo(p.c)?.cipher, 'AES-256-GCM', 'the scenario runs encrypted');
    for (const [h, x] of [[p.client, p.c], [p.server, p.s]] as const) assert.equal(h.endpoint.configureLanes(x, [0, 0], [1, 1]), Result.OK);
    const sides = [
      { from: p.client, fh: p.c, to: p.server, th: p.s },
      { from: p.server, fh: p.s, to: p.client, th: p.c },
    ];
    const sent = sides.map(() => [0, 0]);
    const next = sides.map(() => [0, 0]);
    let unreliableGot = 0;
    let tick = 0;
    let nextTickUs = p.sim.now;
    const end = p.sim.now + 600_000_000;
    // Game-like traffic: 20 ticks/s; each tick a position update (Latest), every 5th tick a reliable event on
    // lane 0 and every 20th a larger reliable state blob on lane 1.
    p.sim.runUntil(() => {
      if (p.sim.now >= nextTickUs) {
        nextTickUs += 50_000;
        tick++;
        sides.forEach((s, i) => {
          s.from.endpoint.send(p.sim.now, s.fh, payload(9, tick, 64), SendFlags.Latest);
          if (tick % 5 === 0) assert.ok(s.from.endpoint.send(p.sim.now, s.fh, payload(0, sent[i]![0]!++, 120), SendFlags.Reliable, 0) > 0);
          if (tick % 20 === 0) assert.ok(s.from.endpoint.send(p.sim.now, s.fh, payload(1, sent[i]![1]!++, 3000), SendFlags.Reliable, 1) > 0);
          s.from.endpoint.flush(p.sim.now, s.fh);
        });
      }
      sides.forEach((s, i) => {
        for (const m of drain(s.to, s.th)) {
          if (!m.reliable) {
            unreliableGot++;
            continue;
          }
          const { lane, index } = check(m.data);
          assert.equal(index, next[i]![lane], `side ${i} lane ${lane}: got ${index}, expected ${next[i]![lane]}`);
          next[i]![lane]!++;
        }
      });
      assert.equal(p.client.endpoint.state(p.c), ConnectionState.Connected, 'client disconnected');
      assert.equal(p.server.endpoint.state(p.s), ConnectionState.Connected, 'server disconnected');
      return p.sim.now >= end;
    }, 601_000_000);
    // Let the last messages drain (no new traffic), then everything must be there.
    p.sim.runUntil(() => {
      sides.forEach((s, i) => {
        for (const m of drain(s.to, s.th)) {
          if (!m.reliable) continue;
          const { lane, index } = check(m.data);
          assert.equal(index, next[i]![lane]);
          next[i]![lane]!++;
        }
      });
      return sides.every((_, i) => next[i]![0] === sent[i]![0] && next[i]![1] === sent[i]![1]);
    }, 60_000_000);
    sides.forEach((_, i) => assert.deepEqual(next[i], sent[i], `side ${i}: reliable messages missing`));
    assert.ok(sent[0]![0]! >= 2000, 'not enough traffic');
    assert.ok(unreliableGot > 10_000, `only ${unreliableGot} position updates arrived`);
  });
});
