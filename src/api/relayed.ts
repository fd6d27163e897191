import { Endpoint } from '../core/endpoint.js';
import type { ConnectionStatusChangedEvent, SocketAddress } from '../core/types.js';
import type { CryptoProvider, SigningKey } from '../crypto/provider.js';
import type { Clock } from '../io/clock.js';
import { channels } from '../io/diagnostics.js';
import { EndpointDriver } from '../io/driver.js';
import type { Runtime } from '../io/runtime.js';
import { platformRuntime, seededFrom } from '../io/platform.js';
import { PeerHost, localPeer, type PeerPolicy, type PeerSession } from '../peer/index.js';
import type { DirectPathSetting } from '../peer/direct.js';
import { RelayClient, UP_HEADER_BYTES, decodeRoute, splitRelayKey, type RelayAddress, type RelayClientOptions, type Route } from '../relay/index.js';
import { NetlaneError } from '../util/errors.js';
import { fromBase64Url } from '../util/bytes.js';
import { storeFrom, type ConfigStore } from './config.js';
import type { ConfigOptions } from './networking-sockets.js';
import { parseAddress } from '../util/address.js';

// How the relayed facades (NetworkManager, NetworkingMessages) are built: one peer host (endpoint, relay
// client, sessions) on one socket, run by one io driver with one timer.

/** Relay client tuning a facade passes through, and a tap that sees every datagram received (for audits). */
export type RelayTuning = Partial<Pick<RelayClientOptions, 'keepaliveMs' | 'relayTimeoutMs' | 'probeIntervalMs' | 'hysteresis' | 'discoverFleet'>> & { readonly tap?: (data: Uint8Array, from: SocketAddress) => void };

/** What both relayed facades take. */
export interface RelayedOptions {
  /** The relays, each `host:port#key` as `netlane relay` prints it, or an address with its `publicKey`. */
  readonly relays: readonly (string | RelayAddress)[];
  readonly ticket?: Uint8Array | string;
  readonly key?: SigningKey;
  readonly provider?: CryptoProvider;
  readonly clock?: Clock;
  /** Sockets, timers and randomness. Default: real UDP; `SimNetwork.runtime(ip)` runs the facade in virtual time. */
  readonly runtime?: Runtime;
  readonly keepProcessAlive?: boolean;
  readonly connectionConfig?: ConfigOptions;
  readonly relayTuning?: RelayTuning;
  /** Local IP of the socket when no `bind` is given. Default 0.0.0.0 (or :: for IPv6 relays). */
  readonly bindAddress?: string;
  /** A local `ip:port` to bind; datagrams from addresses that are not relays then reach the endpoint (direct peers). */
  readonly bind?: string | null;
  /** Register this peer in the relays' identity directory. */
  readonly register?: boolean;
  /** Wall clock for directory registrations, unix seconds. Default: the runtime's. */
  readonly unixSeconds?: () => number;
  /** Direct paths (docs/P2P.md): the setting for a session key (null: the widest any has). Absent: never. */
  readonly directPaths?: (key: string | null) => DirectPathSetting;
  /** The endpoint queues "writable again" notices (`PeerHost.pollWritable`): NetworkingSockets with an `onWritable`. */
  readonly writableNotices?: boolean;
}

/** The pieces of a relayed facade. */
export interface RelayedStack<A> {
  readonly host: PeerHost<A>;
  readonly driver: EndpointDriver<PeerHost<A>>;
  readonly peerId: bigint;
  readonly store: ConfigStore;
  readonly runtime: Runtime;
  /** TimeoutInitial, µs. */
  readonly timeoutInitialUs: number;
}

/** What a facade plugs into its stack. */
export interface RelayedHooks<A> {
  readonly app: (key: string) => A;
  readonly onServiced: () => void;
  readonly beforeUnlink?: (s: PeerSession<A>) => void;
}

const DEFAULT_TIMEOUT_INITIAL_MS = 10_000;
/** netlane's default UDP payload (`MTU_PacketSize`), the relay's hop header included on relayed connections. */
const DEFAULT_DATAGRAM_BYTES = 1200;

