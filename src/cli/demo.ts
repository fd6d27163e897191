// `npm start` (and `netlane demo`): over real UDP on 127.0.0.1, with fake lag and loss on every send,
//  - direct: a game server and a client (NetworkingSockets); the client sends unreliable positions at 20 Hz and
//    reliable loot, the server sends the world state back;
//  - relayed: two peers, alice and bob (the Discord-style NetworkManager), connected through two embedded
//    relays; alice sends loot and positions to bob, bob sends positions back. Halfway through, the relay carrying them is killed (or
//    drained, --failover drain) and the connection moves to the other relay, with no reliable message lost.
// Once a second the status is redrawn in place on a terminal (plain lines when stdout is not a TTY, or with
// --plain); --watch draws the net graph of both connections instead (src/cli/netgraph.ts). A summary ends it,
// and the exit code says whether every reliable message arrived, once and in order, and the failover happened.
// Options: demo-options.ts (`netlane demo --help`): --duration S (10), --lag MS (40), --loss PCT (5),
// --failover kill|drain, --watch, --plain.
import { ConfigScope, NetworkingSockets, type NetworkingMessage, type StatusChangedInfo } from '../api/index.js';
import { NetworkManager } from '../api/network-manager.js';
import { ConnectionState, SendFlags, type SocketAddress } from '../core/types.js';
import { RelayServer } from '../io/relay-server.js';
import { addressKey } from '../relay/protocol.js';
import { readOptions, reportAndExit } from './args.js';
import { DEMO_OPTIONS, DEMO_USAGE, demoSettings } from './demo-options.js';
import { FrameWriter, NetGraphHistory, rate, renderNetGraph, type StatsConnection } from './netgraph.js';

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
const { durationS, lagMs, lossPct, failoverMode, watch, plain } = settings;
const fake = { FakePacketLag_Send: lagMs, FakePacketLoss_Send: lossPct };
const TICK_MS = 50;
const LOOT = 0;
const POSITIONS = 1;
/** NetworkManager channels: positions unreliable, loot reliable. */
const CH_POS = 0;
const CH_LOOT = 1;

const tty = !plain && process.stdout.isTTY === true;
const screen = new FrameWriter(tty);
const write = (s: string): void => void process.stdout.write(s);
const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let t0 = performance.now();
const secs = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
const event = (text: string): void => write(screen.above(`${secs().padStart(6)}  ${text}`));

/** Reliable messages received: every one once and in order (each carries its sequence number). */
class Loot {
  sent = 0;
  got = 0;
  inOrder = true;
  next(n: number): void {
    if (n !== this.got) this.inOrder = false;
    this.got++;
  }
  get complete(): boolean {
    return this.got === this.sent && this.inOrder;
  }
  line(what: string): string {
    return `  ${what}, loot (reliable): ${this.got}/${this.sent} delivered${this.inOrder ? ', each once, in order' : ', OUT OF ORDER'}`;
  }
}

// ---- direct: server and client
const server = new NetworkingSockets();
const serverConns = new Set<number>();
const group = server.createPollGroup();
const listen = server.createListenSocket('127.0.0.1:0', {
  ...fake,
  Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
    const st = info.info.state;
    if (st === ConnectionState.Connecting) server.acceptConnection(info.connection);
    else if (st === ConnectionState.Connected) {
      server.setConnectionPollGroup(info.connection, group);
      server.configureConnectionLanes(info.connection, 2, [0, 1]);
      serverConns.add(info.connection);
      event(`[server] ${info.info.connectionDescription} connected`);
    } else if (st === ConnectionState.ClosedByPeer || st === ConnectionState.ProblemDetectedLocally) {
      server.closeConnection(info.connection);
      serverConns.delete(info.connection);
    }
  },
});
if (listen === 0) throw new Error('cannot open the server socket');
// The port is known once the socket is bound: at once under Node and Deno, a moment later under Bun.
const { port } = await server.listenSocketBound(listen);
const client = new NetworkingSockets();
const conn = client.connect(`127.0.0.1:${port}`, fake);
client.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.Connection, conn, (info: StatusChangedInfo) => {
  if (info.info.state === ConnectionState.Connected) event(`[client] connected to ${info.info.connectionDescription}`);
  else if (info.info.state !== ConnectionState.Connecting) event(`[client] connection ended: ${info.info.endReason} ${info.info.endDebug}`);
});
client.configureConnectionLanes(conn, 2, [0, 1]);
const direct = { loot: new Loot(), posSent: 0, posGot: 0, backSent: 0, backGot: 0 };

