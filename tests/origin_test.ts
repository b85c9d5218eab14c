/**
 * The browser policy against DNS rebinding and other sites' pages: a page's
 * own origin passes only when its host is an IP address or a `localhost`
 * name, with the request's scheme; any other host name must be configured
 * (`PUBLIC_ORIGIN`, `ALLOWED_ORIGINS`). Requests a browser sent
 * (`Sec-Fetch-*`) must name an allowed Host, come from the same origin (or a
 * listed one), and open event streams as `EventSource` does; on `/ws`,
 * `GET /sse` and `POST /sse/<id>` alike. Requests without these headers pass.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";
import { startServer, TestClient, type TestServer } from "./helpers.ts";
import { startProcess } from "./process.ts";
import { SseClient } from "./sse_client.ts";

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

// --- The browser policy on every route a page can reach: /ws, GET /sse, POST /sse/<id> -------

/**
 * What Chromium 156 sends when another site's page loads a URL of this
 * server with each tag (measured: a page on `localhost` loading
 * `http://127.0.0.1:PORT/sse?…`; browsers send `Sec-Fetch-*` to HTTPS and
 * loopback servers). None of them carries an `Origin`.
 */
const TAGS: Record<string, { mode: string; dest: string }> = {
  img: { mode: "no-cors", dest: "image" },
  iframe: { mode: "navigate", dest: "iframe" },
  video: { mode: "no-cors", dest: "video" },
  audio: { mode: "no-cors", dest: "audio" },
  script: { mode: "no-cors", dest: "script" },
  "link rel=stylesheet": { mode: "no-cors", dest: "style" },
  object: { mode: "navigate", dest: "object" },
  embed: { mode: "navigate", dest: "embed" },
  track: { mode: "no-cors", dest: "track" },
};

/** The headers of `tag` loaded by a page of another site (`site`), as Chromium sends them. */
function tagHeaders(tag: string, site = "cross-site"): Record<string, string> {
  const { mode, dest } = TAGS[tag];
  return { "sec-fetch-site": site, "sec-fetch-mode": mode, "sec-fetch-dest": dest };
}

/** What a DNS-rebinding page's `EventSource` sends: the attacker's Host, no Origin. */
function rebindingHeaders(port: number): Record<string, string> {
  return {
    host: `evil.example:${port}`,
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "cors",
    "sec-fetch-dest": "empty",
  };
}

const UPGRADE = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};

/**
 * The status of a request sent as it is over a raw connection (`host`
 * defaults to 127.0.0.1:PORT), read from the response head; the connection
 * is closed after it (ending an event stream that opened).
 */
async function rawStatus(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const all: Record<string, string> = { host: `127.0.0.1:${port}`, ...headers };
    if (body) all["content-length"] = String(new TextEncoder().encode(body).byteLength);
    const lines = Object.entries(all).map(([name, value]) => `${name}: ${value}\r\n`).join("");
    await conn.write(new TextEncoder().encode(`${method} ${path} HTTP/1.1\r\n${lines}\r\n${body}`));
    let head = "";
    const buffer = new Uint8Array(1024);
    while (!head.includes("\r\n")) {
      const read = await conn.read(buffer);
      if (read === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, read));
    }
    return Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0);
  } finally {
    conn.close();
  }
}

/**
 * A room with a member on each transport: `ada` (a WebSocket) watches for
 * joins, `bob` (an event stream) lends his connection id to forged POSTs.
 * `noJoinNorMessage()` proves that nothing the refused requests did reached
 * the room: a marker joins and says something, and before the marker's
 * presence ada saw nobody come or go, and the marker's message is the room's
 * first.
 */
async function watchedRoom(server: TestServer) {
  const { client: ada } = await TestClient.join(server.wsUrl, "lobby", "ada");
  const { client: bob } = await SseClient.join(server.origin, "lobby", "bob");
  await ada.next("presence", (p) => p.member.name === "bob");
  return {
    ada,
    bob,
    async noJoinNorMessage() {
      const { client: marker } = await TestClient.join(server.wsUrl, "lobby", "marker");
      await using _marker = marker;
      await ada.next("presence", (p) => p.member.name === "marker");
      assert.deepEqual(ada.drain("presence"), [], "no one else joined or left the room");
      marker.send({ type: "say", text: "marker", cid: "m1" });
      assert.deepEqual(
        await marker.next("ack"),
        { type: "ack", room: "lobby", cid: "m1", id: 1 },
        "no message",
      );
    },
    async [Symbol.asyncDispose]() {
      await ada.close();
      await bob.close();
    },
  };
}

Deno.test("other sites' tags cannot open an event stream, a WebSocket or post: no join, no message (N11)", async () => {
  await using server = await startServer();
  const p = server.port;
  await using room = await watchedRoom(server);
  const post = `/sse/${room.bob.connection}`;
  const join = JSON.stringify({ type: "join", room: "lobby", name: "victim" });
  const say = JSON.stringify({ type: "say", text: "forged", cid: "f1" });
  for (const tag of Object.keys(TAGS)) {
    const headers = tagHeaders(tag);
    assert.equal(await rawStatus(p, "GET", "/sse?room=lobby&name=victim", headers), 403, tag);
    assert.equal(await rawStatus(p, "GET", "/ws", { ...headers, ...UPGRADE }), 403, `${tag}: /ws`);
    assert.equal(await rawStatus(p, "POST", post, headers, say), 403, `${tag}: POST`);
    // On a page of the server's own origin too, a tag is no event stream.
    const own = tagHeaders(tag, "same-origin");
    assert.equal(await rawStatus(p, "GET", "/sse?room=lobby&name=victim", own), 403, tag);
  }
  // A cross-site form POST, and a cross-site fetch that names its (foreign) origin.
  const form = { ...tagHeaders("iframe"), origin: "https://evil.example" };
  assert.equal(await rawStatus(p, "POST", post, form, say), 403);
  const cors = {
    origin: "https://evil.example",
    "sec-fetch-site": "cross-site",
    "sec-fetch-mode": "cors",
    "sec-fetch-dest": "empty",
  };
  assert.equal(await rawStatus(p, "GET", "/sse?room=lobby&name=victim", cors), 403);
  assert.equal(await rawStatus(p, "POST", post, cors, join), 403);
  await room.noJoinNorMessage();
});

