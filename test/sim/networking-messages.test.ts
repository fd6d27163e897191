// NetworkingMessages semantics from the GodotSteam seeds (002, 003) in virtual time: relays and peers in one
// SimNetwork (no sockets, no sleeps, no wall clock). Peers by id through relays (the identity directory),
// direct ip: identities without any relay, a lying directory, an impostor's certificate, and the
// directory as routes change (a relay's death, registrations out of order, three relays to choose from).
// Every test names its seed when it fails (replay: NETLANE_SEED=N).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUTO_RESTART_BROKEN_SESSION, NetworkingConnectionEnd, NetworkingMessages, type NetworkingIdentity, type NetworkingMessagesOptions, type SessionFailedInfo } from '../../src/api/networking-messages.js';
import { Endpoint } from '../../src/core/endpoint.js';
import { ConnectionState, Result, SendFlags, type SocketAddress } from '../../src/core/types.js';
import { derivePeerId } from '../../src/crypto/identity.js';
import type { RelayServer } from '../../src/io/relay-server.js';
import type { RelayClient, RelayClientEvent } from '../../src/relay/client/index.js';
import { RelayMsg, addressKey, decodeRoute } from '../../src/relay/protocol.js';
import { seededCryptoProvider, seededHandshake } from '../../src/testing/crypto.js';
import type { SimSocket } from '../../src/testing/sim-network.js';
import { NetlaneError } from '../../src/util/errors.js';
import { SeededRng } from '../../src/util/rng.js';
import { seedOr, withSeed } from '../support/sim.js';
import { World, type Framed } from '../support/world.js';

/** Every link: 5 ms one way, ±1 ms jitter (so packets also overtake each other). */
const LINK = { latencyUs: 5_000, jitterUs: 1_000 };
const MS = 1000;
const S = 1_000_000;

const text = (d: Uint8Array): string => Buffer.from(d).toString();
/** A facade's game-loop frame: its callbacks (what the test reads goes in `each`). */
const framed = (peers: readonly NetworkingMessages[]): Framed[] => peers.map((p) => ({ frame: () => p.runCallbacks() }));

/** A world with `relayCount` open relays and `n` peers registered in their directories. */
class MessagesWorld {
  readonly world: World;
  readonly relays: { server: RelayServer; address: string }[];
  readonly peers: NetworkingMessages[];
  readonly #frames: Framed[];

  constructor(seed: number, n: number, options: Partial<NetworkingMessagesOptions> = {}, relayCount = 1) {
    this.world = new World(seed, LINK);
    this.relays = Array.from({ length: relayCount }, () => this.world.relay());
    const relays = this.relays.map((r) => r.address);
    this.peers = Array.from({ length: n }, () => new NetworkingMessages({ relays, runtime: this.world.peerRuntime(), ...options }));
    this.#frames = framed(this.peers);
    // Registering takes a few datagrams per relay: a storm fails at once, not after minutes of events.
    const most = 20 * relayCount;
    // Registered, with a backup too when there is more than one relay (its route then changes once more).
    const entries = Math.min(2, relayCount);
    this.until(
      () => this.peers.every((p) => p.registered && decodeRoute(p.route as string).entries.length === entries),
      5000,
      'directory registrations',
      () => {
        for (const p of this.peers) assert.ok((p.getStats().relay?.datagramsSent ?? 0) <= most, `${p.getStats().relay?.datagramsSent} datagrams to ${relayCount} relays before registering`);
      },
    );
  }

  get now(): number {
    return this.world.sim.now;
  }

  get relay(): RelayServer {
    return (this.relays[0] as { server: RelayServer }).server;
  }

