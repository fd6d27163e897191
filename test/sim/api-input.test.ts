// Arguments from plain JavaScript, in virtual time, on each facade: send flags and lanes / channels that are
// not integers in range are refused with the facade's result (InvalidParam 8 for NetworkingSockets and
// NetworkingMessages, InvalidChannel 32 or ERR_NETLANE_INVALID_ARGUMENT for NetworkManager), never coerced
// into Unreliable or lane 0; and a closed instance opens no socket (counted on netlane:socket:open).
// Replay a failure with NETLANE_SEED=<the seed printed>.
import { strict as assert } from 'node:assert';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { DebugOutputType, NetworkingMessages, Result, SendFlags, type NetworkingMessage, type NetworkingMessagesMessage } from '../../src/index.js';
import { NetlaneError } from '../../src/util/errors.js';
import { pump } from '../support/relayed.js';
import { seedOr, withSeed } from '../support/sim.js';
import { inSim } from '../support/sockets-world.js';
import { World } from '../support/world.js';

/** Flag words that are not a combination of the send flags. */
const BAD_FLAGS: readonly unknown[] = ['reliable', '8', NaN, 1.5, -1, 2, 128, 0x7fffffff, Infinity, null, 8n];
/** Lanes of a connection with one lane that are not that lane (0). */
const BAD_LANES: readonly unknown[] = ['0', 0.5, 1.5, -1, NaN, 1, 254, 255, 256, Infinity, null];
/** NetworkingMessages channels (int32) that are not one. */
const BAD_CHANNELS: readonly unknown[] = ['0', 1.5, NaN, -Infinity, 2 ** 31, -(2 ** 31) - 1, null];
/** NetworkManager channels (0-127) that are not one. */
const BAD_DISCORD_CHANNELS: readonly unknown[] = ['0', 1.5, NaN, -1, 128, Infinity, null];

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : typeof v === 'bigint' ? `${v}n` : String(v));

/** Counts the sockets opened while `fn` runs (every facade and the simulation publish netlane:socket:open). */
function socketsOpened(fn: () => void): number {
  let n = 0;
  const count = (): void => {
    n++;
  };
  diagnosticsChannel.subscribe('netlane:socket:open', count);
  try {
    fn();
  } finally {
    diagnosticsChannel.unsubscribe('netlane:socket:open', count);
  }
  return n;
}

describe('NetworkingSockets: bad arguments and a closed instance', () => {
  it('sendMessageToConnection and sendMessages refuse every bad flag word and lane with InvalidParam and queue nothing; the next good message is number 1', (t) =>
    inSim(t, 6101, (w) => {
      const { server, client, sconn } = w.pair();
      const c = client.sockets;
      const data = new Uint8Array([7]);
      for (const flags of BAD_FLAGS) assert.deepEqual(c.sendMessageToConnection(client.conn, data, flags as number), { result: Result.InvalidParam, messageNumber: 0 }, `flags ${show(flags)}`);
      for (const lane of BAD_LANES) assert.deepEqual(c.sendMessageToConnection(client.conn, data, SendFlags.Reliable, lane as number), { result: Result.InvalidParam, messageNumber: 0 }, `lane ${show(lane)}`);
      for (const flags of BAD_FLAGS) assert.deepEqual(c.sendMessages([{ connection: client.conn, data, flags: flags as number }]), [-Result.InvalidParam], `sendMessages flags ${show(flags)}`);
      for (const lane of BAD_LANES) assert.deepEqual(c.sendMessages([{ connection: client.conn, data, lane: lane as number }]), [-Result.InvalidParam], `sendMessages lane ${show(lane)}`);
      assert.equal(c.configureConnectionLanes(client.conn, '3' as unknown as number), Result.InvalidParam);
      assert.equal(c.getQuickConnectionStatus(client.conn)?.pendingReliable, 0, 'nothing was queued');
      // GNS's UseCurrentThread (16) is a flag netlane accepts; the first message that was sent is number 1.
      assert.deepEqual(c.sendMessageToConnection(client.conn, new Uint8Array([1]), SendFlags.Reliable | 16, 0), { result: Result.OK, messageNumber: 1 });
      const got: NetworkingMessage[] = [];
      w.until(() => (got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? [])), got.length > 0), 5000, 'the good message');
      w.run(50);
      got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? []));
      assert.deepEqual(got.map((m) => [m.data[0], m.lane, m.flags]), [[1, 0, SendFlags.Reliable]], 'only the good message arrived, reliable, on lane 0');
    }));

  it('after close(), connect, createListenSocket and createSocketPair are refused (0, 0, null) and open no socket', (t) =>
    inSim(t, 6102, (w) => {
      const server = w.server();
      const s = w.instance();
      const errors: string[] = [];
      s.setDebugOutputFunction(DebugOutputType.Error, (_l, m) => errors.push(m));
      assert.equal(socketsOpened(() => assert.notEqual(s.connect(`${server.address}:${server.port}`), 0)), 1, 'open: one socket per connection');
      s.close();
      const opened = socketsOpened(() => {
        assert.equal(s.connect(`${server.address}:${server.port}`), 0, 'connect after close');
        assert.equal(s.createListenSocket('0.0.0.0:0'), 0, 'createListenSocket after close');
        assert.equal(s.createSocketPair(true), null, 'createSocketPair(true) after close');
        assert.equal(s.createSocketPair(false), null, 'createSocketPair(false) after close');
      });
      assert.equal(opened, 0, 'no socket opened');
      assert.equal(errors.filter((m) => /closed/.test(m)).length, 4, 'each refusal is in the debug output');
    }));
});

