// Runs every compiled test file under dist/test, each as its own node process, and says what it is doing as it
// goes: a line (■) as each stage starts, the spec reporter's output of each file, a line per file with its
// counts, one per phase (directory), and the totals.
//
// Two stages. First the files that run in virtual time or in-process only (unit, sim, compliance, security,
// soak, fuzz): JOBS at once (default 2, env NETLANE_TEST_JOBS), longest first by the durations of the previous run
// (kept in dist/test/.durations.json), each file's output passed on whole when it ends so that files side by
// side do not interleave. Then the files on real sockets and processes (integration), one at a time, their
// output passed through as it comes (also to a pipe). Pass a substring to filter:
//   node scripts/run-tests.mjs sim/
import { readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const ROOT = 'dist/test';
const DURATIONS = join(ROOT, '.durations.json');
/** Phases in the order they are reported; the first list runs side by side, the second one file at a time. */
const SHARED = ['unit', 'sim', 'compliance', 'security', 'soak', 'fuzz'];
const ALONE = ['integration', 'browser'];
const JOBS = Math.max(1, Number(process.env.NETLANE_TEST_JOBS ?? 2) || 1);

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

/**
 * Runs one test file in its own process; resolves with its counts. `live`: its output passed through as it
 * comes; otherwise held and written whole when the file ends.
 */
function runFile(file, live) {
  return new Promise((resolvePromise) => {
    const start = performance.now();
    const child = spawn(process.execPath, ['--test-reporter=spec', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const held = [];
    const pass = (fd) => (chunk) => {
      if (live) writeSync(fd, chunk);
      else held.push([fd, chunk]);
      if (fd === 1) tail = (tail + chunk.toString('utf8')).slice(-4096); // the summary is at the end
    };
    child.stdout.on('data', pass(1));
    child.stderr.on('data', pass(2));
    child.on('close', (code, signal) => {
      for (const [fd, chunk] of held) writeSync(fd, chunk);
      resolvePromise({ code: code ?? 1, signal, ms: performance.now() - start, ...counts(tail) });
    });
  });
}

function readDurations() {
  try {
    return JSON.parse(readFileSync(DURATIONS, 'utf8'));
  } catch {
    return {};
  }
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
const previous = readDurations();
const durations = { ...previous };
const total = { files: 0, tests: 0, pass: 0, fail: 0, skipped: 0, failedFiles: [] };
const started = performance.now();
let index = 0;

/** Runs `list` `jobs` at once (longest first as last measured), then a line per phase of it. */
async function stage(title, phases, jobs) {
  const list = files.filter((f) => phases.includes(phaseOf(f)));
  if (list.length === 0) return;
  const stageStart = performance.now();
  say(`\n■ ${title}: ${list.length} file${list.length === 1 ? '' : 's'}, ${jobs} at a time`);
  const sums = new Map(phases.map((p) => [p, { files: 0, tests: 0, pass: 0, fail: 0, bad: 0, ms: 0 }]));
  const queue = jobs > 1 ? [...list].sort((a, b) => (previous[relative(ROOT, b)] ?? 0) - (previous[relative(ROOT, a)] ?? 0)) : [...list];
  const runOne = async (file) => {
    const at = ++index;
    const name = relative(ROOT, file);
    say(`▷ [${at}/${files.length}] ${name}`);
    const r = await runFile(file, jobs === 1);
    durations[name] = Math.round(r.ms);
    const ok = r.code === 0 && r.fail === 0;
    const sum = sums.get(phaseOf(file));
    sum.files++;
    sum.tests += r.tests;
    sum.pass += r.pass;
    sum.fail += r.fail;
    sum.ms += r.ms;
    total.skipped += r.skipped;
    if (!ok) {
      sum.bad++;
      total.failedFiles.push(name);
    }
    const how = r.signal ? `killed by ${r.signal}` : r.code !== 0 && r.fail === 0 ? `exit code ${r.code}` : `${r.fail} fail`;
    say(`${ok ? '✔' : '✖'} [${at}/${files.length}] ${name}: ${r.tests} tests, ${r.pass} pass, ${how} (${seconds(r.ms)})`);
  };
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) await runOne(file);
  };
  await Promise.all(Array.from({ length: Math.min(jobs, list.length) }, worker));
  for (const [phase, sum] of sums) {
    if (sum.files === 0) continue;
    total.files += sum.files;
    total.tests += sum.tests;
    total.pass += sum.pass;
    total.fail += sum.fail;
    const bad = sum.bad > 0 ? `, ${sum.bad} file(s) failed` : '';
    say(`${sum.bad === 0 ? '✔' : '✖'} phase ${phase}: ${sum.files} files, ${sum.tests} tests, ${sum.pass} pass, ${sum.fail} fail${bad} (${seconds(sum.ms)} of file time)`);
  }
  say(`■ ${title} done in ${seconds(performance.now() - stageStart)}`);
}

const others = [...new Set(files.map(phaseOf))].filter((p) => !SHARED.includes(p) && !ALONE.includes(p)).sort();
await stage('virtual time and in-process', SHARED, JOBS);
await stage('real sockets and processes', [...ALONE, ...others], 1);
try {
  writeFileSync(DURATIONS, `${JSON.stringify(durations, null, 1)}\n`);
} catch {
  // a read-only checkout only loses the ordering
}
const failed = total.failedFiles.length;
say(`\n${failed === 0 ? '✔' : '✖'} all: ${total.files} files, ${total.tests} tests, ${total.pass} pass, ${total.fail} fail, ${total.skipped} skipped (${seconds(performance.now() - started)})`);
if (failed > 0) say(`failed files:\n${total.failedFiles.map((f) => `  ${f}`).join('\n')}`);
process.exit(failed === 0 ? 0 : 1);
