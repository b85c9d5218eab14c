import assert from "node:assert/strict";
import { renderMetrics } from "../src/http/metrics.ts";
import { startServer, TestClient } from "./helpers.ts";

/** Reads one sample's value from Prometheus text. */
function valueOf(text: string, sample: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
  assert.ok(line, `${sample} is in the metrics`);
  return Number(line.split(" ")[1]);
}

async function scrape(origin: string, token?: string): Promise<string> {
  const response = await fetch(`${origin}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type")!, /^text\/plain; version=0.0.4/);
  return await response.text();
}

Deno.test("renderMetrics writes HELP, TYPE and escaped labels", () => {
  assert.equal(
    renderMetrics([{
      name: "x_total",
      help: "Things",
      type: "counter",
      samples: [{ labels: { code: 'a"b' }, value: 2 }],
    }]),
    '# HELP x_total Things\n# TYPE x_total counter\nx_total{code="a\\"b"} 2\n',
  );
});

Deno.test("GET /metrics is 404 unless metrics are on", async () => {
  await using server = await startServer();
  const response = await fetch(`${server.origin}/metrics`);
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("with METRICS_TOKEN, /metrics needs the bearer token", async () => {
  await using server = await startServer({ metrics: { enabled: true, token: "s3cret" } });
  const response = await fetch(`${server.origin}/metrics`);
  assert.equal(response.status, 401);
  await response.body?.cancel();
  assert.match(await scrape(server.origin, "s3cret"), /chat_connections/);
});

Deno.test("metrics move as clients chat", async () => {
  await using server = await startServer({ metrics: { enabled: true } });
  const before = await scrape(server.origin);
  assert.equal(valueOf(before, "chat_connections"), 0);
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  await using _ada = ada;
  const { client: bob } = await TestClient.join(server.wsUrl, "lobby", "bob");
  await using _bob = bob;
  ada.send({ type: "say", text: "one", cid: "c1" });
  ada.send({ type: "shout" });
  await ada.next("error");
  await bob.next("message");
  const after = await scrape(server.origin);
  assert.equal(valueOf(after, "chat_connections"), 2);
  assert.equal(valueOf(after, "chat_rooms"), 1);
  assert.equal(valueOf(after, "chat_members"), 2);
  assert.equal(valueOf(after, "chat_messages_stored_total"), 1);
  assert.equal(valueOf(after, "chat_history_messages"), 1);
  assert.equal(valueOf(after, 'chat_errors_total{code="unknown_type"}'), 1);
  assert.ok(valueOf(after, "chat_frames_received_total") >= 4);
  assert.ok(valueOf(after, "chat_events_sent_total") > valueOf(before, "chat_events_sent_total"));
});
