// NetworkingSockets: poll groups, socket pairs, configuration scopes, bad input and garbage datagrams,
// over real UDP on loopback.
import { strict as assert } from 'node:assert';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import {
  ConfigScope,
  ConnectionState,
  GetConfigValueResult,
  NetworkingSockets,
  Result,
  SendFlags,
  type NetworkingMessage,
  type StatusChangedInfo,
} from '../../src/index.js';
import { SeededRng } from '../../src/util/rng.js';
import { connectedPair, startServer, waitFor } from './support.js';

describe('poll groups', () => {
  it('receives from 100 connections through one poll group, each message attributed to its connection', async () => {
    const server = startServer('127.0.0.1');
    const clients = new NetworkingSockets({ fakeSeed: 3 });
    try {
      const group = server.sockets.createPollGroup();
      const conns: number[] = [];
      for (let i = 0; i < 100; i++) {
        const c = clients.connect(`127.0.0.1:${server.port}`);
        assert.notEqual(c, 0);
        clients.setConnectionUserData(c, i);
        conns.push(c);
      }
      await waitFor([server.sockets, clients], () => conns.every((c) => clients.getConnectionInfo(c)?.state === ConnectionState.Connected), 10_000, '100 connections');
      assert.equal(server.conns.length, 100);
      for (const s of server.conns) assert.ok(server.sockets.setConnectionPollGroup(s, group));
      for (const [i, c] of conns.entries()) {
        for (let k = 0; k < 5; k++) assert.equal(clients.sendMessageToConnection(c, new Uint8Array([i, k]), SendFlags.Reliable).result, Result.OK);
      }
      const got: NetworkingMessage[] = [];
      await waitFor([server.sockets, clients], () => {
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
    } finally {
      clients.close();
      server.sockets.close();
    }
  });
});

describe('socket pairs', () => {
  for (const loopback of [false, true]) {
    it(`createSocketPair(${loopback}): connected at once without callbacks, traffic both ways, close seen by the other end`, async () => {
      const sockets = new NetworkingSockets({ fakeSeed: 4 });
      const events: StatusChangedInfo[] = [];
      sockets.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (i: StatusChangedInfo) => events.push(i));
      try {
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
        await waitFor([sockets], () => {
          for (const m of sockets.receiveMessagesOnConnection(a) ?? []) atA.push(m.data[0] as number);
          for (const m of sockets.receiveMessagesOnConnection(b) ?? []) atB.push(m.data[0] as number);
          return atA.length >= 50 && atB.length >= 50;
        }, 5000, 'pair traffic');
        assert.deepEqual(atB, Array.from({ length: 50 }, (_, i) => i));
        assert.deepEqual(atA, Array.from({ length: 50 }, (_, i) => 100 + i));
        assert.equal(events.length, 0, 'no callbacks for the pair coming up');
        assert.ok(sockets.closeConnection(a, 1005, 'pair done'));
        await waitFor([sockets], () => sockets.getConnectionInfo(b)?.state === ConnectionState.ClosedByPeer, 5000, 'other end closed');
        assert.equal(events.length, 1);
        assert.equal(events[0]?.connection, b);
        assert.equal(events[0]?.info.endReason, 1005);
      } finally {
        sockets.close();
      }
    });
  }
});

describe('onReadable', () => {
  it('drives a 200-round-trip ping-pong with no polling: called when a queue fills, replies sent from inside it', async () => {
    let a = 0;
    let b = 0;
    let pings = 0;
    const calls = new Map<number, number>();
    const got: number[] = [];
    let done: () => void = () => undefined;
    const finished = new Promise<void>((r) => (done = r));
    const sockets: NetworkingSockets = new NetworkingSockets({
      onReadable: (conn) => {
        calls.set(conn, (calls.get(conn) ?? 0) + 1);
        for (const m of sockets.receiveMessagesOnConnection(conn, 64) ?? []) {
          const n = m.data[0] as number;
          if (conn === b) {
            sockets.sendMessageToConnection(b, m.data, SendFlags.ReliableNoNagle); // echo
          } else {
            got.push(n);
            if (++pings < 200) sockets.sendMessageToConnection(a, new Uint8Array([pings % 256]), SendFlags.ReliableNoNagle);
            else done();
          }
        }
      },
    });
    try {
      const pair = sockets.createSocketPair(true);
      assert.ok(pair);
      [a, b] = pair;
      sockets.sendMessageToConnection(a, new Uint8Array([0]), SendFlags.ReliableNoNagle);
      const timer = setTimeout(done, 10_000);
      await finished;
      clearTimeout(timer);
      assert.equal(got.length, 200, 'every ping came back');
      assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i % 256));
      assert.equal(calls.get(a), 200, 'one call per reply: each time the empty queue got a message');
      assert.equal(calls.get(b), 200);
    } finally {
      sockets.close();
    }
  });
});

