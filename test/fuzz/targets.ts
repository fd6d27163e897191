// Fuzz targets: a seeded mutation loop over a corpus of valid inputs, against every decoder and
// against Endpoint.handleDatagram before and after decryption. Used by test/fuzz/fuzz.test.ts (a fixed
// number of inputs per target in `npm test`) and by `npm run fuzz -- --minutes N` (for a time).
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, SendFlags, type ReceivedMessage } from '../../src/core/types.js';
import { DEFAULT_CONFIG } from '../../src/core/config.js';
import type { ClientHandshake, ConnectionKeys, HandshakeConfig, HandshakeLayer, PeerAddress } from '../../src/crypto/types.js';
import { decodeCertificate, signCertificate } from '../../src/crypto/certificate.js';
import { decodeHandshakeMessage } from '../../src/crypto/handshake.js';
import { parseIdentity } from '../../src/crypto/identity.js';
import { SimNetwork } from '../../src/testing/sim-network.js';
import { seededCryptoProvider, seededHandshake } from '../../src/testing/crypto.js';
import { decodeControl, encodeControl } from '../../src/wire/control.js';
import { WireError } from '../../src/wire/errors.js';
import { decodeFrame, encodeFrame } from '../../src/wire/frames.js';
import { decodeDataHeader, encodeDataHeader, type DataHeader } from '../../src/wire/header.js';
import { decodeInBand, encodeChannelMessage, encodeRouteUpdate } from '../../src/wire/in-band.js';
import { Reader } from '../../src/wire/reader.js';
import { Writer } from '../../src/wire/writer.js';
import { NetlaneError } from '../../src/util/errors.js';
import { RelayClient } from '../../src/relay/client/index.js';
import { RelayMsg, decodeRelayControl, encodeRelayControl, encodeRoute, type RelayControl } from '../../src/relay/protocol.js';
import { relayHopKeys, sealDown, sealSessionOk, type HopKeys } from '../../src/relay/hop.js';
import type { KeyExchangePair } from '../../src/crypto/provider.js';
import { concat } from '../../src/util/bytes.js';
import { SeededRng } from '../../src/util/rng.js';

/** What one target did: inputs run, inputs accepted, time taken (setup excluded). */
export interface TargetResult {
  name: string;
  execs: number;
  /** Inputs that were accepted (decoded, or changed state) rather than refused. */
  accepted: number;
  ms: number;
}

/** One mutation of `input` (bit flip, interesting byte, insert, delete, duplicate, splice, truncate). */
export function mutate(rng: SeededRng, input: Uint8Array, corpus: readonly Uint8Array[]): Uint8Array {
  let d: Uint8Array = input.slice();
  const rounds = rng.int(1, 4);
  for (let r = 0; r < rounds; r++) {
    const n = d.length;
    switch (rng.int(0, 7)) {
      case 0:
        if (n > 0) {
          const bit = rng.int(0, n * 8 - 1);
          d[bit >> 3] = (d[bit >> 3] as number) ^ (1 << (bit & 7));
        }
        break;
      case 1:
        if (n > 0) d[rng.int(0, n - 1)] = [0, 0xff, 0x7f, 0x80, 0x40, 0x3f, 0xc0, 1][rng.int(0, 7)] as number;
        break;
      case 2: {
        const at = rng.int(0, n);
        const ins = new Uint8Array(rng.int(1, 16));
        for (let i = 0; i < ins.length; i++) ins[i] = rng.nextU32() & 0xff;
        d = concat(d.subarray(0, at), ins, d.subarray(at));
        break;
      }
      case 3:
        if (n > 1) {
          const at = rng.int(0, n - 1);
          d = concat(d.subarray(0, at), d.subarray(Math.min(n, at + rng.int(1, 16))));
        }
        break;
      case 4:
        if (n > 1) {
          const at = rng.int(0, n - 1);
          const len = rng.int(1, Math.min(32, n - at));
          d = concat(d.subarray(0, at + len), d.subarray(at, at + len), d.subarray(at + len));
        }
        break;
      case 5: {
        const other = corpus[rng.int(0, corpus.length - 1)] as Uint8Array;
        const at = rng.int(0, n);
        d = concat(d.subarray(0, at), other.subarray(rng.int(0, other.length)));
        break;
      }
      case 6:
        d = d.subarray(0, rng.int(0, n)).slice();
        break;
      default:
        if (n > 0) {
          // A varint-looking run: 0xff bytes make maximal 8-byte varints.
          const at = rng.int(0, n - 1);
          for (let i = at; i < Math.min(n, at + rng.int(1, 8)); i++) d[i] = 0xff;
        }
    }
  }
  return d;
}

