// The relay's WebRTC gateway: browsers cannot send UDP, but a WebRTC data channel that is unordered and
// never retransmits (ordered false, maxRetransmits 0) carries datagrams much as UDP does: one message per
// relay datagram, lost rather than late. The page signals over HTTP: it POSTs its SDP offer to the
// gateway's signaling port and gets the relay's SDP answer back (ICE candidates inside, no trickling, no
// STUN server: the relay's host candidate is enough, and the page's own is learnt from its first check).
// The `node-datachannel` package (an optional dependency: libdatachannel, prebuilt in npm packages) is
// loaded only when a gateway is asked for.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { SocketAddress } from '../core/types.js';
import { concat } from '../util/bytes.js';
import { NetlaneError } from '../util/errors.js';
import type { DatagramTransport } from './driver.js';
import { RelayGateway, listen, loadOptional, type GatewayLimits } from './gateway.js';

/** Options of a relay's WebRTC gateway (`RelayServer.open({ gateways: { webrtc } })`, `netlane relay --webrtc HOST:PORT`). */
export interface WebRtcGatewayOptions extends GatewayLimits {
  /** IP literal of the signaling endpoint (TCP) and of the data channels' ICE host candidate (UDP). Default: the relay's UDP address. */
  readonly address?: string;
  /** TCP port of the signaling endpoint; 0 picks a free one. Default 0. */
  readonly port?: number;
  /**
   * The UDP port every data channel shares (ICE multiplexed on one port, for a firewall to open). Default: the
   * number of the signaling port (TCP and UDP ports are apart). 0: each connection on a free port of its own.
   */
  readonly icePort?: number;
  /**
   * The IP browsers reach the data channels' UDP port at, when it is not `address` (a relay on 0.0.0.0, behind
   * a NAT or in a container): the answer's ICE candidates name this IP, at the shared `icePort`, instead of
   * the gathered ones. Needs an `icePort` other than 0.
   */
  readonly announcedAddress?: string;
  /** A connection whose data channel is not open this many ms after its offer is closed. Default 10,000. */
  readonly openTimeoutMs?: number;
}

/** Counters of a {@link WebRtcGateway}. */
export interface WebRtcGatewayStats {
  /** Offers answered, data channels opened, and open now. */
  offers: number;
  accepted: number;
  open: number;
  /** Offers refused at once: over `maxConnections` (503), over `maxConnectionsPerAddress` (429), not an SDP offer (400). */
  refusedFull: number;
  refusedPerAddress: number;
  refusedBadOffer: number;
  /** Connections whose data channel did not open within `openTimeoutMs`. */
  timedOut: number;
  /** Connections closed for sending a text message or one over `maxMessageBytes`. */
  closedText: number;
  closedTooBig: number;
  /** Datagrams in and out. */
  received: number;
  sent: number;
  /** Datagrams to a data channel that was gone or full: dropped. */
  dropped: number;
}

/** The part of node-datachannel's data channel used here. */
interface NdcChannel {
  sendMessageBinary(data: Uint8Array): boolean;
  isOpen(): boolean;
  bufferedAmount(): number;
  close(): void;
  onMessage(fn: (m: string | Uint8Array | ArrayBuffer) => void): void;
  onClosed(fn: () => void): void;
  onError(fn: (e: string) => void): void;
}

/** The part of node-datachannel's peer connection used here. */
interface NdcPeer {
  setRemoteDescription(sdp: string, type: 'offer'): void;
  localDescription(): { type: string; sdp: string } | null;
  onStateChange(fn: (state: string) => void): void;
  onGatheringStateChange(fn: (state: string) => void): void;
  onDataChannel(fn: (dc: NdcChannel) => void): void;
  close(): void;
}

type NdcModule = { PeerConnection: new (name: string, config: object) => NdcPeer };

/** In a variable: the optional package is loaded only when a gateway is asked for. */
const NDC_MODULE = 'node-datachannel';
/** Largest offer taken: a browser's data-channel offer is about 1 KiB with its candidates. */
const MAX_OFFER_BYTES = 16 << 10;
/** How long the relay gathers its ICE candidates before it answers with what it has (on loopback: about 1 ms). */
const GATHER_MS = 2000;

/** The `node-datachannel` package, or a typed error naming it. */
function loadNdc(): Promise<NdcModule> {
  return loadOptional<NdcModule>(NDC_MODULE, 'WebRTC gateway', (mod) => (mod.PeerConnection ? mod : (mod.default as NdcModule)));
}

/** One browser's peer connection and (once open) its data channel. */
interface Conn {
  readonly pc: NdcPeer;
  dc: NdcChannel | null;
  /** Closes the connection and forgets it (once). */
  readonly end: () => void;
}

