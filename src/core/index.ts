/** The sans-IO protocol engine. */
export { DEFAULT_LIMITS, Endpoint, type ConnectionLimits, type EndpointOptions, type EndpointStats } from './endpoint.js';
export type { MessageVisitor } from './packet-receiver.js';
export type { DirectPathInfo } from './direct-path.js';
export { ConnectionState, EndReason, SendFlags, Result, apiState, type EndpointEvent, type ConnectionStatusChangedEvent, type ConnectionWarningEvent, type ReceivedMessage, type SocketAddress, type Transmit, type SansIo } from './types.js';
export { resolveConfig, DEFAULT_CONFIG, CONFIG_SPECS, MAX_UNRELIABLE_MESSAGE_SIZE, MAX_RELIABLE_MESSAGE_SIZE, type ConfigValues, type ConfigSpec } from './config.js';
export type { ConnectionStatus, LaneStatus } from './stats.js';
export { TRANSITIONS, STATE_NAMES } from './state.js';
