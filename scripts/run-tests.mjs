// Runs every compiled test file under dist/test, one phase (directory) at a time and one file at a time, and
// says what it is doing as it goes: a line (■) as each phase starts, the spec reporter's output of each file as it
// comes (a file runs as its own node process, so what it prints reaches the terminal or pipe at once), a line
// per file with its counts, one per phase, and the totals. Pass a substring to filter:
//   node scripts/run-tests.mjs sim/
import { readdirSync, statSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** Phases in the order they run: quick and telling first, the real-UDP suite and the fuzzer last. */
const PHASES = ['unit', 'sim', 'compliance', 'security', 'soak', 'integration', 'browser', 'fuzz'];
const ROOT = 'dist/test';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/** Writes at once, also to a pipe (a line of progress is never held back behind a buffer). */
function say(text) {
  writeSync(1, text.endsWith('\n') ? text : `${text}\n`);
}

function seconds(ms) {
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** The spec reporter's summary counts ("ℹ tests 5" ...), from the file's output. */
function counts(output) {
  const get = (k) => {
    const m = new RegExp(`^\\S*\\s*${k} (\\d+)\\s*$`, 'm').exec(output);
    return m ? Number(m[1]) : 0;
  };
  return { tests: get('tests'), pass: get('pass'), fail: get('fail'), skipped: get('skipped') + get('todo') + get('cancelled') };
}

/** Runs one test file in its own process, passing its output through as it comes; resolves with its counts. */
function runFile(file) {
  return new Promise((resolvePromise) => {
    const start = performance.now();
    const child = spawn(process.execPath, ['--test-reporter=spec', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const pass = (fd) => (chunk) => {
      writeSync(fd, chunk);
      if (fd === 1) tail = (tail + chunk.toString('utf8')).slice(-4096); // the summary is at the end
    };
    child.stdout.on('data', pass(1));
    child.stderr.on('data', pass(2));
    child.on('close', (code, signal) => resolvePromise({ code: code ?? 1, signal, ms: performance.now() - start, ...counts(tail) }));
  });
}

const filter = process.argv[2] ?? '';
const files = walk(ROOT)
  .filter((f) => f.includes(filter))
  .sort();
if (files.length === 0) {
  console.error(`no test files match "${filter}"`);
  process.exit(1);
}
const phaseOf = (f) => relative(ROOT, f).split(/[\\/]/)[0] ?? '';
const order = (p) => (PHASES.includes(p) ? PHASES.indexOf(p) : PHASES.length);
const phases = [...new Set(files.map(phaseOf))].sort((a, b) => order(a) - order(b) || a.localeCompare(b));

const total = { files: 0, tests: 0, pass: 0, fail: 0, skipped: 0, failedFiles: [] };
const started = performance.now();
let index = 0;
for (const [k, phase] of phases.entries()) {
  const list = files.filter((f) => phaseOf(f) === phase);
  const sum = { tests: 0, pass: 0, fail: 0, bad: 0 };
  const phaseStart = performance.now();
  say(`\n■ phase ${k + 1}/${phases.length} ${phase}: ${list.length} file${list.length === 1 ? '' : 's'}`);
  for (const file of list) {
    index++;
    const name = relative(ROOT, file);
    say(`▷ [${index}/${files.length}] ${name}`);
    const r = await runFile(file);
    const ok = r.code === 0 && r.fail === 0;
    sum.tests += r.tests;
    sum.pass += r.pass;
    sum.fail += r.fail;
    total.skipped += r.skipped;
    if (!ok) {
      sum.bad++;
      total.failedFiles.push(name);
    }
    const how = r.signal ? `killed by ${r.signal}` : r.code !== 0 && r.fail === 0 ? `exit code ${r.code}` : `${r.fail} fail`;
    say(`${ok ? '✔' : '✖'} [${index}/${files.length}] ${name}: ${r.tests} tests, ${r.pass} pass, ${how} (${seconds(r.ms)})`);
  }
  total.files += list.length;
  total.tests += sum.tests;
  total.pass += sum.pass;
  total.fail += sum.fail;
  say(`${sum.bad === 0 ? '✔' : '✖'} phase ${phase}: ${list.length} files, ${sum.tests} tests, ${sum.pass} pass, ${sum.fail} fail${sum.bad > 0 ? `, ${sum.bad} file(s) failed` : ''} (${seconds(performance.now() - phaseStart)})`);
}
const failed = total.failedFiles.length;
say(`\n${failed === 0 ? '✔' : '✖'} all: ${total.files} files, ${total.tests} tests, ${total.pass} pass, ${total.fail} fail, ${total.skipped} skipped (${seconds(performance.now() - started)})`);
if (failed > 0) say(`failed files:\n${total.failedFiles.map((f) => `  ${f}`).join('\n')}`);
process.exit(failed === 0 ? 0 : 1);
