import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hkdfSync } from 'node:crypto';
import { NodeCryptoProvider } from '../../src/crypto/node-provider.js';
import { AeadCipher, isSmallOrderX25519, type CryptoProvider } from '../../src/crypto/provider.js';
import { SodiumCryptoProvider, defaultCryptoProvider, loadSodium, providerFromLoad } from '../../src/crypto/sodium-provider.js';
import { NobleCryptoProvider } from '../../src/crypto/noble-provider.js';
import { SessionKeys, packetNonce } from '../../src/crypto/protection.js';
import { checkCertificate, decodeCertificate, signCertificate, unsignedCertificate } from '../../src/crypto/certificate.js';
import { derivePeerId, identityToString, parseIdentity } from '../../src/crypto/identity.js';
import { NetlaneError } from '../../src/util/errors.js';
import { SeededRng } from '../../src/util/rng.js';
import { seedOr } from '../support/sim.js';

const provider = new NodeCryptoProvider();
const NOW = 1_800_000_000;

/** The sodium-native provider when the optional package is installed (`npm ci` installs it; `--omit=optional` does not). */
const sodium = SodiumCryptoProvider.load();
const NO_SODIUM = sodium ? false : 'sodium-native is not installed (an optional dependency: npm ci --omit=optional leaves it out), so its provider cannot be tested here';
if (!sodium) console.log(`# skipping the sodium-native cases: ${NO_SODIUM}`);
const PROVIDERS: { label: string; p: CryptoProvider | null; skip: string | false }[] = [
  { label: 'node:crypto', p: provider, skip: false },
  { label: 'sodium-native', p: sodium, skip: NO_SODIUM },
  { label: '@noble (browser)', p: new NobleCryptoProvider(), skip: false },
];
const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** AEAD known answers: RFC 8439 section 2.8.2, and AES-256-GCM test cases 13, 14 and 16 of McGrew and Viega's GCM specification. */
const VECTORS: { name: string; cipher: AeadCipher; key: string; nonce: string; aad: string; pt: string; ct: string; tag: string }[] = [
  {
    name: 'RFC 8439 2.8.2',
    cipher: AeadCipher.ChaCha20Poly1305,
    key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
    nonce: '070000004041424344454647',
    aad: '50515253c0c1c2c3c4c5c6c7',
    pt: Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.").toString('hex'),
    ct: `d31a8d34648e60db7b86afbc53ef7ec2 a4aded51296e08fea9e2b5a736ee62d6 3dbea45e8ca9671282fafb69da92728b 1a71de0a9e060b2905d6a5b67ecd3b36
         92ddbd7f2d778b8c9803aee328091b58 fab324e4fad675945585808b4831d7bc 3ff4def08e4b7a9de576d26586cec64b 6116`,
    tag: '1ae10b594f09e26a7e902ecbd0600691',
  },
  { name: 'GCM test case 13', cipher: AeadCipher.Aes256Gcm, key: '00'.repeat(32), nonce: '00'.repeat(12), aad: '', pt: '', ct: '', tag: '530f8afbc74536b9a963b4f1c4cb738b' },
  { name: 'GCM test case 14', cipher: AeadCipher.Aes256Gcm, key: '00'.repeat(32), nonce: '00'.repeat(12), aad: '', pt: '00'.repeat(16), ct: 'cea7403d4d606b6e074ec5d3baf39d18', tag: 'd0d1c8a799996bf0265b98b5d48ab919' },
  {
    name: 'GCM test case 16',
    cipher: AeadCipher.Aes256Gcm,
    key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308',
    nonce: 'cafebabefacedbaddecaf888',
    aad: 'feedfacedeadbeeffeedfacedeadbeefabaddad2',
    pt: 'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
    ct: '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
    tag: '76fc6ece0f4e1768cddf8853bb2d551b',
  },
];

