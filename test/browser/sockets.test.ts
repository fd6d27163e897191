// In real headless Chromium: a page running the browser build's NetworkingSockets (netlane/browser, loaded
// as native ES modules from dist/) connects by identity alone (connectP2P) to a Node NetworkingSockets
// server (createListenSocketP2P, over UDP) through one relay: the page over one of the relay's gateways
// (WebSocket; WebRTC data channel, the browser's own RTCPeerConnection). Both run a game's frame every
// 10 ms. Under 10 % fake loss each way on both sides, each sends 1,000 reliable messages on lane 1 (each
// arrives once, in order) and 1,000 unreliable ones on lane 0 (never twice, some lost); each side knows the
// other by its proven identity, never its address, and nothing the page receives carries the server's
// address. The same scenario runs through each gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { NetworkingSockets } from '../../src/api/networking-sockets.js';
import { ConnectionState, Result, SendFlags } from '../../src/core/types.js';
import type { NetworkingMessage, StatusChangedInfo } from '../../src/api/types.js';
import { addressKey } from '../../src/relay/protocol.js';
import { nextFrame } from '../integration/relay-support.js';
import { addressNeedles, browserPages, browserSkip, relayWithGateway } from './support.js';

const skip = browserSkip();
const LOSS = 10;
const N = 1000;
const SIZE = 100;

const pages = browserPages(skip);

interface PageInfo {
  state: number;
  identityRemote: string;
  addressRemote: { address: string; port: number };
  endReason: number;
  endDebug: string;
}

const openPage = (errors: string[]): Promise<Page> => pages.open('sockets-page.html', 'netlaneSockets', errors);

/** Runs the server's frame (runCallbacks, `each`) every 10 ms until `done()`; throws after `timeoutMs`. */
async function drive(ns: NetworkingSockets, done: () => boolean, timeoutMs: number, what: () => string, each?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    ns.runCallbacks();
    each?.();
    if (done()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await nextFrame();
  }
}

/** The latest answer of a page call, asked again (one call at a time) whenever `poll()` runs. */
function poller<T>(ask: () => Promise<T>): { poll(): void; latest: T | null; failed: unknown } {
  let busy = false;
  const p = {
    latest: null as T | null,
    failed: null as unknown,
    poll(): void {
      if (busy) return;
      busy = true;
      ask().then(
        (v) => ((p.latest = v), (busy = false)),
        (e: unknown) => ((p.failed = e), (busy = false)),
      );
    },
  };
  return p;
}

const msg = (i: number): Uint8Array => {
  const b = new Uint8Array(SIZE);
  new DataView(b.buffer).setUint32(0, i);
  return b;
};
const num = (m: NetworkingMessage): number => new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength).getUint32(0);

for (const kind of ['ws', 'webrtc'] as const) {
  const name = kind === 'ws' ? 'WebSocket gateway' : 'WebRTC gateway, unordered data channel without retransmits';
  test(`chromium: a page's NetworkingSockets (${name}) connectP2P's a Node NetworkingSockets P2P listen socket by identity through one relay; 1,000 reliable in order each way on lane 1, unreliable never twice on lane 0 under 10 % loss; identities shown, addresses never`, { skip, timeout: 90_000 }, () => meet(kind));
}

