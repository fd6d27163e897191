/** The public facades. */
export { NetworkingSockets, parseAddress, type NetworkingSocketsOptions, type SocketStats, type ConfigOptions } from './networking-sockets.js';
export { ConfigValue, ConfigScope, ConfigDataType, GetConfigValueResult, type ConfigName, type ConfigKey, type SeedConfigName, SEED_CONFIG_ALIASES, type ConfigValueInfo, type ConfigKind, type StoredConfig } from './config.js';
export {
  NetworkingMessage,
  DebugOutputType,
  INVALID_HANDLE,
  Limits,
  type ConnectionInfo,
  type ConnectionRealTimeStatus,
  type LaneRealTimeStatus,
  type StatusChangedInfo,
  type StatusChangedCallback,
  type DebugOutputFunction,
  type OutgoingMessage,
  type SendResult,
} from './types.js';
export type { RelayTuning } from './relayed.js';
export { NetworkManager, DiscordResult, MAX_CHANNEL_ID, type NetworkManagerOptions, type NetworkManagerStats, type MessageListener, type RouteListener } from './network-manager.js';
export {
  NetworkingMessages,
  NetworkingMessagesMessage,
  NetworkingConnectionEnd,
  AUTO_RESTART_BROKEN_SESSION,
  type NetworkingIdentity,
  type NetworkingMessagesOptions,
  type NetworkingMessagesStats,
  type SessionConnectionInfo,
  type SessionFailedInfo,
  type SessionRequestListener,
  type SessionFailedListener,
} from './networking-messages.js';