Deno.test("a DNS-rebinding page can neither read nor post over SSE, nor open a WebSocket (N4)", async () => {
  await using server = await startServer();
  const p = server.port;
  await using room = await watchedRoom(server);
  const rebinding = rebindingHeaders(p);
  const foreign = { ...rebinding, origin: `http://evil.example:${p}` };
  const post = `/sse/${room.bob.connection}`;
  const say = JSON.stringify({ type: "say", text: "forged", cid: "f1" });
  assert.equal(await rawStatus(p, "GET", "/sse?room=lobby&name=victim", rebinding), 403, "read");
  assert.equal(await rawStatus(p, "GET", "/sse", rebinding), 403, "a bare stream");
  assert.equal(await rawStatus(p, "POST", post, foreign, say), 403, "post");
  assert.equal(await rawStatus(p, "GET", "/ws", { ...rebinding, ...UPGRADE }), 403, "no Origin");
  assert.equal(await rawStatus(p, "GET", "/ws", { ...foreign, ...UPGRADE }), 403, "its Origin");
  // A foreign Origin alone (no Sec-Fetch-*, as a plain-HTTP page sends it) is refused too.
  const origin = { origin: "https://evil.example" };
  assert.equal(await rawStatus(p, "POST", post, origin, say), 403, "POST with a foreign Origin");
  await room.noJoinNorMessage();
});

Deno.test("over plain HTTP a rebinding page sends no Origin and no Sec-Fetch-*: its query join is refused by Host alone", async () => {
  await using server = await startServer();
  const p = server.port;
  await using room = await watchedRoom(server);
  // What Chromium 156 sent from http://evil.example:PORT, rebound to this server.
  const plain = { host: `evil.example:${p}`, accept: "text/event-stream" };
  assert.equal(await rawStatus(p, "GET", "/sse?room=lobby&name=victim", plain), 403, "no join");
  assert.notEqual(await rawStatus(p, "GET", "/sse?name=victim", plain), 200);
  // A bare stream joins nothing: a bot on another host name posts its join instead.
  assert.equal(await rawStatus(p, "GET", "/sse", plain), 200);
  const own = { host: `127.0.0.1:${p}`, accept: "text/event-stream" };
  assert.equal(await rawStatus(p, "GET", "/sse?room=elsewhere&name=tool", own), 200);
  await room.noJoinNorMessage();
});

Deno.test("the browser policy lets the page, listed sites, proxies and non-browsers through", async (t) => {
  await using server = await startServer({
    publicOrigins: ["https://chat.example.com"],
    allowedOrigins: ["https://other.example"],
  });
  const p = server.port;
  await using room = await watchedRoom(server);
  const post = `/sse/${room.bob.connection}`;
  const typing = JSON.stringify({ type: "typing" });
  // What Chromium sends for the page's own EventSource and fetch (measured on 127.0.0.1).
  const stream = {
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "cors",
    "sec-fetch-dest": "empty",
  };
  await t.step("the page on an IP address or localhost", async () => {
    for (const host of [`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`]) {
      assert.equal(await rawStatus(p, "GET", "/sse", { ...stream, host }), 200, host);
      const own = { ...stream, host, origin: `http://${host}` };
      assert.equal(await rawStatus(p, "POST", post, own, typing), 202, host);
      assert.equal(
        await rawStatus(p, "GET", "/ws", { host, origin: `http://${host}`, ...UPGRADE }),
        101,
      );
    }
  });
  await t.step("behind a TLS proxy that passes Host on, or sets it to an address", async () => {
    for (const host of ["chat.example.com", `127.0.0.1:${p}`]) {
      assert.equal(await rawStatus(p, "GET", "/sse", { ...stream, host }), 200, host);
      const page = { ...stream, host, origin: "https://chat.example.com" };
      assert.equal(await rawStatus(p, "POST", post, page, typing), 202, host);
      const ws = { host, origin: "https://chat.example.com", ...UPGRADE };
      assert.equal(await rawStatus(p, "GET", "/ws", ws), 101, host);
    }
  });
  await t.step("a listed site's page, cross-site", async () => {
    const other = { ...stream, "sec-fetch-site": "cross-site", origin: "https://other.example" };
    assert.equal(await rawStatus(p, "GET", "/sse", other), 200);
    assert.equal(await rawStatus(p, "POST", post, other, typing), 202);
    assert.equal(await rawStatus(p, "GET", "/ws", { ...other, ...UPGRADE }), 101);
  });
  await t.step("terminal tools and bots, whatever their Host", async () => {
    const curl = { host: "evil.example", accept: "*/*", "user-agent": "curl/8.5.0" };
    assert.equal(await rawStatus(p, "GET", "/sse", curl), 200);
    assert.equal(await rawStatus(p, "POST", post, curl, typing), 202);
    assert.equal(await rawStatus(p, "GET", "/ws", { ...curl, ...UPGRADE }), 101);
  });
});
