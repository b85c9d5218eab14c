/**
 * The page's protocol client, `static/chat_client.js`, with no browser: against
 * the real server on port 0, and against a scripted socket for the protocol
 * changes the server does not make yet (presence deltas, the store epoch).
 */
import assert from "node:assert/strict";
import {
  ChatClient,
  checkRoomName,
  memoryStorage,
  nameVariant,
  parseFrame,
  REACTIONS,
} from "../static/chat_client.js";
import { Conversation } from "../static/conversation.js";
import { mentionsName, parseText } from "../static/rich_text.js";
import { ONE_ADDRESS_LIFTED, startServer, TestClient, within } from "./helpers.ts";
import { type Detail, next, record, ScriptedSocket, TappedSocket } from "./client_helpers.ts";

Deno.test("nameVariant appends a number and stays within 32 characters", () => {
  assert.equal(nameVariant("ada", 2), "ada2");
  assert.equal(nameVariant(" ada ", 13), "ada13");
  const long = "x".repeat(32);
  assert.equal(nameVariant(long, 2), "x".repeat(31) + "2");
  assert.equal([...nameVariant("é".repeat(32), 100)].length, 32);
});

Deno.test("parseFrame accepts one object or an array of objects, and drops the rest", () => {
  assert.deepEqual(parseFrame('{"type":"ack"}'), [{ type: "ack" }]);
  assert.deepEqual(parseFrame('[{"type":"a"},{"type":"b"}]'), [{ type: "a" }, { type: "b" }]);
  assert.deepEqual(parseFrame("[1, null, [], {}]"), [{}]);
  assert.deepEqual(parseFrame("{oops"), []);
  assert.deepEqual(parseFrame(new Uint8Array(2)), []);
});

Deno.test("the client joins, says, and gets its ack before the message", async () => {
  await using server = await startServer();
  const storage = memoryStorage();
  const client = new ChatClient({ url: server.wsUrl, room: "r1", name: "ada", storage });
  try {
    const welcomed = next(client, "welcome");
    client.start();
    const { welcome } = await welcomed;
    assert.equal(welcome.name, "ada");
    assert.equal(client.userId, welcome.id);
    assert.equal(storage.getItem("chat.token"), welcome.token);
    assert.equal(storage.getItem("chat.name"), "ada");

    await using bob = (await TestClient.join(server.wsUrl, "r1", "bob")).client;
    const order: string[] = [];
    client.addEventListener("sent", () => order.push("sent"));
    client.addEventListener("message", () => order.push("message"));
    const shown = next(client, "message");
    const entry = client.say("hello");
    assert.equal(client.outbox.length, 1);
    assert.equal(storage.getItem("chat.outbox.r1")?.includes(entry.cid), true);
    const { message, own } = await shown;
    assert.deepEqual(order, ["sent", "message"]);
    assert.equal(own, true);
    assert.equal(message.text, "hello");
    assert.equal(message.cid, entry.cid);
    assert.deepEqual(client.outbox, []);
    assert.equal(storage.getItem("chat.outbox.r1"), null);
    assert.equal(storage.getItem("chat.lastId.r1"), String(message.id));
    const received = await bob.next("message");
    assert.equal(received.name, "ada");
    assert.equal(received.text, "hello");

    const reply = next(client, "message", (d) => !d.own);
    bob.send({ type: "say", text: "hi ada", cid: "b1" });
    assert.equal((await reply).message.text, "hi ada");
  } finally {
    await client.close();
  }
});

Deno.test("after a dropped connection the client resumes with since and misses nothing", async () => {
  await using server = await startServer();
  TappedSocket.reset();
  const client = new ChatClient({
    url: server.wsUrl,
    room: "r2",
    name: "ada",
    WebSocket: TappedSocket,
    // The test reconnects by hand, once the others have talked.
    backoffMs: [60_000],
  });
  const seen = record(client);
  try {
    const welcomed = next(client, "welcome");
    client.start();
    const { token, epoch } = (await welcomed).welcome;
    await using bob = (await TestClient.join(server.wsUrl, "r2", "bob")).client;
    const first = next(client, "message");
    bob.send({ type: "say", text: "one", cid: "b1" });
    await first;

    const waiting = next(client, "status", (d) => d.state === "reconnecting");
    TappedSocket.all[0].cut();
    await waiting;
    for (const [cid, text] of [["b2", "two"], ["b3", "three"]]) {
      bob.send({ type: "say", text, cid });
      await bob.next("ack", (ack) => ack.cid === cid);
    }

    const resumed = next(client, "welcome");
    const third = next(client, "message", (d) => d.message.text === "three");
    client.reconnect();
    const { welcome } = await resumed;
    await third;
    assert.equal(TappedSocket.all.length, 2);
    const join = TappedSocket.all[1].sent[0];
    assert.equal(join.type, "join");
    assert.equal(join.since, 1);
    assert.equal(join.token, token);
    assert.equal(join.epoch, epoch);
    assert.equal(welcome.recovered, true);
    assert.deepEqual(seen, [[1, "bob", "one"], [2, "bob", "two"], [3, "bob", "three"]]);
  } finally {
    await client.close();
  }
});

