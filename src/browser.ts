/**
 * netlane for browsers (`netlane/browser`; bundlers resolving `netlane` for a browser get it too): the
 * facades with the core, the relay client and end-to-end encryption, over WebSocket or WebRTC gateways of the
 * relays (docs/BROWSER.md): NetworkManager, NetworkingMessages, and NetworkingSockets' P2P connections
 * (`connectP2P`; a browser opens no UDP socket, so `connect` and `createListenSocket` by IP address fail). Its module graph imports no `node:`
 * module (test/unit/browser-graph.test.ts walks it). Loading it installs {@link browserRuntime} as the
 * facades' default runtime.
 */
import { installPlatformRuntime } from './io/platform.js';
import { browserRuntime } from './io/browser/runtime.js';

installPlatformRuntime((clock) => browserRuntime(clock ? { clock } : {}));

export * from './core/index.js';
export { NetlaneError, type NetlaneErrorCode } from './util/errors.js';
export { SeededRng, type Rng } from './util/rng.js';
export { AeadCipher, type Aead, type BlockCipher, type CryptoProvider, type CryptoProviderOptions, type KeyExchangePair, type SigningKey } from './crypto/provider.js';
export { NobleCryptoProvider, webRandom, type NobleCryptoProviderOptions } from './crypto/noble-provider.js';
export { parseIdentity, identityToString, derivePeerId, type Identity } from './crypto/identity.js';
export * from './api/index.js';
export { RelayClient, type RelayClientStats } from './relay/client/index.js';
export { encodeRoute, decodeRoute, addressKey, formatRelayAddress, splitRelayKey, type Route, type RouteEntry, type RelayAddress } from './relay/protocol.js';
export { browserRuntime, type BrowserRuntimeOptions } from './io/browser/runtime.js';
export { browserScheduler } from './io/browser/scheduler.js';
export { WebSocketTransport, type WebSocketGatewayOptions, type WebSocketFactory, type WebSocketLike } from './io/browser/websocket-transport.js';
export { WebRtcTransport, type WebRtcTransportOptions, type RtcPeerConnectionLike, type RtcDataChannelLike, type RtcPeerConnectionFactory, type SignalingPost } from './io/browser/webrtc-transport.js';
export { GatewayTransport, type GatewayChannel, type GatewayEvents, type GatewayUrls } from './io/browser/gateway-transport.js';
export { EndpointDriver, type DatagramTransport } from './io/driver.js';
export { monotonicUs, type Clock } from './io/clock.js';
export type { Runtime } from './io/runtime.js';
export type { Scheduler, TimerHandle } from './io/scheduler.js';
