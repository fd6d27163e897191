import { CONFIG_SPECS, resolveConfig, type ConfigValues } from '../core/config.js';
import { DEFAULT_LIMITS, type ConnectionLimits } from '../core/endpoint.js';
import { NO_FAKE_CONDITIONS, type FakeConditions } from '../io/fake-network.js';

/**
 * Configuration value ids with GameNetworkingSockets' names and numbers (`ESteamNetworkingConfigValue`).
 * netlane's own values use ids from 1000 up.
 */
export const ConfigValue = {
  FakePacketLoss_Send: 2,
  FakePacketLoss_Recv: 3,
  FakePacketLag_Send: 4,
  FakePacketLag_Recv: 5,
  FakePacketReorder_Send: 6,
  FakePacketReorder_Recv: 7,
  FakePacketReorder_Time: 8,
  SendBufferSize: 9,
  SendRateMin: 10,
  SendRateMax: 11,
  NagleTime: 12,
  LogLevel_AckRTT: 13,
  LogLevel_PacketDecode: 14,
  LogLevel_Message: 15,
  LogLevel_PacketGaps: 16,
  LogLevel_P2PRendezvous: 17,
  IP_AllowWithoutAuth: 23,
  TimeoutInitial: 24,
  TimeoutConnected: 25,
  FakePacketDup_Send: 26,
  FakePacketDup_Recv: 27,
  FakePacketDup_TimeMax: 28,
  MTU_PacketSize: 32,
  MTU_DataSize: 33,
  Unencrypted: 34,
  ConnectionUserData: 40,
  FakeRateLimit_Send_Rate: 42,
  FakeRateLimit_Send_Burst: 43,
  FakeRateLimit_Recv_Rate: 44,
  FakeRateLimit_Recv_Burst: 45,
  RecvBufferSize: 47,
  RecvBufferMessages: 48,
  RecvMaxMessageSize: 49,
  IPLocalHost_AllowWithoutAuth: 52,
  FakePacketJitter_Send_Avg: 53,
  FakePacketJitter_Send_Max: 54,
  FakePacketJitter_Send_Pct: 55,
  FakePacketJitter_Recv_Avg: 56,
  FakePacketJitter_Recv_Max: 57,
  FakePacketJitter_Recv_Pct: 58,
  /**
   * Direct peer-to-peer paths for NetworkingMessages sessions (docs/P2P.md), a mask of `P2PTransportICE`:
   * Disable 0 (netlane's default), Relay 1 (relayed only), Private 2 (LAN addresses), Public 4 (the
   * reflexive addresses the relays report), All 0x7fffffff. NetworkManager never uses direct paths.
   */
  P2P_Transport_ICE_Enable: 104,
  /** ms added to a direct path's round trip when it is compared with the relayed path's. Default 0. */
  P2P_Transport_ICE_Penalty: 105,
  Callback_ConnectionStatusChanged: 201,
  /** netlane: ms of silence after which a keepalive is sent. Default 8000 (the client PINGs, the server answers). */
  KeepaliveInterval: 1001,
  /** netlane: the AEAD: 0 automatic (default; ChaCha20-Poly1305 when both sides prefer it, else AES-256-GCM), 2 AES-256-GCM only, 3 ChaCha20-Poly1305 only. */
  Cipher: 1002,
  /** netlane: packets under one key before a key update. */
  KeyUpdatePackets: 1003,
  /** netlane, listen socket: most connections it holds (closing ones included). Default 8191, GNS's limit. */
  Netlane_MaxConnections: 1004,
  /** netlane, listen socket: most connections, pending or connected, from one address (IPv4 /32, IPv6 /64). Default 256. */
  Netlane_MaxConnectionsPerAddress: 1005,
  /** netlane, listen socket: most connections from one address that the application has not accepted yet. Default 16. */
  Netlane_MaxPendingPerAddress: 1006,
} as const;
/** A configuration value's name. */
export type ConfigName = keyof typeof ConfigValue;