for (const { label, p, skip } of PROVIDERS) {
  test(`${label}: AEAD known answers (RFC 8439 2.8.2 ChaCha20-Poly1305, AES-256-GCM test cases 13, 14, 16), sealed in place, into another buffer and at an offset`, { skip }, () => {
    const prov = p as CryptoProvider;
    for (const v of VECTORS) {
      const aead = prov.aead(v.cipher, hex(v.key));
      const pt = hex(v.pt);
      const want = toHex(hex(v.ct)) + v.tag;
      // in place: the plaintext's own buffer, with room for the tag
      const inPlace = new Uint8Array(pt.length + 16);
      inPlace.set(pt);
      assert.equal(aead.seal(hex(v.nonce), hex(v.aad), inPlace.subarray(0, pt.length), inPlace, 0), pt.length + 16, v.name);
      assert.equal(toHex(inPlace), want, `${v.name} in place`);
      // into another buffer at an offset; the plaintext is left alone
      const out = new Uint8Array(pt.length + 16 + 9).fill(0xee);
      assert.equal(aead.seal(hex(v.nonce), hex(v.aad), pt, out, 5), pt.length + 16);
      assert.equal(toHex(out.subarray(5, 5 + pt.length + 16)), want, `${v.name} at an offset`);
      assert.deepEqual([...out.subarray(0, 5), ...out.subarray(5 + pt.length + 16)], [0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee]);
      assert.equal(toHex(pt), toHex(hex(v.pt)), `${v.name}: the plaintext was not touched`);
      // open: into an exact buffer and at an offset of a larger one
      const exact = new Uint8Array(pt.length);
      assert.equal(aead.open(hex(v.nonce), hex(v.aad), inPlace, exact, 0), pt.length);
      assert.equal(toHex(exact), v.pt.toLowerCase(), `${v.name} open`);
      const big = new Uint8Array(pt.length + 3);
      assert.equal(aead.open(hex(v.nonce), hex(v.aad), inPlace, big, 3), pt.length);
      assert.equal(toHex(big.subarray(3)), v.pt.toLowerCase());
    }
  });

  for (const cipher of [AeadCipher.Aes256Gcm, AeadCipher.ChaCha20Poly1305]) {
    test(`${label} AEAD ${cipher}: round trip; tags truncated to 12/8/4 bytes, a changed AAD, a wrong nonce or a flipped bit never open`, { skip }, () => {
      const prov = p as CryptoProvider;
      const key = new Uint8Array(32).fill(7);
      const aead = prov.aead(cipher, key);
      assert.equal(aead.cipher, cipher);
      const nonce = new Uint8Array(12).fill(1);
      const aad = new Uint8Array([0x80, 1, 2, 3, 4, 5, 6]);
      const pt = new TextEncoder().encode('loot: 3 gold, 1 sword');
      const out = new Uint8Array(pt.length + 16);
      assert.equal(aead.seal(nonce, aad, pt, out, 0), pt.length + 16);
      const back = new Uint8Array(64);
      assert.equal(aead.open(nonce, aad, out, back, 0), pt.length);
      assert.deepEqual(back.subarray(0, pt.length), pt);
      for (const cut of [4, 8, 12]) assert.equal(aead.open(nonce, aad, out.subarray(0, pt.length + 16 - cut), back, 0), -1, `tag cut by ${cut}`);
      // Node accepts a short GCM tag unless told the length: a ciphertext with only its first 12/8/4 tag bytes must fail too.
      for (const tagLen of [12, 8, 4]) assert.equal(aead.open(nonce, aad, out.subarray(0, pt.length + tagLen), back, 0), -1);
      for (const n of [0, 15]) assert.equal(aead.open(nonce, aad, out.subarray(0, n), back, 0), -1, `${n} bytes: shorter than a tag`);
      assert.equal(aead.open(nonce, new Uint8Array([0x81, 1, 2, 3, 4, 5, 6]), out, back, 0), -1);
      assert.equal(aead.open(new Uint8Array(12).fill(2), aad, out, back, 0), -1, 'another nonce');
      assert.equal(prov.aead(cipher, new Uint8Array(32).fill(8)).open(nonce, aad, out, back, 0), -1, 'another key');
      for (let bit = 0; bit < out.length * 8; bit += 7) {
        const t = out.slice();
        t[bit >> 3] = (t[bit >> 3] as number) ^ (1 << (bit & 7));
        assert.equal(aead.open(nonce, aad, t, back, 0), -1, `bit ${bit}`);
      }
      // An empty plaintext still has a tag that authenticates the AAD.
      const empty = new Uint8Array(16);
      assert.equal(aead.seal(nonce, aad, new Uint8Array(0), empty, 0), 16);
      assert.equal(aead.open(nonce, aad, empty, back, 0), 0);
      assert.equal(aead.open(nonce, new Uint8Array(0), empty, back, 0), -1);
    });

    test(`${label} AEAD ${cipher}: nonces of 0/8/11/13/16 bytes, keys of the wrong size and a too-small output are refused with a typed error`, { skip }, () => {
      const prov = p as CryptoProvider;
      const aead = prov.aead(cipher, new Uint8Array(32));
      const typed = (e: unknown): boolean => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT';
      for (const n of [0, 8, 11, 13, 16]) {
        assert.throws(() => aead.seal(new Uint8Array(n), new Uint8Array(0), new Uint8Array(4), new Uint8Array(64), 0), typed);
        assert.throws(() => aead.open(new Uint8Array(n), new Uint8Array(0), new Uint8Array(20), new Uint8Array(64), 0), typed);
      }
      assert.throws(() => aead.seal(new Uint8Array(12), new Uint8Array(0), new Uint8Array(4), new Uint8Array(19), 0), typed);
      assert.throws(() => aead.open(new Uint8Array(12), new Uint8Array(0), new Uint8Array(20), new Uint8Array(3), 0), typed);
      for (const k of [0, 16, 31, 33]) assert.throws(() => prov.aead(cipher, new Uint8Array(k)), typed);
      assert.throws(() => prov.aead(AeadCipher.Null, new Uint8Array(32)), (e: unknown) => e instanceof NetlaneError);
    });
  }
}

