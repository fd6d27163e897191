import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, type SocketAddress } from '../../src/core/types.js';
import { DEFAULT_CONFIG } from '../../src/core/config.js';
import { seededHandshake } from '../../src/testing/crypto.js';
import { encodeControl } from '../../src/wire/control.js';
import { SeededRng } from '../../src/util/rng.js';
import { seedOr, withSeed } from '../support/sim.js';

const SERVER: SocketAddress = { address: '10.255.255.254', port: 27015 };
const LEGIT: SocketAddress = { address: '10.255.0.9', port: 40000 };

test('spoofed flood: 100,000 HELLOs and CONNECT_REQUESTs from 65,536 sources with missing, forged or stale cookies allocate nothing, verify nothing, amplify nothing', () => {
  withSeed(seedOr(311), (seed) => {
    const rng = new SeededRng(seed);
    const hs = seededHandshake(seed);
    const server = new Endpoint({ rng: rng.fork(), listen: true, handshake: hs });
    const client = new Endpoint({ rng: rng.fork(), handshake: seededHandshake(seed + 1) });
    // A real, signed request payload, so that a request that slipped past the cookie would cost a verification.
    const realPayload = seededHandshake(seed + 2).startClient(1, SERVER, DEFAULT_CONFIG).request(new Uint8Array(19), 2);
    const bytesIn = new Map<string, number>();
    const bytesOut = new Map<string, number>();
    const buf = new Uint8Array(2048);
    let now = 10_000_000;
    let c = 0;
    let serverConn = 0;

    const pump = (): void => {
      for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now)) {
        const k = t.destination.address;
        bytesOut.set(k, (bytesOut.get(k) ?? 0) + t.data.length);
        if (k === LEGIT.address) client.handleDatagram(now, SERVER, t.data);
      }
      for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now)) server.handleDatagram(now, LEGIT, t.data);
      for (let e = server.pollEvent(); e; e = server.pollEvent()) {
        if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) {
          serverConn = e.connection;
          server.accept(now, e.connection);
        }
      }
      const ct = client.pollTimeout(now);
      if (ct !== null && ct <= now) client.handleTimeout(now);
      const st = server.pollTimeout(now);
      if (st !== null && st <= now) server.handleTimeout(now);
    };

    const N = 100_000;
    const kinds = { hello: 0, missing: 0, forged: 0, stale: 0, misdirected: 0 };
    for (let i = 0; i < N; i++) {
      now += 50; // 20,000 packets per second
      const src = i & 0xffff;
      const from = { address: `10.${src >> 8}.${src & 0xff}.1`, port: 1024 + rng.int(0, 60_000) };
      const cid = rng.nextU32() || 1;
      const r = i % 5;
      let n: number;
      if (r === 0) {
        kinds.hello++;
        n = encodeControl(buf, { type: 'hello', version: 2, clientCid: cid, length: 512 });
      } else {
        let cookie: Uint8Array;
        if (r === 1) {
          kinds.missing++;
          cookie = new Uint8Array(0);
        } else if (r === 2) {
          kinds.forged++;
          cookie = new Uint8Array(19);
          for (let k = 0; k < 19; k++) cookie[k] = rng.nextU32() & 0xff;
          cookie[0] = (now >> 28) & 0xff; // a plausible tick
          cookie[1] = (now >> 20) & 0xff;
        } else if (r === 3) {
          kinds.stale++;
          cookie = hs.issueCookie(now - 8_000_000, from, cid); // genuine, but 8 s old
        } else {
          kinds.misdirected++;
          cookie = hs.issueCookie(now, { address: '10.254.0.1', port: 9 }, cid); // genuine, for another address
        }
        n = encodeControl(buf, { type: 'connectRequest', version: 2, clientCid: cid, cookie, payload: realPayload });
      }
      const k = from.address;
      bytesIn.set(k, (bytesIn.get(k) ?? 0) + n);
      server.handleDatagram(now, from, buf.subarray(0, n));
      if (i === N / 2) c = client.connect(now, SERVER);
      pump();
    }
    // Let the legitimate client finish.
    for (let i = 0; i < 200 && client.state(c) !== ConnectionState.Connected; i++) {
      now += 10_000;
      pump();
    }

    let worst = 0;
    let totalIn = 0;
    let totalOut = 0;
    for (const [k, inB] of bytesIn) {
      const out = bytesOut.get(k) ?? 0;
      worst = Math.max(worst, out / inB);
      totalIn += inB;
      totalOut += out;
    }
    console.log(`# flood: ${JSON.stringify(kinds)}, ${bytesIn.size} source addresses, bytes out/in worst ${worst.toFixed(3)}, total ${(totalOut / totalIn).toFixed(4)}`);
    assert.equal(bytesIn.size, 65_536);
    assert.ok(worst <= 1.0, `a source got ${worst} bytes back per byte sent`);
    assert.ok(totalOut / totalIn <= 1.0);
    assert.equal(server.stats.handshakeRefused, kinds.missing + kinds.forged + kinds.stale + kinds.misdirected);
    // The legitimate client connected during the flood: the only connection and the only signature check.
    assert.equal(client.state(c), ConnectionState.Connected);
    assert.equal(server.connectionCount, 1);
    assert.ok(serverConn !== 0);
    assert.equal(hs.verifications, 1, 'signature verifications: only the legitimate request');
  });
});
