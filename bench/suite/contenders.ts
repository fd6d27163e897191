// The contenders: raw dgram, TCP (a write per message, and batched), ws, ENet, KCP, WebRTC data channels,
// and netlane. Each is driven the way its documentation says a program should drive it, with no waits
// added: everything reacts to its socket's events.
import dgram from 'node:dgram';
import net from 'node:net';
import { subscribe } from 'node:diagnostics_channel';
import { WritableStream, type ReadableStream } from 'node:stream/web';
import { NetworkingSockets, SendFlags, ConnectionState, Result, type StatusChangedInfo } from '../../src/index.js';
import { SEND_BUFFER_CAP, hostPort, importBench, until, view, type Contender, type Link, type Mode } from './common.js';

const noop = (): void => undefined;
/** Sends on an unconnected dgram socket without a dns.lookup per send (an IP literal needs none). */
const literalLookup = (host: string, _o: unknown, cb: (e: Error | null, a: string, f: number) => void): void => cb(null, host, host.includes(':') ? 6 : 4);

// ---------------------------------------------------------------- raw UDP: the physical limit for Node
const UDP_INFLIGHT = 64;
class UdpLink implements Link {
  onMessage: (data: Uint8Array) => void = noop;
  inflight = 0;
  readonly #done = (): void => void this.inflight--;
  constructor(
    readonly socket: dgram.Socket,
    readonly port: number,
    readonly address: string,
    readonly connected: boolean,
  ) {}
  send(data: Uint8Array): boolean {
    this.inflight++;
    if (this.connected) this.socket.send(data, this.#done);
    else this.socket.send(data, this.port, this.address, this.#done);
    return true;
  }
  flush(): void {}
  writable(): boolean {
    return this.inflight < UDP_INFLIGHT;
  }
  close(): void {
    if (this.connected) this.socket.close();
  }
}

function udpSocket(host: string): dgram.Socket {
  return dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 1 << 20, lookup: literalLookup as never });
}

const udp: Contender = {
  name: 'udp',
    backPressure: false,
  modes: ['unreliable'],
  maxMessage: 1200,
  async serve(host, onLink) {
    const s = udpSocket(host);
    await new Promise<void>((r) => s.bind(0, host, r));
    const links = new Map<string, UdpLink>();
    s.on('message', (m, r) => {
      const key = `${r.address}:${r.port}`;
      let l = links.get(key);
      if (!l) {
        l = new UdpLink(s, r.port, r.address, false);
        links.set(key, l);
        onLink(l);
      }
      l.onMessage(m);
    });
    return { port: s.address().port, close: () => s.close() };
  },
  async connect(host, port) {
    const s = udpSocket(host);
    await new Promise<void>((r) => s.bind(0, host, r));
    await new Promise<void>((r) => s.connect(port, host, r));
    const l = new UdpLink(s, port, host, true);
    s.on('message', (m) => l.onMessage(m));
    return l;
  },
};

