/**
 * The page's client (`static/chat_client.js`) with other people, no browser:
 * direct conversations the server brings it into (taken in unasked, counted
 * unread like mentions, rejoined after a reload), `direct()` by name and its
 * refusals, the tab's block list (kept, sent again on every connection, the
 * server's answer taken as the list), and read positions (`read` sent
 * throttled, `read` from another connection, `welcome.readId`). Against a
 * scripted socket, and against the real server across a restart.
 */
import assert from "node:assert/strict";
import { ChatClient, dmRoom, memoryStorage } from "../static/chat_client.js";
import { startServer, type TestServer } from "./helpers.ts";
import {
  ADA as ada,
  BOB as bob,
  type Detail,
  next,
  roomMessage as msg,
  scriptedClient,
  ScriptedSocket,
  welcomeAda as welcome,
} from "./client_helpers.ts";

const DM = "dm:u1:u2";

/** Every event of `types` as `[type, detail]`, in order. */
function events(client: EventTarget, ...types: string[]): [string, Detail][] {
  const seen: [string, Detail][] = [];
  for (const type of types) {
    client.addEventListener(type, (e) => seen.push([type, (e as CustomEvent).detail]));
  }
  return seen;
}

Deno.test("a conversation the server brings the client into is taken in unasked, unread like a mention, and rejoined after a reload", async () => {
  const storage = memoryStorage();
  const client = scriptedClient(["lobby"], { storage });
  const seen = events(client, "direct", "message", "unread");
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("lobby"));
    socket.receive(welcome(DM, [msg(DM, 1, bob, "psst")], { peer: { userId: "u2", name: "bob" } }));
    assert.deepEqual(client.joinedRooms, ["lobby", DM]);
    assert.equal(client.room, "lobby", "it does not take the view");
    assert.equal(socket.sent.filter((f) => f.type === "leave").length, 0);
    const direct = seen.find(([type]) => type === "direct")?.[1];
    assert.deepEqual(direct, { room: DM, peer: { userId: "u2", name: "bob" }, opened: false });
    const message = seen.find(([type, d]) => type === "message" && d.room === DM)?.[1];
    assert.deepEqual([message.history, message.mention], [false, true], "news, like a mention");
    const state = client.roomState(DM)!;
    assert.deepEqual([state.unread, state.mentions, state.direct], [1, 1, true]);
    assert.equal(storage.getItem("chat.rooms"), JSON.stringify(["lobby", DM]));

    // A live message there counts too; a message in the lobby that does not mention ada does not.
    socket.receive(msg(DM, 2, bob, "still there?"), msg("lobby", 1, bob, "hi all"));
    assert.deepEqual(
      [client.roomState(DM)?.mentions, client.roomState("lobby")?.mentions],
      [2, 0],
    );
    // A rename of the peer follows in the conversation's name.
    socket.receive({
      type: "presence",
      room: DM,
      event: "rename",
      member: { id: "u2", name: "robert" },
      previous: "bob",
    });
    assert.equal(client.roomState(DM)?.peer?.name, "robert");
  } finally {
    await client.close();
  }

  // A reload: the conversation is joined again, resumed, its peer known before the welcome.
  const again = scriptedClient(["lobby"], { storage });
  try {
    assert.deepEqual(again.joinedRooms, ["lobby", DM]);
    assert.equal(again.roomState(DM)?.peer?.name, "robert");
    again.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("lobby"));
    assert.deepEqual(socket.sent.at(-1), { type: "join", room: DM, since: 0, epoch: "e1" });
  } finally {
    await again.close();
  }
});

