import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendLane } from '../../src/core/send-lane.js';

const none = { stream: false, acked: false, retransmit: false, items: false };

test('an idle lane holds no structure, and reads as empty', () => {
  const lane = new SendLane(1);
  assert.deepEqual(lane.holds(), none);
  assert.equal(lane.hasData(), false);
  assert.equal(lane.pendingNewReliableBytes, 0);
  assert.equal(lane.sentUnackedBytes(), 0);
  assert.equal(lane.retransmitBytes(), 0);
  assert.equal(lane.allReliableDone(), true);
  assert.equal(lane.dropUnreliable(), 0);
  assert.deepEqual(lane.holds(), none, 'reading and dropping made nothing');
});

test('a lane that only sends unreliably makes its queue and no stream buffer or range sets', () => {
  const lane = new SendLane(0);
  lane.queueUnreliable(new Uint8Array(100), false, Number.POSITIVE_INFINITY);
  lane.queueUnreliable(new Uint8Array(50), false, Number.POSITIVE_INFINITY);
  assert.deepEqual(lane.holds(), { ...none, items: true });
  assert.equal(lane.items.length, 2);
  assert.equal(lane.pendingUnreliableBytes, 150);
  assert.equal(lane.dropUnreliable(), 2);
  assert.deepEqual(lane.holds(), { ...none, items: true });
});

test('reliable data makes the stream, an ack the acked set, a loss the retransmit set; other lanes stay empty', () => {
  const lane = new SendLane(0);
  const other = new SendLane(1);
  lane.queueReliable(new Uint8Array(1000));
  assert.deepEqual(lane.holds(), { ...none, stream: true, items: true });
  const end = lane.stream.end;
  assert.ok(end > 1000, 'payload and framing header');
  lane.sentOffset = end;
  lane.onAcked(500, 100);
  assert.deepEqual(lane.holds(), { ...none, stream: true, acked: true, items: true });
  assert.equal(lane.sentUnackedBytes(), end - 100);
  lane.onLost(0, end);
  assert.deepEqual(lane.holds(), { stream: true, acked: true, retransmit: true, items: true });
  assert.equal(lane.retransmitBytes(), end - 100, 'the acknowledged part is not resent');
  lane.onAcked(0, end);
  assert.equal(lane.retransmitBytes(), 0);
  assert.equal(lane.allReliableDone(), true);
  assert.equal(lane.stream.base, end);
  assert.deepEqual(other.holds(), none, 'the shared empty structures were not written');
  assert.equal(other.stream.end, 0);
  assert.equal(other.items.length, 0);
  assert.equal(other.acked.isEmpty() && other.retransmit.isEmpty(), true);
});