// ---------------------------------------------------------------- TCP, NODELAY, 4-byte length prefix
class TcpLink implements Link {
  onMessage: (data: Uint8Array) => void = noop;
  #pending: Buffer | null = null;
  #corked = false;
  constructor(
    readonly socket: net.Socket,
    readonly batched: boolean,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('error', noop);
  }
  #data(chunk: Buffer): void {
    let b = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    let off = 0;
    while (b.length - off >= 4) {
      const len = b.readUInt32LE(off);
      if (b.length - off - 4 < len) break;
      this.onMessage(b.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    b = b.subarray(off);
    this.#pending = b.length > 0 ? Buffer.from(b) : null;
  }
  send(data: Uint8Array): boolean {
    // One buffer per message: the prefix and the body go out in one write.
    const frame = Buffer.allocUnsafe(4 + data.length);
    frame.writeUInt32LE(data.length, 0);
    frame.set(data, 4);
    if (this.batched && !this.#corked) {
      this.socket.cork();
      this.#corked = true;
    }
    this.socket.write(frame);
    return true;
  }
  flush(): void {
    // Batched: everything written since the last flush leaves in one writev.
    if (this.#corked) {
      this.#corked = false;
      this.socket.uncork();
    }
  }
  writable(): boolean {
    return this.socket.writableLength < SEND_BUFFER_CAP;
  }
  close(): void {
    this.socket.destroy();
  }
}

function tcp(batched: boolean): Contender {
  return {
    name: batched ? 'tcp-batch' : 'tcp',
    backPressure: true,
    modes: ['reliable'],
    maxMessage: Infinity,
    async serve(host, onLink) {
      const server = net.createServer((sock) => onLink(new TcpLink(sock, batched)));
      await new Promise<void>((r) => server.listen(0, host, r));
      return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
    },
    async connect(host, port) {
      const sock = net.connect({ host, port, noDelay: true });
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      return new TcpLink(sock, batched);
    },
  };
}

// ---------------------------------------------------------------- ws
interface WsSocket {
  send(data: Uint8Array, opts: { binary: boolean }): void;
  on(ev: 'message', fn: (data: Buffer) => void): void;
  once(ev: 'open' | 'error', fn: (e?: unknown) => void): void;
  bufferedAmount: number;
  binaryType: string;
  terminate(): void;
}
interface WsModule {
  WebSocket: new (url: string, opts: object) => WsSocket;
  WebSocketServer: new (opts: object) => { on(ev: 'connection', fn: (s: WsSocket) => void): void; once(ev: 'listening', fn: () => void): void; address(): net.AddressInfo; close(): void };
}

class WsLink implements Link {
  onMessage: (data: Uint8Array) => void = noop;
  constructor(readonly ws: WsSocket) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (d) => this.onMessage(d));
  }
  send(data: Uint8Array): boolean {
    this.ws.send(data, { binary: true });
    return true;
  }
  flush(): void {}
  writable(): boolean {
    return this.ws.bufferedAmount < SEND_BUFFER_CAP;
  }
  close(): void {
    this.ws.terminate();
  }
}

const ws: Contender = {
  name: 'ws',
    backPressure: true,
  modes: ['reliable'],
  maxMessage: Infinity,
  async serve(host, onLink) {
    const { WebSocketServer } = await importBench<WsModule>('ws');
    const server = new WebSocketServer({ host, port: 0, perMessageDeflate: false, maxPayload: 4 << 20 });
    await new Promise<void>((r) => server.once('listening', r));
    server.on('connection', (s) => onLink(new WsLink(s)));
    return { port: server.address().port, close: () => server.close() };
  },
  async connect(host, port) {
    const { WebSocket } = await importBench<WsModule>('ws');
    const s = new WebSocket(`ws://${hostPort(host, port)}/`, { perMessageDeflate: false, maxPayload: 4 << 20 });
    await new Promise((resolve, reject) => {
      s.once('open', resolve);
      s.once('error', reject);
    });
    return new WsLink(s);
  },
};

// ---------------------------------------------------------------- ENet (the `enet` npm package: ENet 1.3 compiled to JS)
interface EnetPeer {
  send(channel: number, packet: unknown): boolean;
  on(ev: 'message', fn: (packet: { data(): Buffer }, channel: number) => void): void;
  disconnectNow(): void;
}
interface EnetHost {
  on(ev: 'connect', fn: (peer: EnetPeer) => void): void;
  address(): net.AddressInfo;
  flush(): void;
  connect(addr: { address: string; port: number }, channels: number, data: number, cb: (err: Error | undefined, peer: EnetPeer) => void): EnetPeer;
  destroy(): void;
  _service(): void;
  _socket: dgram.Socket;
}
interface EnetModule {
  createServer(opts: object, cb: (err: Error | undefined, host: EnetHost) => void): void;
  createClient(opts: object, cb: (err: Error | undefined, host: EnetHost) => void): void;
  Packet: new (data: Buffer, flags: number) => unknown;
  PACKET_FLAG: { RELIABLE: number };
}

