import type { SocketAddress } from '../../core/types.js';
import { addressKey } from '../../relay/protocol.js';
import { concat } from '../../util/bytes.js';
import { NetlaneError } from '../../util/errors.js';
import type { DatagramTransport } from '../driver.js';

/** The part of the WHATWG `WebSocket` the transport uses (the browser's, or another implementation's). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { readonly data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** Opens a WebSocket to `url` (default: `new globalThis.WebSocket(url)`). */
export type WebSocketFactory = (url: string) => WebSocketLike;

/** Options of a {@link WebSocketTransport}: where each relay's gateway is, and its limits. */
export interface WebSocketGatewayOptions {
  /**
   * The WebSocket URL of each relay's gateway, by the relay's `host:port` (as `netlane relay` prints it), or a
   * function of the relay's address (null: that relay has no gateway). Default: `ws://host:port/` (`wss:` on an
   * https page), the gateway on the TCP port of the same number as the relay's UDP port.
   */
  readonly gateways?: Readonly<Record<string, string>> | ((relay: SocketAddress) => string | null);
  /** Opens a WebSocket. Default: the global `WebSocket`. */
  readonly webSocket?: WebSocketFactory;
  /**
   * Bytes a gateway's WebSocket may hold unsent before a datagram is dropped, as a full UDP send buffer drops
   * it (counted in `sendErrors`). Default 1 MiB.
   */
  readonly maxBufferedBytes?: number;
}

const CONNECTING = 0;
const OPEN = 1;
/** Datagrams held for a gateway whose WebSocket is still opening; more are dropped. */
const MAX_HELD = 64;
/** A gateway whose WebSocket closed is opened again on the next send, at most once per this many ms. */
const REOPEN_MS = 1000;

/** One relay's gateway: its WebSocket (null while closed), datagrams waiting for it to open. */
interface Gateway {
  readonly url: string;
  /** The relay's address: what datagrams from this gateway are reported from (one immutable object). */
  readonly from: SocketAddress;
  ws: WebSocketLike | null;
  held: Uint8Array[];
  closedAtMs: number;
}

function defaultUrl(relay: SocketAddress): string {
  const secure = (globalThis as { location?: { protocol?: string } }).location?.protocol === 'https:';
  return `${secure ? 'wss' : 'ws'}://${addressKey(relay)}/`;
}

/**
 * A {@link DatagramTransport} for browsers: relay datagrams carried over WebSockets, one message per
 * datagram, one WebSocket per relay gateway (opened on the first datagram to that relay). What arrives on a
 * gateway's WebSocket is reported as coming from that relay's address, so the relay client and the
 * endpoint above see the same datagrams as over UDP. Like UDP it never blocks and never queues much:
 * a datagram that finds its WebSocket full or closed is dropped and counted (`sendErrors`); the
 * connection's own loss recovery and the relay client's failover handle it as loss.
 */
export class WebSocketTransport implements DatagramTransport {
  /** A browser has no local address to show: the relays see a gateway connection. */
  readonly local: SocketAddress = { address: '0.0.0.0', port: 0 };
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  /** Datagrams dropped: no gateway for the relay, its WebSocket closed or full. */
  sendErrors = 0;
  readonly #gateways = new Map<string, Gateway | null>();
  readonly #urlOf: (relay: SocketAddress) => string | null;
  readonly #open: WebSocketFactory;
  readonly #maxBuffered: number;
  #closed = false;

  constructor(options: WebSocketGatewayOptions = {}) {
    const g = options.gateways;
    this.#urlOf = typeof g === 'function' ? g : g ? (relay) => g[addressKey(relay)] ?? null : defaultUrl;
    const Ctor = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
    const open = options.webSocket ?? (Ctor ? (url: string) => new Ctor(url) : null);
    if (!open) throw new NetlaneError('ERR_NETLANE_SOCKET', 'no WebSocket here: pass webSocket');
    this.#open = open;
    this.#maxBuffered = options.maxBufferedBytes ?? 1 << 20;
  }

  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    if (this.#closed) return;
    const gw = this.#gateway(to);
    if (!gw) {
      this.sendErrors++;
      return;
    }
    // One message per datagram; the WebSocket may hold it after send returns, so a header makes a copy of its own.
    const msg = header ? concat(header, data) : data;
    const ws = gw.ws ?? this.#reopen(gw);
    if (ws?.readyState === OPEN && ws.bufferedAmount <= this.#maxBuffered) ws.send(msg);
    else if (ws?.readyState === CONNECTING && gw.held.length < MAX_HELD) gw.held.push(header ? msg : data.slice());
    else this.sendErrors++;
  }

  /** The gateway of relay `to` (made on first use; null, remembered, for a relay without one). */
  #gateway(to: SocketAddress): Gateway | null {
    const key = addressKey(to);
    let gw = this.#gateways.get(key);
    if (gw === undefined) {
      const url = this.#urlOf(to);
      gw = url === null ? null : { url, from: { address: to.address, port: to.port }, ws: null, held: [], closedAtMs: Number.NEGATIVE_INFINITY };
      this.#gateways.set(key, gw);
    }
    return gw;
  }

  #reopen(gw: Gateway): WebSocketLike | null {
    const nowMs = Date.now();
    if (nowMs - gw.closedAtMs < REOPEN_MS) return null;
    let ws: WebSocketLike;
    try {
      ws = this.#open(gw.url);
    } catch {
      gw.closedAtMs = nowMs;
      return null;
    }
    ws.binaryType = 'arraybuffer';
    gw.ws = ws;
    ws.onopen = () => {
      const held = gw.held;
      gw.held = [];
      for (const m of held) ws.send(m);
    };
    ws.onmessage = (ev) => {
      if (this.#closed || !(ev.data instanceof ArrayBuffer)) return; // a gateway sends binary messages only
      this.onMessage(new Uint8Array(ev.data), gw.from);
    };
    ws.onclose = () => {
      if (gw.ws !== ws) return;
      gw.ws = null;
      gw.held = [];
      gw.closedAtMs = Date.now();
    };
    ws.onerror = () => undefined; // a close follows
    return ws;
  }

  keepProcessAlive(): void {
    // Nothing to hold: a page lives as long as it is open.
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const gw of this.#gateways.values()) {
      if (!gw?.ws) continue;
      const ws = gw.ws;
      gw.ws = null;
      ws.close(1000, 'closed');
    }
  }
}