Deno.test("an outbox entry is sent exactly once: written offline, or with its ack lost", async () => {
  await using server = await startServer();
  TappedSocket.reset();
  const client = new ChatClient({
    url: server.wsUrl,
    room: "r3",
    name: "ada",
    WebSocket: TappedSocket,
    backoffMs: [60_000],
  });
  const seen = record(client);
  await using bob = (await TestClient.join(server.wsUrl, "r3", "bob")).client;
  try {
    const welcomed = next(client, "welcome");
    client.start();
    await welcomed;

    await t1();
    await t2();

    // A last message as a barrier: anything sent twice would reach bob before it.
    const last = next(client, "sent");
    client.say("last");
    await last;
    await bob.next("message", (m) => m.text === "last");
    const texts = bob.drain("message").map((m) => m.text);
    assert.deepEqual(texts, []);
    assert.deepEqual(seen.map(([, , text]) => text), ["written offline", "ack lost", "last"]);
    assert.deepEqual(seen.map(([id]) => id), [1, 2, 3]);
    assert.deepEqual(client.outbox, []);
  } finally {
    await client.close();
  }

  /** Written while the connection is down: pending, then sent once after the reconnect. */
  async function t1() {
    const waiting = next(client, "status", (d) => d.state === "reconnecting");
    TappedSocket.all.at(-1)!.cut();
    await waiting;
    const entry = client.say("written offline");
    assert.equal(client.outbox[0].state, "pending");
    const sent = next(client, "sent", (d) => d.cid === entry.cid);
    client.reconnect();
    await sent;
    const got = await bob.next("message");
    assert.equal(got.text, "written offline");
    assert.equal(got.name, "ada");
  }

  /** Sent, stored, but the ack never arrives: the retry with the same cid stores nothing new. */
  async function t2() {
    TappedSocket.cutAfter = (frame) => frame.type === "say";
    const waiting = next(client, "status", (d) => d.state === "reconnecting");
    const entry = client.say("ack lost");
    await waiting;
    assert.equal(client.outbox.length, 1);
    const stored = await bob.next("message");
    assert.equal(stored.cid, entry.cid);
    const sent = next(client, "sent", (d) => d.cid === entry.cid);
    client.reconnect();
    await sent;
    assert.deepEqual(client.outbox, []);
  }
});

Deno.test("a suggested name that is taken becomes a free variant; a typed one asks again", async () => {
  await using server = await startServer();
  await using _holder = (await TestClient.join(server.wsUrl, "r4", "ada")).client;
  await using _second = (await TestClient.join(server.wsUrl, "r4", "ada2")).client;
  const storage = memoryStorage();
  const suggested = new ChatClient({
    url: server.wsUrl,
    room: "r4",
    suggestedName: "ada",
    storage,
  });
  const typed = new ChatClient({ url: server.wsUrl, room: "r4", name: "ada" });
  try {
    const welcomed = next(suggested, "welcome");
    suggested.start();
    assert.equal((await welcomed).welcome.name, "ada3");
    assert.equal(suggested.name, "ada3");
    assert.equal(suggested.nameIsSuggested, true);
    assert.equal(storage.getItem("chat.name"), "ada3");

    const prompted = next(typed, "prompt");
    typed.start();
    assert.match((await prompted).message, /name is taken/);
    assert.equal(typed.online, false);

    const retyped = next(typed, "welcome");
    typed.join("carol");
    assert.equal((await retyped).welcome.name, "carol");
  } finally {
    await suggested.close();
    await typed.close();
  }
});

Deno.test("a stored session keeps its name and user id; another storage is another user", async () => {
  await using server = await startServer();
  const storage = memoryStorage();
  const first = new ChatClient({ url: server.wsUrl, room: "r5", name: "ada", storage });
  const w1 = next(first, "welcome");
  first.start();
  const id = (await w1).welcome.id;
  await first.close();

  // A reload: the same storage, no name given.
  const again = new ChatClient({ url: server.wsUrl, room: "r5", storage, suggestedName: "zed" });
  const other = new ChatClient({ url: server.wsUrl, room: "r5", suggestedName: "ada" });
  try {
    const w2 = next(again, "welcome");
    again.start();
    assert.equal((await w2).welcome.id, id);
    assert.equal(again.name, "ada");
    const w3 = next(other, "welcome");
    other.start();
    const welcome = (await w3).welcome;
    assert.notEqual(welcome.id, id);
    assert.equal(welcome.name, "ada2");
  } finally {
    await again.close();
    await other.close();
  }
});

