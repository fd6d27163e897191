// `npm run fuzz -- --minutes N [--seed S]`: the fuzz targets for longer than npm test runs them.
import { runAll } from './targets.js';

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
const results = runAll(minutes * 60_000, seed, (line) => console.log(line));
console.log(`total ${results.reduce((a, r) => a + r.execs, 0).toLocaleString('en-US')} inputs, no failures`);