Deno.test("direct(): a known conversation is shown at once, another is asked for; refusals say why", async () => {
  const client = scriptedClient(["lobby"]);
  const seen = events(client, "direct", "direct-error", "rooms-changed");
  try {
    assert.equal(client.direct("bob"), false, "offline");
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("lobby", [], { members: [ada, bob, { id: "u3", name: "carol" }] }));

    assert.equal(client.direct("Bob"), true);
    assert.deepEqual(socket.sent.at(-1), { type: "dm", userId: "u2" }, "by id: the member known");
    socket.receive(welcome(DM, [msg(DM, 1, ada, "old")], { peer: { userId: "u2", name: "bob" } }));
    assert.deepEqual(seen.find(([t]) => t === "direct")?.[1].opened, true);
    assert.equal(client.room, DM, "the conversation asked for is the room in view");
    assert.equal(client.roomState(DM)?.unread, 0, "opened: read to its end");

    client.view("lobby");
    assert.equal(client.direct("bob", "u2"), DM, "joined already: no frame");
    assert.equal(client.room, DM);
    assert.equal(socket.sent.filter((f) => f.type === "dm").length, 1);

    client.direct("nobody");
    socket.receive({
      type: "error",
      code: "not_found",
      message: "Cannot open conversation: nobody called 'nobody' is online",
    });
    client.direct("carol");
    socket.receive({
      type: "error",
      code: "blocked",
      message: "Cannot open conversation: they block you",
      room: dmRoom("u1", "u3"),
    });
    assert.deepEqual(
      seen.filter(([t]) => t === "direct-error").map(([, d]) => [d.name, d.code]),
      [["nobody", "not_found"], ["carol", "blocked"]],
    );
    assert.deepEqual(client.joinedRooms, ["lobby", DM]);

    // Someone else's conversation (a server's mistake) is left, not taken in.
    socket.receive(welcome("dm:u2:u3", [], { peer: { userId: "u3", name: "carol" } }));
    assert.deepEqual(socket.sent.at(-1), { type: "leave", room: "dm:u2:u3" });
    assert.deepEqual(client.joinedRooms, ["lobby", DM]);
  } finally {
    await client.close();
  }
});

Deno.test("blocks: kept per tab, sent again on every connection, the server's list taken; their messages and conversations are out", async () => {
  const storage = memoryStorage();
  storage.setItem("chat.blocks", JSON.stringify([{ id: "u9", name: "eve" }]));
  const client = scriptedClient(["lobby"], { storage });
  const seen = events(client, "blocks", "unread");
  try {
    client.start();
    let socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("lobby"));
    assert.deepEqual(socket.sent.at(-1), { type: "block", userId: "u9" }, "sent again");
    socket.receive({ type: "blocks", users: ["u9"] });
    assert.deepEqual(client.blocked, [{ id: "u9", name: "eve" }], "the names stay");

    // A blocked user's message counts as nothing; their conversation is left.
    socket.receive(msg("lobby", 1, { id: "u9", name: "eve" }, "@ada hey"));
    assert.deepEqual([client.roomState()?.unread, client.roomState()?.mentions], [0, 0]);
    socket.receive(welcome("dm:u1:u9", [msg("dm:u1:u9", 1, { id: "u9", name: "eve" })]));
    assert.deepEqual(socket.sent.at(-1), { type: "leave", room: "dm:u1:u9" });
    assert.deepEqual(client.joinedRooms, ["lobby"]);

    // Blocking someone whose conversation is open leaves it; their messages stop counting.
    socket.receive(welcome(DM, [msg(DM, 1)], { peer: { userId: "u2", name: "bob" } }));
    socket.receive(msg("lobby", 2, bob, "@ada ping"));
    assert.equal(client.roomState()?.mentions, 1);
    assert.equal(client.block(bob), true);
    assert.equal(client.block(bob), false, "once");
    assert.deepEqual(
      socket.sent.slice(-2),
      [{ type: "block", userId: "u2" }, { type: "leave", room: DM }],
    );
    assert.deepEqual(client.joinedRooms, ["lobby"]);
    assert.deepEqual(seen.filter(([t, d]) => t === "unread" && d.room === "lobby").at(-1)?.[1], {
      room: "lobby",
      unread: 0,
      mentions: 0,
    });
    assert.equal(client.isBlocked("u2"), true);
    socket.receive({ type: "blocks", users: ["u9", "u2"] });
    assert.deepEqual(JSON.parse(storage.getItem("chat.blocks")!).map((u: Detail) => u.name), [
      "eve",
      "bob",
    ]);

    // Offline: an unblock and a block wait for the next connection.
    const dropped = next(client, "status", (s) => s.state === "reconnecting");
    socket.close(1006);
    await dropped;
    client.unblock("u9");
    client.block({ id: "u7", name: "mallory" });
    assert.deepEqual(client.blocked.map((u) => u.id), ["u2", "u7"], "at once for the tab");
    client.reconnect();
    socket = ScriptedSocket.all[1];
    socket.open();
    socket.receive(welcome("lobby", [], { readId: 2 }));
    assert.deepEqual(
      socket.sent.filter((f) => f.type === "block" || f.type === "unblock"),
      [
        { type: "unblock", userId: "u9" },
        { type: "block", userId: "u7" },
        { type: "block", userId: "u2" },
      ],
    );
    // Answers while the list is on its way are merged; then the server's list is the list.
    socket.receive({ type: "blocks", users: ["u2"] }, { type: "blocks", users: ["u2", "u7"] });
    socket.receive({ type: "blocks", users: ["u2", "u7"] });
    assert.deepEqual(client.blocked.map((u) => u.id), ["u2", "u7"]);
    socket.receive({ type: "blocks", users: ["u7"] }); // unblocked on another device
    assert.deepEqual(client.blocked, [{ id: "u7", name: "mallory" }]);
    assert.deepEqual(seen.filter(([t]) => t === "blocks").at(-1)?.[1].users, [
      { id: "u7", name: "mallory" },
    ]);
  } finally {
    await client.close();
  }
});

