import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, SendFlags, type EndpointEvent } from '../../src/core/types.js';
import { SimNetwork } from '../../src/testing/sim-network.js';
import { DEFAULT_CONFIG } from '../../src/core/config.js';
import { seededCryptoProvider, seededHandshake } from '../../src/testing/crypto.js';
import { SecureHandshake, decodeHandshakeMessage, encodeCryptInfo, encodeMessage, type SecureHandshakeOptions } from '../../src/crypto/handshake.js';
import { SodiumCryptoProvider } from '../../src/crypto/sodium-provider.js';
import type { SigningKey } from '../../src/crypto/provider.js';
import type { HandshakeLayer } from '../../src/crypto/types.js';
import { concat } from '../../src/util/bytes.js';
import { decodeControl, encodeControl } from '../../src/wire/control.js';
import { signCertificate, unsignedCertificate } from '../../src/crypto/certificate.js';
import { derivePeerId, parseIdentity } from '../../src/crypto/identity.js';
import { ControlType } from '../../src/wire/control.js';
import { NetlaneError } from '../../src/util/errors.js';
import { SeededRng } from '../../src/util/rng.js';
import { CLIENT_ADDR, SERVER_ADDR, connectedPair, drain, seedOr, withSeed } from '../support/sim.js';

const NOW_S = 1_800_000_000;
const MARKER = new TextEncoder().encode('LOOT:legendary-sword-of-testing');

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

interface Attempt {
  sim: SimNetwork;
  client: Endpoint;
  server: Endpoint;
  c: number;
  serverEvents: EndpointEvent[];
  clientEvents: EndpointEvent[];
}

/** Runs one connection attempt with the given handshake options and configs; the server accepts everything. */
function attempt(seed: number, client: Partial<SecureHandshakeOptions>, server: Partial<SecureHandshakeOptions>, clientConfig: Partial<Record<string, number>> = {}, serverConfig: Partial<Record<string, number>> = {}, setup?: (sim: SimNetwork) => void, serverLayer?: HandshakeLayer): Attempt {
  const sim = new SimNetwork(seed, { latencyUs: 10_000 });
  const rng = new SeededRng(seed);
  const sh = sim.addHost(SERVER_ADDR, new Endpoint({ rng: rng.fork(), listen: true, config: serverConfig, handshake: serverLayer ?? seededHandshake(seed + 1, server) }));
  const ch = sim.addHost(CLIENT_ADDR, new Endpoint({ rng: rng.fork(), config: clientConfig, handshake: seededHandshake(seed + 2, client) }));
  sh.onEvent = (e) => {
    if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) sh.endpoint.accept(sim.now, e.connection);
  };
  setup?.(sim);
  const c = ch.endpoint.connect(sim.now, SERVER_ADDR);
  sim.runUntil(() => {
    const st = ch.endpoint.state(c);
    return st === ConnectionState.Connected || st === ConnectionState.ClosedByPeer || st === ConnectionState.ProblemDetectedLocally;
  }, 15_000_000);
  return { sim, client: ch.endpoint, server: sh.endpoint, c, serverEvents: sh.events, clientEvents: ch.events };
}

function endedWith(a: Attempt, reason: number, debug: RegExp): void {
  const st = a.client.state(a.c);
  assert.ok(st === ConnectionState.ClosedByPeer || st === ConnectionState.ProblemDetectedLocally, `client state ${st}`);
  const info = a.client.endInfo(a.c);
  assert.equal(info?.reason, reason, `end ${info?.reason} ${info?.debug}`);
  assert.match(info?.debug ?? '', debug);
  assert.equal(a.server.connectionCount, 0, 'the server keeps no connection for a refused handshake');
}

