/**
 * Accounts in the chat, over real sockets: a connection opened with the
 * `chat_session` cookie is its account (one person in every tab and
 * device, with the account's name), guests cannot take a name an account
 * reserved, an account's rooms, read positions and blocks are kept in the
 * store, signing out closes that session's connections (4001) and a rename
 * reaches every connection.
 */
import assert from "node:assert/strict";
import type { ChatOptions } from "../src/chat.ts";
import { dmRoom } from "../src/protocol.ts";
import type { AccountStore } from "../src/store/accounts.ts";
import { KvAccounts } from "../src/store/kv_accounts.ts";
import { call, registerAccount } from "./account_helpers.ts";
import { startServer, TestClient, type TestServer } from "./helpers.ts";
import { MemoryNetwork } from "./memory_bus.ts";
import { SoftAuthenticator } from "./soft_authenticator.ts";

/** A server with accounts on, and its account store. */
async function start(options: Partial<ChatOptions> = {}) {
  const kv = await Deno.openKv(":memory:");
  const accounts: AccountStore = new KvAccounts(kv);
  const server = await startServer({ accounts, ...options });
  return {
    server,
    accounts,
    async [Symbol.asyncDispose]() {
      await server.close();
      kv.close();
    },
  };
}

/** A socket opened with `cookie`, joined to `room` (no name: the account's). */
async function joinSignedIn(server: TestServer, cookie: string, room: string) {
  const client = await TestClient.connect(server.wsUrl, { cookie });
  client.send({ type: "join", room });
  const welcome = await client.next("welcome", (m) => m.room === room);
  return { client, welcome };
}

Deno.test("a signed-in connection is its account: the account's id and name, in every tab", async () => {
  await using h = await start();
  const { account, cookie } = await registerAccount(h.server, new SoftAuthenticator(), "Ada");
  await using laptop = (await joinSignedIn(h.server, cookie, "lobby")).client;
  const phone = await TestClient.connect(h.server.wsUrl, { cookie });
  phone.send({ type: "join", room: "lobby", name: "somebody else" }); // the account's name wins
  const welcome = await phone.next("welcome");
  assert.equal(welcome.id, account.id);
  assert.equal(welcome.name, "Ada");
  assert.equal(welcome.token, undefined, "no guest session token for an account");
  assert.deepEqual(welcome.members.map((m) => m.id), [account.id], "one person, two connections");

  // Both stay connected (no 4000), and both get what either says.
  phone.send({ type: "say", room: "lobby", text: "from the phone", cid: "p1" });
  assert.equal((await laptop.next("message")).text, "from the phone");
  assert.equal((await phone.next("message")).text, "from the phone");
  await phone.close();

  // A rename frame is not how an account changes its name.
  laptop.send({ type: "rename", name: "Ada L." });
  const refused = await laptop.next("error");
  assert.equal(refused.code, "forbidden");
  assert.match(refused.message, /POST \/auth\/rename/);
});

Deno.test("a guest cannot join under a name an account reserved, in any case or look-alike", async () => {
  await using h = await start();
  await registerAccount(h.server, new SoftAuthenticator(), "ada");
  for (const name of ["ada", "ADA", "\u0430da"]) { // the last with a Cyrillic а
    await using guest = await TestClient.connect(h.server.wsUrl);
    guest.send({ type: "join", room: "lobby", name });
    const error = await guest.next("error");
    assert.equal(error.code, "name_reserved", name);
    assert.equal(
      error.message,
      "Cannot join room: the name belongs to an account; sign in to use it",
    );
  }
  const { client: guest } = await TestClient.join(h.server.wsUrl, "lobby", "grace");
  await using _ = guest;
  guest.send({ type: "rename", name: "Ada" });
  assert.equal((await guest.next("error")).code, "name_reserved");
});

Deno.test("an account's rooms, read positions and blocks are in the store, and come back", async () => {
  await using h = await start();
  const { account, cookie } = await registerAccount(h.server, new SoftAuthenticator(), "ada");
  const { client: grace, welcome: graces } = await TestClient.join(
    h.server.wsUrl,
    "lobby",
    "grace",
  );
  await using _ = grace;
  const { client: ada } = await joinSignedIn(h.server, cookie, "lobby");
  ada.send({ type: "join", room: "design" });
  await ada.next("welcome", (m) => m.room === "design");
  grace.send({ type: "say", room: "lobby", text: "hello", cid: "g1" });
  const { id } = await ada.next("message");
  ada.send({ type: "read", room: "lobby", id });
  ada.send({ type: "block", userId: graces.id });
  assert.deepEqual((await ada.next("blocks")).users, [graces.id]);
  ada.send({ type: "leave", room: "design" });
  await ada.next("left");
  await ada.close();

  const me = await call(h.server, "/auth/me", { headers: { cookie } });
  const rooms = me.body.rooms.map((r: { room: string; readId: number }) => [r.room, r.readId]);
  assert.deepEqual(rooms, [["lobby", id]]);
  assert.deepEqual(me.body.blocks, [graces.id]);
  assert.deepEqual(await h.accounts.blocks(account.id), [graces.id]);

  // Another instance on the same account store knows none of it in memory: it reads the store.
  await using other = await startServer({ accounts: h.accounts });
  const { client, welcome } = await joinSignedIn(other, cookie, "lobby");
  await using __ = client;
  assert.equal(welcome.readId, id);
  client.send({ type: "block", userId: "0123456789abcdef" });
  assert.deepEqual(
    (await client.next("blocks")).users.sort(),
    [graces.id, "0123456789abcdef"].sort(),
  );
});

