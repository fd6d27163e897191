// A child process for test/integration/flood.test.ts: a spoofed handshake flood from many loopback source
// addresses (Linux routes all of 127.0.0.0/8 to lo, so a socket bound to 127.x.y.z is a distinct source).
//   node flood-sender.js sockets|relay <port> <packets> <sources>
// `sockets`: HELLOs, CONNECT_REQUESTs without a cookie and CONNECT_REQUESTs whose cookie has the server's
// current tick and key generation (learnt from one real CHALLENGE) and a forged MAC, so that each costs the
// server an HMAC. `relay`: PINGs and SESSION_REQUESTs with a forged cookie of the relay's current time
// (learnt from one real PONG). It prints `ready` once its sockets are bound, floods on each `go` as fast as
// it can send, and prints `{"sent","ms","errors"}` when done.
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { setPriority } from 'node:os';
import { encodeControl } from '../../src/wire/control.js';
import { COOKIE_BYTES, MIN_SESSION_REQUEST_BYTES, RelayMsg, encodeRelayControl } from '../../src/relay/protocol.js';

/** Distinct packets built ahead (their connection ids and nonces differ), sent round robin. */
const TEMPLATES = 4096;
/** Datagrams sent per event-loop turn: the sender yields between bursts so that its sockets drain. */
const BURST = 256;
/**
 * The flood's pace, datagrams a second: more than the server could handle before (75-80k/s here, every one
 * processed), well under what Node can read at all (some 200k/s). Faster, on a 2-core machine shared with the
 * server and the clients, the kernel drops at random whenever the server is off the CPU for 15 ms: that
 * measures the scheduler, not the server.
 */
const RATE_PER_S = 90_000;
/** Bytes of the forged handshake payload of a CONNECT_REQUEST (a real one is some 200-400 bytes). */
const PAYLOAD_BYTES = 300;
/** The protocol version of the forged handshake packets. */
const VERSION = 2;

const [mode = 'sockets', portArg = '0', countArg = '100000', sourcesArg = '2048'] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const sources = Number(sourcesArg);

const SERVER = '127.0.0.1';

/** The i-th source address: 127.20.0.1 and up, 128 per /24 (never .0 or .255). */
const source = (i: number): string => `127.20.${i >> 7}.${(i & 127) + 1}`;

function bind(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4096 });
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/** One real answer from the target (CHALLENGE or PONG) to `probe`, asked every 100 ms: what a forged cookie copies. */
function probe(s: dgram.Socket, packet: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const again = setInterval(() => s.send(packet, port, SERVER), 100);
    s.once('message', (m) => {
      clearInterval(again);
      resolve(new Uint8Array(m));
    });
    s.send(packet, port, SERVER);
  });
}

async function templates(s: dgram.Socket): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const scratch = new Uint8Array(2048);
  if (mode === 'relay') {
    const pong = await probe(s, encodeRelayControl({ type: 'ping', version: 2, nonce: randomBytes(8) }));
    const time = pong.subarray(1 + 8 + COOKIE_BYTES - 4, 1 + 8 + COOKIE_BYTES); // the cookie's time field
    for (let i = 0; i < TEMPLATES; i++) {
      if (i % 2 === 0) {
        out.push(encodeRelayControl({ type: 'ping', version: 2, nonce: randomBytes(8) }));
        continue;
      }
      const cookie = randomBytes(COOKIE_BYTES);
      cookie.set(time, COOKIE_BYTES - 4);
      const m = encodeRelayControl({ type: 'sessionRequest', cookie, clientNonce: randomBytes(8), clientPublic: randomBytes(32), ticket: new Uint8Array(0) });
      if (m[0] !== RelayMsg.SessionRequest || m.length < MIN_SESSION_REQUEST_BYTES) throw new Error('bad template');
      out.push(m);
    }
    return out;
  }
  const n = encodeControl(scratch, { type: 'hello', version: VERSION, clientCid: 1, length: 512 });
  const challenge = await probe(s, scratch.slice(0, n));
  const cookieLen = challenge[9] as number;
  const real = challenge.subarray(10, 10 + cookieLen);
  const payload = randomBytes(PAYLOAD_BYTES);
  for (let i = 0; i < TEMPLATES; i++) {
    const cid = randomBytes(4).readUInt32BE() || 1;
    let len: number;
    if (i % 2 === 0) len = encodeControl(scratch, { type: 'hello', version: VERSION, clientCid: cid, length: 512 });
    else {
      // Half without a cookie; half with the right tick and key generation and a forged MAC.
      const cookie = i % 4 === 1 ? new Uint8Array(0) : randomBytes(real.length);
      if (cookie.length) cookie.set(real.subarray(0, 3));
      len = encodeControl(scratch, { type: 'connectRequest', version: VERSION, clientCid: cid, cookie, payload });
    }
    out.push(scratch.slice(0, len));
  }
  return out;
}

// The attacker's CPU is not the server's: on a shared machine the flood runs at the lowest priority, so that
// it takes whatever CPU the server and the legitimate clients leave, as fast as that lets it send.
setPriority(19);
const socks = await Promise.all(Array.from({ length: sources }, (_, i) => bind(source(i))));
const packets = await templates(socks[0] as dgram.Socket);
console.log('ready');

// Every send has a callback, as in netlane's own UdpSocket (and any sender that wants to know its errors). It
// makes the flood some 20% slower than bare sends (about 130k datagrams/s against 160k here): bare sends
// come near what Node's dgram can read at all (a receiver that does nothing needs some 5 µs a datagram), and
// a flood the kernel must drop at random tests the kernel, not the server.
let errors = 0;
const onSent = (err: Error | null): void => {
  if (err) errors++;
};

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'go') return;
  const start = performance.now();
  let sent = 0;
  const burst = (): void => {
    const due = Math.ceil(((performance.now() - start) * RATE_PER_S) / 1000);
    const end = Math.min(count, sent + BURST, Math.max(due, sent + 1));
    for (; sent < end; sent++) (socks[sent % sources] as dgram.Socket).send(packets[sent % TEMPLATES] as Uint8Array, port, SERVER, onSent);
    if (sent < count) setImmediate(burst);
    else console.log(JSON.stringify({ sent, ms: Math.round(performance.now() - start), errors }));
  };
  burst();
}).on('close', () => process.exit(0));