test('packets are encrypted with AES-256-GCM by default: the payload never appears on the wire', () => {
  withSeed(seedOr(301), (seed) => {
    const p = connectedPair(seed, { latencyUs: 5000 });
    let seen = 0;
    let leaked = 0;
    p.sim.intercept = (_f, _t, data) => {
      seen++;
      if (contains(data, MARKER)) leaked++;
      return data;
    };
    for (let i = 0; i < 50; i++) p.client.endpoint.send(p.sim.now, p.c, MARKER, i % 2 ? SendFlags.Reliable : SendFlags.Unreliable);
    p.sim.runFor(500_000);
    const got = drain(p.server, p.s);
    assert.ok(got.length >= 25 && seen > 0);
    assert.equal(leaked, 0);
    for (const [ep, h] of [[p.client.endpoint, p.c], [p.server.endpoint, p.s]] as const) {
      const peer = ep.peerInfo(h);
      assert.equal(peer?.cipher, 'AES-256-GCM');
      assert.equal(peer?.authenticated, false, 'no authority configured: Unauthenticated');
      assert.equal(peer?.flags, 1, 'connection info flags: Unauthenticated');
    }
    assert.match(p.server.endpoint.peerInfo(p.s)?.identity ?? '', /^id:\d+$/);
  });
});

test('ChaCha20-Poly1305 by configuration; Unencrypted only when both sides ask for it', () => {
  withSeed(seedOr(302), (seed) => {
    const cc = attempt(seed, {}, {}, { Cipher: 3 }, { Cipher: 3 });
    assert.equal(cc.client.peerInfo(cc.c)?.cipher, 'ChaCha20-Poly1305');
    // The client allows plaintext, the server does not: encrypted.
    const one = attempt(seed, {}, {}, { Unencrypted: 2 }, {});
    assert.equal(one.client.peerInfo(one.c)?.cipher, 'AES-256-GCM');
    // The client requires plaintext, the server refuses it: no connection (4002).
    endedWith(attempt(seed, {}, {}, { Unencrypted: 3 }, {}), 4002, /no cipher in common/);
    // Both ask: plaintext, and the payload is visible.
    const both = attempt(seed, {}, {}, { Unencrypted: 3 }, { Unencrypted: 1 });
    assert.equal(both.client.state(both.c), ConnectionState.Connected);
    assert.equal(both.client.peerInfo(both.c)?.cipher, 'none');
    assert.equal(both.client.peerInfo(both.c)?.flags, 1 | 2, 'Unauthenticated | Unencrypted');
    let plain = 0;
    both.sim.intercept = (_f, _t, data) => {
      if (contains(data, MARKER)) plain++;
      return data;
    };
    both.client.send(both.sim.now, both.c, MARKER, SendFlags.Reliable);
    both.sim.runFor(200_000);
    assert.equal(plain, 1);
  });
});