/** Builds a relayed facade's peer host, socket and driver. Throws NetlaneError on bad options or a socket that cannot open. */
export function relayedStack<A>(o: RelayedOptions, policy: PeerPolicy, hooks: RelayedHooks<A>): RelayedStack<A> {
  const runtime = o.runtime ?? platformRuntime(o.clock);
  const provider = o.provider ?? runtime.provider();
  const unixSeconds = o.unixSeconds ?? runtime.unixSeconds;
  const me = localPeer(provider, o.key, unixSeconds);
  const relays = parseRelays(o.relays);
  const store = storeFrom(null, o.connectionConfig ?? {});
  if (typeof store === 'string') throw new NetlaneError('ERR_NETLANE_CONFIG', store);
  const direct = o.bind !== undefined && o.bind !== null;
  const local = direct ? parseAddress(o.bind as string) : { address: o.bindAddress ?? (relays.some((r) => r.address.includes(':')) ? '::' : '0.0.0.0'), port: 0 };
  if (!local) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `bad bind address ${String(o.bind)}`);
  const relay =
    relays.length === 0
      ? null
      : new RelayClient({ ...withoutTap(o.relayTuning), relays, ticket: parseTicket(o.ticket), provider, identityKey: me.key, unixSeconds, ...(o.register ? { directoryKey: me.key } : {}) });
  // Relayed connections leave room for the relay's hop header in a datagram of the default size.
  const endpoint = new Endpoint({ rng: runtime.rng(), handshake: me.handshake, listen: true, migration: relay !== null, writableNotices: o.writableNotices ?? false, config: { MTU_PacketSize: DEFAULT_DATAGRAM_BYTES - UP_HEADER_BYTES, ...store.coreValues() } });
  const timeoutInitialUs = (store.coreValues().TimeoutInitial ?? DEFAULT_TIMEOUT_INITIAL_MS) * 1000;
  const socket = runtime.openUdp({ address: local.address, port: local.port, keepProcessAlive: o.keepProcessAlive ?? false });
  /** The driver, once made (it moves to another socket on a rebind): the host candidates take its port. */
  const drivers: EndpointDriver<PeerHost<A>>[] = [];
  const host = new PeerHost<A>({
    endpoint,
    relay,
    direct,
    localPeerId: me.peerId,
    policy,
    timeoutInitialUs,
    app: hooks.app,
    ...(hooks.beforeUnlink ? { beforeUnlink: hooks.beforeUnlink } : {}),
    observe: publishStatus,
    ...(o.directPaths ? { directPaths: o.directPaths, hostAddresses: (): SocketAddress[] => hostAddresses(runtime, drivers[0]?.transport.local ?? socket.local) } : {}),
    ...(o.relayTuning?.tap ? { tap: o.relayTuning.tap } : {}),
  });
  const driver = new EndpointDriver(host, socket, { scheduler: runtime.scheduler, rng: seededFrom(runtime), keepProcessAlive: o.keepProcessAlive ?? false, onServiced: hooks.onServiced });
  drivers.push(driver);
  const fake = store.fakeConditions();
  driver.setFakeConditions(fake.send, fake.recv);
  driver.kick(); // the relay client's first pings
  return { host, driver, peerId: me.peerId, store, runtime, timeoutInitialUs };
}

/** The socket's addresses as direct-path host candidates: the host's interfaces for a wildcard bind, else the bound address. */
function hostAddresses(runtime: Runtime, local: SocketAddress): SocketAddress[] {
  if (local.port === 0) return [];
  if (local.address !== '0.0.0.0' && local.address !== '::') return [local];
  const v6 = local.address === '::';
  return (runtime.localAddresses?.() ?? []).filter((a) => v6 || !a.includes(':')).map((address) => ({ address, port: local.port }));
}

function withoutTap(t: RelayTuning | undefined): Omit<RelayTuning, 'tap'> {
  const rest: { -readonly [K in keyof RelayTuning]: RelayTuning[K] } = { ...t };
  delete rest.tap;
  return rest;
}

/** `netlane:connection:status` for a relayed facade's connections (the handle is the endpoint's). */
function publishStatus(e: ConnectionStatusChangedEvent): void {
  if (channels.connectionStatus.hasSubscribers) channels.connectionStatus.publish({ connection: e.connection, oldState: e.oldState, state: e.state, remote: e.remote, endReason: e.endReason, endDebug: e.endDebug });
}

/** Closes a relayed facade: its connections first (their CLOSE leaves on the relay paths), then its relay sessions, then the socket. */
export function closeStack<A>(stack: RelayedStack<A>): void {
  stack.host.shutdown(stack.runtime.scheduler.now());
  stack.driver.service();
  stack.host.closeRelays();
  stack.driver.service();
  stack.driver.close();
}

/** Moves a relayed facade to a new local port (a NAT rebinding, for tests): the relays challenge the new address and move its sessions. Throws ERR_NETLANE_INVALID_STATE for a closed facade: it opens no socket. */
export function rebindStack<A>(stack: RelayedStack<A>, closed: boolean): void {
  if (closed) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'closed: a closed facade opens no socket');
  const old = stack.driver.transport.local;
  stack.driver.rebind(stack.runtime.openUdp({ address: old.address === '::' || old.address.includes(':') ? '::' : '0.0.0.0', port: 0, keepProcessAlive: stack.driver.keepsProcessAlive }));
}

/**
 * Relays given as `host:port#key` strings (what `netlane relay` prints) or addresses with their public key.
 * Throws ERR_NETLANE_INVALID_ARGUMENT on a bad address or a missing or malformed key: a relay is only used
 * when its key is known, so that nobody else can answer in its name.
 */
export function parseRelays(relays: readonly (string | RelayAddress)[]): RelayAddress[] {
  return relays.map((r) => {
    if (typeof r !== 'string') {
      if (!(r.publicKey instanceof Uint8Array) || r.publicKey.length !== 32) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `relay ${String(r.address)}:${String(r.port)} has no 32-byte publicKey`);
      return r;
    }
    const keyed = splitRelayKey(r);
    if (!keyed) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `relay ${r} has no public key: give it as host:port#key, as netlane relay prints it`);
    const a = parseAddress(keyed.address);
    if (!a) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `bad relay address ${r}`);
    return { ...a, publicKey: keyed.publicKey };
  });
}

/** A relay ticket given as bytes or base64url, or null. */
export function parseTicket(ticket: Uint8Array | string | undefined): Uint8Array | null {
  if (typeof ticket !== 'string') return ticket ?? null;
  const bytes = fromBase64Url(ticket);
  if (!bytes) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'the ticket is not base64url');
  return bytes;
}

/** A route string, decoded; null if it is not one. */
export function parseRoute(route: string): Route | null {
  try {
    return decodeRoute(route);
  } catch {
    return null;
  }
}