/**
 * Peer slots of an ENet host. host_service walks every slot on each call: with 4,000 slots (what the suite
 * had) a ping-pong round trip cost 2.4x more (docs/BENCHMARKS.md). Only the connect measure needs more.
 */
export const enetOptions = { peers: 32 };

/** ENet services its host every 10 ms by default; the bench services it on every datagram instead. */
function driveEnet(host: EnetHost): void {
  let queued = false;
  const service = (): void => {
    queued = false;
    host._service();
  };
  host._socket.on('message', () => {
    if (!queued) {
      queued = true;
      setImmediate(service);
    }
  });
}

class EnetLink implements Link {
  onMessage: (data: Uint8Array) => void = noop;
  constructor(
    readonly mod: EnetModule,
    readonly host: EnetHost,
    readonly peer: EnetPeer,
  ) {
    // Copy: the packet is destroyed when the callback returns.
    peer.on('message', (p) => this.onMessage(Buffer.from(p.data())));
  }
  send(data: Uint8Array, mode: Mode): boolean {
    const reliable = mode === 'reliable';
    return !this.peer.send(reliable ? 1 : 0, new this.mod.Packet(view(data), reliable ? this.mod.PACKET_FLAG.RELIABLE : 0));
  }
  flush(): void {
    this.host.flush();
  }
  writable(): boolean {
    return true;
  }
  close(): void {
    this.peer.disconnectNow();
  }
}

const enet: Contender = {
  name: 'enet',
    backPressure: false,
  modes: ['reliable', 'unreliable'],
  maxMessage: Infinity,
  async serve(host, onLink) {
    const mod = await importBench<EnetModule>('enet');
    const h = await new Promise<EnetHost>((resolve, reject) => mod.createServer({ address: { address: host, port: 0 }, peers: enetOptions.peers, channels: 2, down: 0, up: 0 }, (e, h) => (e ? reject(e) : resolve(h))));
    driveEnet(h);
    h.on('connect', (peer) => onLink(new EnetLink(mod, h, peer)));
    return { port: h.address().port, close: () => h.destroy() };
  },
  async connect(host, port) {
    const mod = await importBench<EnetModule>('enet');
    // One client host for all the connections a process makes: the compiled ENet fails past a few dozen hosts.
    enetClient ??= new Promise<EnetHost>((resolve, reject) =>
      mod.createClient({ peers: enetOptions.peers, channels: 2, down: 0, up: 0 }, (e, h) => {
        if (e) reject(e);
        else {
          driveEnet(h);
          resolve(h);
        }
      }),
    );
    const h = await enetClient;
    const peer = await new Promise<EnetPeer>((resolve, reject) => h.connect({ address: host, port }, 2, 0, (e, p) => (e ? reject(e) : resolve(p))));
    return new EnetLink(mod, h, peer);
  },
};

let enetClient: Promise<EnetHost> | undefined;

// ---------------------------------------------------------------- KCP (@hazae41/kcp over dgram)
interface KcpDuplex {
  inner: { readable: ReadableStream<unknown>; writable: WritableStream<unknown> };
  outer: { readable: ReadableStream<{ bytes: Uint8Array }>; writable: WritableStream<unknown> };
  close(): void;
}
interface KcpModule {
  KcpDuplex: new (params: { conversation: number }) => KcpDuplex;
}
interface BinaryModule {
  Opaque: new (bytes: Uint8Array) => unknown;
  Writable: { writeToBytesOrThrow(w: unknown): Uint8Array };
}

