// node:net with NODELAY: every message is one write of a fixed size, so the receiver counts bytes.
import net from 'node:net';
import { HOST, PINGPONG, PORT, SERVER, SIZE, counter, listening, pingpong } from './lib.js';

const msg = Buffer.alloc(SIZE);
if (SERVER) {
  const count = counter();
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    let pending = 0;
    s.on('data', (d) => {
      pending += d.length;
      const whole = Math.floor(pending / SIZE);
      pending -= whole * SIZE;
      if (PINGPONG) for (let i = 0; i < whole; i++) s.write(msg);
      else if (whole > 0) count(whole);
    });
  });
  server.listen(0, HOST, () => listening((server.address() as net.AddressInfo).port));
} else {
  const s = net.connect({ host: HOST, port: PORT, noDelay: true }, () => {
    if (PINGPONG) {
      const pong = pingpong(() => s.write(msg));
      let pending = 0;
      s.on('data', (d) => {
        for (pending += d.length; pending >= SIZE; pending -= SIZE) pong();
      });
    } else {
      // write() until it asks to wait, then wait for 'drain'.
      const flood = (): void => {
        while (s.write(msg));
        s.once('drain', flood);
      };
      flood();
    }
  });
}
