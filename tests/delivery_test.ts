/**
 * The delivery promise: every acknowledged message reaches every member once,
 * in order, across reconnects and server restarts.
 */
import assert from "node:assert/strict";
import type { ChatMessage } from "../src/protocol.ts";
import {
  ONE_ADDRESS_LIFTED,
  ONE_ADDRESS_LIFTED_ENV,
  seededRandom,
  startServer,
  TestClient,
  within,
} from "./helpers.ts";
import { startProcess } from "./process.ts";

/** Checks that every sequence is exactly 1..n; reports the first difference. */
function assertIdenticalSequences(sequences: Map<string, number[]>, n: number): void {
  const expected = Array.from({ length: n }, (_, i) => i + 1);
  for (const [who, ids] of sequences) {
    const at = expected.findIndex((id, i) => ids[i] !== id);
    if (at === -1 && ids.length === n) continue;
    const index = at === -1 ? n : at;
    assert.fail(
      `${who} differs at position ${index}: expected ${expected[index] ?? "the end"}, got ${
        ids[index] ?? "the end"
      } (holds ${ids.length} ids, expected ${n})`,
    );
  }
}

Deno.test("a duplicate cid is stored and broadcast once, and acknowledged each time", async () => {
  await using server = await startServer();
  const { client: ada, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  ada.send({ type: "say", text: "once", cid: "dup" });
  ada.send({ type: "say", text: "once", cid: "dup" });
  const [first, second] = [await ada.next("ack"), await ada.next("ack")];
  assert.equal(first.id, 1);
  assert.equal(second.id, 1);

  // A retry from a new connection of the same session (after a blip) is recognised too.
  await ada.close();
  await using again = await TestClient.connect(server.wsUrl);
  again.send({ type: "join", room: "lobby", name: "ada", since: 1, token: welcome.token });
  await again.next("welcome");
  again.send({ type: "say", text: "once", cid: "dup" });
  assert.equal((await again.next("ack")).id, 1);
  again.send({ type: "say", text: "next", cid: "fresh" });
  assert.equal((await bob.next("message")).id, 1);
  const next = await bob.next("message");
  assert.deepEqual([next.id, next.text], [2, "next"], "the duplicate was never broadcast");
});

Deno.test("a resume with since replays exactly what was missed, with recovered: true", async () => {
  await using server = await startServer();
  const { client: ada, welcome: first } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  for (let i = 1; i <= 8; i++) ada.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  await ada.next("ack", (a) => a.cid === "c8");
  const { client: bob, welcome } = await TestClient.join(
    server.wsUrl,
    "lobby",
    "bob",
    5,
    first.epoch,
  );
  await using _bob = bob;
  assert.equal(welcome.recovered, true);
  assert.deepEqual(welcome.history.map((m) => m.id), [6, 7, 8]);
});

Deno.test("a gap older than the retention answers recovered: false with the recent history", async () => {
  await using server = await startServer({ historyLimit: 5 });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  for (let i = 1; i <= 12; i++) ada.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  await ada.next("ack", (a) => a.cid === "c12");
  const { client: bob, welcome } = await TestClient.join(server.wsUrl, "lobby", "bob", 2);
  await using _bob = bob;
  assert.equal(welcome.recovered, false);
  assert.deepEqual(welcome.history.map((m) => m.id), [8, 9, 10, 11, 12]);
});

Deno.test("a since beyond the room's sequence answers recovered: false", async () => {
  await using server = await startServer();
  const { client, welcome } = await TestClient.join(server.wsUrl, "empty", "ada", 40);
  await using _ = client;
  assert.equal(welcome.recovered, false);
  assert.deepEqual(welcome.history, []);
});

Deno.test("after a SIGKILL and restart, every acknowledged message is kept and resumes are exact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-restart-" });
  const env = { KV_PATH: `${dir}/chat.kv`, RATE_BURST: "1000", ...ONE_ADDRESS_LIFTED_ENV };
  let server = await startProcess(env);
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");

  // Bob sees the first five, then drops off.
  for (let i = 1; i <= 5; i++) ada.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  for (let i = 1; i <= 5; i++) assert.equal((await bob.next("message")).id, i);
  await bob.close();

  // Ada keeps talking; the server is killed while her messages are in flight.
  const acked = new Set<string>();
  for (let i = 6; i <= 40; i++) ada.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  for (let i = 6; i <= 15; i++) acked.add((await ada.next("ack", (a) => a.cid === `c${i}`)).cid);
  await server.stop("SIGKILL");
  await ada.waitClosed();
  for (const ack of ada.drain("ack")) acked.add(ack.cid);

  server = await startProcess(env, server.port);
  try {
    const { client: fresh, welcome: all } = await TestClient.join(server.wsUrl, "lobby", "carol");
    const stored = new Map(all.history.map((m) => [m.cid, m.id]));
    for (const cid of acked) assert.ok(stored.has(cid), `acknowledged ${cid} survived the kill`);
    assert.deepEqual(all.history.map((m) => m.id), all.history.map((_, i) => i + 1));
    const last = all.history.at(-1)!.id;
    await fresh.close();

    const { client: back, welcome } = await TestClient.join(
      server.wsUrl,
      "lobby",
      "bob",
      5,
      all.epoch,
    );
    assert.equal(welcome.recovered, true);
    assert.deepEqual(
      welcome.history.map((m) => m.id),
      Array.from({ length: last - 5 }, (_, i) => i + 6),
    );
    await back.close();
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("storm: senders and flaky readers all end with the identical gap-free sequence", async () => {
  const seed = Number(Deno.env.get("STORM_SEED") ?? 42);
  const rand = seededRandom(seed);
  await using server = await startServer({
    rateBurst: 10_000,
    ratePerSecond: 10_000,
    ...ONE_ADDRESS_LIFTED,
  });
  const room = "storm";
  const SENDERS = 3, READERS = 4, PER_SENDER = 200;

  /** A reader that keeps its sequence across reconnects. */
  type Reader = { name: string; ids: number[]; epoch?: string; client?: TestClient };
  const readers: Reader[] = Array.from({ length: READERS }, (_, i) => ({ name: `r${i}`, ids: [] }));
  /** Records ids in frame order: the welcome's history, then each message. */
  const connectReader = async (reader: Reader) => {
    const since = reader.ids.at(-1);
    const client = await TestClient.connect(server.wsUrl);
    client.socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      for (const m of Array.isArray(data) ? data : [data]) {
        if (m.type === "welcome") reader.ids.push(...m.history.map((h: ChatMessage) => h.id));
        if (m.type === "message") reader.ids.push(m.id);
      }
    });
    client.send({ type: "join", room, name: reader.name, since, epoch: reader.epoch });
    const welcome = await client.next("welcome");
    reader.epoch = welcome.epoch;
    if (since !== undefined) assert.equal(welcome.recovered, true, `${reader.name} resumed`);
    reader.client = client;
  };
  for (const reader of readers) await connectReader(reader);

  const senders = await Promise.all(
    Array.from({ length: SENDERS }, (_, i) => TestClient.join(server.wsUrl, room, `s${i}`)),
  );
  /** What each sender received, in frame order (nothing is sent before all have joined). */
  const senderIds = senders.map(({ client }) => {
    const ids: number[] = [];
    client.socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      for (const m of Array.isArray(data) ? data : [data]) if (m.type === "message") ids.push(m.id);
    });
    return ids;
  });
  const sending = senders.map(async ({ client }, s) => {
    for (let i = 0; i < PER_SENDER; i++) {
      client.send({ type: "say", text: `s${s}-${i}`, cid: `s${s}-${i}` });
      const last = i === PER_SENDER - 1;
      if (i % 5 === 4 || last) await client.next("ack", (a) => a.cid === `s${s}-${i}`);
    }
  });

  // Readers drop and resume at random until the senders are done (bounded by the wait).
  let done = false;
  const allSent = Promise.all(sending).finally(() => done = true);
  let reconnects = 0;
  const churn = readers.map(async (reader) => {
    while (!done && reconnects < 200) {
      await new Promise((resolve) => setTimeout(resolve, 5 + rand() * 40));
      if (rand() < 0.5) continue;
      await reader.client!.close();
      reconnects++;
      await connectReader(reader);
    }
  });
  await within(allSent, "the senders to finish", 20_000);
  await Promise.all(churn);

  const total = SENDERS * PER_SENDER;
  for (const reader of readers) {
    await within(
      (async () => {
        while (reader.ids.length < total && reader.client!.socket.readyState === WebSocket.OPEN) {
          await reader.client!.next("message").catch(() => {});
          if (reader.ids.at(-1) === total) break;
        }
      })(),
      `${reader.name} to catch up`,
    );
  }
  // A sender's own last ack says nothing about the others' last messages: wait for the last one.
  for (const { client } of senders) {
    await client.next("message", (m) => m.id === total).catch(() => {});
  }
  const sequences = new Map(readers.map((r) => [`${r.name} (seed ${seed})`, r.ids]));
  senderIds.forEach((ids, i) => sequences.set(`s${i}`, ids));
  assertIdenticalSequences(sequences, total);
  console.log(
    `storm: ${total} messages, ${READERS} readers, ${reconnects} reconnects, seed ${seed}`,
  );

  for (const reader of readers) await reader.client!.close();
  for (const { client } of senders) await client.close();
});

