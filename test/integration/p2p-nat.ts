// netlane roles for test/integration/p2p-nat.test.ts, run inside the namespaces of test/support/netns.ts over
// real UDP. Each prints JSON lines on stdout, takes JSON lines on stdin, and exits when its stdin ends (so
// that it never outlives the test process).
//
//   node p2p-nat.js relay PORT ADVERTISE   in pub: an open relay on 0.0.0.0:PORT. Prints {event:'ready',
//       address} (`ADVERTISE:PORT#key`, how the peers name it). {cmd:'stats'} prints {event:'stats',
//       forwarded} (datagrams the relay forwarded between its clients so far).
//   node p2p-nat.js peer NAME RELAY ENABLE   in a home host: a NetworkingMessages peer on the relay, with
//       P2P_Transport_ICE_Enable = ENABLE, accepting every session, running a frame every 5 ms. Prints
//       {event:'ready', identity} once registered. Commands:
//         {cmd:'stream', to, ratePerSec}   sends numbered reliable messages to `to` on channel 1 at that rate
//         {cmd:'info', to, id}             prints {event:'info', id, path, pingDirect, pingRelayed, remoteAddress,
//                                          received, inOrder, sent} (the session with `to`; `received` counts
//                                          messages from anyone on channel 1, `inOrder` whether they came 0, 1, 2...)
import { createInterface } from 'node:readline';
import { NetworkingMessages } from '../../src/api/networking-messages.js';
import { SendFlags } from '../../src/core/types.js';
import { RelayServer } from '../../src/io/relay-server.js';

type Json = Record<string, unknown>;

function out(line: Json): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const FRAME_MS = 5;
const [role, ...rest] = process.argv.slice(2);
const timers: NodeJS.Timeout[] = [];
let stop = (): void => undefined;

process.stdin.on('end', () => {
  for (const t of timers) clearInterval(t);
  stop();
  process.exit(0);
});

function commands(handle: (cmd: Json) => void): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    try {
      handle(JSON.parse(line) as Json);
    } catch (e) {
      out({ event: 'error', message: (e as Error).message });
    }
  });
}

if (role === 'relay') {
  const [port, advertise] = rest;
  const server = await RelayServer.openBound({ open: true, address: '0.0.0.0', port: Number(port) });
  stop = () => server.close();
  const key = server.address.slice(server.address.lastIndexOf('#'));
  out({ event: 'ready', address: `${advertise}:${port}${key}` });
  commands((cmd) => {
    if (cmd['cmd'] === 'stats') out({ event: 'stats', forwarded: server.node.stats.forwardedPackets });
  });
} else if (role === 'peer') {
  const [name, relay, enable] = rest as [string, string, string];
  const peer = new NetworkingMessages({ relays: [relay], connectionConfig: { P2P_Transport_ICE_Enable: Number(enable) } });
  stop = () => peer.close();
  peer.on('sessionRequest', (id) => peer.acceptSessionWithUser(id));
  let received = 0;
  let inOrder = true;
  let sent = 0;
  let readyPrinted = false;
  const streams: { to: bigint; perFrame: number; owed: number }[] = [];
  timers.push(
    setInterval(() => {
      peer.runCallbacks();
      if (!readyPrinted && peer.registered) {
        readyPrinted = true;
        out({ event: 'ready', name, identity: peer.getIdentity().toString() });
      }
      for (const s of streams) {
        s.owed += s.perFrame;
        for (; s.owed >= 1; s.owed--) {
          if (peer.sendMessageToUser(s.to, Buffer.from(String(sent)), SendFlags.Reliable, 1) === 1) sent++;
        }
      }
      for (const m of peer.receiveMessagesOnChannel(1, 256)) {
        if (Number(Buffer.from(m.payload).toString()) !== received) inOrder = false;
        received++;
      }
    }, FRAME_MS),
  );
  commands((cmd) => {
    const to = BigInt(cmd['to'] as string);
    if (cmd['cmd'] === 'stream') streams.push({ to, perFrame: (Number(cmd['ratePerSec']) * FRAME_MS) / 1000, owed: 0 });
    if (cmd['cmd'] === 'info') {
      const i = peer.getSessionConnectionInfo(to, true, true);
      out({ event: 'info', id: cmd['id'], path: i.path, pingDirect: i.pingDirect, pingRelayed: i.pingRelayed, remoteAddress: i.remoteAddress, received, inOrder, sent });
    }
  });
} else {
  out({ event: 'error', message: `unknown role ${role}` });
  process.exit(2);
}
