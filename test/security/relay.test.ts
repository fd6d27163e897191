// The relay node, sans-IO, in virtual time: tickets, cookies, session keys, sealed control, amplification,
// links by consent, replays, rate limits, reaping, draining, rebinding and pollTimeout. Every datagram the
// node sends is captured by address; clients are driven by hand (HopSession), message by message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayNode, type RelayNodeOptions } from '../../src/relay/node/index.js';
import { COOKIE_BYTES, DOWN_HEADER_BYTES, DirCode, RelayMsg, RefuseCode, UP_HEADER_BYTES, decodeRelayControl, decodeRoute, dirRegisterSigned, encodeRelayControl, encodeRoute, type RelayControl } from '../../src/relay/protocol.js';
import { derivePeerId } from '../../src/crypto/identity.js';
import { signTicket, ticketKeyId } from '../../src/relay/ticket.js';
import { seededCryptoProvider } from '../../src/testing/crypto.js';
import { HopSession } from '../../src/testing/relay-hop.js';
import { SeededRng } from '../../src/util/rng.js';
import { seedOr, withSeed } from '../support/sim.js';

const NOW_S = 1_800_000_000;
const RELAY_ADDR = { address: '127.0.0.1', port: 27100 };

interface Sent {
  data: Uint8Array;
  port: number;
  address: string;
}

type Provider = ReturnType<typeof seededCryptoProvider>;
type Key = ReturnType<Provider['signingKey']>;
type SessionOk = Extract<RelayControl, { type: 'sessionOk' }>;

/** A relay node whose output lands in `sent`, the clients driven against it (by `address:port`), and its ticket keys (one revoked). */
interface Fixture {
  node: RelayNode;
  sent: Sent[];
  provider: Provider;
  key: Key;
  revokedKey: Key;
  hops: Map<string, HopSession>;
}

function relay(seed: number, options: Partial<RelayNodeOptions> = {}): Fixture {
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
  return { node, sent, provider, key, revokedKey, hops: new Map() };
}

/** The last control message sent to `address:port`, opened with that client's keys (or decoded, if in the clear). */
function lastTo(f: Fixture, address: string, port: number): RelayControl | null {
  const hop = f.hops.get(`${address}:${port}`);
  for (let i = f.sent.length - 1; i >= 0; i--) {
    const s = f.sent[i] as Sent;
    if (s.address !== address || s.port !== port || s.data[0] === RelayMsg.DataDown) continue;
    if (s.data[0] === RelayMsg.SealedDown) return hop ? hop.open(s.data) : null;
    if (s.data[0] === RelayMsg.SessionOk) return null;
    return decodeRelayControl(s.data);
  }
  return null;
}

/** Pings from `address:port`, returns the cookie. */
function cookieFor(f: Fixture, now: number, address: string, port: number): Uint8Array {
  f.node.handleDatagram(now, address, port, encodeRelayControl({ type: 'ping', version: 2, nonce: new Uint8Array(8) }));
  const m = lastTo(f, address, port);
  assert.equal(m?.type, 'pong');
  return (m as Extract<RelayControl, { type: 'pong' }>).cookie;
}

/**
 * Opens a session from `address:port` with `ticket` (a new client there, with a fresh nonce and key); returns
 * the answer: a SESSION_OK the client opened with the relay's key, a REFUSED, or null (no answer).
 */
function open(f: Fixture, now: number, address: string, port: number, ticket: Uint8Array): RelayControl | null {
  const hop = new HopSession(f.provider, f.node.publicKey);
  f.hops.set(`${address}:${port}`, hop);
  const cookie = cookieFor(f, now, address, port);
  const before = f.sent.length;
  f.node.handleDatagram(now, address, port, hop.request(cookie, ticket));
  if (f.sent.length === before) return null;
  const last = f.sent[f.sent.length - 1] as Sent;
  if (last.data[0] !== RelayMsg.SessionOk) return decodeRelayControl(last.data);
  assert.ok(hop.accept(last.data), 'the SESSION_OK opens with the keys agreed with the relay');
  return { type: 'sessionOk', sessionId: hop.sessionId as Uint8Array, drainSeconds: 0, idleSeconds: 0, token: hop.token as Uint8Array };
}

/** Sends a control message, sealed by the client at `from`. */
function control(f: Fixture, now: number, from: [string, number], m: RelayControl, at: [string, number] = from): void {
  const hop = f.hops.get(`${from[0]}:${from[1]}`) as HopSession;
  f.node.handleDatagram(now, at[0], at[1], hop.seal(m));
}

const hopOf = (f: Fixture, at: [string, number]): HopSession => f.hops.get(`${at[0]}:${at[1]}`) as HopSession;

test('tickets: expired, not yet valid, over 24 h, unknown key, revoked key, a flipped signature bit, truncated, reused from a second address: all refused, no session allocated', () => {
  withSeed(seedOr(501), (seed) => {
    const f = relay(seed);
    const { node, provider, key, revokedKey } = f;
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
      const m = open(f, 1e9, '10.1.0.1', port++, ticket);
      assert.deepEqual(m && m.type === 'refused' ? m.code : m, RefuseCode.Ticket, `${what}: refused with the one ticket code`);
    }
    assert.equal(node.sessionCount, 0, 'no session allocated for any bad ticket');
    assert.deepEqual(node.stats.ticketRefusedBy, { malformed: 1, unknownKey: 1, revokedKey: 1, notYetValid: 1, expired: 1, tooLong: 1, badSignature: 1, reused: 0, quota: 0, missing: 1, revokedTicket: 0 });
    assert.equal(node.stats.signatureChecks, 1, 'only the ticket whose every cheap check passed cost a signature verification');
    // The good ticket opens a session; the same ticket from a second address is refused.
    assert.equal(open(f, 1e9, '10.1.0.2', 40000, good)?.type, 'sessionOk');
    assert.equal(node.sessionCount, 1);
    const reused = open(f, 1e9, '10.1.0.3', 40000, good);
    assert.equal(reused?.type, 'refused');
    assert.equal(node.sessionCount, 1, 'the reuse allocated nothing');
    assert.equal(node.stats.ticketRefusedBy.reused, 1);
  });
});

