import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionState, SendFlags } from '../../src/core/types.js';
import type { SimHost } from '../../src/testing/sim-network.js';
import { SeededRng } from '../../src/util/rng.js';
import { check, connectedPair, drain, payload, seedOr, withSeed, type Pair } from '../support/sim.js';

const LINK = { latencyUs: 20_000, jitterUs: 3_000, loss: 0.02, reorder: 0.02, reorderDelayUs: 10_000 };

/** Delivery checker for one direction: reliable exactly once and in order, unreliable never twice. */
class Receiver {
  nextReliable = 0;
  readonly unreliableSeen = new Set<number>();
  duplicates = 0;
  constructor(
    readonly host: SimHost,
    readonly handle: number,
  ) {}
  poll(): void {
    for (const m of drain(this.host, this.handle)) {
      const { lane, index } = check(m.data);
      if (lane === 0) {
        assert.equal(index, this.nextReliable, 'reliable message out of order, lost or duplicated');
        this.nextReliable++;
      } else {
        if (this.unreliableSeen.has(index)) this.duplicates++;
        this.unreliableSeen.add(index);
      }
    }
  }
}

/** Both sides send a reliable and an unreliable 100 B message every ms (NoNagle) for `ms` simulated ms. */
function traffic(p: Pair, ms: number): { atClient: Receiver; atServer: Receiver; sent: number } {
  const atServer = new Receiver(p.server, p.s);
  const atClient = new Receiver(p.client, p.c);
  let i = 0;
  const end = p.sim.now + ms * 1000;
  while (p.sim.now < end) {
    p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 100), SendFlags.Reliable | SendFlags.NoNagle);
    p.client.endpoint.send(p.sim.now, p.c, payload(1, i, 100), SendFlags.Unreliable | SendFlags.NoNagle, 1);
    p.server.endpoint.send(p.sim.now, p.s, payload(0, i, 100), SendFlags.Reliable | SendFlags.NoNagle);
    p.server.endpoint.send(p.sim.now, p.s, payload(1, i, 100), SendFlags.Unreliable | SendFlags.NoNagle, 1);
    i++;
    p.sim.runFor(1000);
    atServer.poll();
    atClient.poll();
  }
  // Let the reliable tail drain.
  p.sim.runUntil(() => {
    atServer.poll();
    atClient.poll();
    return atServer.nextReliable === i && atClient.nextReliable === i;
  }, 20_000_000);
  return { atClient, atServer, sent: i };
}

function setup(seed: number): Pair {
  const p = connectedPair(seed, LINK);
  for (const [h, c] of [[p.client, p.c], [p.server, p.s]] as const) assert.equal(h.endpoint.configureLanes(c, [0, 0], [1, 1]), 1);
  return p;
}

interface ReplayRun {
  recorded: number;
  replayed: number;
  summary: Record<string, number>;
  duplicates: number;
}

function replayRun(seed: number, replay: boolean): ReplayRun {
  const p = setup(seed);
  const rng = new SeededRng(seed ^ 0x77);
  let recorded = 0;
  let replayed = 0;
  const hostByAddr = new Map([
    [`${p.client.address.address}:${p.client.address.port}`, p.client],
    [`${p.server.address.address}:${p.server.address.port}`, p.server],
  ]);
  p.sim.intercept = (from, to, data, now) => {
    if (replay && (data[0] as number) & 0x80 && recorded < 20_000) {
      recorded++;
      const dest = hostByAddr.get(`${to.address}:${to.port}`) as SimHost;
      const copies = rng.int(1, 3);
      for (let k = 0; k < copies; k++) {
        // 1-3 copies within 0-5 s; one in ten again a minute later, long outside the replay window.
        const delay = rng.chance(0.1) ? 60_000_000 : rng.int(0, 5_000_000);
        p.sim.inject(from, dest, data, now + delay);
        replayed++;
      }
    }
    return data;
  };
  const t = traffic(p, 12_000);
  p.sim.runFor(70_000_000); // the late replays arrive; keepalives keep the connection up
  assert.equal(p.client.endpoint.state(p.c), ConnectionState.Connected);
  const cs = p.client.endpoint.status(p.sim.now, p.c);
  const ss = p.server.endpoint.status(p.sim.now, p.s);
  assert.ok(cs && ss);
  const summary = {
    clientRtt: cs.rttSmoothedUs,
    clientRttVar: cs.rttVarianceUs,
    serverRtt: ss.rttSmoothedUs,
    clientPacketsReceived: cs.packetsReceived,
    serverPacketsReceived: ss.packetsReceived,
    clientPacketsSent: cs.packetsSent,
    serverPacketsSent: ss.packetsSent,
    clientLost: cs.packetsLost,
    serverLost: ss.packetsLost,
    serverReliable: t.atServer.nextReliable,
    clientReliable: t.atClient.nextReliable,
    serverUnreliable: t.atServer.unreliableSeen.size,
    clientUnreliable: t.atClient.unreliableSeen.size,
  };
  return { recorded, replayed, summary, duplicates: t.atServer.duplicates + t.atClient.duplicates };
}

