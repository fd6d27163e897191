import type { SocketAddress } from '../core/types.js';
import { parseIPv6 } from '../util/address.js';
import { MAX_DIRECT_CANDIDATES } from '../wire/in-band.js';

// Which direct-path candidates a peer offers and accepts (docs/P2P.md), by GameNetworkingSockets'
// `P2P_Transport_ICE_Enable` mask.

/** `P2P_Transport_ICE_Enable` values (GNS's `k_nSteamNetworkingConfig_P2P_Transport_ICE_Enable_*`), a mask. */
export const P2PTransportICE = {
  /** No direct path (netlane's default). */
  Disable: 0,
  /** Relayed only: the same as Disable here (the relays are always the fallback). */
  Relay: 1,
  /** Private (LAN) addresses: the socket's own host addresses. */
  Private: 2,
  /** Public addresses: the reflexive ones the relays report. */
  Public: 4,
  All: 0x7fffffff,
} as const;

/** The direct-path setting in force for a session. */
export interface DirectPathSetting {
  /** The `P2P_Transport_ICE_Enable` mask. */
  readonly enable: number;
  /** `P2P_Transport_ICE_Penalty`, µs: added to a direct path's round trip when it is compared with the relayed one. */
  readonly penaltyUs: number;
}

/** Whether the mask allows any direct path. */
export function allowsDirect(enable: number): boolean {
  return (enable & (P2PTransportICE.Private | P2PTransportICE.Public)) !== 0;
}

/** Whether an IP is private, link-local, loopback or shared (CGNAT): a LAN candidate rather than a public one. */
export function isPrivateAddress(address: string): boolean {
  if (!address.includes(':')) {
    const p = address.split('.').map(Number);
    const a = p[0] ?? -1;
    const b = p[1] ?? -1;
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b < 128);
  }
  const g = parseIPv6(address);
  if (!g) return false;
  const first = g[0] as number;
  if (g.every((x, i) => (i < 7 ? x === 0 : x === 1))) return true; // ::1
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return isPrivateAddress(`${(g[6] as number) >> 8}.${(g[6] as number) & 0xff}.${(g[7] as number) >> 8}.${(g[7] as number) & 0xff}`);
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80;
}

/** Whether the mask lets `a` be a candidate (either way): Private for LAN addresses, Public for the rest. */
function allowedByMask(enable: number, a: SocketAddress): boolean {
  return (enable & (isPrivateAddress(a.address) ? P2PTransportICE.Private : P2PTransportICE.Public)) !== 0;
}

/**
 * The candidates this side offers: its host addresses (with the socket's port) and the reflexive
 * addresses its relays saw, those the mask allows, without repeats, at most {@link MAX_DIRECT_CANDIDATES}.
 */
export function offeredCandidates(setting: DirectPathSetting, host: readonly SocketAddress[], reflexive: readonly SocketAddress[]): SocketAddress[] {
  const out: SocketAddress[] = [];
  for (const a of [...reflexive, ...host]) {
    if (out.length >= MAX_DIRECT_CANDIDATES) break;
    if (a.port === 0 || !allowedByMask(setting.enable, a)) continue;
    if (!out.some((b) => b.port === a.port && b.address === a.address)) out.push(a);
  }
  return out;
}

/** The peer's candidates this side probes: those the mask allows (an unspecified address or port 0 never). */
export function acceptedCandidates(setting: DirectPathSetting, offered: readonly SocketAddress[]): SocketAddress[] {
  return offered.filter((a) => a.port !== 0 && a.address !== '0.0.0.0' && a.address !== '::' && allowedByMask(setting.enable, a));
}
