// The built `netlane` command as a child process: --version, --help, options as --name=value and --name value,
// one-line errors with their exit codes, NETLANE_* variables under the flags, keygen --force, and the relay's
// --metrics endpoint scraped over HTTP while two NetworkManagers send through it. Every wait has a deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetworkManager } from '../../src/api/network-manager.js';
import { NodeCryptoProvider } from '../../src/crypto/node-provider.js';
import { decodeKeyFile } from '../../src/crypto/keyfile.js';
import { ticketKeyId, verifyTicket } from '../../src/relay/ticket.js';
import { exited, mesh, pump } from './relay-support.js';

const CLI = join('dist', 'src', 'cli', 'netlane.js');
/** The environment without any NETLANE_* variable of the shell running the tests. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NETLANE_')));

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(args: readonly string[], env: Record<string, string> = {}): Ran {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000, env: { ...CLEAN_ENV, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts exit `code` and one line on stderr matching `message`, with the command's help hint after a usage error. */
function fails(r: Ran, code: number, message: RegExp, what: string): void {
  assert.equal(r.status, code, `${what}: exit ${r.status}, stderr ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: one line on stderr, not ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0] as string, /^netlane: /, what);
  assert.match(lines[0] as string, message, what);
  assert.doesNotMatch(r.stderr, /usage:/, `${what}: no usage text`);
  if (code === 2) assert.match(lines[0] as string, /\(run 'netlane( \w+)? --help'\)$/, `${what}: the hint`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
}

function tempDir(): { dir: string; f: (n: string) => string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'netlane-cli-'));
  return { dir, f: (n) => join(dir, n), done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('netlane --version and netlane version print package.json\'s version; relay --help names the variables and the exit codes', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  for (const args of [['--version'], ['-v'], ['version']]) {
    const r = run(args);
    assert.equal(r.status, 0, args.join(' '));
    assert.equal(r.stdout, `${pkg.version}\n`, args.join(' '));
  }
  const help = run(['relay', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /NETLANE_PORT/);
  assert.match(help.stdout, /wins over its variable/);
  assert.match(help.stdout, /3 socket error/);
  assert.match(run(['keygen', '-h']).stdout, /--force/);
});

test('bad command lines fail in one line on stderr with exit 2 and the command\'s help hint', () => {
  fails(run(['relay', '--open', '--port=99999']), 2, /--port must be an integer in 0\.\.65535 \(run 'netlane relay --help'\)$/, '--port=99999');
  fails(run(['relay', '--open', '--port']), 2, /--port needs a value/, '--port without a value');
  fails(run(['relay', '--open', '--port', '--open']), 2, /--port needs a value/, '--port followed by a flag');
  fails(run(['relay', '--bogus']), 2, /unknown option --bogus/, 'unknown option');
  fails(run(['relay', '--open=yes']), 2, /--open takes no value/, 'a flag with a value');
  fails(run(['relay', '--open', 'extra']), 2, /unexpected argument extra/, 'a stray argument');
  fails(run(['relay']), 2, /give --ticket-key .* or --open/, 'no tickets and not open');
  fails(run(['relay', '--open', '--address', 'localhost']), 2, /--address must be an IP address/, 'a host name');
  fails(run(['relay', '--open', '--metrics', 'nowhere']), 2, /--metrics must be IP:PORT/, 'a bad --metrics');
  fails(run(['relay', '--open', '--revoke', 'xyz']), 2, /--revoke must be a key id in hex/, 'a bad key id');
  fails(run(['ticket', '--user', 'alice']), 2, /--key is required \(run 'netlane ticket --help'\)$/, 'ticket without a key');
  fails(run(['frobnicate']), 2, /unknown command frobnicate \(run 'netlane --help'\)$/, 'an unknown command');
  fails(run(['demo', '--loss', '200']), 2, /--loss must be a number in 0\.\.100 \(run 'netlane demo --help'\)$/, 'demo --loss 200');
});

test('--name=value and --name value read alike; a key or file that is missing or not a key fails with exit 4', () => {
  const t = tempDir();
  try {
    assert.equal(run(['keygen', `--out=${t.f('ticket.key')}`]).status, 0);
    const provider = new NodeCryptoProvider();
    const key = decodeKeyFile(provider, readFileSync(t.f('ticket.key'), 'utf8'));
    const trust = { keys: new Map([[ticketKeyId(provider, key.publicKey), key.publicKey]]), revoked: new Set<number>() };
    for (const args of [['--key', t.f('ticket.key'), '--user', 'alice', '--hours', '2'], [`--key=${t.f('ticket.key')}`, '--user=alice', '--hours=2']]) {
      const r = run(['ticket', ...args]);
      assert.equal(r.status, 0, r.stderr);
      const v = verifyTicket(provider, trust, new Uint8Array(Buffer.from(r.stdout.trim(), 'base64url')), Math.floor(Date.now() / 1000));
      assert.ok(v.ok && v.ticket.user === 'alice' && v.ticket.expiresAt - v.ticket.issuedAt === 2 * 3600, args.join(' '));
    }
    writeFileSync(t.f('junk'), 'not a key\n');
    fails(run(['ticket', '--key', t.f('missing.key'), '--user', 'a']), 4, /--key .*missing\.key: ENOENT/, 'a missing key file');
    fails(run(['ticket', '--key', t.f('junk'), '--user', 'a']), 4, /--key .*junk: key file: not a JSON object/, 'a file that is not a key');
    fails(run(['relay', '--ticket-key', t.f('missing.key')]), 4, /--ticket-key .*missing\.key: no such file, and not a base64 public key/, 'a missing ticket key');
    fails(run(['relay', '--open', '--key', t.f('junk')]), 4, /--key .*junk: relay key file: not a JSON object/, 'a relay key file that is not one');
  } finally {
    t.done();
  }
});

test('netlane keygen --out refuses to overwrite an existing file (exit 4, the file kept) unless --force', () => {
  const t = tempDir();
  try {
    const file = t.f('ca.key');
    assert.equal(run(['keygen', '--out', file]).status, 0);
    const first = readFileSync(file, 'utf8');
    fails(run(['keygen', '--out', file]), 4, /ca\.key exists; give --force to overwrite it$/, 'keygen over a key');
    assert.equal(readFileSync(file, 'utf8'), first, 'the existing key is untouched');
    writeFileSync(file, first, { mode: 0o644 });
    const forced = run(['keygen', '--out', file, '--force']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.notEqual(readFileSync(file, 'utf8'), first, '--force writes a new key');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'and leaves it 0600');
    fails(run(['ticket', '--key', file, '--user', 'a', '--out', file]), 4, /exists; give --force/, 'ticket --out over a file');
    fails(run(['keygen', '--force']), 2, /--force needs --out FILE/, 'keygen --force without --out');
  } finally {
    t.done();
  }
});

test('a port in use fails in one line with exit 3: the relay\'s UDP port and the metrics port; an unreachable Redis with exit 1', async () => {
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const tcp = createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  try {
    const udpPort = udp.address().port;
    const tcpPort = (tcp.address() as { port: number }).port;
    fails(run(['relay', '--open', `--port=${udpPort}`]), 3, /EADDRINUSE/, 'UDP port in use');
    fails(run(['relay', '--open', '--port=0', '--metrics', `127.0.0.1:${tcpPort}`]), 3, /--metrics: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/, 'metrics port in use');
    // A Redis that is not there (the UDP port holds no TCP listener) is a runtime failure, said in one line.
    fails(run(['relay', '--open', '--port=0'], { NETLANE_REDIS: `redis://127.0.0.1:${udpPort}` }), 1, /fleet store unavailable|@redis\/client/, 'Redis unreachable');
  } finally {
    udp.close();
    tcp.close();
  }
});