Deno.test("signing out closes that session's connections with 4001, and only those", async () => {
  await using h = await start();
  const authenticator = new SoftAuthenticator();
  const { cookie } = await registerAccount(h.server, authenticator, "ada");
  const options = await call(h.server, "/auth/signin/options", { json: {} });
  const response = await authenticator.get(options.body, h.server.origin);
  const other = await call(h.server, "/auth/signin/verify", { json: { response } });
  const otherCookie = other.headers.get("set-cookie")!.split(";")[0];
  const a = await joinSignedIn(h.server, cookie, "lobby");
  const b = await joinSignedIn(h.server, cookie, "design");
  await using c = (await joinSignedIn(h.server, otherCookie, "lobby")).client;

  const out = await call(h.server, "/auth/signout", { method: "POST", headers: { cookie } });
  assert.equal(out.status, 204);
  for (const { client } of [a, b]) {
    const closed = await client.waitClosed();
    assert.deepEqual([closed.code, closed.reason], [4001, "signed out"]);
  }
  c.send({ type: "say", room: "lobby", text: "still here", cid: "c1" });
  assert.equal((await c.next("ack")).cid, "c1", "the other session's connection stays");

  // The cookie no longer signs in: a new socket with it is a guest, who must give a name.
  await using guest = await TestClient.connect(h.server.wsUrl, { cookie });
  guest.send({ type: "join", room: "lobby" });
  assert.equal((await guest.next("error")).code, "invalid_message");
});

Deno.test("POST /auth/rename reaches the account's connections and its rooms", async () => {
  await using h = await start();
  const { account, cookie } = await registerAccount(h.server, new SoftAuthenticator(), "ada");
  await using ada = (await joinSignedIn(h.server, cookie, "lobby")).client;
  const { client: grace } = await TestClient.join(h.server.wsUrl, "lobby", "grace");
  await using _ = grace;
  const renamed = await call(h.server, "/auth/rename", {
    json: { name: "Ada L" },
    headers: { cookie },
  });
  assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
  assert.equal((await ada.next("renamed")).name, "Ada L");
  const seen = await grace.next("presence", (m) => m.event === "rename");
  assert.deepEqual([seen.member, seen.previous], [{ id: account.id, name: "Ada L" }, "ada"]);
});

Deno.test("dm by an account's name opens the conversation while it is offline", async () => {
  await using h = await start();
  const { account } = await registerAccount(h.server, new SoftAuthenticator(), "ada");
  const { client: grace, welcome } = await TestClient.join(h.server.wsUrl, "lobby", "grace");
  await using _ = grace;
  grace.send({ type: "dm", name: "ADA" });
  const opened = await grace.next("welcome", (m) => m.room.startsWith("dm:"));
  assert.equal(opened.room, dmRoom(welcome.id, account.id));
  assert.deepEqual(opened.peer, { userId: account.id, name: "ada" });
  grace.send({ type: "dm", name: "nobody" });
  const missing = await grace.next("error");
  assert.equal(missing.code, "not_found");
  assert.match(missing.message, /is online or has an account$/);
});

Deno.test("signing out on one instance closes the session's connections on another", async () => {
  const network = new MemoryNetwork();
  await using a = await start({ bus: network.bus() });
  await using b = await startServer({ accounts: a.accounts, bus: network.bus() });
  const { cookie } = await registerAccount(a.server, new SoftAuthenticator(), "ada");
  const { client } = await joinSignedIn(b, cookie, "lobby");
  const out = await call(a.server, "/auth/signout", { method: "POST", headers: { cookie } });
  assert.equal(out.status, 204);
  const closed = await client.waitClosed();
  assert.deepEqual([closed.code, closed.reason], [4001, "signed out"]);
});

Deno.test("the server API cannot post under a name an account reserved", async () => {
  await using h = await start({ apiToken: "secret-token-0123456789" });
  await registerAccount(h.server, new SoftAuthenticator(), "ada");
  const post = (name: string) =>
    call(h.server, "/api/v1/rooms/lobby/messages", {
      json: { name, text: "hi" },
      headers: { authorization: "Bearer secret-token-0123456789" },
    });
  const refused = await post("ADA");
  assert.equal(refused.status, 409);
  assert.deepEqual(refused.body, {
    error: {
      code: "name_reserved",
      message: "Cannot post message: the name 'ADA' belongs to an account",
    },
  });
  assert.equal((await post("grace")).status, 201);
});

Deno.test("a name an account reserved is refused on a second instance over a bus", async () => {
  const network = new MemoryNetwork();
  await using a = await start({ bus: network.bus() });
  await using b = await startServer({ accounts: a.accounts, bus: network.bus() });
  await registerAccount(a.server, new SoftAuthenticator(), "ada");
  await using guest = await TestClient.connect(b.wsUrl);
  guest.send({ type: "join", room: "lobby", name: "Ada" });
  assert.equal((await guest.next("error")).code, "name_reserved");
});

Deno.test("a read position moves on the account's other connections, on other instances too", async () => {
  const network = new MemoryNetwork();
  await using a = await start({ bus: network.bus() });
  await using b = await startServer({ accounts: a.accounts, bus: network.bus() });
  const { cookie } = await registerAccount(a.server, new SoftAuthenticator(), "ada");
  await using laptop = (await joinSignedIn(a.server, cookie, "lobby")).client;
  await using phone = (await joinSignedIn(b, cookie, "lobby")).client;
  laptop.send({ type: "say", room: "lobby", text: "note to self", cid: "n1" });
  const { id } = await laptop.next("ack");
  laptop.send({ type: "read", room: "lobby", id });
  assert.deepEqual(await phone.next("read"), { type: "read", room: "lobby", id });
  await using tablet = await TestClient.connect(b.wsUrl, { cookie });
  tablet.send({ type: "join", room: "lobby" });
  assert.equal((await tablet.next("welcome")).readId, id);
});
