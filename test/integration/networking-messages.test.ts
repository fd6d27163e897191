// NetworkingMessages semantics from the GodotSteam seeds (002, 003) over real UDP on loopback: peers by
// id through an embedded relay (identity directory), and direct ip: identities without any relay.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { AUTO_RESTART_BROKEN_SESSION, NetworkingConnectionEnd, NetworkingMessages, type NetworkingIdentity, type NetworkingMessagesOptions, type SessionFailedInfo } from '../../src/api/networking-messages.js';
import { Result, SendFlags } from '../../src/core/types.js';
import { addressKey } from '../../src/relay/protocol.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { NetlaneError } from '../../src/util/errors.js';
import { Endpoint } from '../../src/core/endpoint.js';
import { SecureHandshake } from '../../src/crypto/handshake.js';
import { derivePeerId } from '../../src/crypto/identity.js';
import { NodeCryptoProvider } from '../../src/crypto/node-provider.js';
import { realScheduler } from '../../src/io/scheduler.js';
import { monotonicUs } from '../../src/io/clock.js';
import { EndpointDriver } from '../../src/io/driver.js';
import { CryptoRng } from '../../src/io/random.js';
import { UdpSocket } from '../../src/io/udp.js';
import { SeededRng } from '../../src/util/rng.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const text = (d: Uint8Array): string => Buffer.from(d).toString();