Deno.test("read positions: welcome.readId counts, read from another connection takes unread down, marking read is sent throttled", async () => {
  const storage = memoryStorage();
  const client = scriptedClient(["lobby"], { storage });
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("lobby", [msg("lobby", 1), msg("lobby", 2), msg("lobby", 3)], {
      readId: 2,
    }));
    assert.deepEqual(
      [client.roomState()?.readId, client.roomState()?.unread],
      [2, 1],
      "the user read up to 2 elsewhere",
    );
    const down = next(client, "unread");
    socket.receive({ type: "read", room: "lobby", id: 3 });
    assert.deepEqual(await down, { room: "lobby", unread: 0, mentions: 0 });
    assert.equal(storage.getItem("chat.read.lobby"), "3");
    client.markRead("lobby");
    assert.equal(socket.sent.filter((f) => f.type === "read").length, 0, "the server knows");

    socket.receive(msg("lobby", 4), msg("lobby", 5));
    client.markRead("lobby");
    assert.deepEqual(socket.sent.at(-1), { type: "read", room: "lobby", id: 5 });
    socket.receive(msg("lobby", 6));
    const later = socket.nextSent((f) => f.type === "read", "the next read");
    client.markRead("lobby");
    client.markRead("lobby");
    assert.equal(socket.sent.filter((f) => f.type === "read").length, 1, "throttled");
    assert.deepEqual(await later, { type: "read", room: "lobby", id: 6 }, "the last, once");
    assert.equal(socket.sent.filter((f) => f.type === "read").length, 2);
  } finally {
    await client.close();
  }
});

