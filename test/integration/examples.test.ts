// The runnable programs: `npm start` (the demo), the ported ValveSockets-CSharp examples and the GameSDK lobby.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

test('the demo with --watch draws the net graph of both connections and moves them off a draining relay with every reliable message delivered', () => {
  const r = spawnSync(process.execPath, ['dist/src/cli/demo.js', '--duration', '3', '--lag', '20', '--loss', '10', '--watch', '--failover', 'drain'], { encoding: 'utf8', timeout: 40_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(!r.stdout.includes('\x1b'), 'piped: plain lines');
  assert.match(r.stdout, /net graph · 2 connections/);
  assert.match(r.stdout, /direct {2}client -> server :\d+ {2}\[Connected\]\n {2}ping +\d+ ms +quality/);
  assert.match(r.stdout, /relayed alice -> bob via relay [AB] {2}\[Connected\]/);
  assert.match(r.stdout, / {2}ping \|.*[▁▂▃▄▅▆▇█]\| max \d+ ms/u);
  assert.match(r.stdout, /relay ([AB]) drains: its clients are told to leave/);
  assert.match(r.stdout, /direct, loot \(reliable\): (\d+)\/\1 delivered, each once, in order/);
  assert.match(r.stdout, /relayed, loot \(reliable\): (\d+)\/\1 delivered, each once, in order/);
  assert.match(r.stdout, /failover: the route moved from relay ([AB]) to relay (?!\1)[AB] .* after relay \1 was told to drain/);
});

test('the ported server and client examples talk to each other on ::1', async () => {
  const server = spawn(process.execPath, ['dist/examples/server.js', '--port', '0', '--duration', '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  server.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    for (let i = 0; i < 100 && !/Listening on port \d+/.test(out); i++) await new Promise((r) => setTimeout(r, 20));
    const port = /Listening on port (\d+)/.exec(out)?.[1];
    assert.ok(port, 'the server printed its port');
    const client = spawnSync(process.execPath, ['dist/examples/client.js', '--port', port, '--duration', '1.5'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(client.status, 0, client.stderr);
    assert.match(client.stdout, /Client connected to server - ID: \d+/);
    await once(server, 'exit');
    assert.match(out, /Client connected - ID: \d+, IP: ::1/);
    assert.match(out, /Message received from - ID: \d+, Channel ID: 0, Data length: 64/);
    assert.match(out, /Client disconnected - ID: \d+/);
  } finally {
    server.kill();
  }
});

test('the GameSDK lobby example runs through an embedded relay and delivers all loot in order both ways', () => {
  const r = spawnSync(process.execPath, ['dist/examples/discord-lobby.js', '--seconds', '1.5'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /alice: loot (\d+)\/\1 received, each once, in order/);
  assert.match(r.stdout, /bob: loot (\d+)\/\1 received, each once, in order/);
});

// The P2P tutorial (NetworkingMessages, GodotSteam seeds 002 and 003), a real program over real UDP. Its
// semantics, scenario by scenario, are tested in virtual time in test/sim/networking-messages.test.ts.
test('the P2P tutorial example runs: request, accept, handshake, turns, chat, and hostile payloads refused, with and without compression', () => {
  for (const extra of [[], ['--compress']]) {
    const r = spawnSync(process.execPath, ['dist/examples/p2p-tutorial.js', ...extra], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Host is requesting a P2P session/);
    assert.match(r.stdout, /handshake from Guest/);
    assert.match(r.stdout, /Host: gg/);
    assert.match(r.stdout, /host refused 3 hostile payloads/);
    assert.match(r.stdout, /p2p tutorial: OK/);
  }
});
