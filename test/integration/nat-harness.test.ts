// The real-NAT harness (test/support/netns.ts) proved with plain UDP hole punching (node:dgram, nat-udp.ts), no
// netlane code: a STUN-like reflector in `pub` tells each home host its public address:port; behind two
// endpoint-independent NATs the hosts punch through to each other (and the switch counts the direct packets);
// behind an endpoint-dependent one the port the peer sees is not the one the reflector saw and nothing gets
// through; and traffic that only goes through pub leaves the direct counter at 0. Each NAT lets in replies only.
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createTopology, netnsSkip, netnsUnavailable, type HomeNetwork, type Line, type NsProcess, type Topology } from '../support/netns.js';

const skip = netnsSkip();
const SCRIPT = fileURLToPath(new URL('./nat-udp.js', import.meta.url));
/** The reflector's two ports in pub. */
const PORT_A = 3478;
const PORT_B = 3479;
/** Punching: this many datagrams, this far apart (ms), from each side at once. */
const PUNCHES = 20;
const PUNCH_INTERVAL_MS = 25;
/** Bound on any one wait for a process's line, ms. */
const WAIT_MS = 5000;
/** Bound on a process's start (node's own start on a loaded 2-core machine takes seconds), ms. */
const START_MS = 15_000;
/** After both sides sent all their punches, a datagram still on its way would arrive within this, ms. */
const QUIET_MS = 300;

// Counted as skipped by the runner where namespaces cannot be made; under CI_REQUIRE_NETNS=1 it fails with the reason.
test('network namespaces can be made here (root, ip, nft)', { skip }, () => {
  assert.equal(netnsUnavailable(), null);
});

interface Endpoint {
  readonly address: string;
  readonly port: number;
}

async function startReflector(topo: Topology): Promise<NsProcess> {
  const p = topo.spawnNode(topo.pub, SCRIPT, ['reflector', String(PORT_A), String(PORT_B)]);
  await p.event('ready', START_MS);
  return p;
}

async function startPeer(topo: Topology, home: HomeNetwork, name: string): Promise<NsProcess> {
  const p = topo.spawnNode(home.host, SCRIPT, ['peer', name]);
  await p.event('ready', START_MS);
  return p;
}

let ids = 0;
/** Asks the reflector (at `port` in pub) for `p`'s address as seen there; the answer's line. */
async function reflect(topo: Topology, p: NsProcess, port: number, other = false): Promise<Line> {
  const id = ++ids;
  p.send({ cmd: 'reflect', address: topo.pubAddress, port, id, other });
  return p.next((l) => l['event'] === 'mapped' && l['id'] === id, WAIT_MS, `the reflector's answer ${id}`);
}

const endpoint = (l: Line): Endpoint => ({ address: l['address'] as string, port: l['port'] as number });
const from = (l: Line): Endpoint => l['from'] as Endpoint;
const isPunchFrom = (e: Endpoint) => (l: Line): boolean => l['event'] === 'received' && l['op'] === 'punch' && from(l).address === e.address && from(l).port === e.port;

function punch(p: NsProcess, to: Endpoint, count = PUNCHES, intervalMs = PUNCH_INTERVAL_MS, tag: string | null = null): void {
  p.send({ cmd: 'punch', address: to.address, port: to.port, count, intervalMs, tag });
}

