// NetworkingSockets (the GameNetworkingSockets API) in virtual time: every instance on its own virtual IP
// inside one SimNetwork (a World), so callbacks, states, poll groups, lanes, configuration scopes, fake
// conditions, close reasons, timeouts, stats, socket pairs and garbage datagrams are tested without a
// socket, a sleep or the wall clock. What needs the real kernel (IPv4 and IPv6 on loopback, dual stack,
// EADDRINUSE, a socket pair on real UDP) is in test/integration/sockets.test.ts. Every test reports its
// seed; a failure names it (replay: NETLANE_SEED=<seed>).
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ConfigScope, ConnectionState, GetConfigValueResult, Result, SendFlags, type NetworkingMessage, type NetworkingSockets, type StatusChangedInfo } from '../../src/index.js';
import { SeededRng } from '../../src/util/rng.js';
import { MS, inSim } from '../support/sockets-world.js';

const LOSSY = { FakePacketLoss_Send: 10, FakePacketLag_Send: 20 };

function collect(into: NetworkingMessage[], batch: NetworkingMessage[] | null): void {
  assert.ok(batch, 'receive on a valid handle returns an array');
  into.push(...batch);
}

describe('NetworkingSockets in virtual time: connections', () => {
  it('flushMessagesOnConnection sends what was queued inside the call, as GNS does; a send alone waits for the pass', (t) =>
    inSim(t, 4104, (w) => {
      const { client } = w.pair();
      const sim = w.world.sim;
      let sent = 0;
      sim.onSend = () => void sent++;
      assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array(100), SendFlags.Unreliable, 0).result, Result.OK);
      assert.equal(sent, 0, 'a send without NoNagle is held for Nagle (or the pass of its turn)');
      assert.equal(client.sockets.flushMessagesOnConnection(client.conn), Result.OK);
      assert.equal(sent, 1, 'the flush put the message on the wire before returning');
      sim.onSend = null;
    }));
  it('connects, accepts, and carries reliable and unreliable traffic through 10% loss and 20 ms lag each way', (t) =>
    inSim(t, 4101, (w) => {
      const { server, client, sconn } = w.pair(LOSSY, LOSSY);
      assert.equal(server.sockets.getConnectionInfo(sconn)?.state, ConnectionState.Connected);
      assert.equal(server.sockets.getConnectionInfo(sconn)?.listenSocket, server.listen);
      const got: NetworkingMessage[] = [];
      const N = 200;
      for (let i = 0; i < N; i++) {
        const r = client.sockets.sendMessageToConnection(client.conn, new TextEncoder().encode(`loot ${i}`), SendFlags.Reliable);
        assert.equal(r.result, Result.OK);
        assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array([i]), SendFlags.UnreliableNoNagle, 0).result, Result.OK);
        // Positions go one per packet, so that loss shows on them: each iteration is its own event-loop turn,
        // whose service pass sends what it queued (NoNagle: at once). Sends of one turn would share packets.
        w.world.sim.runFor(0);
        if (i % 20 === 19) w.run(5);
      }
      w.until(() => {
        collect(got, server.sockets.receiveMessagesOnConnection(sconn, 100));
        return got.filter((m) => m.flags === SendFlags.Reliable).length >= N;
      }, 20_000, 'all reliable messages');
      // Unreliable stragglers (lag is 20 ms) have 100 ms more to arrive.
      w.run(100);
      collect(got, server.sockets.receiveMessagesOnConnection(sconn, 1000));
      const reliable = got.filter((m) => m.flags === SendFlags.Reliable).map((m) => new TextDecoder().decode(m.data));
      assert.deepEqual(reliable, Array.from({ length: N }, (_, i) => `loot ${i}`), 'reliable: each once, in order');
      const unreliable = got.filter((m) => m.flags === SendFlags.Unreliable);
      const numbers = new Set(unreliable.map((m) => m.messageNumber));
      assert.equal(numbers.size, unreliable.length, 'unreliable: never duplicated');
      assert.ok(unreliable.length < N && unreliable.length > N * 0.6, `unreliable: some lost to 10% loss, most arrive (${unreliable.length}/${N})`);
      const m = got[0] as NetworkingMessage;
      assert.equal(m.connection, sconn);
      assert.ok(m.identityPeer.startsWith('id:'), 'messages carry the peer identity');
      assert.ok(m.timeReceived > 0 && m.timeReceived <= server.sockets.time());
      const st = client.sockets.getQuickConnectionStatus(client.conn);
      assert.ok(st && st.ping >= 35, `ping shows the 2 x 20 ms lag (${st?.ping} ms)`);
      const detail = client.sockets.getDetailedConnectionStatus(client.conn) ?? '';
      assert.match(detail, /Lost: [1-9]/, 'the sender counted lost packets');
    }));

  it('carries 512 KiB messages both ways, intact', (t) =>
    inSim(t, 4102, (w) => {
      const { server, client, sconn } = w.pair();
      const big = new Uint8Array(512 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
      const digest = createHash('sha256').update(big).digest('hex');
      assert.equal(client.sockets.sendMessageToConnection(client.conn, big, SendFlags.Reliable).result, Result.OK);
      assert.equal(server.sockets.sendMessageToConnection(sconn, big, SendFlags.Reliable).result, Result.OK);
      const atServer: NetworkingMessage[] = [];
      const atClient: NetworkingMessage[] = [];
      w.until(() => {
        collect(atServer, server.sockets.receiveMessagesOnConnection(sconn));
        collect(atClient, client.sockets.receiveMessagesOnConnection(client.conn));
        return atServer.length > 0 && atClient.length > 0;
      }, 10_000, 'both big messages');
      for (const m of [atServer[0], atClient[0]] as NetworkingMessage[]) {
        assert.equal(m.size, big.length);
        assert.equal(createHash('sha256').update(m.data).digest('hex'), digest);
      }
      assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array(512 * 1024 + 1), SendFlags.Reliable).result, Result.InvalidParam, 'over the limit: InvalidParam');
    }));

  it('keeps lanes apart and refuses a lane that was not configured', (t) =>
    inSim(t, 4103, (w) => {
      const { server, client, sconn } = w.pair();
      assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array(1), SendFlags.Reliable, 2).result, Result.InvalidParam);
      assert.equal(client.sockets.configureConnectionLanes(client.conn, 3, [0, 0, 1], [1, 3, 1]), Result.OK);
      assert.equal(client.sockets.configureConnectionLanes(client.conn, 2), Result.InvalidParam, 'lanes cannot be removed');
      for (let i = 0; i < 30; i++) assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array([i % 3, i]), SendFlags.Reliable, i % 3).result, Result.OK);
      const got: NetworkingMessage[] = [];
      w.until(() => {
        collect(got, server.sockets.receiveMessagesOnConnection(sconn));
        return got.length >= 30;
      }, 5000, 'lane messages');
      for (const m of got) assert.equal(m.lane, m.data[0], 'each message arrives on the lane it was sent on');
      for (let lane = 0; lane < 3; lane++) {
        const nums = got.filter((m) => m.lane === lane).map((m) => m.messageNumber);
        assert.deepEqual(nums, Array.from({ length: 10 }, (_, i) => i + 1), `lane ${lane}: numbered 1.. in order`);
      }
      const rt = client.sockets.getConnectionRealTimeStatus(client.conn, 3);
      assert.equal(rt.result, Result.OK);
      assert.equal(rt.lanes.length, 3);
      assert.equal(client.sockets.getConnectionRealTimeStatus(client.conn, 4).result, Result.InvalidParam);
    }));

  it('tells the peer the close reason, and linger delivers queued reliable data after close', (t) =>
    inSim(t, 4104, (w) => {
      const { server, client, sconn } = w.pair({}, { SendRateMax: 2_000_000 });
      const chunk = new Uint8Array(64 * 1024).fill(7);
      for (let i = 0; i < 6; i++) assert.equal(client.sockets.sendMessageToConnection(client.conn, chunk, SendFlags.Reliable).result, Result.OK);
      assert.equal(client.sockets.closeConnection(client.conn, 1234, 'match over', true), true);
      assert.equal(client.sockets.closeConnection(client.conn, 1234, 'again', true), false, 'closing twice is harmless');
      assert.equal(client.sockets.sendMessageToConnection(client.conn, chunk, SendFlags.Reliable).result, Result.InvalidParam, 'the handle is gone');
      const got: NetworkingMessage[] = [];
      w.until(() => {
        collect(got, server.sockets.receiveMessagesOnConnection(sconn));
        return server.sockets.getConnectionInfo(sconn)?.state === ConnectionState.ClosedByPeer;
      }, 10_000, 'closed by peer');
      collect(got, server.sockets.receiveMessagesOnConnection(sconn, 100));
      assert.equal(got.length, 6, 'all reliable data queued before the lingering close arrived');
      const info = server.sockets.getConnectionInfo(sconn);
      assert.equal(info?.endReason, 1234);
      assert.equal(info?.endDebug, 'match over');
      const last = server.events.at(-1);
      assert.equal(last?.info.state, ConnectionState.ClosedByPeer, 'a status callback reported it');
      assert.equal(last?.oldState, ConnectionState.Connected);
      assert.equal(server.sockets.sendMessageToConnection(sconn, chunk, SendFlags.Reliable).result, Result.NoConnection);
      assert.equal(server.sockets.closeConnection(sconn), true);
    }));

  it('times out a peer that vanishes', (t) =>
    inSim(t, 4105, (w) => {
      const { client } = w.pair({}, { TimeoutConnected: 1000, KeepaliveInterval: 200 });
      const t0 = client.sockets.time();
      // The server vanishes without a word: from now on nothing it sends arrives.
      assert.ok(client.sockets.setConnectionConfigValue(client.conn, 'FakePacketLoss_Recv', 100));
      w.until(() => client.sockets.getConnectionInfo(client.conn)?.state === ConnectionState.ProblemDetectedLocally, 5000, 'timeout');
      const waited = (client.sockets.time() - t0) / MS;
      const info = client.sockets.getConnectionInfo(client.conn);
      assert.equal(info?.endReason, 5003);
      assert.ok(waited >= 900 && waited < 4000, `timed out after ${waited} ms with TimeoutConnected 1000`);
      assert.equal(client.events.at(-1)?.info.state, ConnectionState.ProblemDetectedLocally);
    }));
});

