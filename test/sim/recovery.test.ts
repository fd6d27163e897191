// Loss recovery in virtual time: RACK's reordering window under jitter, the tail-loss probe, the
// spurious-retransmission counter, and small unreliable messages beside a lossy bulk transfer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Result, SendFlags } from '../../src/core/types.js';
import { CLIENT_ADDR, check, connectedPair, drain, payload, schedulePositions, seedOr, withSeed, type Pair } from '../support/sim.js';

const BULK_MESSAGE = payload(0, 0, 16 * 1024);

/** Keeps `lane` of the client's connection topped up with reliable bulk data. */
function fillBulk(p: Pair, lane: number): void {
  while (p.client.endpoint.laneStatus(p.c, lane)!.pendingReliable < 256 * 1024) {
    if (p.client.endpoint.send(p.sim.now, p.c, BULK_MESSAGE, SendFlags.Reliable, lane) < 0) break;
  }
}

test('RACK: 3 ms of jitter without loss retransmits < 1% of the bytes sent, and counts what it does retransmit as spurious', () => {
  for (const latencyUs of [20_000, 10_000]) {
    withSeed(seedOr(71), (seed) => {
      const p = connectedPair(seed, { latencyUs, jitterUs: 3000 }, { SendRateMax: 2_000_000 });
      p.sim.runUntil(() => (fillBulk(p, 0), drain(p.server, p.s), false), 10_000_000);
      const st = p.client.endpoint.status(p.sim.now, p.c)!;
      const share = st.retransmittedBytes / st.bytesSent;
      console.log(`# jitter ±3 ms, ${latencyUs / 1000} ms each way: ${st.packetsSent} packets, ${st.packetsLost} declared lost (${st.packetsSpuriouslyRetransmitted} found spurious), retransmitted ${(share * 100).toFixed(2)}% of the bytes sent`);
      assert.ok(st.bytesSent > 10_000_000, `the transfer ran (${st.bytesSent} bytes)`);
      assert.ok(share < 0.01, `${(share * 100).toFixed(2)}% of the bytes were retransmitted with no loss on the link`);
      // Nothing was lost on the link, so every loss declared was spurious and every one is seen as such once acked.
      assert.ok(st.packetsSpuriouslyRetransmitted <= st.packetsLost && st.packetsLost - st.packetsSpuriouslyRetransmitted <= 2, `lost ${st.packetsLost}, spurious ${st.packetsSpuriouslyRetransmitted}`);
    });
  }
});

test('the spurious counter stays at zero when losses are real (5% loss, no reordering)', () => {
  withSeed(seedOr(72), (seed) => {
    const p = connectedPair(seed, { latencyUs: 10_000, loss: 0.05 }, { SendRateMax: 2_000_000 });
    p.sim.runUntil(() => (fillBulk(p, 0), drain(p.server, p.s), false), 5_000_000);
    const st = p.client.endpoint.status(p.sim.now, p.c)!;
    assert.ok(st.packetsLost > 100, `losses were declared (${st.packetsLost})`);
    assert.equal(st.packetsSpuriouslyRetransmitted, 0);
  });
});

test('tail-loss probe: the lost last packet of a burst is repaired within 3 smoothed RTTs on a 1 ms path, well before the old probe timeout', () => {
  withSeed(seedOr(73), (seed) => {
    // A high SendRateMin: the pacer lets the 4-packet burst out at once, so its last packet is known.
    const p = connectedPair(seed, { latencyUs: 500 }, { SendRateMin: 10_000_000 });
    for (let i = 0; i < 50; i++) {
      p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 100), SendFlags.Reliable | SendFlags.NoNagle, 0);
      p.sim.runFor(20_000);
    }
    drain(p.server, p.s);
    const before = p.client.endpoint.status(p.sim.now, p.c)!;
    const srtt = before.rttSmoothedUs;
    const isData = (from: { address: string }, data: Uint8Array): boolean => from.address === CLIENT_ADDR.address && data.length > 200;
    let burst = 0;
    p.sim.onSend = (from, _to, data) => void (isData(from, data) && burst++);
    const t0 = p.sim.now;
    for (let i = 0; i < 4; i++) p.client.endpoint.send(p.sim.now, p.c, payload(0, 100 + i, 1100), SendFlags.Reliable | SendFlags.NoNagle, 0);
    p.sim.flush();
    p.sim.onSend = null;
    assert.ok(burst >= 4, `the burst left at once (${burst} packets)`);
    let seen = 0;
    p.sim.intercept = (from, _to, data) => (isData(from, data) && ++seen === burst ? null : data);
    let at = -1;
    p.sim.runUntil(() => {
      for (const m of drain(p.server, p.s)) if (check(m.data).index === 103) at = m.receivedAtUs;
      return at >= 0;
    }, 1_000_000);
    assert.ok(at >= 0, 'the last message arrived');
    const repairUs = at - t0;
    const oldPtoUs = srtt + Math.max(4 * before.rttVarianceUs, 1000) + 5000;
    console.log(`# tail loss: srtt ${srtt} us, last message delivered ${repairUs} us after the burst (${(repairUs / srtt).toFixed(2)} srtt; the old probe timeout alone was ${oldPtoUs} us)`);
    assert.ok(repairUs <= 3 * srtt, `repaired after ${(repairUs / srtt).toFixed(2)} srtt`);
    assert.ok(repairUs < oldPtoUs, `repaired after ${repairUs} us, no sooner than the old probe timeout of ${oldPtoUs} us`);
  });
});

