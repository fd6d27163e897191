// Real NATs for integration tests (issue 21): network namespaces that the test makes, joined by veth pairs,
// with NAT and filtering by nftables. The topology, one per createTopology() call:
//
//               sw: bridge br0, the public net 198.51.100.0/24 (and the counters)
//        ┌──────────────────┼──────────────────┐
//   pub 198.51.100.2    r1 198.51.100.11    r2 198.51.100.12    (on `wan`; pub on eth0)
//                           │ NAT               │ NAT
//                       h1 10.0.1.2         h2 10.0.2.2         (routers: 10.0.N.1 on `lan`)
//
// `pub` holds the public host (a relay, a reflector), each home router `rN` its public side `wan` on the
// bridge and its private side `lan` (10.0.N.1/24) to its host `hN` (10.0.N.2, default route via the router).
// Each router masquerades what leaves by `wan`, in one of two variants: 'endpointIndependent' (port-preserving
// masquerade: a socket keeps its own port as its public port for every destination, unless that port is taken
// on the router for the same destination) or 'endpointDependent' (`masquerade random`: each destination sees
// its own public port, a symmetric NAT). Each router drops every new inbound
// packet on `wan` (forwarded or for itself) and lets in replies to its conntrack entries only; a dropped
// packet never creates a conntrack entry (entries are confirmed only once a packet is accepted), so a
// punching packet that arrives before the router's own outbound one leaves no state that would move the
// mapping. The switch counts, in its bridge's forward hook, the UDP packets between the two routers' public
// addresses (`direct`; `directIp` counts every IP packet between them) and between either router and pub
// (`viaPub`), and records each direct flow's ports.
//
// Every namespace name starts with a tag unique to the run (`nl<pid base 36><4 hex>-`), so that runs side by
// side never clash; interface names are fixed inside each namespace. destroy() kills the processes spawn()
// started (by pid) and deletes the namespaces (their veths go with them); a process 'exit' hook does the same
// if a test ends without it, and createTopology() first deletes namespaces of earlier runs whose process is
// gone. Scripts run by spawn() should exit when their stdin ends (nat-udp.ts does), so that none outlives a
// test process that was killed.
//
// Use (in a node:test file; test/integration/nat-harness.test.ts is a whole example):
//   const topo = await createTopology({ nat: ['endpointIndependent', 'endpointDependent'] });  // in before()
//   const relay = topo.spawnNode(topo.pub, script, ['relay']);   await relay.event('ready', 15_000);
//   const a = topo.spawnNode(topo.homes[0].host, script, [...]); a.send({ cmd: ... }); await a.next(match, 5000);
//   assert.equal(await topo.directPackets(), 0);
//   await topo.destroy();                                                                     // in after()
import { execFile, spawn as spawnChild, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

/** How a home router maps its hosts' sockets to public ports. */
export type NatKind = 'endpointIndependent' | 'endpointDependent';

/** One home network: a router namespace with a public and a private side, and a host namespace behind it. */
export interface HomeNetwork {
  /** The router's namespace. */
  readonly router: string;
  /** The host's namespace (behind the router). */
  readonly host: string;
  /** The router's address on the public net: what others see of the host. */
  readonly publicAddress: string;
  /** The host's own (private) address. */
  readonly hostAddress: string;
  readonly nat: NatKind;
}

/** UDP packets the switch saw, from the start or the last resetCounters(). */
export interface SwitchCounters {
  /** Between the two routers' public addresses, both directions: the homes talking directly. */
  readonly direct: number;
  /** Between either router and pub, both directions. */
  readonly viaPub: number;
  /** IP packets of any protocol (UDP, ICMP, ...) between the two routers' public addresses, both directions. */
  readonly directIp: number;
}

/** A direct UDP flow between the routers that the switch saw (addresses and ports as on the public net, after NAT). */
export interface DirectFlow {
  readonly from: string;
  readonly sport: number;
  readonly to: string;
  readonly dport: number;
}

export interface TopologyOptions {
  /** The NAT of router 1 and router 2 (default both 'endpointIndependent'). */
  readonly nat?: readonly [NatKind, NatKind];
}

/** A JSON line a spawned process printed on stdout (a line that is not a JSON object arrives as `{ text }`). */
export type Line = Record<string, unknown>;

export const PUB_ADDRESS = '198.51.100.2';
const ROUTER_PUBLIC = ['198.51.100.11', '198.51.100.12'] as const;
const PREFIX = 'nl';

/** Why network namespaces cannot be made here, or null when they can (root, `ip` and `nft` on PATH). */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root)';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return '`ip` (iproute2) is not installed (apt-get install -y iproute2)';
  if (spawnSync('nft', ['--version'], { stdio: 'ignore' }).status !== 0) return '`nft` is not installed (apt-get install -y nftables)';
  return null;
}

