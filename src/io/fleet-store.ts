import { NetlaneError } from '../util/errors.js';
import type { Clock } from './clock.js';

/**
 * What a relay fleet needs from a shared store (docs/RELAY.md "The fleet"): keys with a TTL, sets of members,
 * and publish/subscribe. {@link MemoryFleetStore} is the embedded default (one process); {@link openRedisFleetStore}
 * puts the fleet on a Redis server. A method returns its answer, or a promise of it; a store that cannot be reached
 * throws (or rejects with) a {@link NetlaneError} `ERR_NETLANE_STORE_UNAVAILABLE`.
 *
 * Only the io layer calls a store: a relay node names the work (`RelayNode.pollFleet`) and takes the answers
 * (`RelayNode.handleFleetResult`), and {@link RelayServer} carries them.
 */
export interface FleetStore {
  /** Sets `key` to `value`, expiring after `ttlMs`. */
  set(key: string, value: string, ttlMs: number): MaybePromise<void>;
  /**
   * Sets `key` to `value` with a TTL unless the key holds a value of a higher `order` (an integer below 2^53):
   * newest wins across writers. Returns whether it was written (an equal order overwrites).
   */
  setIfNewer(key: string, order: number, value: string, ttlMs: number): MaybePromise<boolean>;
  /** Gives `key` a new TTL; false if the key is gone. */
  refresh(key: string, ttlMs: number): MaybePromise<boolean>;
  /** The value of `key`, or null. For a key written by {@link setIfNewer}, the value without its order. */
  get(key: string): MaybePromise<string | null>;
  /** The values of `keys`, null for each one missing. */
  getMany(keys: readonly string[]): MaybePromise<(string | null)[]>;
  /** Deletes `key`; with `ifValue`, only while it still holds that value (another writer's newer value stays). */
  delete(key: string, ifValue?: string): MaybePromise<void>;
  /** Adds `member` to the set `set`. */
  addMember(set: string, member: string): MaybePromise<void>;
  removeMember(set: string, member: string): MaybePromise<void>;
  /** The members of `set`, in no particular order. */
  members(set: string): MaybePromise<string[]>;
  /** Sends `message` to every subscriber of `channel`, this process's included. */
  publish(channel: string, message: string): MaybePromise<void>;
  /** Calls `onMessage` with every message published on `channel` from now on (one handler per channel). */
  subscribe(channel: string, onMessage: (message: string) => void): MaybePromise<void>;
  unsubscribe(channel: string): MaybePromise<void>;
  /** Ends the connection (if any); the store answers nothing after. */
  close(): MaybePromise<void>;
}

/** A value, or a promise of one. */
export type MaybePromise<T> = T | Promise<T>;

/** Digits of the order prefix {@link setIfNewer} stores before a value (2^53 has 16). */
const ORDER_DIGITS = 16;

function ordered(order: number, value: string): string {
  return `${String(order).padStart(ORDER_DIGITS, '0')}|${value}`;
}

function unordered(stored: string | null): string | null {
  if (stored === null) return null;
  const bar = stored.indexOf('|');
  return bar === ORDER_DIGITS && /^\d+$/.test(stored.slice(0, ORDER_DIGITS)) ? stored.slice(ORDER_DIGITS + 1) : stored;
}

function unavailable(why: string): NetlaneError {
  return new NetlaneError('ERR_NETLANE_STORE_UNAVAILABLE', `fleet store unavailable: ${why}`);
}

/**
 * The fleet store in memory: every relay that shares one instance (in one process) is one fleet. TTLs run on
 * `clock` (µs; default the process's monotonic clock, or a simulation's virtual one), read when a key is read.
 * Answers are synchronous. Every relay sharing the instance may subscribe to a channel; `unsubscribe` drops them all.
 * {@link available} set to false makes every call throw ERR_NETLANE_STORE_UNAVAILABLE,
 * as a Redis store does while its server is down (for tests of an outage).
 */
export class MemoryFleetStore implements FleetStore {
  /** While false, every call throws ERR_NETLANE_STORE_UNAVAILABLE. */
  available = true;
  readonly #clock: Clock;
  readonly #keys = new Map<string, { value: string; expiresUs: number }>();
  readonly #sets = new Map<string, Set<string>>();
  /** Per channel, the handler of each relay that shares this store (one store, many subscribers). */
  readonly #subscribers = new Map<string, Set<(message: string) => void>>();
  #closed = false;

  constructor(clock: Clock = defaultClock) {
    this.#clock = clock;
  }