Deno.test("a resume across a wiped store answers recovered: false, not a wrong 'complete'", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kvPath = `${dir}/chat.kv`;
    let epoch: string | undefined;
    {
      await using server = await startServer({ kvPath });
      const { client: ada, welcome } = await TestClient.join(server.wsUrl, "lobby", "ada");
      await using _ada = ada;
      epoch = welcome.epoch;
      assert.ok(epoch, "the welcome names the store's epoch");
      for (let i = 1; i <= 3; i++) ada.send({ type: "say", text: `old ${i}`, cid: `o${i}` });
      await ada.next("ack", (a) => a.cid === "o3");
    }
    await Deno.remove(dir, { recursive: true });
    await Deno.mkdir(dir);
    await using server = await startServer({ kvPath });
    const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
    await using _bob = bob;
    for (let i = 1; i <= 5; i++) bob.send({ type: "say", text: `new ${i}`, cid: `n${i}` });
    await bob.next("ack", (a) => a.cid === "n5");

    await using back = await TestClient.connect(server.wsUrl);
    back.send({ type: "join", room: "lobby", name: "ada", since: 3, epoch });
    const resumed = await back.next("welcome");
    assert.notEqual(resumed.epoch, epoch);
    assert.equal(resumed.recovered, false);
    assert.deepEqual(resumed.history.map((m) => m.text), [1, 2, 3, 4, 5].map((i) => `new ${i}`));

    // The same epoch resumes as usual.
    await using again = await TestClient.connect(server.wsUrl);
    again.send({ type: "join", room: "lobby", name: "carol", since: 3, epoch: resumed.epoch });
    const fine = await again.next("welcome");
    assert.equal(fine.recovered, true);
    assert.deepEqual(fine.history.map((m) => m.text), ["new 4", "new 5"]);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