describe('configuration', () => {
  it('resolves connection over listen socket over interface over global, and reports where a value came from', async () => {
    const { server, client, sconn, close } = await connectedPair('127.0.0.1', { TimeoutConnected: 7000 });
    const s = server.sockets;
    try {
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
        await waitFor([s, client.sockets], () => (s.receiveMessagesOnConnection(sconn)?.length ?? 0) > 0, 5000, 'message after config changes');
      } finally {
        s.setConfigValue('TimeoutInitial', ConfigScope.Global, 0, null);
      }
    } finally {
      close();
    }
  });
});

describe('bad input', () => {
  it('unknown and closed handles get the documented results and break nothing', async () => {
    const { server, client, sconn, close } = await connectedPair('127.0.0.1');
    const c = client.sockets;
    try {
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
      assert.equal(c.createListenSocket(`127.0.0.1:${server.port}`), 0, 'address in use');
      // Still working.
      assert.ok(c.setConnectionUserData(client.conn, 42));
      assert.equal(c.sendMessageToConnection(client.conn, new Uint8Array([9]), SendFlags.Reliable).result, Result.OK);
      const got: NetworkingMessage[] = [];
      await waitFor([server.sockets, c], () => {
        got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? []));
        return got.length > 0;
      }, 5000, 'message');
      assert.equal(got[0]?.data[0], 9);
      assert.equal(c.getConnectionInfo(client.conn)?.userData, 42);
    } finally {
      close();
    }
  });

  it('random datagrams flooding a listen socket do not disturb a connected client', async () => {
    const { server, client, sconn, close } = await connectedPair('127.0.0.1');
    const flood = dgram.createSocket('udp4');
    const rng = new SeededRng(77);
    console.log('garbage seed 77');
    try {
      await new Promise<void>((r) => flood.bind(0, '127.0.0.1', () => r()));
      const got: NetworkingMessage[] = [];
      let sent = 0;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 100; i++) {
          const junk = new Uint8Array(rng.int(0, 1400));
          for (let k = 0; k < junk.length; k++) junk[k] = rng.nextU32() & 0xff;
          // Half of them look like data packets (first bit set), some like handshake packets.
          if (junk.length > 0) junk[0] = i % 2 === 0 ? (junk[0] as number) | 0x80 : (junk[0] as number) & 0x0f;
          flood.send(junk, server.port, '127.0.0.1');
        }
        assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array([round]), SendFlags.Reliable).result, Result.OK);
        sent++;
        await new Promise((r) => setTimeout(r, 5));
        got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? []));
      }
      await waitFor([server.sockets, client.sockets], () => {
        got.push(...(server.sockets.receiveMessagesOnConnection(sconn) ?? []));
        return got.length >= sent;
      }, 5000, 'messages through the flood');
      assert.deepEqual(got.map((m) => m.data[0]), Array.from({ length: sent }, (_, i) => i));
      assert.equal(server.sockets.getConnectionInfo(sconn)?.state, ConnectionState.Connected);
      const st = server.sockets.getSocketStats(server.listen);
      assert.ok(st, 'socket stats of the listen socket');
      const refused = st.datagramsMalformed + st.unknownConnection + st.handshakeRefused;
      assert.ok(refused >= 1900, `the garbage was dropped and counted (${refused} of 2000; the rest are datagrams the kernel dropped or HELLO-like)`);
      assert.equal(client.sockets.getConnectionInfo(client.conn)?.state, ConnectionState.Connected);
    } finally {
      flood.close();
      close();
    }
  });
});
