import assert from "node:assert/strict";
import { KvHistory } from "../src/store/kv_history.ts";
import { createChat } from "../main.ts";

/** Calls the handler in-process, with no network. */
async function request(path: string, init?: RequestInit): Promise<Response> {
  using kv = await Deno.openKv(":memory:");
  const chat = createChat({ history: new KvHistory(kv), log: () => {} });
  try {
    return await chat.fetch(new Request(`http://localhost${path}`, init));
  } finally {
    await chat.shutdown();
  }
}

async function bodyOf(response: Response): Promise<string> {
  return await response.text();
}

Deno.test("GET / serves the chat page with security headers", async () => {
  const response = await request("/");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
  const csp = response.headers.get("content-security-policy")!;
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  assert.equal(response.headers.get("referrer-policy"), "no-referrer");
  assert.match(await bodyOf(response), /<script type="module" src="\/app.js"><\/script>/);
});

Deno.test("scripts and styles are served with their content types", async () => {
  const js = await request("/app.js");
  assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  await js.body?.cancel();
  const css = await request("/style.css");
  assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
  await css.body?.cancel();
});

Deno.test("a matching If-None-Match gets 304 without a body", async () => {
  const first = await request("/app.js");
  const etag = first.headers.get("etag")!;
  await first.body?.cancel();
  assert.match(etag, /^"[0-9a-f]+"$/);
  const second = await request("/app.js", { headers: { "if-none-match": etag } });
  assert.equal(second.status, 304);
  assert.equal(second.body, null);
});

Deno.test("HEAD gets the headers and no body", async () => {
  const response = await request("/", { method: "HEAD" });
  assert.equal(response.status, 200);
  assert.ok(Number(response.headers.get("content-length")) > 0);
  assert.equal(response.body, null);
});

Deno.test("POST to a page returns 405 with Allow", async () => {
  const response = await request("/", { method: "POST", body: "x" });
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "GET, HEAD");
  await response.body?.cancel();
});

Deno.test("unknown paths return 404", async () => {
  const response = await request("/nope.html");
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("no path escapes static/: dot segments, encodings and absolute paths return 404", async () => {
  const attempts = [
    "/../main.ts",
    "/%2e%2e/main.ts",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/..%2fmain.ts",
    "/..%2F..%2Fetc%2Fpasswd",
    "/%2e%2e%5cmain.ts",
    "//etc/passwd",
    "/%2Fetc%2Fpasswd",
    "/static/../../main.ts",
    "/.hidden",
    "/app.js%00.html",
    "/%E0%A4%A",
  ];
  for (const path of attempts) {
    const response = await request(path);
    const body = await bodyOf(response);
    assert.equal(response.status, 404, `${path} -> ${response.status}`);
    assert.doesNotMatch(body, /createChat|root:/, path);
  }
});

Deno.test("GET /ws without upgrade returns 400", async () => {
  const response = await request("/ws");
  assert.equal(response.status, 400);
  assert.equal(await bodyOf(response), "Expected a WebSocket upgrade request");
});

Deno.test("GET /healthz answers JSON with ok, connections and uptime", async () => {
  const response = await request("/healthz");
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.ok, true);
  assert.equal(body.connections, 0);
  assert.equal(typeof body.uptimeSeconds, "number");
});
