/**
 * The SSE fallback transport (`GET /sse` down, `POST /sse/<id>` up) against a
 * real server on port 0: join, say, receive, resume with Last-Event-ID, the
 * same inbound checks as a WebSocket, slow readers closed with 1013, the
 * connection caps, and shutdown.
 */
import assert from "node:assert/strict";
import type { LogEvent } from "../src/log.ts";
import { ONE_ADDRESS_LIFTED, stalledRequest, startServer, TestClient, within } from "./helpers.ts";
import { SseClient } from "./sse_client.ts";
import { ChatClient } from "../static/chat_client.js";

const LIFTED = { rateBurst: 1_000_000, ratePerSecond: 1_000_000, ...ONE_ADDRESS_LIFTED };

Deno.test("SSE: join from the query, say by POST, and chat with a WebSocket member", async () => {
  await using server = await startServer();
  const { client: ws } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ws = ws;
  const { client: sse, welcome } = await SseClient.join(server.origin, "lobby", "bob");
  await using _sse = sse;
  assert.equal(welcome.name, "bob");
  assert.equal(welcome.room, "lobby");
  assert.deepEqual(welcome.members.map((m) => m.name).sort(), ["ada", "bob"]);
  assert.equal(typeof welcome.token, "string");
  assert.match(sse.connection, /^[A-Za-z0-9_-]{43}$/);
  assert.equal((await ws.next("presence")).member.name, "bob");

  assert.equal(await sse.post({ type: "say", text: "hi from sse", cid: "s1" }), 202);
  assert.deepEqual(await sse.next("ack"), { type: "ack", room: "lobby", cid: "s1", id: 1 });
  const own = await sse.next("message");
  assert.equal(own.text, "hi from sse");
  assert.equal(own.userId, welcome.id);
  assert.equal((await ws.next("message")).text, "hi from sse");

  ws.send({ type: "say", text: "hi from ws", cid: "w1" });
  assert.equal((await sse.next("message")).text, "hi from ws");
  // Chat messages carry their id, then the store's epoch, as the event id.
  const ids = sse.events.filter((e) =>
    e.event === "message" && JSON.parse(e.data).type === "message"
  )
    .map((e) => e.id);
  assert.deepEqual(ids, [`1:${welcome.epoch}`, `2:${welcome.epoch}`]);
  assert.equal(sse.lastEventId, `2:${welcome.epoch}`);

  await sse.post({ type: "typing" });
  assert.equal((await ws.next("typing")).member.name, "bob");
});

Deno.test("SSE: a bare stream joins with a POSTed join frame", async () => {
  await using server = await startServer();
  await using sse = await SseClient.open(server.origin);
  assert.equal(await sse.post({ type: "say", text: "too early", cid: "e1" }), 202);
  assert.equal((await sse.next("error")).code, "not_joined");
  assert.equal(await sse.post({ type: "join", room: "lobby", name: "ada" }), 202);
  const welcome = await sse.next("welcome");
  assert.equal(welcome.name, "ada");
  assert.equal(await sse.post({ type: "join", room: "lobby", name: "ada" }), 202);
  assert.equal((await sse.next("error")).code, "already_joined");
});

Deno.test("SSE: resume with Last-Event-ID (before since), and keep the user with the session token", async () => {
  await using server = await startServer();
  const { client: writer } = await TestClient.join(server.wsUrl, "lobby", "writer");
  await using _writer = writer;
  const { client: first, welcome } = await SseClient.join(server.origin, "lobby", "reader");
  for (let i = 1; i <= 3; i++) writer.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  for (let i = 1; i <= 3; i++) assert.equal((await first.next("message")).id, i);
  assert.equal(first.lastEventId, `3:${welcome.epoch}`);
  await first.close();
  await writer.next("presence", (p) => p.event === "leave");

  for (let i = 4; i <= 5; i++) writer.send({ type: "say", text: `m${i}`, cid: `c${i}` });
  await writer.next("ack", (a) => a.cid === "c5");

  // What EventSource does on reconnect: the same URL (here with since=1), plus Last-Event-ID.
  const { client: again, welcome: resumed } = await SseClient.join(
    server.origin,
    "lobby",
    "reader",
    { since: 1, token: welcome.token },
    { "last-event-id": first.lastEventId },
  );
  await using _again = again;
  assert.equal(resumed.recovered, true);
  assert.deepEqual(resumed.history.map((m) => m.id), [4, 5], "after Last-Event-ID 3, not since 1");
  assert.equal(resumed.id, welcome.id, "the same user");
  // The welcome's event id is its newest message, so a second drop resumes from there.
  assert.equal(again.lastEventId, `5:${welcome.epoch}`);

  // Without Last-Event-ID, since decides.
  const { client: bySince, welcome: fromSince } = await SseClient.join(
    server.origin,
    "lobby",
    "other",
    { since: 3, epoch: welcome.epoch },
  );
  await using _bySince = bySince;
  assert.deepEqual(fromSince.history.map((m) => m.id), [4, 5]);
  // A Last-Event-ID that is not a number is ignored.
  const { client: junk, welcome: fromJunk } = await SseClient.join(
    server.origin,
    "lobby",
    "third",
    { since: 4, epoch: welcome.epoch },
    { "last-event-id": "abc" },
  );
  await using _junk = junk;
  assert.deepEqual(fromJunk.history.map((m) => m.id), [5]);
});

