// NetworkingSockets on the real kernel: what a simulation cannot show. IPv4 and IPv6 on loopback, a dual
// stack listen socket (`::` accepting IPv4), EADDRINUSE answered with handle 0, and a socket pair on two
// real UDP sockets driven by onReadable from the event loop. The API and protocol behaviour (callbacks,
// states, lanes, poll groups, configuration, fake conditions, close reasons, stats) is tested in virtual
// time: test/sim/sockets-api.test.ts. Every wait is on a condition with a deadline (waitFor), never a fixed pause.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { ConfigScope, ConnectionState, DebugOutputType, NetworkingSockets, Result, SendFlags, type NetworkingMessage, type StatusChangedInfo } from '../../src/index.js';
import { HOSTS, bothConnected, connectedPair, startClient, startServer, waitFor } from './support.js';

const N = 50;
/** 512 KiB, the largest message: some 400 datagrams in one burst through the kernel's socket buffers. */
const BIG = new Uint8Array(512 * 1024).map((_, i) => (i * 7919) & 0xff);
const BIG_DIGEST = createHash('sha256').update(BIG).digest('hex');

type Side = { readonly sockets: NetworkingSockets; readonly conn: number };

/** Sends `messages` (reliable) from each side to the other and waits until each side has them all; returns what each received. */
async function exchange(sides: readonly [Side, Side], messages: readonly Uint8Array[], what: string): Promise<NetworkingMessage[][]> {
  for (const { sockets, conn } of sides) for (const m of messages) assert.equal(sockets.sendMessageToConnection(conn, m, SendFlags.Reliable).result, Result.OK);
  const got: NetworkingMessage[][] = [[], []];
  await waitFor(sides.map((s) => s.sockets), () => {
    sides.forEach(({ sockets, conn }, i) => got[i]?.push(...(sockets.receiveMessagesOnConnection(conn, 100) ?? [])));
    return got.every((g) => g.length >= messages.length);
  }, 10_000, what);
  return got;
}

