/**
 * The server API (`/api/v1/`) against a real server on port 0: posting,
 * reading history, listing rooms, dedupe by `cid`, and every error status
 * (400, 401, 403, 404, 405, 413, 415, 429, 503) with its JSON body.
 */
import assert from "node:assert/strict";
import type { ChatMessage } from "../src/protocol.ts";
import type { HistoryStore, MessageDraft } from "../src/store/history.ts";
import { KvHistory } from "../src/store/kv_history.ts";
import type { LogEvent } from "../src/log.ts";
import { startServer, TestClient, type TestServer } from "./helpers.ts";
import { SseClient } from "./sse_client.ts";

const TOKEN = "test-api-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_AUTH = { ...AUTH, "content-type": "application/json" };

/** Sends a request to the server's API and returns its status, headers and JSON body. */
async function call(
  server: TestServer,
  path: string,
  init: RequestInit = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(`${server.origin}${path}`, init);
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? JSON.parse(text) : null,
  };
}

/** POSTs `body` as JSON to a room's messages with the right token. */
function post(server: TestServer, room: string, body: unknown) {
  return call(server, `/api/v1/rooms/${encodeURIComponent(room)}/messages`, {
    method: "POST",
    headers: JSON_AUTH,
    body: JSON.stringify(body),
  });
}

/** Asserts an API error: its status, code and JSON content type. */
function assertError(
  // deno-lint-ignore no-explicit-any
  result: { status: number; headers: Headers; body: any },
  status: number,
  code: string,
  message?: RegExp,
): void {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.match(result.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(result.body.error.code, code);
  assert.equal(typeof result.body.error.message, "string");
  assert.match(result.body.error.message, /^Cannot /);
  if (message) assert.match(result.body.error.message, message);
}

/** A history store whose every call can be made to fail, as an unreachable store does. */
class FailingHistory implements HistoryStore {
  failing = false;
  #inner: HistoryStore;
  constructor(inner: HistoryStore) {
    this.#inner = inner;
  }
  get limit() {
    return this.#inner.limit;
  }
  #check() {
    if (this.failing) throw new Error("store is down");
  }
  async append(room: string, draft: MessageDraft) {
    this.#check();
    return await this.#inner.append(room, draft);
  }
  async appendMany(room: string, drafts: MessageDraft[]) {
    this.#check();
    return await this.#inner.appendMany(room, drafts);
  }
  async recent(room: string, count: number) {
    this.#check();
    return await this.#inner.recent(room, count);
  }
  async get(room: string, id: number) {
    this.#check();
    return await this.#inner.get(room, id);
  }
  async stored(room: string, userId: string, cid: string) {
    this.#check();
    return await this.#inner.stored(room, userId, cid);
  }
  async after(room: string, since: number, limit?: number) {
    this.#check();
    return await this.#inner.after(room, since, limit);
  }
  async before(room: string, before: number, limit: number) {
    this.#check();
    return await this.#inner.before(room, before, limit);
  }
  async latest(room: string) {
    this.#check();
    return await this.#inner.latest(room);
  }
  async rooms() {
    this.#check();
    return await this.#inner.rooms();
  }
  async deleteRoom(room: string) {
    this.#check();
    return await this.#inner.deleteRoom(room);
  }
}

Deno.test("API: without API_TOKEN the API is off (404, JSON)", async () => {
  await using server = await startServer();
  assertError(await call(server, "/api/v1/rooms", { headers: AUTH }), 404, "not_found", /off/);
});

Deno.test("API: a posted message reaches a WebSocket and an SSE member in order, and is stored", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  const { client: ada } = await TestClient.join(server.wsUrl, "team", "ada");
  await using _ada = ada;
  const { client: bob } = await SseClient.join(server.origin, "team", "bob");
  await using _bob = bob;
  ada.send({ type: "say", text: "from ada", cid: "a1" });
  await ada.next("ack");

  const created = await post(server, "team", {
    text: "deploy done",
    name: "deploy-bot",
    cid: "d1",
  });
  assert.equal(created.status, 201);
  assert.match(created.headers.get("content-type") ?? "", /^application\/json/);
  const message: ChatMessage = created.body;
  assert.equal(message.type, "message");
  assert.equal(message.id, 2);
  assert.equal(message.room, "team");
  assert.equal(message.name, "deploy-bot");
  assert.equal(message.userId, "api:deploy-bot");
  assert.equal(message.text, "deploy done");
  assert.equal(message.cid, "d1");
  assert.equal(typeof message.ts, "number");

  const first = await ada.next("message");
  const second = await ada.next("message");
  assert.deepEqual([first.id, first.text], [1, "from ada"]);
  assert.deepEqual(second, message);
  assert.deepEqual(await bob.next("message"), first);
  assert.deepEqual(await bob.next("message"), message);
  assert.equal(bob.lastEventId, "2");

  const history = await call(server, "/api/v1/rooms/team/messages", { headers: AUTH });
  assert.equal(history.status, 200);
  assert.deepEqual(history.body, { messages: [first, second], complete: true });
});

