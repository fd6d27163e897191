// A small client/server smoke scenario that runs as a plain script under any runtime (Node, Bun, Deno):
// test/integration/runtimes.test.ts starts it under each one it finds. Over real UDP on 127.0.0.1:
// a NetworkingSockets server on port 0 (its port read after the bind), a client sending reliable messages
// that must arrive once and in order, then two NetworkManager peers through a relay on port 0. Everything is
// closed at the end and the script never calls process.exit: the runtime must exit by itself (open sockets or
// timers would hold it). `--leave-open` skips the closes: sockets that do not keep the process alive must
// still let it exit. Prints one `smoke ok ...` line on success; throws (exit code 1) otherwise.
import { ConnectionState, NetworkingSockets, RelayServer, SendFlags } from '../../src/index.js';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { listenAccepting, until } from './support.js';

const N = 20;
const leaveOpen = process.argv.includes('--leave-open');

function inOrder(got: readonly number[], what: string): void {
  if (got.length !== N || got.some((v, i) => v !== i)) throw new Error(`${what}: got ${JSON.stringify(got)}, want 0..${N - 1} once each, in order`);
}

async function sockets(): Promise<string> {
  const server = new NetworkingSockets();
  const { listen, conns } = listenAccepting(server, '127.0.0.1:0');
  if (listen === 0) throw new Error('createListenSocket returned 0');
  const bound = await server.listenSocketBound(listen);
  const seen = server.getListenSocketAddress(listen);
  if (seen?.port !== bound.port || bound.port === 0) throw new Error(`listen address ${JSON.stringify(seen)} after the bind to ${JSON.stringify(bound)}`);
  const client = new NetworkingSockets();
  const conn = client.connect(`127.0.0.1:${bound.port}`);
  if (conn === 0) throw new Error('connect returned 0');
  const got: number[] = [];
  const frame = (): void => {
    client.runCallbacks();
    server.runCallbacks();
    for (const m of server.receiveMessagesOnConnection(conns[0] ?? 0, 100) ?? []) got.push(m.data[0] ?? -1);
  };
  await until(frame, () => client.getConnectionInfo(conn)?.state === ConnectionState.Connected, 'the connection');
  for (let i = 0; i < N; i++) if (client.sendMessageToConnection(conn, Uint8Array.of(i), SendFlags.Reliable).result !== 1) throw new Error(`send ${i} refused`);
  await until(frame, () => got.length >= N, `${N} messages`);
  inOrder(got, 'NetworkingSockets');
  if (!leaveOpen) {
    client.closeConnection(conn, 1000, 'done', true);
    await until(frame, () => server.getConnectionInfo(conns[0] ?? 0)?.state !== ConnectionState.Connected, 'the close at the server');
    client.close();
    server.close();
  }
  return `sockets port ${bound.port} ${got.length}/${N}`;
}

async function relayed(): Promise<string> {
  const relay = await RelayServer.openBound({ open: true });
  const relays = [relay.address];
  const a = new NetworkManager({ relays });
  const b = new NetworkManager({ relays });
  const got: number[] = [];
  b.on('message', (_peer, _channel, data) => got.push(data[0] ?? -1));
  const frame = (): void => {
    for (const m of [a, b]) {
      m.runCallbacks();
      m.flush();
    }
  };
  await until(frame, () => a.route !== null && b.route !== null, 'routes');
  if (a.openPeer(b.getPeerId(), b.route as string) !== DiscordResult.Ok) throw new Error('openPeer a');
  if (b.openPeer(a.getPeerId(), a.route as string) !== DiscordResult.Ok) throw new Error('openPeer b');
  a.openChannel(b.getPeerId(), 0, true);
  b.openChannel(a.getPeerId(), 0, true);
  await until(frame, () => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 'the relayed connection');
  for (let i = 0; i < N; i++) if (a.sendMessage(b.getPeerId(), 0, Uint8Array.of(i)) !== DiscordResult.Ok) throw new Error(`relayed send ${i} refused`);
  await until(frame, () => got.length >= N, `${N} relayed messages`);
  inOrder(got, 'NetworkManager');
  const forwarded = relay.node.stats.forwardedPackets;
  if (!leaveOpen) {
    a.close();
    b.close();
    relay.close();
  }
  return `relayed ${got.length}/${N} through ${relays[0]?.split('#')[0] ?? ''} (${forwarded} datagrams forwarded)`;
}

const runtime = 'Bun' in globalThis ? 'bun' : 'Deno' in globalThis ? 'deno' : 'node';
const parts = [await sockets(), await relayed()];
console.log(`smoke ok ${runtime}${leaveOpen ? ' (left open)' : ''}: ${parts.join('; ')}`);
