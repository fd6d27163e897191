// `npm start`: a simulated session until the UDP runtime exists. Two endpoints in a SimNetwork with
// 5% loss and 50 ms one-way latency exchange game-like traffic for 20 simulated seconds; the demo
// prints what was delivered and the connection stats.
import { Endpoint } from '../core/endpoint.js';
import { ConnectionState, SendFlags, type ReceivedMessage } from '../core/types.js';
import { SimNetwork } from '../testing/sim-network.js';
import { SeededRng } from '../util/rng.js';
import { SecureHandshake } from '../crypto/handshake.js';
import { NodeCryptoProvider } from '../crypto/node-provider.js';

const seed = Number(process.env['NETLANE_SEED'] ?? 1);
const sim = new SimNetwork(seed, { latencyUs: 50_000, jitterUs: 5_000, loss: 0.05 });
const rng = new SeededRng(seed);
const serverAddr = { address: '10.0.0.2', port: 27015 };
const server = sim.addHost(serverAddr, new Endpoint({ rng: rng.fork(), listen: true, handshake: new SecureHandshake({ provider: new NodeCryptoProvider() }) }));
const client = sim.addHost({ address: '10.0.0.1', port: 50000 }, new Endpoint({ rng: rng.fork(), handshake: new SecureHandshake({ provider: new NodeCryptoProvider() }) }));

let serverConn = 0;
server.onEvent = (e) => {
  if (e.type !== 'connectionStatusChanged') return;
  console.log(`[server ${(sim.now / 1000).toFixed(0)} ms] connection ${e.connection} ${e.oldState} -> ${e.state}${e.endReason ? ` (${e.endReason} ${e.endDebug})` : ''}`);
  if (e.state === ConnectionState.Connecting) {
    serverConn = e.connection;
    server.endpoint.accept(sim.now, e.connection);
  }
};
client.onEvent = (e) => e.type === 'connectionStatusChanged' && console.log(`[client ${(sim.now / 1000).toFixed(0)} ms] connection ${e.connection} ${e.oldState} -> ${e.state}${e.endReason ? ` (${e.endReason} ${e.endDebug})` : ''}`);

const conn = client.endpoint.connect(sim.now, serverAddr);
sim.runUntil(() => client.endpoint.state(conn) === ConnectionState.Connected && serverConn !== 0, 10_000_000);
client.endpoint.configureLanes(conn, [0, 0], [1, 1]);

const enc = new TextEncoder();
const got = { chat: 0, positions: 0, blobBytes: 0 };
const inbox: ReceivedMessage[] = [];
let tick = 0;
let next = sim.now;
const end = sim.now + 20_000_000;
sim.runUntil(() => {
  if (sim.now >= next) {
    next += 50_000; // 20 Hz
    tick++;
    client.endpoint.send(sim.now, conn, enc.encode(`pos ${tick} x=${tick * 0.5}`), SendFlags.Latest);
    if (tick % 10 === 0) client.endpoint.send(sim.now, conn, enc.encode(`chat #${tick / 10}: hello`), SendFlags.Reliable, 0);
    if (tick % 40 === 0) client.endpoint.send(sim.now, conn, new Uint8Array(20_000).fill(tick & 255), SendFlags.Reliable, 1);
    client.endpoint.flush(sim.now, conn);
  }
  receive();
  return sim.now >= end;
}, 21_000_000);
// Traffic stops; give the last reliable messages a moment to arrive.
sim.runUntil(() => (receive(), false), 2_000_000);

function receive(): void {
  inbox.length = 0;
  server.endpoint.receive(serverConn, inbox, 1000);
  for (const m of inbox) {
    if (!m.reliable) got.positions++;
    else if (m.lane === 0) got.chat++;
    else got.blobBytes += m.data.length;
  }
}

console.log(`\nsimulated ${(sim.now / 1e6).toFixed(1)} s at 5% loss, 50 ms each way (seed ${seed})`);
console.log(`sent:      ${tick} position updates (Latest), ${Math.floor(tick / 10)} chat messages (reliable, lane 0), ${Math.floor(tick / 40)} 20 kB blobs (reliable, lane 1)`);
console.log(`delivered: ${got.positions} position updates, ${got.chat} chat messages, ${got.blobBytes / 20_000} blobs`);
const peer = client.endpoint.peerInfo(conn);
if (peer) console.log(`security:  ${peer.cipher}, server identity ${peer.identity} (key ${peer.keyFingerprint}, ${peer.authenticated ? 'authenticated by a trusted authority' : 'unauthenticated: no authority configured'})`);
const st = client.endpoint.status(sim.now, conn);
if (st) {
  console.log('\nclient connection status:');
  for (const [k, v] of Object.entries(st)) console.log(`  ${k.padEnd(26)} ${typeof v === 'number' ? Math.round(v * 1000) / 1000 : v}`);
}
client.endpoint.close(sim.now, conn, 1000, 'demo over', true);
sim.runFor(3_000_000);