test('quota: a ticket for 2 sessions opens 2 and the third is refused', () => {
  withSeed(seedOr(502), (seed) => {
    const f = relay(seed);
    const { node, provider, key } = f;
    const t = signTicket(provider, key, { user: 'bob', issuedAt: NOW_S, expiresAt: NOW_S + 60, maxSessions: 2, maxKbps: 100 });
    assert.equal(open(f, 1e9, '10.2.0.1', 1000, t)?.type, 'sessionOk');
    assert.equal(open(f, 1e9, '10.2.0.1', 1000, t)?.type, 'sessionOk');
    const third = open(f, 1e9, '10.2.0.1', 1000, t);
    assert.deepEqual(third?.type === 'refused' && third.code, RefuseCode.Quota);
    assert.equal(node.sessionCount, 2);
  });
});

test('spoofed pings, session requests, link requests, data and garbage from 40,000 sources: 0 state, 0 signature checks, bytes out / bytes in <= 1.0', () => {
  withSeed(seedOr(503), (seed) => {
    const f = relay(seed);
    const { node, sent, provider, key } = f;
    const rng = new SeededRng(seed);
    const clientPublic = provider.generateKeyExchange().publicKey;
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
          d = encodeRelayControl({ type: 'ping', version: 2, nonce: new Uint8Array(8) });
          break;
        case 1: {
          const cookie = new Uint8Array(COOKIE_BYTES);
          for (let k = 0; k < cookie.length; k++) cookie[k] = rng.nextU32() & 0xff;
          d = encodeRelayControl({ type: 'sessionRequest', cookie, clientNonce: new Uint8Array(8), clientPublic, ticket });
          break;
        }
        case 2:
          // A sealed frame (a link request, say) naming a session that does not exist.
          d = new Uint8Array(1 + 8 + 8 + 60 + 16);
          d[0] = RelayMsg.Sealed;
          for (let k = 1; k < d.length; k++) d[k] = rng.nextU32() & 0xff;
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
    const f = relay(seed, { open: true });
    const { node } = f;
    const cookie = cookieFor(f, 1e9, '10.3.0.1', 5000);
    const hop = new HopSession(f.provider, node.publicKey);
    const req = (address: string, port: number, now: number): void => node.handleDatagram(now, address, port, hop.request(cookie));
    req('10.3.0.2', 5000, 1e9);
    req('10.3.0.1', 5001, 1e9);
    req('10.3.0.1', 5000, 1e9 + 11e6);
    assert.equal(node.sessionCount, 0);
    assert.equal(node.stats.cookieRefused, 3);
    req('10.3.0.1', 5000, 1e9 + 9e6);
    assert.equal(node.sessionCount, 1, 'the same cookie from its own address within 10 s opens a session');
  });
});

/** Two open-mode sessions at A and B; B permits A's peer id and A links to B's token. */
function linked(seed: number, options: Partial<RelayNodeOptions> = {}): { f: Fixture; node: RelayNode; sent: Sent[]; provider: Provider; a: SessionOk; b: SessionOk; linkA: number } {
  const f = relay(seed, { open: true, ...options });
  const a = open(f, 1e9, '10.4.0.1', 1111, new Uint8Array(0)) as SessionOk;
  const b = open(f, 1e9, '10.4.0.2', 2222, new Uint8Array(0)) as SessionOk;
  assert.equal(a.type, 'sessionOk');
  assert.equal(b.type, 'sessionOk');
  // The route token holds no client address, in any form.
  for (const s of [a, b]) {
    const route = encodeRoute({ version: 2, revision: 1, entries: [{ relay: RELAY_ADDR, publicKey: f.node.publicKey, token: s.token }] });
    assert.equal(decodeRoute(route).entries[0]?.relay.port, 27100);
    const raw = Buffer.from(route, 'base64url');
    for (const ip of [[10, 4, 0, 1], [10, 4, 0, 2]]) assert.equal(raw.indexOf(Buffer.from(ip)), -1, 'no client IP bytes in the route');
    assert.ok(!route.includes('10.4.0'), 'no client IP text in the route');
  }
  control(f, 1e9, B, { type: 'permit', reset: true, complete: true, peerIds: [hopOf(f, A).peerId] });
  control(f, 1e9, A, hopOf(f, A).linkRequest(7, b.token));
  const ok = lastTo(f, ...A);
  assert.equal(ok?.type, 'linkOk');
  return { f, node: f.node, sent: f.sent, provider: f.provider, a, b, linkA: (ok as Extract<RelayControl, { type: 'linkOk' }>).linkId };
}

const A: [string, number] = ['10.4.0.1', 1111];
const B: [string, number] = ['10.4.0.2', 2222];

/** A DATA_UP from the client at `from` on `linkId`, with its next sequence tag. */
function up(f: Fixture, from: [string, number], linkId: number, payload: Uint8Array): Uint8Array {
  return hopOf(f, from).dataUp(linkId, payload);
}

