// node:diagnostics_channel is looked up at run time (process.getBuiltinModule, Node 20.16+), never imported:
// the module graph of the browser build has no node: import, and there the channels are silent stand-ins.

/** A diagnostics channel as netlane uses it: node:diagnostics_channel's `Channel`, or a silent stand-in outside Node. */
export interface DiagnosticsChannel {
  readonly name: string | symbol;
  /** Whether anyone listens (messages are built only then). */
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
}

/** The channels netlane publishes to; see {@link channels}. */
export interface NetlaneChannels {
  /** A UDP socket was opened: `{ local: SocketAddress }`. */
  readonly socketOpen: DiagnosticsChannel;
  /** A UDP socket was closed: `{ local: SocketAddress }`. */
  readonly socketClose: DiagnosticsChannel;
  /** A `send` on a socket failed: `{ local: SocketAddress, error: Error }`. */
  readonly sendError: DiagnosticsChannel;
  /** A connection's API state changed: `{ connection, oldState, state, remote, endReason, endDebug }`. */
  readonly connectionStatus: DiagnosticsChannel;
}

type ChannelFactory = (name: string) => DiagnosticsChannel;

/** node:diagnostics_channel's `channel`, or a factory of silent channels where there is no such module. */
function channelFactory(): ChannelFactory {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.('node:diagnostics_channel') as { channel?: ChannelFactory } | undefined;
  if (typeof mod?.channel === 'function') return mod.channel;
  return (name) => ({ name, hasSubscribers: false, publish: () => undefined });
}

const channel = channelFactory();

/**
 * diagnostics_channel channels netlane publishes to (as undici does): subscribe with
 * `diagnostics_channel.subscribe(name, fn)`. Messages are published only while someone listens.
 * In a browser they are stand-ins nobody can subscribe to.
 */
export const channels: NetlaneChannels = {
  socketOpen: channel('netlane:socket:open'),
  socketClose: channel('netlane:socket:close'),
  sendError: channel('netlane:socket:sendError'),
  connectionStatus: channel('netlane:connection:status'),
};