class KcpLink implements Link {
  onMessage: (data: Uint8Array) => void = noop;
  readonly #app: ReturnType<WritableStream<unknown>['getWriter']>;
  readonly #net: ReturnType<WritableStream<unknown>['getWriter']>;
  #queued = 0;
  constructor(
    readonly bin: BinaryModule,
    readonly kcp: KcpDuplex,
    readonly link: UdpLink,
  ) {
    this.#app = kcp.outer.writable.getWriter();
    this.#net = kcp.inner.writable.getWriter();
    void kcp.inner.readable.pipeTo(new WritableStream({ write: (seg) => void link.send(bin.Writable.writeToBytesOrThrow(seg)) })).catch(noop);
    void kcp.outer.readable.pipeTo(new WritableStream({ write: (m) => this.onMessage(m.bytes) })).catch(noop);
    link.onMessage = (d) => void this.#net.write(new bin.Opaque(d)).catch(noop);
  }
  send(data: Uint8Array): boolean {
    this.#queued++;
    void this.#app.write(new this.bin.Opaque(data)).then(() => void this.#queued--, noop);
    return true;
  }
  flush(): void {}
  writable(): boolean {
    return this.#queued < 1024;
  }
  close(): void {
    this.kcp.close();
    this.link.close();
  }
}

const KCP_CONVERSATION = 0x6e6c;

const kcp: Contender = {
  name: 'kcp',
    backPressure: false,
  modes: ['reliable'],
  // @hazae41/kcp sends one segment per message and never fragments: a message must fit a datagram.
  maxMessage: 1200,
  async serve(host, onLink) {
    const { KcpDuplex } = await importBench<KcpModule>('@hazae41/kcp');
    const bin = await importBench<BinaryModule>('@hazae41/binary');
    return udp.serve(host, (l) => onLink(new KcpLink(bin, new KcpDuplex({ conversation: KCP_CONVERSATION }), l as UdpLink)));
  },
  async connect(host, port) {
    const { KcpDuplex } = await importBench<KcpModule>('@hazae41/kcp');
    const bin = await importBench<BinaryModule>('@hazae41/binary');
    return new KcpLink(bin, new KcpDuplex({ conversation: KCP_CONVERSATION }), (await udp.connect(host, port)) as UdpLink);
  },
};

// ---------------------------------------------------------------- WebRTC data channels (node-datachannel), signalled over TCP
interface DataChannel {
  sendMessageBinary(b: Uint8Array): boolean;
  bufferedAmount(): number;
  getLabel(): string;
  onOpen(cb: () => void): void;
  onMessage(cb: (m: string | Buffer | ArrayBuffer) => void): void;
  isOpen(): boolean;
  close(): void;
}
interface PeerConnection {
  setRemoteDescription(sdp: string, type: string): void;
  addRemoteCandidate(c: string, mid: string): void;
  createDataChannel(label: string, cfg?: object): DataChannel;
  onLocalDescription(cb: (sdp: string, type: string) => void): void;
  onLocalCandidate(cb: (c: string, mid: string) => void): void;
  onDataChannel(cb: (dc: DataChannel) => void): void;
  close(): void;
}
interface DatachannelModule {
  PeerConnection: new (name: string, cfg: object) => PeerConnection;
}

class RtcLink implements Link {
  onMessage: (data: Uint8Array) => void = noop;
  constructor(
    readonly pc: PeerConnection,
    readonly reliable: DataChannel,
    readonly unreliable: DataChannel,
  ) {
    const on = (m: string | Buffer | ArrayBuffer): void => {
      if (typeof m !== 'string') this.onMessage(Buffer.isBuffer(m) ? m : new Uint8Array(m));
    };
    reliable.onMessage(on);
    unreliable.onMessage(on);
  }
  send(data: Uint8Array, mode: Mode): boolean {
    // sendMessageBinary returns false when it buffers the message: it is still sent; bufferedAmount pushes back.
    (mode === 'reliable' ? this.reliable : this.unreliable).sendMessageBinary(data);
    return true;
  }
  flush(): void {}
  writable(): boolean {
    return this.reliable.bufferedAmount() + this.unreliable.bufferedAmount() < SEND_BUFFER_CAP;
  }
  close(): void {
    this.pc.close();
  }
}

