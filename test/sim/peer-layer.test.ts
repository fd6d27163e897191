// The peer-session layer's edges, in virtual time: a peer that breaks the in-band protocol while messages
// are backed up, the idle timeout of a session that only ever dialled, a late datagram on a relay link
// already forgotten, and the diagnostics channels of the relayed facades.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { NetworkManager } from '../../src/api/network-manager.js';
import { NetworkingMessages } from '../../src/api/networking-messages.js';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, SendFlags, type SocketAddress } from '../../src/core/types.js';
import { RelayMsg } from '../../src/relay/protocol.js';
import { encodeChannelMessage } from '../../src/wire/in-band.js';
import { seededHandshake } from '../../src/testing/crypto.js';
import { SeededRng } from '../../src/util/rng.js';
import { seedOr, withSeed } from '../support/sim.js';
import { World } from '../support/world.js';

const LINK = { latencyUs: 5_000, jitterUs: 1_000 };
const S = 1_000_000;

test('a direct peer that sends a malformed in-band message behind a backlog: the session fails once (4008), what came before is delivered once, nothing after, and nothing throws', () => {
  withSeed(seedOr(861), (seed) => {
    const world = new World(seed, LINK);
    const bob = new NetworkingMessages({ bind: '0.0.0.0:0', runtime: world.peerRuntime() });
    bob.on('sessionRequest', (id) => bob.acceptSessionWithUser(id));
    const failed: number[] = [];
    bob.on('sessionFailed', (f) => failed.push(f.reason));
    const endpoint = new Endpoint({ rng: new SeededRng(seed ^ 0x51), handshake: seededHandshake(seed + 3) });
    const mallory = world.sim.addHost({ address: '10.0.9.1', port: 50000 }, endpoint);
    const cid = endpoint.connect(world.sim.now, bob.localAddress as SocketAddress);
    world.drive([{ frame: () => bob.runCallbacks() }], () => endpoint.state(cid) === ConnectionState.Connected, 5 * S, 'connected');
    // 9,000 messages on channel 1000 (lane 0, behind a channel header, in order with the in-band messages):
    // more than the 8,192 Bob holds unread, so the rest wait in the connection. Then a bad one, then 700 more.
    // Bob reads one message a frame: each read pulls from the connection while the bad message is in its batch.
    for (let i = 0; i < 9000; i++) endpoint.send(world.sim.now, cid, encodeChannelMessage(1000, Uint8Array.of(i & 0xff, i >> 8)), SendFlags.Reliable, 0);
    endpoint.send(world.sim.now, cid, Uint8Array.of(0xee), SendFlags.Reliable, 0); // not an in-band message type
    for (let i = 0; i < 700; i++) endpoint.send(world.sim.now, cid, encodeChannelMessage(1000, Uint8Array.of(0xff, 0xff)), SendFlags.Reliable, 0);
    world.sim.flush();
    const got: number[] = [];
    world.drive(
      [{ frame: () => bob.runCallbacks() }],
      () => failed.length > 0 && bob.getStats().queuedMessages === 0,
      120 * S,
      'the violation',
      () => {
        for (const m of bob.receiveMessagesOnChannel(1000, 1)) got.push((m.payload[0] as number) | ((m.payload[1] as number) << 8));
      },
    );
    for (const m of bob.receiveMessagesOnChannel(1000, 100_000)) got.push((m.payload[0] as number) | ((m.payload[1] as number) << 8));
    assert.deepEqual(failed, [4008], 'one sessionFailed, reason 4008');
    assert.equal(bob.getStats().protocolViolations, 1);
    assert.equal(got.length, 9000, 'every message before the bad one, once');
    assert.ok(got.every((v, i) => v === i % 65536), 'in order, none twice, none from after the bad one');
    assert.ok(mallory.events.length > 0);
    bob.close();
  });
});

