// The relay node, sans-IO, in virtual time: tickets, cookies, amplification, links, rate limits,
// reaping, draining, rebinding and pollTimeout. Every datagram the node sends is captured by address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayNode, type RelayNodeOptions } from '../../src/relay/node/index.js';
import { COOKIE_BYTES, DOWN_HEADER_BYTES, DirCode, RelayMsg, RefuseCode, UP_HEADER_BYTES, decodeRelayControl, decodeRoute, dirRegisterSigned, encodeRelayControl, encodeRoute, type RelayControl } from '../../src/relay/protocol.js';
import { derivePeerId } from '../../src/crypto/identity.js';
import { signTicket, ticketKeyId } from '../../src/relay/ticket.js';
import { seededCryptoProvider } from '../../src/testing/crypto.js';
import { SeededRng } from '../../src/util/rng.js';
import { seedOr, withSeed } from '../support/sim.js';

const NOW_S = 1_800_000_000;

interface Sent {
  data: Uint8Array;
  port: number;
  address: string;
}

/** A relay node whose output lands in `sent`, with one trusted ticket key (and one revoked). */
function relay(seed: number, options: Partial<RelayNodeOptions> = {}): { node: RelayNode; sent: Sent[]; provider: ReturnType<typeof seededCryptoProvider>; key: ReturnType<ReturnType<typeof seededCryptoProvider>['signingKey']>; revokedKey: ReturnType<ReturnType<typeof seededCryptoProvider>['signingKey']> } {
  const provider = seededCryptoProvider(seed);
  const key = provider.signingKey();
  const revokedKey = provider.signingKey();
  const sent: Sent[] = [];
  const node = new RelayNode({
    provider,
    send: (data, port, address) => sent.push({ data: data.slice(), port, address }),
    ticketKeys: { keys: new Map([[ticketKeyId(provider, key.publicKey), key.publicKey], [ticketKeyId(provider, revokedKey.publicKey), revokedKey.publicKey]]), revoked: new Set([ticketKeyId(provider, revokedKey.publicKey)]) },
    unixSeconds: () => NOW_S,
    ...options,
  });
  return { node, sent, provider, key, revokedKey };
}

/** The last control message sent to `address:port`. */
function lastTo(sent: Sent[], address: string, port: number): RelayControl | null {
  for (let i = sent.length - 1; i >= 0; i--) {
    const s = sent[i] as Sent;
    if (s.address === address && s.port === port && s.data[0] !== RelayMsg.DataDown) return decodeRelayControl(s.data);
  }
  return null;
}

/** Pings from `address:port`, returns the cookie. */
function cookieFor(node: RelayNode, sent: Sent[], now: number, address: string, port: number): Uint8Array {
  node.handleDatagram(now, address, port, encodeRelayControl({ type: 'ping', version: 1, nonce: new Uint8Array(8) }));
  const m = lastTo(sent, address, port);
  assert.equal(m?.type, 'pong');
  return (m as Extract<RelayControl, { type: 'pong' }>).cookie;
}

/** Opens a session from `address:port` with `ticket`; returns the answer. */
function open(node: RelayNode, sent: Sent[], now: number, address: string, port: number, ticket: Uint8Array, nonce = 1): RelayControl | null {
  const cookie = cookieFor(node, sent, now, address, port);
  const before = sent.length;
  node.handleDatagram(now, address, port, encodeRelayControl({ type: 'sessionRequest', cookie, clientNonce: new Uint8Array(8).fill(nonce), ticket }));
  return sent.length > before ? lastTo(sent, address, port) : null;
}

