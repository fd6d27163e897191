/** The relay network: the relay node and server, the client transport, tickets, route strings. */
export { RelayNode, type RelayNodeOptions, type RelayStats, type RelaySend } from './node/index.js';
export { RelayServer, type RelayServerOptions } from './server.js';
export { RelayClient, clearlyBetter, type RelayClientOptions, type RelayClientStats, type LookupResult } from './client.js';
export { signTicket, verifyTicket, decodeTicket, ticketKeyId, MAX_TICKET_LIFETIME_S, type Ticket, type TicketKeys, type TicketFailure } from './ticket.js';
export { encodeRoute, decodeRoute, RefuseCode, DirCode, type Route, type RouteEntry } from './protocol.js';
