// NetworkingSockets instances in a World, in virtual time: the harness of test/sim/sockets-api.test.ts and
// test/sim/sockets-limits.test.ts. Each instance runs on a virtual IP of its own (or one it is given), and
// `until` / `run` drive every instance's game loop (runCallbacks each frame). inSim reports the seed.
import type { TestContext } from 'node:test';
import { NetworkingSockets, type ConfigOptions, type NetworkingSocketsOptions } from '../../src/index.js';
import type { Runtime } from '../../src/io/runtime.js';
import type { LinkConditions } from '../../src/testing/sim-network.js';
import { bothConnected, startClient, startServer, type Client, type Server } from '../integration/support.js';
import { seedOr, withSeed } from './sim.js';
import { World, type Framed } from './world.js';

/** Every link: a LAN, 1 ms one way with ±0.2 ms of jitter (so datagrams also overtake each other). */
export const LINK: Partial<LinkConditions> = { latencyUs: 1_000, jitterUs: 200 };
export const MS = 1000;

/** NetworkingSockets instances in one World; `until` and `run` are game-loop frames (every instance's callbacks) in virtual time. */
export class SocketsWorld {
  readonly world: World;
  readonly #instances: NetworkingSockets[] = [];
  readonly #frames: Framed[] = [];

  constructor(seed: number) {
    this.world = new World(seed, LINK);
  }

  /** An instance on virtual IP `ip` (IPv4 or IPv6), or on a new one. */
  instance(options: Omit<NetworkingSocketsOptions, 'runtime'> = {}, ip?: string): NetworkingSockets {
    return this.#track(new NetworkingSockets({ ...options, runtime: this.#runtime(ip) }));
  }

  /** A server (accepting every connection) on virtual IP `ip`, or on a new one. */
  server(options: ConfigOptions = {}, ip?: string): Server {
    const s = startServer('0.0.0.0', options, { runtime: this.#runtime(ip) });
    this.#track(s.sockets);
    return s;
  }

  /** A client on a new virtual IP with one connection to `server`. */
  client(server: Server, options: ConfigOptions = {}): Client {
    const c = startClient(server.address, server.port, options, { runtime: this.world.peerRuntime() });
    this.#track(c.sockets);
    return c;
  }

  /** A server and a client, connected on both sides. */
  pair(serverOptions: ConfigOptions = {}, clientOptions: ConfigOptions = {}): { server: Server; client: Client; sconn: number } {
    const server = this.server(serverOptions);
    const client = this.client(server, clientOptions);
    this.until(() => bothConnected(server, client), 10_000, 'both sides connected');
    return { server, client, sconn: server.conns[0] as number };
  }

  /** Frames until `done()` holds; fails (naming the seed) after `ms` of virtual time. */
  until(done: () => boolean, ms: number, what: string, each?: () => void): void {
    this.world.drive(this.#frames, done, ms * MS, what, each);
    // `done()` is checked after every event, so it can hold in the middle of an instant: a datagram handled
    // (a state changed) and its service pass (which queues the status callback) still due at the same
    // time. A game loop's frame is a timer and never runs there: finish the instant, then run a frame.
    this.world.sim.runFor(0);
    for (const f of this.#frames) f.frame();
  }

  /** `ms` of virtual time with frames. */
  run(ms: number, each?: () => void): void {
    this.world.run(this.#frames, ms * MS, each);
  }

  close(): void {
    for (const s of this.#instances) s.close();
    this.world.close();
  }

  #runtime(ip: string | undefined): Runtime {
    return ip === undefined ? this.world.peerRuntime() : this.world.sim.runtime(ip);
  }

  #track(s: NetworkingSockets): NetworkingSockets {
    this.#instances.push(s);
    this.#frames.push({ frame: () => s.runCallbacks() });
    return s;
  }
}

/** Runs `body` in a new SocketsWorld seeded from NETLANE_SEED or `defaultSeed`, reports the seed and the virtual time covered, and closes everything. */
export function inSim(t: TestContext, defaultSeed: number, body: (w: SocketsWorld) => void): void {
  const seed = seedOr(defaultSeed);
  const w = new SocketsWorld(seed);
  try {
    withSeed(seed, () => body(w));
  } finally {
    t.diagnostic(`seed ${seed} (replay: NETLANE_SEED=${seed}): ${w.world.sim.now / 1e6} s of virtual time`);
    w.close();
  }
}
