/**
 * The history contract (src/store/history.ts), one suite run against every
 * implementation: Deno KV and Redis. KV-only behaviour (several handles on
 * one file, files of the previous version, what a read may cost) follows.
 */
import assert from "node:assert/strict";
import type { LogEvent } from "../src/log.ts";
import type { ChatMessage } from "../src/protocol.ts";
import { connectRedis } from "../src/redis/connection.ts";
import { type HistoryStore, type MessageDraft, RoomLimitError } from "../src/store/history.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import { type Floor, floorKey } from "../src/store/kv_layout.ts";
import { RedisHistory } from "../src/store/redis_history.ts";
import { within } from "./helpers.ts";
import { skipRedis, startRedis } from "./redis.ts";

interface Options {
  limit?: number;
  maxRooms?: number;
}

interface Implementation {
  name: string;
  ignore: boolean;
  /**
   * A fresh, empty store with these options; `another` is a second instance
   * on the same store (as another server process has); `close` releases
   * everything.
   */
  open(options: Options): Promise<Opened>;
}

interface Opened {
  history: HistoryStore;
  another(): Promise<HistoryStore>;
  close(): Promise<void>;
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: "KvHistory",
    ignore: false,
    async open(options) {
      const kv = await Deno.openKv(":memory:");
      const instances = [new KvHistory(kv, options)];
      return {
        history: instances[0],
        another() {
          instances.push(new KvHistory(kv, options));
          return Promise.resolve(instances.at(-1)!);
        },
        async close() {
          await Promise.all(instances.map((instance) => instance.idle()));
          kv.close();
        },
      };
    },
  },
  {
    name: "RedisHistory",
    ignore: skipRedis,
    async open(options) {
      const redis = await startRedis();
      const connections = [await connectRedis(redis.url)];
      return {
        history: new RedisHistory(connections[0].client, options),
        async another() {
          connections.push(await connectRedis(redis.url));
          return new RedisHistory(connections.at(-1)!.client, options);
        },
        async close() {
          for (const connection of connections) await connection.close();
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
];

function draft(cid: string, userId = "u1", room = "lobby"): MessageDraft {
  return { room, userId, name: userId, text: `text ${cid}`, cid };
}

function edit(cid: string, ref: number, text: string, userId = "u1"): MessageDraft {
  return { ...draft(cid, userId), text, kind: "edit", ref };
}

function remove(cid: string, ref: number, userId = "u1"): MessageDraft {
  return { ...draft(cid, userId), text: "", kind: "delete", ref };
}

function react(cid: string, ref: number, userId: string, on: boolean, emoji = "👍"): MessageDraft {
  return { ...draft(cid, userId), text: "", kind: "reaction", ref, emoji, on };
}

for (const implementation of IMPLEMENTATIONS) {
  const contract = (
    name: string,
    fn: (history: HistoryStore, another: () => Promise<HistoryStore>) => Promise<void>,
    options: Options = {},
  ) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const { history, another, close } = await implementation.open(options);
        try {
          await fn(history, another);
        } finally {
          await close();
        }
      },
    );

  contract(
    "a pruned message's files are told to onPrunedFiles, a deleted one's are not",
    async (h) => {
      const pruned = Promise.withResolvers<[string, string[]]>();
      h.onPrunedFiles?.((room, ids) => pruned.resolve([room, ids]));
      const file = (id: string) => ({ id, name: `${id}.txt`, size: 3, type: "text/plain" });
      const first = await h.append("lobby", {
        ...draft("c1"),
        attachments: [file("f1"), file("f2")],
      });
      const second = await h.append("lobby", { ...draft("c2"), attachments: [file("f3")] });
      await h.append("lobby", remove("d2", second.message.id)); // its files went with the delete
      await h.append("lobby", draft("c3"));
      await h.append("lobby", draft("c4")); // the room keeps 2: c1 and c2 go
      assert.deepEqual(await within(pruned.promise, "the pruned files"), ["lobby", ["f1", "f2"]]);
      assert.equal(await h.get("lobby", first.message.id), null);
    },
    { limit: 2 },
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
      assert.equal(await h.get("lobby", 3), null);
      assert.equal((await h.get("lobby", 4))?.text, "text c4");
    },
    { limit: 5 },
  );

  contract("get reads one plain message in its current state; stored finds a cid", async (h) => {
    const { message } = await h.append("lobby", draft("c1"));
    assert.deepEqual(await h.get("lobby", 1), message);
    await h.append("lobby", edit("e1", 1, "changed"));
    assert.deepEqual(await h.get("lobby", 1), { ...message, text: "changed", edited: true });
    assert.equal(await h.get("lobby", 2), null, "id 2 is a change, not a plain message");
    assert.equal(await h.get("lobby", 3), null, "never stored");
    assert.equal(await h.get("nowhere", 1), null);
    assert.equal(await h.stored("lobby", "u1", "c1"), 1);
    assert.equal(await h.stored("lobby", "u1", "e1"), 2);
    assert.equal(await h.stored("lobby", "u2", "c1"), null, "a cid is its sender's own");
    assert.equal(await h.stored("other", "u1", "c1"), null);
  });

  contract(
    "an edit by the author replaces the text; another user's edit changes nothing",
    async (h) => {
      await h.append("lobby", draft("c1"));
      const change = await h.append("lobby", edit("e1", 1, "first edit"));
      assert.deepEqual([change.message.kind, change.message.ref, change.duplicate], [
        "edit",
        1,
        false,
      ]);
      await h.append("lobby", edit("e2", 1, "not yours", "u2"));
      await h.append("lobby", edit("e3", 1, "second edit"));
      const [message] = await h.recent("lobby", 10);
      assert.deepEqual([message.text, message.edited], ["second edit", true]);
      // Every change is still an event of its own, in order.
      const replay = await h.after("lobby", 0);
      assert.deepEqual(replay.messages.map((m) => [m.id, m.kind ?? "plain"]), [
        [1, "plain"],
        [2, "edit"],
        [3, "edit"],
        [4, "edit"],
      ]);
      assert.equal(replay.messages[0].text, "second edit", "a replayed message is folded too");
    },
  );

  contract("a delete empties the text and drops reactions and the edited mark", async (h) => {
    await h.append("lobby", draft("c1"));
    await h.append("lobby", react("r1", 1, "u2", true));
    await h.append("lobby", edit("e1", 1, "edited"));
    await h.append("lobby", remove("d1", 1));
    const deleted = await h.get("lobby", 1);
    assert.deepEqual(
      [deleted?.text, deleted?.deleted, deleted?.edited, deleted?.reactions],
      ["", true, undefined, undefined],
    );
    // Nothing changes a deleted message.
    await h.append("lobby", react("r2", 1, "u2", true));
    await h.append("lobby", edit("e2", 1, "back"));
    assert.deepEqual(await h.get("lobby", 1), deleted);
    // A retried delete is acknowledged again, with its id.
    const retry = await h.append("lobby", remove("d1", 1));
    assert.deepEqual([retry.duplicate, retry.message.id, retry.message.kind], [true, 4, "delete"]);
    assert.equal(await h.stored("lobby", "u1", "d1"), 4);
  });

  contract("reactions go on and off, the first given first", async (h) => {
    await h.append("lobby", draft("c1"));
    await h.appendMany("lobby", [
      react("r1", 1, "u2", true),
      react("r2", 1, "u3", true, "🎉"),
      react("r3", 1, "u3", true),
      react("r4", 1, "u2", true), // Already on: nothing changes.
    ]);
    assert.deepEqual((await h.get("lobby", 1))?.reactions, [
      { emoji: "👍", users: [{ id: "u2", name: "u2" }, { id: "u3", name: "u3" }] },
      { emoji: "🎉", users: [{ id: "u3", name: "u3" }] },
    ]);
    await h.append("lobby", react("r5", 1, "u3", false, "🎉"));
    await h.append("lobby", react("r6", 1, "u2", false));
    assert.deepEqual((await h.recent("lobby", 1))[0].reactions, [
      { emoji: "👍", users: [{ id: "u3", name: "u3" }] },
    ]);
    await h.append("lobby", react("r7", 1, "u3", false));
    assert.equal((await h.get("lobby", 1))?.reactions, undefined);
  });

  contract(
    "two instances changing one message at once lose no change; ids stay contiguous",
    async (h, another) => {
      const other = await another();
      await h.append("lobby", draft("c1"));
      const users = range(1, 40).map((i) => `u${i}`);
      const results = await Promise.all(
        users.map((user, i) =>
          (i % 2 ? h : other).append("lobby", react(`r${user}`, 1, user, true))
        ),
      );
      assert.deepEqual(results.map((r) => r.message.id).sort((a, b) => a - b), range(2, 41));
      const reacted = (await other.get("lobby", 1))?.reactions?.[0].users.map((u) => u.id);
      assert.deepEqual(reacted?.sort(), [...users].sort());
      assert.equal(await h.latest("lobby"), 41);
    },
  );

  contract("a message and its changes in one batch are stored folded", async (h) => {
    const results = await h.appendMany("lobby", [
      draft("c1"),
      edit("e1", 1, "at once"),
      react("r1", 1, "u2", true),
    ]);
    assert.deepEqual(results.map((r) => r.message.id), [1, 2, 3]);
    assert.equal(results[0].message.text, "text c1", "the live message is the one sent");
    const stored = await h.get("lobby", 1);
    assert.deepEqual([stored?.text, stored?.edited, stored?.reactions?.length], [
      "at once",
      true,
      1,
    ]);
  });

  contract(
    "a change to a pruned message, or to a change, is stored as an event all the same",
    async (h) => {
      await h.appendMany("lobby", range(1, 4).map((i) => draft(`c${i}`)));
      assert.equal(await h.get("lobby", 1), null);
      const late = await h.append("lobby", edit("e1", 1, "too late"));
      assert.deepEqual([late.duplicate, late.message.id], [false, 5]);
      const odd = await h.append("lobby", edit("e2", 5, "an edit of an edit"));
      assert.equal(odd.message.id, 6);
      const replay = await h.after("lobby", 4);
      assert.deepEqual(replay.messages.map((m) => m.id), [5, 6]);
      assert.deepEqual((await h.recent("lobby", 10)).map((m) => [m.id, m.text]), [
        [2, "text c2"],
        [3, "text c3"],
        [4, "text c4"],
      ]);
    },
    { limit: 3 },
  );

  contract(
    "retention counts messages: 1,000 reaction toggles prune no message among the newest",
    async (h) => {
      await h.appendMany("lobby", range(1, 8).map((i) => draft(`c${i}`)));
      // Ten users toggle 👍 on message 8 in turns; the last turn is on.
      const toggles = range(0, 999).map((k) => react(`t${k}`, 8, `r${k % 10}`, k % 20 >= 10));
      for (let i = 0; i < toggles.length; i += 100) {
        await h.appendMany("lobby", toggles.slice(i, i + 100));
      }
      assert.equal(await h.latest("lobby"), 1008);
      const recent = await h.recent("lobby", 100);
      assert.deepEqual(recent.map((m) => m.id), [4, 5, 6, 7, 8]);
      assert.deepEqual(recent[4].reactions, [
        { emoji: "👍", users: range(0, 9).map((i) => ({ id: `r${i}`, name: `r${i}` })) },
      ]);
      const page = await h.before("lobby", 8, 10);
      assert.deepEqual([page.messages.map((m) => m.id), page.hasMore], [[4, 5, 6, 7], false]);
      // At most `limit` changes are kept: the newest five.
      const all = await h.after("lobby", 0);
      assert.equal(all.complete, false);
      assert.deepEqual(all.messages.map((m) => m.id), [
        4,
        5,
        6,
        7,
        8,
        1004,
        1005,
        1006,
        1007,
        1008,
      ]);
      assert.equal((await h.after("lobby", 1002)).complete, false, "change 1003 was pruned");
      assert.deepEqual(await h.after("lobby", 1003), {
        messages: all.messages.slice(5),
        complete: true,
      });
      assert.equal((await h.after("lobby", 5)).complete, false, "changes after 5 were pruned");
      // Messages after the toggles prune the oldest messages, not the newer changes.
      await h.appendMany("lobby", [draft("d1"), draft("d2"), draft("d3")]);
      assert.deepEqual((await h.recent("lobby", 10)).map((m) => m.id), [7, 8, 1009, 1010, 1011]);
      assert.deepEqual((await h.after("lobby", 1003)).messages.map((m) => m.id), [
        1004,
        1005,
        1006,
        1007,
        1008,
        1009,
        1010,
        1011,
      ]);
      assert.equal((await h.after("lobby", 1003)).complete, true);
    },
    { limit: 5 },
  );

  contract("after reads at most limit events, and says when more follow", async (h) => {
    await h.appendMany("lobby", [
      draft("c1"),
      draft("c2"),
      react("r1", 1, "u2", true),
      draft("c3"),
      edit("e1", 2, "again"),
      draft("c4"),
    ]);
    const first = await h.after("lobby", 0, 3);
    assert.deepEqual([first.messages.map((m) => m.id), first.complete, first.more], [
      [1, 2, 3],
      true,
      true,
    ]);
    const next = await h.after("lobby", 3, 3);
    assert.deepEqual([next.messages.map((m) => m.id), next.complete, next.more], [
      [4, 5, 6],
      true,
      undefined,
    ]);
    assert.deepEqual(await h.after("lobby", 1, 0), { messages: [], complete: true, more: true });
    assert.deepEqual((await h.after("lobby", 0, 100)).messages.length, 6);
  });

  contract("rooms lists every room with its newest id and when it was stored", async (h) => {
    assert.deepEqual(await h.rooms(), []);
    const before = Date.now();
    await h.appendMany("lobby", [draft("c1"), draft("c2")]);
    await h.append("other", draft("c1", "u1", "other"));
    const change = await h.append("lobby", react("r1", 1, "u2", true));
    const rooms = (await h.rooms()).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(rooms.map((r) => [r.name, r.lastId]), [["lobby", 3], ["other", 1]]);
    assert.equal(rooms[0].lastTs, change.message.ts);
    assert.ok(rooms[1].lastTs >= before && rooms[1].lastTs <= Date.now());
  });

  contract("deleteRoom deletes everything of a room, and it starts again at id 1", async (h) => {
    await h.appendMany("lobby", [draft("c1"), draft("c2"), react("r1", 1, "u2", true)]);
    await h.append("other", draft("c1", "u1", "other"));
    assert.equal(await h.deleteRoom("lobby"), true);
    assert.equal(await h.deleteRoom("lobby"), false, "nothing left");
    assert.equal(await h.deleteRoom("nowhere"), false);
    assert.equal(await h.latest("lobby"), 0);
    assert.deepEqual(await h.recent("lobby", 10), []);
    assert.equal(await h.get("lobby", 1), null);
    assert.equal(await h.stored("lobby", "u1", "c1"), null, "its cids are gone too");
    assert.deepEqual((await h.rooms()).map((r) => r.name), ["other"]);
    const again = await h.append("lobby", draft("c1"));
    assert.deepEqual([again.message.id, again.duplicate], [1, false]);
    assert.deepEqual(await h.after("lobby", 0), { messages: [again.message], complete: true });
    assert.equal(await h.latest("other"), 1, "other rooms are left alone");
  });

  contract(
    "the first message of a room past maxRooms is refused; a deleted room frees its place",
    async (h) => {
      await h.append("one", draft("c1", "u1", "one"));
      await h.append("two", draft("c1", "u1", "two"));
      await assert.rejects(h.append("three", draft("c1", "u1", "three")), RoomLimitError);
      assert.equal(await h.latest("three"), 0);
      assert.equal((await h.append("one", draft("c2", "u1", "one"))).message.id, 2);
      assert.equal(await h.deleteRoom("two"), true);
      assert.equal((await h.append("three", draft("c1", "u1", "three"))).message.id, 1);
      await assert.rejects(h.append("four", draft("c1", "u1", "four")), RoomLimitError);
    },
    { maxRooms: 2 },
  );

  contract("the epoch is the same on every call", async (h) => {
    const epoch = await h.epoch!();
    assert.ok(epoch.length > 0);
    assert.equal(await h.epoch!(), epoch);
  });
}

