// The example page: joins the host of `netlane relay --web` or examples/browser-demo.ts from the browser
// (netlane/browser, through the relay's WebSocket gateway, or its WebRTC gateway with ?transport=webrtc or
// when the relay has only that one), sends 30 positions a second on an unreliable channel and a chat line a
// second on a reliable one (the host echoes both), and draws the connection's net graph four times a second:
// ping, loss each way, in and out rates, from NetworkManager.peerStatus.
import { NetworkManager, browserRuntime } from '/dist/src/browser.js';

const SAMPLES = 120; // 30 s at 4 samples a second
const statusEl = document.getElementById('status');
const canvas = document.getElementById('graph');
const ctx = canvas.getContext('2d');
/** What the graph shows (the browser test reads it too). */
const graph = { samples: [], echoed: 0, sent: 0, joined: false, provider: '' };
window.netgraph = graph;

const lobby = await (await fetch('/lobby')).json();
const asked = /[?&]transport=([a-z]+)/.exec(location.search)?.[1];
const transport = (asked === 'webrtc' || !lobby.gateways.ws) && lobby.gateways.webrtc ? 'webrtc' : 'websocket';
const gatewayName = transport === 'webrtc' ? 'WebRTC gateway' : 'WebSocket gateway';
graph.transport = transport;
const nm = new NetworkManager({ relays: lobby.relays, runtime: browserRuntime({ transport, gateways: transport === 'webrtc' ? lobby.gateways.webrtc : lobby.gateways.ws }) });
const hostId = BigInt(lobby.host.peerId);
nm.on('message', (_peer, channel) => {
  if (channel === 0) graph.echoed++;
});

function frame() {
  nm.runCallbacks();
  nm.flush();
}
setInterval(frame, 10);

while (nm.route === null) await new Promise((r) => setTimeout(r, 20));
const joined = await fetch('/join', { method: 'POST', body: JSON.stringify({ peerId: nm.getPeerId().toString(), route: nm.route }) });
if (!joined.ok) throw new Error(`the lobby refused: ${joined.status}`);
nm.openPeer(hostId, lobby.host.route);
nm.openChannel(hostId, 0, false);
nm.openChannel(hostId, 1, true);
graph.joined = true;

let seq = 0;
const position = new Uint8Array(64);
setInterval(() => {
  new DataView(position.buffer).setUint32(0, seq++);
  if (nm.sendMessage(hostId, 0, position) === 0) graph.sent++;
}, 33);
setInterval(() => nm.sendMessage(hostId, 1, new TextEncoder().encode(`chat ${seq}`)), 1000);

setInterval(() => {
  const s = nm.peerStatus(hostId);
  if (!s) return;
  const lossIn = s.qualityLocal < 0 ? null : 100 * (1 - s.qualityLocal);
  const lossOut = s.qualityRemote < 0 ? null : 100 * (1 - s.qualityRemote);
  graph.samples.push({ ping: s.connected ? s.ping : -1, lossIn, lossOut, inBps: s.inBytesPerSec, outBps: s.outBytesPerSec });
  if (graph.samples.length > SAMPLES) graph.samples.shift();
  statusEl.textContent = `${s.connected ? 'connected' : 'connecting'} to host ${lobby.host.peerId} through relay ${lobby.relays[0].split('#')[0]} (${gatewayName}) · peer ${nm.getPeerId()} · positions echoed ${graph.echoed}/${graph.sent}`;
  draw();
}, 250);

const COLORS = { ping: '#58a6ff', lossIn: '#f85149', lossOut: '#d29922', inBps: '#3fb950', outBps: '#bc8cff' };

/** One strip of the graph: a labelled band with a line per series, scaled to its largest value. */
function strip(y, h, title, series, unit, floor) {
  const w = canvas.width;
  const left = 150;
  ctx.fillStyle = '#161b22';
  ctx.fillRect(left, y, w - left - 10, h);
  let max = floor;
  for (const { key } of series) for (const s of graph.samples) if (s[key] !== null && s[key] > max) max = s[key];
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#8b949e';
  ctx.fillText(title, 10, y + 14);
  ctx.fillText(`${max.toFixed(0)} ${unit}`, left + 4, y + 12);
  series.forEach(({ key, label }, k) => {
    const last = graph.samples.at(-1)?.[key];
    ctx.fillStyle = COLORS[key];
    ctx.fillText(`${label} ${last === null || last === undefined || last < 0 ? '–' : last.toFixed(unit === 'ms' ? 0 : 1)} ${unit}`, 10, y + 32 + 16 * k);
    ctx.strokeStyle = COLORS[key];
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    graph.samples.forEach((s, i) => {
      const v = s[key];
      if (v === null || v < 0) return;
      const x = left + ((w - left - 10) * i) / (SAMPLES - 1);
      const yy = y + h - 2 - ((h - 16) * v) / max;
      if (started) ctx.lineTo(x, yy);
      else ctx.moveTo(x, yy);
      started = true;
    });
    ctx.stroke();
  });
}

function draw() {
  ctx.fillStyle = '#0d1117';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  strip(10, 105, 'ping', [{ key: 'ping', label: 'rtt' }], 'ms', 10);
  strip(125, 105, 'loss', [
    { key: 'lossIn', label: 'in' },
    { key: 'lossOut', label: 'out' },
  ], '%', 5);
  strip(240, 110, 'rate', [
    { key: 'inBps', label: 'in' },
    { key: 'outBps', label: 'out' },
  ], 'B/s', 1000);
}
