// One compliance suite, three facades, in virtual time: NetworkingSockets (direct), NetworkManager and
// NetworkingMessages (through a relay), every peer and relay on its own IP inside one SimNetwork (a
// World). The same checks run against each through a small harness: reliable exactly once and in order
// per channel under loss, unreliable never duplicated, back-pressure with the facade's own "full" code
// and nothing accepted lost, and close reasons. No sockets, no sleeps: time moves only in the
// simulation, and every test names its seed (NETLANE_SEED=<seed> replays it).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, NetworkingSockets, Result, SendFlags, type SocketAddress, type StatusChangedInfo } from '../../src/index.js';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { NetworkingMessages, NetworkingConnectionEnd } from '../../src/api/networking-messages.js';
import type { ConfigOptions } from '../../src/api/networking-sockets.js';
import type { DatagramTransport } from '../../src/io/driver.js';
import type { Runtime } from '../../src/io/runtime.js';
import type { LinkConditions } from '../../src/testing/sim-network.js';
import { World, type Framed } from '../support/world.js';
import { seedOr, withSeed } from '../support/sim.js';

/** The links between every pair of processes: a LAN-like 5 ms each way with 1 ms of jitter (so datagrams reorder). The loss and duplication under test are the facades' own fake conditions (connectionConfig), as in the real-UDP original. */
const LINK: Partial<LinkConditions> = { latencyUs: 5_000, jitterUs: 1_000 };

interface Received {
  readonly channel: number;
  readonly reliable: boolean;
  readonly data: Uint8Array;
}

/** A connected pair A -> B behind one facade, in a World. `frame()` is one frame on both sides (flush, callbacks). */
interface Harness extends Framed {
  /** A sends to B. 'ok', 'full' (the facade's own code for a full buffer is in `fullCode`), or another code. */
  send(reliable: boolean, channel: number, data: Uint8Array): 'ok' | 'full' | number;
  /** The facade's result code when a send buffer is full. */
  readonly fullCode: number;
  /** B sends to A (used to make B notice that A is gone). */
  sendBack(data: Uint8Array): void;
  /** Messages B received since the last call. */
  take(): Received[];
  /** A closes in an orderly way (application reason 1234 where the facade takes one). */
  closeFromA(): void;
  /** A's network goes silent: no close, nothing in or out (its sockets are cut off in the simulation). */
  vanishA(): void;
  /** The end reason B reports for its connection or session with A; 'quiet' if it ended without one (Messages by design); null while it has not ended. */
  endSeenByB(): number | 'quiet' | null;
  close(): void;
}

type Factory = (world: World, config: ConfigOptions) => Harness;

/** A new peer runtime of `world` that keeps the sockets it opens, so that the peer can be cut off later. */
function trackedPeer(world: World): { runtime: Runtime; sockets: DatagramTransport[] } {
  const base = world.peerRuntime();
  const sockets: DatagramTransport[] = [];
  const openUdp: Runtime['openUdp'] = (options) => {
    const s = base.openUdp(options);
    sockets.push(s);
    return s;
  };
  return { runtime: { ...base, openUdp }, sockets };
}

/** Partitions every socket of a peer from `far`, both directions: the peer is not told, it just hears nothing more. */
function cutOff(world: World, sockets: readonly DatagramTransport[], far: SocketAddress): void {
  for (const s of sockets) world.sim.partitionAddresses(s.local, far);
}

const socketsPair: Factory = (world, config) => {
  const server = new NetworkingSockets({ runtime: world.peerRuntime() });
  const a = trackedPeer(world);
  const client = new NetworkingSockets({ runtime: a.runtime });
  const ends: StatusChangedInfo[] = [];
  let sconn = 0;
  const listen = server.createListenSocket('0.0.0.0:27015', {
    ...config,
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      if (info.info.state === ConnectionState.Connecting) {
        server.acceptConnection(info.connection);
        sconn = info.connection;
      } else if (info.info.state === ConnectionState.ClosedByPeer || info.info.state === ConnectionState.ProblemDetectedLocally) ends.push(info);
    },
  });
  const serverAddress = server.getListenSocketAddress(listen) as SocketAddress;
  const conn = client.connect(serverAddress, config);
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
      cutOff(world, a.sockets, serverAddress);
    },
    endSeenByB() {
      return ends[0]?.info.endReason ?? null;
    },
    close() {
      client.close();
      server.close();
    },
  };
  world.drive([h], () => sconn !== 0 && client.getConnectionInfo(conn)?.state === ConnectionState.Connected && server.getConnectionInfo(sconn)?.state === ConnectionState.Connected, 5_000_000, 'connection');
  assert.equal(client.configureConnectionLanes(conn, 4), Result.OK);
  return h;
};

