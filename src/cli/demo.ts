// `npm start`: a server and a client over real UDP on 127.0.0.1, with fake lag and loss on both sides.
// The client sends reliable "loot" and unreliable "positions" at 20 Hz; the server sends positions back.
// One status line a second, a summary at the end. Then the same through an embedded relay, with the
// Discord-style NetworkManager (relay-demo.ts). Options: demo-options.ts (`netlane demo --help`).
import { ConfigScope, NetworkingSockets, type NetworkingMessage, type StatusChangedInfo } from '../api/index.js';
import { ConnectionState, SendFlags } from '../core/types.js';
import { relayDemo } from './relay-demo.js';
import { readOptions, reportAndExit } from './args.js';
import { DEMO_OPTIONS, DEMO_USAGE, demoSettings } from './demo-options.js';

// `netlane demo ARGS` runs this module with process.argv [node, netlane.js, 'demo', ...ARGS]; `npm start` with [node, demo.js, ...ARGS].
const argv = process.argv.slice(2);
const settings = ((): ReturnType<typeof demoSettings> => {
  try {
    const o = readOptions('demo', argv[0] === 'demo' ? argv.slice(1) : argv, DEMO_OPTIONS);
    if (o === null) {
      console.log(`usage:\n${DEMO_USAGE}`);
      process.exit(0);
    }
    return demoSettings(o);
  } catch (e) {
    return reportAndExit(e, "run 'netlane demo --help'");
  }
})();
const { durationS, lagMs, lossPct } = settings;
const fake = { FakePacketLag_Send: lagMs, FakePacketLoss_Send: lossPct };
const LOOT = 0;
const POSITIONS = 1;

// ---- server
const server = new NetworkingSockets();
const serverConns = new Set<number>();
const group = server.createPollGroup();
const listen = server.createListenSocket('127.0.0.1:0', {
  ...fake,
  Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
    if (info.info.state === ConnectionState.Connecting) {
      server.acceptConnection(info.connection);
    } else if (info.info.state === ConnectionState.Connected) {
      server.setConnectionPollGroup(info.connection, group);
      server.configureConnectionLanes(info.connection, 2, [0, 1]);
      serverConns.add(info.connection);
      console.log(`[server] ${info.info.connectionDescription} connected (${info.info.identityRemote})`);
    } else if (info.info.state === ConnectionState.ClosedByPeer || info.info.state === ConnectionState.ProblemDetectedLocally) {
      console.log(`[server] ${info.info.connectionDescription} closed: ${info.info.endReason} ${info.info.endDebug}`);
      server.closeConnection(info.connection);
      serverConns.delete(info.connection);
    }
  },
});
const port = server.getListenSocketAddress(listen)?.port;
if (!port) throw new Error('cannot open the server socket');

// ---- client
const client = new NetworkingSockets();
const conn = client.connect(`127.0.0.1:${port}`, fake);
client.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.Connection, conn, (info: StatusChangedInfo) => {
  if (info.info.state === ConnectionState.Connected) console.log(`[client] connected to ${info.info.connectionDescription}`);
  else if (info.info.state !== ConnectionState.Connecting) console.log(`[client] connection ended: ${info.info.endReason} ${info.info.endDebug}`);
});
client.configureConnectionLanes(conn, 2, [0, 1]);
console.log(`netlane demo: UDP on 127.0.0.1:${port}, ${lagMs} ms fake lag and ${lossPct}% fake loss on every send, ${durationS} s`);

const enc = new TextEncoder();
const dec = new TextDecoder();
const count = { lootSent: 0, lootGot: 0, lootInOrder: true, posSent: 0, posGot: 0, posBackSent: 0, posBackGot: 0, lastLoot: -1 };
let tick = 0;
const t0 = client.time();

function serverTick(): void {
  server.runCallbacks();
  for (const m of server.receiveMessagesOnPollGroup(group, 256) ?? []) onServerMessage(m);
  for (const c of serverConns) {
    // The world state goes back to each player as an unreliable "latest" update.
    if (server.sendMessageToConnection(c, enc.encode(`world ${tick}`), SendFlags.Latest, POSITIONS).result === 1) count.posBackSent++;
  }
}

