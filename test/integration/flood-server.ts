// A child process for test/integration/flood.test.ts: a NetworkingSockets listen socket that accepts every
// connection (`sockets`), or a relay (`relay`), on 127.0.0.1, with the event loop's delay measured by
// perf_hooks.monitorEventLoopDelay. It prints `{"port":N}` once listening, then answers each `report` on stdin
// with what happened since the last one: `{"maxDelayMs","p99DelayMs","maxGcMs","cpuMs","kernelDrops","stats"}`
// (the kernel's drops on the socket and the stats count from the start).
import { readFileSync } from 'node:fs';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { ConnectionState, NetworkingSockets, RelayServer, type StatusChangedInfo } from '../../src/index.js';

/** The server's game loop, ms: status callbacks (and so accepts) run this often (the seed's server sleeps 15 ms a turn). */
const FRAME_MS = 15;
/** Sampling period of the delay histogram, ms: a stall longer than this shows in full. */
const DELAY_RESOLUTION_MS = 1;

const mode = process.argv[2] ?? 'sockets';
const delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
delay.enable();
/** The longest garbage collection since the last reset, ms (a stall the event loop cannot avoid). */
let maxGcMs = 0;
let cpu = process.cpuUsage();
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) maxGcMs = Math.max(maxGcMs, e.duration);
}).observe({ entryTypes: ['gc'] });

let port: number;
let key = '';
let stats: () => unknown;
if (mode === 'relay') {
  // Every legitimate client of the test comes from 127.0.0.1: no cap on sessions per address or network.
  const relay = RelayServer.open({ open: true, address: '127.0.0.1', port: 0, keepProcessAlive: true, openSessionsPerAddress: 1_000_000, openSessionsPerNetwork: 1_000_000 });
  port = relay.local.port;
  key = relay.address;
  stats = () => {
    const st = relay.node.stats;
    return { received: st.datagramsIn, pongs: st.pings, cookieRefused: st.cookieRefused, sessionsOpened: st.sessionsOpened, malformed: st.malformed, shed: relay.admission.stats.shed, sendErrors: relay.sendErrors };
  };
} else {
  const sockets = new NetworkingSockets({ keepProcessAlive: true });
  const listen = sockets.createListenSocket('127.0.0.1:0', {
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      if (info.info.state === ConnectionState.Connecting) sockets.acceptConnection(info.connection);
      else if (info.info.state === ConnectionState.ClosedByPeer || info.info.state === ConnectionState.ProblemDetectedLocally) sockets.closeConnection(info.connection, 0, '', false);
    },
  });
  port = sockets.getListenSocketAddress(listen)?.port ?? 0;
  setInterval(() => sockets.runCallbacks(), FRAME_MS);
  stats = () => {
    const st = sockets.getSocketStats(listen);
    return st && { received: st.datagramsReceived, refused: st.handshakeRefused, replies: st.statelessRepliesSent, shed: st.datagramsShed, sendErrors: st.sendErrors };
  };
}

/** Datagrams the kernel dropped on our socket (its receive buffer was full): the drops column of /proc/net/udp. */
function kernelDrops(): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local) return Number(f[f.length - 1]);
  }
  return -1;
}

const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'report') return;
  const u = process.cpuUsage(cpu);
  console.log(JSON.stringify({ maxDelayMs: ms(delay.max), p99DelayMs: ms(delay.percentile(99)), maxGcMs: Math.round(maxGcMs * 100) / 100, cpuMs: Math.round((u.user + u.system) / 1000), kernelDrops: kernelDrops(), stats: stats() }));
  delay.reset();
  maxGcMs = 0;
  cpu = process.cpuUsage();
}).on('close', () => process.exit(0));
console.log(JSON.stringify({ port, key }));
