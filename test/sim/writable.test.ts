// "Writable again" notices come from an endpoint only when its owner asked for them (writableNotices):
// NetworkingSockets asks when it has an onWritable; PeerHost (the relayed facades) does not, and gets none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Result, SendFlags } from '../../src/core/types.js';
import { connectedPair, seedOr, withSeed } from '../support/sim.js';

const BUFFER = 16 * 1024;
const SIZE = 3000;

/** Fills the client's send buffer until a send is refused, lets it drain, and counts the notices it queued. */
function noticesAfterDrain(seed: number, writableNotices: boolean): number {
  const { sim, client, c } = connectedPair(seed, { latencyUs: 10_000 }, { SendBufferSize: BUFFER }, undefined, {}, writableNotices);
  let refused = false;
  for (let i = 0; i < 100 && !refused; i++) refused = client.endpoint.send(sim.now, c, new Uint8Array(SIZE), SendFlags.Reliable) === -Result.LimitExceeded;
  assert.ok(refused, 'the send buffer filled up');
  let notices = 0;
  sim.runUntil(() => {
    for (let h = client.endpoint.pollWritable(); h !== null; h = client.endpoint.pollWritable()) {
      assert.equal(h, c);
      notices++;
    }
    return notices > 0;
  }, 5_000_000);
  return notices;
}

test('an endpoint queues a writable notice only when asked to (writableNotices)', () => {
  withSeed(seedOr(4461), (seed) => {
    assert.equal(noticesAfterDrain(seed, true), 1, 'asked: one notice once the refused send would be taken');
    assert.equal(noticesAfterDrain(seed, false), 0, 'not asked: no notice, nothing for the owner to discard');
  });
});
