// Whole connections on each crypto provider (node:crypto alone, sodium-native for ChaCha20-Poly1305) and
// on a mixed pair, in virtual time: lossy, reordering links, key updates, messages both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SendFlags } from '../../src/core/types.js';
import type { SecureHandshakeOptions } from '../../src/crypto/handshake.js';
import { SodiumCryptoProvider } from '../../src/crypto/sodium-provider.js';
import { seededCryptoProvider } from '../../src/testing/crypto.js';
import { SimNetwork } from '../../src/testing/sim-network.js';
import { NetworkingSockets } from '../../src/api/networking-sockets.js';
import { DebugOutputType } from '../../src/api/types.js';
import { udpRuntime } from '../../src/io/runtime.js';
import { check, connectedPair, drain, payload, seedOr, withSeed, type Pair } from '../support/sim.js';

const NO_SODIUM = SodiumCryptoProvider.load() ? false : 'sodium-native is not installed (an optional dependency: npm ci --omit=optional leaves it out)';
if (NO_SODIUM) console.log(`# skipping the sodium-native connections: ${NO_SODIUM}`);

type Side = 'node' | 'sodium' | 'noble';
const side = (s: Side, seed: number): Partial<SecureHandshakeOptions> => ({ provider: seededCryptoProvider(seed, { sodium: s === 'sodium', noble: s === 'noble' }) });
const MARKER = new TextEncoder().encode('LOOT:legendary-sword-of-testing');

interface Run {
  pair: Pair;
  /** SHA-256 of every datagram, in order, as the links carried them. */
  wire: string;
  leaked: number;
}

/** A connection between `client` and `server` providers; 300 reliable messages each way (8 B to 3 kB) and 300 unreliable markers (searched for on the wire), at 3 % loss. */
function run(seed: number, client: Side, server: Side, config: Partial<Record<string, number>>): Run {
  const pair = connectedPair(seed, { latencyUs: 15_000, jitterUs: 4000, loss: 0.03 }, { KeyUpdatePackets: 64, ...config }, undefined, { client: side(client, seed + 2), server: side(server, seed + 1) });
  const h = createHash('sha256');
  let leaked = 0;
  pair.sim.intercept = (_f, _t, data) => {
    h.update(data);
    for (let i = 0; i + MARKER.length <= data.length; i++) if (data[i] === MARKER[0] && Buffer.from(data.subarray(i, i + MARKER.length)).equals(Buffer.from(MARKER))) leaked++;
    return data;
  };
  const got = { c: [] as number[], s: [] as number[] };
  for (let i = 0; i < 300; i++) {
    const size = 8 + ((i * 97) % 3000);
    pair.client.endpoint.send(pair.sim.now, pair.c, payload(0, i, size), SendFlags.Reliable);
    pair.server.endpoint.send(pair.sim.now, pair.s, payload(0, i, size), SendFlags.Reliable);
    pair.client.endpoint.send(pair.sim.now, pair.c, MARKER, SendFlags.Unreliable);
    pair.sim.runFor(5_000);
    for (const msg of drain(pair.server, pair.s)) if (msg.data.length !== MARKER.length) got.s.push(check(msg.data).index);
    for (const msg of drain(pair.client, pair.c)) if (msg.data.length !== MARKER.length) got.c.push(check(msg.data).index);
  }
  pair.sim.runFor(3_000_000);
  for (const msg of drain(pair.server, pair.s)) if (msg.data.length !== MARKER.length) got.s.push(check(msg.data).index);
  for (const msg of drain(pair.client, pair.c)) if (msg.data.length !== MARKER.length) got.c.push(check(msg.data).index);
  const all = Array.from({ length: 300 }, (_, i) => i);
  assert.deepEqual(got.s, all, 'every reliable message reached the server once, in order');
  assert.deepEqual(got.c, all, 'every reliable message reached the client once, in order');
  return { pair, wire: h.digest('hex'), leaked };
}

function cipherOf(p: Pair): [string | undefined, string | undefined] {
  return [p.client.endpoint.peerInfo(p.c)?.cipher, p.server.endpoint.peerInfo(p.s)?.cipher];
}

function keyUpdates(p: Pair): [number, number] {
  return [p.client.endpoint.status(p.sim.now, p.c)?.keyUpdates ?? 0, p.server.endpoint.status(p.sim.now, p.s)?.keyUpdates ?? 0];
}

