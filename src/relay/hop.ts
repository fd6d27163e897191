import type { Aead, BlockCipher, CryptoProvider, KeyExchangePair } from '../crypto/provider.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AeadCipher, BLOCK_BYTES, bytesEqual } from '../crypto/provider.js';
import { COOKIE_BYTES, DATA_TAG_BYTES, RELAY_PUBLIC_KEY_BYTES, RelayMsg, SESSION_ID_BYTES, TRUNK_TYPES, UP_HEADER_BYTES, decodeRelayControl, encodeRelayControl, SEALED_DOWN_TYPES, SEALED_UP_TYPES, type RelayControl } from './protocol.js';
import { WireError } from '../wire/errors.js';

// The relay hop's cryptography (docs/RELAY.md "Session keys"): a session's keys come from an X25519
// exchange between the client's ephemeral key and the relay's static key, bound to the cookie, the
// client's nonce and the ticket; they never travel. Control messages after SESSION_REQUEST travel
// sealed with a counter each side checks for replays; DATA_UP carries a sequence tag the relay checks
// with one AES block.

/** The keys of one relay session, the same on both sides. */
export interface HopKeys {
  /** Seals the client's control messages (SEALED). */
  readonly up: Aead;
  /** Seals the relay's (SESSION_OK, SEALED_DOWN). */
  readonly down: Aead;
  /** Makes and checks DATA_UP sequence tags. */
  readonly data: BlockCipher;
  /** A secret both sides hold: what a LINK_REQUEST's identity proof signs, so it is worth nothing in another session. */
  readonly binding: Uint8Array;
}

const KEYS_LABEL = new TextEncoder().encode('netlane-relay-session-v2');
const PROOF_LABEL = new TextEncoder().encode('netlane-relay-link-v2');
const AEAD_KEY = 32;
const BINDING_BYTES = 16;
/** up key | down key | data key | binding. */
const KEY_MATERIAL_BYTES = AEAD_KEY + AEAD_KEY + BLOCK_BYTES + BINDING_BYTES;
/** Bytes of a frame's counter (u64, big-endian). */
const COUNTER_BYTES = 8;
const TWO_32 = 2 ** 32;

/** Where a SEALED frame's session id and counter are, and where its ciphertext starts. */
export const SEALED_SESSION_AT = 1;
const SEALED_UP_PREFIX = 1 + SESSION_ID_BYTES + COUNTER_BYTES;
const SEALED_DOWN_PREFIX = 1 + COUNTER_BYTES;
/** SESSION_OK: type, client nonce, counter, then the sealed message. */
const SESSION_OK_PREFIX = 1 + 8 + COUNTER_BYTES;
const SESSION_OK_TYPES: ReadonlySet<RelayControl['type']> = new Set(['sessionOk']);
/** Where a DATA_UP's sequence tag is. */
const DATA_TAG_AT = UP_HEADER_BYTES - DATA_TAG_BYTES;
/** Bytes of a DATA_UP sequence tag's plaintext that are known to both sides: link id and zeros. */
const TAG_CHECK_AT = 8;

function keyMaterial(p: CryptoProvider, shared: Uint8Array, cookie: Uint8Array, relayPublic: Uint8Array, clientPublic: Uint8Array, clientNonce: Uint8Array, ticket: Uint8Array): HopKeys {
  const info = new Uint8Array(KEYS_LABEL.length + relayPublic.length + clientPublic.length + clientNonce.length + 32);
  let at = 0;
  for (const part of [KEYS_LABEL, relayPublic, clientPublic, clientNonce, p.sha256(ticket)]) {
    info.set(part, at);
    at += part.length;
  }
  const okm = p.hkdf(shared, cookie, info, KEY_MATERIAL_BYTES);
  shared.fill(0);
  const keys: HopKeys = {
    up: p.aead(AeadCipher.Aes256Gcm, okm.subarray(0, AEAD_KEY)),
    down: p.aead(AeadCipher.Aes256Gcm, okm.subarray(AEAD_KEY, 2 * AEAD_KEY)),
    data: p.blockCipher(okm.subarray(2 * AEAD_KEY, 2 * AEAD_KEY + BLOCK_BYTES)),
    binding: okm.slice(2 * AEAD_KEY + BLOCK_BYTES),
  };
  okm.fill(0);
  return keys;
}

