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
export * from './relayed-facades.js';
