/**
 * The quota contract (src/store/quota.ts), one suite run against every
 * implementation: Deno KV and Redis. Time is a fake wall clock, so windows
 * begin and end when a test says.
 */
import assert from "node:assert/strict";
import { openBackends } from "../src/backends.ts";
import { loadConfig } from "../src/config.ts";
import { connectRedis } from "../src/redis/connection.ts";
import { KvQuota } from "../src/store/kv_quota.ts";
import type { Quota } from "../src/store/quota.ts";
import { RedisQuota } from "../src/store/redis_quota.ts";
import { skipRedis, startRedis } from "./redis.ts";

/** An open store: `quota()` is one more instance on it (sharing the counts); `close` frees all. */
interface Opened {
  quota(): Quota;
  close(): Promise<void>;
}

interface Implementation {
  name: string;
  ignore: boolean;
  open(now: () => number): Promise<Opened>;
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: "KvQuota",
    ignore: false,
    async open(now) {
      // Two handles on one file, as two processes have: their commits contend for its lock.
      const dir = await Deno.makeTempDir({ prefix: "chat-quota-" });
      const handles = [await Deno.openKv(`${dir}/chat.kv`), await Deno.openKv(`${dir}/chat.kv`)];
      let next = 0;
      return {
        quota: () => new KvQuota(handles[next++ % 2], { now }),
        async close() {
          for (const kv of handles) kv.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "RedisQuota",
    ignore: skipRedis,
    async open(now) {
      const redis = await startRedis();
      const connections: Awaited<ReturnType<typeof connectRedis>>[] = [];
      // Each instance its own connection, as each server process has.
      const first = await connectRedis(redis.url);
      connections.push(first);
      const second = await connectRedis(redis.url);
      connections.push(second);
      let next = 0;
      return {
        quota: () => new RedisQuota(connections[next++ % 2].client, { now }),
        async close() {
          for (const connection of connections) await connection.close();
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
];

const HOUR = 3_600_000;

for (const implementation of IMPLEMENTATIONS) {
  const contract = (
    name: string,
    fn: (store: Opened, clock: { now: number }) => Promise<void>,
  ) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const clock = { now: 10 * HOUR + 1000 };
        const store = await implementation.open(() => clock.now);
        try {
          await fn(store, clock);
        } finally {
          await store.close();
        }
      },
    );

  contract("takes up to the limit in a window, then says how long until it ends", async (s) => {
    const quota = s.quota();
    for (let i = 0; i < 3; i++) assert.equal(await quota.take("rooms:a", 3, HOUR), 0, `take ${i}`);
    assert.equal(await quota.take("rooms:a", 3, HOUR), HOUR - 1000);
    assert.equal(await quota.take("rooms:a", 3, HOUR), HOUR - 1000, "refused again, no change");
  });

  contract(
    "the next window starts empty; the wait shrinks as the window goes by",
    async (s, clock) => {
      const quota = s.quota();
      assert.equal(await quota.take("rooms:a", 1, HOUR), 0);
      clock.now += 1000;
      assert.equal(await quota.take("rooms:a", 1, HOUR), HOUR - 2000);
      clock.now += HOUR - 2001;
      assert.equal(await quota.take("rooms:a", 1, HOUR), 1, "1 ms before the window ends");
      clock.now += 1;
      assert.equal(await quota.take("rooms:a", 1, HOUR), 0, "a new window");
      assert.equal(await quota.take("rooms:a", 1, HOUR), HOUR);
    },
  );

  contract("keys and window lengths count apart", async (s) => {
    const quota = s.quota();
    assert.equal(await quota.take("rooms:a", 1, HOUR), 0);
    assert.ok(await quota.take("rooms:a", 1, HOUR) > 0);
    assert.equal(await quota.take("rooms:b", 1, HOUR), 0, "another key");
    assert.equal(await quota.take("rooms:a", 1, 60_000), 0, "another window length");
    assert.equal(await quota.take('rooms:"a', 1, HOUR), 0, "keys are not confused by quoting");
  });

  contract("instances share the counts", async (s) => {
    const one = s.quota(), two = s.quota();
    assert.equal(await one.take("rooms:a", 2, HOUR), 0);
    assert.equal(await two.take("rooms:a", 2, HOUR), 0);
    assert.ok(await one.take("rooms:a", 2, HOUR) > 0);
    assert.ok(await two.take("rooms:a", 2, HOUR) > 0);
  });

  contract("takes at once, from two instances, never pass the limit", async (s) => {
    const one = s.quota(), two = s.quota();
    const waits = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).take("rooms:a", 7, HOUR)),
    );
    assert.equal(waits.filter((wait) => wait === 0).length, 7);
    assert.ok(waits.every((wait) => wait === 0 || wait === HOUR - 1000), `${waits}`);
  });

  contract("a limit of 0 takes nothing; bad numbers are a RangeError", async (s) => {
    const quota = s.quota();
    assert.equal(await quota.take("rooms:a", 0, HOUR), HOUR - 1000);
    assert.equal(await quota.take("rooms:a", 1, HOUR), 0, "nothing was counted");
    for (const [limit, windowMs] of [[-1, HOUR], [1.5, HOUR], [1, 0], [1, -5], [1, NaN]]) {
      await assert.rejects(() => quota.take("rooms:a", limit, windowMs), RangeError);
    }
  });
}

Deno.test({
  name: "RedisQuota: a window's counter expires when the window ends",
  ignore: skipRedis,
}, async () => {
  await using redis = await startRedis();
  const connection = await connectRedis(redis.url);
  try {
    const now = 10 * HOUR + 1000;
    const quota = new RedisQuota(connection.client, { now: () => now });
    await quota.take("rooms:a", 1, HOUR);
    const ttl = await connection.client.pTTL(quota.key("rooms:a", HOUR, 10));
    assert.ok(ttl > HOUR - 1000 && ttl <= HOUR, `PTTL ${ttl}: the window's rest and a second`);
  } finally {
    await connection.close();
  }
});

Deno.test("openBackends opens a quota on its store (Deno KV)", async () => {
  const backends = await openBackends(loadConfig({ KV_PATH: ":memory:", SESSION_SECRET: "s" }));
  try {
    assert.ok(backends.quota instanceof KvQuota);
    assert.equal(await backends.quota.take("rooms:a", 1, HOUR), 0);
    assert.ok(await backends.quota.take("rooms:a", 1, HOUR) > 0);
  } finally {
    await backends.close();
  }
});

Deno.test(
  { name: "openBackends opens a quota on its store (Redis)", ignore: skipRedis },
  async () => {
    await using redis = await startRedis();
    const backends = await openBackends(loadConfig({ REDIS_URL: redis.url, SESSION_SECRET: "s" }));
    try {
      assert.ok(backends.quota instanceof RedisQuota);
      assert.equal(await backends.quota.take("rooms:a", 1, HOUR), 0);
      assert.ok(await backends.quota.take("rooms:a", 1, HOUR) > 0);
    } finally {
      await backends.close();
    }
  },
);
