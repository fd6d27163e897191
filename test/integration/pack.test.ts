// The package as a user gets it: the checkout's files (tracked and new, not ignored) are copied to a temp dir,
// `npm pack` there runs `prepack` (a build from scratch), and the tarball is installed into a scratch project.
// A TypeScript consumer compiles with default checks (no esModuleInterop, no skipLibCheck) under node16,
// nodenext, bundler and node10 resolution and runs; a CommonJS consumer `require`s the package. Offline: the
// scratch project borrows the checkout's typescript (by path) and @types/node (a symlink).
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const checkout = process.cwd();
const tsc = join(checkout, 'node_modules/typescript/bin/tsc');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let tmp = '';
let tarball = '';
let files: string[] = [];
let project = '';

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

const CONSUMER_TS = `import { NetworkingSockets, SendFlags, channels, type NetworkingMessage } from 'netlane';
import { SeededRng } from 'netlane/testing';

const sockets = new NetworkingSockets();
const pair = sockets.createSocketPair(false);
if (!pair) throw new Error('no socket pair');
const [a, b] = pair;
sockets.sendMessageToConnection(a, new TextEncoder().encode('hello'), SendFlags.Reliable);
const got: NetworkingMessage[] = [];
const rng = new SeededRng(1);
const deadline = Date.now() + 5000;
while (got.length === 0 && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 5));
  got.push(...(sockets.receiveMessagesOnConnection(b) ?? []));
}
sockets.close();
console.log('got', new TextDecoder().decode(got[0]?.data), typeof channels.socketOpen.hasSubscribers, rng.nextU32() > 0);
`;

// node10 and CommonJS output have no top-level await: the same program in an async function.
const CONSUMER_CJS_TS = CONSUMER_TS.replace(/\nconst sockets/, '\nasync function main(): Promise<void> {\nconst sockets') + '}\nvoid main();\n';

const CONFIGS = {
  node16: { module: 'node16', moduleResolution: 'node16', type: 'module', source: CONSUMER_TS },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', type: 'module', source: CONSUMER_TS },
  bundler: { module: 'esnext', moduleResolution: 'bundler', type: 'module', source: CONSUMER_TS },
  node10: { module: 'commonjs', moduleResolution: 'node10', type: 'commonjs', source: CONSUMER_CJS_TS },
} as const;

describe('the packed package', () => {
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'netlane-pack-')));
    // A clean checkout: the files git would commit, none of dist/ or node_modules, which stays the checkout's.
    const src = join(tmp, 'src');
    const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: checkout, encoding: 'utf8' }).split('\0');
    for (const f of listed) if (f && existsSync(join(checkout, f)) && !f.startsWith('node_modules') && !f.startsWith('bench/node_modules')) cpSync(join(checkout, f), join(src, f));
    symlinkSync(join(checkout, 'node_modules'), join(src, 'node_modules'));
    if (existsSync(join(checkout, 'bench/node_modules'))) symlinkSync(realpathSync(join(checkout, 'bench/node_modules')), join(src, 'bench/node_modules'));
    const out = run(npm, ['pack', '--json', '--pack-destination', tmp], src);
    const info = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    tarball = join(tmp, info[0]?.filename ?? '');
    files = info[0]?.files.map((f) => f.path) ?? [];
    project = join(tmp, 'consumer');
    write(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    run(npm, ['install', '--offline', '--no-audit', '--no-fund', '--omit=optional', '--ignore-scripts', tarball], project);
    mkdirSync(join(project, 'node_modules/@types'), { recursive: true });
    symlinkSync(join(checkout, 'node_modules/@types/node'), join(project, 'node_modules/@types/node'));
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('ships the build, the bin target, LICENSE and source maps with their sources, and no tests or benchmarks', () => {
    for (const f of ['package.json', 'LICENSE', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/testing/index.d.ts', 'dist/src/cli/netlane.js', 'docs/PORTING.md']) assert.ok(files.includes(f), `${f} is in the tarball`);
    const bad = files.filter((f) => f.startsWith('dist/test') || f.startsWith('dist/bench') || f.startsWith('dist/examples') || f.startsWith('src/') || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
    assert.deepEqual(bad, [], 'nothing but the library, its docs and its types');
    const installed = join(project, 'node_modules/netlane');
    const map = JSON.parse(readFileSync(join(installed, 'dist/src/index.js.map'), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
    assert.equal(map.sourcesContent?.length, map.sources.length, 'every source map carries its sources');
    assert.ok(map.sourcesContent.every((s) => typeof s === 'string' && s.length > 0));
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, unknown>;
    for (const k of ['repository', 'bugs', 'homepage', 'license', 'engines']) assert.ok(pkg[k], `package.json has ${k}`);
    const d = readFileSync(join(installed, 'dist/src/io/diagnostics.d.ts'), 'utf8');
    assert.doesNotMatch(d, /import \w+ from/, 'no default import in the emitted types');
    const bin = spawnSync(process.execPath, [join(installed, 'dist/src/cli/netlane.js'), 'keygen', '--help'], { encoding: 'utf8', timeout: 10_000 });
    assert.ok(bin.status !== null && bin.error === undefined, 'the bin target runs');
    assert.ok(existsSync(join(project, 'node_modules/.bin/netlane')), 'npm linked the bin');
  });

  for (const [name, c] of Object.entries(CONFIGS)) {
    it(`compiles a TypeScript consumer under moduleResolution ${name} and runs it`, () => {
      const dir = join(project, name);
      write(join(dir, 'package.json'), JSON.stringify({ type: c.type }));
      write(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'es2022', module: c.module, moduleResolution: c.moduleResolution, strict: true, outDir: 'out' }, include: ['main.ts'] }));
      write(join(dir, 'main.ts'), c.source);
      const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `tsc (${name}):\n${r.stdout}${r.stderr}`);
      const out = run(process.execPath, [join(dir, 'out/main.js')], dir);
      assert.equal(out.trim(), 'got hello boolean true');
    });
  }

  it('runs a CommonJS consumer that requires the package', () => {
    const dir = join(project, 'cjs');
    write(join(dir, 'main.cjs'), `const { NetworkingSockets, ConfigValue } = require('netlane');
const { SeededRng } = require('netlane/testing');
const { version } = require('netlane/package.json');
const s = new NetworkingSockets();
console.log(typeof s.createSocketPair, ConfigValue.TimeoutInitial, new SeededRng(1).nextU32() > 0, version);
s.close();
`);
    const r = spawnSync(process.execPath, [join(dir, 'main.cjs')], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.trim(), /^function 24 true \d+\.\d+\.\d+/);
  });
});
