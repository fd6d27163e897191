// The server of test/integration/migration.test.ts, run as a child process: a NetworkingSockets listen
// socket on 127.0.0.1 (a free port, printed as `port N`) with TimeoutConnected and KeepaliveInterval (ms)
// from argv. It accepts every connection and echoes each message back with the client's port as the
// connection's info shows it now appended (2 bytes, big-endian), and prints each status change as
// `state S reason R`. It exits when its stdin closes (the test ended) or after 60 s.
import { ConnectionState, NetworkingSockets, SendFlags, type StatusChangedInfo } from '../../src/index.js';

const [timeoutMs, keepaliveMs] = process.argv.slice(2).map(Number);
const sockets = new NetworkingSockets({ keepProcessAlive: true });
const conns = new Set<number>();
const listen = sockets.createListenSocket('[127.0.0.1]:0', {
  TimeoutConnected: timeoutMs ?? 10_000,
  KeepaliveInterval: keepaliveMs ?? 2000,
  Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
    console.log(`state ${info.info.state} reason ${info.info.endReason}`);
    if (info.info.state === ConnectionState.Connecting) {
      sockets.acceptConnection(info.connection);
      conns.add(info.connection);
    }
  },
});
const address = sockets.getListenSocketAddress(listen);
if (!address) throw new Error('no listen socket');
console.log(`port ${address.port}`);

const loop = setInterval(() => {
  sockets.runCallbacks();
  for (const conn of conns) {
    const port = sockets.getConnectionInfo(conn)?.addressRemote.port ?? 0;
    for (const m of sockets.receiveMessagesOnConnection(conn, 256) ?? []) {
      const echo = new Uint8Array(m.data.length + 2);
      echo.set(m.data);
      new DataView(echo.buffer).setUint16(m.data.length, port);
      sockets.sendMessageToConnection(conn, echo, SendFlags.Reliable);
    }
  }
}, 1);
const stop = (): void => {
  clearInterval(loop);
  sockets.close();
  process.exit(0);
};
process.stdin.on('end', stop).resume();
setTimeout(stop, 60_000).unref();
