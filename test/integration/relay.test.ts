// The relay network over real UDP on loopback: IP privacy with three peers on distinct 127.x
// addresses, a relay that cannot read or forge, failover when the primary relay process is killed,
// a drain, and NAT rebinding. The peers use the Discord-style NetworkManager.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { NetworkManager, type NetworkManagerOptions } from '../../src/api/network-manager.js';
import { RelayMsg, addressKey, decodeRoute } from '../../src/relay/protocol.js';
import { RelayServer } from '../../src/io/relay-server.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs every manager's frame (runCallbacks, flush) every 10 ms until `done()` or the deadline. */
async function pump(nms: readonly NetworkManager[], done: () => boolean, timeoutMs: number, what: string, each?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    for (const nm of nms) nm.runCallbacks();
    each?.();
    for (const nm of nms) nm.flush();
    if (done()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Managers opened to each other (full mesh) with channel 0 unreliable and channel 1 reliable. */
async function mesh(relays: string[], binds: string[], extra: Partial<NetworkManagerOptions>[] = []): Promise<NetworkManager[]> {
  const nms = binds.map((bindAddress, i) => new NetworkManager({ relays, bindAddress, ...extra[i] }));
  await pump(nms, () => nms.every((n) => n.route !== null), 5000, 'routes');
  for (const a of nms) {
    for (const b of nms) {
      if (a === b) continue;
      assert.equal(a.openPeer(b.getPeerId(), b.route as string), 0);
      a.openChannel(b.getPeerId(), 0, false);
      a.openChannel(b.getPeerId(), 1, true);
    }
  }
  await pump(nms, () => nms.every((a) => nms.every((b) => a === b || a.peerStatus(b.getPeerId())?.connected === true)), 10_000, 'every pair connected');
  return nms;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

test('IP privacy: three peers on 127.0.0.2-4 through a relay on 127.0.0.1 receive datagrams only from the relay, and no route or received byte holds another peer\'s address', async () => {
  const relay = RelayServer.open({ address: '127.0.0.1', port: 0, open: true });
  const binds = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const received: { from: string; data: Buffer }[][] = [[], [], []];
  const nms = await mesh(
    [addressKey(relay.local)],
    binds,
    binds.map((_, i) => ({ relayOptions: { tap: (d: Uint8Array, from: { address: string; port: number }) => received[i]?.push({ from: addressKey(from), data: Buffer.from(d) }) } })),
  );
  try {
    const got = [0, 0, 0];
    nms.forEach((nm, i) => nm.on('message', () => (got[i] = (got[i] ?? 0) + 1)));
    let sent = 0;
    await pump(nms, () => got.every((g) => g >= 40), 10_000, 'messages both ways', () => {
      if (sent++ >= 30) return;
      for (const a of nms) for (const b of nms) if (a !== b) a.sendMessage(b.getPeerId(), sent % 2, new TextEncoder().encode(`hello from ${a.getPeerId()}`));
    });
    const relayKey = addressKey(relay.local);
    const ports = nms.map((nm) => nm.localAddress.port);
    for (let i = 0; i < 3; i++) {
      const mine = received[i] as { from: string; data: Buffer }[];
      assert.ok(mine.length > 50, `peer ${i} received ${mine.length} datagrams`);
      for (const r of mine) assert.equal(r.from, relayKey, `peer ${i} received a datagram from ${r.from}`);
      for (let j = 0; j < 3; j++) {
        if (j === i) continue;
        const ip = ipv4Bytes(binds[j] as string);
        const text = Buffer.from(binds[j] as string);
        const portText = Buffer.from(`:${ports[j]}`);
        for (const r of mine) {
          assert.equal(r.data.indexOf(ip), -1, `peer ${i} received peer ${j}'s IP bytes`);
          assert.equal(r.data.indexOf(text), -1, `peer ${i} received peer ${j}'s IP as text`);
          assert.equal(r.data.indexOf(portText), -1, `peer ${i} received peer ${j}'s port as text`);
        }
        // The route peer i learnt for peer j: relay addresses and tokens only.
        const route = nms[j]?.route as string;
        const raw = Buffer.from(route, 'base64url');
        assert.equal(raw.indexOf(ip), -1);
        const port = Buffer.alloc(2);
        port.writeUInt16BE(ports[j] as number);
        assert.equal(raw.indexOf(Buffer.concat([ip, port])), -1);
        assert.deepEqual(decodeRoute(route).entries.map((e) => addressKey(e.relay)), [relayKey]);
      }
    }
  } finally {
    for (const nm of nms) nm.close();
    relay.close();
  }
});

/**
 * A man in the middle posing as the relay: it forwards between clients and the real relay (one
 * socket per client, so the relay sees each client apart), records what it forwards, and can flip
 * bits in the end-to-end part of data datagrams.
 */
function evilRelay(target: { address: string; port: number }): { port: number; seen: Buffer[]; flipEvery: { n: number }; flipped: { n: number }; close: () => void } {
  const front = dgram.createSocket('udp4');
  front.bind(0, '127.0.0.1');
  const backs = new Map<string, dgram.Socket>();
  const seen: Buffer[] = [];
  const flipEvery = { n: 0 };
  const flipped = { n: 0 };
  let count = 0;
  const tamper = (msg: Buffer, headerLen: number): Buffer => {
    seen.push(Buffer.from(msg));
    if (flipEvery.n > 0 && msg.length > headerLen + 1 && ++count % flipEvery.n === 0) {
      const i = headerLen + ((count * 7919) % (msg.length - headerLen));
      msg[i] = (msg[i] as number) ^ (1 << (count % 8));
      flipped.n++;
    }
    return msg;
  };
  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let back = backs.get(key);
    if (!back) {
      const b = dgram.createSocket('udp4');
      b.bind(0, '127.0.0.1');
      b.on('message', (m) => front.send(m[0] === RelayMsg.DataDown ? tamper(m, 3) : m, rinfo.port, rinfo.address));
      backs.set(key, b);
      back = b;
    }
    back.send(msg[0] === RelayMsg.DataUp ? tamper(msg, 11) : msg, target.port, target.address);
  });
  return {
    get port() {
      return front.address().port;
    },
    seen,
    flipEvery,
    flipped,
    close: () => {
      front.close();
      for (const b of backs.values()) b.close();
    },
  };
}

test('the relay cannot read or forge: no plaintext in what it forwards, and flipped bits are rejected end to end while every reliable message arrives intact', async () => {
  const relay = RelayServer.open({ address: '127.0.0.1', port: 0, open: true });
  const evil = evilRelay(relay.local);
  await sleep(20);
  const nms = await mesh([`127.0.0.1:${evil.port}`], ['127.0.0.1', '127.0.0.1']);
  const [a, b] = nms as [NetworkManager, NetworkManager];
  try {
    const secret = 'the-treasure-is-under-the-old-oak';
    const got: string[] = [];
    b.on('message', (_p, ch, d) => ch === 1 && got.push(Buffer.from(d).toString()));
    evil.flipEvery.n = 5;
    let n = 0;
    await pump(nms, () => got.length >= 200, 20_000, '200 reliable messages through a bit-flipping relay', () => {
      for (let k = 0; k < 4 && n < 200; k++) a.sendMessage(b.getPeerId(), 1, Buffer.from(`${secret} #${n++}`));
    });
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => `${secret} #${i}`), 'every message exactly once, in order, unaltered');
    assert.ok(evil.flipped.n > 20, `${evil.flipped.n} datagrams tampered with`);
    const bad = (a.peerStatus(b.getPeerId())?.badPackets ?? 0) + (b.peerStatus(a.getPeerId())?.badPackets ?? 0);
    assert.ok(bad > 0, 'tampered datagrams failed authentication');
    const needle = Buffer.from(secret);
    assert.ok(evil.seen.length > 200);
    for (const s of evil.seen) assert.equal(s.indexOf(needle), -1, 'plaintext seen by the relay');
    assert.equal(a.peerStatus(b.getPeerId())?.handshakes, 1, 'the connection survived the tampering');
  } finally {
    for (const nm of nms) nm.close();
    evil.close();
    relay.close();
  }
});

