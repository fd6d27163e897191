// ws: binary messages, no compression.
import { HOST, PINGPONG, PORT, SERVER, SIZE, bench, counter, listening, pingpong } from './lib.js';

interface Ws {
  send(d: Buffer): void;
  on(ev: string, fn: (m: Buffer) => void): void;
  bufferedAmount: number;
}
const { WebSocket, WebSocketServer } = await bench<{
  WebSocket: new (url: string, o: object) => Ws;
  WebSocketServer: new (o: object, ready: () => void) => { on(ev: 'connection', fn: (ws: Ws) => void): void; address(): { port: number } };
}>('ws');
const msg = Buffer.alloc(SIZE);
if (SERVER) {
  const count = counter();
  const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false }, () => listening(wss.address().port));
  wss.on('connection', (ws) => ws.on('message', (m) => (PINGPONG ? ws.send(m) : count())));
} else {
  const ws = new WebSocket(`ws://${HOST}:${PORT}`, { perMessageDeflate: false });
  ws.on('open', () => {
    if (PINGPONG) ws.on('message', pingpong(() => ws.send(msg)));
    else {
      // Send while less than 1 MiB is buffered; look again next turn.
      const flood = (): void => {
        while (ws.bufferedAmount < 1 << 20) ws.send(msg);
        setImmediate(flood);
      };
      flood();
    }
  });
}
