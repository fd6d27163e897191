// KCP (@hazae41/kcp) over node:dgram, as its README wires it: the duplex's inner side to the socket, the
// outer side to the program (web streams).
import dgram from 'node:dgram';
import { WritableStream, type ReadableStream, type WritableStreamDefaultWriter } from 'node:stream/web';
import { HOST, PINGPONG, PORT, SERVER, SIZE, bench, counter, listening, pingpong } from './lib.js';

interface Duplex {
  inner: { readable: ReadableStream<unknown>; writable: WritableStream<unknown> };
  outer: { readable: ReadableStream<{ bytes: Uint8Array }>; writable: WritableStream<unknown> };
}
const { KcpDuplex } = await bench<{ KcpDuplex: new (p: { conversation: number }) => Duplex }>('@hazae41/kcp');
const { Opaque, Writable } = await bench<{ Opaque: new (b: Uint8Array) => unknown; Writable: { writeToBytesOrThrow(w: unknown): Uint8Array } }>('@hazae41/binary');

/** A KCP conversation over `sock` to `port`: returns the writer of messages; `onMessage` gets each one. */
function kcp(sock: dgram.Socket, port: number, onMessage: (m: Uint8Array) => void): WritableStreamDefaultWriter<unknown> {
  const k = new KcpDuplex({ conversation: 12345 });
  const net = k.inner.writable.getWriter();
  sock.on('message', (m) => void net.write(new Opaque(m)));
  void k.inner.readable.pipeTo(new WritableStream({ write: (seg) => sock.send(Writable.writeToBytesOrThrow(seg), port, HOST) }));
  void k.outer.readable.pipeTo(new WritableStream({ write: (m) => onMessage(m.bytes) }));
  return k.outer.writable.getWriter();
}

const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const msg = new Uint8Array(SIZE);
if (SERVER) {
  const count = counter();
  sock.once('message', (first, from) => {
    const w = kcp(sock, from.port, (m) => (PINGPONG ? void w.write(new Opaque(m)) : count()));
    sock.emit('message', first, from);
  });
  sock.bind(0, HOST, () => listening(sock.address().port));
} else {
  sock.bind(0, HOST, async () => {
    let pong = (): void => undefined;
    const w = kcp(sock, PORT, () => pong());
    if (PINGPONG) pong = pingpong(() => void w.write(new Opaque(msg)));
    else {
      // A burst per turn, then the stream's back-pressure.
      const flood = async (): Promise<void> => {
        for (let i = 0; i < 64; i++) void w.write(new Opaque(msg));
        await w.ready;
        setImmediate(flood);
      };
      void flood();
    }
  });
}