/** `netlane relay --open` as a child process; resolves with its port. */
async function spawnRelay(): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['dist/src/cli/netlane.js', 'relay', '--open', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  for (let i = 0; i < 250 && !/listening on [\d.]+:(\d+)/.test(out); i++) await sleep(20);
  const port = Number(/listening on [\d.]+:(\d+)/.exec(out)?.[1]);
  if (!port) {
    proc.kill('SIGKILL');
    throw new Error(`relay did not start: ${out}`);
  }
  return { proc, port };
}

test('failover: the relay process carrying the connection is killed mid-transfer; data resumes through the backup within 3 s, routeUpdate fires, no reliable message is lost, no new handshake', async () => {
  const r1 = await spawnRelay();
  const r2 = await spawnRelay();
  const relays = [`127.0.0.1:${r1.port}`, `127.0.0.1:${r2.port}`];
  const nms = await mesh(relays, ['127.0.0.1', '127.0.0.1']);
  const [a, b] = nms as [NetworkManager, NetworkManager];
  try {
    // Both peers must have a warm backup before the failure.
    await pump(nms, () => nms.every((nm) => decodeRoute(nm.route as string).entries.length === 2), 5000, 'backup sessions');
    const routeUpdates: [number, string][] = [];
    a.on('routeUpdate', (r) => routeUpdates.push([0, r]));
    b.on('routeUpdate', (r) => routeUpdates.push([1, r]));
    const got: number[] = [];
    const gotAt: number[] = [];
    b.on('message', (_p, ch, d) => {
      if (ch !== 1) return;
      got.push(new DataView(d.buffer, d.byteOffset).getUint32(0));
      gotAt.push(Date.now());
    });
    let next = 0;
    const send = (): void => {
      for (let k = 0; k < 3; k++) {
        const m = new Uint8Array(100);
        new DataView(m.buffer).setUint32(0, next++);
        a.sendMessage(b.getPeerId(), 1, m);
      }
    };
    await pump(nms, () => got.length >= 150, 10_000, 'transfer running', send);
    const pathRelay = a.peerStatus(b.getPeerId())?.relay;
    assert.ok(pathRelay, 'the connection runs through a relay');
    const victim = pathRelay.port === r1.port ? r1 : r2;
    const owners = nms.filter((nm) => nm.relay.primary?.port === victim.port);
    const killedAt = Date.now();
    const sentBeforeKill = next;
    victim.proc.kill('SIGKILL');
    // Keep sending: the messages sent into the dead relay must arrive too.
    await pump(nms, () => got.length > sentBeforeKill + 150, 15_000, 'data after the failover', send);
    const resumedAt = gotAt[got.findIndex((v) => v >= sentBeforeKill)] as number;
    const stall = resumedAt - killedAt;
    console.log(`failover: data resumed ${stall} ms after the kill; route updates ${routeUpdates.length}; path now via ${a.peerStatus(b.getPeerId())?.relay?.port} (killed ${victim.port})`);
    assert.ok(stall < 3000, `data resumed after ${stall} ms`);
    // No loss, no duplicate, in order: the receiver saw 0..n-1.
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i));
    assert.ok(owners.length >= 1);
    for (const o of owners) assert.ok(routeUpdates.some(([who]) => nms[who] === o), 'the peer whose primary died published a new route');
    for (const [, r] of routeUpdates) assert.ok(decodeRoute(r).entries.every((e) => e.relay.port !== victim.port), 'the new route does not name the dead relay');
    assert.equal(a.peerStatus(b.getPeerId())?.handshakes, 1, 'no end-to-end re-handshake');
    assert.equal(b.peerStatus(a.getPeerId())?.handshakes, 1);
  } finally {
    for (const nm of nms) nm.close();
    r1.proc.kill('SIGKILL');
    r2.proc.kill('SIGKILL');
  }
});