  /** Frames (every peer's callbacks, then `each`) until `done`, at most `ms` of virtual time. */
  until(done: () => boolean, ms: number, what: string, each?: () => void): void {
    this.world.drive(this.#frames, done, ms * MS, what, each);
  }

  /** `ms` of virtual time with frames. */
  run(ms: number, each?: () => void): void {
    this.world.run(this.#frames, ms * MS, each);
  }

  close(): void {
    for (const p of this.peers) p.close();
    this.world.close();
  }
}

/** Runs `fn` on a world of `n` peers and closes it, pass or fail. */
function inWorld(seed: number, n: number, options: Partial<NetworkingMessagesOptions>, fn: (w: MessagesWorld, peers: NetworkingMessages[]) => void, relayCount = 1): void {
  const w = new MessagesWorld(seed, n, options, relayCount);
  try {
    fn(w, w.peers);
    virtual(w.world);
  } finally {
    w.close();
  }
}

/** Prints how much virtual time a test covered. */
function virtual(world: World): void {
  console.log(`# virtual ${world.sim.now / S} s`);
}

/** Every peer accepts every session request it gets. */
function acceptAll(peers: readonly NetworkingMessages[]): void {
  for (const p of peers) p.on('sessionRequest', (id) => assert.equal(p.acceptSessionWithUser(id), true));
}

/** Appends what `p` has on `channels` to `got` as `channel:payload`. */
function reader(p: NetworkingMessages, channels: readonly number[], got: string[]): () => void {
  return () => {
    for (const ch of channels) for (const m of p.receiveMessagesOnChannel(ch, 100)) got.push(`${ch}:${text(m.payload)}`);
  };
}

/**
 * Passes every event of `p`'s relay client through `fn` (which may rewrite it): what the relays told `p`,
 * opened. Relay answers travel sealed, so this is where a test sees them, or plays a relay that lies.
 */
function relayEvents(p: NetworkingMessages, fn: (e: RelayClientEvent) => RelayClientEvent): void {
  const relay = p.relay as RelayClient;
  const poll = relay.pollEvent.bind(relay);
  relay.pollEvent = () => {
    const e = poll();
    return e ? fn(e) : null;
  };
}

/** Records every route the relays' directory returned to `asker` for `peerId` (not-found answers aside). */
function lookupAnswers(asker: NetworkingMessages, peerId: bigint): string[] {
  const answers: string[] = [];
  relayEvents(asker, (e) => {
    if (e.type === 'lookup' && e.peerId === peerId && e.result.ok) answers.push(e.result.route);
    return e;
  });
  return answers;
}

/**
 * The seed's semantics, message by message: every peer sends to every other, on channels 0-2, reliable
 * (numbered) and unreliable (numbered) messages, under fake 10 % loss both ways. Checked: every reliable
 * message arrives exactly once and in order per sender and channel; no unreliable message arrives twice;
 * every message comes from the identity that sent it.
 */
function exchange(seed: number, n: number, perPair: number): void {
  inWorld(seed, n, { connectionConfig: { FakePacketLoss_Send: 10, FakePacketLoss_Recv: 0 } }, (w, peers) => {
    acceptAll(peers);
    const channels = [0, 1, 2];
    const ids = peers.map((p) => p.getIdentity());
    const t0 = w.now;
    for (let k = 0; k < perPair; k++) {
      for (const [i, p] of peers.entries()) {
        for (const [j, id] of ids.entries()) {
          if (i === j) continue;
          const ch = channels[k % channels.length] as number;
          assert.equal(p.sendMessageToUser(id, Buffer.from(`R|${i}|${ch}|${k}`), SendFlags.Reliable, ch), Result.OK);
          assert.equal(p.sendMessageToUser(id, Buffer.from(`U|${i}|${ch}|${k}`), SendFlags.Unreliable, ch), Result.OK);
        }
      }
      if (k % 20 === 19) w.run(5); // the game goes on between bursts
    }
    // Per receiver: next reliable k expected per (sender, channel); unreliable seen.
    const nextReliable = peers.map(() => new Map<string, number>());
    const seenUnreliable = peers.map(() => new Set<string>());
    const reliableCount = peers.map(() => 0);
    const want = (n - 1) * perPair;
    w.until(
      () => reliableCount.every((c) => c === want),
      30_000,
      `${want} reliable messages at each of ${n} peers`,
      () => {
        for (const [r, p] of peers.entries()) {
          for (const ch of channels) {
            for (const m of p.receiveMessagesOnChannel(ch, 1000)) {
              const [kind, from, mch, k] = text(m.payload).split('|');
              assert.equal(Number(mch), ch, 'on the channel it was sent on');
              assert.equal(m.channel, ch);
              assert.equal(m.identity, ids[Number(from)], 'from the identity that sent it');
              assert.equal(m.size, m.payload.length);
              assert.equal(m.connection, 0);
              if (kind === 'R') {
                assert.equal(m.flags, SendFlags.Reliable);
                const key = `${from}|${ch}`;
                const expect = nextReliable[r]?.get(key) ?? channels.indexOf(ch);
                assert.equal(Number(k), expect, `reliable from ${from} on ${ch}: exactly once, in order`);
                nextReliable[r]?.set(key, expect + channels.length);
                reliableCount[r] = (reliableCount[r] as number) + 1;
              } else {
                const key = `${from}|${k}`;
                assert.ok(!seenUnreliable[r]?.has(key), `unreliable ${key} delivered twice`);
                seenUnreliable[r]?.add(key);
              }
            }
          }
        }
      },
    );
    const lossSeen = peers.reduce((a, p) => a + p.getStats().fakeLost, 0);
    assert.ok(lossSeen > 0, 'the fake loss dropped packets');
    assert.equal(w.relay.node.stats.forwardedPackets > 0, true, 'all of it went through the relay');
    for (const p of peers) assert.equal(p.getStats().sessionsFailed, 0);
    console.log(`# ${n} peers: ${want} reliable messages at each in ${(w.now - t0) / S} s virtual`);
  });
}

test('two peers through a relay, 10 % fake loss: reliable exactly once and in order per user and channel, unreliable never twice', () => {
  withSeed(seedOr(8101), (seed) => exchange(seed, 2, 300));
});

test('eight peers through a relay, 10 % fake loss: the same, every pair, message by message', () => {
  withSeed(seedOr(8102), (seed) => exchange(seed, 8, 60));
});

test("a session request, then accept: nothing is delivered before; the request repeats every second while unanswered; the state values are the seed's", () => {
  withSeed(seedOr(8103), (seed) =>
    inWorld(seed, 2, {}, (w, [a, b]) => {
      if (!a || !b) throw new Error('two peers');
      const requests: { id: NetworkingIdentity; at: number }[] = [];
      b.on('sessionRequest', (id) => requests.push({ id, at: w.now }));
      assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 0, 'none');
      assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('hello'), SendFlags.Reliable, 0), Result.OK);
      assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 2, 'finding route (a directory lookup)');
      w.until(() => a.getSessionConnectionInfo(b.getIdentity()).state === 1, 1000, 'connecting once the route is found');
      w.until(() => requests.length >= 2, 5000, 'a repeated session request', () => assert.deepEqual(b.receiveMessagesOnChannel(0, 10), [], 'nothing before accept'));
      assert.ok(requests.every((r) => r.id === a.getIdentity()));
      const gap = (requests[1] as { at: number }).at - (requests[0] as { at: number }).at;
      assert.ok(gap >= 990 * MS && gap <= 1020 * MS, `repeated after a second (${gap} us)`);
      assert.deepEqual(b.receiveMessagesOnChannel(0, 10), [], 'nothing before accept');
      assert.equal(b.getSessionConnectionInfo(a.getIdentity()).state, 1, 'connecting (pending accept)');
      assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 1, 'the sender is connecting until accepted');
      assert.equal(b.acceptSessionWithUser(a.getIdentity()), true);
      const got: string[] = [];
      w.until(() => got.length > 0, 5000, 'the first message', () => got.push(...b.receiveMessagesOnChannel(0, 10).map((m) => text(m.payload))));
      assert.deepEqual(got, ['hello']);
      assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 3, 'connected');
      const info = a.getSessionConnectionInfo(b.getIdentity(), true, true);
      assert.equal(info.identity, b.getIdentity());
      assert.equal(info.remoteAddress, addressKey((a.relay as NonNullable<typeof a.relay>).primary as SocketAddress), 'the relay, never the peer');
      assert.equal(info.endReason, 0);
      assert.ok(typeof info.ping === 'number' && typeof info.sendRate === 'number' && typeof info.queueTime === 'number');
      assert.equal(b.acceptSessionWithUser(987654321n), false, 'no session with that user');
    }),
  );
});

