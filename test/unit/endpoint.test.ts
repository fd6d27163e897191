import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, SendFlags } from '../../src/core/types.js';
import { SeededRng } from '../../src/util/rng.js';
import { RangeSet } from '../../src/util/range-set.js';
import { ReplayWindow } from '../../src/util/replay-window.js';
import { encodeControl } from '../../src/wire/control.js';
import { canTransition } from '../../src/core/state.js';
import { connectedPair, seedOr } from '../support/sim.js';
import { seededHandshake } from '../../src/testing/crypto.js';

const FROM = { address: '192.0.2.7', port: 5000 };

test('garbage datagrams are dropped and counted, never thrown, never create state', () => {
  const ep = new Endpoint({ rng: new SeededRng(1), listen: true, handshake: seededHandshake(1) });
  const rng = new SeededRng(seedOr(81));
  for (let i = 0; i < 20_000; i++) {
    const b = new Uint8Array(rng.int(0, 1300));
    for (let k = 0; k < b.length; k++) b[k] = rng.nextU32() & 0xff;
    ep.handleDatagram(i, { address: `10.${i & 255}.0.1`, port: 1000 + (i % 50) }, b);
  }
  assert.equal(ep.connectionCount, 0);
  const s = ep.stats;
  assert.equal(s.datagramsReceived, 20_000);
  assert.ok(s.datagramsMalformed + s.unknownConnection + s.handshakeRefused > 19_000, JSON.stringify(s));
});

test('a CONNECT_REQUEST without a valid cookie allocates nothing; stateless replies are rate-limited and never larger than the request', () => {
  const ep = new Endpoint({ rng: new SeededRng(2), listen: true, statelessReplyRate: 100, handshake: seededHandshake(2) });
  const buf = new Uint8Array(2000);
  for (let i = 0; i < 5000; i++) {
    const n = encodeControl(buf, { type: 'connectRequest', version: 2, clientCid: i + 1, cookie: new Uint8Array(8).fill(i & 255), payload: new Uint8Array(0) });
    ep.handleDatagram(i * 10, { address: `10.0.${i >> 8}.${i & 255}`, port: 4000 }, buf.slice(0, n));
  }
  assert.equal(ep.connectionCount, 0);
  assert.equal(ep.stats.handshakeRefused, 5000);
  // Data packets for unknown connections: NO_CONNECTION replies are capped by the rate limit.
  let replies = 0;
  const data = new Uint8Array(40).fill(0x80);
  for (let i = 0; i < 5000; i++) {
    ep.handleDatagram(1_000_000 + i * 10, FROM, data);
    for (let t = ep.pollTransmit(0); t; t = ep.pollTransmit(0)) {
      replies++;
      assert.ok(t.data.length <= data.length);
    }
  }
  assert.ok(replies <= 20, `${replies} replies in 50 ms at 100/s`);
  assert.ok(ep.stats.statelessRepliesLimited > 4900);
  // HELLOs are all answered, each with fewer bytes than the HELLO.
  for (let i = 0; i < 100; i++) {
    const n = encodeControl(buf, { type: 'hello', version: 2, clientCid: i + 1, length: 512 });
    ep.handleDatagram(2_000_000 + i, FROM, buf.slice(0, n));
    const t = ep.pollTransmit(0);
    assert.ok(t && t.data.length < n / 10);
  }
  // A HELLO shorter than the minimum is not answered at all.
  ep.handleDatagram(10_000_000, FROM, buf.slice(0, 100));
  assert.equal(ep.pollTransmit(10_000_000), null);
});

test('API misuse gets result codes: unknown handle, bad lane, bad lane config, send after close', () => {
  const p = connectedPair(seedOr(82), { latencyUs: 1000 });
  const ep = p.client.endpoint;
  assert.equal(ep.send(p.sim.now, 12345, new Uint8Array(1), SendFlags.Reliable), -8);
  assert.equal(ep.send(p.sim.now, p.c, new Uint8Array(1), SendFlags.Reliable, 3), -8);
  assert.equal(ep.configureLanes(p.c, [0, 0], [1, 0]), 8);
  assert.equal(ep.configureLanes(p.c, [0, 0, 0], [1, 1, 1]), 1);
  assert.equal(ep.configureLanes(p.c, [0], [1]), 8, 'lanes can only grow');
  assert.equal(ep.close(p.sim.now, p.c, 1000, 'x'), 1);
  assert.equal(ep.state(p.c), ConnectionState.None);
  assert.ok(ep.send(p.sim.now, p.c, new Uint8Array(1), SendFlags.Reliable) < 0);
  assert.equal(ep.close(p.sim.now, p.c), 8, 'closing twice is refused');
});

test('a client that cannot reach the server gives up after TimeoutInitial with 5003', () => {
  const p = connectedPair(seedOr(83), { latencyUs: 1000 });
  const h = p.client.endpoint.connect(p.sim.now, { address: '10.9.9.9', port: 1 }, { TimeoutInitial: 3000 });
  const start = p.sim.now;
  assert.ok(p.sim.runUntil(() => p.client.endpoint.state(h) === ConnectionState.ProblemDetectedLocally, 10_000_000));
  assert.ok(p.sim.now - start <= 3_000_000 + 1000);
  assert.equal(p.client.endpoint.endInfo(h)!.reason, 5003);
});

test('state transitions follow the table', () => {
  assert.ok(canTransition(ConnectionState.Connected, ConnectionState.Linger));
  assert.ok(!canTransition(ConnectionState.Linger, ConnectionState.Connected));
  assert.ok(!canTransition(ConnectionState.Dead, ConnectionState.Connecting));
});

test('RangeSet matches a plain set under random adds and removes', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 20 })), { maxLength: 60 }), (ops) => {
      const rs = new RangeSet();
      const ref = new Set<number>();
      for (const [add, a, len] of ops) {
        if (add) {
          let fresh = 0;
          for (let v = a; v <= a + len; v++) {
            if (!ref.has(v)) {
              ref.add(v);
              fresh++;
            }
          }
          assert.equal(rs.add(a, a + len), fresh);
        } else {
          for (let v = a; v <= a + len; v++) ref.delete(v);
          rs.remove(a, a + len);
        }
      }
      for (let v = 0; v <= 330; v++) assert.equal(rs.has(v), ref.has(v), `value ${v}`);
      for (let i = 1; i < rs.size; i++) assert.ok(rs.lo[i]! > rs.hi[i - 1]! + 1, 'ranges must be disjoint and non-adjacent');
    }),
    { numRuns: 500, seed: 46 },
  );
});

test('ReplayWindow refuses duplicates and anything older than the window', () => {
  const w = new ReplayWindow();
  for (const pn of [0, 1, 5, 3, 4000]) {
    assert.ok(w.isNew(pn));
    w.mark(pn);
    assert.ok(!w.isNew(pn));
  }
  assert.ok(!w.isNew(5));
  assert.ok(w.isNew(4000 - 100));
  assert.ok(!w.isNew(4000 - ReplayWindow.WINDOW), 'older than the window');
});