// --- Deno KV only ----------------------------------------------------------

Deno.test("KvHistory: two handles on one KV file create 300 new rooms at once, none refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-rooms-" });
  try {
    using kvA = await Deno.openKv(`${dir}/chat.kv`);
    using kvB = await Deno.openKv(`${dir}/chat.kv`);
    const a = new KvHistory(kvA);
    const b = new KvHistory(kvB);
    const results = await Promise.allSettled(
      range(1, 300).map((i) => (i % 2 ? a : b).append(`room${i}`, draft("c1", "u1", `room${i}`))),
    );
    const refused = results.filter((r) => r.status === "rejected");
    assert.deepEqual(refused, [], `${refused.length} of 300 refused`);
    assert.equal((await a.rooms()).length, 300);
    const count = await kvA.get<Deno.KvU64>(["meta", "rooms"]);
    assert.equal(count.value?.value, 300n);
    await Promise.all([a.idle(), b.idle()]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KvHistory: a file of the previous version is read, folded and appended to", async () => {
  using kv = await Deno.openKv(":memory:");
  // The previous layout: every event under "msg", a counter, cids, a room count.
  const event = (id: number, extra: Partial<ChatMessage> = {}): ChatMessage => ({
    type: "message",
    id,
    room: "old",
    userId: "u1",
    name: "ada",
    text: `m${id}`,
    ts: 1_000 + id,
    cid: `c${id}`,
    ...extra,
  });
  const events = [
    event(3), // 1 and 2 were pruned.
    event(4),
    event(5, { kind: "edit", ref: 3, text: "edited" }),
    event(6, {
      userId: "u2",
      name: "bob",
      text: "",
      kind: "reaction",
      ref: 4,
      emoji: "👍",
      on: true,
    }),
    event(7),
    event(8, { text: "", kind: "delete", ref: 7 }),
    event(9, { kind: "edit", ref: 1, text: "of a pruned one" }),
  ];
  const op = kv.atomic().set(["rooms", "old", "seq"], 9).set(["meta", "rooms"], new Deno.KvU64(1n));
  for (const e of events) {
    op.set(["rooms", "old", "msg", e.id], e).set(["rooms", "old", "cid", e.userId, e.cid], e.id);
  }
  assert.ok((await op.commit()).ok);
  const history = new KvHistory(kv, { limit: 5 });

  assert.deepEqual(await history.rooms(), [{ name: "old", lastId: 9, lastTs: 1_009 }]);
  const recent = await history.recent("old", 10);
  assert.deepEqual(recent.map((m) => [m.id, m.text]), [[3, "edited"], [4, "m4"], [7, ""]]);
  assert.deepEqual(recent[1].reactions, [{ emoji: "👍", users: [{ id: "u2", name: "bob" }] }]);
  assert.equal(recent[2].deleted, true);
  assert.equal(await history.get("old", 5), null, "id 5 is a change");
  const replay = await history.after("old", 2);
  assert.deepEqual([replay.messages.map((m) => m.id), replay.complete], [range(3, 9), true]);
  assert.equal((await history.after("old", 1)).complete, false);
  assert.deepEqual((await history.before("old", 7, 10)).messages.map((m) => m.id), [3, 4]);

  // Ids go on; a retried cid of the previous version is still a duplicate.
  assert.equal((await history.append("old", draft("new", "u1", "old"))).message.id, 10);
  assert.deepEqual(
    [(await history.append("old", { ...draft("c4", "u1", "old") })).duplicate],
    [true],
  );
  await history.append("old", { ...edit("e", 4, "edited now"), room: "old" });
  assert.deepEqual((await history.get("old", 4))?.text, "edited now");
  assert.deepEqual((await history.get("old", 4))?.reactions?.length, 1);
  assert.deepEqual((await history.rooms())[0].lastId, 11);
  await history.idle();
});