// ---- relayed: two relays, alice and bob
const relayServers = [await RelayServer.openBound({ open: true }), await RelayServer.openBound({ open: true })];
const relayName = (a: SocketAddress | null): string => {
  const i = a ? relayServers.findIndex((r) => r.local.port === a.port) : -1;
  return i < 0 ? 'none' : `relay ${'AB'[i] ?? '?'}`;
};
const relays = relayServers.map((r) => r.address);
const seen = new Set<string>();
const alice = new NetworkManager({ relays, connectionConfig: fake, relayOptions: { tap: (_d, from) => seen.add(addressKey(from)) } });
const bob = new NetworkManager({ relays, connectionConfig: fake, relayOptions: { tap: (_d, from) => seen.add(addressKey(from)) } });
const relayed = { loot: new Loot(), posSent: 0, posGot: 0, backSent: 0, backGot: 0 };
alice.on('message', () => relayed.backGot++);
bob.on('message', (_peer, ch, data) => {
  if (ch === CH_LOOT) relayed.loot.next(((data[0] ?? 0) << 8) | (data[1] ?? 0));
  else relayed.posGot++;
});
write(
  `netlane demo: ${durationS} s over UDP on 127.0.0.1, ${lagMs} ms fake lag and ${lossPct}% fake loss on every send\n` +
    `  direct: a server on port ${port} and a client (NetworkingSockets)\n` +
    `  relayed: alice and bob (NetworkManager) through relay A (${addressKey(relayServers[0]?.local ?? { address: '', port: 0 })}) and relay B (${addressKey(relayServers[1]?.local ?? { address: '', port: 0 })}); the relay carrying them is ${failoverMode === 'kill' ? 'killed' : 'drained'} at ${(durationS / 2).toFixed(1)} s\n\n`,
);
for (let i = 0; i < 500 && (alice.route === null || bob.route === null); i++) {
  alice.runCallbacks();
  bob.runCallbacks();
  await sleep(10);
}
if (alice.route === null || bob.route === null) throw new Error('the relays gave no route');
alice.openPeer(bob.getPeerId(), bob.route);
bob.openPeer(alice.getPeerId(), alice.route);
for (const [me, other] of [[alice, bob], [bob, alice]] as const) {
  me.openChannel(other.getPeerId(), CH_POS, false);
  me.openChannel(other.getPeerId(), CH_LOOT, true);
}

// ---- the game loop, one timer: a tick every 50 ms, the status every second
let tick = 0;
const failover = { at: 0, from: null as SocketAddress | null, to: null as SocketAddress | null, movedMs: -1, lootAtKill: 0, resumedMs: -1 };
let path: SocketAddress | null = null;
const history = new NetGraphHistory();

function gameTick(send: boolean): void {
  client.runCallbacks();
  server.runCallbacks();
  for (const m of server.receiveMessagesOnPollGroup(group, 256) ?? []) onServerMessage(m);
  for (const c of serverConns) if (send && server.sendMessageToConnection(c, enc.encode(`world ${tick}`), SendFlags.Latest, POSITIONS).result === 1) direct.backSent++;
  direct.backGot += client.receiveMessagesOnConnection(conn, 256)?.length ?? 0;
  const connected = client.getConnectionInfo(conn)?.state === ConnectionState.Connected;
  if (send && connected) {
    if (client.sendMessageToConnection(conn, enc.encode(`pos ${tick} ${Math.sin(tick / 20).toFixed(3)}`), SendFlags.Latest, POSITIONS).result === 1) direct.posSent++;
    if (tick % 4 === 0 && client.sendMessageToConnection(conn, enc.encode(`loot ${direct.loot.sent} sword+${tick % 7}`), SendFlags.Reliable, LOOT).result === 1) direct.loot.sent++;
  }
  client.flushMessagesOnConnection(conn);

  const peer = bob.getPeerId();
  if (send && alice.peerStatus(peer)?.connected === true) {
    if (alice.sendMessage(peer, CH_POS, new Uint8Array(24)) === 0) relayed.posSent++;
    const n = relayed.loot.sent;
    if (tick % 4 === 0 && alice.sendMessage(peer, CH_LOOT, Uint8Array.of(n >> 8, n & 0xff, 7, 7)) === 0) relayed.loot.sent++;
  }
  // bob's own position goes back to alice, unreliable.
  if (send && bob.peerStatus(alice.getPeerId())?.connected === true && bob.sendMessage(alice.getPeerId(), CH_POS, new Uint8Array(24)) === 0) relayed.backSent++;
  for (const nm of [alice, bob]) {
    nm.runCallbacks();
    nm.flush();
  }
  watchPath();
}

