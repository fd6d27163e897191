import { NetlaneError } from '../util/errors.js';
import { caKeyId, decodeCertificate, type Certificate } from './certificate.js';
import { toHex } from '../util/bytes.js';
import { derivePeerId, identityToString } from './identity.js';
import type { CryptoProvider, KeyExchangePair, SigningKey } from './provider.js';

/**
 * Text forms of keys and certificates (what `netlane keygen` and `netlane cert` write). A key file
 * is JSON with the private seed; keep it private. A certificate file is JSON with the certificate in
 * base64 and its fields for humans; only `certificate` is read back.
 */
export interface KeyFile {
  readonly kind: 'netlane-ed25519-key';
  /** base64 of the 32-byte private seed. */
  readonly seed: string;
  readonly publicKey: string;
  /** The key's 64-bit peer id (decimal). */
  readonly peerId: string;
  /** The key's id when it signs certificates (hex). */
  readonly keyId: string;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

function fromB64(s: unknown, what: string, len?: number): Uint8Array {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/=_-]+$/.test(s)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `${what}: not base64`);
  const b = new Uint8Array(Buffer.from(s, 'base64'));
  if (len !== undefined && b.length !== len) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `${what}: expected ${len} bytes, got ${b.length}`);
  return b;
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object') return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `${what}: not a JSON object`);
}

export function encodeKeyFile(provider: CryptoProvider, key: SigningKey): string {
  const f: KeyFile = { kind: 'netlane-ed25519-key', seed: b64(key.seed), publicKey: b64(key.publicKey), peerId: derivePeerId(provider, key.publicKey).toString(), keyId: toHex(caKeyId(provider, key.publicKey)) };
  return `${JSON.stringify(f, null, 2)}\n`;
}

/** Reads a key file; checks that the public key matches the seed. */
export function decodeKeyFile(provider: CryptoProvider, text: string): SigningKey {
  const j = parseJson(text, 'key file');
  if (j['kind'] !== 'netlane-ed25519-key') throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'key file: kind is not netlane-ed25519-key');
  const key = provider.signingKey(fromB64(j['seed'], 'key file seed', 32));
  if (j['publicKey'] !== undefined && b64(key.publicKey) !== j['publicKey']) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'key file: public key does not match the seed');
  return key;
}

/** A relay's static X25519 key as a file (what `netlane relay --key FILE` keeps): the private seed and the public key. */
export function encodeRelayKeyFile(seed: Uint8Array, key: KeyExchangePair): string {
  return `${JSON.stringify({ kind: 'netlane-x25519-relay-key', seed: b64(seed), publicKey: Buffer.from(key.publicKey).toString('base64url') }, null, 2)}\n`;
}

/** Reads a relay key file: the key pair, checked against the public key written with it. */
export function decodeRelayKeyFile(provider: CryptoProvider, text: string): KeyExchangePair {
  const j = parseJson(text, 'relay key file');
  if (j['kind'] !== 'netlane-x25519-relay-key') throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'relay key file: kind is not netlane-x25519-relay-key');
  const key = provider.generateKeyExchange(fromB64(j['seed'], 'relay key file seed', 32));
  if (j['publicKey'] !== undefined && Buffer.from(key.publicKey).toString('base64url') !== j['publicKey']) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'relay key file: public key does not match the seed');
  return key;
}

export function encodeCertificateFile(provider: CryptoProvider, cert: Certificate): string {
  return `${JSON.stringify(
    {
      kind: 'netlane-certificate',
      certificate: b64(cert.encoded),
      identity: identityToString(cert.identity),
      publicKey: b64(cert.publicKey),
      createdAt: new Date(cert.createdAt * 1000).toISOString(),
      expiresAt: cert.expiresAt ? new Date(cert.expiresAt * 1000).toISOString() : null,
      addresses: cert.addresses,
      authority: cert.caKeyId ? toHex(cert.caKeyId) : null,
      peerId: derivePeerId(provider, cert.publicKey).toString(),
    },
    null,
    2,
  )}\n`;
}

/** Reads a certificate file (or bare base64). */
export function decodeCertificateFile(text: string): Certificate {
  const t = text.trim();
  const raw = t.startsWith('{') ? parseJson(t, 'certificate file')['certificate'] : t;
  try {
    return decodeCertificate(fromB64(raw, 'certificate'));
  } catch (e) {
    if (e instanceof NetlaneError) throw e;
    throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `certificate: ${e instanceof Error ? e.message : 'malformed'}`);
  }
}

/** A public key given as base64, or read from a key file. */
export function decodePublicKey(text: string): Uint8Array {
  const t = text.trim();
  if (t.startsWith('{')) return fromB64(parseJson(t, 'key file')['publicKey'], 'public key', 32);
  return fromB64(t, 'public key', 32);
}
