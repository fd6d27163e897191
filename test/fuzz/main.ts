// `npm run fuzz -- --minutes N [--seed S]`: the fuzz targets for a time (split evenly between them), longer
// than the fixed number of inputs npm test gives each.
import { TARGETS, runAll } from './targets.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const minutes = Number(arg('minutes') ?? 5);
const seed = Number(arg('seed') ?? Math.floor(Date.now() / 1000) % 100_000);
if (!(minutes > 0)) {
  console.error('usage: npm run fuzz -- --minutes N [--seed S]');
  process.exit(2);
}
console.log(`fuzz: ${minutes} min, seed ${seed}`);
const results = runAll(() => ({ ms: (minutes * 60_000) / TARGETS.length }), seed, (line) => console.log(line));
console.log(`total ${results.reduce((a, r) => a + r.execs, 0).toLocaleString('en-US')} inputs, no failures`);
