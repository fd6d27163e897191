/** Cryptography: the provider, packet protection, the secure handshake, identities and certificates. */
export { AeadCipher, AEAD_TAG_BYTES, AEAD_NONCE_BYTES, AEAD_KEY_BYTES, isSmallOrderX25519, BLOCK_BYTES, type Aead, type BlockCipher, type CryptoProvider, type CryptoProviderOptions, type KeyExchangePair, type SigningKey } from './provider.js';
export { NodeCryptoProvider, type NodeCryptoProviderOptions } from './node-provider.js';
export { SodiumCryptoProvider, defaultCryptoProvider } from './sodium-provider.js';
export { SessionKeys, NULL_KEYS } from './protection.js';
export { SecureHandshake, PROTOCOL_VERSION, COOKIE_BYTES, type SecureHandshakeOptions } from './handshake.js';
export { parseIdentity, identityToString, checkIdentity, derivePeerId, identitiesEqual, type Identity } from './identity.js';
export { signCertificate, unsignedCertificate, decodeCertificate, checkCertificate, caKeyId, type Certificate, type CertificateAuthority, type CertificateFields, type CertificateCheck } from './certificate.js';
export { ConnectionInfoFlags } from './types.js';
export type { ConnectionKeys, HandshakeLayer, ClientHandshake, HandshakeOutcome, HandshakeConfig, PeerInfo, PeerAddress } from './types.js';
export { encodeKeyFile, decodeKeyFile, encodeRelayKeyFile, decodeRelayKeyFile, encodeCertificateFile, decodeCertificateFile, decodePublicKey, type KeyFile } from './keyfile.js';
