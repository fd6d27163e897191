// One compliance suite, three facades: NetworkingSockets (direct UDP), NetworkManager and
// NetworkingMessages (through an embedded relay). The same checks run against each through a small
// harness: reliable exactly once and in order per channel under loss, unreliable never duplicated,
// back-pressure with the facade's own "full" code and nothing accepted lost, and close reasons.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, NetworkingSockets, Result, SendFlags, type StatusChangedInfo } from '../../src/index.js';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { NetworkingMessages, NetworkingConnectionEnd } from '../../src/api/networking-messages.js';
import type { ConfigOptions } from '../../src/api/networking-sockets.js';
import { addressKey } from '../../src/relay/protocol.js';
import { RelayServer } from '../../src/io/relay-server.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Received {
  readonly channel: number;
  readonly reliable: boolean;
  readonly data: Uint8Array;
}

/** A connected pair A -> B behind one facade. */
interface Harness {
  /** A sends to B. 'ok', 'full' (the facade's own code for a full buffer is in `fullCode`), or another code. */
  send(reliable: boolean, channel: number, data: Uint8Array): 'ok' | 'full' | number;
  /** The facade's result code when a send buffer is full. */
  readonly fullCode: number;
  /** B sends to A (used to make B notice that A is gone). */
  sendBack(data: Uint8Array): void;
  /** One frame on both sides (flush, callbacks). */
  frame(): void;
  /** Messages B received since the last call. */
  take(): Received[];
  /** A closes in an orderly way (application reason 1234 where the facade takes one). */
  closeFromA(): void;
  /** A's network goes silent: no close, nothing in or out. */
  vanishA(): void;
  /** The end reason B reports for its connection or session with A; 'quiet' if it ended without one (Messages by design); null while it has not ended. */
  endSeenByB(): number | 'quiet' | null;
  close(): void;
}

type Factory = (config: ConfigOptions) => Promise<Harness>;

async function until(h: Harness, done: () => boolean, timeoutMs: number, what: string, each?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    h.frame();
    each?.();
    if (done()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(3);
  }
}

const socketsPair: Factory = async (config) => {
  const server = new NetworkingSockets({ fakeSeed: 11 });
  const client = new NetworkingSockets({ fakeSeed: 12 });
  const ends: StatusChangedInfo[] = [];
  let sconn = 0;
  const listen = server.createListenSocket('127.0.0.1:0', {
    ...config,
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      if (info.info.state === ConnectionState.Connecting) {
        server.acceptConnection(info.connection);
        sconn = info.connection;
      } else if (info.info.state === ConnectionState.ClosedByPeer || info.info.state === ConnectionState.ProblemDetectedLocally) ends.push(info);
    },
  });
  const port = server.getListenSocketAddress(listen)?.port as number;
  const conn = client.connect(`127.0.0.1:${port}`, config);
  const h: Harness = {
    fullCode: Result.LimitExceeded,
    send(reliable, channel, data) {
      const r = client.sendMessageToConnection(conn, data, reliable ? SendFlags.Reliable : SendFlags.Unreliable, channel).result;
      return r === Result.OK ? 'ok' : r === Result.LimitExceeded ? 'full' : r;
    },
    sendBack(data) {
      server.sendMessageToConnection(sconn, data, SendFlags.Reliable);
    },
    frame() {
      client.runCallbacks();
      server.runCallbacks();
    },
    take() {
      return (server.receiveMessagesOnConnection(sconn, 1000) ?? []).map((m) => ({ channel: m.lane, reliable: (m.flags & SendFlags.Reliable) !== 0, data: m.data }));
    },
    closeFromA() {
      client.closeConnection(conn, 1234, 'bye');
    },
    vanishA() {
      client.setConnectionConfigValue(conn, 'FakePacketLoss_Send', 100);
      client.setConnectionConfigValue(conn, 'FakePacketLoss_Recv', 100);
    },
    endSeenByB() {
      return ends[0]?.info.endReason ?? null;
    },
    close() {
      client.close();
      server.close();
    },
  };
  await until(h, () => sconn !== 0 && client.getConnectionInfo(conn)?.state === ConnectionState.Connected && server.getConnectionInfo(sconn)?.state === ConnectionState.Connected, 5000, 'connected');
  assert.equal(client.configureConnectionLanes(conn, 4), Result.OK);
  return h;
};

