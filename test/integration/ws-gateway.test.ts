// The relay's WebSocket gateway over real sockets: the browser build's stack (NetworkManager on
// browserRuntime: WebSocketTransport, @noble crypto) in Node, with the `ws` package standing in for the
// browser's WebSocket, linked through one relay with a NetworkManager on UDP; and the gateway's limits.
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { NetworkManager } from '../../src/api/network-manager.js';
import { NetworkingMessages } from '../../src/api/networking-messages.js';
import { Result, SendFlags } from '../../src/core/types.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { browserRuntime } from '../../src/io/browser/runtime.js';
import type { WebSocketLike } from '../../src/io/browser/websocket-transport.js';
import { addressKey } from '../../src/relay/protocol.js';
import { openAll } from '../support/relayed.js';
import { pump } from './relay-support.js';

const webSocket = (url: string): WebSocketLike => new WebSocket(url) as unknown as WebSocketLike;

async function relayWithGateway(ws: { maxConnectionsPerAddress?: number; maxMessageBytes?: number } = {}): Promise<{ relay: RelayServer; url: string }> {
  const relay = RelayServer.open({ open: true, gateways: { ws: { port: 0, ...ws } } });
  const at = await (relay.wsGateway as NonNullable<typeof relay.wsGateway>).listening;
  return { relay, url: `ws://${addressKey(at)}/` };
}