Deno.test("KvHistory: a plain say reads nothing and writes 4 keys; nothing is deleted on the way", async () => {
  using kv = await Deno.openKv(":memory:");
  const history = new KvHistory(kv, { limit: 3, pruneSlack: 2 });
  const mutations: string[][] = [];
  let reads = 0;
  const atomic = kv.atomic.bind(kv);
  kv.atomic = () => {
    const op = atomic();
    const set = op.set.bind(op), del = op.delete.bind(op), sum = op.sum.bind(op);
    const batch: string[] = [];
    mutations.push(batch);
    op.set = (
      key,
      value,
      options,
    ) => (batch.push(`set ${key.join("/")}`), set(key, value, options));
    op.delete = (key) => (batch.push(`delete ${key.join("/")}`), del(key));
    op.sum = (key, n) => (batch.push(`sum ${key.join("/")}`), sum(key, n));
    return op;
  };
  for (const method of ["get", "getMany", "list"] as const) {
    const real = kv[method].bind(kv) as (...args: unknown[]) => unknown;
    // deno-lint-ignore no-explicit-any
    (kv as any)[method] = (...args: unknown[]) => (reads++, real(...args));
  }
  await history.append("lobby", draft("c1"));
  reads = 0;
  mutations.length = 0;
  await history.append("lobby", draft("c2"));
  assert.equal(reads, 0);
  assert.deepEqual(mutations, [[
    "set rooms/lobby/cid/u1/c2",
    "set rooms/lobby/msg/2",
    "set rooms/lobby/seq",
    "set dir/lobby",
  ]]);
  // Past limit + slack, a pruning in the background deletes the oldest in one commit.
  for (let i = 3; i <= 6; i++) await history.append("lobby", draft(`c${i}`));
  await history.idle();
  const pruning = mutations.filter((batch) => batch.some((m) => m.startsWith("delete")));
  assert.deepEqual(pruning, [[
    "delete rooms/lobby/msg/1",
    "delete rooms/lobby/msg/2",
    "delete rooms/lobby/msg/3",
    "set rooms/lobby/floor",
  ]]);
  assert.deepEqual((await history.recent("lobby", 10)).map((m) => m.id), [4, 5, 6]);
});