const managerPair: Factory = async (config) => {
  const relay = RelayServer.open({ open: true });
  const relays = [addressKey(relay.local)];
  const a = new NetworkManager({ relays, connectionConfig: config });
  const b = new NetworkManager({ relays, connectionConfig: config });
  const got: Received[] = [];
  const reliable = (ch: number): boolean => ch % 2 === 0; // the channels' reliability is fixed when opened
  b.on('message', (_peer, channel, data) => got.push({ channel, reliable: reliable(channel), data }));
  const h: Harness = {
    fullCode: DiscordResult.InsufficientBuffer,
    send(rel, channel, data) {
      const ch = channel * 2 + (rel ? 0 : 1);
      const r = a.sendMessage(b.getPeerId(), ch, data);
      return r === DiscordResult.Ok ? 'ok' : r === DiscordResult.InsufficientBuffer ? 'full' : r;
    },
    sendBack(data) {
      b.sendMessage(a.getPeerId(), 0, data);
    },
    frame() {
      for (const m of [a, b]) {
        m.runCallbacks();
        m.flush();
      }
    },
    take() {
      // The harness's channel c rides manager channels 2c (reliable) and 2c+1 (unreliable).
      return got.splice(0).map((m) => ({ ...m, channel: m.channel >> 1 }));
    },
    closeFromA() {
      a.closePeer(b.getPeerId());
    },
    vanishA() {
      a.relay.close();
    },
    endSeenByB() {
      return b.peerStatus(a.getPeerId())?.lastEnd?.reason ?? null;
    },
    close() {
      a.close();
      b.close();
      relay.close();
    },
  };
  await until(h, () => a.route !== null && b.route !== null, 5000, 'routes');
  a.openPeer(b.getPeerId(), b.route as string);
  b.openPeer(a.getPeerId(), a.route as string);
  for (let ch = 0; ch < 8; ch++) {
    a.openChannel(b.getPeerId(), ch, reliable(ch));
    b.openChannel(a.getPeerId(), ch, reliable(ch));
  }
  await until(h, () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5000, 'connected');
  return h;
};

const messagesPair: Factory = async (config) => {
  const relay = RelayServer.open({ open: true });
  const relays = [addressKey(relay.local)];
  const a = new NetworkingMessages({ relays, connectionConfig: config });
  const b = new NetworkingMessages({ relays, connectionConfig: config });
  let failure: number | null = null;
  b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
  b.on('sessionFailed', (f) => (failure = f.reason));
  const h: Harness = {
    fullCode: Result.LimitExceeded,
    send(reliable, channel, data) {
      const r = a.sendMessageToUser(b.getIdentity(), data, reliable ? SendFlags.Reliable : SendFlags.Unreliable, channel);
      return r === Result.OK ? 'ok' : r === Result.LimitExceeded ? 'full' : r;
    },
    sendBack(data) {
      b.sendMessageToUser(a.getIdentity(), data, SendFlags.Reliable, 0);
    },
    frame() {
      a.runCallbacks();
      b.runCallbacks();
    },
    take() {
      const out: Received[] = [];
      for (let ch = 0; ch < 4; ch++) for (const m of b.receiveMessagesOnChannel(ch, 1000)) out.push({ channel: m.channel, reliable: m.flags === SendFlags.Reliable, data: m.payload });
      return out;
    },
    closeFromA() {
      a.closeSessionWithUser(b.getIdentity());
    },
    vanishA() {
      a.relay?.close();
    },
    endSeenByB() {
      if (failure !== null) return failure;
      return b.getSessionConnectionInfo(a.getIdentity()).state === 0 ? 'quiet' : null;
    },
    close() {
      a.close();
      b.close();
      relay.close();
    },
  };
  await until(h, () => a.registered && b.registered, 5000, 'registered');
  // The session: A says hello, B accepts.
  assert.equal(a.sendMessageToUser(b.getIdentity(), new Uint8Array([0]), SendFlags.Reliable, 3), Result.OK);
  let hello = 0;
  await until(h, () => hello > 0, 5000, 'the session', () => (hello += b.receiveMessagesOnChannel(3, 10).length));
  return h;
};

const FACADES: [string, Factory][] = [
  ['NetworkingSockets', socketsPair],
  ['NetworkManager', managerPair],
  ['NetworkingMessages', messagesPair],
];

const u32 = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0);
function numbered(n: number, size = 8): Uint8Array {
  const d = new Uint8Array(size);
  new DataView(d.buffer).setUint32(0, n);
  return d;
}

