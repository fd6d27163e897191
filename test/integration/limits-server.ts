// A NetworkingSockets server in its own process for test/integration/limits.test.ts: a dual stack listen
// socket on [::]:0 with the default limits, accepting every connection and closing those that end, run by
// a game loop (runCallbacks every 2 ms). Prints `LISTENING <port>`; answers each `STATS` line on stdin
// with `STATS <json>` (the listen socket's counters and how many connections it accepted); exits when
// stdin closes.
import { createInterface } from 'node:readline';
import { ConnectionState, NetworkingSockets, type StatusChangedInfo } from '../../src/index.js';

const sockets = new NetworkingSockets();
let accepted = 0;
const listen = sockets.createListenSocket('[::]:0', {
  Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
    const state = info.info.state;
    if (state === ConnectionState.Connecting && sockets.acceptConnection(info.connection) === 1) accepted++;
    else if (state === ConnectionState.ClosedByPeer || state === ConnectionState.ProblemDetectedLocally) sockets.closeConnection(info.connection);
  },
});
const address = sockets.getListenSocketAddress(listen);
if (!address) throw new Error('no listen socket');
const loop = setInterval(() => sockets.runCallbacks(), 2);
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line === 'STATS') process.stdout.write(`STATS ${JSON.stringify({ ...sockets.getSocketStats(listen), accepted })}\n`);
  })
  .on('close', () => {
    clearInterval(loop);
    sockets.close();
  });
process.stdout.write(`LISTENING ${address.port}\n`);