Deno.test("API: a repeated cid is stored once and answers 201 with the first message", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const one = await post(server, "lobby", { text: "once", name: "bot", cid: "same" });
  const two = await post(server, "lobby", { text: "changed", name: "bot", cid: "same" });
  assert.equal(one.status, 201);
  assert.equal(two.status, 201);
  assert.deepEqual(two.body, one.body);
  // Another sender may use the same cid: dedupe is by sender and cid.
  const other = await post(server, "lobby", { text: "other bot", name: "bot2", cid: "same" });
  assert.equal(other.body.id, 2);
  // The member saw "once" and "other bot", nothing twice.
  assert.deepEqual([(await ada.next("message")).text, (await ada.next("message")).text], [
    "once",
    "other bot",
  ]);
  const { body } = await call(server, "/api/v1/rooms/lobby/messages", { headers: AUTH });
  assert.deepEqual(body.messages.map((m: ChatMessage) => m.text), ["once", "other bot"]);
  // Without a cid, the server makes one: each post is a new message.
  const a = await post(server, "lobby", { text: "no cid", name: "bot" });
  const b = await post(server, "lobby", { text: "no cid", name: "bot" });
  assert.deepEqual([a.status, b.status, a.body.id, b.body.id], [201, 201, 3, 4]);
  assert.notEqual(a.body.cid, b.body.cid);
});

Deno.test("API: names and rooms are normalized like a join's", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  const { client: ada } = await TestClient.join(server.wsUrl, "café", "ada");
  await using _ada = ada;
  // "cafe\u0301" is "café" after NFKC; the name is trimmed.
  const created = await post(server, "cafe\u0301", { text: "hi", name: "  bot  ", cid: "n1" });
  assert.equal(created.status, 201);
  assert.equal(created.body.room, "café");
  assert.equal(created.body.name, "bot");
  assert.equal((await ada.next("message")).text, "hi");
});

Deno.test("API: history pages with since and limit; complete is false past the retention", async () => {
  await using server = await startServer({ apiToken: TOKEN, historyLimit: 5 });
  for (let i = 1; i <= 8; i++) {
    assert.equal(
      (await post(server, "lobby", { text: `m${i}`, name: "bot", cid: `c${i}` })).status,
      201,
    );
  }
  const get = (query: string) =>
    call(server, `/api/v1/rooms/lobby/messages${query}`, { headers: AUTH });
  const ids = (body: { messages: ChatMessage[] }) => body.messages.map((m) => m.id);

  const pruned = await get("");
  assert.deepEqual(ids(pruned.body), [4, 5, 6, 7, 8]);
  assert.equal(pruned.body.complete, false, "messages 1-3 were pruned");

  const resumed = await get("?since=5");
  assert.deepEqual(ids(resumed.body), [6, 7, 8]);
  assert.equal(resumed.body.complete, true);

  const page = await get("?since=3&limit=2");
  assert.deepEqual(ids(page.body), [4, 5]);
  assert.equal(page.body.complete, true);

  const capped = await get("?since=3&limit=1000");
  assert.deepEqual(ids(capped.body), [4, 5, 6, 7, 8], "limit over 100 is capped, not refused");

  assert.deepEqual((await get("?since=8")).body, { messages: [], complete: true });
  assert.deepEqual(
    (await call(server, "/api/v1/rooms/empty/messages", { headers: AUTH })).body,
    { messages: [], complete: true },
  );
});

Deno.test("API: history returns at most 100 messages per request", async () => {
  await using server = await startServer({ apiToken: TOKEN, apiRateBurst: 1000 });
  await Promise.all(
    Array.from(
      { length: 120 },
      (_, i) => post(server, "big", { text: `m${i}`, name: "bot", cid: `c${i}` }),
    ),
  );
  const { body } = await call(server, "/api/v1/rooms/big/messages", { headers: AUTH });
  assert.equal(body.messages.length, 100);
  assert.equal(body.messages[0].id, 1);
  assert.equal(body.messages[99].id, 100);
  const rest = await call(server, "/api/v1/rooms/big/messages?since=100", { headers: AUTH });
  assert.deepEqual(
    rest.body.messages.map((m: ChatMessage) => m.id),
    Array.from({ length: 20 }, (_, i) => 101 + i),
  );
});

