// A relay fleet on real sockets: in-process RelayServers on 127.0.0.1 joined through a real redis-server
// (test/support/redis.ts), and NetworkingMessages peers, each on its own relay. A message from the peer on
// relay B reaches the peer registered on relay A through the fleet's directory; three `netlane relay` processes
// carry two-hop routes, and one killed with SIGKILL moves its peers. Waits on events, bounded.
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkingMessagesOptions } from '../../src/api/messages-types.js';
import { NetworkingMessages } from '../../src/api/networking-messages.js';
import { Result, SendFlags } from '../../src/core/types.js';
import { monotonicUs } from '../../src/io/clock.js';
import { openRedisFleetStore } from '../../src/io/fleet-store.js';
import { RelayServer } from '../../src/io/relay-server.js';
import type { RelayClientEvent } from '../../src/relay/client/index.js';
import { signTicket, ticketKeyId } from '../../src/relay/ticket.js';
import { seededCryptoProvider } from '../../src/testing/crypto.js';
import { toHex } from '../../src/util/bytes.js';
import { redisSkip, startRedis } from '../support/redis.js';
import { exited, spawnRelay } from './relay-support.js';

async function until(peers: readonly NetworkingMessages[], done: () => boolean, ms: number, what: string, each?: () => void): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    for (const p of peers) p.runCallbacks();
    each?.();
    if (done()) return;
    if (performance.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('two relays in one Redis fleet: a peer on relay B reaches a peer registered on relay A by its id', { skip: redisSkip() }, async () => {
  const redis = await startRedis();
  const stores = [await openRedisFleetStore(redis.url), await openRedisFleetStore(redis.url)];
  const relays = stores.map((store, i) => RelayServer.open({ open: true, fleet: { store, region: `r${i}` } }));
  const peers = relays.map((r) => new NetworkingMessages({ relays: [r.address], relayOptions: { discoverFleet: false, bindAddress: '127.0.0.1' } }));
  try {
    const [alice, bob] = peers as [NetworkingMessages, NetworkingMessages];
    const [, rb] = relays as [RelayServer, RelayServer];
    await until(peers, () => peers.every((p) => p.registered) && relays.every((r) => r.node.stats.fleetWrites > 0), 5000, 'registrations written to Redis');
    alice.on('sessionRequest', (id) => assert.equal(alice.acceptSessionWithUser(id), true));
    assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('via redis'), SendFlags.Reliable, 0), Result.OK);
    const got: string[] = [];
    await until(peers, () => got.length > 0, 10_000, 'the message at alice', () => got.push(...alice.receiveMessagesOnChannel(0, 10).map((m) => Buffer.from(m.payload).toString())));
    assert.deepEqual(got, ['via redis']);
    assert.equal(rb.node.stats.fleetFound, 1, 'relay B found alice in Redis');
    assert.deepEqual((await stores[0]?.members('netlane:relays'))?.length, 2, 'both relays in the registry');
  } finally {
    for (const p of peers) p.close();
    for (const r of relays) r.close();
    await new Promise((r) => setTimeout(r, 50)); // the registry deletes of close() reach Redis
    for (const s of stores) await s.close();
    await redis.stop();
  }
});