test('certificates: CA-signed peers are authenticated; expired, untrusted, forged or missing certificates are refused with 4003', () => {
  withSeed(seedOr(303), (seed) => {
    const provider = seededCryptoProvider(seed);
    const ca = provider.signingKey();
    const rogue = provider.signingKey();
    const ck = provider.signingKey();
    const sk = provider.signingKey();
    const cert = (key: typeof ck, id: string, signer = ca, expiresAt = NOW_S + 86_400): ReturnType<typeof signCertificate> => signCertificate(provider, signer, { identity: parseIdentity(id), publicKey: key.publicKey, createdAt: NOW_S - 60, expiresAt });
    const strict = { IP_AllowWithoutAuth: 0 };
    const server = { key: sk, certificate: cert(sk, 'str:server'), trustedAuthorities: [ca] };
    const ok = attempt(seed, { key: ck, certificate: cert(ck, 'str:alice'), trustedAuthorities: [ca] }, server, strict, strict);
    assert.equal(ok.client.state(ok.c), ConnectionState.Connected);
    assert.equal(ok.client.peerInfo(ok.c)?.identity, 'str:server');
    assert.equal(ok.client.peerInfo(ok.c)?.authenticated, true);
    assert.equal(ok.client.peerInfo(ok.c)?.flags, 0);
    const sHandle = ok.serverEvents.find((e) => e.type === 'connectionStatusChanged')?.connection ?? 0;
    assert.equal(ok.server.peerInfo(sHandle)?.identity, 'str:alice');
    assert.equal(ok.server.peerInfo(sHandle)?.authenticated, true);

    endedWith(attempt(seed, { key: ck, certificate: cert(ck, 'str:alice', ca, NOW_S - 1), trustedAuthorities: [ca] }, server, strict, strict), 4003, /expired/);
    endedWith(attempt(seed, { key: ck, certificate: cert(ck, 'str:alice', rogue), trustedAuthorities: [ca] }, server, strict, strict), 4003, /unknown authority/);
    const forged = cert(ck, 'str:alice').encoded.slice();
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
    endedWith(attempt(seed, { key: ck, certificate: forged, trustedAuthorities: [ca] }, server, strict, strict), 4003, /does not verify/);
    endedWith(attempt(seed, { key: ck, trustedAuthorities: [ca] }, server, strict, strict), 4003, /no certificate signed by a trusted authority/);
    // The client checks the server too.
    const badServer = attempt(seed, { key: ck, certificate: cert(ck, 'str:alice'), trustedAuthorities: [rogue] }, server, strict, strict);
    assert.equal(badServer.client.state(badServer.c), ConnectionState.ProblemDetectedLocally);
    assert.equal(badServer.client.endInfo(badServer.c)?.reason, 4003);
  });
});