function scripted(storage = memoryStorage()) {
  ScriptedSocket.all = [];
  return new ChatClient({
    url: "ws://scripted/ws",
    room: "lobby",
    name: "ada",
    storage,
    WebSocket: ScriptedSocket as unknown as typeof WebSocket,
    backoffMs: [60_000],
  });
}

const ada = { id: "u1", name: "ada" };
const bob = { id: "u2", name: "bob" };
const carol = { id: "u3", name: "carol" };
const msg = (id: number, who = bob, text = `m${id}`) => ({
  type: "message",
  id,
  room: "lobby",
  userId: who.id,
  name: who.name,
  text,
  ts: 0,
  cid: `c${id}`,
});

Deno.test("presence: a full member list replaces, a delta is applied", async () => {
  const client = scripted();
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada, bob],
      history: [],
    });
    const names = () => client.members.map((m: Detail) => m.name);
    assert.deepEqual(names(), ["ada", "bob"]);
    const events: Detail[] = [];
    client.addEventListener("presence", (e) => events.push((e as CustomEvent).detail));
    // Deltas, in one frame.
    socket.receive(
      { type: "presence", event: "join", member: carol },
      { type: "presence", event: "leave", member: bob },
    );
    assert.deepEqual(names(), ["ada", "carol"]);
    assert.deepEqual(events.map((e) => `${e.event} ${e.member.name}`), [
      "join carol",
      "leave bob",
    ]);
    // A full list wins.
    socket.receive({ type: "presence", event: "join", member: bob, members: [bob, ada] });
    assert.deepEqual(names(), ["bob", "ada"]);
  } finally {
    await client.close();
  }
});

Deno.test("a close the event reports as 1006 takes its code from the server's last frame", async () => {
  const client = scripted();
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive({ type: "welcome", id: "u1", room: "lobby", name: "ada", members: [ada] });
    // Deno 2.5 sends a second Close frame after its own, which Chromium reports as 1006.
    const offline = next(client, "status", (d) => d.state !== "online");
    socket.receive({ type: "close", code: 4000, reason: "replaced by a new connection" });
    socket.close(1006);
    assert.deepEqual(
      [(await offline).state, (await offline).reason],
      ["offline", "replaced"],
      "replaced, not reconnecting",
    );
    assert.equal(ScriptedSocket.all.length, 1);
  } finally {
    await client.close();
  }
});

Deno.test("epoch: kept per room, sent back with since, and a new one starts history afresh", async () => {
  const storage = memoryStorage();
  const client = scripted(storage);
  const seen = record(client);
  const resets: string[] = [];
  client.addEventListener("reset", (e) => resets.push((e as CustomEvent).detail.reason));
  try {
    client.start();
    let socket = ScriptedSocket.all[0];
    socket.open();
    assert.deepEqual(socket.sent[0], { type: "join", room: "lobby", name: "ada" });
    socket.receive({
      type: "welcome",
      id: "u1",
      token: "t1",
      room: "lobby",
      name: "ada",
      members: [ada],
      history: [msg(1), msg(2)],
      epoch: "e1",
    });
    assert.equal(storage.getItem("chat.epoch.lobby"), "e1");
    assert.equal(storage.getItem("chat.lastId.lobby"), "2");

    // Reconnect: since and epoch go back; the same epoch resumes.
    const waiting = next(client, "status", (d) => d.state === "reconnecting");
    socket.close(1006);
    await waiting;
    client.reconnect();
    socket = ScriptedSocket.all[1];
    socket.open();
    assert.deepEqual(socket.sent[0], {
      type: "join",
      room: "lobby",
      name: "ada",
      since: 2,
      epoch: "e1",
      token: "t1",
    });
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada],
      history: [msg(3)],
      recovered: true,
      epoch: "e1",
    });
    assert.deepEqual(resets, ["fresh"]);

    // A new store: ids start over, and the client takes what the welcome brings.
    socket.close(1006);
    client.reconnect();
    socket = ScriptedSocket.all[2];
    socket.open();
    assert.equal(socket.sent[0].since, 3);
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada],
      history: [msg(1, bob, "new1")],
      recovered: true,
      epoch: "e2",
    });
    assert.deepEqual(resets, ["fresh", "epoch"]);
    assert.equal(client.lastId, 1);
    assert.equal(storage.getItem("chat.epoch.lobby"), "e2");
    socket.receive(msg(2, bob, "new2"));
    assert.deepEqual(seen.map(([id, , text]) => `${id} ${text}`), [
      "1 m1",
      "2 m2",
      "3 m3",
      "1 new1",
      "2 new2",
    ]);
  } finally {
    await client.close();
  }
});

