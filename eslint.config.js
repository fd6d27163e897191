// Lint rules, including the layer import rules (README.md, docs/RUNTIME.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Imports that the sans-IO layers (util, wire, core) may never use. */
const worldImports = [
  { group: ['node:*', '/fs', '/dgram', '/net', '/crypto', '/os', '/timers', '/perf_hooks'], message: 'core/wire/util are sans-IO: no node:* imports.' },
  { group: ['**/io/**', '**/api/**', '**/relay/**', '**/testing/**', '**/cli/**'], message: 'core/wire/util may not import io, api, relay, testing or cli.' },
];
const noEnums = { selector: 'TSEnumDeclaration', message: 'Use as-const objects and unions (erasable TypeScript).' };
const noTimers = { selector: 'CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate)$/]', message: 'Timers live in src/io (one per endpoint, at pollTimeout) and src/cli: report pollTimeout() instead.' };
const noDgram = { selector: ':matches(ImportDeclaration, ImportExpression, ExportAllDeclaration, ExportNamedDeclaration)[source.value=/^(node:)?(dgram|module)$/]', message: 'node:dgram is opened in src/io/udp.ts only (and node:module could load it): use UdpSocket or a Runtime.' };
const noTimerGlobals = ['setTimeout', 'setInterval', 'setImmediate'].map((name) => ({ name, message: 'Timers live in src/io (one per endpoint, at pollTimeout) and src/cli: report pollTimeout() instead.' }));
const noTimerMembers = ['setTimeout', 'setInterval', 'setImmediate'].map((property) => ({ object: 'globalThis', property, message: 'Timers live in src/io and src/cli.' }));

