/**
 * The moderation contract (src/store/moderation.ts), one suite run against
 * every implementation: Deno KV and Redis, each with two store objects on
 * one store, as two instances have.
 */
import assert from "node:assert/strict";
import type { ChatMessage, ModAction } from "../src/protocol.ts";
import { connectRedis } from "../src/redis/connection.ts";
import { KvModeration } from "../src/store/kv_moderation.ts";
import {
  AUDIT_LIMIT,
  emptyPolicy,
  inForce,
  MAX_OPEN_REPORTS,
  type ModerationStore,
} from "../src/store/moderation.ts";
import { RedisModeration } from "../src/store/redis_moderation.ts";
import { skipRedis, startRedis } from "./redis.ts";

interface Opened {
  /** One more instance on the same store. */
  store(): ModerationStore;
  close(): Promise<void>;
}

const IMPLEMENTATIONS: { name: string; ignore: boolean; open(): Promise<Opened> }[] = [
  {
    name: "KvModeration",
    ignore: false,
    async open() {
      const dir = await Deno.makeTempDir({ prefix: "chat-mod-" });
      const handles = [await Deno.openKv(`${dir}/chat.kv`), await Deno.openKv(`${dir}/chat.kv`)];
      let next = 0;
      return {
        store: () => new KvModeration(handles[next++ % 2]),
        async close() {
          for (const kv of handles) kv.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "RedisModeration",
    ignore: skipRedis,
    async open() {
      const redis = await startRedis();
      const connections = [await connectRedis(redis.url), await connectRedis(redis.url)];
      let next = 0;
      return {
        store: () => new RedisModeration(connections[next++ % 2].client),
        async close() {
          for (const connection of connections) await connection.close();
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
];

function event(id: number, action: ModAction): ChatMessage {
  return {
    type: "message",
    id,
    room: "lobby",
    userId: "u-mod",
    name: "mod",
    text: "",
    ts: id,
    cid: `m${id}`,
    kind: "moderation",
    action,
  };
}

for (const implementation of IMPLEMENTATIONS) {
  const contract = (name: string, fn: (opened: Opened) => Promise<void>) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const opened = await implementation.open();
        try {
          await fn(opened);
        } finally {
          await opened.close();
        }
      },
    );

  contract("a room's policy starts empty and holds what updates decide", async (o) => {
    const [one, two] = [o.store(), o.store()];
    assert.deepEqual(await one.policy("lobby"), emptyPolicy());
    await one.update("lobby", (p) => ({ ...p, owner: "u1", topic: "Be kind", slowMs: 5000 }));
    await two.update("lobby", (p) => ({
      ...p,
      mutes: { ...p.mutes, u2: { by: "u1", at: 1, until: 100, reason: "spam" } },
    }));
    const policy = await one.policy("lobby");
    assert.deepEqual(policy, {
      owner: "u1",
      moderators: [],
      topic: "Be kind",
      slowMs: 5000,
      mutes: { u2: { by: "u1", at: 1, until: 100, reason: "spam" } },
      bans: {},
    });
    assert.ok(inForce(policy.mutes.u2, 99) && !inForce(policy.mutes.u2, 100));
    assert.deepEqual(await two.policy("other"), emptyPolicy(), "per room");
  });

  contract("updates from two instances at once lose nothing (compare-and-set)", async (o) => {
    const stores = [o.store(), o.store()];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        stores[i % 2].update("lobby", (p) => ({
          ...p,
          bans: { ...p.bans, [`u${i}`]: { by: "mod", at: i } },
        }))),
    );
    assert.equal(Object.keys((await stores[0].policy("lobby")).bans).length, 40);
  });

  contract("the audit log keeps the newest entries, newest first, in pages", async (o) => {
    const store = o.store();
    for (let id = 1; id <= 5; id++) await store.log("lobby", event(id * 10, "kick"));
    const first = await store.audit("lobby", undefined, 2);
    assert.deepEqual(first.entries.map((e) => e.id), [50, 40]);
    assert.equal(first.hasMore, true);
    const next = await store.audit("lobby", 40, 10);
    assert.deepEqual([next.entries.map((e) => e.id), next.hasMore], [[30, 20, 10], false]);
    assert.equal(AUDIT_LIMIT, 1000);
  });

  contract("reports open, list oldest first, and close by message or by id", async (o) => {
    const store = o.store();
    const by = { id: "u3", name: "carol" };
    assert.equal(
      await store.report("lobby", { id: "r1", ref: 7, reason: "spam", by, at: 2 }),
      true,
    );
    await store.report("lobby", { id: "r2", ref: 7, reason: "rude", by, at: 1 });
    await store.report("lobby", { id: "r3", ref: 9, reason: "off topic", by, at: 3 });
    assert.deepEqual((await store.reports("lobby")).map((r) => r.id), ["r2", "r1", "r3"]);
    assert.equal(
      await store.close("lobby", { ref: 7 }),
      2,
      "acting on a message closes its reports",
    );
    assert.equal(await store.close("lobby", { id: "r3" }), 1);
    assert.deepEqual(await store.reports("lobby"), []);
    assert.equal(MAX_OPEN_REPORTS, 200);
  });

  contract("clear forgets a room's policy, log and reports", async (o) => {
    const store = o.store();
    await store.update("gone", (p) => ({ ...p, topic: "x" }));
    await store.log("gone", event(1, "topic"));
    await store.report("gone", {
      id: "r",
      ref: 1,
      reason: "x",
      by: { id: "u", name: "u" },
      at: 0,
    });
    await store.clear("gone");
    assert.deepEqual(await store.policy("gone"), emptyPolicy());
    assert.deepEqual((await store.audit("gone", undefined, 10)).entries, []);
    assert.deepEqual(await store.reports("gone"), []);
  });
}
