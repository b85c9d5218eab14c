import assert from "node:assert/strict";
import { startServer, TestClient } from "./helpers.ts";
import { SseClient } from "./sse_client.ts";

const BAD_INPUTS: [string, unknown, string][] = [
  ["non-JSON", "{not json", "invalid_json"],
  ["an unknown type", { type: "shout" }, "unknown_type"],
  ["a message without a type", { text: "hi" }, "invalid_message"],
  ["a say without text", { type: "say", cid: "c1" }, "invalid_message"],
  [
    "a say with overlong text",
    { type: "say", cid: "c1", text: "x".repeat(2001) },
    "invalid_message",
  ],
  ["a say without cid", { type: "say", text: "hi" }, "invalid_message"],
  [
    "a join with an overlong name",
    { type: "join", room: "lobby", name: "n".repeat(33) },
    "invalid_message",
  ],
  [
    "a join with a control character",
    { type: "join", room: "lobby", name: "a\u0007b" },
    "invalid_message",
  ],
  ["a say before join", { type: "say", text: "hi", cid: "c1" }, "not_joined"],
  ["a binary frame", new Uint8Array([1, 2, 3]), "binary_unsupported"],
];

for (const [what, frame, code] of BAD_INPUTS) {
  Deno.test(`${what} gets a '${code}' error and the connection stays usable`, async () => {
    await using server = await startServer();
    await using client = await TestClient.connect(server.wsUrl);
    client.send(frame);
    const error = await client.next("error");
    assert.equal(error.code, code);
    assert.match(error.message, /^Cannot /);
    client.send({ type: "join", room: "lobby", name: "ada" });
    await client.next("welcome");
    client.send({ type: "say", text: "still here", cid: "ok" });
    assert.equal((await client.next("message")).text, "still here");
  });
}

Deno.test("a frame over 64 KiB closes the socket with 1009", async () => {
  await using server = await startServer();
  const client = await TestClient.connect(server.wsUrl);
  client.send(JSON.stringify({ type: "say", cid: "big", text: "x".repeat(70 * 1024) }));
  const event = await client.waitClosed();
  assert.equal(event.code, 1009);
  assert.equal(event.reason, "frame too large");
});

Deno.test("a flood past the burst gets a warning, then a 1008 close", async () => {
  await using server = await startServer();
  const { client } = await TestClient.join(server.wsUrl, "lobby", "ada");
  for (let i = 0; i < 20; i++) client.send({ type: "say", text: `spam ${i}`, cid: `s${i}` });
  const warning = await client.next("error");
  assert.equal(warning.code, "rate_limited");
  assert.equal(warning.cid, "s19");
  // It says when to try again: about one token's refill at 5 per second.
  assert.ok(warning.retryAfterMs! > 0 && warning.retryAfterMs! <= 200, `${warning.retryAfterMs}`);
  await client.next("ack", (ack) => ack.cid === "s18"); // The join and 19 says fit the burst.
  // Keep sending, one frame per refusal, as a client that ignores the warning would.
  for (let i = 0; client.socket.readyState === WebSocket.OPEN && i < 50; i++) {
    client.send({ type: "say", text: "more", cid: `m${i}` });
    await client.next("error").catch(() => {}); // Rejects once the socket closes.
  }
  const event = await client.waitClosed();
  assert.equal(event.code, 1008);
  assert.equal(event.reason, "rate limit exceeded");
});

Deno.test("a WebSocket from a foreign Origin is refused with 403", async () => {
  await using server = await startServer();
  const response = await fetch(`${server.origin}/ws`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      origin: "https://evil.example",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.equal(response.status, 403);
  await response.body?.cancel();
  await assert.rejects(TestClient.connect(server.wsUrl, { origin: "https://evil.example" }));
});

Deno.test("the server's own origin and ALLOWED_ORIGINS entries may connect", async () => {
  await using server = await startServer({ allowedOrigins: ["https://chat.example"] });
  await using own = await TestClient.connect(server.wsUrl, { origin: server.origin });
  await using listed = await TestClient.connect(server.wsUrl, { origin: "https://chat.example" });
  assert.equal(own.socket.readyState, WebSocket.OPEN);
  assert.equal(listed.socket.readyState, WebSocket.OPEN);
});

Deno.test("one budget per address: reconnecting does not refill it, and event streams share it (N2)", async () => {
  let now = 0; // A still clock: no token comes back until the test moves it.
  await using server = await startServer({
    ratePerAddressBurst: 4,
    ratePerAddressPerSecond: 1,
    clock: () => now,
  });
  // A WebSocket joins and says something (2 tokens), and leaves.
  const { client: first } = await TestClient.join(server.wsUrl, "lobby", "ada");
  first.send({ type: "say", text: "one", cid: "w1" });
  await first.next("ack");
  await first.close();
  // An event stream from the same address: its join and one say take the last 2.
  const { client: sse } = await SseClient.join(server.origin, "lobby", "bob");
  await using _sse = sse;
  assert.equal(await sse.post({ type: "say", text: "two", cid: "s1" }), 202);
  await sse.next("ack");
  assert.equal(await sse.post({ type: "say", text: "three", cid: "s2" }), 202);
  const refused = await sse.next("error");
  assert.equal(refused.code, "rate_limited");
  assert.equal(refused.cid, "s2");
  assert.equal(refused.retryAfterMs, 1000);
  // A new connection finds the bucket as the others left it: its join is refused.
  await using again = await TestClient.connect(server.wsUrl);
  again.send({ type: "join", room: "lobby", name: "ada" });
  const error = await again.next("error");
  assert.equal(error.code, "rate_limited");
  now += 1000;
  again.send({ type: "join", room: "lobby", name: "ada" });
  assert.equal((await again.next("welcome")).name, "ada", "a token came back after a second");
});
