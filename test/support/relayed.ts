// NetworkManagers in a World (test/support/world.ts): the GameSDK game loop in virtual time, with a frame
// interval of its own, and a full mesh of managers opened to each other through the world's relays.
import assert from 'node:assert/strict';
import { NetworkManager, type NetworkManagerOptions } from '../../src/api/network-manager.js';
import type { LinkConditions } from '../../src/testing/sim-network.js';
import { seedOr, withSeed } from './sim.js';
import { FRAME_US, World } from './world.js';

/**
 * The GameSDK frame of every manager, every `frameUs` of virtual time: `runCallbacks`, then `each` (what the
 * game sends this frame), then `flush`; until `done()` holds (checked after each frame and each event).
 * Throws, naming `what` and the seed, after `maxUs` of virtual time.
 */
export function pump(world: World, nms: readonly NetworkManager[], done: () => boolean, maxUs: number, what: string, each?: () => void, frameUs = FRAME_US): void {
  const sim = world.sim;
  const end = sim.now + maxUs;
  for (;;) {
    for (const nm of nms) nm.runCallbacks();
    each?.();
    for (const nm of nms) nm.flush();
    if (done()) return;
    if (sim.now >= end) throw new Error(`seed ${world.seed}: no ${what} after ${maxUs / 1e6} s of virtual time`);
    sim.runUntil(done, Math.min(frameUs, end - sim.now));
  }
}

/** Runs the game loop of `nms` for `us` of virtual time (see {@link pump}). */
export function play(world: World, nms: readonly NetworkManager[], us: number, each?: () => void, frameUs = FRAME_US): void {
  const end = world.sim.now + us;
  pump(world, nms, () => world.sim.now >= end, us + frameUs, `${us / 1e6} s of play`, each, frameUs);
}

/** Whether every manager has every other one connected. */
export function allConnected(nms: readonly NetworkManager[]): boolean {
  return nms.every((a) => nms.every((b) => a === b || a.peerStatus(b.getPeerId())?.connected === true));
}

/**
 * `n` managers, each on its own virtual IP (`world.peerRuntime()`), using `relays`, opened to each other
 * (full mesh) with channel 0 unreliable and channel 1 reliable, all connected. `extra(i)` adds options.
 */
export function mesh(world: World, relays: readonly string[], n: number, extra: (i: number) => Partial<NetworkManagerOptions> = () => ({}), frameUs = FRAME_US): NetworkManager[] {
  const nms = Array.from({ length: n }, (_, i) => new NetworkManager({ relays, ...extra(i), runtime: world.peerRuntime() }));
  pump(world, nms, () => nms.every((nm) => nm.route !== null), 5_000_000, 'routes', undefined, frameUs);
  openAll(nms);
  pump(world, nms, () => allConnected(nms), 10_000_000, 'every pair connected', undefined, frameUs);
  return nms;
}

/** Opens every manager to every other one by its route, with channel 0 unreliable and channel 1 reliable. */
export function openAll(nms: readonly NetworkManager[]): void {
  for (const a of nms) {
    for (const b of nms) {
      if (a === b) continue;
      assert.equal(a.openPeer(b.getPeerId(), b.route as string), 0);
      a.openChannel(b.getPeerId(), 0, false);
      a.openChannel(b.getPeerId(), 1, true);
    }
  }
}

/** Every `routeUpdate` of the managers, as [index of the manager, route]. */
export function routeLog(nms: readonly NetworkManager[]): [number, string][] {
  const log: [number, string][] = [];
  nms.forEach((nm, i) => nm.on('routeUpdate', (r) => log.push([i, r])));
  return log;
}

/** A relay of a World: its server and its `host:port`. */
export type Relay = ReturnType<World['relay']>;

/** What a {@link scenario} runs in. */
export interface Scenario {
  readonly world: World;
  readonly relays: readonly Relay[];
  readonly nms: readonly NetworkManager[];
}

/**
 * Runs `body` with the seed `defaultSeed` (or NETLANE_SEED; a failure names it) in a World on `link` with
 * `relays` relays and `peers` managers in a {@link mesh}, and closes everything after. `setup` runs before the
 * managers exist (an intercept that must see everything) and may return options for each of them.
 */
export function scenario(
  defaultSeed: number,
  o: { readonly link: Partial<LinkConditions>; readonly relays: number; readonly peers: number; readonly setup?: (world: World, relays: readonly Relay[]) => ((i: number) => Partial<NetworkManagerOptions>) | void },
  body: (s: Scenario) => void,
): void {
  withSeed(seedOr(defaultSeed), (seed) => {
    const world = new World(seed, o.link);
    const relays = Array.from({ length: o.relays }, () => world.relay());
    const extra = o.setup?.(world, relays) ?? undefined;
    const nms = mesh(
      world,
      relays.map((r) => r.address),
      o.peers,
      extra,
    );
    try {
      body({ world, relays, nms });
    } finally {
      closeAll(world, nms);
    }
  });
}

/** Closes the managers and the world's relays. */
export function closeAll(world: World, nms: readonly NetworkManager[]): void {
  for (const nm of nms) nm.close();
  world.close();
}
