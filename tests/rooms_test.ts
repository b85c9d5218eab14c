/**
 * One connection in many rooms, over real sockets: joins and scoped frames
 * on the wire, a resume of every room after the server is killed, and two
 * instances sharing rooms over a bus.
 */
import assert from "node:assert/strict";
import type { ChatMessage, WelcomeMessage } from "../src/protocol.ts";
import { startServer, TestClient, within } from "./helpers.ts";
import { MemoryNetwork, startInstances } from "./memory_bus.ts";
import { startProcess } from "./process.ts";

/** Joins `room` on an open client (named on its first join) and takes that room's welcome. */
async function joinRoom(client: TestClient, room: string, extra: Record<string, unknown> = {}) {
  client.send({ type: "join", room, ...extra });
  const answer = await client.next("welcome", (w) => w.room === room);
  return answer;
}

Deno.test("one WebSocket in two rooms: a welcome each, scoped frames, leave and the room limit", async () => {
  await using server = await startServer({ maxRoomsPerConnection: 2 });
  await using ada = await TestClient.connect(server.wsUrl);
  const lobby = await joinRoom(ada, "lobby", { name: "ada" });
  const design = await joinRoom(ada, "design");
  assert.equal(design.id, lobby.id);
  const { client: bob } = await TestClient.join(server.wsUrl, "design", "bob");
  await using _bob = bob;

  ada.send({ type: "say", room: "design", text: "hello design", cid: "d1" });
  assert.deepEqual(await ada.next("ack"), { type: "ack", room: "design", cid: "d1", id: 1 });
  const seen = await bob.next("message");
  assert.deepEqual([seen.room, seen.text], ["design", "hello design"]);

  ada.send({ type: "say", text: "which room?", cid: "x" });
  assert.equal((await ada.next("error")).code, "invalid_message");
  ada.send({ type: "join", room: "third" });
  const limit = await ada.next("error");
  assert.deepEqual([limit.code, limit.room], ["too_many_rooms", "third"]);

  ada.send({ type: "leave", room: "design" });
  assert.deepEqual(await ada.next("left"), { type: "left", room: "design" });
  const gone = await bob.next("presence", (p) => p.event === "leave");
  assert.deepEqual([gone.room, gone.member.name], ["design", "ada"]);
  ada.send({ type: "say", text: "back to one room", cid: "l1" });
  assert.equal((await ada.next("ack")).room, "lobby");
});

