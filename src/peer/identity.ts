import { SecureHandshake } from '../crypto/handshake.js';
import { derivePeerId } from '../crypto/identity.js';

/** Identity strings (`id:N`, `ip:HOST:PORT`, `str:...`): what the facades take from the application. */
export { identityToString, parseIdentity, type Identity } from '../crypto/identity.js';
import type { CryptoProvider, SigningKey } from '../crypto/provider.js';

/** Who this peer is: its Ed25519 key, the peer id derived from it, and the handshake that proves it. */
export interface LocalPeer {
  readonly key: SigningKey;
  /** 64 bits derived from the public key, so that nobody else can claim it. */
  readonly peerId: bigint;
  readonly handshake: SecureHandshake;
}

/** This peer's identity from `key` (default: a fresh key from `provider`); `unixSeconds` checks certificate validity. */
export function localPeer(provider: CryptoProvider, key?: SigningKey, unixSeconds?: () => number): LocalPeer {
  const k = key ?? provider.signingKey();
  const handshake = new SecureHandshake({ provider, key: k, ...(unixSeconds ? { unixSeconds } : {}) });
  return { key: k, peerId: derivePeerId(provider, k.publicKey), handshake };
}