/**
 * How much a target runs: a fixed number of inputs (`npm test`: the same work on every machine) or a time
 * (`npm run fuzz -- --minutes N`).
 */
export type Budget = { inputs: number } | { ms: number };

/** Runs `fn` on mutated corpus entries until the budget is spent. `fn` returns whether the input was accepted; it throws on a broken invariant. */
function loop(name: string, budget: Budget, seed: number, corpus: readonly Uint8Array[], fn: (input: Uint8Array) => boolean): TargetResult {
  const rng = new SeededRng(seed);
  const start = performance.now();
  const limit = 'inputs' in budget ? budget.inputs : Infinity;
  const deadline = 'ms' in budget ? start + budget.ms : Infinity;
  let execs = 0;
  let accepted = 0;
  while (execs < limit && performance.now() < deadline) {
    const batch = Math.min(256, limit - execs);
    for (let k = 0; k < batch; k++) {
      const input = rng.chance(0.05) ? (corpus[rng.int(0, corpus.length - 1)] as Uint8Array) : mutate(rng, corpus[rng.int(0, corpus.length - 1)] as Uint8Array, corpus);
      try {
        if (fn(input)) accepted++;
      } catch (e) {
        const hex = Buffer.from(input).toString('hex');
        throw new Error(`fuzz ${name} (seed ${seed}, exec ${execs}): ${e instanceof Error ? e.stack : String(e)}\ninput: ${hex}`);
      }
      execs++;
    }
  }
  return { name, execs, accepted, ms: performance.now() - start };
}

/** A decoder may return or throw WireError; anything else is a bug. */
function decoderTarget(decode: (b: Uint8Array) => unknown): (b: Uint8Array) => boolean {
  return (b) => {
    try {
      decode(b);
      return true;
    } catch (e) {
      if (e instanceof WireError) return false;
      throw e;
    }
  };
}

// ---------------------------------------------------------------- corpora

function controlCorpus(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  const cookie = new Uint8Array(19).fill(5);
  const payload = seededHandshake(1).startClient(7, { address: '10.0.0.2', port: 1 }, DEFAULT_CONFIG).request(cookie, 2);
  for (const p of [
    { type: 'hello', version: 2, clientCid: 7, length: 512 },
    { type: 'challenge', version: 2, clientCid: 7, cookie },
    { type: 'connectRequest', version: 2, clientCid: 7, cookie, payload },
    { type: 'connectOk', clientCid: 7, serverCid: 9, payload },
    { type: 'closed', destinationCid: 7, sourceCid: 9, reason: 4003, debug: 'certificate expired' },
    { type: 'noConnection', destinationCid: 7, sourceCid: 9 },
  ] as const) {
    const n = encodeControl(buf, p);
    out.push(buf.slice(0, n));
  }
  return out;
}

function frameCorpus(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const frames = [
    { type: 'ping' },
    { type: 'ack', ackDelay: 10, lo: [1, 5, 9], hi: [3, 7, 100] },
    { type: 'lane', lane: 3 },
    { type: 'reliable', offset: 1000, data: new Uint8Array(40).fill(1), explicitLength: true },
    { type: 'unreliable', messageNumber: 77, offset: 0, data: new Uint8Array(30).fill(2), last: true, latest: false, explicitLength: true },
    { type: 'close', reason: 1000, debug: 'bye' },
    { type: 'stats', quality: 990, inPacketsPerSec: 100, inBytesPerSec: 120000 },
    { type: 'padding', length: 4 },
    { type: 'pathChallenge', data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) },
    { type: 'pathResponse', data: Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1) },
  ];
  for (const f of frames) {
    const w = new Writer(new Uint8Array(256));
    try {
      encodeFrame(w, f as Parameters<typeof encodeFrame>[1]);
      out.push(w.written().slice());
    } catch {
      /* a frame shape this build does not encode: skip it */
    }
  }
  return out;
}