/**
 * The skip option of a test that needs network namespaces: false when they can be made; otherwise the reason,
 * printed loudly. With CI_REQUIRE_NETNS=1 (.ci/run sets it) it is false whatever the reason, so that the test
 * runs and createTopology() fails with the reason: CI never passes without these tests.
 */
export function netnsSkip(): string | false {
  const why = netnsUnavailable();
  if (why === null) return false;
  if (process.env['CI_REQUIRE_NETNS'] === '1') return false;
  const bar = '!'.repeat(100);
  process.stderr.write(`${bar}\n!! SKIPPING the network namespace (real NAT) tests: ${why}\n!! (with CI_REQUIRE_NETNS=1 they fail instead)\n${bar}\n`);
  return `SKIPPED, no network namespaces: ${why}`;
}

/** Runs a command; resolves with its stdout, rejects with its stderr. Bounded by `timeoutMs`. */
function run(cmd: string, args: readonly string[], input?: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const ip = (...args: string[]): Promise<string> => run('ip', args);
/** Runs `nft` in namespace `ns`, with `ruleset` (an nft script) on its stdin when given. */
const nft = (ns: string, args: readonly string[], ruleset?: string): Promise<string> => run('ip', ['netns', 'exec', ns, 'nft', ...args], ruleset);
const sysctl = (ns: string, setting: string): Promise<string> => run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', setting]);

/** Deletes namespaces left by earlier runs whose process is gone (a test process killed before its teardown). */
function sweepStale(): void {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const re = new RegExp(`^(${PREFIX}([0-9a-z]+)[0-9a-f]{4})-[a-z0-9]+$`);
  for (const line of out.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = re.exec(name);
    if (!m) continue;
    const pid = parseInt(m[2] ?? '', 36);
    let alive = true;
    try {
      process.kill(pid, 0); // signal 0: only asks whether the process exists
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) continue;
    // Its process is gone; a namespace that still holds a process is left alone all the same.
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
    if (pids.trim() === '') spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}

/** A process inside a namespace: its stdout's JSON lines in a mailbox, JSON lines to its stdin, killed by pid. */
export class NsProcess {
  readonly proc: ChildProcess;
  /** Every line so far, in order. */
  readonly lines: Line[] = [];
  /** The tail of its stderr (for error messages). */
  stderr = '';
  readonly #mailbox: Line[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #what: string;
  #exited = false;
  readonly #exit: Promise<void>;

  constructor(ns: string, args: readonly string[]) {
    this.#what = `${args.join(' ')} in ${ns}`;
    this.proc = spawnChild('ip', ['netns', 'exec', ns, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdin?.on('error', () => {}); // writes after it exited
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (text) => {
      let line: Line;
      try {
        const v: unknown = JSON.parse(text);
        line = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Line) : { text };
      } catch {
        line = { text };
      }
      this.lines.push(line);
      this.#mailbox.push(line);
      for (const w of this.#waiters) w();
    });
    this.proc.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-4000);
    });
    this.#exit = new Promise((resolve) => {
      this.proc.once('close', () => {
        this.#exited = true;
        for (const w of this.#waiters) w();
        resolve();
      });
    });
  }

  /** Its pid (`ip netns exec` execs the command: this is the command's own process). */
  get pid(): number {
    return this.proc.pid ?? 0;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Writes `message` to its stdin as a JSON line. */
  send(message: unknown): void {
    this.proc.stdin?.write(`${JSON.stringify(message)}\n`);
  }

  /**
   * Takes from the mailbox the first line (oldest first) for which `match` holds, waiting for it until
   * `timeoutMs`; other lines stay for later calls. Rejects on the deadline, or when the process exits first.
   */
  async next(match: (line: Line) => boolean, timeoutMs: number, what = 'a line'): Promise<Line> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.#mailbox.findIndex(match);
      if (i >= 0) return this.#mailbox.splice(i, 1)[0] as Line;
      if (this.#exited) throw new Error(`${what}: ${this.#what} exited (${this.proc.exitCode ?? this.proc.signalCode}) ${this.stderr.trim()}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.#what}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }

  /** Like next(), for a line whose `event` field is `event`. */
  event(event: string, timeoutMs: number): Promise<Line> {
    return this.next((l) => l['event'] === event, timeoutMs, `event "${event}"`);
  }

  /** Whether a line for which `match` holds arrives within `ms` (taken from the mailbox if it does). */
  async arrives(match: (line: Line) => boolean, ms: number): Promise<boolean> {
    try {
      await this.next(match, ms);
      return true;
    } catch (e) {
      if (this.#exited) throw e;
      return false;
    }
  }

  /** SIGKILL by pid, and waits (at most 5 s) for it to exit. */
  async kill(): Promise<void> {
    if (this.#exited) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await Promise.race([this.#exit, new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}

/** The namespaces of one run, what they hold, and the handles a test needs on them. */
export class Topology {
  /** Unique to this run; every namespace name starts with it. */
  readonly tag: string;
  /** The public host's namespace (a relay, a reflector) and its address. */
  readonly pub: string;
  readonly pubAddress = PUB_ADDRESS;
  /** The switch's namespace: the public net's bridge and the counters. */
  readonly switch: string;
  readonly homes: readonly [HomeNetwork, HomeNetwork];
  readonly #procs = new Set<NsProcess>();
  #destroyed = false;
  readonly #onExit = (): void => this.#destroySync();

  /** @internal Use createTopology(). */
  constructor(tag: string, nat: readonly [NatKind, NatKind]) {
    this.tag = tag;
    this.pub = `${tag}-pub`;
    this.switch = `${tag}-sw`;
    const home = (i: 0 | 1): HomeNetwork => ({ router: `${tag}-r${i + 1}`, host: `${tag}-h${i + 1}`, publicAddress: ROUTER_PUBLIC[i], hostAddress: `10.0.${i + 1}.2`, nat: nat[i] });
    this.homes = [home(0), home(1)];
    process.once('exit', this.#onExit);
  }

  /** Every namespace of this run. */
  get namespaces(): string[] {
    return [this.switch, this.pub, ...this.homes.flatMap((h) => [h.router, h.host])];
  }

  /** @internal Builds the namespaces, links, addresses, routes, NAT, filters and counters. */
  async build(): Promise<void> {
    for (const ns of this.namespaces) await ip('netns', 'add', ns);
    for (const ns of this.namespaces) await ip('-n', ns, 'link', 'set', 'lo', 'up');
    const sw = this.switch;
    await ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', sw, 'link', 'set', 'br0', 'up');
    // pub: eth0 on the bridge.
    await ip('-n', this.pub, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'p-pub', 'netns', sw);
    await ip('-n', sw, 'link', 'set', 'p-pub', 'master', 'br0', 'up');
    await ip('-n', this.pub, 'addr', 'add', `${PUB_ADDRESS}/24`, 'dev', 'eth0');
    await ip('-n', this.pub, 'link', 'set', 'eth0', 'up');
    for (const [i, h] of this.homes.entries()) {
      const n = i + 1;
      const port = `p-r${n}`;
      await ip('-n', h.router, 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', port, 'netns', sw);
      await ip('-n', sw, 'link', 'set', port, 'master', 'br0', 'up');
      await ip('-n', h.router, 'addr', 'add', `${h.publicAddress}/24`, 'dev', 'wan');
      await ip('-n', h.router, 'link', 'set', 'wan', 'up');
      await ip('-n', h.host, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan', 'netns', h.router);
      await ip('-n', h.router, 'addr', 'add', `10.0.${n}.1/24`, 'dev', 'lan');
      await ip('-n', h.router, 'link', 'set', 'lan', 'up');
      await ip('-n', h.host, 'addr', 'add', `${h.hostAddress}/24`, 'dev', 'eth0');
      await ip('-n', h.host, 'link', 'set', 'eth0', 'up');
      await ip('-n', h.host, 'route', 'add', 'default', 'via', `10.0.${n}.1`);
      await sysctl(h.router, 'net.ipv4.ip_forward=1');
      await nft(h.router, ['-f', '-'], routerRuleset(h.nat));
    }
    await nft(sw, ['-f', '-'], switchRuleset(ROUTER_PUBLIC[0], ROUTER_PUBLIC[1]));
  }

  /** The switch's counters (UDP packets, from the start or the last resetCounters()). */
  async counters(): Promise<SwitchCounters> {
    const out = JSON.parse(await nft(this.switch, ['-j', 'list', 'counters', 'table', 'bridge', 'netlane'])) as { nftables: { counter?: { name: string; packets: number } }[] };
    const get = (name: string): number => {
      const c = out.nftables.find((e) => e.counter?.name === name)?.counter;
      if (!c) throw new Error(`no counter ${name} on the switch`);
      return c.packets;
    };
    return { direct: get('direct'), viaPub: get('viapub'), directIp: get('directip') };
  }

  /** UDP packets between the two routers' public addresses (both directions) that the switch forwarded. */
  async directPackets(): Promise<number> {
    return (await this.counters()).direct;
  }

  /** The direct flows the switch saw (each 4-tuple once, as on the public net: after NAT), since the last resetCounters(). */
  async directFlows(): Promise<DirectFlow[]> {
    const out = JSON.parse(await nft(this.switch, ['-j', 'list', 'set', 'bridge', 'netlane', 'flows'])) as { nftables: { set?: { elem?: { concat: [string, number, string, number] }[] } }[] };
    const elems = out.nftables.find((e) => e.set)?.set?.elem ?? [];
    return elems.map(({ concat: [from, sport, to, dport] }) => ({ from, sport, to, dport }));
  }

  /** Zeroes the switch's counters and forgets its flows. */
  async resetCounters(): Promise<void> {
    await nft(this.switch, ['reset', 'counters', 'table', 'bridge', 'netlane']);
    await nft(this.switch, ['flush', 'set', 'bridge', 'netlane', 'flows']);
  }

  /**
   * Drops (`true`) or lets through again (`false`) every IP packet between the two routers' public addresses,
   * at the switch: the direct path fails, the paths through pub do not. The counters and flows still see the
   * dropped packets (they count what the homes send, before the drop).
   */
  async blockDirect(blocked: boolean): Promise<void> {
    const [r1, r2] = ROUTER_PUBLIC;
    const table = 'table bridge netlane_block';
    const rules = blocked ? `${table} {\n  chain forward {\n    type filter hook forward priority 10; policy accept;\n    ip saddr ${r1} ip daddr ${r2} drop\n    ip saddr ${r2} ip daddr ${r1} drop\n  }\n}\n` : '';
    await nft(this.switch, ['-f', '-'], `${table}\ndelete ${table}\n${rules}`);
  }

  /** Runs `command` (argv) in namespace `ns` to its end (bounded: 10 s); resolves with its stdout, rejects with its stderr. */
  exec(ns: string, command: readonly string[]): Promise<string> {
    if (!this.namespaces.includes(ns)) throw new Error(`${ns} is not a namespace of this topology`);
    const [cmd, ...args] = command;
    if (cmd === undefined) throw new Error('exec: empty command');
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /**
   * Drops `percent` % of the IP packets that arrive in namespace `ns` (at random, by the kernel, before
   * conntrack: the prerouting hook, so a router loses what it forwards as well as what is for itself); 0 ends it.
   */
  async setLoss(ns: string, percent: number): Promise<void> {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new RangeError(`loss percent must be an integer 0..100 (got ${percent})`);
    const table = 'table inet netlane_loss';
    const rules = percent === 0 ? '' : `${table} {\n  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n    ${percent === 100 ? '' : `numgen random mod 100 < ${percent} `}drop\n  }\n}\n`;
    // Declaring the table first makes the delete valid whether or not it existed.
    await nft(ns, ['-f', '-'], `${table}\ndelete ${table}\n${rules}`);
  }

  /**
   * Starts `node script ...args` (a compiled .js file) in namespace `ns`, with the node that runs this test.
   * destroy() kills it if it is still running.
   */
  spawnNode(ns: string, script: string, args: readonly string[] = []): NsProcess {
    return this.spawn(ns, [process.execPath, script, ...args]);
  }

  /** Starts `command` (argv) in namespace `ns`; destroy() kills it if it is still running. */
  spawn(ns: string, command: readonly string[]): NsProcess {
    if (this.#destroyed) throw new Error('the topology is destroyed');
    if (!this.namespaces.includes(ns)) throw new Error(`${ns} is not a namespace of this topology`);
    const p = new NsProcess(ns, command);
    this.#procs.add(p);
    return p;
  }

  /** Kills the processes spawn() started (by pid) and deletes the namespaces. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    process.removeListener('exit', this.#onExit);
    await Promise.all([...this.#procs].map((p) => p.kill()));
    const errors: string[] = [];
    for (const ns of this.namespaces) {
      await ip('netns', 'del', ns).catch((e: Error) => {
        if (!/No such file/.test(e.message)) errors.push(e.message);
      });
    }
    if (errors.length > 0) throw new Error(`teardown: ${errors.join('; ')}`);
  }

  #destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const p of this.#procs) {
      try {
        if (!p.exited) process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const ns of this.namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** A router's nftables: masquerade on `wan` (the variant `nat`), and nothing new in from `wan`. */
function routerRuleset(nat: NatKind): string {
  const masquerade = nat === 'endpointIndependent' ? 'masquerade' : 'masquerade random';
  return `table ip netlane_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ${masquerade}
  }
}
table inet netlane_filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" ct state established,related accept
    iifname "wan" drop
  }
}
`;
}

/** The switch's nftables: counters of UDP between the routers (direct) and between a router and pub, and the direct flows. */
function switchRuleset(r1: string, r2: string): string {
  return `table bridge netlane {
  counter direct { }
  counter viapub { }
  counter directip { }
  set flows {
    typeof ip saddr . udp sport . ip daddr . udp dport
    flags dynamic
    size 65536
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip saddr ${r1} ip daddr ${r2} meta l4proto udp counter name direct add @flows { ip saddr . udp sport . ip daddr . udp dport }
    ip saddr ${r2} ip daddr ${r1} meta l4proto udp counter name direct add @flows { ip saddr . udp sport . ip daddr . udp dport }
    ip saddr ${r1} ip daddr ${r2} counter name directip
    ip saddr ${r2} ip daddr ${r1} counter name directip
    ip saddr { ${r1}, ${r2} } ip daddr ${PUB_ADDRESS} meta l4proto udp counter name viapub
    ip saddr ${PUB_ADDRESS} ip daddr { ${r1}, ${r2} } meta l4proto udp counter name viapub
  }
}
`;
}

/**
 * Makes a topology: the namespaces, with router 1 and 2 NATting as `options.nat` says. Fails with the reason
 * when namespaces cannot be made here (see netnsSkip()). Call destroy() in an after() hook.
 */
export async function createTopology(options: TopologyOptions = {}): Promise<Topology> {
  const why = netnsUnavailable();
  if (why !== null) throw new Error(`cannot make network namespaces${process.env['CI_REQUIRE_NETNS'] === '1' ? ' (CI_REQUIRE_NETNS=1: these tests must run)' : ''}: ${why}`);
  sweepStale();
  const tag = `${PREFIX}${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  const topo = new Topology(tag, options.nat ?? ['endpointIndependent', 'endpointIndependent']);
  try {
    await topo.build();
  } catch (e) {
    await topo.destroy().catch(() => {});
    throw e;
  }
  return topo;
}
