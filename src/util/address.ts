/**
 * Splits `1.2.3.4:port` or `[v6 address]:port` into its parts. Null if the form is wrong or the port is
 * not 0..65535. The address is not validated beyond its characters: callers check it (node:net `isIP`, ...).
 */
export function splitHostPort(s: string): { address: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([0-9.]+):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  return port <= 65535 ? { address: m[1] as string, port } : null;
}

/**
 * An IPv6 address from its eight 16-bit groups in the canonical text form (RFC 5952 section 4: lower-case
 * hex without leading zeros, the longest run of two or more zero groups, the first on a tie, as `::`;
 * IPv4-compatible and -mapped addresses in dotted quad), the form node:dgram reports.
 */
export function formatIPv6(groups: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(0, 8);
  // IPv4-compatible and IPv4-mapped addresses end in dotted quad, as inet_ntop (and so node:dgram) prints them.
  if (best === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 0xffff))) {
    const a = groups[6] as number;
    const b = groups[7] as number;
    return `::${bestLen === 5 ? 'ffff:' : ''}${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  return `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

/** The eight 16-bit groups of an IPv6 literal (the caller parsed it as one). */
export function expandIPv6(s: string): number[] {
  const [head, tail] = s.includes('::') ? (s.split('::') as [string, string]) : [s, null];
  const parse = (p: string): number[] => (p === '' ? [] : p.split(':').map((x) => parseInt(x, 16)));
  const h = parse(head);
  if (tail === null) return h;
  const t = parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * The network block an address belongs to, as a string key: the /24 of an IPv4 address, the /64 of an IPv6 one
 * (an IPv4-mapped IPv6 address counts as its IPv4 address). What per-network limits count by: one host or one
 * customer's delegated prefix holds many addresses of its block.
 */
export function addressBlock(address: string): string {
  if (!address.includes(':')) return `${address.slice(0, address.lastIndexOf('.'))}/24`;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return addressBlock(mapped[1] as string);
  const g = expandIPv6(address.replace(/%.*$/, ''));
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}
