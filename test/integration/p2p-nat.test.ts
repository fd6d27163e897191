// Direct peer-to-peer paths through real NATs (docs/P2P.md): network namespaces made by the test
// (test/support/netns.ts), two home networks behind nftables masquerade and a public one with a relay, over
// real UDP (p2p-nat.ts runs the relay and the NetworkingMessages peers). Behind two endpoint-independent NATs the
// peers go direct and the relay stops forwarding; when the direct path is cut they are back on the relay within
// a second, and direct again once it heals; behind an endpoint-dependent (symmetric) NAT they stay relayed; with
// direct paths disabled on one side, the switch between the homes counts no packet at all. Reliable messages
// arrive all and in order throughout.
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createTopology, netnsSkip, netnsUnavailable, type HomeNetwork, type Line, type NsProcess, type Topology } from '../support/netns.js';

const skip = netnsSkip();
const SCRIPT = fileURLToPath(new URL('./p2p-nat.js', import.meta.url));
const RELAY_PORT = 27100;
/** P2P_Transport_ICE_Enable: every kind of candidate; 0: none. */
const ALL = 0x7fffffff;
/** Bound on a process's start (node's own start on a loaded 2-core machine takes seconds), ms. */
const START_MS = 20_000;
/** Bound on one answer of a process, ms. */
const WAIT_MS = 5000;
/** Messages per second from h1 to h2 while a test watches. */
const RATE = 100;

test('network namespaces can be made here (root, ip, nft)', { skip }, () => {
  assert.equal(netnsUnavailable(), null);
});

interface Info {
  readonly path: string;
  readonly pingDirect: number;
  readonly pingRelayed: number;
  readonly remoteAddress: string;
  readonly received: number;
  readonly inOrder: boolean;
  readonly sent: number;
}

let ids = 0;
async function info(p: NsProcess, to: string): Promise<Info> {
  const id = ++ids;
  p.send({ cmd: 'info', to, id });
  return (await p.next((l: Line) => l['event'] === 'info' && l['id'] === id, WAIT_MS, `info ${id}`)) as unknown as Info;
}

async function relayForwarded(relay: NsProcess): Promise<number> {
  relay.send({ cmd: 'stats' });
  const l = await relay.next((x: Line) => x['event'] === 'stats', WAIT_MS, 'relay stats');
  return l['forwarded'] as number;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 100 ms until it is true; returns the ms it took; throws after `ms`. */
async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await pause(100);
  }
  return Date.now() - start;
}

interface Peers {
  readonly h1: NsProcess;
  readonly h2: NsProcess;
  readonly id1: string;
  readonly id2: string;
}

/** Peers in both homes on the relay, with the given P2P_Transport_ICE_Enable each; h1 streams reliable messages to h2. */
async function peers(topo: Topology, relayAddress: string, enable: [number, number]): Promise<Peers> {
  const start = (home: HomeNetwork, name: string, e: number): NsProcess => topo.spawnNode(home.host, SCRIPT, ['peer', name, relayAddress, String(e)]);
  const h1 = start(topo.homes[0], 'h1', enable[0]);
  const h2 = start(topo.homes[1], 'h2', enable[1]);
  const [r1, r2] = await Promise.all([h1.event('ready', START_MS), h2.event('ready', START_MS)]);
  const p = { h1, h2, id1: r1['identity'] as string, id2: r2['identity'] as string };
  h1.send({ cmd: 'stream', to: p.id2, ratePerSec: RATE });
  return p;
}

/** Both sides' session path. */
async function paths(p: Peers): Promise<[string, string]> {
  return [(await info(p.h1, p.id2)).path, (await info(p.h2, p.id1)).path];
}

/** Waits until h2 has every message h1 sent so far (after h1 stops counting a moment), in order. */
async function allDelivered(p: Peers): Promise<Info> {
  const sent = (await info(p.h1, p.id2)).sent;
  let last: Info | undefined;
  await within(10_000, `h2 receiving the ${sent} messages h1 sent`, async () => {
    last = await info(p.h2, p.id1);
    return last.received >= sent;
  });
  assert.equal(last?.inOrder, true, 'every message arrived in order');
  return last as Info;
}

async function startRelay(topo: Topology): Promise<{ relay: NsProcess; address: string }> {
  const relay = topo.spawnNode(topo.pub, SCRIPT, ['relay', String(RELAY_PORT), topo.pubAddress]);
  const ready = await relay.event('ready', START_MS);
  return { relay, address: ready['address'] as string };
}

