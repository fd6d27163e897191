// The pacer of the congestion controller, driven directly with times as arguments (no clock, no timer):
// a sender it held and that is woken late keeps the pacing rate, an idle one still gets only the burst.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CongestionController, type RateSnapshot } from '../../src/core/congestion.js';

const MTU = 1200;
const RATE = 100_000_000; // bytes per second: 100 kB per ms, above the bucket's 64 KiB cap
const snap = (): RateSnapshot => ({ delivered: 0, deliveredTimeUs: 0, firstSentTimeUs: 0, appLimited: false, timeSentUs: 0, size: 0, pastWindow: false });

/** A controller pacing at RATE whose bucket is empty at `now`; returns it and the send time its pacer gives. */
function heldAt(now: number): { cc: CongestionController; at: number } {
  const cc = new CongestionController(MTU, RATE, RATE, 1000);
  const s = snap();
  while (cc.nextSendTimeUs(now, MTU) <= now) cc.onPacketSent(now, MTU, s);
  return { cc, at: cc.nextSendTimeUs(now, MTU) };
}

/** Full packets the pacer lets out at `now`, back to back. */
function burstAt(cc: CongestionController, now: number): number {
  const s = snap();
  let n = 0;
  while (cc.nextSendTimeUs(now, MTU) <= now) {
    cc.onPacketSent(now, MTU, s);
    n++;
  }
  return n;
}

test('a sender the pacer held and a timer woke 1 ms late sends what the rate allowed since the send time it was given', () => {
  const { cc, at } = heldAt(1_000_000);
  assert.ok(at > 1_000_000, 'the pacer held the sender');
  const n = burstAt(cc, at + 1000);
  // 1 ms of the rate past the send time is 100 kB, about 83 packets: more than the 64 KiB bucket (54 packets) holds.
  assert.ok(n * MTU >= RATE / 1000, `${n} packets after a 1 ms late wake-up`);
});

test('lateness counts up to 2 ms, and a sender that was not held gets only the burst after an idle spell', () => {
  const { cc, at } = heldAt(1_000_000);
  const late = burstAt(cc, at + 50_000);
  assert.ok(late * MTU <= 64 * 1024 + (2 * RATE) / 1000 + MTU, `${late} packets after a 50 ms late wake-up`);
  cc.onAppLimited(); // the queue ran empty: nobody waits for the pacer now
  const idle = burstAt(cc, at + 200_000);
  assert.ok(idle * MTU <= 64 * 1024 + MTU, `${idle} packets after 150 ms idle`);
});
