import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { SocketAddress } from '../core/types.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import { monotonicUs, type Clock } from '../io/clock.js';
import { literalLookup } from '../io/udp.js';
import { NetlaneError } from '../util/errors.js';
import { RelayNode, type RelayNodeOptions } from './node.js';

/** Options of {@link RelayServer.open}: where to listen, plus the node's policy. */
export interface RelayServerOptions extends Omit<RelayNodeOptions, 'provider' | 'send'> {
  /** IP literal to bind. Default 127.0.0.1 (the embedded relay); `0.0.0.0` or `::` for a public relay. */
  readonly address?: string;
  /** UDP port; 0 picks a free one. */
  readonly port?: number;
  readonly provider?: CryptoProvider;
  readonly clock?: Clock;
  /** Keep the process alive while the relay runs. Default true for `netlane relay`; false for an embedded relay. */
  readonly keepProcessAlive?: boolean;
}

/**
 * A {@link RelayNode} on a node:dgram socket: one process, one port, one core (DESIGN.md section 7).
 * The forwarding path sends the received buffer itself, rewritten in place: no copy per datagram.
 */
export class RelayServer {
  readonly node: RelayNode;
  readonly local: SocketAddress;
  readonly #sock: dgram.Socket;
  readonly #clock: Clock;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #mapped: boolean;
  #closed = false;
  #onDrained: (() => void) | null = null;
  sendErrors = 0;

  private constructor(sock: dgram.Socket, options: RelayServerOptions) {
    this.#sock = sock;
    this.#clock = options.clock ?? monotonicUs;
    const a = sock.address();
    this.local = { address: a.address, port: a.port };
    this.#mapped = isIP(a.address) === 6;
    const onSent = (err: Error | null): void => {
      if (err) this.sendErrors++;
    };
    const mapped = this.#mapped;
    this.node = new RelayNode({
      ...options,
      provider: options.provider ?? new NodeCryptoProvider(),
      send: (data, port, address) => {
        if (!this.#closed) sock.send(data, port, mapped && address.indexOf(':') < 0 ? `::ffff:${address}` : address, onSent);
      },
    });
    sock.on('message', (msg, rinfo) => {
      let address = rinfo.address;
      if (mapped && address.startsWith('::ffff:') && address.includes('.')) address = address.slice(7);
      this.node.handleDatagram(this.#clock(), address, rinfo.port, msg);
    });
    sock.on('error', () => this.sendErrors++);
    this.#timer = setInterval(() => {
      const now = this.#clock();
      this.node.handleTimeout(now);
      if (this.#onDrained && this.node.drained(now)) {
        const cb = this.#onDrained;
        this.#onDrained = null;
        cb();
      }
    }, 250);
    if (!(options.keepProcessAlive ?? false)) {
      this.#timer.unref();
      sock.unref();
    }
  }

  /** Binds the socket (synchronously for an IP literal) and starts the node. Throws NetlaneError ERR_NETLANE_SOCKET. */
  static open(options: RelayServerOptions = {}): RelayServer {
    const address = options.address ?? '127.0.0.1';
    const family = isIP(address);
    if (family === 0) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `not an IP address: ${address}`);
    const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: false, lookup: literalLookup as never, recvBufferSize: 8 << 20, sendBufferSize: 4 << 20 });
    let failure: Error | null = null;
    sock.once('error', (e) => (failure = e));
    // With a literal address and the synchronous lookup, bind completes before returning.
    sock.bind({ address, port: options.port ?? 0, exclusive: true });
    if (failure || !sockBound(sock)) {
      sock.close();
      throw new NetlaneError('ERR_NETLANE_SOCKET', `cannot open relay socket on ${address}:${options.port ?? 0}${failure ? `: ${(failure as Error).message}` : ''}`);
    }
    return new RelayServer(sock, options);
  }

  /** Drains: refuses new sessions, tells clients the deadline, and calls `done` when every session is gone or at the deadline. */
  drain(seconds: number, done: () => void): void {
    this.node.drain(this.#clock(), seconds);
    this.#onDrained = done;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#sock.close();
  }
}

function sockBound(sock: dgram.Socket): boolean {
  try {
    sock.address();
    return true;
  } catch {
    return false;
  }
}
