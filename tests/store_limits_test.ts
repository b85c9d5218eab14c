/**
 * What the store must never do: lose a message because another sender
 * picked the same `cid`, or because its neighbours made one commit too big.
 */
import assert from "node:assert/strict";
import { KvHistory } from "../src/store/kv_history.ts";
import { ONE_ADDRESS_LIFTED, startServer, TestClient } from "./helpers.ts";

Deno.test("two senders who pick the same cid both get their message stored", async () => {
  await using server = await startServer();
  await using ada = (await TestClient.join(server.wsUrl, "lobby", "ada")).client;
  await using bob = (await TestClient.join(server.wsUrl, "lobby", "bob")).client;
  ada.send({ type: "say", text: "from ada", cid: "t1" });
  const first = await ada.next("ack");
  bob.send({ type: "say", text: "from bob", cid: "t1" });
  const second = await bob.next("ack");
  assert.notEqual(second.id, first.id);
  const texts = [await ada.next("message"), await ada.next("message")].map((m) => m.text);
  assert.deepEqual(texts, ["from ada", "from bob"]);
  // A retry by the same sender is still deduplicated.
  bob.send({ type: "say", text: "from bob", cid: "t1" });
  assert.equal((await bob.next("ack")).id, second.id);
});

Deno.test("855 messages of 6 KB waiting at once are all stored, split into commits KV accepts", async () => {
  using kv = await Deno.openKv(":memory:");
  const history = new KvHistory(kv, { limit: 2000 });
  const text = "x".repeat(6000);
  const drafts = Array.from({ length: 855 }, (_, i) => ({
    room: "big",
    userId: `u${i % 45}`,
    name: `member${i % 45}`,
    text,
    cid: `c${i}`,
  }));
  const results = await history.appendMany("big", drafts);
  assert.deepEqual(results.map((r) => r.message.id), drafts.map((_, i) => i + 1));
  assert.ok(results.every((r) => !r.duplicate));
  assert.equal(await history.latest("big"), 855);
});

Deno.test("a join while the store is down answers unavailable, and works once it is back", async () => {
  using kv = await Deno.openKv(":memory:");
  const real = new KvHistory(kv);
  let down = true;
  const failing = new Proxy(real, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) =>
        down ? Promise.reject(new Error("store is down")) : value.apply(target, args);
    },
  });
  await using server = await startServer({ history: failing });
  await using ada = await TestClient.connect(server.wsUrl);
  ada.send({ type: "join", room: "lobby", name: "ada" });
  const error = await ada.next("error");
  assert.equal(error.code, "unavailable");
  assert.match(error.message, /^Cannot join room: /);
  down = false;
  ada.send({ type: "join", room: "lobby", name: "ada" });
  assert.equal((await ada.next("welcome")).name, "ada");
});

Deno.test("the store holds at most MAX_ROOMS rooms: one more gets room_limit, existing rooms go on", async () => {
  using kv = await Deno.openKv(":memory:");
  await using server = await startServer({ history: new KvHistory(kv, { maxRooms: 2 }) });
  for (const room of ["one", "two"]) {
    await using client = (await TestClient.join(server.wsUrl, room, "ada")).client;
    client.send({ type: "say", text: "hi", cid: "c1" });
    await client.next("ack");
  }
  await using third = (await TestClient.join(server.wsUrl, "three", "ada")).client;
  third.send({ type: "say", text: "hi", cid: "c1" });
  const error = await third.next("error");
  assert.deepEqual([error.code, error.cid], ["room_limit", "c1"]);
  await using again = (await TestClient.join(server.wsUrl, "one", "bob")).client;
  again.send({ type: "say", text: "still fine", cid: "c2" });
  assert.equal((await again.next("ack")).id, 2);
});

Deno.test("a resume too far back for one welcome gets the newest 50 and recovered: false", async () => {
  await using server = await startServer({
    rateBurst: 1000,
    ...ONE_ADDRESS_LIFTED,
    maxReplayBytes: 64 * 1024,
  });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const text = "y".repeat(1500);
  for (let i = 1; i <= 100; i++) ada.send({ type: "say", text, cid: `c${i}` });
  await ada.next("ack", (a) => a.cid === "c100");
  await using bob = await TestClient.connect(server.wsUrl);
  bob.send({ type: "join", room: "lobby", name: "bob", since: 0 });
  const welcome = await bob.next("welcome");
  assert.equal(welcome.recovered, false);
  assert.deepEqual([welcome.history[0].id, welcome.history.length], [51, 50]);
});