test('messages from a user that is never accepted are never delivered; the sender gets sessionFailed and NoConnection until AutoRestartBrokenSession', () => {
  withSeed(seedOr(8104), (seed) =>
    inWorld(seed, 2, { connectionConfig: { TimeoutInitial: 1500 } }, (w, [a, b]) => {
      if (!a || !b) throw new Error('two peers');
      const failed: (SessionFailedInfo & { at: number })[] = [];
      a.on('sessionFailed', (f) => failed.push({ ...f, at: w.now }));
      let requests = 0;
      b.on('sessionRequest', () => requests++);
      const t0 = w.now;
      for (let i = 0; i < 50; i++) assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from(`m${i}`), SendFlags.Reliable, 0), Result.OK);
      // And to an id nobody registered: it is looked up until TimeoutInitial, then fails with 4004.
      assert.equal(a.sendMessageToUser(424242n, Buffer.from('anyone?'), SendFlags.Reliable, 0), Result.OK);
      assert.equal(a.getSessionConnectionInfo(424242n).state, 2, 'finding route');
      w.until(
        () => failed.length >= 2,
        8000,
        'two sessionFailed',
        () => assert.deepEqual(b.receiveMessagesOnChannel(0, 100), []),
      );
      const unknown = failed.find((f) => f.identity === 424242n);
      assert.equal(unknown?.reason, NetworkingConnectionEnd.CONNECTION_END_REMOTE_NOT_LOGGED_IN);
      assert.ok((unknown?.at ?? 0) - t0 >= 1500 * MS, 'looked up until TimeoutInitial');
      assert.ok((unknown?.at ?? Infinity) - t0 <= 2100 * MS, 'and not much longer (a lookup every 500 ms)');
      failed.splice(failed.indexOf(unknown as SessionFailedInfo & { at: number }), 1);
      assert.ok(requests >= 1);
      const f = failed[0] as SessionFailedInfo & { at: number };
      assert.equal(f.identity, b.getIdentity());
      assert.equal(f.state, 5, 'problem detected locally');
      assert.equal(f.reason, NetworkingConnectionEnd.CONNECTION_END_MISC_TIMEOUT);
      assert.ok(f.debugMessage.length > 0);
      assert.ok(f.at - t0 >= 1500 * MS, 'the connection timed out after TimeoutInitial');
      assert.equal(a.getSessionConnectionInfo(b.getIdentity(), true).endReason, NetworkingConnectionEnd.CONNECTION_END_MISC_TIMEOUT);
      assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 5);
      assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('again'), SendFlags.Reliable, 0), Result.NoConnection, 'a broken session refuses sends');
      w.run(2000);
      assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('again'), SendFlags.Reliable, 0), Result.NoConnection, 'until restarted, however long');
      // With the flag, a new session starts; this time B accepts, and only the new message arrives.
      b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
      assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('restarted'), SendFlags.Reliable | AUTO_RESTART_BROKEN_SESSION, 0), Result.OK);
      const got: string[] = [];
      const read = (): void => void got.push(...b.receiveMessagesOnChannel(0, 100).map((m) => text(m.payload)));
      w.until(() => got.length > 0, 5000, 'the restarted session', read);
      w.run(2000, read);
      assert.deepEqual(got, ['restarted'], 'none of the 50 unaccepted messages ever arrives');
      assert.equal(a.getStats().sessionsFailed, 2);
    }),
  );
});