async function meet(kind: 'ws' | 'webrtc'): Promise<void> {
  const { relay, url, stats } = await relayWithGateway(kind);
  let server: NetworkingSockets | null = null;
  let page: Page | null = null;
  const errors: string[] = [];
  try {
    // The Node server: a P2P listen socket under 10 % loss each way, accepting every connection that comes.
    const srv = new NetworkingSockets({ relays: [relay.address], relayOptions: { bindAddress: '127.0.0.1' } });
    server = srv;
    let sconn = 0;
    const serverStates: number[] = [];
    const onStatus = (s: StatusChangedInfo): void => {
      if (s.oldState === ConnectionState.None && s.info.state === ConnectionState.Connecting) {
        assert.equal(sconn, 0, 'one connection comes to the server');
        sconn = s.connection;
        assert.equal(srv.acceptConnection(s.connection), Result.OK);
      }
      if (s.connection === sconn) serverStates.push(s.info.state);
    };
    const listen = srv.createListenSocketP2P(0, { FakePacketLoss_Send: LOSS, FakePacketLoss_Recv: LOSS, Callback_ConnectionStatusChanged: onStatus });
    assert.ok(listen > 0, 'a P2P listen socket');
    const serverIdentity = srv.getIdentity() as string;
    assert.match(serverIdentity, /^id:\d+$/);
    const serverAddress = srv.getP2PSocketAddress();
    assert.ok(serverAddress && serverAddress.address === '127.0.0.1' && serverAddress.port > 0, `the server's P2P socket is on 127.0.0.1 (${JSON.stringify(serverAddress)})`);

    // The page: its NetworkingSockets through the gateway, 10 % loss each way, connecting by the server's identity.
    page = await openPage(errors);
    const p = page;
    const call = <T>(fn: string, ...args: unknown[]): Promise<T> => p.evaluate(([f, a]) => ((globalThis as never as { netlaneSockets: Record<string, (...x: unknown[]) => unknown> }).netlaneSockets[f as string] as (...x: unknown[]) => T)(...(a as unknown[])), [fn, args] as const) as Promise<T>;
    const gateways = { [addressKey(relay.local)]: url };
    const transport = kind === 'ws' ? 'websocket' : 'webrtc';
    const started = await call<{ identity: string; provider: string; connected: number }>('start', { relays: [relay.address], gateways, transport, loss: LOSS, server: serverIdentity });
    assert.match(started.provider, /^@noble/);
    assert.match(started.identity, /^id:\d+$/);
    assert.equal(started.connected, ConnectionState.Connected);

    type Status = { info: PageInfo | null; states: number[]; error: string | null };
    const status = poller(() => call<Status>('status'));
    const pageState = (): string => `server ${JSON.stringify(sconn ? srv.getConnectionInfo(sconn) : null)} states ${serverStates.join(',')}; page ${JSON.stringify(status.latest)} ${String(status.failed ?? '')} ${errors.join('; ')}`;
    await drive(srv, () => sconn > 0 && srv.getConnectionInfo(sconn)?.state === ConnectionState.Connected && status.latest?.info?.state === ConnectionState.Connected, 20_000, () => `both connected: ${pageState()}`, () => {
      if (status.failed) throw status.failed;
      status.poll();
    });
    assert.equal(srv.configureConnectionLanes(sconn, 2), Result.OK);

    // 1,000 reliable messages each way at once (lane 1), 1,000 unreliable ones each way 20 a frame (lane 0).
    const got = { reliable: [] as number[], unreliable: [] as number[], wrongLane: 0 };
    const receive = (): void => {
      for (;;) {
        const ms = srv.receiveMessagesOnConnection(sconn, 256) ?? [];
        for (const m of ms) {
          const reliable = m.flags === SendFlags.Reliable;
          if (m.lane !== (reliable ? 1 : 0)) got.wrongLane++;
          (reliable ? got.reliable : got.unreliable).push(num(m));
        }
        if (ms.length < 256) return;
      }
    };
    for (let i = 0; i < N; i++) assert.equal(srv.sendMessageToConnection(sconn, msg(i), SendFlags.Reliable, 1).result, Result.OK);
    await call('send', N, 20);
    let sentU = 0;
    const counts = poller(() => call<{ reliable: number; unreliable: number; sending: boolean; error: string | null }>('counts'));
    await drive(
      srv,
      () => got.reliable.length >= N && counts.latest?.reliable === N && counts.latest.sending === false && sentU === N,
      60_000,
      () => `1,000 reliable messages each way: the server has ${got.reliable.length} (and ${got.unreliable.length} unreliable), the page ${JSON.stringify(counts.latest)}, ${sentU} unreliable sent; ${errors.join('; ')}`,
      () => {
        if (counts.failed) throw counts.failed;
        if (counts.latest?.error) throw new Error(counts.latest.error);
        receive();
        for (let k = 0; k < 20 && sentU < N; k++, sentU++) assert.equal(srv.sendMessageToConnection(sconn, msg(sentU), SendFlags.Unreliable, 0).result, Result.OK);
        counts.poll();
      },
    );
    // Unreliable stragglers: a second more of frames.
    const settle = Date.now() + 1000;
    await drive(srv, () => Date.now() > settle, 5000, () => 'the last unreliable messages', receive);
    const r = await call<{ reliable: number[]; unreliable: number[]; wrongLane: number; datagrams: number; info: PageInfo | null; fake: { sendLost: number; recvLost: number } | null; error: string | null }>('result');
    assert.equal(r.error, null, 'no page frame threw');

    const all = Array.from({ length: N }, (_, i) => i);
    assert.deepEqual(got.reliable, all, "the server got the page's reliable messages, each once, in order");
    assert.deepEqual(r.reliable, all, "the page got the server's reliable messages, each once, in order");
    for (const [who, list, wrongLane] of [['server', got.unreliable, got.wrongLane], ['page', r.unreliable, r.wrongLane]] as const) {
      assert.equal(wrongLane, 0, `${who}: reliable messages on lane 1, unreliable on lane 0`);
      assert.equal(new Set(list).size, list.length, `${who}: no unreliable message twice`);
      assert.ok(list.every((i) => Number.isInteger(i) && i >= 0 && i < N), `${who}: only unreliable messages that were sent`);
      assert.ok(list.length > 0 && list.length < N, `${who}: ${list.length} of ${N} unreliable messages arrived under 10 % loss each way`);
    }

    // The fake loss was on both sides' P2P sockets, each way (the page's set at SocketsInterface scope).
    const sfake = srv.getSocketStats(sconn);
    for (const [who, f] of [['server', sfake && { sendLost: sfake.fakeSend.lost, recvLost: sfake.fakeRecv.lost }], ['page', r.fake]] as const) {
      assert.ok(f && f.sendLost > 0 && f.recvLost > 0, `${who}: its fake loss dropped datagrams each way (${JSON.stringify(f)})`);
    }

    // Each side knows the other by its proven identity, neither by its address.
    assert.equal(r.info?.state, ConnectionState.Connected);
    assert.deepEqual(r.info?.addressRemote, { address: '::', port: 0 }, "the page is never shown the server's address");
    assert.equal(r.info?.identityRemote, serverIdentity, "the page knows the server by the identity it connected to");
    const sinfo = srv.getConnectionInfo(sconn);
    assert.equal(sinfo?.identityRemote, started.identity, "the server knows the page by the page's identity");
    assert.deepEqual(sinfo?.addressRemote, { address: '::', port: 0 }, "the server is never shown the page's address");

    // Nothing the page received names the server: 127.0.0.1 and its port in no byte order, as no text.
    const needles = addressNeedles(serverAddress.port);
    const hits = await call<Record<string, number>>('find', needles);
    assert.deepEqual(Object.values(hits), needles.map(() => 0), `the server's address (port ${serverAddress.port}) in ${r.datagrams} datagrams the page received: ${JSON.stringify(hits)}`);
    const st = stats();
    assert.ok(r.datagrams > 0 && r.datagrams <= st.sent, `${r.datagrams} datagrams searched of ${st.sent} the gateway sent`);
    assert.ok(st.accepted === 1 && st.received > 0 && st.dropped === 0, `the gateway accepted the page once and dropped nothing: ${JSON.stringify(st)}`);
    assert.deepEqual(errors, [], 'no page errors');
    console.log(`# ${kind}: unreliable arrived ${got.unreliable.length} at the server, ${r.unreliable.length} at the page; fake losses server ${JSON.stringify(sfake && [sfake.fakeSend.lost, sfake.fakeRecv.lost])} page ${JSON.stringify(r.fake)}; ${r.datagrams} datagrams audited; gateway ${JSON.stringify(st)}`);
  } finally {
    if (page) {
      await page.evaluate(() => (globalThis as never as { netlaneSockets: { close(): void } }).netlaneSockets.close()).catch(() => undefined);
      await page.close();
    }
    server?.close();
    relay.close();
  }
}
