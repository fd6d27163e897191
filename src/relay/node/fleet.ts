import { toHex } from '../../util/bytes.js';
import { FleetCode, DirCode, MAX_FLEET_LIST_ENTRIES, MAX_REGION_CHARS, addressKey, splitRelayKey, type FleetRelay, type RelayControl } from '../protocol.js';
import type { RelayContext } from './context.js';
import type { Session, SessionTable } from './sessions.js';

// The node's side of a relay fleet (docs/RELAY.md "The fleet"), sans-IO: what the node wants of the fleet's
// store is queued as work an io runner polls (RelayNode.pollFleet), and the answers come back as input
// (RelayNode.handleFleetResult) naming the work they answer. Nothing here waits: forwarding never touches it.

/** How often a relay writes its registry record and refreshes its directory entries in the store, µs. */
export const FLEET_REFRESH_US = 5_000_000;
/** TTL of a registry record and of a directory entry in the store, ms: three refreshes. */
export const FLEET_TTL_MS = 15_000;
/** A store answer not back after this long is a failure (the lookup is answered STORE_UNAVAILABLE), µs. */
export const FLEET_ANSWER_TIMEOUT_US = 2_000_000;
/** Most store questions asked for sessions and not answered yet; beyond, a lookup is answered RATE_LIMITED. */
export const MAX_FLEET_PENDING = 1024;
/** While the store fails, the registry record is written this often (the first success rejoins at once), µs. */
export const FLEET_RETRY_US = 1_000_000;
/** Routes read from the store kept for STALE_ROUTE answers during an outage (the oldest read goes first). */
export const MAX_FLEET_REMEMBERED = 4096;
/** The registry is read for the trunks' member list at most this often on demand (and at every refresh), µs. */
export const FLEET_MEMBERS_MIN_US = 250_000;

/** Options of a relay node in a fleet. */
export interface FleetOptions {
  /** How clients reach this relay, `host:port#key`: what the registry tells the fleet. */
  readonly address: string;
  /** Region label (ASCII, at most 32 characters), e.g. `eu-west`. Default empty. */
  readonly region?: string;
  /** Prefix of every key and channel, so that fleets can share one store. Default `netlane:`. */
  readonly prefix?: string;
}

/**
 * One piece of store work (see {@link FleetStore} in src/io/fleet-store.ts for the operations). `id` names the
 * answer: the `id` of its {@link FleetResult}. `list` is the members of `set`, then the values of `keyPrefix + member`.
 */
export type FleetWork =
  | { readonly kind: 'set'; readonly id: number; readonly key: string; readonly value: string; readonly ttlMs: number; readonly member: { readonly set: string; readonly member: string } | null }
  | { readonly kind: 'setIfNewer'; readonly id: number; readonly key: string; readonly order: number; readonly value: string; readonly ttlMs: number }
  | { readonly kind: 'get'; readonly id: number; readonly key: string }
  | { readonly kind: 'delete'; readonly id: number; readonly key: string; readonly ifValue: string | null; readonly member: { readonly set: string; readonly member: string } | null }
  | { readonly kind: 'list'; readonly id: number; readonly set: string; readonly keyPrefix: string };

/** The answer to one {@link FleetWork}: failed (the store could not be reached), or done with what it read. */
export type FleetResult =
  | { readonly id: number; readonly ok: false }
  /** `value`: what a `get` read; `values`: the members' values a `list` read (`members` beside them). */
  | { readonly id: number; readonly ok: true; readonly value?: string | null; readonly members?: readonly string[]; readonly values?: readonly (string | null)[] };

/** What a fleet message (pub/sub) asks of a relay: revoke a ticket key or a ticket, or drain. */
export type FleetOrder =
  | { readonly kind: 'revoke'; readonly keyId: number }
  | { readonly kind: 'revoke'; readonly ticketId: string }
  | { readonly kind: 'drain'; readonly seconds: number };

/** A relay's record in the registry (JSON in the store). */
interface RegistryRecord {
  readonly address: string;
  readonly region: string;
  readonly load: number;
  readonly sessions: number;
  readonly draining: boolean;
  readonly unixSeconds: number;
}