/** Runs frames (callbacks) until `done`, bounded in time and count. */
async function until(peers: readonly NetworkingMessages[], done: () => boolean, timeoutMs: number, what: string, each?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    for (const p of peers) p.runCallbacks();
    each?.();
    if (done()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** A relay in open mode and `n` peers registered in its directory. */
async function world(n: number, options: Partial<NetworkingMessagesOptions> = {}): Promise<{ relay: RelayServer; peers: NetworkingMessages[]; close: () => void }> {
  const relay = RelayServer.open({ open: true });
  const relays = [addressKey(relay.local)];
  const peers = Array.from({ length: n }, () => new NetworkingMessages({ relays, ...options }));
  const close = (): void => {
    for (const p of peers) p.close();
    relay.close();
  };
  await until(peers, () => peers.every((p) => p.registered), 5000, 'directory registrations');
  return { relay, peers, close };
}

/** Every peer accepts every session request it gets. */
function acceptAll(peers: readonly NetworkingMessages[]): void {
  for (const p of peers) p.on('sessionRequest', (id) => assert.equal(p.acceptSessionWithUser(id), true));
}

/**
 * The seed's semantics, message by message: every peer sends to every other, on channels 0-2, reliable
 * (numbered) and unreliable (numbered) messages, under fake 10 % loss both ways. Checked: every reliable
 * message arrives exactly once and in order per sender and channel; no unreliable message arrives twice;
 * every message comes from the identity that sent it.
 */
async function exchange(n: number, perPair: number): Promise<void> {
  const { relay, peers, close } = await world(n, { connectionConfig: { FakePacketLoss_Send: 10, FakePacketLoss_Recv: 0 } });
  try {
    acceptAll(peers);
    const channels = [0, 1, 2];
    const ids = peers.map((p) => p.getIdentity());
    for (let k = 0; k < perPair; k++) {
      for (const [i, p] of peers.entries()) {
        for (const [j, id] of ids.entries()) {
          if (i === j) continue;
          const ch = channels[k % channels.length] as number;
          assert.equal(p.sendMessageToUser(id, Buffer.from(`R|${i}|${ch}|${k}`), SendFlags.Reliable, ch), Result.OK);
          assert.equal(p.sendMessageToUser(id, Buffer.from(`U|${i}|${ch}|${k}`), SendFlags.Unreliable, ch), Result.OK);
        }
      }
      if (k % 20 === 19) await sleep(5);
    }
    // Per receiver: next reliable k expected per (sender, channel); unreliable seen.
    const nextReliable = peers.map(() => new Map<string, number>());
    const seenUnreliable = peers.map(() => new Set<string>());
    const reliableCount = peers.map(() => 0);
    const want = (n - 1) * perPair;
    await until(
      peers,
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
    assert.equal(relay.node.stats.forwardedPackets > 0, true, 'all of it went through the relay');
    for (const p of peers) assert.equal(p.getStats().sessionsFailed, 0);
  } finally {
    close();
  }
}

test('two peers through a relay, 10 % fake loss: reliable exactly once and in order per user and channel, unreliable never twice', async () => {
  await exchange(2, 300);
});

test('eight peers through a relay, 10 % fake loss: the same, every pair, message by message', async () => {
  await exchange(8, 60);
});

test('a session request, then accept: nothing is delivered before; the request repeats while unanswered; the state values are the seed\'s', async () => {
  const { peers, close } = await world(2);
  const [a, b] = peers as [NetworkingMessages, NetworkingMessages];
  try {
    const requests: NetworkingIdentity[] = [];
    b.on('sessionRequest', (id) => requests.push(id));
    assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 0, 'none');
    assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('hello'), SendFlags.Reliable, 0), Result.OK);
    assert.ok([1, 2].includes(a.getSessionConnectionInfo(b.getIdentity()).state), 'finding route or connecting');
    await until(peers, () => requests.length >= 2, 5000, 'a repeated session request');
    assert.ok(requests.every((id) => id === a.getIdentity()));
    assert.deepEqual(b.receiveMessagesOnChannel(0, 10), [], 'nothing before accept');
    assert.equal(b.getSessionConnectionInfo(a.getIdentity()).state, 1, 'connecting (pending accept)');
    assert.equal(b.acceptSessionWithUser(a.getIdentity()), true);
    let got: string[] = [];
    await until(peers, () => got.length > 0, 5000, 'the first message', () => (got = got.concat(b.receiveMessagesOnChannel(0, 10).map((m) => text(m.payload)))));
    assert.deepEqual(got, ['hello']);
    assert.equal(a.getSessionConnectionInfo(b.getIdentity()).state, 3, 'connected');
    const info = a.getSessionConnectionInfo(b.getIdentity(), true, true);
    assert.equal(info.identity, b.getIdentity());
    assert.equal(info.remoteAddress, addressKey((a.relay as NonNullable<typeof a.relay>).primary as { address: string; port: number }), 'the relay, never the peer');
    assert.equal(info.endReason, 0);
    assert.ok(typeof info.ping === 'number' && typeof info.sendRate === 'number' && typeof info.queueTime === 'number');
    assert.equal(b.acceptSessionWithUser(987654321n), false, 'no session with that user');
  } finally {
    close();
  }
});

