import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseCipher, cipherList } from '../../src/crypto/handshake.js';
import { AeadCipher } from '../../src/crypto/provider.js';
import { DEFAULT_CONFIG, resolveConfig } from '../../src/core/config.js';
import { CONFIG_INFO, ConfigValue, checkConfigValue, storeFrom } from '../../src/api/config.js';
import { NetlaneError } from '../../src/util/errors.js';

const N = AeadCipher.Null;
const AES = AeadCipher.Aes256Gcm;
const CC = AeadCipher.ChaCha20Poly1305;

test('cipher lists: Cipher 0 offers both AEADs, the provider\'s preference first; 2 or 3 offers that AEAD alone; Unencrypted places none', () => {
  assert.deepEqual(cipherList({ Cipher: 0, Unencrypted: 0 }, AES), [AES, CC]);
  assert.deepEqual(cipherList({ Cipher: 0, Unencrypted: 0 }, CC), [CC, AES]);
  assert.deepEqual(cipherList({ Cipher: 0, Unencrypted: 0 }), [AES, CC], 'a provider without a preference: AES-256-GCM first');
  for (const pref of [AES, CC]) {
    assert.deepEqual(cipherList({ Cipher: 2, Unencrypted: 0 }, pref), [AES]);
    assert.deepEqual(cipherList({ Cipher: 3, Unencrypted: 0 }, pref), [CC]);
  }
  assert.deepEqual(cipherList({ Cipher: 0, Unencrypted: 1 }, CC), [CC, AES, N]);
  assert.deepEqual(cipherList({ Cipher: 0, Unencrypted: 2 }, CC), [N, CC, AES]);
  assert.deepEqual(cipherList({ Cipher: 3, Unencrypted: 3 }, CC), [N]);
});

test('the negotiation rule: ChaCha20-Poly1305 only when both lists put it ahead of AES-256-GCM; an explicit AEAD wins; none first at the server wins if the client offers it', () => {
  // [server list, client list, chosen]
  const table: [number[], number[], number][] = [
    [[CC, AES], [CC, AES], CC], // both fast
    [[AES, CC], [CC, AES], AES], // fast client, fallback server
    [[CC, AES], [AES, CC], AES], // fast server, fallback client
    [[AES, CC], [AES, CC], AES], // both fallback
    [[CC], [AES, CC], CC], // explicit ChaCha20 at the server wins over an automatic client
    [[AES, CC], [CC], CC], // explicit ChaCha20 at the client wins over an automatic server
    [[AES], [CC, AES], AES], // explicit AES at the server wins over a fast client
    [[CC, AES], [AES], AES],
    [[CC], [CC], CC],
    [[AES], [CC], 0], // both explicit and different: nothing in common
    [[CC, AES, N], [CC, AES], CC],
    [[N, CC, AES], [CC, AES], CC], // the server prefers none, the client does not offer it
    [[N, CC, AES], [CC, AES, N], N], // both allow none, the server prefers it
    [[CC, AES, N], [N, CC, AES], CC], // the client prefers none, the server does not: encrypted
    [[CC, AES, N], [N, AES, CC], AES],
    [[N], [N], N],
    [[N], [CC, AES], 0],
  ];
  for (const [server, client, want] of table) assert.equal(chooseCipher(server, client), want, `server ${server} client ${client}`);
});

test('config: Cipher defaults to 0 (automatic); 1 and values outside 0..3 are refused in both config layers', () => {
  assert.equal(DEFAULT_CONFIG.Cipher, 0);
  for (const v of [0, 2, 3]) assert.equal(resolveConfig({ Cipher: v }).Cipher, v);
  for (const v of [1, -1, 4, 2.5]) assert.throws(() => resolveConfig({ Cipher: v }), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_CONFIG' && /Cipher/.test(e.message), `core ${v}`);
  const info = CONFIG_INFO.get(ConfigValue.Cipher);
  assert.ok(info);
  assert.equal(info.def, 0);
  for (const v of [0, 2, 3]) assert.equal(checkConfigValue(info, v), null);
  for (const v of [1, -1, 4]) assert.match(checkConfigValue(info, v) ?? '', /Cipher/, `api ${v}`);
  assert.match(String(storeFrom(null, { Cipher: 1 })), /Cipher must be 0 \(automatic\), 2 \(AES-256-GCM\) or 3/);
  assert.notEqual(typeof storeFrom(null, { Cipher: 3 }), 'string');
});
