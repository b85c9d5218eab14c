/**
 * Unit tests of the hub with fake peers: no sockets, no server, no timers.
 * Each test builds a hub over an in-memory KV and talks to it through
 * `connect`, `receive` and `disconnect`, as a transport would.
 */
import assert from "node:assert/strict";
import { ids, openHub, range, seed } from "./hub_fixture.ts";

Deno.test("join: a welcome with the members and the room's history; the others see the join", async () => {
  await using t = await openHub();
  const old = await seed(t.kv, "lobby", 3);
  const ada = t.peer();
  const first = await t.join(ada, "lobby", "ada");
  assert.equal(first.room, "lobby");
  assert.equal(first.name, "ada");
  assert.ok(first.token, "a new session gets a token");
  assert.deepEqual(first.members, [{ id: first.id, name: "ada" }]);
  assert.deepEqual(first.history, old);
  assert.equal(first.recovered, undefined, "no since, no recovered");

  const bob = t.peer();
  const second = await t.join(bob, "lobby", "bob");
  assert.notEqual(second.id, first.id);
  assert.deepEqual(second.members, [{ id: first.id, name: "ada" }, { id: second.id, name: "bob" }]);
  assert.deepEqual(second.history, old);
  const joined = await ada.next("presence");
  assert.equal(joined.event, "join");
  assert.deepEqual(joined.member, { id: second.id, name: "bob" });
  assert.equal(
    "members" in joined,
    false,
    "a join carries that one member; the list is in the welcome",
  );
  assert.deepEqual(bob.all("presence"), [], "the joiner gets a welcome, not its own presence");
  assert.deepEqual(t.hub.rooms, [{ name: "lobby", members: 2, lastId: 3 }]);
});

Deno.test("join: a name held by another user (in any case) is refused and the connection stays", async () => {
  await using t = await openHub();
  const ada = t.peer();
  await t.join(ada, "lobby", "Ada");
  const other = t.peer();
  t.send(other, { type: "join", room: "lobby", name: "ADA" });
  const refused = await other.next("error");
  assert.equal(refused.code, "name_taken");
  assert.equal(refused.message, "Cannot join room: name is taken");
  assert.ok(other.open);
  assert.deepEqual(other.closes, []);
  assert.deepEqual(ada.closes, [], "the holder keeps its name");

  // The same connection can still join, under a free name.
  const welcome = await t.join(other, "lobby", "bob");
  assert.deepEqual(welcome.members.map((m) => m.name), ["Ada", "bob"]);
});

Deno.test("join: the same session joining again replaces its old connection (4000)", async () => {
  await using t = await openHub();
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  const old = t.peer();
  const first = await t.join(old, "lobby", "ada");
  await bob.next("presence", (p) => p.event === "join");

  const fresh = t.peer();
  const second = await t.join(fresh, "lobby", "ada", { token: first.token });
  assert.equal(second.id, first.id, "the token keeps the user id");
  assert.deepEqual(old.closes, [{ code: 4000, reason: "replaced by a new connection" }]);
  assert.equal(old.open, false);
  assert.deepEqual(second.members.map((m) => m.name), ["bob", "ada"], "ada is listed once");
  // ada stayed in the room throughout: nobody saw her leave and come back.
  assert.equal(bob.all("presence").length, 1);

  // The old connection's eventual disconnect changes nothing for the room.
  t.hub.disconnect(old);
  assert.equal(bob.all("presence").length, 1);
  assert.deepEqual(t.hub.rooms, [{ name: "lobby", members: 2, lastId: 0 }]);
});

Deno.test("say: an ack to the sender, then the message to every member, in id order", async () => {
  await using t = await openHub();
  const ada = t.peer();
  const adaWelcome = await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  for (let i = 1; i <= 3; i++) t.send(ada, { type: "say", text: `hi ${i}`, cid: `c${i}` });
  await ada.next("message", (m) => m.id === 3);
  await bob.next("message", (m) => m.id === 3);

  const adaSaw = ada.received.filter((m) => m.type === "ack" || m.type === "message");
  assert.deepEqual(
    adaSaw.map((m) => `${m.type} ${m.id}`),
    ["ack 1", "message 1", "ack 2", "message 2", "ack 3", "message 3"],
  );
  assert.deepEqual(ada.all("ack").map((a) => a.cid), ["c1", "c2", "c3"]);
  const messages = bob.all("message");
  assert.deepEqual(ids(messages), [1, 2, 3]);
  assert.deepEqual(messages.map((m) => m.text), ["hi 1", "hi 2", "hi 3"]);
  for (const m of messages) {
    assert.equal(m.room, "lobby");
    assert.equal(m.userId, adaWelcome.id);
    assert.equal(m.name, "ada");
  }
  assert.deepEqual(bob.all("ack"), [], "only the sender gets acks");
});

