// NetworkingSockets P2P connections (connectP2P / createListenSocketP2P) through relays, in virtual time: a
// client reaches a server by identity alone (the relays' directory gives the route), the server accepts or
// refuses it like any connection, reliable messages arrive once and in order and unreliable ones never twice
// under loss, and neither side ever sees the other's address. Each test names its seed (NETLANE_SEED=N replays).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConfigScope, ConnectionState, Result, SendFlags, type ConfigOptions, type NetworkingMessage, type NetworkingSockets, type StatusChangedInfo } from '../../src/index.js';
import { seededCryptoProvider } from '../../src/testing/crypto.js';
import { inSim, type SocketsWorld } from '../support/sockets-world.js';

const LOSS = { FakePacketLoss_Send: 5, FakePacketLoss_Recv: 5 };

/** A P2P server (its listen socket on virtual port 0) and a client, both on the world's relays, the client's connection made. Status changes are logged per instance. */
function p2p(w: SocketsWorld, relays: readonly string[], options: { accept?: boolean; loss?: boolean } = {}) {
  const log = new Map<NetworkingSockets, StatusChangedInfo[]>();
  const cb = (who: () => NetworkingSockets) => (info: StatusChangedInfo): void => {
    const s = who();
    log.get(s)?.push(info);
    if (s === server && options.accept !== false && info.info.state === ConnectionState.Connecting && info.oldState === ConnectionState.None) assert.equal(server.acceptConnection(info.connection), Result.OK);
  };
  const config = { Callback_ConnectionStatusChanged: cb(() => server), ...(options.loss ? LOSS : {}) };
  const server: NetworkingSockets = w.instance({ relays });
  log.set(server, []);
  const listen = server.createListenSocketP2P(0, config);
  assert.ok(listen > 0, 'a P2P listen socket');
  const client: NetworkingSockets = w.instance({ relays });
  log.set(client, []);
  // P2P connections share the instance's socket: the client's fake loss is set for the whole instance.
  if (options.loss) for (const [name, v] of Object.entries(LOSS)) assert.equal(client.setConfigValue(name as keyof typeof LOSS, ConfigScope.SocketsInterface, 0, v), true);
  const identity = server.getIdentity() as string;
  assert.match(identity, /^id:\d+$/);
  const conn = client.connectP2P(identity, 0, { Callback_ConnectionStatusChanged: cb(() => client) });
  assert.ok(conn > 0, 'connectP2P gives a handle at once');
  assert.equal(client.getConnectionInfo(conn)?.state, ConnectionState.Connecting);
  const early = client.getQuickConnectionStatus(conn);
  assert.deepEqual([early?.state, early?.ping], [ConnectionState.Connecting, -1], 'a status while the route is looked up: nothing measured yet');
  return { server, client, listen, conn, log, identity };
}

/** A server on the relays accepting every P2P connection to virtual port 0 (`options` on its listen socket); its status changes go to `log`. */
function acceptingServer(w: SocketsWorld, relays: readonly string[], options: ConfigOptions = {}): { server: NetworkingSockets; log: StatusChangedInfo[] } {
  const log: StatusChangedInfo[] = [];
  const server = w.instance({ relays });
  const listen = server.createListenSocketP2P(0, {
    ...options,
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      log.push(info);
      if (info.oldState === ConnectionState.None) server.acceptConnection(info.connection);
    },
  });
  assert.ok(listen > 0, 'a P2P listen socket');
  return { server, log };
}

const serverConn = (log: readonly StatusChangedInfo[]): number => (log.find((i) => i.oldState === ConnectionState.None)?.connection ?? 0);
const bytes = (i: number, size = 8): Uint8Array => {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, i);
  return b;
};
const num = (m: NetworkingMessage): number => new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength).getUint32(0);