test('tickets: expired, not yet valid, over 24 h, unknown key, revoked key, a flipped signature bit, truncated, reused from a second address: all refused, no session allocated', () => {
  withSeed(seedOr(501), (seed) => {
    const { node, sent, provider, key, revokedKey } = relay(seed);
    const unknownKey = provider.signingKey();
    const base = { user: 'alice', issuedAt: NOW_S - 60, expiresAt: NOW_S + 3600, maxSessions: 4, maxKbps: 8000 };
    const good = signTicket(provider, key, base);
    const flipped = good.slice();
    flipped[flipped.length - 10] = (flipped[flipped.length - 10] as number) ^ 0x04;
    // signTicket refuses lifetimes over 24 h, so the over-long ticket is a good one with its expiry moved
    // 2 days out (its signature breaks too, but the lifetime check comes first: the counters show which fired).
    const overLong = signTicket(provider, key, { ...base, issuedAt: NOW_S - 10, expiresAt: NOW_S + 3600 });
    new DataView(overLong.buffer).setUint32(9, NOW_S + 86_400 * 2);
    const cases: [string, Uint8Array][] = [
      ['expired', signTicket(provider, key, { ...base, issuedAt: NOW_S - 7200, expiresAt: NOW_S - 1 })],
      ['not yet valid', signTicket(provider, key, { ...base, issuedAt: NOW_S + 600, expiresAt: NOW_S + 4200 })],
      ['over 24 h', overLong],
      ['unknown key', signTicket(provider, unknownKey, base)],
      ['revoked key', signTicket(provider, revokedKey, base)],
      ['flipped signature bit', flipped],
      ['truncated', good.subarray(0, good.length - 1)],
      ['empty', new Uint8Array(0)],
    ];
    let port = 30000;
    for (const [what, ticket] of cases) {
      const m = open(node, sent, 1e9, '10.1.0.1', port++, ticket);
      assert.deepEqual(m && m.type === 'refused' ? m.code : m, RefuseCode.Ticket, `${what}: refused with the one ticket code`);
    }
    assert.equal(node.sessionCount, 0, 'no session allocated for any bad ticket');
    assert.deepEqual(node.stats.ticketRefusedBy, { malformed: 1, unknownKey: 1, revokedKey: 1, notYetValid: 1, expired: 1, tooLong: 1, badSignature: 1, reused: 0, quota: 0, missing: 1 });
    assert.equal(node.stats.signatureChecks, 1, 'only the ticket whose every cheap check passed cost a signature verification');
    // The good ticket opens a session; the same ticket from a second address is refused.
    assert.equal(open(node, sent, 1e9, '10.1.0.2', 40000, good)?.type, 'sessionOk');
    assert.equal(node.sessionCount, 1);
    const reused = open(node, sent, 1e9, '10.1.0.3', 40000, good, 2);
    assert.equal(reused?.type, 'refused');
    assert.equal(node.sessionCount, 1, 'the reuse allocated nothing');
    assert.equal(node.stats.ticketRefusedBy.reused, 1);
  });
});

test('quota: a ticket for 2 sessions opens 2 and the third is refused', () => {
  withSeed(seedOr(502), (seed) => {
    const { node, sent, provider, key } = relay(seed);
    const t = signTicket(provider, key, { user: 'bob', issuedAt: NOW_S, expiresAt: NOW_S + 60, maxSessions: 2, maxKbps: 100 });
    assert.equal(open(node, sent, 1e9, '10.2.0.1', 1000, t, 1)?.type, 'sessionOk');
    assert.equal(open(node, sent, 1e9, '10.2.0.1', 1000, t, 2)?.type, 'sessionOk');
    const third = open(node, sent, 1e9, '10.2.0.1', 1000, t, 3);
    assert.deepEqual(third?.type === 'refused' && third.code, RefuseCode.Quota);
    assert.equal(node.sessionCount, 2);
  });
});