Deno.test("say before join: not_joined, with the cid", async () => {
  await using t = await openHub();
  const ada = t.peer();
  t.send(ada, { type: "say", text: "hello?", cid: "early" });
  const error = await ada.next("error");
  assert.equal(error.code, "not_joined");
  assert.equal(error.cid, "early");
  assert.ok(ada.open);
  assert.deepEqual(t.commits, [], "nothing was stored");
});

Deno.test("typing: forwarded to the others, at most once per interval", async () => {
  // The interval is compared with performance.now(); the hub takes no clock,
  // so a long and a zero interval stand for "within" and "after" it.
  for (const [typingIntervalMs, forwarded] of [[60_000, 1], [0, 3]] as const) {
    await using t = await openHub({ typingIntervalMs });
    const ada = t.peer();
    const adaWelcome = await t.join(ada, "lobby", "ada");
    const bob = t.peer();
    await t.join(bob, "lobby", "bob");
    const carol = t.peer();
    await t.join(carol, "lobby", "carol");
    for (let i = 0; i < 3; i++) t.send(ada, { type: "typing" }); // Handled synchronously.
    const notice = { type: "typing", room: "lobby", member: { id: adaWelcome.id, name: "ada" } };
    assert.deepEqual(
      bob.all("typing"),
      Array(forwarded).fill(notice),
      `interval ${typingIntervalMs}`,
    );
    assert.deepEqual(carol.all("typing"), Array(forwarded).fill(notice));
    assert.deepEqual(ada.all("typing"), [], "not echoed to the typist");
  }
});

Deno.test("typing before join: not_joined", async () => {
  await using t = await openHub();
  const ada = t.peer();
  t.send(ada, { type: "typing" });
  assert.equal((await ada.next("error")).code, "not_joined");
});

Deno.test("leave: the others get a presence leave for that member", async () => {
  await using t = await openHub();
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  const bobWelcome = await t.join(bob, "lobby", "bob");
  t.hub.disconnect(bob);
  const left = await ada.next("presence", (p) => p.event === "leave");
  assert.deepEqual(left.member, { id: bobWelcome.id, name: "bob" });
  assert.equal(t.hub.peers, 1);

  // The room is forgotten once its last member left and its queue ran.
  t.hub.disconnect(ada);
  assert.equal(t.hub.peers, 0);
  await t.hub.settled();
  assert.deepEqual(t.hub.rooms, []);
});

Deno.test("many says in one tick are stored together, in arrival order, with contiguous ids", async () => {
  await using t = await openHub();
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  const COUNT = 250; // More than one commit holds (MAX_BATCH, 200).
  const order: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const [peer, who] = i % 3 === 0 ? [bob, "bob"] : [ada, "ada"];
    t.send(peer, { type: "say", text: `${who} ${i}`, cid: `c${i}` });
    order.push(`${who} ${i}`);
  }
  await ada.next("message", (m) => m.id === COUNT);
  await bob.next("message", (m) => m.id === COUNT);

  const stored = await t.kv.recent("lobby", COUNT + 1);
  assert.deepEqual(ids(stored), range(1, COUNT));
  assert.deepEqual(stored.map((m) => m.text), order);
  assert.deepEqual(t.commits, [200, 50], "two appendMany calls for 250 says");
  for (const peer of [ada, bob]) {
    assert.deepEqual(peer.all("message"), stored, `${peer.id} got every message once, in order`);
  }
  const acked = [...ada.all("ack"), ...bob.all("ack")].sort((a, b) => a.id - b.id);
  assert.deepEqual(acked.map((a) => a.cid), order.map((_, i) => `c${i}`));
});

