import assert from "node:assert/strict";
import { connectRedis, type RedisConnection } from "../src/redis/connection.ts";
import { type HistoryStore, RoomLimitError } from "../src/store/history.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import { RedisHistory, type RedisHistoryOptions } from "../src/store/redis_history.ts";
import { Changes } from "./helpers.ts";
import { skipRedis, startRedis, type TestRedis } from "./redis.ts";

function draft(cid: string, room = "lobby") {
  return { room, userId: "u", name: "ada", text: cid, cid };
}

/** Runs `fn` with a fresh redis-server and one connection to it. */
function redisTest(
  name: string,
  fn: (context: { redis: TestRedis; connection: RedisConnection }) => Promise<void>,
): void {
  Deno.test({ name, ignore: skipRedis }, async () => {
    await using redis = await startRedis();
    await using connection = await connectRedis(redis.url);
    assert.deepEqual(connection.state, { ok: true });
    await fn({ redis, connection });
  });
}

function historyOf(connection: RedisConnection, options?: RedisHistoryOptions) {
  return new RedisHistory(connection.client, options);
}

redisTest("two clients appending at once get one contiguous sequence", async ({ redis }) => {
  await using connectionA = await connectRedis(redis.url);
  await using connectionB = await connectRedis(redis.url);
  const a = historyOf(connectionA);
  const b = historyOf(connectionB);
  const results = await Promise.all(
    Array.from({ length: 120 }, (_, i) => (i % 2 ? a : b).append("lobby", draft(`c${i}`))),
  );
  assert.ok(results.every((r) => !r.duplicate));
  const ids = results.map((r) => r.message.id).sort((x, y) => x - y);
  assert.deepEqual(ids, Array.from({ length: 120 }, (_, i) => i + 1));
  const stored = await a.recent("lobby", 200);
  assert.deepEqual(stored.map((m) => m.id), ids);
  for (const result of results) {
    assert.deepEqual(stored[result.message.id - 1], result.message);
  }
  assert.equal(await b.latest("lobby"), 120);
});

redisTest("older messages are pruned past the limit, newest kept", async ({ connection }) => {
  const history = historyOf(connection, { limit: 3 });
  assert.equal(history.limit, 3);
  for (let i = 1; i <= 7; i++) await history.append("lobby", draft(`c${i}`));
  assert.deepEqual((await history.recent("lobby", 50)).map((m) => m.id), [5, 6, 7]);
  assert.deepEqual((await history.recent("lobby", 2)).map((m) => m.id), [6, 7]);
  assert.equal(await connection.client.zCard("chat:room:lobby:msgs"), 3);
  assert.deepEqual(await history.after("lobby", 5), {
    messages: await history.recent("lobby", 2),
    complete: true,
  });
  assert.equal((await history.after("lobby", 3)).complete, false);
  assert.deepEqual((await history.after("lobby", 3)).messages.map((m) => m.id), [5, 6, 7]);
});

redisTest("after reports complete exactly like KvHistory", async ({ connection }) => {
  const history = historyOf(connection);
  assert.deepEqual(await history.after("empty", 0), { messages: [], complete: true });
  assert.deepEqual(await history.after("empty", 1), { messages: [], complete: false });
  for (let i = 1; i <= 3; i++) await history.append("lobby", draft(`c${i}`));
  const all = await history.after("lobby", 0);
  assert.equal(all.complete, true);
  assert.deepEqual(all.messages.map((m) => m.id), [1, 2, 3]);
  assert.deepEqual(await history.after("lobby", 3), { messages: [], complete: true });
  // A client ahead of the server (e.g. after a Redis wipe) cannot be resumed.
  assert.deepEqual(await history.after("lobby", 4), { messages: [], complete: false });
});

redisTest("the same cid twice returns the first message as a duplicate", async ({ connection }) => {
  const history = historyOf(connection);
  const first = await history.append("lobby", draft("same"));
  const second = await history.append("lobby", { ...draft("same"), text: "changed" });
  assert.equal(first.duplicate, false);
  assert.equal(second.duplicate, true);
  assert.deepEqual(second.message, first.message);
  assert.equal(await history.latest("lobby"), 1);
  // The same cid in another room is another message.
  const other = await history.append("other", draft("same", "other"));
  assert.deepEqual([other.duplicate, other.message.id], [false, 1]);
});

redisTest("a duplicate of a pruned message keeps its id, with ts 0", async ({ connection }) => {
  const history = historyOf(connection, { limit: 2 });
  const first = await history.append("lobby", draft("old"));
  for (let i = 0; i < 3; i++) await history.append("lobby", draft(`c${i}`));
  const again = await history.append("lobby", draft("old"));
  assert.deepEqual(again, { message: { ...first.message, ts: 0 }, duplicate: true });
});

