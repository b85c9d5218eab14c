/**
 * The `Origin` check against DNS rebinding: a page's own origin passes only
 * when its host is an IP address or a `localhost` name, with the request's
 * scheme; any other host name must be configured (`PUBLIC_ORIGIN`,
 * `ALLOWED_ORIGINS`). Requests without `Origin` pass.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";
import { startServer } from "./helpers.ts";
import { startProcess } from "./process.ts";

/** The status of an upgrade request with these `Host` and `Origin` headers, sent as they are. */
async function upgradeStatus(port: number, host: string, origin?: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(
      `GET /ws HTTP/1.1\r\nHost: ${host}\r\n${
        origin === undefined ? "" : `Origin: ${origin}\r\n`
      }` +
        "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    const buffer = new Uint8Array(256);
    const read = await conn.read(buffer);
    const head = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
    return Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0);
  } finally {
    conn.close();
  }
}

Deno.test("DNS rebinding: a foreign Host with its own Origin is refused with 403", async () => {
  await using server = await startServer();
  const p = server.port;
  assert.equal(await upgradeStatus(p, `evil.example:${p}`, `http://evil.example:${p}`), 403);
  assert.equal(await upgradeStatus(p, `evil.example`, `http://evil.example`), 403);
  assert.equal(
    await upgradeStatus(p, `localhost.evil.example:${p}`, `http://localhost.evil.example:${p}`),
    403,
  );
  assert.equal(
    await upgradeStatus(p, `evil.example:${p}`),
    101,
    "no Origin: not a browser, allowed",
  );
});

Deno.test("IP literals and localhost names are the server's own, with the same scheme and port", async () => {
  await using server = await startServer();
  const p = server.port;
  for (
    const host of [
      `127.0.0.1:${p}`,
      `localhost:${p}`,
      `chat.localhost:${p}`,
      `[::1]:${p}`,
      `10.1.2.3:${p}`,
    ]
  ) {
    assert.equal(await upgradeStatus(p, host, `http://${host}`), 101, host);
    assert.equal(await upgradeStatus(p, host, `https://${host}`), 403, `${host}: another scheme`);
  }
  assert.equal(await upgradeStatus(p, `127.0.0.1:${p}`, `http://127.0.0.1:1`), 403, "another port");
  assert.equal(
    await upgradeStatus(p, `127.0.0.1:${p}`, `http://localhost:${p}`),
    403,
    "another host",
  );
  assert.equal(await upgradeStatus(p, `127.0.0.1:${p}`, "null"), 403, "an opaque origin");
  assert.equal(await upgradeStatus(p, `127.0.0.1:${p}`, "not a url"), 403);
});

Deno.test("PUBLIC_ORIGIN: the named origin passes, behind a TLS proxy too; its host with another scheme does not", async () => {
  await using server = await startServer({ publicOrigins: ["https://chat.example.com"] });
  const p = server.port;
  assert.equal(await upgradeStatus(p, "chat.example.com", "https://chat.example.com"), 101);
  assert.equal(await upgradeStatus(p, "chat.example.com", "http://chat.example.com"), 403);
  assert.equal(await upgradeStatus(p, "chat.example.com", "https://evil.example"), 403);
  assert.equal(await upgradeStatus(p, "evil.example", "http://evil.example"), 403);
});

Deno.test("loadConfig: PUBLIC_ORIGIN is a list of origins; on Deno Deploy the app's URLs are added", () => {
  assert.equal(loadConfig({}).publicOrigins, undefined);
  assert.deepEqual(
    loadConfig({ PUBLIC_ORIGIN: " https://Chat.Example.com/ , http://10.0.0.5:8000" })
      .publicOrigins,
    ["https://chat.example.com", "http://10.0.0.5:8000"],
  );
  for (
    const bad of [
      "chat.example.com",
      "https://chat.example.com/path",
      "ftp://x.example",
      "https://u@x.example",
    ]
  ) {
    assert.throws(() => loadConfig({ PUBLIC_ORIGIN: bad }), {
      name: "TypeError",
      message:
        `Cannot read PUBLIC_ORIGIN: '${bad}' is not an origin such as https://chat.example.com`,
    });
  }
  const deploy = {
    DENO_DEPLOYMENT_ID: "d1",
    DENO_DEPLOY_APP_SLUG: "chat",
    DENO_DEPLOY_ORG_SLUG: "acme",
    DENO_DEPLOY_BUILD_ID: "b42",
  };
  assert.deepEqual(loadConfig(deploy).publicOrigins, [
    "https://chat.acme.deno.net",
    "https://chat-b42.acme.deno.net",
  ]);
  assert.deepEqual(
    loadConfig({ ...deploy, PUBLIC_ORIGIN: "https://chat.example.com" }).publicOrigins,
    [
      "https://chat.example.com",
      "https://chat.acme.deno.net",
      "https://chat-b42.acme.deno.net",
    ],
  );
});

Deno.test("deno serve main.ts reads PUBLIC_ORIGIN", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = await startProcess({
      KV_PATH: `${dir}/chat.kv`,
      PUBLIC_ORIGIN: "https://chat.example.com",
    });
    const p = server.port;
    assert.equal(await upgradeStatus(p, "chat.example.com", "https://chat.example.com"), 101);
    assert.equal(await upgradeStatus(p, `evil.example:${p}`, `http://evil.example:${p}`), 403);
    await server.waitFor(/^refused .*status=403 reason="origin not allowed" origin=/);
    await server.stop("SIGTERM");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