describe('NetworkingSockets on the real kernel', () => {
  for (const host of HOSTS) {
    it(`on ${host}: connects, carries reliable messages both ways in order and then 512 KiB each way intact, and the peer hears the close reason`, async () => {
      const { server, client, sconn, close } = await connectedPair(host);
      try {
        assert.equal(server.address, host, 'the listen socket is on the address asked for');
        assert.deepEqual(client.sockets.getConnectionInfo(client.conn)?.addressRemote, { address: host, port: server.port });
        assert.equal(server.sockets.getConnectionInfo(sconn)?.addressRemote.address, host, 'the server sees the client at its loopback address');
        const sides = [{ sockets: server.sockets, conn: sconn }, client] as const;
        const small = await exchange(sides, Array.from({ length: N }, (_, i) => Uint8Array.of(i)), `${N} messages each way`);
        for (const got of small) assert.deepEqual(got.map((m) => m.data[0]), Array.from({ length: N }, (_, i) => i), 'each once, in order');
        const big = await exchange(sides, [BIG], 'the 512 KiB message each way');
        for (const [m] of big) {
          assert.ok(m);
          assert.equal(createHash('sha256').update(m.data).digest('hex'), BIG_DIGEST, 'intact');
        }
        assert.ok(client.sockets.closeConnection(client.conn, 1234, 'match over'));
        await waitFor([server.sockets], () => server.events.some((e) => e.connection === sconn && e.info.state === ConnectionState.ClosedByPeer), 5000, 'the close at the server');
        const info = server.sockets.getConnectionInfo(sconn);
        assert.equal(info?.endReason, 1234);
        assert.equal(info?.endDebug, 'match over');
      } finally {
        close();
      }
    });
  }

  it('dual stack: a listen socket on :: accepts an IPv4 client (seen as plain 127.0.0.1) and an IPv6 one', async () => {
    const server = startServer('::');
    const v4 = startClient('127.0.0.1', server.port, {}, { fakeSeed: 2 });
    const v6 = startClient('::1', server.port, {}, { fakeSeed: 3 });
    const all = [server.sockets, v4.sockets, v6.sockets];
    try {
      assert.equal(server.address, '::');
      const connected = (s: NetworkingSockets, c: number): boolean => s.getConnectionInfo(c)?.state === ConnectionState.Connected;
      await waitFor(all, () => server.conns.length === 2 && server.conns.every((c) => connected(server.sockets, c)) && [v4, v6].every((c) => connected(c.sockets, c.conn)), 10_000, 'both clients connected');
      const remotes = server.conns.map((c) => server.sockets.getConnectionInfo(c)?.addressRemote.address).sort();
      assert.deepEqual(remotes, ['127.0.0.1', '::1'], 'the IPv4 client is shown as IPv4, not ::ffff:127.0.0.1');
      // A message each way on both connections: the dual stack socket answers the IPv4 client too.
      for (const [i, c] of [v4, v6].entries()) assert.equal(c.sockets.sendMessageToConnection(c.conn, Uint8Array.of(i), SendFlags.Reliable).result, Result.OK);
      const heard = new Map<number, number>();
      const echoed: number[] = [];
      await waitFor(all, () => {
        for (const s of server.conns) {
          for (const m of server.sockets.receiveMessagesOnConnection(s) ?? []) {
            heard.set(s, m.data[0] as number);
            server.sockets.sendMessageToConnection(s, m.data, SendFlags.Reliable);
          }
        }
        for (const c of [v4, v6]) for (const m of c.sockets.receiveMessagesOnConnection(c.conn) ?? []) echoed.push(m.data[0] as number);
        return echoed.length >= 2;
      }, 5000, 'echoes on both connections');
      assert.equal(heard.size, 2);
      assert.deepEqual(echoed.sort(), [0, 1]);
    } finally {
      v4.sockets.close();
      v6.sockets.close();
      server.sockets.close();
    }
  });

  it('an address in use: createListenSocket returns 0 with EADDRINUSE in the debug output, and the socket that holds it keeps working', async () => {
    const server = startServer('127.0.0.1');
    const other = new NetworkingSockets({ fakeSeed: 3 });
    const errors: string[] = [];
    other.setDebugOutputFunction(DebugOutputType.Error, (_level, message) => errors.push(message));
    const foreign = dgram.createSocket('udp4');
    let client: ReturnType<typeof startClient> | null = null;
    try {
      assert.equal(other.createListenSocket(`127.0.0.1:${server.port}`), 0, 'held by another instance');
      assert.match(errors.at(-1) ?? '', /EADDRINUSE/);
      assert.equal(server.sockets.createListenSocket(`127.0.0.1:${server.port}`), 0, 'held by the same instance');
      await new Promise<void>((resolve, reject) => {
        foreign.once('error', reject);
        foreign.bind(0, '127.0.0.1', () => resolve());
      });
      errors.length = 0;
      assert.equal(other.createListenSocket(`127.0.0.1:${foreign.address().port}`), 0, 'held by a socket that is not netlane');
      assert.match(errors.at(-1) ?? '', /EADDRINUSE/);
      // The listen socket that holds the port still accepts.
      client = startClient('127.0.0.1', server.port);
      const c = client;
      await waitFor([server.sockets, c.sockets], () => bothConnected(server, c), 10_000, 'a connection to the port that was in use');
    } finally {
      foreign.close();
      client?.sockets.close();
      other.close();
      server.sockets.close();
    }
  });

  it('createSocketPair(true): two real UDP sockets on 127.0.0.1, connected at once, a 200-round-trip ping-pong driven by onReadable alone, the close seen by the other end', async () => {
    let a = 0;
    let b = 0;
    let pings = 0;
    const calls = new Map<number, number>();
    const got: number[] = [];
    const events: StatusChangedInfo[] = [];
    const sockets: NetworkingSockets = new NetworkingSockets({
      fakeSeed: 4,
      onReadable: (conn) => {
        calls.set(conn, (calls.get(conn) ?? 0) + 1);
        for (const m of sockets.receiveMessagesOnConnection(conn, 64) ?? []) {
          if (conn === b) {
            sockets.sendMessageToConnection(b, m.data, SendFlags.ReliableNoNagle); // echo
          } else {
            got.push(m.data[0] as number);
            if (++pings < 200) sockets.sendMessageToConnection(a, new Uint8Array([pings % 256]), SendFlags.ReliableNoNagle);
          }
        }
      },
    });
    sockets.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (i: StatusChangedInfo) => events.push(i));
    try {
      const pair = sockets.createSocketPair(true);
      assert.ok(pair);
      [a, b] = pair;
      for (const h of pair) assert.equal(sockets.getConnectionInfo(h)?.state, ConnectionState.Connected);
      assert.equal((sockets.getConnectionInfo(a)?.flags ?? 0) & 4, 0, 'no LoopbackBuffers flag: a network pair');
      assert.equal(sockets.getConnectionInfo(a)?.addressRemote.address, '127.0.0.1');
      assert.equal(sockets.sendMessageToConnection(a, new Uint8Array([0]), SendFlags.ReliableNoNagle).result, Result.OK);
      await waitFor([sockets], () => pings >= 200, 10_000, '200 round trips');
      assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i % 256), 'every ping came back, in order');
      assert.equal(calls.get(a), 200, 'one call per reply: each time the empty queue got a message');
      assert.equal(calls.get(b), 200);
      assert.equal(events.length, 0, 'no callbacks for the pair coming up (200 round trips of callbacks later)');
      assert.ok(sockets.closeConnection(a, 1005, 'pair done'));
      await waitFor([sockets], () => sockets.getConnectionInfo(b)?.state === ConnectionState.ClosedByPeer && events.length > 0, 5000, 'other end closed');
      assert.equal(events.length, 1);
      assert.equal(events[0]?.connection, b);
      assert.equal(events[0]?.info.endReason, 1005);
    } finally {
      sockets.close();
    }
  });
});
