// Named imports: a default import would reach the emitted .d.ts, which then needs esModuleInterop in every consumer.
import { channel, type Channel } from 'node:diagnostics_channel';

/** The channels netlane publishes to; see {@link channels}. */
export interface NetlaneChannels {
  /** A UDP socket was opened: `{ local: SocketAddress }`. */
  readonly socketOpen: Channel;
  /** A UDP socket was closed: `{ local: SocketAddress }`. */
  readonly socketClose: Channel;
  /** A `send` on a socket failed: `{ local: SocketAddress, error: Error }`. */
  readonly sendError: Channel;
  /** A connection's API state changed: `{ connection, oldState, state, remote, endReason, endDebug }`. */
  readonly connectionStatus: Channel;
}

/**
 * diagnostics_channel channels netlane publishes to (as undici does): subscribe with
 * `diagnostics_channel.subscribe(name, fn)`. Messages are published only while someone listens.
 */
export const channels: NetlaneChannels = {
  socketOpen: channel('netlane:socket:open'),
  socketClose: channel('netlane:socket:close'),
  sendError: channel('netlane:socket:sendError'),
  connectionStatus: channel('netlane:connection:status'),
};
