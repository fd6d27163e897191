import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, SendFlags } from '../../src/core/types.js';
import { connectedPair, drain, payload, check, withSeed, seedOr, type Pair } from '../support/sim.js';
import type { SimHost } from '../../src/testing/sim-network.js';

const HARSH = {
  latencyUs: 50_000,
  jitterUs: 10_000,
  loss: 0.2,
  duplicate: 0.05,
  duplicateDelayUs: 20_000,
  reorder: 0.05,
  reorderDelayUs: 30_000,
};

/** Sends `count` reliable messages per lane from `from`, paced by the send buffer; checks exactly-once in-order delivery at `to`. */
function pumpReliable(p: Pair, fromHost: SimHost, fromHandle: number, toHost: SimHost, toHandle: number, lanes: number, count: number): { next: number[]; done: () => boolean; pump: () => void } {
  const sent = new Array<number>(lanes).fill(0);
  const next = new Array<number>(lanes).fill(0);
  const pump = (): void => {
    for (let lane = 0; lane < lanes; lane++) {
      while (sent[lane]! < count) {
        const size = 20 + ((sent[lane]! * 37) % 300);
        const r = fromHost.endpoint.send(p.sim.now, fromHandle, payload(lane, sent[lane]!, size), SendFlags.Reliable, lane);
        if (r < 0) break; // send buffer full: try again later
        sent[lane]!++;
      }
    }
    for (const m of drain(toHost, toHandle)) {
      const { lane, index } = check(m.data);
      assert.equal(m.lane, lane, 'message arrived on the wrong lane');
      assert.equal(index, next[lane], `lane ${lane}: expected message ${next[lane]}, got ${index} (duplicate or misordered)`);
      next[lane]!++;
    }
  };
  return { next, pump, done: () => next.every((n) => n === count) };
}

test('10,000 reliable messages each way on 3 lanes at 20% loss, 50±10 ms, 5% dup, 5% reorder: exactly once, in order, intact', () => {
  withSeed(seedOr(2024), (seed) => {
    const p = connectedPair(seed, HARSH);
    assert.equal(p.client.endpoint.peerInfo(p.c)?.cipher, 'AES-256-GCM', 'the scenario runs encrypted');
    for (const [h, x] of [[p.client, p.c], [p.server, p.s]] as const) assert.equal(h.endpoint.configureLanes(x, [0, 0, 0], [1, 1, 1]), 1);
    const a = pumpReliable(p, p.client, p.c, p.server, p.s, 3, 10_000);
    const b = pumpReliable(p, p.server, p.s, p.client, p.c, 3, 10_000);
    const ok = p.sim.runUntil(() => {
      a.pump();
      b.pump();
      return a.done() && b.done();
    }, 600_000_000);
    assert.ok(ok, `not all delivered: client->server ${a.next}, server->client ${b.next}`);
    assert.equal(p.client.endpoint.state(p.c), ConnectionState.Connected);
    assert.equal(p.server.endpoint.state(p.s), ConnectionState.Connected);
    const st = p.client.endpoint.status(p.sim.now, p.c)!;
    assert.ok(st.packetsLost > 0 && st.duplicatePackets >= 0);
  });
});

test('a 512 KiB reliable message arrives intact at 10% loss', () => {
  withSeed(seedOr(7), (seed) => {
    const p = connectedPair(seed, { latencyUs: 30_000, loss: 0.1 });
    const big = payload(0, 99, 512 * 1024);
    assert.ok(p.client.endpoint.send(p.sim.now, p.c, big, SendFlags.Reliable) > 0);
    let got: Uint8Array | null = null;
    const ok = p.sim.runUntil(() => {
      for (const m of drain(p.server, p.s)) got = m.data;
      return got !== null;
    }, 120_000_000);
    assert.ok(ok, 'message did not arrive');
    assert.equal(got!.length, big.length);
    assert.deepEqual(check(got!), { lane: 0, index: 99 });
  });
});

