import type { Endpoint } from '../core/endpoint.js';
import type { SocketAddress } from '../core/types.js';
import { decodeRoute, type Route } from '../relay/protocol.js';

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