describe('direct paths through real NATs: two endpoint-independent NATs', { skip, timeout: 180_000 }, () => {
  let topo: Topology | undefined;
  let world: Topology;
  let relay: NsProcess;
  let relayAddress: string;
  before(async () => {
    topo = await createTopology({ nat: ['endpointIndependent', 'endpointIndependent'] });
    world = topo;
    ({ relay, address: relayAddress } = await startRelay(world));
  });
  after(async () => {
    await topo?.destroy();
  });

  it('disabled on one side: not one packet between the homes, and the messages go through the relay', async () => {
    const p = await peers(world, relayAddress, [ALL, 0]);
    await world.resetCounters();
    await within(10_000, 'messages through the relay', async () => (await info(p.h2, p.id1)).received >= 100);
    await pause(3000); // time for any probe there would be (the first go out within 100 ms of the offer)
    const got = await allDelivered(p);
    const c = await world.counters();
    console.log(`# one side disabled: ${got.received} messages, switch counters direct ${c.direct}, directIp ${c.directIp}, via pub ${c.viaPub}`);
    assert.equal(c.direct, 0, 'UDP packets between the two homes');
    assert.equal(c.directIp, 0, 'IP packets of any kind between the two homes');
    assert.ok(c.viaPub > got.received, 'everything went through the relay');
    assert.deepEqual(await paths(p), ['relayed', 'relayed']);
    await Promise.all([p.h1.kill(), p.h2.kill()]);
  });

  it('enabled on both: the peers go direct, the relay stops forwarding, a cut sends them back to it within a second and a healed path direct again', async () => {
    const p = await peers(world, relayAddress, [ALL, ALL]);
    const tookMs = await within(15_000, 'a direct path on both sides', async () => (await paths(p)).every((x) => x === 'direct'));
    const i1 = await info(p.h1, p.id2);
    assert.match(i1.remoteAddress, new RegExp(`^${world.homes[1].publicAddress.replaceAll('.', '\\.')}:`), "on the direct path h1 sends to h2's router");
    assert.ok(i1.pingDirect >= 0 && i1.pingRelayed >= 0, `pings direct ${i1.pingDirect} ms, relayed ${i1.pingRelayed} ms`);

    const forwarded0 = await relayForwarded(relay);
    const direct0 = await world.directPackets();
    await pause(3000);
    const forwarded = (await relayForwarded(relay)) - forwarded0;
    const direct = (await world.directPackets()) - direct0;
    console.log(`# direct after ${tookMs} ms (pings direct ${i1.pingDirect} ms, relayed ${i1.pingRelayed} ms); in 3 s after: ${direct} packets between the homes, ${forwarded} forwarded by the relay`);
    assert.ok(direct >= RATE * 2, `${direct} packets went between the homes in 3 s at ${RATE} messages/s`);
    assert.ok(forwarded <= 8, `the relay forwarded ${forwarded} datagrams in 3 s after the move (the relayed path's challenges only)`);

    await world.blockDirect(true);
    let backMs: number;
    try {
      backMs = await within(5000, 'both sides back on the relay', async () => (await paths(p)).every((x) => x === 'relayed'));
      await pause(500);
      assert.deepEqual(await paths(p), ['relayed', 'relayed'], 'they stay on the relay while the direct path is cut');
    } finally {
      await world.blockDirect(false);
    }
    const againMs = await within(15_000, 'direct again once the path healed', async () => (await paths(p)).every((x) => x === 'direct'));
    const got = await allDelivered(p);
    console.log(`# cut: both on the relay after ${backMs} ms (polled every 100 ms); direct again ${againMs} ms after the path healed; ${got.received} messages, in order`);
    assert.ok(backMs <= 1500, `back on the relay ${backMs} ms after the cut`);
    await Promise.all([p.h1.kill(), p.h2.kill()]);
  });
});

describe('direct paths through real NATs: one endpoint-dependent (symmetric) NAT', { skip, timeout: 120_000 }, () => {
  let topo: Topology | undefined;
  let world: Topology;
  let relayAddress: string;
  before(async () => {
    topo = await createTopology({ nat: ['endpointIndependent', 'endpointDependent'] });
    world = topo;
    ({ address: relayAddress } = await startRelay(world));
  });
  after(async () => {
    await topo?.destroy();
  });

  it('enabled on both: the probes find no way through, and the session stays on the relay and loses nothing', async () => {
    const p = await peers(world, relayAddress, [ALL, ALL]);
    await within(10_000, 'the session on both sides', async () => (await paths(p)).every((x) => x === 'relayed'));
    await world.resetCounters();
    // The peers probe each other's candidates for 10 s after the offers; watch past that.
    const deadline = Date.now() + 11_000;
    while (Date.now() < deadline) {
      assert.deepEqual(await paths(p), ['relayed', 'relayed'], 'never direct');
      await pause(500);
    }
    const got = await allDelivered(p);
    const c = await world.counters();
    console.log(`# symmetric NAT: ${c.direct} probe packets left for the other home, none answered; ${got.received} messages through the relay, in order`);
    assert.ok(c.direct > 0, 'the peers did probe each other');
    assert.ok(got.received >= RATE * 5);
    await Promise.all([p.h1.kill(), p.h2.kill()]);
  });
});
