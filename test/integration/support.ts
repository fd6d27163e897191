import { ConfigScope, ConnectionState, NetworkingSockets, type StatusChangedInfo } from '../../src/index.js';

/** Waits (real time, bounded) until `done()` holds, running every instance's callbacks in between. */
export async function waitFor(instances: readonly NetworkingSockets[], done: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    for (const s of instances) s.runCallbacks();
    if (done()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** A server instance whose listen socket accepts every connection; `events` records its status changes. */
export function startServer(host: string, options: Record<string, number> = {}): { sockets: NetworkingSockets; listen: number; port: number; events: StatusChangedInfo[]; conns: number[] } {
  const sockets = new NetworkingSockets({ fakeSeed: 1 });
  const events: StatusChangedInfo[] = [];
  const conns: number[] = [];
  const listen = sockets.createListenSocket(`[${host}]:0`, {
    ...options,
    Callback_ConnectionStatusChanged: (info: StatusChangedInfo) => {
      events.push(info);
      if (info.info.state === ConnectionState.Connecting) {
        sockets.acceptConnection(info.connection);
        conns.push(info.connection);
      }
    },
  });
  if (listen === 0) throw new Error(`cannot listen on ${host}`);
  const addr = sockets.getListenSocketAddress(listen);
  if (!addr) throw new Error('no listen address');
  return { sockets, listen, port: addr.port, events, conns };
}

/** A client instance with one connection to `[host]:port`; `events` records its status changes. */
export function startClient(host: string, port: number, options: Record<string, number> = {}, seed = 2): { sockets: NetworkingSockets; conn: number; events: StatusChangedInfo[] } {
  const sockets = new NetworkingSockets({ fakeSeed: seed });
  const events: StatusChangedInfo[] = [];
  sockets.setConfigValue('Callback_ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (info: StatusChangedInfo) => events.push(info));
  const conn = sockets.connect(`[${host}]:${port}`, options);
  if (conn === 0) throw new Error('connect failed');
  return { sockets, conn, events };
}

export const HOSTS = ['127.0.0.1', '::1'] as const;

/** A server and a client, connected on both sides. */
export async function connectedPair(host: string, serverOptions: Record<string, number> = {}, clientOptions: Record<string, number> = {}): Promise<{ server: ReturnType<typeof startServer>; client: ReturnType<typeof startClient>; sconn: number; close: () => void }> {
  const server = startServer(host, serverOptions);
  const client = startClient(host, server.port, clientOptions);
  const close = (): void => {
    client.sockets.close();
    server.sockets.close();
  };
  try {
    await waitFor([server.sockets, client.sockets], () => client.sockets.getConnectionInfo(client.conn)?.state === ConnectionState.Connected && server.sockets.getConnectionInfo(server.conns[0] ?? 0)?.state === ConnectionState.Connected, 10_000, 'both sides connected');
  } catch (e) {
    console.log(`fake seeds: server ${server.sockets.fakeSeed}, client ${client.sockets.fakeSeed}`);
    close();
    throw e;
  }
  return { server, client, sconn: server.conns[0] as number, close };
}
