import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SendFlags } from '../../src/core/types.js';
import { addressKey } from '../../src/relay/protocol.js';
import type { TraceEntry } from '../../src/testing/sim-network.js';
import { closeAll, mesh, play, pump } from '../support/relayed.js';
import { connectedPair, drain, payload, seedOr, withSeed } from '../support/sim.js';
import { World } from '../support/world.js';

function run(seed: number): TraceEntry[] {
  const p = connectedPair(seed, { latencyUs: 30_000, jitterUs: 10_000, loss: 0.1, duplicate: 0.05, reorder: 0.05, reorderDelayUs: 20_000 });
  p.sim.trace = [];
  let i = 0;
  p.sim.runUntil(() => {
    if (i < 500) p.client.endpoint.send(p.sim.now, p.c, payload(0, i++, 200), i % 3 === 0 ? SendFlags.Unreliable : SendFlags.Reliable);
    drain(p.server, p.s);
    return false;
  }, 5_000_000);
  return p.sim.trace;
}

test('determinism: the same seed gives the same packet trace; another seed does not', () => {
  const seed = seedOr(71);
  const a = run(seed);
  const b = run(seed);
  const c = run(seed + 1);
  assert.ok(a.length > 100, `trace has ${a.length} entries`);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

/** A running hash and count of trace entries, taken from `sim.trace` as they come (10 minutes of them do not fit in memory). */
class TraceDigest {
  readonly #hash = createHash('sha256');
  length = 0;

  take(trace: TraceEntry[]): void {
    for (const e of trace) this.#hash.update(`${e.atUs} ${e.from} ${e.to} ${e.length} ${e.checksum}\n`);
    this.length += trace.length;
    trace.length = 0;
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

interface RelayedRun {
  readonly traceLength: number;
  readonly traceHash: string;
  readonly delivered: number;
  readonly deliveredHash: string;
  readonly realMs: number;
}

const RELAYED_MINUTES = 10;
/** The frame of this long run: 33 ms (30 frames a second) keeps 10 simulated minutes within seconds of real time. */
const RELAYED_FRAME_US = 33_000;

/**
 * Three NetworkManagers in a mesh through two relays, 10 % loss on every link, each peer sending a reliable and
 * an unreliable message to each other peer every frame for 10 simulated minutes; halfway, the primary relay of
 * the first peer dies. Returns the trace and the delivered messages (length and hash of each).
 */
function relayedRun(seed: number): RelayedRun {
  const started = performance.now();
  const world = new World(seed, { latencyUs: 10_000, jitterUs: 2_000, loss: 0.1 });
  const trace = new TraceDigest();
  const log: TraceEntry[] = [];
  world.sim.trace = log;
  const r1 = world.relay();
  const r2 = world.relay();
  const nms = mesh(world, [r1.address, r2.address], 3, () => ({}), RELAYED_FRAME_US);
  const ids = nms.map((nm) => nm.getPeerId());
  // The lobby: a new route goes to every other member (GameSDK: lobby metadata, then UpdatePeer).
  for (const a of nms) a.on('routeUpdate', (r) => nms.forEach((b) => b !== a && b.updatePeer(a.getPeerId(), r)));
  // Handshakes of the setup (with 10 % loss a first attempt may be replaced); none may follow.
  const handshakes = (): (number | undefined)[] => nms.flatMap((a) => nms.filter((b) => b !== a).map((b) => a.peerStatus(b.getPeerId())?.handshakes));
  const setupHandshakes = handshakes();
  const delivered = createHash('sha256');
  let count = 0;
  // Reliable messages per (sender, receiver): the sequence numbers received, which must be 0, 1, 2, ...
  const nextReliable = new Map<string, number>();
  nms.forEach((nm, to) =>
    nm.on('message', (peer, ch, d) => {
      const from = ids.indexOf(peer);
      const seq = new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0);
      if (ch === 1) {
        const k = `${from}>${to}`;
        const want = nextReliable.get(k) ?? 0;
        assert.equal(seq, want, `seed ${seed}: reliable ${k} got #${seq}, expected #${want}`);
        nextReliable.set(k, want + 1);
      }
      count++;
      delivered.update(`${world.sim.now} ${from} ${to} ${ch} ${Buffer.from(d).toString('hex')}\n`);
    }),
  );
  let seq = 0;
  const sent = { reliable: 0 };
  const send = (): void => {
    const m = new Uint8Array(24);
    new DataView(m.buffer).setUint32(0, seq++);
    for (const a of nms) {
      for (const b of nms) {
        if (a === b) continue;
        assert.equal(a.sendMessage(b.getPeerId(), 1, m), 0);
        assert.equal(a.sendMessage(b.getPeerId(), 0, m), 0);
        sent.reliable++;
      }
    }
    trace.take(log);
  };
  const half = (RELAYED_MINUTES * 60_000_000) / 2;
  play(world, nms, half, send, RELAYED_FRAME_US);
  const victim = nms[0]?.relay.primary;
  assert.ok(victim, 'the first peer has a primary relay');
  world.kill(addressKey(victim));
  play(world, nms, half, send, RELAYED_FRAME_US);
  // Then no more sends: every reliable message arrives.
  const arrived = (): number => [...nextReliable.values()].reduce((x, y) => x + y, 0);
  pump(world, nms, () => arrived() === sent.reliable, 30_000_000, 'every reliable message', () => trace.take(log), RELAYED_FRAME_US);
  trace.take(log);
  const dead = addressKey(victim);
  assert.ok(nms.every((nm) => nm.relay.primary !== null && addressKey(nm.relay.primary) !== dead), 'every peer failed over to the other relay');
  assert.deepEqual(handshakes(), setupHandshakes, `seed ${seed}: no re-handshake after the setup`);
  closeAll(world, nms);
  return { traceLength: trace.length, traceHash: trace.digest(), delivered: count, deliveredHash: delivered.digest('hex'), realMs: Math.round(performance.now() - started) };
}

test('determinism, relayed: three NetworkManagers through two relays, 10 % loss, a relay failover, 10 simulated minutes: the same seed gives the same trace and deliveries; another seed does not', () => {
  withSeed(seedOr(72), (seed) => {
    const a = relayedRun(seed);
    const b = relayedRun(seed);
    const c = relayedRun(seed + 1);
    for (const [name, r] of [['first', a], ['again', b], ['next seed', c]] as const) console.log(`# relayed determinism (${name}): ${RELAYED_MINUTES} simulated minutes, ${RELAYED_FRAME_US / 1000} ms frames, ${r.traceLength} datagrams, ${r.delivered} messages delivered, ${r.realMs} ms real time`);
    assert.ok(a.traceLength > 100_000, `trace has ${a.traceLength} entries`);
    const outcome = (r: RelayedRun): Omit<RelayedRun, 'realMs'> => ({ traceLength: r.traceLength, traceHash: r.traceHash, delivered: r.delivered, deliveredHash: r.deliveredHash });
    assert.deepEqual(outcome(b), outcome(a), 'same seed, same trace and deliveries');
    assert.notEqual(c.traceHash, a.traceHash, 'another seed, another trace');
  });
});
