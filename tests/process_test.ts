import assert from "node:assert/strict";
import { TestClient, within } from "./helpers.ts";
import { startProcess } from "./process.ts";

Deno.test("SIGTERM closes every client with 1001 and exits within 2 s", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startProcess({ KV_PATH: `${dir}/chat.kv` });
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");

  const started = performance.now();
  const status = server.stop("SIGTERM");
  for (const client of [ada, bob]) {
    const event = await client.waitClosed();
    assert.equal(event.code, 1001);
    assert.match(event.reason, /shutting down/i);
  }
  assert.equal((await within(status, "the process to exit", 2500)).code, 0);
  assert.ok(performance.now() - started < 2000, "exited within 2 s");
  assert.ok(server.output.some((line) => line.startsWith("SIGTERM: shutting down")));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the server logs connection events but never message bodies", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startProcess({ KV_PATH: `${dir}/chat.kv` });
  const { client } = await TestClient.join(server.wsUrl, "lobby", "ada");
  client.send({ type: "say", text: "secret words", cid: "c1" });
  await client.next("message");
  await client.close();
  await server.waitFor(/^close id=/);
  await server.stop("SIGTERM");
  const log = server.output.join("\n");
  assert.match(log, /open id=/);
  assert.match(log, /join id=\S+ user=\S+ room=lobby/);
  assert.match(log, /close id=/);
  assert.doesNotMatch(log, /secret words/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("LOG_FORMAT=json prints one JSON object per line", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startProcess({ KV_PATH: `${dir}/chat.kv`, LOG_FORMAT: "json" });
  const { client } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await client.close();
  await server.waitFor(/"event":"close"/);
  await server.stop("SIGTERM");
  const events = server.output.filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line)
  );
  assert.deepEqual(events.map((e) => e.event), ["open", "join", "close"]);
  assert.equal(events[1].room, "lobby");
  assert.match(events[0].time, /^\d{4}-\d\d-\d\dT/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno serve main.ts: two clients chat through the default export", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startProcess({ KV_PATH: `${dir}/chat.kv` });
  const page = await fetch(`${server.origin}/`);
  assert.match(await page.text(), /<title>Deno Chat<\/title>/);
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  ada.send({ type: "say", text: "via deno serve", cid: "c1" });
  assert.equal((await bob.next("message")).text, "via deno serve");
  await ada.close();
  await bob.close();
  await server.stop("SIGTERM");
  await Deno.remove(dir, { recursive: true });
});
