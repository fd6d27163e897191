import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, SendFlags, type EndpointEvent } from '../../src/core/types.js';
import { SimNetwork } from '../../src/testing/sim-network.js';
import { seededCryptoProvider, seededHandshake } from '../../src/testing/crypto.js';
import { SecureHandshake, type SecureHandshakeOptions } from '../../src/crypto/handshake.js';
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
function attempt(seed: number, client: Partial<SecureHandshakeOptions>, server: Partial<SecureHandshakeOptions>, clientConfig: Partial<Record<string, number>> = {}, serverConfig: Partial<Record<string, number>> = {}, setup?: (sim: SimNetwork) => void): Attempt {
  const sim = new SimNetwork(seed, { latencyUs: 10_000 });
  const rng = new SeededRng(seed);
  const sh = sim.addHost(SERVER_ADDR, new Endpoint({ rng: rng.fork(), listen: true, config: serverConfig, handshake: seededHandshake(seed + 1, server) }));
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