test('closing the last channel with a user closes the session; new data from that user raises a new session request', () => {
  withSeed(seedOr(8105), (seed) =>
    inWorld(seed, 2, {}, (w, [a, b]) => {
      if (!a || !b) throw new Error('two peers');
      let requests = 0;
      b.on('sessionRequest', (id) => {
        requests++;
        b.acceptSessionWithUser(id);
      });
      a.sendMessageToUser(b.getIdentity(), Buffer.from('one'), SendFlags.Reliable, 3);
      a.sendMessageToUser(b.getIdentity(), Buffer.from('two'), SendFlags.Reliable, 4);
      const got: string[] = [];
      const read = reader(b, [3, 4], got);
      w.until(() => got.length === 2, 5000, 'two messages', read);
      assert.deepEqual(got, ['3:one', '4:two']);
      assert.equal(requests, 1);
      assert.equal(b.closeChannelWithUser(a.getIdentity(), 9), false, 'a channel never used is not open');
      assert.equal(b.closeChannelWithUser(a.getIdentity(), 3), true);
      assert.equal(b.getSessionConnectionInfo(a.getIdentity()).state, 3, 'one channel still open');
      assert.equal(b.closeChannelWithUser(a.getIdentity(), 4), true);
      assert.equal(b.getSessionConnectionInfo(a.getIdentity()).state, 0, 'the last channel closed the session');
      // A's side ends quietly (it was idle): no sessionFailed; its next send makes a new session, and B is asked again.
      let failures = 0;
      a.on('sessionFailed', () => failures++);
      w.until(() => a.getSessionConnectionInfo(b.getIdentity()).state !== 3, 5000, 'A to see the close');
      assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 0, 'quietly: no session, not a failed one');
      assert.equal(a.getStats().quietCloses, 1);
      assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('three'), SendFlags.Reliable, 3), Result.OK);
      w.until(() => got.length === 3, 5000, 'the third message', read);
      assert.equal(requests, 2, 'a new session request');
      assert.equal(got[2], '3:three');
      assert.equal(failures, 0);
    }),
  );
});

/** A message from A to B (B accepts), then nothing: how long until both sessions idle out, µs after the send. */
function idleOut(w: MessagesWorld, a: NetworkingMessages, b: NetworkingMessages, maxMs: number, quietMs: number): number {
  let failures = 0;
  a.on('sessionFailed', () => failures++);
  b.on('sessionFailed', () => failures++);
  const t0 = w.now;
  a.sendMessageToUser(b.getIdentity(), Buffer.from('x'), SendFlags.Reliable, 0);
  const got: string[] = [];
  w.until(() => got.length === 1, 5000, 'a message', reader(b, [0], got));
  const both = (state: number): boolean => a.getSessionConnectionInfo(b.getIdentity()).state === state && b.getSessionConnectionInfo(a.getIdentity()).state === state;
  // Quiet for `quietMs`: both sessions stay up.
  w.run(quietMs - (w.now - t0) / MS, () => assert.ok(both(3), `both sessions up ${(w.now - t0) / S} s after the last message`));
  w.until(() => both(0), maxMs, 'both sessions idle out');
  assert.equal(a.getStats().idleTimeouts + b.getStats().idleTimeouts >= 1, true);
  assert.equal(failures, 0, 'no callback for an idle timeout');
  return w.now - t0;
}

