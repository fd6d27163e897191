import { formatIPv6, parseIPv6 } from '../util/address.js';
import { WireError } from './errors.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

/** A UDP address as the wire carries it (structurally the core's `WireAddress`). */
export interface WireAddress {
  readonly address: string;
  readonly port: number;
}

/** Bytes {@link writeAddress} writes at most: the family byte, 16 address bytes, the port. */
export const MAX_ADDRESS_BYTES = 19;

/**
 * A UDP address on the wire: family (4 or 6), the address (4 or 16 bytes, network order), the port (u16).
 * Throws {@link WireError} for an address that is neither dotted IPv4 nor IPv6.
 */
export function writeAddress(w: Writer, a: WireAddress): void {
  if (!a.address.includes(':')) {
    const parts = a.address.split('.');
    if (parts.length !== 4) throw new WireError('address.ipv4', `not an IPv4 address: ${a.address}`);
    w.u8(4, 'family');
    for (const part of parts) w.u8(Number(part), 'ipv4');
  } else {
    const v6 = parseIPv6(a.address);
    if (!v6) throw new WireError('address.ipv6', `not an IPv6 address: ${a.address}`);
    w.u8(6, 'family');
    for (let i = 0; i < 8; i++) w.u16(v6[i] as number, 'ipv6');
  }
  w.u16(a.port, 'port');
}

/** Reads what {@link writeAddress} wrote; IPv6 in canonical form, as dgram reports it. */
export function readAddress(r: Reader): WireAddress {
  const family = r.u8('family');
  let address: string;
  if (family === 4) address = [r.u8('ipv4'), r.u8('ipv4'), r.u8('ipv4'), r.u8('ipv4')].join('.');
  else if (family === 6) {
    const groups: number[] = [];
    for (let i = 0; i < 8; i++) groups.push(r.u16('ipv6'));
    address = formatIPv6(groups);
  } else throw new WireError('address.family', `unknown address family ${family}`);
  return { address, port: r.u16('port') };
}