test('nobody can claim a peer id or a certificate without its key', () => {
  withSeed(seedOr(304), (seed) => {
    const provider = seededCryptoProvider(seed);
    const victim = provider.signingKey();
    const mallory = provider.signingKey();
    const victimId = derivePeerId(provider, victim.publicKey);
    // An unsigned certificate claiming the victim's id with Mallory's key.
    const claim = unsignedCertificate({ identity: { kind: 'id', id: victimId }, publicKey: mallory.publicKey, createdAt: NOW_S, expiresAt: 0 });
    assert.throws(() => new SecureHandshake({ provider, key: mallory, certificate: unsignedCertificate({ identity: { kind: 'id', id: victimId }, publicKey: victim.publicKey, createdAt: NOW_S, expiresAt: 0 }) }), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT');
    endedWith(attempt(seed, { key: mallory, certificate: claim }, {}), 4003, /is not the id of the presented key/);
    // The victim's own certificate, presented by Mallory: her signature does not match its key (4002).
    const victimCert = unsignedCertificate({ identity: { kind: 'id', id: victimId }, publicKey: victim.publicKey, createdAt: NOW_S, expiresAt: 0 });
    let spliced = 0;
    const stolen = attempt(seed, { key: mallory }, {}, {}, {}, (sim) => {
      // Swap Mallory's certificate for the victim's inside her CONNECT_REQUEST.
      const mine = new SecureHandshake({ provider, key: mallory, unixSeconds: () => NOW_S }).certificate.encoded;
      sim.intercept = (_f, _t, data) => {
        if (data[0] !== ControlType.ConnectRequest) return data;
        const at = Buffer.from(data).indexOf(Buffer.from(mine.subarray(0, 20)));
        if (at < 0) return data;
        const out = data.slice();
        out.set(victimCert.encoded.subarray(0, mine.length), at);
        spliced++;
        return out;
      };
    });
    assert.ok(spliced > 0, 'the certificate was swapped');
    endedWith(stolen, 4002, /signature does not verify/);
    // The honest victim gets in with the derived id, unauthenticated but bound to the key.
    const honest = attempt(seed, { key: victim }, {});
    assert.equal(honest.client.state(honest.c), ConnectionState.Connected);
  });
});

test('version negotiation: an old client is refused with 4006; a downgraded HELLO is detected with 4006', () => {
  withSeed(seedOr(305), (seed) => {
    endedWith(attempt(seed, { versions: { min: 1, max: 1 } }, {}), 4006, /older than/);
    const both = { versions: { min: 2, max: 3 } };
    const up = attempt(seed, both, both);
    assert.equal(up.client.state(up.c), ConnectionState.Connected);
    // A man in the middle rewrites the HELLO to claim version 2: both sides speak 3, so the signed crypt info gives it away.
    const down = attempt(seed, both, both, {}, {}, (sim) => {
      sim.intercept = (_f, _t, data) => {
        if (data[0] !== ControlType.Hello) return data;
        const out = data.slice();
        new DataView(out.buffer).setUint32(1, 2);
        return out;
      };
    });
    endedWith(down, 4006, /downgrade/);
  });
});

test('a tampered handshake fails: a flipped bit in CONNECT_REQUEST or CONNECT_OK never yields a connection', () => {
  withSeed(seedOr(306), (seed) => {
    for (const type of [ControlType.ConnectRequest, ControlType.ConnectOk]) {
      const rng = new SeededRng(seed + type);
      let flipped = 0;
      for (let k = 0; k < 20; k++) {
        const a = attempt(seed + k, {}, {}, { TimeoutInitial: 3000 }, {}, (sim) => {
          sim.intercept = (_f, _t, data) => {
            if (data[0] !== type) return data;
            const out = data.slice();
            const bit = rng.int(9 * 8, out.length * 8 - 1); // past the type and connection ids
            out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
            flipped++;
            return out;
          };
        });
        assert.notEqual(a.client.state(a.c), ConnectionState.Connected, `type ${type} attempt ${k}`);
      }
      assert.ok(flipped >= 20, `only ${flipped} packets of type ${type} were altered`);
    }
  });
});

test('the client retries HELLO every 500 ms until TimeoutInitial; a repeated CONNECT_REQUEST gets the same answer, never a second connection', () => {
  withSeed(seedOr(307), (seed) => {
    // A server that never answers: 20 HELLOs in 10 s, then 5003.
    const sim = new SimNetwork(seed, { latencyUs: 10_000 });
    const ch = sim.addHost(CLIENT_ADDR, new Endpoint({ rng: new SeededRng(seed), handshake: seededHandshake(seed) }));
    const silent = sim.addHost(SERVER_ADDR, new Endpoint({ rng: new SeededRng(seed + 1), handshake: seededHandshake(seed + 1) }));
    void silent;
    let hellos = 0;
    sim.intercept = (_f, _t, data) => {
      if (data[0] === ControlType.Hello) hellos++;
      return null;
    };
    const c = ch.endpoint.connect(sim.now, SERVER_ADDR);
    sim.runFor(12_000_000);
    assert.ok(hellos >= 19 && hellos <= 21, `${hellos} hellos`);
    assert.equal(ch.endpoint.endInfo(c)?.reason, 5003);

    // Drop the first two CONNECT_OKs: the client repeats its request and gets byte-identical answers.
    const oks: Uint8Array[] = [];
    const a = attempt(seed, {}, {}, {}, {}, (s) => {
      s.intercept = (_f, _t, data) => {
        if (data[0] !== ControlType.ConnectOk) return data;
        oks.push(data.slice());
        return oks.length <= 2 ? null : data;
      };
    });
    assert.equal(a.client.state(a.c), ConnectionState.Connected);
    assert.equal(oks.length, 3);
    assert.deepEqual(oks[1], oks[0]);
    assert.deepEqual(oks[2], oks[0]);
    assert.equal(a.server.connectionCount, 1);
  });
});

test('IP_AllowWithoutAuth = 1 allows an unsigned peer with a warning event; Unauthenticated either way', () => {
  withSeed(seedOr(308), (seed) => {
    const a = attempt(seed, {}, {}, { IP_AllowWithoutAuth: 1 }, { IP_AllowWithoutAuth: 1 });
    assert.equal(a.client.state(a.c), ConnectionState.Connected);
    const warnings = a.serverEvents.filter((e) => e.type === 'warning');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.type === 'warning' ? warnings[0].message : '', /not authenticated/);
    assert.equal(a.clientEvents.filter((e) => e.type === 'warning').length, 1);
  });
});