test('messages from a user that is never accepted are never delivered; the sender gets sessionFailed and NoConnection until AutoRestartBrokenSession', async () => {
  const { peers, close } = await world(2, { connectionConfig: { TimeoutInitial: 1500 } });
  const [a, b] = peers as [NetworkingMessages, NetworkingMessages];
  try {
    const failed: SessionFailedInfo[] = [];
    a.on('sessionFailed', (f) => failed.push(f));
    let requests = 0;
    b.on('sessionRequest', () => requests++);
    for (let i = 0; i < 50; i++) assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from(`m${i}`), SendFlags.Reliable, 0), Result.OK);
    // And to an id nobody registered: it is looked up until TimeoutInitial, then fails with 4004.
    assert.equal(a.sendMessageToUser(424242n, Buffer.from('anyone?'), SendFlags.Reliable, 0), Result.OK);
    assert.equal(a.getSessionConnectionInfo(424242n).state, 2, 'finding route');
    await until(peers, () => failed.length >= 2, 8000, 'two sessionFailed', () => assert.deepEqual(b.receiveMessagesOnChannel(0, 100), []));
    const unknown = failed.find((f) => f.identity === 424242n);
    assert.equal(unknown?.reason, NetworkingConnectionEnd.CONNECTION_END_REMOTE_NOT_LOGGED_IN);
    failed.splice(failed.indexOf(unknown as SessionFailedInfo), 1);
    assert.ok(requests >= 1);
    const f = failed[0] as SessionFailedInfo;
    assert.equal(f.identity, b.getIdentity());
    assert.equal(f.state, 5, 'problem detected locally');
    assert.equal(f.reason, NetworkingConnectionEnd.CONNECTION_END_MISC_TIMEOUT);
    assert.ok(f.debugMessage.length > 0);
    assert.equal(a.getSessionConnectionInfo(b.getIdentity(), true).endReason, NetworkingConnectionEnd.CONNECTION_END_MISC_TIMEOUT);
    assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('again'), SendFlags.Reliable, 0), Result.NoConnection, 'a broken session refuses sends');
    // With the flag, a new session starts; this time B accepts, and only the new message arrives.
    b.on('sessionRequest', (id) => b.acceptSessionWithUser(id));
    assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('restarted'), SendFlags.Reliable | AUTO_RESTART_BROKEN_SESSION, 0), Result.OK);
    let got: string[] = [];
    await until(peers, () => got.length > 0, 5000, 'the restarted session', () => (got = got.concat(b.receiveMessagesOnChannel(0, 100).map((m) => text(m.payload)))));
    await sleep(100);
    got = got.concat(b.receiveMessagesOnChannel(0, 100).map((m) => text(m.payload)));
    assert.deepEqual(got, ['restarted'], 'none of the 50 unaccepted messages ever arrives');
  } finally {
    close();
  }
});

test('closing the last channel with a user closes the session; new data from that user raises a new session request', async () => {
  const { peers, close } = await world(2);
  const [a, b] = peers as [NetworkingMessages, NetworkingMessages];
  try {
    let requests = 0;
    b.on('sessionRequest', (id) => {
      requests++;
      b.acceptSessionWithUser(id);
    });
    a.sendMessageToUser(b.getIdentity(), Buffer.from('one'), SendFlags.Reliable, 3);
    a.sendMessageToUser(b.getIdentity(), Buffer.from('two'), SendFlags.Reliable, 4);
    const got: string[] = [];
    const read = (): void => {
      for (const ch of [3, 4]) for (const m of b.receiveMessagesOnChannel(ch, 10)) got.push(`${ch}:${text(m.payload)}`);
    };
    await until(peers, () => got.length === 2, 5000, 'two messages', read);
    assert.equal(requests, 1);
    assert.equal(b.closeChannelWithUser(a.getIdentity(), 9), false, 'a channel never used is not open');
    assert.equal(b.closeChannelWithUser(a.getIdentity(), 3), true);
    assert.equal(b.getSessionConnectionInfo(a.getIdentity()).state, 3, 'one channel still open');
    assert.equal(b.closeChannelWithUser(a.getIdentity(), 4), true);
    assert.equal(b.getSessionConnectionInfo(a.getIdentity()).state, 0, 'the last channel closed the session');
    // A's side ends quietly (it was idle): no sessionFailed; its next send makes a new session, and B is asked again.
    let failures = 0;
    a.on('sessionFailed', () => failures++);
    await until(peers, () => a.getSessionConnectionInfo(b.getIdentity()).state !== 3, 5000, 'A to see the close');
    assert.equal(a.sendMessageToUser(b.getIdentity(), Buffer.from('three'), SendFlags.Reliable, 3), Result.OK);
    await until(peers, () => got.length === 3, 5000, 'the third message', read);
    assert.equal(requests, 2, 'a new session request');
    assert.equal(got[2], '3:three');
    assert.equal(failures, 0);
  } finally {
    close();
  }
});