/**
 * ValveSockets-CSharp's `ConfigurationValue` names, accepted wherever a GNS name is: each maps to the GNS
 * value it names, and `scale` converts the seed's unit to netlane's (`TimeoutSeconds*` are in seconds, the GNS
 * values in milliseconds). The names come from both generations of the seed's enum: the current one (the GNS
 * names without underscores) and the older one (`TimeoutSecondsInitial`, `MinRate`, `LogLevelPacket`).
 * docs/PORTING.md lists them.
 */
export const SEED_CONFIG_ALIASES = {
  FakePacketLossSend: { name: 'FakePacketLoss_Send', scale: 1 },
  FakePacketLossRecv: { name: 'FakePacketLoss_Recv', scale: 1 },
  FakePacketLagSend: { name: 'FakePacketLag_Send', scale: 1 },
  FakePacketLagRecv: { name: 'FakePacketLag_Recv', scale: 1 },
  FakePacketReorderSend: { name: 'FakePacketReorder_Send', scale: 1 },
  FakePacketReorderRecv: { name: 'FakePacketReorder_Recv', scale: 1 },
  FakePacketReorderTime: { name: 'FakePacketReorder_Time', scale: 1 },
  FakePacketDupSend: { name: 'FakePacketDup_Send', scale: 1 },
  FakePacketDupRecv: { name: 'FakePacketDup_Recv', scale: 1 },
  FakePacketDupTimeMax: { name: 'FakePacketDup_TimeMax', scale: 1 },
  TimeoutSecondsInitial: { name: 'TimeoutInitial', scale: 1000 },
  TimeoutSecondsConnected: { name: 'TimeoutConnected', scale: 1000 },
  MinRate: { name: 'SendRateMin', scale: 1 },
  MaxRate: { name: 'SendRateMax', scale: 1 },
  IPAllowWithoutAuth: { name: 'IP_AllowWithoutAuth', scale: 1 },
  MTUPacketSize: { name: 'MTU_PacketSize', scale: 1 },
  MTUDataSize: { name: 'MTU_DataSize', scale: 1 },
  ConnectionStatusChanged: { name: 'Callback_ConnectionStatusChanged', scale: 1 },
  LogLevelAckRTT: { name: 'LogLevel_AckRTT', scale: 1 },
  LogLevelPacket: { name: 'LogLevel_PacketDecode', scale: 1 },
  LogLevelPacketDecode: { name: 'LogLevel_PacketDecode', scale: 1 },
  LogLevelMessage: { name: 'LogLevel_Message', scale: 1 },
  LogLevelPacketGaps: { name: 'LogLevel_PacketGaps', scale: 1 },
  LogLevelP2PRendezvous: { name: 'LogLevel_P2PRendezvous', scale: 1 },
} as const satisfies Record<string, { readonly name: ConfigName; readonly scale: number }>;
/** A ValveSockets-CSharp configuration value name. */
export type SeedConfigName = keyof typeof SEED_CONFIG_ALIASES;
/** A configuration value given by GNS name, seed name or GNS id. */
export type ConfigKey = ConfigName | SeedConfigName | number;

/** Where a value is set (`ESteamNetworkingConfigScope`). A value set at a narrower scope overrides the wider ones. */
export const ConfigScope = { Global: 1, SocketsInterface: 2, ListenSocket: 3, Connection: 4 } as const;
export type ConfigScope = (typeof ConfigScope)[keyof typeof ConfigScope];

/** Data types of configuration values (`ESteamNetworkingConfigDataType`). */
export const ConfigDataType = { Int32: 1, Int64: 2, Float: 3, String: 4, Ptr: 5 } as const;
export type ConfigDataType = (typeof ConfigDataType)[keyof typeof ConfigDataType];

