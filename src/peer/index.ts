/** The peer-session layer under the relayed facades. */
export { PeerHost, type PeerEvent, type PeerHostOptions, type PeerPolicy, type PeerSpec, type PeerStats } from './host.js';
export { P2PTransportICE, type DirectPathSetting } from './direct.js';
export { PeerSession, TRANSITIONS as SESSION_TRANSITIONS, type Outgoing, type SessionKind, type SessionState, type LookupMiss } from './session.js';
export { LANE_CHANNELS, MAX_CHANNEL, MIN_CHANNEL, laneOf, validChannel } from './channels.js';
export { localPeer, identityToString, parseIdentity, type LocalPeer } from './identity.js';
export type { SessionTimerHost } from './timers.js';
export type { Deque } from '../util/deque.js';
export { isRelayPath } from '../relay/client/index.js';
export { peerIdOf } from './incoming.js';