Deno.test("KvHistory: after reads no more than limit + 1 events of each kind", async () => {
  using kv = await Deno.openKv(":memory:");
  const history = new KvHistory(kv);
  const drafts = range(1, 300).flatMap((
    i,
  ) => [draft(`c${i}`), react(`r${i}`, 2 * i - 1, "u2", true)]);
  for (let i = 0; i < drafts.length; i += 200) {
    await history.appendMany("lobby", drafts.slice(i, i + 200));
  }
  let listed = 0;
  const list = kv.list.bind(kv);
  kv.list = <T>(selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
    const entries = list<T>(selector, options);
    const next = entries.next.bind(entries);
    entries.next = async () => {
      const result = await next();
      if (!result.done) listed++;
      return result;
    };
    return entries;
  };
  const replay = await history.after("lobby", 0, 50);
  assert.deepEqual([replay.messages.length, replay.more, replay.complete], [50, true, true]);
  assert.ok(listed <= 2 * 51, `${listed} events read`);
  await history.idle();
});

Deno.test("KvHistory: two instances pruning one room at once count each deletion once", async () => {
  using kv = await Deno.openKv(":memory:");
  const a = new KvHistory(kv, { limit: 5 });
  const b = new KvHistory(kv, { limit: 5 });
  for (let i = 1; i <= 60; i++) {
    await Promise.all([
      (i % 2 ? a : b).append("lobby", draft(`c${i}`)),
      (i % 2 ? b : a).append("lobby", react(`r${i}`, 1 + 2 * (i - 1), "u2", true)),
    ]);
  }
  await Promise.all([a.idle(), b.idle()]);
  // One more append each prunes what the last race left behind.
  await a.append("lobby", draft("last"));
  await a.idle();
  const changeIds: number[] = [];
  let plain = 0;
  for await (const entry of kv.list({ prefix: ["rooms", "lobby"] })) {
    if (entry.key[2] === "msg") plain++;
    if (entry.key[2] === "chg") changeIds.push(Number(entry.key[3]));
  }
  const floor = (await kv.get<Floor>(floorKey("lobby"))).value!;
  // Every deletion counted once: what is left and what was counted pruned add up.
  assert.deepEqual([plain + floor.prunedPlain, changeIds.length + floor.prunedChanges], [61, 60]);
  assert.equal(plain, 5);
  // The newest 5 changes, less one whose id fell below the oldest message kept: which
  // of a round's two appends took the lower id depends on the race.
  assert.ok(changeIds.length === 5 || changeIds.length === 4, `${changeIds.length} changes`);
  assert.ok(changeIds.every((id) => id > floor.plain), "no change below the pruned messages");
  assert.deepEqual((await b.recent("lobby", 10)).length, 5);
});