Deno.test("without an epoch from the server, none is sent; a hole in the ids rejoins with since", async () => {
  const client = scripted();
  const seen = record(client);
  try {
    client.start();
    let socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada],
      history: [msg(4)],
    });
    // Message 5 never came: 6 makes the client rejoin at once, from 4.
    socket.receive(msg(6));
    assert.equal(socket.readyState, 3);
    const rejoined = ScriptedSocket.all[1] ??
      await next(client, "status", (d) => d.state === "connecting").then(() =>
        ScriptedSocket.all[1]
      );
    socket = rejoined;
    socket.open();
    assert.deepEqual(socket.sent[0], { type: "join", room: "lobby", name: "ada", since: 4 });
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada],
      history: [msg(5), msg(6)],
      recovered: true,
    });
    assert.deepEqual(seen.map(([id]) => id), [4, 5, 6]);
  } finally {
    await client.close();
  }
});

Deno.test("rate_limited and unavailable keep a message pending and send it again by itself", async () => {
  const client = new ChatClient({
    url: "ws://scripted/ws",
    room: "lobby",
    name: "ada",
    WebSocket: ScriptedSocket as unknown as typeof WebSocket,
    retryMs: 5,
    rateLimitMs: 5,
  });
  ScriptedSocket.all = [];
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [],
      history: [],
    });
    const entry = client.say("hi");
    const says = () => socket.sent.filter((f) => f.type === "say" && f.cid === entry.cid).length;
    assert.equal(says(), 1);

    for (const code of ["rate_limited", "unavailable"]) {
      const before = says();
      const { promise, resolve } = Promise.withResolvers<void>();
      const send = socket.send.bind(socket);
      socket.send = (data: string) => {
        send(data);
        if (JSON.parse(data).cid === entry.cid) resolve();
      };
      socket.receive({ type: "error", code, message: "later", cid: entry.cid });
      assert.equal(client.outbox[0].state, "pending");
      await within(promise, `the retry after ${code}`);
      socket.send = send;
      assert.equal(says(), before + 1);
    }
    const failed = next(client, "failed");
    socket.receive({ type: "error", code: "invalid_message", message: "no", cid: entry.cid });
    assert.equal((await failed).cid, entry.cid);
    assert.equal(client.outbox[0].state, "failed");
    socket.receive({ type: "ack", cid: entry.cid, id: 1 });
    assert.deepEqual(client.outbox, []);
  } finally {
    await client.close();
  }
});

Deno.test("a resume the server cannot replay starts over: a gap when reconnected, fresh when reloaded", async () => {
  const storage = memoryStorage();
  const client = scripted(storage);
  const resets: string[] = [];
  client.addEventListener("reset", (e) => resets.push((e as CustomEvent).detail.reason));
  const welcome = (history: unknown[], recovered?: boolean) => ({
    type: "welcome",
    id: "u1",
    room: "lobby",
    name: "ada",
    members: [ada],
    history,
    ...(recovered === undefined ? {} : { recovered }),
  });
  try {
    client.start();
    let socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome([msg(100)]));
    socket.close(1006);
    client.reconnect();
    socket = ScriptedSocket.all[1];
    socket.open();
    assert.equal(socket.sent[0].since, 100);
    socket.receive(welcome([msg(2000)], false));
    assert.deepEqual(resets, ["fresh", "gap"]);
    assert.equal(client.lastId, 2000);
  } finally {
    await client.close();
  }

  // A reload: the same storage in a new client asks for the last 50 again.
  const reloaded = scripted(storage);
  const again: string[] = [];
  reloaded.addEventListener("reset", (e) => again.push((e as CustomEvent).detail.reason));
  try {
    reloaded.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    assert.equal(socket.sent[0].since, 1950);
    socket.receive(welcome([msg(3000)], false));
    assert.deepEqual(again, ["fresh"]);
    assert.equal(reloaded.lastId, 3000);
  } finally {
    await reloaded.close();
  }
});

