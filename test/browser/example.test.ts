// The example page (examples/browser/, served by examples/browser-demo.ts) in real headless Chromium: it
// joins the demo's host through the relay's WebSocket gateway, and through its WebRTC gateway, and draws a live net graph. The test waits for
// samples with a ping, loss and both rates, checks the canvas was drawn on, and takes a screenshot
// (dist/browser-netgraph-TRANSPORT.png; with NETLANE_UPDATE_SCREENSHOT=1 also docs/browser-netgraph.png, shown in docs/BROWSER.md).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { ROOT, startBrowserDemo } from '../../examples/browser-demo.js';
import { browserSkip, launch, releaseWebRtc } from './support.js';

const skip = browserSkip();
let browser: Browser | null = null;

before(async () => {
  if (!skip) browser = await launch();
});

after(async () => {
  await browser?.close();
  releaseWebRtc();
});

interface Sample {
  ping: number;
  lossIn: number | null;
  lossOut: number | null;
  inBps: number;
  outBps: number;
}

for (const transport of ['websocket', 'webrtc'] as const) {
  test(`chromium: the example page joins the demo host through the ${transport === 'webrtc' ? 'WebRTC' : 'WebSocket'} gateway and draws its net graph (ping, loss, in and out rates); screenshot taken`, { skip, timeout: 60_000 }, () => netGraph(transport));
}

async function netGraph(transport: 'websocket' | 'webrtc'): Promise<void> {
  const demo = await startBrowserDemo({ loss: 5, lagMs: 30 });
  const page = await (browser as Browser).newPage({ viewport: { width: 800, height: 440 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(transport === 'webrtc' ? `${demo.url}?transport=webrtc` : demo.url);
    // Twenty samples (5 s) with a measured ping and traffic both ways.
    await page
      .waitForFunction(() => {
        const g = (globalThis as { netgraph?: { samples: Sample[] } }).netgraph;
        return (g?.samples.filter((s) => s.ping > 0 && s.inBps > 0 && s.outBps > 0).length ?? 0) >= 20;
      }, undefined, { timeout: 30_000, polling: 100 })
      .catch((e: unknown) => {
        throw new Error(`no net graph samples: ${errors.join('; ') || String(e)}`);
      });
    const g = await page.evaluate(() => (globalThis as never as { netgraph: { samples: Sample[]; echoed: number; sent: number; transport: string } }).netgraph);
    assert.equal(g.transport, transport);
    const gw = transport === 'webrtc' ? demo.relay.webrtcGateway : demo.relay.wsGateway;
    assert.ok((gw?.stats.accepted ?? 0) >= 1 && (gw?.stats.received ?? 0) > 0, `the page went through the ${transport} gateway: ${JSON.stringify(gw?.stats)}`);
    const live = g.samples.filter((s) => s.ping > 0);
    // 30 ms of fake lag each way on the host's sends: the round trip shows it.
    assert.ok(live.every((s) => s.ping >= 30), `pings ${live.map((s) => s.ping).join(' ')}`);
    assert.ok(g.echoed > 0 && g.echoed <= g.sent, `${g.echoed} of ${g.sent} positions echoed`);
    assert.ok(g.samples.some((s) => s.lossIn !== null), 'the loss strip has samples');
    // The canvas was drawn on: its lines are in colours the background does not have.
    const coloured = await page.evaluate(() => {
      const c = (globalThis as never as { document: { getElementById(id: string): { getContext(k: string): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } }; width: number; height: number } } }).document.getElementById('graph');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if ((d[i + 1] as number) > 120) n++;
      return n;
    });
    assert.ok(coloured > 500, `${coloured} bright pixels on the canvas`);
    const png = await page.screenshot({ fullPage: true });
    writeFileSync(join(ROOT, `dist/browser-netgraph-${transport}.png`), png);
    if (process.env['NETLANE_UPDATE_SCREENSHOT'] === '1' && transport === 'websocket') writeFileSync(join(ROOT, 'docs/browser-netgraph.png'), png);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    await demo.close();
  }
}
