// netlane: NetworkingSockets (README.md, docs/PORTING.md) receiving on `onReadable`; reliable messages
// sent with ReliableNoNagle (ping-pong) or Reliable and a flush per burst (flood). Bulk: as docs/RUNTIME.md
// "Writable again" tells a bulk sender: send until LimitExceeded, flush, and go on at `onWritable`.
import { ConnectionState, NetworkingSockets, Result, SendFlags, type StatusChangedInfo } from '../../src/index.js';
import { BULK_MODE, HOST, PINGPONG, PORT, SERVER, SIZE, counter, listening, pingpong } from './lib.js';

let onMessage: (conn: number, data: Uint8Array) => void = () => undefined;
let onWritable: (conn: number) => void = () => undefined;
const sockets = new NetworkingSockets({
  keepProcessAlive: true,
  onWritable: (conn) => onWritable(conn),
  onReadable: (conn) => {
    for (let got = 64; got === 64; ) {
      const msgs = sockets.receiveMessagesOnConnection(conn, 64) ?? [];
      for (const m of msgs) onMessage(conn, m.data);
      got = msgs.length;
    }
  },
});
// The game loop of README.md, until connected: status changes arrive in runCallbacks().
const loop = setInterval(() => sockets.runCallbacks(), 1);
const msg = new Uint8Array(SIZE);
if (SERVER) {
  const count = counter();
  onMessage = (conn, data) => (PINGPONG ? sockets.sendMessageToConnection(conn, data, SendFlags.ReliableNoNagle) : count(BULK_MODE ? data.length : 1));
  const listen = sockets.createListenSocket(`${HOST}:0`, {
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      if (info.info.state === ConnectionState.Connecting) sockets.acceptConnection(info.connection);
      if (info.info.state === ConnectionState.Connected) clearInterval(loop);
    },
  });
  listening(sockets.getListenSocketAddress(listen)?.port ?? 0);
} else {
  const conn = sockets.connect(`${HOST}:${PORT}`, {
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      if (info.info.state !== ConnectionState.Connected) return;
      clearInterval(loop);
      if (PINGPONG) {
        const pong = pingpong(() => sockets.sendMessageToConnection(conn, msg, SendFlags.ReliableNoNagle));
        onMessage = pong;
        return;
      }
      if (BULK_MODE) {
        const fill = (): void => {
          while (sockets.sendMessageToConnection(conn, msg, SendFlags.Reliable).result === Result.OK);
          sockets.flushMessagesOnConnection(conn);
        };
        onWritable = fill;
        fill();
        return;
      }
      // Send until the send buffer is full (LimitExceeded), flush, and go on next turn.
      const flood = (): void => {
        while (sockets.sendMessageToConnection(conn, msg, SendFlags.Reliable).result === Result.OK);
        sockets.flushMessagesOnConnection(conn);
        setImmediate(flood);
      };
      flood();
    },
  });
}