Deno.test("a server with a wiped store: the client takes the new epoch and starts over", async () => {
  let server = await startServer();
  const storage = memoryStorage();
  const client = new ChatClient({
    url: () => server.wsUrl,
    room: "r6",
    name: "ada",
    storage,
    backoffMs: [60_000],
  });
  const resets: string[] = [];
  client.addEventListener("reset", (e) => resets.push((e as CustomEvent).detail.reason));
  const seen = record(client);
  try {
    const welcomed = next(client, "welcome");
    client.start();
    const first = (await welcomed).welcome;
    assert.equal(typeof first.epoch, "string", "the server names its store's epoch");
    assert.equal(storage.getItem("chat.epoch.r6"), first.epoch);
    for (const text of ["one", "two"]) {
      const sent = next(client, "message", (d) => d.message.text === text);
      client.say(text);
      await sent;
    }

    // Another server with an empty store (a new epoch, ids from 1 again).
    const waiting = next(client, "status", (d) => d.state === "reconnecting");
    await server.close();
    await waiting;
    server = await startServer();
    const rewelcomed = next(client, "welcome");
    client.reconnect();
    const second = (await rewelcomed).welcome;
    assert.notEqual(second.epoch, first.epoch);
    assert.equal(second.recovered, false);
    assert.deepEqual(resets, ["fresh", "epoch"]);
    assert.equal(client.lastId, 0);
    assert.equal(storage.getItem("chat.epoch.r6"), second.epoch);

    const again = next(client, "message", (d) => d.message.text === "three");
    client.say("three");
    await again;
    assert.deepEqual(seen.map(([id, , text]) => `${id} ${text}`), ["1 one", "2 two", "1 three"]);
  } finally {
    await client.close();
    await server.close();
  }
});

// --- History, edits, deletes, reactions, replies, rooms ------------------------

/** A client of a real server, joined; closed by the caller. */
async function joined(url: string, room: string, name: string, options = {}) {
  const client = new ChatClient({ url, room, name, ...options });
  const welcomed = next(client, "welcome");
  client.start();
  await welcomed;
  return client;
}

Deno.test("history(): pages back to the oldest message, then says there is no more", async () => {
  await using server = await startServer({ rateBurst: 200, ...ONE_ADDRESS_LIFTED });
  const { client: bot } = await TestClient.join(server.wsUrl, "h1", "bot");
  await using _bot = bot;
  for (let i = 1; i <= 120; i++) bot.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  await bot.next("ack", (a) => a.cid === "c120");
  const client = await joined(server.wsUrl, "h1", "ada");
  try {
    assert.equal(client.oldestId, 71, "the welcome holds the newest 50");
    assert.equal(client.hasMore, true);
    const pages: Detail[] = [];
    for (const expected of [21, 1]) {
      const older = next(client, "older");
      assert.equal(client.history(), true);
      assert.equal(client.history(), false, "one page at a time");
      const page = await older;
      pages.push(page);
      assert.equal(page.oldestId, expected);
      assert.equal(client.oldestId, expected);
    }
    assert.deepEqual(pages[0].messages.map((m: Detail) => m.id), range(21, 70));
    assert.equal(pages[0].hasMore, true);
    assert.deepEqual(
      pages[1].messages.map((m: Detail) => m.text),
      range(1, 20).map((i) => `m${i}`),
    );
    assert.equal(pages[1].hasMore, false);
    assert.equal(client.hasMore, false);
    assert.equal(client.history(), false, "nothing older to ask for");
    assert.equal(client.message(1)?.text, "m1");
  } finally {
    await client.close();
  }
});

Deno.test("history(): a room pruned by the retention ends where the store ends", async () => {
  await using server = await startServer({
    rateBurst: 200,
    ...ONE_ADDRESS_LIFTED,
    historyLimit: 60,
  });
  const { client: bot } = await TestClient.join(server.wsUrl, "h2", "bot");
  await using _bot = bot;
  for (let i = 1; i <= 100; i++) bot.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  await bot.next("ack", (a) => a.cid === "c100");
  const client = await joined(server.wsUrl, "h2", "ada");
  try {
    const older = next(client, "older");
    client.history();
    const page = await older;
    assert.equal(page.hasMore, false);
    assert.ok(page.oldestId > 1, "the oldest kept message is not message 1");
    assert.equal(client.history(), false);
  } finally {
    await client.close();
  }
});

