// The browser build's module graph: everything dist/src/browser.js reaches through static and dynamic
// imports, netlane's own files and the packages they import, resolved as a browser would be (the package's
// "exports"), must import no node: module nor any Node built-in, and netlane's files in it must not lean on
// Node's globals (Buffer, process, setImmediate, require).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ENTRY = join(ROOT, 'dist/src/browser.js');
const BUILTIN = new Set(builtinModules);
/** The only packages the browser build may import. */
const ALLOWED_PACKAGES = ['@noble/ciphers', '@noble/curves', '@noble/hashes'];

/** The specifiers a module imports: `import ... from`, `export ... from`, bare `import '...'` and `import('...')`. */
function specifiers(code: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[;\s}])(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(code); m; m = re.exec(code)) out.push((m[1] ?? m[2]) as string);
  return out;
}

/** A package's file for `subpath` (`.` or `./x.js`) through its "exports" (browser, import, default conditions). */
function resolvePackage(name: string, subpath: string, from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name);
    if (existsSync(join(pkgDir, 'package.json'))) {
      const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { exports?: Record<string, unknown>; main?: string };
      let target: unknown = pkg.exports ? pkg.exports[subpath] : subpath === '.' ? (pkg.main ?? 'index.js') : subpath;
      while (target && typeof target === 'object') {
        const t = target as Record<string, unknown>;
        target = t['browser'] ?? t['import'] ?? t['default'];
      }
      assert.equal(typeof target, 'string', `${name} exports no ${subpath}`);
      return join(pkgDir, target as string);
    }
    assert.notEqual(dir, dirname(dir), `package ${name} is not installed`);
  }
}

function walk(): { files: Map<string, string[]>; bad: string[] } {
  const files = new Map<string, string[]>();
  const bad: string[] = [];
  const todo = [ENTRY];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (files.has(file)) continue;
    const specs = specifiers(readFileSync(file, 'utf8'));
    files.set(file, specs);
    for (const s of specs) {
      const where = relative(ROOT, file);
      if (s.startsWith('node:') || BUILTIN.has(s) || BUILTIN.has(s.split('/')[0] as string)) {
        bad.push(`${where} imports ${s}`);
        continue;
      }
      if (s.startsWith('.')) {
        todo.push(resolve(dirname(file), s));
        continue;
      }
      const parts = s.split('/');
      const name = s.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
      if (!ALLOWED_PACKAGES.includes(name)) {
        bad.push(`${where} imports the package ${s}`);
        continue;
      }
      const rest = parts.slice(s.startsWith('@') ? 2 : 1).join('/');
      todo.push(resolvePackage(name, rest ? `./${rest}` : '.', file));
    }
  }
  return { files, bad };
}

/** Code without its comments and quoted strings (roughly: block comments, line comments not inside a URL, then '' and "" strings). */
function stripComments(code: string): string {
  return code
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''");
}

test('browser build: the module graph of dist/src/browser.js imports no node: module, no Node built-in and no package but @noble', () => {
  const { files, bad } = walk();
  assert.deepEqual(bad, []);
  const own = [...files.keys()].map((f) => relative(ROOT, f)).filter((f) => f.startsWith('dist/src/'));
  // The graph is the client side: facades, core, relay client; never the UDP socket, the relay server or node:crypto.
  for (const f of ['dist/src/api/network-manager.js', 'dist/src/api/networking-messages.js', 'dist/src/api/networking-sockets.js', 'dist/src/api/sockets-p2p.js', 'dist/src/relay/client/index.js', 'dist/src/core/endpoint.js', 'dist/src/crypto/noble-provider.js', 'dist/src/io/browser/websocket-transport.js']) assert.ok(own.includes(f), `${f} is in the graph`);
  for (const f of ['dist/src/io/udp.js', 'dist/src/io/runtime.js', 'dist/src/io/relay-server.js', 'dist/src/crypto/node-provider.js', 'dist/src/crypto/sodium-provider.js']) assert.ok(!own.includes(f), `${f} is not in the graph`);
  assert.ok([...files.keys()].some((f) => f.includes('@noble/ciphers')), 'the walk follows the packages too');
});

test('browser build: netlane\'s files in the graph use no Node global (Buffer, process, setImmediate, require, __dirname)', () => {
  const { files } = walk();
  const found: string[] = [];
  for (const file of files.keys()) {
    if (!relative(ROOT, file).startsWith('dist/src/')) continue;
    const code = stripComments(readFileSync(file, 'utf8'));
    for (const m of code.matchAll(/\b(Buffer|setImmediate|clearImmediate|require|__dirname|__filename)\b|\bprocess\.(?!getBuiltinModule)/g)) found.push(`${relative(ROOT, file)}: ${m[0]}`);
  }
  assert.deepEqual(found, []);
});

test('the graph walk finds a node: import where there is one (the Node entry has several)', () => {
  const code = readFileSync(join(ROOT, 'dist/src/io/udp.js'), 'utf8');
  assert.ok(specifiers(code).includes('node:dgram'));
  assert.ok(specifiers("export { a } from './x.js';\nimport('./y.js');\nimport './z.js';").length === 3);
  assert.match(stripComments("const b = Buffer.from(s, 'x'); // a 'comment'"), /Buffer/);
  assert.doesNotMatch(stripComments("const m = 'a Buffer'; /* Buffer */ // Buffer"), /Buffer/);
});
