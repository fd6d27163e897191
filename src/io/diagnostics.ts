import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * diagnostics_channel channels netlane publishes to (as undici does): subscribe with
 * `diagnostics_channel.subscribe(name, fn)`. Messages are published only while someone listens.
 */
export const channels = {
  /** A UDP socket was opened: `{ local: SocketAddress }`. */
  socketOpen: diagnosticsChannel.channel('netlane:socket:open'),
  /** A UDP socket was closed: `{ local: SocketAddress }`. */
  socketClose: diagnosticsChannel.channel('netlane:socket:close'),
  /** A `send` on a socket failed: `{ local: SocketAddress, error: Error }`. */
  sendError: diagnosticsChannel.channel('netlane:socket:sendError'),
  /** A connection's API state changed: `{ connection, oldState, state, remote, endReason, endDebug }`. */
  connectionStatus: diagnosticsChannel.channel('netlane:connection:status'),
} as const;