Deno.test("edit, remove, react and reply: change events fold into the message they change", async () => {
  await using server = await startServer();
  const ada = await joined(server.wsUrl, "e1", "ada");
  const bob = await joined(server.wsUrl, "e1", "bob");
  try {
    const shown = next(bob, "message", (d) => d.message.text === "helo");
    ada.say("helo");
    const { message } = await shown;
    const id = message.id;

    const edited = next(bob, "change", (d) => d.change.kind === "edit");
    const entry = ada.edit(id, "hello");
    assert.equal(entry.kind, "edit");
    const edit = await edited;
    assert.equal(edit.target.text, "hello");
    assert.equal(edit.target.edited, true);
    assert.equal(bob.message(id)?.text, "hello");

    const reacted = next(ada, "change", (d) => d.change.kind === "reaction");
    bob.react(id, "🎉");
    const reaction = await reacted;
    assert.deepEqual(reaction.target.reactions, [{
      emoji: "🎉",
      users: [{ id: bob.userId, name: "bob" }],
    }]);
    const unreacted = next(ada, "change", (d) => d.change.kind === "reaction" && !d.change.on);
    bob.react(id, "🎉");
    assert.deepEqual((await unreacted).target.reactions, []);
    assert.throws(() => bob.react(id, ""), RangeError);

    const replied = next(ada, "message", (d) => d.message.text === "yes!");
    bob.reply(id, "yes!");
    const reply = await replied;
    assert.equal(reply.message.replyTo, id);
    assert.equal(reply.state.replyTo, id);

    const removed = next(bob, "change", (d) => d.change.kind === "delete");
    ada.remove(id);
    const gone = await removed;
    assert.equal(gone.target.deleted, true);
    assert.equal(gone.target.text, "");
    assert.equal(ada.lastOwnMessage(), undefined, "a deleted message is not the last one");
    assert.deepEqual(ada.outbox, []);
  } finally {
    await ada.close();
    await bob.close();
  }
});

Deno.test("a refused edit is dropped from the outbox with its code; the connection goes on", async () => {
  await using server = await startServer();
  const ada = await joined(server.wsUrl, "e2", "ada");
  const bob = await joined(server.wsUrl, "e2", "bob");
  try {
    const shown = next(bob, "message");
    ada.say("mine");
    const { message } = await shown;
    const failed = next(bob, "failed");
    const entry = bob.edit(message.id, "yours now");
    const refusal = await failed;
    assert.equal(refusal.cid, entry.cid);
    assert.equal(refusal.code, "forbidden");
    assert.equal(refusal.entry.kind, "edit");
    assert.deepEqual(bob.outbox, []);
    const removeFailed = next(ada, "failed");
    ada.remove(99);
    assert.equal((await removeFailed).code, "not_found");
    const after = next(ada, "message", (d) => d.message.text === "still here");
    bob.say("still here");
    await after;
  } finally {
    await ada.close();
    await bob.close();
  }
});

Deno.test("rooms(): the active rooms with member counts", async () => {
  await using server = await startServer();
  await using _b = (await TestClient.join(server.wsUrl, "team", "bob")).client;
  await using _c = (await TestClient.join(server.wsUrl, "team", "carol")).client;
  await using _d = (await TestClient.join(server.wsUrl, "_hidden", "dan")).client;
  const ada = await joined(server.wsUrl, "lobby", "ada");
  try {
    const listed = next(ada, "rooms");
    assert.equal(ada.rooms(), true);
    const { rooms } = await listed;
    assert.deepEqual(rooms.map((r: Detail) => [r.name, r.members]), [["team", 2], ["lobby", 1]]);
  } finally {
    await ada.close();
  }
});

Deno.test("an invalid room is a room-error, not a name prompt; another room then joins", async () => {
  await using server = await startServer();
  const client = new ChatClient({ url: server.wsUrl, room: "a\u200Bb", name: "ada" });
  let prompted = false;
  client.addEventListener("prompt", () => prompted = true);
  try {
    const refused = next(client, "room-error");
    const offline = next(client, "status", (d) => d.state === "offline" && d.reason === "room");
    client.start();
    const error = await refused;
    await offline;
    assert.equal(error.code, "invalid_message");
    assert.match(error.message, /room must be/);
    assert.equal(prompted, false);
    const welcomed = next(client, "welcome");
    client.setRoom("fixed");
    assert.equal((await welcomed).welcome.room, "fixed");
  } finally {
    await client.close();
  }
});

Deno.test("checkRoomName follows the server's rules", () => {
  assert.deepEqual(checkRoomName(" ｔｅａｍ "), { ok: true, name: "team" });
  assert.equal(checkRoomName("").ok, false);
  assert.equal(checkRoomName("x".repeat(33)).ok, false);
  const invisible = checkRoomName("a\u200Bb");
  assert.equal(invisible.ok, false);
  assert.match(!invisible.ok ? invisible.message : "", /U\+200B/);
  assert.equal(checkRoomName("\u2800").ok, false);
  assert.equal(checkRoomName("café ☕").ok, true);
});

