/**
 * Client errors at the HTTP layer are answered as client errors (4xx), never
 * as a 500 with a stack trace.
 */
import assert from "node:assert/strict";
import { startServer } from "./helpers.ts";

/** Sends one raw HTTP/1.1 request and returns the status line. */
async function rawStatus(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const buffer = new Uint8Array(4096);
    const read = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, read ?? 0)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

function upgradeRequest(headers: Record<string, string>): string {
  const lines = Object.entries({
    host: "127.0.0.1",
    upgrade: "websocket",
    connection: "Upgrade",
    ...headers,
  }).map(([name, value]) => `${name}: ${value}`);
  return `GET /ws HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`;
}

Deno.test("an upgrade without Sec-WebSocket-Key returns 400", async () => {
  await using server = await startServer();
  const status = await rawStatus(server.port, upgradeRequest({ "sec-websocket-version": "13" }));
  assert.match(status, / 400 /);
});

Deno.test("an upgrade with Sec-WebSocket-Version 8 returns 400", async () => {
  await using server = await startServer();
  const request = upgradeRequest({
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "8",
  });
  assert.match(await rawStatus(server.port, request), / 400 /);
});

Deno.test("a 60 KB path returns 414", async () => {
  await using server = await startServer();
  const response = await fetch(`${server.origin}/${"a".repeat(60_000)}`);
  assert.equal(response.status, 414);
  await response.body?.cancel();
});
