/**
 * The seam between the protocol core and the crypto layer. The core seals every data packet with
 * the header as associated data and opens every received one before it reads a frame; it carries the
 * handshake payloads opaquely and asks this layer for cookies, keys and the peer's identity.
 */

/** An address as the crypto layer sees it (structurally the core's SocketAddress). */
export interface PeerAddress {
  readonly address: string;
  readonly port: number;
}

/** Packet protection of one connection, both directions, with key updates inside. */
export interface ConnectionKeys {
  /** Bytes a seal adds (the AEAD tag; 0 when unencrypted). */
  readonly overhead: number;
  /** The key phase bit the next sealed packet must carry in its header. */
  readonly sendPhase: boolean;
  /** Whether packets are encrypted (false only when both sides asked for `Unencrypted`). */
  readonly encrypted: boolean;
  /** Key updates so far (send direction). */
  readonly keyUpdates: number;
  /**
   * Seals `plaintext` into `out` at `outOffset`, ciphertext then the tag (`overhead` bytes); in place
   * when `plaintext` is `out`'s region there (the packet path: no copy). `header` (already carrying
   * `sendPhase`) is associated data and `pn` the full packet number. Returns the sealed length.
   */
  seal(pn: number, header: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number;
  /**
   * Opens a packet. Returns the plaintext, or null when it does not authenticate. The plaintext is a
   * view into memory shared by every connection of the process: valid until the next `open` of any
   * connection's keys. Key state changes only after a packet authenticates.
   */
  open(pn: number, header: Uint8Array, sealed: Uint8Array): Uint8Array | null;
}

/** `SteamNetConnectionInfo_t::m_nFlags` values the handshake decides. */
export const ConnectionInfoFlags = { Unauthenticated: 1, Unencrypted: 2 } as const;

/** The largest virtual port (GNS: an int32 of 0 or more). */
export const MAX_VIRTUAL_PORT = 0x7fffffff;

/** What the handshake learned about the peer. */
export interface PeerInfo {
  /** The peer's identity in string form (`id:...`, `str:...`, ...). */
  readonly identity: string;
  /** Ed25519 public key fingerprint (hex of the first 8 bytes of its SHA-256). */
  readonly keyFingerprint: string;
  /** False when the peer's certificate is not signed by a trusted authority. */
  readonly authenticated: boolean;
  /** Negotiated cipher name. */
  readonly cipher: string;
  /** GNS connection-info flags: `Unauthenticated` (1) without a trusted certificate, `Unencrypted` (2) with cipher none. */
  readonly flags: number;
  /** Set when the connection was allowed with a warning (`IP_AllowWithoutAuth` = 1). */
  readonly warning: string | null;
  /** Server side: the virtual port the client's signed request names (a P2P connection to a listen socket), or -1. */
  readonly virtualPort: number;
}

/** The configuration values the handshake reads (GNS names; see core/config.ts). */
export interface HandshakeConfig {
  readonly Unencrypted: number;
  readonly Cipher: number;
  readonly IP_AllowWithoutAuth: number;
  readonly IPLocalHost_AllowWithoutAuth: number;
  readonly KeyUpdatePackets: number;
}

/** Outcome of a handshake step. A failure closes the connection with `reason` (4002, 4003, 4006, ...). */
export type HandshakeOutcome<T> = ({ readonly ok: true } & T) | { readonly ok: false; readonly reason: number; readonly debug: string };

/** Client side of one handshake. */
export interface ClientHandshake {
  /** The CONNECT_REQUEST payload for this cookie and negotiated version (signed; the same bytes for the same inputs). */
  request(cookie: Uint8Array, version: number): Uint8Array;
  /** Checks the server's CONNECT_OK payload and yields the keys and the peer. */
  finish(serverCid: number, replyPayload: Uint8Array): HandshakeOutcome<{ keys: ConnectionKeys; peer: PeerInfo }>;
}

/** The handshake's crypto layer as the core sees it. */
export interface HandshakeLayer {
  /** Oldest and newest protocol versions this endpoint speaks. */
  readonly minProtocolVersion: number;
  readonly maxProtocolVersion: number;
  /** Cookie for a HELLO from `from` naming `clientCid` (no state kept). `now` in µs. */
  issueCookie(now: number, from: PeerAddress, clientCid: number): Uint8Array;
  /** Whether `cookie` was issued by this endpoint to `from` for `clientCid`, recently. */
  checkCookie(now: number, from: PeerAddress, clientCid: number, cookie: Uint8Array): boolean;
  /** Starts a client handshake for a new connection to `remote`; `virtualPort` (0..2^31-1) goes in the signed request, -1 for none. */
  startClient(clientCid: number, remote: PeerAddress, config: HandshakeConfig, virtualPort?: number): ClientHandshake;
  /** Server: checks a CONNECT_REQUEST (cookie already checked); yields the CONNECT_OK payload, keys and peer. */
  acceptClient(
    from: PeerAddress,
    clientCid: number,
    serverCid: number,
    version: number,
    cookie: Uint8Array,
    requestPayload: Uint8Array,
    config: HandshakeConfig,
  ): HandshakeOutcome<{ replyPayload: Uint8Array; keys: ConnectionKeys; peer: PeerInfo }>;
}
