// A spoofed handshake flood in virtual time, through the io layer (the endpoint driver's and the relay
// server's admission queue, docs/RUNTIME.md "Under a flood"): 100,000 datagrams from 2,048 sources arrive
// in bursts of 1,000 (each burst at one instant, more than a pass takes), a new client connects and an
// established connection keeps talking meanwhile. The real-time figures (connect times, event-loop delay)
// are in test/integration/flood.test.ts; this shows the mechanism deterministically: what is shed, what
// is answered, that the newcomer gets in at once and that nothing established waits.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ConnectionState, NetworkManager, NetworkingMessages, SendFlags, type NetworkingMessage } from '../../src/index.js';
import { encodeRelayControl } from '../../src/relay/protocol.js';
import { encodeControl } from '../../src/wire/control.js';
import { SeededRng } from '../../src/util/rng.js';
import type { SocketAddress } from '../../src/core/types.js';
import type { SimSocket } from '../../src/testing/sim-network.js';
import { bothConnected, startClient, startServer } from '../integration/support.js';
import { seedOr, withSeed } from '../support/sim.js';
import { FRAME_US, World } from '../support/world.js';

const PACKETS = 100_000;
const SOURCES = 2048;
const BURST = 1000;
/** A burst every this long: 100,000 datagrams in one second of virtual time. */
const BURST_EVERY_US = 10_000;

const spoofed = (i: number): SocketAddress => ({ address: `172.16.${(i >> 7) & 0xff}.${(i & 127) + 1}`, port: 1024 + i });

/** Injects the flood into `target`: datagram k from source k % SOURCES, `make(k, rng)` its bytes. */
function flood(world: World, target: SimSocket, make: (k: number, rng: SeededRng) => Uint8Array): void {
  const rng = new SeededRng(world.seed + 1);
  const start = world.sim.now;
  for (let k = 0; k < PACKETS; k++) world.sim.inject(spoofed(k % SOURCES), target, make(k, rng), start + Math.floor(k / BURST) * BURST_EVERY_US);
}

test(`virtual time: ${PACKETS} HELLOs and CONNECT_REQUESTs from ${SOURCES} spoofed sources at a listen socket: shed, each source answered about once a second, a new client and an established connection unhindered`, () => {
  const seed = seedOr(1601);
  const world = new World(seed, { latencyUs: 1000 });
  withSeed(seed, () => {
    const server = startServer('0.0.0.0', {}, { runtime: world.peerRuntime() });
    const old = startClient(server.address, server.port, {}, { runtime: world.peerRuntime() });
    const frames = [server.sockets, old.sockets].map((s) => ({ frame: () => s.runCallbacks() }));
    world.drive(frames, () => bothConnected(server, old), 1e6, 'the established connection');
    const target = world.sim.socketAt({ address: server.address, port: server.port }) as SimSocket;
    const buf = new Uint8Array(1024);
    flood(world, target, (k, rng) => {
      const clientCid = rng.nextU32() || 1;
      const n = k % 2 === 0 ? encodeControl(buf, { type: 'hello', version: 2, clientCid, length: 512 }) : encodeControl(buf, { type: 'connectRequest', version: 2, clientCid, cookie: k % 4 === 1 ? new Uint8Array(0) : buf.subarray(600, 619), payload: new Uint8Array(300) });
      return buf.slice(0, n);
    });
    const got: NetworkingMessage[] = [];
    let sent = 0;
    world.run(frames, 300_000, () => {
      if (old.sockets.sendMessageToConnection(old.conn, Uint8Array.of(sent & 0xff), SendFlags.Reliable).result === 1) sent++;
      got.push(...(server.sockets.receiveMessagesOnListenSocket(server.listen, 64) ?? []));
    });
    // A newcomer in the middle of the flood.
    const t0 = world.sim.now;
    const fresh = startClient(server.address, server.port, {}, { runtime: world.peerRuntime() });
    frames.push({ frame: () => fresh.sockets.runCallbacks() });
    world.drive(frames, () => fresh.sockets.getConnectionInfo(fresh.conn)?.state === ConnectionState.Connected, 1e6, 'the newcomer connected', () => {
      got.push(...(server.sockets.receiveMessagesOnListenSocket(server.listen, 64) ?? []));
    });
    const connectUs = world.sim.now - t0;
    world.run(frames, 1_000_000, () => got.push(...(server.sockets.receiveMessagesOnListenSocket(server.listen, 64) ?? [])));
    const st = server.sockets.getSocketStats(server.listen);
    assert.ok(st);
    console.log(`# sim flood: newcomer in ${connectUs / 1000} ms; ${JSON.stringify({ shed: st.datagramsShed, received: st.datagramsReceived, refused: st.handshakeRefused, replies: st.statelessRepliesSent, messages: got.length, sent })}`);
    assert.ok(connectUs <= 3 * (2 * 1000 + FRAME_US), `the newcomer connected in ${connectUs} µs: two round trips and a frame or so, as without the flood`);
    assert.ok(st.datagramsShed >= PACKETS * 0.9, `most of the flood shed unprocessed (${st.datagramsShed})`);
    assert.ok(st.statelessRepliesSent <= SOURCES * 3, `each source answered about once a second (${st.statelessRepliesSent} replies)`);
    assert.equal(st.datagramsShed + st.datagramsReceived >= PACKETS, true);
    assert.equal(got.length, sent, 'every message of the established connection arrived');
    assert.equal(old.sockets.getConnectionInfo(old.conn)?.state, ConnectionState.Connected);
  });
  world.close();
});

