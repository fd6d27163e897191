import { NetlaneError } from '../../util/errors.js';
import { GatewayTransport, type GatewayChannel, type GatewayEvents, type GatewayUrls } from './gateway-transport.js';

/** The part of a WHATWG `RTCDataChannel` the transport uses. */
export interface RtcDataChannelLike {
  binaryType: string;
  readonly readyState: string;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { readonly data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(): void;
}

/** The part of a WHATWG `RTCPeerConnection` the transport uses (the browser's, or another implementation's). */
export interface RtcPeerConnectionLike {
  readonly connectionState: string;
  readonly iceGatheringState: string;
  readonly localDescription: { readonly sdp: string } | null;
  onconnectionstatechange: ((ev: unknown) => void) | null;
  onicegatheringstatechange: ((ev: unknown) => void) | null;
  createDataChannel(label: string, init: { ordered: boolean; maxRetransmits: number }): RtcDataChannelLike;
  createOffer(): Promise<{ type: string; sdp?: string }>;
  setLocalDescription(d: { type: string; sdp?: string }): Promise<void>;
  setRemoteDescription(d: { type: 'answer'; sdp: string }): Promise<void>;
  close(): void;
}

/** Opens a peer connection (default: `new globalThis.RTCPeerConnection({ iceServers: [] })`). */
export type RtcPeerConnectionFactory = () => RtcPeerConnectionLike;

/** POSTs `offer` (an SDP, as text) to `url`; resolves with the answer's SDP. Default: `fetch`. */
export type SignalingPost = (url: string, offer: string) => Promise<string>;

/** Options of a {@link WebRtcTransport}: where each relay's WebRTC gateway signals, and its limits. */
export interface WebRtcTransportOptions {
  /**
   * The URL of each relay's WebRTC gateway's signaling endpoint (`http://HOST:PORT/`, as `netlane relay
   * --webrtc` prints it), by the relay's `host:port`, or a function of the relay's address (null: that relay
   * has no WebRTC gateway). Required: a relay not named has none.
   */
  readonly gateways?: GatewayUrls;
  /** Opens a peer connection. Default: the global `RTCPeerConnection`, no ICE servers. */
  readonly rtcPeerConnection?: RtcPeerConnectionFactory;
  /** Sends the offer, returns the answer. Default: `fetch(url, { method: 'POST', body: offer })`. */
  readonly signal?: SignalingPost;
  /** Bytes a data channel may hold unsent before a datagram is dropped (counted in `sendErrors`). Default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /** A data channel not open this many ms after the offer is given up (the next send tries again). Default 10,000. */
  readonly openTimeoutMs?: number;
}

/** How long the page gathers its ICE candidates before it sends the offer with what it has. */
const GATHER_MS = 1000;

const fetchPost: SignalingPost = async (url, offer) => {
  const f = (globalThis as { fetch?: (url: string, init: object) => Promise<{ ok: boolean; status: number; text(): Promise<string> }> }).fetch;
  if (!f) throw new NetlaneError('ERR_NETLANE_SOCKET', 'no fetch here: pass signal');
  // text/plain: a "simple" cross-origin request, no preflight.
  const res = await f(url, { method: 'POST', body: offer, headers: { 'content-type': 'text/plain' } });
  const body = await res.text();
  if (!res.ok) throw new NetlaneError('ERR_NETLANE_SOCKET', `the WebRTC gateway at ${url} answered ${res.status}: ${body.trim()}`);
  return body;
};

/** Resolves when `pc` has gathered its candidates, or after `ms`. */
function gathered(pc: RtcPeerConnectionLike, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, ms);
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState !== 'complete') return;
      clearTimeout(t);
      resolve();
    };
  });
}

/**
 * A `DatagramTransport` for browsers: relay datagrams carried over WebRTC data channels to the relays'
 * WebRTC gateways, one message per datagram, one unordered data channel that never retransmits
 * (`ordered: false, maxRetransmits: 0`) per relay gateway, opened on the first datagram to that relay: the
 * page POSTs its SDP offer to the gateway's signaling URL and applies the answer. A lost datagram stays lost,
 * as over UDP, and nothing waits behind it (a WebSocket's TCP holds every later datagram back until a lost
 * segment is sent again). Like UDP it never blocks and never queues much ({@link GatewayTransport}).
 */
export class WebRtcTransport extends GatewayTransport {
  readonly #pc: RtcPeerConnectionFactory;
  readonly #signal: SignalingPost;
  readonly #openTimeoutMs: number;

  constructor(options: WebRtcTransportOptions = {}) {
    super(options.gateways, () => null, options.maxBufferedBytes);
    const Ctor = (globalThis as { RTCPeerConnection?: new (config: object) => RtcPeerConnectionLike }).RTCPeerConnection;
    const pc = options.rtcPeerConnection ?? (Ctor ? () => new Ctor({ iceServers: [] }) : null);
    if (!pc) throw new NetlaneError('ERR_NETLANE_SOCKET', 'no RTCPeerConnection here: pass rtcPeerConnection');
    this.#pc = pc;
    this.#signal = options.signal ?? fetchPost;
    this.#openTimeoutMs = options.openTimeoutMs ?? 10_000;
  }

  protected open(url: string, events: GatewayEvents): GatewayChannel {
    const pc = this.#pc();
    const dc = pc.createDataChannel('netlane', { ordered: false, maxRetransmits: 0 });
    dc.binaryType = 'arraybuffer';
    let state: GatewayChannel['state'] = 'connecting';
    const over = (): boolean => state === 'closed';
    const shut = (): void => {
      state = 'closed';
      clearTimeout(timer);
      dc.onopen = dc.onmessage = dc.onclose = dc.onerror = null;
      pc.onconnectionstatechange = null;
      try {
        dc.close();
        pc.close();
      } catch {
        // already closed
      }
    };
    const fail = (): void => {
      if (state === 'closed') return;
      shut();
      events.closed();
    };
    const timer = setTimeout(() => state === 'connecting' && fail(), this.#openTimeoutMs);
    dc.onopen = () => {
      if (state !== 'connecting') return;
      state = 'open';
      clearTimeout(timer);
      events.opened();
    };
    dc.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) events.message(new Uint8Array(ev.data)); // a gateway sends binary messages only
    };
    dc.onclose = fail;
    dc.onerror = () => undefined; // a close follows
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') fail();
    };
    void (async () => {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_MS);
      if (over()) return;
      const answer = await this.#signal(url, (pc.localDescription as { sdp: string }).sdp);
      if (over()) return;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    })().catch(fail);
    return {
      get state() {
        return state;
      },
      get bufferedAmount() {
        return dc.bufferedAmount;
      },
      send: (m) => {
        try {
          dc.send(m);
        } catch {
          fail(); // closed under it: the next send opens a new one
        }
      },
      close: shut,
    };
  }
}
