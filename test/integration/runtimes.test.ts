// The smoke scenario (runtime-smoke.ts) and the demo under every JavaScript runtime found: Node (the one running
// this test), Bun and Deno. Bun binds a UDP socket after `bind` returns and Deno ignores an unref once a socket
// has started receiving (docs/RUNTIME.md "Runtimes"); both must run the scenario and then exit by themselves. A runtime is
// found through NETLANE_BUN / NETLANE_DENO (a path to the binary), then PATH, then .ci/runtimes/<name> (where
// .ci/run installs the npm packages `bun` and `deno`); a runtime not found is skipped with a message saying so.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'node:test';

/** A runtime's command line for a script, or null when it is not installed here. */
interface Runtime {
  readonly name: string;
  readonly argv: (script: string, args: readonly string[]) => string[];
  readonly bin: string | null;
}

/** The first of the runtime's candidate binaries that answers `--version` (an npm install whose script did not run leaves a stub that does not). */
function find(name: string, env: string): string | null {
  const given = process.env[env];
  const candidates = given ? [given] : [...(process.env['PATH'] ?? '').split(delimiter), join('.ci', 'runtimes', name, 'node_modules', '.bin')].filter(Boolean).map((dir) => join(dir, name));
  return candidates.find((p) => existsSync(p) && spawnSync(p, ['--version'], { timeout: 10_000 }).status === 0) ?? null;
}

const RUNTIMES: readonly Runtime[] = [
  { name: 'node', bin: process.execPath, argv: (s, a) => [s, ...a] },
  { name: 'bun', bin: find('bun', 'NETLANE_BUN'), argv: (s, a) => [s, ...a] },
  { name: 'deno', bin: find('deno', 'NETLANE_DENO'), argv: (s, a) => ['run', '--allow-net', '--no-prompt', s, ...a] }, // network only: all netlane needs (docs/RUNTIME.md),
];

/** Runs a script to its end under a runtime: its exit code and output; a run past `timeoutMs` is killed and fails. */
function run(rt: Runtime, script: string, args: readonly string[], timeoutMs: number): { status: number | null; out: string; timedOut: boolean } {
  const r = spawnSync(rt.bin as string, rt.argv(script, args), { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`, timedOut };
}

for (const rt of RUNTIMES) {
  const skip = rt.bin === null ? `${rt.name} not found or not working (set NETLANE_${rt.name.toUpperCase()}, put it on PATH, or npm install --prefix .ci/runtimes/${rt.name} ${rt.name})` : false;
  describe(`under ${rt.name}`, { skip }, () => {
    it('the smoke scenario delivers every reliable message in order, direct and relayed, then the process exits by itself', () => {
      const r = run(rt, 'dist/test/integration/runtime-smoke.js', [], 30_000);
      assert.equal(r.timedOut, false, `${rt.name} did not exit within 30 s after closing everything:\n${r.out}`);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, new RegExp(`smoke ok ${rt.name}: sockets port [1-9]\\d* 20/20; relayed 20/20`));
    });

    it('with the facades left open, sockets that do not keep the process alive let it exit', () => {
      const r = run(rt, 'dist/test/integration/runtime-smoke.js', ['--leave-open'], 30_000);
      assert.equal(r.timedOut, false, `${rt.name} did not exit within 30 s with idle sockets open:\n${r.out}`);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /smoke ok \w+ \(left open\)/);
    });

    it('the demo runs, fails over to the backup relay without losing a reliable message, and exits', () => {
      const r = run(rt, 'dist/src/cli/demo.js', ['--duration', '4', '--lag', '20', '--loss', '5'], 60_000);
      assert.equal(r.timedOut, false, `the demo did not exit within 60 s under ${rt.name}:\n${r.out}`);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /direct, loot \(reliable\): (\d+)\/\1 delivered, each once, in order/);
      assert.match(r.out, /relayed, loot \(reliable\): (\d+)\/\1 delivered, each once, in order/);
      assert.match(r.out, /relay ([AB]) killed: it carried alice and bob/);
      assert.match(r.out, /failover: the route moved from relay ([AB]) to relay (?!\1)[AB] [\d.]+ s after relay \1 was killed; .*no reliable message lost/);
    });
  });
}