function onServerMessage(m: NetworkingMessage): void {
  if (m.lane === LOOT) direct.loot.next(Number(dec.decode(m.data).split(' ')[1]));
  else direct.posGot++;
}

/** Follows the relay alice's connection to bob goes through, and reports when it moves. */
function watchPath(): void {
  const now = alice.peerStatus(bob.getPeerId())?.relay ?? null;
  if (failover.at > 0 && failover.resumedMs < 0 && relayed.loot.got > failover.lootAtKill) failover.resumedMs = performance.now() - failover.at;
  if (now === null || (path !== null && addressKey(now) === addressKey(path))) return;
  if (path === null) event(`[alice] connected to bob through ${relayName(now)}`);
  else {
    event(`[alice] the connection to bob moved from ${relayName(path)} to ${relayName(now)}`);
    if (failover.at > 0 && failover.movedMs < 0) {
      failover.movedMs = performance.now() - failover.at;
      failover.to = now;
    }
  }
  path = now;
}

function failOver(): void {
  const victim = relayServers.find((r) => path !== null && r.local.port === path.port);
  if (!victim) {
    event('[demo] no relay carries alice and bob yet: no failover');
    return;
  }
  failover.at = performance.now();
  failover.from = path;
  failover.lootAtKill = relayed.loot.got;
  if (failoverMode === 'kill') {
    event(`[demo] ${relayName(path)} killed: it carried alice and bob (${victim.node.sessionCount} sessions)`);
    victim.close();
  } else {
    event(`[demo] ${relayName(path)} drains: its clients are told to leave within 5 s`);
    victim.drain(5, () => event(`[demo] ${relayName(victim.local)} drained`));
  }
}

const q = (v: number): string => (v < 0 ? '  -  ' : `${(v * 100).toFixed(1)}%`);

function snapshotConnections(): StatsConnection[] {
  const out: StatsConnection[] = [];
  const d = client.getConnectionRealTimeStatus(conn, 2);
  if (d.status) {
    const s = d.status;
    out.push({ id: 'direct', name: `direct  client -> server :${port}`, pingMs: s.ping, qualityLocal: s.connectionQualityLocal, qualityRemote: s.connectionQualityRemote, outBytesPerSec: s.outBytesPerSecond, inBytesPerSec: s.inBytesPerSecond, outPacketsPerSec: s.outPacketsPerSecond, inPacketsPerSec: s.inPacketsPerSecond, queuedBytesPerLane: d.lanes.map((l) => l.pendingReliable + l.pendingUnreliable), state: 'Connected' });
  }
  const r = alice.peerRealTimeStatus(bob.getPeerId(), [CH_POS, CH_LOOT]);
  if (r) {
    const s = r.status;
    out.push({ id: 'relayed', name: `relayed alice -> bob via ${relayName(path)}`, pingMs: s.ping, qualityLocal: s.connectionQualityLocal, qualityRemote: s.connectionQualityRemote, outBytesPerSec: s.outBytesPerSec, inBytesPerSec: s.inBytesPerSec, outPacketsPerSec: s.outPacketsPerSec, inPacketsPerSec: s.inPacketsPerSec, queuedBytesPerLane: r.queuedBytesPerChannel, state: alice.peerStatus(bob.getPeerId())?.connected ? 'Connected' : 'Reconnecting' });
  }
  return out;
}

function relaysLine(): string {
  return `relays    ${relayServers.map((r, i) => `${'AB'[i] ?? '?'}: ${r.local.port === failover.from?.port && failoverMode === 'kill' ? 'killed' : `${r.node.sessionCount} sessions, ${r.node.stats.forwardedPackets} forwarded`}`).join('   ')}`;
}

