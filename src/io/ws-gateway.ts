// The relay's WebSocket gateway: browsers cannot send UDP, so a relay also takes its datagrams over
// WebSockets, one binary message per datagram. The `ws` package (an optional dependency) is loaded only
// when a gateway is asked for.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { SocketAddress } from '../core/types.js';
import { addressGroup } from '../util/address.js';
import { concat } from '../util/bytes.js';
import { NetlaneError } from '../util/errors.js';
import type { DatagramTransport } from './driver.js';

/** Options of a relay's WebSocket gateway (`RelayServer.open({ gateways: { ws } })`, `netlane relay --ws HOST:PORT`). */
export interface WsGatewayOptions {
  /** IP literal to listen on (TCP). Default: the relay's UDP address. */
  readonly address?: string;
  /** TCP port; 0 picks a free one. Default: the relay's UDP port number (TCP and UDP ports are apart), which browsers assume by default. */
  readonly port?: number;
  /** Open WebSockets at most; more are closed at once with code 1013 (try again later). Default 10,000. */
  readonly maxConnections?: number;
  /** Open WebSockets from one IPv4 address or IPv6 /64 at most; more are closed with 1008. Default 16. */
  readonly maxConnectionsPerAddress?: number;
  /** Largest message taken: a relay datagram never is larger. Bigger ones close the WebSocket (1009). Default 2048. */
  readonly maxMessageBytes?: number;
  /** Bytes one WebSocket may hold unsent before a datagram to it is dropped, as a full UDP buffer drops it. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
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
/** The synthetic addresses of gateway peers: `ws/N`, no IP, so they are in no address group and never a real UDP peer. */
const PREFIX = 'ws/';

/** In a variable: the optional package is loaded only when a gateway is asked for. */
const WS_MODULE = 'ws';

/** The `ws` package, or a typed error naming it. */
async function loadWs(): Promise<WsModule> {
  try {
    const mod = (await import(WS_MODULE)) as WsModule & { default?: WsModule };
    return mod.WebSocketServer ? mod : (mod.default as WsModule);
  } catch (e) {
    throw new NetlaneError('ERR_NETLANE_GATEWAY_MISSING', `the WebSocket gateway needs the package ws (npm install ws): ${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)}`);
  }
}

interface Peer {
  readonly ws: WsSocket;
  readonly group: string;
}

/**
 * A relay's UDP socket with a WebSocket gateway beside it, as one {@link DatagramTransport}: the relay node
 * sees each WebSocket as a peer at a synthetic address (`ws/N`, port 1) that stands in for a UDP address.
 * That address is never sent to anyone (a relay never sends peers' addresses), nor is the WebSocket
 * peer's IP, which the gateway keeps only to count connections per address. Everything the relay does for
 * a UDP peer (cookies, sessions, links, rate limits) it does for a WebSocket peer the same way.
 */
export class WsGateway implements DatagramTransport {
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  readonly stats: WsGatewayStats = { accepted: 0, open: 0, refusedFull: 0, refusedPerAddress: 0, closedText: 0, closedTooBig: 0, received: 0, sent: 0, dropped: 0 };
  /** Resolves with the TCP address the gateway listens on; rejects with ERR_NETLANE_SOCKET if it cannot. */
  readonly listening: Promise<SocketAddress>;
  readonly #udp: DatagramTransport;
  readonly #http: Server;
  #wss: WsServer | null = null;
  readonly #peers = new Map<string, Peer>();
  readonly #perGroup = new Map<string, number>();
  readonly #maxBuffered: number;
  #next = 1;
  #closed = false;
  #keepAlive = false;

