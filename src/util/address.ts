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