redisTest("latest is 0 for an unknown room, then the newest id", async ({ connection }) => {
  const history = historyOf(connection);
  assert.equal(await history.latest("lobby"), 0);
  assert.deepEqual(await history.recent("lobby", 10), []);
  await history.append("lobby", draft("a"));
  await history.append("lobby", draft("b"));
  assert.equal(await history.latest("lobby"), 2);
});

redisTest("rooms with ':' and other characters do not collide", async ({ connection }) => {
  const history = historyOf(connection);
  const rooms = ["a:b", "a", "a:b:stream", "ünï cödé 🎉", "a%3Ab"];
  for (const room of rooms) await history.append(room, draft("c", room));
  for (const room of rooms) {
    assert.equal(await history.latest(room), 1);
    const [message] = await history.recent(room, 5);
    assert.equal(message.room, room);
  }
  const keys = (await connection.client.keys("chat:*")).sort();
  assert.ok(keys.includes("chat:room:a%3Ab:seq"), keys.join(" "));
  assert.ok(keys.includes("chat:room:a%253Ab:seq"), keys.join(" "));
});

redisTest("stored messages round-trip any text as JSON", async ({ connection }) => {
  const history = historyOf(connection, { prefix: "test:" });
  const text = `quotes " \\ newline \n tab \t emoji 😀 and }{ braces`;
  const { message } = await history.append("lobby", { ...draft("c1"), text });
  assert.equal(message.text, text);
  assert.deepEqual(await history.recent("lobby", 1), [message]);
  assert.equal(await connection.client.exists("test:room:lobby:seq"), 1);
  const ttl = await connection.client.pTTL("test:room:lobby:cid:u:c1");
  assert.ok(ttl > 86_000_000 && ttl <= 86_400_000, `cid TTL ${ttl}`);
});

redisTest("the script is loaded again after SCRIPT FLUSH", async ({ connection }) => {
  const history = historyOf(connection);
  await history.append("lobby", draft("c1"));
  await connection.client.scriptFlush();
  const { message } = await history.append("lobby", draft("c2"));
  assert.equal(message.id, 2);
});

redisTest(
  "Redis errors reject, and the store works again once Redis is back",
  async ({ redis }) => {
    const changes = new Changes();
    await using connection = await connectRedis(redis.url, {
      retryMaxMs: 200,
      onStateChange: changes.notify,
    });
    const history = historyOf(connection);
    await history.append("lobby", draft("c1"));
    await redis.stop();
    await changes.until(() => !connection.state.ok, "the connection to notice the outage");
    await assert.rejects(history.append("lobby", draft("c2")));
    await assert.rejects(history.recent("lobby", 10));
    await assert.rejects(history.after("lobby", 0));
    await assert.rejects(history.latest("lobby"));
    await redis.restart();
    await changes.until(() => connection.state.ok, "the connection to come back");
    // The restarted server is empty (no persistence), so ids start again.
    assert.equal((await history.append("lobby", draft("c3"))).message.id, 1);
  },
);

redisTest("a hung Redis makes calls reject instead of hanging forever", async ({ redis }) => {
  const changes = new Changes();
  await using connection = await connectRedis(redis.url, {
    healthCheckMs: 200,
    connectTimeoutMs: 300,
    retryMaxMs: 300,
    onStateChange: changes.notify,
  });
  const history = historyOf(connection);
  await history.append("lobby", draft("c1"));
  redis.pause();
  await assert.rejects(history.append("lobby", draft("c2")));
  assert.equal(connection.state.ok, false);
  redis.resume();
  await changes.until(() => connection.state.ok, "the connection to come back");
  // c2 may or may not have been stored: the server got it before it froze.
  const { message } = await history.append("lobby", draft("c3"));
  assert.equal(message.id, await history.latest("lobby"));
});

redisTest("answers like KvHistory for the same operations", async ({ connection }) => {
  using kv = await Deno.openKv(":memory:");
  const kvHistory = new KvHistory(kv, { limit: 5 });
  const stores: HistoryStore[] = [
    kvHistory,
    historyOf(connection, { limit: 5 }),
  ];
  // Deterministic pseudo-random operations, ts left out of the comparison.
  let seed = 7;
  const random = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
  const withoutTs = (value: unknown) =>
    JSON.parse(JSON.stringify(value, (key, v) => key === "ts" ? undefined : v));
  for (let step = 0; step < 300; step++) {
    const room = ["lobby", "a:b"][random(2)];
    const op = random(7);
    const argument = random(12);
    const user = ["u", "v"][random(2)];
    // Drawn once for both stores.
    const [count, on, kind] = [random(2) ? undefined : random(4), random(3) > 0, random(4)];
    const answers = await Promise.all(stores.map((store) => {
      switch (op) {
        case 0:
          return store.append(room, draft(`c${argument}`, room));
        case 1:
          return store.recent(room, argument + 1);
        case 2:
          return store.after(room, argument, count);
        case 3:
          return store.append(room, {
            ...draft(`r${step}`, room),
            userId: user,
            text: "",
            kind: "reaction",
            ref: argument,
            emoji: ["👍", "🎉"][argument % 2],
            on,
          });
        case 4:
          return store.append(room, {
            ...draft(`e${step}`, room),
            userId: user,
            text: `edit ${step}`,
            kind: kind ? "edit" : "delete",
            ref: argument,
          });
        case 5:
          return store.get(room, argument);
        default:
          return store.latest(room);
      }
    }));
    assert.deepEqual(withoutTs(answers[1]), withoutTs(answers[0]), `step ${step}, op ${op}`);
  }
  await kvHistory.idle();
});