function onServerMessage(m: NetworkingMessage): void {
  const text = dec.decode(m.data);
  if (m.lane === LOOT) {
    const n = Number(text.split(' ')[1]);
    if (n !== count.lastLoot + 1) count.lootInOrder = false;
    count.lastLoot = n;
    count.lootGot++;
  } else {
    count.posGot++;
  }
}

function clientTick(): void {
  client.runCallbacks();
  if (client.getConnectionInfo(conn)?.state !== ConnectionState.Connected) return;
  tick++;
  const x = Math.sin(tick / 20).toFixed(3);
  if (client.sendMessageToConnection(conn, enc.encode(`pos ${tick} ${x}`), SendFlags.Latest, POSITIONS).result === 1) count.posSent++;
  if (tick % 4 === 0 && client.sendMessageToConnection(conn, enc.encode(`loot ${count.lootSent} sword+${tick % 7}`), SendFlags.Reliable, LOOT).result === 1) count.lootSent++;
  client.flushMessagesOnConnection(conn);
  count.posBackGot += client.receiveMessagesOnConnection(conn, 256)?.length ?? 0;
}

function statusLine(): void {
  const s = client.getQuickConnectionStatus(conn);
  if (!s) return;
  const q = (v: number): string => (v < 0 ? '  -  ' : `${(v * 100).toFixed(1)}%`);
  const secs = ((client.time() - t0) / 1e6).toFixed(0).padStart(3);
  console.log(
    `${secs}s  ping ${String(s.ping).padStart(3)} ms  quality ${q(s.connectionQualityLocal)}/${q(s.connectionQualityRemote)}  ` +
      `out ${(s.outBytesPerSecond / 1024).toFixed(1)} KB/s ${s.outPacketsPerSecond} pkt/s  in ${(s.inBytesPerSecond / 1024).toFixed(1)} KB/s  ` +
      `pending ${s.pendingReliable}/${s.pendingUnreliable} B  queue ${(s.queueTimeUs / 1000).toFixed(1)} ms  ` +
      `loot ${count.lootGot}/${count.lootSent}  positions ${count.posGot}/${count.posSent}`,
  );
}

const game = setInterval(() => {
  clientTick();
  serverTick();
}, 50);
const status = setInterval(statusLine, 1000);

setTimeout(() => {
  clearInterval(status);
  // Stop sending; give the last loot a few round trips to arrive, then report.
  const drainUntil = client.time() + (2000 + 4 * (2 * lagMs + 50)) * 1000;
  clearInterval(game);
  const drain = setInterval(() => {
    client.runCallbacks();
    serverTick();
    count.posBackGot += client.receiveMessagesOnConnection(conn, 256)?.length ?? 0;
    if (count.lootGot < count.lootSent && client.time() < drainUntil) return;
    clearInterval(drain);
    summary();
  }, 20);
}, durationS * 1000);

function summary(): void {
  console.log('\nsummary');
  console.log(`  loot (reliable, lane 0):        ${count.lootGot}/${count.lootSent} delivered${count.lootInOrder ? ', each once, in order' : ', OUT OF ORDER'}`);
  console.log(`  positions (unreliable, lane 1): ${count.posGot}/${count.posSent} client->server, ${count.posBackGot}/${count.posBackSent} server->client (${lossPct}% fake loss each way)`);
  console.log(`\n${client.getDetailedConnectionStatus(conn) ?? ''}`);
  client.closeConnection(conn, 1000, 'demo over', true);
  setTimeout(() => {
    server.runCallbacks();
    client.close();
    server.close();
    const direct = count.lootGot === count.lootSent && count.lootInOrder;
    relayDemo(settings.relayDurationS, lossPct).then(
      (relayed) => (process.exitCode = direct && relayed ? 0 : 1),
      (e: unknown) => {
        console.error(e);
        process.exitCode = 1;
      },
    );
  }, 300);
}
