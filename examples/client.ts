// The ValveSockets-CSharp "Start a new client" example, ported to netlane, plus its
// "Create and send a new message" snippet once a second.
//   node dist/examples/client.js [--host ::1] [--port 27015] [--duration seconds]
// In your own code: import { NetworkingSockets, ... } from 'netlane';
import { parseArgs } from 'node:util';
import { ConnectionState, NetworkingSockets, SendFlags, type StatusChangedInfo } from '../src/index.js';

const { values } = parseArgs({ options: { host: { type: 'string', default: '::1' }, port: { type: 'string', default: '27015' }, duration: { type: 'string' } } });

const client = new NetworkingSockets();
// address.SetIPv6("::1", port)
const connection = client.connect({ address: values.host, port: Number(values.port) });
if (connection === 0) throw new Error('bad address');

const status = (info: StatusChangedInfo): void => {
  switch (info.info.state) {
    case ConnectionState.None:
      break;
    case ConnectionState.Connected:
      console.log(`Client connected to server - ID: ${connection}`);
      break;
    case ConnectionState.ClosedByPeer:
      client.closeConnection(connection);
      console.log('Client disconnected from server');
      stop();
      break;
    case ConnectionState.ProblemDetectedLocally:
      client.closeConnection(connection);
      console.log('Client unable to connect');
      stop();
      break;
  }
};

let lastSend = 0;
const loop = setInterval(() => {
  while (client.dispatchCallback(status));
  for (const m of client.receiveMessagesOnConnection(connection, 1) ?? []) {
    console.log(`Message received from server - Channel ID: ${m.channel}, Data length: ${m.size}`);
    m.release();
  }
  if (client.getConnectionInfo(connection)?.state === ConnectionState.Connected && client.time() - lastSend > 1_000_000) {
    lastSend = client.time();
    const data = new Uint8Array(64);
    client.sendMessageToConnection(connection, data, SendFlags.Reliable);
  }
}, 15);

function stop(): void {
  clearInterval(loop);
  client.close();
}
process.once('SIGINT', stop);
if (values.duration) setTimeout(stop, Number(values.duration) * 1000);