/** `netlane relay ARGS` running: its stdout so far, resolved once it prints its listening line (10 s at most). */
async function startRelay(args: readonly string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; out: () => string; address: string; metricsPort: number | null }> {
  const proc = spawn(process.execPath, [CLI, 'relay', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...CLEAN_ENV, ...env } });
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = /listening on (\S+#\S+)/.exec(out);
    if (m) {
      const metrics = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(out);
      return { proc, out: () => out, address: m[1] as string, metricsPort: metrics ? Number(metrics[1]) : null };
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`relay did not start (exit ${proc.exitCode}): ${out} ${err}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  await exited(proc, 5000);
}

test('NETLANE_* variables set every relay option; a flag wins over its variable', async () => {
  const t = tempDir();
  try {
    assert.equal(run(['keygen', '--out', t.f('a.key')]).status, 0);
    assert.equal(run(['keygen', '--out', t.f('b.key')]).status, 0);
    fails(run(['relay', '--open'], { NETLANE_PORT: 'abc' }), 2, /NETLANE_PORT must be an integer in 0\.\.65535/, 'a bad NETLANE_PORT');
    fails(run(['relay'], { NETLANE_OPEN: 'maybe' }), 2, /NETLANE_OPEN must be 1 or 0/, 'a bad NETLANE_OPEN');
    fails(run(['relay', '--open'], { NETLANE_REGION: 'eu' }), 2, /NETLANE_REGION needs --redis/, 'a region without a fleet');
    fails(run(['relay', '--open'], { NETLANE_DRAIN_SECONDS: '0' }), 2, /NETLANE_DRAIN_SECONDS must be an integer in 1\.\.3600/, 'a bad NETLANE_DRAIN_SECONDS');
    const env = {
      NETLANE_OPEN: '1',
      NETLANE_ADDRESS: '127.0.0.1',
      NETLANE_PORT: 'not a port',
      NETLANE_KEY: t.f('relay.key'),
      NETLANE_TICKET_KEY: `${t.f('a.key')},${t.f('b.key')}`,
      NETLANE_METRICS: '127.0.0.1:0',
      NETLANE_MAX_SESSIONS: '5',
    };
    const r = await startRelay(['--port', '0'], env);
    try {
      assert.ok(r.metricsPort !== null, `NETLANE_METRICS serves metrics: ${r.out()}`);
      assert.match(r.out(), /open, no tickets needed; ticket keys: [0-9a-f]{8}, [0-9a-f]{8}\)/, 'NETLANE_OPEN and both NETLANE_TICKET_KEY keys');
      const relayKey = JSON.parse(readFileSync(t.f('relay.key'), 'utf8')) as { publicKey: string };
      assert.ok(r.address.startsWith('127.0.0.1:') && r.address.endsWith(`#${relayKey.publicKey}`), 'NETLANE_KEY keeps the key; --port 0 won over NETLANE_PORT');
    } finally {
      await stop(r.proc);
    }
  } finally {
    t.done();
  }
});

