import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { WireError } from '../wire/errors.js';
import { NetlaneError } from '../util/errors.js';
import { concat, flatString, toHex } from '../util/bytes.js';
import { checkCertificate, decodeCertificate, unsignedCertificate, type Certificate, type CertificateAuthority } from './certificate.js';
import { derivePeerId, identityToString, type Identity } from './identity.js';
import { AeadCipher, bytesEqual, type CryptoProvider, type KeyExchangePair, type SigningKey } from './provider.js';
import { CIPHER_NAMES, NULL_KEYS, SessionKeys } from './protection.js';
import { ConnectionInfoFlags, MAX_VIRTUAL_PORT, type ClientHandshake, type ConnectionKeys, type HandshakeConfig, type HandshakeLayer, type HandshakeOutcome, type PeerAddress, type PeerInfo } from './types.js';

/** The protocol version of the secure handshake (the plaintext prototype was 1). */
export const PROTOCOL_VERSION = 2;

const enc = new TextEncoder();
const SIG_CLIENT = enc.encode('netlane hs client v2\0');
const SIG_SERVER = enc.encode('netlane hs server v2\0');
const KDF_INFO = enc.encode('netlane v2 traffic\0');
const NONCE_BYTES = 16;
const COOKIE_MAC_BYTES = 16;
/** Cookie: tick(2) keyGeneration(1) mac(16). */
export const COOKIE_BYTES = 3 + COOKIE_MAC_BYTES;
/** A cookie is valid for this many ticks of 2^20 µs (about 4.2 s), as GameNetworkingSockets. */
const COOKIE_MAX_AGE_TICKS = 4;

const BAD_CRYPT = 4002;
const BAD_CERT = 4003;
const BAD_VERSION = 4006;

/** The signed description of one side's key exchange (docs/WIRE_FORMAT.md "Handshake payloads"). */
export interface CryptInfo {
  minVersion: number;
  maxVersion: number;
  version: number;
  ephemeral: Uint8Array;
  nonce: Uint8Array;
  ciphers: number[];
  /** Server: the cipher it chose. Client: 0. */
  chosen: number;
  /** Client: the virtual port it connects to, or -1 (none: the field is absent). */
  virtualPort: number;
}

/** Encodes a crypt info (exported for the handshake tests, which play a dishonest server). */
export function encodeCryptInfo(c: CryptInfo): Uint8Array {
  const w = new Writer(new Uint8Array(128));
  w.u32(c.minVersion, 'crypt.minVersion');
  w.u32(c.maxVersion, 'crypt.maxVersion');
  w.u32(c.version, 'crypt.version');
  w.bytes(c.ephemeral, 'crypt.ephemeral');
  w.bytes(c.nonce, 'crypt.nonce');
  w.u8(c.ciphers.length, 'crypt.cipherCount');
  for (const x of c.ciphers) w.u8(x, 'crypt.cipher');
  w.u8(c.chosen, 'crypt.chosen');
  if (c.virtualPort >= 0) w.u32(c.virtualPort, 'crypt.virtualPort');
  return w.written().slice();
}

function decodeCryptInfo(b: Uint8Array): CryptInfo {
  const r = new Reader(b);
  const minVersion = r.u32('crypt.minVersion');
  const maxVersion = r.u32('crypt.maxVersion');
  const version = r.u32('crypt.version');
  const ephemeral = r.bytes(32, 'crypt.ephemeral');
  const nonce = r.bytes(NONCE_BYTES, 'crypt.nonce');
  const n = r.u8('crypt.cipherCount');
  if (n === 0 || n > 8) throw new WireError('crypt.cipherCount', 'must be 1..8');
  const ciphers: number[] = [];
  for (let i = 0; i < n; i++) ciphers.push(r.u8('crypt.cipher'));
  const chosen = r.u8('crypt.chosen');
  let virtualPort = -1;
  if (r.remaining === 4) {
    virtualPort = r.u32('crypt.virtualPort');
    if (virtualPort > MAX_VIRTUAL_PORT) throw new WireError('crypt.virtualPort', 'must be 0..2^31-1');
  }
  if (r.remaining !== 0) throw new WireError('crypt', 'trailing bytes');
  return { minVersion, maxVersion, version, ephemeral, nonce, ciphers, chosen, virtualPort };
}