test('spoofed pings, session requests, link requests, data and garbage from 40,000 sources: 0 state, 0 signature checks, bytes out / bytes in <= 1.0', () => {
  withSeed(seedOr(503), (seed) => {
    const { node, sent, provider, key } = relay(seed);
    const rng = new SeededRng(seed);
    const ticket = signTicket(provider, key, { user: 'mallory', issuedAt: NOW_S, expiresAt: NOW_S + 60, maxSessions: 1, maxKbps: 100 });
    let bytesIn = 0;
    let now = 5e9;
    const kinds = 5;
    for (let i = 0; i < 40_000; i++) {
      const address = `10.${(i >> 8) & 0xff}.${i & 0xff}.${1 + (i % 200)}`;
      const port = 1024 + (rng.nextU32() % 60000);
      let d: Uint8Array;
      switch (i % kinds) {
        case 0:
          d = encodeRelayControl({ type: 'ping', version: 1, nonce: new Uint8Array(8) });
          break;
        case 1: {
          const cookie = new Uint8Array(COOKIE_BYTES);
          for (let k = 0; k < cookie.length; k++) cookie[k] = rng.nextU32() & 0xff;
          d = encodeRelayControl({ type: 'sessionRequest', cookie, clientNonce: new Uint8Array(8), ticket });
          break;
        }
        case 2:
          d = encodeRelayControl({ type: 'linkRequest', sessionId: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, i & 0xff), requestId: 1, token: new Uint8Array(41) });
          break;
        case 3:
          d = new Uint8Array(UP_HEADER_BYTES + 40);
          d[0] = RelayMsg.DataUp;
          for (let k = 1; k < 9; k++) d[k] = rng.nextU32() & 0xff;
          break;
        default:
          d = new Uint8Array(1 + (rng.nextU32() % 1400));
          for (let k = 0; k < d.length; k++) d[k] = rng.nextU32() & 0xff;
      }
      bytesIn += d.length;
      node.handleDatagram(now, address, port, d);
      now += 50; // 20,000 datagrams a second
    }
    node.handleTimeout(now);
    const bytesOut = sent.reduce((n, s) => n + s.data.length, 0);
    assert.equal(node.sessionCount, 0, 'no session');
    assert.equal(node.stats.signatureChecks, 0, 'no signature verified for a request without a valid cookie');
    assert.ok(bytesOut / bytesIn <= 1.0, `amplification ${(bytesOut / bytesIn).toFixed(3)}`);
    // Each reply is smaller than what it answers.
    for (const s of sent) assert.ok(s.data.length <= 33, `reply of ${s.data.length} bytes`);
    const noSession = sent.filter((s) => s.data[0] === RelayMsg.NoSession).length;
    assert.ok(noSession <= 4 * Math.ceil((now - 5e9) / 1e6) + 4, `${noSession} NO_SESSION replies in ${((now - 5e9) / 1e6).toFixed(1)} s: at most 4 a second`);
    console.log(`seed ${seed}: ${bytesIn} bytes in, ${bytesOut} out (${(bytesOut / bytesIn).toFixed(3)}x); ${node.stats.cookieRefused} cookies refused; ${noSession} NO_SESSION`);
  });
});

test('a cookie is bound to its address and expires after 10 s', () => {
  withSeed(seedOr(504), (seed) => {
    const { node, sent } = relay(seed, { open: true });
    const cookie = cookieFor(node, sent, 1e9, '10.3.0.1', 5000);
    const req = (address: string, port: number, now: number): void => node.handleDatagram(now, address, port, encodeRelayControl({ type: 'sessionRequest', cookie, clientNonce: new Uint8Array(8), ticket: new Uint8Array(0) }));
    req('10.3.0.2', 5000, 1e9);
    req('10.3.0.1', 5001, 1e9);
    req('10.3.0.1', 5000, 1e9 + 11e6);
    assert.equal(node.sessionCount, 0);
    assert.equal(node.stats.cookieRefused, 3);
    req('10.3.0.1', 5000, 1e9 + 9e6);
    assert.equal(node.sessionCount, 1, 'the same cookie from its own address within 10 s opens a session');
  });
});