test('links: data goes to the linked session with a 3-byte hop header and the payload untouched; a second link request names the same link', () => {
  withSeed(seedOr(505), (seed) => {
    const { f, node, sent, a, b, linkA } = linked(seed);
    const payload = Uint8Array.from({ length: 100 }, (_, i) => i);
    node.handleDatagram(1e9 + 1, '10.4.0.1', 1111, up(f, A, linkA, payload));
    const out = sent[sent.length - 1] as Sent;
    assert.deepEqual([out.address, out.port], ['10.4.0.2', 2222]);
    assert.equal(out.data[0], RelayMsg.DataDown);
    assert.equal(out.data.length, DOWN_HEADER_BYTES + payload.length);
    assert.deepEqual(out.data.subarray(DOWN_HEADER_BYTES), payload);
    // B links to A's token: the same link, from B's side.
    control(f, 1e9 + 2, B, hopOf(f, B).linkRequest(9, a.token));
    const okB = lastTo(f, '10.4.0.2', 2222);
    assert.equal(okB?.type, 'linkOk');
    const linkB = (okB as Extract<RelayControl, { type: 'linkOk' }>).linkId;
    assert.equal(out.data[1]! * 256 + out.data[2]!, linkB, 'the down header names B\'s side of the same link');
    assert.equal(node.linkCount, 1);
    // A forged token and one's own token are refused.
    const forged = b.token.slice();
    forged[20] = (forged[20] as number) ^ 1;
    control(f, 1e9 + 3, A, hopOf(f, A).linkRequest(10, forged));
    assert.deepEqual(lastTo(f, '10.4.0.1', 1111), { type: 'linkFailed', requestId: 10, code: RefuseCode.BadRoute });
    control(f, 1e9 + 4, A, hopOf(f, A).linkRequest(11, a.token));
    assert.deepEqual(lastTo(f, '10.4.0.1', 1111), { type: 'linkFailed', requestId: 11, code: RefuseCode.BadRoute });
  });
});

