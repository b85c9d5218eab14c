/**
 * The page's client (`static/chat_client.js`) in many rooms at once, with no
 * browser: joins, per-room routing, per-room resume with `since` and `epoch`,
 * the outbox per room, leave, rename, unread counts, history in its current
 * state, and changes kept through a store outage. Against a scripted socket
 * and against the real server on port 0.
 */
import assert from "node:assert/strict";
import { ChatClient, memoryStorage } from "../static/chat_client.js";
import { KvHistory } from "../src/store/kv_history.ts";
import type { HistoryStore } from "../src/store/history.ts";
import { startServer, TestClient, within } from "./helpers.ts";
import {
  ADA as ada,
  BOB as bob,
  type Detail,
  next,
  roomMessage as msg,
  scriptedClient,
  ScriptedSocket,
  TappedSocket,
  welcomeAda as welcome,
} from "./client_helpers.ts";

/** Every `message` event as `room id text`. */
function transcript(client: EventTarget): string[] {
  const seen: string[] = [];
  client.addEventListener("message", (event) => {
    const { room, message } = (event as CustomEvent).detail;
    seen.push(`${room} ${message.id} ${message.text}`);
  });
  return seen;
}

Deno.test("two rooms: the first join names the connection, the next follows; each room gets its own", async () => {
  const storage = memoryStorage();
  const client = scriptedClient(["a", "b"], { storage });
  const seen = transcript(client);
  const unread: Detail[] = [];
  client.addEventListener("unread", (e) => unread.push((e as CustomEvent).detail));
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    assert.deepEqual(
      [...socket.sent],
      [{ type: "join", room: "a", name: "ada" }],
      "one join first",
    );
    socket.receive(welcome("a", [msg("a", 1)]));
    assert.deepEqual(socket.sent[1], { type: "join", room: "b" }, "no name, no token");
    socket.receive(welcome("b"));
    assert.equal(client.online, true);
    assert.deepEqual(client.joinedRooms, ["a", "b"]);
    assert.equal(storage.getItem("chat.rooms"), '["a","b"]');

    socket.receive(msg("b", 1), msg("a", 2), msg("b", 2, bob, "@ada look"));
    assert.deepEqual(seen, ["a 1 a1", "b 1 b1", "a 2 a2", "b 2 @ada look"]);
    assert.equal(client.message(2, "b")?.text, "@ada look");
    assert.equal(client.message(2)?.text, "a2", "the room in view by default");
    assert.deepEqual(
      { unread: client.roomState("b")?.unread, mentions: client.roomState("b")?.mentions },
      { unread: 2, mentions: 1 },
    );
    assert.deepEqual(unread.at(-1), { room: "b", unread: 2, mentions: 1 });
    client.markRead("b");
    assert.deepEqual(unread.at(-1), { room: "b", unread: 0, mentions: 0 });
    assert.equal(storage.getItem("chat.read.b"), "2");

    client.say("to b", { room: "b" });
    client.say("to a");
    const says = socket.sent.filter((f) => f.type === "say");
    assert.deepEqual(says.map((f) => [f.room, f.text]), [["b", "to b"], ["a", "to a"]]);
    assert.deepEqual(client.outbox.map((e) => e.room), ["b", "a"]);
    assert.ok(storage.getItem("chat.outbox.b")?.includes("to b"));
    assert.throws(() => client.say("nowhere", { room: "c" }), RangeError);
  } finally {
    await client.close();
  }
});

Deno.test("a later join refused (too many rooms, the name taken there) drops that room only", async () => {
  const client = scriptedClient(["a", "b", "c"]);
  const errors: Detail[] = [];
  client.addEventListener("room-error", (e) => errors.push((e as CustomEvent).detail));
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("a"));
    assert.deepEqual(socket.sent.slice(1).map((f) => f.room), ["b", "c"]);
    socket.receive(
      { type: "error", code: "too_many_rooms", message: "Cannot join room: at most 1", room: "b" },
      { type: "error", code: "name_taken", message: "Cannot join room: name is taken", room: "c" },
    );
    assert.deepEqual(errors.map((e) => [e.room, e.code]), [
      ["b", "too_many_rooms"],
      ["c", "name_taken"],
    ]);
    assert.deepEqual(client.joinedRooms, ["a"]);
    assert.equal(client.online, true);
  } finally {
    await client.close();
  }
});

