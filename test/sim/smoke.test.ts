import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendFlags } from '../../src/core/types.js';
import { connectedPair, drain, payload, check, withSeed, seedOr } from '../support/sim.js';

test('connect and exchange reliable messages on a clean link', () => {
  withSeed(seedOr(1), (seed) => {
    const p = connectedPair(seed, { latencyUs: 20_000 });
    for (let i = 0; i < 100; i++) assert.ok(p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 100), SendFlags.Reliable) > 0);
    const got: number[] = [];
    p.sim.runUntil(() => {
      for (const m of drain(p.server, p.s)) got.push(check(m.data).index);
      return got.length === 100;
    }, 5_000_000);
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  });
});