Deno.test("a conversation the server brings in while its own join still waits is taken; a read told from elsewhere past what the client holds stays read", async () => {
  const storage = memoryStorage();
  storage.setItem("chat.rooms", JSON.stringify(["lobby", DM]));
  storage.setItem(`chat.lastId.${DM}`, "1");
  storage.setItem(`chat.read.${DM}`, "1");
  ScriptedSocket.all = [];
  const client = new ChatClient({
    url: "ws://scripted/ws",
    room: "lobby",
    name: "ada",
    storage,
    WebSocket: ScriptedSocket as unknown as typeof WebSocket,
    backoffMs: [60_000],
    burst: 1, // the conversation's join waits for the pacer
  });
  const errors = events(client, "error");
  try {
    client.start();
    const socket = ScriptedSocket.all[0];
    socket.open();
    socket.receive(welcome("lobby"));
    assert.deepEqual(socket.sent.filter((f) => f.room === DM), [], "its join waits");
    socket.receive(welcome(DM, [msg(DM, 1), msg(DM, 2)], { peer: { userId: "u2", name: "bob" } }));
    assert.equal(client.roomState(DM)?.joined, true);
    assert.deepEqual([client.roomState(DM)?.readId, client.roomState(DM)?.unread], [1, 1]);
    // Another tab of this user read up to 5; 3 and 4 then come: read already.
    socket.receive({ type: "read", room: DM, id: 5 });
    socket.receive(msg(DM, 3), msg(DM, 4));
    assert.equal(client.roomState(DM)?.unread, 0);
    // A join the server made first is no error for the banner.
    socket.receive({
      type: "error",
      code: "already_joined",
      message: "Cannot join room: already in it",
      room: "lobby",
    });
    assert.deepEqual(errors, []);
  } finally {
    await client.close();
  }
});

Deno.test("on the real server: a conversation reaches the other by itself; a block refuses the next, and holds across a server restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-people-" });
  const kvPath = `${dir}/chat.kv`;
  const options = { kvPath, sessionSecret: "people test secret" };
  let server: TestServer = await startServer(options);
  let port = server.port;
  const url = () => `ws://127.0.0.1:${port}/ws`;
  const open = (name: string) =>
    new ChatClient({ url, room: "lobby", name, storage: memoryStorage(), backoffMs: [50] });
  const ada = open("ada");
  const bob = open("bob");
  try {
    const online = next(ada, "status", (s) => s.state === "online");
    ada.start();
    await online;
    const both = next(ada, "members", (m) => m.members.length === 2);
    bob.start();
    await both;
    const opened = next(ada, "direct");
    ada.direct("bob");
    const { room, peer } = await opened;
    assert.equal(room, dmRoom(ada.userId, bob.userId));
    assert.deepEqual(peer, { userId: bob.userId, name: "bob" });

    const pulled = next(bob, "direct");
    const news = next(bob, "message", (m) => m.room === room);
    ada.say("psst", { room });
    assert.deepEqual((await pulled).opened, false);
    const got = await news;
    assert.deepEqual([got.message.text, got.mention, got.history], ["psst", true, false]);
    assert.deepEqual(bob.roomState(room)?.unread, 1);
    const reply = next(ada, "message", (m) => m.room === room && m.message.text === "hi!");
    bob.say("hi!", { room });
    await reply;

    // Bob blocks ada: he leaves the conversation, her next message there is refused.
    const blocks = next(bob, "blocks", (b) => b.users.length === 1);
    bob.block({ id: ada.userId, name: "ada" });
    await blocks;
    const refused = next(ada, "failed");
    ada.say("still there?", { room });
    assert.equal((await refused).code, "blocked");
    ada.leaveRoom(room);

    // The server restarts and forgets guests' blocks; bob's tab sends its list again.
    const resent = next(bob, "blocks");
    const back = next(ada, "status", (s) => s.state === "online");
    await server.close();
    server = await startServer(options);
    port = server.port;
    assert.deepEqual((await resent).users, [{ id: ada.userId, name: "ada" }]);
    await back;
    const error = next(ada, "direct-error");
    ada.direct("bob");
    assert.deepEqual((await error).code, "blocked");
    assert.deepEqual(bob.joinedRooms, ["lobby"]);
  } finally {
    await ada.close();
    await bob.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