describe('NetworkingSockets in virtual time: poll groups', () => {
  it('receives from 100 connections through one poll group, each message attributed to its connection', (t) =>
    inSim(t, 4201, (w) => {
      // One address makes 100 connections at once: more pending than the default per-address limit (16).
      const server = w.server({ Netlane_MaxPendingPerAddress: 100 });
      const clients = w.instance();
      const group = server.sockets.createPollGroup();
      const conns: number[] = [];
      for (let i = 0; i < 100; i++) {
        const c = clients.connect(`${server.address}:${server.port}`);
        assert.notEqual(c, 0);
        clients.setConnectionUserData(c, i);
        conns.push(c);
      }
      w.until(() => conns.every((c) => clients.getConnectionInfo(c)?.state === ConnectionState.Connected), 10_000, '100 connections');
      assert.equal(server.conns.length, 100);
      for (const s of server.conns) assert.ok(server.sockets.setConnectionPollGroup(s, group));
      for (const [i, c] of conns.entries()) {
        for (let k = 0; k < 5; k++) assert.equal(clients.sendMessageToConnection(c, new Uint8Array([i, k]), SendFlags.Reliable).result, Result.OK);
      }
      const got: NetworkingMessage[] = [];
      w.until(() => {
        got.push(...(server.sockets.receiveMessagesOnPollGroup(group, 64) ?? []));
        return got.length >= 500;
      }, 10_000, '500 messages');
      assert.equal(got.length, 500);
      const byConn = new Map<number, number[][]>();
      for (const m of got) {
        const list = byConn.get(m.connection) ?? [];
        list.push([...m.data]);
        byConn.set(m.connection, list);
      }
      assert.equal(byConn.size, 100, 'every connection was heard');
      for (const list of byConn.values()) {
        const sender = list[0]?.[0];
        assert.deepEqual(list, [0, 1, 2, 3, 4].map((k) => [sender, k]), 'per connection: its own messages, in order');
      }
      assert.equal(server.sockets.receiveMessagesOnPollGroup(group)?.length, 0);
      assert.equal(server.sockets.receiveMessagesOnListenSocket(server.listen)?.length, 0, 'messages taken through the group are gone from the listen socket');
      assert.ok(server.sockets.destroyPollGroup(group));
      assert.equal(server.sockets.receiveMessagesOnPollGroup(group), null, 'a destroyed group is an unknown handle');
      assert.equal(server.sockets.setConnectionPollGroup(server.conns[0] as number, group), false);
    }));
});

