/**
 * The page's client (`static/chat_client.js`) for issue #23, with no
 * browser, against a scripted socket: a message with files goes through the
 * outbox with their ids (`attachments`) and keeps them across a dropped
 * connection and a reload; messages carry their files (gone with a delete);
 * reactions with any emoji; search (one at a time, the newest wins, pages
 * with the cursor as it came, refusals, a retry after `rate_limited`, a drop)
 * and a message's neighbours (`history {around}`), taken in when they reach
 * what the room holds, apart when they do not.
 */
import assert from "node:assert/strict";
import { memoryStorage } from "../static/chat_client.js";
import {
  ADA as ada,
  BOB as bob,
  type Detail,
  next,
  scriptedClient,
  ScriptedSocket,
  welcomeAda,
} from "./client_helpers.ts";

/** A welcome to `room` (the lobby unless said) for ada. */
const welcome = (room = "lobby", history: unknown[] = [], extra: Record<string, unknown> = {}) =>
  welcomeAda(room, history, extra);

const cat = { id: "f1", name: "cat.png", size: 48213, type: "image/png", width: 800, height: 600 };
const pdf = { id: "f2", name: "report.pdf", size: 1200, type: "application/pdf" };

/** A message of `room` from `who`, as the server sends it. */
const msg = (id: number, extra: Record<string, unknown> = {}, room = "lobby", who = bob) => ({
  type: "message",
  id,
  room,
  userId: who.id,
  name: who.name,
  text: `m${id}`,
  ts: id * 1000,
  cid: `c${id}`,
  ...extra,
});

function collect(client: EventTarget, type: string): Detail[] {
  const seen: Detail[] = [];
  client.addEventListener(type, (e) => seen.push((e as CustomEvent).detail));
  return seen;
}

/** Opens the client's socket number `n` and welcomes it to `rooms`. */
function connect(n: number, rooms: [string, unknown[]][] = [["lobby", []]]) {
  const socket = ScriptedSocket.all[n];
  socket.open();
  for (const [room, history] of rooms) socket.receive(welcome(room, history));
  return socket;
}

Deno.test("a message with files: their ids go as attachments, kept across a drop and a reload, until the ack", async () => {
  const storage = memoryStorage();
  const client = scriptedClient(["lobby"], { storage, rateLimitMs: 5 });
  let cid = "";
  try {
    client.start();
    let socket = connect(0);
    assert.equal(client.sessionToken, "t1", "the token a guest's uploads carry");
    const entry = client.say("", { files: [cat, pdf] });
    cid = entry.cid;
    assert.deepEqual(entry.files, [cat, pdf]);
    assert.deepEqual(socket.sent.at(-1), {
      type: "say",
      room: "lobby",
      text: "",
      cid,
      attachments: ["f1", "f2"],
    });
    assert.throws(
      () =>
        client.say("x", { files: Array.from({ length: 11 }, (_, i) => ({ ...pdf, id: `x${i}` })) }),
      RangeError,
    );
    // The stored outbox has the files' descriptions, to show them while pending.
    assert.deepEqual(JSON.parse(storage.getItem("chat.outbox.lobby")!)[0].files, [cat, pdf]);
    // The connection drops before the ack: the same say goes again, with the same cid and files.
    const dropped = next(client, "status", (s) => s.state === "reconnecting");
    socket.close(1006);
    await dropped;
    client.reconnect();
    socket = connect(1);
    assert.deepEqual(socket.sent.filter((f) => f.type === "say"), [
      { type: "say", room: "lobby", text: "", cid, attachments: ["f1", "f2"] },
    ]);
  } finally {
    await client.close();
  }
  // A reload with it still unacknowledged: once more, the same; its message ends it.
  const again = scriptedClient(["lobby"], { storage, rateLimitMs: 5 });
  const messages = collect(again, "message");
  try {
    again.start();
    assert.deepEqual(again.outbox.map((e) => [e.cid, e.files]), [[cid, [cat, pdf]]]);
    const socket = connect(0);
    assert.deepEqual(socket.sent.filter((f) => f.type === "say"), [
      { type: "say", room: "lobby", text: "", cid, attachments: ["f1", "f2"] },
    ]);
    socket.receive(
      { type: "ack", cid, id: 1, room: "lobby" },
      msg(1, { userId: ada.id, name: "ada", text: "", cid, attachments: [cat, pdf] }),
    );
    assert.deepEqual(again.outbox, []);
    assert.equal(storage.getItem("chat.outbox.lobby"), null);
    assert.deepEqual(messages[0].state.attachments, [cat, pdf]);
    assert.equal(messages[0].own, true);
  } finally {
    await again.close();
  }
});