test('a whole connection on node:crypto alone: AES-256-GCM, key updates both ways, every message delivered, no plaintext on the wire', () => {
  withSeed(seedOr(321), (seed) => {
    const r = run(seed, 'node', 'node', {});
    assert.deepEqual(cipherOf(r.pair), ['AES-256-GCM', 'AES-256-GCM']);
    const [cu, su] = keyUpdates(r.pair);
    assert.ok(cu >= 3 && su >= 3, `key updates ${cu} / ${su}`);
    assert.equal(r.leaked, 0);
  });
});

test('a whole connection on sodium-native: ChaCha20-Poly1305, key updates both ways, every message delivered, no plaintext on the wire', { skip: NO_SODIUM }, () => {
  withSeed(seedOr(322), (seed) => {
    const r = run(seed, 'sodium', 'sodium', {});
    assert.deepEqual(cipherOf(r.pair), ['ChaCha20-Poly1305', 'ChaCha20-Poly1305']);
    const [cu, su] = keyUpdates(r.pair);
    assert.ok(cu >= 3 && su >= 3, `key updates ${cu} / ${su}`);
    assert.equal(r.leaked, 0);
  });
});

test('a mixed pair: automatic gives AES-256-GCM; with Cipher 3, sodium-native seals what node:crypto opens and back, byte for byte the wire of a node:crypto pair', { skip: NO_SODIUM }, () => {
  withSeed(seedOr(323), (seed) => {
    const auto = run(seed, 'sodium', 'node', {});
    assert.deepEqual(cipherOf(auto.pair), ['AES-256-GCM', 'AES-256-GCM']);
    const mixed = run(seed, 'sodium', 'node', { Cipher: 3 });
    assert.deepEqual(cipherOf(mixed.pair), ['ChaCha20-Poly1305', 'ChaCha20-Poly1305']);
    assert.equal(mixed.leaked, 0);
    // Same seeds, same cipher: the same datagrams whichever library computes ChaCha20-Poly1305, so a
    // simulation that pins its cipher replays the same with or without sodium-native.
    const reversed = run(seed, 'node', 'sodium', { Cipher: 3 });
    const nodeOnly = run(seed, 'node', 'node', { Cipher: 3 });
    const sodiumOnly = run(seed, 'sodium', 'sodium', { Cipher: 3 });
    assert.equal(mixed.wire, nodeOnly.wire);
    assert.equal(reversed.wire, nodeOnly.wire);
    assert.equal(sodiumOnly.wire, nodeOnly.wire);
    assert.notEqual(auto.wire, nodeOnly.wire, 'the wire digest tells the ciphers apart');
  });
});

test('the browser build\'s provider (@noble, pure JS): ChaCha20-Poly1305 on its own, key updates, no plaintext; against node:crypto either cipher, byte for byte the wire of a node:crypto pair', () => {
  withSeed(seedOr(325), (seed) => {
    const alone = run(seed, 'noble', 'noble', {});
    assert.deepEqual(cipherOf(alone.pair), ['ChaCha20-Poly1305', 'ChaCha20-Poly1305']);
    const [cu, su] = keyUpdates(alone.pair);
    assert.ok(cu >= 3 && su >= 3, `key updates ${cu} / ${su}`);
    assert.equal(alone.leaked, 0);
    for (const cipher of [2, 3]) {
      const nodeOnly = run(seed, 'node', 'node', { Cipher: cipher });
      const browserClient = run(seed, 'noble', 'node', { Cipher: cipher });
      const browserServer = run(seed, 'node', 'noble', { Cipher: cipher });
      assert.equal(browserClient.leaked + browserServer.leaked, 0);
      assert.equal(browserClient.wire, nodeOnly.wire, `cipher ${cipher}: a browser client sends what node:crypto sends`);
      assert.equal(browserServer.wire, nodeOnly.wire, `cipher ${cipher}: a browser server too`);
    }
  });
});

test('NetworkingSockets names its crypto provider in the debug output; the real runtime\'s default names sodium-native or why not', () => {
  const sim = new SimNetwork(seedOr(324));
  const sockets = new NetworkingSockets({ runtime: sim.runtime('10.0.0.9') });
  const lines: string[] = [];
  sockets.setDebugOutputFunction(DebugOutputType.Msg, (_level, message) => lines.push(message));
  assert.deepEqual(lines, ['crypto provider: node:crypto (seeded test randomness)']);
  sockets.close();
  const real = udpRuntime.provider();
  if (NO_SODIUM) assert.match(real.name, /^node:crypto \(sodium-native not loaded: /);
  else assert.equal(real.name, 'sodium-native ChaCha20-Poly1305 + node:crypto');
});