describe('NetworkingSockets in virtual time: socket pairs', () => {
  for (const loopback of [false, true]) {
    it(`createSocketPair(${loopback}): connected at once without callbacks, traffic both ways, close seen by the other end`, (t) =>
      inSim(t, 4301 + Number(loopback), (w) => {
        const sockets = w.instance();
        const events: StatusChangedInfo[] = [];
        sockets.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (i: StatusChangedInfo) => events.push(i));
        const pair = sockets.createSocketPair(loopback);
        assert.ok(pair);
        const [a, b] = pair;
        assert.equal(sockets.getConnectionInfo(a)?.state, ConnectionState.Connected);
        assert.equal(sockets.getConnectionInfo(b)?.state, ConnectionState.Connected);
        const flags = sockets.getConnectionInfo(a)?.flags ?? 0;
        assert.equal((flags & 4) !== 0, !loopback, 'LoopbackBuffers flag only on the in-memory pair');
        if (loopback) {
          assert.ok(sockets.setConnectionConfigValue(a, 'FakePacketLoss_Send', 10), 'fake conditions apply to a network pair');
        } else {
          assert.equal(sockets.setConnectionConfigValue(a, 'FakePacketLoss_Send', 10), false, 'not to an in-memory pair (as GNS)');
        }
        for (let i = 0; i < 50; i++) {
          assert.equal(sockets.sendMessageToConnection(a, new Uint8Array([i]), SendFlags.Reliable).result, Result.OK);
          assert.equal(sockets.sendMessageToConnection(b, new Uint8Array([100 + i]), SendFlags.Reliable).result, Result.OK);
        }
        const atA: number[] = [];
        const atB: number[] = [];
        w.until(() => {
          for (const m of sockets.receiveMessagesOnConnection(a) ?? []) atA.push(m.data[0] as number);
          for (const m of sockets.receiveMessagesOnConnection(b) ?? []) atB.push(m.data[0] as number);
          return atA.length >= 50 && atB.length >= 50;
        }, 5000, 'pair traffic');
        assert.deepEqual(atB, Array.from({ length: 50 }, (_, i) => i));
        assert.deepEqual(atA, Array.from({ length: 50 }, (_, i) => 100 + i));
        assert.equal(events.length, 0, 'no callbacks for the pair coming up');
        assert.ok(sockets.closeConnection(a, 1005, 'pair done'));
        w.until(() => sockets.getConnectionInfo(b)?.state === ConnectionState.ClosedByPeer, 5000, 'other end closed');
        assert.equal(events.length, 1);
        assert.equal(events[0]?.connection, b);
        assert.equal(events[0]?.info.endReason, 1005);
      }));
  }
});