Deno.test("after a SIGKILL, one connection resumes three rooms, each with its own since: every message once, in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-rooms-" });
  const env = { KV_PATH: `${dir}/chat.kv`, RATE_BURST: "1000", RATE_PER_SECOND: "1000" };
  const ROOMS = ["a", "b", "c"];
  let server = await startProcess(env);
  try {
    const writer = await TestClient.connect(server.wsUrl);
    for (const [i, room] of ROOMS.entries()) {
      await joinRoom(writer, room, i === 0 ? { name: "writer" } : {});
    }
    const reader = await TestClient.connect(server.wsUrl);
    const seen = new Map<string, number[]>(ROOMS.map((room) => [room, []]));
    let epoch = "";
    let token = "";
    for (const [i, room] of ROOMS.entries()) {
      const welcome = await joinRoom(reader, room, i === 0 ? { name: "reader" } : {});
      epoch = welcome.epoch ?? "";
      token = welcome.token ?? "";
    }
    // Three in each room, which the reader sees live.
    const say = (room: string, n: number) =>
      writer.send({ type: "say", room, text: `${room}${n}`, cid: `${room}${n}` });
    for (let n = 1; n <= 3; n++) for (const room of ROOMS) say(room, n);
    const seenCids = new Set<string>();
    for (const room of ROOMS) {
      for (let n = 1; n <= 3; n++) {
        const message = await reader.next("message", (m) => m.room === room);
        seen.get(room)!.push(message.id);
        seenCids.add(message.cid);
      }
    }
    await reader.close();

    // More while the reader is away, then the server dies with some in flight.
    for (let n = 4; n <= 12; n++) for (const room of ROOMS) say(room, n);
    const acked = new Set<string>();
    for (let n = 4; n <= 6; n++) {
      for (const room of ROOMS) {
        acked.add((await writer.next("ack", (a) => a.cid === `${room}${n}`)).cid);
      }
    }
    await server.stop("SIGKILL");
    await writer.waitClosed();
    for (const ack of writer.drain("ack")) acked.add(ack.cid);

    server = await startProcess(env, server.port);
    await using back = await TestClient.connect(server.wsUrl);
    const replays = new Map<string, WelcomeMessage>();
    for (const [i, room] of ROOMS.entries()) {
      const since = seen.get(room)!.at(-1);
      const first = i === 0 ? { name: "reader", token } : {};
      replays.set(room, await joinRoom(back, room, { ...first, since, epoch }));
    }
    for (const room of ROOMS) {
      const welcome = replays.get(room)!;
      assert.equal(welcome.recovered, true, `${room} resumed completely`);
      const ids = [...seen.get(room)!, ...welcome.history.map((m: ChatMessage) => m.id)];
      assert.deepEqual(ids, ids.map((_, i) => i + 1), `${room}: each message once, in order`);
      const texts = new Set([...seenCids, ...welcome.history.map((m: ChatMessage) => m.cid)]);
      for (const cid of acked) {
        if (cid.startsWith(room)) assert.ok(texts.has(cid), `acknowledged ${cid} survived`);
      }
    }
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two instances over a bus: rooms are shared per room, with presence per room", async () => {
  const network = new MemoryNetwork();
  await using servers = await startInstances(2, network, { watchIntervalMs: 50 });
  const [one, two] = servers;
  await using ada = await TestClient.connect(one.wsUrl);
  await joinRoom(ada, "a", { name: "ada" });
  await joinRoom(ada, "b");
  await using bob = await TestClient.connect(two.wsUrl);
  await joinRoom(bob, "b", { name: "bob" });
  await joinRoom(bob, "c");

  // Ada sees bob arrive in b (through the bus), and only there.
  const arrived = await ada.next("presence", (p) => p.member.name === "bob");
  assert.deepEqual([arrived.room, arrived.event], ["b", "join"]);

  bob.send({ type: "say", room: "b", text: "hi from two", cid: "b1" });
  const got = await ada.next("message");
  assert.deepEqual([got.room, got.text], ["b", "hi from two"]);
  ada.send({ type: "say", room: "a", text: "only a", cid: "a1" });
  ada.send({ type: "say", room: "b", text: "to b", cid: "a2" });
  const back = await bob.next("message", (m) => m.cid === "a2");
  assert.equal(back.room, "b");
  assert.deepEqual(bob.drain("message").filter((m) => m.room === "a"), [], "bob is not in a");

  // The directory on instance two counts ada in a and b, heard over the bus.
  bob.send({ type: "rooms" });
  const { rooms } = await bob.next("rooms");
  const members = Object.fromEntries(rooms.map((r) => [r.name, r.members]));
  assert.deepEqual(members, { a: 1, b: 2, c: 1 });

  // Ada leaves b: bob sees it in b, and ada is still in a.
  ada.send({ type: "leave", room: "b" });
  await ada.next("left");
  const left = await within(
    bob.next("presence", (p) => p.event === "leave"),
    "bob to see ada leave b",
  );
  assert.deepEqual([left.room, left.member.name], ["b", "ada"]);
});

Deno.test("a room deleted on an instance without a bus empties on the others by their store watcher", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-delete-" });
  try {
    await using one = await startServer({ kvPath: `${dir}/chat.kv`, watchIntervalMs: 50 });
    await using two = await startServer({ kvPath: `${dir}/chat.kv`, watchIntervalMs: 50 });
    const { client: ada } = await TestClient.join(one.wsUrl, "doomed", "ada");
    await using _ada = ada;
    const { client: bob } = await TestClient.join(two.wsUrl, "doomed", "bob");
    await using _bob = bob;
    ada.send({ type: "say", text: "soon gone", cid: "a1" });
    await bob.next("message"); // found by two's watcher: two now holds id 1
    await using three = await startServer({
      kvPath: `${dir}/chat.kv`,
      apiToken: "a-token-of-sixteen-chars",
    });
    const deleted = await fetch(`${three.origin}/api/v1/rooms/doomed`, {
      method: "DELETE",
      headers: { authorization: "Bearer a-token-of-sixteen-chars" },
    });
    assert.equal(deleted.status, 204);
    for (const client of [ada, bob]) {
      const left = await client.next("left");
      assert.deepEqual([left.room, left.reason], ["doomed", "room deleted"]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