describe('real NATs in network namespaces: two endpoint-independent NATs', { skip, timeout: 120_000 }, () => {
  let topo: Topology | undefined;
  let world: Topology;
  before(async () => {
    topo = await createTopology({ nat: ['endpointIndependent', 'endpointIndependent'] });
    world = topo;
    await startReflector(world);
  });
  after(async () => {
    await topo?.destroy();
  });

  it("maps each host's socket to its router's public address, with one port for every destination", async () => {
    for (const [i, home] of world.homes.entries()) {
      const p = await startPeer(world, home, `h${i + 1}`);
      const a = endpoint(await reflect(world, p, PORT_A));
      const b = endpoint(await reflect(world, p, PORT_B));
      assert.equal(a.address, home.publicAddress, 'the reflector sees the router, not the private host');
      assert.equal(b.address, home.publicAddress);
      assert.equal(a.port, b.port, `one public port for both destinations (${a.port}, ${b.port})`);
      await p.kill();
    }
  });

  it('lets in replies only: a datagram from a port the host never sent to does not arrive', async () => {
    const p = await startPeer(world, world.homes[0], 'h1');
    // The reflector answers from PORT_B first, then from PORT_A, where the request went: only the second gets in.
    const answer = await reflect(world, p, PORT_A, true);
    assert.deepEqual(from(answer), { address: world.pubAddress, port: PORT_A });
    assert.equal(p.lines.filter((l) => l['event'] === 'received').length, 0, 'nothing from PORT_B arrived');
    // Once the host has sent to PORT_B, the same answer from there gets in (and arrives first).
    await reflect(world, p, PORT_B);
    const again = await reflect(world, p, PORT_A, true);
    assert.deepEqual(from(again), { address: world.pubAddress, port: PORT_B });
    await p.kill();
  });

  it("lets nothing new in to the private side: a datagram routed to the host's private address is dropped", async () => {
    const home = world.homes[0];
    const p = await startPeer(world, home, 'h1');
    const local = p.lines.find((l) => l['event'] === 'ready')?.['port'] as number;
    // As if the public net routed private addresses: pub sends to 10.0.1.0/24 through router 1.
    await world.exec(world.pub, ['ip', 'route', 'add', '10.0.1.0/24', 'via', home.publicAddress]);
    try {
      const id = ++ids;
      p.send({ cmd: 'reflect', address: world.pubAddress, port: PORT_A, id, at: { address: home.hostAddress, port: local } });
      // Answered after the first, to the host's reflexive address: it arrives, and the first (sent before it) did not.
      await reflect(world, p, PORT_A);
      assert.equal(p.lines.filter((l) => l['id'] === id).length, 0, 'the answer sent to the private address did not arrive');
    } finally {
      await world.exec(world.pub, ['ip', 'route', 'del', '10.0.1.0/24']);
    }
    await p.kill();
  });

  it('without punching, datagrams between the hosts go through pub and not one packet between the homes', async () => {
    const [h1, h2] = [await startPeer(world, world.homes[0], 'h1'), await startPeer(world, world.homes[1], 'h2')];
    const m1 = endpoint(await reflect(world, h1, PORT_A));
    const m2 = endpoint(await reflect(world, h2, PORT_A));
    const via = { address: world.pubAddress, port: PORT_A };
    h1.send({ cmd: 'relay', via, to: m2, data: 'hello h2' });
    h2.send({ cmd: 'relay', via, to: m1, data: 'hello h1' });
    const at2 = await h2.event('relayed', WAIT_MS);
    const at1 = await h1.event('relayed', WAIT_MS);
    assert.deepEqual([at2['data'], at2['from']], ['hello h2', m1]);
    assert.deepEqual([at1['data'], at1['from']], ['hello h1', m2]);
    const c = await world.counters();
    assert.equal(c.direct, 0, 'no UDP packet went between the two routers');
    assert.equal(c.directIp, 0, 'nor any other IP packet');
    assert.ok(c.viaPub >= 8, `the switch counted the traffic through pub (${c.viaPub} packets)`);
    assert.deepEqual(await world.directFlows(), []);
    await Promise.all([h1.kill(), h2.kill()]);
  });

  it("hole punching works: both hosts receive each other's datagrams, directly", async () => {
    const [h1, h2] = [await startPeer(world, world.homes[0], 'h1'), await startPeer(world, world.homes[1], 'h2')];
    const m1 = endpoint(await reflect(world, h1, PORT_A));
    const m2 = endpoint(await reflect(world, h2, PORT_A));
    const before = await world.directPackets();
    // The test process is the signaling channel: each learns the other's reflexive address, and both send at once.
    punch(h1, m2);
    punch(h2, m1);
    // Each waits for a punch from the other's reflexive address:port (what the reflector told the other).
    const got1 = await h1.next(isPunchFrom(m2), WAIT_MS, "h2's punch");
    const got2 = await h2.next(isPunchFrom(m1), WAIT_MS, "h1's punch");
    assert.deepEqual([got1['from'], got2['from']], [m2, m1]);
    const direct = (await world.directPackets()) - before;
    console.log(`# hole punching: ${direct} direct packets between the routers`);
    assert.ok(direct > 0, `the switch counted direct packets between the routers (${direct})`);
    const flows = await world.directFlows();
    const has = (a: Endpoint, b: Endpoint): boolean => flows.some((f) => f.from === a.address && f.sport === a.port && f.to === b.address && f.dport === b.port);
    assert.ok(has(m1, m2) && has(m2, m1), `direct flows both ways between the reflexive addresses: ${JSON.stringify(flows)}`);
    await Promise.all([h1.kill(), h2.kill()]);
  });

  it('blockDirect() fails the direct path: punches get nothing through while pub still relays, and they do again once it ends', async () => {
    const [h1, h2] = [await startPeer(world, world.homes[0], 'h1'), await startPeer(world, world.homes[1], 'h2')];
    const m1 = endpoint(await reflect(world, h1, PORT_A));
    const m2 = endpoint(await reflect(world, h2, PORT_A));
    await world.blockDirect(true);
    try {
      punch(h1, m2);
      punch(h2, m1);
      await h1.event('punchDone', WAIT_MS);
      await h2.event('punchDone', WAIT_MS);
      assert.equal(await h1.arrives(isPunchFrom(m2), QUIET_MS), false, 'h1 received nothing directly');
      assert.equal(h2.lines.some(isPunchFrom(m1)), false, 'h2 received nothing directly');
      h1.send({ cmd: 'relay', via: { address: world.pubAddress, port: PORT_A }, to: m2, data: 'through pub' });
      assert.equal((await h2.event('relayed', WAIT_MS))['data'], 'through pub');
    } finally {
      await world.blockDirect(false);
    }
    punch(h1, m2);
    punch(h2, m1);
    await h1.next(isPunchFrom(m2), WAIT_MS, "h2's punch once unblocked");
    await h2.next(isPunchFrom(m1), WAIT_MS, "h1's punch once unblocked");
    await Promise.all([h1.kill(), h2.kill()]);
  });

  it("setLoss() drops that share of what arrives in a namespace, in the kernel", async () => {
    const [h1, h2] = [await startPeer(world, world.homes[0], 'h1'), await startPeer(world, world.homes[1], 'h2')];
    const m1 = endpoint(await reflect(world, h1, PORT_A));
    const m2 = endpoint(await reflect(world, h2, PORT_A));
    punch(h1, m2);
    punch(h2, m1);
    await h1.next(isPunchFrom(m2), WAIT_MS, "h2's punch");
    await h2.event('punchDone', WAIT_MS);
    // 100 %: the reflector's answer (sent again every 200 ms) does not get in until the loss ends.
    await world.setLoss(world.homes[0].host, 100);
    const id = ++ids;
    h1.send({ cmd: 'reflect', address: world.pubAddress, port: PORT_A, id });
    const isAnswer = (l: Line): boolean => l['event'] === 'mapped' && l['id'] === id;
    assert.equal(await h1.arrives(isAnswer, QUIET_MS), false, 'nothing gets in at 100 % loss');
    await world.setLoss(world.homes[0].host, 0);
    await h1.next(isAnswer, WAIT_MS, 'the answer once the loss ended');
    // 50 %: of 200 datagrams h2 sends, about half arrive; a last one sent after the loss ended marks the end.
    await world.setLoss(world.homes[0].host, 50);
    punch(h2, m1, 200, 1, 'lossy');
    await h2.event('punchDone', WAIT_MS);
    await world.setLoss(world.homes[0].host, 0);
    punch(h2, m1, 1, 1, 'end');
    await h1.next((l) => isPunchFrom(m2)(l) && l['tag'] === 'end', WAIT_MS, 'the last datagram');
    const arrived = h1.lines.filter((l) => isPunchFrom(m2)(l) && l['tag'] === 'lossy').length;
    console.log(`# 50 % loss in ${world.homes[0].host}: ${arrived} of 200 datagrams arrived`);
    assert.ok(arrived >= 60 && arrived <= 140, `about half of 200 arrived at 50 % loss (${arrived})`);
    await Promise.all([h1.kill(), h2.kill()]);
  });
});