Deno.test("KvHistory: a fold that would outgrow a KV value is not stored; the change still is", async () => {
  using kv = await Deno.openKv(":memory:");
  const history = new KvHistory(kv);
  await history.append("lobby", draft("c1"));
  // Each reaction adds a user of ~80 bytes of JSON: a few hundred reach KV's 64 KiB a value.
  const long = (i: number) => `${"x".repeat(28)}${String(i).padStart(4, "0")}`;
  const reactions = range(1, 800).map((i) => ({
    ...react(`r${i}`, 1, long(i), true),
    name: long(i),
  }));
  for (let i = 0; i < reactions.length; i += 100) {
    const results = await history.appendMany("lobby", reactions.slice(i, i + 100));
    assert.ok(results.every((r) => !r.duplicate));
  }
  assert.equal(await history.latest("lobby"), 801);
  const users = (await history.get("lobby", 1))?.reactions?.[0].users ?? [];
  assert.ok(users.length > 100 && users.length < 800, `${users.length} users folded in`);
  assert.deepEqual(users.slice(0, 2).map((u) => u.id), [long(1), long(2)]);
  assert.equal((await history.after("lobby", 0)).messages.length, 801);
  await history.idle();
});

Deno.test("KvHistory: a failed pruning is logged, and the next append prunes", async () => {
  using kv = await Deno.openKv(":memory:");
  const logged: LogEvent[] = [];
  const history = new KvHistory(kv, { limit: 3, log: (entry) => logged.push(entry) });
  for (let i = 1; i <= 3; i++) await history.append("lobby", draft(`c${i}`));
  const list = kv.list;
  kv.list = () => {
    throw new Error("disk I/O error");
  };
  await history.append("lobby", draft("c4"));
  await history.idle();
  kv.list = list;
  assert.deepEqual(logged, [{ event: "prune_failed", room: "lobby", error: "disk I/O error" }]);
  await history.append("lobby", draft("c5"));
  assert.deepEqual((await history.recent("lobby", 10)).map((m) => m.id), [3, 4, 5]);
  assert.equal((await history.after("lobby", 1)).complete, false);
  await history.idle();
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