/** A question asked of the store for a session: answered when the store answers, dropped if the session went. */
type Pending =
  | { readonly kind: 'lookup'; readonly session: Session; readonly requestId: number; readonly peerId: bigint; readonly askedUs: number }
  | { readonly kind: 'list'; readonly session: Session; readonly requestId: number; readonly offset: number; readonly askedUs: number }
  /** The registry read for the node itself: the members trunks may be opened with and accepted from. */
  | { readonly kind: 'members'; readonly session: null; readonly askedUs: number };

/** The name of a fleet's pub/sub channel: `PREFIXrevoke` (revocations) or `PREFIXdrain` (drains). */
export function fleetChannel(prefix: string, kind: 'revoke' | 'drain'): string {
  return `${prefix}${kind}`;
}

/** The order of a directory registration in the store: its time, then its route revision (newest wins). */
export function registrationOrder(unixSeconds: number, revision: number): number {
  return unixSeconds * 0x400000 + (revision & 0x3fffff);
}

/** The fleet part of a relay node: registry record, directory entries in the store, and lookups there. */
export class Fleet {
  readonly #ctx: RelayContext;
  readonly #sessions: SessionTable;
  readonly #address: string;
  /** `host:port` of {@link #address}: this relay's name in the registry set. */
  readonly #name: string;
  readonly #region: string;
  readonly #prefix: string;
  readonly #work: FleetWork[] = [];
  #workHead = 0;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  /** Work ids of writes in flight, with when they were asked (their answers count as writes; unanswered ones time out). */
  readonly #writes = new Map<number, number>();
  /** Whether the last answer of the store was a success (false until one is). */
  #storeUp = false;
  /** Whether the store has ever answered (a first success is joining, not rejoining). */
  #everUp = false;
  /** Set when the store answers again after failing: the node writes everything again at once ({@link takeRejoin}). */
  #rejoin = false;
  /** The route last read from the store per peer id, in the order read: what an outage answers STALE_ROUTE with. */
  readonly #remembered = new Map<bigint, string>();
  /** The fleet's other relays as last read from the registry: `host:port` -> static key, and the keys (hex). */
  #memberAt = new Map<string, Uint8Array>();
  #memberKeys = new Set<string>();
  #membersAskedUs = Number.NEGATIVE_INFINITY;