/** Resolves with the close code of `ws` (rejects after 5 s). */
function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no close within 5 s')), 5000);
    ws.once('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

test('ws gateway: a browser-build NetworkManager (WebSocket, @noble) and a UDP one link through one relay; reliable in order both ways; the relay sees a ws/N peer beside a UDP one; a dropped WebSocket is opened again and nothing is lost', async () => {
  const { relay, url } = await relayWithGateway();
  const gateways = { [addressKey(relay.local)]: url };
  const browser = new NetworkManager({ relays: [relay.address], runtime: browserRuntime({ gateways, webSocket }) });
  const udp = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
  const nms = [browser, udp];
  try {
    await pump(nms, () => nms.every((nm) => nm.route !== null), 5000, 'routes');
    openAll(nms);
    await pump(nms, () => browser.peerStatus(udp.getPeerId())?.connected === true && udp.peerStatus(browser.getPeerId())?.connected === true, 10_000, 'connected');
    const got = { browser: [] as number[], udp: [] as number[] };
    browser.on('message', (_p, ch, d) => ch === 1 && got.browser.push(new DataView(d.buffer, d.byteOffset).getUint32(0)));
    udp.on('message', (_p, ch, d) => ch === 1 && got.udp.push(new DataView(d.buffer, d.byteOffset).getUint32(0)));
    const msg = (i: number): Uint8Array => {
      const b = new Uint8Array(100);
      new DataView(b.buffer).setUint32(0, i);
      return b;
    };
    for (let i = 0; i < 300; i++) {
      assert.equal(browser.sendMessage(udp.getPeerId(), 1, msg(i)), 0);
      assert.equal(udp.sendMessage(browser.getPeerId(), 1, msg(i)), 0);
    }
    await pump(nms, () => got.browser.length === 300 && got.udp.length === 300, 10_000, '300 messages each way');
    const all = Array.from({ length: 300 }, (_, i) => i);
    assert.deepEqual(got.browser, all);
    assert.deepEqual(got.udp, all);
    const peers = relay.node.sessions().map((s) => s.address);
    assert.ok(peers.some((a) => /^ws\/\d+$/.test(a)), `a gateway peer among ${peers.join(', ')}`);
    assert.ok(peers.includes('127.0.0.1'), 'and a UDP one');
    const gw = relay.wsGateway?.stats;
    assert.ok(gw && gw.open === 1 && gw.received > 0 && gw.sent > 0, JSON.stringify(gw));
    // The gateway drops every WebSocket: the browser side opens a new one on its next datagram, the relay moves
    // its session to the new ws/N (as after a NAT rebinding), and the connection carries on, nothing lost.
    assert.equal(relay.wsGateway?.disconnectAll(), 1);
    for (let i = 300; i < 400; i++) {
      assert.equal(browser.sendMessage(udp.getPeerId(), 1, msg(i)), 0);
      assert.equal(udp.sendMessage(browser.getPeerId(), 1, msg(i)), 0);
    }
    await pump(nms, () => got.browser.length === 400 && got.udp.length === 400, 15_000, '100 more messages each way after the WebSocket was dropped');
    const more = Array.from({ length: 400 }, (_, i) => i);
    assert.deepEqual(got.browser, more);
    assert.deepEqual(got.udp, more);
    assert.equal(relay.wsGateway?.stats.accepted, 2, 'the browser side opened a second WebSocket');
    assert.equal(browser.peerStatus(udp.getPeerId())?.connected, true);
  } finally {
    for (const nm of nms) nm.close();
    relay.close();
  }
});

test('ws gateway: NetworkingMessages of the browser build finds a UDP peer by its id in the relay\'s directory, and the UDP peer finds it; messages both ways', async () => {
  const { relay, url } = await relayWithGateway();
  const gateways = { [addressKey(relay.local)]: url };
  const browser = new NetworkingMessages({ relays: [relay.address], runtime: browserRuntime({ gateways, webSocket }) });
  const udp = new NetworkingMessages({ relays: [relay.address], relayOptions: { bindAddress: '127.0.0.1' } });
  const peers = [browser, udp];
  const until = async (done: () => boolean, what: string, each?: () => void): Promise<void> => {
    const end = Date.now() + 10_000;
    while (!done()) {
      for (const p of peers) p.runCallbacks();
      each?.();
      if (Date.now() > end) throw new Error(`no ${what} within 10 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  try {
    await until(() => peers.every((p) => p.registered), 'registrations');
    for (const p of peers) p.on('sessionRequest', (id) => assert.equal(p.acceptSessionWithUser(id), true));
    const got = { browser: [] as string[], udp: [] as string[] };
    const text = (b: Uint8Array): string => new TextDecoder().decode(b);
    assert.equal(udp.sendMessageToUser(browser.getIdentity(), new TextEncoder().encode('to the browser'), SendFlags.Reliable, 3), Result.OK);
    assert.equal(browser.sendMessageToUser(udp.getIdentity(), new TextEncoder().encode('from the browser'), SendFlags.Reliable, 3), Result.OK);
    await until(() => got.browser.length > 0 && got.udp.length > 0, 'a message each way', () => {
      got.browser.push(...browser.receiveMessagesOnChannel(3, 10).map((m) => text(m.payload)));
      got.udp.push(...udp.receiveMessagesOnChannel(3, 10).map((m) => text(m.payload)));
    });
    assert.deepEqual(got, { browser: ['to the browser'], udp: ['from the browser'] });
  } finally {
    for (const p of peers) p.close();
    relay.close();
  }
});

test('ws gateway limits: text messages close with 1003, oversized ones with 1009, connections over the per-address limit with 1008; each counted', async () => {
  const { relay, url } = await relayWithGateway({ maxConnectionsPerAddress: 2, maxMessageBytes: 100 });
  const open = (): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  try {
    const a = await open();
    a.send('hello');
    assert.equal(await closeCode(a), 1003);
    const b = await open();
    b.send(new Uint8Array(101));
    assert.equal(await closeCode(b), 1009);
    const c = await open();
    const d = await open();
    const e = new WebSocket(url);
    assert.equal(await closeCode(e), 1008);
    const st = relay.wsGateway?.stats;
    assert.deepEqual([st?.closedText, st?.closedTooBig, st?.refusedPerAddress], [1, 1, 1]);
    c.close();
    d.close();
  } finally {
    relay.close();
  }
});

test('ws gateway: a port that is taken rejects `listening` with ERR_NETLANE_SOCKET; the UDP side still closes', async () => {
  const { relay, url } = await relayWithGateway();
  const port = Number(new URL(url).port);
  const second = RelayServer.open({ open: true, gateways: { ws: { port } } });
  try {
    await assert.rejects(second.wsGateway?.listening ?? Promise.resolve(), (e: unknown) => (e as { code?: string }).code === 'ERR_NETLANE_SOCKET');
  } finally {
    second.close();
    relay.close();
  }
});

test('netlane relay --ws IP:PORT prints the gateway\'s address, which takes WebSockets; a bad --ws is a usage error (exit 2)', async () => {
  const bad = spawnSync(process.execPath, ['dist/src/cli/netlane.js', 'relay', '--open', '--port', '0', '--ws', 'localhost'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(bad.status, 2, bad.stderr);
  const proc = spawn(process.execPath, ['dist/src/cli/netlane.js', 'relay', '--open', '--port', '0', '--ws', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no gateway line within 5 s: ${out}`)), 5000);
      proc.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /listening on [\d.]+:\d+#\S+ \(.*websocket gateway on (ws:\/\/127\.0\.0\.1:\d+\/)\)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1] as string);
        }
      });
    });
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.close();
  } finally {
    proc.kill('SIGKILL');
  }
});
