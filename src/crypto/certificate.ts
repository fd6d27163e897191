import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { WireError } from '../wire/errors.js';
import { NetlaneError } from '../util/errors.js';
import { concat, toHex } from '../util/bytes.js';
import { checkIdentity, decodeIdentity, derivePeerId, encodeIdentity, identityToString, type Identity } from './identity.js';
import { bytesEqual, type CryptoProvider, type SigningKey } from './provider.js';

/**
 * Certificates bind an identity to an Ed25519 public key. Signed ones carry a certificate
 * authority's signature (the operator's key); unsigned ones are self-made and only accepted where
 * `IP_AllowWithoutAuth` allows, flagged `Unauthenticated`. Layout in docs/WIRE_FORMAT.md
 * "Certificate".
 */
export interface Certificate {
  readonly identity: Identity;
  readonly publicKey: Uint8Array;
  /** Unix seconds. */
  readonly createdAt: number;
  /** Unix seconds; 0 = no expiry (unsigned certificates only). */
  readonly expiresAt: number;
  /** If non-empty, the certificate is valid only from these IP addresses. */
  readonly addresses: readonly string[];
  /** Key id of the signing authority (8 bytes), or null when unsigned. */
  readonly caKeyId: Uint8Array | null;
  readonly signature: Uint8Array | null;
  /** The signed bytes. */
  readonly body: Uint8Array;
  /** The whole encoding (body, signature block). */
  readonly encoded: Uint8Array;
}

/** A trusted certificate authority: its key id is derived from its public key. */
export interface CertificateAuthority {
  readonly publicKey: Uint8Array;
}

const CERT_VERSION = 1;
const RESTRICT_ADDRESS = 1;
const MAX_ADDRESSES = 16;
/** Largest encoded certificate. */
export const MAX_CERT_BYTES = 1024;
/** Certificates dated this far in the future are still accepted (clock skew). */
export const CERT_CLOCK_SKEW_S = 300;
const SIG_LABEL = new TextEncoder().encode('netlane cert v1\0');
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** Key id of an authority's public key: the first 8 bytes of its SHA-256. */
export function caKeyId(provider: CryptoProvider, publicKey: Uint8Array): Uint8Array {
  return provider.sha256(publicKey).slice(0, 8);
}

function encodeBody(identity: Identity, publicKey: Uint8Array, createdAt: number, expiresAt: number, addresses: readonly string[]): Uint8Array {
  if (publicKey.length !== 32) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'public key must be 32 bytes');
  if (addresses.length > MAX_ADDRESSES) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `at most ${MAX_ADDRESSES} address restrictions`);
  const w = new Writer(new Uint8Array(MAX_CERT_BYTES));
  w.u8(CERT_VERSION, 'cert.version');
  encodeIdentity(w, checkIdentity(identity));
  w.bytes(publicKey, 'cert.publicKey');
  w.varint(createdAt, 'cert.createdAt');
  w.varint(expiresAt, 'cert.expiresAt');
  w.u8(addresses.length, 'cert.restrictions');
  for (const a of addresses) {
    const b = enc.encode(a);
    w.u8(RESTRICT_ADDRESS, 'cert.restriction.type');
    w.varint(b.length, 'cert.restriction.length');
    w.bytes(b, 'cert.restriction.value');
  }
  return w.written().slice();
}

function assemble(body: Uint8Array, caKey: Uint8Array | null, signature: Uint8Array | null): Uint8Array {
  const out = new Uint8Array(body.length + 1 + (signature ? 72 : 0));
  out.set(body);
  out[body.length] = signature ? 1 : 0;
  if (caKey && signature) {
    out.set(caKey, body.length + 1);
    out.set(signature, body.length + 9);
  }
  return out;
}

/** What a certificate says. `expiresAt` 0 means no expiry (allowed only unsigned). */
export interface CertificateFields {
  readonly identity: Identity;
  readonly publicKey: Uint8Array;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly addresses?: readonly string[];
}

/** A self-made, unsigned certificate. */
export function unsignedCertificate(fields: CertificateFields): Certificate {
  const body = encodeBody(fields.identity, fields.publicKey, fields.createdAt, fields.expiresAt, fields.addresses ?? []);
  return decodeCertificate(assemble(body, null, null));
}

/** A certificate signed by the authority `ca`. */
export function signCertificate(provider: CryptoProvider, ca: SigningKey, fields: CertificateFields): Certificate {
  if (fields.expiresAt <= fields.createdAt) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'a signed certificate needs an expiry after its creation time');
  const body = encodeBody(fields.identity, fields.publicKey, fields.createdAt, fields.expiresAt, fields.addresses ?? []);
  const sig = provider.sign(ca, concat(SIG_LABEL, body));
  return decodeCertificate(assemble(body, caKeyId(provider, ca.publicKey), sig));
}

