/**
 * What a datagram is to an io driver's admission control (`SansIo.admission`, `RelayNode.admission`). The
 * engine knows the protocol and classifies; the driver decides the policy (docs/RUNTIME.md "Under a flood").
 */
export const Admission = {
  /** Established traffic (a connection or session the engine has): handled at once, never queued. */
  Now: 0,
  /** Unauthenticated, but returns a cookie the engine issued: the second step of a handshake it already answered, checked for the price of one MAC. */
  Cookie: 1,
  /** Other unauthenticated input (a HELLO, a relay PING, a packet for no connection): costs work before any check of its sender. */
  New: 2,
} as const;
export type Admission = (typeof Admission)[keyof typeof Admission];
