// Real UDP on loopback, one smoke test per facade: connect, 50 reliable messages one way arrive in order,
// close. The compliance suite itself (loss, duplication, back-pressure, close reasons) runs in virtual
// time: test/compliance/compliance.test.ts. Waits poll conditions against a deadline, never fixed sleeps.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, SendFlags } from '../../src/index.js';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { NetworkingMessages } from '../../src/api/networking-messages.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { connectedPair, until } from './support.js';

const N = 50;

/** Message i: its index in one byte. */
const message = (i: number): Uint8Array => Uint8Array.of(i);
const inOrder = (got: readonly number[]): void => assert.deepEqual(got, Array.from({ length: N }, (_, i) => i), 'every message once, in order');

describe('smoke over real UDP', () => {
  it(`NetworkingSockets: connect, ${N} reliable messages in order, close`, async () => {
    const { server, client, sconn, close } = await connectedPair('127.0.0.1');
    try {
      for (let i = 0; i < N; i++) assert.equal(client.sockets.sendMessageToConnection(client.conn, message(i), SendFlags.Reliable).result, 1);
      const got: number[] = [];
      const frame = (): void => {
        client.sockets.runCallbacks();
        server.sockets.runCallbacks();
        for (const m of server.sockets.receiveMessagesOnConnection(sconn, 100) ?? []) got.push(m.data[0] as number);
      };
      await until(frame, () => got.length >= N, `${N} messages`);
      inOrder(got);
      assert.ok(client.sockets.closeConnection(client.conn, 1000, 'done'));
      await until(frame, () => server.events.some((e) => e.connection === sconn && e.info.state === ConnectionState.ClosedByPeer), 'the close at the server');
    } finally {
      close();
    }
  });

  describe('through an embedded relay', () => {
    let relay: RelayServer;
    let relays: string[];
    before(() => {
      relay = RelayServer.open({ open: true });
      relays = [relay.address];
    });
    after(() => relay.close());

    it(`NetworkManager: connect, ${N} reliable messages in order, close`, async () => {
      const a = new NetworkManager({ relays });
      const b = new NetworkManager({ relays });
      try {
        const got: number[] = [];
        b.on('message', (_peer, _channel, data) => got.push(data[0] as number));
        const frame = (): void => {
          for (const m of [a, b]) {
            m.runCallbacks();
            m.flush();
          }
        };
        await until(frame, () => a.route !== null && b.route !== null, 'routes');
        assert.equal(a.openPeer(b.getPeerId(), b.route as string), DiscordResult.Ok);
        assert.equal(b.openPeer(a.getPeerId(), a.route as string), DiscordResult.Ok);
        assert.equal(a.openChannel(b.getPeerId(), 0, true), DiscordResult.Ok);
        assert.equal(b.openChannel(a.getPeerId(), 0, true), DiscordResult.Ok);
        await until(frame, () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 'connection');
        for (let i = 0; i < N; i++) assert.equal(a.sendMessage(b.getPeerId(), 0, message(i)), DiscordResult.Ok);
        await until(frame, () => got.length >= N, `${N} messages`);
        inOrder(got);
        assert.equal(a.closePeer(b.getPeerId()), DiscordResult.Ok);
        await until(frame, () => b.peerStatus(a.getPeerId())?.lastEnd?.reason === 1000, 'the close at the other peer');
      } finally {
        a.close();
        b.close();
      }
    });

    it(`NetworkingMessages: connect, ${N} reliable messages in order, close`, async () => {
      const a = new NetworkingMessages({ relays });
      const b = new NetworkingMessages({ relays });
      try {
        b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
        const got: number[] = [];
        const frame = (): void => {
          a.runCallbacks();
          b.runCallbacks();
          for (const m of b.receiveMessagesOnChannel(0, 100)) got.push(m.payload[0] as number);
        };
        await until(frame, () => a.registered && b.registered, 'registration');
        for (let i = 0; i < N; i++) assert.equal(a.sendMessageToUser(b.getIdentity(), message(i), SendFlags.Reliable, 0), 1);
        await until(frame, () => got.length >= N, `${N} messages`);
        inOrder(got);
        assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, ConnectionState.Connected);
        assert.ok(a.closeSessionWithUser(b.getIdentity()));
        // A closed session ends quietly at the other side (no callback): its session goes.
        await until(frame, () => b.getSessionConnectionInfo(a.getIdentity()).state === ConnectionState.None, 'the close at the other peer');
      } finally {
        a.close();
        b.close();
      }
    });
  });
});