/** Results of `getConfigValue` (`ESteamNetworkingGetConfigValueResult`). */
export const GetConfigValueResult = { BadValue: -1, BadScopeObj: -2, OK: 1, OKInherited: 2 } as const;
export type GetConfigValueResult = (typeof GetConfigValueResult)[keyof typeof GetConfigValueResult];

/** What a value controls, which decides where it takes effect. */
export type ConfigKind =
  /** A core connection value (core/config.ts), inherited by a connection when it is created. */
  | 'core'
  /** Fake network conditions, applied live at the UDP socket. */
  | 'fake'
  /** A listen socket's admission limit (core/endpoint.ts `ConnectionLimits`), applied to listen sockets at once; not a connection value. */
  | 'limit'
  /** Anything else the facade keeps: user data, log levels, the status callback. */
  | 'api';

/** Description of one configuration value. */
export interface ConfigValueInfo {
  readonly id: number;
  readonly name: ConfigName;
  readonly type: ConfigDataType;
  readonly kind: ConfigKind;
  readonly def: number | null;
  readonly min: number;
  readonly max: number;
  readonly readOnly: boolean;
}

const INT32_MAX = 0x7fffffff;

/** Limit value name -> its `ConnectionLimits` field. */
const LIMIT_FIELDS: Partial<Record<ConfigName, keyof ConnectionLimits>> = {
  Netlane_MaxConnections: 'maxConnections',
  Netlane_MaxConnectionsPerAddress: 'maxConnectionsPerAddress',
  Netlane_MaxPendingPerAddress: 'maxPendingPerAddress',
};

function describe(name: ConfigName): ConfigValueInfo {
  const id = ConfigValue[name];
  const core = (CONFIG_SPECS as Record<string, { def: number; min: number; max: number } | undefined>)[name];
  if (core) return { id, name, type: ConfigDataType.Int32, kind: 'core', def: core.def, min: core.min, max: core.max, readOnly: false };
  if (name.startsWith('Fake')) {
    const f = FAKE_FIELDS[name];
    const isFloat = /Loss|Reorder_(Send|Recv)|Dup_(Send|Recv)|Jitter/.test(name);
    const max = /Pct|Loss|Reorder_(Send|Recv)|Dup_(Send|Recv)/.test(name) ? 100 : /Rate_|Burst/.test(name) ? INT32_MAX : 5000;
    return { id, name, type: isFloat ? ConfigDataType.Float : ConfigDataType.Int32, kind: 'fake', def: f ? NO_FAKE_CONDITIONS[f[1]] : 0, min: 0, max, readOnly: false };
  }
  const limit = LIMIT_FIELDS[name];
  if (limit) return { id, name, type: ConfigDataType.Int32, kind: 'limit', def: DEFAULT_LIMITS[limit], min: 1, max: INT32_MAX, readOnly: false };
  switch (name) {
    case 'ConnectionUserData':
      return { id, name, type: ConfigDataType.Int64, kind: 'api', def: -1, min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, readOnly: false };
    case 'Callback_ConnectionStatusChanged':
      return { id, name, type: ConfigDataType.Ptr, kind: 'api', def: null, min: 0, max: 0, readOnly: false };
    case 'P2P_Transport_ICE_Enable':
      return { id, name, type: ConfigDataType.Int32, kind: 'api', def: 0, min: 0, max: INT32_MAX, readOnly: false };
    case 'P2P_Transport_ICE_Penalty':
      return { id, name, type: ConfigDataType.Int32, kind: 'api', def: 0, min: 0, max: INT32_MAX, readOnly: false };
    case 'MTU_DataSize':
      return { id, name, type: ConfigDataType.Int32, kind: 'api', def: CONFIG_SPECS.MTU_PacketSize.def - MTU_OVERHEAD, min: 0, max: INT32_MAX, readOnly: true };
    default:
      // LogLevel_*: GNS's levels 1-8, default Warning (4).
      return { id, name, type: ConfigDataType.Int32, kind: 'api', def: 4, min: 1, max: 8, readOnly: false };
  }
}

