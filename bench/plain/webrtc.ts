// WebRTC data channels (node-datachannel): an ordered reliable channel, signalled over a TCP socket
// (one JSON message a line), as its README wires two peer connections.
import net from 'node:net';
import { HOST, PINGPONG, PORT, SERVER, SIZE, bench, counter, listening, pingpong } from './lib.js';

interface Channel {
  sendMessageBinary(b: Uint8Array): boolean;
  onOpen(cb: () => void): void;
  onMessage(cb: (m: Buffer | string) => void): void;
  bufferedAmount(): number;
  setBufferedAmountLowThreshold(n: number): void;
  onBufferedAmountLow(cb: () => void): void;
}
interface Pc {
  setRemoteDescription(sdp: string, type: string): void;
  addRemoteCandidate(c: string, mid: string): void;
  onLocalDescription(cb: (sdp: string, type: string) => void): void;
  onLocalCandidate(cb: (c: string, mid: string) => void): void;
  onDataChannel(cb: (dc: Channel) => void): void;
  createDataChannel(label: string): Channel;
}
const { PeerConnection } = await bench<{ PeerConnection: new (name: string, o: object) => Pc }>('node-datachannel');

function peer(sock: net.Socket): Pc {
  const pc = new PeerConnection(SERVER ? 'server' : 'client', { iceServers: [], bindAddress: HOST });
  const send = (m: object): boolean => sock.write(`${JSON.stringify(m)}\n`);
  pc.onLocalDescription((sdp, type) => send({ sdp, type }));
  pc.onLocalCandidate((candidate, mid) => send({ candidate, mid }));
  let buf = '';
  sock.setEncoding('utf8').on('data', (d: string) => {
    const lines = (buf += d).split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const m = JSON.parse(l) as { sdp?: string; type?: string; candidate?: string; mid?: string };
      if (m.sdp && m.type) pc.setRemoteDescription(m.sdp, m.type);
      else if (m.candidate !== undefined && m.mid !== undefined) pc.addRemoteCandidate(m.candidate, m.mid);
    }
  });
  sock.on('error', () => undefined);
  return pc;
}

const msg = new Uint8Array(SIZE);
if (SERVER) {
  const count = counter();
  const signalling = net.createServer((sock) =>
    peer(sock).onDataChannel((dc) => dc.onMessage((m) => (PINGPONG ? dc.sendMessageBinary(m as Buffer) : count()))),
  );
  signalling.listen(0, HOST, () => listening((signalling.address() as net.AddressInfo).port));
} else {
  const dc = peer(net.connect(PORT, HOST)).createDataChannel('bench');
  dc.onOpen(() => {
    if (PINGPONG) dc.onMessage(pingpong(() => dc.sendMessageBinary(msg)));
    else {
      // Send while under 1 MiB is buffered, then wait for it to drain below 256 KiB.
      const flood = (): void => {
        while (dc.bufferedAmount() < 1 << 20) dc.sendMessageBinary(msg);
      };
      dc.setBufferedAmountLowThreshold(256 << 10);
      dc.onBufferedAmountLow(flood);
      flood();
    }
  });
}
