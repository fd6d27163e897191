import { networkInterfaces } from 'node:os';
import { defaultCryptoProvider } from '../crypto/sodium-provider.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { Rng } from '../util/rng.js';
import type { Clock } from './clock.js';
import type { DatagramTransport } from './driver.js';
import { CryptoRng, randomSeed } from './random.js';
import { realScheduler, realTime, type Scheduler } from './scheduler.js';
import { UdpSocket, type UdpSocketOptions } from './udp.js';
import { installPlatformRuntime } from './platform.js';

/**
 * Everything a facade takes from the world: time and timers, sockets, randomness and the wall clock.
 * {@link udpRuntime} is the real one; `SimNetwork.runtime()` (netlane/testing) gives virtual time and
 * simulated sockets, so that a whole facade, relays included, runs deterministically in a simulation.
 */
export interface Runtime {
  readonly scheduler: Scheduler;
  /** Opens and binds a datagram socket (port 0 picks a free one). Throws NetlaneError ERR_NETLANE_SOCKET. */
  openUdp(options: UdpSocketOptions): DatagramTransport;
  /** Randomness for values an attacker must not guess (connection ids). */
  rng(): Rng;
  /** A seed for fake network conditions. */
  randomSeed(): number;
  /** Wall clock, unix seconds (tickets, certificates, directory registrations). */
  unixSeconds(): number;
  /**
   * The crypto provider a facade uses when none is given. The real runtime's is {@link defaultCryptoProvider}:
   * sodium-native's ChaCha20-Poly1305 with node:crypto for the rest when the optional package loads,
   * node:crypto alone otherwise or with `NETLANE_CRYPTO=node` (its `name` says which, and why).
   */
  provider(): CryptoProvider;
  /**
   * This host's IP addresses, for direct-path candidates (docs/P2P.md) of a socket bound to a wildcard
   * address. Absent: the socket's own address is the only one.
   */
  localAddresses?(): readonly string[];
  /** Its sockets reach relays only (a browser's gateway transports): no connection by IP address. */
  readonly relaysOnly?: boolean;
}

/** The real runtime: node:dgram sockets, the process clock, `setTimeout`, the OS's CSPRNG, sodium-native when it loads. */
export const udpRuntime: Runtime = {
  scheduler: realScheduler,
  openUdp: (options) => UdpSocket.open(options),
  rng: () => new CryptoRng(),
  randomSeed,
  unixSeconds: () => Math.floor(Date.now() / 1000),
  provider: () => defaultCryptoProvider({ sodium: envVar('NETLANE_CRYPTO') !== 'node' }),
  localAddresses: interfaceAddresses,
};

/** The host's interface addresses that are not internal (loopback), IPv4 and IPv6, as node:os reports them. */
function interfaceAddresses(): string[] {
  const out: string[] = [];
  try {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (!a.internal && !a.address.startsWith('fe80:')) out.push(a.address);
    }
  } catch {
    // a runtime that may not list interfaces (Deno without --allow-sys): no host candidates
  }
  return out;
}

/** An environment variable, or undefined when it is unset or the runtime may not read it (Deno without `--allow-env`). */
function envVar(name: string): string | undefined {
  try {
    return process.env[name];
  } catch {
    return undefined;
  }
}

/** The real runtime with another clock (a facade's `clock` option). */
export function runtimeWithClock(clock: Clock): Runtime {
  return { ...udpRuntime, scheduler: realTime(clock) };
}

// Node's runtime is the default of the facades that import no socket module (NetworkManager, NetworkingMessages).
installPlatformRuntime((clock) => (clock ? runtimeWithClock(clock) : udpRuntime));