function statusFrame(): string[] {
  const head = `netlane demo ${secs().padStart(6)} / ${durationS} s   ${lagMs} ms fake lag, ${lossPct}% fake loss`;
  const conns = snapshotConnections();
  if (watch) {
    const snap = { kind: 'server' as const, unixMs: Date.now(), connections: conns, totals: {} };
    history.add(snap);
    return [head, ...renderNetGraph(snap, history, { title: 'net graph', ...(tty && process.stdout.columns ? { width: process.stdout.columns } : {}) }), relaysLine()];
  }
  const line = (label: string, c: StatsConnection | undefined, counts: string): string =>
    c
      ? `${label} ping ${String(Math.round(c.pingMs)).padStart(4)} ms  quality ${q(c.qualityLocal)}/${q(c.qualityRemote)}  out ${rate(c.outBytesPerSec).padStart(10)}  in ${rate(c.inBytesPerSec).padStart(10)}  ${counts}`
      : `${label} (connecting)  ${counts}`;
  return [
    head,
    line('direct   ', conns.find((c) => c.id === 'direct'), `loot ${direct.loot.got}/${direct.loot.sent}  positions ${direct.posGot}/${direct.posSent}`),
    line(`relayed  `, conns.find((c) => c.id === 'relayed'), `loot ${relayed.loot.got}/${relayed.loot.sent}  positions ${relayed.posGot}/${relayed.posSent}  via ${relayName(path)}`),
    relaysLine(),
  ];
}

const ticksPerSecond = 1000 / TICK_MS;
const endTick = Math.round(durationS * ticksPerSecond);
const failTick = Math.round(endTick / 2);
// After the last tick: a few round trips (and a failover still under way) for the last loot to arrive.
const drainTicks = Math.round((5000 + 8 * (2 * lagMs + 50)) / TICK_MS);
t0 = performance.now(); // the clock of the run: the failover comes at half of --duration
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    tick++;
    const sending = tick <= endTick;
    gameTick(sending);
    if (tick === failTick) failOver();
    if (sending && tick % ticksPerSecond === 0) write(screen.frame(statusFrame()));
    const settled = direct.loot.got >= direct.loot.sent && relayed.loot.got >= relayed.loot.sent && (failover.at === 0 || failover.movedMs >= 0);
    if (!sending && (settled || tick > endTick + drainTicks)) {
      clearInterval(timer);
      resolve();
    }
  }, TICK_MS);
});
write(screen.frame(statusFrame()));

const movedOk = failover.at > 0 && failover.movedMs >= 0;
write('\nsummary\n');
write(`${direct.loot.line('direct')}\n`);
write(`  direct, positions (unreliable): ${direct.posGot}/${direct.posSent} client->server, ${direct.backGot}/${direct.backSent} server->client\n`);
write(`${relayed.loot.line('relayed')}\n`);
write(`  relayed, positions (unreliable): ${relayed.posGot}/${relayed.posSent} alice->bob, ${relayed.backGot}/${relayed.backSent} bob->alice (the failover's gap included)\n`);
write(
  movedOk
    ? `  failover: the route moved from ${relayName(failover.from)} to ${relayName(failover.to)} ${(failover.movedMs / 1000).toFixed(1)} s after ${relayName(failover.from)} was ${failoverMode === 'kill' ? 'killed' : 'told to drain'}; loot flowed again after ${(failover.resumedMs / 1000).toFixed(1)} s; ${relayed.loot.complete ? 'no reliable message lost' : 'RELIABLE MESSAGES MISSING'}\n`
    : `  failover: DID NOT HAPPEN (the connection stayed on ${relayName(path)})\n`,
);
write(`  alice and bob received datagrams only from ${[...seen].map((a) => relayName({ address: '', port: Number(a.split(':').pop()) })).filter((v, i, all) => all.indexOf(v) === i).join(' and ')}: neither learned the other's address\n`);
write(`\n${client.getDetailedConnectionStatus(conn) ?? ''}\n`);
client.closeConnection(conn, 1000, 'demo over', true);
for (let i = 0; i < 10; i++) {
  server.runCallbacks();
  await sleep(20);
}
client.close();
server.close();
alice.close();
bob.close();
for (const r of relayServers) r.close();
process.exitCode = direct.loot.complete && relayed.loot.complete && movedOk ? 0 : 1;