describe('NetworkingSockets P2P through relays', () => {
  it('a client reaches a server by identity alone; the server accepts; 1,000 reliable in order each way and unreliable never twice under 5 % loss each way; no address is shown', (t) =>
    inSim(t, 2301, (w) => {
      const relay = w.world.relay();
      const { server, client, conn, log } = p2p(w, [relay.address], { loss: true });
      w.until(() => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 15_000, 'the client connected');
      const sconn = serverConn(log.get(server) ?? []);
      assert.ok(sconn > 0, 'the server saw the connection come (None -> Connecting)');
      const sinfo = server.getConnectionInfo(sconn);
      assert.equal(sinfo?.state, ConnectionState.Connected);
      assert.equal(sinfo?.identityRemote, client.getIdentity(), "the server knows the client by its proven identity");
      assert.deepEqual(sinfo?.addressRemote, { address: '::', port: 0 }, "the server is never shown the client's address");
      assert.deepEqual(client.getConnectionInfo(conn)?.addressRemote, { address: '::', port: 0 }, "the client is never shown the server's address");
      assert.match(client.getConnectionInfo(conn)?.connectionDescription ?? '', /P2P id:\d+/);
      assert.equal(client.configureConnectionLanes(conn, 2), Result.OK);
      assert.equal(server.configureConnectionLanes(sconn, 2), Result.OK);

      const N = 1000;
      const got = { server: [] as NetworkingMessage[], client: [] as NetworkingMessage[] };
      let sent = 0;
      w.until(
        () => {
          got.server.push(...(server.receiveMessagesOnConnection(sconn, 256) ?? []));
          got.client.push(...(client.receiveMessagesOnConnection(conn, 256) ?? []));
          return got.server.filter((m) => m.flags === SendFlags.Reliable).length >= N && got.client.filter((m) => m.flags === SendFlags.Reliable).length >= N;
        },
        60_000,
        '1,000 reliable messages each way',
        () => {
          for (let k = 0; k < 20 && sent < N; k++, sent++) {
            assert.equal(client.sendMessageToConnection(conn, bytes(sent), SendFlags.Reliable, 1).result, Result.OK);
            assert.equal(server.sendMessageToConnection(sconn, bytes(sent), SendFlags.Reliable, 1).result, Result.OK);
            assert.equal(client.sendMessageToConnection(conn, bytes(sent), SendFlags.UnreliableNoNagle, 0).result, Result.OK);
            assert.equal(server.sendMessageToConnection(sconn, bytes(sent), SendFlags.UnreliableNoNagle, 0).result, Result.OK);
          }
        },
      );
      w.run(100);
      got.server.push(...(server.receiveMessagesOnConnection(sconn, 5000) ?? []));
      got.client.push(...(client.receiveMessagesOnConnection(conn, 5000) ?? []));
      for (const [side, ms] of Object.entries(got)) {
        const reliable = ms.filter((m) => m.flags === SendFlags.Reliable);
        assert.deepEqual(reliable.map(num), Array.from({ length: N }, (_, i) => i), `${side}: reliable each once, in order`);
        assert.ok(reliable.every((m) => m.lane === 1), `${side}: reliable messages on lane 1`);
        const unreliable = ms.filter((m) => m.flags === SendFlags.Unreliable).map(num);
        assert.equal(new Set(unreliable).size, unreliable.length, `${side}: unreliable never twice`);
        assert.ok(unreliable.length > N * 0.8 && unreliable.length < N, `${side}: most unreliable arrive, some are lost (${unreliable.length}/${N})`);
      }
      const relayed = relay.server.node.stats;
      assert.ok(relayed.forwardedBytes > 4 * N * 8, `the relay carried every message (${relayed.forwardedPackets} datagrams, ${relayed.forwardedBytes} bytes forwarded)`);
      const st = client.getQuickConnectionStatus(conn);
      assert.ok(st && st.ping >= 0 && st.connectionQualityLocal < 1, `status reads the relayed connection (ping ${st?.ping} ms, quality ${st?.connectionQualityLocal})`);
    }));

  it('messages sent before the connection is up (its route still being looked up) arrive after the accept, in order', (t) =>
    inSim(t, 2302, (w) => {
      const relay = w.world.relay();
      const { server, client, conn, log } = p2p(w, [relay.address]);
      for (let i = 0; i < 50; i++) assert.equal(client.sendMessageToConnection(conn, bytes(i), SendFlags.Reliable).result, Result.OK);
      const got: number[] = [];
      w.until(
        () => {
          const s = serverConn(log.get(server) ?? []);
          if (s) got.push(...(server.receiveMessagesOnConnection(s, 100) ?? []).map(num));
          return got.length >= 50;
        },
        15_000,
        'the early messages',
      );
      assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
    }));

  it('a server that refuses (closes the Connecting connection with a reason) ends the client with that reason', (t) =>
    inSim(t, 2303, (w) => {
      const relay = w.world.relay();
      const { server, client, conn, log } = p2p(w, [relay.address], { accept: false });
      w.until(() => serverConn(log.get(server) ?? []) > 0, 15_000, 'the request at the server');
      const sconn = serverConn(log.get(server) ?? []);
      assert.equal(server.getConnectionInfo(sconn)?.state, ConnectionState.Connecting, 'it waits for the application');
      assert.equal(server.closeConnection(sconn, 1234, 'full'), true);
      w.until(() => (client.getConnectionInfo(conn)?.state ?? 0) >= ConnectionState.ClosedByPeer, 15_000, 'the client ended');
      const info = client.getConnectionInfo(conn);
      assert.equal(info?.state, ConnectionState.ClosedByPeer);
      assert.equal(info?.endReason, 1234);
      assert.equal(info?.endDebug, 'full');
      assert.ok((log.get(client) ?? []).every((i) => i.info.state !== ConnectionState.Connected), 'the client never saw Connected');
      assert.equal(client.sendMessageToConnection(conn, bytes(1), SendFlags.Reliable).result, Result.NoConnection);
    }));

  it('an identity nobody registered ends the connection (ProblemDetectedLocally) within TimeoutInitial; a peer without a P2P listen socket refuses the link at once', (t) =>
    inSim(t, 2304, (w) => {
      const relay = w.world.relay();
      const client = w.instance({ relays: [relay.address] });
      const conn = client.connectP2P('id:12345', 0, { TimeoutInitial: 3000 });
      assert.ok(conn > 0);
      w.until(() => (client.getConnectionInfo(conn)?.state ?? 0) >= ConnectionState.ClosedByPeer, 10_000, 'the lookup failed');
      const info = client.getConnectionInfo(conn);
      assert.equal(info?.state, ConnectionState.ProblemDetectedLocally);
      assert.ok((info?.endReason ?? 0) > 0, `a reason (${info?.endReason} ${info?.endDebug})`);

      // Registered (it made a P2P connection of its own) but not listening: its relay's offer is refused.
      const other = w.instance({ relays: [relay.address] });
      assert.ok(other.connectP2P('id:999', 0) > 0);
      w.run(500);
      const start = w.world.sim.now;
      const conn2 = client.connectP2P(other.getIdentity() as string, 0);
      w.until(() => (client.getConnectionInfo(conn2)?.state ?? 0) >= ConnectionState.ClosedByPeer, 10_000, 'the refusal');
      assert.equal(client.getConnectionInfo(conn2)?.endReason, 5012, 'the link was not accepted');
      assert.ok(w.world.sim.now - start < 2_000_000, `refused in ${(w.world.sim.now - start) / 1000} ms, not at a timeout`);
    }));

  it('API misuse gets GNS answers: no relays, a virtual port taken or out of range, a bad identity, a second connection to one identity, an unconfigured lane', (t) =>
    inSim(t, 2305, (w) => {
      const relay = w.world.relay();
      const plain = w.instance();
      assert.equal(plain.createListenSocketP2P(0), 0, 'no relays: no P2P listen socket');
      assert.equal(plain.connectP2P('id:1', 0), 0, 'no relays: no P2P connection');
      const { server, client, conn, listen, identity } = p2p(w, [relay.address]);
      assert.equal(server.createListenSocketP2P(0), 0, 'virtual port 0 has a P2P listen socket already');
      assert.equal(server.getListenSocketAddress(listen), null, 'a P2P listen socket has no address');
      assert.equal(client.connectP2P('not-an-identity', 0), 0);
      assert.equal(client.connectP2P(identity, -1), 0);
      assert.equal(client.connectP2P(identity, 0), 0, 'one P2P connection per pair of identities');
      assert.equal(client.connectP2P(client.getIdentity() as string, 0), 0, 'not to itself');
      assert.equal(client.sendMessageToConnection(conn, bytes(1), SendFlags.Reliable, 3).result, Result.InvalidParam, 'lane 3 is not configured');
      assert.equal(server.createListenSocketP2P(-1), 0, 'a bad virtual port');
      assert.equal(server.closeListenSocket(listen), true);
      assert.ok(server.createListenSocketP2P(0) > 0, 'port 0 again once its listen socket closed');
    }));

  it('the relay carrying the connection dies: the connection moves to the other relay and goes on, same handles, every reliable message once and in order', (t) =>
    inSim(t, 2307, (w) => {
      const relays = [w.world.relay(), w.world.relay()];
      const { server, client, conn, log } = p2p(w, relays.map((r) => r.address));
      w.until(() => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 15_000, 'connected');
      const sconn = serverConn(log.get(server) ?? []);
      const got: number[] = [];
      const read = (): void => void got.push(...(server.receiveMessagesOnConnection(sconn, 500) ?? []).map(num));
      let sent = 0;
      const sendSome = (n: number): void => {
        for (let k = 0; k < n; k++) assert.equal(client.sendMessageToConnection(conn, bytes(sent++), SendFlags.Reliable).result, Result.OK);
      };
      sendSome(100);
      w.until(() => (read(), got.length >= 100), 10_000, 'the first 100');
      // The relay that forwarded them is the one carrying the link: it dies (no close, no drain).
      const carrying = relays.reduce((a, b) => (a.server.node.stats.forwardedPackets >= b.server.node.stats.forwardedPackets ? a : b));
      const other = relays.find((r) => r !== carrying) as (typeof relays)[number];
      const otherBefore = other.server.node.stats.forwardedPackets;
      w.world.kill(carrying.address);
      const killedAt = w.world.sim.now;
      w.until(
        () => (read(), got.length >= 400),
        20_000,
        '300 more after the relay died',
        () => {
          if (sent < 400) sendSome(5);
        },
      );
      assert.deepEqual(got, Array.from({ length: 400 }, (_, i) => i), 'each once, in order, across the failover');
      assert.ok(other.server.node.stats.forwardedPackets > otherBefore, 'the other relay carries it now');
      assert.equal(client.getConnectionInfo(conn)?.state, ConnectionState.Connected);
      assert.equal(server.getConnectionInfo(sconn)?.state, ConnectionState.Connected);
      assert.ok((log.get(client) ?? []).filter((i) => i.info.state === ConnectionState.Connected).length === 1, 'no second handshake');
      t.diagnostic(`400 delivered ${(w.world.sim.now - killedAt) / 1000} ms after the kill`);
    }));

  it('the same identity connects again while its old connection is up (a restarted client): the old one ends (1000), the new one is a new request the server accepts', (t) =>
    inSim(t, 2308, (w) => {
      const relay = w.world.relay();
      const key = seededCryptoProvider(2308).signingKey();
      const { server, log } = acceptingServer(w, [relay.address]);
      const first = w.instance({ relays: [relay.address], key });
      const c1 = first.connectP2P(server.getIdentity() as string, 0);
      w.until(() => first.getConnectionInfo(c1)?.state === ConnectionState.Connected, 15_000, 'the first connection');
      const s1 = log[0]?.connection as number;
      const second = w.instance({ relays: [relay.address], key });
      assert.equal(second.getIdentity(), first.getIdentity(), 'the same identity');
      const c2 = second.connectP2P(server.getIdentity() as string, 0);
      w.until(() => second.getConnectionInfo(c2)?.state === ConnectionState.Connected, 15_000, 'the second connection');
      const news = log.filter((i) => i.oldState === ConnectionState.None);
      assert.equal(news.length, 2, 'two requests, each accepted by the application');
      const s2 = news[1]?.connection as number;
      assert.notEqual(s2, s1);
      assert.equal(server.getConnectionInfo(s1)?.state, ConnectionState.ClosedByPeer, 'the old connection ended');
      assert.equal(server.getConnectionInfo(s1)?.endReason, 1000);
      assert.equal(second.sendMessageToConnection(c2, bytes(7), SendFlags.Reliable).result, Result.OK);
      const got: number[] = [];
      w.until(() => (got.push(...(server.receiveMessagesOnConnection(s2, 10) ?? []).map(num)), got.length > 0), 5000, 'a message on the new connection');
      assert.deepEqual(got, [7]);
      assert.equal(server.receiveMessagesOnConnection(s1, 10)?.length, 0, 'nothing on the old handle');
    }));

  it('virtual ports: each connection reaches the listen socket its signed request names; a port nobody listens on is refused (5001)', (t) =>
    inSim(t, 2309, (w) => {
      const relay = w.world.relay();
      const seen: StatusChangedInfo[] = [];
      const server = w.instance({ relays: [relay.address] });
      const accept = (info: StatusChangedInfo): void => {
        seen.push(info);
        if (info.info.state === ConnectionState.Connecting) server.acceptConnection(info.connection);
      };
      const game = server.createListenSocketP2P(27015, { Callback_ConnectionStatusChanged: accept });
      const chat = server.createListenSocketP2P(7, { Callback_ConnectionStatusChanged: accept });
      assert.ok(game > 0 && chat > 0 && game !== chat);
      const a = w.instance({ relays: [relay.address] });
      const b = w.instance({ relays: [relay.address] });
      const c = w.instance({ relays: [relay.address] });
      const id = server.getIdentity() as string;
      const ca = a.connectP2P(id, 7);
      const cb = b.connectP2P(id, 27015);
      const cc = c.connectP2P(id, 8);
      w.until(() => a.getConnectionInfo(ca)?.state === ConnectionState.Connected && b.getConnectionInfo(cb)?.state === ConnectionState.Connected && (c.getConnectionInfo(cc)?.state ?? 0) >= ConnectionState.ClosedByPeer, 15_000, `two connected, one refused (${[a.getConnectionInfo(ca)?.state, b.getConnectionInfo(cb)?.state, c.getConnectionInfo(cc)?.state, JSON.stringify(seen.map((i) => [i.info.listenSocket, i.info.state]))]})`);
      const on = (who: NetworkingSockets): number => seen.find((i) => i.oldState === ConnectionState.None && i.info.identityRemote === who.getIdentity())?.info.listenSocket ?? 0;
      assert.equal(on(a), chat, 'port 7 reached the chat listen socket');
      assert.equal(on(b), game, 'port 27015 reached the game listen socket');
      assert.equal(on(c), 0, 'port 8 reached no listen socket, and the application never saw it');
      const refused = c.getConnectionInfo(cc);
      assert.equal(refused?.state, ConnectionState.ClosedByPeer);
      assert.equal(refused?.endReason, 5001);
      assert.match(refused?.endDebug ?? '', /virtual port 8/);
      assert.equal(a.sendMessageToConnection(ca, bytes(1), SendFlags.Reliable).result, Result.OK);
      const got: NetworkingMessage[] = [];
      w.until(() => (got.push(...(server.receiveMessagesOnListenSocket(chat, 10) ?? [])), got.length > 0), 5000, 'a message on the chat listen socket');
      assert.equal(server.receiveMessagesOnListenSocket(game, 10)?.length, 0);
    }));

  it('a server that closes with linger on a slow path still delivers everything: the peer stays permitted and the relay path open until the connection is done, past the 1 s a let-go peer keeps', (t) =>
    inSim(t, 2310, (w) => {
      const relay = w.world.relay();
      const { server, client, conn, log, listen } = p2p(w, [relay.address]);
      w.until(() => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 15_000, 'connected');
      // 300 ms each way on the server's socket: delivering 300 KB takes several round trips, well over a second.
      assert.equal(server.setConfigValue('FakePacketLag_Send', ConfigScope.ListenSocket, listen, 300), true);
      const sconn = serverConn(log.get(server) ?? []);
      for (let i = 0; i < 300; i++) assert.equal(server.sendMessageToConnection(sconn, bytes(i, 1000), SendFlags.Reliable).result, Result.OK);
      const closedAt = w.world.sim.now;
      assert.equal(server.closeConnection(sconn, 1001, 'bye', true), true);
      const got: number[] = [];
      w.until(() => (got.push(...(client.receiveMessagesOnConnection(conn, 100) ?? []).map(num)), (client.getConnectionInfo(conn)?.state ?? 0) >= ConnectionState.ClosedByPeer), 30_000, 'the close after the data');
      got.push(...(client.receiveMessagesOnConnection(conn, 1000) ?? []).map(num));
      assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i), 'every message, then the close');
      assert.equal(client.getConnectionInfo(conn)?.endReason, 1001);
      assert.ok(w.world.sim.now - closedAt > 1_000_000, `the linger outlasted a let-go peer's permit (${(w.world.sim.now - closedAt) / 1000} ms)`);
      w.run(3000);
      assert.equal(relay.server.node.linkCount, 0, 'the link went once the connection was done');
    }));

  it('a reliable message every frame from connectP2P on (lookup, handshake, accept, connected) arrives once and in order; so do both sides\' when two listening peers connectP2P each other at once', (t) =>
    inSim(t, 2311, (w) => {
      const relay = w.world.relay();
      const { server, client, conn, log } = p2p(w, [relay.address]);
      let sent = 0;
      const got: number[] = [];
      w.until(
        () => {
          const sconn = serverConn(log.get(server) ?? []);
          if (sconn) got.push(...(server.receiveMessagesOnConnection(sconn, 100) ?? []).map(num));
          return got.length >= 300;
        },
        20_000,
        '300 messages',
        () => {
          if (sent < 300) assert.equal(client.sendMessageToConnection(conn, bytes(sent++), SendFlags.Reliable).result, Result.OK);
        },
      );
      assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));

      // A crossing: both listen, both connect, both send from the first frame; one connection survives on each side.
      const peers = [w.instance({ relays: [relay.address] }), w.instance({ relays: [relay.address] })] as const;
      const handles = [0, 0];
      const seen: number[][] = [[], []];
      peers.forEach((p, k) =>
        p.createListenSocketP2P(0, {
          Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
            seen[k]?.push(info.connection);
            if (info.oldState === ConnectionState.None) p.acceptConnection(info.connection);
          },
        }),
      );
      w.run(300);
      peers.forEach((p, k) => (handles[k] = p.connectP2P(peers[1 - k]?.getIdentity() as string, 0)));
      const both: number[][] = [[], []];
      let n = 0;
      w.until(
        () => {
          peers.forEach((p, k) => {
            for (const h of new Set([handles[k] as number, ...(seen[k] ?? [])])) both[k]?.push(...(p.receiveMessagesOnConnection(h, 100) ?? []).map(num));
          });
          return both.every((g) => g.length >= 200);
        },
        20_000,
        'both sides 200 messages',
        () => {
          if (n >= 200) return;
          peers.forEach((p, k) => assert.equal(p.sendMessageToConnection(handles[k] as number, bytes(n), SendFlags.Reliable).result, Result.OK));
          n++;
        },
      );
      for (const g of both) assert.deepEqual(g, Array.from({ length: 200 }, (_, i) => i), 'each once, in order, whichever connection won');
    }));

  it('lanes as on IP connections: a receiver gets lanes it did not configure; at most 254 lanes (lane 0 of the connection is the in-band one); the listen socket\'s options reach the connections it accepts', (t) =>
    inSim(t, 2312, (w) => {
      const relay = w.world.relay();
      const { server, log } = acceptingServer(w, [relay.address], { TimeoutConnected: 3333, SendBufferSize: 123_456 });
      const client = w.instance({ relays: [relay.address] });
      const conn = client.connectP2P(server.getIdentity() as string, 0);
      w.until(() => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 15_000, 'connected');
      const sconn = serverConn(log);
      assert.equal(server.getConnectionConfigValue(sconn, 'TimeoutConnected'), 3333);
      assert.equal(server.getConnectionConfigValue(sconn, 'SendBufferSize'), 123_456);
      assert.equal(server.configureConnectionLanes(sconn, 3), Result.OK);
      for (let i = 0; i < 10; i++) assert.equal(server.sendMessageToConnection(sconn, bytes(i), SendFlags.Reliable, 2).result, Result.OK);
      const got: NetworkingMessage[] = [];
      w.until(() => (got.push(...(client.receiveMessagesOnConnection(conn, 100) ?? [])), got.length >= 10), 5000, 'lane 2 at a 1-lane client');
      assert.ok(got.every((m) => m.lane === 2));
      assert.equal(client.configureConnectionLanes(conn, 255), Result.InvalidParam, '255 lanes: one too many through a relay');
      assert.equal(client.configureConnectionLanes(conn, 254), Result.OK);
      assert.equal(client.sendMessageToConnection(conn, bytes(1), SendFlags.Reliable, 253).result, Result.OK, 'the last lane works');
    }));

  it('onWritable on a P2P connection: a bulk sender that sends until LimitExceeded hears when the queue drained, and everything arrives', (t) =>
    inSim(t, 2313, (w) => {
      const relay = w.world.relay();
      let writable = 0;
      let fill = (): void => undefined;
      const { server, log } = acceptingServer(w, [relay.address]);
      const client = w.instance({
        relays: [relay.address],
        onWritable: () => {
          writable++;
          fill();
        },
      });
      const conn = client.connectP2P(server.getIdentity() as string, 0, { SendBufferSize: 256 * 1024 });
      w.until(() => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 15_000, 'connected');
      const N = 40;
      let sent = 0;
      let refused = 0;
      fill = (): void => {
        while (sent < N) {
          const r = client.sendMessageToConnection(conn, bytes(sent, 64 * 1024), SendFlags.Reliable).result;
          if (r === Result.LimitExceeded) {
            refused++;
            return;
          }
          assert.equal(r, Result.OK);
          sent++;
        }
      };
      fill();
      assert.ok(refused > 0, 'the 256 KiB send buffer refused a message');
      const sconn = serverConn(log);
      const got: number[] = [];
      w.until(() => (got.push(...(server.receiveMessagesOnConnection(sconn, 100) ?? []).map(num)), got.length >= N), 30_000, '40 messages of 64 KiB');
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => i));
      assert.ok(writable >= refused, `onWritable after each refusal (${writable} for ${refused})`);
    }));

  it('with linger, what was queued reaches the peer before the close; messages received before the close stay readable', (t) =>
    inSim(t, 2306, (w) => {
      const relay = w.world.relay();
      const { server, client, conn, log } = p2p(w, [relay.address], { loss: true });
      w.until(() => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 15_000, 'connected');
      for (let i = 0; i < 300; i++) assert.equal(client.sendMessageToConnection(conn, bytes(i, 600), SendFlags.Reliable).result, Result.OK);
      assert.equal(client.closeConnection(conn, 1001, 'bye', true), true);
      const sconn = serverConn(log.get(server) ?? []);
      w.until(() => server.getConnectionInfo(sconn)?.state === ConnectionState.ClosedByPeer, 20_000, 'the close after the data');
      const got = (server.receiveMessagesOnConnection(sconn, 1000) ?? []).map(num);
      assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i), 'every queued message, then the close');
      assert.equal(server.getConnectionInfo(sconn)?.endReason, 1001);
    }));
});