test('idle sessions time out (configurable) without a callback; the next send reconnects', () => {
  withSeed(seedOr(8106), (seed) =>
    inWorld(seed, 2, { sessionIdleTimeoutMs: 800 }, (w, [a, b]) => {
      if (!a || !b) throw new Error('two peers');
      let requests = 0;
      b.on('sessionRequest', (id) => {
        requests++;
        b.acceptSessionWithUser(id);
      });
      const took = idleOut(w, a, b, 5000, 790);
      assert.ok(took >= 800 * MS && took <= 1000 * MS, `idle out after 800 ms (${took / MS} ms)`);
      a.sendMessageToUser(b.getIdentity(), Buffer.from('y'), SendFlags.Reliable, 0);
      const got: string[] = [];
      w.until(() => got.length === 1, 5000, 'a message after reconnecting', reader(b, [0], got));
      assert.deepEqual(got, ['0:y']);
      assert.equal(requests, 2);
    }),
  );
});

test('idle sessions time out after 3 minutes by default, not before', () => {
  withSeed(seedOr(8107), (seed) =>
    inWorld(seed, 2, {}, (w, [a, b]) => {
      if (!a || !b) throw new Error('two peers');
      b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
      const took = idleOut(w, a, b, 10_000, 179_900);
      assert.ok(took >= 180 * S && took <= 181 * S, `idle out after 180 s (${took / S} s)`);
      assert.equal(a.registered && b.registered, true, 'still registered after 3 minutes');
    }),
  );
});