test('Redis stopped for 10 s: the established link keeps carrying reliable and unreliable messages, lookups fail with a clear answer (STALE_ROUTE for an id read before, unreachable for one never read), and after Redis is back (empty) both relays rejoin and lookups work', { skip: redisSkip() }, async () => {
  const redis = await startRedis();
  const stores = [await openRedisFleetStore(redis.url), await openRedisFleetStore(redis.url)];
  const relays = stores.map((store, i) => RelayServer.open({ open: true, fleet: { store, region: `r${i}` } }));
  const peers = relays.map((r) => new NetworkingMessages({ relays: [r.address], relayOptions: { discoverFleet: false, bindAddress: '127.0.0.1' } }));
  try {
    const [alice, bob] = peers as [NetworkingMessages, NetworkingMessages];
    const [ra, rb] = relays as [RelayServer, RelayServer];
    const store = stores[0];
    assert.ok(store);
    await until(peers, () => peers.every((p) => p.registered) && relays.every((r) => r.node.stats.fleetWrites > 0), 5000, 'registrations written to Redis');
    alice.on('sessionRequest', (id) => assert.equal(alice.acceptSessionWithUser(id), true));
    const reliable: string[] = [];
    let unreliable = 0;
    const read = (): void => {
      for (const m of alice.receiveMessagesOnChannel(0, 100)) reliable.push(Buffer.from(m.payload).toString());
      unreliable += alice.receiveMessagesOnChannel(1, 100).length;
    };
    assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('r0'), SendFlags.Reliable, 0), Result.OK);
    await until(peers, () => reliable.length > 0, 10_000, 'the first message at alice (found in Redis)', read);
    const relay = bob.relay;
    assert.ok(relay);
    const answers: Extract<RelayClientEvent, { type: 'lookup' }>[] = [];
    const poll = relay.pollEvent.bind(relay);
    relay.pollEvent = () => {
      const e = poll();
      if (e?.type === 'lookup') answers.push(e);
      return e;
    };

    await redis.stop();
    const downAt = performance.now();
    let sent = 1;
    let lookedUp = false;
    // 10 s without Redis: a reliable and an unreliable message every 100 ms; lookups asked 2 s in.
    while (performance.now() - downAt < 10_000) {
      assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from(`r${sent++}`), SendFlags.Reliable, 0), Result.OK);
      assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('u'), SendFlags.Unreliable, 1), Result.OK);
      const next = performance.now() + 100;
      await until(peers, () => performance.now() >= next, 1000, 'the next send', read);
      if (!lookedUp && performance.now() - downAt > 2000) {
        lookedUp = true;
        relay.lookup(monotonicUs(), alice.getIdentity());
        relay.lookup(monotonicUs(), 424242n);
      }
    }
    await until(peers, () => reliable.length === sent, 5000, 'every reliable message sent while Redis was down', read);
    assert.deepEqual(reliable, Array.from({ length: sent }, (_, i) => `r${i}`), 'every reliable message, in order');
    assert.ok(unreliable >= (sent - 1) * 0.9, `unreliable messages kept arriving (${unreliable} of ${sent - 1})`);
    const ofAlice = answers.find((a) => a.peerId === alice.getIdentity());
    const ofNobody = answers.find((a) => a.peerId === 424242n);
    assert.ok(ofAlice?.result.ok && ofAlice.result.stale === true && ofAlice.result.route === alice.route, `alice: the route relay B read before, marked stale: ${JSON.stringify(ofAlice?.result.ok)}`);
    assert.deepEqual(ofNobody?.result, { ok: false, why: 'unreachable' }, 'an id never read: a clear failure, not "not found"');
    assert.ok(rb.node.stats.fleetStale >= 1 && rb.node.stats.fleetStoreUnavailable >= 1);
    assert.equal(rb.node.fleetStoreUp, false);

    await redis.start(); // empty: everything the fleet had is gone
    const upAt = performance.now();
    const keys = [`netlane:dir:${alice.getIdentity()}`, `netlane:dir:${bob.getIdentity()}`];
    let back = false;
    await until(peers, () => back, 8000, 'both relays and both entries written to the new Redis', () => {
      void Promise.all([store.getMany(keys), store.members('netlane:relays')]).then(
        ([v, m]) => (back = v[0] === alice.route && v[1] === bob.route && m.length === 2),
        () => {},
      );
    });
    console.log(`# rejoined ${Math.round(performance.now() - upAt)} ms after redis-server accepted connections`);
    assert.ok(ra.node.stats.fleetRejoins >= 1 && rb.node.stats.fleetRejoins >= 1);
    relay.lookup(monotonicUs(), 424242n);
    relay.lookup(monotonicUs(), alice.getIdentity());
    const before = answers.length;
    await until(peers, () => answers.length >= before + 2, 5000, 'two lookups after Redis is back');
    const fresh = answers.slice(before);
    assert.deepEqual(fresh.find((a) => a.peerId === 424242n)?.result, { ok: false, why: 'notFound' }, 'an unknown id is not found (Redis answered)');
    const again = fresh.find((a) => a.peerId === alice.getIdentity());
    assert.ok(again?.result.ok && again.result.stale === undefined, 'alice found fresh');
  } finally {
    for (const p of peers) p.close();
    for (const r of relays) r.close();
    await new Promise((r) => setTimeout(r, 50));
    for (const s of stores) await s.close();
    await redis.stop();
  }
});

