/**
 * Copies of small byte strings carved out of shared slabs, as Node's Buffer pool does: a copy is a view
 * into a 16 KiB ArrayBuffer, so that a 100-byte message costs a view object and a memcpy instead of an
 * ArrayBuffer of its own (whose backing store V8 allocates off-heap and tracks until a full GC). A slab
 * is never written again once its space is handed out: a copy stays valid and unchanged for as long as
 * it is referenced, and the slab is freed when the last copy in it is. A long-held small copy keeps its
 * whole slab alive, which bounds the waste at {@link SLAB_BYTES} per held copy; larger strings get their
 * own buffer.
 */

/**
 * `bytes[start, start + n)` as a plain Uint8Array view: the same object `subarray` makes, built without the
 * species lookup `subarray` does, at about 40 % of its cost (28 against 72 ns on this machine). For our own
 * buffers on the per-message path; `subarray` stays where a Buffer must stay a Buffer.
 */
export function region(bytes: Uint8Array, start: number, n: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, n);
}

/** Bytes of one slab. */
export const SLAB_BYTES = 16 * 1024;
/** Strings longer than this are copied into a buffer of their own. */
export const SLAB_MAX_COPY = 1024;

/**
 * Hands out regions of slabs: {@link reserve} room, write into {@link bytes} there, then {@link commit}
 * what was written, which returns a view. A committed region is never handed out again.
 */
export class Slabs {
  readonly #size: number;
  /** The current slab: write at the offset {@link reserve} returned. */
  bytes: Uint8Array;
  #used = 0;

  constructor(size: number) {
    this.#size = size;
    this.bytes = new Uint8Array(size);
  }

  /** Where `n` bytes may be written in {@link bytes} (a fresh slab when the current one has no room). */
  reserve(n: number): number {
    if (this.#used + n > this.bytes.length) {
      this.bytes = new Uint8Array(Math.max(this.#size, n));
      this.#used = 0;
    }
    return this.#used;
  }

  /** A copy of `src[start, end)` in a slab region, handed out as a view (reserve, write, commit). */
  copy(src: Uint8Array, start: number, end: number): Uint8Array {
    const n = end - start;
    const at = this.reserve(n);
    const b = this.bytes;
    if (n <= 32) {
      for (let i = 0; i < n; i++) b[at + i] = src[start + i] as number;
    } else {
      b.set(start === 0 && end === src.length ? src : region(src, start, n), at);
    }
    return this.commit(at, n);
  }

  /** Hands out `bytes[at, at + n)` (written since {@link reserve} returned `at`) as a view. */
  commit(at: number, n: number): Uint8Array {
    this.#used = (at + n + 7) & ~7; // 8-byte aligned, so that a region can be read through a DataView cheaply
    return region(this.bytes, at, n);
  }
}

const copies = new Slabs(SLAB_BYTES);

/** A copy of `src[start, end)` that never changes and that nothing else writes (a view into a slab when small). */
export function copyBytes(src: Uint8Array, start: number, end: number): Uint8Array {
  return end - start > SLAB_MAX_COPY ? src.slice(start, end) : copies.copy(src, start, end);
}

/**
 * Slabs for key material (AEAD keys, IVs and traffic secrets), apart from the message copies so that a
 * long-lived key never keeps a slab of dead messages alive. 4 KiB each: a session's keys are a few views.
 */
const secrets = new Slabs(4096);

/**
 * A copy of `src` for key material that lives as long as a session: a view into a shared slab (about 100 B
 * of heap instead of a typed array and buffer of its own, and a buffer that native code uses as it is).
 * Never written again, like {@link copyBytes}.
 */
export function copySecret(src: Uint8Array): Uint8Array {
  return secrets.copy(src, 0, src.length);
}

/**
 * A fixed buffer and the views of it that have been asked for, each made once: `view(start, n)` is the
 * same object every time, so that code handing exact-size regions to an API that takes whole typed arrays
 * (libsodium, `TypedArray.set`) allocates nothing after the first packet of a size. Views are kept per
 * start offset and length; callers use a few starts (0 and the header lengths), so the cache holds at
 * most a few thousand views (a view is about 100 B).
 */
export class ViewCache {
  readonly bytes: Uint8Array;
  readonly #views: (Uint8Array | undefined)[][] = [];

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }

  /** `bytes[start, start + n)`, the same view for the same arguments. */
  view(start: number, n: number): Uint8Array {
    let byLength = this.#views[start];
    if (!byLength) {
      byLength = new Array<Uint8Array | undefined>(this.bytes.length + 1 - start).fill(undefined); // dense: a fast lookup
      this.#views[start] = byLength;
    }
    let v = byLength[n];
    if (!v) {
      v = this.bytes.subarray(start, start + n);
      byLength[n] = v;
    }
    return v;
  }
}