/** Newline-delimited JSON over a TCP socket: the signalling channel, wired to a peer connection both ways. */
function signal(sock: net.Socket, pc: PeerConnection): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const m = JSON.parse(buf.slice(0, i)) as { sdp?: string; type?: string; candidate?: string; mid?: string };
      buf = buf.slice(i + 1);
      if (m.sdp && m.type) pc.setRemoteDescription(m.sdp, m.type);
      else if (m.candidate !== undefined && m.mid !== undefined) pc.addRemoteCandidate(m.candidate, m.mid);
    }
  });
  sock.on('error', noop);
  const send = (m: object): void => void sock.write(`${JSON.stringify(m)}\n`);
  pc.onLocalDescription((sdp, type) => send({ sdp, type }));
  pc.onLocalCandidate((candidate, mid) => send({ candidate, mid }));
}

function rtcConfig(host: string): object {
  return { iceServers: [], bindAddress: host, maxMessageSize: 1 << 20 };
}

const webrtc: Contender = {
  name: 'webrtc',
    backPressure: true,
  modes: ['reliable', 'unreliable'],
  maxMessage: 1 << 20,
  async serve(host, onLink) {
    const dc = await importBench<DatachannelModule>('node-datachannel');
    const server = net.createServer((sock) => {
      const pc = new dc.PeerConnection('server', rtcConfig(host));
      signal(sock, pc);
      const chans = new Map<string, DataChannel>();
      pc.onDataChannel((ch) => {
        chans.set(ch.getLabel(), ch);
        const r = chans.get('r');
        const u = chans.get('u');
        if (r && u) onLink(new RtcLink(pc, r, u));
      });
    });
    await new Promise<void>((r) => server.listen(0, host, r));
    return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
  },
  async connect(host, port) {
    const dc = await importBench<DatachannelModule>('node-datachannel');
    const sock = net.connect({ host, port });
    const pc = new dc.PeerConnection('client', rtcConfig(host));
    signal(sock, pc);
    const r = pc.createDataChannel('r');
    const u = pc.createDataChannel('u', { ordered: false, maxRetransmits: 0 });
    await until(() => r.isOpen() && u.isOpen(), 10_000, 'WebRTC data channels open');
    sock.end();
    return new RtcLink(pc, r, u);
  },
};

// ---------------------------------------------------------------- netlane
const RELIABLE_LANE = 1;
const UNRELIABLE_LANE = 0;
const RECEIVE_BATCH = 256;

/**
 * Driven as docs/RUNTIME.md "Writable again" tells a bulk sender: send until LimitExceeded, then wait for
 * `onWritable` (not a retry on every turn); flush only when something was queued since the last flush.
 */
