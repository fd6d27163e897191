import type { SocketAddress } from '../../core/types.js';
import { addressKey } from '../../relay/protocol.js';
import { concat } from '../../util/bytes.js';
import type { DatagramTransport } from '../driver.js';

/** One connection to a relay's gateway as the {@link GatewayTransport} sees it (a WebSocket, a data channel). */
export interface GatewayChannel {
  readonly state: 'connecting' | 'open' | 'closed';
  readonly bufferedAmount: number;
  send(message: Uint8Array): void;
  close(): void;
}

/** What a {@link GatewayChannel} reports to its transport. */
export interface GatewayEvents {
  opened(): void;
  message(data: Uint8Array): void;
  /** The channel closed or failed (called at most once; not after the transport closed it). */
  closed(): void;
}

/** How a transport finds each relay's gateway: a URL by the relay's `host:port`, or a function of the relay's address (null: that relay has no gateway). */
export type GatewayUrls = Readonly<Record<string, string>> | ((relay: SocketAddress) => string | null);

/** Datagrams held for a gateway whose connection is still opening; more are dropped. */
const MAX_HELD = 64;
/** A gateway whose connection closed is opened again on the next send, at most once per this many ms. */
const REOPEN_MS = 1000;

/** One relay's gateway: its connection (null while closed), datagrams waiting for it to open. */
interface Gateway {
  readonly url: string;
  /** The relay's address: what datagrams from this gateway are reported from (one immutable object). */
  readonly from: SocketAddress;
  ch: GatewayChannel | null;
  held: Uint8Array[];
  closedAtMs: number;
}

/**
 * The base of the browser's {@link DatagramTransport}s: relay datagrams carried over one connection per
 * relay gateway (opened on the first datagram to that relay), one message per datagram. What arrives on a
 * gateway's connection is reported as coming from that relay's address, so the relay client and the
 * endpoint above see the same datagrams as over UDP. Like UDP it never blocks and never queues much: a
 * datagram that finds its connection full or closed is dropped and counted (`sendErrors`); the
 * connection's own loss recovery and the relay client's failover handle it as loss.
 */
export abstract class GatewayTransport implements DatagramTransport {
  /** A browser has no local address to show: the relays see a gateway connection. */
  readonly local: SocketAddress = { address: '0.0.0.0', port: 0 };
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  /** Datagrams dropped: no gateway for the relay, its connection closed or full. */
  sendErrors = 0;
  readonly #gateways = new Map<string, Gateway | null>();
  readonly #urlOf: (relay: SocketAddress) => string | null;
  readonly #maxBuffered: number;
  #closed = false;

  protected constructor(urls: GatewayUrls | undefined, defaultUrl: (relay: SocketAddress) => string | null, maxBufferedBytes: number | undefined) {
    this.#urlOf = typeof urls === 'function' ? urls : urls ? (relay) => urls[addressKey(relay)] ?? null : defaultUrl;
    this.#maxBuffered = maxBufferedBytes ?? 1 << 20;
  }

  /** Opens a connection to the gateway at `url` (it may throw: the gateway counts as closed for a while). */
  protected abstract open(url: string, events: GatewayEvents): GatewayChannel;

  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    if (this.#closed) return;
    const gw = this.#gateway(to);
    if (!gw) {
      this.sendErrors++;
      return;
    }
    // One message per datagram; the connection may hold it after send returns, so a header makes a copy of its own.
    const msg = header ? concat(header, data) : data;
    const ch = gw.ch ?? this.#reopen(gw);
    if (ch?.state === 'open' && ch.bufferedAmount <= this.#maxBuffered) ch.send(msg);
    else if (ch?.state === 'connecting' && gw.held.length < MAX_HELD) gw.held.push(header ? msg : data.slice());
    else this.sendErrors++;
  }

  /** The gateway of relay `to` (made on first use; null, remembered, for a relay without one). */
  #gateway(to: SocketAddress): Gateway | null {
    const key = addressKey(to);
    let gw = this.#gateways.get(key);
    if (gw === undefined) {
      const url = this.#urlOf(to);
      gw = url === null ? null : { url, from: { address: to.address, port: to.port }, ch: null, held: [], closedAtMs: Number.NEGATIVE_INFINITY };
      this.#gateways.set(key, gw);
    }
    return gw;
  }

  #reopen(gw: Gateway): GatewayChannel | null {
    const nowMs = Date.now();
    if (nowMs - gw.closedAtMs < REOPEN_MS) return null;
    let ch: GatewayChannel | null = null;
    const events: GatewayEvents = {
      opened: () => {
        const held = gw.held;
        gw.held = [];
        for (const m of held) ch?.send(m);
      },
      message: (data) => {
        if (!this.#closed) this.onMessage(data, gw.from);
      },
      closed: () => {
        if (gw.ch !== ch || ch === null) return;
        gw.ch = null;
        gw.held = [];
        gw.closedAtMs = Date.now();
      },
    };
    try {
      ch = this.open(gw.url, events);
    } catch {
      gw.closedAtMs = nowMs;
      return null;
    }
    gw.ch = ch;
    return ch;
  }

  keepProcessAlive(): void {
    // Nothing to hold: a page lives as long as it is open.
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const gw of this.#gateways.values()) {
      if (!gw?.ch) continue;
      const ch = gw.ch;
      gw.ch = null;
      ch.close();
    }
  }
}