test('rate limit: a session sending at 10x its cap gets about its cap forwarded', () => {
  withSeed(seedOr(506), (seed) => {
    const { f, node, sent, linkA } = linked(seed, { openKbps: 800 }); // 100,000 bytes/s
    const before = sent.length;
    const payload = new Uint8Array(1000);
    let now = 2e9;
    for (let i = 0; i < 2000; i++) {
      node.handleDatagram(now, '10.4.0.1', 1111, up(f, A, linkA, payload)); // 1,000 datagrams/s = 1 MB/s
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
    const { f, node } = linked(seed);
    control(f, 1e9 + 20e6, A, { type: 'keepalive', seq: 1 });
    node.handleTimeout(1e9 + 31e6);
    assert.equal(node.sessionCount, 1, 'the session that kept alive stays, the silent one is reaped');
    assert.equal(node.linkCount, 0);
    node.drain(1e9 + 32e6, 10);
    control(f, 1e9 + 33e6, A, { type: 'keepalive', seq: 2 });
    const ack = lastTo(f, '10.4.0.1', 1111);
    assert.equal(ack?.type === 'keepaliveAck' && ack.drainSeconds, 9);
    const refused = open(f, 1e9 + 33e6, '10.4.0.9', 9, new Uint8Array(0));
    assert.deepEqual(refused?.type === 'refused' && refused.code, RefuseCode.Draining);
    assert.equal(node.drained(1e9 + 40e6), false);
    node.handleTimeout(1e9 + 43e6);
    assert.equal(node.drained(1e9 + 43e6), true);
    assert.equal(node.sessionCount, 0);
  });
});

test('NAT rebinding: data from a new address is not forwarded; the relay challenges it with at most 3x its bytes and moves the session once it answers', () => {
  withSeed(seedOr(508), (seed) => {
    const { f, node, sent, provider, a, linkA } = linked(seed);
    const payload = new Uint8Array(60);
    const before = sent.length;
    let bytesFromNew = 0;
    for (let i = 0; i < 5; i++) {
      const d = up(f, A, linkA, payload);
      bytesFromNew += d.length;
      node.handleDatagram(3e9 + i * 100_000, '10.4.0.1', 5555, d);
    }
    const toNew = sent.slice(before).filter((s) => s.port === 5555);
    const toPeer = sent.slice(before).filter((s) => s.address === '10.4.0.2');
    assert.equal(toPeer.length, 0, 'nothing forwarded from the unvalidated address');
    assert.ok(toNew.length >= 1 && toNew.every((s) => s.data[0] === RelayMsg.SealedDown), 'the challenge is sealed: only the session\'s client can read it');
    assert.ok(toNew.reduce((n, s) => n + s.data.length, 0) <= 3 * bytesFromNew);
    const challenge = (hopOf(f, A).open((toNew[toNew.length - 1] as Sent).data) as Extract<RelayControl, { type: 'pathChallenge' }>).challenge;
    // An answer sealed with another session's keys moves nothing; the client's own (sealed with its keys) moves the session.
    const stranger = new HopSession(provider, node.publicKey);
    const cookie = cookieFor(f, 3e9, '10.4.0.7', 7777);
    node.handleDatagram(3e9, '10.4.0.7', 7777, stranger.request(cookie));
    assert.ok(stranger.accept(sent[sent.length - 1]?.data as Uint8Array));
    const forged = stranger.seal({ type: 'pathResponse', challenge });
    forged.set(a.sessionId, 1); // naming A's session, sealed with the stranger's keys
    node.handleDatagram(3e9 + 1e6, '10.4.0.1', 5555, forged);
    assert.equal(node.stats.rebinds, 0);
    control(f, 3e9 + 1e6, A, { type: 'pathResponse', challenge }, ['10.4.0.1', 5555]);
    assert.equal(node.stats.rebinds, 1);
    node.handleDatagram(3e9 + 2e6, '10.4.0.1', 5555, up(f, A, linkA, payload));
    assert.equal((sent[sent.length - 1] as Sent).address, '10.4.0.2', 'data from the new address is forwarded now');
    // The old address is no longer the session's.
    const n = sent.length;
    node.handleDatagram(3e9 + 3e6, '10.4.0.1', 1111, up(f, A, linkA, payload));
    assert.ok(sent.slice(n).every((s) => s.address !== '10.4.0.2'));
  });
});

test('directory: a peer id is registered only by its key holder, only with a route naming its own session, never with an older registration; lookups find it', () => {
  withSeed(seedOr(509), (seed) => {
    const { f, node, sent, provider, a, b } = linked(seed);
    const routeOf = (token: Uint8Array): string => encodeRoute({ version: 2, revision: 1, entries: [{ relay: RELAY_ADDR, publicKey: node.publicKey, token }] });
    const alice = provider.signingKey();
    const mallory = provider.signingKey();
    const aliceId = derivePeerId(provider, alice.publicKey);
    let requestId = 100;
    const register = (from: [string, number], key: typeof alice, route: string, opts: { publicKey?: Uint8Array; t?: number } = {}): number => {
      const t = opts.t ?? NOW_S;
      const publicKey = opts.publicKey ?? key.publicKey;
      const signature = provider.sign(key, dirRegisterSigned(publicKey, t, route));
      const id = ++requestId;
      control(f, 2e9, from, { type: 'dirRegister', requestId: id, unixSeconds: t, publicKey, route, signature });
      const r = lastTo(f, from[0], from[1]);
      assert.equal(r?.type, 'dirRegisterResult');
      assert.equal((r as Extract<RelayControl, { type: 'dirRegisterResult' }>).requestId, id);
      return (r as Extract<RelayControl, { type: 'dirRegisterResult' }>).code;
    };
    const lookup = (from: [string, number], peerId: bigint): Extract<RelayControl, { type: 'dirLookupResult' }> => {
      control(f, 2e9, from, { type: 'dirLookup', requestId: 7, peerId });
      return lastTo(f, from[0], from[1]) as Extract<RelayControl, { type: 'dirLookupResult' }>;
    };
    assert.equal(lookup(B, aliceId).code, DirCode.NotFound);
    // Alice registers her id from her session, with her route.
    assert.equal(register(A, alice, routeOf(a.token), { t: NOW_S - 10 }), DirCode.Ok);
    const found = lookup(B, aliceId);
    assert.deepEqual([found.code, found.peerId, found.route], [DirCode.Ok, aliceId, routeOf(a.token)]);
    // Mallory, holding a session, claims Alice's id: with Alice's public key but his own signature...
    const checks = node.stats.signatureChecks;
    assert.equal(register(B, mallory, routeOf(b.token), { publicKey: alice.publicKey }), DirCode.BadSignature);
    // ... with his own key (which derives another id: it registers his own id, never Alice's) ...
    assert.equal(register(B, mallory, routeOf(b.token)), DirCode.Ok);
    assert.equal(node.lookup(derivePeerId(provider, mallory.publicKey)), routeOf(b.token));
    // ... by replaying Alice's registration from his session (the route names Alice's session, not his) ...
    assert.equal(register(B, alice, routeOf(a.token)), DirCode.BadRoute);
    // ... or pointing Alice's id at his own session without her key: refused. An older registration is stale.
    assert.equal(register(A, alice, routeOf(a.token), { t: NOW_S - 20 }), DirCode.Stale);
    assert.equal(register(A, alice, routeOf(a.token), { t: NOW_S - 3600 }), DirCode.Stale);
    assert.equal(node.stats.signatureChecks - checks, 2, 'signatures are checked only after the cheap checks passed');
    assert.equal(lookup(B, aliceId).route, routeOf(a.token), 'Alice\'s entry is untouched');
    assert.deepEqual(node.stats.dirRefusedBy, { badSignature: 1, badRoute: 1, stale: 2, rateLimited: 0 });
    // Registrations are rate-limited per session; lookups too.
    let limited = 0;
    for (let i = 0; i < 10; i++) if (register(A, alice, routeOf(a.token)) === DirCode.RateLimited) limited++;
    assert.ok(limited >= 6, `${limited} of 10 back-to-back registrations limited`);
    for (let i = 0; i < 100; i++) lookup(B, aliceId);
    assert.ok(node.stats.dirLookupsLimited >= 40);
    // Lookups from an address that is not the session's get no answer; a reaped session leaves the directory.
    const n = sent.length;
    control(f, 2e9, B, { type: 'dirLookup', requestId: 8, peerId: aliceId }, ['10.9.9.9', 9999]);
    assert.ok(sent.slice(n).every((s) => s.data[0] !== RelayMsg.DirLookupResult));
    node.handleTimeout(2e9 + 31e6);
    assert.equal(node.lookup(aliceId), null);
    assert.equal(node.stats.dirEntries, 0);
  });
});

test('pollTimeout: finite while sessions exist; handleTimeout at pollTimeout() reaps an idle session at the first 250 ms tick after its 30 s; a drain is never polled past its deadline', () => {
  withSeed(seedOr(510), (seed) => {
    const f = relay(seed, { open: true });
    const { node } = f;
    assert.equal(node.pollTimeout(0), null, 'no session, no drain: no timer');
    const t0 = 1e9;
    assert.equal(open(f, t0, '10.5.0.1', 1000, new Uint8Array(0))?.type, 'sessionOk');
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
    // The reaped session's request stays retired for 11 s (so that no replay of it makes a second session with the
    // same keys); then nothing is left and no timer is armed.
    for (let polls = 0; polls < 100 && node.pollTimeout(now) !== null; polls++) {
      now = node.pollTimeout(now) as number;
      node.handleTimeout(now);
    }
    assert.equal(node.pollTimeout(now), null, 'the last session reaped (open mode: no ticket binding): no timer');
    assert.ok(now - reapedAt <= 11e6 + 250_000, `the timer stopped ${(now - reapedAt) / 1e6} s after the reap`);

    // A draining node that keeps a live session: every poll is at or before the deadline, and at the deadline it is drained.
    const t1 = 2e9;
    const b = open(f, t1, '10.5.0.2', 2000, new Uint8Array(0)) as Extract<RelayControl, { type: 'sessionOk' }>;
    assert.equal(b.type, 'sessionOk');
    const deadline = t1 + 10e6;
    node.drain(t1, 10);
    now = t1;
    for (let polls = 0; polls < 1000 && !node.drained(now); polls++) {
      const at = node.pollTimeout(now);
      assert.ok(at !== null && at <= deadline, `polled at ${at}, deadline ${deadline}`);
      now = at;
      control(f, now, ['10.5.0.2', 2000], { type: 'keepalive', seq: polls });
      node.handleTimeout(now);
    }
    assert.equal(now, deadline, 'the drain ends at its deadline, not a tick later');
    assert.ok(node.drained(now));
    assert.equal(node.sessionCount, 0);
    assert.equal(node.stats.sessionsReaped, 1, 'the live session ended with the drain, not by reaping');
  });
});

test('session keys: SESSION_OK carries no key; with every byte of a session seen on the wire, another address cannot move, close or speak for it', () => {
  withSeed(seedOr(511), (seed) => {
    const { f, node, sent, linkA } = linked(seed);
    // Everything A's client sent and received so far, plus traffic now: keepalives, data, a path challenge and its answer.
    const fromA: Uint8Array[] = [];
    const send = (d: Uint8Array, at: [string, number] = A): void => {
      if (at === A) fromA.push(d.slice());
      node.handleDatagram(5e9 + fromA.length, at[0], at[1], d);
    };
    for (let i = 0; i < 20; i++) send(hopOf(f, A).seal({ type: 'keepalive', seq: i + 1 }));
    for (let i = 0; i < 20; i++) send(up(f, A, linkA, new Uint8Array(50).fill(i)));
    send(hopOf(f, A).seal({ type: 'closeSession' }), ['10.4.0.1', 4444]); // A's own close, but from another port: not honoured
    assert.equal(node.sessionCount, 2, 'a close from another address is not honoured');
    const toA = sent.filter((s) => s.address === A[0] && s.port === A[1]).map((s) => s.data);
    // No 16 or 32 bytes of anything sent to A are a key of A's session: the relay never sends one.
    const keys = hopOf(f, A).keys;
    assert.ok(keys);
    // The attacker replays every datagram A ever sent, from its own address, and answers every challenge it gets by replaying too.
    const mallory: [string, number] = ['10.66.0.1', 6666];
    const before = sent.length;
    const rebindsBefore = node.stats.rebinds;
    for (const d of fromA) node.handleDatagram(6e9, mallory[0], mallory[1], d);
    for (const d of toA) node.handleDatagram(6e9, mallory[0], mallory[1], d);
    const toMallory = sent.slice(before).filter((s) => s.address === mallory[0]);
    for (const c of toMallory) node.handleDatagram(6e9 + 1, mallory[0], mallory[1], c.data);
    assert.equal(node.stats.rebinds, rebindsBefore, 'the session did not move');
    assert.ok(toMallory.every((s) => s.data[0] === RelayMsg.SealedDown), 'the attacker gets sealed challenges at most, never data');
    assert.equal(sent.slice(before).filter((s) => s.address === '10.4.0.2').length, 0, 'nothing replayed was forwarded to the peer');
    // A itself still works: its next keepalive is answered at its own address.
    control(f, 6e9 + 2, A, { type: 'keepalive', seq: 99 });
    assert.deepEqual(lastTo(f, ...A), { type: 'keepaliveAck', seq: 99, drainSeconds: 0, load: 0, observed: { address: A[0], port: A[1] } });
    console.log(`# seed ${seed}: ${fromA.length + toA.length} captured datagrams replayed from another address: ${node.stats.replayed} replays dropped, ${toMallory.length} sealed challenges to the attacker, 0 moves`);
  });
});

test('a relay that does not hold the key the client was given cannot open a session for it: the client refuses its SESSION_OK', () => {
  withSeed(seedOr(512), (seed) => {
    const f = relay(seed, { open: true });
    const impostorKey = f.provider.generateKeyExchange().publicKey;
    const hop = new HopSession(f.provider, impostorKey); // the client was told another relay key
    const cookie = cookieFor(f, 1e9, '10.7.0.1', 7000);
    f.node.handleDatagram(1e9, '10.7.0.1', 7000, hop.request(cookie));
    const answer = f.sent[f.sent.length - 1] as Sent;
    assert.equal(answer.data[0], RelayMsg.SessionOk);
    assert.equal(hop.accept(answer.data), false, 'the answer does not open with the keys agreed with the expected relay');
  });
});

test('replays: DATA_UP replayed 1 to 3 times (and again after 2,048 newer) is forwarded once; sealed control replayed is acted on once', () => {
  withSeed(seedOr(513), (seed) => {
    const { f, node, sent, linkA } = linked(seed);
    const rng = new SeededRng(seed);
    const recorded: Uint8Array[] = [];
    let now = 7e9;
    for (let i = 0; i < 3000; i++) {
      const d = up(f, A, linkA, Uint8Array.of(i >> 8, i & 0xff));
      recorded.push(d.slice());
      node.handleDatagram((now += 100), A[0], A[1], d);
    }
    const forwarded = (): number => sent.filter((s) => s.address === B[0] && s.data[0] === RelayMsg.DataDown).length;
    assert.equal(forwarded(), 3000);
    for (const d of recorded) for (let k = 1 + (rng.nextU32() % 3); k > 0; k--) node.handleDatagram((now += 10), A[0], A[1], d.slice());
    assert.equal(forwarded(), 3000, 'no replay forwarded');
    assert.ok(node.stats.replayed >= 3000);
    // A keepalive replayed gets one answer.
    const k = hopOf(f, A).seal({ type: 'keepalive', seq: 5 });
    const acks = (): number => sent.filter((s) => s.address === A[0] && s.port === A[1] && s.data[0] === RelayMsg.SealedDown).length;
    const n = acks();
    for (let i = 0; i < 3; i++) node.handleDatagram((now += 10), A[0], A[1], k.slice());
    assert.equal(acks() - n, 1);
  });
});

test('links by consent: a stranger holding the route is offered, never linked; 1,000 strangers cannot stop a permitted peer, and 0 unsolicited bytes reach the victim', () => {
  withSeed(seedOr(514), (seed) => {
    const f = relay(seed, { open: true });
    const { node, sent } = f;
    const V: [string, number] = ['10.8.0.1', 8000];
    const C: [string, number] = ['10.8.1.1', 8001];
    const v = open(f, 1e9, V[0], V[1], new Uint8Array(0)) as SessionOk;
    open(f, 1e9, C[0], C[1], new Uint8Array(0));
    // The victim permits one peer (C): the one it wants, as Discord's openPeer does.
    control(f, 1e9, V, { type: 'permit', reset: true, complete: true, peerIds: [hopOf(f, C).peerId] });
    // 1,000 strangers, each with a session of its own (one address each, 40 per /24), ask for a link to the victim's token.
    let now = 1e9;
    const strangers: [string, number][] = [];
    for (let i = 0; i < 1000; i++) {
      const at: [string, number] = [`10.9.${Math.floor(i / 40)}.${(i % 40) + 1}`, 9000];
      assert.equal(open(f, now, at[0], at[1], new Uint8Array(0))?.type, 'sessionOk', `stranger ${i} has a session`);
      strangers.push(at);
    }
    for (const [i, at] of strangers.entries()) control(f, (now += 100), at, hopOf(f, at).linkRequest(i + 1, v.token));
    const offersToV = sent.filter((s) => s.address === V[0] && s.data[0] === RelayMsg.SealedDown).map((s) => hopOf(f, V).open(s.data)).filter((m) => m?.type === 'linkOffer');
    assert.equal(offersToV.length, 16, 'at most 16 offers wait at the victim');
    assert.equal(node.stats.offersBusy, 1000 - 16, 'the rest are told BUSY');
    assert.equal(node.linkCount, 0, 'no stranger is linked');
    // The permitted peer links at once.
    control(f, (now += 100), C, hopOf(f, C).linkRequest(1, v.token));
    const ok = lastTo(f, ...C);
    assert.equal(ok?.type, 'linkOk', 'the permitted peer links through the crowd');
    // The victim refuses an offer: that stranger hears NOT_ACCEPTED.
    const first = offersToV[0] as Extract<RelayControl, { type: 'linkOffer' }>;
    control(f, (now += 100), V, { type: 'linkAnswer', offerId: first.offerId, peerId: first.peerId, accept: false });
    assert.equal(node.stats.offersRefused, 1);
    // Strangers push data at every link id they can name: nothing reaches the victim but C's.
    for (const at of strangers.slice(0, 100)) for (let link = 0; link < 4; link++) node.handleDatagram((now += 10), at[0], at[1], up(f, at, link, new Uint8Array(100)));
    const linkC = (ok as Extract<RelayControl, { type: 'linkOk' }>).linkId;
    node.handleDatagram((now += 10), C[0], C[1], up(f, C, linkC, new Uint8Array(100).fill(7)));
    const dataToV = sent.filter((s) => s.address === V[0] && s.data[0] === RelayMsg.DataDown);
    assert.equal(dataToV.length, 1, 'one datagram, from the permitted peer');
    assert.equal(dataToV.reduce((n, s) => n + s.data.length - DOWN_HEADER_BYTES, 0), 100, 'unsolicited bytes delivered to the victim: 0');
    console.log(`# seed ${seed}: 1000 strangers: ${offersToV.length} offers, ${node.stats.offersBusy} BUSY, ${node.linkCount} link (the permitted peer's), ${node.stats.noLink} stranger datagrams dropped`);
  });
});

test('route token rotation: after ROTATE_TOKEN the old token names nothing (BAD_ROUTE), the new one links, existing links stay', () => {
  withSeed(seedOr(515), (seed) => {
    const { f, node, b } = linked(seed);
    const C: [string, number] = ['10.4.0.3', 3333];
    open(f, 1e9, C[0], C[1], new Uint8Array(0));
    control(f, 1e9, B, { type: 'permit', reset: false, complete: true, peerIds: [hopOf(f, C).peerId] });
    control(f, 1e9, B, { type: 'rotateToken', requestId: 5 });
    const rotated = lastTo(f, ...B);
    assert.equal(rotated?.type, 'tokenRotated');
    const fresh = (rotated as Extract<RelayControl, { type: 'tokenRotated' }>).token;
    control(f, 1e9, C, hopOf(f, C).linkRequest(1, b.token));
    assert.deepEqual(lastTo(f, ...C), { type: 'linkFailed', requestId: 1, code: RefuseCode.BadRoute }, 'the old token is void');
    control(f, 1e9, C, hopOf(f, C).linkRequest(2, fresh));
    assert.equal(lastTo(f, ...C)?.type, 'linkOk', 'the new token links');
    assert.equal(node.linkCount, 2, 'the link made before the rotation stays');
  });
});

test('open mode: at most 8 sessions per address and 64 per /24 (or /64): the next is refused with QUOTA or ADDRESS_QUOTA', () => {
  withSeed(seedOr(516), (seed) => {
    const f = relay(seed, { open: true });
    const codes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const m = open(f, 1e9, '10.10.0.1', 1000 + i, new Uint8Array(0));
      if (m?.type === 'refused') codes.push(m.code);
    }
    assert.deepEqual(codes, [RefuseCode.Quota, RefuseCode.Quota], 'eight from one address, then QUOTA');
    let opened = 8;
    for (let host = 2; host < 40; host++) for (let k = 0; k < 2; k++) if (open(f, 1e9, `10.10.0.${host}`, 2000 + k, new Uint8Array(0))?.type === 'sessionOk') opened++;
    assert.equal(opened, 64, '64 in one /24');
    assert.equal(f.node.stats.openRefusedBy.network, 76 - 56);
    assert.equal(open(f, 1e9, '10.10.1.1', 1, new Uint8Array(0))?.type, 'sessionOk', 'another /24 is not affected');
    let v6 = 0;
    for (let i = 0; i < 70; i++) if (open(f, 1e9, `2001:db8:1:2::${(i + 1).toString(16)}`, 5, new Uint8Array(0))?.type === 'sessionOk') v6++;
    assert.equal(v6, 64, '64 in one /64');
    assert.equal(open(f, 1e9, '2001:db8:1:3::1', 5, new Uint8Array(0))?.type, 'sessionOk', 'another /64 is not affected');
  });
});