Deno.test("a room left while its join is on its way: one leave, no error, nothing shown", async () => {
  const client = scriptedClient(["a", "b"]);
  const seen = transcript(client);
  const errors: Detail[] = [];
  client.addEventListener("error", (e) => errors.push((e as CustomEvent).detail));
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("a"));
    assert.deepEqual(socket.sent.at(-1), { type: "join", room: "b" });
    assert.equal(client.leaveRoom("b"), true);
    assert.deepEqual(socket.sent.at(-1), { type: "leave", room: "b" });
    // The server had welcomed b before it read the leave.
    socket.receive(welcome("b", [msg("b", 1)]), { type: "left", room: "b" });
    assert.deepEqual(socket.sent.filter((f) => f.type === "leave").length, 1);
    assert.deepEqual(seen, []);
    assert.deepEqual(errors, []);
    assert.deepEqual(client.joinedRooms, ["a"]);
  } finally {
    await client.close();
  }
});

Deno.test("history comes in its current state: later changes fold on top once", async () => {
  const client = scriptedClient(["a"]);
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    const change = (id: number, extra: Record<string, unknown>) => ({ ...msg("a", id), ...extra });
    // Message 5 comes edited and with bob's 👍, and the resume replays the changes that made it so.
    socket.receive(welcome("a", [
      { ...msg("a", 5, ada, "v2"), edited: true, reactions: [{ emoji: "👍", users: [bob] }] },
      change(6, { kind: "reaction", ref: 5, emoji: "👍", on: true, text: "" }),
      { ...msg("a", 7), deleted: true, text: "" },
      change(8, { kind: "edit", ref: 5, text: "v2", userId: ada.id, name: "ada" }),
      change(9, { kind: "reaction", ref: 5, emoji: "🎉", on: true, text: "" }),
    ]));
    assert.deepEqual(client.message(5), {
      id: 5,
      userId: ada.id,
      name: "ada",
      text: "v2",
      ts: 0,
      cid: "ca5",
      edited: true,
      deleted: false,
      reactions: [{ emoji: "👍", users: [bob] }, { emoji: "🎉", users: [bob] }],
      attachments: [],
    });
    assert.equal(client.message(7)?.deleted, true);
    assert.equal(client.message(7)?.text, "");
    socket.receive(change(10, { kind: "reaction", ref: 5, emoji: "👍", on: false, text: "" }));
    assert.deepEqual(client.message(5)?.reactions, [{ emoji: "🎉", users: [bob] }]);
    socket.receive(change(11, { kind: "edit", ref: 7, text: "back?" }));
    assert.equal(client.message(7)?.text, "", "nothing changes a deleted message");
  } finally {
    await client.close();
  }
});

/** A real client of `url` in `rooms`, with a socket the test can cut; resolves once joined. */
async function joinedIn(url: string, rooms: string[], storage = memoryStorage()) {
  TappedSocket.reset();
  const client = new ChatClient({
    url,
    room: rooms[0],
    rooms: rooms.slice(1),
    name: "ada",
    storage,
    WebSocket: TappedSocket,
    // The test reconnects by hand.
    backoffMs: [60_000],
  });
  const joined = new Set<string>();
  const all = Promise.withResolvers<void>();
  client.addEventListener("joined", (e) => {
    joined.add((e as CustomEvent).detail.room);
    if (rooms.every((room) => joined.has(room))) all.resolve();
  });
  client.start();
  await within(all.promise, `joins of ${rooms.join(", ")}`);
  return client;
}

/** bob on one connection in rooms a and b. */
async function bobIn(url: string): Promise<TestClient> {
  const { client } = await TestClient.join(url, "a", "bob");
  client.send({ type: "join", room: "b" });
  await client.next("welcome", (w) => w.room === "b");
  return client;
}

