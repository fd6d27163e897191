// The ValveSockets-CSharp "Start a new server" example, ported to netlane.
//   node dist/examples/server.js [--port 27015] [--duration seconds]
// In your own code: import { NetworkingSockets, ... } from 'netlane';
import { parseArgs } from 'node:util';
import { ConnectionState, NetworkingSockets, type StatusChangedInfo } from '../src/index.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '27015' }, duration: { type: 'string' } } });

const server = new NetworkingSockets();
// address.SetIPv6("::0", port): "::" listens on IPv6 and IPv4.
const listenSocket = server.createListenSocket({ address: '::', port: Number(values.port) });
if (listenSocket === 0) throw new Error(`cannot listen on port ${values.port}`);
console.log(`Listening on port ${server.getListenSocketAddress(listenSocket)?.port}`);

const status = (info: StatusChangedInfo): void => {
  switch (info.info.state) {
    case ConnectionState.None:
      break;
    case ConnectionState.Connecting:
      server.acceptConnection(info.connection);
      break;
    case ConnectionState.Connected:
      console.log(`Client connected - ID: ${info.connection}, IP: ${info.info.addressRemote.address}`);
      break;
    case ConnectionState.ClosedByPeer:
    case ConnectionState.ProblemDetectedLocally:
      server.closeConnection(info.connection);
      console.log(`Client disconnected - ID: ${info.connection}, IP: ${info.info.addressRemote.address}`);
      break;
  }
};

// The C# loop ran until a key was pressed, sleeping 15 ms per turn; in Node the loop is a timer.
const loop = setInterval(() => {
  while (server.dispatchCallback(status));
  const netMessages = server.receiveMessagesOnListenSocket(listenSocket, 1) ?? [];
  for (const m of netMessages) {
    console.log(`Message received from - ID: ${m.connection}, Channel ID: ${m.channel}, Data length: ${m.size}`);
    m.release();
  }
}, 15);

const stop = (): void => {
  clearInterval(loop);
  server.close();
};
process.once('SIGINT', stop);
if (values.duration) setTimeout(stop, Number(values.duration) * 1000);
