import assert from "node:assert/strict";
import type { LogEvent } from "../src/log.ts";
import type { ChatMessage } from "../src/protocol.ts";
import { ONE_ADDRESS_LIFTED, startServer, TestClient, within } from "./helpers.ts";
import { RawClient } from "./raw_socket.ts";

const LIFTED = { rateBurst: 1_000_000, ratePerSecond: 1_000_000, ...ONE_ADDRESS_LIFTED };

Deno.test("events are batched into array frames under load, in order, with nothing lost", async () => {
  await using server = await startServer(LIFTED);
  const { client: reader } = await TestClient.join(server.wsUrl, "lobby", "reader");
  await using _reader = reader;
  let frames = 0, arrays = 0;
  reader.socket.addEventListener("message", (event) => {
    frames++;
    if (event.data.startsWith("[")) arrays++;
  });
  const { client: writer } = await TestClient.join(server.wsUrl, "lobby", "writer");
  await using _writer = writer;
  const COUNT = 300;
  for (let i = 1; i <= COUNT; i++) writer.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  const ids: number[] = [];
  while (ids.length < COUNT) ids.push((await reader.next("message")).id);
  assert.deepEqual(ids, Array.from({ length: COUNT }, (_, i) => i + 1));
  assert.ok(arrays > 0, `expected some batched frames, got ${frames} frames for ${COUNT} events`);
  assert.ok(frames < COUNT, `${frames} frames for ${COUNT} events`);
});

Deno.test("an idle room gets a lone message at once, as a plain object frame", async () => {
  await using server = await startServer();
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  const raw = new Promise<string>((resolve) =>
    bob.socket.addEventListener("message", (e) => resolve(e.data), { once: true })
  );
  ada.send({ type: "say", text: "hi", cid: "c1" });
  const frame = await within(raw, "bob's frame", 1000);
  assert.equal(JSON.parse(frame).type, "message");
});

const MAX_BUFFERED = 64 * 1024;

Deno.test("a client that stops reading is closed with 1013 while others keep receiving, then resumes", async () => {
  const violations: LogEvent[] = [];
  let sawSlow: () => void;
  const slowClosed = new Promise<void>((resolve) => sawSlow = resolve);
  await using server = await startServer({
    ...LIFTED,
    maxBufferedBytes: MAX_BUFFERED,
    log(entry) {
      if (entry.event === "violation" && entry.code === 1013) {
        violations.push(entry);
        sawSlow();
      }
    },
  });
  const slow = await RawClient.connect(server.port);
  await slow.send(JSON.stringify({ type: "join", room: "lobby", name: "slow" }));
  const { client: normal, welcome: normals } = await TestClient.join(
    server.wsUrl,
    "lobby",
    "normal",
  );
  await using _normal = normal;
  const { client: writer } = await TestClient.join(server.wsUrl, "lobby", "writer");
  await using _writer = writer;

  // Flood the room until the server gives up on `slow`, in rounds: the next round starts once
  // both reading clients hold the last one. A reader then never has more than one round unsent
  // on the server, which is kept under maxBufferedBytes, so it is never over the limit and
  // cannot be judged slow, however late its event loop runs (it shares this process with the
  // server, on a loaded machine). Only `slow`, which never reads, piles up.
  // The texts stay short: Deno's WebSocket client turns Nagle on and writes a frame of 1 KB or
  // more as two writes, so each round of such frames would stall 40 ms on the delayed ACK.
  const ROUND = 80;
  const text = "x".repeat(500);
  const roundBytes = ROUND * (text.length + 200); // Each message and ack, with room to spare.
  assert.ok(roundBytes < MAX_BUFFERED, "a round fits under maxBufferedBytes");
  // A round's wait is no timing target: it is generous, a refusal ends it at once, and a timeout
  // says which round and who was judged slow so far (CI on Deno 2.5 once saw no ack in 5 s).
  const ROUND_WAIT_MS = 20_000;
  const seen: number[] = [];
  let sent = 0;
  while (violations.length === 0) {
    assert.ok(sent < 20_000, `the server never judged the non-reading client slow (${sent} sent)`);
    for (let i = 0; i < ROUND; i++) writer.send({ type: "say", text, cid: `f${sent++}` });
    const last = `f${sent - 1}`;
    const round = `round ${sent / ROUND} (${sent} sent)`;
    const [, got] = await Promise.all([
      writer.take(
        (m) => (m.type === "ack" && m.cid === last) || m.type === "error",
        `the writer's last ack of ${round}`,
        ROUND_WAIT_MS,
      ).then((m) => assert.equal(m.type, "ack", `a say was refused: ${JSON.stringify(m)}`)),
      normal.take(
        (m) => m.type === "message" && m.cid === last,
        `the reader's last message of ${round}`,
        ROUND_WAIT_MS,
      ) as Promise<ChatMessage>,
    ]).catch((error) => {
      throw new Error(`${error.message}; judged slow by then: ${JSON.stringify(violations)}`);
    });
    seen.push(...normal.drain("message").map((m) => m.id), got.id);
    writer.drain("message"); // Kept small: the writer reads its copies too.
    writer.drain("ack");
  }
  await within(slowClosed, "the slow client to be closed with 1013", 10_000);
  assert.equal(violations.length, 1, "only the client that stopped reading was judged slow");
  assert.equal(violations[0].reason, "too slow");

  // The readers are still connected, and the normal client got every message, in order.
  assert.equal(normal.socket.readyState, WebSocket.OPEN);
  assert.equal(writer.socket.readyState, WebSocket.OPEN);
  assert.deepEqual(seen, Array.from({ length: sent }, (_, i) => i + 1));

  // The slow client now reads: its data, then the 1013 close frame.
  let lastSeen = 0;
  let close: { code: number; reason: string } | undefined;
  while (!close) {
    const frame = await within(slow.next(), "the slow client's frames", 10_000);
    if (frame === null) break;
    if (frame.type === "close") close = frame;
    else {
      const data = JSON.parse(frame.text);
      for (const m of Array.isArray(data) ? data : [data]) {
        if (m.type === "message") lastSeen = (m as ChatMessage).id;
      }
    }
  }
  slow.close();
  assert.deepEqual(close, { type: "close", code: 1013, reason: "too slow" });
  assert.ok(lastSeen < sent, "the slow client really fell behind");

  // It resumes with since and loses nothing.
  const { client: back, welcome } = await TestClient.join(
    server.wsUrl,
    "lobby",
    "slow",
    lastSeen,
    normals.epoch,
  );
  await using _back = back;
  assert.equal(welcome.recovered, true);
  const ids = welcome.history.map((m) => m.id);
  assert.deepEqual(ids, Array.from({ length: sent - lastSeen }, (_, i) => lastSeen + i + 1));
});