// ------------------------------------------------------------------ cipher negotiation and downgrade

const NO_SODIUM = SodiumCryptoProvider.load() ? false : 'sodium-native is not installed (an optional dependency: npm ci --omit=optional leaves it out), so no side can prefer ChaCha20-Poly1305 here';
if (NO_SODIUM) console.log(`# skipping the sodium-native pairs: ${NO_SODIUM}`);
/** Handshake options of a side on the fast provider (sodium-native, which prefers ChaCha20-Poly1305), seeded. */
const fast = (seed: number): Partial<SecureHandshakeOptions> => ({ provider: seededCryptoProvider(seed, { sodium: true }) });

/** Both ends' negotiated cipher names (client's view, server's view). */
function ciphers(a: Attempt): [string | undefined, string | undefined] {
  assert.equal(a.client.state(a.c), ConnectionState.Connected, `client state ${a.client.state(a.c)} ${a.client.endInfo(a.c)?.debug}`);
  const s = a.serverEvents.find((e) => e.type === 'connectionStatusChanged')?.connection ?? 0;
  return [a.client.peerInfo(a.c)?.cipher, a.server.peerInfo(s)?.cipher];
}

const AES = 'AES-256-GCM';
const CHACHA = 'ChaCha20-Poly1305';

/** The client refused the server's CONNECT_OK (the server had already set up its side). */
function clientRefused(a: Attempt, reason: number, debug: RegExp): void {
  assert.equal(a.client.state(a.c), ConnectionState.ProblemDetectedLocally);
  const info = a.client.endInfo(a.c);
  assert.equal(info?.reason, reason, `end ${info?.reason} ${info?.debug}`);
  assert.match(info?.debug ?? '', debug);
}

test('negotiation, fast and fallback providers: both fast give ChaCha20-Poly1305, one fast gives AES-256-GCM, an explicit Cipher is honoured', { skip: NO_SODIUM }, () => {
  withSeed(seedOr(309), (seed) => {
    assert.deepEqual(ciphers(attempt(seed, fast(seed + 2), fast(seed + 1))), [CHACHA, CHACHA], 'both fast');
    assert.deepEqual(ciphers(attempt(seed, fast(seed + 2), {})), [AES, AES], 'fast client, fallback server');
    assert.deepEqual(ciphers(attempt(seed, {}, fast(seed + 1))), [AES, AES], 'fallback client, fast server');
    assert.deepEqual(ciphers(attempt(seed, fast(seed + 2), fast(seed + 1), { Cipher: 2 }, {})), [AES, AES], 'both fast, the client asks for AES');
    assert.deepEqual(ciphers(attempt(seed, fast(seed + 2), fast(seed + 1), {}, { Cipher: 2 })), [AES, AES], 'both fast, the server asks for AES');
    assert.deepEqual(ciphers(attempt(seed, fast(seed + 2), {}, {}, { Cipher: 3 })), [CHACHA, CHACHA], 'fallback server asks for ChaCha20');
    endedWith(attempt(seed, fast(seed + 2), fast(seed + 1), { Cipher: 2 }, { Cipher: 3 }), 4002, /no cipher in common/);
  });
});

