// The fleet store contract (src/io/fleet-store.ts), run against both implementations: the in-memory one
// (virtual clock) and Redis on a real redis-server (test/support/redis.ts; skipped only off CI when it is
// not installed). TTLs, newest-wins writes, conditional deletes, sets, pub/sub, and failure while down.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFleetStore, openRedisFleetStore, type FleetStore } from '../../src/io/fleet-store.js';
import { NetlaneError } from '../../src/util/errors.js';
import { redisSkip, startRedis, type RedisServer } from '../support/redis.js';

/** A store under test and how to let `ms` pass for its TTLs. */
interface Subject {
  readonly store: FleetStore;
  readonly pass: (ms: number) => Promise<void>;
  /** Makes the store unreachable, and reachable again. */
  readonly down: () => Promise<void>;
  readonly up: () => Promise<void>;
}

function contract(name: string, open: () => Promise<Subject>, skip: string | false = false): void {
  describe(`fleet store contract: ${name}`, { skip }, () => {
    let s: Subject;
    before(async () => {
      s = await open();
    });
    after(async () => {
      await s.store.close();
    });

    test('set, get, getMany, delete; a key expires after its TTL and refresh extends it', async () => {
      const st = s.store;
      // TTL 1 s; 0.6 s, refresh, 0.6 s (alive), 0.5 s (gone): a timer up to 0.4 s late still passes.
      await st.set('t1:a', 'A', 1000);
      await st.set('t1:b', 'B', 1000);
      assert.equal(await st.get('t1:a'), 'A');
      assert.deepEqual(await st.getMany(['t1:a', 't1:missing', 't1:b']), ['A', null, 'B']);
      assert.deepEqual(await st.getMany([]), []);
      await st.delete('t1:b');
      assert.equal(await st.get('t1:b'), null);
      await s.pass(600);
      assert.equal(await st.refresh('t1:a', 1000), true);
      assert.equal(await st.refresh('t1:gone', 1000), false);
      await s.pass(600);
      assert.equal(await st.get('t1:a'), 'A', 'refreshed: alive 1.2 s after it was set with 1 s');
      await s.pass(500);
      assert.equal(await st.get('t1:a'), null, 'expired');
    });

    test('setIfNewer: a higher order replaces, a lower one is refused, an equal one overwrites; get returns the value alone', async () => {
      const st = s.store;
      const big = 1_900_000_000 * 0x400000 + 5; // a registration order near the top of the range
      assert.equal(await st.setIfNewer('t2:id', big, 'route-1', 1000), true);
      assert.equal(await st.setIfNewer('t2:id', big - 1, 'route-0', 1000), false, 'older refused');
      assert.equal(await st.get('t2:id'), 'route-1');
      assert.equal(await st.setIfNewer('t2:id', big, 'route-1b', 1000), true, 'equal order overwrites');
      assert.equal(await st.setIfNewer('t2:id', big + 1, 'route-2', 1000), true);
      assert.equal(await st.get('t2:id'), 'route-2');
      assert.deepEqual(await st.getMany(['t2:id']), ['route-2']);
    });

    test('delete with ifValue deletes only while the key holds that value (a newer writer keeps its own)', async () => {
      const st = s.store;
      await st.setIfNewer('t3:id', 10, 'old', 1000);
      await st.setIfNewer('t3:id', 11, 'new', 1000);
      await st.delete('t3:id', 'old');
      assert.equal(await st.get('t3:id'), 'new', 'the newer value stays');
      await st.delete('t3:id', 'new');
      assert.equal(await st.get('t3:id'), null);
      await st.set('t3:plain', 'v', 1000);
      await st.delete('t3:plain', 'other');
      assert.equal(await st.get('t3:plain'), 'v');
      await st.delete('t3:plain', 'v');
      assert.equal(await st.get('t3:plain'), null);
    });

    test('sets of members: add, list, remove', async () => {
      const st = s.store;
      await st.addMember('t4:set', 'x');
      await st.addMember('t4:set', 'y');
      await st.addMember('t4:set', 'x');
      assert.deepEqual((await st.members('t4:set')).sort(), ['x', 'y']);
      await st.removeMember('t4:set', 'x');
      assert.deepEqual(await st.members('t4:set'), ['y']);
      assert.deepEqual(await st.members('t4:none'), []);
    });

    test('publish reaches a subscriber of the channel; after unsubscribe nothing does', async () => {
      const st = s.store;
      const got: string[] = [];
      await st.subscribe('t5:ch', (m) => got.push(m));
      await st.publish('t5:ch', 'one');
      await st.publish('t5:other', 'not mine');
      const end = performance.now() + 2000;
      while (got.length < 1 && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(got, ['one']);
      await st.unsubscribe('t5:ch');
      await st.publish('t5:ch', 'two');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(got, ['one']);
    });

    test('while the store is down every call fails with ERR_NETLANE_STORE_UNAVAILABLE; it works again when it is back', async () => {
      const st = s.store;
      await s.down();
      await assert.rejects(async () => st.get('t6:k'), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_STORE_UNAVAILABLE');
      await assert.rejects(async () => st.set('t6:k', 'v', 1000), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_STORE_UNAVAILABLE');
      await s.up();
      await st.set('t6:k', 'v', 1000);
      assert.equal(await st.get('t6:k'), 'v');
    });
  });
}

contract('memory', async () => {
  let nowUs = 0;
  const store = new MemoryFleetStore(() => nowUs);
  return {
    store,
    pass: async (ms) => {
      nowUs += ms * 1000;
    },
    down: async () => {
      store.available = false;
    },
    up: async () => {
      store.available = true;
    },
  };
});

let redis: RedisServer | null = null;
contract(
  'redis',
  async () => {
    const server = (redis = await startRedis());
    const store = await openRedisFleetStore(server.url);
    return {
      store,
      pass: (ms) => new Promise((r) => setTimeout(r, ms)),
      down: () => server.stop(),
      // Back on the same port: the client reconnects by itself (within about a second).
      up: async () => {
        await server.start();
        const end = performance.now() + 5000;
        for (;;) {
          try {
            await store.get('probe');
            return;
          } catch (e) {
            if (performance.now() > end) throw e;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      },
    };
  },
  redisSkip(),
);

after(async () => {
  await redis?.stop();
});

test('openRedisFleetStore with no server there fails with ERR_NETLANE_STORE_UNAVAILABLE within its connect timeout', { skip: redisSkip() }, async () => {
  const r = await startRedis();
  await r.stop();
  const t0 = performance.now();
  await assert.rejects(openRedisFleetStore(r.url, { connectTimeoutMs: 500 }), (e: unknown) => e instanceof NetlaneError && e.code === 'ERR_NETLANE_STORE_UNAVAILABLE');
  assert.ok(performance.now() - t0 < 5000, 'bounded');
});
