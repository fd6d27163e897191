import { derivePeerId } from '../crypto/identity.js';
import type { CryptoProvider, KeyExchangePair, SigningKey } from '../crypto/provider.js';
import { clientHopKeys, linkProofSigned, openDown, openSessionOk, sealUp, writeDataTag, type HopKeys } from '../relay/hop.js';
import { RelayMsg, UP_HEADER_BYTES, DATA_TAG_BYTES, decodeRelayControl, encodeRelayControl, type RelayAddress, type RelayControl } from '../relay/protocol.js';
import { ReplayWindow } from '../util/replay-window.js';

/**
 * One relay session driven by hand, message by message: what tests and benchmarks use to speak the relay
 * protocol without a {@link RelayClient} (to forge, replay, flood or measure). It makes the same session
 * request, keys, sealed control and sequence tags as the client does.
 */
export class HopSession {
  readonly provider: CryptoProvider;
  readonly relayPublic: Uint8Array;
  readonly identity: SigningKey;
  readonly peerId: bigint;
  readonly clientNonce: Uint8Array;
  readonly ephemeral: KeyExchangePair;
  keys: HopKeys | null = null;
  sessionId: Uint8Array | null = null;
  token: Uint8Array | null = null;
  #cookie: Uint8Array | null = null;
  #ticket: Uint8Array = new Uint8Array(0);
  #upCounter = 0;
  #dataSeq = 0;
  readonly #down = new ReplayWindow();
  readonly #block = new Uint8Array(16);

  constructor(provider: CryptoProvider, relayPublic: Uint8Array, identity?: SigningKey) {
    this.provider = provider;
    this.relayPublic = relayPublic;
    this.identity = identity ?? provider.signingKey();
    this.peerId = derivePeerId(provider, this.identity.publicKey);
    this.clientNonce = new Uint8Array(8);
    provider.fillRandom(this.clientNonce);
    this.ephemeral = provider.generateKeyExchange();
  }

  /** A PING (padded to 512 bytes). */
  ping(nonce = new Uint8Array(8)): Uint8Array {
    return encodeRelayControl({ type: 'ping', version: 2, nonce });
  }

  /** The SESSION_REQUEST for `cookie` (from a PONG) and `ticket`. */
  request(cookie: Uint8Array, ticket: Uint8Array = new Uint8Array(0)): Uint8Array {
    this.#cookie = cookie;
    this.#ticket = ticket;
    return encodeRelayControl({ type: 'sessionRequest', cookie, clientNonce: this.clientNonce, clientPublic: this.ephemeral.publicKey, ticket });
  }

  /** Takes a SESSION_OK: true when it opens with the keys this session expects (the relay holds its key). */
  accept(data: Uint8Array): boolean {
    if (!this.#cookie) return false;
    const keys = clientHopKeys(this.provider, this.ephemeral, this.relayPublic, this.#cookie, this.clientNonce, this.#ticket);
    const o = keys ? openSessionOk(keys, data) : null;
    if (!o || !keys) return false;
    this.keys = keys;
    this.sessionId = o.message.sessionId.slice();
    this.token = o.message.token.slice();
    this.#down.mark(o.counter);
    return true;
  }

  /** A control message as a SEALED frame with the next counter (or `counter`, to replay or skip). */
  seal(m: RelayControl, counter = this.#upCounter++): Uint8Array {
    if (!this.keys || !this.sessionId) throw new Error('no session');
    return sealUp(this.keys, this.sessionId, counter, m);
  }

  /** A relay's datagram to this session, opened: a SEALED_DOWN (once per counter), or a clear message; null otherwise. */
  open(data: Uint8Array): RelayControl | null {
    if (data[0] === RelayMsg.SealedDown) {
      const o = this.keys ? openDown(this.keys, data) : null;
      if (!o || !this.#down.isNew(o.counter)) return null;
      this.#down.mark(o.counter);
      return o.message;
    }
    try {
      return decodeRelayControl(data);
    } catch {
      return null;
    }
  }

  /** A LINK_REQUEST for `token`, proving this session's identity. */
  linkRequest(requestId: number, token: Uint8Array): RelayControl {
    if (!this.keys) throw new Error('no session');
    const proof = this.provider.sign(this.identity, linkProofSigned(this.relayPublic, this.keys.binding));
    return { type: 'linkRequest', requestId, token, peerId: this.peerId, publicKey: this.identity.publicKey, proof };
  }

  /** A LINK_REMOTE for `token` on `relay` (another relay of the fleet, reached over a trunk), proving this session's identity. */
  linkRemote(requestId: number, relay: RelayAddress, token: Uint8Array): RelayControl {
    const m = this.linkRequest(requestId, token);
    return m.type === 'linkRequest' ? { ...m, type: 'linkRemote', relay } : m;
  }

  /** A DATA_UP hop header for `linkId` with the next sequence tag (or `seq`). */
  header(linkId: number, seq = this.#dataSeq++): Uint8Array {
    const h = new Uint8Array(UP_HEADER_BYTES);
    this.headerInto(h, linkId, seq);
    return h;
  }

  /** Writes the next DATA_UP hop header for `linkId` (or the one of `seq`) into `h` (its first 27 bytes: a view, for headers made in bulk). */
  headerInto(h: Uint8Array, linkId: number, seq = this.#dataSeq++): void {
    if (!this.keys || !this.sessionId) throw new Error('no session');
    h[0] = RelayMsg.DataUp;
    h.set(this.sessionId, 1);
    h[UP_HEADER_BYTES - DATA_TAG_BYTES - 2] = linkId >>> 8;
    h[UP_HEADER_BYTES - DATA_TAG_BYTES - 1] = linkId & 0xff;
    writeDataTag(this.keys.data, seq, h, this.#block);
  }

  /** A whole DATA_UP: header (next sequence tag, or `seq`) and payload. */
  dataUp(linkId: number, payload: Uint8Array, seq?: number): Uint8Array {
    const h = this.header(linkId, seq);
    const d = new Uint8Array(h.length + payload.length);
    d.set(h);
    d.set(payload, h.length);
    return d;
  }
}