describe('NetworkingMessages: bad arguments and a closed instance', () => {
  it('sendMessageToUser refuses every bad flag word and channel with InvalidParam, makes no session, and the good message arrives; after close() it opens no socket', () => {
    withSeed(seedOr(6201), (seed) => {
      const world = new World(seed, { latencyUs: 1_000 });
      const a = new NetworkingMessages({ bind: '10.0.3.1:0', runtime: world.sim.runtime('10.0.3.1') });
      const b = new NetworkingMessages({ bind: '10.0.3.2:0', runtime: world.sim.runtime('10.0.3.2') });
      const frames = [a, b].map((m) => ({ frame: () => m.runCallbacks() }));
      try {
        const bAddr = `ip:10.0.3.2:${b.localAddress?.port}`;
        b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
        for (const flags of BAD_FLAGS) assert.equal(a.sendMessageToUser(bAddr, Buffer.from('x'), flags as number, 0), Result.InvalidParam, `flags ${show(flags)}`);
        for (const channel of BAD_CHANNELS) assert.equal(a.sendMessageToUser(bAddr, Buffer.from('x'), SendFlags.Reliable, channel as number), Result.InvalidParam, `channel ${show(channel)}`);
        assert.equal(a.getSessionConnectionInfo(bAddr).state, 0, 'no session was made');
        assert.equal(a.sendMessageToUser(bAddr, Buffer.from('good'), SendFlags.Reliable, 3), Result.OK);
        const got: NetworkingMessagesMessage[] = [];
        world.drive(frames, () => (got.push(...b.receiveMessagesOnChannel(3, 10)), got.length > 0), 5_000_000, 'the good message');
        assert.deepEqual(got.map((m) => [Buffer.from(m.payload).toString(), m.flags]), [['good', SendFlags.Reliable]]);
        a.close();
        const opened = socketsOpened(() => {
          assert.equal(a.sendMessageToUser(bAddr, Buffer.from('x'), SendFlags.Reliable, 0), Result.NoConnection, 'sending after close');
          assert.throws(() => a.rebind(), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_STATE', 'rebind after close');
        });
        assert.equal(opened, 0, 'no socket opened');
        console.log(`# virtual ${world.sim.now / 1e6} s, seed ${seed}`);
      } finally {
        a.close();
        b.close();
        world.close();
      }
    });
  });
});

describe('NetworkManager: bad arguments and a closed instance', () => {
  it('bad channels get InvalidChannel, a reliability that is not a boolean is an ERR_NETLANE_INVALID_ARGUMENT; after close() openPeer is ServiceUnavailable and rebind opens no socket', () => {
    withSeed(seedOr(6301), (seed) => {
      const world = new World(seed, { latencyUs: 2_000 });
      const relays = [world.relay().address];
      const a = new NetworkManager({ relays, runtime: world.peerRuntime() });
      const b = new NetworkManager({ relays, runtime: world.peerRuntime() });
      try {
        pump(world, [a, b], () => a.route !== null && b.route !== null, 5_000_000, 'routes');
        const peer = b.getPeerId();
        assert.equal(a.openPeer(peer, b.route as string), DiscordResult.Ok);
        for (const ch of BAD_DISCORD_CHANNELS) {
          assert.equal(a.openChannel(peer, ch as number, true), DiscordResult.InvalidChannel, `openChannel ${show(ch)}`);
          assert.equal(a.sendMessage(peer, ch as number, new Uint8Array(1)), DiscordResult.InvalidChannel, `sendMessage ${show(ch)}`);
          assert.equal(a.closeChannel(peer, ch as number), DiscordResult.InvalidChannel, `closeChannel ${show(ch)}`);
        }
        for (const reliable of ['true', 1, 0, null, undefined]) {
          assert.throws(() => a.openChannel(peer, 0, reliable as unknown as boolean), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT', `reliable ${show(reliable)}`);
        }
        assert.equal(a.sendMessage(peer, 0, new Uint8Array(1)), DiscordResult.InvalidChannel, 'no channel 0 was opened by the bad calls');
        assert.equal(a.openChannel(peer, 0, true), DiscordResult.Ok);
        a.close();
        const opened = socketsOpened(() => {
          assert.equal(a.openPeer(peer, b.route as string), DiscordResult.ServiceUnavailable, 'openPeer after close');
          assert.throws(() => a.rebind(), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_STATE', 'rebind after close');
        });
        assert.equal(opened, 0, 'no socket opened');
      } finally {
        a.close();
        b.close();
        world.close();
      }
    });
  });
});
