/**
 * The history contract (src/store/history.ts), one suite run against every
 * implementation: Deno KV and Redis Streams.
 */
import assert from "node:assert/strict";
import { connectRedis } from "../src/redis/connection.ts";
import { type HistoryStore, type MessageDraft, RoomLimitError } from "../src/store/history.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import { RedisHistory } from "../src/store/redis_history.ts";
import { skipRedis, startRedis } from "./redis.ts";

interface Implementation {
  name: string;
  ignore: boolean;
  /** A fresh, empty store with these options; `close` releases everything. */
  open(options: { limit?: number; maxRooms?: number }): Promise<
    { history: HistoryStore; close(): Promise<void> }
  >;
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: "KvHistory",
    ignore: false,
    async open(options) {
      const kv = await Deno.openKv(":memory:");
      return { history: new KvHistory(kv, options), close: () => Promise.resolve(kv.close()) };
    },
  },
  {
    name: "RedisHistory",
    ignore: skipRedis,
    async open(options) {
      const redis = await startRedis();
      const connection = await connectRedis(redis.url);
      return {
        history: new RedisHistory(connection.client, options),
        async close() {
          await connection.close();
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
];

function draft(cid: string, userId = "u1", room = "lobby"): MessageDraft {
  return { room, userId, name: userId, text: `text ${cid}`, cid };
}

for (const implementation of IMPLEMENTATIONS) {
  const contract = (
    name: string,
    fn: (history: HistoryStore) => Promise<void>,
    options: { limit?: number; maxRooms?: number } = {},
  ) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const { history, close } = await implementation.open(options);
        try {
          await fn(history);
        } finally {
          await close();
        }
      },
    );

  contract("ids are 1, 2, 3 … per room, in the order appends complete, with no gaps", async (h) => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => h.append("lobby", draft(`c${i}`))),
    );
    assert.deepEqual(results.map((r) => r.message.id).sort((a, b) => a - b), range(1, 30));
    assert.equal((await h.append("other", draft("c0", "u1", "other"))).message.id, 1);
    assert.equal(await h.latest("lobby"), 30);
    assert.equal(await h.latest("nowhere"), 0);
  });

  contract(
    "a cid is deduplicated per sender: a retry is a duplicate, another sender's is not",
    async (h) => {
      const first = await h.append("lobby", draft("same", "u1"));
      const retry = await h.append("lobby", draft("same", "u1"));
      const other = await h.append("lobby", draft("same", "u2"));
      assert.deepEqual([retry.duplicate, retry.message.id], [true, first.message.id]);
      assert.deepEqual([other.duplicate, other.message.id], [false, 2]);
      const batch = await h.appendMany("lobby", [
        draft("b", "u1"),
        draft("b", "u1"),
        draft("c", "u1"),
      ]);
      assert.deepEqual(batch.map((r) => [r.message.id, r.duplicate]), [[3, false], [3, true], [
        4,
        false,
      ]]);
    },
  );

  contract("recent, after and before read the retained messages in id order", async (h) => {
    await h.appendMany("lobby", range(1, 10).map((i) => draft(`c${i}`)));
    assert.deepEqual((await h.recent("lobby", 3)).map((m) => m.id), [8, 9, 10]);
    const after = await h.after("lobby", 7);
    assert.deepEqual([after.messages.map((m) => m.id), after.complete], [[8, 9, 10], true]);
    assert.deepEqual(await h.after("lobby", 10), { messages: [], complete: true });
    assert.equal(
      (await h.after("lobby", 11)).complete,
      false,
      "an id from the future is not complete",
    );
    const page = await h.before("lobby", 8, 3);
    assert.deepEqual([page.messages.map((m) => m.id), page.hasMore], [[5, 6, 7], true]);
    const first = await h.before("lobby", 3, 5);
    assert.deepEqual([first.messages.map((m) => m.id), first.hasMore], [[1, 2], false]);
  });

  contract(
    "older messages are pruned past the limit, and a resume across them is not complete",
    async (h) => {
      await h.appendMany("lobby", range(1, 8).map((i) => draft(`c${i}`)));
      assert.deepEqual((await h.recent("lobby", 100)).map((m) => m.id), [4, 5, 6, 7, 8]);
      const replay = await h.after("lobby", 1);
      assert.equal(replay.complete, false);
      assert.deepEqual((await h.after("lobby", 3)).complete, true);
    },
    { limit: 5 },
  );

  contract(
    "the first message of a room past maxRooms is refused; existing rooms go on",
    async (h) => {
      await h.append("one", draft("c1", "u1", "one"));
      await h.append("two", draft("c1", "u1", "two"));
      await assert.rejects(h.append("three", draft("c1", "u1", "three")), RoomLimitError);
      assert.equal(await h.latest("three"), 0);
      assert.equal((await h.append("one", draft("c2", "u1", "one"))).message.id, 2);
    },
    { maxRooms: 2 },
  );

  contract("the epoch is the same on every call", async (h) => {
    const epoch = await h.epoch!();
    assert.ok(epoch.length > 0);
    assert.equal(await h.epoch!(), epoch);
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