/** One side's handshake message: certificate, signed crypt info, signature. */
export interface HandshakeMessage {
  certBytes: Uint8Array;
  cryptBytes: Uint8Array;
  signature: Uint8Array;
}

/** Encodes a CONNECT_REQUEST / CONNECT_OK payload (exported for the handshake tests). */
export function encodeMessage(m: HandshakeMessage): Uint8Array {
  const w = new Writer(new Uint8Array(m.certBytes.length + m.cryptBytes.length + 80));
  w.varint(m.certBytes.length, 'hs.certLength');
  w.bytes(m.certBytes, 'hs.cert');
  w.varint(m.cryptBytes.length, 'hs.cryptLength');
  w.bytes(m.cryptBytes, 'hs.crypt');
  w.bytes(m.signature, 'hs.signature');
  return w.written().slice();
}

/** Decodes a CONNECT_REQUEST / CONNECT_OK payload. Throws WireError (only) on malformed input. */
export function decodeHandshakeMessage(b: Uint8Array): { cert: Certificate; crypt: CryptInfo; message: HandshakeMessage } {
  const r = new Reader(b);
  const certBytes = r.bytes(r.varint('hs.certLength'), 'hs.cert');
  const cryptBytes = r.bytes(r.varint('hs.cryptLength'), 'hs.crypt');
  const signature = r.bytes(64, 'hs.signature');
  if (r.remaining !== 0) throw new WireError('hs', 'trailing bytes');
  return { cert: decodeCertificate(certBytes), crypt: decodeCryptInfo(cryptBytes), message: { certBytes, cryptBytes, signature } };
}

function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

/**
 * Ciphers this side offers, most preferred first (docs/WIRE_FORMAT.md "Cipher ids"). `Cipher` 0
 * (automatic) offers both AEADs, the provider's `preferredCipher` first; 2 or 3 offers that AEAD alone.
 * `Unencrypted` 0-3 places none as in GNS.
 */
export function cipherList(config: Pick<HandshakeConfig, 'Cipher' | 'Unencrypted'>, preferred: AeadCipher = AeadCipher.Aes256Gcm): number[] {
  const explicit = config.Cipher === AeadCipher.Aes256Gcm || config.Cipher === AeadCipher.ChaCha20Poly1305;
  const aeads = explicit ? [config.Cipher] : preferred === AeadCipher.ChaCha20Poly1305 ? [AeadCipher.ChaCha20Poly1305, AeadCipher.Aes256Gcm] : [AeadCipher.Aes256Gcm, AeadCipher.ChaCha20Poly1305];
  switch (config.Unencrypted) {
    case 1:
      return [...aeads, AeadCipher.Null];
    case 2:
      return [AeadCipher.Null, ...aeads];
    case 3:
      return [AeadCipher.Null];
    default:
      return aeads;
  }
}

/** Whether `list` offers ChaCha20-Poly1305 ahead of AES-256-GCM (false when it lacks either). */
function chachaFirst(list: readonly number[]): boolean {
  const c = list.indexOf(AeadCipher.ChaCha20Poly1305);
  const a = list.indexOf(AeadCipher.Aes256Gcm);
  return c >= 0 && a >= 0 && c < a;
}

/**
 * The negotiation rule (docs/WIRE_FORMAT.md "Cipher ids"), which the server applies and the client
 * checks: the first entry of the server's list that the client also offers (0 if none); but when that
 * entry is an AEAD and both lists offer both AEADs, ChaCha20-Poly1305 if both lists put it ahead of
 * AES-256-GCM, else AES-256-GCM.
 */