async function get(port: number, path: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** A sample's value in Prometheus text (`name` with its labels as written), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const CONNECTION_KEYS = ['id', 'name', 'pingMs', 'qualityLocal', 'qualityRemote', 'outBytesPerSec', 'inBytesPerSec', 'outPacketsPerSec', 'inPacketsPerSec', 'queuedBytesPerLane', 'state'].sort();

test('netlane relay --metrics: counters move with traffic, /stats.json has a session per peer and no address, /health answers 503 once it drains', async () => {
  const relay = await startRelay(['--open', '--port', '0', '--metrics', '127.0.0.1:0', '--drain-seconds', '30']);
  const nms: NetworkManager[] = [];
  try {
    const port = relay.metricsPort as number;
    const before = await get(port, '/metrics');
    assert.equal(before.status, 200);
    assert.match(before.type, /^text\/plain; version=0\.0\.4/);
    assert.match(before.text, /^# HELP netlane_relay_forwarded_packets_total .+\n# TYPE netlane_relay_forwarded_packets_total counter\nnetlane_relay_forwarded_packets_total 0$/m);
    assert.equal(sample(before.text, 'netlane_relay_sessions'), 0);
    const up = await get(port, '/health');
    assert.equal(up.status, 200);
    const upBody = JSON.parse(up.text) as Record<string, unknown>;
    assert.deepEqual([upBody['status'], upBody['kind'], upBody['connections'], typeof upBody['uptimeSeconds']], ['up', 'relay', 0, 'number']);

    nms.push(...(await mesh([relay.address], 2)));
    const [a, b] = nms as [NetworkManager, NetworkManager];
    let got = 0;
    b.on('message', () => got++);
    await pump(nms, () => got >= 50, 10_000, '50 messages through the relay', () => a.sendMessage(b.getPeerId(), 1, new Uint8Array(100)));
    const after = await get(port, '/metrics');
    assert.ok((sample(after.text, 'netlane_relay_forwarded_packets_total') ?? 0) >= 50, 'forwarded packets counted');
    assert.ok((sample(after.text, 'netlane_relay_forwarded_bytes_total') ?? 0) >= 50 * 100, 'forwarded bytes counted');
    assert.equal(sample(after.text, 'netlane_relay_sessions'), 2);
    assert.equal(sample(after.text, 'netlane_relay_links'), 1);
    assert.equal(sample(after.text, 'netlane_relay_ticket_refused_by_total{reason="expired"}'), 0, 'labelled counters');
    for (const line of after.text.split('\n')) if (line !== '' && !line.startsWith('#')) assert.match(line, /^netlane_[a-z_]+(\{[a-z]+="[^"]*"\})? -?\d+(\.\d+)?$/, line);

    const stats = await get(port, '/stats.json');
    assert.equal(stats.status, 200);
    assert.match(stats.type, /^application\/json/);
    const snap = JSON.parse(stats.text) as { kind: string; unixMs: number; connections: Record<string, unknown>[]; totals: Record<string, number> };
    assert.equal(snap.kind, 'relay');
    assert.ok(Math.abs(snap.unixMs - Date.now()) < 60_000);
    assert.equal(snap.connections.length, 2);
    for (const c of snap.connections) {
      assert.deepEqual(Object.keys(c).sort(), CONNECTION_KEYS);
      assert.equal(c['state'], 'linked');
      assert.deepEqual(c['queuedBytesPerLane'], []);
    }
    assert.ok((snap.totals['forwardedPackets'] ?? 0) >= 50);
    // Rates come from the forwarding counters over at least a second: the sender's session shows what it sent
    // (out), the receiver's what it was sent (in), while messages keep flowing.
    let rated: Record<string, unknown>[] = [];
    const rateDeadline = Date.now() + 8000;
    const rising = (k: string): boolean => rated.some((c) => (c[k] as number) > 0);
    while (!(rising('outBytesPerSec') && rising('inBytesPerSec') && rising('outPacketsPerSec')) && Date.now() < rateDeadline) {
      const more = got + 20;
      await pump(nms, () => got >= more, 5000, '20 more messages', () => a.sendMessage(b.getPeerId(), 1, new Uint8Array(100)));
      rated = (JSON.parse((await get(port, '/stats.json')).text) as { connections: Record<string, unknown>[] }).connections;
    }
    assert.ok(rising('outBytesPerSec') && rising('inBytesPerSec'), `a session's out and in rates measured: ${JSON.stringify(rated)}`);
    assert.doesNotMatch(stats.text, /127\.0\.0\.1|"port"|"address"/, 'no peer address in the snapshot');
    assert.equal((await get(port, '/nothing')).status, 404);

    relay.proc.kill('SIGTERM');
    const deadline = Date.now() + 5000;
    let health = await get(port, '/health');
    while (health.status !== 503 && Date.now() < deadline) health = await get(port, '/health');
    assert.equal(health.status, 503, 'draining');
    assert.equal((JSON.parse(health.text) as { status: string }).status, 'draining');
    const draining = await get(port, '/metrics');
    assert.equal(sample(draining.text, 'netlane_relay_draining'), 1);
    assert.equal(sample(draining.text, 'netlane_up'), 0);
    for (const nm of nms.splice(0)) nm.close();
    await exited(relay.proc, 35_000);
    assert.equal(relay.proc.exitCode, 0, relay.out());
    assert.match(relay.out(), /^drained$/m);
  } finally {
    for (const nm of nms) nm.close();
    await stop(relay.proc);
  }
});
