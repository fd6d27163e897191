import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  Reader,
  Writer,
  WireError,
  decodeFrame,
  encodeFrame,
  decodeControl,
  encodeControl,
  decodeDataHeader,
  encodeDataHeader,
  encodeMessageHeader,
  expandPacketNumber,
  HELLO_MIN_SIZE,
  decodeInBand,
  encodeRouteUpdate,
  encodeChannelHeader,
  encodeChannelMessage,
  encodeDirect,
  InBandType,
  MAX_ROUTE_STRING_BYTES,
  CHANNEL_HEADER_BYTES,
  type Frame,
  type ControlPacket,
  type DataHeader,
} from '../../src/wire/index.js';

interface Vector {
  name: string;
  kind: 'frame' | 'control' | 'header' | 'message' | 'in-band';
  hex: string;
  size?: number;
  gap?: number;
}

const vectors = JSON.parse(readFileSync(new URL('../../../test/vectors/wire-vectors.json', import.meta.url), 'utf8')) as Vector[];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('wire vectors decode and re-encode byte for byte', () => {
  assert.ok(vectors.length >= 20);
  for (const v of vectors) {
    const bytes = new Uint8Array(Buffer.from(v.hex, 'hex'));
    const out = new Uint8Array(2048);
    const w = new Writer(out);
    switch (v.kind) {
      case 'frame': {
        const r = new Reader(bytes);
        const f = decodeFrame(r);
        assert.equal(r.remaining, 0, `${v.name}: bytes left over`);
        encodeFrame(w, f);
        break;
      }
      case 'control': {
        const p = decodeControl(bytes);
        w.position = encodeControl(out, p);
        break;
      }
      case 'header': {
        const h: DataHeader = { keyPhase: false, destinationCid: 0, truncatedPn: 0, pnLength: 2 };
        decodeDataHeader(new Reader(bytes), h);
        encodeDataHeader(w, h);
        break;
      }
      case 'message':
        encodeMessageHeader(w, v.size as number, v.gap as number);
        break;
      case 'in-band': {
        const m = decodeInBand(bytes);
        w.bytes(m.type === 'route' ? encodeRouteUpdate(m.route) : m.type === 'direct' ? encodeDirect(m.allowed, m.candidates) : encodeChannelMessage(m.channel, m.payload), 'in-band');
        break;
      }
    }
    assert.equal(hex(w.written()), v.hex, v.name);
  }
});

test('a hand-checked ACK vector means what docs/WIRE_FORMAT.md says', () => {
  // 02 = ACK, 29 = largest 41, 40 7d = delay 125 units (1000 us), 00 = no extra ranges, 29 = first range 41.
  const f = decodeFrame(new Reader(new Uint8Array(Buffer.from('0229407d0029', 'hex'))));
  assert.deepEqual(f, { type: 'ack', ackDelay: 125, lo: [0], hi: [41] });
});

const bytesArb = fc.uint8Array({ maxLength: 64 });
const u62 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const ackArb = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 20 })
  .chain((runs) =>
    fc.integer({ min: 0, max: 1_000_000 }).map((start) => {
      const lo: number[] = [];
      const hi: number[] = [];
      let p = start;
      for (const [gap, len] of runs) {
        lo.push(p);
        hi.push(p + len);
        p += len + gap + 2;
      }
      return { lo, hi };
    }),
  );
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.integer({ min: 1, max: 50 }).map((length): Frame => ({ type: 'padding', length })),
  fc.constant<Frame>({ type: 'ping' }),
  fc.tuple(ackArb, fc.integer({ min: 0, max: 1 << 20 })).map(([r, ackDelay]): Frame => ({ type: 'ack', ackDelay, lo: r.lo, hi: r.hi })),
  fc.integer({ min: 0, max: 254 }).map((lane): Frame => ({ type: 'lane', lane })),
  fc.tuple(fc.integer({ min: 0, max: 2 ** 40 }), bytesArb, fc.boolean()).map(([offset, data, explicitLength]): Frame => ({ type: 'reliable', offset, data, explicitLength })),
  fc
    .tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 0, max: 65535 }), fc.boolean(), fc.boolean(), bytesArb, fc.boolean())
    .map(([messageNumber, offset, last, latest, data, explicitLength]): Frame => ({ type: 'unreliable', messageNumber, offset, last, latest, data, explicitLength })),
  fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.string({ maxLength: 40 })).map(([reason, debug]): Frame => ({ type: 'close', reason, debug })),
  fc.tuple(fc.integer({ min: -1, max: 1000 }), u62, u62).map(([quality, inPacketsPerSec, inBytesPerSec]): Frame => ({ type: 'stats', quality, inPacketsPerSec, inBytesPerSec })),
  fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([challenge, data]): Frame => ({ type: challenge ? 'pathChallenge' : 'pathResponse', data })),
);