export function chooseCipher(server: readonly number[], client: readonly number[]): number {
  const first = server.find((c) => client.includes(c)) ?? 0;
  if (first === 0 || first === AeadCipher.Null) return first;
  const both = (l: readonly number[]): boolean => l.includes(AeadCipher.Aes256Gcm) && l.includes(AeadCipher.ChaCha20Poly1305);
  if (!both(server) || !both(client)) return first;
  return chachaFirst(server) && chachaFirst(client) ? AeadCipher.ChaCha20Poly1305 : AeadCipher.Aes256Gcm;
}

/** Options of {@link SecureHandshake}. */
export interface SecureHandshakeOptions {
  readonly provider: CryptoProvider;
  /** This endpoint's Ed25519 key. Generated when absent (then the identity is the key's peer id). */
  readonly key?: SigningKey;
  /** A certificate for `key` signed by an authority; without it the endpoint presents an unsigned one. */
  readonly certificate?: Certificate | Uint8Array;
  /** Identity for the unsigned certificate. Default: `id:` + the key's derived peer id. */
  readonly identity?: Identity;
  /** Authorities whose certificates are trusted. */
  readonly trustedAuthorities?: readonly CertificateAuthority[];
  /** Wall clock (unix seconds) for certificate validity. Default: the system clock. */
  readonly unixSeconds?: () => number;
  /** Protocol versions spoken. Default: exactly {@link PROTOCOL_VERSION}. */
  readonly versions?: { readonly min: number; readonly max: number };
  /** Cookie keys rotate this often (µs); cookies under the previous key stay valid. Default 60 s. */
  readonly cookieKeyRotationUs?: number;
}

interface CookieKey {
  readonly generation: number;
  readonly key: Uint8Array;
}

/**
 * The secure handshake (docs/SECURITY.md): HMAC-SHA256 stateless cookies with
 * key rotation; signed X25519 key exchange with certificates; HKDF-SHA256 keys per direction over
 * the transcript; version and cipher negotiation that a man in the middle cannot downgrade.
 */
export class SecureHandshake implements HandshakeLayer {
  readonly minProtocolVersion: number;
  readonly maxProtocolVersion: number;
  readonly provider: CryptoProvider;
  readonly key: SigningKey;
  readonly certificate: Certificate;
  /** Signature verifications so far (the flood tests check that cookie-less requests cost none). */
  verifications = 0;
  readonly #trusted: readonly CertificateAuthority[];
  readonly #now: () => number;
  readonly #rotationUs: number;
  #cookieKey: CookieKey | null = null;
  #cookiePrev: CookieKey | null = null;
  readonly #cookieInput = new Uint8Array(8 + 64);

  constructor(options: SecureHandshakeOptions) {
    this.provider = options.provider;
    this.key = options.key ?? options.provider.signingKey();
    this.#trusted = options.trustedAuthorities ?? [];
    this.#now = options.unixSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.#rotationUs = options.cookieKeyRotationUs ?? 60_000_000;
    const versions = options.versions ?? { min: PROTOCOL_VERSION, max: PROTOCOL_VERSION };
    if (!(versions.min >= 1 && versions.max >= versions.min && versions.max <= 0xffffffff)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'bad protocol version range');
    this.minProtocolVersion = versions.min;
    this.maxProtocolVersion = versions.max;
    if (options.certificate) {
      const cert = options.certificate instanceof Uint8Array ? decodeCertificate(options.certificate) : options.certificate;
      if (!bytesEqual(cert.publicKey, this.key.publicKey)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'the certificate is for another key');
      this.certificate = cert;
    } else {
      this.certificate = unsignedCertificate({
        identity: options.identity ?? { kind: 'id', id: derivePeerId(this.provider, this.key.publicKey) },
        publicKey: this.key.publicKey,
        createdAt: this.#now(),
        expiresAt: 0,
      });
    }
  }

  /** This endpoint's identity string. */
  get identity(): string {
    return identityToString(this.certificate.identity);
  }

  // ------------------------------------------------------------ cookies

