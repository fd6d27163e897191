// The example page's server (`netlane relay --web`, examples/browser-demo.ts): the page (examples/browser/),
// the browser build it loads as native ES modules (dist/src/), @noble (by the page's import map), and a small
// lobby over HTTP: GET /lobby hands out the relays, where their gateways are and the host's peer id and route;
// POST /join takes a player's. The host is a NetworkManager on UDP, in this process, that echoes every message.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetworkManager } from '../api/network-manager.js';
import type { ConfigOptions } from '../api/networking-sockets.js';
import type { RelayServer } from '../io/relay-server.js';
import { addressKey } from '../relay/protocol.js';

/** The package's root (this file runs from dist/src/cli/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.map': 'application/json', '.css': 'text/css', '.png': 'image/png' };

/** A URL prefix served from a directory. */
export type Mount = readonly [prefix: string, dir: string];

/** The mounts the page needs: itself and the browser build under `root`, and each @noble package where Node resolves it from this package (hoisted or not). */
export function pageMounts(root = PACKAGE_ROOT): Mount[] {
  const noble = ['ciphers', 'curves', 'hashes'].map((name): Mount => [`/node_modules/@noble/${name}/`, dirname(fileURLToPath(import.meta.resolve(`@noble/${name}/utils.js`)))]);
  return [['/examples/browser/', join(root, 'examples/browser')], ['/dist/', join(root, 'dist')], ...noble];
}

/**
 * A request handler serving the files under `mounts` (GET only, no directory listing, nothing outside a
 * mount's directory; a path ending in `/` is its index.html); false for any other path, for the caller to answer.
 */
export function staticFiles(mounts: readonly Mount[]): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    let path: string;
    try {
      path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    } catch {
      return false;
    }
    const mount = mounts.find(([prefix]) => path.startsWith(prefix));
    if (!mount) return false;
    const [prefix, dir] = mount;
    const rest = path.slice(prefix.length);
    const file = join(dir, rest === '' || rest.endsWith('/') ? `${rest}index.html` : rest);
    if (req.method !== 'GET' || !(file === dir || file.startsWith(dir + sep)) || !existsSync(file) || !statSync(file).isFile()) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(readFileSync(file));
    return true;
  };
}

/** A gateway's URL, or a function of the host name a page was loaded from. */
export type GatewayUrl = string | ((pageHost: string) => string);

/** Where the page is served, and how. */
export interface WebPageOptions {
  /** The relay the host and the page use (with a WebSocket or a WebRTC gateway listening, or both). */
  readonly relay: RelayServer;
  /**
   * The URL of each gateway, as a page reaches it: `ws://HOST:PORT/`, `http://HOST:PORT/` (the WebRTC signaling
   * endpoint), or a function of the host name the page was loaded from (for a gateway on 0.0.0.0 or ::).
   */
  readonly gateways: { readonly ws?: GatewayUrl; readonly webrtc?: GatewayUrl };
  /** TCP address of the page. Default 127.0.0.1, port 0 (a free one). */
  readonly address?: string;
  readonly port?: number;
  /** The host's connection options (fake loss and lag, for a demo). */
  readonly hostConfig?: ConfigOptions;
  /** Extra mounts (a test's pages). */
  readonly mounts?: readonly Mount[];
}

/** A running page server. */
export interface WebPage {
  /** The page: `http://HOST:PORT/examples/browser/`. */
  readonly url: string;
  readonly host: NetworkManager;
  close(): Promise<void>;
}

/** Starts the echoing host and the HTTP server of the page and the lobby. Rejects if the port cannot be listened on. */
export async function startWebPage(options: WebPageOptions): Promise<WebPage> {
  const { relay } = options;
  const host = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1', ...(options.hostConfig ? { connectionConfig: options.hostConfig } : {}) });
  // The host echoes every message on the channel it came (0 unreliable, 1 reliable), each frame.
  host.on('message', (peer, channel, data) => host.sendMessage(peer, channel, data));
  const frame = setInterval(() => {
    host.runCallbacks();
    host.flush();
  }, 10);
  const key = addressKey(relay.local);
  const gatewaysFor = (req: IncomingMessage): Record<string, Record<string, string>> => {
    let pageHost = '127.0.0.1';
    try {
      pageHost = new URL(`http://${req.headers.host ?? pageHost}`).hostname;
    } catch {
      // no usable Host header: the loopback name
    }
    const out: Record<string, Record<string, string>> = {};
    for (const [kind, url] of Object.entries(options.gateways) as [string, GatewayUrl | undefined][]) if (url !== undefined) out[kind] = { [key]: typeof url === 'string' ? url : url(pageHost) };
    return out;
  };
  const files = staticFiles([...(options.mounts ?? []), ...pageMounts()]);
  const http = createServer((req, res) => {
    if (req.url === '/' && req.method === 'GET') {
      res.writeHead(302, { location: '/examples/browser/' }).end();
      return;
    }
    if (files(req, res)) return;
    if (req.url === '/lobby' && req.method === 'GET') {
      // What the page needs to join: the relays (UDP names, as every peer gets them), where their gateways are, and the host.
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ relays: [relay.address], gateways: gatewaysFor(req), host: { peerId: host.getPeerId().toString(), route: host.route } }));
      return;
    }
    if (req.url === '/join' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += body.length < 4096 ? d : ''));
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
  const close = async (): Promise<void> => {
    clearInterval(frame);
    host.close();
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  };
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen({ host: options.address ?? '127.0.0.1', port: options.port ?? 0, exclusive: true }, resolve);
    });
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
  // The host's route is there after its first relay session: the lobby hands it out.
  for (let i = 0; i < 500 && host.route === null; i++) {
    host.runCallbacks();
    await new Promise((r) => setTimeout(r, 10));
  }
  const a = http.address() as AddressInfo;
  return { url: `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}/examples/browser/`, host, close };
}
