/**
 * Scrollback, edits, deletes, reactions, replies and the room list, over
 * real sockets. Every change is an event in the room's sequence, so a
 * resume replays it like any message.
 */
import assert from "node:assert/strict";
import { decideChange } from "../src/hub/changes.ts";
import { fold } from "../src/store/fold.ts";
import type { ChatMessage } from "../src/protocol.ts";
import { ONE_ADDRESS_LIFTED, startServer, TestClient } from "./helpers.ts";

Deno.test("history pages back through older messages and says when there are no more", async () => {
  await using server = await startServer({ rateBurst: 200, ...ONE_ADDRESS_LIFTED });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  for (let i = 1; i <= 120; i++) ada.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  await ada.next("ack", (a) => a.cid === "c120");
  await using bob = await TestClient.connect(server.wsUrl);
  bob.send({ type: "join", room: "lobby", name: "bob" });
  const welcome = await bob.next("welcome");
  assert.equal(welcome.history[0].id, 71, "the welcome holds the newest 50");
  bob.send({ type: "history", before: 71, limit: 50 });
  const page = await bob.next("history");
  assert.deepEqual(page.messages.map((m) => m.id), Array.from({ length: 50 }, (_, i) => i + 21));
  assert.equal(page.hasMore, true);
  bob.send({ type: "history", before: 21, limit: 100 });
  const last = await bob.next("history");
  assert.equal(last.messages.length, 20);
  assert.equal(last.hasMore, false);
  bob.send({ type: "history", before: 21, limit: 101 });
  assert.equal((await bob.next("error")).code, "invalid_message");
});

Deno.test("edit and delete your own message; someone else's is forbidden, an unknown one not found", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  ada.send({ type: "say", text: "helo", cid: "a1" });
  await bob.next("message", (m) => m.cid === "a1");

  ada.send({ type: "edit", ref: 1, text: "hello", cid: "a2" });
  const edit = await bob.next("message", (m) => m.cid === "a2");
  assert.deepEqual([edit.id, edit.kind, edit.ref, edit.text], [2, "edit", 1, "hello"]);

  bob.send({ type: "edit", ref: 1, text: "mine now", cid: "b1" });
  assert.deepEqual(pick(await bob.next("error")), ["forbidden", "b1"]);
  bob.send({ type: "delete", ref: 1, cid: "b2" });
  assert.deepEqual(pick(await bob.next("error")), ["forbidden", "b2"]);
  bob.send({ type: "edit", ref: 99, text: "?", cid: "b3" });
  assert.deepEqual(pick(await bob.next("error")), ["not_found", "b3"]);
  bob.send({ type: "react", ref: 2, emoji: "👍", cid: "b4" });
  assert.deepEqual(pick(await bob.next("error")), ["not_found", "b4"], "an event is not a message");

  ada.send({ type: "delete", ref: 1, cid: "a3" });
  const deleted = await bob.next("message", (m) => m.cid === "a3");
  assert.deepEqual([deleted.kind, deleted.ref, deleted.text], ["delete", 1, ""]);
  ada.send({ type: "edit", ref: 1, text: "back", cid: "a4" });
  assert.deepEqual(pick(await ada.next("error")), ["deleted", "a4"]);
  bob.send({ type: "react", ref: 1, emoji: "👍", cid: "b5" });
  assert.deepEqual(pick(await bob.next("error")), ["deleted", "b5"]);
  // The connection stays usable after every refusal, and a retried delete is acked again.
  ada.send({ type: "delete", ref: 1, cid: "a3" });
  assert.equal((await ada.next("ack", (a) => a.cid === "a3" && a.id === 3)).id, 3);
});

