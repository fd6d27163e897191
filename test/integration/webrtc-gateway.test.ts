// The relay's WebRTC gateway over real sockets: the browser build's stack (NetworkManager on
// browserRuntime({ transport: 'webrtc' }): WebRtcTransport, @noble crypto) in Node, with node-datachannel's
// RTCPeerConnection standing in for the browser's, linked through one relay with a NetworkManager on UDP and
// one on the WebSocket gateway; the gateway's signaling endpoint, its limits, and `netlane relay --webrtc`.
import { spawn, spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { NetworkManager } from '../../src/api/network-manager.js';
import { loadOptional } from '../../src/io/gateway.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { browserRuntime } from '../../src/io/browser/runtime.js';
import type { RtcDataChannelLike, RtcPeerConnectionLike } from '../../src/io/browser/webrtc-transport.js';
import { loopbackPeerConnection as rtcPeerConnection, releaseWebRtc } from '../support/webrtc.js';
import type { WebSocketLike } from '../../src/io/browser/websocket-transport.js';
import { addressKey } from '../../src/relay/protocol.js';
import { openAll } from '../support/relayed.js';
import { pump } from './relay-support.js';

// node-datachannel holds the process until its cleanup(), closed connections or not (docs/BROWSER.md).
after(releaseWebRtc);

const webSocket = (url: string): WebSocketLike => new WebSocket(url) as unknown as WebSocketLike;

async function relayWithGateways(webrtc: { maxConnectionsPerAddress?: number; maxMessageBytes?: number } = {}): Promise<{ relay: RelayServer; signaling: string; ws: string }> {
  const relay = RelayServer.open({ open: true, gateways: { ws: { port: 0 }, webrtc: { port: 0, ...webrtc } } });
  const at = await (relay.webrtcGateway as NonNullable<typeof relay.webrtcGateway>).listening;
  const ws = await (relay.wsGateway as NonNullable<typeof relay.wsGateway>).listening;
  return { relay, signaling: `http://${addressKey(at)}/`, ws: `ws://${addressKey(ws)}/` };
}

const msg = (i: number): Uint8Array => {
  const b = new Uint8Array(100);
  new DataView(b.buffer).setUint32(0, i);
  return b;
};
const seq = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset).getUint32(0);

test('webrtc gateway: a browser-build NetworkManager (data channel, @noble), a UDP one and a WebSocket one link through one relay; reliable in order every way; rtc/N and ws/N peers beside a UDP one; a dropped data channel is opened again and nothing is lost', { timeout: 60_000 }, async () => {
  const { relay, signaling, ws } = await relayWithGateways();
  const key = addressKey(relay.local);
  const rtc = new NetworkManager({ relays: [relay.address], runtime: browserRuntime({ transport: 'webrtc', gateways: { [key]: signaling }, rtcPeerConnection }) });
  const udp = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
  const wsm = new NetworkManager({ relays: [relay.address], runtime: browserRuntime({ gateways: { [key]: ws }, webSocket }) });
  const nms = [rtc, udp, wsm];
  try {
    await pump(nms, () => nms.every((nm) => nm.route !== null), 10_000, 'routes');
    openAll(nms);
    await pump(nms, () => nms.every((a) => nms.every((b) => a === b || a.peerStatus(b.getPeerId())?.connected === true)), 15_000, 'every pair connected');
    const got = new Map<NetworkManager, Map<bigint, number[]>>(nms.map((nm) => [nm, new Map()]));
    for (const nm of nms) {
      nm.on('message', (p, ch, d) => {
        if (ch !== 1) return;
        const m = got.get(nm) as Map<bigint, number[]>;
        m.set(p, [...(m.get(p) ?? []), seq(d)]);
      });
    }
    const round = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) for (const a of nms) for (const b of nms) if (a !== b) assert.equal(a.sendMessage(b.getPeerId(), 1, msg(i)), 0);
      await pump(nms, () => nms.every((a) => nms.every((b) => a === b || got.get(a)?.get(b.getPeerId())?.length === to)), 20_000, `${to} messages every way`);
      const all = Array.from({ length: to }, (_, i) => i);
      for (const a of nms) for (const b of nms) if (a !== b) assert.deepEqual(got.get(a)?.get(b.getPeerId()), all);
    };
    await round(0, 300);
    const peers = relay.node.sessions().map((s) => s.address);
    assert.ok(peers.some((a) => /^rtc\/\d+$/.test(a)), `a data-channel peer among ${peers.join(', ')}`);
    assert.ok(peers.some((a) => /^ws\/\d+$/.test(a)), 'a WebSocket peer');
    assert.ok(peers.includes('127.0.0.1'), 'and a UDP one');
    const st = relay.webrtcGateway?.stats;
    assert.ok(st && st.offers >= 1 && st.accepted === 1 && st.open === 1 && st.received > 0 && st.sent > 0, JSON.stringify(st));
    // The gateway drops every data channel: the page side signals a new one on its next datagram, the relay moves
    // its session to the new rtc/N (as after a NAT rebinding), and the connections carry on, nothing lost.
    assert.equal(relay.webrtcGateway?.disconnectAll(), 1);
    await round(300, 400);
    assert.equal(relay.webrtcGateway?.stats.accepted, 2, 'the page side opened a second data channel');
  } finally {
    for (const nm of nms) nm.close();
    relay.close();
  }
});