test('idle sessions time out (configurable, default 3 minutes) without a callback; the next send reconnects', async () => {
  const { peers, close } = await world(2, { sessionIdleTimeoutMs: 800 });
  const [a, b] = peers as [NetworkingMessages, NetworkingMessages];
  try {
    let requests = 0;
    let failures = 0;
    b.on('sessionRequest', (id) => {
      requests++;
      b.acceptSessionWithUser(id);
    });
    a.on('sessionFailed', () => failures++);
    b.on('sessionFailed', () => failures++);
    a.sendMessageToUser(b.getIdentity(), Buffer.from('x'), SendFlags.Reliable, 0);
    await until(peers, () => b.receiveMessagesOnChannel(0, 10).length === 1, 5000, 'a message');
    await until(peers, () => a.getSessionConnectionInfo(b.getIdentity()).state === 0 && b.getSessionConnectionInfo(a.getIdentity()).state === 0, 5000, 'both sessions idle out');
    assert.equal(a.getStats().idleTimeouts + b.getStats().idleTimeouts >= 1, true);
    assert.equal(failures, 0, 'no callback for an idle timeout');
    a.sendMessageToUser(b.getIdentity(), Buffer.from('y'), SendFlags.Reliable, 0);
    await until(peers, () => b.receiveMessagesOnChannel(0, 10).length === 1, 5000, 'a message after reconnecting');
    assert.equal(requests, 2);
  } finally {
    close();
  }
});