/** Bytes of a packet that are not message data (header, frames, AEAD tag): `MTU_DataSize` = `MTU_PacketSize` - this. */
export const MTU_OVERHEAD = 32;

/** Fake value name -> [direction, FakeConditions field]. */
const FAKE_FIELDS: Partial<Record<ConfigName, readonly ['send' | 'recv' | 'both', keyof FakeConditions]>> = {
  FakePacketLoss_Send: ['send', 'lossPct'],
  FakePacketLoss_Recv: ['recv', 'lossPct'],
  FakePacketLag_Send: ['send', 'lagMs'],
  FakePacketLag_Recv: ['recv', 'lagMs'],
  FakePacketReorder_Send: ['send', 'reorderPct'],
  FakePacketReorder_Recv: ['recv', 'reorderPct'],
  FakePacketReorder_Time: ['both', 'reorderTimeMs'],
  FakePacketDup_Send: ['send', 'dupPct'],
  FakePacketDup_Recv: ['recv', 'dupPct'],
  FakePacketDup_TimeMax: ['both', 'dupTimeMaxMs'],
  FakePacketJitter_Send_Avg: ['send', 'jitterAvgMs'],
  FakePacketJitter_Send_Max: ['send', 'jitterMaxMs'],
  FakePacketJitter_Send_Pct: ['send', 'jitterPct'],
  FakePacketJitter_Recv_Avg: ['recv', 'jitterAvgMs'],
  FakePacketJitter_Recv_Max: ['recv', 'jitterMaxMs'],
  FakePacketJitter_Recv_Pct: ['recv', 'jitterPct'],
  FakeRateLimit_Send_Rate: ['send', 'rateLimitBytesPerSec'],
  FakeRateLimit_Send_Burst: ['send', 'rateLimitBurstBytes'],
  FakeRateLimit_Recv_Rate: ['recv', 'rateLimitBytesPerSec'],
  FakeRateLimit_Recv_Burst: ['recv', 'rateLimitBurstBytes'],
};

/** Every configuration value, by id. */
export const CONFIG_INFO: ReadonlyMap<number, ConfigValueInfo> = new Map((Object.keys(ConfigValue) as ConfigName[]).map((n) => [ConfigValue[n], describe(n)]));

/** The id of a value given by name (GNS or seed) or id, or null if unknown. */
export function configId(value: ConfigKey): number | null {
  const name = typeof value === 'number' ? value : ((SEED_CONFIG_ALIASES as Record<string, { name: ConfigName } | undefined>)[value]?.name ?? value);
  const id = typeof name === 'number' ? name : (ConfigValue as Record<string, number | undefined>)[name];
  return id !== undefined && CONFIG_INFO.has(id) ? id : null;
}

/** How many of netlane's units one of the key's units is: 1000 for the seed's `TimeoutSeconds*`, else 1. */
export function configScale(value: ConfigKey): number {
  return typeof value === 'number' ? 1 : ((SEED_CONFIG_ALIASES as Record<string, { scale: number } | undefined>)[value]?.scale ?? 1);
}

/** A value as stored in a scope: a number, or a function for callback values. */
export type StoredConfig = number | ((...args: never[]) => unknown);

/**
 * The values set at one scope, chained to the next wider scope. `lookup` walks outward and reports
 * whether the value came from this scope or was inherited.
 */
export class ConfigStore {
  /** Made at the first `set`: most connections' stores never hold a value of their own. */
  #values: Map<number, StoredConfig> | null = null;
  readonly parent: ConfigStore | null;

  constructor(parent: ConfigStore | null) {
    this.parent = parent;
  }