test('guessing: 1,000,000 DATA_UP with random session ids and 20,000 link requests with forged or mutated tokens: 0 hits, replies within the rate limit', () => {
  withSeed(seedOr(517), (seed) => {
    const { f, node, sent, b } = linked(seed);
    const rng = new SeededRng(seed);
    const before = sent.length;
    const forwardedBefore = node.stats.forwardedPackets;
    const d = new Uint8Array(UP_HEADER_BYTES + 20);
    d[0] = RelayMsg.DataUp;
    let now = 8e9;
    for (let i = 0; i < 1_000_000; i++) {
      for (let k = 1; k < UP_HEADER_BYTES; k++) d[k] = rng.nextU32() & 0xff;
      node.handleDatagram((now += 5), '10.12.0.1', 1200 + (i & 0xff), d); // 200,000 a second for 5 s
    }
    assert.equal(node.stats.forwardedPackets, forwardedBefore, 'no guess named a live session');
    const replies = sent.length - before;
    assert.ok(replies <= 4 * 5 + 4, `${replies} NO_SESSION replies in 5 s: at most 4 a second`);
    // Tokens: random, and B's with one bit flipped, from A's session (sealed, so they reach the token check).
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const token = i % 2 === 0 ? Uint8Array.from({ length: 45 }, () => rng.nextU32() & 0xff) : b.token.slice();
      if (i % 2 === 1) {
        const at = rng.nextU32() % token.length;
        token[at] = (token[at] as number) ^ (1 << (rng.nextU32() % 8));
      }
      control(f, (now += 50), A, { type: 'linkRequest', requestId: (i % 65535) + 1, token, peerId: 1n, publicKey: new Uint8Array(32), proof: new Uint8Array(64) });
      const m = lastTo(f, ...A);
      if (m?.type === 'linkOk') accepted++;
    }
    assert.equal(accepted, 0, 'no forged or mutated token linked');
    console.log(`# seed ${seed}: 10^6 session id guesses: 0 hits, ${replies} replies; 20,000 forged tokens: 0 links`);
  });
});