test('property: node:crypto and sodium-native ChaCha20-Poly1305 agree byte for byte, and each opens what the other sealed', { skip: NO_SODIUM }, () => {
  const fast = sodium as CryptoProvider;
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 1500 }), (key, nonce, aad, pt) => {
      const a = new Uint8Array(pt.length + 16);
      const b = new Uint8Array(pt.length + 16);
      provider.aead(AeadCipher.ChaCha20Poly1305, key).seal(nonce, aad, pt, a, 0);
      fast.aead(AeadCipher.ChaCha20Poly1305, key).seal(nonce, aad, pt, b, 0);
      const back = new Uint8Array(pt.length);
      return Buffer.from(a).equals(Buffer.from(b)) && fast.aead(AeadCipher.ChaCha20Poly1305, key).open(nonce, aad, a, back, 0) === pt.length && Buffer.from(back).equals(Buffer.from(pt)) && provider.aead(AeadCipher.ChaCha20Poly1305, key).open(nonce, aad, b, back, 0) === pt.length;
    }),
    { seed: seedOr(94), numRuns: 300 },
  );
});

test('sodium-native: sealing into a buffer that overlaps the plaintext at another offset gives the same bytes as sealing a copy', { skip: NO_SODIUM }, () => {
  const aead = (sodium as CryptoProvider).aead(AeadCipher.ChaCha20Poly1305, new Uint8Array(32).fill(5));
  const nonce = new Uint8Array(12).fill(3);
  const pt = Uint8Array.from({ length: 100 }, (_, i) => i);
  const want = new Uint8Array(116);
  aead.seal(nonce, new Uint8Array(0), pt, want, 0);
  for (const [from, to] of [[10, 0], [0, 10], [3, 4]] as const) {
    const buf = new Uint8Array(140);
    buf.set(pt, from);
    assert.equal(aead.seal(nonce, new Uint8Array(0), buf.subarray(from, from + 100), buf, to), 116);
    assert.equal(toHex(buf.subarray(to, to + 116)), toHex(want), `plaintext at ${from}, sealed at ${to}`);
  }
});

