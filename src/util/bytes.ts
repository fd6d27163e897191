/** Concatenates byte strings into a new array. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const HEX_BYTES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case hex of bytes, as one flat string (`join` builds one; a `+=` loop would leave a tree of its parts, several times the size). */
export function toHex(b: Uint8Array): string {
  const parts: string[] = [];
  for (const x of b) parts.push(HEX_BYTES[x] as string);
  return parts.join('');
}

/**
 * `s` as one flat string. V8 keeps a concatenation (a template literal too) of 13 characters or more as a
 * tree of its parts; a string kept for a connection's lifetime is rebuilt flat here (`join` of its UTF-16 units).
 */
export function flatString(s: string): string {
  return s.length < 13 ? s : s.split('').join('');
}