  /**
   * Wraps `udp` and starts listening. Throws ERR_NETLANE_INVALID_ARGUMENT on a bad option; `listening`
   * rejects with ERR_NETLANE_GATEWAY_MISSING without the `ws` package, ERR_NETLANE_SOCKET if the port is taken.
   */
  constructor(udp: DatagramTransport, options: WsGatewayOptions = {}) {
    const maxConnections = options.maxConnections ?? 10_000;
    const perAddress = options.maxConnectionsPerAddress ?? 16;
    const maxMessage = options.maxMessageBytes ?? 2048;
    for (const [name, v] of [['maxConnections', maxConnections], ['maxConnectionsPerAddress', perAddress], ['maxMessageBytes', maxMessage]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `gateway ${name} must be a positive integer, got ${v}`);
    }
    this.#udp = udp;
    this.#maxBuffered = options.maxBufferedBytes ?? 1 << 20;
    udp.onMessage = (data, from) => this.onMessage(data, from);
    this.#http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('netlane relay gateway: WebSocket only\n');
    });
    const host = options.address ?? udp.local.address;
    const port = options.port ?? udp.local.port;
    this.listening = loadWs().then((ws) => {
      if (this.#closed) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'the relay closed before its gateway listened');
      // ws's own limit closes a WebSocket sending a too-big message with 1009 before the message is read.
      const wss = new ws.WebSocketServer({ server: this.#http, maxPayload: maxMessage, perMessageDeflate: false, clientTracking: false });
      this.#wss = wss;
      wss.on('error', () => undefined); // the http server's errors reject `listening`
      wss.on('connection', (sock, req) => this.#accept(sock, req, maxConnections, perAddress));
      return new Promise<SocketAddress>((resolve, reject) => {
        this.#http.once('error', (e) => reject(new NetlaneError('ERR_NETLANE_SOCKET', `cannot open the WebSocket gateway on [${host}]:${port}: ${e.message}`)));
        this.#http.listen({ host, port, exclusive: true }, () => {
          const a = this.#http.address();
          resolve(typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: host, port });
        });
      });
    });
    this.listening.catch(() => undefined); // a caller that never awaits it does not crash the process
    this.keepProcessAlive(false);
  }

  #accept(sock: WsSocket, req: IncomingMessage, maxConnections: number, perAddress: number): void {
    const ip = req.socket.remoteAddress ?? '';
    const group = addressGroup(ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip) ?? ip;
    const inGroup = this.#perGroup.get(group) ?? 0;
    sock.on('error', () => undefined); // a close follows
    if (this.#closed || this.#peers.size >= maxConnections) {
      this.stats.refusedFull++;
      sock.close(1013, 'relay gateway full');
      return;
    }
    if (inGroup >= perAddress) {
      this.stats.refusedPerAddress++;
      sock.close(1008, 'too many connections from this address');
      return;
    }
    if (!this.#keepAlive) req.socket.unref();
    this.#perGroup.set(group, inGroup + 1);
    const from: SocketAddress = { address: `${PREFIX}${this.#next++}`, port: 1 };
    this.#peers.set(from.address, { ws: sock, group });
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
      this.#peers.delete(from.address);
      this.stats.open--;
      const n = (this.#perGroup.get(group) ?? 1) - 1;
      if (n > 0) this.#perGroup.set(group, n);
      else this.#perGroup.delete(group);
    });
  }

  /** A datagram to a `ws/N` peer goes out on its WebSocket (dropped if it is gone or full); any other on UDP. */
  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    if (!to.address.startsWith(PREFIX)) {
      this.#udp.send(data, to, header);
      return;
    }
    const peer = this.#peers.get(to.address);
    if (!peer || peer.ws.readyState !== OPEN || peer.ws.bufferedAmount > this.#maxBuffered) {
      this.stats.dropped++;
      return;
    }
    peer.ws.send(header ? concat(header, data) : data);
    this.stats.sent++;
  }

  /** The UDP socket's local address (under Bun, port 0 until a port-0 socket is bound). */
  get local(): SocketAddress {
    return this.#udp.local;
  }

  get binding(): boolean {
    return this.#udp.binding ?? false;
  }

  /** The UDP socket's bind (the gateway's own listen is `listening`). */
  bound(): Promise<SocketAddress> {
    return this.#udp.bound ? this.#udp.bound() : Promise.resolve(this.#udp.local);
  }

  get sendErrors(): number {
    return (this.#udp.sendErrors ?? 0) + this.stats.dropped;
  }

  keepProcessAlive(yes: boolean): void {
    this.#keepAlive = yes;
    this.#udp.keepProcessAlive(yes);
    if (yes) this.#http.ref();
    else this.#http.unref();
  }

  /** Closes every open WebSocket with `code` (default 1012, service restart); their peers open new ones, and the relay moves their sessions as after a NAT rebinding. Returns how many it closed. */
  disconnectAll(code = 1012, reason = 'relay gateway restart'): number {
    const n = this.#peers.size;
    for (const p of this.#peers.values()) p.ws.close(code, reason);
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#peers.values()) p.ws.close(1001, 'relay closed');
    this.#peers.clear();
    this.#wss?.close();
    this.#http.close();
    this.#http.closeAllConnections();
    this.#udp.close();
  }
}