test('property: decode(encode(frame)) == frame for every frame type', () => {
  fc.assert(
    fc.property(frameArb, (f) => {
      const buf = new Uint8Array(4096);
      const w = new Writer(buf);
      encodeFrame(w, f);
      const r = new Reader(buf, 0, w.position);
      const back = decodeFrame(r);
      assert.equal(r.remaining, 0);
      if (f.type === 'reliable' || f.type === 'unreliable' || f.type === 'pathChallenge' || f.type === 'pathResponse') {
        assert.deepEqual({ ...back, data: [...(back as typeof f).data] }, { ...f, data: [...f.data] });
      } else {
        assert.deepEqual(back, f);
      }
    }),
    { numRuns: 2000, seed: 42 },
  );
});

const cid = fc.integer({ min: 0, max: 0xffffffff });
const controlArb: fc.Arbitrary<ControlPacket> = fc.oneof(
  fc.tuple(cid, cid, fc.integer({ min: HELLO_MIN_SIZE, max: 1400 })).map(([version, clientCid, length]): ControlPacket => ({ type: 'hello', version, clientCid, length })),
  fc.tuple(cid, cid, fc.uint8Array({ maxLength: 255 })).map(([version, clientCid, cookie]): ControlPacket => ({ type: 'challenge', version, clientCid, cookie })),
  fc.tuple(cid, cid, fc.uint8Array({ maxLength: 255 }), fc.uint8Array({ maxLength: 300 })).map(([version, clientCid, cookie, payload]): ControlPacket => ({ type: 'connectRequest', version, clientCid, cookie, payload })),
  fc.tuple(cid, cid, fc.uint8Array({ maxLength: 300 })).map(([clientCid, serverCid, payload]): ControlPacket => ({ type: 'connectOk', clientCid, serverCid, payload })),
  fc.tuple(cid, cid, fc.integer({ min: 0, max: 65535 }), fc.string({ maxLength: 40 })).map(([destinationCid, sourceCid, reason, debug]): ControlPacket => ({ type: 'closed', destinationCid, sourceCid, reason, debug })),
  fc.tuple(cid, cid).map(([destinationCid, sourceCid]): ControlPacket => ({ type: 'noConnection', destinationCid, sourceCid })),
);

test('property: decode(encode(control packet)) == packet', () => {
  fc.assert(
    fc.property(controlArb, (p) => {
      const buf = new Uint8Array(4096);
      const n = encodeControl(buf, p);
      const back = decodeControl(buf.subarray(0, n));
      const norm = (x: ControlPacket): unknown => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)));
      assert.deepEqual(norm(back), norm(p));
    }),
    { numRuns: 1000, seed: 43 },
  );
});

test('property: decoding random bytes returns a value or throws WireError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      for (const decode of [
        () => {
          const r = new Reader(bytes);
          while (r.remaining > 0) decodeFrame(r);
        },
        () => decodeControl(bytes),
        () => decodeDataHeader(new Reader(bytes), { keyPhase: false, destinationCid: 0, truncatedPn: 0, pnLength: 2 }),
        () => decodeInBand(bytes),
      ]) {
        try {
          decode();
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
      }
    }),
    { numRuns: 5000, seed: 44 },
  );
});

test('varints round-trip at every length boundary and refuse values above 2^53', () => {
  for (const v of [0, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30, Number.MAX_SAFE_INTEGER]) {
    const buf = new Uint8Array(8);
    const w = new Writer(buf);
    w.varint(v, 'v');
    assert.equal(new Reader(buf, 0, w.position).varint('v'), v);
  }
  assert.throws(() => new Reader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).varint('big'), WireError);
  assert.throws(() => new Writer(new Uint8Array(8)).varint(-1, 'neg'), WireError);
  assert.throws(() => new Reader(new Uint8Array([0x40])).varint('short'), (e: unknown) => e instanceof WireError && e.field === 'short');
});

test('packet numbers expand to the closest value (RFC 9000 A.3)', () => {
  assert.equal(expandPacketNumber(-1, 0, 2), 0);
  assert.equal(expandPacketNumber(0xa82f30ea, 0x9b32, 2), 0xa82f9b32);
  assert.equal(expandPacketNumber(65535, 0, 2), 65536);
  assert.equal(expandPacketNumber(70000, 65535, 2), 65535);
  assert.equal(expandPacketNumber(2 ** 33, 5, 4), 2 ** 33 + 5);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: -8000, max: 8000 }), (largest, delta) => {
      const pn = Math.max(0, largest + delta);
      assert.equal(expandPacketNumber(largest, pn & 0xffff, 2), pn);
      assert.equal(expandPacketNumber(largest, pn % 2 ** 32, 4), pn);
    }),
    { numRuns: 2000, seed: 45 },
  );
});

// ---------------------------------------------------------------- in-band messages (src/wire/in-band.ts)

/** How src/api encoded the in-band messages before src/wire/in-band.ts (relayed.ts routeMessage, networking-messages.ts #send at da61d9c). */
const legacy = {
  route(route: string): Uint8Array {
    const msg = new Uint8Array(1 + route.length);
    msg[0] = 1;
    msg.set(new TextEncoder().encode(route), 1);
    return msg;
  },
  channel(channel: number, data: Uint8Array): Uint8Array {
    const wide = new Uint8Array(5 + data.length);
    wide[0] = 2;
    new DataView(wide.buffer).setInt32(1, channel, true);
    wide.set(data, 5);
    return wide;
  },
};