test('consent in flight: a permit set sealed before an answer and overtaken by it on the way leaves the answered link; a newer set without the peer cuts it', () => {
  withSeed(seedOr(519), (seed) => {
    const { f, node, b } = linked(seed);
    const permits = (ids: bigint[]): RelayControl => ({ type: 'permit', reset: true, complete: true, peerIds: ids });
    const before = node.linkCount;
    const offerFrom = (at: [string, number], requestId: number): Extract<RelayControl, { type: 'linkOffer' }> => {
      open(f, 1e9, at[0], at[1], new Uint8Array(0));
      control(f, 1e9, at, hopOf(f, at).linkRequest(requestId, b.token));
      const offer = lastTo(f, ...B) as Extract<RelayControl, { type: 'linkOffer' }>;
      assert.equal(offer.type, 'linkOffer');
      return offer;
    };
    const S1: [string, number] = ['10.4.2.1', 4200];
    const S2: [string, number] = ['10.4.2.2', 4201];
    const o1 = offerFrom(S1, 1);
    // B seals a permit set naming A alone (its link stays), then its answer to S1's offer; they arrive the other way round.
    const aId = hopOf(f, A).peerId;
    const older = hopOf(f, B).seal(permits([aId]));
    const answer = hopOf(f, B).seal({ type: 'linkAnswer', offerId: o1.offerId, peerId: o1.peerId, accept: true });
    node.handleDatagram(1e9, B[0], B[1], answer);
    assert.equal(node.linkCount, before + 1, 'the answer made the link');
    node.handleDatagram(1e9, B[0], B[1], older);
    assert.equal(node.linkCount, before + 1, 'the older set, overtaken, withdrew nothing');
    // The same with a set sealed after the answer: that is B withdrawing, and the link goes.
    const o2 = offerFrom(S2, 2);
    control(f, 1e9, B, { type: 'linkAnswer', offerId: o2.offerId, peerId: o2.peerId, accept: true });
    assert.equal(node.linkCount, before + 2);
    const cut = node.stats.linksCut;
    control(f, 1e9, B, permits([aId, o1.peerId]));
    assert.equal(node.linkCount, before + 1, 'a newer set without S2 cut its link, and kept S1 it names');
    assert.equal(node.stats.linksCut, cut + 1);
  });
});

