// The page of test/browser/sockets.test.ts: a NetworkingSockets of the browser build (netlane/browser) in a
// real page, a P2P client of a Node server through a relay's gateway, driven as a game drives it (every
// 10 ms: runCallbacks, drain the connection, then what the game sends). The test calls
// window.netlaneSockets through page.evaluate.
import * as netlane from '/dist/src/browser.js';
import { countNeedles } from './needles.js';

const { NetworkingSockets, ConfigScope, ConnectionState, SendFlags, Result } = netlane;
const FRAME_MS = 10;
const state = { ns: null, conn: 0, timer: 0, states: [], reliable: [], unreliable: [], wrongLane: 0, received: [], each: null, error: null };

function frame() {
  const ns = state.ns;
  if (!ns) return;
  try {
    ns.runCallbacks();
    if (state.conn) {
      for (;;) {
        const ms = ns.receiveMessagesOnConnection(state.conn, 256) ?? [];
        for (const m of ms) {
          const i = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength).getUint32(0);
          const reliable = m.flags === SendFlags.Reliable;
          if (m.lane !== (reliable ? 1 : 0)) state.wrongLane++;
          (reliable ? state.reliable : state.unreliable).push(i);
        }
        if (ms.length < 256) break;
      }
    }
    state.each?.();
  } catch (e) {
    state.error ??= String(e?.stack ?? e);
  }
}

const message = (i, size) => {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, i);
  return b;
};

const info = () => {
  const i = state.ns?.getConnectionInfo(state.conn);
  return i ? { state: i.state, identityRemote: i.identityRemote, addressRemote: i.addressRemote, endReason: i.endReason, endDebug: i.endDebug } : null;
};

window.netlaneSockets = {
  ready: true,
  /**
   * A NetworkingSockets on the relays through their gateways (`transport`: websocket, webrtc), `loss` % fake
   * loss each way on its P2P socket, every datagram received kept for the address audit; connects to
   * `server` (an identity) on virtual port 0 with 2 lanes. Resolves with its own identity and the provider.
   */
  start({ relays, gateways, transport, loss, server }) {
    const ns = new NetworkingSockets({
      relays,
      runtime: netlane.browserRuntime({ gateways, transport }),
      relayOptions: { tap: (data) => state.received.push(data.slice()) },
    });
    state.ns = ns;
    for (const name of ['FakePacketLoss_Send', 'FakePacketLoss_Recv']) if (!ns.setConfigValue(name, ConfigScope.SocketsInterface, 0, loss)) throw new Error(`page: ${name} refused`);
    const conn = ns.connectP2P(server, 0, { Callback_ConnectionStatusChanged: (s) => state.states.push(s.info.state) });
    if (!conn) throw new Error('page: connectP2P refused');
    state.conn = conn;
    const lanes = ns.configureConnectionLanes(conn, 2);
    if (lanes !== Result.OK) throw new Error(`page: configureConnectionLanes gave ${lanes}`);
    state.timer = setInterval(frame, FRAME_MS);
    return { identity: ns.getIdentity(), provider: new netlane.NobleCryptoProvider().name, connected: ConnectionState.Connected };
  },
  /** The connection's info, the states its status callbacks reported, and a frame's error if one threw. */
  status() {
    return { info: info(), states: state.states, error: state.error };
  },
  /** Sends `n` reliable messages (lane 1) at once and `n` unreliable ones (lane 0), `perFrame` a frame; 100 bytes each. */
  send(n, perFrame) {
    const { ns, conn } = state;
    for (let i = 0; i < n; i++) {
      const r = ns.sendMessageToConnection(conn, message(i, 100), SendFlags.Reliable, 1).result;
      if (r !== Result.OK) throw new Error(`page: reliable ${i} refused (${r})`);
    }
    let next = 0;
    state.each = () => {
      for (let k = 0; k < perFrame && next < n; k++, next++) {
        const r = ns.sendMessageToConnection(conn, message(next, 100), SendFlags.Unreliable, 0).result;
        if (r !== Result.OK) throw new Error(`page: unreliable ${next} refused (${r})`);
      }
      if (next === n) state.each = null;
    };
  },
  counts() {
    return { reliable: state.reliable.length, unreliable: state.unreliable.length, sending: state.each !== null, error: state.error };
  },
  result() {
    const st = state.ns.getSocketStats(state.conn);
    const fake = st ? { sendLost: st.fakeSend.lost, recvLost: st.fakeRecv.lost } : null;
    return { reliable: state.reliable, unreliable: state.unreliable, wrongLane: state.wrongLane, datagrams: state.received.length, info: info(), fake, error: state.error };
  },
  /** How many times each needle (hex) occurs in every datagram the page received. */
  find(needles) {
    return countNeedles(state.received, needles);
  },
  close() {
    clearInterval(state.timer);
    state.ns?.close();
    state.ns = null;
  },
};
