// `netlane relay --web IP:PORT`: the example page, the browser build it loads, @noble (by its import map) and
// the lobby, over HTTP on 127.0.0.1; the lobby names the gateways the relay printed and the echoing host.
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const CLI = 'dist/src/cli/netlane.js';

test('netlane relay --web serves the example page, the browser build, @noble and a lobby naming both gateways and the host; nothing outside its files; --web without --open or without a gateway is a usage error (exit 2)', { timeout: 30_000 }, async () => {
  for (const args of [['--web', '127.0.0.1:0', '--ws', '127.0.0.1:0'], ['--open', '--web', '127.0.0.1:0']]) {
    const bad = spawnSync(process.execPath, [CLI, 'relay', '--port', '0', ...args], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(bad.status, 2, `${args.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, /--open|--web needs --ws or --webrtc/);
  }
  const proc = spawn(process.execPath, [CLI, 'relay', '--open', '--port', '0', '--ws', '127.0.0.1:0', '--webrtc', '127.0.0.1:0', '--web', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    const lines = await new Promise<{ page: string; ws: string; rtc: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no page and relay lines within 10 s: ${out}`)), 10_000);
      proc.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const page = /example page on (http:\/\/127\.0\.0\.1:\d+\/examples\/browser\/)/.exec(out);
        const relay = /websocket gateway on (ws:\/\/\S+\/); webrtc gateway signaling on (http:\/\/\S+\/)\)/.exec(out);
        if (page && relay) {
          clearTimeout(t);
          resolve({ page: page[1] as string, ws: relay[1] as string, rtc: relay[2] as string });
        }
      });
    });
    const origin = new URL(lines.page).origin;
    const get = async (path: string): Promise<{ status: number; type: string | null; body: string }> => {
      const res = await fetch(origin + path);
      return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
    };
    const html = await get('/examples/browser/');
    assert.equal(html.status, 200);
    assert.equal(html.type, 'text/html');
    assert.match(html.body, /<canvas id="graph"/);
    const root = await fetch(`${origin}/`, { redirect: 'manual' });
    assert.deepEqual([root.status, root.headers.get('location')], [302, '/examples/browser/']);
    for (const path of ['/examples/browser/app.js', '/dist/src/browser.js', '/node_modules/@noble/ciphers/chacha.js', '/node_modules/@noble/curves/ed25519.js']) {
      const r = await get(path);
      assert.deepEqual([r.status, r.type], [200, 'text/javascript'], path);
    }
    for (const path of ['/package.json', '/examples/browser/%2e%2e/%2e%2e/package.json', '/dist/../src/cli/netlane.ts', '/node_modules/@noble/ciphers/../../../package.json']) assert.equal((await get(path)).status, 404, path);
    const lobby = JSON.parse((await get('/lobby')).body) as { relays: string[]; gateways: { ws: Record<string, string>; webrtc: Record<string, string> }; host: { peerId: string; route: string | null } };
    assert.equal(lobby.relays.length, 1);
    const key = (lobby.relays[0] as string).split('#')[0] as string;
    assert.deepEqual(lobby.gateways, { ws: { [key]: lines.ws }, webrtc: { [key]: lines.rtc } });
    assert.match(lobby.host.peerId, /^\d+$/);
    assert.ok(lobby.host.route, 'the host has a route to hand out');
  } finally {
    proc.kill('SIGKILL');
  }
});