Deno.test("a store that throws: each waiting say gets unavailable with its cid", async () => {
  await using t = await openHub({
    wrap: (history) => ({
      ...history,
      limit: history.limit,
      appendMany: () => Promise.reject(new Error("the disk is on fire")),
    }),
  });
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  await t.join(bob, "lobby", "bob");
  t.send(ada, { type: "say", text: "one", cid: "a1" });
  t.send(ada, { type: "say", text: "two", cid: "a2" });
  const errors = [await ada.next("error"), await ada.next("error")];
  assert.deepEqual(errors.map((e) => [e.code, e.cid]), [["unavailable", "a1"], [
    "unavailable",
    "a2",
  ]]);
  assert.match(errors[0].message, /history is unavailable/);
  assert.ok(ada.open, "the sender stays connected");
  await t.hub.settled();
  assert.deepEqual(bob.all("message"), [], "nothing was broadcast");
  assert.deepEqual(ada.all("ack"), []);
});

Deno.test("says waiting in all rooms together are bounded: one more in another room gets unavailable", async () => {
  const gate = Promise.withResolvers<void>();
  await using t = await openHub({
    maxWaitingSaysTotal: 2,
    wrap: (history) => ({
      ...history,
      limit: history.limit,
      appendMany: async (room, drafts) => {
        await gate.promise; // A store that cannot keep up, until the gate opens.
        return history.appendMany(room, drafts);
      },
    }),
  });
  const ada = t.peer();
  await t.join(ada, "a", "ada");
  const bob = t.peer();
  await t.join(bob, "b", "bob");
  t.send(ada, { type: "say", text: "one", cid: "a1" }); // in the commit
  t.send(ada, { type: "say", text: "two", cid: "a2" }); // waiting behind it
  t.send(bob, { type: "say", text: "hi", cid: "b1" });
  const refused = await bob.next("error");
  assert.deepEqual([refused.code, refused.cid], ["unavailable", "b1"]);
  assert.match(refused.message, /the server is busy, retry soon/);
  gate.resolve();
  assert.deepEqual([(await ada.next("ack")).cid, (await ada.next("ack")).cid], ["a1", "a2"]);
  await t.hub.settled(); // Ada's commit is done: there is room again.
  t.send(bob, { type: "say", text: "hi", cid: "b1" }); // the retry
  assert.equal((await bob.next("ack")).cid, "b1");
});

Deno.test("join with since replays exactly what was missed, with recovered true", async () => {
  await using t = await openHub();
  const ada = t.peer();
  await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  const first = await t.join(bob, "lobby", "bob");
  for (let i = 1; i <= 2; i++) t.send(ada, { type: "say", text: `m${i}`, cid: `c${i}` });
  await bob.next("message", (m) => m.id === 2);
  t.hub.disconnect(bob); // Bob's connection drops; he saw up to id 2.

  for (let i = 3; i <= 5; i++) t.send(ada, { type: "say", text: `m${i}`, cid: `c${i}` });
  await ada.next("ack", (a) => a.cid === "c5");
  const back = t.peer();
  const resumed = await t.join(back, "lobby", "bob", { since: 2, token: first.token });
  assert.equal(resumed.id, first.id);
  assert.equal(resumed.recovered, true);
  assert.deepEqual(ids(resumed.history), [3, 4, 5]);
  assert.deepEqual(resumed.history.map((m) => m.text), ["m3", "m4", "m5"]);

  // Up to date: nothing to replay, still recovered.
  const carol = t.peer();
  const current = await t.join(carol, "lobby", "carol", { since: 5 });
  assert.equal(current.recovered, true);
  assert.deepEqual(current.history, []);

  // Then the next say reaches everyone once.
  t.send(ada, { type: "say", text: "m6", cid: "c6" });
  for (const peer of [back, carol]) {
    assert.equal((await peer.next("message")).id, 6);
  }
  assert.deepEqual(ids(back.all("message")), [6]);
});

Deno.test("join with since past the retention: recovered false and the newest messages", async () => {
  await using t = await openHub({ limit: 3, welcomeHistory: 2 });
  await seed(t.kv, "lobby", 6); // Ids 1 to 3 are pruned.
  const bob = t.peer();
  const welcome = await t.join(bob, "lobby", "bob", { since: 1 });
  assert.equal(welcome.recovered, false);
  assert.deepEqual(ids(welcome.history), [5, 6]);
});
