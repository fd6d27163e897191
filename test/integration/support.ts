// The NetworkingSockets harness: a server whose listen socket accepts everything and a client with one
// connection, over real UDP (the default) or any runtime (test/sim/sockets-api.test.ts builds them in a
// SimNetwork); and `waitFor`, the one way the integration suite waits: on a condition, against a deadline.
import { ConfigScope, ConnectionState, NetworkingSockets, type ConfigOptions, type NetworkingSocketsOptions, type StatusChangedInfo } from '../../src/index.js';

/** Waits (real time, bounded) until `done()` holds, running every instance's callbacks in between; yields to the event loop with a 1 ms timer. */
export async function waitFor(instances: readonly NetworkingSockets[], done: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const s of instances) s.runCallbacks();
    if (done()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Runs `frame` and yields to the event loop (a 1 ms timer) until `done()`; fails after `timeoutMs` of real time. */
export async function until(frame: () => void, done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    frame();
    if (done()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A listen socket that accepts every connection; `events` records its status changes, `conns` the connections it accepted. */
export interface Server {
  readonly sockets: NetworkingSockets;
  readonly listen: number;
  /** The listen socket's address (its IP is the runtime's own in a simulation). */
  readonly address: string;
  readonly port: number;
  readonly events: StatusChangedInfo[];
  readonly conns: number[];
}

/** An instance with one outgoing connection; `events` records its status changes. */
export interface Client {
  readonly sockets: NetworkingSockets;
  readonly conn: number;
  readonly events: StatusChangedInfo[];
}

/** A listen socket on `sockets` at `address` that accepts every connection; `events` records its status changes, `conns` what it accepted. `listen` is 0 if it could not open. */
export function listenAccepting(sockets: NetworkingSockets, address: string, options: ConfigOptions = {}): { listen: number; events: StatusChangedInfo[]; conns: number[] } {
  const events: StatusChangedInfo[] = [];
  const conns: number[] = [];
  const listen = sockets.createListenSocket(address, {
    ...options,
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      events.push(info);
      if (info.info.state === ConnectionState.Connecting) {
        sockets.acceptConnection(info.connection);
        conns.push(info.connection);
      }
    },
  });
  return { listen, events, conns };
}

/** A server instance listening on `[host]:port` (port 0: a free one). Real UDP with fake seed 1 unless `instance` says otherwise. */
export function startServer(host: string, options: ConfigOptions = {}, instance: NetworkingSocketsOptions = { fakeSeed: 1 }, port = 0): Server {
  const sockets = new NetworkingSockets(instance);
  const { listen, events, conns } = listenAccepting(sockets, `[${host}]:${port}`, options);
  if (listen === 0) throw new Error(`cannot listen on ${host}`);
  const addr = sockets.getListenSocketAddress(listen);
  if (!addr) throw new Error('no listen address');
  return { sockets, listen, address: addr.address, port: addr.port, events, conns };
}

/** A client instance with one connection to `[host]:port`. Real UDP with fake seed 2 unless `instance` says otherwise. */
export function startClient(host: string, port: number, options: ConfigOptions = {}, instance: NetworkingSocketsOptions = { fakeSeed: 2 }): Client {
  const sockets = new NetworkingSockets(instance);
  const events: StatusChangedInfo[] = [];
  sockets.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (info: StatusChangedInfo) => events.push(info));
  const conn = sockets.connect(`[${host}]:${port}`, options);
  if (conn === 0) throw new Error('connect failed');
  return { sockets, conn, events };
}

/** Whether the client's connection and the first one the server accepted are both Connected. */
export function bothConnected(server: Server, client: Client): boolean {
  return client.sockets.getConnectionInfo(client.conn)?.state === ConnectionState.Connected && server.sockets.getConnectionInfo(server.conns[0] ?? 0)?.state === ConnectionState.Connected;
}

export const HOSTS = ['127.0.0.1', '::1'] as const;

/** A server and a client over real UDP on `host`, connected on both sides. */
export async function connectedPair(host: string, serverOptions: ConfigOptions = {}, clientOptions: ConfigOptions = {}): Promise<{ server: Server; client: Client; sconn: number; close: () => void }> {
  const server = startServer(host, serverOptions);
  const client = startClient(host, server.port, clientOptions);
  const close = (): void => {
    client.sockets.close();
    server.sockets.close();
  };
  try {
    await waitFor([server.sockets, client.sockets], () => bothConnected(server, client), 10_000, 'both sides connected');
  } catch (e) {
    console.log(`fake seeds: server ${server.sockets.fakeSeed}, client ${client.sockets.fakeSeed}`);
    close();
    throw e;
  }
  return { server, client, sconn: server.conns[0] as number, close };
}
