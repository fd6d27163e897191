// The per-address limit over real UDP, with the server in a child process (limits-server.ts, default
// limits, dual stack on [::]): one address (127.0.0.1) opening connection after connection is held at 256,
// each one more is refused and hears ClosedByPeer 5011, and a client on another address (::1) still gets
// in. Every wait is on a condition with a deadline (waitFor). The limits' semantics in detail (pending,
// per listen socket, global, IPv6 /64, counters) are tested in virtual time: test/sim/sockets-limits.test.ts.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { ConnectionState, EndReason, NetworkingSockets } from '../../src/index.js';
import { waitFor } from './support.js';

/** The child's stdout, line by line, and a way to wait (bounded) for a line that matches. */
function lines(proc: ChildProcess): (re: RegExp, timeoutMs: number, what: string) => Promise<RegExpExecArray> {
  let buffered = '';
  const waiting = new Set<() => void>();
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    for (const w of waiting) w();
  });
  return (re, timeoutMs, what) =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const i = buffered.search(re);
        if (i < 0) return;
        const m = re.exec(buffered.slice(i)) as RegExpExecArray;
        buffered = buffered.slice(i + m[0].length);
        done();
        resolve(m);
      };
      const onExit = (): void => {
        done();
        reject(new Error(`the server exited waiting for ${what}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} from the server within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiting.delete(check);
        proc.off('exit', onExit);
      };
      waiting.add(check);
      proc.once('exit', onExit);
      check();
    });
}

test('over real UDP, one address opening 300 connections to a server process is held at 256 (the rest refused with 5011), and a client on another address still connects', async () => {
  const server = spawn(process.execPath, ['dist/test/integration/limits-server.js'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const next = lines(server);
  const attacker = new NetworkingSockets({ fakeSeed: 5 });
  const other = new NetworkingSockets({ fakeSeed: 6 });
  try {
    const port = Number((await next(/LISTENING (\d+)\n/, 5000, 'port'))[1]);
    const conns: number[] = [];
    const state = (h: number): number | undefined => attacker.getConnectionInfo(h)?.state;
    // 16 at a time (the pending limit per address), each batch connected or refused before the next.
    while (conns.length < 300) {
      const batch = Array.from({ length: Math.min(16, 300 - conns.length) }, () => attacker.connect(`127.0.0.1:${port}`));
      conns.push(...batch);
      await waitFor([attacker], () => batch.every((h) => state(h) !== ConnectionState.Connecting), 5000, `connections up to ${conns.length} settled`);
    }
    const connected = conns.filter((h) => state(h) === ConnectionState.Connected);
    const refused = conns.filter((h) => state(h) === ConnectionState.ClosedByPeer);
    console.log(`# one address opening ${conns.length} connections: ${connected.length} established, ${refused.length} refused with ${EndReason.Misc_ConnectionLimit}`);
    assert.equal(connected.length, 256, 'held at Netlane_MaxConnectionsPerAddress');
    assert.equal(refused.length, conns.length - 256, 'every other one refused');
    for (const h of refused) {
      const info = attacker.getConnectionInfo(h);
      assert.equal(info?.endReason, 5011);
      assert.match(info?.endDebug ?? '', /Netlane_MaxConnectionsPerAddress/);
    }
    const c = other.connect(`[::1]:${port}`);
    await waitFor([other], () => other.getConnectionInfo(c)?.state !== ConnectionState.Connecting, 5000, 'the client on ::1');
    assert.equal(other.getConnectionInfo(c)?.state, ConnectionState.Connected, 'another address is not refused');
    server.stdin.write('STATS\n');
    const stats = JSON.parse((await next(/STATS (.*)\n/, 5000, 'stats'))[1] as string) as { accepted: number; refusedMaxConnectionsPerAddress: number; refusedMaxPendingPerAddress: number; refusedMaxConnections: number };
    console.log(`# server: ${stats.accepted} accepted, refused ${stats.refusedMaxConnectionsPerAddress} per address, ${stats.refusedMaxPendingPerAddress} pending, ${stats.refusedMaxConnections} in all`);
    assert.equal(stats.accepted, 257);
    // A client whose CLOSED was lost asks again and is refused again: at least one refusal each.
    assert.ok(stats.refusedMaxConnectionsPerAddress >= refused.length, `${stats.refusedMaxConnectionsPerAddress} refusals counted`);
    assert.equal(stats.refusedMaxPendingPerAddress, 0);
  } finally {
    attacker.close();
    other.close();
    server.stdin.end();
    const exited = server.exitCode !== null || (await Promise.race([new Promise<boolean>((r) => server.once('exit', () => r(true))), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]));
    if (!exited) server.kill('SIGKILL');
  }
});
