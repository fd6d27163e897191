// Connection migration over real UDP: a NetworkingSockets client whose UDP socket is replaced by one on
// another port mid-transfer (what a NAT rebinding looks like to the server) keeps its connection to a
// server in another process. TimeoutConnected is 1 s on both sides, so the test runs three timeouts past
// the rebind (which used to end the connection with 5003 one timeout later) in a few seconds of wall time.
// Every wait is on a condition against a deadline (waitFor).
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { ConnectionState, NetworkingSockets, Result, SendFlags, udpRuntime, type DatagramTransport, type Runtime, type SocketAddress, type UdpSocketOptions } from '../../src/index.js';
import { waitFor } from './support.js';

const TIMEOUT_MS = 1000;
const KEEPALIVE_MS = 100;
const MESSAGE_BYTES = 1024;
/** Messages sent and not yet echoed, at most. */
const WINDOW = 128;

/**
 * A UDP transport whose socket can be replaced by a new one on a free port (`swap`), as a NAT rebinding
 * replaces the port a server sees; the facade above it notices nothing.
 */
class SwappableUdp implements DatagramTransport {
  onMessage: (data: Uint8Array, from: SocketAddress) => void = () => undefined;
  readonly #options: UdpSocketOptions;
  #sock: DatagramTransport;
  #keepAlive = false;

  constructor(options: UdpSocketOptions) {
    this.#options = { ...options, port: 0 };
    this.#sock = this.#open();
  }

  #open(): DatagramTransport {
    const s = udpRuntime.openUdp(this.#options);
    s.onMessage = (data, from) => this.onMessage(data, from);
    s.keepProcessAlive(this.#keepAlive);
    return s;
  }

  get local(): SocketAddress {
    return this.#sock.local;
  }

  send(data: Uint8Array, to: SocketAddress, header?: Uint8Array): void {
    this.#sock.send(data, to, header);
  }

  keepProcessAlive(yes: boolean): void {
    this.#keepAlive = yes;
    this.#sock.keepProcessAlive(yes);
  }

  close(): void {
    this.#sock.close();
  }

  /** Moves to a new socket on a free port and closes the old one; returns the new local address. */
  swap(): SocketAddress {
    const old = this.#sock;
    this.#sock = this.#open();
    old.onMessage = () => undefined;
    old.close();
    return this.#sock.local;
  }
}

/** The server process; resolves with its port once it prints it (5 s at most). `out` collects its output. */
function spawnServer(): Promise<{ proc: ChildProcess; port: number; out: () => string }> {
  const proc = spawn(process.execPath, ['dist/test/integration/migration-server.js', String(TIMEOUT_MS), String(KEEPALIVE_MS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the server printed no port within 5 s: ${out}`));
    }, 5000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}): ${out}`));
    });
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const port = Number(/port (\d+)/.exec(out)?.[1]);
      if (!port) return;
      clearTimeout(timer);
      resolve({ proc, port, out: () => out });
    });
  });
}

test('NAT rebinding over real UDP: the client socket is replaced by one on a new port mid-transfer; the server (another process) moves to the new port and messages keep flowing three timeouts later', async () => {
  const server = await spawnServer();
  let transport: SwappableUdp | null = null;
  const runtime: Runtime = { ...udpRuntime, openUdp: (o) => (transport = new SwappableUdp(o)) };
  const client = new NetworkingSockets({ runtime, fakeSeed: 2 });
  try {
    const conn = client.connect(`127.0.0.1:${server.port}`, { TimeoutConnected: TIMEOUT_MS, KeepaliveInterval: KEEPALIVE_MS });
    assert.notEqual(conn, 0);
    const state = (): ConnectionState | undefined => client.getConnectionInfo(conn)?.state;
    await waitFor([client], () => state() === ConnectionState.Connected, 10_000, 'connected');
    const t = transport as SwappableUdp | null;
    assert.ok(t, 'the client opened its socket through the runtime');
    let sent = 0;
    let echoed = 0;
    /** The client's port as the server's connection info showed it in the latest echo. */
    let seenPort = 0;
    const pump = (): void => {
      for (let k = 0; k < 8 && sent - echoed < WINDOW; k++) {
        const m = new Uint8Array(MESSAGE_BYTES).fill(sent & 0xff);
        new DataView(m.buffer).setUint32(0, sent);
        assert.equal(client.sendMessageToConnection(conn, m, SendFlags.Reliable).result, Result.OK);
        sent++;
      }
      for (const m of client.receiveMessagesOnConnection(conn, 256) ?? []) {
        const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
        assert.equal(m.data.length, MESSAGE_BYTES + 2);
        assert.equal(v.getUint32(0), echoed, 'echoes in order, each once');
        assert.equal(m.data[MESSAGE_BYTES - 1], echoed & 0xff, 'intact');
        seenPort = v.getUint16(MESSAGE_BYTES);
        echoed++;
      }
    };
    await waitFor([client], () => (pump(), echoed >= 300), 10_000, 'echoes before the rebind');
    const oldPort = t.local.port;
    assert.equal(seenPort, oldPort, 'the server sees the first port');
    const next = t.swap();
    const swappedAt = performance.now();
    const echoedAtSwap = echoed;
    assert.notEqual(next.port, oldPort);
    /** waitFor, with what the server printed (its status changes) in the error. */
    const until = async (done: () => boolean, timeoutMs: number, what: string): Promise<void> => {
      try {
        await waitFor([client], done, timeoutMs, what);
      } catch (e) {
        throw new Error(`${(e as Error).message}; client state ${state()} reason ${client.getConnectionInfo(conn)?.endReason}; the server printed: ${server.out().replace(/\n/g, ', ')}`);
      }
    };
    await until(() => (pump(), seenPort === next.port), 5000, 'the server to see the new port');
    const movedMs = Math.round(performance.now() - swappedAt);
    await until(() => (pump(), performance.now() - swappedAt > 3 * TIMEOUT_MS && echoed > echoedAtSwap + 500), 15_000, 'messages three timeouts past the rebind');
    console.log(`# real UDP rebinding: port ${oldPort} -> ${next.port}; the server echoed the new port ${movedMs} ms after the swap; ${echoed - echoedAtSwap} echoes of ${MESSAGE_BYTES} B since, ${Math.round(performance.now() - swappedAt)} ms after the swap; TimeoutConnected ${TIMEOUT_MS} ms`);
    assert.equal(state(), ConnectionState.Connected, 'the same handle, still connected');
    assert.equal(client.getConnectionInfo(conn)?.endReason, 0);
    assert.doesNotMatch(server.out(), /state [45] /, 'the server connection never ended');
  } finally {
    client.close();
    server.proc.stdin?.end();
    server.proc.kill();
  }
});
