import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, Result, SendFlags } from '../../src/core/types.js';
import { check, connectedPair, drain, schedulePositions, withSeed, seedOr, SERVER_ADDR, type Pair } from '../support/sim.js';

const LINK_BPS = 1_250_000; // 10 Mbit/s
const BOTTLENECK = { latencyUs: 20_000, bandwidthBytesPerSec: LINK_BPS, queueBytes: 75_000 }; // 40 ms RTT, queue ~1.5 BDP
const CHUNK = new Uint8Array(1000);

/** Keeps `handle`'s send buffer topped up (a bulk sender). */
function fill(p: Pair, handle: number): void {
  while (p.client.endpoint.status(p.sim.now, handle)!.pendingReliable < 200_000) {
    if (p.client.endpoint.send(p.sim.now, handle, CHUNK, SendFlags.Reliable) < 0) break;
  }
}

/** Goodput (message bytes per second delivered to the server) of each server handle over [fromUs, toUs]. */
function measure(p: Pair, clientHandles: number[], serverHandles: number[], warmUs: number, spanUs: number): { goodput: number[]; linkLoss: number } {
  const got = serverHandles.map(() => 0);
  const link = p.sim.linkStats(p.client, p.server);
  let sent0 = 0;
  let dropped0 = 0;
  const start = p.sim.now;
  let measuring = false;
  p.sim.runUntil(() => {
    for (const h of clientHandles) fill(p, h);
    if (!measuring && p.sim.now - start >= warmUs) {
      measuring = true;
      sent0 = link.sent;
      dropped0 = link.queueDropped + link.dropped;
    }
    serverHandles.forEach((s, i) => {
      for (const m of drain(p.server, s)) if (measuring) got[i]! += m.data.length;
    });
    return false;
  }, warmUs + spanUs);
  const sent = link.sent - sent0;
  const lost = link.queueDropped + link.dropped - dropped0;
  return { goodput: got.map((b) => (b * 1e6) / spanUs), linkLoss: lost / Math.max(1, sent) };
}

test('congestion: one connection fills >= 85% of a 10 Mbit/s, 40 ms bottleneck with < 2% loss', () => {
  withSeed(seedOr(51), (seed) => {
    const p = connectedPair(seed, BOTTLENECK);
    const { goodput, linkLoss } = measure(p, [p.c], [p.s], 5_000_000, 10_000_000);
    const util = goodput[0]! / LINK_BPS;
    console.log(`# one flow: goodput ${(goodput[0]! / 1e6).toFixed(3)} MB/s = ${(util * 100).toFixed(1)}% of the link, steady-state loss ${(linkLoss * 100).toFixed(2)}%`);
    assert.ok(util >= 0.85, `utilisation ${(util * 100).toFixed(1)}%`);
    assert.ok(linkLoss < 0.02, `loss ${(linkLoss * 100).toFixed(2)}%`);
  });
});

test('congestion: two connections share a bottleneck within 20% of each other', () => {
  withSeed(seedOr(52), (seed) => {
    const p = connectedPair(seed, BOTTLENECK);
    // A second connection from the same client endpoint shares the client->server link and its queue.
    let s2 = 0;
    p.server.onEvent = (e) => {
      if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) {
        s2 = e.connection;
        p.server.endpoint.accept(p.sim.now, e.connection);
      }
    };
    const c2 = p.client.endpoint.connect(p.sim.now, SERVER_ADDR);
    assert.ok(p.sim.runUntil(() => p.client.endpoint.state(c2) === ConnectionState.Connected && s2 !== 0, 5_000_000));
    const { goodput } = measure(p, [p.c, c2], [p.s, s2], 10_000_000, 20_000_000);
    const [a, b] = goodput as [number, number];
    console.log(`# two flows: ${(a / 1e6).toFixed(3)} and ${(b / 1e6).toFixed(3)} MB/s, total ${(((a + b) / LINK_BPS) * 100).toFixed(1)}% of the link`);
    assert.ok(Math.min(a, b) / Math.max(a, b) >= 0.8, `unfair: ${a} vs ${b}`);
    assert.ok((a + b) / LINK_BPS >= 0.8, 'the two flows leave the link idle');
  });
});

test('congestion: 5% random loss on an uncongested link keeps >= 50% of the lossless throughput', () => {
  withSeed(seedOr(53), (seed) => {
    const base = connectedPair(seed, { ...BOTTLENECK, queueBytes: 1 << 22 });
    const clean = measure(base, [base.c], [base.s], 3_000_000, 10_000_000).goodput[0]!;
    const lossy = connectedPair(seed, { ...BOTTLENECK, queueBytes: 1 << 22, loss: 0.05 });
    const withLoss = measure(lossy, [lossy.c], [lossy.s], 3_000_000, 10_000_000).goodput[0]!;
    console.log(`# random loss: lossless ${(clean / 1e6).toFixed(3)} MB/s, 5% loss ${(withLoss / 1e6).toFixed(3)} MB/s, ratio ${(withLoss / clean).toFixed(2)}`);
    assert.ok(withLoss / clean >= 0.5, `ratio ${withLoss / clean}`);
  });
});

