// Raw node:dgram: one datagram per message, unreliable. The floor every UDP library stands on.
import dgram from 'node:dgram';
import { HOST, PINGPONG, PORT, SERVER, SIZE, counter, listening, pingpong } from './lib.js';

const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const msg = Buffer.alloc(SIZE);
if (SERVER) {
  const count = counter();
  sock.on('message', (m, from) => (PINGPONG ? sock.send(m, from.port, from.address) : count()));
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
