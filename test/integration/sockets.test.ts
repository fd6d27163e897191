// NetworkingSockets over real UDP on loopback (127.0.0.1 and ::1). Real time, bounded waits; fake
// conditions are seeded (fakeSeed) so a failure names its seeds.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { NetworkingMessage} from '../../src/index.js';
import { ConnectionState, Result, SendFlags } from '../../src/index.js';
import { HOSTS, connectedPair, waitFor } from './support.js';

const LOSSY = { FakePacketLoss_Send: 10, FakePacketLag_Send: 20 };

function collect(into: NetworkingMessage[], batch: NetworkingMessage[] | null): void {
  assert.ok(batch, 'receive on a valid handle returns an array');
  into.push(...batch);
}

for (const host of HOSTS) {
  describe(`NetworkingSockets over UDP on ${host}`, () => {
    it('connects, accepts, and carries reliable and unreliable traffic through 10% loss and 20 ms lag each way', async () => {
      const { server, client, sconn, close } = await connectedPair(host, LOSSY, LOSSY);
      console.log(`fake seeds: server ${server.sockets.fakeSeed}, client ${client.sockets.fakeSeed}`);
      try {
        assert.equal(server.sockets.getConnectionInfo(sconn)?.state, ConnectionState.Connected);
        assert.equal(server.sockets.getConnectionInfo(sconn)?.listenSocket, server.listen);
        const got: NetworkingMessage[] = [];
        const N = 200;
        for (let i = 0; i < N; i++) {
          const r = client.sockets.sendMessageToConnection(client.conn, new TextEncoder().encode(`loot ${i}`), SendFlags.Reliable);
          assert.equal(r.result, Result.OK);
          // Positions go one per packet (NoNagle), so that loss shows on them.
          assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array([i]), SendFlags.UnreliableNoNagle, 0).result, Result.OK);
          if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
        }
        await waitFor([server.sockets, client.sockets], () => {
          collect(got, server.sockets.receiveMessagesOnConnection(sconn, 100));
          return got.filter((m) => m.flags === SendFlags.Reliable).length >= N;
        }, 20_000, 'all reliable messages');
        await new Promise((r) => setTimeout(r, 100));
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
      } finally {
        close();
      }
    });

    it('carries 512 KiB messages both ways, intact', async () => {
      const { server, client, sconn, close } = await connectedPair(host, {});
      try {
        const big = new Uint8Array(512 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
        const digest = createHash('sha256').update(big).digest('hex');
        assert.equal(client.sockets.sendMessageToConnection(client.conn, big, SendFlags.Reliable).result, Result.OK);
        assert.equal(server.sockets.sendMessageToConnection(sconn, big, SendFlags.Reliable).result, Result.OK);
        const atServer: NetworkingMessage[] = [];
        const atClient: NetworkingMessage[] = [];
        await waitFor([server.sockets, client.sockets], () => {
          collect(atServer, server.sockets.receiveMessagesOnConnection(sconn));
          collect(atClient, client.sockets.receiveMessagesOnConnection(client.conn));
          return atServer.length > 0 && atClient.length > 0;
        }, 10_000, 'both big messages');
        for (const m of [atServer[0], atClient[0]] as NetworkingMessage[]) {
          assert.equal(m.size, big.length);
          assert.equal(createHash('sha256').update(m.data).digest('hex'), digest);
        }
        assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array(512 * 1024 + 1), SendFlags.Reliable).result, Result.InvalidParam, 'over the limit: InvalidParam');
      } finally {
        close();
      }
    });

    it('keeps lanes apart and refuses a lane that was not configured', async () => {
      const { server, client, sconn, close } = await connectedPair(host, {});
      try {
        assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array(1), SendFlags.Reliable, 2).result, Result.InvalidParam);
        assert.equal(client.sockets.configureConnectionLanes(client.conn, 3, [0, 0, 1], [1, 3, 1]), Result.OK);
        assert.equal(client.sockets.configureConnectionLanes(client.conn, 2), Result.InvalidParam, 'lanes cannot be removed');
        for (let i = 0; i < 30; i++) assert.equal(client.sockets.sendMessageToConnection(client.conn, new Uint8Array([i % 3, i]), SendFlags.Reliable, i % 3).result, Result.OK);
        const got: NetworkingMessage[] = [];
        await waitFor([server.sockets, client.sockets], () => {
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
      } finally {
        close();
      }
    });

    it('tells the peer the close reason, and linger delivers queued reliable data after close', async () => {
      const { server, client, sconn, close } = await connectedPair(host, {}, { SendRateMax: 2_000_000 });
      try {
        const chunk = new Uint8Array(64 * 1024).fill(7);
        for (let i = 0; i < 6; i++) assert.equal(client.sockets.sendMessageToConnection(client.conn, chunk, SendFlags.Reliable).result, Result.OK);
        assert.equal(client.sockets.closeConnection(client.conn, 1234, 'match over', true), true);
        assert.equal(client.sockets.closeConnection(client.conn, 1234, 'again', true), false, 'closing twice is harmless');
        assert.equal(client.sockets.sendMessageToConnection(client.conn, chunk, SendFlags.Reliable).result, Result.InvalidParam, 'the handle is gone');
        const got: NetworkingMessage[] = [];
        await waitFor([server.sockets, client.sockets], () => {
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
      } finally {
        close();
      }
    });

    it('times out a peer that vanishes', async () => {
      const { client, close } = await connectedPair(host, {}, { TimeoutConnected: 1000, KeepaliveInterval: 200 });
      try {
        const t0 = Date.now();
        // The server vanishes without a word: from now on nothing it sends arrives.
        assert.ok(client.sockets.setConnectionConfigValue(client.conn, 'FakePacketLoss_Recv', 100));
        await waitFor([client.sockets], () => client.sockets.getConnectionInfo(client.conn)?.state === ConnectionState.ProblemDetectedLocally, 5000, 'timeout');
        const waited = Date.now() - t0;
        const info = client.sockets.getConnectionInfo(client.conn);
        assert.equal(info?.endReason, 5003);
        assert.ok(waited >= 900 && waited < 4000, `timed out after ${waited} ms with TimeoutConnected 1000`);
        assert.equal(client.events.at(-1)?.info.state, ConnectionState.ProblemDetectedLocally);
      } finally {
        close();
      }
    });
  });
}
