// Relays over real UDP for the integration suite: `netlane relay` as a child process, and NetworkManagers
// driven as a game drives them (a frame every 10 ms), waiting on conditions with bounded deadlines.
import { spawn, type ChildProcess } from 'node:child_process';
import { NetworkManager } from '../../src/api/network-manager.js';
import { allConnected, openAll } from '../support/relayed.js';

/** The game loop's frame, ms (runCallbacks and flush each frame, as a GameSDK game does). */
const FRAME_MS = 10;

export const nextFrame = (): Promise<void> => new Promise((r) => setTimeout(r, FRAME_MS));

/** Runs every manager's frame (runCallbacks, `each`, flush) every FRAME_MS until `done()`; throws after `timeoutMs`. */
export async function pump(nms: readonly NetworkManager[], done: () => boolean, timeoutMs: number, what: string, each?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const nm of nms) nm.runCallbacks();
    each?.();
    for (const nm of nms) nm.flush();
    if (done()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await nextFrame();
  }
}

/** Managers opened to each other with channel 0 unreliable and channel 1 reliable, all connected. */
export async function mesh(relays: string[], n: number): Promise<NetworkManager[]> {
  const nms = Array.from({ length: n }, () => new NetworkManager({ relays, bindAddress: '127.0.0.1' }));
  await pump(nms, () => nms.every((nm) => nm.route !== null), 5000, 'routes');
  openAll(nms);
  await pump(nms, () => allConnected(nms), 10_000, 'every pair connected');
  return nms;
}

/** Resolves when `proc` has exited (at once if it has); rejects after `timeoutMs`. */
export function exited(proc: ChildProcess, timeoutMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${proc.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** `netlane relay --open` (and `extra` flags) as a child process; resolves with its port and `host:port#key` once it prints them (5 s at most). */
export function spawnRelay(extra: readonly string[] = []): Promise<{ proc: ChildProcess; port: number; address: string }> {
  const proc = spawn(process.execPath, ['dist/src/cli/netlane.js', 'relay', '--open', '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onExit = (code: number | null, signal: string | null): void => fail(`exited: ${code ?? signal}`);
    const onData = (d: string): void => {
      out += d;
      const m = /listening on (([\d.]+):(\d+)#[A-Za-z0-9_-]{43})/.exec(out);
      if (!m) return;
      settle();
      resolve({ proc, port: Number(m[3]), address: m[1] as string });
    };
    const settle = (): void => {
      clearTimeout(timer);
      proc.off('exit', onExit);
      proc.stdout?.off('data', onData).resume();
    };
    const fail = (why: string): void => {
      settle();
      proc.kill('SIGKILL');
      reject(new Error(`relay did not start (${why}): ${out}`));
    };
    const timer = setTimeout(() => fail('no port within 5 s'), 5000);
    proc.once('exit', onExit);
    proc.stdout?.setEncoding('utf8').on('data', onData);
  });
}

