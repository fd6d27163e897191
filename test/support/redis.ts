// A real redis-server for the fleet tests: started on 127.0.0.1 on a free port with no persistence, stopped
// by its pid. Missing redis-server skips those tests on a developer's machine and fails them under CI
// (.ci/run installs it), so a CI run never passes without having run them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';

/** Whether `redis-server` is on PATH. */
export function haveRedis(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The skip option of a test that needs redis-server: skipped without it, except under CI (where it fails). */
export function redisSkip(): string | false {
  if (haveRedis()) return false;
  if (process.env['CI']) return false; // the test runs and fails: CI must have it
  return 'redis-server is not installed (apt-get install -y redis-server)';
}

/** A free TCP port on 127.0.0.1 (bound, read, closed). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A running redis-server: its URL, and stop/start (the same port) for outages. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL by pid) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty), and waits until it accepts connections. */
  start(): Promise<void>;
}

async function accepting(port: number, deadlineMs: number): Promise<void> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > end) throw new Error(`redis-server on port ${port} did not accept connections within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts redis-server on a free port of 127.0.0.1. Throws if it is not installed or does not come up within 5 s. */
export async function startRedis(): Promise<RedisServer> {
  if (!haveRedis()) throw new Error('redis-server is not installed: .ci/run installs it (apt-get install -y redis-server)');
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' });
    child = c;
    await accepting(port, 5000);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.pid === undefined) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    process.kill(c.pid, 'SIGKILL');
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}