/** Waits for bob's ack of `cid` after sending `text` to `room`. */
async function bobSays(bob: TestClient, room: string, text: string) {
  const cid = `b-${room}-${text.replaceAll(" ", "_")}`;
  bob.send({ type: "say", room, text, cid });
  await bob.next("ack", (a) => a.cid === cid);
}

Deno.test("after a drop each room resumes with its own since and epoch; writes wait per room, once each", async () => {
  await using server = await startServer();
  await using bob = await bobIn(server.wsUrl);
  const client = await joinedIn(server.wsUrl, ["a", "b"]);
  const seen = transcript(client);
  try {
    const both = Promise.all([
      next(client, "message", (d) => d.message.text === "one a"),
      next(client, "message", (d) => d.message.text === "one b"),
    ]);
    await bobSays(bob, "a", "one a");
    await bobSays(bob, "b", "one b");
    await both;
    const epoch = client.roomState("a")?.epoch;
    assert.ok(epoch);

    const waiting = next(client, "status", (d) => d.state === "reconnecting");
    TappedSocket.all[0].cut();
    await waiting;
    await bobSays(bob, "a", "two a");
    await bobSays(bob, "b", "two b");
    client.say("offline a");
    client.say("offline b", { room: "b" });

    const sent = Promise.all(
      client.outbox.map((e) => next(client, "sent", (d) => d.cid === e.cid)),
    );
    const last = Promise.all([
      next(client, "message", (d) => d.message.text === "offline a"),
      next(client, "message", (d) => d.message.text === "offline b"),
    ]);
    client.reconnect();
    await sent;
    await last;
    const joins = TappedSocket.all[1].sent.filter((f: Detail) => f.type === "join");
    assert.equal(joins.length, 2, "each room joined once");
    assert.equal(joins[0].room, "a");
    assert.equal(joins[0].name, "ada");
    assert.ok(joins[0].token);
    assert.deepEqual(
      joins.map((j: Detail) => [j.room, j.since, j.epoch]),
      [["a", 1, epoch], ["b", 1, epoch]],
    );
    assert.equal(joins[1].name, undefined);
    assert.deepEqual(seen.filter((s) => s.startsWith("a ")), [
      "a 1 one a",
      "a 2 two a",
      "a 3 offline a",
    ]);
    assert.deepEqual(seen.filter((s) => s.startsWith("b ")), [
      "b 1 one b",
      "b 2 two b",
      "b 3 offline b",
    ]);
    assert.deepEqual(client.outbox, []);
    // bob got each of ada's once, in its room.
    await bobSays(bob, "b", "barrier");
    const fromAda = bob.drain("message").filter((m) => m.name === "ada");
    assert.deepEqual(fromAda.map((m) => `${m.room} ${m.text}`).sort(), [
      "a offline a",
      "b offline b",
    ]);
  } finally {
    await client.close();
  }
});

Deno.test("a reload joins the session's rooms again and resumes each; leave forgets a room", async () => {
  await using server = await startServer();
  await using bob = await bobIn(server.wsUrl);
  const storage = memoryStorage();
  const first = await joinedIn(server.wsUrl, ["a", "b"], storage);
  const said = next(first, "message", (d) => d.room === "b" && d.message.text === "hi b");
  await bobSays(bob, "b", "hi b");
  await said;
  await first.close();

  // The reload: the same storage, the room in view from the address only.
  const again = new ChatClient({ url: server.wsUrl, room: "a", storage });
  const seen = transcript(again);
  try {
    const joinedB = next(again, "joined", (d) => d.room === "b");
    again.start();
    await joinedB;
    assert.deepEqual(again.joinedRooms, ["a", "b"]);
    assert.deepEqual(seen, ["b 1 hi b"], "the history before where the tab was, once");

    const left = bob.next("presence", (p) => p.room === "b" && p.event === "leave");
    assert.equal(again.leaveRoom("b"), true);
    assert.equal((await left).member.name, "ada");
    assert.deepEqual(again.joinedRooms, ["a"]);
    assert.equal(storage.getItem("chat.rooms"), '["a"]');
    assert.equal(storage.getItem("chat.lastId.b"), null);
    // Nothing more from b: bob's later message in a comes, his message in b does not.
    const barrier = next(again, "message", (d) => d.message.text === "after leave");
    await bobSays(bob, "b", "not for ada");
    await bobSays(bob, "a", "after leave");
    await barrier;
    assert.deepEqual(seen, ["b 1 hi b", "a 1 after leave"]);
  } finally {
    await again.close();
  }
});