test('provider choice: a missing or broken sodium-native falls back to node:crypto, named with the reason; present, it prefers ChaCha20-Poly1305', () => {
  const missing = loadSodium('netlane-no-such-package');
  assert.equal(missing.ok, false);
  const fallback = providerFromLoad(missing);
  assert.ok(fallback instanceof NodeCryptoProvider);
  assert.match(fallback.name, /^node:crypto \(sodium-native not loaded: .*netlane-no-such-package/);
  assert.equal(fallback.preferredCipher, AeadCipher.Aes256Gcm);
  // A module without the functions is refused too (node:fs stands in for a broken build).
  const broken = loadSodium('node:fs');
  assert.equal(broken.ok, false);
  if (!broken.ok) assert.match(broken.reason, /no crypto_aead_chacha20poly1305_ietf functions/);
  const off = defaultCryptoProvider({ sodium: false });
  assert.equal(off.name, 'node:crypto');
  assert.equal(off.preferredCipher, AeadCipher.Aes256Gcm);
  const auto = defaultCryptoProvider();
  if (sodium) {
    assert.ok(auto instanceof SodiumCryptoProvider);
    assert.equal(auto.name, 'sodium-native ChaCha20-Poly1305 + node:crypto');
    assert.equal(auto.preferredCipher, AeadCipher.ChaCha20Poly1305);
    assert.equal(loadSodium('sodium-native').ok, true);
  } else {
    assert.match(auto.name, /^node:crypto \(sodium-native not loaded: /);
    assert.equal(auto.preferredCipher, AeadCipher.Aes256Gcm);
  }
});

for (const { label, p, skip } of PROVIDERS) {
  const provider = p as CryptoProvider;
  test(`${label} X25519: all-zero and small-order peer keys give no shared secret; honest keys agree`, { skip }, () => {
    const a = provider.generateKeyExchange();
    const b = provider.generateKeyExchange();
    const ab = provider.deriveSharedSecret(a, b.publicKey);
    const ba = provider.deriveSharedSecret(b, a.publicKey);
    assert.ok(ab && ba);
    assert.deepEqual(ab, ba);
    const small = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    ];
    for (const h of small) {
      const k = new Uint8Array(Buffer.from(h, 'hex'));
      assert.ok(isSmallOrderX25519(k), h);
      assert.equal(provider.deriveSharedSecret(a, k), null, h);
    }
    assert.equal(provider.deriveSharedSecret(a, new Uint8Array(31)), null);
    assert.equal(isSmallOrderX25519(b.publicKey), false);
  });

  test(`${label} Ed25519: a seed gives the same key; signatures verify and a flipped bit or wrong key does not`, { skip }, () => {
    const seed = new Uint8Array(32).fill(3);
    const k1 = provider.signingKey(seed);
    const k2 = provider.signingKey(seed);
    assert.deepEqual(k1.publicKey, k2.publicKey);
    const msg = new TextEncoder().encode('hello');
    const sig = provider.sign(k1, msg);
    assert.ok(provider.verify(k1.publicKey, msg, sig));
    const bad = sig.slice();
    bad[5] = (bad[5] as number) ^ 1;
    assert.equal(provider.verify(k1.publicKey, msg, bad), false);
    assert.equal(provider.verify(provider.signingKey().publicKey, msg, sig), false);
    assert.equal(provider.verify(k1.publicKey, msg, sig.subarray(0, 63)), false);
    assert.equal(provider.verify(new Uint8Array(32), msg, sig), false);
  });

  test(`${label} HKDF-SHA256 matches RFC 5869 test case 1 and node:crypto hkdfSync`, { skip }, () => {
    const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
    const okm = provider.hkdf(hex('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b'), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
    assert.equal(Buffer.from(okm).toString('hex'), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 200 }), (ikm, salt, info, len) => {
        return Buffer.from(provider.hkdf(ikm, salt, info, len)).equals(Buffer.from(hkdfSync('sha256', ikm, salt, info, len)));
      }),
      { seed: seedOr(93), numRuns: 300 },
    );
  });
}

test('@noble and node:crypto compute the same bytes: X25519 and Ed25519 keys from one seed, shared secrets, signatures (each verifies the other\'s), SHA-256, HMAC, HKDF, AES-128 blocks', () => {
  const noble = new NobleCryptoProvider();
  assert.match(noble.name, /^@noble/);
  assert.equal(noble.preferredCipher, AeadCipher.ChaCha20Poly1305);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (s1, s2, msg, block) => {
      const a = provider.generateKeyExchange(s1);
      const b = noble.generateKeyExchange(s2);
      assert.equal(toHex(noble.generateKeyExchange(s1).publicKey), toHex(a.publicKey));
      assert.equal(toHex(provider.generateKeyExchange(s2).publicKey), toHex(b.publicKey));
      assert.equal(toHex(noble.deriveSharedSecret(b, a.publicKey) as Uint8Array), toHex(provider.deriveSharedSecret(a, b.publicKey) as Uint8Array));
      const k = provider.signingKey(s1);
      const kn = noble.signingKey(s1);
      assert.equal(toHex(kn.publicKey), toHex(k.publicKey));
      const sig = noble.sign(kn, msg);
      assert.equal(toHex(sig), toHex(provider.sign(k, msg)), 'Ed25519 signatures are deterministic');
      assert.ok(provider.verify(k.publicKey, msg, sig) && noble.verify(k.publicKey, msg, provider.sign(k, msg)));
      assert.equal(toHex(noble.sha256(msg, s1)), toHex(provider.sha256(msg, s1)));
      assert.equal(toHex(noble.hmacSha256(s2, msg, s1)), toHex(provider.hmacSha256(s2, msg, s1)));
      assert.equal(toHex(noble.hkdf(msg, s1.subarray(0, msg.length % 33), s2, 77)), toHex(provider.hkdf(msg, s1.subarray(0, msg.length % 33), s2, 77)));
      const want = new Uint8Array(20);
      const got = new Uint8Array(20);
      provider.blockCipher(s1.subarray(0, 16)).encrypt(block, 0, want, 3);
      const bc = noble.blockCipher(s1.subarray(0, 16));
      bc.encrypt(block, 0, got, 3);
      assert.equal(toHex(got), toHex(want));
      bc.decrypt(got, 3, got, 3);
      assert.equal(toHex(got.subarray(3, 19)), toHex(block));
      return true;
    }),
    { seed: seedOr(95), numRuns: 60 },
  );
});