describe('NetworkingSockets in virtual time: onReadable', () => {
  it('drives a 200-round-trip ping-pong with no polling: called when a queue fills, replies sent from inside it', (t) =>
    inSim(t, 4401, (w) => {
      let a = 0;
      let b = 0;
      let pings = 0;
      let finished = false;
      const calls = new Map<number, number>();
      const got: number[] = [];
      const sockets: NetworkingSockets = w.instance({
        onReadable: (conn) => {
          calls.set(conn, (calls.get(conn) ?? 0) + 1);
          for (const m of sockets.receiveMessagesOnConnection(conn, 64) ?? []) {
            const n = m.data[0] as number;
            if (conn === b) {
              sockets.sendMessageToConnection(b, m.data, SendFlags.ReliableNoNagle); // echo
            } else {
              got.push(n);
              if (++pings < 200) sockets.sendMessageToConnection(a, new Uint8Array([pings % 256]), SendFlags.ReliableNoNagle);
              else finished = true;
            }
          }
        },
      });
      const pair = sockets.createSocketPair(true);
      assert.ok(pair);
      [a, b] = pair;
      sockets.sendMessageToConnection(a, new Uint8Array([0]), SendFlags.ReliableNoNagle);
      w.until(() => finished, 10_000, '200 round trips');
      assert.equal(got.length, 200, 'every ping came back');
      assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i % 256));
      assert.equal(calls.get(a), 200, 'one call per reply: each time the empty queue got a message');
      assert.equal(calls.get(b), 200);
    }));
  it('a message that arrives before the app has seen the connection Connected is announced again after that callback', (t) =>
    inSim(t, 4403, (w) => {
      // The server's program knows a connection only from its Connected callback (run once a frame) and
      // ignores notices for connections it does not know; the client sends as soon as it is connected.
      const known = new Set<number>();
      const got: number[] = [];
      const notices: Array<[number, boolean]> = [];
      const server: NetworkingSockets = w.instance({
        onReadable: (conn) => {
          notices.push([conn, known.has(conn)]);
          if (!known.has(conn)) return;
          for (const m of server.receiveMessagesOnConnection(conn, 64) ?? []) got.push(m.data[0] as number);
        },
      }, '10.9.0.1');
      const listen = server.createListenSocket('0.0.0.0:0', {
        Callback_ConnectionStatusChanged: (i: StatusChangedInfo) => {
          if (i.info.state === ConnectionState.Connecting) server.acceptConnection(i.connection);
          if (i.info.state === ConnectionState.Connected) known.add(i.connection);
        },
      });
      const port = server.getListenSocketAddress(listen)?.port ?? 0;
      // The client queues its message while connecting (as GNS allows): it leaves with the client's first data packet.
      const client: NetworkingSockets = w.instance();
      const conn = client.connect(`10.9.0.1:${port}`);
      assert.equal(client.sendMessageToConnection(conn, new Uint8Array([7]), SendFlags.ReliableNoNagle).result, Result.OK);
      w.until(() => got.length > 0, 2_000, 'the first message read');
      assert.deepEqual(got, [7]);
      assert.ok(notices.some(([, k]) => !k), 'the first notice came before the Connected callback (else this test shows nothing)');
    }));
});

