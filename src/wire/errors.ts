/**
 * The codec's only error type. Every decode failure names the field that could not be read, so a
 * malformed packet can be diagnosed from the close reason alone (the GNS decoder habit).
 */
export class WireError extends Error {
  /** Stable code for programmatic checks. */
  readonly code = 'ERR_NETLANE_WIRE' as const;
  /** The field being read or written when the codec failed. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'WireError';
    this.field = field;
  }
}
