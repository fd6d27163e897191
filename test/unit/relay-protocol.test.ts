// Route strings and relay messages: round trips, refusals of malformed input, and the relay
// client's hysteresis rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clearlyBetter } from '../../src/relay/client/index.js';
import { MIN_PING_BYTES, decodeRelayControl, decodeRoute, encodeRelayControl, encodeRoute, type RelayControl, type Route } from '../../src/relay/protocol.js';
import { WireError } from '../../src/wire/errors.js';
import { NodeCryptoProvider } from '../../src/crypto/node-provider.js';
import { TRUNK_HELLO_BYTES, encodeTrunkHello, encodeTrunkOk, openTrunk, openUp, sealTrunk, sealUp, trunkHelloAuthentic, trunkKeys, trunkOkAuthentic } from '../../src/relay/hop.js';

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

test('LINK_REMOTE and the trunk messages round-trip with the documented sizes; TRUNK_HELLO is 74 bytes and TRUNK_OK 49; trunk messages open only inside TRUNK_SEALED, and a client message never there', () => {
  const token = new Uint8Array(45).fill(5);
  const msgs: RelayControl[] = [
    { type: 'linkRemote', requestId: 4, relay: { address: '10.1.2.3', port: 27100, publicKey: new Uint8Array(32).fill(7) }, token, peerId: 77n, publicKey: new Uint8Array(32).fill(8), proof: new Uint8Array(64).fill(9) },
    { type: 'trunkLinkRequest', linkId: 3, token, peerId: 0x1234n, user: 'alice' },
    { type: 'trunkLinkOk', linkId: 3, peerLinkId: 9 },
    { type: 'trunkLinkFailed', linkId: 3, code: 7 },
    { type: 'trunkUnlink', linkId: 9 },
    { type: 'trunkKeepalive', seq: 5 },
    { type: 'trunkClose' },
  ];
  const sizes = [192, 58 + 5, 5, 4, 3, 5, 1];
  for (const [i, m] of msgs.entries()) {
    const b = encodeRelayControl(m);
    assert.equal(b.length, sizes[i], `${m.type} size`);
    assert.deepEqual(decodeRelayControl(b), m);
  }
  const p = new NodeCryptoProvider();
  const [a, b] = [p.generateKeyExchange(), p.generateKeyExchange()];
  const secret = p.deriveSharedSecret(a, b.publicKey) as Uint8Array;
  const nonce = new Uint8Array(16).fill(1);
  const hello = encodeTrunkHello(p, secret, a.publicKey, b.publicKey, new Uint8Array(8).fill(2), nonce);
  assert.equal(hello.length, TRUNK_HELLO_BYTES);
  assert.equal(TRUNK_HELLO_BYTES, 74);
  assert.ok(trunkHelloAuthentic(p, p.deriveSharedSecret(b, a.publicKey) as Uint8Array, hello, a.publicKey, b.publicKey), 'the answerer checks it with the same static secret');
  const other = p.generateKeyExchange();
  assert.ok(!trunkHelloAuthentic(p, p.deriveSharedSecret(other, a.publicKey) as Uint8Array, hello, a.publicKey, other.publicKey), 'another relay cannot');
  const answerer = trunkKeys(p, secret, nonce, new Uint8Array(16).fill(3), a.publicKey, b.publicKey, false);
  const opener = trunkKeys(p, secret, nonce, new Uint8Array(16).fill(3), a.publicKey, b.publicKey, true);
  const ok = encodeTrunkOk(answerer, new Uint8Array(8).fill(2), new Uint8Array(8).fill(4), new Uint8Array(16).fill(3));
  assert.equal(ok.length, 49);
  assert.ok(trunkOkAuthentic(opener, ok));
  ok[3] = (ok[3] as number) ^ 1;
  assert.ok(!trunkOkAuthentic(opener, ok), 'an altered TRUNK_OK does not open');
  const sealed = sealTrunk(opener, new Uint8Array(8).fill(4), 1, { type: 'trunkKeepalive', seq: 5 });
  assert.deepEqual(openTrunk(answerer, sealed)?.message, { type: 'trunkKeepalive', seq: 5 });
  assert.equal(openTrunk(answerer, sealTrunk(opener, new Uint8Array(8), 2, { type: 'keepalive', seq: 1 })), null, 'a client message inside TRUNK_SEALED is refused');
  const hop = { up: opener.sealOut, down: opener.sealIn, data: opener.dataOut, binding: new Uint8Array(16) };
  assert.equal(openUp({ ...hop, up: answerer.sealIn }, sealUp({ ...hop }, new Uint8Array(8), 0, { type: 'trunkClose' })), null, 'a trunk message inside a SEALED frame is refused');
});
