// Raw node:dgram: one datagram per message, unreliable. The floor every UDP library stands on.
// Bulk: the bytes of `SIZE` as 1200 B datagrams, counted in bytes.
import dgram from 'node:dgram';
import { BULK_MODE, HOST, PINGPONG, PORT, SERVER, SIZE, counter, listening, pingpong } from './lib.js';

const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const msg = Buffer.alloc(BULK_MODE ? 1200 : SIZE);
if (SERVER) {
  const count = counter();
  sock.on('message', (m, from) => (PINGPONG ? sock.send(m, from.port, from.address) : count(BULK_MODE ? m.length : 1)));
  sock.bind(0, HOST, () => listening(sock.address().port));
} else {
  sock.connect(PORT, HOST, () => {
    if (PINGPONG) sock.on('message', pingpong(() => sock.send(msg)));
    else {
      // As fast as the socket takes them: a burst per event-loop turn.
      const flood = (): void => {
        for (let i = 0; i < 64; i++) sock.send(msg);
        setImmediate(flood);
      };
      flood();
    }
  });
}
