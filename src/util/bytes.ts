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

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Sextet of each character code (base64url and standard base64 alphabets both), -1 for anything else. */
const B64_VALUE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[B64URL.charCodeAt(i)] = i;
  t[43] = 62; // '+'
  t[47] = 63; // '/'
  return t;
})();

/** Base64url without padding (RFC 4648 section 5), as `Buffer#toString('base64url')` writes it; no Buffer, so it runs in browsers. */
export function toBase64Url(b: Uint8Array): string {
  const parts: string[] = [];
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const n = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
    parts.push(B64URL[n >> 18] as string, B64URL[(n >> 12) & 63] as string, B64URL[(n >> 6) & 63] as string, B64URL[n & 63] as string);
  }
  const rest = b.length - i;
  if (rest > 0) {
    const n = ((b[i] as number) << 16) | (rest === 2 ? (b[i + 1] as number) << 8 : 0);
    parts.push(B64URL[n >> 18] as string, B64URL[(n >> 12) & 63] as string);
    if (rest === 2) parts.push(B64URL[(n >> 6) & 63] as string);
  }
  return parts.join('');
}

/**
 * Decodes base64url (or standard base64; `=` padding allowed at the end). Null for any other character or a
 * length no encoding has (one character past a multiple of four). Unused low bits of the last character are ignored.
 */
export function fromBase64Url(s: string): Uint8Array | null {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61) end--; // '='
  if (end % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? (B64_VALUE[c] as number) : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}