describe('NetworkingSockets in virtual time: onWritable', () => {
  it('a bulk sender that sends until LimitExceeded and resumes only on onWritable delivers everything, in order', (t) =>
    inSim(t, 4451, (w) => {
      const N = 400;
      const SIZE = 3000;
      const BUFFER = 16 * 1024;
      let a = 0;
      let b = 0;
      let next = 0;
      let refusals = 0;
      let notices = 0;
      let noticeTook = 0;
      const got: number[] = [];
      const send = (): void => {
        while (next < N) {
          const m = new Uint8Array(SIZE);
          m[0] = next & 0xff;
          m[1] = next >> 8;
          const r = sockets.sendMessageToConnection(a, m, SendFlags.Reliable);
          if (r.result === Result.LimitExceeded) {
            refusals++;
            return;
          }
          assert.equal(r.result, Result.OK);
          next++;
        }
      };
      const sockets: NetworkingSockets = w.instance({
        onWritable: (conn) => {
          assert.equal(conn, a, 'the notice names the connection that refused');
          notices++;
          const before = next;
          send();
          if (next > before) noticeTook++;
        },
        onReadable: (conn) => {
          for (let batch = sockets.receiveMessagesOnConnection(conn, 64); batch && batch.length > 0; batch = sockets.receiveMessagesOnConnection(conn, 64)) {
            for (const m of batch) got.push((m.data[0] as number) | ((m.data[1] as number) << 8));
          }
        },
      });
      const pair = sockets.createSocketPair(true);
      assert.ok(pair);
      [a, b] = pair;
      assert.ok(sockets.setConnectionConfigValue(a, 'SendBufferSize', BUFFER));
      send();
      assert.ok(refusals === 1 && next < N, `the first burst fills the send buffer (${next} taken)`);
      w.until(() => got.length >= N, 20_000, `${N} messages delivered`);
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => i), 'every message once, in order');
      assert.ok(refusals > 10, `the sender was refused many times (${refusals})`);
      assert.equal(notices, refusals, 'one notice per refusal, never a repeat');
      assert.equal(noticeTook, notices, 'each notice came when the refused message would be taken');
      void b;
    }));

  it('without a refusal there is no notice', (t) =>
    inSim(t, 4452, (w) => {
      let notices = 0;
      const sockets = w.instance({ onWritable: () => void notices++ });
      const pair = sockets.createSocketPair(true);
      assert.ok(pair);
      for (let i = 0; i < 50; i++) assert.equal(sockets.sendMessageToConnection(pair[0], new Uint8Array(1000), SendFlags.Reliable).result, Result.OK);
      w.run(500);
      assert.equal(notices, 0);
    }));
});

