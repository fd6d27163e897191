// Raw node:dgram with every datagram sealed and opened by ChaCha20-Poly1305 (sodium-native, in place, no
// buffer per datagram): the floor of any encrypted UDP protocol in Node, with nothing else of a protocol
// (no acks, no retransmission, no framing). A datagram is an 8-byte counter (the nonce's last 8 bytes and
// the associated data), then the sealed message and its 16-byte tag. Not a contender of the suite: a ruler
// for what netlane's own work costs beyond the socket and the cipher (docs/BENCHMARKS.md).
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import { HOST, PINGPONG, PORT, SERVER, SIZE, counter, listening, pingpong } from './lib.js';

interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
}
const sodium = createRequire(import.meta.url)('sodium-native') as Sodium;
const HEADER = 8;
const TAG = 16;
const key = new Uint8Array(32).fill(7);
const nonce = new Uint8Array(12);
const out = Buffer.alloc(HEADER + SIZE + TAG);
const plain = Buffer.alloc(SIZE);
const outHeader = out.subarray(0, HEADER);
const outBody = out.subarray(HEADER);
let sent = 0;

/** Seals `plain` into `out` under the next counter; returns `out`. */
function seal(): Buffer {
  sent++;
  out.writeUInt32BE(sent, 4);
  nonce.set(outHeader, 4);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(outBody, plain, outHeader, null, nonce, key);
  return out;
}

/** Opens a received datagram into `plain`; false if it does not authenticate. */
function open(d: Buffer): boolean {
  if (d.length !== HEADER + SIZE + TAG) return false;
  nonce.set(d.subarray(0, HEADER), 4);
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(plain, null, d.subarray(HEADER), d.subarray(0, HEADER), nonce, key);
    return true;
  } catch {
    return false;
  }
}

const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
if (SERVER) {
  const count = counter();
  sock.on('message', (m, from) => {
    if (!open(m)) return;
    if (PINGPONG) sock.send(seal(), from.port, from.address);
    else count();
  });
  sock.bind(0, HOST, () => listening(sock.address().port));
} else {
  sock.connect(PORT, HOST, () => {
    if (PINGPONG) {
      const pong = pingpong(() => sock.send(seal()));
      sock.on('message', (m) => open(m) && pong());
    } else {
      // As fast as the socket takes them: a burst per event-loop turn, each datagram sealed.
      const flood = (): void => {
        for (let i = 0; i < 64; i++) sock.send(Buffer.from(seal()));
        setImmediate(flood);
      };
      flood();
    }
  });
}
