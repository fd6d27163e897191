import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAll } from './targets.js';
import { seedOr } from '../support/sim.js';

// About 60 s in total (NETLANE_FUZZ_SECONDS overrides); `npm run fuzz -- --minutes N` runs longer.
const SECONDS = Number(process.env['NETLANE_FUZZ_SECONDS'] ?? 60);

test(`fuzz: every decoder and Endpoint.handleDatagram (before and after decryption) for ${SECONDS} s: no exception, no accepted forgery`, () => {
  // A fixed default seed keeps CI reproducible; `npm run fuzz` picks a new seed each run.
  const seed = seedOr(1);
  console.log(`# fuzz seed ${seed} (replay: NETLANE_SEED=${seed})`);
  const results = runAll(SECONDS * 1000, seed, (line) => console.log(`# ${line}`));
  for (const r of results) assert.ok(r.execs > 1000, `${r.name} ran only ${r.execs} inputs`);
});