function certCorpus(): Uint8Array[] {
  const p = seededCryptoProvider(3);
  const ca = p.signingKey();
  const k = p.signingKey();
  return [
    signCertificate(p, ca, { identity: parseIdentity('str:alice'), publicKey: k.publicKey, createdAt: 1, expiresAt: 100, addresses: ['10.0.0.1'] }).encoded,
    seededHandshake(4).certificate.encoded,
    signCertificate(p, ca, { identity: parseIdentity('ip:[::1]:5'), publicKey: k.publicKey, createdAt: 1, expiresAt: 100 }).encoded,
  ];
}

function inBandCorpus(): Uint8Array[] {
  // A route string with two relays (127.0.0.1:27100 and [::1]:27101), their keys and 45-byte tokens, as relays issue them.
  const route = encodeRoute({ version: 2, revision: 7, entries: [{ relay: { address: '127.0.0.1', port: 27100 }, publicKey: new Uint8Array(32).fill(1), token: new Uint8Array(45).fill(3) }, { relay: { address: '::1', port: 27101 }, publicKey: new Uint8Array(32).fill(2), token: new Uint8Array(45).fill(4) }] });
  return [encodeRouteUpdate(route), encodeChannelMessage(1000, new Uint8Array(20).fill(6)), encodeChannelMessage(-1, new Uint8Array(0)), encodeChannelMessage(254, new Uint8Array([1]))];
}

/**
 * Every relay message a client takes, and DATA_DOWN on a few links. Those a relay seals are plaintexts here:
 * the target seals each input (mutated or not) with the session's keys half the time, so that mutations reach
 * the parser behind the AEAD as well as the checks before it.
 */
function relayReplyCorpus(nonce: Uint8Array): Uint8Array[] {
  const id = new Uint8Array(8).fill(7);
  const msgs: RelayControl[] = [
    { type: 'pong', nonce, cookie: new Uint8Array(20).fill(1), load: 3, drainSeconds: 0 },
    { type: 'pong', nonce, cookie: new Uint8Array(20).fill(1), load: 3, drainSeconds: 30 },
    { type: 'refused', clientNonce: nonce, code: 2 },
    { type: 'linkOffer', offerId: 3, peerId: 99n, user: 'alice' },
    { type: 'tokenRotated', requestId: 4, token: new Uint8Array(45).fill(3) },
    { type: 'linkOk', requestId: 1, linkId: 4 },
    { type: 'linkFailed', requestId: 1, code: 6 },
    { type: 'keepaliveAck', seq: 1, drainSeconds: 0, load: 0, observed: null },
    { type: 'keepaliveAck', seq: 2, drainSeconds: 10, load: 0, observed: { address: '203.0.113.7', port: 40001 } },
    { type: 'pathChallenge', challenge: new Uint8Array(8).fill(9) },
    { type: 'noSession', sessionId: id },
    { type: 'dirRegisterResult', requestId: 2, code: 0 },
    { type: 'dirLookupResult', requestId: 3, code: 0, peerId: 42n, route: encodeRoute({ version: 2, revision: 1, entries: [{ relay: { address: '127.0.0.1', port: 27100 }, publicKey: new Uint8Array(32).fill(1), token: new Uint8Array(45).fill(3) }] }) },
  ];
  const down = [0, 4, 65535].map((link) => Uint8Array.of(RelayMsg.DataDown, link >> 8, link & 0xff, 0x41, 1, 2, 3, 4, 5, 6, 7, 8));
  return [...msgs.map(encodeRelayControl), ...down];
}

// ---------------------------------------------------------------- endpoint targets

/** A handshake layer that records the client's keys and every plaintext it seals. */
class RecordingHandshake implements HandshakeLayer {
  keys: ConnectionKeys | null = null;
  readonly plaintexts: Uint8Array[] = [];
  constructor(readonly inner: HandshakeLayer) {}
  get minProtocolVersion(): number {
    return this.inner.minProtocolVersion;
  }
  get maxProtocolVersion(): number {
    return this.inner.maxProtocolVersion;
  }
  issueCookie(now: number, from: PeerAddress, cid: number): Uint8Array {
    return this.inner.issueCookie(now, from, cid);
  }
  checkCookie(now: number, from: PeerAddress, cid: number, cookie: Uint8Array): boolean {
    return this.inner.checkCookie(now, from, cid, cookie);
  }
  acceptClient(...args: Parameters<HandshakeLayer['acceptClient']>): ReturnType<HandshakeLayer['acceptClient']> {
    return this.inner.acceptClient(...args);
  }
  startClient(cid: number, remote: PeerAddress, config: HandshakeConfig): ClientHandshake {
    const hs = this.inner.startClient(cid, remote, config);
    return {
      request: (cookie, version) => hs.request(cookie, version),
      finish: (serverCid, reply) => {
        const out = hs.finish(serverCid, reply);
        if (!out.ok) return out;
        const inner = out.keys;
        const rec = this.plaintexts;
        const keys: ConnectionKeys = {
          get overhead() {
            return inner.overhead;
          },
          get sendPhase() {
            return inner.sendPhase;
          },
          get encrypted() {
            return inner.encrypted;
          },
          get keyUpdates() {
            return inner.keyUpdates;
          },
          seal(pn, header, plaintext, out, outOffset) {
            if (rec.length < 2000) rec.push(plaintext.slice());
            return inner.seal(pn, header, plaintext, out, outOffset);
          },
          open: (pn, header, sealed) => inner.open(pn, header, sealed),
        };
        this.keys = keys;
        return { ...out, keys };
      },
    };
  }
}

