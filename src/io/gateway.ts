// What the relay's gateways (WebSocket, WebRTC) share: each wraps the relay's datagram transport, stands
// every browser connection in for a UDP peer at a synthetic address (`ws/N`, `rtc/N`, port 1), counts
// connections in all and per address group, and sends a datagram to one of its own peers on that peer's
// connection, every other one to the transport inside (UDP, or another gateway around UDP).
import type { Server } from 'node:http';
import type { SocketAddress } from '../core/types.js';
import { addressGroup } from '../util/address.js';
import { NetlaneError } from '../util/errors.js';
import type { DatagramTransport } from './driver.js';

/** The limits every gateway takes (each gateway's options document its own defaults' meaning). */
export interface GatewayLimits {
  /** Open connections at most; more are refused at once. Default 10,000. */
  readonly maxConnections?: number;
  /** Open connections from one IPv4 address or IPv6 /64 at most; more are refused. Default 16. */
  readonly maxConnectionsPerAddress?: number;
  /** Largest message taken: a relay datagram never is larger. Default 2048. */
  readonly maxMessageBytes?: number;
  /** Bytes one connection may hold unsent before a datagram to it is dropped, as a full UDP buffer drops it. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
}

/** The limits with their defaults, checked: throws ERR_NETLANE_INVALID_ARGUMENT on a bad one. */
export function gatewayLimits(o: GatewayLimits): Required<GatewayLimits> {
  const l = { maxConnections: o.maxConnections ?? 10_000, maxConnectionsPerAddress: o.maxConnectionsPerAddress ?? 16, maxMessageBytes: o.maxMessageBytes ?? 2048, maxBufferedBytes: o.maxBufferedBytes ?? 1 << 20 };
  for (const [name, v] of [['maxConnections', l.maxConnections], ['maxConnectionsPerAddress', l.maxConnectionsPerAddress], ['maxMessageBytes', l.maxMessageBytes]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `gateway ${name} must be a positive integer, got ${v}`);
  }
  return l;
}

/** An optional package loaded when a gateway is asked for, or a typed error (ERR_NETLANE_GATEWAY_MISSING) naming it. */
export async function loadOptional<T>(name: string, what: string, pick: (mod: T & { default?: T }) => T): Promise<T> {
  try {
    return pick((await import(name)) as T & { default?: T });
  } catch (e) {
    throw new NetlaneError('ERR_NETLANE_GATEWAY_MISSING', `the ${what} needs the package ${name} (npm install ${name}): ${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)}`);
  }
}

/** Why a connection was refused at once, or the address group it counts in. */
export type Admit = { readonly group: string } | 'full' | 'perAddress';

/**
 * The base of a relay gateway: a {@link DatagramTransport} around `inner` whose own peers are the
 * connections `C` it accepted, at `PREFIX + N`. Subclasses accept connections (`admit`, then `add`), hand
 * what arrives to `onMessage`, `remove` a connection when it closes, and implement `sendOn`.
 */
export abstract class RelayGateway<C> implements DatagramTransport {
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  protected readonly inner: DatagramTransport;
  protected readonly limits: Required<GatewayLimits>;
  /** @internal The open connections by synthetic address. */
  protected readonly peers = new Map<string, { readonly conn: C; readonly group: string }>();
  protected closed = false;
  protected keepAlive = false;
  readonly #prefix: string;
  readonly #perGroup = new Map<string, number>();
  #next = 1;
  /** Datagrams sent on this gateway's connections, and dropped (to a connection gone or full). */
  abstract readonly stats: { sent: number; dropped: number };

  protected constructor(inner: DatagramTransport, prefix: string, limits: GatewayLimits) {
    this.limits = gatewayLimits(limits);
    this.inner = inner;
    this.#prefix = prefix;
    inner.onMessage = (data, from) => this.onMessage(data, from);
  }

  /** @internal Whether a new connection from `ip` may open (counting connections still opening, `pending`), and its address group. */
  protected admit(ip: string, pending = 0): Admit {
    if (this.closed || this.peers.size + pending >= this.limits.maxConnections) return 'full';
    const plain = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
    const group = addressGroup(plain) ?? plain;
    return (this.#perGroup.get(group) ?? 0) >= this.limits.maxConnectionsPerAddress ? 'perAddress' : { group };
  }

  /** @internal Counts a connection in `group` (before it opens, so that connections still opening count too). */
  protected hold(group: string): void {
    this.#perGroup.set(group, (this.#perGroup.get(group) ?? 0) + 1);
  }

  /** @internal Uncounts one connection of `group`. */
  protected release(group: string): void {
    const n = (this.#perGroup.get(group) ?? 1) - 1;
    if (n > 0) this.#perGroup.set(group, n);
    else this.#perGroup.delete(group);
  }

  /** @internal A held connection, now open: its synthetic address, which the relay node sees it at. */
  protected add(conn: C, group: string): SocketAddress {
    const from: SocketAddress = { address: `${this.#prefix}${this.#next++}`, port: 1 };
    this.peers.set(from.address, { conn, group });
    return from;
  }

  /** @internal Forgets the connection at `from` (and releases its group). */
  protected remove(from: SocketAddress): void {
    const p = this.peers.get(from.address);
    if (!p) return;
    this.peers.delete(from.address);
    this.release(p.group);
  }

  /** @internal Sends on `conn` (`header` then `data`, in one message); false when it is gone or holds more than `maxBufferedBytes` (the datagram is dropped). */
  protected abstract sendOn(conn: C, data: Uint8Array, header: Uint8Array | undefined): boolean;

  /** A datagram to one of this gateway's peers goes out on its connection (dropped if it is gone or full); any other to `inner`. */
  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    if (!to.address.startsWith(this.#prefix)) {
      this.inner.send(data, to, header);
      return;
    }
    const peer = this.peers.get(to.address);
    if (peer && this.sendOn(peer.conn, data, header)) this.stats.sent++;
    else this.stats.dropped++;
  }

  /** The transport this gateway wraps (the UDP socket, or another gateway around it). */
  get innerTransport(): DatagramTransport {
    return this.inner;
  }

  /** The UDP socket's local address (under Bun, port 0 until a port-0 socket is bound). */
  get local(): SocketAddress {
    return this.inner.local;
  }

  get binding(): boolean {
    return this.inner.binding ?? false;
  }

  /** The UDP socket's bind (the gateway's own listen is `listening`). */
  bound(): Promise<SocketAddress> {
    return this.inner.bound ? this.inner.bound() : Promise.resolve(this.inner.local);
  }

  get sendErrors(): number {
    return (this.inner.sendErrors ?? 0) + this.stats.dropped;
  }

  keepProcessAlive(yes: boolean): void {
    this.keepAlive = yes;
    this.inner.keepProcessAlive(yes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inner.close();
  }
}

/** Listens on `host:port` (TCP); resolves with the address, rejects with ERR_NETLANE_SOCKET. */
export function listen(http: Server, host: string, port: number, what: string): Promise<SocketAddress> {
  return new Promise<SocketAddress>((resolve, reject) => {
    http.once('error', (e) => reject(new NetlaneError('ERR_NETLANE_SOCKET', `cannot open the ${what} on [${host}]:${port}: ${e.message}`)));
    http.listen({ host, port, exclusive: true }, () => {
      const a = http.address();
      resolve(typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: host, port });
    });
  });
}