const base64urlArb = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 1, maxLength: MAX_ROUTE_STRING_BYTES });
const int32Arb = fc.integer({ min: -0x80000000, max: 0x7fffffff });

test('in-band messages are byte for byte what src/api sent before, and decode back', () => {
  fc.assert(
    fc.property(base64urlArb, (route) => {
      const bytes = encodeRouteUpdate(route);
      assert.equal(hex(bytes), hex(legacy.route(route)));
      assert.deepEqual(decodeInBand(bytes), { type: 'route', route });
    }),
    { numRuns: 500, seed: 46 },
  );
  fc.assert(
    fc.property(int32Arb, fc.uint8Array({ maxLength: 64 }), (channel, payload) => {
      const bytes = encodeChannelMessage(channel, payload);
      assert.equal(hex(bytes), hex(legacy.channel(channel, payload)));
      const m = decodeInBand(bytes);
      assert.ok(m.type === 'channelMessage');
      assert.equal(m.channel, channel);
      assert.equal(hex(m.payload), hex(payload));
    }),
    { numRuns: 1000, seed: 47 },
  );
});

test('a channel message payload is a view of the received bytes, not a copy', () => {
  const bytes = encodeChannelMessage(300, new Uint8Array([7, 8, 9]));
  const m = decodeInBand(bytes);
  assert.ok(m.type === 'channelMessage');
  assert.equal(m.payload.buffer, bytes.buffer);
  assert.equal(m.payload.byteOffset, CHANNEL_HEADER_BYTES);
  bytes[CHANNEL_HEADER_BYTES] = 42;
  assert.equal(m.payload[0], 42);
});

test('encodeChannelHeader writes the 5-byte header at an offset of a buffer the caller owns', () => {
  const out = new Uint8Array(12).fill(0xee);
  assert.equal(encodeChannelHeader(out, -2, 3), CHANNEL_HEADER_BYTES);
  assert.equal(hex(out), 'eeeeee02feffffffeeeeeeee');
  assert.throws(() => encodeChannelHeader(new Uint8Array(4), 1), (e: unknown) => e instanceof WireError && e.field === 'inBand.channel');
  assert.throws(() => encodeChannelHeader(new Uint8Array(5), 1, 1), WireError);
});

test('decodeInBand refuses malformed messages with a WireError naming the field', () => {
  const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
  const cases: [string, number[], string][] = [
    ['empty input', [], 'inBand.type'],
    ['unknown type 0', [0], 'inBand.type'],
    ['unknown type 4', [4, 1, 2, 3, 4], 'inBand.type'],
    ['direct without its count', [InBandType.Direct, 1], 'inBand.count'],
    ['direct with more than 8 candidates', [InBandType.Direct, 1, 9], 'inBand.count'],
    ['direct with bytes after its candidates', [InBandType.Direct, 1, 0, 7], 'inBand.direct'],
    ['unknown type 0xff', [0xff], 'inBand.type'],
    ['empty route', [InBandType.Route], 'inBand.route'],
    ['route with a space', [1, ...ascii('AQ AA')], 'inBand.route'],
    ['route with base64 padding', [1, ...ascii('AQ==')], 'inBand.route'],
    ['route with standard base64 +', [1, ...ascii('A+B')], 'inBand.route'],
    ['route with a NUL', [1, 0x41, 0x00], 'inBand.route'],
    ['route with a non-ASCII byte', [1, 0x41, 0xc3, 0xa9], 'inBand.route'],
    ['route over the limit', [1, ...new Array<number>(MAX_ROUTE_STRING_BYTES + 1).fill(0x41)], 'inBand.route'],
    ['channel message of 1 byte', [InBandType.ChannelMessage], 'inBand.channel'],
    ['channel message of 4 bytes', [2, 1, 0, 0], 'inBand.channel'],
  ];
  for (const [name, bytes, field] of cases) {
    assert.throws(() => decodeInBand(new Uint8Array(bytes)), (e: unknown) => e instanceof WireError && e.field === field, name);
  }
  // The limits themselves are accepted.
  const longest = 'A'.repeat(MAX_ROUTE_STRING_BYTES);
  assert.deepEqual(decodeInBand(encodeRouteUpdate(longest)), { type: 'route', route: longest });
  assert.deepEqual(decodeInBand(new Uint8Array([2, 0, 0, 0, 0])), { type: 'channelMessage', channel: 0, payload: new Uint8Array(0) });
});

test('the in-band encoders refuse what the decoder would refuse', () => {
  const route = (s: string) => () => encodeRouteUpdate(s);
  for (const bad of ['', 'AQ==', 'a b', 'é', 'A'.repeat(MAX_ROUTE_STRING_BYTES + 1)]) {
    assert.throws(route(bad), (e: unknown) => e instanceof WireError && e.field === 'inBand.route', JSON.stringify(bad.slice(0, 10)));
  }
  for (const bad of [0x80000000, -0x80000001, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => encodeChannelMessage(bad, new Uint8Array(0)), (e: unknown) => e instanceof WireError && e.field === 'inBand.channel', String(bad));
  }
});