/** What both relayed facades take here. */
interface RelayedOptions {
  readonly relays: string[];
  readonly connectionConfig: ConfigOptions;
  readonly runtime: Runtime;
}

/** A relay of `world` and two facades on it, each on its own IP; A's sockets are kept so that A can be cut off from the relay. */
function relayedPair<T extends { close(): void }>(world: World, config: ConfigOptions, build: (options: RelayedOptions) => T): { a: T; b: T; cutOffA: () => void; close: () => void } {
  const relay = world.relay();
  const relays = [relay.address];
  const peerA = trackedPeer(world);
  const a = build({ relays, connectionConfig: config, runtime: peerA.runtime });
  const b = build({ relays, connectionConfig: config, runtime: world.peerRuntime() });
  return {
    a,
    b,
    cutOffA: () => cutOff(world, peerA.sockets, relay.server.local),
    close: () => {
      a.close();
      b.close();
      relay.server.close();
    },
  };
}

const managerPair: Factory = (world, config) => {
  const { a, b, cutOffA, close } = relayedPair(world, config, (o) => new NetworkManager(o));
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
    vanishA: cutOffA,
    endSeenByB() {
      return b.peerStatus(a.getPeerId())?.lastEnd?.reason ?? null;
    },
    close,
  };
  world.drive([h], () => a.route !== null && b.route !== null, 5_000_000, 'routes');
  a.openPeer(b.getPeerId(), b.route as string);
  b.openPeer(a.getPeerId(), a.route as string);
  for (let ch = 0; ch < 8; ch++) {
    a.openChannel(b.getPeerId(), ch, reliable(ch));
    b.openChannel(a.getPeerId(), ch, reliable(ch));
  }
  world.drive([h], () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5_000_000, 'connection');
  return h;
};

const messagesPair: Factory = (world, config) => {
  const { a, b, cutOffA, close } = relayedPair(world, config, (o) => new NetworkingMessages(o));
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
    vanishA: cutOffA,
    endSeenByB() {
      if (failure !== null) return failure;
      return b.getSessionConnectionInfo(a.getIdentity()).state === 0 ? 'quiet' : null;
    },
    close,
  };
  world.drive([h], () => a.registered && b.registered, 5_000_000, 'registration');
  // The session: A says hello, B accepts.
  assert.equal(a.sendMessageToUser(b.getIdentity(), new Uint8Array([0]), SendFlags.Reliable, 3), Result.OK);
  let hello = 0;
  world.drive([h], () => hello > 0, 5_000_000, 'session', () => (hello += b.receiveMessagesOnChannel(3, 10).length));
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

/**
 * Runs `body` in a new World seeded from NETLANE_SEED or `defaultSeed`. The seed and the virtual time the
 * scenario covered are reported under the test (and a failure names its seed). Relays still open at the
 * end are closed.
 */
function inWorld(t: TestContext, defaultSeed: number, body: (world: World) => void): void {
  const seed = seedOr(defaultSeed);
  const world = new World(seed, LINK);
  try {
    withSeed(seed, () => body(world));
    t.diagnostic(`seed ${seed}: ${world.sim.now / 1e6} s of virtual time`);
  } catch (e) {
    t.diagnostic(`failing seed ${seed} at ${world.sim.now / 1e6} s of virtual time (replay: NETLANE_SEED=${seed})`);
    throw e;
  } finally {
    world.close();
  }
}