/** Two open-mode sessions linked to each other. */
function linked(seed: number, options: Partial<RelayNodeOptions> = {}): { node: RelayNode; sent: Sent[]; provider: ReturnType<typeof seededCryptoProvider>; a: Extract<RelayControl, { type: 'sessionOk' }>; b: Extract<RelayControl, { type: 'sessionOk' }>; linkA: number } {
  const { node, sent, provider } = relay(seed, { open: true, ...options });
  const a = open(node, sent, 1e9, '10.4.0.1', 1111, new Uint8Array(0)) as Extract<RelayControl, { type: 'sessionOk' }>;
  const b = open(node, sent, 1e9, '10.4.0.2', 2222, new Uint8Array(0)) as Extract<RelayControl, { type: 'sessionOk' }>;
  assert.equal(a.type, 'sessionOk');
  assert.equal(b.type, 'sessionOk');
  // The route token holds no client address, in any form.
  for (const s of [a, b]) {
    const route = encodeRoute({ version: 1, revision: 1, entries: [{ relay: { address: '127.0.0.1', port: 27100 }, token: s.token }] });
    assert.equal(decodeRoute(route).entries[0]?.relay.port, 27100);
    const raw = Buffer.from(route, 'base64url');
    for (const ip of [[10, 4, 0, 1], [10, 4, 0, 2]]) assert.equal(raw.indexOf(Buffer.from(ip)), -1, 'no client IP bytes in the route');
    assert.ok(!route.includes('10.4.0'), 'no client IP text in the route');
  }
  node.handleDatagram(1e9, '10.4.0.1', 1111, encodeRelayControl({ type: 'linkRequest', sessionId: a.sessionId, requestId: 7, token: b.token }));
  const ok = lastTo(sent, '10.4.0.1', 1111);
  assert.equal(ok?.type, 'linkOk');
  return { node, sent, provider, a, b, linkA: (ok as Extract<RelayControl, { type: 'linkOk' }>).linkId };
}

function up(sessionId: Uint8Array, linkId: number, payload: Uint8Array): Uint8Array {
  const d = new Uint8Array(UP_HEADER_BYTES + payload.length);
  d[0] = RelayMsg.DataUp;
  d.set(sessionId, 1);
  d[9] = linkId >> 8;
  d[10] = linkId & 0xff;
  d.set(payload, UP_HEADER_BYTES);
  return d;
}

test('links: data goes to the linked session with a 3-byte hop header and the payload untouched; a second link request names the same link', () => {
  withSeed(seedOr(505), (seed) => {
    const { node, sent, a, b, linkA } = linked(seed);
    const payload = Uint8Array.from({ length: 100 }, (_, i) => i);
    node.handleDatagram(1e9 + 1, '10.4.0.1', 1111, up(a.sessionId, linkA, payload));
    const out = sent[sent.length - 1] as Sent;
    assert.deepEqual([out.address, out.port], ['10.4.0.2', 2222]);
    assert.equal(out.data[0], RelayMsg.DataDown);
    assert.equal(out.data.length, DOWN_HEADER_BYTES + payload.length);
    assert.deepEqual(out.data.subarray(DOWN_HEADER_BYTES), payload);
    // B links to A's token: the same link, from B's side.
    node.handleDatagram(1e9 + 2, '10.4.0.2', 2222, encodeRelayControl({ type: 'linkRequest', sessionId: b.sessionId, requestId: 9, token: a.token }));
    const okB = lastTo(sent, '10.4.0.2', 2222);
    assert.equal(okB?.type, 'linkOk');
    const linkB = (okB as Extract<RelayControl, { type: 'linkOk' }>).linkId;
    assert.equal(out.data[1]! * 256 + out.data[2]!, linkB, 'the down header names B\'s side of the same link');
    assert.equal(node.linkCount, 1);
    // A forged token and one's own token are refused.
    const forged = b.token.slice();
    forged[20] = (forged[20] as number) ^ 1;
    node.handleDatagram(1e9 + 3, '10.4.0.1', 1111, encodeRelayControl({ type: 'linkRequest', sessionId: a.sessionId, requestId: 10, token: forged }));
    assert.deepEqual(lastTo(sent, '10.4.0.1', 1111), { type: 'linkFailed', requestId: 10, code: RefuseCode.BadRoute });
    node.handleDatagram(1e9 + 4, '10.4.0.1', 1111, encodeRelayControl({ type: 'linkRequest', sessionId: a.sessionId, requestId: 11, token: a.token }));
    assert.deepEqual(lastTo(sent, '10.4.0.1', 1111), { type: 'linkFailed', requestId: 11, code: RefuseCode.BadRoute });
  });
});

