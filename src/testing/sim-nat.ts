import type { SocketAddress } from '../core/types.js';
import { NetlaneError } from '../util/errors.js';

/**
 * How a NAT picks the public port of an outbound flow (RFC 4787 section 4.1).
 * - `endpointIndependent`: one public port per inside ip:port, reused for every destination.
 * - `endpointDependent`: a new public port per (inside ip:port, destination ip:port): a "symmetric" NAT.
 */
export type NatMapping = 'endpointIndependent' | 'endpointDependent';

/**
 * Which inbound datagrams a NAT lets through a live mapping (RFC 4787 section 5).
 * - `endpointIndependent`: from anyone.
 * - `addressDependent`: only from IPs the inside endpoint has sent to through this mapping.
 * - `addressAndPortDependent`: only from the ip:port pairs it has sent to through this mapping.
 */
export type NatFiltering = 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent';

/** Options of {@link SimNetwork.addNat}. */
export interface SimNatOptions {
  /** The NAT's public IP (e.g. `'203.0.113.1'`): inside hosts appear from it, and datagrams to it go through it. */
  publicAddress: string;
  /** The private IPs behind the NAT (e.g. `['10.0.1.2']`). */
  inside: readonly string[];
  mapping: NatMapping;
  filtering: NatFiltering;
  /** How long a mapping lives after the last outbound datagram through it, in microseconds (default 120 s). */
  mappingLifetimeUs?: number;
  /** The first public port handed out by sequential allocation (default 1024). */
  portStart?: number;
}

/** Counters of a {@link SimNat}, as of the moment they are read. */
export interface SimNatStats {
  /** Outbound datagrams whose source was rewritten to the public address. */
  readonly outboundTranslated: number;
  /** Outbound datagrams dropped because no public port was free. */
  readonly outboundDropped: number;
  /** Inbound datagrams translated back to an inside endpoint. */
  readonly inboundTranslated: number;
  /**
   * Inbound datagrams dropped: to a public port with no live mapping, refused by the filtering, or sent
   * from outside straight to one of the private IPs behind the NAT (not routable from outside).
   */
  readonly inboundDropped: number;
  /** Datagrams from inside to the NAT's own public address, dropped (no hairpinning). */
  readonly hairpinDropped: number;
  /** Live mappings now. */
  readonly mappings: number;
}

/** One live mapping of a {@link SimNat}. */
export interface SimNatMappingInfo {
  /** The inside endpoint. */
  readonly inside: SocketAddress;
  /** Its public address: the NAT's public IP and the mapped port. */
  readonly external: SocketAddress;
  /** The destination of an endpoint-dependent mapping (null for an endpoint-independent one). */
  readonly remote: SocketAddress | null;
  /** Virtual time at which it expires unless outbound traffic refreshes it, microseconds. */
  readonly expiresAtUs: number;
}

interface Mapping {
  readonly key: string;
  readonly inside: SocketAddress;
  readonly port: number;
  readonly remote: SocketAddress | null;
  expiresAtUs: number;
  /** IPs sent to through this mapping (address-dependent filtering). */
  readonly sentIps: Set<string>;
  /** ip:port pairs sent to through this mapping (address-and-port-dependent filtering). */
  readonly sentEndpoints: Set<string>;
}

const DEFAULT_LIFETIME_US = 120_000_000;
const DEFAULT_PORT_START = 1024;

function keyOf(a: SocketAddress): string {
  return `${a.address}:${a.port}`;
}

/**
 * A NAT box in a {@link SimNetwork} (from {@link SimNetwork.addNat}), in RFC 4787 terms. It sits right
 * next to its inside hosts: a datagram from an inside IP to any address not inside the same NAT leaves
 * with its source rewritten to `publicAddress:mappedPort` as it is sent (so a lost datagram still opens
 * or refreshes a mapping); a datagram to `publicAddress:port` is translated back to the inside ip:port
 * when it arrives, if a live mapping holds that port and the filtering lets its source through, and is
 * dropped and counted otherwise.
 *
 * Ports: an endpoint-independent mapping keeps the inside port when no live mapping holds it (as Linux
 * does), otherwise, like every endpoint-dependent mapping, it takes the next free port counting up from
 * `portStart` (wrapping at 65535). Allocation is sequential, so runs are deterministic and use no
 * randomness. A mapping lives `mappingLifetimeUs` after the last outbound datagram through it; inbound
 * traffic does not refresh it. Filtering permissions belong to the mapping and end with it.
 *
 * Between two inside IPs of the same NAT datagrams go without translation. There is no hairpinning: a
 * datagram from inside to the NAT's own public address is dropped (`stats.hairpinDropped`). NATs do not
 * nest: a NAT's public IP is not behind another NAT. A host or socket opened at the public IP receives
 * nothing (datagrams to it are the NAT's). {@link SimNetwork.inject} bypasses NATs.
 */
export class SimNat {
  readonly publicAddress: string;
  readonly inside: readonly string[];
  readonly mapping: NatMapping;
  readonly filtering: NatFiltering;
  readonly mappingLifetimeUs: number;
  readonly portStart: number;
  readonly #now: () => number;
  readonly #byKey = new Map<string, Mapping>();
  readonly #byPort = new Map<number, Mapping>();
  #cursor: number;
  #outboundTranslated = 0;
  #outboundDropped = 0;
  #inboundTranslated = 0;
  #inboundDropped = 0;
  #hairpinDropped = 0;