Deno.test("presence: a join of someone already listed, or a leave of someone gone, is a repeat", async () => {
  const client = scripted();
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada, bob],
      history: [],
    });
    const events: Detail[] = [];
    client.addEventListener("presence", (e) => events.push((e as CustomEvent).detail));
    socket.receive(
      { type: "presence", event: "join", member: bob },
      { type: "presence", event: "join", member: carol },
      { type: "presence", event: "leave", member: carol },
      { type: "presence", event: "leave", member: carol },
    );
    assert.deepEqual(events.map((e) => `${e.event} ${e.member.name} ${e.repeat}`), [
      "join bob true",
      "join carol false",
      "leave carol false",
      "leave carol true",
    ]);
  } finally {
    await client.close();
  }
});

Deno.test("rate_limited: everything waits for the server's hint, then goes out by itself", async () => {
  ScriptedSocket.all = [];
  const client = new ChatClient({
    url: "ws://scripted/ws",
    room: "lobby",
    name: "ada",
    WebSocket: ScriptedSocket as unknown as typeof WebSocket,
    rateLimitMs: 60_000,
  });
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada],
      history: [msg(1, ada)],
    });
    const first = client.say("one");
    const says = () => socket.sent.filter((f) => f.type === "say").map((f) => f.text);
    assert.deepEqual(says(), ["one"]);
    const { promise, resolve } = Promise.withResolvers<void>();
    const send = socket.send.bind(socket);
    socket.send = (data: string) => {
      send(data);
      if (JSON.parse(data).text === "two") resolve();
    };
    const failed: string[] = [];
    client.addEventListener("failed", (e) => failed.push((e as CustomEvent).detail.cid));
    // The hint (20 ms) wins over the client's own 60 s pause.
    socket.receive({
      type: "error",
      code: "rate_limited",
      message: "slow down",
      cid: first.cid,
      retryAfterMs: 20,
    });
    client.say("two");
    assert.deepEqual(says(), ["one"], "nothing goes out during the pause");
    await within(promise, "the retry after the hint, then the next message");
    assert.deepEqual(says(), ["one", "one", "two"]);
    assert.deepEqual(failed, []);
    assert.ok(client.outbox.every((e) => e.state === "pending"));
  } finally {
    await client.close();
  }
});

Deno.test("a resume replays changes idempotently; a history page brings a message after its changes", async () => {
  const client = scripted();
  const changes: Detail[] = [];
  client.addEventListener("change", (e) => changes.push((e as CustomEvent).detail));
  try {
    client.start();
    let socket = ScriptedSocket.all[0];
    socket.open();
    const change = (id: number, extra: Record<string, unknown>) => ({ ...msg(id, bob), ...extra });
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada, bob],
      // Message 50 is older than the welcome's history; 52 is in it.
      history: [
        msg(51),
        change(52, { kind: "edit", ref: 50, text: "fifty, edited" }),
        msg(53, bob, "hi"),
        change(54, { kind: "reaction", ref: 53, emoji: "👀", on: true, text: "" }),
      ],
    });
    assert.equal(changes[0].target, undefined, "message 50 is not held yet");
    assert.deepEqual(client.message(53)?.reactions.map((r) => r.emoji), ["👀"]);

    const older = next(client, "older");
    assert.equal(client.history(), true);
    assert.deepEqual(socket.sent.at(-1), {
      type: "history",
      room: "lobby",
      before: 51,
      limit: 50,
    });
    socket.receive({ type: "history", messages: [msg(49), msg(50, bob, "fifty")], hasMore: true });
    const page = await older;
    assert.deepEqual(page.messages.map((m: Detail) => [m.id, m.text, m.edited]), [
      [49, "m49", false],
      [50, "fifty, edited", true],
    ]);

    // A reconnect replays the reaction and a delete: applied once, by id.
    socket.close(1006);
    client.reconnect();
    socket = ScriptedSocket.all[1];
    socket.open();
    assert.equal(socket.sent[0].since, 54);
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada, bob],
      history: [
        change(55, { kind: "reaction", ref: 53, emoji: "👀", on: true, text: "" }),
        change(56, { kind: "delete", ref: 50, text: "" }),
      ],
      recovered: true,
    });
    assert.deepEqual(client.message(53)?.reactions, [{ emoji: "👀", users: [bob] }]);
    assert.equal(client.message(50)?.deleted, true);
    assert.equal(client.oldestId, 49);
  } finally {
    await client.close();
  }
});