test('linger: reliable data queued before close is still delivered', () => {
  withSeed(seedOr(11), (seed) => {
    const p = connectedPair(seed, { latencyUs: 40_000, loss: 0.1 });
    for (let i = 0; i < 300; i++) assert.ok(p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 800), SendFlags.Reliable) > 0);
    assert.equal(p.client.endpoint.close(p.sim.now, p.c, 1000, 'bye', true), 1);
    assert.equal(p.client.endpoint.state(p.c), ConnectionState.None, 'a closed handle reads as None');
    const got: number[] = [];
    p.sim.runUntil(() => {
      for (const m of drain(p.server, p.s)) got.push(check(m.data).index);
      return p.server.endpoint.state(p.s) === ConnectionState.ClosedByPeer;
    }, 60_000_000);
    for (const m of drain(p.server, p.s)) got.push(check(m.data).index);
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
    assert.equal(p.server.endpoint.state(p.s), ConnectionState.ClosedByPeer);
    assert.deepEqual(p.server.endpoint.endInfo(p.s), { reason: 1000, debug: 'bye' });
  });
});

test('linger, then the peer closes as soon as it has read everything: the last ACK and the CLOSE in one packet end the linger without an exception', () => {
  withSeed(seedOr(12), (seed) => {
    const p = connectedPair(seed, { latencyUs: 1_000 });
    for (let i = 0; i < 3; i++) assert.ok(p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 200), SendFlags.Reliable) > 0);
    assert.equal(p.client.endpoint.close(p.sim.now, p.c, 1000, 'bye', true), 1);
    const got: number[] = [];
    let closed = false;
    // The server closes the moment it has every message: its CLOSE goes out with the ACK of the last one.
    p.sim.runUntil(() => {
      for (const m of drain(p.server, p.s)) got.push(check(m.data).index);
      if (got.length === 3 && !closed) {
        closed = true;
        p.server.endpoint.close(p.sim.now, p.s, 1000, 'done', false);
      }
      return closed && p.client.endpoint.connectionCount === 0;
    }, 30_000_000);
    assert.deepEqual(got, [0, 1, 2]);
    assert.equal(p.client.endpoint.connectionCount, 0, 'the lingering connection finished and was removed');
  });
});

test('close without linger: the peer sees ClosedByPeer with the reason and debug text', () => {
  withSeed(seedOr(12), (seed) => {
    const p = connectedPair(seed, { latencyUs: 10_000 });
    assert.equal(p.server.endpoint.close(p.sim.now, p.s, 1234, 'server shutting down'), 1);
    assert.ok(p.sim.runUntil(() => p.client.endpoint.state(p.c) === ConnectionState.ClosedByPeer, 5_000_000));
    assert.deepEqual(p.client.endpoint.endInfo(p.c), { reason: 1234, debug: 'server shutting down' });
    // The app acknowledges with close; the handle then goes away.
    assert.equal(p.client.endpoint.close(p.sim.now, p.c), 1);
    p.sim.runFor(10_000_000);
    assert.equal(p.client.endpoint.connectionCount, 0);
    assert.equal(p.server.endpoint.connectionCount, 0);
  });
});

test('a blackholed peer ends in ProblemDetectedLocally with a timeout reason within TimeoutConnected + 2 s', () => {
  withSeed(seedOr(13), (seed) => {
    const p = connectedPair(seed, { latencyUs: 20_000 });
    const cut = p.sim.now;
    p.sim.partition(p.client, p.server);
    // Keep sending so that the connection is busy, not idle.
    let failedAt = -1;
    p.sim.runUntil(() => {
      p.client.endpoint.send(p.sim.now, p.c, payload(0, 1, 50), SendFlags.Reliable);
      if (p.client.endpoint.state(p.c) === ConnectionState.ProblemDetectedLocally) failedAt = p.sim.now;
      return failedAt >= 0;
    }, 20_000_000);
    assert.ok(failedAt >= 0, 'connection never failed');
    assert.ok(failedAt - cut <= 12_000_000, `failed after ${(failedAt - cut) / 1e6} s`);
    const info = p.client.endpoint.endInfo(p.c)!;
    assert.ok(info.reason === 5003 || info.reason === 4001, `reason ${info.reason}`);
  });
});
