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

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** The 16-bit groups of `a:b:c` (a dotted quad last when `quadLast`, as two groups) into `out`; false if one is malformed. */
function pushGroups(part: string, quadLast: boolean, out: number[]): boolean {
  if (part === '') return true;
  const list = part.split(':');
  for (let i = 0; i < list.length; i++) {
    const g = list[i] as string;
    if (quadLast && i === list.length - 1 && IPV4.test(g)) {
      const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
      if (a > 255 || b > 255 || c > 255 || d > 255) return false;
      out.push((a << 8) | b, (c << 8) | d);
    } else if (HEX_GROUP.test(g)) out.push(parseInt(g, 16));
    else return false;
  }
  return true;
}

/**
 * The eight 16-bit groups of an IPv6 address in text form (`::` and a trailing dotted quad allowed, a
 * `%zone` ignored), or null if it is not one.
 */
export function parseIPv6(text: string): number[] | null {
  const zone = text.indexOf('%');
  const s = zone < 0 ? text : text.slice(0, zone);
  const gap = s.indexOf('::');
  if (gap >= 0 && gap !== s.lastIndexOf('::')) return null;
  const head: number[] = [];
  const tail: number[] = [];
  if (gap < 0) {
    if (!pushGroups(s, true, head) || head.length !== 8) return null;
    return head;
  }
  if (!pushGroups(s.slice(0, gap), false, head) || !pushGroups(s.slice(gap + 2), true, tail)) return null;
  const zeros = 8 - head.length - tail.length;
  if (zeros < 1) return null;
  return [...head, ...new Array<number>(zeros).fill(0), ...tail];
}

/**
 * The group an address counts in for per-address limits: an IPv4 address its /`ipv4Bits` (32: itself, as
 * connection limits count; 24: its network, as the relay's open mode counts); an IPv6 address its /64
 * (`2001:db8:1:2::/64`), the smallest prefix a subscriber or a host is given, so that one host cannot dodge
 * a limit by using more of its addresses; an IPv4-mapped IPv6 address counts as its IPv4 address. Anything
 * else (a relay path such as `relay:N`) is in no group (null): it is not limited per address.
 */
export function addressGroup(address: string, ipv4Bits: 24 | 32 = 32): string | null {
  let v4: string | null = IPV4.test(address) ? address : null;
  if (!v4) {
    if (!address.includes(':')) return null;
    const g = parseIPv6(address);
    if (!g) return null;
    if (!(g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)) return `${formatIPv6([g[0] as number, g[1] as number, g[2] as number, g[3] as number, 0, 0, 0, 0])}/64`;
    const hi = g[6] as number;
    const lo = g[7] as number;
    v4 = `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return ipv4Bits === 32 ? v4 : `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
}

const IPV4_STRICT = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** 4 for an IPv4 literal (dotted decimal, no leading zeros), 6 for an IPv6 one (a `%zone` allowed), else 0: node:net's `isIP` without node:net. */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (IPV4_STRICT.test(s)) return 4;
  return s.includes(':') && parseIPv6(s) !== null ? 6 : 0;
}

/** Parses `1.2.3.4:port` or `[::1]:port` with an IP literal. Null if it is not one. */
export function parseAddress(s: string): { address: string; port: number } | null {
  const hp = splitHostPort(s);
  return hp && ipFamily(hp.address) !== 0 ? hp : null;
}
