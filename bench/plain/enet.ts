// ENet (the `enet` package: ENet 1.3 compiled to JavaScript), reliable packets on channel 0.
// Its tutorial polls the host with host.start(ms); to answer within microseconds instead of a poll
// interval, the host is serviced as soon as its socket has a datagram (host._service, what start() calls).
import { HOST, PINGPONG, PORT, SERVER, SIZE, bench, counter, listening, pingpong } from './lib.js';

interface Packet {
  data(): Buffer;
}
interface Peer {
  send(ch: number, p: unknown, sent?: (err?: unknown) => void): boolean;
  on(ev: 'message', fn: (p: Packet) => void): void;
}
interface Host {
  on(ev: 'connect', fn: (peer: Peer) => void): void;
  connect(a: object, channels: number, data: number, cb: (err: unknown, peer: Peer) => void): void;
  address(): { port: number };
  flush(): void;
  _service(): void;
  _socket: { on(ev: 'message', fn: () => void): void };
}
const enet = await bench<{
  createServer(o: object, cb: (err: unknown, h: Host) => void): void;
  createClient(o: object, cb: (err: unknown, h: Host) => void): void;
  Packet: new (b: Buffer, flags: number) => unknown;
  PACKET_FLAG: { RELIABLE: number };
}>('enet');
const msg = Buffer.alloc(SIZE);
const packet = (): unknown => new enet.Packet(msg, enet.PACKET_FLAG.RELIABLE);
const serviced = (h: Host): Host => {
  h._socket.on('message', () => setImmediate(() => h._service()));
  return h;
};
if (SERVER) {
  const count = counter();
  enet.createServer({ address: { address: HOST, port: 0 }, peers: 32, channels: 1, down: 0, up: 0 }, (_e, h) => {
    serviced(h).on('connect', (peer) =>
      peer.on('message', (p) => {
        if (!PINGPONG) return count();
        peer.send(0, new enet.Packet(p.data(), enet.PACKET_FLAG.RELIABLE));
        h.flush();
      }),
    );
    listening(h.address().port);
  });
} else {
  enet.createClient({ peers: 1, channels: 1, down: 0, up: 0 }, (_e, h) =>
    serviced(h).connect({ address: HOST, port: PORT }, 1, 0, (_err, peer) => {
      if (PINGPONG) {
        peer.on('message', pingpong(() => (peer.send(0, packet()), h.flush())));
        return;
      }
      // No send buffer limit in ENet: keep 4096 packets unacknowledged at most, learnt from the send
      // callback (called when the peer has acknowledged a reliable packet) of every 256th; 64 a turn.
      let sent = 0;
      let acked = 0;
      const flood = (): void => {
        for (let i = 0; i < 64 && sent - acked < 4096; i++) {
          const n = ++sent;
          peer.send(0, packet(), n % 256 === 0 ? () => void (acked = Math.max(acked, n)) : undefined);
        }
        h.flush();
        setImmediate(flood);
      };
      flood();
    }),
  );
}