test('negotiation on node:crypto alone: AES-256-GCM by default; an explicit Cipher on either side wins; explicit and different is refused (4002)', () => {
  withSeed(seedOr(310), (seed) => {
    assert.deepEqual(ciphers(attempt(seed, {}, {})), [AES, AES]);
    assert.deepEqual(ciphers(attempt(seed, {}, {}, { Cipher: 3 }, {})), [CHACHA, CHACHA], 'the client asks for ChaCha20');
    assert.deepEqual(ciphers(attempt(seed, {}, {}, {}, { Cipher: 3 })), [CHACHA, CHACHA], 'the server asks for ChaCha20');
    assert.deepEqual(ciphers(attempt(seed, {}, {}, { Cipher: 2 }, { Cipher: 2 })), [AES, AES]);
    endedWith(attempt(seed, {}, {}, { Cipher: 3 }, { Cipher: 2 }), 4002, /no cipher in common/);
  });
});

/** A man in the middle who rewrites the cipher list in every CONNECT_REQUEST or CONNECT_OK (and, for CONNECT_OK, the chosen cipher), leaving the signature. */
function rewriteCiphers(type: number, f: (ciphers: number[]) => { ciphers: number[]; chosen?: number }, count: { n: number }): (sim: SimNetwork) => void {
  return (sim) => {
    sim.intercept = (_f, _t, data) => {
      if (data[0] !== type) return data;
      const p = decodeControl(data);
      if (p.type !== 'connectRequest' && p.type !== 'connectOk') return data;
      const m = decodeHandshakeMessage(p.payload);
      const next = f(m.crypt.ciphers);
      const cryptBytes = encodeCryptInfo({ ...m.crypt, ciphers: next.ciphers, chosen: next.chosen ?? m.crypt.chosen });
      const out = new Uint8Array(data.length + 64);
      const n = encodeControl(out, { ...p, payload: encodeMessage({ ...m.message, cryptBytes }) });
      count.n++;
      return out.subarray(0, n);
    };
  };
}

test('downgrade: a man in the middle who strips ChaCha20-Poly1305 from, or reorders, either side\'s signed cipher list is detected (4002)', () => {
  withSeed(seedOr(311), (seed) => {
    const strip = (l: number[]): { ciphers: number[] } => ({ ciphers: l.filter((c) => c !== 3) });
    const reorder = (l: number[]): { ciphers: number[] } => ({ ciphers: [...l].reverse() });
    // The client's list (node:crypto: AES-256-GCM, ChaCha20-Poly1305), rewritten in CONNECT_REQUEST: the server refuses it.
    for (const [what, f] of [['strip', strip], ['reorder', reorder]] as const) {
      const count = { n: 0 };
      const a = attempt(seed, {}, {}, {}, {}, rewriteCiphers(ControlType.ConnectRequest, f, count));
      assert.ok(count.n > 0, `${what}: the request was rewritten`);
      endedWith(a, 4002, /connect request signature does not verify/);
    }
    // The server's list and its choice, rewritten in CONNECT_OK (to say "I prefer AES-256-GCM, so AES-256-GCM"): the client refuses it.
    const count = { n: 0 };
    const a = attempt(seed, {}, {}, {}, { Cipher: 3 }, rewriteCiphers(ControlType.ConnectOk, () => ({ ciphers: [2, 3], chosen: 2 }), count));
    assert.ok(count.n > 0, 'the reply was rewritten');
    clientRefused(a, 4002, /server handshake signature does not verify/);
  });
});

test('downgrade between two fast peers: stripping or reordering ChaCha20-Poly1305 in either list is detected (4002)', { skip: NO_SODIUM }, () => {
  withSeed(seedOr(312), (seed) => {
    for (const [type, f, debug] of [
      [ControlType.ConnectRequest, (l: number[]) => ({ ciphers: l.filter((c) => c !== 3) }), /connect request signature does not verify/],
      [ControlType.ConnectRequest, (l: number[]) => ({ ciphers: [...l].reverse() }), /connect request signature does not verify/],
      [ControlType.ConnectOk, () => ({ ciphers: [2], chosen: 2 }), /server handshake signature does not verify/],
      [ControlType.ConnectOk, () => ({ ciphers: [2, 3], chosen: 2 }), /server handshake signature does not verify/],
    ] as const) {
      const count = { n: 0 };
      const a = attempt(seed, fast(seed + 2), fast(seed + 1), {}, {}, rewriteCiphers(type, f, count));
      assert.ok(count.n > 0);
      (type === ControlType.ConnectOk ? clientRefused : endedWith)(a, 4002, debug);
    }
  });
});