test('direct ip: identities work without any relay; channels beyond the lanes (negative, large) work too', () => {
  withSeed(seedOr(8108), (seed) => {
    const world = new World(seed, LINK);
    const a = new NetworkingMessages({ bind: '10.0.2.1:0', runtime: world.sim.runtime('10.0.2.1') });
    const b = new NetworkingMessages({ bind: '10.0.2.2:0', runtime: world.sim.runtime('10.0.2.2') });
    const frames = framed([a, b]);
    try {
      assert.equal(a.localAddress?.address, '10.0.2.1');
      assert.equal(a.relay, null);
      const bAddr = `ip:10.0.2.2:${b.localAddress?.port}`;
      const aAddr = `ip:10.0.2.1:${a.localAddress?.port}`;
      const requests: NetworkingIdentity[] = [];
      b.on('sessionRequest', (id) => {
        requests.push(id);
        b.acceptSessionWithUser(id);
      });
      const channels = [0, 253, 254, 100_000, -5];
      for (const ch of channels) assert.equal(a.sendMessageToUser(bAddr, Buffer.from(`to ${ch}`), SendFlags.Reliable, ch), Result.OK);
      const got: string[] = [];
      world.drive(frames, () => got.length === 5, 5 * S, 'five messages', () => {
        for (const ch of channels) for (const m of b.receiveMessagesOnChannel(ch, 10)) got.push(`${m.channel}:${text(m.payload)}:${String(m.identity)}`);
      });
      assert.deepEqual(requests, [aAddr]);
      assert.deepEqual(got.sort(), channels.map((ch) => `${ch}:to ${ch}:${aAddr}`).sort());
      // The reply goes to the identity the message came from.
      assert.equal(b.sendMessageToUser(aAddr, Buffer.from('pong'), SendFlags.Reliable, 7), Result.OK);
      const reply: string[] = [];
      world.drive(frames, () => reply.length === 1, 5 * S, 'the reply', () => reply.push(...a.receiveMessagesOnChannel(7, 10).map((m) => `${String(m.identity)}:${text(m.payload)}`)));
      assert.deepEqual(reply, [`${bAddr}:pong`]);
      const info = a.getSessionConnectionInfo(bAddr, true);
      assert.equal(info.state, 3);
      assert.equal(info.remoteAddress, `10.0.2.2:${b.localAddress?.port}`, 'a direct session goes to the peer itself');
      // Misuse: bad identity, channel or payload.
      assert.equal(a.sendMessageToUser('nonsense', Buffer.from('x')), Result.InvalidParam);
      assert.equal(a.sendMessageToUser(5n, Buffer.from('x')), Result.InvalidParam, 'a peer id needs relays');
      assert.equal(a.sendMessageToUser(bAddr, Buffer.from('x'), 0, 1.5), Result.InvalidParam);
      assert.equal(a.sendMessageToUser(bAddr, new Uint8Array(600_000), SendFlags.Reliable, 0), Result.InvalidParam);
      assert.throws(() => a.sendMessageToUser(bAddr, 'text' as unknown as Uint8Array), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT');
      virtual(world);
    } finally {
      a.close();
      b.close();
    }
  });
});

test("a relay that answers a lookup with someone else's route cannot stand in: the handshake shows another key, the session fails with 4003 and nothing is sent to the impostor", () => {
  withSeed(seedOr(8109), (seed) =>
    inWorld(seed, 3, {}, (w, [alice, bob, mallory]) => {
      if (!alice || !bob || !mallory) throw new Error('three peers');
      // The relay lies: its lookup answer for Alice's id carries Mallory's route. (It comes sealed under Bob's
      // session key, so only the relay itself can lie, not the network: the lie is told at Bob's relay client.)
      let lies = 0;
      let lying = true;
      relayEvents(bob, (e) => {
        if (!lying || e.type !== 'lookup' || e.peerId !== alice.getIdentity() || !e.result.ok) return e;
        lies++;
        return { ...e, result: { ok: true, route: mallory.route as string, parsed: decodeRoute(mallory.route as string) } };
      });
      mallory.on('sessionRequest', (id) => mallory.acceptSessionWithUser(id));
      const failed: SessionFailedInfo[] = [];
      bob.on('sessionFailed', (f) => failed.push(f));
      let aliceRequests = 0;
      alice.on('sessionRequest', () => aliceRequests++);
      bob.sendMessageToUser(alice.getIdentity(), Buffer.from('secret for alice'), SendFlags.Reliable, 0);
      w.until(() => failed.length > 0, 5000, 'sessionFailed');
      assert.ok(lies >= 1, 'the lie was told');
      assert.equal(failed[0]?.reason, NetworkingConnectionEnd.CONNECTION_END_REMOTE_BAD_CERT);
      assert.equal(failed[0]?.identity, alice.getIdentity());
      assert.equal(failed[0]?.state, 5);
      assert.equal(bob.getStats().identityMismatches, 1);
      assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('more'), SendFlags.Reliable, 0), Result.NoConnection);
      const leaked: string[] = [];
      w.run(2000, () => leaked.push(...mallory.receiveMessagesOnChannel(0, 10).map((m) => text(m.payload))));
      assert.deepEqual(leaked, [], 'the impostor got nothing');
      assert.equal(aliceRequests, 0, 'Alice was never reached');
      // With an honest directory again, a restarted session reaches Alice herself.
      lying = false;
      alice.on('sessionRequest', (id) => alice.acceptSessionWithUser(id));
      assert.equal(bob.sendMessageToUser(alice.getIdentity(), Buffer.from('for alice'), SendFlags.Reliable | AUTO_RESTART_BROKEN_SESSION, 0), Result.OK);
      const got: string[] = [];
      w.until(() => got.length > 0, 5000, 'the message at Alice', () => got.push(...alice.receiveMessagesOnChannel(0, 10).map((m) => `${String(m.identity)}:${text(m.payload)}`)));
      assert.deepEqual(got, [`${bob.getIdentity()}:for alice`]);
      assert.deepEqual(mallory.receiveMessagesOnChannel(0, 10), []);
    }),
  );
});

test("a peer claiming a peer id that is not its key's is refused in the handshake (4003): no session request, nothing delivered", () => {
  withSeed(seedOr(8110), (seed) => {
    const world = new World(seed, LINK);
    const sim = world.sim;
    const bob = new NetworkingMessages({ bind: '10.0.2.1:0', runtime: sim.runtime('10.0.2.1') });
    try {
      const provider = seededCryptoProvider(seed + 1);
      const key = provider.signingKey();
      const victim = derivePeerId(provider, provider.signingKey().publicKey);
      assert.notEqual(victim, derivePeerId(provider, key.publicKey));
      const endpoint = new Endpoint({ rng: new SeededRng(seed ^ 0x1ee7), handshake: seededHandshake(seed + 2, { provider, key, identity: { kind: 'id', id: victim } }) });
      const impostor = sim.addHost({ address: '10.0.9.9', port: 50000 }, endpoint);
      const ends: number[] = [];
      impostor.onEvent = (e) => {
        if (e.type === 'connectionStatusChanged' && e.state >= ConnectionState.ClosedByPeer) ends.push(e.endReason);
      };
      let requests = 0;
      bob.on('sessionRequest', () => requests++);
      const cid = endpoint.connect(sim.now, bob.localAddress as SocketAddress);
      endpoint.send(sim.now, cid, Buffer.from('i am the victim'), SendFlags.Reliable, 0);
      world.drive(framed([bob]), () => ends.length > 0, 5 * S, 'the impostor refused', () => assert.deepEqual(bob.receiveMessagesOnChannel(0, 10), []));
      assert.equal(ends[0], NetworkingConnectionEnd.CONNECTION_END_REMOTE_BAD_CERT);
      assert.equal(requests, 0);
      assert.deepEqual(bob.receiveMessagesOnChannel(0, 10), []);
      assert.equal(bob.getSessionConnectionInfo(victim).state, 0);
      assert.equal(bob.getSessionConnectionInfo(`ip:10.0.9.9:50000`).state, 0, 'no session by address either');
      virtual(world);
    } finally {
      bob.close();
    }
  });
});

