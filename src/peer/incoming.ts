import type { Endpoint } from '../core/endpoint.js';
import type { SocketAddress } from '../core/types.js';
import { identityToString } from '../crypto/identity.js';
import { isRelayPath } from '../relay/client/index.js';
import type { PeerPolicy } from './types.js';

/** Who a new incoming connection is: the session it belongs to, or why it is refused. */
export type Caller = { readonly ok: true; readonly key: string; readonly peerId: bigint | null; readonly remote: SocketAddress; readonly relayed: boolean } | { readonly ok: false };

/**
 * Identifies the peer behind a new incoming connection, from what its handshake proved. Relayed peers are
 * known by their authenticated identity (`id:N` for a peer id); direct ones by their address (what a reply
 * dials). Refused: no identity, our own id, or (policy `requirePeerId`) a relayed peer without a peer id.
 */
export function identifyCaller(endpoint: Endpoint, cid: number, localPeerId: bigint, policy: PeerPolicy): Caller {
  const identity = endpoint.peerInfo(cid)?.identity ?? '';
  const remote = endpoint.remoteAddress(cid);
  const peerId = peerIdOf(identity);
  if (!remote || identity === '' || peerId === localPeerId) return { ok: false };
  const relayed = isRelayPath(remote);
  if (relayed && policy.requirePeerId && peerId === null) return { ok: false };
  if (!relayed) return { ok: true, key: identityToString({ kind: 'ip', address: remote.address, port: remote.port }), peerId: null, remote, relayed };
  return { ok: true, key: peerId !== null ? `id:${peerId}` : identity, peerId, remote, relayed };
}

/** The peer id in an `id:N` identity string, or null for any other identity. */
export function peerIdOf(identity: string): bigint | null {
  const m = /^id:(\d+)$/.exec(identity);
  return m ? BigInt(m[1] as string) : null;
}