test('revocation and drain over Redis pub/sub: a ticket revoked through relay B closes its session on relay A within 2 s; a drain of "*" reaches both relays', { skip: redisSkip() }, async () => {
  const redis = await startRedis();
  const stores = [await openRedisFleetStore(redis.url), await openRedisFleetStore(redis.url)];
  const provider = seededCryptoProvider(1810);
  const key = provider.signingKey();
  const keyId = ticketKeyId(provider, key.publicKey);
  const ticketKeys = { keys: new Map([[keyId, key.publicKey]]), revoked: new Set<number>() };
  const nowS = Math.floor(Date.now() / 1000);
  const ticket = (user: string, id: number): Uint8Array => signTicket(provider, key, { user, issuedAt: nowS - 60, expiresAt: nowS + 3600, maxSessions: 4, maxKbps: 100_000, ticketId: new Uint8Array(16).fill(id) });
  const relays = stores.map((store, i) => RelayServer.open({ ticketKeys, fleet: { store, region: `r${i}` } }));
  const peers = relays.map((r, i) => new NetworkingMessages({ relays: [r.address], ticket: ticket(`user${i}`, i + 1), relayOptions: { discoverFleet: false, bindAddress: '127.0.0.1' } }));
  try {
    const [ra, rb] = relays as [RelayServer, RelayServer];
    await until(peers, () => peers.every((p) => p.registered) && relays.every((r) => r.node.stats.fleetWrites > 0), 5000, 'registrations written to Redis');
    // Subscriptions are asynchronous on Redis: a first order may be published before they are made; repeat until heard.
    const t0 = performance.now();
    let next = 0;
    await until(peers, () => ra.node.sessionCount === 0, 2000, "alice's session on relay A closed by the revocation", () => {
      if (performance.now() < next) return;
      next = performance.now() + 200;
      void rb.revokeFleetWide({ ticketId: toHex(new Uint8Array(16).fill(1)) });
    });
    console.log(`# revoked through Redis in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(ra.node.stats.sessionsRevoked, 1);
    assert.equal(rb.node.sessionCount, 1, "bob's session stays");
    await rb.drainFleet('*', 5);
    await until(peers, () => ra.node.drainSeconds(monotonicUs()) > 0 && rb.node.drainSeconds(monotonicUs()) > 0, 2000, 'both relays draining');
    assert.equal(ra.fleetSubscribeFailures + rb.fleetSubscribeFailures, 0);
  } finally {
    for (const p of peers) p.close();
    for (const r of relays) r.close();
    await new Promise((r) => setTimeout(r, 50));
    for (const s of stores) await s.close();
    await redis.stop();
  }
});

test('three `netlane relay` processes in one Redis fleet: peers on different relays exchange reliable and unreliable messages over two-hop routes; kill -9 of a relay moves its peers within 1 s p95 with no reliable message lost', { skip: redisSkip() }, async () => {
  const redis = await startRedis();
  const procs: ChildProcess[] = [];
  const PAIRS = 20;
  // A relay is dead for a client after 350 ms of silence here (keepalives every 50 ms; the default is 1.2 s). Each
  // pair on its own loopback address: an open relay takes 8 sessions per address.
  const relayOptions = (i: number): NonNullable<NetworkingMessagesOptions['relayOptions']> => ({ discoverFleet: false, bindAddress: `127.0.0.${i + 2}`, keepaliveMs: 50, relayTimeoutMs: 350 });
  const peers: NetworkingMessages[] = [];
  try {
    const relays = [];
    for (let i = 0; i < 3; i++) {
      const r = await spawnRelay(['--redis', redis.url, '--region', `r${i}`]);
      procs.push(r.proc);
      relays.push(r);
    }
    const [r1, r2, r3] = relays as [(typeof relays)[0], (typeof relays)[0], (typeof relays)[0]];
    // X_i on relay 1 only; Y_i on relays 2 and 3 (primary and backup, whichever answers first).
    const xs = Array.from({ length: PAIRS }, (_, i) => new NetworkingMessages({ relays: [r1.address], relayOptions: relayOptions(i) }));
    const ys = Array.from({ length: PAIRS }, (_, i) => new NetworkingMessages({ relays: [r2.address, r3.address], relayOptions: relayOptions(i) }));
    peers.push(...xs, ...ys);
    await until(peers, () => peers.every((p) => p.registered), 10_000, 'every peer registered');
    for (const y of ys) y.on('sessionRequest', (id) => assert.equal(y.acceptSessionWithUser(id), true));
    const atY: string[][] = ys.map(() => []);
    const atX: string[][] = xs.map(() => []);
    const unreliableAtY = ys.map(() => 0);
    const arrivedAt: number[][] = ys.map(() => []);
    const read = (): void => {
      ys.forEach((y, i) => {
        for (const m of y.receiveMessagesOnChannel(0, 100)) {
          atY[i]?.push(Buffer.from(m.payload).toString());
          arrivedAt[i]?.push(performance.now());
        }
        unreliableAtY[i] = (unreliableAtY[i] as number) + y.receiveMessagesOnChannel(1, 100).length;
      });
      xs.forEach((x, i) => {
        for (const m of x.receiveMessagesOnChannel(0, 100)) atX[i]?.push(Buffer.from(m.payload).toString());
      });
    };
    const sent = xs.map(() => 0);
    const sendAll = (): void =>
      xs.forEach((x, i) => {
        const y = ys[i] as NetworkingMessages;
        assert.equal(x.sendMessageToUser(y.getIdentity(), Buffer.from(`m${sent[i]}`), SendFlags.Reliable, 0), Result.OK);
        sent[i] = (sent[i] as number) + 1;
        assert.equal(x.sendMessageToUser(y.getIdentity(), Buffer.from('u'), SendFlags.Unreliable, 1), Result.OK);
      });
    sendAll();
    await until(peers, () => atY.every((a) => a.length > 0), 15_000, 'the first message of every pair', read);
    for (let round = 0; round < 10; round++) {
      sendAll();
      ys.forEach((y, i) => y.sendMessageToUser((xs[i] as NetworkingMessages).getIdentity(), Buffer.from(`r${round}`), SendFlags.Reliable, 0));
      const next = performance.now() + 20;
      await until(peers, () => performance.now() >= next, 1000, 'the next round', read);
    }
    await until(peers, () => atY.every((a, i) => a.length === sent[i]) && atX.every((a) => a.length === 10), 10_000, 'every message of the exchange', read);
    assert.ok(unreliableAtY.every((n) => n >= 8), `unreliable messages arrive: ${unreliableAtY.join(' ')}`);
    const sessions = (p: NetworkingMessages): number[] => (p.relay?.relayPings() ?? []).filter((r) => r.session).map((r) => r.relay.port);
    assert.ok(xs.every((x) => sessions(x).join() === String(r1.port)), 'every X holds a session with relay 1 only');
    assert.ok(ys.every((y) => !sessions(y).includes(r1.port)), 'no Y holds a session with relay 1: X and Y meet over a trunk');

    // Kill -9 the relay that is the primary of the most Ys (at least 10 of 20).
    const onR2 = ys.map((y, i) => (y.relay?.primary?.port === r2.port ? i : -1)).filter((i) => i >= 0);
    const onR3 = ys.map((y, i) => (y.relay?.primary?.port === r3.port ? i : -1)).filter((i) => i >= 0);
    const [victim, moved] = onR2.length >= onR3.length ? [r2, onR2] : [r3, onR3];
    assert.ok(moved.length >= 10, `${moved.length} connections through the relay killed`);
    const firstAfter = [...sent];
    victim.proc.kill('SIGKILL');
    const killedAt = performance.now();
    const until2s = killedAt + 2500;
    while (performance.now() < until2s) {
      sendAll();
      const next = performance.now() + 20;
      await until(peers, () => performance.now() >= next, 1000, 'the next send', read);
    }
    await until(peers, () => atY.every((a, i) => a.length === sent[i]), 15_000, 'every reliable message sent across the kill', read);
    atY.forEach((a, i) => assert.deepEqual(a, Array.from({ length: sent[i] as number }, (_, k) => `m${k}`), `pair ${i}: every reliable message once, in order`));
    // A pair has moved when the first message X sent after the kill arrives at Y.
    const moves = moved.map((i) => ((arrivedAt[i] as number[])[firstAfter[i] as number] as number) - killedAt).sort((a, b) => a - b);
    const p95 = moves[Math.ceil(moves.length * 0.95) - 1] as number;
    console.log(`# moves (ms): ${moves.map(Math.round).join(" ")}`);
    console.log(`# ${moves.length} connections moved after kill -9: p50 ${Math.round(moves[moves.length >> 1] as number)} ms, p95 ${Math.round(p95)} ms, max ${Math.round(moves[moves.length - 1] as number)} ms`);
    assert.ok(p95 < 1000, `p95 of the moves ${Math.round(p95)} ms`);
    assert.ok(moved.every((i) => ys[i]?.relay?.primary?.port !== victim.port), 'every Y of the dead relay moved to its backup');
  } finally {
    for (const p of peers) p.close();
    for (const proc of procs) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await Promise.all(procs.map((proc) => exited(proc, 5000)));
    await redis.stop();
  }
});