/** The client's keys for a session request with ephemeral key `own` to the relay whose static key is `relayPublic`; null for a bad relay key. */
export function clientHopKeys(p: CryptoProvider, own: KeyExchangePair, relayPublic: Uint8Array, cookie: Uint8Array, clientNonce: Uint8Array, ticket: Uint8Array): HopKeys | null {
  const shared = p.deriveSharedSecret(own, relayPublic);
  return shared ? keyMaterial(p, shared, cookie, relayPublic, own.publicKey, clientNonce, ticket) : null;
}

/** The relay's keys for a SESSION_REQUEST (its cookie checked); null for a bad client key. */
export function relayHopKeys(p: CryptoProvider, relay: KeyExchangePair, m: Extract<RelayControl, { type: 'sessionRequest' }>): HopKeys | null {
  if (m.cookie.length !== COOKIE_BYTES) return null;
  const shared = p.deriveSharedSecret(relay, m.clientPublic);
  return shared ? keyMaterial(p, shared, m.cookie, relay.publicKey, m.clientPublic, m.clientNonce, m.ticket) : null;
}

/**
 * What a LINK_REQUEST's identity proof signs: a label, the relay's key and the session's binding. Only the
 * session's two ends know the binding, so a proof seen on the wire (it travels sealed anyway) proves
 * nothing in any other session; the relay checks it once per session and remembers the peer id.
 */
export function linkProofSigned(relayPublic: Uint8Array, binding: Uint8Array): Uint8Array {
  const out = new Uint8Array(PROOF_LABEL.length + relayPublic.length + binding.length);
  out.set(PROOF_LABEL);
  out.set(relayPublic, PROOF_LABEL.length);
  out.set(binding, PROOF_LABEL.length + relayPublic.length);
  return out;
}

function writeCounter(b: Uint8Array, at: number, counter: number): void {
  const hi = Math.floor(counter / TWO_32);
  const lo = counter >>> 0;
  b[at] = hi >>> 24;
  b[at + 1] = (hi >>> 16) & 0xff;
  b[at + 2] = (hi >>> 8) & 0xff;
  b[at + 3] = hi & 0xff;
  b[at + 4] = lo >>> 24;
  b[at + 5] = (lo >>> 16) & 0xff;
  b[at + 6] = (lo >>> 8) & 0xff;
  b[at + 7] = lo & 0xff;
}

