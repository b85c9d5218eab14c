/**
 * The usage contract (src/store/usage.ts: amounts per key and window, the
 * upload quotas' counts), one suite against Deno KV (two handles on one
 * file) and Redis, on a fake clock.
 */
import assert from "node:assert/strict";
import { connectRedis } from "../src/redis/connection.ts";
import { KvUsage } from "../src/store/kv_usage.ts";
import { RedisUsage } from "../src/store/redis_usage.ts";
import type { Usage } from "../src/store/usage.ts";
import { skipRedis, startRedis } from "./redis.ts";

interface Opened {
  usage(): Usage;
  close(): Promise<void>;
}

const IMPLEMENTATIONS: {
  name: string;
  ignore: boolean;
  open(now: () => number): Promise<Opened>;
}[] = [
  {
    name: "KvUsage",
    ignore: false,
    async open(now) {
      const dir = await Deno.makeTempDir({ prefix: "chat-usage-" });
      const handles = [await Deno.openKv(`${dir}/chat.kv`), await Deno.openKv(`${dir}/chat.kv`)];
      let next = 0;
      return {
        usage: () => new KvUsage(handles[next++ % 2], { now }),
        async close() {
          for (const kv of handles) kv.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "RedisUsage",
    ignore: skipRedis,
    async open(now) {
      const redis = await startRedis();
      const connections = [await connectRedis(redis.url), await connectRedis(redis.url)];
      let next = 0;
      return {
        usage: () => new RedisUsage(connections[next++ % 2].client, { now }),
        async close() {
          for (const connection of connections) await connection.close();
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
];

const DAY = 86_400_000;

for (const implementation of IMPLEMENTATIONS) {
  const contract = (name: string, fn: (s: Opened, clock: { now: number }) => Promise<void>) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const clock = { now: 10 * DAY + 1000 };
        const store = await implementation.open(() => clock.now);
        try {
          await fn(store, clock);
        } finally {
          await store.close();
        }
      },
    );

  contract(
    "adds up to the limit, refuses past it, refunds, and a new window starts at 0",
    async (s, clock) => {
      const usage = s.usage();
      assert.equal(await usage.add("u", 600, 1000, DAY), 0);
      assert.equal(await usage.add("u", 400, 1000, DAY), 0, "exactly the limit");
      assert.equal(await usage.add("u", 1, 1000, DAY), DAY - 1000, "ms until the window ends");
      assert.equal(await s.usage().used("u", DAY), 1000, "another instance sees the count");
      assert.equal(await usage.add("u", -300, 1000, DAY), 0, "a refund");
      assert.equal(await usage.used("u", DAY), 700);
      assert.equal(await usage.add("v", 1000, 1000, DAY), 0, "keys count apart");
      clock.now += DAY;
      assert.equal(await usage.used("u", DAY), 0);
      assert.equal(await usage.add("u", 1000, 1000, DAY), 0);
      await assert.rejects(() => usage.add("u", 1.5, 1000, DAY), RangeError);
      await assert.rejects(() => usage.add("u", 1, -1, DAY), RangeError);
    },
  );

  contract("adds at once from two instances never pass the limit together", async (s) => {
    const waits = await Promise.all(
      Array.from({ length: 12 }, () => s.usage().add("room", 100, 500, DAY)),
    );
    assert.equal(waits.filter((w) => w === 0).length, 5);
    assert.equal(await s.usage().used("room", DAY), 500);
  });
}