redisTest(
  "a new room past maxRooms is refused, and an existing room goes on",
  async ({ connection }) => {
    const history = historyOf(connection, { maxRooms: 1 });
    await history.append("one", draft("c1", "one"));
    await assert.rejects(history.append("two", draft("c1", "two")), RoomLimitError);
    assert.equal(await history.latest("two"), 0, "the refused room left no counter behind");
    assert.equal((await history.append("one", draft("c2", "one"))).message.id, 2);
  },
);

redisTest("before pages back through older messages", async ({ connection }) => {
  const history = historyOf(connection);
  for (let i = 1; i <= 7; i++) await history.append("lobby", draft(`c${i}`));
  const page = await history.before("lobby", 6, 3);
  assert.deepEqual(page.messages.map((m) => m.id), [3, 4, 5]);
  assert.equal(page.hasMore, true);
  const last = await history.before("lobby", 3, 5);
  assert.deepEqual([last.messages.map((m) => m.id), last.hasMore], [[1, 2], false]);
});

redisTest("the epoch stays the same until the store is wiped", async ({ connection }) => {
  const history = historyOf(connection);
  const epoch = await history.epoch();
  assert.equal(await history.epoch(), epoch);
  await connection.client.flushAll();
  assert.notEqual(await history.epoch(), epoch);
});

redisTest(
  "a room of the previous version (a stream) is upgraded, folded and appended to",
  async ({ connection }) => {
    const client = connection.client;
    const event = (id: number, extra: Record<string, unknown> = {}) => ({
      type: "message",
      id,
      room: "old",
      userId: "u",
      name: "ada",
      text: `m${id}`,
      ts: 1_000 + id,
      cid: `c${id}`,
      ...extra,
    });
    // The previous layout: a stream of every event, the counter, cids and the room count.
    const events = [
      event(2),
      event(3, { kind: "edit", ref: 2, text: "edited" }),
      event(4),
      event(5, { userId: "v", text: "", kind: "reaction", ref: 4, emoji: "👍", on: true }),
    ];
    for (const e of events) {
      await client.xAdd("chat:room:old:stream", `${e.id}-0`, { message: JSON.stringify(e) });
      await client.set(`chat:room:old:cid:${e.userId}:${e.cid}`, String(e.id));
    }
    await client.set("chat:room:old:seq", "5");
    await client.set("chat:rooms", "1");
    const history = historyOf(connection, { limit: 5 });
    assert.deepEqual(await history.rooms(), [{ name: "old", lastId: 5, lastTs: 1_005 }]);
    assert.equal(await client.exists("chat:room:old:stream"), 0);
    const recent = await history.recent("old", 10);
    assert.deepEqual(recent.map((m) => [m.id, m.text, m.edited]), [[2, "edited", true], [
      4,
      "m4",
      undefined,
    ]]);
    assert.equal(recent[1].reactions?.length, 1);
    const replay = await history.after("old", 1);
    assert.deepEqual([replay.messages.map((m) => m.id), replay.complete], [[2, 3, 4, 5], true]);
    assert.equal((await history.after("old", 0)).complete, false, "id 1 was pruned");
    assert.equal((await history.append("old", draft("c4", "old"))).duplicate, true);
    assert.equal((await history.append("old", draft("new", "old"))).message.id, 6);
  },
);

redisTest(
  "a stream of the previous version is upgraded by its first append",
  async ({ connection }) => {
    const client = connection.client;
    const old = {
      type: "message",
      id: 1,
      room: "old",
      userId: "u",
      name: "ada",
      text: "hi",
      ts: 1,
      cid: "c1",
    };
    await client.xAdd("chat:room:old:stream", "1-0", { message: JSON.stringify(old) });
    await client.set("chat:room:old:seq", "1");
    const history = historyOf(connection);
    const edit = { ...draft("e1", "old"), text: "edited", kind: "edit" as const, ref: 1 };
    assert.equal((await history.append("old", edit)).message.id, 2);
    assert.deepEqual(await history.get("old", 1), { ...old, text: "edited", edited: true });
  },
);