FACADES.forEach(([name, make], f) => {
  const seed = (scenario: number): number => 9100 + 10 * f + scenario;
  /** Makes a pair of this facade in `world`, runs `body` on it and closes it, whatever happens. */
  const withPair = <T>(world: World, config: ConfigOptions, body: (h: Harness) => T): T => {
    const h = make(world, config);
    try {
      return body(h);
    } finally {
      h.close();
    }
  };
  describe(`compliance: ${name}`, () => {
    it('reliable messages on 4 channels under 10 % loss arrive exactly once, in order per channel', (t) => {
      inWorld(t, seed(1), (world) =>
        withPair(world, { FakePacketLoss_Send: 10, FakePacketLoss_Recv: 10 }, (h) => {
          const N = 400;
          for (let i = 0; i < N; i++) assert.equal(h.send(true, i % 4, numbered(i)), 'ok');
          const next = [0, 1, 2, 3];
          let count = 0;
          world.drive([h], () => count === N, 20_000_000, `${N} reliable messages`, () => {
            for (const m of h.take()) {
              assert.equal(m.reliable, true);
              const i = u32(m.data);
              assert.equal(i % 4, m.channel, 'on its channel');
              assert.equal(i, next[m.channel], `channel ${m.channel}: exactly once, in order`);
              next[m.channel] = i + 4;
              count++;
            }
          });
        }),
      );
    });

    it('unreliable messages under 30 % duplication and 5 % loss are never delivered twice', (t) => {
      inWorld(t, seed(2), (world) =>
        withPair(world, { FakePacketDup_Send: 30, FakePacketLoss_Send: 5 }, (h) => {
          const N = 300;
          const seen = new Set<number>();
          const once = (m: Received): void => {
            const i = u32(m.data);
            assert.equal(m.reliable, false);
            assert.ok(!seen.has(i), `unreliable ${i} delivered twice`);
            seen.add(i);
          };
          // Bursts of 10, a frame and 2 ms of virtual time apart.
          for (let i = 0; i < N; i++) {
            h.send(false, 1, numbered(i));
            if (i % 10 === 9) world.run([h], 2_000);
          }
          // A reliable marker after them (on channel 2: a Manager channel has one reliability): once it is in, the unreliable ones have had their chance.
          assert.equal(h.send(true, 2, numbered(1_000_000)), 'ok');
          let done = false;
          world.drive([h], () => done, 10_000_000, 'marker', () => {
            for (const m of h.take()) {
              if (u32(m.data) === 1_000_000) done = true;
              else once(m);
            }
          });
          // Late copies (a duplicate comes up to FakePacketDup_TimeMax, 10 ms, after its original) are still never a second delivery.
          world.run([h], 50_000, () => h.take().forEach(once));
          assert.ok(seen.size > N / 2, `most unreliable messages arrive (${seen.size}/${N})`);
        }),
      );
    });

    it("back-pressure: a burst answers the facade's own full code, and every message accepted arrives in order", (t) => {
      inWorld(t, seed(3), (world) =>
        withPair(world, {}, (h) => {
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
          world.drive([h], () => next === accepted, 30_000_000, `${accepted} accepted messages`, () => {
            for (const m of h.take()) {
              assert.equal(u32(m.data), next, 'every accepted message, in order');
              next++;
            }
          });
          assert.equal(h.send(true, 0, numbered(next, 1024)), 'ok', 'room again once drained');
        }),
      );
    });

    it('close reasons: an orderly close reaches the peer as the facade defines; a peer that vanishes ends with 5003 (timeout) while data is owed', (t) => {
      inWorld(t, seed(4), (world) => {
        /** What B reports for its end with A, within `maxUs` of virtual time after `act`. */
        const endAfter = (h: Harness, act: () => void, maxUs: number, what: string): number | 'quiet' | null => {
          act();
          let end: number | 'quiet' | null = null;
          world.drive([h], () => (end = h.endSeenByB()) !== null, maxUs, what);
          return end;
        };
        const expected: Record<string, number | 'quiet'> = { NetworkingSockets: 1234, NetworkManager: 1000, NetworkingMessages: 'quiet' };
        const orderly = withPair(world, {}, (h) => endAfter(h, () => h.closeFromA(), 5_000_000, 'orderly close'));
        assert.equal(orderly, expected[name], 'Messages: no callback when a peer closes the session (UDP semantics, as the seed says)');
        const vanished = withPair(world, { TimeoutConnected: 1500 }, (h) =>
          endAfter(
            h,
            () => {
              h.vanishA();
              h.sendBack(new Uint8Array([1, 2, 3]));
            },
            8_000_000,
            'timeout',
          ),
        );
        assert.equal(vanished, NetworkingConnectionEnd.CONNECTION_END_MISC_TIMEOUT);
      });
    });
  });
});