test("the directory follows a peer's route: its relay dies, it fails over and registers the new route; lookups return it and a new session reaches the peer", () => {
  withSeed(seedOr(8111), (seed) =>
    inWorld(
      seed,
      2,
      {},
      (w, [a, b]) => {
        if (!a || !b) throw new Error('two peers');
        acceptAll([a, b]);
        // Lookup answers that found B (a relay B is not registered with answers NotFound, and the next is asked).
        const answers = lookupAnswers(a, b.getIdentity());
        const got: string[] = [];
        const read = reader(b, [0], got);
        a.sendMessageToUser(b.getIdentity(), Buffer.from('before'), SendFlags.Reliable, 0);
        w.until(() => got.length === 1, 5000, 'a message on the first route', read);
        const oldRoute = b.route as string;
        assert.deepEqual(answers, [oldRoute], 'the lookup returned the registered route');
        const dead = addressKey((b.relay as NonNullable<typeof b.relay>).primary as SocketAddress);
        const registeredBefore = b.getStats().relay?.dirRegistered ?? 0;
        // B's primary relay dies; A's session with B, done with, goes.
        assert.equal(a.closeSessionWithUser(b.getIdentity()), true);
        assert.equal(b.closeSessionWithUser(a.getIdentity()), true);
        const killedAt = w.now;
        w.world.kill(dead);
        // The backup takes over at once (a one-relay route), then a new backup joins: both registered.
        const settled = (): boolean => b.route !== oldRoute && decodeRoute(b.route as string).entries.length === 2 && b.registered && a.registered;
        w.until(settled, 10_000, 'a new route with a new backup, registered');
        const route = decodeRoute(b.route as string);
        assert.ok(route.revision > decodeRoute(oldRoute).revision);
        assert.ok(route.entries.every((e) => addressKey(e.relay) !== dead), 'the dead relay is out of the route');
        assert.ok((b.getStats().relay?.dirRegistered ?? 0) > registeredBefore, 'registered again');
        assert.ok(w.now - killedAt <= 3 * S, `failed over and registered in ${(w.now - killedAt) / S} s`);
        // A new session: the lookup returns the new route, and the message gets there through a live relay.
        a.sendMessageToUser(b.getIdentity(), Buffer.from('after'), SendFlags.Reliable, 0);
        w.until(() => got.length === 2, 5000, 'a message on the new route', read);
        assert.deepEqual(got, ['0:before', '0:after']);
        assert.equal(answers.at(-1), b.route, 'the lookup returned the new route');
        assert.ok(!answers.slice(1).includes(oldRoute), 'never the old one again');
        const via = a.getSessionConnectionInfo(b.getIdentity(), true).remoteAddress;
        assert.ok(via !== dead && route.entries.some((e) => addressKey(e.relay) === via), `through B's new relay (${via})`);
        for (const p of [a, b]) assert.equal(p.getStats().sessionsFailed, 0);
      },
      3,
    ),
  );
});

test('peers with three relays on a jittery link each find a primary and a backup and register without a ping storm', () => {
  withSeed(seedOr(8112), (seed) =>
    inWorld(
      seed,
      4,
      {},
      (w, peers) => {
        for (const p of peers) {
          const pings = p.relay?.relayPings() ?? [];
          assert.equal(pings.filter((r) => r.primary).length, 1);
          assert.equal(decodeRoute(p.route as string).entries.length, 2, 'primary and backup');
          assert.ok(pings.every((r) => r.pingMs > 0), 'every relay measured');
        }
        const sent = peers.map((p) => p.getStats().relay?.datagramsSent ?? 0);
        w.run(5000);
        for (const [i, p] of peers.entries()) {
          const more = (p.getStats().relay?.datagramsSent ?? 0) - (sent[i] as number);
          assert.ok(more <= 50, `${more} datagrams to the relays in 5 idle seconds (keepalives and a probe)`);
        }
      },
      3,
    ),
  );
});

