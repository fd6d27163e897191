import { NetlaneError } from '../util/errors.js';

/**
 * Connection configuration values, by their GameNetworkingSockets names.
 * `resolveConfig` turns a partial object into a frozen, validated one; the rest of the core never sees
 * an undefined option.
 */
export interface ConfigValues {
  /** ms to complete the handshake before giving up (5003). */
  readonly TimeoutInitial: number;
  /** ms without hearing from the peer before the connection is dropped (5003). */
  readonly TimeoutConnected: number;
  /** Bytes of unsent data (reliable and unreliable) a connection queues before `send` says LimitExceeded. */
  readonly SendBufferSize: number;
  /** Bytes of received, undelivered data (app queue plus out-of-order reliable data) before packets are refused unacked. */
  readonly RecvBufferSize: number;
  /** Messages waiting in the app's receive queue before packets are refused unacked. */
  readonly RecvBufferMessages: number;
  /** Largest message the receiver accepts; a larger one closes the connection. */
  readonly RecvMaxMessageSize: number;
  /** Floor of the send rate, bytes per second. */
  readonly SendRateMin: number;
  /** Ceiling of the send rate, bytes per second. */
  readonly SendRateMax: number;
  /** Microseconds small messages wait to be coalesced (Nagle). */
  readonly NagleTime: number;
  /** Largest UDP payload sent, bytes. */
  readonly MTU_PacketSize: number;
  /**
   * netlane: ms of silence from the peer after which a keepalive PING is sent (a server waits 1.5 times this
   * after the client's last ack-eliciting packet: the client keeps the connection alive). Default 8000: an
   * idle connection costs one PING and its ACK per 8 s, and `TimeoutConnected` (10 s) leaves the PING some
   * 1.7 s (after the keepalive grid's 250 ms) for its probe retransmissions when it or its ACK is lost. Keep
   * it well under `TimeoutConnected`. GNS sends its keepalive after 10 s of silence; QUIC sends none unless asked.
   */
  readonly KeepaliveInterval: number;
  /** 0 = encrypted only (default); 1 = allow unencrypted, prefer encrypted; 2 = prefer unencrypted; 3 = require unencrypted. Both sides must allow it. Debugging only. */
  readonly Unencrypted: number;
  /** netlane: the AEAD. 0 = automatic (default): ChaCha20-Poly1305 when both sides prefer it (both run it through sodium-native), else AES-256-GCM; 2 = AES-256-GCM only; 3 = ChaCha20-Poly1305 only. 1 is not a value. */
  readonly Cipher: number;
  /** Peers without a certificate from a trusted authority: 0 = refuse (4003), 1 = allow with a warning, 2 = allow. Flagged `Unauthenticated` either way. */
  readonly IP_AllowWithoutAuth: number;
  /** As IP_AllowWithoutAuth, for loopback peers; the more permissive of the two applies. */
  readonly IPLocalHost_AllowWithoutAuth: number;
  /** netlane: packets sent under one key before a key update (AES-GCM's limit is 2^23). */
  readonly KeyUpdatePackets: number;
}

/** Default and allowed range of one configuration value. */
export interface ConfigSpec {
  readonly def: number;
  readonly min: number;
  readonly max: number;
}

/** Defaults and allowed ranges. docs/CONFIG.md lists the same table. */
export const CONFIG_SPECS: { readonly [K in keyof ConfigValues]: ConfigSpec } = {
  TimeoutInitial: { def: 10_000, min: 0, max: 0x7fffffff },
  TimeoutConnected: { def: 10_000, min: 0, max: 0x7fffffff },
  SendBufferSize: { def: 524_288, min: 4096, max: 0x10000000 },
  RecvBufferSize: { def: 1_048_576, min: 4096, max: 0x10000000 },
  RecvBufferMessages: { def: 1000, min: 2, max: 0x10000000 },
  RecvMaxMessageSize: { def: 524_288, min: 64, max: 0x10000000 },
  SendRateMin: { def: 32_768, min: 1024, max: 0x10000000 },
  SendRateMax: { def: 0x10000000, min: 1024, max: 0x10000000 },
  NagleTime: { def: 5000, min: 0, max: 20_000 },
  MTU_PacketSize: { def: 1200, min: 576, max: 1400 },
  KeepaliveInterval: { def: 8000, min: 10, max: 600_000 },
  Unencrypted: { def: 0, min: 0, max: 3 },
  Cipher: { def: 0, min: 0, max: 3 },
  IP_AllowWithoutAuth: { def: 2, min: 0, max: 2 },
  IPLocalHost_AllowWithoutAuth: { def: 2, min: 0, max: 2 },
  KeyUpdatePackets: { def: 1 << 22, min: 16, max: (1 << 23) - (1 << 20) },
};

/** Every value at its default, resolved once: connections that name no values share it. */
export const DEFAULT_CONFIG: ConfigValues = resolveConfig({});

/** Largest unreliable message netlane sends; larger ones are refused with `InvalidParam`. */
export const MAX_UNRELIABLE_MESSAGE_SIZE = 65_536;
/** Largest reliable message netlane sends (GNS `k_cbMaxSteamNetworkingSocketsMessageSizeSend`). */
export const MAX_RELIABLE_MESSAGE_SIZE = 524_288;

/** Validates `values` over `base` and freezes the result. Throws `NetlaneError` ERR_NETLANE_CONFIG. */
export function resolveConfig(values: Partial<Record<string, number>>, base?: ConfigValues): ConfigValues {
  const out: Record<string, number> = {};
  for (const key of Object.keys(CONFIG_SPECS) as (keyof ConfigValues)[]) {
    const spec = CONFIG_SPECS[key];
    out[key] = base ? base[key] : spec.def;
  }
  for (const [key, v] of Object.entries(values)) {
    if (v === undefined) continue;
    const spec = (CONFIG_SPECS as Record<string, ConfigSpec | undefined>)[key];
    if (!spec) throw new NetlaneError('ERR_NETLANE_CONFIG', `unknown config value ${key}`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < spec.min || v > spec.max) {
      throw new NetlaneError('ERR_NETLANE_CONFIG', `${key} must be an integer in [${spec.min}, ${spec.max}], got ${String(v)}`);
    }
    out[key] = v;
  }
  const cfg = out as unknown as ConfigValues;
  if (cfg.Cipher === 1) throw new NetlaneError('ERR_NETLANE_CONFIG', 'Cipher must be 0 (automatic), 2 (AES-256-GCM) or 3 (ChaCha20-Poly1305), got 1 (plaintext is Unencrypted)');
  if (cfg.SendRateMax < cfg.SendRateMin) {
    throw new NetlaneError('ERR_NETLANE_CONFIG', `SendRateMax (${cfg.SendRateMax}) is below SendRateMin (${cfg.SendRateMin})`);
  }
  return Object.freeze(cfg);
}