/** Globals that read the world: time, randomness, timers, console. */
const worldGlobals = [
  { name: 'Date', message: 'Time is an argument named now (integer microseconds).' },
  { name: 'performance', message: 'Time is an argument named now (integer microseconds).' },
  { name: 'setTimeout', message: 'core has no timers: report pollTimeout() instead.' },
  { name: 'setInterval', message: 'core has no timers: report pollTimeout() instead.' },
  { name: 'setImmediate', message: 'core has no timers: report pollTimeout() instead.' },
  { name: 'console', message: 'core reports through events and stats, never the console.' },
  { name: 'process', message: 'core never reads the process.' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'docs/api/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['scripts/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // Pages that run in a browser (the browser tests' page, the example page): plain ES modules on the page's globals.
    files: ['test/browser/**/*.js', 'examples/browser/**/*.js'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', location: 'readonly', performance: 'readonly', requestAnimationFrame: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setTimeout: 'readonly', console: 'readonly', fetch: 'readonly', TextEncoder: 'readonly', MessageChannel: 'readonly', crypto: 'readonly' } },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', noEnums],
    },
  },
  {
    // No timer outside src/io and src/cli, however it is reached (the sans-IO blocks below add the rest of the world).
    files: ['src/**/*.ts'],
    ignores: ['src/io/**', 'src/cli/**'],
    rules: {
      'no-restricted-globals': ['error', ...noTimerGlobals],
      'no-restricted-properties': ['error', ...noTimerMembers],
    },
  },
  {
    files: ['src/util/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...worldImports, { group: ['**/wire/**', '**/core/**', '**/crypto/**'], message: 'util imports nothing of ours.' }] }],
      'no-restricted-globals': ['error', ...worldGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Randomness comes from an injected Rng.' }, ...noTimerMembers],
    },
  },
  {
    files: ['src/wire/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...worldImports, { group: ['**/core/**', '**/crypto/**'], message: 'wire imports util only.' }] }],
      'no-restricted-globals': ['error', ...worldGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Randomness comes from an injected Rng.' }, ...noTimerMembers],
    },
  },
  {
    files: ['src/crypto/**/*.ts'],
    ignores: ['src/crypto/node-provider.ts', 'src/crypto/sodium-provider.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...worldImports, { group: ['**/core/**'], message: 'crypto imports util and wire only.' }] }],
      'no-restricted-globals': ['error', ...worldGlobals.filter((g) => g.name !== 'Date')],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Randomness comes from the CryptoProvider.' }, ...noTimerMembers],
    },
  },
  {
    files: ['src/crypto/node-provider.ts', 'src/crypto/sodium-provider.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [worldImports[1], { group: ['**/core/**'], message: 'crypto imports util and wire only.' }] }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['**/crypto/**'], allowTypeImports: true, message: 'core imports crypto types only: the provider is injected.' }] }],
      'no-restricted-imports': ['error', { patterns: worldImports }],
      'no-restricted-globals': ['error', ...worldGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Randomness comes from an injected Rng.' }, ...noTimerMembers],
    },
  },
  {
    files: ['src/io/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/api/**', '**/peer/**', '**/testing/**', '**/cli/**', '**/relay/client/**'], message: 'io runs the sans-IO engines (endpoint, relay node) under the facades: it may not import api, peer, the relay client, testing or cli.' }] }],
    },
  },
  {
    // Timers only where the world is (the io drivers, one timer per endpoint; the CLI), and sockets only in src/io/udp.ts.
    files: ['src/**/*.ts'],
    ignores: ['src/io/**', 'src/cli/**'],
    rules: { 'no-restricted-syntax': ['error', noEnums, noTimers, noDgram] },
  },
  {
    files: ['src/io/**/*.ts', 'src/cli/**/*.ts'],
    ignores: ['src/io/udp.ts'],
    rules: { 'no-restricted-syntax': ['error', noEnums, noDgram] },
  },
  {
    // sodium-provider.ts loads the optional sodium-native package with createRequire (synchronously, on first use).
    files: ['src/crypto/sodium-provider.ts'],
    rules: { 'no-restricted-syntax': ['error', noEnums, noTimers] },
  },
  {
    files: ['src/peer/**/*.ts', 'src/relay/client/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...worldImports.slice(0, 1), { group: ['**/io/**', '**/api/**', '**/testing/**', '**/cli/**'], message: 'the relay client and the peer layer are sans-IO: no io, api, testing or cli.' }, { group: ['**/crypto/node-provider*'], message: 'the provider is injected.' }] }],
      'no-restricted-globals': ['error', ...worldGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Randomness comes from an injected Rng or the CryptoProvider.' }, ...noTimerMembers],
    },
  },
  {
    files: ['src/relay/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [worldImports[0], { group: ['**/api/**', '**/io/**', '**/peer/**', '**/testing/**', '**/cli/**', '**/crypto/node-provider*'], message: 'relay is sans-IO, under io and the facades: it may not import io, peer, api, testing, cli or the node:crypto provider.' }] }],
      'no-restricted-globals': ['error', ...worldGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Randomness comes from the CryptoProvider.' }, ...noTimerMembers],
    },
  },
  {
    // The relay node is sans-IO like core: it imports util, wire, crypto (types and provider functions) and the
    // relay's protocol, hop crypto and ticket codecs, never the server, the client or anything that does IO.
    files: ['src/relay/node/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          ...worldImports,
          { group: ['**/core/**', '**/crypto/node-provider*'], message: 'the relay node imports util, wire, crypto (not its node:crypto provider), ../protocol.js, ../hop.js and ../ticket.js only.' },
          { regex: '^\\.\\./(?!protocol\\.js$|hop\\.js$|ticket\\.js$)[^/]+$', message: 'the relay node imports ../protocol.js, ../hop.js and ../ticket.js only from the relay (not the server, the client or the index).' },
        ],
      }],
      'no-restricted-globals': ['error', ...worldGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Randomness comes from the CryptoProvider.' }, ...noTimerMembers],
    },
  },
  {
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/wire/**', '**/testing/**', '**/cli/**'], message: 'api translates between the user and core/io: no wire codecs, testing or cli.' },
            { group: ['**/crypto/**', '!**/crypto/types.js', '!**/crypto/provider.js'], message: 'api imports no crypto internals: handshakes and peer ids come from src/peer (localPeer).' },
            { group: ['**/relay/**', '!**/relay/index.js'], message: 'api uses the relay network through its public index only (src/relay/index.ts).' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/testing/**/*.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'SimNetwork is seeded: use Rng.' }, ...noTimerMembers],
      'no-restricted-globals': ['error', { name: 'Date', message: 'SimNetwork runs in virtual time.' }],
    },
  },
);
