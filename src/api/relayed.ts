import { Endpoint } from '../core/endpoint.js';
import type { SocketAddress } from '../core/types.js';
import type { HandshakeLayer } from '../crypto/types.js';
import { CryptoRng } from '../io/random.js';
import { UP_HEADER_BYTES, decodeRoute, type Route } from '../relay/protocol.js';
import { NetlaneError } from '../util/errors.js';
import { storeFrom, type ConfigStore } from './config.js';
import { parseAddress, type ConfigOptions } from './networking-sockets.js';

// What the relayed facades (NetworkManager, NetworkingMessages) share: how they are built, what they say
// in-band, and how they treat relay paths and peer ids.

/** Relay addresses given as `host:port` strings or addresses. Throws ERR_NETLANE_INVALID_ARGUMENT on a bad one. */
export function parseRelays(relays: readonly (string | SocketAddress)[]): SocketAddress[] {
  return relays.map((r) => {
    const a = typeof r === 'string' ? parseAddress(r) : r;
    if (!a) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `bad relay address ${String(r)}`);
    return a;
  });
}

/** A relay ticket given as bytes or base64url, or null. */
export function parseTicket(ticket: Uint8Array | string | undefined): Uint8Array | null {
  return typeof ticket === 'string' ? new Uint8Array(Buffer.from(ticket, 'base64url')) : (ticket ?? null);
}

/** The configuration of every connection, from GNS names. Throws ERR_NETLANE_CONFIG on a bad value. */
export function connectionStore(config: ConfigOptions | undefined): ConfigStore {
  const store = storeFrom(null, config ?? {});
  if (typeof store === 'string') throw new NetlaneError('ERR_NETLANE_CONFIG', store);
  return store;
}

/** The endpoint under a relayed facade: it accepts connections, and leaves room for the relay's hop header in a 1200-byte datagram. */
export function relayedEndpoint(handshake: HandshakeLayer, migration: boolean, store: ConfigStore): Endpoint {
  return new Endpoint({ rng: new CryptoRng(), handshake, listen: true, migration, config: { MTU_PacketSize: 1200 - UP_HEADER_BYTES, ...store.coreValues() } });
}

/** The peer id in an `id:N` identity string, or null for any other identity. */
export function peerIdOf(identity: string): bigint | null {
  const m = /^id:(\d+)$/.exec(identity);
  return m ? BigInt(m[1] as string) : null;
}

/** Makes sure a connection has lane `lane` (lanes only grow; all equal priority and weight). Returns the lane count. */
export function ensureLane(endpoint: Endpoint, cid: number, lane: number, laneCount: number): number {
  if (lane < laneCount) return laneCount;
  const n = lane + 1;
  endpoint.configureLanes(cid, new Array<number>(n).fill(0), new Array<number>(n).fill(1));
  return endpoint.laneCount(cid);
}

/**
 * What the relayed facades (NetworkManager, NetworkingMessages) say to each other on lane 0 of a
 * connection, inside the end-to-end encryption: a type byte, then the body.
 */
export const InBand = {
  /** The sender's new route string (ASCII): the receiver re-links to it when the sender's relay changes. */
  Route: 1,
  /** NetworkingMessages: a message on a channel with no lane of its own: int32 LE channel, then the payload. */
  ChannelMessage: 2,
} as const;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The in-band route update: the type byte, then the route string. */
export function routeMessage(route: string): Uint8Array {
  const msg = new Uint8Array(1 + route.length);
  msg[0] = InBand.Route;
  msg.set(enc.encode(route), 1);
  return msg;
}

/** The route in an in-band route update, or null if it is not a valid route. */
export function routeFromMessage(data: Uint8Array): Route | null {
  return parseRoute(dec.decode(data.subarray(1)));
}

/** A route string, decoded; null if it is not one. */
export function parseRoute(route: string): Route | null {
  try {
    return decodeRoute(route);
  } catch {
    return null;
  }
}

/** Whether one of the connections `cids` talks to `vaddr`: a relay path that crossing dials or a quick reconnect share. */
export function pathInUse(endpoint: Endpoint, cids: Iterable<number>, vaddr: SocketAddress): boolean {
  for (const c of cids) {
    const a = endpoint.remoteAddress(c);
    if (a && a.port === vaddr.port && a.address === vaddr.address) return true;
  }
  return false;
}