test(`virtual time: ${PACKETS} PINGs and SESSION_REQUESTs from ${SOURCES} spoofed sources at a relay: shed, each source answered about once a second, a new client gets its session`, () => {
  const seed = seedOr(1602);
  const world = new World(seed, { latencyUs: 1000 });
  withSeed(seed, () => {
    const { server: relay, address } = world.relay();
    const target = world.sim.socketAt(relay.local) as SimSocket;
    flood(world, target, (k, rng) => {
      const nonce = new Uint8Array(8).map(() => rng.nextU32() & 0xff);
      return k % 2 === 0 ? encodeRelayControl({ type: 'ping', version: 2, nonce }) : encodeRelayControl({ type: 'sessionRequest', cookie: new Uint8Array(20), clientNonce: nonce, clientPublic: new Uint8Array(32).fill(9), ticket: new Uint8Array(0) });
    });
    world.sim.runFor(300_000);
    const t0 = world.sim.now;
    const nm = new NetworkManager({ relays: [address], runtime: world.peerRuntime() });
    world.drive([{ frame: () => nm.runCallbacks() }], () => nm.relay.primary !== null, 1e6, 'a relay session');
    const sessionUs = world.sim.now - t0;
    world.sim.runFor(1_000_000);
    const st = relay.node.stats;
    console.log(`# sim relay flood: session in ${sessionUs / 1000} ms; ${JSON.stringify({ shed: relay.admission.stats.shed, pings: st.pings, cookieRefused: st.cookieRefused })}`);
    assert.ok(sessionUs <= 3 * (2 * 1000 + FRAME_US), `the session opened in ${sessionUs} µs`);
    assert.ok(relay.admission.stats.shed >= PACKETS * 0.9, `most of the flood shed unprocessed (${relay.admission.stats.shed})`);
    assert.ok(st.pings <= SOURCES * 3, `each source answered about once a second (${st.pings} pongs)`);
    nm.close();
  });
  world.close();
});

test(`virtual time: ${PACKETS} HELLOs from ${SOURCES} spoofed sources at a NetworkingMessages socket open to direct peers: shed as at a listen socket, and a direct peer's message gets through`, () => {
  const seed = seedOr(1603);
  const world = new World(seed, { latencyUs: 1000 });
  withSeed(seed, () => {
    const b = new NetworkingMessages({ bind: '10.0.2.2:0', runtime: world.sim.runtime('10.0.2.2') });
    const a = new NetworkingMessages({ bind: '10.0.2.1:0', runtime: world.sim.runtime('10.0.2.1') });
    b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
    const frames = [a, b].map((p) => ({ frame: () => p.runCallbacks() }));
    const target = world.sim.socketAt(b.localAddress as SocketAddress) as SimSocket;
    const buf = new Uint8Array(1024);
    flood(world, target, (_k, rng) => buf.slice(0, encodeControl(buf, { type: 'hello', version: 2, clientCid: rng.nextU32() || 1, length: 512 })));
    world.sim.runFor(300_000);
    const got: string[] = [];
    assert.equal(a.sendMessageToUser(`ip:10.0.2.2:${b.localAddress?.port}`, new TextEncoder().encode('through the flood'), SendFlags.Reliable, 0), 1);
    world.drive(frames, () => got.length === 1, 2e6, 'the message', () => {
      for (const m of b.receiveMessagesOnChannel(0, 10)) got.push(new TextDecoder().decode(m.payload));
    });
    const deliveredAtMs = world.sim.now / 1000;
    world.sim.runFor(1_000_000); // the rest of the flood
    const shed = b.getStats().datagramsShed;
    console.log(`# sim direct flood: message at ${deliveredAtMs.toFixed(0)} ms virtual; shed ${shed}`);
    assert.deepEqual(got, ['through the flood']);
    assert.ok(shed >= PACKETS * 0.9, `most of the flood shed unprocessed (${shed})`);
    a.close();
    b.close();
  });
  world.close();
});
