/* global process, setImmediate, setTimeout, performance, console, Buffer */
// The measurement that chose the WebRTC gateway's library (docs/BROWSER.md "Choosing the WebRTC library"):
// two peers of one library in one process on 127.0.0.1, one unordered data channel that never retransmits
// (what the gateway opens), 100 B messages: the time to an open channel, the round trip of one message at a
// time (2,000 after 100 of warm-up, median and p99), and messages/s one way for 3 s. The libraries are not
// netlane's or bench/'s dependencies: install them in a scratch directory and name it:
//
//   mkdir /tmp/rtc && (cd /tmp/rtc && npm init -y && npm install node-datachannel@0.33.4 werift@0.24.4)
//   flock -x -w 900 /work/cpu.lock node bench/webrtc-libs.mjs /tmp/rtc
//
// werift sends from a promise chain: it gets 20 messages each millisecond (its one-way figure is what it
// delivered of them); node-datachannel is kept topped up to 1 MiB buffered.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node bench/webrtc-libs.mjs DIR (DIR/node_modules has node-datachannel and werift)');
const mod = (path) => import(pathToFileURL(join(dir, 'node_modules', path)).href);
const turn = () => new Promise((r) => setImmediate(r));
const until = async (cond, what) => {
  const end = performance.now() + 10_000;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`no ${what} within 10 s`);
    await new Promise((r) => setTimeout(r, 1));
  }
};

/** A pair: `a` sends on `send`, `b` echoes messages starting with 1 and counts the others. */
async function measure(name, open) {
  const t0 = performance.now();
  const link = await open();
  const openMs = performance.now() - t0;
  const ping = new Uint8Array(100).fill(1);
  const rtt = [];
  for (let i = 0; i < 2100; i++) {
    const want = link.echoed() + 1;
    const s = performance.now();
    link.send(ping);
    while (link.echoed() < want) await turn();
    if (i >= 100) rtt.push((performance.now() - s) * 1000);
  }
  rtt.sort((x, y) => x - y);
  const bulk = new Uint8Array(100).fill(2);
  const end = performance.now() + 3000;
  while (performance.now() < end) await link.pump(bulk);
  await new Promise((r) => setTimeout(r, 300));
  console.log(`${name.padEnd(18)} open ${openMs.toFixed(0).padStart(4)} ms   rtt median ${rtt[1000].toFixed(0).padStart(5)} µs, p99 ${rtt[1980].toFixed(0).padStart(6)} µs   ${(link.got() / 3).toFixed(0).padStart(7)} msg/s one way`);
  link.close();
}

const ndcMod = await mod('node-datachannel/dist/esm/lib/index.mjs');
const ndc = ndcMod.default ?? ndcMod;
await measure('node-datachannel', async () => {
  const cfg = { iceServers: [], bindAddress: '127.0.0.1' };
  const a = new ndc.PeerConnection('a', cfg);
  const b = new ndc.PeerConnection('b', cfg);
  a.onLocalDescription((sdp, type) => b.setRemoteDescription(sdp, type));
  b.onLocalDescription((sdp, type) => a.setRemoteDescription(sdp, type));
  a.onLocalCandidate((c, mid) => b.addRemoteCandidate(c, mid));
  b.onLocalCandidate((c, mid) => a.addRemoteCandidate(c, mid));
  let got = 0;
  let echoed = 0;
  let far = null;
  b.onDataChannel((dc) => {
    far = dc;
    dc.onMessage((m) => (m[0] === 1 ? dc.sendMessageBinary(m) : got++));
  });
  const dc = a.createDataChannel('x', { unordered: true, maxRetransmits: 0 });
  dc.onMessage(() => echoed++);
  await until(() => dc.isOpen() && far !== null, 'open channel');
  return {
    send: (m) => dc.sendMessageBinary(m),
    echoed: () => echoed,
    got: () => got,
    pump: async (m) => {
      for (let k = 0; k < 200 && dc.bufferedAmount() < 1 << 20; k++) dc.sendMessageBinary(m);
      await turn();
    },
    close: () => {
      a.close();
      b.close();
    },
  };
});

const { RTCPeerConnection } = await mod('werift/lib/webrtc/src/index.js');
await measure('werift', async () => {
  const a = new RTCPeerConnection({ iceServers: [] });
  const b = new RTCPeerConnection({ iceServers: [] });
  const dc = a.createDataChannel('x', { ordered: false, maxRetransmits: 0 });
  let got = 0;
  let echoed = 0;
  let far = null;
  b.onDataChannel.subscribe((d) => {
    far = d;
    d.onMessage.subscribe((m) => (m[0] === 1 ? d.send(m) : got++));
  });
  dc.onMessage.subscribe(() => echoed++);
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  await until(() => dc.readyState === 'open' && far?.readyState === 'open', 'open channel');
  return {
    send: (m) => dc.send(Buffer.from(m)),
    echoed: () => echoed,
    got: () => got,
    pump: async (m) => {
      for (let k = 0; k < 20; k++) dc.send(Buffer.from(m));
      await new Promise((r) => setTimeout(r, 1));
    },
    close: () => {
      void a.close();
      void b.close();
    },
  };
});
ndc.cleanup();
process.exit(0);