Deno.test("API: GET /api/v1/rooms lists the active rooms with member counts", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  assert.deepEqual((await call(server, "/api/v1/rooms", { headers: AUTH })).body, { rooms: [] });
  const { client: a } = await TestClient.join(server.wsUrl, "beta", "ada");
  await using _a = a;
  const { client: b } = await TestClient.join(server.wsUrl, "alpha", "bob");
  await using _b = b;
  const { client: c } = await TestClient.join(server.wsUrl, "beta", "cid");
  await using _c = c;
  const listed = await call(server, "/api/v1/rooms", { headers: AUTH });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body, {
    rooms: [{ name: "alpha", members: 1 }, { name: "beta", members: 2 }],
  });
});

Deno.test("API: 401 without a bearer token, 403 with a wrong one; the token is never logged", async () => {
  const lines: string[] = [];
  await using server = await startServer({
    apiToken: TOKEN,
    log: (entry: LogEvent) => lines.push(JSON.stringify(entry)),
  });
  const none = await call(server, "/api/v1/rooms");
  assertError(none, 401, "auth_required");
  assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="api"');
  assertError(
    await call(server, "/api/v1/rooms", { headers: { authorization: `Basic ${btoa("a:b")}` } }),
    401,
    "auth_required",
  );
  assertError(
    await call(server, "/api/v1/rooms", { headers: { authorization: "Bearer" } }),
    401,
    "auth_required",
  );
  const wrong = `${TOKEN.slice(0, -1)}X`;
  assertError(
    await call(server, "/api/v1/rooms", { headers: { authorization: `Bearer ${wrong}` } }),
    403,
    "auth_invalid",
  );
  assertError(
    await call(server, "/api/v1/rooms", { headers: { authorization: `Bearer ${TOKEN}x` } }),
    403,
    "auth_invalid",
  );
  assertError(
    await call(server, "/api/v1/rooms", { headers: { authorization: "Bearer short" } }),
    403,
    "auth_invalid",
  );
  // Unauthenticated requests learn nothing about routes: 401 even for unknown ones.
  assertError(await call(server, "/api/v1/nothing", { method: "DELETE" }), 401, "auth_required");
  // No message was posted without the token.
  const refused = await call(server, "/api/v1/rooms/lobby/messages", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${wrong}` },
    body: JSON.stringify({ text: "sneaky", name: "x", cid: "s1" }),
  });
  assertError(refused, 403, "auth_invalid");
  const { body } = await call(server, "/api/v1/rooms/lobby/messages", { headers: AUTH });
  assert.deepEqual(body.messages, []);
  // The scheme is case-insensitive.
  assert.equal(
    (await call(server, "/api/v1/rooms", { headers: { authorization: `bearer ${TOKEN}` } })).status,
    200,
  );
  assert.ok(lines.length > 0, "refusals are logged");
  assert.ok(
    lines.every((line) => !line.includes(TOKEN) && !line.includes(wrong)),
    lines.join("\n"),
  );
});

Deno.test("API: guessing tokens is slowed down: 429 after a burst of wrong tokens, the right one still works", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  const statuses: number[] = [];
  for (let i = 0; i < 15; i++) {
    const result = await call(server, "/api/v1/rooms", {
      headers: { authorization: `Bearer guess-${i}-aaaaaaaaaaaaaaaa` },
    });
    statuses.push(result.status);
    if (result.status === 429) {
      assertError(result, 429, "rate_limited");
      assert.ok(Number(result.headers.get("retry-after")) >= 1);
    }
  }
  assert.ok(statuses.includes(403) && statuses.at(-1) === 429, statuses.join(","));
  assert.equal((await call(server, "/api/v1/rooms", { headers: AUTH })).status, 200);
});

Deno.test("API: 404 for unknown routes, 405 with Allow for other methods", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  assertError(await call(server, "/api/v1/nothing", { headers: AUTH }), 404, "not_found");
  assertError(await call(server, "/api/v2/rooms", { headers: AUTH }), 404, "not_found");
  assertError(await call(server, "/api/v1/rooms/lobby", { headers: AUTH }), 404, "not_found");
  assertError(
    await call(server, "/api/v1/rooms/a/b/messages", { headers: AUTH }),
    404,
    "not_found",
  );
  const deleted = await call(server, "/api/v1/rooms/lobby/messages", {
    method: "DELETE",
    headers: AUTH,
  });
  assertError(deleted, 405, "method_not_allowed", /DELETE/);
  assert.equal(deleted.headers.get("allow"), "GET, POST");
  const posted = await call(server, "/api/v1/rooms", {
    method: "POST",
    headers: JSON_AUTH,
    body: "{}",
  });
  assertError(posted, 405, "method_not_allowed");
  assert.equal(posted.headers.get("allow"), "GET");
});

Deno.test("API: 400 for bad JSON and every field the protocol refuses", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  const raw = (body: string) =>
    call(server, "/api/v1/rooms/lobby/messages", { method: "POST", headers: JSON_AUTH, body });
  assertError(await raw("{oops"), 400, "invalid_json", /not valid JSON/);
  assertError(await raw(""), 400, "invalid_json");
  assertError(await raw("[1,2]"), 400, "invalid_message", /object/);
  assertError(await raw("null"), 400, "invalid_message");
  const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]); // "{", invalid UTF-8, "}"
  assertError(
    await call(server, "/api/v1/rooms/lobby/messages", {
      method: "POST",
      headers: JSON_AUTH,
      body: bytes,
    }),
    400,
    "invalid_json",
    /UTF-8/,
  );

  const cases: [unknown, RegExp][] = [
    [
      { text: "", name: "bot", cid: "c" },
      /^Cannot post message: 'text' must be a non-empty string$/,
    ],
    [{ text: "   ", name: "bot", cid: "c" }, /'text'/],
    [{ name: "bot", cid: "c" }, /'text'/],
    [{ text: 42, name: "bot", cid: "c" }, /'text'/],
    [{ text: "x".repeat(2001), name: "bot", cid: "c" }, /longer than 2000/],
    [{ text: "\ud800", name: "bot", cid: "c" }, /lone surrogate/],
    [{ text: "hi", name: "bot", cid: "has space" }, /'cid'/],
    [{ text: "hi", name: "bot", cid: "x".repeat(65) }, /'cid'/],
    [{ text: "hi", name: "bot", cid: 7 }, /'cid'/],
    [{ text: "hi", cid: "c" }, /^Cannot post message: name must be/],
    [{ text: "hi", name: "", cid: "c" }, /name must be/],
    [{ text: "hi", name: "x".repeat(33), cid: "c" }, /name must be/],
    [{ text: "hi", name: "a\u202Eb", cid: "c" }, /invisible/],
  ];
  for (const [body, message] of cases) {
    assertError(await post(server, "lobby", body), 400, "invalid_message", message);
  }
  // Bad rooms in the path.
  assertError(
    await post(server, "x".repeat(33), { text: "hi", name: "bot" }),
    400,
    "invalid_message",
    /room must be/,
  );
  assertError(
    await call(server, "/api/v1/rooms/%E0%A4%A/messages", { headers: AUTH }),
    400,
    "invalid_message",
    /percent-encoding/,
  );
  assertError(
    await call(server, "/api/v1/rooms/%20/messages", { headers: AUTH }),
    400,
    "invalid_message",
  );
  // Bad query parameters.
  for (const query of ["since=-1", "since=abc", "since=1.5", "limit=0", "limit=x", "limit=-3"]) {
    assertError(
      await call(server, `/api/v1/rooms/lobby/messages?${query}`, { headers: AUTH }),
      400,
      "invalid_message",
    );
  }
  const { body } = await call(server, "/api/v1/rooms/lobby/messages", { headers: AUTH });
  assert.deepEqual(body.messages, [], "nothing invalid was stored");
});

Deno.test("API: 415 for a body that is not JSON", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]) {
    assertError(
      await call(server, "/api/v1/rooms/lobby/messages", {
        method: "POST",
        headers: { ...AUTH, "content-type": type },
        body: JSON.stringify({ text: "hi", name: "bot" }),
      }),
      415,
      "unsupported_media_type",
    );
  }
  const response = await fetch(`${server.origin}/api/v1/rooms/lobby/messages`, {
    method: "POST",
    headers: AUTH,
    body: new Blob([JSON.stringify({ text: "hi", name: "bot" })]), // no content type
  });
  assert.equal(response.status, 415);
  await response.body?.cancel();
  const charset = await call(server, "/api/v1/rooms/lobby/messages", {
    method: "POST",
    headers: { ...AUTH, "content-type": "Application/JSON; charset=utf-8" },
    body: JSON.stringify({ text: "hi", name: "bot" }),
  });
  assert.equal(charset.status, 201, "parameters and case do not matter");
});

Deno.test("API: 413 for a body over the limit, declared or streamed", async () => {
  await using server = await startServer({ apiToken: TOKEN, maxFrameBytes: 1024 });
  const big = JSON.stringify({ text: "x".repeat(2000), name: "bot", cid: "big" });
  assertError(
    await call(server, "/api/v1/rooms/lobby/messages", {
      method: "POST",
      headers: JSON_AUTH,
      body: big,
    }),
    413,
    "too_large",
    /1024 bytes/,
  );
  // Without a Content-Length, the server stops reading at the cap.
  const chunk = new TextEncoder().encode("x".repeat(512));
  const streamed = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 4; i++) controller.enqueue(chunk);
      controller.close();
    },
  });
  assertError(
    await call(server, "/api/v1/rooms/lobby/messages", {
      method: "POST",
      headers: JSON_AUTH,
      body: streamed,
    }),
    413,
    "too_large",
  );
  const { body } = await call(server, "/api/v1/rooms/lobby/messages", { headers: AUTH });
  assert.deepEqual(body.messages, []);
});

Deno.test("API: an endless chunked body is answered 413 without being read to its end", async () => {
  await using server = await startServer({ apiToken: TOKEN, maxFrameBytes: 1024 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const encoder = new TextEncoder();
  await conn.write(encoder.encode(
    `POST /api/v1/rooms/lobby/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Authorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\n` +
      "Transfer-Encoding: chunked\r\n\r\n",
  ));
  // Keep sending 4 KiB chunks until the answer comes; never end the body.
  const { promise: answered, resolve } = Promise.withResolvers<string>();
  const reading = (async () => {
    const buffer = new Uint8Array(4096);
    const read = await conn.read(buffer);
    resolve(new TextDecoder().decode(buffer.subarray(0, read ?? 0)));
  })();
  const piece = encoder.encode(`1000\r\n${"x".repeat(4096)}\r\n`);
  let sent = 0;
  let answer: string | undefined;
  answered.then((text) => answer = text);
  while (answer === undefined && sent < 64 * 1024 * 1024) {
    try {
      await conn.write(piece);
    } catch {
      break; // the server closed its end
    }
    sent += 4096;
  }
  const status = (await answered).split("\r\n")[0];
  await reading;
  conn.close();
  assert.match(status, / 413 /);
  assert.ok(sent < 64 * 1024 * 1024, `the server answered after ${sent} bytes`);
});

Deno.test("API: 429 with Retry-After past the token's rate", async () => {
  await using server = await startServer({ apiToken: TOKEN, apiRateBurst: 3, apiRatePerSecond: 1 });
  const statuses: number[] = [];
  let limited;
  for (let i = 0; i < 5; i++) {
    const result = await call(server, "/api/v1/rooms", { headers: AUTH });
    statuses.push(result.status);
    if (result.status === 429) limited = result;
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assertError(limited!, 429, "rate_limited");
  assert.equal(limited!.headers.get("retry-after"), "1");
});

Deno.test("API: 503 with Retry-After while the store is down, then it works again", async () => {
  using kv = await Deno.openKv(":memory:");
  const history = new FailingHistory(new KvHistory(kv));
  await using server = await startServer({ apiToken: TOKEN, history });
  history.failing = true;
  const posted = await post(server, "lobby", { text: "hi", name: "bot", cid: "p1" });
  assertError(posted, 503, "unavailable", /retry/);
  assert.equal(posted.headers.get("retry-after"), "1");
  const read = await call(server, "/api/v1/rooms/lobby/messages", { headers: AUTH });
  assertError(read, 503, "unavailable");
  assert.equal(read.headers.get("retry-after"), "1");
  history.failing = false;
  const retried = await post(server, "lobby", { text: "hi", name: "bot", cid: "p1" });
  assert.equal(retried.status, 201);
  assert.equal(retried.body.id, 1);
});

Deno.test("API: examples/bot.ts posts a message and reads the history", async () => {
  await using server = await startServer({ apiToken: TOKEN });
  const bot = new URL("../examples/bot.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", bot],
    env: { CHAT_URL: server.origin, API_TOKEN: TOKEN, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.match(stdout, /posted message 1/);
  assert.match(stdout, /#1 deploy-bot: Deployed v1\.2\.3/);
});
