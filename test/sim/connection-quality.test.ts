// Connection quality in virtual time at 25 % loss each way: each side's remote quality is what the peer
// measures locally about the same direction, from the first full second on. A lost STATS frame is sent
// again, and the share counts the packets lost at the start of an interval (the very first ones too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendFlags } from '../../src/core/types.js';
import { UNMEASURED } from '../../src/core/connection-status.js';
import { connectedPair, drain, payload, seedOr, withSeed, type Pair } from '../support/sim.js';

const LOSS = 0.25;
const HZ = 30;
const PERIOD_US = Math.round(1e6 / HZ);
const RUN_US = 6_000_000;
/** The first sample: the first full second, plus time for its STATS frame (a few tries at 25 % loss). */
const FIRST_SAMPLE_US = 1_500_000;
const SAMPLE_EVERY_US = 50_000;
/** How far back the peer's local figure may be: its last interval, or the one before while the newer STATS frame travels. */
const REPORT_AGE_US = 1_200_000;
/** How far the mean local quality may be from the link's delivery rate over the run. */
const MEAN_TOLERANCE = 0.06;
const SEEDS = [20, 21, 22, 23, 24];

interface Sample {
  t: number;
  local: number;
  remote: number;
}

/** 30 Hz unreliable positions each way and a reliable message every 5th tick, from `t0`. */
function traffic(p: Pair, t0: number, endUs: number): void {
  for (let t = t0, i = 0; t < endUs; t += PERIOD_US, i++) {
    const index = i;
    const flags = index % 5 === 0 ? SendFlags.Reliable : SendFlags.Unreliable | SendFlags.NoNagle;
    p.sim.scheduler.at(t, () => void p.client.endpoint.send(p.sim.now, p.c, payload(0, index, 100), flags, 0), false);
    p.sim.scheduler.at(t + 11_000, () => void p.server.endpoint.send(p.sim.now, p.s, payload(0, index, 100), flags, 0), false);
  }
}

/** Whether `remote` (one side's view of the peer's figure at `t`) is one of the peer's local figures of the last {@link REPORT_AGE_US}. */
function reported(remote: number, t: number, peer: readonly Sample[]): boolean {
  return peer.some((s) => s.t <= t && s.t >= t - REPORT_AGE_US && Math.abs(s.local - remote) <= 0.0005);
}

for (const def of SEEDS) {
  test(`25 % loss each way: remote quality is the peer's local quality from the first full second on (seed ${def})`, () => {
    withSeed(seedOr(def), (seed) => {
      const p = connectedPair(seed, { latencyUs: 20_000, jitterUs: 2000, loss: LOSS });
      const t0 = p.sim.now;
      const end = t0 + RUN_US;
      traffic(p, t0, end);
      const client: Sample[] = [];
      const server: Sample[] = [];
      for (let t = t0 + SAMPLE_EVERY_US; t <= end; t += SAMPLE_EVERY_US) {
        p.sim.scheduler.at(
          t,
          () => {
            const cs = p.client.endpoint.status(p.sim.now, p.c)!;
            const ss = p.server.endpoint.status(p.sim.now, p.s)!;
            client.push({ t: p.sim.now, local: cs.connectionQualityLocal, remote: cs.connectionQualityRemote });
            server.push({ t: p.sim.now, local: ss.connectionQualityLocal, remote: ss.connectionQualityRemote });
          },
          false,
        );
      }
      p.sim.runUntil(() => (drain(p.server, p.s), drain(p.client, p.c), false), RUN_US);
      const after = (xs: Sample[]): Sample[] => xs.filter((s) => s.t >= t0 + FIRST_SAMPLE_US);
      const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
      const cl = mean(after(client).map((s) => s.local));
      const sl = mean(after(server).map((s) => s.local));
      const cr = mean(after(client).map((s) => s.remote));
      const sr = mean(after(server).map((s) => s.remote));
      console.log(`# seed ${seed}: mean quality client local ${cl.toFixed(3)} remote ${cr.toFixed(3)}, server local ${sl.toFixed(3)} remote ${sr.toFixed(3)} (link delivers ${1 - LOSS})`);
      for (const [side, own, peer] of [['client', client, server], ['server', server, client]] as const) {
        for (const s of after(own)) {
          assert.notEqual(s.local, UNMEASURED, `${side} local quality unmeasured at ${(s.t - t0) / 1000} ms`);
          assert.notEqual(s.remote, UNMEASURED, `${side} remote quality unmeasured at ${(s.t - t0) / 1000} ms`);
          assert.ok(reported(s.remote, s.t, peer), `${side} remote quality ${s.remote} at ${(s.t - t0) / 1000} ms is none of the peer's local figures of the last ${REPORT_AGE_US / 1000} ms`);
        }
      }
      for (const m of [cl, sl, cr, sr]) assert.ok(Math.abs(m - (1 - LOSS)) <= MEAN_TOLERANCE, `mean quality ${m.toFixed(3)} is not within ${MEAN_TOLERANCE} of ${1 - LOSS}`);
    });
  });
}
