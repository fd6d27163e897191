// `netlane top` (src/cli/top.ts, run as its own process) against a node:http server on 127.0.0.1 that serves
// stats snapshots as a relay's or server's metrics endpoint does: the frames it draws, and the one-line error
// when there is nothing to connect to or the answer is not a snapshot. Every run is bounded by a deadline.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { StatsSnapshot } from '../../src/cli/netgraph.js';

const DEADLINE_MS = 20_000;

/** Runs top to its end: exit code, stdout, stderr. Killed (and failed) past the deadline. */
async function runTop(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['dist/src/cli/top.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill(), DEADLINE_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  assert.notEqual(code, null, `top was killed after ${DEADLINE_MS} ms:\n${out}\n${err}`);
  return { code, out, err };
}

describe('netlane top', () => {
  let server: Server;
  let base = '';
  let requests = 0;
  let body: () => string = () => '';
  before(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/stats.json') {
        res.writeHead(404).end();
        return;
      }
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(body());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('fetches /stats.json once per frame and draws each connection with its figures and sparklines', async () => {
    requests = 0;
    let n = 0;
    const t0 = Date.UTC(2026, 5, 1, 12, 0, 0);
    body = () => {
      n++;
      const snap: StatsSnapshot = {
        kind: 'relay',
        unixMs: t0 + n * 1000, // a second per snapshot, whatever the interval: one sparkline column each
        connections: [
          { id: 's1', name: 'session 1', pingMs: 20 * n, qualityLocal: 0.98, qualityRemote: -1, outBytesPerSec: 2048 * n, inBytesPerSec: 1024, outPacketsPerSec: 30, inPacketsPerSec: 15, queuedBytesPerLane: [100, 0], state: 'Connected' },
        ],
        totals: { sessions: 1, forwardedPackets: 100 * n },
      };
      return JSON.stringify(snap);
    };
    const r = await runTop(['--url', base, '--count', '3', '--interval', '20']);
    assert.equal(r.code, 0, r.err);
    assert.equal(requests, 3);
    assert.ok(!r.out.includes('\x1b'), 'piped: plain lines, no cursor moves');
    const frames = r.out.split(/\n\n/).filter((f) => f.trim() !== '');
    assert.equal(frames.length, 3);
    const lastFrame = frames[2] ?? '';
    assert.match(lastFrame, /^netlane relay · 1 connection · 12:00:03 UTC/);
    assert.match(lastFrame, /session 1 +\[Connected\]/);
    assert.match(lastFrame, /ping +60 ms +quality 98\.0% local \/ +\? +remote +loss 2\.0%/);
    assert.match(lastFrame, /out +6\.0 KB\/s +30 pkt\/s/);
    assert.match(lastFrame, /queued per lane: 0:100 B 1:0 B/);
    assert.match(lastFrame, /totals: sessions 1 {2}forwardedPackets 300/);
    const ping = /ping \|(.*)\|/u.exec(lastFrame)?.[1] ?? '';
    assert.equal([...ping].length, 60);
    assert.match(ping, / +▃▆█$/u, 'three seconds of rising ping at the right of the graph');
  });

  it('a fetch that fails after the first keeps the last graph, says so under it, and tries again', async () => {
    let n = 0;
    const ok = JSON.stringify({ kind: 'server', unixMs: Date.UTC(2026, 5, 1), connections: [], totals: {} });
    body = () => (++n === 2 ? 'not json' : ok);
    const r = await runTop(['--url', base, '--count', '3', '--interval', '20']);
    assert.equal(r.code, 0, r.err);
    const frames = r.out.split(/\n\n/).filter((f) => f.trim() !== '');
    assert.equal(frames.length, 3);
    assert.match(frames[1] ?? '', /^netlane server · 0 connections[\s\S]*\(http:\/\/127\.0\.0\.1:\d+\/stats\.json did not answer JSON; trying again\)$/);
    assert.doesNotMatch(frames[2] ?? '', /trying again/);
  });

  it('a server that does not answer a snapshot: one line on stderr, exit code 1', async () => {
    body = () => '{"hello": "world"}';
    const r = await runTop(['--url', base, '--count', '1']);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /^netlane top: http:\/\/127\.0\.0\.1:\d+\/stats\.json did not answer a netlane stats snapshot: kind is neither "relay" nor "server"\n$/);
  });

  it('nothing listening: one line on stderr saying it cannot connect, exit code 1', async () => {
    // A port that was just free: a server opened and closed again.
    const s = createServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as AddressInfo).port;
    s.close();
    await once(s, 'close');
    const r = await runTop(['--url', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.err, `netlane top: cannot connect to http://127.0.0.1:${port}/stats.json: ECONNREFUSED\n`);
  });

  it('a bad option: one line, exit code 2', async () => {
    const r = await runTop(['--url', 'ftp://x']);
    assert.equal(r.code, 2);
    assert.equal(r.err.split('\n').filter(Boolean).length, 1);
  });
});
