import type { SocketAddress } from '../../core/types.js';
import { addressKey } from '../../relay/protocol.js';
import { NetlaneError } from '../../util/errors.js';
import { GatewayTransport, type GatewayChannel, type GatewayEvents, type GatewayUrls } from './gateway-transport.js';

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
  readonly gateways?: GatewayUrls;
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

function defaultUrl(relay: SocketAddress): string {
  const secure = (globalThis as { location?: { protocol?: string } }).location?.protocol === 'https:';
  return `${secure ? 'wss' : 'ws'}://${addressKey(relay)}/`;
}

/**
 * A `DatagramTransport` for browsers: relay datagrams carried over WebSockets to the relays'
 * WebSocket gateways, one message per datagram, one WebSocket per relay gateway (opened on the first
 * datagram to that relay). Like UDP it never blocks and never queues much ({@link GatewayTransport}).
 */
export class WebSocketTransport extends GatewayTransport {
  readonly #open: WebSocketFactory;

  constructor(options: WebSocketGatewayOptions = {}) {
    super(options.gateways, defaultUrl, options.maxBufferedBytes);
    const Ctor = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
    const open = options.webSocket ?? (Ctor ? (url: string) => new Ctor(url) : null);
    if (!open) throw new NetlaneError('ERR_NETLANE_SOCKET', 'no WebSocket here: pass webSocket');
    this.#open = open;
  }

  protected open(url: string, events: GatewayEvents): GatewayChannel {
    const ws = this.#open(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => events.opened();
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) events.message(new Uint8Array(ev.data)); // a gateway sends binary messages only
    };
    ws.onclose = () => events.closed();
    ws.onerror = () => undefined; // a close follows
    return {
      get state() {
        return ws.readyState === OPEN ? 'open' : ws.readyState === CONNECTING ? 'connecting' : 'closed';
      },
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      send: (m) => ws.send(m),
      close: () => ws.close(1000, 'closed'),
    };
  }
}
