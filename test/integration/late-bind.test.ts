// NetworkingSockets over sockets that bind after openUdp returns, as Bun's do (docs/RUNTIME.md "Runtimes"),
// under Node: a runtime whose sockets are real UDP sockets that report `binding` until the test lets the bind
// complete (or fail). The handle comes back at once, the address is known after the bind, traffic then flows;
// a bind that fails later closes the listen socket with a reason. runtimes.test.ts runs the same under Bun itself.
import { strict as assert } from 'node:assert';
import { describe, it, test } from 'node:test';
import { ConnectionState, DebugOutputType, NetworkingSockets, SendFlags, UdpSocket, udpRuntime, type DatagramTransport, type Runtime, type SocketAddress, type UdpSocketOptions } from '../../src/index.js';
import { NetlaneError } from '../../src/util/errors.js';
import { listenAccepting, waitFor } from './support.js';

/** A real UDP socket that says it is still binding until `finish`: port 0 until then, then the real one. */
class LateBind implements DatagramTransport {
  readonly #inner: DatagramTransport;
  readonly #requested: SocketAddress;
  #binding = true;
  #failed: NetlaneError | null = null;
  readonly #waiters: { resolve: (a: SocketAddress) => void; reject: (e: Error) => void }[] = [];

  constructor(options: UdpSocketOptions) {
    this.#inner = udpRuntime.openUdp(options);
    this.#requested = { address: options.address, port: options.port };
  }

  get binding(): boolean {
    return this.#binding;
  }

  get local(): SocketAddress {
    return this.#binding || this.#failed ? this.#requested : this.#inner.local;
  }

  set onMessage(fn: (data: Uint8Array, from: SocketAddress) => void) {
    this.#inner.onMessage = fn;
  }

  get onMessage(): (data: Uint8Array, from: SocketAddress) => void {
    return this.#inner.onMessage;
  }

  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    this.#inner.send(data, to, header);
  }

  keepProcessAlive(yes: boolean): void {
    this.#inner.keepProcessAlive(yes);
  }

  close(): void {
    this.#inner.close();
  }

  bound(): Promise<SocketAddress> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (!this.#binding) return Promise.resolve(this.local);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Completes the bind, or fails it (the socket is closed, as UdpSocket does). */
  finish(ok: boolean): void {
    this.#binding = false;
    if (!ok) {
      this.#failed = new NetlaneError('ERR_NETLANE_SOCKET', 'cannot open UDP socket: bind EADDRINUSE');
      this.#inner.close();
    }
    for (const w of this.#waiters.splice(0)) {
      if (this.#failed) w.reject(this.#failed);
      else w.resolve(this.local);
    }
  }
}

/** A runtime whose sockets bind late; `opened` lists them in order. */
function lateRuntime(): { runtime: Runtime; opened: LateBind[] } {
  const opened: LateBind[] = [];
  return {
    opened,
    runtime: {
      ...udpRuntime,
      openUdp: (o) => {
        const s = new LateBind(o);
        opened.push(s);
        return s;
      },
    },
  };
}

test('under Node a UdpSocket is bound when open returns: binding is false and bound() answers with its address', async () => {
  const s = UdpSocket.open({ address: '127.0.0.1', port: 0 });
  try {
    assert.equal(s.binding, false);
    assert.ok(s.local.port > 0);
    assert.deepEqual(await s.bound(), s.local);
  } finally {
    s.close();
  }
});

describe('sockets that bind after the call (as under Bun)', () => {
  it('createListenSocket returns the handle at once; the port is known once bound, and a client then connects and delivers', async () => {
    const { runtime, opened } = lateRuntime();
    const server = new NetworkingSockets({ runtime });
    const { listen, conns } = listenAccepting(server, '127.0.0.1:0');
    const client = new NetworkingSockets();
    try {
      assert.notEqual(listen, 0, 'a handle, not 0: the bind has not failed');
      assert.equal(server.getListenSocketAddress(listen), null, 'no port to report before the bind');
      let bound: SocketAddress | null = null;
      const waiting = server.listenSocketBound(listen).then((a) => (bound = a));
      await Promise.resolve();
      assert.equal(bound, null, 'listenSocketBound waits for the bind');
      opened[0]?.finish(true);
      await waiting;
      const port = (bound as SocketAddress | null)?.port ?? 0;
      assert.ok(port > 0);
      assert.deepEqual(server.getListenSocketAddress(listen), { address: '127.0.0.1', port });
      const conn = client.connect(`127.0.0.1:${port}`);
      const got: number[] = [];
      await waitFor([client, server], () => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 5000, 'the connection');
      for (let i = 0; i < 10; i++) client.sendMessageToConnection(conn, Uint8Array.of(i), SendFlags.Reliable);
      await waitFor(
        [client, server],
        () => {
          for (const m of server.receiveMessagesOnConnection(conns[0] ?? 0, 100) ?? []) got.push(m.data[0] ?? -1);
          return got.length >= 10;
        },
        5000,
        '10 messages',
      );
      assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      client.close();
      server.close();
    }
  });

  it('a bind that fails after the call closes the listen socket, says why in the debug output, and rejects listenSocketBound', async () => {
    const { runtime, opened } = lateRuntime();
    const server = new NetworkingSockets({ runtime });
    const debug: string[] = [];
    server.setDebugOutputFunction(DebugOutputType.Error, (_level, text) => debug.push(text));
    try {
      const listen = server.createListenSocket('127.0.0.1:27999');
      assert.notEqual(listen, 0);
      assert.deepEqual(server.getListenSocketAddress(listen), { address: '127.0.0.1', port: 27999 }, 'a socket given a port reports it while binding');
      const result = server.listenSocketBound(listen);
      opened[0]?.finish(false);
      await assert.rejects(result, (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_SOCKET');
      await waitFor([server], () => server.getListenSocketAddress(listen) === null, 2000, 'the listen socket to close');
      assert.equal(server.closeListenSocket(listen), false, 'the handle is gone');
      assert.ok(
        debug.some((d) => d.includes(`listen socket ${listen}`) && d.includes('EADDRINUSE')),
        debug.join('\n'),
      );
      await assert.rejects(server.listenSocketBound(listen), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT');
    } finally {
      server.close();
    }
  });

  it('createSocketPair over the network needs sockets bound at once: it returns null and says why', () => {
    const { runtime, opened } = lateRuntime();
    const s = new NetworkingSockets({ runtime });
    const debug: string[] = [];
    s.setDebugOutputFunction(DebugOutputType.Error, (_level, text) => debug.push(text));
    try {
      assert.equal(s.createSocketPair(true), null);
      assert.ok(debug.some((d) => /binds after the call/.test(d)), debug.join('\n'));
      assert.notEqual(s.createSocketPair(false), null, 'the in-memory pair needs no socket');
      assert.equal(opened.length, 2);
    } finally {
      s.close();
    }
  });
});