describe('NetworkingSockets in virtual time: configuration', () => {
  it('resolves connection over listen socket over interface over global, and reports where a value came from', (t) =>
    inSim(t, 4501, (w) => {
      const { server, client, sconn } = w.pair({ TimeoutConnected: 7000 });
      const s = server.sockets;
      assert.ok(s.setConfigValue('TimeoutInitial', ConfigScope.Global, 0, 4000));
      try {
        assert.deepEqual(s.getConfigValue('TimeoutInitial', ConfigScope.Global), { result: GetConfigValueResult.OK, value: 4000 });
        assert.deepEqual(s.getConfigValue('TimeoutInitial', ConfigScope.SocketsInterface), { result: GetConfigValueResult.OKInherited, value: 4000 });
        assert.ok(s.setConfigValue('TimeoutInitial', ConfigScope.SocketsInterface, 0, 5000));
        assert.deepEqual(s.getConfigValue('TimeoutInitial', ConfigScope.ListenSocket, server.listen), { result: GetConfigValueResult.OKInherited, value: 5000 });
        // The listen socket's own value, given at creation, reached the connection it accepted.
        assert.deepEqual(s.getConfigValue('TimeoutConnected', ConfigScope.ListenSocket, server.listen), { result: GetConfigValueResult.OK, value: 7000 });
        assert.deepEqual(s.getConfigValue('TimeoutConnected', ConfigScope.Connection, sconn), { result: GetConfigValueResult.OKInherited, value: 7000 });
        assert.ok(s.setConnectionConfigValue(sconn, 'TimeoutConnected', 9000));
        assert.deepEqual(s.getConfigValue('TimeoutConnected', ConfigScope.Connection, sconn), { result: GetConfigValueResult.OK, value: 9000 });
        assert.equal(s.getConnectionConfigValue(sconn, 'TimeoutConnected'), 9000);
        assert.ok(s.setConnectionConfigValue(sconn, 'TimeoutConnected', null), 'clearing a connection value');
        assert.equal(s.getConnectionConfigValue(sconn, 'TimeoutConnected'), 7000, 'falls back to the listen socket');
        // Defaults, names and ids.
        assert.deepEqual(s.getConfigValue('SendBufferSize', ConfigScope.Global), { result: GetConfigValueResult.OKInherited, value: 524_288 });
        assert.equal(s.getConfigValueName(24), 'TimeoutInitial');
        assert.equal(s.getConfigValueName(9999), null);
        assert.equal(s.getConfigValue(24, ConfigScope.SocketsInterface).value, 5000, 'by id');
        // Bad input.
        assert.equal(s.getConfigValue('NoSuchValue' as never, ConfigScope.Global).result, GetConfigValueResult.BadValue);
        assert.equal(s.getConfigValue('TimeoutInitial', ConfigScope.Connection, 424242).result, GetConfigValueResult.BadScopeObj);
        assert.equal(s.setConfigValue('NagleTime', ConfigScope.SocketsInterface, 0, 20_001), false, 'out of range');
        assert.equal(s.setConfigValue('FakePacketLoss_Send', ConfigScope.SocketsInterface, 0, 101), false, 'out of range');
        assert.equal(s.setConfigValue('TimeoutInitial', ConfigScope.SocketsInterface, 0, 1.5), false, 'not an integer');
        assert.equal(s.setConfigValue('MTU_DataSize', ConfigScope.SocketsInterface, 0, 1000), false, 'read-only');
        assert.equal(s.setConnectionConfigValue(sconn, 'MTU_PacketSize', 1000), false, 'fixed once the connection exists');
        assert.ok(s.setConnectionConfigValue(sconn, 'SendRateMax', 100_000));
        assert.equal(s.setConnectionConfigValue(sconn, 'SendRateMin', 200_000), false, 'SendRateMin above SendRateMax is refused');
        assert.equal(s.getConnectionConfigValue(sconn, 'SendRateMin'), 32_768, 'and not stored');
        assert.equal(s.setConfigValue('TimeoutInitial', ConfigScope.ListenSocket, 777, 1000), false, 'unknown listen socket');
        // The connection still works after all that.
        assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array([1]), SendFlags.Reliable).result, Result.OK);
        // Counted, not just read: a done() that takes messages may be asked again after it held.
        let got = 0;
        w.until(() => (got += s.receiveMessagesOnConnection(sconn)?.length ?? 0) > 0, 5000, 'message after config changes');
      } finally {
        s.setConfigValue('TimeoutInitial', ConfigScope.Global, 0, null);
      }
    }));
});