Deno.test("a message's files: well-formed ones kept in order, gone with a delete; a refused say is marked failed", async () => {
  const client = scriptedClient(["lobby"], { rateLimitMs: 5 });
  const failed = collect(client, "failed");
  try {
    client.start();
    const socket = connect(0, [["lobby", [
      msg(1, {
        attachments: [
          cat,
          { id: 7, name: "bad id" },
          { id: "f3", name: "odd.gif", size: -1, type: "image/gif", width: 10 },
        ],
      }),
    ]]]);
    assert.deepEqual(client.message(1)?.attachments, [
      cat,
      { id: "f3", name: "odd.gif", size: 0, type: "image/gif" },
    ], "no width without a height: not an image with a known place");
    socket.receive(msg(2, { userId: bob.id, kind: "delete", ref: 1, text: "" }));
    assert.deepEqual(client.message(1)?.attachments, []);
    assert.equal(client.message(1)?.deleted, true);

    // A file of another room, or posted already: the server refuses the say for good.
    const entry = client.say("look", { files: [pdf] });
    socket.receive({
      type: "error",
      code: "invalid_message",
      message: "Cannot send message: file f2 is posted already",
      cid: entry.cid,
      room: "lobby",
    });
    assert.deepEqual(failed.map((f) => [f.cid, f.code]), [[entry.cid, "invalid_message"]]);
    assert.deepEqual(client.outbox.map((e) => [e.state, e.files]), [["failed", [pdf]]]);
  } finally {
    await client.close();
  }
});

Deno.test("reactions with any emoji: sent, folded, and a refusal dropped with its code", async () => {
  const client = scriptedClient(["lobby"], { rateLimitMs: 5 });
  const failed = collect(client, "failed");
  try {
    client.start();
    const socket = connect(0, [["lobby", [
      msg(1, { reactions: [{ emoji: "🦄", users: [bob] }] }),
    ]]]);
    assert.deepEqual(client.message(1)?.reactions, [{ emoji: "🦄", users: [bob] }]);
    const entry = client.react(1, "👩🏽‍💻");
    assert.deepEqual(socket.sent.at(-1), {
      type: "react",
      room: "lobby",
      ref: 1,
      emoji: "👩🏽‍💻",
      cid: entry.cid,
    });
    socket.receive(
      { type: "ack", cid: entry.cid, id: 2, room: "lobby" },
      msg(2, {
        userId: ada.id,
        name: "ada",
        kind: "reaction",
        ref: 1,
        emoji: "👩🏽‍💻",
        on: true,
        text: "",
      }),
    );
    assert.deepEqual(client.message(1)?.reactions, [
      { emoji: "🦄", users: [bob] },
      { emoji: "👩🏽‍💻", users: [{ id: ada.id, name: "ada" }] },
    ]);
    assert.throws(() => client.react(1, "two words"), RangeError);
    assert.throws(() => client.react(1, ""), RangeError);
    // Too many kinds of emoji on the message: the server says no.
    const more = client.react(1, "🐙");
    socket.receive({
      type: "error",
      code: "invalid_message",
      message: "Cannot react to message: it has 20 kinds of reactions",
      cid: more.cid,
      room: "lobby",
    });
    assert.deepEqual(failed.map((f) => f.code), ["invalid_message"]);
    assert.deepEqual(client.outbox, []);
  } finally {
    await client.close();
  }
});

Deno.test("search: one at a time, the newest wins, pages go on with the cursor as it came", async () => {
  const client = scriptedClient(["lobby", "design"], { rateLimitMs: 5 });
  const answers = collect(client, "search");
  const errors = collect(client, "search-error");
  try {
    client.start();
    const socket = connect(0, [["lobby", []], ["design", []]]);
    const first = client.search(" deploy ");
    assert.deepEqual(socket.sent.at(-1), { type: "search", q: "deploy", cid: first });
    // Two more while it runs: only the newest goes, once the first is answered.
    client.search("deplo", { room: "design" });
    const third = client.search("deploy v2", { room: "design" });
    assert.equal(socket.sent.filter((f) => f.type === "search").length, 1);
    socket.receive({
      type: "search",
      cid: first,
      q: "deploy",
      results: [msg(9, {}, "design")],
      hasMore: false,
    });
    assert.equal(answers.length, 0, "a stale answer is not told");
    assert.deepEqual(socket.sent.at(-1), {
      type: "search",
      q: "deploy v2",
      room: "design",
      cid: third,
    });
    const cursor = { ts: 5000, room: "design", id: 5, opaque: ["as", "it", "came"] };
    socket.receive({
      type: "search",
      cid: third,
      q: "deploy v2",
      results: [msg(8, { text: "deploy v2 done" }, "design"), { id: "no room" }],
      hasMore: true,
      next: cursor,
    });
    assert.equal(answers.length, 1);
    assert.deepEqual(
      { ...answers[0], results: answers[0].results.map((m: Detail) => [m.room, m.id]) },
      {
        cid: third,
        q: "deploy v2",
        room: "design",
        first: true,
        results: [["design", 8]],
        hasMore: true,
        next: cursor,
      },
    );
    // "More": the cursor goes back as it came.
    const more = client.search("deploy v2", { room: "design", before: cursor });
    assert.deepEqual(socket.sent.at(-1), {
      type: "search",
      q: "deploy v2",
      room: "design",
      before: cursor,
      cid: more,
    });
    socket.receive({ type: "search", cid: more, q: "deploy v2", results: [], hasMore: false });
    assert.equal(answers[1].first, false);
    assert.equal(answers[1].hasMore, false);

    // Refusals: an empty or over-long query, a room not joined.
    const bad = client.search("x".repeat(300));
    socket.receive({
      type: "error",
      code: "invalid_message",
      message: "Cannot search: 'q' is too long",
      cid: bad,
    });
    const elsewhere = client.search("hi", { room: "ops" });
    socket.receive({
      type: "error",
      code: "not_joined",
      message: "Cannot search: not in room ops",
      cid: elsewhere,
      room: "ops",
    });
    assert.deepEqual(errors.map((e) => [e.cid, e.code]), [
      [bad, "invalid_message"],
      [elsewhere, "not_joined"],
    ]);
  } finally {
    await client.close();
  }
});

