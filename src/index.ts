/** netlane: game networking for Node.js. */
export * from './core/index.js';
export { NetlaneError, type NetlaneErrorCode } from './util/errors.js';
export { SeededRng, type Rng } from './util/rng.js';
export { Admission } from './util/admission.js';
export * from './crypto/index.js';
export * from './api/index.js';
export { UdpSocket, EndpointDriver, MemoryTransport, FakeLink, NO_FAKE_CONDITIONS, monotonicUs, channels, type NetlaneChannels, type DiagnosticsChannel, CryptoRng, type FakeConditions, type FakeLinkStats, type DelayedDatagram, type DatagramTransport, type DriverOptions, type UdpSocketOptions, type Clock, RelayServer, type RelayServerOptions, type RelayFleetOptions, WsGateway, type WsGatewayOptions, type WsGatewayStats, WebRtcGateway, type WebRtcGatewayOptions, type WebRtcGatewayStats, RelayGateway, type GatewayLimits, MemoryFleetStore, openRedisFleetStore, type FleetStore, type MaybePromise, type RedisFleetStoreOptions, AdmissionQueue, type AdmissionOptions, type AdmissionStats, realScheduler, udpRuntime, type Runtime, type Scheduler, startMetricsServer, relayMetrics, socketsMetrics, formatPrometheus, type MetricsServer, type MetricsServerOptions, type MetricsSource, type MetricSample, type StatsSnapshot, type StatsConnection, type SocketsMetricsOptions, type MetricsSockets, exportDiagnosticsToOpenTelemetry, type OpenTelemetryApi, type OpenTelemetryOptions, type OpenTelemetryBridge, type OpenTelemetryMeter, type OpenTelemetryInstrument } from './io/index.js';
export * from './peer/index.js';
export * from './relay/index.js';