test('property: packet nonces are distinct for distinct packet numbers (10^6 consecutive and random)', () => {
  const iv = new Uint8Array(12);
  provider.fillRandom(iv);
  const seen = new Set<string>();
  const n = new Uint8Array(12);
  for (let pn = 0; pn < 1_000_000; pn++) seen.add(Buffer.from(packetNonce(n, iv, pn)).toString('latin1'));
  assert.equal(seen.size, 1_000_000);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (a, b) => {
      fc.pre(a !== b);
      const x = Buffer.from(packetNonce(new Uint8Array(12), iv, a));
      const y = Buffer.from(packetNonce(new Uint8Array(12), iv, b));
      return !x.equals(y);
    }),
    { seed: seedOr(91), numRuns: 10_000 },
  );
});

for (const [label, prov, cipher, skip] of [
  ['node:crypto AES-256-GCM', provider, AeadCipher.Aes256Gcm, false],
  ['sodium-native ChaCha20-Poly1305', sodium, AeadCipher.ChaCha20Poly1305, NO_SODIUM],
  ['@noble ChaCha20-Poly1305', new NobleCryptoProvider(), AeadCipher.ChaCha20Poly1305, false],
] as const) test(`key update (${label}): both directions move to new keys under reordering, no packet is lost to the change`, { skip }, () => {
  const provider = prov as CryptoProvider;
  const rng = new SeededRng(seedOr(92));
  const s1 = new Uint8Array(32).fill(1);
  const s2 = new Uint8Array(32).fill(2);
  const a = new SessionKeys(provider, cipher, s1, s2, 50);
  const b = new SessionKeys(provider, cipher, s2, s1, 50);
  const hdr = (phase: boolean): Uint8Array => new Uint8Array([0x80 | (phase ? 0x40 : 0), 0, 0, 0, 1, 0, 0]);
  let pnA = 0;
  let pnB = 0;
  let opened = 0;
  let sent = 0;
  // a -> b and b -> a, each packet delivered within a window of up to 5 later packets (reordering).
  const inflightAB: { pn: number; h: Uint8Array; c: Uint8Array }[] = [];
  const inflightBA: { pn: number; h: Uint8Array; c: Uint8Array }[] = [];
  const seal = (k: SessionKeys, pn: number): { pn: number; h: Uint8Array; c: Uint8Array } => {
    const h = hdr(k.sendPhase);
    const buf = new Uint8Array(64);
    buf.set([pn & 0xff, 42]);
    const n = k.seal(pn, h, buf.subarray(0, 2), buf, 0);
    return { pn, h, c: buf.slice(0, n) };
  };
  const deliver = (q: typeof inflightAB, k: SessionKeys): void => {
    const i = rng.int(0, q.length - 1);
    const p = q.splice(i, 1)[0];
    if (!p) return;
    const pt = k.open(p.pn, p.h, p.c);
    assert.ok(pt, `packet ${p.pn} did not open`);
    assert.equal(pt[1], 42);
    opened++;
  };
  for (let i = 0; i < 2000; i++) {
    inflightAB.push(seal(a, pnA++));
    inflightBA.push(seal(b, pnB++));
    sent += 2;
    while (inflightAB.length > 5) deliver(inflightAB, b);
    while (inflightBA.length > 5) deliver(inflightBA, a);
  }
  while (inflightAB.length) deliver(inflightAB, b);
  while (inflightBA.length) deliver(inflightBA, a);
  assert.equal(opened, sent);
  assert.ok(a.keyUpdates >= 4 && b.keyUpdates >= 4, `updates a=${a.keyUpdates} b=${b.keyUpdates}`);
});

