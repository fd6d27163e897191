import { NobleCryptoProvider } from '../../crypto/noble-provider.js';
import type { CryptoProvider } from '../../crypto/provider.js';
import type { Clock } from '../clock.js';
import { CryptoRng, randomSeed } from '../random.js';
import type { Runtime } from '../runtime.js';
import { browserScheduler } from './scheduler.js';
import { WebSocketTransport, type WebSocketGatewayOptions } from './websocket-transport.js';

/** Options of {@link browserRuntime}: the relays' gateways, and what replaces the page's clock or crypto. */
export interface BrowserRuntimeOptions extends WebSocketGatewayOptions {
  /** Monotonic clock, integer µs. Default: the page's `performance.now()`. */
  readonly clock?: Clock;
  /** Default: a {@link NobleCryptoProvider} (pure JS; randomness from `crypto.getRandomValues`). */
  readonly provider?: CryptoProvider;
}

/**
 * The runtime of the browser build (`netlane/browser` installs `browserRuntime()` as the facades'
 * default): each "socket" a facade opens is a {@link WebSocketTransport} to the relays' WebSocket gateways,
 * time is the page's clock with one `setTimeout` per endpoint, randomness is `crypto.getRandomValues`,
 * crypto is @noble's. A facade's options still name relays by their UDP `host:port#key`: the gateways
 * option says where each relay's WebSocket gateway is.
 */
export function browserRuntime(options: BrowserRuntimeOptions = {}): Runtime {
  let provider = options.provider ?? null;
  return {
    scheduler: browserScheduler(options.clock),
    openUdp: () => new WebSocketTransport(options),
    rng: () => new CryptoRng(),
    randomSeed,
    unixSeconds: () => Math.floor(Date.now() / 1000),
    provider: () => (provider ??= new NobleCryptoProvider()),
  };
}