test('drain: a relay that announces a 5 s deadline loses its clients to the other relay before the deadline, with no reliable message lost', async () => {
  const r1 = RelayServer.open({ open: true });
  const r2 = RelayServer.open({ open: true });
  const nms = await mesh([addressKey(r1.local), addressKey(r2.local)], ['127.0.0.1', '127.0.0.1']);
  const [a, b] = nms as [NetworkManager, NetworkManager];
  try {
    const got: number[] = [];
    b.on('message', (_p, ch, d) => ch === 1 && got.push(d[0] as number));
    let n = 0;
    const via = a.peerStatus(b.getPeerId())?.relay?.port;
    const draining = via === r1.local.port ? r1 : r2;
    let drained = false;
    draining.drain(5, () => (drained = true));
    await pump(nms, () => a.peerStatus(b.getPeerId())?.relay?.port !== via && got.length >= 100, 4500, 'the path moved off the draining relay', () => a.sendMessage(b.getPeerId(), 1, Uint8Array.of(n++ & 0xff)));
    await pump(nms, () => got.length === n, 5000, 'all messages');
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i & 0xff));
    await pump(nms, () => drained, 6000, 'the drain to finish');
    assert.equal(draining.node.sessionCount, 0);
  } finally {
    for (const nm of nms) nm.close();
    r1.close();
    r2.close();
  }
});

test('NAT rebinding: the client\'s source port changes mid-transfer; traffic continues and the route does not change', async () => {
  const relay = RelayServer.open({ open: true });
  const nms = await mesh([addressKey(relay.local)], ['127.0.0.1', '127.0.0.1']);
  const [a, b] = nms as [NetworkManager, NetworkManager];
  try {
    const routeBefore = a.route;
    const updates: string[] = [];
    a.on('routeUpdate', (r) => updates.push(r));
    const got: number[] = [];
    b.on('message', (_p, ch, d) => ch === 1 && got.push(new DataView(d.buffer, d.byteOffset).getUint16(0)));
    let n = 0;
    const send = (): void => {
      const m = new Uint8Array(2);
      new DataView(m.buffer).setUint16(0, n++);
      a.sendMessage(b.getPeerId(), 1, m);
    };
    await pump(nms, () => got.length >= 50, 5000, 'traffic', send);
    const portBefore = a.localAddress.port;
    a.rebind();
    assert.notEqual(a.localAddress.port, portBefore);
    const mark = n;
    await pump(nms, () => got.length >= mark + 100, 5000, 'traffic after the rebinding', send);
    assert.equal(relay.node.stats.rebinds >= 1, true, 'the relay validated the new address');
    assert.equal(relay.node.sessions().find((s) => s.port === a.localAddress.port) !== undefined, true, 'the session moved to the new port');
    assert.equal(a.route, routeBefore, 'same route');
    assert.deepEqual(updates, [], 'no routeUpdate');
    await pump(nms, () => got.length === n, 5000, 'all messages');
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i));
  } finally {
    for (const nm of nms) nm.close();
    relay.close();
  }
});