/** Decodes a certificate. Throws WireError (only) on malformed input. Checks nothing cryptographic. */
export function decodeCertificate(bytes: Uint8Array): Certificate {
  if (bytes.length > MAX_CERT_BYTES) throw new WireError('cert', 'certificate too large');
  const r = new Reader(bytes);
  const version = r.u8('cert.version');
  if (version !== CERT_VERSION) throw new WireError('cert.version', `unknown certificate version ${version}`);
  const identity = decodeIdentity(r);
  const publicKey = r.bytes(32, 'cert.publicKey').slice();
  const createdAt = r.varint('cert.createdAt');
  const expiresAt = r.varint('cert.expiresAt');
  const n = r.u8('cert.restrictions');
  if (n > MAX_ADDRESSES) throw new WireError('cert.restrictions', 'too many restrictions');
  const addresses: string[] = [];
  for (let i = 0; i < n; i++) {
    const type = r.u8('cert.restriction.type');
    // Unknown restrictions fail closed: a restriction we cannot check must not be ignored.
    if (type !== RESTRICT_ADDRESS) throw new WireError('cert.restriction.type', `unknown restriction ${type}`);
    const len = r.varint('cert.restriction.length');
    if (len > 64) throw new WireError('cert.restriction.length', 'address too long');
    try {
      addresses.push(dec.decode(r.bytes(len, 'cert.restriction.value')));
    } catch (e) {
      if (e instanceof WireError) throw e;
      throw new WireError('cert.restriction.value', 'not UTF-8');
    }
  }
  const bodyEnd = r.position;
  const signed = r.u8('cert.signed');
  let caKey: Uint8Array | null = null;
  let signature: Uint8Array | null = null;
  if (signed === 1) {
    caKey = r.bytes(8, 'cert.caKeyId').slice();
    signature = r.bytes(64, 'cert.signature').slice();
  } else if (signed !== 0) throw new WireError('cert.signed', 'must be 0 or 1');
  if (r.remaining !== 0) throw new WireError('cert', 'trailing bytes');
  return { identity, publicKey, createdAt, expiresAt, addresses, caKeyId: caKey, signature, body: bytes.slice(0, bodyEnd), encoded: bytes.slice() };
}

/** Result of checking a peer's certificate. */
export type CertificateCheck = { readonly ok: true; readonly authenticated: boolean } | { readonly ok: false; readonly debug: string };

/**
 * Checks `cert` for a peer at `peerAddress` at time `nowS` (unix seconds). A signed certificate must
 * come from a trusted authority, verify, be within its validity and restrictions: then it is
 * authenticated. An unsigned one is never authenticated, and may not claim an IP identity or a
 * 64-bit id other than the one derived from its key (nobody can claim another's peer id without its
 * key). Whether unauthenticated peers are allowed is the caller's decision.
 */
export function checkCertificate(
  provider: CryptoProvider,
  cert: Certificate,
  trusted: readonly CertificateAuthority[],
  nowS: number,
  peerAddress: string,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean = (k, m, sig) => provider.verify(k, m, sig),
): CertificateCheck {
  if (cert.signature && cert.caKeyId) {
    const caKey = cert.caKeyId;
    const ca = trusted.find((t) => bytesEqual(caKeyId(provider, t.publicKey), caKey));
    if (!ca) return { ok: false, debug: `certificate signed by unknown authority ${toHex(caKey)}` };
    if (!verify(ca.publicKey, concat(SIG_LABEL, cert.body), cert.signature)) return { ok: false, debug: 'certificate signature does not verify' };
    if (cert.expiresAt <= nowS) return { ok: false, debug: `certificate for ${identityToString(cert.identity)} expired` };
    if (cert.createdAt > nowS + CERT_CLOCK_SKEW_S) return { ok: false, debug: 'certificate is not valid yet' };
    if (cert.addresses.length > 0 && !cert.addresses.includes(peerAddress)) return { ok: false, debug: `certificate not valid from address ${peerAddress}` };
    return { ok: true, authenticated: true };
  }
  if (cert.expiresAt !== 0 && cert.expiresAt <= nowS) return { ok: false, debug: 'certificate expired' };
  if (cert.identity.kind === 'ip') return { ok: false, debug: 'an IP identity needs a signed certificate' };
  if (cert.identity.kind === 'id' && cert.identity.id !== derivePeerId(provider, cert.publicKey)) {
    return { ok: false, debug: `peer id ${cert.identity.id} is not the id of the presented key` };
  }
  return { ok: true, authenticated: false };
}
