// A browser game's networking, end to end on one machine: a relay with its WebSocket and WebRTC gateways, a
// Node NetworkManager host that echoes what players send, a small lobby over HTTP (the host's peer id and
// route out, each player's in), and the example page (examples/browser/), which joins the host from the
// browser and draws a live net graph of the connection: ping, loss, in and out rates, on a canvas. The page
// server is the one `netlane relay --web` runs (src/cli/web.ts).
//
//   node dist/examples/browser-demo.js [--port N] [--loss PERCENT] [--lag MS]
//
// then open http://127.0.0.1:PORT/examples/browser/ (the script prints the address; add ?transport=webrtc for
// the WebRTC gateway).
import { fileURLToPath } from 'node:url';
import { RelayServer, addressKey } from '../src/index.js';
import { PACKAGE_ROOT, startWebPage, type Mount, type WebPage } from '../src/cli/web.js';

/** The repository. */
export const ROOT = PACKAGE_ROOT;

export interface BrowserDemo extends WebPage {
  readonly relay: RelayServer;
}

/** Starts the relay (UDP, WebSocket and WebRTC gateways), the echoing host and the HTTP server (lobby and page). */
export async function startBrowserDemo(options: { port?: number; loss?: number; lagMs?: number; mounts?: readonly Mount[] } = {}): Promise<BrowserDemo> {
  const relay = RelayServer.open({ open: true, gateways: { ws: { port: 0 }, webrtc: { port: 0 } } });
  try {
    const ws = await (relay.wsGateway as NonNullable<typeof relay.wsGateway>).listening;
    const rtc = await (relay.webrtcGateway as NonNullable<typeof relay.webrtcGateway>).listening;
    const page = await startWebPage({
      relay,
      gateways: { ws: `ws://${addressKey(ws)}/`, webrtc: `http://${addressKey(rtc)}/` },
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.mounts ? { mounts: options.mounts } : {}),
      hostConfig: { FakePacketLoss_Send: options.loss ?? 0, FakePacketLag_Send: options.lagMs ?? 0 },
    });
    return {
      ...page,
      relay,
      close: async () => {
        await page.close();
        relay.close();
      },
    };
  } catch (e) {
    relay.close();
    throw e;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const a = process.argv.slice(2);
  const get = (name: string, def: number): number => {
    const i = a.indexOf(name);
    return i >= 0 ? Number(a[i + 1]) : def;
  };
  const demo = await startBrowserDemo({ port: get('--port', 8080), loss: get('--loss', 2), lagMs: get('--lag', 30) });
  console.log(`netlane browser demo: open ${demo.url} (relay ${demo.relay.address}, host peer ${demo.host.getPeerId()}; ?transport=webrtc for the WebRTC gateway)`);
  const stop = (): void => void demo.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
