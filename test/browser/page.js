// The page of test/browser/gateway.test.ts: a NetworkManager of the browser build (netlane/browser) in a
// real page, driven as a game drives it (runCallbacks, then what the game sends, then flush, every 10 ms).
// The test calls window.netlaneTest through page.evaluate.
import * as netlane from '/dist/src/browser.js';

const FRAME_MS = 10;
const state = { nm: null, reliable: [], unreliable: [], routes: [], received: [], each: null };

function frame() {
  const nm = state.nm;
  if (!nm) return;
  nm.runCallbacks();
  state.each?.();
  nm.flush();
}

function until(cond, ms, what) {
  return new Promise((resolve, reject) => {
    const end = performance.now() + ms;
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      } else if (performance.now() > end) {
        clearInterval(t);
        reject(new Error(`page: no ${what} within ${ms} ms`));
      }
    }, FRAME_MS);
  });
}

const message = (i, size) => {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, i);
  return b;
};

window.netlaneTest = {
  ready: true,
  /** A NetworkManager on the relays, through their WebSocket gateways; resolves with its peer id and route. */
  async start({ relays, gateways, config }) {
    const nm = new netlane.NetworkManager({
      relays,
      runtime: netlane.browserRuntime({ gateways }),
      connectionConfig: config,
      relayOptions: { tap: (data) => state.received.push(data.slice()) },
    });
    state.nm = nm;
    nm.on('routeUpdate', (r) => state.routes.push(r));
    nm.on('message', (_peer, channel, data) => {
      const i = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
      (channel === 1 ? state.reliable : state.unreliable).push(i);
    });
    setInterval(frame, FRAME_MS);
    await until(() => nm.route !== null, 10_000, 'route');
    return { peerId: nm.getPeerId().toString(), route: nm.route, provider: new netlane.NobleCryptoProvider().name };
  },
  /** Opens the other peer (the lobby handed over its id and route): channel 0 unreliable, 1 reliable. */
  open(peerId, route) {
    const id = BigInt(peerId);
    const r = state.nm.openPeer(id, route);
    state.nm.openChannel(id, 0, false);
    state.nm.openChannel(id, 1, true);
    return r;
  },
  connected(peerId) {
    return state.nm.peerStatus(BigInt(peerId))?.connected === true;
  },
  /** Sends `n` reliable messages at once and `n` unreliable ones, `perFrame` a frame. */
  send(peerId, n, perFrame) {
    const id = BigInt(peerId);
    for (let i = 0; i < n; i++) if (state.nm.sendMessage(id, 1, message(i, 100)) !== 0) throw new Error(`reliable ${i} refused`);
    let next = 0;
    state.each = () => {
      for (let k = 0; k < perFrame && next < n; k++, next++) state.nm.sendMessage(id, 0, message(next, 100));
      if (next === n) state.each = null;
    };
  },
  counts() {
    return { reliable: state.reliable.length, unreliable: state.unreliable.length, sending: state.each !== null };
  },
  result() {
    return { reliable: state.reliable, unreliable: state.unreliable, routes: state.routes, datagrams: state.received.length, stats: JSON.parse(JSON.stringify(state.nm.getStats(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) };
  },
  /** How many times each needle (hex) occurs in every datagram the page received. */
  find(needles) {
    const hits = {};
    for (const hex of needles) {
      const n = Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
      let count = 0;
      for (const d of state.received) {
        outer: for (let i = 0; i + n.length <= d.length; i++) {
          for (let j = 0; j < n.length; j++) if (d[i + j] !== n[j]) continue outer;
          count++;
        }
      }
      hits[hex] = count;
    }
    return hits;
  },
  close() {
    state.nm?.close();
    state.nm = null;
  },
};
