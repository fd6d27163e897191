import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { SocketAddress } from '../core/types.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { NodeCryptoProvider } from '../crypto/node-provider.js';
import { monotonicUs, type Clock } from '../io/clock.js';
import { literalLookup } from '../io/udp.js';
import { NetlaneError } from '../util/errors.js';
import { RelayNode, type RelayNodeOptions } from './node/index.js';

/** Microseconds in a millisecond (setTimeout takes ms, the node µs). */
const US_PER_MS = 1000;
/** Milliseconds in a second (Date.now() to unix seconds). */
const MS_PER_S = 1000;

/** Options of {@link RelayServer.open}: where to listen, plus the node's policy. */
export interface RelayServerOptions extends Omit<RelayNodeOptions, 'provider' | 'send' | 'unixSeconds'> {
  /** IP literal to bind. Default 127.0.0.1 (the embedded relay); `0.0.0.0` or `::` for a public relay. */
  readonly address?: string;
  /** UDP port; 0 picks a free one. */
  readonly port?: number;
  readonly provider?: CryptoProvider;
  /** Monotonic clock, integer µs. Default: the process's. */
  readonly clock?: Clock;
  /** Wall clock, unix seconds (tickets, route tokens, directory). Default: the system clock. */
  readonly unixSeconds?: () => number;
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
  readonly #mapped: boolean;
  readonly #keepAlive: boolean;
  /** The one timer, armed at the node's `pollTimeout()` (null while the node has none). */
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAtUs = Number.POSITIVE_INFINITY;
  #closed = false;
  #onDrained: (() => void) | null = null;
  sendErrors = 0;

  private constructor(sock: dgram.Socket, options: RelayServerOptions) {
    this.#sock = sock;
    this.#clock = options.clock ?? monotonicUs;
    this.#keepAlive = options.keepProcessAlive ?? false;
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
      unixSeconds: options.unixSeconds ?? (() => Math.floor(Date.now() / MS_PER_S)),
      send: (data, port, address) => {
        if (!this.#closed) sock.send(data, port, mapped && address.indexOf(':') < 0 ? `::ffff:${address}` : address, onSent);
      },
    });
    sock.on('message', (msg, rinfo) => {
      let address = rinfo.address;
      if (mapped && address.startsWith('::ffff:') && address.includes('.')) address = address.slice(7);
      const now = this.#clock();
      this.node.handleDatagram(now, address, rinfo.port, msg);
      // A datagram never moves an armed pollTimeout earlier: only an idle node (no timer) or a drain needs a look.
      if (this.#timer === null || this.#onDrained !== null) this.#service(now);
    });
    sock.on('error', () => this.sendErrors++);
    if (!this.#keepAlive) sock.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAtUs = Number.POSITIVE_INFINITY;
    const now = this.#clock();
    this.node.handleTimeout(now);
    this.#service(now);
  };

  /** Reports a finished drain, then keeps the one timer at the node's `pollTimeout()`. */
  #service(now: number): void {
    if (this.#onDrained && this.node.drained(now)) {
      const cb = this.#onDrained;
      this.#onDrained = null;
      cb();
    }
    if (this.#closed) return;
    const at = this.node.pollTimeout(now) ?? Number.POSITIVE_INFINITY;
    if (at === Number.POSITIVE_INFINITY) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      this.#timerAtUs = at;
      return;
    }
    // A timer that fires early is harmless (nothing is due, it re-arms); one that fires late is not.
    if (this.#timer && this.#timerAtUs <= at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAtUs = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil((at - now) / US_PER_MS)));
    if (!this.#keepAlive) this.#timer.unref();
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
    const now = this.#clock();
    this.node.drain(now, seconds);
    this.#onDrained = done;
    // Already drained (no sessions): `done` runs from the timer, not inside this call.
    if (this.node.drained(now)) this.#armNow();
    else this.#service(now);
  }

  #armNow(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAtUs = this.#clock();
    this.#timer = setTimeout(this.#onTimer, 0);
    if (!this.#keepAlive) this.#timer.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
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