  set(id: number, v: StoredConfig | null): void {
    if (v === null) this.#values?.delete(id);
    else (this.#values ??= new Map()).set(id, v);
  }

  own(id: number): StoredConfig | undefined {
    return this.#values?.get(id);
  }

  /** The effective value: this scope's, else the nearest wider scope's, else undefined (the default). */
  lookup(id: number): StoredConfig | undefined {
    return this.#values?.get(id) ?? this.parent?.lookup(id);
  }

  /** The core values that differ from the defaults anywhere in the chain, for `resolveConfig`. */
  coreValues(): Partial<Record<keyof ConfigValues, number>> {
    const out: Partial<Record<string, number>> = {};
    for (const info of CONFIG_INFO.values()) {
      if (info.kind !== 'core') continue;
      const v = this.lookup(info.id);
      if (typeof v === 'number') out[info.name] = v;
    }
    return out;
  }

  /** The listen socket limits in effect at this scope (defaults where no scope sets one). */
  limits(): ConnectionLimits {
    const out = { ...DEFAULT_LIMITS };
    for (const [name, field] of Object.entries(LIMIT_FIELDS) as [ConfigName, keyof ConnectionLimits][]) {
      const v = this.lookup(ConfigValue[name]);
      if (typeof v === 'number') out[field] = v;
    }
    return out;
  }

  /** Whether this scope sets a fake network condition of its own. */
  hasOwnFakeConditions(): boolean {
    return Object.keys(FAKE_FIELDS).some((name) => this.own(ConfigValue[name as ConfigName]) !== undefined);
  }

  /** The fake network conditions of both directions in effect at this scope. */
  fakeConditions(): { send: FakeConditions; recv: FakeConditions } {
    const send: Record<string, number> = { ...NO_FAKE_CONDITIONS };
    const recv: Record<string, number> = { ...NO_FAKE_CONDITIONS };
    for (const [name, [dir, field]] of Object.entries(FAKE_FIELDS) as [ConfigName, readonly ['send' | 'recv' | 'both', keyof FakeConditions]][]) {
      const v = this.lookup(ConfigValue[name]);
      if (typeof v !== 'number') continue;
      if (dir !== 'recv') send[field] = v;
      if (dir !== 'send') recv[field] = v;
    }
    return { send: send as unknown as FakeConditions, recv: recv as unknown as FakeConditions };
  }
}

/** Checks a value against its description: null if fine, else why not. */
export function checkConfigValue(info: ConfigValueInfo, v: StoredConfig | null): string | null {
  if (info.readOnly) return `${info.name} is read-only`;
  if (v === null) return null;
  if (info.type === ConfigDataType.Ptr) return typeof v === 'function' ? null : `${info.name} takes a function`;
  if (typeof v !== 'number' || Number.isNaN(v)) return `${info.name} takes a number`;
  if (info.type !== ConfigDataType.Float && !Number.isInteger(v)) return `${info.name} takes an integer`;
  if (v < info.min || v > info.max) return `${info.name} must be in [${info.min}, ${info.max}], got ${v}`;
  if (info.name === 'Cipher' && v === 1) return 'Cipher must be 0 (automatic), 2 (AES-256-GCM) or 3 (ChaCha20-Poly1305), got 1';
  return null;
}

/** A store under `parent` holding `options` by GNS name, or the reason one of them is bad. Core values are checked together too. */
export function storeFrom(parent: ConfigStore | null, options: Readonly<Record<string, StoredConfig | undefined>>): ConfigStore | string {
  const store = new ConfigStore(parent);
  for (const [name, v] of Object.entries(options)) {
    const id = configId(name as ConfigName);
    const info = id === null ? undefined : CONFIG_INFO.get(id);
    const scaled = typeof v === 'number' ? v * configScale(name as ConfigName) : v;
    const bad = info ? checkConfigValue(info, scaled ?? null) : `unknown config value ${name}`;
    if (bad || !info) return bad ?? name;
    store.set(info.id, scaled ?? null);
  }
  try {
    resolveConfig(store.coreValues());
  } catch (e) {
    return (e as Error).message;
  }
  return store;
}