describe('real NATs in network namespaces: one endpoint-dependent (symmetric) NAT', { skip, timeout: 120_000 }, () => {
  let topo: Topology | undefined;
  let world: Topology;
  before(async () => {
    topo = await createTopology({ nat: ['endpointIndependent', 'endpointDependent'] });
    world = topo;
    await startReflector(world);
  });
  after(async () => {
    await topo?.destroy();
  });

  it('gives each destination its own public port', async () => {
    const p = await startPeer(world, world.homes[1], 'h2');
    const a = endpoint(await reflect(world, p, PORT_A));
    const b = endpoint(await reflect(world, p, PORT_B));
    assert.equal(a.address, world.homes[1].publicAddress);
    assert.equal(b.address, world.homes[1].publicAddress);
    assert.notEqual(a.port, b.port, 'a different public port per destination');
    await p.kill();
  });

  it('defeats hole punching: the peer sees another port than the reflector did, and no datagram arrives', async () => {
    const [h1, h2] = [await startPeer(world, world.homes[0], 'h1'), await startPeer(world, world.homes[1], 'h2')];
    const m1 = endpoint(await reflect(world, h1, PORT_A));
    const m2 = endpoint(await reflect(world, h2, PORT_A));
    punch(h1, m2);
    punch(h2, m1);
    await h1.event('punchDone', WAIT_MS);
    await h2.event('punchDone', WAIT_MS);
    const isPunch = (l: Line): boolean => l['event'] === 'received';
    assert.equal(await h1.arrives(isPunch, QUIET_MS), false, 'h1 received nothing');
    assert.equal(await h2.arrives(isPunch, QUIET_MS), false, 'h2 received nothing');
    const flows = await world.directFlows();
    const fromH2 = flows.filter((f) => f.from === m2.address);
    const fromH1 = flows.filter((f) => f.from === m1.address);
    assert.ok(fromH2.length > 0 && fromH1.length > 0, `both sides' punches left their homes: ${JSON.stringify(flows)}`);
    for (const f of fromH2) assert.notEqual(f.sport, m2.port, `h2's punches come from another port than the reflector saw (${f.sport} vs ${m2.port})`);
    for (const f of fromH1) assert.deepEqual([f.sport, f.dport], [m1.port, m2.port], "h1's punches keep its port and go to h2's reflexive port");
    assert.ok((await world.directPackets()) > 0);
    await Promise.all([h1.kill(), h2.kill()]);
  });
});
