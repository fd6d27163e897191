/**
 * API misuse error: thrown for programming mistakes (a bad argument, an unknown config name).
 * `code` is stable and safe to switch on; messages may change.
 */
export class NetlaneError extends Error {
  readonly code: NetlaneErrorCode;

  constructor(code: NetlaneErrorCode, message: string) {
    super(message);
    this.name = 'NetlaneError';
    this.code = code;
  }
}

export type NetlaneErrorCode =
  | 'ERR_NETLANE_CONFIG'
  | 'ERR_NETLANE_INVALID_ARGUMENT'
  | 'ERR_NETLANE_INVALID_STATE'
  /** A bug in netlane: an internal invariant broke (a state change its table does not allow, say). */
  | 'ERR_NETLANE_INTERNAL'
  /** A UDP socket could not be opened (address in use, bad address). */
  | 'ERR_NETLANE_SOCKET'
  /** A relay fleet's store (Redis) cannot be reached, or stopped answering. */
  | 'ERR_NETLANE_STORE_UNAVAILABLE'
  /** `--redis` was given but the optional package `@redis/client` is not installed. */
  | 'ERR_NETLANE_STORE_MISSING'
  /** A relay gateway was asked for but its optional package (`ws` for the WebSocket gateway) is not installed. */
  | 'ERR_NETLANE_GATEWAY_MISSING';