test('rate limit: a session sending at 10x its cap gets about its cap forwarded', () => {
  withSeed(seedOr(506), (seed) => {
    const { node, sent, a, linkA } = linked(seed, { openKbps: 800 }); // 100,000 bytes/s
    const before = sent.length;
    const payload = new Uint8Array(1000);
    let now = 2e9;
    for (let i = 0; i < 2000; i++) {
      node.handleDatagram(now, '10.4.0.1', 1111, up(a.sessionId, linkA, payload)); // 1,000 datagrams/s = 1 MB/s
      now += 1000;
    }
    const forwarded = (sent.length - before) * payload.length;
    // 2 s at 100 kB/s plus the 64 KiB burst.
    assert.ok(forwarded <= 200_000 * 1.1 + 65_536, `${forwarded} bytes forwarded`);
    assert.ok(forwarded >= 200_000 * 0.9, `${forwarded} bytes forwarded`);
    assert.ok(node.stats.rateLimited > 1500);
  });
});

test('idle sessions are reaped after 30 s with their links; a drain refuses new sessions and announces its deadline', () => {
  withSeed(seedOr(507), (seed) => {
    const { node, sent, a } = linked(seed);
    node.handleDatagram(1e9 + 20e6, '10.4.0.1', 1111, encodeRelayControl({ type: 'keepalive', sessionId: a.sessionId, seq: 1 }));
    node.handleTimeout(1e9 + 31e6);
    assert.equal(node.sessionCount, 1, 'the session that kept alive stays, the silent one is reaped');
    assert.equal(node.linkCount, 0);
    node.drain(1e9 + 32e6, 10);
    node.handleDatagram(1e9 + 33e6, '10.4.0.1', 1111, encodeRelayControl({ type: 'keepalive', sessionId: a.sessionId, seq: 2 }));
    const ack = lastTo(sent, '10.4.0.1', 1111);
    assert.equal(ack?.type === 'keepaliveAck' && ack.drainSeconds, 9);
    assert.deepEqual(open(node, sent, 1e9 + 33e6, '10.4.0.9', 9, new Uint8Array(0), 5), { type: 'refused', clientNonce: new Uint8Array(8).fill(5), code: RefuseCode.Draining });
    assert.equal(node.drained(1e9 + 40e6), false);
    node.handleTimeout(1e9 + 43e6);
    assert.equal(node.drained(1e9 + 43e6), true);
    assert.equal(node.sessionCount, 0);
  });
});

test('NAT rebinding: data from a new address is not forwarded; the relay challenges it with at most 3x its bytes and moves the session once it answers', () => {
  withSeed(seedOr(508), (seed) => {
    const { node, sent, provider, a, linkA } = linked(seed);
    const payload = new Uint8Array(60);
    const before = sent.length;
    let bytesFromNew = 0;
    for (let i = 0; i < 5; i++) {
      const d = up(a.sessionId, linkA, payload);
      bytesFromNew += d.length;
      node.handleDatagram(3e9 + i * 100_000, '10.4.0.1', 5555, d);
    }
    const toNew = sent.slice(before).filter((s) => s.port === 5555);
    const toPeer = sent.slice(before).filter((s) => s.address === '10.4.0.2');
    assert.equal(toPeer.length, 0, 'nothing forwarded from the unvalidated address');
    assert.ok(toNew.length >= 1 && toNew.every((s) => s.data[0] === RelayMsg.PathChallenge));
    assert.ok(toNew.reduce((n, s) => n + s.data.length, 0) <= 3 * bytesFromNew);
    // A wrong answer moves nothing; the right one (HMAC with the session key) moves the session.
    const challenge = (decodeRelayControl((toNew[toNew.length - 1] as Sent).data) as Extract<RelayControl, { type: 'pathChallenge' }>).challenge;
    node.handleDatagram(3e9 + 1e6, '10.4.0.1', 5555, encodeRelayControl({ type: 'pathResponse', sessionId: a.sessionId, challenge, mac: new Uint8Array(16) }));
    assert.equal(node.stats.rebinds, 0);
    const mac = provider.hmacSha256(a.sessionKey, new TextEncoder().encode('netlane-relay-path'), challenge).subarray(0, 16);
    node.handleDatagram(3e9 + 1e6, '10.4.0.1', 5555, encodeRelayControl({ type: 'pathResponse', sessionId: a.sessionId, challenge, mac }));
    assert.equal(node.stats.rebinds, 1);
    node.handleDatagram(3e9 + 2e6, '10.4.0.1', 5555, up(a.sessionId, linkA, payload));
    assert.equal((sent[sent.length - 1] as Sent).address, '10.4.0.2', 'data from the new address is forwarded now');
    // The old address is no longer the session's.
    const n = sent.length;
    node.handleDatagram(3e9 + 3e6, '10.4.0.1', 1111, up(a.sessionId, linkA, payload));
    assert.ok(sent.slice(n).every((s) => s.address !== '10.4.0.2'));
  });
});