/**
 * A fast path with a deep queue (a loopback-like 200 us round trip, 20 MB/s, 1 MiB of buffer, as a
 * receiving socket has) and a sender that paces above the path's rate (SendRateMin 40 MB/s stands for
 * the overestimate that an event loop's bunched acks cause over real UDP), so that only the window
 * bounds the queue: reliable bulk on lane 1, and with `positions` 60 Hz 100-byte unreliable messages on
 * lane 0. Returns the positions' p99 delay and the bulk's goodput.
 */
function fastPath(seed: number, positions: boolean): { p99: number; goodput: number } {
  const p = connectedPair(seed, { latencyUs: 100, bandwidthBytesPerSec: 20_000_000, queueBytes: 1 << 20 }, { SendRateMin: 40_000_000 });
  assert.equal(p.client.endpoint.configureLanes(p.c, [0, 0], [1, 1]), Result.OK);
  const sentAt: number[] = [];
  const delays: number[] = [];
  const t0 = p.sim.now + 500_000;
  const spanUs = 3_000_000;
  if (positions) schedulePositions(p, t0, Math.ceil(spanUs / 16_667), sentAt);
  let bytes = 0;
  p.sim.runUntil(() => {
    while (p.client.endpoint.laneStatus(p.c, 1)!.pendingReliable < 200_000) if (p.client.endpoint.send(p.sim.now, p.c, CHUNK, SendFlags.Reliable, 1) < 0) break;
    for (const m of drain(p.server, p.s)) {
      if (m.lane === 0) delays.push(m.receivedAtUs - (sentAt[check(m.data).index] as number));
      else if (p.sim.now >= t0) bytes += m.data.length;
    }
    return false;
  }, t0 - p.sim.now + spanUs);
  delays.sort((a, b) => a - b);
  return { p99: delays[Math.floor(delays.length * 0.99)] ?? 0, goodput: (bytes * 1e6) / spanUs };
}

test('beside small unreliable messages the bulk keeps its queue short: on a 200 us, 20 MB/s path with 1 MiB of buffer and a sender pacing above it a position waits < 2.5 ms at p99 (5.9 ms with the 2 ms window floor), and the bulk keeps > 80% of the link', () => {
  withSeed(seedOr(56), (seed) => {
    const alone = fastPath(seed, false);
    const mixed = fastPath(seed, true);
    console.log(`# fast path, deep queue: bulk alone ${(alone.goodput / 1e6).toFixed(2)} MB/s; beside 60 Hz positions ${(mixed.goodput / 1e6).toFixed(2)} MB/s, positions p99 ${mixed.p99} us`);
    assert.ok(mixed.p99 < 2500, `positions waited ${mixed.p99} us at p99 behind the bulk`);
    assert.ok(mixed.goodput > 0.8 * 20_000_000, `bulk beside positions ${mixed.goodput} B/s`);
    assert.ok(alone.goodput > 0.8 * 20_000_000, `bulk alone ${alone.goodput} B/s`);
  });
});

test('the receiver of a long bulk transfer answers at once: its ACK-only packets leave it no pacing debt, so after 4 s of bulk at 5 % loss its first reliable reply arrives within 50 ms', () => {
  withSeed(seedOr(57), (seed) => {
    // A fast path: tens of thousands of ACK-only packets a second from the server, which has sent no data yet
    // (no RTT sample, so its pacing rate is still the initial one).
    const p = connectedPair(seed, { latencyUs: 100, bandwidthBytesPerSec: 50_000_000, queueBytes: 1_000_000, loss: 0.05 });
    const start = p.sim.now;
    p.sim.runUntil(() => {
      fill(p, p.c);
      drain(p.server, p.s);
      return false;
    }, 4_000_000);
    const bulkBytes = p.server.endpoint.status(p.sim.now, p.s)!.bytesReceived;
    assert.ok(p.server.endpoint.send(p.sim.now, p.s, new Uint8Array(200), SendFlags.Reliable) >= 0, 'the reply was refused');
    const sentAt = p.sim.now;
    let got = 0;
    const arrived = p.sim.runUntil(() => {
      drain(p.server, p.s);
      got += drain(p.client, p.c).length;
      return got > 0;
    }, 2_000_000);
    const waitedUs = p.sim.now - sentAt;
    console.log(`# ${(bulkBytes / (sentAt - start)).toFixed(1)} MB/s of bulk for 4 s, then the reply took ${(waitedUs / 1000).toFixed(1)} ms`);
    assert.ok(arrived, 'the reply never arrived');
    assert.ok(waitedUs < 50_000, `the reply took ${(waitedUs / 1000).toFixed(1)} ms`);
  });
});