test('a session that only ever dialled (direct, no relay) closes at its idle timeout, on the dialling side too', () => {
  withSeed(seedOr(862), (seed) => {
    const world = new World(seed, LINK);
    const a = new NetworkingMessages({ bind: '0.0.0.0:0', runtime: world.peerRuntime(), sessionIdleTimeoutMs: 1000 });
    const b = new NetworkingMessages({ bind: '0.0.0.0:0', runtime: world.peerRuntime(), sessionIdleTimeoutMs: 1000 });
    b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
    const bAddr = `ip:${(b.localAddress as SocketAddress).address}:${(b.localAddress as SocketAddress).port}`;
    a.sendMessageToUser(bAddr, Buffer.from('hello'), SendFlags.Reliable, 0);
    const frames = [a, b].map((p) => ({ frame: () => p.runCallbacks() }));
    let got = 0;
    world.drive(frames, () => (got += b.receiveMessagesOnChannel(0, 10).length) > 0, 5 * S, 'the message');
    world.drive(frames, () => a.getStats().idleTimeouts === 1 && b.getStats().idleTimeouts === 1, 5 * S, 'both idle timeouts');
    assert.equal(a.getSessionConnectionInfo(bAddr).state, ConnectionState.None);
    a.close();
    b.close();
  });
});

test('a late datagram on a relay link already forgotten opens a path that is forgotten again when no connection takes it', () => {
  withSeed(seedOr(863), (seed) => {
    const world = new World(seed, LINK);
    const relay = world.relay();
    const a = new NetworkManager({ relays: [relay.address], runtime: world.peerRuntime() });
    const b = new NetworkManager({ relays: [relay.address], runtime: world.peerRuntime() });
    const frames = [a, b].map((nm) => ({ frame: () => (nm.runCallbacks(), nm.flush()) }));
    world.drive(frames, () => a.route !== null && b.route !== null, 5 * S, 'routes');
    a.openPeer(b.getPeerId(), b.route as string);
    b.openPeer(a.getPeerId(), a.route as string);
    world.drive(frames, () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5 * S, 'connected');
    // Capture one DATA_DOWN to A, close both peers (the paths linger, then go), and replay it a minute later.
    let copy: { from: SocketAddress; to: SocketAddress; data: Uint8Array } | null = null;
    world.sim.intercept = (from, to, data) => {
      if (copy === null && data[0] === RelayMsg.DataDown && to.address === a.localAddress.address) copy = { from, to, data: data.slice() };
      return data;
    };
    a.openChannel(b.getPeerId(), 0, true);
    b.openChannel(a.getPeerId(), 0, true);
    b.sendMessage(a.getPeerId(), 0, Uint8Array.of(1));
    world.drive(frames, () => copy !== null, 5 * S, 'a DATA_DOWN to A');
    world.sim.intercept = null;
    a.closePeer(b.getPeerId());
    b.closePeer(a.getPeerId());
    world.run(frames, 60 * S);
    assert.equal(a.relay.pathCount, 0, 'the closed peer\'s path went after its linger');
    const received = a.getStats().endpoint.datagramsReceived;
    const c = copy as unknown as { from: SocketAddress; to: SocketAddress; data: Uint8Array };
    const sock = world.sim.socketAt(c.to);
    assert.ok(sock, "A's socket");
    world.sim.inject(c.from, sock, c.data);
    world.run(frames, 1 * S);
    assert.equal(a.getStats().endpoint.datagramsReceived, received + 1, 'the late datagram reached the endpoint (which drops it: no connection)');
    assert.equal(a.relay.pathCount, 1, 'it opened a path');
    world.run(frames, 10 * S);
    assert.equal(a.relay.pathCount, 0, 'no connection took the path: it was forgotten');
    a.close();
    b.close();
    world.close();
  });
});

