// The relay's WebSocket gateway: browsers cannot send UDP, so a relay also takes its datagrams over
// WebSockets, one binary message per datagram. The `ws` package (an optional dependency) is loaded only
// when a gateway is asked for.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { SocketAddress } from '../core/types.js';
import { concat } from '../util/bytes.js';
import { NetlaneError } from '../util/errors.js';
import type { DatagramTransport } from './driver.js';
import { RelayGateway, listen, loadOptional, type GatewayLimits } from './gateway.js';

/** Options of a relay's WebSocket gateway (`RelayServer.open({ gateways: { ws } })`, `netlane relay --ws HOST:PORT`). */
export interface WsGatewayOptions extends GatewayLimits {
  /** IP literal to listen on (TCP). Default: the relay's UDP address. */
  readonly address?: string;
  /** TCP port; 0 picks a free one. Default: the relay's UDP port number (TCP and UDP ports are apart), which browsers assume by default. */
  readonly port?: number;
}

/** Counters of a {@link WsGateway}. */
export interface WsGatewayStats {
  /** WebSockets accepted, and open now. */
  accepted: number;
  open: number;
  /** WebSockets closed at once: over `maxConnections`, over `maxConnectionsPerAddress`. */
  refusedFull: number;
  refusedPerAddress: number;
  /** WebSockets closed for sending a text message (1003) or one over `maxMessageBytes` (1009). */
  closedText: number;
  closedTooBig: number;
  /** Datagrams in and out. */
  received: number;
  sent: number;
  /** Datagrams to a WebSocket that was gone or full: dropped. */
  dropped: number;
}

/** The part of the `ws` package's WebSocket used here. */
interface WsSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  on(event: 'message', fn: (data: Uint8Array, isBinary: boolean) => void): void;
  on(event: 'close', fn: () => void): void;
  on(event: 'error', fn: (e: Error & { code?: string }) => void): void;
}

interface WsServer {
  on(event: 'connection', fn: (ws: WsSocket, req: IncomingMessage) => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
  close(): void;
}

type WsModule = { WebSocketServer: new (o: object) => WsServer };

const OPEN = 1;

/** In a variable: the optional package is loaded only when a gateway is asked for. */
const WS_MODULE = 'ws';

/** The `ws` package, or a typed error naming it. */
function loadWs(): Promise<WsModule> {
  return loadOptional<WsModule>(WS_MODULE, 'WebSocket gateway', (mod) => (mod.WebSocketServer ? mod : (mod.default as WsModule)));
}

/**
 * A relay's UDP socket with a WebSocket gateway beside it, as one {@link DatagramTransport}: the relay node
 * sees each WebSocket as a peer at a synthetic address (`ws/N`, port 1) that stands in for a UDP address.
 * That address is never sent to anyone (a relay never sends peers' addresses), nor is the WebSocket
 * peer's IP, which the gateway keeps only to count connections per address. Everything the relay does for
 * a UDP peer (cookies, sessions, links, rate limits) it does for a WebSocket peer the same way.
 */
export class WsGateway extends RelayGateway<WsSocket> {
  readonly stats: WsGatewayStats = { accepted: 0, open: 0, refusedFull: 0, refusedPerAddress: 0, closedText: 0, closedTooBig: 0, received: 0, sent: 0, dropped: 0 };
  /** Resolves with the TCP address the gateway listens on; rejects with ERR_NETLANE_SOCKET if it cannot. */
  readonly listening: Promise<SocketAddress>;
  readonly #http: Server;
  #wss: WsServer | null = null;

  /**
   * Wraps `udp` and starts listening. Throws ERR_NETLANE_INVALID_ARGUMENT on a bad option; `listening`
   * rejects with ERR_NETLANE_GATEWAY_MISSING without the `ws` package, ERR_NETLANE_SOCKET if the port is taken.
   */
  constructor(udp: DatagramTransport, options: WsGatewayOptions = {}) {
    super(udp, 'ws/', options);
    this.#http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('netlane relay gateway: WebSocket only\n');
    });
    const host = options.address ?? udp.local.address;
    const port = options.port ?? udp.local.port;
    this.listening = loadWs().then((ws) => {
      if (this.closed) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'the relay closed before its gateway listened');
      // ws's own limit closes a WebSocket sending a too-big message with 1009 before the message is read.
      const wss = new ws.WebSocketServer({ server: this.#http, maxPayload: this.limits.maxMessageBytes, perMessageDeflate: false, clientTracking: false });
      this.#wss = wss;
      wss.on('error', () => undefined); // the http server's errors reject `listening`
      wss.on('connection', (sock, req) => this.#accept(sock, req));
      return listen(this.#http, host, port, 'WebSocket gateway');
    });
    this.listening.catch(() => undefined); // a caller that never awaits it does not crash the process
    this.keepProcessAlive(false);
  }

  #accept(sock: WsSocket, req: IncomingMessage): void {
    sock.on('error', () => undefined); // a close follows
    const admit = this.admit(req.socket.remoteAddress ?? '');
    if (admit === 'full') {
      this.stats.refusedFull++;
      sock.close(1013, 'relay gateway full');
      return;
    }
    if (admit === 'perAddress') {
      this.stats.refusedPerAddress++;
      sock.close(1008, 'too many connections from this address');
      return;
    }
    if (!this.keepAlive) req.socket.unref();
    this.hold(admit.group);
    const from = this.add(sock, admit.group);
    this.stats.accepted++;
    this.stats.open++;
    let closedFor: 'text' | 'tooBig' | null = null;
    // ws reports a message over maxPayload as this error, then closes with 1009.
    sock.on('error', (e) => {
      if (e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') closedFor = 'tooBig';
    });
    sock.on('message', (data, isBinary) => {
      if (!isBinary) {
        closedFor = 'text';
        sock.close(1003, 'binary messages only');
        return;
      }
      this.stats.received++;
      this.onMessage(data, from);
    });
    sock.on('close', () => {
      if (closedFor === 'text') this.stats.closedText++;
      else if (closedFor === 'tooBig') this.stats.closedTooBig++;
      this.remove(from);
      this.stats.open--;
    });
  }

  /** @internal */
  protected sendOn(ws: WsSocket, data: Uint8Array, header: Uint8Array | undefined): boolean {
    if (ws.readyState !== OPEN || ws.bufferedAmount > this.limits.maxBufferedBytes) return false;
    ws.send(header ? concat(header, data) : data);
    return true;
  }

  override keepProcessAlive(yes: boolean): void {
    super.keepProcessAlive(yes);
    if (yes) this.#http.ref();
    else this.#http.unref();
  }

  /** Closes every open WebSocket with `code` (default 1012, service restart); their peers open new ones, and the relay moves their sessions as after a NAT rebinding. Returns how many it closed. */
  disconnectAll(code = 1012, reason = 'relay gateway restart'): number {
    const n = this.peers.size;
    for (const p of this.peers.values()) p.conn.close(code, reason);
    return n;
  }

  override close(): void {
    if (this.closed) return;
    for (const p of this.peers.values()) p.conn.close(1001, 'relay closed');
    this.peers.clear();
    this.#wss?.close();
    this.#http.close();
    this.#http.closeAllConnections();
    super.close();
  }
}