test('directory: a peer id is registered only by its key holder, only with a route naming its own session, never with an older registration; lookups find it', () => {
  withSeed(seedOr(509), (seed) => {
    const { node, sent, provider, a, b } = linked(seed);
    const relayAddr = { address: '127.0.0.1', port: 27100 };
    const routeOf = (token: Uint8Array): string => encodeRoute({ version: 1, revision: 1, entries: [{ relay: relayAddr, token }] });
    const alice = provider.signingKey();
    const mallory = provider.signingKey();
    const aliceId = derivePeerId(provider, alice.publicKey);
    let requestId = 100;
    const register = (from: [string, number], sessionId: Uint8Array, key: typeof alice, route: string, opts: { publicKey?: Uint8Array; t?: number } = {}): number => {
      const t = opts.t ?? NOW_S;
      const publicKey = opts.publicKey ?? key.publicKey;
      const signature = provider.sign(key, dirRegisterSigned(publicKey, t, route));
      const id = ++requestId;
      node.handleDatagram(2e9, from[0], from[1], encodeRelayControl({ type: 'dirRegister', sessionId, requestId: id, unixSeconds: t, publicKey, route, signature }));
      const r = lastTo(sent, from[0], from[1]);
      assert.equal(r?.type, 'dirRegisterResult');
      assert.equal((r as Extract<RelayControl, { type: 'dirRegisterResult' }>).requestId, id);
      return (r as Extract<RelayControl, { type: 'dirRegisterResult' }>).code;
    };
    const lookup = (from: [string, number], sessionId: Uint8Array, peerId: bigint): Extract<RelayControl, { type: 'dirLookupResult' }> => {
      node.handleDatagram(2e9, from[0], from[1], encodeRelayControl({ type: 'dirLookup', sessionId, requestId: 7, peerId }));
      return lastTo(sent, from[0], from[1]) as Extract<RelayControl, { type: 'dirLookupResult' }>;
    };
    const A: [string, number] = ['10.4.0.1', 1111];
    const B: [string, number] = ['10.4.0.2', 2222];
    assert.equal(lookup(B, b.sessionId, aliceId).code, DirCode.NotFound);
    // Alice registers her id from her session, with her route.
    assert.equal(register(A, a.sessionId, alice, routeOf(a.token), { t: NOW_S - 10 }), DirCode.Ok);
    const found = lookup(B, b.sessionId, aliceId);
    assert.deepEqual([found.code, found.peerId, found.route], [DirCode.Ok, aliceId, routeOf(a.token)]);
    // Mallory, holding a session, claims Alice's id: with Alice's public key but his own signature...
    const checks = node.stats.signatureChecks;
    assert.equal(register(B, b.sessionId, mallory, routeOf(b.token), { publicKey: alice.publicKey }), DirCode.BadSignature);
    // ... with his own key (which derives another id: it registers his own id, never Alice's) ...
    assert.equal(register(B, b.sessionId, mallory, routeOf(b.token)), DirCode.Ok);
    assert.equal(node.lookup(derivePeerId(provider, mallory.publicKey)), routeOf(b.token));
    // ... by replaying Alice's registration from his session (the route names Alice's session, not his) ...
    assert.equal(register(B, b.sessionId, alice, routeOf(a.token)), DirCode.BadRoute);
    // ... or pointing Alice's id at his own session without her key: refused. An older registration is stale.
    assert.equal(register(A, a.sessionId, alice, routeOf(a.token), { t: NOW_S - 20 }), DirCode.Stale);
    assert.equal(register(A, a.sessionId, alice, routeOf(a.token), { t: NOW_S - 3600 }), DirCode.Stale);
    assert.equal(node.stats.signatureChecks - checks, 2, 'signatures are checked only after the cheap checks passed');
    assert.equal(lookup(B, b.sessionId, aliceId).route, routeOf(a.token), 'Alice\'s entry is untouched');
    assert.deepEqual(node.stats.dirRefusedBy, { badSignature: 1, badRoute: 1, stale: 2, rateLimited: 0 });
    // Registrations are rate-limited per session; lookups too.
    let limited = 0;
    for (let i = 0; i < 10; i++) if (register(A, a.sessionId, alice, routeOf(a.token)) === DirCode.RateLimited) limited++;
    assert.ok(limited >= 6, `${limited} of 10 back-to-back registrations limited`);
    for (let i = 0; i < 100; i++) lookup(B, b.sessionId, aliceId);
    assert.ok(node.stats.dirLookupsLimited >= 40);
    // Lookups from an address that is not the session's get no answer; a reaped session leaves the directory.
    const n = sent.length;
    node.handleDatagram(2e9, '10.9.9.9', 9999, encodeRelayControl({ type: 'dirLookup', sessionId: b.sessionId, requestId: 8, peerId: aliceId }));
    assert.ok(sent.slice(n).every((s) => s.data[0] !== RelayMsg.DirLookupResult));
    node.handleTimeout(2e9 + 31e6);
    assert.equal(node.lookup(aliceId), null);
    assert.equal(node.stats.dirEntries, 0);
  });
});

