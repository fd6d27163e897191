// NetworkManager semantics from the GameSDK seeds, over an embedded relay on loopback: result codes,
// events only inside runCallbacks, flush writes, channels matched by id and reliability, the lobby example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DiscordResult, NetworkManager } from '../../src/api/network-manager.js';
import { addressKey } from '../../src/relay/protocol.js';
import { RelayServer } from '../../src/io/relay-server.js';
import { NetlaneError } from '../../src/util/errors.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(done: () => boolean, timeoutMs: number, what: string, frame: () => void = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && !done(); i++) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    frame();
    await sleep(5);
  }
}

/** A relay and two managers with each other opened; no channels yet. */
async function pair(): Promise<{ relay: RelayServer; a: NetworkManager; b: NetworkManager; close: () => void }> {
  const relay = RelayServer.open({ open: true });
  const relays = [addressKey(relay.local)];
  const a = new NetworkManager({ relays });
  const b = new NetworkManager({ relays });
  const close = (): void => {
    a.close();
    b.close();
    relay.close();
  };
  await until(() => a.route !== null && b.route !== null, 5000, 'routes');
  assert.equal(a.openPeer(b.getPeerId(), b.route as string), DiscordResult.Ok);
  assert.equal(b.openPeer(a.getPeerId(), a.route as string), DiscordResult.Ok);
  await until(() => a.peerStatus(b.getPeerId())?.connected === true && b.peerStatus(a.getPeerId())?.connected === true, 5000, 'connected', () => {
    a.flush();
    b.flush();
  });
  return { relay, a, b, close };
}

test('result codes: bad route, unknown peer, self, duplicate open, channel out of range or not open; a peer id must be a bigint', async () => {
  const { a, b, close } = await pair();
  try {
    const other = b.getPeerId();
    assert.equal(typeof a.getPeerId(), 'bigint');
    assert.notEqual(a.getPeerId(), other);
    assert.equal(a.openPeer(12345n, 'not a route!'), DiscordResult.InvalidPayload);
    assert.equal(a.openPeer(12345n, 'AAAA'), DiscordResult.InvalidPayload);
    assert.equal(a.openPeer(a.getPeerId(), b.route as string), DiscordResult.InvalidCommand);
    assert.equal(a.openPeer(other, b.route as string), DiscordResult.Conflict);
    assert.equal(a.updatePeer(999n, b.route as string), DiscordResult.NotFound);
    assert.equal(a.openChannel(999n, 0, true), DiscordResult.NotFound);
    assert.equal(a.openChannel(other, 128, true), DiscordResult.InvalidChannel);
    assert.equal(a.openChannel(other, -1, true), DiscordResult.InvalidChannel);
    assert.equal(a.sendMessage(other, 3, new Uint8Array(1)), DiscordResult.InvalidChannel, 'channel not open');
    assert.equal(a.closeChannel(other, 3), DiscordResult.InvalidChannel);
    assert.equal(a.sendMessage(999n, 0, new Uint8Array(1)), DiscordResult.NotFound);
    assert.throws(() => a.openChannel(1 as unknown as bigint, 0, true), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_INVALID_ARGUMENT');
    assert.equal(a.closePeer(other), DiscordResult.Ok);
    assert.equal(a.closePeer(other), DiscordResult.NotFound);
  } finally {
    close();
  }
});

test('sendMessage queues and flush writes; message events fire only inside runCallbacks', async () => {
  const { a, b, close } = await pair();
  try {
    a.openChannel(b.getPeerId(), 1, true);
    b.openChannel(a.getPeerId(), 1, true);
    const got: string[] = [];
    b.on('message', (peer, ch, d) => {
      assert.equal(peer, a.getPeerId());
      assert.equal(ch, 1);
      got.push(Buffer.from(d).toString());
    });
    assert.equal(a.sendMessage(b.getPeerId(), 1, Buffer.from('loot')), DiscordResult.Ok);
    await sleep(150);
    b.runCallbacks();
    assert.deepEqual(got, [], 'nothing leaves before flush');
    assert.equal(a.flush(), DiscordResult.Ok);
    await sleep(150);
    assert.deepEqual(got, [], 'no event outside runCallbacks');
    b.runCallbacks();
    assert.deepEqual(got, ['loot']);
  } finally {
    close();
  }
});

test('a message arrives only on a channel the receiver has open with the same reliability; others are dropped and counted; channels are independent', async () => {
  const { a, b, close } = await pair();
  try {
    const pa = a.getPeerId();
    const pb = b.getPeerId();
    a.openChannel(pb, 1, true);
    a.openChannel(pb, 2, true);
    a.openChannel(pb, 3, false);
    b.openChannel(pa, 1, true); // same: delivered
    b.openChannel(pa, 2, false); // other reliability: dropped
    // channel 3 not open at b: dropped
    const got: [number, string][] = [];
    b.on('message', (_p, ch, d) => got.push([ch, Buffer.from(d).toString()]));
    for (let i = 0; i < 5; i++) for (const ch of [1, 2, 3]) a.sendMessage(pb, ch, Buffer.from(`${ch}:${i}`));
    a.flush();
    await until(() => got.length >= 5 && b.getStats().droppedWrongReliability >= 5 && b.getStats().droppedNoChannel >= 1, 5000, 'deliveries and drops', () => {
      a.flush();
      b.runCallbacks();
    });
    assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => [1, `1:${i}`]));
    assert.equal(b.getStats().droppedWrongReliability, 5);
    assert.ok(b.getStats().droppedNoChannel >= 1 && b.getStats().droppedNoChannel <= 5, 'unreliable ones may be lost, never duplicated');
    // Closing a channel stops delivery on it.
    assert.equal(b.closeChannel(pa, 1), DiscordResult.Ok);
    a.sendMessage(pb, 1, Buffer.from('after close'));
    a.flush();
    await until(() => b.getStats().droppedNoChannel >= 6, 5000, 'the drop after closeChannel', () => b.runCallbacks());
    assert.equal(got.length, 5);
  } finally {
    close();
  }
});

test('routeUpdate fires inside runCallbacks with the route getRoute reports', async () => {
  const relay = RelayServer.open({ open: true });
  const nm = new NetworkManager({ relays: [addressKey(relay.local)] });
  try {
    const routes: string[] = [];
    nm.on('routeUpdate', (r) => routes.push(r));
    await until(() => nm.route !== null, 5000, 'a route');
    assert.deepEqual(routes, []);
    nm.runCallbacks();
    assert.deepEqual(routes, [nm.route]);
  } finally {
    nm.close();
    relay.close();
  }
});

test('the GameSDK lobby example runs through an embedded relay and delivers all loot in order both ways', () => {
  const r = spawnSync(process.execPath, ['dist/examples/discord-lobby.js', '--seconds', '1.5'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /alice: loot (\d+)\/\1 received, each once, in order/);
  assert.match(r.stdout, /bob: loot (\d+)\/\1 received, each once, in order/);
});