const SIG_SERVER = new TextEncoder().encode('netlane hs server v2\0');
const u32be = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);

/**
 * A server that states `ciphers` (or its real list) and picks `chosen`, and signs that properly with its own
 * key (docs/WIRE_FORMAT.md "Handshake payloads"): a dishonest peer, not a man in the middle.
 */
function dishonestServer(inner: SecureHandshake, key: SigningKey, chosen: number, ciphers?: number[]): HandshakeLayer {
  return {
    minProtocolVersion: inner.minProtocolVersion,
    maxProtocolVersion: inner.maxProtocolVersion,
    issueCookie: (now, from, cid) => inner.issueCookie(now, from, cid),
    checkCookie: (now, from, cid, cookie) => inner.checkCookie(now, from, cid, cookie),
    startClient: (cid, remote, config) => inner.startClient(cid, remote, config),
    acceptClient(from, clientCid, serverCid, version, cookie, requestPayload, config) {
      const r = inner.acceptClient(from, clientCid, serverCid, version, cookie, requestPayload, config);
      if (!r.ok) return r;
      const reply = decodeHandshakeMessage(r.replyPayload);
      const req = decodeHandshakeMessage(requestPayload);
      const cryptBytes = encodeCryptInfo({ ...reply.crypt, chosen, ciphers: ciphers ?? reply.crypt.ciphers });
      const p = inner.provider;
      const signed = concat(SIG_SERVER, u32be(clientCid), u32be(serverCid), p.sha256(req.message.certBytes, req.message.cryptBytes), reply.message.certBytes, cryptBytes);
      return { ...r, replyPayload: encodeMessage({ certBytes: reply.message.certBytes, cryptBytes, signature: p.sign(key, signed) }) };
    },
  };
}

/** A connection attempt to a dishonest server (see {@link dishonestServer}). */
function toDishonest(seed: number, client: Partial<SecureHandshakeOptions>, server: Partial<SecureHandshakeOptions>, chosen: number, ciphers: number[] | undefined, clientConfig: Partial<Record<string, number>> = {}): Attempt {
  const inner = seededHandshake(seed + 1, server);
  return attempt(seed, client, server, clientConfig, {}, undefined, dishonestServer(inner, inner.key, chosen, ciphers));
}

test('a server that picks a cipher the rule does not give, properly signed, is refused by the client (4002)', () => {
  withSeed(seedOr(313), (seed) => {
    const refused = (a: Attempt, chosen: number): void => clientRefused(a, 4002, new RegExp(`server chose cipher ${chosen}, which negotiation does not give`));
    // Both on node:crypto: the rule gives AES-256-GCM; a server that says ChaCha20-Poly1305 is refused.
    refused(toDishonest(seed, {}, {}, 3, undefined), 3);
    // The client asks for ChaCha20-Poly1305 alone: AES-256-GCM was not offered.
    refused(toDishonest(seed, {}, {}, 2, undefined, { Cipher: 3 }), 2);
    // Plaintext, which the client never offered.
    refused(toDishonest(seed, {}, {}, 1, [1, 2, 3]), 1);
    // Control: the same dishonest wrapper picking what the rule gives connects, so the refusals above are the cipher check.
    const honest = toDishonest(seed, {}, {}, 2, undefined);
    assert.equal(honest.client.state(honest.c), ConnectionState.Connected);
  });
});