interface Live {
  sim: SimNetwork;
  server: Endpoint;
  s: number;
  serverCid: number;
  keys: ConnectionKeys;
  datagrams: Uint8Array[];
  plaintexts: Uint8Array[];
}

const SERVER = { address: '10.0.0.2', port: 27015 };
const CLIENT = { address: '10.0.0.1', port: 40000 };

/** A connected pair that has exchanged some traffic, with the client's datagrams and plaintexts recorded. */
function live(seed: number, traffic = true): Live {
  const sim = new SimNetwork(seed, { latencyUs: 5000 });
  const rng = new SeededRng(seed);
  const sh = sim.addHost(SERVER, new Endpoint({ rng: rng.fork(), listen: true, handshake: seededHandshake(seed + 1) }));
  const rec = new RecordingHandshake(seededHandshake(seed + 2));
  const ch = sim.addHost(CLIENT, new Endpoint({ rng: rng.fork(), handshake: rec }));
  let s = 0;
  sh.onEvent = (e) => {
    if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) {
      s = e.connection;
      sh.endpoint.accept(sim.now, s);
    }
  };
  const datagrams: Uint8Array[] = [];
  sim.intercept = (_f, to, data) => {
    if (to.port === SERVER.port && datagrams.length < 2000) datagrams.push(data.slice());
    return data;
  };
  const c = ch.endpoint.connect(sim.now, SERVER);
  sim.runUntil(() => ch.endpoint.state(c) === ConnectionState.Connected && s !== 0, 5_000_000);
  ch.endpoint.configureLanes(c, [0, 1], [1, 1]);
  sh.endpoint.configureLanes(s, [0, 1], [1, 1]);
  for (let i = 0; i < (traffic ? 200 : 0); i++) {
    const data = new Uint8Array(rng.int(1, i % 20 === 0 ? 3000 : 200)).fill(i);
    ch.endpoint.send(sim.now, c, data, i % 3 === 0 ? SendFlags.Unreliable : SendFlags.Reliable, i % 2);
    if (i % 10 === 0) ch.endpoint.send(sim.now, c, data, SendFlags.Unreliable | SendFlags.Latest, 1);
    sim.runFor(2000);
  }
  if (traffic) {
    sim.runFor(200_000);
    ch.endpoint.close(sim.now, c, 1000, 'bye', false);
    sim.flush();
  }
  sim.intercept = null;
  if (!rec.keys) throw new Error('fuzz: handshake failed');
  return { sim, server: sh.endpoint, s, serverCid: s /* a handle is the local connection id */, keys: rec.keys, datagrams, plaintexts: rec.plaintexts };
}

function drainEndpoint(ep: Endpoint, now: number, handle: number): void {
  for (let t = ep.pollTransmit(now); t; t = ep.pollTransmit(now)) {
    /* discard */
  }
  while (ep.pollEvent()) {
    /* discard */
  }
  const msgs: ReceivedMessage[] = [];
  ep.receive(handle, msgs, 1024);
  ep.pollTimeout(now);
}

// ---------------------------------------------------------------- all targets

/** One fuzz target: `testInputs` is how many inputs `npm test` gives it (about 2 s of work on a 2-core CI box). */
export type Target = { name: string; testInputs: number; run: (budget: Budget, seed: number) => TargetResult };

