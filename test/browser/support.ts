// Real headless Chromium (Debian's `chromium`, driven by playwright-core) for the browser tests, and a
// static file server on 127.0.0.1 that serves the browser build as native ES modules from dist/ (with
// @noble from node_modules, mapped by the page's import map). Without chromium the tests are skipped off
// CI and fail under CI (CI set), as the Redis tests are.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../../examples/browser-demo.js';
import { pageMounts, staticFiles } from '../../src/cli/web.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { addressKey } from '../../src/relay/protocol.js';

const CHROMIUM = process.env['NETLANE_CHROMIUM'] ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here (false: they can). Under CI a missing chromium is a failure, not a skip. */
export function browserSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const why = `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`;
  if (process.env['CI']) throw new Error(`CI: ${why}`);
  console.log(`# skipping the browser tests: ${why}`);
  return why;
}

/**
 * Headless chromium. `--no-sandbox`: CI runs as root, where chromium's sandbox refuses to start. WebRTC's host
 * candidates as plain IPs (no mDNS names, whose registration chromium would multicast on the network).
 */
export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-features=WebRtcHideLocalIpsWithMdns'], timeout: 20_000 });
}

/** A static server of ROOT on 127.0.0.1 (a free port) for the browser build, @noble and the test pages; `url` is its origin. */
export async function serve(): Promise<{ url: string; close: () => Promise<void> }> {
  const files = staticFiles([...pageMounts(), ['/test/browser/', join(ROOT, 'test/browser')]]);
  const server: Server = createServer((req, res) => {
    if (!files(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A relay with the gateway `kind` on a free port, and the URL of that gateway (what the page's `gateways` names). */
export async function relayWithGateway(kind: 'ws' | 'webrtc'): Promise<{ relay: RelayServer; url: string; stats: () => { accepted: number; received: number; sent: number; dropped: number } }> {
  const relay = RelayServer.open({ open: true, gateways: { [kind]: { port: 0 } } });
  const gw = kind === 'ws' ? relay.wsGateway : relay.webrtcGateway;
  const at = await (gw as NonNullable<typeof gw>).listening;
  return { relay, url: kind === 'ws' ? `ws://${addressKey(at)}/` : `http://${addressKey(at)}/`, stats: () => (gw as NonNullable<typeof gw>).stats };
}

/** Hex of the bytes `127.0.0.1` and `port` in the orders an address could be written in, and as text. */
export function addressNeedles(port: number): string[] {
  const p = port.toString(16).padStart(4, '0');
  const pLE = p.slice(2) + p.slice(0, 2);
  const ascii = (s: string): string => Buffer.from(s).toString('hex');
  return [`7f000001${p}`, `${p}7f000001`, `0100007f${pLE}`, ascii(`127.0.0.1:${port}`), ascii(`:${port}`)];
}

import { releaseWebRtc } from '../support/webrtc.js';

export { releaseWebRtc };

/**
 * For one test file: headless chromium and the static site, started before its tests and closed after them.
 * `open(page, global)` loads `test/browser/<page>` and waits until the page's `window[global].ready`; what the
 * page throws goes into `errors` (and into the error when it never gets ready).
 */
export function browserPages(skip: string | false): { open(page: string, global: string, errors?: string[]): Promise<Page> } {
  let browser: Browser | null = null;
  let site: Awaited<ReturnType<typeof serve>> | null = null;
  before(async () => {
    if (skip) return;
    browser = await launch();
    site = await serve();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    releaseWebRtc();
  });
  return {
    async open(path: string, global: string, errors: string[] = []): Promise<Page> {
      const page = await (browser as Browser).newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${(site as { url: string }).url}/test/browser/${path}`);
      await page.waitForFunction((g) => (globalThis as unknown as Record<string, { ready?: boolean } | undefined>)[g]?.ready === true, global, { timeout: 10_000 }).catch((e: unknown) => {
        throw new Error(`the page did not load the browser build: ${errors.join('; ') || String(e)}`);
      });
      return page;
    },
  };
}