class NetlaneLink implements Link {
  onMessage: (data: Uint8Array) => void = noop;
  #blocked = false;
  #queued = false;
  constructor(
    readonly s: NetworkingSockets,
    readonly conn: number,
  ) {
    s.configureConnectionLanes(conn, 2);
  }
  receive(): void {
    for (;;) {
      const msgs = this.s.receiveMessagesOnConnection(this.conn, RECEIVE_BATCH);
      if (!msgs) return;
      for (const m of msgs) this.onMessage(m.data);
      if (msgs.length < RECEIVE_BATCH) return;
    }
  }
  /** `onWritable`: the message refused last would be taken now. */
  writableAgain(): void {
    this.#blocked = false;
  }
  send(data: Uint8Array, mode: Mode): boolean {
    const reliable = mode === 'reliable';
    const r = this.s.sendMessageToConnection(this.conn, data, reliable ? SendFlags.Reliable : SendFlags.Unreliable, reliable ? RELIABLE_LANE : UNRELIABLE_LANE).result;
    if (r === Result.LimitExceeded) this.#blocked = true;
    else if (r === Result.OK) this.#queued = true;
    return r === Result.OK;
  }
  flush(): void {
    if (!this.#queued) return;
    this.#queued = false;
    this.s.flushMessagesOnConnection(this.conn);
  }
  writable(): boolean {
    return !this.#blocked;
  }
  close(): void {
    this.s.closeConnection(this.conn);
  }
  packetRates(): { out: number; in: number } {
    const st = this.s.getQuickConnectionStatus(this.conn);
    return { out: st?.outPacketsPerSecond ?? 0, in: st?.inPacketsPerSecond ?? 0 };
  }
}

/**
 * A NetworkingSockets that receives on `onReadable`, resumes a blocked sender on `onWritable`, and runs its callbacks as soon as one is queued
 * (found on the `netlane:connection:status` channel), so that nothing waits for a frame tick.
 */
function eventDrivenSockets(): { s: NetworkingSockets; links: Map<number, NetlaneLink> } {
  const links = new Map<number, NetlaneLink>();
  const s: NetworkingSockets = new NetworkingSockets({ keepProcessAlive: true, onReadable: (c) => links.get(c)?.receive(), onWritable: (c) => links.get(c)?.writableAgain() });
  let queued = false;
  subscribe('netlane:connection:status', () => {
    if (queued) return;
    queued = true;
    setImmediate(() => {
      queued = false;
      s.runCallbacks();
    });
  });
  return { s, links };
}

function netlane(encrypted: boolean): Contender {
  const options = encrypted ? {} : { Unencrypted: 3 };
  return {
    name: encrypted ? 'netlane' : 'netlane-plain',
    backPressure: true,
    modes: ['reliable', 'unreliable'],
    maxMessage: 512 * 1024,
    async serve(host, onLink) {
      const { s, links } = eventDrivenSockets();
      const ls = s.createListenSocket(hostPort(host, 0), {
        ...options,
        // Every client of the benchmark is on loopback: one address opens up to 1000 connections, 64 handshakes at a time.
        Netlane_MaxConnectionsPerAddress: 8191,
        Netlane_MaxPendingPerAddress: 8191,
        Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
          if (info.info.state === ConnectionState.Connecting) s.acceptConnection(info.connection);
          else if (info.info.state === ConnectionState.Connected) {
            const l = new NetlaneLink(s, info.connection);
            links.set(info.connection, l);
            onLink(l);
          } else if (info.info.state === ConnectionState.ClosedByPeer || info.info.state === ConnectionState.ProblemDetectedLocally) {
            links.delete(info.connection);
            s.closeConnection(info.connection);
          }
        },
      });
      const addr = s.getListenSocketAddress(ls);
      if (!addr) throw new Error('netlane: no listen socket');
      return { port: addr.port, close: () => s.close() };
    },
    async connect(host, port) {
      // One NetworkingSockets (one identity key) for all the connections a client process makes.
      client ??= eventDrivenSockets();
      const { s, links } = client;
      let state: number = ConnectionState.Connecting;
      let done: (() => void) | undefined;
      const conn = s.connect(hostPort(host, port), {
        ...options,
        Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
          state = info.info.state;
          if (state === ConnectionState.Connected) done?.();
          else if (state !== ConnectionState.Connecting && state !== ConnectionState.FindingRoute) {
            links.delete(info.connection);
            s.closeConnection(info.connection);
            done?.();
          }
        },
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('netlane: not connected after 10 s')), 10_000);
        done = () => {
          clearTimeout(timer);
          if (state === ConnectionState.Connected) resolve();
          else reject(new Error(`netlane: connection ended in state ${state}`));
        };
      });
      const l = new NetlaneLink(s, conn);
      links.set(conn, l);
      return l;
    },
  };
}

let client: ReturnType<typeof eventDrivenSockets> | undefined;

export const CONTENDERS: readonly Contender[] = [udp, tcp(false), tcp(true), ws, enet, kcp, webrtc, netlane(true), netlane(false)];

export function contender(name: string): Contender {
  const c = CONTENDERS.find((x) => x.name === name);
  if (!c) throw new Error(`unknown contender ${name}: one of ${CONTENDERS.map((x) => x.name).join(', ')}`);
  return c;
}
