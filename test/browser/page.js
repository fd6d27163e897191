// The page of test/browser/gateway.test.ts: a NetworkManager of the browser build (netlane/browser) in a
// real page, driven as a game drives it (runCallbacks, then what the game sends, then flush, every 10 ms).
// The test calls window.netlaneTest through page.evaluate.
import * as netlane from '/dist/src/browser.js';
import { countNeedles } from './needles.js';

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
  /** A NetworkManager on the relays, through their gateways (`transport`: websocket, webrtc); resolves with its peer id and route. */
  async start({ relays, gateways, transport, config }) {
    const nm = new netlane.NetworkManager({
      relays,
      runtime: netlane.browserRuntime({ gateways, transport: transport ?? 'websocket' }),
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
    return countNeedles(state.received, needles);
  },
  /**
   * For npm run bench:browser: `n` round trips of a 100 B reliable message to `peerId` (which echoes it), one at
   * a time, the manager serviced every task (a MessageChannel message, not the 10 ms frame); µs each.
   */
  pingpong(peerId, n) {
    const id = BigInt(peerId);
    const nm = state.nm;
    const ping = new Uint8Array(100).fill(1);
    const rtt = [];
    let echoed = 0;
    nm.on('message', (_p, channel, data) => channel === 1 && data[0] === 1 && echoed++);
    const ch = new MessageChannel();
    return new Promise((resolve) => {
      let t0 = performance.now();
      let want = 1;
      nm.sendMessage(id, 1, ping);
      ch.port1.onmessage = () => {
        nm.runCallbacks();
        if (echoed >= want) {
          rtt.push((performance.now() - t0) * 1000);
          if (rtt.length === n) return resolve(rtt);
          want++;
          t0 = performance.now();
          nm.sendMessage(id, 1, ping);
        }
        nm.flush();
        ch.port2.postMessage(0);
      };
      ch.port2.postMessage(0);
    });
  },
  /**
   * For npm run bench:browser: 100 B reliable messages (first byte 2) to `peerId` for `ms`, the send queue
   * kept topped up and the manager serviced every task; resolves with the ms it ran.
   */
  bulk(peerId, ms) {
    const id = BigInt(peerId);
    const nm = state.nm;
    const msg = new Uint8Array(100).fill(2);
    const ch = new MessageChannel();
    const t0 = performance.now();
    return new Promise((resolve) => {
      ch.port1.onmessage = () => {
        nm.runCallbacks();
        for (let k = 0; k < 200 && (nm.peerStatus(id)?.queued ?? 0) < 4000; k++) nm.sendMessage(id, 1, msg);
        nm.flush();
        const t = performance.now() - t0;
        if (t >= ms) return resolve(t);
        ch.port2.postMessage(0);
      };
      ch.port2.postMessage(0);
    });
  },
  /** For npm run bench:browser: ns per seal + open here, @noble (synchronous) against WebCrypto's AES-GCM (a promise per call). */
  async cryptoBench(n) {
    const out = {};
    const key = new Uint8Array(32).fill(7);
    const nonce = new Uint8Array(12);
    const aad = new Uint8Array(7).fill(0x80);
    const p = new netlane.NobleCryptoProvider();
    // Each size twice, the first round a warm-up (the JIT), the second kept.
    for (const size of [64, 1200, 64, 1200]) {
      const buf = new Uint8Array(size + 16).fill(1);
      const back = new Uint8Array(size);
      for (const [name, cipher] of [['noble ChaCha20-Poly1305', netlane.AeadCipher.ChaCha20Poly1305], ['noble AES-256-GCM', netlane.AeadCipher.Aes256Gcm]]) {
        const a = p.aead(cipher, key);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          nonce[11] = i & 0xff;
          a.seal(nonce, aad, buf.subarray(0, size), buf, 0);
          a.open(nonce, aad, buf, back, 0);
        }
        out[`${size} B ${name}`] = ((performance.now() - t0) * 1e6) / n;
      }
      const k = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
      const pt = new Uint8Array(size).fill(1);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        nonce[11] = i & 0xff;
        const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad }, k, pt);
        await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad }, k, ct);
      }
      out[`${size} B WebCrypto AES-256-GCM (awaited)`] = ((performance.now() - t0) * 1e6) / n;
    }
    return out;
  },
  close() {
    state.nm?.close();
    state.nm = null;
  },
};