Deno.test("search: rate_limited goes again after the pause; a drop sends it again once online", async () => {
  const client = scriptedClient(["lobby"], { rateLimitMs: 5 });
  const answers = collect(client, "search");
  try {
    client.start();
    let socket = connect(0);
    const cid = client.search("deploy");
    const again = socket.nextSent((f) => f.type === "search" && f.cid === cid, "the search again");
    socket.receive({
      type: "error",
      code: "rate_limited",
      message: "Cannot search: a search is already running",
      cid,
      retryAfterMs: 20,
    });
    await again;
    // The connection drops before the answer: the same search goes on the next one.
    const dropped = next(client, "status", (s) => s.state === "reconnecting");
    socket.close(1006);
    await dropped;
    client.reconnect();
    socket = ScriptedSocket.all[1];
    // Paced: the server's pause left the client's budget low, so it may go a moment later.
    const resent = socket.nextSent((f) => f.type === "search", "the search on the new connection");
    connect(1);
    assert.deepEqual(await resent, { type: "search", q: "deploy", cid });
    socket.receive({ type: "search", cid, q: "deploy", results: [], hasMore: false });
    assert.deepEqual(answers.map((a) => a.cid), [cid]);
    // Closed search: nothing waits any more.
    client.cancelSearch();
    assert.equal(client.search("x") !== "", true);
    client.cancelSearch();
  } finally {
    await client.close();
  }
});

Deno.test("around: neighbours that reach the held messages are taken in; others stand apart", async () => {
  const client = scriptedClient(["lobby"], { rateLimitMs: 5 });
  const older = collect(client, "older");
  const around = collect(client, "around");
  const errors = collect(client, "around-error");
  try {
    client.start();
    // The room holds 100–120.
    const held = Array.from({ length: 21 }, (_, i) => msg(100 + i));
    const socket = connect(0, [["lobby", held]]);
    assert.equal(client.oldestId, 100);

    // Message 90 with its neighbours 65–115: they reach 100, so 65–99 join the room.
    assert.equal(client.around("lobby", 90), true);
    assert.deepEqual(socket.sent.at(-1), { type: "history", room: "lobby", around: 90 });
    assert.equal(client.around("lobby", 90), true, "asked already: nothing more sent");
    assert.equal(socket.sent.filter((f) => f.around).length, 1);
    const page = Array.from({ length: 51 }, (_, i) => msg(65 + i));
    page[10] = msg(75, { kind: "edit", ref: 70, text: "m70 edited", userId: bob.id });
    socket.receive({
      type: "history",
      room: "lobby",
      messages: page,
      hasMore: true,
      around: 90,
      hasNewer: true,
    });
    assert.equal(older.length, 1);
    assert.deepEqual(older[0].messages.map((m: Detail) => m.id), [
      ...range(65, 74),
      ...range(76, 99),
    ]);
    assert.equal(client.message(70)?.text, "m70 edited", "a change of the page folded in");
    assert.equal(client.oldestId, 65);
    assert.equal(client.hasMore, true);
    assert.deepEqual(
      around.map((a) => [a.id, a.merged, a.hasNewer]),
      [[90, true, true]],
    );

    // Message 10 with 1–35: far from 65, they stand apart; the room holds what it held.
    assert.equal(client.around("lobby", 10), true);
    socket.receive({
      type: "history",
      room: "lobby",
      messages: Array.from({ length: 35 }, (_, i) => msg(1 + i)),
      hasMore: false,
      around: 10,
      hasNewer: true,
    });
    assert.equal(older.length, 1, "no older page");
    assert.equal(around[1].merged, false);
    assert.deepEqual(around[1].messages.map((m: Detail) => m.id), range(1, 35));
    assert.equal(client.message(10), undefined);
    assert.equal(client.oldestId, 65);

    // A refusal (pruned, say) and a drop end the request with an around-error.
    client.around("lobby", 3);
    socket.receive({
      type: "error",
      code: "not_found",
      message: "Cannot read history: no message 3",
      room: "lobby",
    });
    client.around("lobby", 4);
    const dropped = next(client, "status", (s) => s.state === "reconnecting");
    socket.close(1006);
    await dropped;
    assert.deepEqual(errors.map((e) => [e.id, e.code]), [[3, "not_found"], [4, "offline"]]);
    assert.equal(client.around("lobby", 5), false, "offline");
  } finally {
    await client.close();
  }
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