test('pollTimeout: finite while sessions exist; handleTimeout at pollTimeout() reaps an idle session at the first 250 ms tick after its 30 s; a drain is never polled past its deadline', () => {
  withSeed(seedOr(510), (seed) => {
    const { node, sent } = relay(seed, { open: true });
    assert.equal(node.pollTimeout(0), null, 'no session, no drain: no timer');
    const t0 = 1e9;
    assert.equal(open(node, sent, t0, '10.5.0.1', 1000, new Uint8Array(0))?.type, 'sessionOk');
    // Run the node as an io runner would: one timer, at pollTimeout(), nothing else.
    let now = t0;
    let reapedAt = -1;
    for (let polls = 0; polls < 1000 && node.sessionCount > 0; polls++) {
      const at = node.pollTimeout(now);
      assert.ok(at !== null && Number.isFinite(at), 'a timer is armed while a session exists');
      assert.ok(at >= now && (polls === 0 || at > now), 'the timer moves forward');
      now = at;
      node.handleTimeout(now);
      if (node.sessionCount === 0) reapedAt = now;
    }
    // Before pollTimeout, the server ran handleTimeout every 250 ms: the session went at the first tick after
    // 30 s of silence (the condition is "idle for more than 30 s"). It goes at that same moment now.
    const idleUs = 30e6;
    const tickUs = 250_000;
    assert.equal(reapedAt, (Math.floor((t0 + idleUs) / tickUs) + 1) * tickUs);
    assert.ok(reapedAt - (t0 + idleUs) <= tickUs);
    assert.equal(node.stats.sessionsReaped, 1);
    assert.equal(node.pollTimeout(now), null, 'the last session reaped (open mode: no ticket binding): no timer');

    // A draining node that keeps a live session: every poll is at or before the deadline, and at the deadline it is drained.
    const t1 = 2e9;
    const b = open(node, sent, t1, '10.5.0.2', 2000, new Uint8Array(0), 2) as Extract<RelayControl, { type: 'sessionOk' }>;
    assert.equal(b.type, 'sessionOk');
    const deadline = t1 + 10e6;
    node.drain(t1, 10);
    now = t1;
    for (let polls = 0; polls < 1000 && !node.drained(now); polls++) {
      const at = node.pollTimeout(now);
      assert.ok(at !== null && at <= deadline, `polled at ${at}, deadline ${deadline}`);
      now = at;
      node.handleDatagram(now, '10.5.0.2', 2000, encodeRelayControl({ type: 'keepalive', sessionId: b.sessionId, seq: polls }));
      node.handleTimeout(now);
    }
    assert.equal(now, deadline, 'the drain ends at its deadline, not a tick later');
    assert.ok(node.drained(now));
    assert.equal(node.sessionCount, 0);
    assert.equal(node.stats.sessionsReaped, 1, 'the live session ended with the drain, not by reaping');
  });
});
