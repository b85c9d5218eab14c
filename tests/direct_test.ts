/**
 * Direct conversations over real sockets: across two instances joined by a
 * bus, and across a server killed and started again, between guests and
 * between accounts.
 */
import assert from "node:assert/strict";
import type { ChatMessage } from "../src/protocol.ts";
import { dmRoom } from "../src/protocol.ts";
import { registerAccount } from "./account_helpers.ts";
import { TestClient } from "./helpers.ts";
import { MemoryNetwork, startInstances } from "./memory_bus.ts";
import { startProcess } from "./process.ts";
import { SoftAuthenticator } from "./soft_authenticator.ts";

Deno.test("a dm to a user on another instance pulls their connection in there", async () => {
  const network = new MemoryNetwork();
  await using servers = await startInstances(2, network, { watchIntervalMs: 50 });
  const [one, two] = servers;
  const { client: ada, welcome: a } = await TestClient.join(one.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob, welcome: b } = await TestClient.join(two.wsUrl, "lobby", "bob");
  await using _bob = bob;
  await ada.next("presence", (p) => p.member.name === "bob"); // one has heard of bob
  const room = dmRoom(a.id, b.id);

  ada.send({ type: "dm", name: "bob" });
  const opened = await ada.next("welcome", (w) => w.room === room);
  assert.deepEqual(opened.peer, { userId: b.id, name: "bob" });
  ada.send({ type: "say", room, text: "across instances", cid: "d1" });
  const pulled = await bob.next("welcome", (w) => w.room === room);
  assert.deepEqual(pulled.history.map((m) => m.text), ["across instances"]);
  bob.send({ type: "say", room, text: "got it", cid: "d2" });
  assert.equal((await ada.next("message", (m) => m.cid === "d2")).room, room);
});

Deno.test("a dm between two guests survives a SIGKILL: each message once, in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-dm-" });
  const env = { KV_PATH: `${dir}/chat.kv` };
  let server = await startProcess(env);
  try {
    const { client: ada, welcome: a } = await TestClient.join(server.wsUrl, "lobby", "ada");
    const { client: bob, welcome: b } = await TestClient.join(server.wsUrl, "lobby", "bob");
    const room = dmRoom(a.id, b.id);
    ada.send({ type: "dm", name: "bob" });
    await ada.next("welcome", (w) => w.room === room);
    ada.send({ type: "say", room, text: "one", cid: "m1" });
    const pulled = await bob.next("welcome", (w) => w.room === room);
    const seen = pulled.history.map((m: ChatMessage) => m.id);
    await bob.close();

    for (let i = 2; i <= 8; i++) ada.send({ type: "say", room, text: `m${i}`, cid: `m${i}` });
    const acked = new Set<number>();
    for (let i = 2; i <= 5; i++) acked.add((await ada.next("ack", (x) => x.cid === `m${i}`)).id);
    await server.stop("SIGKILL");
    await ada.waitClosed();
    for (const ack of ada.drain("ack")) acked.add(ack.id);

    server = await startProcess(env, server.port);
    await using back = await TestClient.connect(server.wsUrl);
    back.send({ type: "join", room: "lobby", name: "bob", token: b.token });
    await back.next("welcome");
    back.send({ type: "join", room, since: seen.at(-1), epoch: pulled.epoch });
    const resumed = await back.next("welcome", (w) => w.room === room);
    assert.equal(resumed.recovered, true);
    const ids = [...seen, ...resumed.history.map((m: ChatMessage) => m.id)];
    assert.deepEqual(ids, ids.map((_, i) => i + 1), "each message once, in order");
    for (const id of acked) assert.ok(ids.includes(id), `acknowledged message ${id} survived`);
    // Someone else cannot read it after the restart either.
    const { client: carol } = await TestClient.join(server.wsUrl, "lobby", "carol");
    await using _carol = carol;
    carol.send({ type: "join", room });
    assert.equal((await carol.next("error")).code, "room_forbidden");
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a dm between two accounts survives a SIGKILL: each message once, in order, on a new device too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-dm-accounts-" });
  const env = { KV_PATH: `${dir}/chat.kv` };
  let server = await startProcess(env);
  try {
    const ada = await registerAccount(server, new SoftAuthenticator(), "ada");
    const bob = await registerAccount(server, new SoftAuthenticator(), "bob");
    const room = dmRoom(ada.account.id, bob.account.id);
    const signedIn = async (cookie: string) => {
      const client = await TestClient.connect(server.wsUrl, { cookie });
      client.send({ type: "join", room: "lobby" });
      await client.next("welcome");
      return client;
    };
    const adaTab = await signedIn(ada.cookie);
    const bobTab = await signedIn(bob.cookie);
    adaTab.send({ type: "dm", name: "bob" });
    await adaTab.next("welcome", (w) => w.room === room);
    adaTab.send({ type: "say", room, text: "one", cid: "m1" });
    const pulled = await bobTab.next("welcome", (w) => w.room === room);
    const seen = pulled.history.map((m: ChatMessage) => m.id);
    await bobTab.close();

    for (let i = 2; i <= 8; i++) adaTab.send({ type: "say", room, text: `m${i}`, cid: `m${i}` });
    const acked = new Set<number>();
    for (let i = 2; i <= 5; i++) acked.add((await adaTab.next("ack", (x) => x.cid === `m${i}`)).id);
    await server.stop("SIGKILL");
    await adaTab.waitClosed();
    for (const ack of adaTab.drain("ack")) acked.add(ack.id);

    server = await startProcess(env, server.port);
    // Bob's session outlived the restart: the same cookie is the same account.
    await using back = await signedIn(bob.cookie);
    back.send({ type: "join", room, since: seen.at(-1), epoch: pulled.epoch });
    const resumed = await back.next("welcome", (w) => w.room === room);
    assert.equal(resumed.recovered, true);
    const ids = [...seen, ...resumed.history.map((m: ChatMessage) => m.id)];
    assert.deepEqual(ids, ids.map((_, i) => i + 1), "each message once, in order");
    for (const id of acked) assert.ok(ids.includes(id), `acknowledged message ${id} survived`);
    // Another device of Ada's, with nothing held, gets the same conversation.
    await using phone = await signedIn(ada.cookie);
    phone.send({ type: "join", room });
    const fresh = await phone.next("welcome", (w) => w.room === room);
    assert.deepEqual(fresh.history.map((m: ChatMessage) => m.id), ids);
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});