test('the diagnostics channels fire for the relayed facades: socket:open for their socket, connection:status for their connections, with relay paths, never a peer address', () => {
  withSeed(seedOr(864), (seed) => {
    const opened: SocketAddress[] = [];
    const statuses: { state: number; remote: SocketAddress }[] = [];
    const onOpen = (m: unknown): void => void opened.push((m as { local: SocketAddress }).local);
    const onStatus = (m: unknown): void => void statuses.push(m as { state: number; remote: SocketAddress });
    diagnosticsChannel.subscribe('netlane:socket:open', onOpen);
    diagnosticsChannel.subscribe('netlane:connection:status', onStatus);
    try {
      const world = new World(seed, LINK);
      const relay = world.relay();
      const a = new NetworkManager({ relays: [relay.address], runtime: world.peerRuntime() });
      const b = new NetworkingMessages({ relays: [relay.address], runtime: world.peerRuntime() });
      const frames = [{ frame: () => (a.runCallbacks(), a.flush()) }, { frame: () => b.runCallbacks() }];
      world.drive(frames, () => a.route !== null && b.registered, 5 * S, 'routes');
      assert.deepEqual(
        opened.map((o) => o.address),
        ['10.0.0.1', '10.0.1.1', '10.0.1.2'],
        'the relay, the manager and the messages facade each opened one socket',
      );
      // Two NetworkingMessages through the relay: their connection's states are published.
      const c = new NetworkingMessages({ relays: [relay.address], runtime: world.peerRuntime() });
      c.on('sessionRequest', (id) => c.acceptSessionWithUser(id));
      world.drive([...frames, { frame: () => c.runCallbacks() }], () => c.registered, 5 * S, 'c registered');
      b.sendMessageToUser(c.getIdentity(), Buffer.from('hi'), SendFlags.Reliable, 0);
      let got = 0;
      world.drive([...frames, { frame: () => c.runCallbacks() }], () => (got += c.receiveMessagesOnChannel(0, 1).length) > 0, 5 * S, 'the message');
      assert.ok(statuses.some((s) => s.state === ConnectionState.Connecting) && statuses.some((s) => s.state === ConnectionState.Connected), JSON.stringify(statuses));
      assert.ok(
        statuses.every((s) => s.remote.address === 'relay'),
        'a relayed connection is published with its relay path, never an address',
      );
      a.close();
      b.close();
      c.close();
      world.close();
    } finally {
      diagnosticsChannel.unsubscribe('netlane:socket:open', onOpen);
      diagnosticsChannel.unsubscribe('netlane:connection:status', onStatus);
    }
  });
});

test('a hub with a hundred idle sessions closes each at its own last use + the idle timeout, none early, none missed', () => {
  withSeed(seedOr(864), (seed) => {
    const world = new World(seed, LINK);
    const IDLE_MS = 1000;
    const hub = new NetworkingMessages({ bind: '0.0.0.0:0', runtime: world.peerRuntime(), sessionIdleTimeoutMs: IDLE_MS });
    hub.on('sessionRequest', (id) => hub.acceptSessionWithUser(id));
    const hubAddr = `ip:${(hub.localAddress as SocketAddress).address}:${(hub.localAddress as SocketAddress).port}`;
    const peers = Array.from({ length: 100 }, () => new NetworkingMessages({ bind: '0.0.0.0:0', runtime: world.peerRuntime(), sessionIdleTimeoutMs: 60_000 }));
    const frames = [hub, ...peers].map((p) => ({ frame: () => p.runCallbacks() }));
    const lastUse = new Map<string, number>(); // the hub's session (by identity) -> when it last read from it
    const closedAt = new Map<string, number>();
    const t0 = world.sim.now;
    let sent = 0;
    const each = (): void => {
      const now = world.sim.now;
      // Each peer sends one message, 13 ms after the one before: the sessions' deadlines differ.
      while (sent < peers.length && now >= t0 + sent * 13_000) peers[sent++]!.sendMessageToUser(hubAddr, Buffer.from('hi'), SendFlags.Reliable, 0);
      for (const m of hub.receiveMessagesOnChannel(0, 256)) lastUse.set(String(m.identity), now);
      for (const id of lastUse.keys()) if (!closedAt.has(id) && hub.getSessionConnectionInfo(id).state === ConnectionState.None) closedAt.set(id, now);
    };
    world.drive(frames, () => closedAt.size === peers.length, 10 * S, 'every idle session closed', each);
    assert.equal(hub.getStats().idleTimeouts, peers.length);
    let early = 0;
    let late = 0;
    for (const [id, used] of lastUse) {
      const d = closedAt.get(id)! - (used + IDLE_MS * 1000);
      early = Math.min(early, d);
      late = Math.max(late, d);
    }
    console.log(`# ${peers.length} hub sessions idled out between ${early} and ${late} us after their last use + ${IDLE_MS} ms`);
    // The last use is seen at a frame, and the close at the next event or frame: within two frames (20 ms).
    assert.ok(early >= -20_000 && late <= 20_000, `idle closes ${early}..${late} us off`);
    for (const p of [hub, ...peers]) p.close();
  });
});
