import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, SendFlags, Result, type ReceivedMessage } from '../../src/core/types.js';
import { connectedPair, drain, payload, check, withSeed, seedOr } from '../support/sim.js';

test('lanes: weights 1:3 on a saturated link share bytes within 10% of 25/75', () => {
  withSeed(seedOr(31), (seed) => {
    const p = connectedPair(seed, { latencyUs: 10_000, bandwidthBytesPerSec: 500_000, queueBytes: 40_000 });
    assert.equal(p.client.endpoint.configureLanes(p.c, [0, 0], [1, 3]), Result.OK);
    const bytes = [0, 0];
    let i = 0;
    const pump = (): void => {
      for (let lane = 0; lane < 2; lane++) {
        while (p.client.endpoint.laneStatus(p.c, lane)!.pendingReliable < 60_000) {
          if (p.client.endpoint.send(p.sim.now, p.c, payload(lane, i++, 500), SendFlags.Reliable, lane) < 0) break;
        }
      }
    };
    const count = (measure: boolean): void => {
      for (const m of drain(p.server, p.s)) if (measure) bytes[m.lane]! += m.data.length;
    };
    p.sim.runUntil(() => (pump(), count(false), false), 3_000_000); // warm up
    p.sim.runUntil(() => (pump(), count(true), false), 10_000_000);
    const share0 = bytes[0]! / (bytes[0]! + bytes[1]!);
    assert.ok(bytes[0]! + bytes[1]! > 3_000_000, `link not saturated: ${bytes}`);
    assert.ok(Math.abs(share0 - 0.25) <= 0.025, `lane 0 share ${share0.toFixed(3)} (bytes ${bytes})`);
  });
});

test('lanes: strict priority serves the lower priority value first', () => {
  withSeed(seedOr(32), (seed) => {
    const p = connectedPair(seed, { latencyUs: 10_000, bandwidthBytesPerSec: 500_000, queueBytes: 40_000 });
    assert.equal(p.client.endpoint.configureLanes(p.c, [0, 1], [1, 1]), Result.OK);
    const bytes = [0, 0];
    let i = 0;
    p.sim.runUntil(() => {
      for (let lane = 0; lane < 2; lane++) {
        while (p.client.endpoint.laneStatus(p.c, lane)!.pendingReliable < 60_000) {
          if (p.client.endpoint.send(p.sim.now, p.c, payload(lane, i++, 500), SendFlags.Reliable, lane) < 0) break;
        }
      }
      for (const m of drain(p.server, p.s)) if (p.sim.now > 2_000_000) bytes[m.lane]! += m.data.length;
      return false;
    }, 6_000_000);
    assert.ok(bytes[0]! > 1_000_000, `lane 0 starved: ${bytes}`);
    assert.ok(bytes[1]! < 0.01 * bytes[0]!, `lane 1 got ${bytes[1]} bytes while lane 0 was busy`);
  });
});

test('lanes: a loss burst on lane 1 does not delay lane 0', () => {
  withSeed(seedOr(33), (seed) => {
    const p = connectedPair(seed, { latencyUs: 50_000 });
    assert.equal(p.client.endpoint.configureLanes(p.c, [0, 0], [1, 1]), Result.OK);
    p.sim.runFor(1_000_000);
    // Lane 1 messages go out into a blackhole: the lane-1 stream now has a hole.
    p.sim.partition(p.client, p.server);
    for (let i = 0; i < 5; i++) p.client.endpoint.send(p.sim.now, p.c, payload(1, i, 200), SendFlags.Reliable | SendFlags.NoNagle, 1);
    p.sim.runFor(20_000);
    p.sim.partition(p.client, p.server, false);
    // Lane 1 messages after the hole: they arrive but must wait for the retransmission.
    for (let i = 5; i < 10; i++) p.client.endpoint.send(p.sim.now, p.c, payload(1, i, 200), SendFlags.Reliable | SendFlags.NoNagle, 1);
    const sentAt = p.sim.now;
    p.client.endpoint.send(p.sim.now, p.c, payload(0, 0, 200), SendFlags.Reliable | SendFlags.NoNagle, 0);
    let lane0At = -1;
    let lane1At = -1;
    p.sim.runUntil(() => {
      for (const m of drain(p.server, p.s)) {
        if (m.lane === 0 && lane0At < 0) lane0At = p.sim.now;
        if (m.lane === 1 && lane1At < 0) lane1At = p.sim.now;
      }
      return lane0At >= 0 && lane1At >= 0;
    }, 10_000_000);
    assert.ok(lane0At >= 0 && lane1At >= 0);
    assert.ok(lane0At - sentAt <= 60_000, `lane 0 took ${(lane0At - sentAt) / 1000} ms`);
    assert.ok(lane1At > lane0At, 'lane 1 was not held up by its own loss (test did not create a hole)');
  });
});

