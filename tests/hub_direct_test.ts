/**
 * Unit tests of direct conversations, blocks and read positions in the hub:
 * a conversation is a room of two (`dm:<id>:<id>`), opened by name, joined
 * by its two people's connections as soon as it gets a message, and closed
 * to everyone else. Fake peers, an in-memory KV, no sockets.
 */
import assert from "node:assert/strict";
import type { JoinIdentity } from "../src/auth/identity.ts";
import { dmRoom, type JoinMessage } from "../src/protocol.ts";
import { openHub } from "./hub_fixture.ts";

/** JWT-like identities: the same name is the same user, on any connection. */
const bySubject = (join: JoinMessage): Promise<JoinIdentity> =>
  Promise.resolve({ userId: `sub-${join.name}`, name: join.name });

Deno.test("dm between two guests: opened by name, and the other joins it by itself with the message", async () => {
  await using t = await openHub();
  const ada = t.peer();
  const adaWelcome = await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  const bobWelcome = await t.join(bob, "lobby", "bob");
  const room = dmRoom(adaWelcome.id, bobWelcome.id);

  t.send(ada, { type: "dm", name: "BOB" }); // by the name's key
  const opened = await ada.next("welcome", (w) => w.room === room);
  assert.deepEqual(opened.peer, { userId: bobWelcome.id, name: "bob" });
  assert.deepEqual(opened.history, []);
  assert.equal(opened.readId, 0);
  assert.deepEqual(bob.all("welcome").map((w) => w.room), ["lobby"], "nothing for bob yet");

  t.send(ada, { type: "say", room, text: "psst", cid: "d1" });
  const pulled = await bob.next("welcome", (w) => w.room === room);
  assert.deepEqual(pulled.peer, { userId: adaWelcome.id, name: "ada" });
  assert.deepEqual(pulled.history.map((m) => m.text), ["psst"], "the welcome brings the message");
  assert.deepEqual(bob.all("message").filter((m) => m.room === room), [], "once: in the welcome");
  t.send(bob, { type: "say", room, text: "hi!", cid: "d2" });
  assert.equal((await ada.next("message", (m) => m.room === room && m.cid === "d2")).text, "hi!");

  // Never in the directory; a third user cannot join it.
  t.send(ada, { type: "rooms" });
  assert.deepEqual((await ada.next("rooms")).rooms.map((r) => r.name), ["lobby"]);
  const carol = t.peer();
  await t.join(carol, "lobby", "carol");
  t.send(carol, { type: "join", room });
  const refused = await carol.next("error");
  assert.deepEqual([refused.code, refused.room], ["room_forbidden", room]);
});

Deno.test("dm refusals: yourself, nobody of that name, before any join", async () => {
  await using t = await openHub();
  const lone = t.peer();
  t.send(lone, { type: "dm", name: "ada" });
  assert.equal((await lone.next("error")).code, "not_joined");
  await t.join(lone, "lobby", "ada");
  t.send(lone, { type: "dm", name: "ada" });
  assert.match((await lone.next("error")).message, /that is you/);
  t.send(lone, { type: "dm", name: "nobody" });
  const missing = await lone.next("error");
  assert.deepEqual([missing.code, missing.message], [
    "not_found",
    "Cannot open conversation: nobody called 'nobody' is online",
  ]);
});

Deno.test("block: a blocked user cannot open or write to the conversation; unblock lets them", async () => {
  await using t = await openHub();
  const ada = t.peer();
  const a = await t.join(ada, "lobby", "ada");
  const bob = t.peer();
  const b = await t.join(bob, "lobby", "bob");
  const room = dmRoom(a.id, b.id);
  t.send(ada, { type: "dm", name: "bob" });
  await ada.next("welcome", (w) => w.room === room);

  t.send(bob, { type: "block", userId: a.id });
  assert.deepEqual(await bob.next("blocks"), { type: "blocks", users: [a.id] });
  t.send(ada, { type: "say", room, text: "hello?", cid: "x1" });
  const refused = await ada.next("error");
  assert.deepEqual([refused.code, refused.cid, refused.room], ["blocked", "x1", room]);
  t.send(ada, { type: "leave", room });
  await ada.next("left");
  t.send(ada, { type: "dm", name: "bob" });
  assert.equal((await ada.next("error")).code, "blocked");
  assert.deepEqual(bob.all("welcome").map((w) => w.room), ["lobby"], "bob was never pulled in");

  t.send(bob, { type: "unblock", userId: a.id });
  assert.deepEqual(await bob.next("blocks"), { type: "blocks", users: [] });
  t.send(ada, { type: "dm", name: "bob" });
  await ada.next("welcome", (w) => w.room === room);
  t.send(ada, { type: "say", room, text: "sorry", cid: "x2" });
  assert.equal((await bob.next("welcome", (w) => w.room === room)).history.at(-1)?.text, "sorry");
  t.send(bob, { type: "block", userId: b.id });
  assert.match((await bob.next("error")).message, /that is you/);
});

Deno.test("read positions: kept per user, in every welcome, and told to the user's other connections", async () => {
  await using t = await openHub({ identify: bySubject });
  const writer = t.peer();
  await t.join(writer, "lobby", "writer");
  for (let i = 1; i <= 3; i++) t.send(writer, { type: "say", text: `m${i}`, cid: `c${i}` });
  await writer.next("ack", (a) => a.cid === "c3");
  const phone = t.peer();
  assert.equal((await t.join(phone, "lobby", "ada")).readId, 0);
  const laptop = t.peer();
  await t.join(laptop, "lobby", "ada");
  t.send(phone, { type: "read", room: "lobby", id: 2 });
  assert.deepEqual(await laptop.next("read"), { type: "read", room: "lobby", id: 2 });
  assert.deepEqual(phone.all("read"), [], "not echoed to the connection that read");
  t.send(phone, { type: "read", room: "lobby", id: 1 }); // never backwards
  t.send(phone, { type: "read", room: "lobby", id: 99 }); // never past the room
  assert.deepEqual(await laptop.next("read"), { type: "read", room: "lobby", id: 3 });
  const tablet = t.peer();
  assert.equal((await t.join(tablet, "lobby", "ada")).readId, 3);
  t.send(tablet, { type: "read", room: "elsewhere", id: 1 });
  assert.equal((await tablet.next("error")).code, "not_joined");
});
