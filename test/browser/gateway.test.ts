// In real headless Chromium: a page running the browser build (netlane/browser, loaded as native ES modules
// from dist/) meets a Node NetworkManager on UDP in a lobby (the test hands each the other's peer id and
// route), through one relay: the page over one of the relay's gateways (WebSocket; WebRTC data channel, the
// browser's own RTCPeerConnection), the Node peer over UDP. Both send 1,000 reliable messages (in order, each
// once) and 1,000 unreliable ones (never twice) under 10 % fake loss each way; nothing the page receives
// carries the Node peer's address. The same scenario runs through each gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { NetworkManager } from '../../src/api/network-manager.js';
import { addressKey, decodeRoute } from '../../src/relay/protocol.js';
import { pump } from '../integration/relay-support.js';
import { addressNeedles, browserPages, browserSkip, relayWithGateway } from './support.js';

const skip = browserSkip();
const LOSS = { FakePacketLoss_Send: 10, FakePacketLoss_Recv: 10 };
const N = 1000;

const pages = browserPages(skip);
const openPage = (): Promise<Page> => pages.open('page.html', 'netlaneTest');

for (const kind of ['ws', 'webrtc'] as const) {
  const name = kind === 'ws' ? 'WebSocket gateway' : 'WebRTC gateway, unordered data channel without retransmits';
  test(`chromium: a page (${name}, @noble) and a Node NetworkManager (UDP) meet through one relay; 1,000 reliable in order each way, unreliable never twice under 10 % loss; the page never receives the Node peer's address`, { skip, timeout: 90_000 }, () => meet(kind));
}

async function meet(kind: 'ws' | 'webrtc'): Promise<void> {
  const { relay, url, stats } = await relayWithGateway(kind);
  const node = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1', connectionConfig: LOSS });
  const page = await openPage();
  try {
    const gateways = { [addressKey(relay.local)]: url };
    const transport = kind === 'ws' ? 'websocket' : 'webrtc';
    const started = (await page.evaluate((o) => (globalThis as never as { netlaneTest: { start(o: unknown): Promise<unknown> } }).netlaneTest.start(o), { relays: [relay.address], gateways, transport, config: LOSS })) as { peerId: string; route: string; provider: string };
    assert.match(started.provider, /^@noble/);
    await pump([node], () => node.route !== null, 5000, 'the Node peer\'s route');
    // The lobby: each side opens the other by peer id and route.
    const browserId = BigInt(started.peerId);
    assert.equal(node.openPeer(browserId, started.route), 0);
    node.openChannel(browserId, 0, false);
    node.openChannel(browserId, 1, true);
    const call = <T>(fn: string, ...args: unknown[]): Promise<T> => page.evaluate(([f, a]) => ((globalThis as never as { netlaneTest: Record<string, (...x: unknown[]) => unknown> }).netlaneTest[f as string] as (...x: unknown[]) => T)(...(a as unknown[])), [fn, args] as const) as Promise<T>;
    assert.equal(await call<number>('open', node.getPeerId().toString(), node.route), 0);
    let pageConnected = false;
    await pump([node], () => node.peerStatus(browserId)?.connected === true && pageConnected, 15_000, 'both connected', () => {
      void call<boolean>('connected', node.getPeerId().toString()).then((c) => (pageConnected = c));
    });

    const got = { reliable: [] as number[], unreliable: [] as number[] };
    node.on('message', (_p, ch, d) => (ch === 1 ? got.reliable : got.unreliable).push(new DataView(d.buffer, d.byteOffset).getUint32(0)));
    const msg = (i: number): Uint8Array => {
      const b = new Uint8Array(100);
      new DataView(b.buffer).setUint32(0, i);
      return b;
    };
    for (let i = 0; i < N; i++) assert.equal(node.sendMessage(browserId, 1, msg(i)), 0);
    await call('send', node.getPeerId().toString(), N, 20);
    let sentU = 0;
    let pageCounts = { reliable: 0, unreliable: 0, sending: true };
    await pump([node], () => got.reliable.length === N && pageCounts.reliable === N && !pageCounts.sending && sentU === N, 60_000, '1,000 reliable messages each way', () => {
      for (let k = 0; k < 20 && sentU < N; k++, sentU++) node.sendMessage(browserId, 0, msg(sentU));
      void call<typeof pageCounts>('counts').then((c) => (pageCounts = c));
    });
    // Unreliable stragglers: a second more of frames.
    const settle = Date.now() + 1000;
    await pump([node], () => Date.now() > settle, 5000, 'the last unreliable messages');
    const r = await call<{ reliable: number[]; unreliable: number[]; routes: string[]; datagrams: number }>('result');

    const all = Array.from({ length: N }, (_, i) => i);
    assert.deepEqual(got.reliable, all, 'the Node peer got the page\'s reliable messages, each once, in order');
    assert.deepEqual(r.reliable, all, 'the page got the Node peer\'s reliable messages, each once, in order');
    for (const [who, list] of [['node', got.unreliable], ['page', r.unreliable]] as const) {
      assert.equal(new Set(list).size, list.length, `${who}: no unreliable message twice`);
      assert.ok(list.every((i) => i >= 0 && i < N), `${who}: only messages that were sent`);
      assert.ok(list.length > 0 && list.length < N, `${who}: ${list.length} of ${N} unreliable messages arrived under 10 % loss each way`);
    }

    // Nothing the page received names the Node peer: its IP and port in no byte order, as no text; its routes name the relay only.
    const nodePort = node.localAddress.port;
    const hits = await call<Record<string, number>>('find', addressNeedles(nodePort));
    assert.deepEqual(Object.values(hits), addressNeedles(nodePort).map(() => 0), `the Node peer's address (port ${nodePort}) in ${r.datagrams} datagrams the page received: ${JSON.stringify(hits)}`);
    const st = stats();
    assert.ok(r.datagrams > 0 && r.datagrams <= st.sent, `${r.datagrams} datagrams searched of ${st.sent} the gateway sent`);
    for (const route of [node.route as string, ...r.routes]) for (const e of decodeRoute(route).entries) assert.equal(addressKey(e.relay), addressKey(relay.local), 'a route holds relay addresses only');
    assert.ok(st.accepted === 1 && st.received > 0 && st.dropped === 0, JSON.stringify(st));
  } finally {
    await page.evaluate(() => (globalThis as never as { netlaneTest: { close(): void } }).netlaneTest.close()).catch(() => undefined);
    await page.close();
    node.close();
    relay.close();
  }
}
