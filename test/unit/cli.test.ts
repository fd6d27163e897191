import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeCryptoProvider } from '../../src/crypto/node-provider.js';
import { checkCertificate } from '../../src/crypto/certificate.js';
import { decodeCertificateFile, decodeKeyFile } from '../../src/crypto/keyfile.js';
import { ConnectionState } from '../../src/core/types.js';
import { connectedPair } from '../support/sim.js';
import { ticketKeyId, verifyTicket, type TicketKeys } from '../../src/relay/ticket.js';

const CLI = join('dist', 'src', 'cli', 'netlane.js');

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('netlane keygen and netlane cert make keys and certificates that a strict endpoint accepts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netlane-cli-'));
  try {
    const f = (n: string): string => join(dir, n);
    for (const k of ['ca.key', 'alice.key', 'server.key']) assert.equal(run('keygen', '--out', f(k)).status, 0);
    assert.equal(statSync(f('ca.key')).mode & 0o777, 0o600, 'private keys are written 0600');
    assert.equal(run('cert', '--ca', f('ca.key'), '--key', f('alice.key'), '--identity', 'str:alice', '--days', '7', '--out', f('alice.cert')).status, 0);
    const serverKey = JSON.parse(readFileSync(f('server.key'), 'utf8')) as { publicKey: string };
    const printed = run('cert', '--ca', f('ca.key'), '--public-key', serverKey.publicKey, '--identity', 'str:server');
    assert.equal(printed.status, 0);

    const provider = new NodeCryptoProvider();
    const ca = decodeKeyFile(provider, readFileSync(f('ca.key'), 'utf8'));
    const alice = decodeKeyFile(provider, readFileSync(f('alice.key'), 'utf8'));
    const aliceCert = decodeCertificateFile(readFileSync(f('alice.cert'), 'utf8'));
    const serverCert = decodeCertificateFile(printed.stdout);
    const now = Math.floor(Date.now() / 1000);
    assert.deepEqual(checkCertificate(provider, aliceCert, [ca], now, '10.0.0.1'), { ok: true, authenticated: true });
    assert.ok(aliceCert.expiresAt - now <= 7 * 86_400 && aliceCert.expiresAt - now > 6 * 86_400);

    const strict = { IP_AllowWithoutAuth: 0 };
    const p = connectedPair(5, { latencyUs: 1000 }, strict, strict, {
      client: { key: alice, certificate: aliceCert, trustedAuthorities: [ca], unixSeconds: () => now },
      server: { key: decodeKeyFile(provider, readFileSync(f('server.key'), 'utf8')), certificate: serverCert, trustedAuthorities: [ca], unixSeconds: () => now },
    });
    assert.equal(p.client.endpoint.state(p.c), ConnectionState.Connected);
    assert.equal(p.server.endpoint.peerInfo(p.s)?.identity, 'str:alice');
    assert.equal(p.server.endpoint.peerInfo(p.s)?.authenticated, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('netlane cert refuses bad arguments with exit code 2 and a message', () => {
  assert.equal(run('cert', '--identity', 'str:x').status, 2);
  assert.match(run('cert', '--ca', 'nope.key', '--identity', 'str:x', '--public-key', 'AAAA').stderr, /public key: expected 32 bytes|ENOENT|no such file/);
  assert.match(run('cert', '--ca', '/dev/null', '--identity', 'bad', '--public-key', Buffer.alloc(32).toString('base64')).stderr, /key file|identity/);
  assert.equal(run('frobnicate').status, 2);
  assert.equal(run('keygen', '--bogus', '1').status, 2);
});

test('netlane ticket signs a ticket that a relay with the ticket key accepts, and only that relay', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netlane-cli-'));
  try {
    const provider = new NodeCryptoProvider();
    const f = (n: string): string => join(dir, n);
    assert.equal(run('keygen', '--out', f('ticket.key')).status, 0);
    assert.equal(run('keygen', '--out', f('other.key')).status, 0);
    const r = run('ticket', '--key', f('ticket.key'), '--user', 'alice', '--hours', '6', '--sessions', '2');
    assert.equal(r.status, 0, r.stderr);
    const bytes = new Uint8Array(Buffer.from(r.stdout.trim(), 'base64url'));
    const key = decodeKeyFile(provider, readFileSync(f('ticket.key'), 'utf8'));
    const other = decodeKeyFile(provider, readFileSync(f('other.key'), 'utf8'));
    const trust = (k: typeof key): TicketKeys => ({ keys: new Map([[ticketKeyId(provider, k.publicKey), k.publicKey]]), revoked: new Set() });
    const now = Math.floor(Date.now() / 1000);
    const ok = verifyTicket(provider, trust(key), bytes, now);
    assert.ok(ok.ok && ok.ticket.user === 'alice' && ok.ticket.maxSessions === 2 && ok.ticket.expiresAt - ok.ticket.issuedAt === 6 * 3600);
    assert.deepEqual(verifyTicket(provider, trust(other), bytes, now), { ok: false, why: 'unknownKey' });
    assert.deepEqual(verifyTicket(provider, trust(key), bytes, now + 7 * 3600), { ok: false, why: 'expired' });
    assert.equal(run('ticket', '--key', f('ticket.key'), '--user', 'alice', '--hours', '25').status, 2, 'more than 24 h is refused');
    assert.equal(run('relay').status, 2, 'a relay needs ticket keys or --open');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `netlane relay --open --port 0` and sends SIGTERM the moment its listening line arrives, as a
 * supervisor does. Resolves when the process has exited; rejects (and kills it) after `deadlineMs`.
 */
function relayStoppedOnListening(deadlineMs: number): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'relay', '--open', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relay still running ${deadlineMs} ms after start (signalled: ${signalled})\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, deadlineMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (!signalled && stdout.includes('netlane relay listening on ')) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('netlane relay drains and exits 0 on a SIGTERM sent the moment it prints its listening line (10 times)', async () => {
  for (let i = 0; i < 10; i++) {
    const r = await relayStoppedOnListening(10_000);
    const what = `run ${i + 1}: code ${r.code}, signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    assert.equal(r.signal, null, `killed by the signal instead of draining: ${what}`);
    assert.equal(r.code, 0, what);
    assert.match(r.stdout, /^draining: 0 sessions, deadline 10 s$/m, what);
    assert.match(r.stdout, /^drained$/m, what);
  }
});

test('netlane CMD --help (or -h) prints that command\'s usage and exits 0; netlane --help prints all of it', () => {
  const heads: Record<string, string> = {
    keygen: 'netlane keygen [--out FILE',
    cert: 'netlane cert --ca CA_KEY_FILE',
    ticket: 'netlane ticket --key TICKET_KEY_FILE',
    relay: 'netlane relay [--address IP]',
    demo: 'netlane demo',
  };
  for (const [cmd, head] of Object.entries(heads)) {
    for (const args of [[cmd, '--help'], [cmd, '-h'], ['help', cmd]]) {
      const r = run(...args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, '', args.join(' '));
      assert.ok(r.stdout.startsWith('usage:\n'), args.join(' '));
      assert.ok(r.stdout.includes(head), `${args.join(' ')} prints its usage`);
      for (const [other, h] of Object.entries(heads)) if (other !== cmd) assert.ok(!r.stdout.includes(h), `${args.join(' ')} prints only its own usage`);
    }
  }
  const relay = run('relay', '--open', '--port', '0', '--help');
  assert.equal(relay.status, 0, 'help wins over the options around it, and no relay starts');
  assert.match(relay.stdout, /--drain-seconds S/);
  assert.doesNotMatch(relay.stdout, /listening/);
  for (const args of [['--help'], ['-h'], ['help'], []]) {
    const r = run(...args);
    assert.equal(r.status, 0, args.join(' '));
    for (const h of Object.values(heads)) assert.ok(r.stdout.includes(h), `netlane ${args.join(' ')} prints ${h}`);
  }
  assert.equal(run('relay', '--bogus').status, 2, 'an unknown argument still fails');
});