/**
 * A relay's UDP socket (or its socket with other gateways) with a WebRTC gateway beside it, as one
 * {@link DatagramTransport}: the relay node sees each browser's data channel as a peer at a synthetic
 * address (`rtc/N`, port 1) standing in for a UDP address, never sent to anyone, as the WebSocket gateway's
 * `ws/N` is. The browser's IP is kept only to count connections per address. Everything the relay does for a
 * UDP peer it does for a data-channel peer the same way.
 */
export class WebRtcGateway extends RelayGateway<Conn> {
  readonly stats: WebRtcGatewayStats = { offers: 0, accepted: 0, open: 0, refusedFull: 0, refusedPerAddress: 0, refusedBadOffer: 0, timedOut: 0, closedText: 0, closedTooBig: 0, received: 0, sent: 0, dropped: 0 };
  /** Resolves with the TCP address of the signaling endpoint (the URL a page POSTs its offer to is `http://ADDRESS:PORT/`); rejects with ERR_NETLANE_SOCKET if it cannot listen. */
  readonly listening: Promise<SocketAddress>;
  readonly #http: Server;
  readonly #opening = new Set<Conn>();
  readonly #openTimeoutMs: number;
  #ndc: NdcModule | null = null;
  #config: object = {};
  /** The answer's candidate lines replaced by one naming `announcedAddress` (null: the gathered ones). */
  #announce: ((sdp: string) => string) | null = null;

