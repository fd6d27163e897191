/** The relayed facades (NetworkManager, NetworkingMessages): what both entry points, netlane and netlane/browser, export of src/api. */
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