  #check(): void {
    if (this.#closed) throw unavailable('closed');
    if (!this.available) throw unavailable('down');
  }

  #live(key: string): { value: string; expiresUs: number } | undefined {
    const e = this.#keys.get(key);
    if (e && e.expiresUs <= this.#clock()) {
      this.#keys.delete(key);
      return undefined;
    }
    return e;
  }

  set(key: string, value: string, ttlMs: number): void {
    this.#check();
    this.#keys.set(key, { value, expiresUs: this.#clock() + ttlMs * 1000 });
  }

  setIfNewer(key: string, order: number, value: string, ttlMs: number): boolean {
    this.#check();
    const held = this.#live(key);
    if (held && held.value.slice(0, ORDER_DIGITS) > ordered(order, '').slice(0, ORDER_DIGITS)) return false;
    this.#keys.set(key, { value: ordered(order, value), expiresUs: this.#clock() + ttlMs * 1000 });
    return true;
  }

  refresh(key: string, ttlMs: number): boolean {
    this.#check();
    const e = this.#live(key);
    if (!e) return false;
    e.expiresUs = this.#clock() + ttlMs * 1000;
    return true;
  }

  get(key: string): string | null {
    this.#check();
    return unordered(this.#live(key)?.value ?? null);
  }

  getMany(keys: readonly string[]): (string | null)[] {
    this.#check();
    return keys.map((k) => unordered(this.#live(k)?.value ?? null));
  }

  delete(key: string, ifValue?: string): void {
    this.#check();
    if (ifValue === undefined || unordered(this.#live(key)?.value ?? null) === ifValue) this.#keys.delete(key);
  }

  addMember(set: string, member: string): void {
    this.#check();
    let s = this.#sets.get(set);
    if (!s) this.#sets.set(set, (s = new Set()));
    s.add(member);
  }

  removeMember(set: string, member: string): void {
    this.#check();
    this.#sets.get(set)?.delete(member);
  }

  members(set: string): string[] {
    this.#check();
    return [...(this.#sets.get(set) ?? [])];
  }

  publish(channel: string, message: string): void {
    this.#check();
    for (const h of [...(this.#subscribers.get(channel) ?? [])]) h(message);
  }

  subscribe(channel: string, onMessage: (message: string) => void): void {
    this.#check();
    let hs = this.#subscribers.get(channel);
    if (!hs) this.#subscribers.set(channel, (hs = new Set()));
    hs.add(onMessage);
  }

  unsubscribe(channel: string): void {
    this.#check();
    this.#subscribers.delete(channel);
  }

  close(): void {
    this.#closed = true;
    this.#subscribers.clear();
  }
}

const defaultClock: Clock = () => Math.round(performance.now() * 1000);

/** What {@link openRedisFleetStore} uses of an `@redis/client` client (so that its types are not needed to build). */
interface RedisConnection {
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  duplicate(): RedisConnection;
  on(event: 'error', listener: (e: unknown) => void): unknown;
  close?(): Promise<unknown>;
  quit?(): Promise<unknown>;
  destroy?(): void;
  readonly isReady: boolean;
}

/** Options of {@link openRedisFleetStore}. */
export interface RedisFleetStoreOptions {
  /** Waiting for a connection (the first, or after a loss) at most this long before a call fails, ms. Default 1000. */
  readonly connectTimeoutMs?: number;
  /** Called with each connection error (the client reconnects by itself, every 0.1-1 s). Default: ignored. */
  readonly onError?: (e: unknown) => void;
}

/**
 * The Lua of {@link FleetStore.setIfNewer}: KEYS[1], ARGV = order-prefixed value, TTL ms, order digits. Writes
 * unless the value held starts with a greater order (equal-width decimal prefixes compare as strings).
 */
const SET_IF_NEWER_LUA = `local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, tonumber(ARGV[3])) > string.sub(ARGV[1], 1, tonumber(ARGV[3])) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;
/** The Lua of a conditional delete: KEYS[1] deleted only while it holds ARGV[1] (plain, or after an order prefix). */
const DELETE_IF_LUA = `local held = redis.call('GET', KEYS[1])
if held == ARGV[1] or (held and string.sub(held, tonumber(ARGV[2]) + 2) == ARGV[1] and string.sub(held, tonumber(ARGV[2]) + 1, tonumber(ARGV[2]) + 1) == '|') then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Connects to the Redis server at `url` (`redis://HOST:PORT`) through `@redis/client`, an optional peer
 * dependency loaded only here. Throws NetlaneError `ERR_NETLANE_STORE_MISSING` when that package is not installed,
 * and ERR_NETLANE_STORE_UNAVAILABLE when the server does not answer within `connectTimeoutMs`. While the
 * connection is down, calls fail at once (no offline queue) and the client reconnects in the background.
 */
export async function openRedisFleetStore(url: string, options: RedisFleetStoreOptions = {}): Promise<FleetStore> {
  let mod: { createClient(o: object): unknown };
  try {
    mod = (await import(REDIS_MODULE)) as typeof mod;
  } catch (e) {
    throw new NetlaneError('ERR_NETLANE_STORE_MISSING', `--redis needs the package @redis/client (npm install @redis/client): ${e instanceof Error ? e.message : String(e)}`);
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const client = mod.createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: (retries: number) => Math.min(100 * (retries + 1), 1000) },
  }) as RedisConnection;
  const onError = options.onError ?? ((): void => {});
  client.on('error', onError);
  const store = new RedisFleetStore(client, onError);
  try {
    await withTimeout(client.connect(), connectTimeoutMs, 'connect');
  } catch (e) {
    await store.close();
    throw e instanceof NetlaneError ? e : unavailable(e instanceof Error ? e.message : String(e));
  }
  return store;
}

/** Not a literal in the import, so that TypeScript does not need the package to build. */
const REDIS_MODULE = '@redis/client';

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(unavailable(`${what} took over ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

class RedisFleetStore implements FleetStore {
  readonly #client: RedisConnection;
  readonly #onError: (e: unknown) => void;
  /** The connection for subscriptions (Redis puts a subscribing connection in a mode of its own), made at the first. */
  #sub: Promise<RedisConnection> | null = null;

  constructor(client: RedisConnection, onError: (e: unknown) => void) {
    this.#client = client;
    this.#onError = onError;
  }

  async #cmd(args: string[]): Promise<unknown> {
    try {
      return await this.#client.sendCommand(args);
    } catch (e) {
      throw unavailable(e instanceof Error ? e.message : String(e));
    }
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#cmd(['SET', key, value, 'PX', String(Math.max(1, Math.ceil(ttlMs)))]);
  }

  async setIfNewer(key: string, order: number, value: string, ttlMs: number): Promise<boolean> {
    return (await this.#cmd(['EVAL', SET_IF_NEWER_LUA, '1', key, ordered(order, value), String(Math.max(1, Math.ceil(ttlMs))), String(ORDER_DIGITS)])) === 1;
  }

  async refresh(key: string, ttlMs: number): Promise<boolean> {
    return (await this.#cmd(['PEXPIRE', key, String(Math.max(1, Math.ceil(ttlMs)))])) === 1;
  }

  async get(key: string): Promise<string | null> {
    return unordered(asString(await this.#cmd(['GET', key])));
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    const got = await this.#cmd(['MGET', ...keys]);
    return Array.isArray(got) ? got.map((v) => unordered(asString(v))) : keys.map(() => null);
  }

  async delete(key: string, ifValue?: string): Promise<void> {
    if (ifValue === undefined) await this.#cmd(['DEL', key]);
    else await this.#cmd(['EVAL', DELETE_IF_LUA, '1', key, ifValue, String(ORDER_DIGITS)]);
  }

  async addMember(set: string, member: string): Promise<void> {
    await this.#cmd(['SADD', set, member]);
  }

  async removeMember(set: string, member: string): Promise<void> {
    await this.#cmd(['SREM', set, member]);
  }

  async members(set: string): Promise<string[]> {
    const got = await this.#cmd(['SMEMBERS', set]);
    return Array.isArray(got) ? got.map((v) => asString(v) ?? '') : [];
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#cmd(['PUBLISH', channel, message]);
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    this.#sub ??= (async () => {
      const sub = this.#client.duplicate();
      sub.on('error', this.#onError);
      await sub.connect();
      return sub;
    })();
    try {
      await (await this.#sub).subscribe(channel, onMessage);
    } catch (e) {
      this.#sub = null;
      throw unavailable(e instanceof Error ? e.message : String(e));
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.#sub) return;
    await (await this.#sub).unsubscribe(channel);
  }

  async close(): Promise<void> {
    const conns = [this.#client];
    if (this.#sub) conns.push(await this.#sub.catch(() => this.#client));
    for (const c of new Set(conns)) {
      try {
        if (c.isReady && c.close) await c.close();
        else if (c.isReady && c.quit) await c.quit();
        else c.destroy?.();
      } catch {
        c.destroy?.();
      }
    }
  }
}

function asString(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : String(v);
}
