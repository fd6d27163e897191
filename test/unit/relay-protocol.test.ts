// Route strings and relay messages: round trips, refusals of malformed input, and the relay
// client's hysteresis rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clearlyBetter } from '../../src/relay/client/index.js';
import { MIN_PING_BYTES, decodeRelayControl, decodeRoute, encodeRelayControl, encodeRoute, type RelayControl, type Route } from '../../src/relay/protocol.js';
import { WireError } from '../../src/wire/errors.js';

test('route strings round-trip IPv4 and IPv6 relays, primary first, and are base64url', () => {
  const route: Route = {
    version: 2,
    revision: 7,
    entries: [
      { relay: { address: '203.0.113.5', port: 27100 }, publicKey: new Uint8Array(32).fill(1), token: new Uint8Array(45).fill(9) },
      { relay: { address: '2001:db8::1', port: 443 }, publicKey: new Uint8Array(32).fill(2), token: new Uint8Array(45).fill(3) },
    ],
  };
  const s = encodeRoute(route);
  assert.match(s, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeRoute(s), route);
});

test('malformed route strings and relay messages are refused with WireError, never another exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 700 }), (bytes) => {
      for (const f of [() => decodeRoute(Buffer.from(bytes).toString('base64url')), () => decodeRelayControl(bytes)]) {
        try {
          f();
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
      }
    }),
    { numRuns: 3000, seed: 42 },
  );
  assert.throws(() => decodeRoute('has spaces'), WireError);
  assert.throws(() => decodeRelayControl(encodeRelayControl({ type: 'ping', version: 2, nonce: new Uint8Array(8) }).subarray(0, MIN_PING_BYTES - 1)), WireError, 'a short ping is refused: it would make the pong an amplifier');
});

test('hysteresis: a relay must be at least 10 ms and 10 % faster to count as better', () => {
  assert.equal(clearlyBetter(30_000, 50_000, 10_000, 0.1), true);
  assert.equal(clearlyBetter(45_000, 50_000, 10_000, 0.1), false, '5 ms better is not enough');
  assert.equal(clearlyBetter(185_000, 200_000, 10_000, 0.1), false, '15 ms but only 7.5 % better');
  assert.equal(clearlyBetter(170_000, 200_000, 10_000, 0.1), true);
});

test('directory messages round-trip with the documented sizes; a non-ASCII or overlong route is refused', () => {
  const route = encodeRoute({ version: 2, revision: 3, entries: [{ relay: { address: '127.0.0.1', port: 27100 }, publicKey: new Uint8Array(32).fill(6), token: new Uint8Array(45).fill(5) }] });
  assert.equal(route.length, 122);
  const msgs: RelayControl[] = [
    { type: 'dirRegister', requestId: 513, unixSeconds: 1_800_000_000, publicKey: new Uint8Array(32).fill(2), route, signature: new Uint8Array(64).fill(3) },
    { type: 'dirRegisterResult', requestId: 7, code: 2 },
    { type: 'dirLookup', requestId: 9, peerId: 0xfedcba9876543210n },
    { type: 'dirLookupResult', requestId: 9, code: 0, peerId: 0xfedcba9876543210n, route },
    { type: 'dirLookupResult', requestId: 10, code: 5, peerId: 1n, route: '' },
  ];
  const sizes = [105 + 122, 4, 11, 14 + 122, 14];
  for (const [i, m] of msgs.entries()) {
    const b = encodeRelayControl(m);
    assert.equal(b.length, sizes[i], `${m.type} size`);
    assert.deepEqual(decodeRelayControl(b), m);
  }
  const bad = encodeRelayControl(msgs[3] as RelayControl);
  bad[14] = 0xc3; // a byte of the route, not ASCII
  assert.throws(() => decodeRelayControl(bad), WireError);
  const long = encodeRelayControl({ type: 'dirLookupResult', requestId: 1, code: 0, peerId: 1n, route: 'A'.repeat(769) });
  assert.throws(() => decodeRelayControl(long), WireError);
});

test('IPv6 addresses in routes decode to the canonical form node:dgram reports (10,000 seeded addresses, node:net as the oracle)', async () => {
  const { SocketAddress } = await import('node:net');
  const { formatIPv6 } = await import('../../src/util/address.js');
  const { SeededRng } = await import('../../src/util/rng.js');
  const rng = new SeededRng(77);
  for (let n = 0; n < 10_000; n++) {
    // Mostly zeros and small values, so that runs of zeros, ties and the IPv4 forms all come up.
    const g = Array.from({ length: 8 }, () => {
      const x = rng.next();
      return x < 0.5 ? 0 : x < 0.55 ? 0xffff : x < 0.6 ? 1 : Math.floor(rng.next() * 65536);
    });
    const expected = new SocketAddress({ address: g.map((x) => x.toString(16)).join(':'), family: 'ipv6' }).address;
    assert.equal(formatIPv6(g), expected, g.join(','));
  }
});