  /**
   * Wraps `inner` and starts listening. Throws ERR_NETLANE_INVALID_ARGUMENT on a bad option; `listening`
   * rejects with ERR_NETLANE_GATEWAY_MISSING without the `node-datachannel` package, ERR_NETLANE_SOCKET if the port is taken.
   */
  constructor(inner: DatagramTransport, options: WebRtcGatewayOptions = {}) {
    super(inner, 'rtc/', options);
    this.#openTimeoutMs = options.openTimeoutMs ?? 10_000;
    if (!(this.#openTimeoutMs > 0)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `gateway openTimeoutMs must be positive, got ${this.#openTimeoutMs}`);
    if (options.icePort !== undefined && (!Number.isInteger(options.icePort) || options.icePort < 0 || options.icePort > 65535)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `gateway icePort must be a port number, got ${options.icePort}`);
    this.#http = createServer((req, res) => this.#request(req, res));
    const host = options.address ?? inner.local.address;
    this.listening = loadNdc().then(async (ndc) => {
      if (this.closed) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'the relay closed before its gateway listened');
      this.#ndc = ndc;
      const at = await listen(this.#http, host, options.port ?? 0, 'WebRTC gateway');
      const icePort = options.icePort ?? at.port;
      const announced = options.announcedAddress;
      if (announced !== undefined) {
        if (icePort === 0) throw new NetlaneError('ERR_NETLANE_CONFIG', 'a WebRTC gateway with announcedAddress needs a shared icePort (not 0)');
        this.#announce = (sdp) => announceCandidate(sdp, announced, icePort);
      }
      this.#config = {
        iceServers: [],
        bindAddress: host,
        maxMessageSize: this.limits.maxMessageBytes,
        ...(icePort > 0 ? { enableIceUdpMux: true, portRangeBegin: icePort, portRangeEnd: icePort } : {}),
      };
      return at;
    });
    this.listening.catch(() => undefined); // a caller that never awaits it does not crash the process
    this.keepProcessAlive(false);
  }

  /** The signaling endpoint: POST an SDP offer (as text), get the SDP answer. Pages of any origin may (CORS). */
  #request(req: IncomingMessage, res: ServerResponse): void {
    const headers = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'content-type' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, headers).end();
      return;
    }
    if (req.method !== 'POST' || !this.#ndc) {
      res.writeHead(405, { ...headers, 'content-type': 'text/plain', allow: 'POST' }).end('netlane relay WebRTC gateway: POST an SDP offer\n');
      return;
    }
    const reply = (code: number, body: string, type = 'text/plain'): void => void res.writeHead(code, { ...headers, 'content-type': type }).end(body);
    const admit = this.admit(req.socket.remoteAddress ?? '', this.#opening.size);
    if (admit === 'full') {
      this.stats.refusedFull++;
      reply(503, 'relay gateway full\n');
      req.resume();
      return;
    }
    if (admit === 'perAddress') {
      this.stats.refusedPerAddress++;
      reply(429, 'too many connections from this address\n');
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= MAX_OFFER_BYTES) chunks.push(d);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      const sdp = Buffer.concat(chunks).toString('utf8');
      if (size > MAX_OFFER_BYTES || !sdp.startsWith('v=0')) {
        this.stats.refusedBadOffer++;
        reply(400, 'not an SDP offer\n');
        return;
      }
      this.#offer(sdp, admit.group, reply);
    });
  }

  /** A browser's offer: a peer connection for it, answered once the relay's candidates are gathered. */
  #offer(sdp: string, group: string, reply: (code: number, body: string, type?: string) => void): void {
    const ndc = this.#ndc as NdcModule;
    if (this.closed) return reply(503, 'relay closed\n');
    let pc: NdcPeer;
    try {
      pc = new ndc.PeerConnection('netlane-relay', this.#config);
    } catch (e) {
      return reply(503, `cannot open a peer connection: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    this.hold(group);
    let from: SocketAddress | null = null;
    let ended = false;
    const conn: Conn = {
      pc,
      dc: null,
      end: () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        if (from) {
          this.remove(from);
          this.stats.open--;
        } else {
          this.#opening.delete(conn);
          this.release(group);
        }
        conn.dc?.close();
        pc.close();
      },
    };
    this.#opening.add(conn);
    const timer = setTimeout(() => {
      if (from) return;
      this.stats.timedOut++;
      conn.end();
    }, this.#openTimeoutMs);
    if (!this.keepAlive) timer.unref();
    pc.onStateChange((state) => {
      if (state === 'failed' || state === 'closed' || state === 'disconnected') conn.end();
    });
    pc.onDataChannel((dc) => {
      if (from || ended) {
        dc.close(); // one data channel per connection
        return;
      }
      conn.dc = dc;
      this.#opening.delete(conn);
      from = this.add(conn, group);
      this.stats.accepted++;
      this.stats.open++;
      const at = from;
      dc.onMessage((m) => {
        if (typeof m === 'string') {
          this.stats.closedText++;
          return conn.end();
        }
        const data = m instanceof ArrayBuffer ? new Uint8Array(m) : m;
        if (data.byteLength > this.limits.maxMessageBytes) {
          this.stats.closedTooBig++;
          return conn.end();
        }
        this.stats.received++;
        this.onMessage(data, at);
      });
      dc.onClosed(conn.end);
      dc.onError(() => undefined); // a close follows
    });
    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      clearTimeout(gather);
      const d = ended ? null : pc.localDescription();
      if (d) {
        this.stats.offers++;
        reply(200, this.#announce ? this.#announce(d.sdp) : d.sdp, 'application/sdp');
      } else reply(503, 'no answer\n');
    };
    const gather = setTimeout(answer, GATHER_MS);
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') answer();
    });
    try {
      pc.setRemoteDescription(sdp, 'offer');
    } catch (e) {
      answered = true;
      clearTimeout(gather);
      this.stats.refusedBadOffer++;
      conn.end();
      reply(400, `not an SDP offer: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }

  /** @internal */
  protected sendOn(conn: Conn, data: Uint8Array, header: Uint8Array | undefined): boolean {
    const dc = conn.dc;
    if (!dc?.isOpen() || dc.bufferedAmount() > this.limits.maxBufferedBytes) return false;
    dc.sendMessageBinary(header ? concat(header, data) : data);
    return true;
  }

  override keepProcessAlive(yes: boolean): void {
    super.keepProcessAlive(yes);
    if (yes) this.#http.ref();
    else this.#http.unref();
  }

  /** Closes every data channel and its peer connection; their pages open new ones on their next datagram, and the relay moves their sessions as after a NAT rebinding. Returns how many it closed. */
  disconnectAll(): number {
    const all = [...this.peers.values()];
    for (const p of all) p.conn.end();
    return all.length;
  }

  override close(): void {
    if (this.closed) return;
    for (const c of [...this.#opening]) c.end();
    for (const p of [...this.peers.values()]) p.conn.end();
    this.#http.close();
    this.#http.closeAllConnections();
    super.close();
  }
}

/** `sdp` with its ICE candidates replaced by one UDP host candidate at `ip`:`port` (in each media section that had some). */
export function announceCandidate(sdp: string, ip: string, port: number): string {
  const out: string[] = [];
  let done = false;
  for (const line of sdp.split('\r\n')) {
    if (line.startsWith('m=')) done = false;
    if (!line.startsWith('a=candidate:')) {
      out.push(line);
      continue;
    }
    if (done) continue;
    // a=candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY IP PORT typ TYPE ...
    const f = line.split(' ');
    if (f.length < 8 || f[2]?.toUpperCase() !== 'UDP') continue;
    out.push([f[0], f[1], f[2], f[3], ip, String(port), 'typ', 'host'].join(' '));
    done = true;
  }
  return out.join('\r\n');
}