  #rotate(now: number): void {
    const gen = Math.floor(now / this.#rotationUs);
    const cur = this.#cookieKey;
    if (cur && cur.generation >= gen) return;
    this.#cookiePrev = cur && cur.generation === gen - 1 ? cur : null;
    const key = new Uint8Array(32);
    this.provider.fillRandom(key);
    this.#cookieKey = { generation: gen, key };
  }

  #mac(key: Uint8Array, tick: number, from: PeerAddress, clientCid: number): Uint8Array {
    const b = this.#cookieInput;
    b[0] = tick >>> 8;
    b[1] = tick & 0xff;
    b[2] = from.port >>> 8;
    b[3] = from.port & 0xff;
    b[4] = clientCid >>> 24;
    b[5] = (clientCid >>> 16) & 0xff;
    b[6] = (clientCid >>> 8) & 0xff;
    b[7] = clientCid & 0xff;
    const n = Math.min(64, from.address.length);
    for (let i = 0; i < n; i++) b[8 + i] = from.address.charCodeAt(i) & 0xff;
    return this.provider.hmacSha256(key, b.subarray(0, 8 + n));
  }

  issueCookie(now: number, from: PeerAddress, clientCid: number): Uint8Array {
    this.#rotate(now);
    const k = this.#cookieKey as CookieKey;
    const tick = Math.floor(now / 1_048_576) & 0xffff;
    const out = new Uint8Array(COOKIE_BYTES);
    out[0] = tick >>> 8;
    out[1] = tick & 0xff;
    out[2] = k.generation & 0xff;
    out.set(this.#mac(k.key, tick, from, clientCid).subarray(0, COOKIE_MAC_BYTES), 3);
    return out;
  }

  checkCookie(now: number, from: PeerAddress, clientCid: number, cookie: Uint8Array): boolean {
    if (cookie.length !== COOKIE_BYTES) return false;
    this.#rotate(now);
    const tick = ((cookie[0] as number) << 8) | (cookie[1] as number);
    const age = ((Math.floor(now / 1_048_576) & 0xffff) - tick + 0x10000) & 0xffff;
    if (age > COOKIE_MAX_AGE_TICKS) return false;
    const gen = cookie[2] as number;
    const cur = this.#cookieKey as CookieKey;
    const prev = this.#cookiePrev;
    const k = (cur.generation & 0xff) === gen ? cur : prev && (prev.generation & 0xff) === gen ? prev : null;
    if (!k) return false;
    return bytesEqual(this.#mac(k.key, tick, from, clientCid).subarray(0, COOKIE_MAC_BYTES), cookie.subarray(3));
  }

  // ------------------------------------------------------------ key exchange

  #cryptInfo(eph: KeyExchangePair, version: number, ciphers: number[], chosen: number, virtualPort = -1): CryptInfo {
    const nonce = new Uint8Array(NONCE_BYTES);
    this.provider.fillRandom(nonce);
    return { minVersion: this.minProtocolVersion, maxVersion: this.maxProtocolVersion, version, ephemeral: eph.publicKey, nonce, ciphers, chosen, virtualPort };
  }

  /** Checks the peer's certificate and the auth policy. */
  #checkPeer(cert: Certificate, peer: PeerAddress, config: HandshakeConfig): HandshakeOutcome<{ authenticated: boolean; warning: string | null }> {
    const c = checkCertificate(this.provider, cert, this.#trusted, this.#now(), peer.address, (k, m, s) => this.#verify(k, m, s));
    if (!c.ok) return { ok: false, reason: BAD_CERT, debug: c.debug };
    if (c.authenticated) return { ok: true, authenticated: true, warning: null };
    const allow = Math.max(config.IP_AllowWithoutAuth, isLoopback(peer.address) ? config.IPLocalHost_AllowWithoutAuth : 0);
    if (allow <= 0) return { ok: false, reason: BAD_CERT, debug: 'peer has no certificate signed by a trusted authority' };
    return { ok: true, authenticated: false, warning: allow === 1 ? `peer ${identityToString(cert.identity)} is not authenticated` : null };
  }

  #verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    this.verifications++;
    return this.provider.verify(publicKey, message, signature);
  }

  #keys(cipher: number, shared: Uint8Array, clientCid: number, serverCid: number, client: HandshakeMessage, server: HandshakeMessage, clientNonce: Uint8Array, serverNonce: Uint8Array, isServer: boolean, config: HandshakeConfig): ConnectionKeys {
    const transcript = this.provider.sha256(client.certBytes, client.cryptBytes, server.certBytes, server.cryptBytes);
    const okm = this.provider.hkdf(shared, concat(clientNonce, serverNonce), concat(KDF_INFO, u32be(clientCid), u32be(serverCid), transcript), 64);
    shared.fill(0);
    if (cipher === AeadCipher.Null) return NULL_KEYS;
    const c2s = okm.slice(0, 32);
    const s2c = okm.slice(32, 64);
    okm.fill(0);
    const c = cipher as AeadCipher;
    return isServer ? new SessionKeys(this.provider, c, s2c, c2s, config.KeyUpdatePackets) : new SessionKeys(this.provider, c, c2s, s2c, config.KeyUpdatePackets);
  }

  #peerInfo(cert: Certificate, authenticated: boolean, cipher: number, warning: string | null, virtualPort = -1): PeerInfo {
    return {
      identity: flatString(identityToString(cert.identity)),
      keyFingerprint: toHex(this.provider.sha256(cert.publicKey).subarray(0, 8)),
      authenticated,
      flags: (authenticated ? 0 : ConnectionInfoFlags.Unauthenticated) | (cipher === AeadCipher.Null ? ConnectionInfoFlags.Unencrypted : 0),
      cipher: CIPHER_NAMES[cipher] ?? String(cipher),
      warning,
      virtualPort,
    };
  }

  startClient(clientCid: number, remote: PeerAddress, config: HandshakeConfig, virtualPort = -1): ClientHandshake {
    if (!Number.isInteger(virtualPort) || virtualPort < -1 || virtualPort > MAX_VIRTUAL_PORT) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `virtual port ${virtualPort} is not in -1..2^31-1`);
    const eph = this.provider.generateKeyExchange();
    const ciphers = cipherList(config, this.provider.preferredCipher);
    let cached: { cookie: Uint8Array; version: number; payload: Uint8Array; message: HandshakeMessage; crypt: CryptInfo } | null = null;
    return {
      request: (cookie: Uint8Array, version: number): Uint8Array => {
        if (cached && cached.version === version && bytesEqual(cached.cookie, cookie)) return cached.payload;
        const crypt = cached && cached.version === version ? cached.crypt : this.#cryptInfo(eph, version, ciphers, 0, virtualPort);
        const cryptBytes = encodeCryptInfo(crypt);
        const certBytes = this.certificate.encoded;
        const signature = this.provider.sign(this.key, concat(SIG_CLIENT, u32be(clientCid), new Uint8Array([cookie.length]), cookie, certBytes, cryptBytes));
        const message = { certBytes, cryptBytes, signature };
        cached = { cookie: cookie.slice(), version, payload: encodeMessage(message), message, crypt };
        return cached.payload;
      },
      finish: (serverCid: number, replyPayload: Uint8Array): HandshakeOutcome<{ keys: ConnectionKeys; peer: PeerInfo }> => {
        if (!cached) return { ok: false, reason: BAD_CRYPT, debug: 'CONNECT_OK before any request' };
        let reply: ReturnType<typeof decodeHandshakeMessage>;
        try {
          reply = decodeHandshakeMessage(replyPayload);
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
          return { ok: false, reason: BAD_CRYPT, debug: `malformed CONNECT_OK: ${e.message}` };
        }
        const mine = cached.message;
        const signed = concat(SIG_SERVER, u32be(clientCid), u32be(serverCid), this.provider.sha256(mine.certBytes, mine.cryptBytes), reply.message.certBytes, reply.message.cryptBytes);
        if (!this.#verify(reply.cert.publicKey, signed, reply.message.signature)) return { ok: false, reason: BAD_CRYPT, debug: 'server handshake signature does not verify' };
        const peer = this.#checkPeer(reply.cert, remote, config);
        if (!peer.ok) return peer;
        const s = reply.crypt;
        if (s.version !== cached.version || s.version !== Math.min(this.maxProtocolVersion, s.maxVersion)) {
          return { ok: false, reason: BAD_VERSION, debug: `protocol downgrade detected: using ${cached.version}, both speak ${Math.min(this.maxProtocolVersion, s.maxVersion)}` };
        }
        if (!ciphers.includes(s.chosen) || s.chosen !== chooseCipher(s.ciphers, ciphers)) return { ok: false, reason: BAD_CRYPT, debug: `server chose cipher ${s.chosen}, which negotiation does not give` };
        const shared = this.provider.deriveSharedSecret(eph, s.ephemeral);
        if (!shared) return { ok: false, reason: BAD_CRYPT, debug: 'bad server key exchange key' };
        const keys = this.#keys(s.chosen, shared, clientCid, serverCid, mine, reply.message, cached.crypt.nonce, s.nonce, false, config);
        return { ok: true, keys, peer: this.#peerInfo(reply.cert, peer.authenticated, s.chosen, peer.warning) };
      },
    };
  }

  acceptClient(
    from: PeerAddress,
    clientCid: number,
    serverCid: number,
    version: number,
    cookie: Uint8Array,
    requestPayload: Uint8Array,
    config: HandshakeConfig,
  ): HandshakeOutcome<{ replyPayload: Uint8Array; keys: ConnectionKeys; peer: PeerInfo }> {
    let req: ReturnType<typeof decodeHandshakeMessage>;
    try {
      req = decodeHandshakeMessage(requestPayload);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      return { ok: false, reason: BAD_CRYPT, debug: `malformed connect request: ${e.message}` };
    }
    const signed = concat(SIG_CLIENT, u32be(clientCid), new Uint8Array([cookie.length]), cookie, req.message.certBytes, req.message.cryptBytes);
    if (!this.#verify(req.cert.publicKey, signed, req.message.signature)) return { ok: false, reason: BAD_CRYPT, debug: 'connect request signature does not verify' };
    const peer = this.#checkPeer(req.cert, from, config);
    if (!peer.ok) return peer;
    const c = req.crypt;
    const expected = Math.min(c.maxVersion, this.maxProtocolVersion);
    if (c.version !== version || version !== expected) return { ok: false, reason: BAD_VERSION, debug: `protocol downgrade detected: request uses ${version}, both speak ${expected}` };
    const mine = cipherList(config, this.provider.preferredCipher);
    const chosen = chooseCipher(mine, c.ciphers);
    if (chosen === 0) return { ok: false, reason: BAD_CRYPT, debug: 'no cipher in common (Unencrypted needs both sides; an explicit Cipher offers that AEAD alone)' };
    const eph = this.provider.generateKeyExchange();
    const shared = this.provider.deriveSharedSecret(eph, c.ephemeral);
    if (!shared) return { ok: false, reason: BAD_CRYPT, debug: 'bad client key exchange key' };
    const crypt = this.#cryptInfo(eph, version, mine, chosen);
    const cryptBytes = encodeCryptInfo(crypt);
    const certBytes = this.certificate.encoded;
    const signature = this.provider.sign(this.key, concat(SIG_SERVER, u32be(clientCid), u32be(serverCid), this.provider.sha256(req.message.certBytes, req.message.cryptBytes), certBytes, cryptBytes));
    const message = { certBytes, cryptBytes, signature };
    const keys = this.#keys(chosen, shared, clientCid, serverCid, req.message, message, c.nonce, crypt.nonce, true, config);
    return { ok: true, replyPayload: encodeMessage(message), keys, peer: this.#peerInfo(req.cert, peer.authenticated, chosen, peer.warning, c.virtualPort) };
  }
}