Deno.test("a reaction toggles, with any single emoji, and a reply names its message", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  ada.send({ type: "say", text: "ship it?", cid: "a1" });
  await bob.next("message", (m) => m.cid === "a1");
  bob.send({ type: "react", ref: 1, emoji: "🚀", cid: "b1" });
  const on = await ada.next("message", (m) => m.cid === "b1");
  assert.deepEqual([on.kind, on.ref, on.emoji, on.on], ["reaction", 1, "🚀", true]);
  bob.send({ type: "react", ref: 1, emoji: "🚀", cid: "b2" });
  const off = await ada.next("message", (m) => m.cid === "b2");
  assert.equal(off.on, false);
  bob.send({ type: "react", ref: 1, emoji: "no", cid: "b3" });
  assert.deepEqual(pick(await bob.next("error")), ["invalid_message", "b3"]);

  bob.send({ type: "say", text: "yes", cid: "b4", replyTo: 1 });
  assert.equal((await ada.next("message", (m) => m.cid === "b4")).replyTo, 1);
});

Deno.test("a resume with since replays edits, deletes and reactions in order", async () => {
  await using server = await startServer();
  const { client: ada, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  ada.send({ type: "say", text: "one", cid: "a1" });
  await ada.next("ack");
  await using bob = await TestClient.connect(server.wsUrl);
  bob.send({ type: "join", room: "lobby", name: "bob" });
  await bob.next("welcome");
  await bob.close();
  ada.send({ type: "edit", ref: 1, text: "uno", cid: "a2" });
  ada.send({ type: "react", ref: 1, emoji: "🎉", cid: "a3" });
  ada.send({ type: "delete", ref: 1, cid: "a4" });
  await ada.next("ack", (a) => a.cid === "a4");
  await using back = await TestClient.connect(server.wsUrl);
  back.send({ type: "join", room: "lobby", name: "bob", since: 1, epoch: welcome.epoch });
  const resumed = await back.next("welcome");
  assert.equal(resumed.recovered, true);
  assert.deepEqual(resumed.history.map((m) => [m.id, m.kind, m.ref]), [
    [2, "edit", 1],
    [3, "reaction", 1],
    [4, "delete", 1],
  ]);
});

Deno.test("rooms lists the active rooms with member counts, but never one named _private", async () => {
  await using server = await startServer();
  await using _a = (await TestClient.join(server.wsUrl, "team", "ada")).client;
  await using _b = (await TestClient.join(server.wsUrl, "team", "bob")).client;
  await using _c = (await TestClient.join(server.wsUrl, "lobby", "carol")).client;
  await using _d = (await TestClient.join(server.wsUrl, "_secret", "dan")).client;
  await using asker = await TestClient.connect(server.wsUrl);
  asker.send({ type: "rooms" });
  const { rooms } = await asker.next("rooms");
  assert.deepEqual(rooms.map((r) => [r.name, r.members]), [["team", 2], ["lobby", 1]]);
});

Deno.test("decideChange: a reaction toggles against the message's current state", () => {
  const original: ChatMessage = message(1, "u1", {});
  const reaction = message(2, "u2", { kind: "reaction", ref: 1, emoji: "👍", on: true, cid: "r1" });
  const first = decideChange({ type: "react", ref: 1, emoji: "👍", cid: "r1" }, "u2", original);
  assert.deepEqual(first, {
    ok: true,
    event: { kind: "reaction", ref: 1, text: "", emoji: "👍", on: true },
  });
  const again = decideChange(
    { type: "react", ref: 1, emoji: "👍", cid: "r2" },
    "u2",
    fold(original, reaction),
  );
  assert.deepEqual(again, {
    ok: true,
    event: { kind: "reaction", ref: 1, text: "", emoji: "👍", on: false },
  });
  const gone = fold(original, message(3, "u1", { kind: "delete", ref: 1, text: "", cid: "d" }));
  assert.equal(
    (decideChange({ type: "edit", ref: 1, text: "x", cid: "e" }, "u1", gone) as { code: string })
      .code,
    "deleted",
  );
  assert.equal(
    (decideChange({ type: "edit", ref: 2, text: "x", cid: "e" }, "u1", null) as { code: string })
      .code,
    "not_found",
  );
});

function message(id: number, userId: string, extra: Partial<ChatMessage>): ChatMessage {
  return {
    type: "message",
    id,
    room: "r",
    userId,
    name: userId,
    text: "t",
    ts: 0,
    cid: `c${id}`,
    ...extra,
  };
}

function pick(error: { code: string; cid?: string }): [string, string | undefined] {
  return [error.code, error.cid];
}