/** Every fuzz target, in the order they run. */
export const TARGETS: Target[] = [
  { name: 'decodeControl', testInputs: 300_000, run: (budget, seed) => loop('decodeControl', budget, seed, controlCorpus(), decoderTarget(decodeControl)) },
  {
    name: 'decodeFrame',
    testInputs: 350_000,
    run: (budget, seed) =>
      loop('decodeFrame', budget, seed, frameCorpus(), decoderTarget((b) => {
        const r = new Reader(b);
        while (r.remaining > 0) decodeFrame(r);
      })),
  },
  {
    name: 'decodeDataHeader',
    testInputs: 500_000,
    run: (budget, seed) => {
      const h: DataHeader = { keyPhase: false, destinationCid: 0, truncatedPn: 0, pnLength: 2 };
      const w = new Writer(new Uint8Array(16));
      encodeDataHeader(w, { keyPhase: true, destinationCid: 0xdeadbeef, truncatedPn: 0x1234, pnLength: 4 });
      return loop('decodeDataHeader', budget, seed, [w.written().slice()], decoderTarget((b) => decodeDataHeader(new Reader(b), h)));
    },
  },
  { name: 'decodeInBand', testInputs: 500_000, run: (budget, seed) => loop('decodeInBand', budget, seed, inBandCorpus(), decoderTarget(decodeInBand)) },
  { name: 'decodeCertificate', testInputs: 300_000, run: (budget, seed) => loop('decodeCertificate', budget, seed, certCorpus(), decoderTarget(decodeCertificate)) },
  {
    name: 'decodeHandshakeMessage',
    testInputs: 300_000,
    run: (budget, seed) => {
      const c = controlCorpus();
      const payloads = [decodeControl(c[2] as Uint8Array)].map((p) => (p.type === 'connectRequest' ? p.payload : new Uint8Array(0)));
      return loop('decodeHandshakeMessage', budget, seed, payloads, decoderTarget(decodeHandshakeMessage));
    },
  },
  {
    name: 'parseIdentity',
    testInputs: 400_000,
    run: (budget, seed) => {
      const enc = new TextEncoder();
      const dec = new TextDecoder();
      const corpus = ['ip:10.0.0.1:27015', 'ip:[::1]:5000', 'id:76561197960265729', 'str:alice', 'gen:00ff10'].map((s) => enc.encode(s));
      return loop('parseIdentity', budget, seed, corpus, (b) => {
        try {
          parseIdentity(dec.decode(b));
          return true;
        } catch (e) {
          if (e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT') return false;
          throw e;
        }
      });
    },
  },
  {
    name: 'RelayClient.handleDatagram',
    testInputs: 150_000,
    run: (budget, seed) => {
      // A client with two relays, past its first pings: every input comes from a relay it uses.
      const provider = seededCryptoProvider(seed);
      const relayKeys = [provider.generateKeyExchange(), provider.generateKeyExchange()];
      const relays = [
        { address: '10.0.0.1', port: 27100, publicKey: relayKeys[0]?.publicKey as Uint8Array },
        { address: '10.0.0.2', port: 27100, publicKey: relayKeys[1]?.publicKey as Uint8Array },
      ];
      const client = new RelayClient({ relays, provider, identityKey: provider.signingKey(), unixSeconds: () => 1_800_000_000 });
      const keys: HopKeys[] = [];
      let counter = 1;
      // Open a session on both (ping, pong, request, SESSION_OK) so that the fuzz reaches the open state.
      let t = 1;
      let nonce = new Uint8Array(8);
      const answer = (): void => {
        for (let x = client.pollTransmit(); x; x = client.pollTransmit()) {
          if (x.data[0] === RelayMsg.Sealed) continue;
          const m = decodeRelayControl(x.data);
          if (m.type === 'ping') client.handleDatagram(++t, x.destination, encodeRelayControl({ type: 'pong', nonce: m.nonce, cookie: new Uint8Array(20).fill(1), load: 0, drainSeconds: 0 }));
          else if (m.type === 'sessionRequest') {
            nonce = m.clientNonce.slice();
            const i = x.destination.address === '10.0.0.1' ? 0 : 1;
            const k = relayHopKeys(provider, relayKeys[i] as KeyExchangePair, m) as HopKeys;
            keys[i] = k;
            client.handleDatagram(++t, x.destination, sealSessionOk(k, m.clientNonce, 0, { type: 'sessionOk', sessionId: new Uint8Array(8).fill(7 + i), drainSeconds: 0, idleSeconds: 30, token: new Uint8Array(45).fill(3) }));
          }
        }
      };
      client.handleTimeout(t);
      for (let i = 0; i < 4; i++) {
        answer();
        client.handleTimeout(++t);
      }
      if (client.route === null) throw new Error('fuzz setup: the relay client has no route');
      const corpus = relayReplyCorpus(nonce);
      let delivered = 0;
      client.onData = () => void delivered++;
      const r = loop('RelayClient.handleDatagram', budget, seed, corpus, (b) => {
        t += 1000;
        const before = client.stats.refused;
        const i = (t / 1000) & 1;
        const sealed = ((t / 1000) & 2) !== 0 && b[0] !== RelayMsg.DataDown;
        const d = sealed ? sealDown(keys[i] as HopKeys, counter++, b) : b;
        if (!client.handleDatagram(t, relays[i] as { address: string; port: number }, d)) throw new Error('a relay datagram was not taken');
        client.handleTimeout(t);
        for (let x = client.pollTransmit(); x; x = client.pollTransmit());
        for (let e = client.pollEvent(); e; e = client.pollEvent());
        if (client.pollTimeout() === null) throw new Error('the client stopped keeping a deadline');
        return client.stats.refused === before;
      });
      // Junk opens paths (DATA_DOWN on unknown links), never more than the link ids there are, and forgets them.
      if (client.pathCount > 2 * 65536) throw new Error(`fuzz: ${client.pathCount} paths`);
      return { ...r, name: `${r.name}, ${delivered} DATA_DOWN delivered` };
    },
  },
  {
    name: 'handleDatagram (before decryption)',
    testInputs: 500_000,
    run: (budget, seed) => {
      const l = live(seed);
      const from = CLIENT;
      const before = l.server.status(l.sim.now, l.s)?.packetsReceived ?? 0;
      let t = l.sim.now;
      const r = loop('handleDatagram (before decryption)', budget, seed, l.datagrams, (b) => {
        l.server.handleDatagram(++t, from, b);
        drainEndpoint(l.server, t, l.s);
        return false;
      });
      const after = l.server.status(t, l.s)?.packetsReceived ?? 0;
      // Mutated ciphertext never authenticates, and no mutated handshake opens a second connection.
      if (after !== before) throw new Error(`fuzz: ${after - before} mutated packets were accepted`);
      if (l.server.connectionCount > 1) throw new Error('fuzz: a mutated handshake packet created a connection');
      return r;
    },
  },
  {
    name: 'handleDatagram (after decryption)',
    testInputs: 8_000,
    run: (budget, seed) => {
      let l = live(seed);
      let pn = 50_000_000;
      let t = l.sim.now;
      const hdr = new Uint8Array(16);
      const w = new Writer(hdr);
      const pkt = new Uint8Array(70_000);
      let restarts = 0;
      const corpus = l.plaintexts;
      const r = loop('handleDatagram (after decryption)', budget, seed, corpus, (plain) => {
        if (plain.length === 0 || plain.length > 1400) return false;
        if (l.server.state(l.s) !== ConnectionState.Connected) {
          l = live(seed + ++restarts, false);
          pn = 50_000_000;
          t = l.sim.now;
        }
        w.reset(hdr);
        encodeDataHeader(w, { keyPhase: l.keys.sendPhase, destinationCid: l.serverCid, truncatedPn: pn, pnLength: 4 });
        const hl = w.position;
        pkt.set(hdr.subarray(0, hl));
        pkt.set(plain, hl);
        const n = l.keys.seal(pn++, pkt.subarray(0, hl), pkt.subarray(hl, hl + plain.length), pkt, hl);
        l.server.handleDatagram(++t, CLIENT, pkt.slice(0, hl + n));
        drainEndpoint(l.server, t, l.s);
        return l.server.state(l.s) === ConnectionState.Connected;
      });
      return { ...r, name: `${r.name}, ${restarts} reconnects after protocol errors` };
    },
  },
];

/** Runs every target with the budget `budgetOf` gives it, logging a line per target. */
export function runAll(budgetOf: (t: Target) => Budget, seed: number, log: (line: string) => void): TargetResult[] {
  const out: TargetResult[] = [];
  for (const t of TARGETS) {
    const r = t.run(budgetOf(t), seed);
    log(`${r.name}: ${r.execs.toLocaleString('en-US')} inputs in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.execs / (r.ms / 1000)).toLocaleString('en-US')}/s), ${r.accepted.toLocaleString('en-US')} accepted`);
    out.push(r);
  }
  return out;
}