describe('NetworkingSockets in virtual time: bad input', () => {
  it('unknown and closed handles get the documented results and break nothing', (t) =>
    inSim(t, 4601, (w) => {
      const { server, client, sconn } = w.pair();
      const c = client.sockets;
      assert.equal(c.sendMessageToConnection(9999, new Uint8Array(1)).result, Result.InvalidParam);
      assert.equal(c.receiveMessagesOnConnection(9999), null);
      assert.equal(c.receiveMessagesOnListenSocket(9999), null);
      assert.equal(c.receiveMessagesOnPollGroup(9999), null);
      assert.equal(c.getConnectionInfo(9999), null);
      assert.equal(c.getQuickConnectionStatus(9999), null);
      assert.equal(c.getDetailedConnectionStatus(9999), null);
      assert.equal(c.getConnectionUserData(9999), -1);
      assert.equal(c.getConnectionName(9999), null);
      assert.equal(c.flushMessagesOnConnection(9999), Result.InvalidParam);
      assert.equal(c.acceptConnection(9999), Result.InvalidParam);
      assert.equal(c.acceptConnection(client.conn), Result.InvalidState, 'an outgoing connection cannot be accepted');
      assert.equal(c.closeConnection(9999), false);
      assert.equal(c.closeListenSocket(9999), false);
      assert.equal(c.getListenSocketAddress(9999), null);
      assert.equal(c.configureConnectionLanes(client.conn, 0), Result.InvalidParam);
      assert.equal(c.configureConnectionLanes(client.conn, 256), Result.InvalidParam);
      assert.equal(c.sendMessageToConnection(client.conn, new Uint8Array(65_537), SendFlags.Unreliable).result, Result.InvalidParam, 'unreliable over 64 KiB');
      assert.equal(c.setConnectionUserData(client.conn, 1.5), false);
      assert.throws(() => c.sendMessageToConnection(client.conn, 'text' as never), { code: 'ERR_NETLANE_INVALID_ARGUMENT' });
      assert.equal(c.connect('not an address'), 0);
      assert.equal(c.connect('127.0.0.1:1', { NagleTime: -1 }), 0, 'a bad option refuses the connection');
      // The port of the client's own connection socket, as the server sees it, is in use on the client's host.
      const own = server.sockets.getConnectionInfo(sconn)?.addressRemote.port ?? 0;
      assert.notEqual(own, 0);
      assert.equal(c.createListenSocket(`127.0.0.1:${own}`), 0, 'address in use');
      // Still working.
      assert.ok(c.setConnectionUserData(client.conn, 42));
      assert.equal(c.sendMessageToConnection(client.conn, new Uint8Array([9]), SendFlags.Reliable).result, Result.OK);
      const got: NetworkingMessage[] = [];
      w.until(() => {
        got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? []));
        return got.length > 0;
      }, 5000, 'message');
      assert.equal(got[0]?.data[0], 9);
      assert.equal(c.getConnectionInfo(client.conn)?.userData, 42);
    }));

  it('random datagrams flooding a listen socket do not disturb a connected client', (t) =>
    inSim(t, 4602, (w) => {
      const { server, client, sconn } = w.pair();
      const flood = w.world.peerRuntime().openUdp({ address: '0.0.0.0', port: 0 });
      const rng = new SeededRng(w.world.seed);
      try {
        const got: NetworkingMessage[] = [];
        let sent = 0;
        for (let round = 0; round < 20; round++) {
          for (let i = 0; i < 100; i++) {
            const junk = new Uint8Array(rng.int(0, 1400));
            for (let k = 0; k < junk.length; k++) junk[k] = rng.nextU32() & 0xff;
            // Half of them look like data packets (first bit set), some like handshake packets.
            if (junk.length > 0) junk[0] = i % 2 === 0 ? (junk[0] as number) | 0x80 : (junk[0] as number) & 0x0f;
            flood.send(junk, { address: server.address, port: server.port });
          }
          assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array([round]), SendFlags.Reliable).result, Result.OK);
          sent++;
          w.run(5);
          got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? []));
        }
        w.until(() => {
          got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? []));
          return got.length >= sent;
        }, 5000, 'messages through the flood');
        assert.deepEqual(got.map((m) => m.data[0]), Array.from({ length: sent }, (_, i) => i));
        assert.equal(server.sockets.getConnectionInfo(sconn)?.state, ConnectionState.Connected);
        const st = server.sockets.getSocketStats(server.listen);
        assert.ok(st, 'socket stats of the listen socket');
        const refused = st.datagramsMalformed + st.unknownConnection + st.handshakeRefused;
        assert.ok(refused >= 1900, `the garbage was dropped and counted (${refused} of 2000; the rest are HELLO-like)`);
        assert.equal(client.sockets.getConnectionInfo(client.conn)?.state, ConnectionState.Connected);
      } finally {
        flood.close();
      }
    }));
});