function readCounter(b: Uint8Array, at: number): number {
  const hi = (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0;
  const lo = (((b[at + 4] as number) << 24) | ((b[at + 5] as number) << 16) | ((b[at + 6] as number) << 8) | (b[at + 7] as number)) >>> 0;
  return hi * TWO_32 + lo;
}

function nonceFor(counter: number): Uint8Array {
  const n = new Uint8Array(AEAD_NONCE_BYTES);
  writeCounter(n, AEAD_NONCE_BYTES - COUNTER_BYTES, counter);
  return n;
}

function seal(aead: Aead, prefix: Uint8Array, counterAt: number, counter: number, m: RelayControl | Uint8Array): Uint8Array {
  writeCounter(prefix, counterAt, counter);
  const plain = m instanceof Uint8Array ? m : encodeRelayControl(m);
  const out = new Uint8Array(prefix.length + plain.length + AEAD_TAG_BYTES);
  out.set(prefix);
  aead.seal(nonceFor(counter), prefix, plain, out, prefix.length);
  return out;
}

/** A sealed message: its counter and the message. */
export interface Opened {
  readonly counter: number;
  readonly message: RelayControl;
}

function open(aead: Aead, data: Uint8Array, prefixBytes: number, counterAt: number, allowed: ReadonlySet<RelayControl['type']>): Opened | null {
  if (data.length < prefixBytes + 1 + AEAD_TAG_BYTES) return null;
  const counter = readCounter(data, counterAt);
  const plain = new Uint8Array(data.length - prefixBytes - AEAD_TAG_BYTES);
  if (aead.open(nonceFor(counter), data.subarray(0, prefixBytes), data.subarray(prefixBytes), plain, 0) !== plain.length) return null;
  let message: RelayControl;
  try {
    message = decodeRelayControl(plain);
  } catch (e) {
    if (e instanceof WireError) return null;
    throw e;
  }
  return allowed.has(message.type) ? { counter, message } : null;
}

/** A frame of `type` naming `id` (a session or a trunk): type, id 8, counter, sealed message, tag. */
function sealNamed(type: number, aead: Aead, id: Uint8Array, counter: number, m: RelayControl): Uint8Array {
  const prefix = new Uint8Array(SEALED_UP_PREFIX);
  prefix[0] = type;
  prefix.set(id, SEALED_SESSION_AT);
  return seal(aead, prefix, SEALED_SESSION_AT + SESSION_ID_BYTES, counter, m);
}

/** A client's control message as a SEALED frame: type, session id, counter, sealed message, tag. */
export function sealUp(keys: HopKeys, sessionId: Uint8Array, counter: number, m: RelayControl): Uint8Array {
  return sealNamed(RelayMsg.Sealed, keys.up, sessionId, counter, m);
}

/** The counter of a SEALED frame (checked against the replay window before the frame is opened), or -1 if too short. */
export function sealedUpCounter(data: Uint8Array): number {
  return data.length < SEALED_UP_PREFIX ? -1 : readCounter(data, SEALED_SESSION_AT + SESSION_ID_BYTES);
}

/** Opens a SEALED frame (the relay, with the keys of the session it names); null if it does not authenticate or holds no client message. */
export function openUp(keys: HopKeys, data: Uint8Array): Opened | null {
  return open(keys.up, data, SEALED_UP_PREFIX, SEALED_SESSION_AT + SESSION_ID_BYTES, SEALED_UP_TYPES);
}

/** A relay's control message (or, for tests, any plaintext) as a SEALED_DOWN frame: type, counter, sealed message, tag. */
export function sealDown(keys: HopKeys, counter: number, m: RelayControl | Uint8Array): Uint8Array {
  const prefix = new Uint8Array(SEALED_DOWN_PREFIX);
  prefix[0] = RelayMsg.SealedDown;
  return seal(keys.down, prefix, 1, counter, m);
}

/** Opens a SEALED_DOWN frame; null if it does not authenticate or holds no relay message. */
export function openDown(keys: HopKeys, data: Uint8Array): Opened | null {
  return open(keys.down, data, SEALED_DOWN_PREFIX, 1, SEALED_DOWN_TYPES);
}

/** SESSION_OK: type, the request's client nonce (in the clear, to find the request), counter, the sealed answer, tag. */
export function sealSessionOk(keys: HopKeys, clientNonce: Uint8Array, counter: number, m: Extract<RelayControl, { type: 'sessionOk' }>): Uint8Array {
  const prefix = new Uint8Array(SESSION_OK_PREFIX);
  prefix[0] = RelayMsg.SessionOk;
  prefix.set(clientNonce, 1);
  return seal(keys.down, prefix, 1 + clientNonce.length, counter, m);
}

/** The client nonce of a SESSION_OK frame (which request it answers), or null if too short. */
export function sessionOkNonce(data: Uint8Array): Uint8Array | null {
  return data.length < SESSION_OK_PREFIX ? null : data.subarray(1, 9);
}

/** Opens a SESSION_OK frame with the keys of the request it answers; null if the relay does not hold the key the client expects. */
export function openSessionOk(keys: HopKeys, data: Uint8Array): (Opened & { readonly message: Extract<RelayControl, { type: 'sessionOk' }> }) | null {
  const o = open(keys.down, data, SESSION_OK_PREFIX, 9, SESSION_OK_TYPES);
  return o as (Opened & { readonly message: Extract<RelayControl, { type: 'sessionOk' }> }) | null;
}

/**
 * Writes the sequence tag of a DATA_UP into `header` (a DATA_UP hop header whose link id is written):
 * AES(sequence u64 | link id u16 | 6 zero bytes). Only the session's holders can make one, so the relay
 * can check freshness without an attacker moving its window.
 */
export function writeDataTag(data: BlockCipher, seq: number, header: Uint8Array, block: Uint8Array): void {
  writeCounter(block, 0, seq);
  block[TAG_CHECK_AT] = header[DATA_TAG_AT - 2] as number;
  block[TAG_CHECK_AT + 1] = header[DATA_TAG_AT - 1] as number;
  block.fill(0, TAG_CHECK_AT + 2, BLOCK_BYTES);
  data.encrypt(block, 0, header, DATA_TAG_AT);
}

/** The sequence number of a DATA_UP's tag, or -1 if the tag was not made with this key for this link. `block` is scratch (16 bytes). */
export function readDataTag(data: BlockCipher, datagram: Uint8Array, block: Uint8Array): number {
  data.decrypt(datagram, DATA_TAG_AT, block, 0);
  if (block[TAG_CHECK_AT] !== datagram[DATA_TAG_AT - 2] || block[TAG_CHECK_AT + 1] !== datagram[DATA_TAG_AT - 1]) return -1;
  for (let i = TAG_CHECK_AT + 2; i < BLOCK_BYTES; i++) if (block[i] !== 0) return -1;
  return readCounter(block, 0);
}

// ------------------------------------------------------------------ trunks (docs/RELAY.md "Trunks")

/** The keys of one trunk, as one end holds them: what it seals and tags with, and what it opens and checks with. */
export interface TrunkKeys {
  readonly sealOut: Aead;
  readonly sealIn: Aead;
  readonly dataOut: BlockCipher;
  readonly dataIn: BlockCipher;
}

const TRUNK_HELLO_LABEL = new TextEncoder().encode('netlane-relay-trunk-hello-v1');
const TRUNK_KEYS_LABEL = new TextEncoder().encode('netlane-relay-trunk-v1');
/** The trunk protocol's version (TRUNK_HELLO's version byte). */
export const TRUNK_VERSION = 1;
/** A trunk's nonce (each end draws one), bytes. */
export const TRUNK_NONCE_BYTES = 16;
/** TRUNK_HELLO's MAC (truncated HMAC-SHA256), bytes. */
const TRUNK_MAC_BYTES = 16;
/** TRUNK_HELLO: type, version, opener's static key, opener's trunk id, nonce, MAC. */
export const TRUNK_HELLO_BYTES = 1 + 1 + RELAY_PUBLIC_KEY_BYTES + SESSION_ID_BYTES + TRUNK_NONCE_BYTES + TRUNK_MAC_BYTES;
/** TRUNK_OK: type, opener's trunk id, answerer's trunk id, nonce, tag. */
export const TRUNK_OK_BYTES = 1 + SESSION_ID_BYTES + SESSION_ID_BYTES + TRUNK_NONCE_BYTES + AEAD_TAG_BYTES;
const TRUNK_HELLO_KEY_AT = 2;
const TRUNK_HELLO_ID_AT = TRUNK_HELLO_KEY_AT + RELAY_PUBLIC_KEY_BYTES;
const TRUNK_HELLO_NONCE_AT = TRUNK_HELLO_ID_AT + SESSION_ID_BYTES;
const TRUNK_HELLO_MAC_AT = TRUNK_HELLO_NONCE_AT + TRUNK_NONCE_BYTES;
const TRUNK_OK_ANSWERER_AT = 1 + SESSION_ID_BYTES;
const TRUNK_OK_NONCE_AT = TRUNK_OK_ANSWERER_AT + SESSION_ID_BYTES;
const TRUNK_OK_TAG_AT = TRUNK_OK_NONCE_AT + TRUNK_NONCE_BYTES;
/** Where a trunk frame (TRUNK_SEALED, TRUNK_DATA, TRUNK_OK) names the receiver's trunk. */
export const TRUNK_ID_AT = 1;

function helloMac(p: CryptoProvider, secret: Uint8Array, hello: Uint8Array, opener: Uint8Array, answerer: Uint8Array): Uint8Array {
  const info = new Uint8Array(TRUNK_HELLO_LABEL.length + 2 * RELAY_PUBLIC_KEY_BYTES);
  info.set(TRUNK_HELLO_LABEL);
  info.set(opener, TRUNK_HELLO_LABEL.length);
  info.set(answerer, TRUNK_HELLO_LABEL.length + RELAY_PUBLIC_KEY_BYTES);
  const key = p.hkdf(secret, hello.subarray(TRUNK_HELLO_NONCE_AT, TRUNK_HELLO_MAC_AT), info, 32);
  return p.hmacSha256(key, hello.subarray(0, TRUNK_HELLO_MAC_AT)).subarray(0, TRUNK_MAC_BYTES);
}

/** TRUNK_HELLO from the opener (static key `opener`) to the relay whose static key is `answerer`; `secret` is their static X25519 secret. */
export function encodeTrunkHello(p: CryptoProvider, secret: Uint8Array, opener: Uint8Array, answerer: Uint8Array, trunkId: Uint8Array, nonce: Uint8Array): Uint8Array {
  const out = new Uint8Array(TRUNK_HELLO_BYTES);
  out[0] = RelayMsg.TrunkHello;
  out[1] = TRUNK_VERSION;
  out.set(opener, TRUNK_HELLO_KEY_AT);
  out.set(trunkId, TRUNK_HELLO_ID_AT);
  out.set(nonce, TRUNK_HELLO_NONCE_AT);
  out.set(helloMac(p, secret, out, opener, answerer), TRUNK_HELLO_MAC_AT);
  return out;
}

/** A TRUNK_HELLO's fields (views into `data`), or null if it is not one of this version. Checks the format only: see {@link trunkHelloAuthentic}. */
export function parseTrunkHello(data: Uint8Array): { readonly publicKey: Uint8Array; readonly trunkId: Uint8Array; readonly nonce: Uint8Array } | null {
  if (data.length !== TRUNK_HELLO_BYTES || data[0] !== RelayMsg.TrunkHello || data[1] !== TRUNK_VERSION) return null;
  return { publicKey: data.subarray(TRUNK_HELLO_KEY_AT, TRUNK_HELLO_ID_AT), trunkId: data.subarray(TRUNK_HELLO_ID_AT, TRUNK_HELLO_NONCE_AT), nonce: data.subarray(TRUNK_HELLO_NONCE_AT, TRUNK_HELLO_MAC_AT) };
}

/** Whether a TRUNK_HELLO's MAC was made with the static secret of `opener` and `answerer`. */
export function trunkHelloAuthentic(p: CryptoProvider, secret: Uint8Array, data: Uint8Array, opener: Uint8Array, answerer: Uint8Array): boolean {
  return bytesEqual(helloMac(p, secret, data, opener, answerer), data.subarray(TRUNK_HELLO_MAC_AT));
}

/**
 * A trunk's keys for one end: HKDF-SHA256 of the static secret (salt: the opener's nonce and the answerer's; info: the
 * label and both static keys), 96 bytes: control keys opener to answerer and back, data keys opener to answerer and back.
 */
export function trunkKeys(p: CryptoProvider, secret: Uint8Array, openerNonce: Uint8Array, answererNonce: Uint8Array, opener: Uint8Array, answerer: Uint8Array, isOpener: boolean): TrunkKeys {
  const salt = new Uint8Array(2 * TRUNK_NONCE_BYTES);
  salt.set(openerNonce);
  salt.set(answererNonce, TRUNK_NONCE_BYTES);
  const info = new Uint8Array(TRUNK_KEYS_LABEL.length + 2 * RELAY_PUBLIC_KEY_BYTES);
  info.set(TRUNK_KEYS_LABEL);
  info.set(opener, TRUNK_KEYS_LABEL.length);
  info.set(answerer, TRUNK_KEYS_LABEL.length + RELAY_PUBLIC_KEY_BYTES);
  const okm = p.hkdf(secret, salt, info, 2 * AEAD_KEY + 2 * BLOCK_BYTES);
  const toAnswerer = p.aead(AeadCipher.Aes256Gcm, okm.subarray(0, AEAD_KEY));
  const toOpener = p.aead(AeadCipher.Aes256Gcm, okm.subarray(AEAD_KEY, 2 * AEAD_KEY));
  const dataToAnswerer = p.blockCipher(okm.subarray(2 * AEAD_KEY, 2 * AEAD_KEY + BLOCK_BYTES));
  const dataToOpener = p.blockCipher(okm.subarray(2 * AEAD_KEY + BLOCK_BYTES));
  okm.fill(0);
  return isOpener ? { sealOut: toAnswerer, sealIn: toOpener, dataOut: dataToAnswerer, dataIn: dataToOpener } : { sealOut: toOpener, sealIn: toAnswerer, dataOut: dataToOpener, dataIn: dataToAnswerer };
}

/** TRUNK_OK (the answerer's, counter 0 of its control key): the opener's trunk id, the answerer's, its nonce, and a tag over them. */
export function encodeTrunkOk(keys: TrunkKeys, openerId: Uint8Array, answererId: Uint8Array, nonce: Uint8Array): Uint8Array {
  const out = new Uint8Array(TRUNK_OK_BYTES);
  out[0] = RelayMsg.TrunkOk;
  out.set(openerId, TRUNK_ID_AT);
  out.set(answererId, TRUNK_OK_ANSWERER_AT);
  out.set(nonce, TRUNK_OK_NONCE_AT);
  keys.sealOut.seal(nonceFor(0), out.subarray(0, TRUNK_OK_TAG_AT), new Uint8Array(0), out, TRUNK_OK_TAG_AT);
  return out;
}

/** A TRUNK_OK's answerer trunk id and nonce (views), or null if it is not one. */
export function parseTrunkOk(data: Uint8Array): { readonly answererId: Uint8Array; readonly nonce: Uint8Array } | null {
  if (data.length !== TRUNK_OK_BYTES || data[0] !== RelayMsg.TrunkOk) return null;
  return { answererId: data.subarray(TRUNK_OK_ANSWERER_AT, TRUNK_OK_NONCE_AT), nonce: data.subarray(TRUNK_OK_NONCE_AT, TRUNK_OK_TAG_AT) };
}

/** Whether a TRUNK_OK's tag opens under the opener's keys (the answerer holds its static key). */
export function trunkOkAuthentic(keys: TrunkKeys, data: Uint8Array): boolean {
  return keys.sealIn.open(nonceFor(0), data.subarray(0, TRUNK_OK_TAG_AT), data.subarray(TRUNK_OK_TAG_AT), new Uint8Array(0), 0) === 0;
}

/** A trunk message as a TRUNK_SEALED frame naming the receiver's trunk id. */
export function sealTrunk(keys: TrunkKeys, trunkId: Uint8Array, counter: number, m: RelayControl): Uint8Array {
  return sealNamed(RelayMsg.TrunkSealed, keys.sealOut, trunkId, counter, m);
}

/** Opens a TRUNK_SEALED frame; null if it does not authenticate or holds no trunk message. */
export function openTrunk(keys: TrunkKeys, data: Uint8Array): Opened | null {
  return open(keys.sealIn, data, SEALED_UP_PREFIX, SEALED_SESSION_AT + SESSION_ID_BYTES, TRUNK_TYPES);
}

/** The counter of a TRUNK_SEALED frame (the receiver checks it against its window first), or -1 if too short. */
export const trunkSealedCounter = sealedUpCounter;
