/**
 * Unit tests of the hub with one connection in many rooms: joins per room,
 * room-scoped frames, leave, rename, presence per user, the user index, the
 * room directory, and the bounds that keep one connection or one flood
 * from costing more than its share. Fake peers, an in-memory KV, no sockets.
 */
import assert from "node:assert/strict";
import type { JoinIdentity } from "../src/auth/identity.ts";
import type { ChatMessage, JoinMessage } from "../src/protocol.ts";
import type { HistoryStore } from "../src/store/history.ts";
import { KvQuota } from "../src/store/kv_quota.ts";
import { ids, openHub, seed } from "./hub_fixture.ts";

/** JWT-like identities: the same name is the same user, with no tab session to replace. */
const bySubject = (join: JoinMessage): Promise<JoinIdentity> =>
  Promise.resolve({ userId: `sub-${join.name}`, name: join.name });

Deno.test("a connection joins two rooms: a welcome each, one identity, one name", async () => {
  await using t = await openHub();
  const ada = t.peer();
  const lobby = await t.join(ada, "lobby", "ada");
  const design = await t.join(ada, "design");
  assert.deepEqual([lobby.room, design.room], ["lobby", "design"]);
  assert.equal(design.id, lobby.id, "one identity");
  assert.equal(design.name, "ada", "the connection's name");
  assert.equal(design.token, lobby.token);
  assert.deepEqual(design.members, [{ id: lobby.id, name: "ada" }]);

  // Another name on the same connection is refused; the same room twice too.
  t.send(ada, { type: "join", room: "ops", name: "bob" });
  const renamed = await ada.next("error");
  assert.deepEqual([renamed.code, renamed.room], ["invalid_message", "ops"]);
  assert.match(renamed.message, /this connection's name is 'ada'/);
  t.send(ada, { type: "join", room: "design" });
  const twice = await ada.next("error");
  assert.deepEqual([twice.code, twice.room], ["already_joined", "design"]);
  assert.deepEqual(t.hub.rooms.map((r) => r.name).sort(), ["design", "lobby"]);
});

Deno.test("room-scoped frames name their room; one room may be left out only when alone", async () => {
  await using t = await openHub();
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");

  // In one room: no room needed, as one-room clients do today.
  t.send(ada, { type: "say", text: "hi", cid: "a1" });
  const ack = await ada.next("ack");
  assert.deepEqual([ack.room, ack.cid], ["lobby", "a1"]);
  assert.equal((await bob.next("message")).room, "lobby");

  // In two rooms: a frame without room is refused, with its cid.
  await t.join(ada, "design");
  t.send(ada, { type: "say", text: "where?", cid: "a2" });
  const unscoped = await ada.next("error");
  assert.deepEqual([unscoped.code, unscoped.cid], ["invalid_message", "a2"]);
  assert.match(unscoped.message, /'room' is required on a connection in several rooms/);
  // A room the connection is not in: not_joined, naming it.
  t.send(ada, { type: "say", room: "ops", text: "x", cid: "a3" });
  const outside = await ada.next("error");
  assert.deepEqual([outside.code, outside.room, outside.cid], ["not_joined", "ops", "a3"]);
  t.send(ada, { type: "history", room: "ops", before: 5, limit: 5 });
  assert.equal((await ada.next("error")).code, "not_joined");

  // Scoped frames go to their room only.
  t.send(ada, { type: "say", room: "design", text: "to design", cid: "a4" });
  const ackDesign = await ada.next("ack", (a) => a.cid === "a4");
  assert.equal(ackDesign.room, "design");
  const own = await ada.next("message", (m) => m.cid === "a4");
  assert.deepEqual([own.room, own.id], ["design", 1]);
  t.send(ada, { type: "typing", room: "design" });
  t.send(ada, { type: "history", room: "lobby", before: 2, limit: 10 });
  const page = await ada.next("history");
  assert.deepEqual([page.room, ids(page.messages)], ["lobby", [1]]);
  await t.hub.settled();
  assert.deepEqual(bob.all("message").map((m) => m.text), ["hi"], "bob is only in the lobby");
  assert.deepEqual(bob.all("typing"), []);
});

Deno.test("leave: one room, answered with left; its members see the leave, the others nothing", async () => {
  await using t = await openHub();
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  await t.join(ada, "design");
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  const carol = t.peer();
  await t.join(carol, "design", "carol");

  t.send(ada, { type: "leave", room: "lobby" });
  assert.deepEqual(await ada.next("left"), { type: "left", room: "lobby" });
  const left = await bob.next("presence", (p) => p.event === "leave");
  assert.deepEqual([left.room, left.member.name], ["lobby", "ada"]);
  assert.deepEqual(carol.all("presence").filter((p) => p.event === "leave"), []);

  // Still in design, where room may now be left out again.
  t.send(ada, { type: "say", text: "still here", cid: "a1" });
  assert.equal((await carol.next("message")).room, "design");
  t.send(ada, { type: "leave", room: "lobby" });
  assert.deepEqual(
    [(await ada.next("error")).code],
    ["not_joined"],
    "a room it is not in cannot be left",
  );
  // Back in: a fresh welcome, and the lobby sees the join again.
  await t.join(ada, "lobby");
  assert.equal((await bob.next("presence", (p) => p.event === "join")).member.name, "ada");
});

Deno.test("too_many_rooms: one more join than maxRoomsPerConnection is refused", async () => {
  await using t = await openHub({ maxRoomsPerConnection: 3 });
  const ada = t.peer();
  await t.join(ada, "r1", "ada");
  await t.join(ada, "r2");
  t.send(ada, { type: "join", room: "r3" });
  t.send(ada, { type: "join", room: "r4" }); // r3 is still joining: it counts
  const refused = await ada.next("error");
  assert.deepEqual([refused.code, refused.room], ["too_many_rooms", "r4"]);
  assert.equal((await ada.next("welcome")).room, "r3");
  // Leaving one makes room for another.
  t.send(ada, { type: "leave", room: "r1" });
  await ada.next("left");
  assert.equal((await t.join(ada, "r4")).room, "r4");
});

Deno.test("presence is per user: two connections of one user in a room are one member", async () => {
  await using t = await openHub({ identify: bySubject });
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  const tab1 = t.peer();
  const first = await t.join(tab1, "lobby", "ada");
  const tab2 = t.peer();
  const second = await t.join(tab2, "lobby", "ada");
  assert.equal(second.id, first.id, "the same user");
  assert.deepEqual(tab1.closes, [], "a JWT subject's connections coexist");
  assert.deepEqual(second.members.map((m) => m.name), ["bob", "ada"], "ada is listed once");
  assert.equal(t.hub.connectionsOf(first.id), 2, "the user index holds both connections");
  assert.deepEqual(bob.all("presence").map((p) => p.event), ["join"], "one join");
  assert.deepEqual(t.hub.rooms, [{ name: "lobby", members: 2, lastId: 0 }]);

  // Both connections get the room's messages; only the last one leaving is a leave.
  t.send(bob, { type: "say", text: "hi both", cid: "b1" });
  assert.equal((await tab1.next("message")).text, "hi both");
  assert.equal((await tab2.next("message")).text, "hi both");
  t.hub.disconnect(tab1);
  assert.deepEqual(bob.all("presence").map((p) => p.event), ["join"]);
  t.hub.disconnect(tab2);
  assert.deepEqual(bob.all("presence").map((p) => p.event), ["join", "leave"]);
  assert.equal(t.hub.connectionsOf(first.id), 0);
});

Deno.test("a disconnect leaves every room once, and the user index forgets the connection", async () => {
  await using t = await openHub();
  const ada = t.peer();
  const welcome = await t.join(ada, "a", "ada");
  await t.join(ada, "b");
  const bob = t.peer();
  await t.join(bob, "a", "bob");
  await t.join(bob, "b");
  assert.equal(t.hub.connectionsOf(welcome.id), 1);
  t.hub.disconnect(ada);
  const leaves = bob.all("presence").filter((p) => p.event === "leave");
  assert.deepEqual(leaves.map((p) => p.room).sort(), ["a", "b"]);
  assert.equal(t.hub.connectionsOf(welcome.id), 0);
  t.hub.disconnect(ada); // again: nothing more
  assert.equal(bob.all("presence").filter((p) => p.event === "leave").length, 2);
});

Deno.test("rename: every room sees one presence rename; a name taken in any room changes nothing", async () => {
  await using t = await openHub();
  const ada = t.peer();
  const welcome = await t.join(ada, "a", "ada");
  await t.join(ada, "b");
  const bob = t.peer();
  await t.join(bob, "a", "bob");
  const carol = t.peer();
  await t.join(carol, "b", "carol");

  t.send(ada, { type: "rename", name: "carol" }); // taken in b
  const taken = await ada.next("error");
  assert.equal(taken.code, "name_taken");
  assert.deepEqual(bob.all("presence").filter((p) => p.event === "rename"), []);

  t.send(ada, { type: "rename", name: "ada lovelace" });
  assert.deepEqual(await ada.next("renamed"), { type: "renamed", name: "ada lovelace" });
  for (const [peer, room] of [[bob, "a"], [carol, "b"]] as const) {
    const renamed = await peer.next("presence", (p) => p.event === "rename");
    assert.deepEqual(renamed, {
      type: "presence",
      room,
      event: "rename",
      member: { id: welcome.id, name: "ada lovelace" },
      previous: "ada",
    });
  }
  assert.deepEqual(bob.all("presence").map((p) => p.event), ["rename"], "no leave, no join");
  // New messages carry the new name; the old one is free again.
  t.send(ada, { type: "say", room: "a", text: "hi", cid: "a1" });
  assert.equal((await bob.next("message")).name, "ada lovelace");
  const dan = t.peer();
  assert.equal((await t.join(dan, "a", "ada")).name, "ada");
  // Later joins of the connection use the new name.
  assert.equal((await t.join(ada, "c")).name, "ada lovelace");
});

Deno.test("a first join whose name is taken leaves the connection free to try another", async () => {
  await using t = await openHub();
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  const twin = t.peer();
  await assert.rejects(t.join(twin, "lobby", "ADA"), /name_taken/);
  assert.equal((await t.join(twin, "lobby", "ada2")).name, "ada2");
  // Once in a room, the name is the connection's.
  await assert.rejects(t.join(twin, "other", "ada3"), /invalid_message/);
});

Deno.test("the directory: rooms with members first, then rooms with history, newest first", async () => {
  let now = 1_000_000;
  await using t = await openHub({ now: () => now });
  await seed(t.kv, "old", 2);
  await seed(t.kv, "_hidden", 1);
  await seed(t.kv, "recent", 3);
  const ada = t.peer();
  await t.join(ada, "live", "ada");
  await t.join(ada, "old");
  t.send(ada, { type: "rooms" });
  const { rooms } = await ada.next("rooms");
  assert.deepEqual(rooms.map((r) => [r.name, r.members, r.lastId]), [
    ["old", 1, 2],
    ["live", 1, 0],
    ["recent", 0, 3],
  ]);
  assert.ok(rooms[0].lastTs > 0 && rooms[2].lastTs >= rooms[0].lastTs);
  assert.deepEqual(
    (await t.hub.directory(["live", "recent", "nowhere"])).map((r) => r.name),
    ["live", "recent"],
    "a token's rooms claim filters the list",
  );

  // The store's list is reused for a few seconds, then read again.
  await seed(t.kv, "newer", 1);
  assert.ok(!(await t.hub.directory()).some((r) => r.name === "newer"));
  now += 10_000;
  assert.ok((await t.hub.directory()).some((r) => r.name === "newer"));
});

Deno.test("a resume from long ago reads only the newest messages, never the whole room", async () => {
  const read: number[] = [];
  await using t = await openHub({
    limit: 100,
    wrap: (store) => ({
      ...store,
      async after(room, since, limit) {
        const replay = await store.after(room, since, limit);
        read.push(replay.messages.length);
        return replay;
      },
    }),
  });
  await seed(t.kv, "lobby", 400); // 300 of them pruned
  const bob = t.peer();
  const welcome = await t.join(bob, "lobby", "bob", { since: 0 });
  assert.equal(welcome.recovered, false);
  assert.deepEqual(ids(welcome.history), Array.from({ length: 50 }, (_, i) => 351 + i));
  assert.deepEqual(read, [], "the retained history was not read for an impossible replay");
});

Deno.test("a resume without the store's epoch is not taken for complete", async () => {
  await using t = await openHub({
    wrap: (store) => ({
      ...store,
      epoch: () => Promise.resolve("e1"),
    }),
  });
  await seed(t.kv, "lobby", 5);
  const blind = await t.join(t.peer(), "lobby", "a", { since: 3 });
  assert.equal(blind.recovered, false, "no epoch: maybe a wiped store");
  assert.deepEqual(ids(blind.history), [1, 2, 3, 4, 5]);
  const wiped = await t.join(t.peer(), "lobby", "b", { since: 3, epoch: "e0" });
  assert.equal(wiped.recovered, false);
  const same = await t.join(t.peer(), "lobby", "c", { since: 3, epoch: "e1" });
  assert.deepEqual([same.recovered, ids(same.history)], [true, [4, 5]]);
});

Deno.test("changes while the store is down get unavailable with their cid, and land once it is back", async () => {
  let down = false;
  const check = () => {
    if (down) throw new Error("store is down");
  };
  await using t = await openHub({
    wrap: (store): HistoryStore => ({
      ...store,
      get: (room, id) => (check(), store.get(room, id)),
      stored: (room, userId, cid) => (check(), store.stored(room, userId, cid)),
      appendMany: (room, drafts) => (check(), store.appendMany(room, drafts)),
    }),
  });
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  t.send(ada, { type: "say", text: "helo", cid: "a1" });
  await ada.next("ack");
  down = true;
  for (
    const change of [
      { type: "edit", ref: 1, text: "hello", cid: "e1" },
      { type: "react", ref: 1, emoji: "👍", cid: "r1" },
      { type: "delete", ref: 1, cid: "d1" },
    ] as const
  ) {
    t.send(ada, change);
    const refused = await ada.next("error", (e) => e.cid === change.cid);
    assert.deepEqual([refused.code, refused.room], ["unavailable", "lobby"], change.type);
  }
  down = false;
  t.send(ada, { type: "edit", ref: 1, text: "hello", cid: "e1" });
  t.send(ada, { type: "react", ref: 1, emoji: "👍", cid: "r1" });
  assert.deepEqual([(await ada.next("ack")).id, (await ada.next("ack")).id], [2, 3]);
  // A retry of a change already stored is acked again, even once its message is gone.
  t.send(ada, { type: "delete", ref: 1, cid: "d1" });
  assert.equal((await ada.next("ack")).id, 4);
  t.send(ada, { type: "delete", ref: 1, cid: "d1" });
  assert.equal((await ada.next("ack")).id, 4);
  assert.deepEqual(
    ada.all("message").map((m: ChatMessage) => [m.id, m.kind ?? "message"]),
    [[1, "message"], [2, "edit"], [3, "reaction"], [4, "delete"]],
  );
});

Deno.test("a room's queue is bounded: past it, changes and joins are refused at once, with their cid", async () => {
  const gate = Promise.withResolvers<void>();
  let blocked = false;
  await using t = await openHub({
    maxRoomTasks: 3,
    wrap: (store): HistoryStore => ({
      ...store,
      async get(room, id) {
        if (blocked) await gate.promise;
        return await store.get(room, id);
      },
    }),
  });
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  t.send(ada, { type: "say", text: "hi", cid: "s1" });
  await ada.next("ack");
  await t.hub.settled(); // the queue is empty
  blocked = true;
  for (let i = 1; i <= 5; i++) t.send(ada, { type: "react", ref: 1, emoji: "👍", cid: `r${i}` });
  const refused = [await ada.next("error"), await ada.next("error")];
  assert.deepEqual(refused.map((e) => [e.code, e.cid]), [["unavailable", "r4"], [
    "unavailable",
    "r5",
  ]]);
  assert.match(refused[0].message, /Cannot react to message: the room is busy, retry soon/);
  t.send(t.peer(), { type: "join", room: "lobby", name: "late" });
  blocked = false;
  gate.resolve();
  await t.hub.settled();
  assert.deepEqual(ada.all("ack").map((a) => a.cid), ["s1", "r1", "r2", "r3"]);
});

Deno.test("a user whose frame was too large waits before joining again; others do not", async () => {
  let now = 5_000;
  await using t = await openHub({ now: () => now });
  const ada = t.peer();
  const first = await t.join(ada, "lobby", "ada");
  t.hub.violate(ada, 1009, "frame too large");
  assert.deepEqual(ada.closes, [{ code: 1009, reason: "frame too large" }]);
  const again = t.peer();
  t.send(again, { type: "join", room: "lobby", name: "ada", token: first.token });
  const refused = await again.next("error");
  assert.deepEqual([refused.code, refused.room], ["rate_limited", "lobby"]);
  assert.equal(refused.retryAfterMs, 60_000);
  // Someone else from the same address joins as usual.
  assert.equal((await t.join(t.peer(), "lobby", "bob")).name, "bob");
  now += 60_000;
  assert.equal((await t.join(again, "lobby", "ada", { token: first.token })).id, first.id);
});

Deno.test("a second join of a room whose join is still in flight is already_joined, never a self-replacement", async () => {
  const gate = Promise.withResolvers<void>();
  let blocked = false;
  await using t = await openHub({
    wrap: (store): HistoryStore => ({
      ...store,
      async latest(room) {
        if (blocked) await gate.promise;
        return await store.latest(room);
      },
    }),
  });
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  blocked = true;
  t.send(ada, { type: "join", room: "other" }); // waits in the store, inside the room's queue
  await Promise.resolve();
  t.send(ada, { type: "join", room: "other" });
  t.send(ada, { type: "leave", room: "lobby" });
  await ada.next("left");
  const twice = await ada.next("error");
  assert.deepEqual([twice.code, twice.room], ["already_joined", "other"]);
  blocked = false;
  gate.resolve();
  assert.equal((await ada.next("welcome", (w) => w.room === "other")).room, "other");
  await t.hub.settled();
  assert.deepEqual(ada.closes, [], "the connection was not replaced by itself");
});

Deno.test("a leave while the join is in flight: the join ends in left, and nobody saw it", async () => {
  const gate = Promise.withResolvers<void>();
  let blocked = false;
  await using t = await openHub({
    wrap: (store): HistoryStore => ({
      ...store,
      async latest(room) {
        if (blocked) await gate.promise;
        return await store.latest(room);
      },
    }),
  });
  const bob = t.peer();
  await t.join(bob, "other", "bob");
  await t.hub.settled();
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  blocked = true;
  t.send(ada, { type: "join", room: "other" });
  await Promise.resolve();
  t.send(ada, { type: "leave", room: "other" });
  blocked = false;
  gate.resolve();
  assert.deepEqual(await ada.next("left"), { type: "left", room: "other" });
  await t.hub.settled();
  assert.deepEqual(ada.all("welcome").map((w) => w.room), ["lobby"]);
  assert.deepEqual(bob.all("presence"), [], "bob saw no join and no leave");
  // And the room can be joined again afterwards.
  assert.equal((await t.join(ada, "other")).room, "other");
});

Deno.test("an address may create a few rooms an hour; past that its first messages get rate_limited", async () => {
  const db = await Deno.openKv(":memory:");
  try {
    await using t = await openHub({ quota: new KvQuota(db), newRoomsPerAddressPerHour: 2 });
    const spammer = t.peer("spam", "198.51.100.7");
    await t.join(spammer, "s1", "spam");
    for (const room of ["s2", "s3"]) await t.join(spammer, room);
    for (const room of ["s1", "s2", "s3"]) {
      t.send(spammer, { type: "say", room, text: "first!", cid: `c-${room}` });
    }
    // The rooms' queues run side by side: any two of the three get made.
    const acks = [await spammer.next("ack"), await spammer.next("ack")];
    const refused = await spammer.next("error");
    const made = acks.map((a) => a.room);
    assert.equal(new Set([...made, refused.room]).size, 3);
    assert.deepEqual([refused.code, refused.cid], ["rate_limited", `c-${refused.room}`]);
    assert.ok(refused.retryAfterMs! > 0 && refused.retryAfterMs! <= 3_600_000);
    assert.match(refused.message, /^Cannot create room: your address created 2 rooms this hour/);
    // Existing rooms take its messages as before, and another address creates rooms.
    t.send(spammer, { type: "say", room: made[0], text: "again", cid: "again" });
    assert.equal((await spammer.next("ack")).cid, "again");
    const other = t.peer("other", "203.0.113.9");
    await t.join(other, refused.room!, "other");
    t.send(other, { type: "say", text: "mine", cid: "o1" });
    assert.equal((await other.next("ack")).id, 1);
  } finally {
    db.close();
  }
});

Deno.test("1,000 reaction toggles do not push a room's messages out: retention counts messages (N7)", async () => {
  await using t = await openHub({ limit: 100 });
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  for (let i = 1; i <= 100; i++) t.send(ada, { type: "say", text: `real ${i}`, cid: `m${i}` });
  await ada.next("ack", (a) => a.cid === "m100");
  const troll = t.peer();
  await t.join(troll, "lobby", "troll");
  for (let i = 1; i <= 1000; i++) {
    t.send(troll, { type: "react", ref: 100, emoji: "👍", cid: `r${i}` });
    if (i % 100 === 0) await troll.next("ack", (a) => a.cid === `r${i}`);
  }
  const newcomer = await t.join(t.peer(), "lobby", "newcomer");
  assert.deepEqual(
    newcomer.history.map((m) => m.text),
    Array.from({ length: 50 }, (_, i) => `real ${i + 51}`),
    "the newest 50 real messages, not reactions",
  );
  assert.equal(newcomer.history.at(-1)?.reactions, undefined, "an even number of toggles: off");
  const page = await t.kv.before("lobby", 51, 100);
  assert.equal(page.messages.length, 50, "the 100 real messages are all kept");
});