test('between two fast peers a server that signs AES-256-GCM while listing ChaCha20-Poly1305 first is refused; one that states an AES-first preference is not', { skip: NO_SODIUM }, () => {
  withSeed(seedOr(314), (seed) => {
    clientRefused(toDishonest(seed, fast(seed + 2), fast(seed + 1), 2, undefined), 4002, /server chose cipher 2, which negotiation does not give/);
    // A server may prefer AES-256-GCM (its signed list says so): the rule then gives AES-256-GCM. Its keys
    // are ChaCha20-Poly1305's, so data would not flow, but the handshake check accepts the choice.
    const b = toDishonest(seed, fast(seed + 2), fast(seed + 1), 2, [2, 3]);
    assert.equal(b.client.state(b.c), ConnectionState.Connected);
    assert.equal(b.client.peerInfo(b.c)?.cipher, AES);
  });
});

test("the virtual port a client connects to is inside its signed request: the server reads it; one rewritten, added or stripped on the way is refused (4002); a malformed one is malformed", () => {
  withSeed(seedOr(318), (seed) => {
    const from = { address: '10.0.0.2', port: 4000 };
    const now = 5_000_000;
    const server = seededHandshake(seed + 1);
    const accept = (payload: Uint8Array, cookie: Uint8Array): ReturnType<HandshakeLayer['acceptClient']> => server.acceptClient(from, 7, 9, 2, cookie, payload, DEFAULT_CONFIG);
    const request = (virtualPort?: number): { payload: Uint8Array; cookie: Uint8Array } => {
      const cookie = server.issueCookie(now, from, 7);
      const hs = virtualPort === undefined ? seededHandshake(seed + 2).startClient(7, SERVER_ADDR, DEFAULT_CONFIG) : seededHandshake(seed + 2).startClient(7, SERVER_ADDR, DEFAULT_CONFIG, virtualPort);
      return { payload: hs.request(cookie, 2), cookie };
    };
    const withPort = request(27015);
    const ok = accept(withPort.payload, withPort.cookie);
    assert.ok(ok.ok, 'accepted');
    assert.equal(ok.ok && ok.peer.virtualPort, 27015, 'the server reads the port');
    const none = request();
    const plain = accept(none.payload, none.cookie);
    assert.equal(plain.ok && plain.peer.virtualPort, -1, 'a request without one names none (an IP connection, or an older client)');
    assert.equal(decodeHandshakeMessage(none.payload).message.cryptBytes.length + 4, decodeHandshakeMessage(withPort.payload).message.cryptBytes.length, 'the port is 4 bytes at the end of the crypt info, only when there is one');
    // A relay (or anyone on the path) rewrites it, adds one, strips it: the client's signature no longer verifies.
    const rewrite = (r: { payload: Uint8Array }, virtualPort: number): Uint8Array => {
      const m = decodeHandshakeMessage(r.payload);
      return encodeMessage({ ...m.message, cryptBytes: encodeCryptInfo({ ...m.crypt, virtualPort }) });
    };
    for (const [what, r, port] of [['rewritten', withPort, 1], ['stripped', withPort, -1], ['added', none, 5]] as const) {
      const out = accept(rewrite(r, port), r.cookie);
      assert.ok(!out.ok && out.reason === 4002 && /signature does not verify/.test(out.debug), `${what}: ${JSON.stringify(out)}`);
    }
    // Not 0 or 4 trailing bytes, or a port past 2^31-1: malformed (before any signature check).
    const m = decodeHandshakeMessage(none.payload).message;
    for (const tail of [new Uint8Array([0, 0, 1]), new Uint8Array([0x80, 0, 0, 0]), new Uint8Array(5)]) {
      const out = accept(encodeMessage({ ...m, cryptBytes: concat(m.cryptBytes, tail) }), none.cookie);
      assert.ok(!out.ok && out.reason === 4002 && /malformed/.test(out.debug), `${tail.length} trailing bytes: ${JSON.stringify(out)}`);
    }
    assert.throws(() => seededHandshake(seed + 2).startClient(7, SERVER_ADDR, DEFAULT_CONFIG, 0x80000000), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT');
  });
});
