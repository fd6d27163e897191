// Shared helpers for simulated tests: a connected pair of endpoints in a SimNetwork, and seed reporting.
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, SendFlags } from '../../src/core/types.js';
import type { ReceivedMessage } from '../../src/core/types.js';
import { SimNetwork, type LinkConditions, type SimHost } from '../../src/testing/sim-network.js';
import { SeededRng } from '../../src/util/rng.js';
import { seededHandshake } from '../../src/testing/crypto.js';
import type { SecureHandshakeOptions } from '../../src/crypto/handshake.js';

export interface Pair {
  sim: SimNetwork;
  client: SimHost;
  server: SimHost;
  /** Client-side handle. */
  c: number;
  /** Server-side handle. */
  s: number;
}

export const CLIENT_ADDR = { address: '10.0.0.1', port: 40000 };
export const SERVER_ADDR = { address: '10.0.0.2', port: 27015 };

/** Options for the two sides' SecureHandshake (keys, certificates, authorities, versions). */
export interface PairHandshakes {
  client?: Partial<SecureHandshakeOptions>;
  server?: Partial<SecureHandshakeOptions>;
}

/**
 * Builds client and server endpoints on `link` (both directions), connects, and accepts.
 * Fails if the handshake does not complete within 30 simulated seconds.
 */
export function connectedPair(seed: number, link: Partial<LinkConditions>, config: Partial<Record<string, number>> = {}, serverConfig?: Partial<Record<string, number>>, hs: PairHandshakes = {}, writableNotices = false): Pair {
  const sim = new SimNetwork(seed, link);
  const rng = new SeededRng(seed ^ 0x5bd1e995);
  const server = sim.addHost(SERVER_ADDR, new Endpoint({ rng: rng.fork(), listen: true, config: serverConfig ?? config, handshake: seededHandshake(seed + 1, hs.server) }));
  const client = sim.addHost(CLIENT_ADDR, new Endpoint({ rng: rng.fork(), config, handshake: seededHandshake(seed + 2, hs.client), writableNotices }));
  let s = 0;
  server.onEvent = (e) => {
    if (e.type === 'connectionStatusChanged' && e.state === ConnectionState.Connecting) {
      s = e.connection;
      server.endpoint.accept(sim.now, e.connection);
    }
  };
  const c = client.endpoint.connect(sim.now, SERVER_ADDR);
  const ok = sim.runUntil(() => client.endpoint.state(c) === ConnectionState.Connected && s !== 0 && server.endpoint.state(s) === ConnectionState.Connected, 30_000_000);
  if (!ok) throw new Error(`seed ${seed}: handshake did not complete (client state ${client.endpoint.state(c)})`);
  server.onEvent = null;
  return { sim, client, server, c, s };
}

/** Runs `fn` with `seed`; on failure the error message names the seed so it can be replayed. */
export function withSeed<T>(seed: number, fn: (seed: number) => T): T {
  try {
    return fn(seed);
  } catch (e) {
    if (e instanceof Error) e.message = `[seed ${seed}] ${e.message}`;
    console.log(`# failing seed: ${seed} (replay: NETLANE_SEED=${seed})`);
    throw e;
  }
}

/** Seed from NETLANE_SEED, or the given default. */
export function seedOr(def: number): number {
  const v = process.env['NETLANE_SEED'];
  return v ? Number(v) : def;
}

/** Drains every received message of a handle. */
export function drain(host: SimHost, handle: number, out: ReceivedMessage[] = []): ReceivedMessage[] {
  while (host.endpoint.receive(handle, out, 1024) > 0) {
    /* keep going */
  }
  return out;
}

/** A message payload that encodes (lane, index) and a length, so corruption and misordering are visible. */
export function payload(lane: number, index: number, size: number): Uint8Array {
  const b = new Uint8Array(Math.max(size, 8));
  const v = new DataView(b.buffer);
  v.setUint32(0, lane);
  v.setUint32(4, index);
  for (let i = 8; i < b.length; i++) b[i] = (index * 31 + i * 7 + lane) & 0xff;
  return b;
}

/**
 * Schedules `count` 100 B unreliable positions at 60 Hz on lane 0 of the client, from `t0` (µs), each
 * recording its send time in `sentAt[i]` (the head-of-line tests measure their age at the receiver).
 */
export function schedulePositions(p: Pair, t0: number, count: number, sentAt: number[]): void {
  for (let i = 0; i < count; i++) {
    p.sim.scheduler.at(
      t0 + Math.round((i * 1e6) / 60),
      () => {
        sentAt[i] = p.sim.now;
        p.client.endpoint.send(p.sim.now, p.c, payload(0, i, 100), SendFlags.Unreliable | SendFlags.NoNagle, 0);
        p.sim.flush(); // a command from outside the endpoints: what it queued goes now, not at the client's next event
      },
      false,
    );
  }
}

/** Checks a payload made by {@link payload}; returns its (lane, index) or throws. */
export function check(b: Uint8Array): { lane: number; index: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const lane = v.getUint32(0);
  const index = v.getUint32(4);
  for (let i = 8; i < b.length; i++) {
    if (b[i] !== ((index * 31 + i * 7 + lane) & 0xff)) throw new Error(`payload corrupt at byte ${i} (lane ${lane}, index ${index})`);
  }
  return { lane, index };
}
