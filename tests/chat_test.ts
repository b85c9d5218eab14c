import assert from "node:assert/strict";
import { ONE_ADDRESS_LIFTED, startServer, TestClient } from "./helpers.ts";

Deno.test("two clients in a room receive each other's messages, in order", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;

  ada.send({ type: "say", text: "hello bob", cid: "a1" });
  bob.send({ type: "say", text: "hi ada", cid: "b1" });
  const ack = await ada.next("ack");
  assert.deepEqual(ack, { type: "ack", room: "lobby", cid: "a1", id: ack.id });

  for (const client of [ada, bob]) {
    const first = await client.next("message");
    const second = await client.next("message");
    assert.deepEqual([first.id, second.id], [1, 2]);
    assert.deepEqual(
      [first, second].map(({ name, text, room }) => ({ name, text, room })).sort((a, b) =>
        a.name.localeCompare(b.name)
      ),
      [{ name: "ada", text: "hello bob", room: "lobby" }, {
        name: "bob",
        text: "hi ada",
        room: "lobby",
      }],
    );
  }
});

Deno.test("a message carries server id, sender, text and server timestamp", async () => {
  await using server = await startServer();
  const { client, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ = client;
  const before = Date.now();
  client.send({ type: "say", text: "stamped", cid: "c-1", userId: "spoofed", ts: 1 });
  const message = await client.next("message");
  assert.equal(message.userId, welcome.id);
  assert.equal(message.name, "ada");
  assert.equal(message.cid, "c-1");
  assert.ok(message.ts >= before && message.ts <= Date.now());
});

Deno.test("rooms are isolated from each other", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "red", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "blue", "bob");
  await using _bob = bob;

  ada.send({ type: "say", text: "only red", cid: "r1" });
  assert.equal((await ada.next("message")).text, "only red");
  bob.send({ type: "say", text: "only blue", cid: "b1" });
  const seen = await bob.next("message");
  assert.equal(seen.text, "only blue");
  assert.equal(seen.id, 1, "each room has its own sequence");
  assert.deepEqual(bob.drain("message"), []);
  assert.deepEqual(ada.drain("message"), []);
});

Deno.test("joining a room returns the last 50 messages as history", async () => {
  await using server = await startServer({ rateBurst: 100, ...ONE_ADDRESS_LIFTED });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  for (let i = 1; i <= 55; i++) ada.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  await ada.next("ack", (a) => a.cid === "c55");

  const { client: bob, welcome } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  assert.equal(welcome.history.length, 50);
  assert.equal(welcome.history[0].text, "m6");
  assert.equal(welcome.history.at(-1)!.text, "m55");
  assert.equal(welcome.recovered, undefined);
});

Deno.test("presence announces joins and leaves with the member list", async () => {
  await using server = await startServer();
  const { client: ada, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  assert.deepEqual(welcome.members, [{ id: welcome.id, name: "ada" }]);

  const { client: bob, welcome: bobWelcome } = await TestClient.join(server.wsUrl, "lobby", "bob");
  const joined = await ada.next("presence");
  assert.equal(joined.event, "join");
  assert.deepEqual(joined.member, { id: bobWelcome.id, name: "bob" });
  assert.equal("members" in joined, false, "a join sends that one member, not the list");

  await bob.close();
  const left = await ada.next("presence");
  assert.equal(left.event, "leave");
  assert.equal(left.member.name, "bob");
});

Deno.test("typing is sent to the others only", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  ada.send({ type: "typing" });
  ada.send({ type: "typing" }); // throttled: dropped
  assert.equal((await bob.next("typing")).member.name, "ada");
  ada.send({ type: "say", text: "done", cid: "x" });
  await bob.next("message");
  assert.deepEqual(bob.drain("typing"), []);
  assert.deepEqual(ada.drain("typing"), []);
});

Deno.test("a nickname taken in the room is refused, and free in another room", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  await using twin = await TestClient.connect(server.wsUrl);
  twin.send({ type: "join", room: "lobby", name: " ADA " });
  const error = await twin.next("error");
  assert.equal(error.code, "name_taken");
  assert.equal(error.message, "Cannot join room: name is taken");
  twin.send({ type: "join", room: "elsewhere", name: "ada" });
  assert.equal((await twin.next("welcome")).room, "elsewhere");
});

Deno.test("the server shutting down closes every client with 1001", async () => {
  const server = await startServer();
  const { client } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await server.close();
  const event = await client.waitClosed();
  assert.equal(event.code, 1001);
  assert.equal(event.reason, "server is shutting down");
});

Deno.test("GET /healthz reports status, connections and uptime", async () => {
  await using server = await startServer();
  const { client } = await TestClient.join(server.wsUrl, "lobby", "ada"); // Joined: surely open.
  await using _client = client;
  const response = await fetch(`${server.origin}/healthz`);
  const body = await response.json();
  assert.equal(response.status, 200);
  assert.equal(body.ok, true);
  assert.equal(body.connections, 1);
  assert.equal(typeof body.uptimeSeconds, "number");
});

Deno.test("a reconnect with the session token keeps the same user id", async () => {
  await using server = await startServer();
  const { client: first, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await first.close();
  await using again = await TestClient.connect(server.wsUrl);
  again.send({ type: "join", room: "lobby", name: "ada", token: welcome.token });
  assert.equal((await again.next("welcome")).id, welcome.id);
});

Deno.test("a forged or foreign token gets a fresh id, never the claimed one", async () => {
  await using server = await startServer();
  const { client: ada, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const forged = `${welcome.id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;
  await using mallory = await TestClient.connect(server.wsUrl);
  mallory.send({ type: "join", room: "lobby", name: "mallory", token: forged });
  const theirs = await mallory.next("welcome");
  assert.notEqual(theirs.id, welcome.id);
  mallory.send({ type: "join", room: "lobby" });
  assert.equal((await mallory.next("error")).code, "already_joined");
  mallory.send({ type: "join", room: "other", name: "ada", token: "not-a-token" });
  assert.equal((await mallory.next("error")).code, "invalid_message", "one name per connection");
  mallory.send({ type: "join", room: "other", token: welcome.token });
  assert.equal((await mallory.next("welcome")).id, theirs.id, "one identity per connection");
});

Deno.test("the same session joining again replaces its stale connection", async () => {
  await using server = await startServer();
  const { client: stale, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  await using fresh = await TestClient.connect(server.wsUrl);
  fresh.send({ type: "join", room: "lobby", name: "ada", token: welcome.token });
  assert.equal((await fresh.next("welcome")).id, welcome.id);
  const event = await stale.waitClosed();
  assert.equal(event.code, 4000);
  assert.equal(event.reason, "replaced by a new connection");
  // The same code and reason in a last frame, for a page whose close event lost them (Deno 2.5).
  assert.deepEqual(stale.drain("close"), [
    { type: "close", code: 4000, reason: "replaced by a new connection" },
  ]);
  fresh.send({ type: "say", text: "back", cid: "b1" });
  const message = await bob.next("message");
  assert.deepEqual([message.userId, message.name], [welcome.id, "ada"]);
});
