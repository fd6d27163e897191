import dgram from 'node:dgram';
import net from 'node:net';
import type { SocketAddress } from '../core/types.js';
import { NetlaneError } from '../util/errors.js';
import { channels } from './diagnostics.js';
import type { DatagramTransport } from './driver.js';

/** Options of {@link UdpSocket.open}. */
export interface UdpSocketOptions {
  /** Local address: an IPv4 or IPv6 literal; `::` binds dual stack (IPv4 and IPv6). */
  readonly address: string;
  /** Local port; 0 picks a free one. */
  readonly port: number;
  /** Connect the socket to this peer (a client's socket talks to one server): cheaper sends, and datagrams from anyone else are filtered by the kernel. */
  readonly connectTo?: SocketAddress;
  /** Kernel receive buffer, bytes. Default 4 MiB: the default ~208 KiB drops bursts (measured on the 2-core CI machines). */
  readonly recvBufferSize?: number;
  /** Kernel send buffer, bytes. Default 1 MiB. */
  readonly sendBufferSize?: number;
}

/**
 * One send in this many carries a completion callback, and after a failure every send does, until this many in
 * a row have succeeded: dgram reports a send's error only to its callback, and a callback costs a tick (and its
 * objects) per datagram. A failing socket has every send checked once its first failure is seen.
 */
export const SEND_CHECK_EVERY = 16;

/** dgram resolves names even for IP literals, deferring each send by a tick; netlane only takes literals, so this answers at once. */
export function literalLookup(host: string, opts: unknown, cb?: (err: Error | null, address: string, family: number) => void): void {
  const done = (typeof opts === 'function' ? opts : cb) as (err: Error | null, address: string, family: number) => void;
  const family = net.isIP(host);
  if (family === 0) done(new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `not an IP address: ${host}`), host, 0);
  else done(null, host, family);
}

/**
 * A node:dgram socket, opened synchronously (binding an IP literal needs no lookup), with raised
 * buffers, IPv4-mapped IPv6 addresses shown as plain IPv4, and send errors counted instead of lost.
 */
export class UdpSocket implements DatagramTransport {
  readonly local: SocketAddress;
  /** Whether the socket is IPv6 (dual stack when bound to `::`). */
  readonly ipv6: boolean;
  /** Called for every datagram received. */
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  sendErrors = 0;
  /** Sends left before the next checked one. */
  #untilCheck = 0;
  /** A send failed and fewer than SEND_CHECK_EVERY have succeeded since: every send is checked. */
  #failing = false;
  #okStreak = 0;
  readonly #sock: dgram.Socket;
  readonly #connected: boolean;
  #closed = false;
  // One-entry caches so that a steady peer costs no string work per datagram.
  #rawFrom = '';
  /** The sender of the last datagram: the same (immutable) object while the sender stays the same. */
  #from: SocketAddress = { address: '', port: 0 };
  #toAddress = '';
  #toMapped = '';

  private constructor(sock: dgram.Socket, ipv6: boolean, connected: boolean) {
    this.#sock = sock;
    this.ipv6 = ipv6;
    this.#connected = connected;
    const a = sock.address();
    this.local = { address: a.address, port: a.port };
    sock.on('message', (msg, rinfo) => {
      const address = rinfo.address;
      let from = this.#from;
      if (address !== this.#rawFrom || rinfo.port !== from.port) {
        this.#rawFrom = address;
        from = { address: address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address, port: rinfo.port };
        this.#from = from;
      }
      this.onMessage(msg, from);
    });
    // Errors after open (ICMP unreachable on a connected socket, ...) are counted, never thrown.
    sock.on('error', (err) => this.#onSent(err));
    channels.socketOpen.publish({ local: this.local });
  }

  /** Opens and binds a socket. Throws `NetlaneError` ERR_NETLANE_SOCKET if the address is taken or invalid. */
  static open(options: UdpSocketOptions): UdpSocket {
    const family = net.isIP(options.address);
    if (family === 0) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `not an IP address: ${options.address}`);
    const ipv6 = family === 6;
    const sock = dgram.createSocket({
      type: ipv6 ? 'udp6' : 'udp4',
      ipv6Only: false,
      lookup: literalLookup as never,
      recvBufferSize: options.recvBufferSize ?? 4 << 20,
      sendBufferSize: options.sendBufferSize ?? 1 << 20,
    });
    let failure: Error | null = null;
    const onError = (err: Error): void => {
      failure = err;
    };
    sock.on('error', onError);
    // With a literal address and the synchronous lookup, bind and connect complete before returning.
    sock.bind({ port: options.port, address: options.address, exclusive: true });
    let connected = false;
    if (!failure && options.connectTo) {
      const to = options.connectTo;
      sock.connect(to.port, ipv6 && net.isIPv4(to.address) ? `::ffff:${to.address}` : to.address);
      connected = true;
    }
    sock.off('error', onError);
    if (failure) {
      sock.close();
      const f = failure as Error;
      throw new NetlaneError('ERR_NETLANE_SOCKET', `cannot open UDP socket on [${options.address}]:${options.port}: ${f.message}`);
    }
    return new UdpSocket(sock, ipv6, connected);
  }

  readonly #onSent = (err: Error | null): void => {
    if (!err) {
      if (this.#failing && ++this.#okStreak >= SEND_CHECK_EVERY) this.#failing = false;
      return;
    }
    this.#failing = true;
    this.#okStreak = 0;
    this.sendErrors++;
    if (channels.sendError.hasSubscribers) channels.sendError.publish({ local: this.local, error: err });
  };

  /** Sends one datagram, `header` (when given) then `data` (to the connected peer if the socket is connected). Neither may change afterwards. */
  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    if (this.#closed) return;
    const msg = header ? [header, data] : data;
    let cb: ((err: Error | null) => void) | undefined;
    if (this.#failing) {
      cb = this.#onSent;
    } else if (--this.#untilCheck <= 0) {
      this.#untilCheck = SEND_CHECK_EVERY;
      cb = this.#onSent;
    }
    if (this.#connected) {
      this.#sock.send(msg, cb);
      return;
    }
    let address = to.address;
    if (this.ipv6 && address.indexOf(':') < 0) {
      if (address !== this.#toAddress) {
        this.#toAddress = address;
        this.#toMapped = `::ffff:${address}`;
      }
      address = this.#toMapped;
    }
    this.#sock.send(msg, to.port, address, cb);
  }

  /** Lets the process exit while the socket is open (the default for netlane sockets), or not. */
  keepProcessAlive(yes: boolean): void {
    if (yes) this.#sock.ref();
    else this.#sock.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.close();
    channels.socketClose.publish({ local: this.local });
  }
}
