// A browser game's networking, end to end on one machine: a relay with a WebSocket gateway, a Node
// NetworkManager host that echoes what players send, a small lobby over HTTP (the host's peer id and
// route out, each player's in), and the example page (examples/browser/), which joins the host from the
// browser and draws a live net graph of the connection: ping, loss, in and out rates, on a canvas.
//
//   node dist/examples/browser-demo.js [--port N] [--loss PERCENT] [--lag MS]
//
// then open http://127.0.0.1:PORT/examples/browser/ (the script prints the address).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetworkManager, RelayServer, addressKey } from '../src/index.js';

/** The repository (this file runs from dist/examples/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.map': 'application/json', '.css': 'text/css', '.png': 'image/png' };

/**
 * A request handler serving the files of `root` under the URL prefixes `served` (the browser build in dist/,
 * @noble in node_modules/, pages); false for any other path, for the caller to answer.
 */
export function staticFiles(root: string, served: readonly string[]): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
    if (!served.some((p) => path.startsWith(p))) return false;
    if (!existsSync(file) || !statSync(file).isFile()) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(readFileSync(file));
    return true;
  };
}

/** The paths the page needs: the browser build, @noble (by the page's import map) and the page itself. */
export const PAGE_FILES = ['/dist/', '/node_modules/@noble/', '/examples/browser/'];

export interface BrowserDemo {
  /** The page: `http://127.0.0.1:PORT/examples/browser/`. */
  readonly url: string;
  readonly relay: RelayServer;
  readonly host: NetworkManager;
  close(): Promise<void>;
}

/** Starts the relay (UDP and WebSocket gateway), the echoing host and the HTTP server (lobby and page). */
export async function startBrowserDemo(options: { port?: number; loss?: number; lagMs?: number } = {}): Promise<BrowserDemo> {
  const relay = RelayServer.open({ open: true, gateways: { ws: { port: 0 } } });
  const gateway = await (relay.wsGateway as NonNullable<typeof relay.wsGateway>).listening;
  const conditions = { FakePacketLoss_Send: options.loss ?? 0, FakePacketLag_Send: options.lagMs ?? 0 };
  const host = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1', connectionConfig: conditions });
  // The host echoes every message on the channel it came (0 unreliable, 1 reliable), each frame.
  host.on('message', (peer, channel, data) => host.sendMessage(peer, channel, data));
  const frame = setInterval(() => {
    host.runCallbacks();
    host.flush();
  }, 10);
  const files = staticFiles(ROOT, PAGE_FILES);
  const http = createServer((req, res) => {
    if (files(req, res)) return;
    if (req.url === '/lobby' && req.method === 'GET') {
      // What the page needs to join: the relays (UDP names, as every peer gets them), where their gateways are, and the host.
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ relays: [relay.address], gateways: { [addressKey(relay.local)]: `ws://${addressKey(gateway)}/` }, host: { peerId: host.getPeerId().toString(), route: host.route } }));
      return;
    }
    if (req.url === '/join' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d.length < 4096 ? d : ''));
      req.on('end', () => {
        try {
          const j = JSON.parse(body) as { peerId: string; route: string };
          const id = BigInt(j.peerId);
          const r = host.openPeer(id, j.route);
          host.openChannel(id, 0, false);
          host.openChannel(id, 1, true);
          res.writeHead(r === 0 ? 200 : 400, { 'content-type': 'application/json' }).end(JSON.stringify({ result: r }));
        } catch {
          res.writeHead(400).end();
        }
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => http.listen(options.port ?? 0, '127.0.0.1', r));
  // The host's route is there after its first relay session: the lobby hands it out.
  for (let i = 0; i < 500 && host.route === null; i++) await new Promise((r) => setTimeout(r, 10));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/examples/browser/`,
    relay,
    host,
    close: async () => {
      clearInterval(frame);
      host.close();
      relay.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const a = process.argv.slice(2);
  const get = (name: string, def: number): number => {
    const i = a.indexOf(name);
    return i >= 0 ? Number(a[i + 1]) : def;
  };
  const demo = await startBrowserDemo({ port: get('--port', 8080), loss: get('--loss', 2), lagMs: get('--lag', 30) });
  console.log(`netlane browser demo: open ${demo.url} (relay ${demo.relay.address}, host peer ${demo.host.getPeerId()})`);
  const stop = (): void => void demo.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
