/** The relay network: the relay node and server, the client transport, tickets, route strings. */
export { RelayNode, FLEET_REFRESH_US, FLEET_TTL_MS, type RelayNodeOptions, type RelayStats, type RelaySend, type FleetOptions, type FleetWork, type FleetResult, type SessionSummary } from './node/index.js';
export { RelayClient, clearlyBetter, isRelayPath, type RelayClientOptions, type RelayClientStats, type RelayClientEvent, type RelayPing, type LookupResult, type Hysteresis } from './client/index.js';
export { signTicket, verifyTicket, decodeTicket, ticketKeyId, MAX_TICKET_LIFETIME_S, type Ticket, type TicketKeys, type TicketFailure } from './ticket.js';
export { encodeRoute, decodeRoute, addressKey, formatRelayAddress, splitRelayKey, RefuseCode, DirCode, UP_HEADER_BYTES, type Route, type RouteEntry, type RelayAddress } from './protocol.js';