test('replay: 20,000 recorded data packets re-injected 1-3 times over 0-5 s and a minute later: no duplicate delivery, no change to acks, RTT or counters', () => {
  withSeed(seedOr(321), (seed) => {
    const base = replayRun(seed, false);
    const run = replayRun(seed, true);
    console.log(`# replay: recorded ${run.recorded} packets, injected ${run.replayed} copies; summary ${JSON.stringify(run.summary)}`);
    assert.ok(run.recorded >= 20_000, `${run.recorded} recorded`);
    assert.equal(run.duplicates, 0);
    assert.deepEqual(run.summary, base.summary, 'replays changed what the connection did');
  });
});

test('tamper: 1,000,000 altered packets (bit flips, truncations, extensions, tags cut to 12/8/4 bytes): none accepted, the connection keeps delivering', () => {
  withSeed(seedOr(322), (seed) => {
    const p = setup(seed);
    const rng = new SeededRng(seed ^ 0x99);
    const PACKETS = 10_000;
    const VARIANTS = 100;
    let tampered = 0;
    let genuine = 0;
    let variants = 0;
    p.sim.intercept = (from, to, data, now) => {
      if (to.port !== p.server.address.port || !((data[0] as number) & 0x80)) return data;
      genuine++;
      if (tampered >= PACKETS) return data;
      tampered++;
      // The altered copies arrive first, while the packet number is still fresh, so each one reaches decryption.
      for (let v = 0; v < VARIANTS; v++) {
        let d: Uint8Array;
        const kind = v % 10;
        if (kind < 7) {
          d = data.slice();
          const bit = rng.int(0, d.length * 8 - 1);
          d[bit >> 3] = (d[bit >> 3] as number) ^ (1 << (bit & 7));
        } else if (kind === 7) {
          d = data.slice(0, Math.max(1, data.length - rng.int(1, 32)));
        } else if (kind === 8) {
          d = new Uint8Array(data.length + rng.int(1, 32));
          d.set(data);
          for (let k = data.length; k < d.length; k++) d[k] = rng.nextU32() & 0xff;
        } else {
          d = data.slice(0, data.length - [4, 8, 12][v % 3]!); // tag cut to 12, 8 or 4 bytes
        }
        p.sim.inject(from, p.server, d, now);
        variants++;
      }
      p.sim.inject(from, p.server, data, now);
      return null;
    };
    const before = p.server.endpoint.stats.datagramsReceived;
    const packetsBefore = p.server.endpoint.status(p.sim.now, p.s)?.packetsReceived ?? 0;
    const t = traffic(p, 12_000);
    const ss = p.server.endpoint.status(p.sim.now, p.s);
    const es = p.server.endpoint.stats;
    assert.ok(ss);
    console.log(`# tamper: ${variants} variants of ${tampered} packets; server bad ${ss.badPackets}, duplicate ${ss.duplicatePackets}, unknown connection ${es.unknownConnection}, malformed ${es.datagramsMalformed}, refused handshake ${es.handshakeRefused}`);
    assert.equal(variants, PACKETS * VARIANTS);
    // Every datagram is either a genuine packet (accepted once) or a counted drop.
    assert.equal(es.datagramsReceived - before, genuine + variants);
    assert.equal(ss.packetsReceived - packetsBefore, genuine, 'a tampered packet was accepted');
    assert.equal(ss.badPackets + ss.duplicatePackets + es.unknownConnection + es.datagramsMalformed + es.handshakeRefused, variants);
    assert.equal(p.server.endpoint.state(p.s), ConnectionState.Connected);
    assert.equal(t.atServer.nextReliable, t.sent);
    assert.equal(t.atServer.duplicates, 0);
  });
});

test('key update: with KeyUpdatePackets = 1000, ~50,000 packets at 10% loss and 2% reordering update keys both ways >= 4 times with no gap', () => {
  withSeed(seedOr(323), (seed) => {
    const cfg = { KeyUpdatePackets: 1000 };
    const p = connectedPair(seed, { latencyUs: 20_000, loss: 0.1, reorder: 0.02, reorderDelayUs: 10_000 }, cfg);
    for (const [h, c] of [[p.client, p.c], [p.server, p.s]] as const) assert.equal(h.endpoint.configureLanes(c, [0, 0], [1, 1]), 1);
    const t = traffic(p, 20_000);
    const cs = p.client.endpoint.status(p.sim.now, p.c);
    const ss = p.server.endpoint.status(p.sim.now, p.s);
    assert.ok(cs && ss);
    console.log(`# key update: ${cs.packetsSent + ss.packetsSent} packets, key updates client ${cs.keyUpdates} server ${ss.keyUpdates}, bad packets ${cs.badPackets + ss.badPackets}`);
    assert.ok(cs.packetsSent + ss.packetsSent >= 45_000);
    assert.ok(cs.keyUpdates >= 4 && ss.keyUpdates >= 4);
    assert.equal(cs.badPackets + ss.badPackets, 0, 'a packet failed to open across a key update');
    assert.equal(t.atServer.nextReliable, t.sent);
    assert.equal(t.atClient.nextReliable, t.sent);
    assert.equal(t.atServer.duplicates + t.atClient.duplicates, 0);
  });
});
