// A first real-UDP measurement: 100-byte reliable messages through a NetworkingSockets socket pair
// (UDP on 127.0.0.1, encrypted), against raw node:dgram sending one datagram per message in the same
// process and the same run. Both ends share one thread, as both raw sockets do. Issue 7 builds the full
// comparative suite (separate processes, TCP, other libraries).
//   npm run bench:udp
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { NetworkingSockets, SendFlags } from '../src/index.js';

const N = 200_000;
const MSG = 100;

async function rawDgram(): Promise<number> {
  const a = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  const b = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((r) => a.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => b.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => b.connect(a.address().port, '127.0.0.1', () => r()));
  const buf = Buffer.alloc(MSG);
  let got = 0;
  let sent = 0;
  let inflight = 0;
  a.on('message', () => void got++);
  const t0 = performance.now();
  // Flow control so that the kernel never drops: at most 64 sends in flight and 2000 datagrams unread.
  await new Promise<void>((resolve) => {
    const step = (): void => {
      while (inflight < 64 && sent < N && sent - got < 2000) {
        inflight++;
        sent++;
        b.send(buf, () => void inflight--);
      }
      if (got < N && performance.now() - t0 < 20_000) setImmediate(step);
      else resolve();
    };
    step();
  });
  const dt = (performance.now() - t0) / 1000;
  a.close();
  b.close();
  return got / dt;
}

async function netlanePair(useNetworkLoopback: boolean): Promise<number> {
  const s = new NetworkingSockets({ keepProcessAlive: true });
  const pair = s.createSocketPair(useNetworkLoopback);
  if (!pair) throw new Error('no socket pair');
  const [a, b] = pair;
  const msg = new Uint8Array(MSG);
  let sent = 0;
  let got = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const step = (): void => {
      for (let i = 0; i < 2000 && sent < N; i++) {
        if (s.sendMessageToConnection(a, msg, SendFlags.Reliable).result !== 1) break; // LimitExceeded: wait
        sent++;
      }
      got += s.receiveMessagesOnConnection(b, 10_000)?.length ?? 0;
      if (got < N && performance.now() - t0 < 20_000) setImmediate(step);
      else resolve();
    };
    step();
  });
  const dt = (performance.now() - t0) / 1000;
  s.close();
  return got / dt;
}

const raw = await rawDgram();
const udp = await netlanePair(true);
const mem = await netlanePair(false);
const f = (x: number): string => Math.round(x).toLocaleString('en-US');
console.log(`${N.toLocaleString('en-US')} messages of ${MSG} B, one process`);
console.log(`raw dgram, one datagram per message:          ${f(raw)} msg/s (baseline)`);
console.log(`netlane reliable, socket pair over UDP:       ${f(udp)} msg/s (${(udp / raw).toFixed(2)}x baseline)`);
console.log(`netlane reliable, in-memory socket pair:      ${f(mem)} msg/s (${(mem / raw).toFixed(2)}x baseline)`);
