import { NobleCryptoProvider } from '../../crypto/noble-provider.js';
import type { CryptoProvider } from '../../crypto/provider.js';
import type { Clock } from '../clock.js';
import { CryptoRng, randomSeed } from '../random.js';
import type { Runtime } from '../runtime.js';
import { browserScheduler } from './scheduler.js';
import { WebRtcTransport, type WebRtcTransportOptions } from './webrtc-transport.js';
import { WebSocketTransport, type WebSocketGatewayOptions } from './websocket-transport.js';

/** Options of {@link browserRuntime}: which gateways, where the relays' gateways are, and what replaces the page's clock or crypto. */
export interface BrowserRuntimeOptions extends WebSocketGatewayOptions, Omit<WebRtcTransportOptions, 'gateways'> {
  /**
   * The relays' gateways the facades' sockets use: `websocket` (default; {@link WebSocketTransport}) or `webrtc`
   * (unordered data channels that never retransmit; {@link WebRtcTransport}, whose `gateways` are required:
   * the signaling URL of each relay's WebRTC gateway).
   */
  readonly transport?: 'websocket' | 'webrtc';
  /** Monotonic clock, integer µs. Default: the page's `performance.now()`. */
  readonly clock?: Clock;
  /** Default: a {@link NobleCryptoProvider} (pure JS; randomness from `crypto.getRandomValues`). */
  readonly provider?: CryptoProvider;
}

/**
 * The runtime of the browser build (`netlane/browser` installs `browserRuntime()` as the facades'
 * default): each "socket" a facade opens is a {@link WebSocketTransport} to the relays' WebSocket gateways
 * (or, with `transport: 'webrtc'`, a {@link WebRtcTransport} to their WebRTC gateways),
 * time is the page's clock with one `setTimeout` per endpoint, randomness is `crypto.getRandomValues`,
 * crypto is @noble's. A facade's options still name relays by their UDP `host:port#key`: the gateways
 * option says where each relay's gateway is.
 */
export function browserRuntime(options: BrowserRuntimeOptions = {}): Runtime {
  let provider = options.provider ?? null;
  return {
    scheduler: browserScheduler(options.clock),
    relaysOnly: true,
    openUdp: () => (options.transport === 'webrtc' ? new WebRtcTransport(options) : new WebSocketTransport(options)),
    rng: () => new CryptoRng(),
    randomSeed,
    unixSeconds: () => Math.floor(Date.now() / 1000),
    provider: () => (provider ??= new NobleCryptoProvider()),
  };
}