Deno.test("rename: a free name changes in every room; a taken one changes nothing", async () => {
  await using server = await startServer();
  await using bob = await bobIn(server.wsUrl);
  await using _zed = (await TestClient.join(server.wsUrl, "b", "zed")).client;
  const client = await joinedIn(server.wsUrl, ["a", "b"]);
  const presence: Detail[] = [];
  client.addEventListener("presence", (e) => presence.push((e as CustomEvent).detail));
  try {
    const named = next(client, "name");
    const inA = bob.next("presence", (p) => p.room === "a" && p.event === "rename");
    const inB = bob.next("presence", (p) => p.room === "b" && p.event === "rename");
    client.rename("ada2");
    assert.equal((await named).name, "ada2");
    for (const seen of [await inA, await inB]) {
      assert.equal(seen.member.name, "ada2");
      assert.equal(seen.previous, "ada");
    }
    assert.equal(client.name, "ada2");
    assert.deepEqual(
      presence.map((p) => `${p.room} ${p.event} ${p.previous} → ${p.member.name}`),
      ["a rename ada → ada2", "b rename ada → ada2"],
    );

    const refused = next(client, "rename-error");
    client.rename("ZED");
    const error = await refused;
    assert.equal(error.code, "name_taken");
    assert.equal(client.name, "ada2");
    assert.deepEqual(client.joinedRooms, ["a", "b"]);
    const stillIn = bob.next("message", (m) => m.text === "still here");
    client.say("still here", { room: "b" });
    assert.equal((await stillIn).name, "ada2");
  } finally {
    await client.close();
  }
});

/** A store that fails every call while `failing` is set, and says when it failed. */
function failingStore(inner: HistoryStore) {
  const state = { failing: false, failed: Promise.withResolvers<void>() };
  const store = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (state.failing) {
          state.failed.resolve();
          return Promise.reject(new Error("the store is down"));
        }
        return value.apply(target, args);
      };
    },
  });
  return { store, state };
}

Deno.test("an edit, delete or reaction refused with unavailable stays in the outbox and lands later", async () => {
  using kv = await Deno.openKv(":memory:");
  const { store, state } = failingStore(new KvHistory(kv));
  await using server = await startServer({ history: store });
  await using bob = await bobIn(server.wsUrl);
  TappedSocket.reset();
  const client = new ChatClient({ url: server.wsUrl, room: "a", name: "ada", retryMs: 100 });
  const failed: Detail[] = [];
  client.addEventListener("failed", (e) => failed.push((e as CustomEvent).detail));
  try {
    const joined = next(client, "joined");
    client.start();
    await joined;
    const mine = next(client, "message", (d) => d.own);
    client.say("my words");
    const id = (await mine).message.id;

    for (const act of ["edit", "react", "remove"] as const) {
      state.failing = true;
      state.failed = Promise.withResolvers<void>();
      const entry = act === "edit"
        ? client.edit(id, "my better words")
        : act === "react"
        ? client.react(id, "🎉")
        : client.remove(id);
      await within(state.failed.promise, `the store to refuse the ${act}`);
      state.failing = false;
      const landed = next(client, "sent", (d) => d.cid === entry.cid);
      const { id: changeId } = await landed;
      const seen = await bob.next("message", (m) => m.id === changeId);
      assert.equal(seen.ref, id);
      assert.equal(seen.kind, act === "edit" ? "edit" : act === "react" ? "reaction" : "delete");
    }
    assert.deepEqual(failed, []);
    assert.deepEqual(client.outbox, []);
    assert.equal(client.message(id)?.deleted, true);
  } finally {
    await client.close();
  }
});