/** p99 delivery delay of 60 Hz, 100-byte unreliable positions on lane 0, with or without reliable bulk on lane 1, at 5% loss each way. */
function positions(seed: number, bulk: boolean): { p99: number; received: number; bulkBytes: number } {
  const p = connectedPair(seed, { latencyUs: 1000, loss: 0.05 }, { SendRateMax: 4_000_000 });
  assert.equal(p.client.endpoint.configureLanes(p.c, [0, 0], [1, 1]), Result.OK);
  const sentAt: number[] = [];
  const delays: number[] = [];
  let bulkBytes = 0;
  const t0 = p.sim.now + 500_000;
  schedulePositions(p, t0, 600, sentAt);
  p.sim.runUntil(() => {
    if (bulk) fillBulk(p, 1);
    for (const m of drain(p.server, p.s)) {
      if (m.lane === 0) delays.push(m.receivedAtUs - (sentAt[check(m.data).index] as number));
      else bulkBytes += m.data.length;
    }
    return false;
  }, t0 - p.sim.now + 10_500_000);
  delays.sort((a, b) => a - b);
  return { p99: delays[Math.floor(delays.length * 0.99)] as number, received: delays.length, bulkBytes };
}

test('head-of-line: 60 Hz unreliable positions keep their p99 delay (within 1.2x) beside a reliable bulk transfer on another lane at 5% loss', () => {
  withSeed(seedOr(74), (seed) => {
    const alone = positions(seed, false);
    const withBulk = positions(seed, true);
    console.log(`# positions p99: ${alone.p99} us alone, ${withBulk.p99} us beside ${(withBulk.bulkBytes / 10.5e6).toFixed(2)} MB/s of bulk (1 ms each way, 5% loss, 4 MB/s cap)`);
    assert.ok(withBulk.bulkBytes > 20_000_000, `the bulk transfer ran (${withBulk.bulkBytes} bytes)`);
    assert.ok(withBulk.received > 500 && alone.received > 500, 'positions arrived');
    assert.ok(withBulk.p99 <= 1.2 * alone.p99, `p99 ${withBulk.p99} us beside bulk vs ${alone.p99} us alone`);
  });
});

test('head-of-line: a position leaves at once while a bulk transfer on another lane keeps the window full', () => {
  withSeed(seedOr(76), (seed) => {
    // 1 ms each way, no rate cap. The acks stop for 60 ms (as when the receiving process stalls), so the
    // bulk fills the window and nothing of it may go until they come back. A position waiting for the
    // window would arrive 60 ms late; it may go past the window, and arrives one way-delay after it is sent.
    const p = connectedPair(seed, { latencyUs: 1000 }, { SendRateMax: 100_000_000 });
    assert.equal(p.client.endpoint.configureLanes(p.c, [0, 0], [1, 1]), Result.OK);
    p.sim.runUntil(() => (fillBulk(p, 1), drain(p.server, p.s), false), 500_000);
    p.sim.updateLink(p.server, p.client, { blackhole: true });
    p.sim.runUntil(() => (fillBulk(p, 1), drain(p.server, p.s), false), 20_000);
    const sentAt: number[] = [];
    schedulePositions(p, p.sim.now, 2, sentAt);
    const delays: number[] = [];
    p.sim.runUntil(() => {
      fillBulk(p, 1);
      for (const m of drain(p.server, p.s)) if (m.lane === 0) delays.push(m.receivedAtUs - (sentAt[check(m.data).index] as number));
      return false;
    }, 40_000);
    p.sim.updateLink(p.server, p.client, { blackhole: false });
    console.log(`# positions sent into a full window (acks cut for 60 ms): delivered after ${delays.join(', ')} us (1 ms each way)`);
    assert.equal(delays.length, 2, 'both positions arrived while the acks were cut');
    for (const d of delays) assert.ok(d <= 2000, `a position took ${d} us over a 1 ms path`);
  });
});

test('a receiver whose reorder buffer fills (5% loss, 16 KiB RecvBufferSize) never stalls the bulk transfer: the probes repair its hole', () => {
  withSeed(seedOr(75), (seed) => {
    // The window (about 2 x 16 MB/s x 2 ms) is far larger than what the receiver holds out of order, so it
    // refuses the data beyond a lost packet; only that packet's repair gets an ack out of it.
    const p = connectedPair(seed, { latencyUs: 500, loss: 0.05 }, { SendRateMax: 16_000_000 }, { RecvBufferSize: 16_384 });
    let bytes = 0;
    let lastUs = p.sim.now;
    let longestUs = 0;
    p.sim.runUntil(() => {
      fillBulk(p, 0);
      for (const m of drain(p.server, p.s)) {
        bytes += m.data.length;
        longestUs = Math.max(longestUs, p.sim.now - lastUs);
        lastUs = p.sim.now;
      }
      return false;
    }, 5_000_000);
    longestUs = Math.max(longestUs, p.sim.now - lastUs);
    const refused = p.server.endpoint.status(p.sim.now, p.s)!.refusedPackets;
    console.log(`# full reorder buffer: ${(bytes / 5e6).toFixed(2)} MB/s delivered, ${refused} packets refused, longest wait between deliveries ${longestUs} us`);
    assert.ok(refused > 0, 'the receiver did refuse data beyond its hole');
    assert.ok(longestUs < 100_000, `no delivery for ${longestUs} us`);
    assert.ok(bytes > 5_000_000, `${bytes} bytes delivered in 5 s`);
  });
});
