import assert from "node:assert/strict";
import { KvHistory } from "../src/store/kv_history.ts";

function draft(cid: string) {
  return { room: "lobby", userId: "u", name: "ada", text: cid, cid };
}

Deno.test("two instances appending to one KV file at once get one contiguous sequence", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-history-" });
  const path = `${dir}/chat.kv`;
  using kvA = await Deno.openKv(path);
  using kvB = await Deno.openKv(path);
  const a = new KvHistory(kvA);
  const b = new KvHistory(kvB);
  const results = await Promise.all(
    Array.from({ length: 120 }, (_, i) => (i % 2 ? a : b).append("lobby", draft(`c${i}`))),
  );
  const ids = results.map((r) => r.message.id).sort((x, y) => x - y);
  assert.deepEqual(ids, Array.from({ length: 120 }, (_, i) => i + 1));
  const stored = await a.recent("lobby", 200);
  assert.deepEqual(stored.map((m) => m.id), ids);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("older messages are pruned past the limit, newest kept", async () => {
  using kv = await Deno.openKv(":memory:");
  const history = new KvHistory(kv, { limit: 3 });
  for (let i = 1; i <= 7; i++) await history.append("lobby", draft(`c${i}`));
  assert.deepEqual((await history.recent("lobby", 50)).map((m) => m.id), [5, 6, 7]);
  assert.deepEqual(await history.after("lobby", 5), {
    messages: await history.recent("lobby", 2),
    complete: true,
  });
  assert.equal((await history.after("lobby", 3)).complete, false);
});

Deno.test("the same cid twice returns the first message as a duplicate", async () => {
  using kv = await Deno.openKv(":memory:");
  const history = new KvHistory(kv);
  const first = await history.append("lobby", draft("same"));
  const second = await history.append("lobby", { ...draft("same"), text: "changed" });
  assert.equal(first.duplicate, false);
  assert.equal(second.duplicate, true);
  assert.deepEqual(second.message, first.message);
});

Deno.test("appends of many rooms at once share commits, and a conflict in one falls back for each", async () => {
  using kv = await Deno.openKv(":memory:");
  let commits = 0;
  const atomic = kv.atomic.bind(kv);
  kv.atomic = () => {
    const op = atomic();
    const commit = op.commit.bind(op);
    op.commit = () => (commits++, commit());
    return op;
  };
  const history = new KvHistory(kv);
  const rooms = Array.from({ length: 20 }, (_, i) => `room${i}`);
  for (const room of rooms) await history.append(room, { ...draft("first"), room });
  commits = 0;
  const results = await Promise.all(
    rooms.map((room) => history.append(room, { ...draft("second"), room })),
  );
  assert.deepEqual(results.map((r) => r.message.id), rooms.map(() => 2));
  assert.ok(commits < rooms.length / 2, `${commits} commits for ${rooms.length} rooms`);

  // Another instance appends to room0: the next shared commit fails its check, and every
  // room of it is stored on its own instead, still in order.
  const other = new KvHistory(kv);
  await other.append("room0", { ...draft("elsewhere"), room: "room0" });
  const again = await Promise.all(
    rooms.map((room) => history.append(room, { ...draft("third"), room })),
  );
  assert.deepEqual(again.map((r) => r.message.id), rooms.map((room) => (room === "room0" ? 4 : 3)));
  assert.deepEqual((await history.recent("room0", 10)).map((m) => m.cid), [
    "first",
    "second",
    "elsewhere",
    "third",
  ]);
});
