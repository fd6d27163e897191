import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TARGETS, runAll } from './targets.js';
import { seedOr } from '../support/sim.js';

// A fixed number of inputs per target (Target.testInputs), so every machine does the same work and a seed
// replays exactly; `npm run fuzz -- --minutes N` runs for a time instead.
const total = TARGETS.reduce((a, t) => a + t.testInputs, 0);

test(`fuzz: every decoder and Endpoint.handleDatagram (before and after decryption), ${total.toLocaleString('en-US')} inputs: no exception, no accepted forgery`, () => {
  // A fixed default seed keeps CI reproducible; `npm run fuzz` picks a new seed each run.
  const seed = seedOr(1);
  console.log(`# fuzz seed ${seed} (replay: NETLANE_SEED=${seed}), ${TARGETS.length} targets, ${total.toLocaleString('en-US')} inputs`);
  const start = performance.now();
  const results = runAll((t) => ({ inputs: t.testInputs }), seed, (line) => console.log(`# ${line}`));
  console.log(`# fuzz: ${((performance.now() - start) / 1000).toFixed(1)} s in all`);
  for (const [i, r] of results.entries()) {
    const t = TARGETS[i];
    assert.equal(r.execs, t?.testInputs, `${r.name} ran ${r.execs} inputs`);
  }
});
