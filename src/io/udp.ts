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
  /**
   * Whether the open socket keeps the process alive. Default false. Set before the bind, because Deno ignores a
   * change once the socket has started receiving (a later `keepProcessAlive` call counts under Node and Bun only).
   */
  readonly keepProcessAlive?: boolean;
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

/** Whether a dgram socket is bound now: Node and Deno bind an IP literal before `bind` returns, Bun after it. */
function boundNow(sock: dgram.Socket): boolean {
  try {
    sock.address();
    return true;
  } catch {
    return false;
  }
}

/** Connects a dgram socket to its one peer (an IPv4 peer of an IPv6 socket through its mapped address). */
function connectSocket(sock: dgram.Socket, ipv6: boolean, to: SocketAddress): void {
  sock.connect(to.port, ipv6 && net.isIPv4(to.address) ? `::ffff:${to.address}` : to.address);
}

function socketError(options: UdpSocketOptions, err: Error): NetlaneError {
  return new NetlaneError('ERR_NETLANE_SOCKET', `cannot open UDP socket on ${options.address.includes(':') ? `[${options.address}]` : options.address}:${options.port}: ${err.message}`);
}

/**
 * A node:dgram socket with raised buffers, IPv4-mapped IPv6 addresses shown as plain IPv4, and send errors
 * counted instead of lost. Under Node and Deno it is bound when {@link UdpSocket.open} returns (binding an IP
 * literal needs no lookup). Under Bun the bind completes after the call: until then {@link UdpSocket.binding}
 * is true, `local` has the requested port (0 when the system picks it), sends wait in dgram's queue, and
 * {@link UdpSocket.bound} resolves once the port is known (docs/RUNTIME.md "Runtimes").
 */
export class UdpSocket implements DatagramTransport {
  #local: SocketAddress;
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
  #connected = false;
  /** The peer of a connected socket whose bind (and so its connect) has not completed: sends name it meanwhile. */
  #connectTo: SocketAddress | null = null;
  #closed = false;
  #binding: boolean;
  #bound: Promise<SocketAddress> | null = null;
  #bindError: NetlaneError | null = null;
  /** Settles the promise `bound()` gave while the socket was binding. */
  #settle: { resolve: (a: SocketAddress) => void; reject: (e: Error) => void } | null = null;
  // One-entry caches so that a steady peer costs no string work per datagram.
  #rawFrom = '';
  /** The sender of the last datagram: the same (immutable) object while the sender stays the same. */
  #from: SocketAddress = { address: '', port: 0 };
  #toAddress = '';
  #toMapped = '';

  private constructor(sock: dgram.Socket, ipv6: boolean, options: UdpSocketOptions, binding: boolean) {
    this.#sock = sock;
    this.ipv6 = ipv6;
    this.#binding = binding;
    if (binding) {
      this.#local = { address: options.address, port: options.port };
      this.#connectTo = options.connectTo ?? null;
      sock.once('listening', () => this.#onListening());
    } else {
      this.#local = UdpSocket.#address(sock);
      this.#connected = options.connectTo !== undefined; // `open` connected it
    }
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
    sock.on('error', (err) => {
      if (!this.#binding) this.#onSent(err);
      else {
        this.#bindFailed(socketError(options, err));
        this.close();
      }
    });
    if (!binding) channels.socketOpen.publish({ local: this.local });
  }

  static #address(sock: dgram.Socket): SocketAddress {
    const a = sock.address();
    return { address: a.address, port: a.port };
  }

  /** The local address: with the port the system chose once bound (see {@link UdpSocket.binding}). */
  get local(): SocketAddress {
    return this.#local;
  }

  /** Whether the bind has not completed yet (Bun binds after `open` returns; Node and Deno before). */
  get binding(): boolean {
    return this.#binding;
  }

  /**
   * Resolves with the bound local address: at once where `open` bound the socket, after the bind otherwise.
   * Rejects with `NetlaneError` ERR_NETLANE_SOCKET if an asynchronous bind failed (the address was taken).
   */
  bound(): Promise<SocketAddress> {
    if (this.#bound) return this.#bound;
    if (this.#bindError) this.#bound = Promise.reject(this.#bindError);
    else if (!this.#binding) this.#bound = Promise.resolve(this.#local);
    else this.#bound = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
    return this.#bound;
  }

  #connect(to: SocketAddress): void {
    connectSocket(this.#sock, this.ipv6, to);
    this.#connected = true;
    this.#connectTo = null;
  }

  #onListening(): void {
    if (this.#closed) return;
    this.#binding = false;
    this.#local = UdpSocket.#address(this.#sock);
    if (this.#connectTo) this.#connect(this.#connectTo);
    channels.socketOpen.publish({ local: this.local });
    this.#settle?.resolve(this.#local);
    this.#settle = null;
  }

  /** The bind failed (an error before `listening`), or the socket was closed first: `bound()` rejects with `err`. */
  #bindFailed(err: NetlaneError): void {
    this.#binding = false;
    this.#bindError = err;
    this.#settle?.reject(err);
    this.#settle = null;
  }

  /**
   * Opens a socket and binds it: bound when this returns under Node and Deno, binding under Bun (see
   * {@link UdpSocket.binding}). Throws `NetlaneError` ERR_NETLANE_SOCKET if the address is taken or invalid
   * (under Bun, a bind that fails later closes the socket and rejects {@link UdpSocket.bound}).
   */
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
    // Before the bind: Deno ignores a change once the socket has started receiving.
    if (!options.keepProcessAlive) sock.unref();
    let failure: Error | null = null;
    const onError = (err: Error): void => {
      failure = err;
    };
    sock.on('error', onError);
    // With a literal address and the synchronous lookup, Node's bind completes (or fails) before returning.
    sock.bind({ port: options.port, address: options.address, exclusive: true });
    const binding = !failure && !boundNow(sock);
    // Bound: connect now, so that a failure throws here too. Binding: the socket connects once bound.
    if (!failure && !binding && options.connectTo) connectSocket(sock, ipv6, options.connectTo);
    sock.off('error', onError);
    if (failure) {
      sock.close();
      throw socketError(options, failure);
    }
    return new UdpSocket(sock, ipv6, options, binding);
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
    if (this.#connectTo) to = this.#connectTo;
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
    const announced = !this.#binding && this.#bindError === null;
    try {
      this.#sock.close();
    } catch {
      // dgram may have closed a socket whose bind failed already (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing is left open.
    }
    if (announced) channels.socketClose.publish({ local: this.local });
    if (this.#binding) this.#bindFailed(new NetlaneError('ERR_NETLANE_SOCKET', 'the socket was closed before its bind completed'));
  }
}
