// Acknowledgement of unreliable-only traffic in virtual time: a game's 30 Hz positions carry each other's
// ACKs (no ACK-only packets), the sender's probe timers wait for them (no spurious probe), and the RTT
// estimate subtracts the time the ACK was held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendFlags } from '../../src/core/types.js';
import type { ConnectionStatus } from '../../src/core/stats.js';
import { connectedPair, drain, payload, seedOr, withSeed, type Pair } from '../support/sim.js';

const HZ = 30;
const PERIOD_US = Math.round(1e6 / HZ);
const LATENCY_US = 10_000;
const JITTER_US = 2000;
const WARM_US = 2_000_000;
const RUN_US = 20_000_000;

/** Sends a 100 B unreliable message every 1/30 s from `from` (client or server side of `p`), starting at `t0`. */
function positions(p: Pair, side: 'client' | 'server', t0: number, endUs: number): void {
  const host = side === 'client' ? p.client : p.server;
  const handle = side === 'client' ? p.c : p.s;
  for (let t = t0, i = 0; t < endUs; t += PERIOD_US, i++) {
    const index = i;
    p.sim.scheduler.at(t, () => void host.endpoint.send(p.sim.now, handle, payload(0, index, 100), SendFlags.Unreliable | SendFlags.NoNagle, 0), false);
  }
}

interface Counts {
  packets: number;
  messages: number;
  lost: number;
}
const counts = (s: ConnectionStatus): Counts => ({ packets: s.packetsSent, messages: s.messagesSent, lost: s.packetsLost });

/** What one side sent during the measured window: datagrams, messages, and those without a message (ACK-only, probes). */
function window(before: Counts, after: ConnectionStatus): { packets: number; messages: number; extra: number; lost: number } {
  const a = counts(after);
  const packets = a.packets - before.packets;
  const messages = a.messages - before.messages;
  return { packets, messages, extra: packets - messages, lost: a.lost - before.lost };
}

test('30 Hz unreliable-only traffic each way: the positions carry the ACKs (ACK-only packets under 3 %), no probe fires, and the RTT estimate is the path\'s', () => {
  withSeed(seedOr(171), (seed) => {
    const p = connectedPair(seed, { latencyUs: LATENCY_US, jitterUs: JITTER_US });
    const t0 = p.sim.now;
    const end = t0 + WARM_US + RUN_US;
    // The server's ticks fall 17 ms after the client's: a position arrives 7 ms before the server's next one.
    positions(p, 'client', t0, end);
    positions(p, 'server', t0 + 17_000, end);
    p.sim.runUntil(() => (drain(p.server, p.s), drain(p.client, p.c), false), WARM_US);
    const c0 = counts(p.client.endpoint.status(p.sim.now, p.c)!);
    const s0 = counts(p.server.endpoint.status(p.sim.now, p.s)!);
    let received = 0;
    p.sim.runUntil(() => ((received += drain(p.server, p.s).length + drain(p.client, p.c).length), false), RUN_US);
    const cs = p.client.endpoint.status(p.sim.now, p.c)!;
    const ss = p.server.endpoint.status(p.sim.now, p.s)!;
    const c = window(c0, cs);
    const s = window(s0, ss);
    console.log(`# seed ${seed}: client sent ${c.packets} packets for ${c.messages} messages, server ${s.packets} for ${s.messages}; srtt ${cs.rttSmoothedUs} / ${ss.rttSmoothedUs} us (path ${2 * LATENCY_US} us +- ${2 * JITTER_US})`);
    const expected = (RUN_US / PERIOD_US) * 0.99;
    assert.ok(c.messages >= expected && s.messages >= expected, `both sides sent their positions (${c.messages}, ${s.messages})`);
    assert.ok(received >= 2 * expected, `the positions arrived (${received})`);
    // Every datagram without a message is an ACK-only packet, a probe or a keepalive.
    assert.ok(c.extra <= 0.03 * c.packets, `client: ${c.extra} of ${c.packets} packets carried no message`);
    assert.ok(s.extra <= 0.03 * s.packets, `server: ${s.extra} of ${s.packets} packets carried no message`);
    assert.equal(c.lost + s.lost, 0, 'no packet declared lost on a lossless path');
    for (const st of [cs, ss]) assert.ok(Math.abs(st.rttSmoothedUs - 2 * LATENCY_US) <= 2 * JITTER_US, `smoothed RTT ${st.rttSmoothedUs} us on a ${2 * LATENCY_US} us path`);
  });
});

test('30 Hz unreliable-only traffic one way: acked every second packet, no probe fires, and the RTT estimate is the path\'s', () => {
  withSeed(seedOr(172), (seed) => {
    const p = connectedPair(seed, { latencyUs: LATENCY_US, jitterUs: JITTER_US });
    const t0 = p.sim.now;
    positions(p, 'client', t0, t0 + WARM_US + RUN_US);
    p.sim.runUntil(() => (drain(p.server, p.s), false), WARM_US);
    const c0 = counts(p.client.endpoint.status(p.sim.now, p.c)!);
    const s0 = counts(p.server.endpoint.status(p.sim.now, p.s)!);
    p.sim.runUntil(() => (drain(p.server, p.s), false), RUN_US);
    const cs = p.client.endpoint.status(p.sim.now, p.c)!;
    const c = window(c0, cs);
    const s = window(s0, p.server.endpoint.status(p.sim.now, p.s)!);
    console.log(`# seed ${seed}: client sent ${c.packets} packets for ${c.messages} messages, server ${s.packets} ACKs; srtt ${cs.rttSmoothedUs} us`);
    assert.ok(c.messages >= (RUN_US / PERIOD_US) * 0.99, `the client sent its positions (${c.messages})`);
    // No probe: the client's packets are its messages, bar the odd keepalive.
    assert.ok(c.extra <= 0.01 * c.packets, `client: ${c.extra} of ${c.packets} packets carried no message`);
    // One ACK for every two positions (plus a few after reordering by the jitter).
    assert.ok(s.packets <= 0.6 * c.packets, `server: ${s.packets} ACKs for ${c.packets} packets`);
    assert.equal(c.lost, 0, 'no packet declared lost on a lossless path');
    assert.ok(Math.abs(cs.rttSmoothedUs - 2 * LATENCY_US) <= 2 * JITTER_US, `smoothed RTT ${cs.rttSmoothedUs} us on a ${2 * LATENCY_US} us path`);
  });
});
