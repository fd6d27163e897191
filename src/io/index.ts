/** The runtime: real sockets, the clock, timers, fake network conditions, diagnostics. */
export { monotonicUs, type Clock } from './clock.js';
export { UdpSocket, type UdpSocketOptions } from './udp.js';
export { EndpointDriver, MemoryTransport, type DatagramTransport, type DriverOptions } from './driver.js';
export { FakeLink, NO_FAKE_CONDITIONS, type FakeConditions, type FakeLinkStats, type DelayedDatagram } from './fake-network.js';
export { CryptoRng, randomSeed } from './random.js';
export { channels, type NetlaneChannels, type DiagnosticsChannel } from './diagnostics.js';
export { RelayServer, type RelayServerOptions, type RelayFleetOptions } from './relay-server.js';
export { WsGateway, type WsGatewayOptions, type WsGatewayStats } from './ws-gateway.js';
export { WebRtcGateway, type WebRtcGatewayOptions, type WebRtcGatewayStats } from './webrtc-gateway.js';
export { RelayGateway, type GatewayLimits } from './gateway.js';
export { MemoryFleetStore, openRedisFleetStore, type FleetStore, type MaybePromise, type RedisFleetStoreOptions } from './fleet-store.js';
export { AdmissionQueue, type AdmissionOptions, type AdmissionStats } from './admission.js';
export { realScheduler, realTime, type Scheduler, type TimerHandle } from './scheduler.js';
export { udpRuntime, runtimeWithClock, type Runtime } from './runtime.js';
export { startMetricsServer, relayMetrics, socketsMetrics, formatPrometheus, type MetricsServer, type MetricsServerOptions, type MetricsSource, type MetricSample, type StatsSnapshot, type StatsConnection, type SocketsMetricsOptions, type MetricsSockets } from './metrics.js';
export { exportDiagnosticsToOpenTelemetry, type OpenTelemetryApi, type OpenTelemetryOptions, type OpenTelemetryBridge, type OpenTelemetryMeter, type OpenTelemetryInstrument } from './otel.js';