test('direct ip: identities work without any relay; channels beyond the lanes (negative, large) work too', async () => {
  const a = new NetworkingMessages({ bind: '127.0.0.1:0' });
  const b = new NetworkingMessages({ bind: '127.0.0.1:0' });
  try {
    const bAddr = `ip:127.0.0.1:${b.localAddress?.port}`;
    const aAddr = `ip:127.0.0.1:${a.localAddress?.port}`;
    const requests: NetworkingIdentity[] = [];
    b.on('sessionRequest', (id) => {
      requests.push(id);
      b.acceptSessionWithUser(id);
    });
    for (const ch of [0, 253, 254, 100_000, -5]) assert.equal(a.sendMessageToUser(bAddr, Buffer.from(`to ${ch}`), SendFlags.Reliable, ch), Result.OK);
    const got: string[] = [];
    await until([a, b], () => got.length === 5, 5000, 'five messages', () => {
      for (const ch of [0, 253, 254, 100_000, -5]) for (const m of b.receiveMessagesOnChannel(ch, 10)) got.push(`${m.channel}:${text(m.payload)}:${String(m.identity)}`);
    });
    assert.deepEqual(requests, [aAddr]);
    assert.deepEqual(got.sort(), [0, 253, 254, 100_000, -5].map((ch) => `${ch}:to ${ch}:${aAddr}`).sort());
    // The reply goes to the identity the message came from.
    assert.equal(b.sendMessageToUser(aAddr, Buffer.from('pong'), SendFlags.Reliable, 7), Result.OK);
    let reply: string[] = [];
    await until([a, b], () => reply.length === 1, 5000, 'the reply', () => (reply = reply.concat(a.receiveMessagesOnChannel(7, 10).map((m) => `${String(m.identity)}:${text(m.payload)}`))));
    assert.deepEqual(reply, [`${bAddr}:pong`]);
    // Misuse: bad identity, channel or payload.
    assert.equal(a.sendMessageToUser('nonsense', Buffer.from('x')), Result.InvalidParam);
    assert.equal(a.sendMessageToUser(5n, Buffer.from('x')), Result.InvalidParam, 'a peer id needs relays');
    assert.equal(a.sendMessageToUser(bAddr, Buffer.from('x'), 0, 1.5), Result.InvalidParam);
    assert.equal(a.sendMessageToUser(bAddr, new Uint8Array(600_000), SendFlags.Reliable, 0), Result.InvalidParam);
    assert.throws(() => a.sendMessageToUser(bAddr, 'text' as unknown as Uint8Array), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT');
  } finally {
    a.close();
    b.close();
  }
});

test('a relay that answers a lookup with someone else\'s route cannot stand in: the handshake shows another key, the session fails with 4003 and nothing is sent to the impostor', async () => {
  const { peers, close } = await world(3);
  const [alice, bob, mallory] = peers as [NetworkingMessages, NetworkingMessages, NetworkingMessages];
  try {
    const relay = bob.relay as NonNullable<typeof bob.relay>;
    const honest = relay.lookup.bind(relay);
    const poll = relay.pollEvent.bind(relay);
    // The directory lies to Bob: Alice's id resolves to Mallory's route.
    relay.lookup = (now, id) => honest(now, id === alice.getIdentity() ? mallory.getIdentity() : id);
    relay.pollEvent = () => {
      const e = poll();
      return e?.type === 'lookup' && e.peerId === mallory.getIdentity() ? { ...e, peerId: alice.getIdentity() } : e;
    };
    mallory.on('sessionRequest', (id) => mallory.acceptSessionWithUser(id));
    const failed: SessionFailedInfo[] = [];
    bob.on('sessionFailed', (f) => failed.push(f));
    bob.sendMessageToUser(alice.getIdentity(), Buffer.from('secret for alice'), SendFlags.Reliable, 0);
    await until(peers, () => failed.length > 0, 5000, 'sessionFailed');
    assert.equal(failed[0]?.reason, NetworkingConnectionEnd.CONNECTION_END_REMOTE_BAD_CERT);
    assert.equal(failed[0]?.identity, alice.getIdentity());
    assert.equal(bob.getStats().identityMismatches, 1);
    await sleep(100);
    mallory.runCallbacks();
    assert.deepEqual(mallory.receiveMessagesOnChannel(0, 10), [], 'the impostor got nothing');
  } finally {
    close();
  }
});

test('the P2P tutorial example runs: request, accept, handshake, turns, chat, and hostile payloads refused, with and without compression', () => {
  for (const extra of [[], ['--compress']]) {
    const r = spawnSync(process.execPath, ['dist/examples/p2p-tutorial.js', ...extra], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Host is requesting a P2P session/);
    assert.match(r.stdout, /handshake from Guest/);
    assert.match(r.stdout, /Host: gg/);
    assert.match(r.stdout, /host refused 3 hostile payloads/);
    assert.match(r.stdout, /p2p tutorial: OK/);
  }
});

test('a peer claiming a peer id that is not its key\'s is refused in the handshake (4003): no session request, nothing delivered', async () => {
  const bob = new NetworkingMessages({ bind: '127.0.0.1:0' });
  const provider = new NodeCryptoProvider();
  const victim = derivePeerId(provider, provider.signingKey().publicKey);
  const endpoint = new Endpoint({ rng: new CryptoRng(), handshake: new SecureHandshake({ provider, key: provider.signingKey(), identity: { kind: 'id', id: victim } }) });
  const udp = UdpSocket.open({ address: '127.0.0.1', port: 0 });
  const ends: number[] = [];
  const driver = new EndpointDriver(endpoint, udp, {
    scheduler: realScheduler,
    rng: new SeededRng(1),
    onServiced: () => {
      for (let e = endpoint.pollEvent(); e; e = endpoint.pollEvent()) if (e.type === 'connectionStatusChanged' && e.state >= 4) ends.push(e.endReason);
    },
  });
  try {
    let requests = 0;
    bob.on('sessionRequest', () => requests++);
    const cid = endpoint.connect(monotonicUs(), bob.localAddress as { address: string; port: number });
    endpoint.send(monotonicUs(), cid, Buffer.from('i am the victim'), SendFlags.Reliable, 0);
    driver.kick();
    await until([bob], () => ends.length > 0, 5000, 'the impostor refused');
    assert.equal(ends[0], NetworkingConnectionEnd.CONNECTION_END_REMOTE_BAD_CERT);
    assert.equal(requests, 0);
    assert.deepEqual(bob.receiveMessagesOnChannel(0, 10), []);
    assert.equal(bob.getSessionConnectionInfo(victim).state, 0);
  } finally {
    driver.close();
    bob.close();
  }
});