describe('NetworkingSockets in virtual time: deadline work under traffic', () => {
  it('a server with 40 connections at 30 Hz each way computes each touched deadline once per pass: under 2.2 computations and visits per datagram (3 when handleTimeout recomputed them too)', (t) =>
    inSim(t, 4471, (w) => {
      const N = 40;
      const server = w.server();
      const clients = Array.from({ length: N }, () => w.client(server));
      w.until(() => server.conns.length === N && clients.every((c) => c.sockets.getConnectionInfo(c.conn)?.state === ConnectionState.Connected), 10_000, 'all connected');
      w.run(500);
      const stats = (): { work: number; received: number } => {
        const s = server.sockets.getSocketStats(server.listen);
        assert.ok(s);
        return { work: s.timerUpdates + s.timerVisits, received: s.datagramsReceived };
      };
      const before = stats();
      const msg = new Uint8Array(100);
      const TICKS = 60; // 2 s at 30 Hz
      for (let tick = 0; tick < TICKS; tick++) {
        for (const c of clients) c.sockets.sendMessageToConnection(c.conn, msg, SendFlags.Unreliable);
        for (const s of server.conns) server.sockets.sendMessageToConnection(s, msg, SendFlags.Unreliable);
        for (const c of clients) c.sockets.flushMessagesOnConnection(c.conn);
        for (const s of server.conns) server.sockets.flushMessagesOnConnection(s);
        w.run(33);
        for (const s of server.conns) server.sockets.receiveMessagesOnConnection(s, 100);
      }
      const after = stats();
      const work = after.work - before.work;
      const datagrams = after.received - before.received + N * TICKS; // received, and at least one sent per message
      t.diagnostic(`${work} deadline computations and visits for ${datagrams} datagrams (${(work / datagrams).toFixed(2)} each)`);
      assert.ok(after.received - before.received >= N * TICKS * 0.9, 'the clients\' messages arrived');
      assert.ok(work <= 2.2 * datagrams, `${work} deadline computations and visits for ${datagrams} datagrams`);
    }));
});