test('identities: string forms round-trip; the peer id is derived from the key', () => {
  for (const s of ['ip:10.0.0.1:27015', 'ip:[::1]:5000', 'id:76561197960265729', 'str:alice', 'gen:00ff10']) assert.equal(identityToString(parseIdentity(s)), s);
  for (const s of ['alice', 'id:0', 'id:18446744073709551616', 'str:', 'gen:0', 'ip:1.2.3.4', 'xbox:1']) assert.throws(() => parseIdentity(s), (e: unknown) => e instanceof NetlaneError);
  const k = provider.signingKey(new Uint8Array(32).fill(9));
  assert.equal(derivePeerId(provider, k.publicKey), derivePeerId(provider, provider.signingKey(new Uint8Array(32).fill(9)).publicKey));
  assert.notEqual(derivePeerId(provider, k.publicKey), derivePeerId(provider, provider.signingKey().publicKey));
});

test('certificates: signed ones check; expired, untrusted, forged, wrong address and claimed ids are refused', () => {
  const ca = provider.signingKey();
  const other = provider.signingKey();
  const peer = provider.signingKey();
  const fields = { identity: parseIdentity('str:alice'), publicKey: peer.publicKey, createdAt: NOW - 10, expiresAt: NOW + 3600 };
  const cert = signCertificate(provider, ca, fields);
  assert.deepEqual(decodeCertificate(cert.encoded).encoded, cert.encoded);
  assert.deepEqual(checkCertificate(provider, cert, [ca], NOW, '10.0.0.1'), { ok: true, authenticated: true });
  const refused = (c: ReturnType<typeof checkCertificate>, what: RegExp): void => {
    assert.equal(c.ok, false);
    if (!c.ok) assert.match(c.debug, what);
  };
  refused(checkCertificate(provider, cert, [other], NOW, '10.0.0.1'), /unknown authority/);
  refused(checkCertificate(provider, cert, [ca], NOW + 3600, '10.0.0.1'), /expired/);
  refused(checkCertificate(provider, signCertificate(provider, ca, { ...fields, createdAt: NOW + 3600, expiresAt: NOW + 7200 }), [ca], NOW, '10.0.0.1'), /not valid yet/);
  const forged = cert.encoded.slice();
  forged[forged.length - 10] = (forged[forged.length - 10] as number) ^ 0x20;
  refused(checkCertificate(provider, decodeCertificate(forged), [ca], NOW, '10.0.0.1'), /does not verify/);
  // Changing the identity in the body breaks the signature.
  const renamed = signCertificate(provider, ca, { ...fields, identity: parseIdentity('str:mallory') });
  const spliced = new Uint8Array([...renamed.body, ...cert.encoded.subarray(cert.body.length)]);
  refused(checkCertificate(provider, decodeCertificate(spliced), [ca], NOW, '10.0.0.1'), /does not verify/);
  const pinned = signCertificate(provider, ca, { ...fields, addresses: ['10.0.0.1'] });
  assert.equal(checkCertificate(provider, pinned, [ca], NOW, '10.0.0.1').ok, true);
  refused(checkCertificate(provider, pinned, [ca], NOW, '10.0.0.2'), /not valid from address/);
  // Unsigned: never authenticated; may not claim an IP or someone else's id.
  const own = unsignedCertificate({ identity: { kind: 'id', id: derivePeerId(provider, peer.publicKey) }, publicKey: peer.publicKey, createdAt: NOW, expiresAt: 0 });
  assert.deepEqual(checkCertificate(provider, own, [ca], NOW, '10.0.0.1'), { ok: true, authenticated: false });
  const claim = unsignedCertificate({ identity: { kind: 'id', id: derivePeerId(provider, other.publicKey) }, publicKey: peer.publicKey, createdAt: NOW, expiresAt: 0 });
  refused(checkCertificate(provider, claim, [ca], NOW, '10.0.0.1'), /not the id of the presented key/);
  refused(checkCertificate(provider, unsignedCertificate({ ...fields, identity: parseIdentity('ip:10.0.0.1:5'), expiresAt: 0 }), [ca], NOW, '10.0.0.1'), /IP identity/);
  assert.throws(() => signCertificate(provider, ca, { ...fields, expiresAt: fields.createdAt }), (e: unknown) => e instanceof NetlaneError);
});