test('a registration that arrives after a newer one (same second) is refused as stale: lookups keep returning the newer route', () => {
  withSeed(seedOr(8113), (seed) => {
    const world = new World(seed, LINK);
    const relays = [world.relay(), world.relay()];
    const addrs = relays.map((r) => r.address);
    const sim = world.sim;
    const relaySocket = (i: number): SimSocket => sim.socketAt(relays[i]?.server.local as SocketAddress) as SimSocket;
    // B is 30 ms further from the second relay, so that its route is first the first relay alone
    // (revision 1), then both. Its registration of revision 1 with the first relay is held back.
    const bIp = '10.0.1.2';
    const held: { from: SocketAddress; data: Uint8Array }[] = [];
    sim.intercept = (from, to, data, now) => {
      if (from.address !== bIp) return data;
      if (to.address === relays[1]?.server.local.address) {
        sim.inject(from, relaySocket(1), data, now + 30 * MS);
        return null;
      }
      // B's first sealed message to the first relay larger than a keepalive is its registration of revision 1.
      if (data[0] === RelayMsg.Sealed && data.length > 200 && held.length === 0) {
        held.push({ from, data: data.slice() });
        return null;
      }
      return data;
    };
    const a = new NetworkingMessages({ relays: addrs, runtime: sim.runtime('10.0.1.1') });
    const b = new NetworkingMessages({ relays: addrs, runtime: sim.runtime(bIp) });
    const frames = framed([a, b]);
    try {
      world.drive(frames, () => [a, b].every((p) => p.registered && decodeRoute(p.route as string).entries.length === 2), 5 * S, 'registrations');
      assert.ok(held.length >= 1, 'revision 1 was registered (and held back)');
      assert.equal(decodeRoute(b.route as string).revision, 2);
      assert.equal(addressKey(b.relay?.primary as SocketAddress), relays[0]?.at);
      // Now it arrives, late (within the same second): the relay keeps revision 2.
      sim.intercept = null;
      const staleBefore = relays[0]?.server.node.stats.dirRefusedBy.stale ?? 0;
      sim.inject((held[0] as { from: SocketAddress }).from, relaySocket(0), (held[0] as { data: Uint8Array }).data);
      world.run(frames, 100 * MS);
      assert.equal((relays[0]?.server.node.stats.dirRefusedBy.stale ?? 0) - staleBefore, 1, 'refused as stale');
      const answers = lookupAnswers(a, b.getIdentity());
      b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
      a.sendMessageToUser(b.getIdentity(), Buffer.from('hi'), SendFlags.Reliable, 0);
      const got: string[] = [];
      world.drive(frames, () => got.length === 1, 5 * S, 'the message', reader(b, [0], got));
      assert.equal(answers[0], b.route, 'the lookup returned the newest route');
      virtual(world);
    } finally {
      a.close();
      b.close();
      world.close();
    }
  });
});

test('links by consent: nothing reaches a user before it accepts; closing the session with a requester refuses its link, and the sender fails at once with 5012, not a timeout', () => {
  withSeed(seedOr(8120), (seed) =>
    inWorld(seed, 2, {}, (w, [a, b]) => {
      if (!a || !b) throw new Error('two peers');
      let requests = 0;
      b.on('sessionRequest', () => requests++);
      const failed: SessionFailedInfo[] = [];
      a.on('sessionFailed', (f) => failed.push(f));
      const bEndpoint = (): number => b.getStats().endpoint.datagramsReceived;
      const before = bEndpoint();
      assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('hello'), SendFlags.Reliable, 0), Result.OK);
      w.until(() => requests >= 1, 2000, 'the request (a link offer)');
      assert.equal(b.getSessionConnectionInfo(a.getIdentity()).state, 1, 'B sees the request as connecting');
      w.run(1500);
      assert.equal(bEndpoint() - before, 0, 'not one datagram of A reached B before it accepted');
      assert.ok(requests >= 2, 'the request repeats while the offer waits');
      const t0 = w.now;
      assert.equal(b.closeSessionWithUser(a.getIdentity()), true);
      w.until(() => failed.length > 0, 2000, 'sessionFailed at A');
      assert.equal(failed[0]?.reason, 5012, 'the link was not accepted');
      assert.ok(w.now - t0 < 500_000, `failed ${(w.now - t0) / 1000} ms after the refusal`);
      assert.equal(bEndpoint() - before, 0, 'still nothing at B');
    }),
  );
});