test('webrtc gateway signaling: OPTIONS answers CORS, GET is 405, a non-SDP body 400; offers over the per-address limit 429; the answer carries the message size limit; a text message closes the connection; each counted', { timeout: 30_000 }, async () => {
  const { relay, signaling } = await relayWithGateways({ maxConnectionsPerAddress: 2, maxMessageBytes: 100 });
  const pcs: RtcPeerConnectionLike[] = [];
  try {
    const pre = await fetch(signaling, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.equal((await fetch(signaling)).status, 405);
    assert.equal((await fetch(signaling, { method: 'POST', body: 'hello' })).status, 400);
    const st = relay.webrtcGateway?.stats as NonNullable<typeof relay.webrtcGateway>['stats'];
    /** A data channel to the gateway, open. */
    const channel = async (): Promise<RtcDataChannelLike> => {
      const pc = rtcPeerConnection();
      pcs.push(pc);
      const dc = pc.createDataChannel('netlane', { ordered: false, maxRetransmits: 0 });
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(signaling, { method: 'POST', body: pc.localDescription?.sdp ?? '' });
      assert.equal(res.status, 200);
      const answer = await res.text();
      // The relay's limit is in its answer: a browser sends no bigger message.
      assert.match(answer, /a=max-message-size:100\r\n/);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no open data channel within 10 s')), 10_000);
        dc.onopen = () => {
          clearTimeout(t);
          resolve();
        };
      });
      return dc;
    };
    const closed = (dc: RtcDataChannelLike): Promise<void> =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no close within 10 s')), 10_000);
        dc.onclose = () => {
          clearTimeout(t);
          resolve();
        };
      });
    const a = await channel();
    const b = await channel();
    const third = rtcPeerConnection();
    pcs.push(third);
    third.createDataChannel('netlane', { ordered: false, maxRetransmits: 0 });
    await third.setLocalDescription(await third.createOffer());
    assert.equal((await fetch(signaling, { method: 'POST', body: third.localDescription?.sdp ?? '' })).status, 429);
    const aClosed = closed(a);
    (a as unknown as { send(text: string): void }).send('hello');
    await aClosed;
    assert.throws(() => b.send(new Uint8Array(101)), /size/, 'the client keeps to the limit the relay answered with');
    assert.deepEqual([st.closedText, st.refusedPerAddress, st.refusedBadOffer, st.open, st.accepted], [1, 1, 1, 1, 2]);
  } finally {
    for (const pc of pcs) pc.close();
    relay.close();
  }
});

test('webrtc gateway on 0.0.0.0 with announcedAddress: the answer names one host candidate, that IP at the shared ICE port, and the data channel opens through it', { timeout: 30_000 }, async () => {
  const relay = RelayServer.open({ open: true, gateways: { webrtc: { address: '0.0.0.0', port: 0, announcedAddress: '127.0.0.1' } } });
  const pc = rtcPeerConnection();
  try {
    const at = await (relay.webrtcGateway as NonNullable<typeof relay.webrtcGateway>).listening;
    const dc = pc.createDataChannel('netlane', { ordered: false, maxRetransmits: 0 });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`http://127.0.0.1:${at.port}/`, { method: 'POST', body: pc.localDescription?.sdp ?? '' });
    const answer = await res.text();
    assert.deepEqual(answer.split('\r\n').filter((l) => l.startsWith('a=candidate:')).map((l) => l.split(' ').slice(4, 8).join(' ')), [`127.0.0.1 ${at.port} typ host`]);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no open data channel within 10 s')), 10_000);
      dc.onopen = () => {
        clearTimeout(t);
        resolve();
      };
    });
    // The relay hears of the data channel a moment after the page does.
    for (let i = 0; i < 200 && relay.webrtcGateway?.stats.accepted !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(relay.webrtcGateway?.stats.accepted, 1);
  } finally {
    pc.close();
    relay.close();
  }
});

test('webrtc gateway without node-datachannel: `listening` rejects with ERR_NETLANE_GATEWAY_MISSING naming the package', async () => {
  await assert.rejects(loadOptional('netlane-no-such-package', 'WebRTC gateway', (m) => m), (e: unknown) => (e as { code?: string }).code === 'ERR_NETLANE_GATEWAY_MISSING' && /npm install netlane-no-such-package/.test((e as Error).message));
});

test('netlane relay --webrtc IP:PORT prints the gateway\'s signaling URL, which answers an offer; a bad --webrtc is a usage error (exit 2)', { timeout: 30_000 }, async () => {
  const bad = spawnSync(process.execPath, ['dist/src/cli/netlane.js', 'relay', '--open', '--port', '0', '--webrtc', 'localhost'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(bad.status, 2, bad.stderr);
  const proc = spawn(process.execPath, ['dist/src/cli/netlane.js', 'relay', '--open', '--port', '0', '--webrtc', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pc = rtcPeerConnection();
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no gateway line within 5 s: ${out}`)), 5000);
      proc.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /listening on [\d.]+:\d+#\S+ \(.*webrtc gateway signaling on (http:\/\/127\.0\.0\.1:\d+\/)\)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1] as string);
        }
      });
    });
    pc.createDataChannel('netlane', { ordered: false, maxRetransmits: 0 });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(url, { method: 'POST', body: pc.localDescription?.sdp ?? '' });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^v=0/);
  } finally {
    pc.close();
    proc.kill('SIGKILL');
  }
});