for (const [name, make] of FACADES) {
  describe(`compliance: ${name}`, () => {
    it('reliable messages on 4 channels under 10 % loss arrive exactly once, in order per channel', async () => {
      const h = await make({ FakePacketLoss_Send: 10, FakePacketLoss_Recv: 10 });
      try {
        const N = 400;
        for (let i = 0; i < N; i++) assert.equal(h.send(true, i % 4, numbered(i)), 'ok');
        const next = [0, 1, 2, 3];
        let count = 0;
        await until(h, () => count === N, 20_000, `${N} reliable messages`, () => {
          for (const m of h.take()) {
            assert.equal(m.reliable, true);
            const i = u32(m.data);
            assert.equal(i % 4, m.channel, 'on its channel');
            assert.equal(i, next[m.channel], `channel ${m.channel}: exactly once, in order`);
            next[m.channel] = i + 4;
            count++;
          }
        });
      } finally {
        h.close();
      }
    });

    it('unreliable messages under 30 % duplication and 5 % loss are never delivered twice', async () => {
      const h = await make({ FakePacketDup_Send: 30, FakePacketLoss_Send: 5 });
      try {
        const N = 300;
        const seen = new Set<number>();
        for (let i = 0; i < N; i++) {
          h.send(false, 1, numbered(i));
          if (i % 10 === 9) {
            h.frame();
            await sleep(2);
          }
        }
        // A reliable marker after them, on the same channel: once it is in, the unreliable ones have had their chance.
        assert.equal(h.send(true, 2, numbered(1_000_000)), 'ok');
        let done = false;
        await until(h, () => done, 10_000, 'the marker', () => {
          for (const m of h.take()) {
            const i = u32(m.data);
            if (i === 1_000_000) done = true;
            else {
              assert.equal(m.reliable, false);
              assert.ok(!seen.has(i), `unreliable ${i} delivered twice`);
              seen.add(i);
            }
          }
        });
        await sleep(50);
        for (const m of h.take()) assert.ok(!seen.has(u32(m.data)), 'no late duplicate');
        assert.ok(seen.size > N / 2, `most unreliable messages arrive (${seen.size}/${N})`);
      } finally {
        h.close();
      }
    });

    it("back-pressure: a burst answers the facade's own full code, and every message accepted arrives in order", async () => {
      const h = await make({});
      try {
        let accepted = 0;
        let full = false;
        for (let i = 0; i < 20_000 && !full; i++) {
          const r = h.send(true, 0, numbered(accepted, 1024));
          if (r === 'ok') accepted++;
          else if (r === 'full') full = true;
          else assert.fail(`unexpected result ${r}`);
        }
        assert.ok(full, `the send buffer filled (after ${accepted} messages); the facade's code for it is ${h.fullCode}`);
        let next = 0;
        await until(h, () => next === accepted, 30_000, `${accepted} accepted messages`, () => {
          for (const m of h.take()) {
            assert.equal(u32(m.data), next, 'every accepted message, in order');
            next++;
          }
        });
        assert.equal(h.send(true, 0, numbered(next, 1024)), 'ok', 'room again once drained');
      } finally {
        h.close();
      }
    });

    it('close reasons: an orderly close reaches the peer as the facade defines; a peer that vanishes ends with 5003 (timeout) while data is owed', async () => {
      const orderly = await make({});
      try {
        orderly.closeFromA();
        let end: number | 'quiet' | null = null;
        await until(orderly, () => (end = orderly.endSeenByB()) !== null, 5000, 'the orderly close');
        const expected: Record<string, number | 'quiet'> = { NetworkingSockets: 1234, NetworkManager: 1000, NetworkingMessages: 'quiet' };
        assert.equal(end, expected[name], 'Messages: no callback when a peer closes the session (UDP semantics, as the seed says)');
      } finally {
        orderly.close();
      }
      const h = await make({ TimeoutConnected: 1500 });
      try {
        h.vanishA();
        h.sendBack(new Uint8Array([1, 2, 3]));
        let end: number | 'quiet' | null = null;
        await until(h, () => (end = h.endSeenByB()) !== null, 8000, 'the timeout');
        assert.equal(end, NetworkingConnectionEnd.CONNECTION_END_MISC_TIMEOUT);
      } finally {
        h.close();
      }
    });
  });
}
