// A simulated world for the facades: relays and peers as processes on their own virtual IPs inside one
// SimNetwork, all in virtual time (no sockets, no sleeps). A failing test prints its seed (withSeed).
import { addressKey } from '../../src/relay/protocol.js';
import { RelayServer, type RelayServerOptions } from '../../src/io/relay-server.js';
import type { Runtime } from '../../src/io/runtime.js';
import { SimNetwork, type LinkConditions } from '../../src/testing/sim-network.js';

/** Frames per second of the game loop `drive` runs (GameSDK: flush and runCallbacks each frame). */
export const FRAME_US = 10_000;

/** Something with a game loop: `frame()` runs its callbacks and flushes. */
export interface Framed {
  frame(): void;
}

export class World {
  readonly sim: SimNetwork;
  readonly #relays = new Map<string, RelayServer>();
  #nextPeer = 1;
  #nextRelay = 1;

  constructor(seed: number, link: Partial<LinkConditions> = {}) {
    this.sim = new SimNetwork(seed, link);
  }

  get seed(): number {
    return this.sim.seed;
  }

  /** A runtime on a new virtual IP: 10.0.1.N for peers. */
  peerRuntime(): Runtime {
    return this.sim.runtime(`10.0.1.${this.#nextPeer++}`);
  }

  /** A relay process on its own IP (10.0.0.N), port 27100. Returns it and its `host:port`. */
  relay(options: RelayServerOptions = { open: true }, ip = `10.0.0.${this.#nextRelay++}`): { server: RelayServer; address: string; at: string } {
    const server = RelayServer.open({ open: true, ...options, runtime: this.sim.runtime(ip), port: options.port ?? 27100 });
    const at = addressKey(server.local);
    this.#relays.set(at, server);
    return { server, address: server.address, at };
  }

  /** Kills a relay process (named `host:port`, with or without its `#key`): its socket goes, nothing is sent (no close, no drain). */
  kill(address: string): void {
    const at = address.includes('#') ? address.slice(0, address.lastIndexOf('#')) : address;
    this.#relays.get(at)?.close();
    this.#relays.delete(at);
  }

  /**
   * Runs the simulation with every `framed` running a frame each FRAME_US until `done()` holds (checked
   * after each frame and event). Throws, naming `what` and the seed, after `maxUs` of virtual time.
   * `done()` may be called again once it holds: a `done()` that reads messages must count them, not
   * consume them and expect them again.
   */
  drive(framed: readonly Framed[], done: () => boolean, maxUs: number, what: string, each?: () => void): void {
    const end = this.sim.now + maxUs;
    for (let i = 0; i < 10_000_000 && this.sim.now < end; i++) {
      for (const f of framed) f.frame();
      each?.();
      if (done()) return;
      if (this.sim.runUntil(done, FRAME_US)) {
        for (const f of framed) f.frame();
        if (done()) return;
      }
    }
    throw new Error(`seed ${this.seed}: no ${what} after ${maxUs / 1e6} s of virtual time`);
  }

  /** Runs `us` of virtual time with frames. */
  run(framed: readonly Framed[], us: number, each?: () => void): void {
    const end = this.sim.now + us;
    while (this.sim.now < end) {
      for (const f of framed) f.frame();
      each?.();
      this.sim.runFor(Math.min(FRAME_US, end - this.sim.now));
    }
  }

  /** Closes every relay still running. */
  close(): void {
    for (const r of this.#relays.values()) r.close();
    this.#relays.clear();
  }
}