Deno.test("SSE: a second join of the same session replaces the stream with close 4000", async () => {
  await using server = await startServer();
  const { client: first, welcome } = await SseClient.join(server.origin, "lobby", "ada");
  await using _first = first;
  const { client: second } = await SseClient.join(server.origin, "lobby", "ada", {
    token: welcome.token,
  });
  await using _second = second;
  assert.deepEqual(await first.waitClosed(), {
    code: 4000,
    reason: "replaced by a new connection",
  });
  assert.equal(await first.post({ type: "typing" }), 404, "the old connection id is void");
});

Deno.test("SSE: POSTed frames get the WebSocket's checks: JSON, validation, size, rate", async (t) => {
  await using server = await startServer({ maxFrameBytes: 1024 });

  await t.step(
    "bad JSON and invalid frames are error events; the stream stays usable",
    async () => {
      await using sse = (await SseClient.join(server.origin, "lobby", "ada")).client;
      assert.equal(await sse.post("{oops"), 202);
      assert.equal((await sse.next("error")).code, "invalid_json");
      assert.equal(await sse.post({ type: "say", text: "", cid: "x" }), 202);
      const invalid = await sse.next("error");
      assert.equal(invalid.code, "invalid_message");
      assert.equal(invalid.cid, "x");
      assert.equal(await sse.post({ type: "say", text: "still here", cid: "ok" }), 202);
      assert.equal((await sse.next("message")).text, "still here");
    },
  );

  await t.step("a frame over the limit gets 413 and closes the stream with 1009", async () => {
    await using sse = (await SseClient.join(server.origin, "lobby", "big")).client;
    const status = await sse.post({ type: "say", text: "x".repeat(2000), cid: "big" });
    assert.equal(status, 413);
    assert.deepEqual(await sse.waitClosed(), { code: 1009, reason: "frame too large" });
  });

  await t.step("a flood gets rate_limited, then a 1008 close", async () => {
    await using limited = await startServer({
      rateBurst: 3,
      ratePerSecond: 1,
      rateLimitStrikes: 1,
    });
    await using sse = (await SseClient.join(limited.origin, "lobby", "flood")).client;
    // The join from the query took one token of three.
    for (let i = 0; i < 4; i++) await sse.post({ type: "typing" });
    assert.equal((await sse.next("error")).code, "rate_limited");
    assert.deepEqual(await sse.waitClosed(), { code: 1008, reason: "rate limit exceeded" });
  });

  await t.step("unknown connections get 404, other methods 405, a bad query 400", async () => {
    await using sse = await SseClient.open(server.origin);
    assert.equal(await sse.post({ type: "typing" }, "x".repeat(43)), 404);
    assert.equal(await sse.post({ type: "typing" }, "short"), 404);
    const get = await fetch(`${server.origin}/sse/${sse.connection}`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    await get.body?.cancel();
    const post = await fetch(`${server.origin}/sse`, { method: "POST", body: "{}" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    for (
      const query of [
        "room=lobby",
        "name=ada",
        `room=${"x".repeat(40)}&name=ada`,
        "room=lobby&name=ada&since=-1",
        "room=lobby&name=ada&since=x",
        "room=lobby&name=a%E2%80%AEb",
      ]
    ) {
      const response = await fetch(`${server.origin}/sse?${query}`);
      assert.equal(response.status, 400, query);
      assert.match(await response.text(), /^Cannot join room/);
    }
  });
});

Deno.test("SSE: a POST whose body does not arrive within bodyTimeoutMs gets 408; the stream stays", async () => {
  await using server = await startServer({ bodyTimeoutMs: 50 });
  const { client: sse } = await SseClient.join(server.origin, "lobby", "ada");
  await using _sse = sse;
  const answer = await stalledRequest(
    server.port,
    `POST /sse/${sse.connection} HTTP/1.1\r\nHost: 127.0.0.1`,
  );
  assert.match(answer, /^HTTP\/1\.1 408 /);
  assert.match(answer, /\r\nconnection: close\r\n/i);
  assert.equal(await sse.post({ type: "say", text: "in time", cid: "t1" }), 202);
  assert.equal((await sse.next("message")).id, 1, "the stalled frame was never handled");
});

Deno.test("SSE: a reader that stops reading is closed with 1013, others get everything, and it resumes", async () => {
  const MAX_BUFFERED = 256 * 1024;
  const violations: LogEvent[] = [];
  const { promise: slowClosed, resolve: sawSlow } = Promise.withResolvers<void>();
  await using server = await startServer({
    ...LIFTED,
    maxBufferedBytes: MAX_BUFFERED,
    historyLimit: 100_000,
    maxReplayBytes: 64 * 1024 * 1024,
    maxReplayEvents: 100_000,
    log(entry) {
      if (entry.event === "violation" && entry.code === 1013) {
        violations.push(entry);
        sawSlow();
      }
    },
  });
  // Opened, then never read.
  const slow = await SseClient.open(server.origin, { room: "lobby", name: "slow" }, {
    read: false,
  });
  const { client: normal } = await SseClient.join(server.origin, "lobby", "normal");
  await using _normal = normal;
  const { client: writer } = await TestClient.join(server.wsUrl, "lobby", "writer");
  await using _writer = writer;
  await normal.next("presence", (p) => p.member.name === "writer");

  // Flood the room in rounds; the next round starts once the normal reader holds the last one,
  // so it never has more than a round (kept under maxBufferedBytes) unread on the server,
  // however late its event loop runs (it shares this process with the server). Only `slow`
  // piles up. Texts under 1 KB: Deno's WebSocket client writes larger frames in two writes,
  // which would stall each round on the delayed ACK.
  const ROUND = 150;
  const text = "x".repeat(900);
  assert.ok(ROUND * (text.length + 300) < MAX_BUFFERED, "a round fits under maxBufferedBytes");
  const seen: number[] = [];
  let sent = 0;
  while (violations.length === 0) {
    assert.ok(sent < 40_000, `the server never judged the non-reading stream slow (${sent} sent)`);
    for (let i = 0; i < ROUND; i++) writer.send({ type: "say", text, cid: `f${sent++}` });
    const last = `f${sent - 1}`;
    const [, got] = await Promise.all([
      writer.next("ack", (a) => a.cid === last),
      normal.next("message", (m) => m.cid === last),
    ]);
    seen.push(...normal.drain("message").map((m) => m.id), got.id);
    writer.drain("message");
    writer.drain("ack");
  }
  await within(slowClosed, "the slow stream to be closed with 1013", 10_000);
  assert.equal(violations.length, 1, "only the stream that stopped reading was judged slow");
  assert.equal(violations[0].reason, "too slow");
  // The normal reader got every message, in order.
  assert.deepEqual(seen, Array.from({ length: sent }, (_, i) => i + 1));

  // Now it reads: what got out before, then the close event (the backlog was dropped).
  slow.read();
  assert.deepEqual(await slow.waitClosed(), { code: 1013, reason: "too slow" });
  const lastSeen = Number(slow.lastEventId.split(":")[0]);
  assert.ok(lastSeen > 0 && lastSeen < sent, `the slow reader fell behind: ${lastSeen} of ${sent}`);
  await slow.close();

  // It resumes from its last event id and loses nothing.
  const { client: back, welcome } = await SseClient.join(server.origin, "lobby", "slow", {}, {
    "last-event-id": slow.lastEventId,
  });
  await using _back = back;
  assert.equal(welcome.recovered, true);
  assert.deepEqual(
    welcome.history.map((m) => m.id),
    Array.from({ length: sent - lastSeen }, (_, i) => lastSeen + i + 1),
  );
});

Deno.test("SSE: streams count against the connection caps, with WebSockets, and free their slot", async () => {
  const closes: LogEvent[] = [];
  let closed: (() => void) | null = null;
  await using server = await startServer({
    maxConnectionsPerIp: 2,
    log(entry) {
      if (entry.event === "close") {
        closes.push(entry);
        closed?.();
      }
    },
  });
  const ws = await TestClient.connect(server.wsUrl);
  await using _ws = ws;
  const sse = await SseClient.open(server.origin);
  await assert.rejects(() => SseClient.open(server.origin), /answered 429/);
  await assert.rejects(() => TestClient.connect(server.wsUrl));
  const { promise, resolve } = Promise.withResolvers<void>();
  closed = resolve;
  await sse.close();
  await within(promise, "the stream's close to be logged");
  assert.equal(closes[0].transport, "sse");
  await using again = await SseClient.open(server.origin);
  assert.ok(again.connection);
});

Deno.test("SSE: past MAX_CONNECTIONS a stream gets 503; a foreign Origin 403", async () => {
  await using server = await startServer({ maxConnections: 1 });
  await using _one = await SseClient.open(server.origin);
  await assert.rejects(() => SseClient.open(server.origin), /answered 503/);
  await using other = await startServer({ allowedOrigins: ["https://ok.example"] });
  await assert.rejects(
    () => SseClient.open(other.origin, {}, { headers: { origin: "https://evil.example" } }),
    /answered 403/,
  );
  await using _ok = await SseClient.open(other.origin, {}, {
    headers: { origin: "https://ok.example" },
  });
});

Deno.test("SSE: an idle stream gets heartbeat comments", async () => {
  await using server = await startServer({ sseHeartbeatMs: 20 });
  await using sse = await SseClient.open(server.origin);
  await sse.comments(2);
});

Deno.test("SSE: shutdown ends every stream with a close event 1001", async () => {
  const server = await startServer();
  const { client: sse } = await SseClient.join(server.origin, "lobby", "ada");
  const closing = server.close();
  assert.deepEqual(await sse.waitClosed(), { code: 1001, reason: "server is shutting down" });
  await closing;
  await sse.close();
});

// --- The page's client falls back by itself -----------------------------------------------

/** The `detail` of the next `type` event of `client` matching `where`. */
function nextEvent(
  client: EventTarget,
  type: string,
  // deno-lint-ignore no-explicit-any
  where: (detail: any) => boolean = () => true,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  // deno-lint-ignore no-explicit-any
  const { promise, resolve } = Promise.withResolvers<any>();
  const listener = (event: Event) => {
    const detail = (event as CustomEvent).detail;
    if (where(detail)) resolve(detail);
  };
  client.addEventListener(type, listener);
  return within(promise, `a '${type}' event`).finally(() =>
    client.removeEventListener(type, listener)
  );
}

/** A WebSocket that a proxy refuses: it never opens. */
class RefusedSocket extends EventTarget {
  readyState = 0;
  constructor() {
    super();
    queueMicrotask(() => {
      this.readyState = 3;
      this.dispatchEvent(new Event("error"));
      this.dispatchEvent(new CloseEvent("close", { code: 1006 }));
    });
  }
  send() {}
  close() {}
}

/** A WebSocket that a proxy accepts, then drops at once. */
class DroppedSocket extends WebSocket {
  constructor(url: string | URL) {
    super(url);
    this.addEventListener("open", () => this.close(1000, "dropped by a proxy"));
  }
}

for (
  const [what, Blocked] of [["cannot open", RefusedSocket], [
    "drop right after opening",
    DroppedSocket,
  ]] as const
) {
  Deno.test(`client: where WebSockets ${what}, it chats over SSE, then goes back to WebSockets`, async () => {
    await using server = await startServer();
    const { client: ws } = await TestClient.join(server.wsUrl, "lobby", "ws-user");
    await using _ws = ws;
    let blocked = true;
    const Switch = function (url: string | URL) {
      return blocked ? new Blocked(url as string) : new WebSocket(url);
    } as unknown as typeof WebSocket;
    const client = new ChatClient({
      url: server.wsUrl,
      sseUrl: `${server.origin}/sse`,
      WebSocket: Switch,
      room: "lobby",
      name: "ada",
      backoffMs: [10],
      wsRetryMs: 50,
    });
    try {
      const online = nextEvent(client, "status", (s) => s.state === "online");
      client.start();
      assert.equal((await online).transport, "sse");
      assert.equal(client.transport, "sse");

      const sent = nextEvent(client, "sent");
      client.say("over the fallback");
      assert.equal((await ws.next("message")).text, "over the fallback");
      await sent;
      ws.send({ type: "say", text: "to the fallback", cid: "w1" });
      const got = await nextEvent(client, "message", (d) => d.message.text === "to the fallback");
      assert.equal(got.message.id, 2);

      // WebSockets work again: the client finds out by itself and moves back.
      const back = nextEvent(
        client,
        "status",
        (s) => s.state === "online" && s.transport === "websocket",
      );
      blocked = false;
      await back;
      const sentAgain = nextEvent(client, "sent");
      client.say("over a WebSocket again");
      await ws.next("message", (m) => m.text === "over a WebSocket again");
      await sentAgain;
      assert.equal(client.lastId, 3);
    } finally {
      await client.close();
    }
  });
}

Deno.test("client: without sseUrl there is no fallback", async () => {
  await using server = await startServer();
  const client = new ChatClient({
    url: server.wsUrl,
    WebSocket: RefusedSocket as unknown as typeof WebSocket,
    room: "lobby",
    name: "ada",
    backoffMs: [10],
  });
  try {
    const statuses: string[] = [];
    const third = Promise.withResolvers<void>();
    client.addEventListener("status", (event) => {
      const { state, transport } = (event as CustomEvent).detail;
      statuses.push(`${state}/${transport}`);
      if (statuses.filter((s) => s.startsWith("connecting")).length === 3) third.resolve();
    });
    client.start();
    await within(third.promise, "three attempts");
    assert.ok(statuses.every((s) => s.endsWith("/websocket")), statuses.join(", "));
  } finally {
    await client.close();
  }
});