test('unreliable: never duplicated, fragments of a lost packet drop the whole message', () => {
  withSeed(seedOr(41), (seed) => {
    const p = connectedPair(seed, { latencyUs: 30_000, jitterUs: 20_000, loss: 0.1, duplicate: 0.25, duplicateDelayUs: 50_000, reorder: 0.1, reorderDelayUs: 40_000 });
    const seen = new Set<number>();
    let sent = 0;
    let dups = 0;
    p.sim.runUntil(() => {
      if (sent < 3000) {
        const size = sent % 10 === 0 ? 3000 : 150; // every tenth is fragmented
        if (p.client.endpoint.send(p.sim.now, p.c, payload(0, sent, size), SendFlags.Unreliable) > 0) sent++;
      }
      for (const m of drain(p.server, p.s)) {
        const { index } = check(m.data);
        assert.equal(m.reliable, false);
        if (seen.has(index)) dups++;
        seen.add(index);
      }
      return false;
    }, 30_000_000);
    assert.equal(dups, 0, 'an unreliable message was delivered twice');
    assert.ok(seen.size > 2000 && seen.size < 3000, `delivered ${seen.size} of ${sent}`);
    const st = p.server.endpoint.status(p.sim.now, p.s)!;
    assert.ok(st.duplicatePackets > 0, 'the link duplicated nothing: the test is not testing');
  });
});

test('Latest: an older message on the lane is never delivered after a newer one', () => {
  withSeed(seedOr(42), (seed) => {
    const p = connectedPair(seed, { latencyUs: 40_000, jitterUs: 30_000, loss: 0.05, duplicate: 0.1, duplicateDelayUs: 30_000, reorder: 0.2, reorderDelayUs: 50_000 });
    let last = -1;
    let delivered = 0;
    let sent = 0;
    p.sim.runUntil(() => {
      if (sent < 2000) {
        const size = sent % 7 === 0 ? 2500 : 60;
        p.client.endpoint.send(p.sim.now, p.c, payload(0, sent++, size), SendFlags.Latest | SendFlags.NoNagle);
      }
      for (const m of drain(p.server, p.s)) {
        const { index } = check(m.data);
        assert.ok(index > last, `Latest delivered ${index} after ${last}`);
        last = index;
        delivered++;
      }
      return false;
    }, 20_000_000);
    assert.ok(delivered > 500, `only ${delivered} delivered`);
    assert.ok(p.server.endpoint.status(p.sim.now, p.s)!.unreliableDroppedRecv > 0, 'no stale message was dropped: reordering did not happen');
  });
});

test('an unreliable message over the limit is refused, never sent reliably', () => {
  withSeed(seedOr(43), (seed) => {
    const p = connectedPair(seed, { latencyUs: 10_000 });
    assert.equal(p.client.endpoint.send(p.sim.now, p.c, new Uint8Array(65_537), SendFlags.Unreliable), -Result.InvalidParam);
    assert.ok(p.client.endpoint.send(p.sim.now, p.c, payload(0, 1, 65_536), SendFlags.Unreliable) > 0);
    const got: ReceivedMessage[] = [];
    p.sim.runUntil(() => drain(p.server, p.s, got).length > 0, 5_000_000);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.data.length, 65_536);
    assert.equal(got[0]!.reliable, false);
  });
});

test('NoDelay: unreliable messages that cannot leave within ~200 ms are dropped and counted', () => {
  withSeed(seedOr(44), (seed) => {
    const p = connectedPair(seed, { latencyUs: 10_000 }, { SendRateMin: 10_000, SendRateMax: 10_000 });
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      const r = p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 1000), SendFlags.UnreliableNoDelay);
      if (r === -Result.Ignored) refused++;
    }
    const got: ReceivedMessage[] = [];
    p.sim.runUntil(() => (drain(p.server, p.s, got), false), 3_000_000);
    const st = p.client.endpoint.status(p.sim.now, p.c)!;
    assert.ok(refused > 50, `only ${refused} refused at send time`);
    assert.equal(st.unreliableDroppedSend, 100 - got.length, 'every message not delivered is counted as dropped');
    assert.ok(got.length <= 5, `${got.length} delivered at 10 kB/s`);
  });
});

test('SendBufferSize: a full send buffer gives LimitExceeded', () => {
  withSeed(seedOr(45), (seed) => {
    const p = connectedPair(seed, { latencyUs: 10_000 });
    let queued = 0;
    let r = 0;
    for (let i = 0; i < 1000; i++) {
      r = p.client.endpoint.send(p.sim.now, p.c, new Uint8Array(1000), SendFlags.Reliable);
      if (r < 0) break;
      queued++;
    }
    assert.equal(r, -Result.LimitExceeded);
    assert.ok(queued >= 500 && queued <= 524, `queued ${queued} KB before the limit`);
    assert.equal(p.client.endpoint.state(p.c), ConnectionState.Connected);
  });
});

test('receive buffer overflow leaves data unacked and the connection alive; everything arrives once drained', () => {
  withSeed(seedOr(46), (seed) => {
    const p = connectedPair(seed, { latencyUs: 20_000 }, {}, { RecvBufferMessages: 50 });
    for (let i = 0; i < 400; i++) assert.ok(p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 100), SendFlags.Reliable) > 0);
    p.sim.runFor(3_000_000); // the server application does not read
    const st = p.server.endpoint.status(p.sim.now, p.s)!;
    assert.ok(st.refusedPackets > 0, 'nothing was refused');
    assert.equal(p.server.endpoint.state(p.s), ConnectionState.Connected);
    const got: number[] = [];
    p.sim.runUntil(() => {
      for (const m of drain(p.server, p.s)) got.push(check(m.data).index);
      return got.length === 400;
    }, 30_000_000);
    assert.deepEqual(got, Array.from({ length: 400 }, (_, i) => i));
  });
});
