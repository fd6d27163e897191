import { WireError } from '../wire/errors.js';
import { splitHostPort } from '../util/address.js';
import type { Reader } from '../wire/reader.js';
import type { Writer } from '../wire/writer.js';
import { NetlaneError } from '../util/errors.js';
import { toHex } from '../util/bytes.js';
import type { CryptoProvider } from './provider.js';

/**
 * Who a peer is. As GameNetworkingSockets' `SteamNetworkingIdentity`:
 * an IP address, a 64-bit id, a string or up to 32 bytes. String forms: `ip:1.2.3.4:27015`,
 * `ip:[::1]:27015`, `id:76561197960265729`, `str:alice`, `gen:0a0b0c`.
 */
export type Identity =
  | { readonly kind: 'ip'; readonly address: string; readonly port: number }
  | { readonly kind: 'id'; readonly id: bigint }
  | { readonly kind: 'str'; readonly value: string }
  | { readonly kind: 'bytes'; readonly value: Uint8Array };

/** Wire ids of identity kinds (docs/WIRE_FORMAT.md "Identity"). */
const KIND = { ip: 1, id: 2, str: 3, bytes: 4 } as const;
/** Longest string identity, in UTF-8 bytes. */
export const MAX_IDENTITY_STRING_BYTES = 64;
/** Longest byte-string identity. */
export const MAX_IDENTITY_BYTES = 32;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** The canonical string form of an identity. */
export function identityToString(id: Identity): string {
  switch (id.kind) {
    case 'ip':
      return id.address.includes(':') ? `ip:[${id.address}]:${id.port}` : `ip:${id.address}:${id.port}`;
    case 'id':
      return `id:${id.id.toString()}`;
    case 'str':
      return `str:${id.value}`;
    case 'bytes':
      return `gen:${toHex(id.value)}`;
  }
}

function invalid(what: string): NetlaneError {
  return new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `invalid identity: ${what}`);
}

/** Checks an identity's limits; throws NetlaneError (ERR_NETLANE_INVALID_ARGUMENT) if it breaks one. */
export function checkIdentity(id: Identity): Identity {
  switch (id.kind) {
    case 'ip':
      if (!/^[0-9a-fA-F.:]{2,45}$/.test(id.address) || !Number.isInteger(id.port) || id.port < 0 || id.port > 65535) throw invalid(`bad ip identity ${id.address}:${id.port}`);
      return id;
    case 'id':
      if (id.id <= 0n || id.id >= 1n << 64n) throw invalid('id must be in 1 .. 2^64-1');
      return id;
    case 'str': {
      const n = enc.encode(id.value).length;
      if (n === 0 || n > MAX_IDENTITY_STRING_BYTES) throw invalid(`string identity must be 1..${MAX_IDENTITY_STRING_BYTES} UTF-8 bytes`);
      return id;
    }
    case 'bytes':
      if (id.value.length === 0 || id.value.length > MAX_IDENTITY_BYTES) throw invalid(`byte identity must be 1..${MAX_IDENTITY_BYTES} bytes`);
      return id;
  }
}

/** Parses the string form (see {@link Identity}). Throws NetlaneError on bad input. */
export function parseIdentity(s: string): Identity {
  const colon = s.indexOf(':');
  if (colon < 0) throw invalid(`"${s}" has no kind prefix (ip:, id:, str:, gen:)`);
  const kind = s.slice(0, colon);
  const rest = s.slice(colon + 1);
  switch (kind) {
    case 'ip': {
      const hp = splitHostPort(rest);
      if (!hp) throw invalid(`"${s}" is not ip:address:port`);
      return checkIdentity({ kind: 'ip', address: hp.address, port: hp.port });
    }
    case 'id':
      if (!/^\d{1,20}$/.test(rest)) throw invalid(`"${s}" is not id:<decimal 64-bit>`);
      return checkIdentity({ kind: 'id', id: BigInt(rest) });
    case 'str':
      return checkIdentity({ kind: 'str', value: rest });
    case 'gen': {
      if (!/^([0-9a-fA-F]{2})+$/.test(rest)) throw invalid(`"${s}" is not gen:<hex bytes>`);
      const b = new Uint8Array(rest.length / 2);
      for (let i = 0; i < b.length; i++) b[i] = parseInt(rest.slice(i * 2, i * 2 + 2), 16);
      return checkIdentity({ kind: 'bytes', value: b });
    }
    default:
      throw invalid(`unknown kind "${kind}"`);
  }
}

export function identitiesEqual(a: Identity, b: Identity): boolean {
  return identityToString(a) === identityToString(b);
}

/** Writes kind(1) length(1) body. */
export function encodeIdentity(w: Writer, id: Identity): void {
  let body: Uint8Array;
  switch (id.kind) {
    case 'ip':
      body = enc.encode(identityToString(id).slice(3));
      break;
    case 'id': {
      body = new Uint8Array(8);
      new DataView(body.buffer).setBigUint64(0, id.id);
      break;
    }
    case 'str':
      body = enc.encode(id.value);
      break;
    case 'bytes':
      body = id.value;
      break;
  }
  w.u8(KIND[id.kind], 'identity.kind');
  w.u8(body.length, 'identity.length');
  w.bytes(body, 'identity.body');
}

/** Reads an identity. Throws WireError (only) on malformed input. */
export function decodeIdentity(r: Reader): Identity {
  const kind = r.u8('identity.kind');
  const body = r.bytes(r.u8('identity.length'), 'identity.body');
  try {
    switch (kind) {
      case KIND.ip:
        return parseIdentity(`ip:${dec.decode(body)}`);
      case KIND.id: {
        if (body.length !== 8) throw new WireError('identity.id', 'must be 8 bytes');
        return checkIdentity({ kind: 'id', id: new DataView(body.buffer, body.byteOffset, 8).getBigUint64(0) });
      }
      case KIND.str:
        return checkIdentity({ kind: 'str', value: dec.decode(body) });
      case KIND.bytes:
        return checkIdentity({ kind: 'bytes', value: body.slice() });
      default:
        throw new WireError('identity.kind', `unknown identity kind ${kind}`);
    }
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError('identity', e instanceof Error ? e.message : 'malformed');
  }
}

const PEER_ID_LABEL = enc.encode('netlane peer id v1');

/**
 * The 64-bit peer id of an Ed25519 public key: the first 8 bytes of SHA-256(label || key), never 0.
 * Only the holder of the key can present a certificate for this id without a certificate authority.
 */
export function derivePeerId(provider: CryptoProvider, publicKey: Uint8Array): bigint {
  const h = provider.sha256(PEER_ID_LABEL, publicKey);
  const id = new DataView(h.buffer, h.byteOffset, 8).getBigUint64(0);
  return id === 0n ? 1n : id;
}