  constructor(ctx: RelayContext, sessions: SessionTable, options: FleetOptions) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#address = options.address;
    const split = splitRelayKey(options.address);
    this.#name = split ? split.address : options.address;
    this.#region = (options.region ?? '').slice(0, MAX_REGION_CHARS);
    this.#prefix = options.prefix ?? 'netlane:';
  }

  /** Whether the store answered the last question (counted in {@link RelayStats.fleetStoreUp}). */
  get storeUp(): boolean {
    return this.#storeUp;
  }

  /** The pub/sub channels every relay of the fleet subscribes to: `PREFIXrevoke`, `PREFIXdrain`. */
  get channels(): readonly string[] {
    return [fleetChannel(this.#prefix, 'revoke'), fleetChannel(this.#prefix, 'drain')];
  }

  /**
   * A message on one of {@link channels}, as the order it gives this relay, or null (not for this relay, or not
   * understood: counted). `PREFIXrevoke`: `{"keyId":N}` (a ticket key id, u32, or 8 hex digits) or `{"ticketId":"HEX"}` (32 hex
   * digits). `PREFIXdrain`: `{"relay":"HOST:PORT"|"*","seconds":N}`.
   */
  order(channel: string, message: string): FleetOrder | null {
    let m: { keyId?: unknown; ticketId?: unknown; relay?: unknown; seconds?: unknown };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      m = {};
    }
    const bad = (): null => {
      this.#ctx.stats.fleetBadMessages++;
      return null;
    };
    if (typeof m !== 'object' || m === null) return bad();
    if (channel === fleetChannel(this.#prefix, 'revoke')) {
      if (typeof m.keyId === 'number' && Number.isInteger(m.keyId) && m.keyId >= 0 && m.keyId <= 0xffffffff) return { kind: 'revoke', keyId: m.keyId };
      if (typeof m.keyId === 'string' && /^[0-9a-f]{8}$/i.test(m.keyId)) return { kind: 'revoke', keyId: Number.parseInt(m.keyId, 16) };
      if (typeof m.ticketId === 'string' && /^[0-9a-f]{32}$/.test(m.ticketId)) return { kind: 'revoke', ticketId: m.ticketId };
      return bad();
    }
    if (channel === fleetChannel(this.#prefix, 'drain')) {
      if (typeof m.seconds !== 'number' || !(m.seconds >= 0) || typeof m.relay !== 'string') return bad();
      return m.relay === '*' || m.relay === this.#name ? { kind: 'drain', seconds: m.seconds } : null;
    }
    return bad();
  }

  /** The time until the next registry write: {@link FLEET_REFRESH_US}, or {@link FLEET_RETRY_US} while the store fails. */
  get refreshUs(): number {
    return this.#storeUp ? FLEET_REFRESH_US : FLEET_RETRY_US;
  }

  /** Whether the store came back since the last call: the node then writes the record and every entry at once. */
  takeRejoin(): boolean {
    const r = this.#rejoin;
    this.#rejoin = false;
    return r;
  }

  #setUp(up: boolean): void {
    if (up && !this.#storeUp && this.#everUp) {
      this.#rejoin = true;
      this.#ctx.stats.fleetRejoins++;
    }
    if (up) this.#everUp = true;
    this.#storeUp = up;
    this.#ctx.stats.fleetStoreUp = up ? 1 : 0;
  }

  #remember(peerId: bigint, route: string | null): void {
    const m = this.#remembered;
    m.delete(peerId);
    if (route === null) return;
    if (m.size >= MAX_FLEET_REMEMBERED) {
      const oldest = m.keys().next();
      if (!oldest.done) m.delete(oldest.value);
    }
    m.set(peerId, route);
  }

  /** The static key of the fleet member at `host:port` (the registry as last read), or undefined. */
  memberAt(name: string): Uint8Array | undefined {
    return this.#memberAt.get(name);
  }

  /** Whether a static key (hex) is a fleet member's (the registry as last read). */
  isMemberKey(keyHex: string): boolean {
    return this.#memberKeys.has(keyHex);
  }

  /**
   * Reads the registry again for the member list, unless it was asked within {@link FLEET_MEMBERS_MIN_US}. Returns whether
   * it asked (a relay met that is not in the list may have joined since).
   */
  wantMembers(now: number): boolean {
    if (now - this.#membersAskedUs < FLEET_MEMBERS_MIN_US || this.#pending.size >= MAX_FLEET_PENDING) return false;
    this.#membersAskedUs = now;
    const id = this.#id();
    this.#pending.set(id, { kind: 'members', session: null, askedUs: now });
    this.#push({ kind: 'list', id, set: `${this.#prefix}relays`, keyPrefix: `${this.#prefix}relay:` });
    return true;
  }

  #setMembers(relays: readonly FleetRelay[]): void {
    const at = new Map<string, Uint8Array>();
    const keys = new Set<string>();
    for (const f of relays) {
      const name = addressKey(f.relay);
      if (name === this.#name) continue;
      at.set(name, f.relay.publicKey);
      keys.add(toHex(f.relay.publicKey));
    }
    this.#memberAt = at;
    this.#memberKeys = keys;
  }

  /** Whether work is waiting for {@link poll}. */
  get busy(): boolean {
    return this.#workHead < this.#work.length;
  }

  /** The next piece of work, or null. */
  poll(): FleetWork | null {
    if (this.#workHead >= this.#work.length) return null;
    const w = this.#work[this.#workHead++] as FleetWork;
    if (this.#workHead === this.#work.length) {
      this.#work.length = 0;
      this.#workHead = 0;
    }
    return w;
  }

  #push(w: FleetWork): void {
    this.#work.push(w);
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  #dirKey(peerId: bigint): string {
    return `${this.#prefix}dir:${peerId}`;
  }

  /** Writes this relay's registry record (every {@link FLEET_REFRESH_US}, and at once when it starts draining). */
  announce(now: number): void {
    const record: RegistryRecord = { address: this.#address, region: this.#region, load: this.#sessions.load(), sessions: this.#sessions.size, draining: this.#ctx.drainSeconds(now) > 0, unixSeconds: this.#ctx.unixSeconds() };
    const id = this.#id();
    this.#writes.set(id, now);
    this.#push({ kind: 'set', id, key: `${this.#prefix}relay:${this.#name}`, value: JSON.stringify(record), ttlMs: FLEET_TTL_MS, member: { set: `${this.#prefix}relays`, member: this.#name } });
    this.wantMembers(now);
  }

  /** Takes this relay out of the registry (closing). */
  leave(): void {
    this.#push({ kind: 'delete', id: this.#id(), key: `${this.#prefix}relay:${this.#name}`, ifValue: null, member: { set: `${this.#prefix}relays`, member: this.#name } });
  }

  /** A registration the directory accepted: written to the store, newest wins (and again at every refresh). */
  registered(now: number, peerId: bigint, route: string, order: number): void {
    const id = this.#id();
    this.#writes.set(id, now);
    this.#push({ kind: 'setIfNewer', id, key: this.#dirKey(peerId), order, value: route, ttlMs: FLEET_TTL_MS });
  }

  /** A registration the directory dropped (its session went): deleted from the store unless a newer one replaced it. */
  forgot(peerId: bigint, route: string): void {
    this.#push({ kind: 'delete', id: this.#id(), key: this.#dirKey(peerId), ifValue: route, member: null });
  }

  /** A session goes: questions asked for it are dropped when answered. */
  sessionGone(s: Session): void {
    for (const [id, p] of this.#pending) if (p.session === s) this.#pending.delete(id);
  }

  /** A lookup the directory could not answer from its own entries: asked of the store, answered when it answers. */
  lookup(now: number, s: Session, m: Extract<RelayControl, { type: 'dirLookup' }>): void {
    if (this.#pending.size >= MAX_FLEET_PENDING) {
      this.#ctx.stats.fleetBusy++;
      this.#sessions.send(s, { type: 'dirLookupResult', requestId: m.requestId, code: DirCode.RateLimited, peerId: m.peerId, route: '' });
      return;
    }
    const id = this.#id();
    this.#pending.set(id, { kind: 'lookup', session: s, requestId: m.requestId, peerId: m.peerId, askedUs: now });
    this.#ctx.stats.fleetLookups++;
    this.#push({ kind: 'get', id, key: this.#dirKey(m.peerId) });
  }

  /** FLEET_LIST: the registry's relays, from the store. */
  list(now: number, s: Session, m: Extract<RelayControl, { type: 'fleetList' }>): void {
    if (this.#pending.size >= MAX_FLEET_PENDING) {
      this.#ctx.stats.fleetBusy++;
      this.#sessions.send(s, { type: 'fleetListResult', requestId: m.requestId, code: FleetCode.RateLimited, total: 0, offset: m.offset, relays: [] });
      return;
    }
    const id = this.#id();
    this.#pending.set(id, { kind: 'list', session: s, requestId: m.requestId, offset: m.offset, askedUs: now });
    this.#push({ kind: 'list', id, set: `${this.#prefix}relays`, keyPrefix: `${this.#prefix}relay:` });
  }

  /** An answer of the store. One that names no question (answered already, or its session went) is dropped. */
  result(_now: number, r: FleetResult): void {
    const st = this.#ctx.stats;
    this.#setUp(r.ok);
    if (this.#writes.delete(r.id)) {
      if (r.ok) st.fleetWrites++;
      else st.fleetWriteFailures++;
      return;
    }
    const p = this.#pending.get(r.id);
    if (!p) {
      if (!r.ok) st.fleetWriteFailures++; // a delete, or an answer after its timeout
      return;
    }
    this.#pending.delete(r.id);
    this.#answer(p, r);
  }

  #answer(p: Pending, r: FleetResult | null): void {
    const st = this.#ctx.stats;
    if (p.kind === 'members') {
      if (r?.ok) this.#setMembers(parseRegistry(r.values ?? []));
      return;
    }
    const s = p.session;
    if (p.kind === 'lookup') {
      if (!r || !r.ok) {
        const stale = this.#remembered.get(p.peerId);
        if (stale !== undefined) st.fleetStale++;
        else st.fleetStoreUnavailable++;
        this.#sessions.send(s, { type: 'dirLookupResult', requestId: p.requestId, code: stale !== undefined ? DirCode.StaleRoute : DirCode.StoreUnavailable, peerId: p.peerId, route: stale ?? '' });
        return;
      }
      const route = r.value ?? null;
      this.#remember(p.peerId, route);
      if (route === null) st.dirNotFound++;
      else st.fleetFound++;
      this.#sessions.send(s, { type: 'dirLookupResult', requestId: p.requestId, code: route === null ? DirCode.NotFound : DirCode.Ok, peerId: p.peerId, route: route ?? '' });
      return;
    }
    if (!r || !r.ok) {
      st.fleetStoreUnavailable++;
      this.#sessions.send(s, { type: 'fleetListResult', requestId: p.requestId, code: FleetCode.StoreUnavailable, total: 0, offset: p.offset, relays: [] });
      return;
    }
    const relays = parseRegistry(r.values ?? []);
    // A member whose record expired is gone from the fleet: take it out of the set.
    const members = r.members ?? [];
    (r.values ?? []).forEach((v, i) => {
      const member = members[i];
      if (v === null && member !== undefined) this.#push({ kind: 'delete', id: this.#id(), key: `${this.#prefix}relay:${member}`, ifValue: null, member: { set: `${this.#prefix}relays`, member } });
    });
    st.fleetLists++;
    this.#sessions.send(s, { type: 'fleetListResult', requestId: p.requestId, code: FleetCode.Ok, total: Math.min(255, relays.length), offset: p.offset, relays: relays.slice(p.offset, p.offset + MAX_FLEET_LIST_ENTRIES) });
  }

  /** Answers what the store left unanswered for {@link FLEET_ANSWER_TIMEOUT_US} as a failure (reap scan). */
  expire(now: number): void {
    for (const [id, p] of this.#pending) {
      if (now - p.askedUs < FLEET_ANSWER_TIMEOUT_US) continue;
      this.#pending.delete(id);
      this.#setUp(false);
      this.#answer(p, null);
    }
    for (const [id, at] of this.#writes) {
      if (now - at < FLEET_ANSWER_TIMEOUT_US) continue;
      this.#writes.delete(id);
      this.#setUp(false);
      this.#ctx.stats.fleetWriteFailures++;
    }
  }

  /** Whether questions wait for answers (the reap scan must keep running to time them out). */
  get waiting(): boolean {
    return this.#pending.size > 0;
  }
}

/** The registry records that parse, sorted by address (records that do not parse are skipped). */
function parseRegistry(values: readonly (string | null)[]): FleetRelay[] {
  const out: FleetRelay[] = [];
  for (const v of values) {
    if (v === null) continue;
    let rec: Partial<RegistryRecord>;
    try {
      rec = JSON.parse(v) as Partial<RegistryRecord>;
    } catch {
      continue;
    }
    if (typeof rec.address !== 'string') continue;
    const split = splitRelayKey(rec.address);
    if (!split) continue;
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(split.address);
    if (!m) continue;
    const address = (m[1] ?? m[2]) as string;
    const port = Number(m[3]);
    if (port < 1 || port > 65535) continue;
    const region = typeof rec.region === 'string' && /^[\x20-\x7e]*$/.test(rec.region) ? rec.region.slice(0, MAX_REGION_CHARS) : '';
    const load = typeof rec.load === 'number' && rec.load >= 0 ? Math.min(255, Math.round(rec.load)) : 0;
    out.push({ relay: { address, port, publicKey: split.publicKey }, region, load, draining: rec.draining === true });
  }
  return out.sort((a, b) => (a.relay.address === b.relay.address ? a.relay.port - b.relay.port : a.relay.address < b.relay.address ? -1 : 1));
}