  /** @internal Made by {@link SimNetwork.addNat}. */
  constructor(options: SimNatOptions, now: () => number) {
    const lifetime = options.mappingLifetimeUs ?? DEFAULT_LIFETIME_US;
    const portStart = options.portStart ?? DEFAULT_PORT_START;
    if (!options.publicAddress) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', 'a NAT needs a public address');
    if (!(lifetime > 0)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `mappingLifetimeUs must be positive (got ${lifetime})`);
    if (!Number.isInteger(portStart) || portStart < 1 || portStart > 65535) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `portStart must be an integer in 1..65535 (got ${portStart})`);
    if (options.inside.includes(options.publicAddress)) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `a NAT's public address cannot be inside it: ${options.publicAddress}`);
    this.publicAddress = options.publicAddress;
    this.inside = Object.freeze([...options.inside]);
    this.mapping = options.mapping;
    this.filtering = options.filtering;
    this.mappingLifetimeUs = lifetime;
    this.portStart = portStart;
    this.#cursor = portStart;
    this.#now = now;
  }

  /** The counters, with the number of mappings live now. */
  get stats(): SimNatStats {
    return {
      outboundTranslated: this.#outboundTranslated,
      outboundDropped: this.#outboundDropped,
      inboundTranslated: this.#inboundTranslated,
      inboundDropped: this.#inboundDropped,
      hairpinDropped: this.#hairpinDropped,
      mappings: this.mappings().length,
    };
  }

  /** The live mappings, by public port. */
  mappings(): SimNatMappingInfo[] {
    const now = this.#now();
    const out: SimNatMappingInfo[] = [];
    for (const m of [...this.#byPort.values()]) {
      if (m.expiresAtUs <= now) {
        this.#remove(m);
        continue;
      }
      out.push({ inside: { ...m.inside }, external: { address: this.publicAddress, port: m.port }, remote: m.remote ? { ...m.remote } : null, expiresAtUs: m.expiresAtUs });
    }
    return out.sort((a, b) => a.external.port - b.external.port);
  }

  /**
   * The public address of the live mapping of `inside` (toward `remote`, for an endpoint-dependent
   * mapping; ignored for an endpoint-independent one), or null if there is none. It opens nothing.
   */
  externalAddress(inside: SocketAddress, remote?: SocketAddress): SocketAddress | null {
    const key = this.mapping === 'endpointIndependent' ? keyOf(inside) : remote ? `${keyOf(inside)}>${keyOf(remote)}` : null;
    if (key === null) return null;
    const m = this.#live(this.#byKey.get(key));
    return m ? { address: this.publicAddress, port: m.port } : null;
  }

  /** Forgets every mapping at once (a NAT reboot): inbound datagrams are dropped until inside hosts send again. */
  expireAll(): void {
    this.#byKey.clear();
    this.#byPort.clear();
  }

  /**
   * @internal The public source of a datagram from `from` (inside) to `to` (outside): finds, opens or
   * refreshes the mapping and records `to` for filtering. Null (and counted) if no port is free.
   */
  translateOut(from: SocketAddress, to: SocketAddress): SocketAddress | null {
    const now = this.#now();
    const eim = this.mapping === 'endpointIndependent';
    const key = eim ? keyOf(from) : `${keyOf(from)}>${keyOf(to)}`;
    let m = this.#live(this.#byKey.get(key));
    if (!m) {
      const port = this.#allocate(eim ? from.port : null);
      if (port === null) {
        this.#outboundDropped++;
        return null;
      }
      m = { key, inside: { address: from.address, port: from.port }, port, remote: eim ? null : { address: to.address, port: to.port }, expiresAtUs: 0, sentIps: new Set(), sentEndpoints: new Set() };
      this.#byKey.set(key, m);
      this.#byPort.set(port, m);
    }
    m.expiresAtUs = now + this.mappingLifetimeUs;
    m.sentIps.add(to.address);
    m.sentEndpoints.add(keyOf(to));
    this.#outboundTranslated++;
    return { address: this.publicAddress, port: m.port };
  }

  /** @internal The inside endpoint a live mapping holds at public `port`, whatever the filtering (no counting). */
  peek(port: number): SocketAddress | null {
    const m = this.#live(this.#byPort.get(port));
    return m ? m.inside : null;
  }

  /** @internal The inside endpoint for a datagram from `from` arriving at public `port`, or null (counted) if it is dropped. */
  translateIn(from: SocketAddress, port: number): SocketAddress | null {
    const m = this.#live(this.#byPort.get(port));
    let ok = false;
    if (m) {
      if (this.filtering === 'endpointIndependent') ok = true;
      else if (this.filtering === 'addressDependent') ok = m.sentIps.has(from.address);
      else ok = m.sentEndpoints.has(keyOf(from));
    }
    if (!m || !ok) {
      this.#inboundDropped++;
      return null;
    }
    this.#inboundTranslated++;
    return m.inside;
  }

  /** @internal Counts a datagram from outside sent straight to a private IP behind this NAT. */
  countUnroutable(): void {
    this.#inboundDropped++;
  }

  /** @internal Counts a datagram from inside to this NAT's own public address. */
  countHairpin(): void {
    this.#hairpinDropped++;
  }

  #live(m: Mapping | undefined): Mapping | null {
    if (!m) return null;
    if (m.expiresAtUs > this.#now()) return m;
    this.#remove(m);
    return null;
  }

  #remove(m: Mapping): void {
    if (this.#byKey.get(m.key) === m) this.#byKey.delete(m.key);
    if (this.#byPort.get(m.port) === m) this.#byPort.delete(m.port);
  }

  #free(port: number): boolean {
    return this.#live(this.#byPort.get(port)) === null;
  }

  #allocate(preferred: number | null): number | null {
    if (preferred !== null && preferred > 0 && this.#free(preferred)) return preferred;
    const span = 65536 - this.portStart;
    for (let i = 0; i < span; i++) {
      const p = this.#cursor;
      this.#cursor = p >= 65535 ? this.portStart : p + 1;
      if (this.#free(p)) return p;
    }
    return null;
  }
}