Deno.test("Conversation folds changes in id order, whatever order they come in", () => {
  const c = new Conversation();
  const base = { userId: "u1", name: "ada", ts: 0 };
  c.apply({ ...base, id: 4, kind: "edit", ref: 1, text: "second edit" });
  c.apply({ ...base, id: 2, kind: "edit", ref: 1, text: "first edit" });
  c.apply({
    ...base,
    id: 3,
    userId: "u2",
    name: "bob",
    kind: "reaction",
    ref: 1,
    emoji: "👍",
    on: true,
    text: "",
  });
  c.apply({
    ...base,
    id: 5,
    userId: "u2",
    name: "bob",
    kind: "reaction",
    ref: 1,
    emoji: "👍",
    on: false,
    text: "",
  });
  c.apply({ ...base, id: 6, userId: "u2", name: "bob", kind: "edit", ref: 1, text: "not bob's" });
  const state = c.add({ ...base, id: 1, text: "original" });
  assert.equal(state.text, "second edit");
  assert.equal(state.edited, true);
  assert.deepEqual(state.reactions, []);
  assert.equal(c.oldestId, 1);
  assert.deepEqual(REACTIONS, ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🚀"]);
});

Deno.test("parseText: links (http and https only) and mentions of members, as plain parts", () => {
  assert.deepEqual(parseText("see https://deno.com/x?y=1, then (http://a.b/c_(d)).", []), [
    { type: "text", text: "see " },
    { type: "link", text: "https://deno.com/x?y=1", href: "https://deno.com/x?y=1" },
    { type: "text", text: ", then (" },
    { type: "link", text: "http://a.b/c_(d)", href: "http://a.b/c_(d)" },
    { type: "text", text: ")." },
  ]);
  assert.deepEqual(parseText("javascript:alert(1) ftp://x.y", []), [
    { type: "text", text: "javascript:alert(1) ftp://x.y" },
  ]);
  assert.deepEqual(
    parseText("hi @Ada Lovelace and @ada, mail a@ada.org", ["ada", "Ada Lovelace"], "ada"),
    [
      { type: "text", text: "hi " },
      { type: "mention", text: "@Ada Lovelace", name: "Ada Lovelace", me: false },
      { type: "text", text: " and " },
      { type: "mention", text: "@ada", name: "ada", me: true },
      { type: "text", text: ", mail a@ada.org" },
    ],
  );
  assert.equal(mentionsName("ping @bob!", "bob"), true);
  assert.equal(mentionsName("ping @bobby", "bob"), false);
  assert.equal(mentionsName("مرحبا @bob", "bob"), true);
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

Deno.test("30 quick sends under the server's default rate limit all arrive, none failed", async () => {
  await using server = await startServer();
  const client = await joined(server.wsUrl, "burst", "ada");
  const failed: string[] = [];
  client.addEventListener("failed", (e) => failed.push((e as CustomEvent).detail.code));
  try {
    // Paced at 4/s after a burst of 10: about 5 s.
    const { promise, resolve } = Promise.withResolvers<void>();
    client.addEventListener("message", (e) => {
      if ((e as CustomEvent).detail.message.text === "quick 30") resolve();
    });
    for (let i = 1; i <= 30; i++) client.say(`quick ${i}`);
    await within(promise, "the 30th message", 15_000);
    assert.deepEqual(failed, []);
    assert.deepEqual(client.outbox, []);
    const texts = Array.from({ length: 30 }, (_, i) => client.message(i + 1)?.text);
    assert.deepEqual(texts, Array.from({ length: 30 }, (_, i) => `quick ${i + 1}`));
  } finally {
    await client.close();
  }
});

Deno.test("retryFailed sends every failed message again; discardFailed drops them", async () => {
  const client = scripted();
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive({
      type: "welcome",
      id: "u1",
      room: "lobby",
      name: "ada",
      members: [ada],
      history: [],
    });
    const one = client.say("one");
    const two = client.say("two");
    for (const { cid } of [one, two]) {
      socket.receive({ type: "error", code: "invalid_message", message: "no", cid });
    }
    assert.deepEqual(client.outbox.map((e) => e.state), ["failed", "failed"]);
    const before = socket.sent.length;
    assert.equal(client.retryFailed(), 2);
    assert.deepEqual(socket.sent.slice(before).map((f) => f.text), ["one", "two"]);
    socket.receive({ type: "error", code: "invalid_message", message: "no", cid: two.cid });
    assert.deepEqual(client.discardFailed(), [two.cid]);
    assert.deepEqual(client.outbox.map((e) => e.text), ["one"]);
  } finally {
    await client.close();
  }
});