test("review fixes: an answer names its offer's peer; rebinding respects the open caps; a retired request makes no second session; consent withdrawn cuts the link; UNLINK cuts; raced copies neither displace a rebinding nor suppress the original", () => {
  withSeed(seedOr(518), (seed) => {
    const { f, node, sent, a, b, linkA } = linked(seed);
    // 1. LINK_ANSWER for an offer id with another peer id than the offer's changes nothing.
    const S: [string, number] = ['10.4.1.1', 4100];
    open(f, 1e9, S[0], S[1], new Uint8Array(0));
    control(f, 1e9, S, hopOf(f, S).linkRequest(1, b.token));
    const offer = lastTo(f, ...B) as Extract<RelayControl, { type: 'linkOffer' }>;
    assert.equal(offer.type, 'linkOffer');
    control(f, 1e9, B, { type: 'linkAnswer', offerId: offer.offerId, peerId: offer.peerId + 1n, accept: true });
    assert.equal(node.linkCount, 1, 'an answer naming another peer is ignored');
    // 2. Consent withdrawn: B's complete permit set without A cuts the link B did not ask for; A's data stops there.
    control(f, 1e9, B, { type: 'permit', reset: true, complete: true, peerIds: [] });
    assert.equal(node.linkCount, 0);
    assert.equal(node.stats.linksCut, 1);
    const n = sent.length;
    node.handleDatagram(1e9 + 1, A[0], A[1], up(f, A, linkA, new Uint8Array(10)));
    assert.equal(sent.slice(n).filter((x) => x.address === B[0]).length, 0, 'nothing reaches B after it withdrew');
    // 3. UNLINK: a link the asker made is cut by the asker.
    control(f, 1e9, B, { type: 'permit', reset: true, complete: true, peerIds: [hopOf(f, A).peerId] });
    control(f, 1e9, A, hopOf(f, A).linkRequest(8, b.token));
    const ok = lastTo(f, ...A) as Extract<RelayControl, { type: 'linkOk' }>;
    assert.equal(ok.type, 'linkOk');
    control(f, 1e9, A, { type: 'unlink', linkId: ok.linkId });
    assert.equal(node.linkCount, 0, 'UNLINK cut it');
    // 4. Raced copies: a sealed keepalive of A sent first from another address is not acted on, and A's original still is.
    const k = hopOf(f, A).seal({ type: 'keepalive', seq: 42 });
    node.handleDatagram(2e9, '10.66.6.6', 6666, k.slice());
    node.handleDatagram(2e9, A[0], A[1], k);
    assert.deepEqual(lastTo(f, ...A), { type: 'keepaliveAck', seq: 42, drainSeconds: 0, load: 0, observed: { address: A[0], port: A[1] } }, 'the original is answered');
    // 5. Garbage naming A's session from an attacker's address does not displace A's rebinding to a new port.
    for (let i = 0; i < 20; i++) {
      const junk = up(f, A, linkA, new Uint8Array(20));
      junk[20] = (junk[20] as number) ^ 0xff; // a broken tag
      node.handleDatagram(2e9 + 1000 + i, '10.66.6.6', 6667, junk);
    }
    const NEW: [string, number] = [A[0], 5151];
    const first = up(f, A, linkA, new Uint8Array(20));
    node.handleDatagram(2e9 + 100_000, NEW[0], NEW[1], first);
    // The attacker copies that datagram (all it can do: it has no key) and sends it from 20 addresses.
    for (let i = 0; i < 20; i++) node.handleDatagram(2e9 + 100_100 + i, '10.66.6.6', 6667 + i, first.slice());
    const challenge = sent.filter((x) => x.address === NEW[0] && x.port === NEW[1]).map((x) => hopOf(f, A).open(x.data)).find((m) => m?.type === 'pathChallenge') as Extract<RelayControl, { type: 'pathChallenge' }>;
    assert.ok(challenge, "A's new port was challenged");
    const rebinds = node.stats.rebinds;
    control(f, 2e9 + 200_000, A, { type: 'pathResponse', challenge: challenge.challenge }, NEW);
    assert.equal(node.stats.rebinds, rebinds + 1, "A moved to its new port despite the attacker's datagrams");
    void a;
  });
  withSeed(seedOr(519), (seed) => {
    // 6. Rebinding cannot carry a session past the open-mode cap of its new address; 7. a retired request makes no second session.
    const f = relay(seed, { open: true });
    const { node, sent } = f;
    for (let i = 0; i < 8; i++) assert.equal(open(f, 1e9, '10.20.0.1', 100 + i, new Uint8Array(0))?.type, 'sessionOk');
    const M: [string, number] = ['10.20.0.2', 200];
    assert.equal(open(f, 1e9, M[0], M[1], new Uint8Array(0))?.type, 'sessionOk');
    control(f, 1e9, M, { type: 'keepalive', seq: 1 }, ['10.20.0.1', 999]);
    const ch = hopOf(f, M).open((sent[sent.length - 1] as Sent).data) as Extract<RelayControl, { type: 'pathChallenge' }>;
    assert.equal(ch?.type, 'pathChallenge');
    const rebinds = node.stats.rebinds;
    control(f, 1e9, M, { type: 'pathResponse', challenge: ch.challenge }, ['10.20.0.1', 999]);
    assert.equal(node.stats.rebinds, rebinds, 'the move to a full address is refused');
    assert.equal(node.stats.openRefusedBy.address, 1);
    const R: [string, number] = ['10.20.1.1', 300];
    const hop = new HopSession(f.provider, node.publicKey);
    f.hops.set(`${R[0]}:${R[1]}`, hop);
    const cookie = cookieFor(f, 2e9, R[0], R[1]);
    const req = hop.request(cookie);
    node.handleDatagram(2e9, R[0], R[1], req);
    assert.ok(hop.accept((sent[sent.length - 1] as Sent).data));
    control(f, 2e9, R, { type: 'closeSession' });
    const count = node.sessionCount;
    node.handleDatagram(2e9 + 1e6, R[0], R[1], req);
    assert.equal(node.sessionCount, count, "the closed session's request, replayed, makes none");
  });
});
