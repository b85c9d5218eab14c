/**
 * Uploads and file serving over HTTP against a real server on port 0:
 * types from the bytes (415 for a false claim), what is served inline and
 * what as an attachment, EXIF stripped from a JPEG with GPS, 413 before the
 * body and while it streams, 408, quotas per user and room, the browser
 * policy, and who may read a file before and after it is posted.
 */
import assert from "node:assert/strict";
import ExifReader from "exifreader";
import { SessionSigner } from "../src/auth/session.ts";
import { KvFiles } from "../src/store/kv_files.ts";
import { KvUsage } from "../src/store/kv_usage.ts";
import type { FileStore } from "../src/store/files.ts";
import type { ChatOptions } from "../main.ts";
import { startServer, type TestServer, within } from "./helpers.ts";
import { gif, jpegPixels, jpegWithGps, png, webp } from "./images.ts";

const SECRET = "uploads-test-secret";
const API_TOKEN = "uploads-test-api-token-0123456789";
const signer = await SessionSigner.create(SECRET);
const ada = await signer.issue();
const bob = await signer.issue();
const eve = await signer.issue();

interface Setup extends AsyncDisposable {
  server: TestServer;
  /** Another handle on the server's file store, as the hub would attach through. */
  files: FileStore;
}

/** A server whose files live in their own in-memory KV. */
async function setup(options: Partial<ChatOptions> = {}): Promise<Setup> {
  const kv = await Deno.openKv(":memory:");
  const files = new KvFiles(kv);
  const server = await startServer({
    files,
    usage: new KvUsage(kv),
    sessionSecret: SECRET,
    apiToken: API_TOKEN,
    // eve may not read the room "secret".
    canRead: (userId, room) => !(room === "secret" && userId === eve.id),
    ...options,
  });
  return {
    server,
    files,
    async [Symbol.asyncDispose]() {
      await server.close();
      kv.close();
    },
  };
}

interface Sent {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Uploads `bytes` as `name` (and part type `type`) for `room`, as `token`'s user. */
async function upload(
  server: TestServer,
  token: string | null,
  bytes: Uint8Array<ArrayBuffer> | string,
  name: string,
  { room = "lobby", type = "", headers = {} }: {
    room?: string;
    type?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Sent> {
  const form = new FormData();
  form.append("comment", "a field before the file");
  form.append("file", new File([bytes], name, { type }));
  const response = await fetch(`${server.origin}/api/v1/uploads?room=${encodeURIComponent(room)}`, {
    method: "POST",
    body: form,
    headers: { ...(token ? { "x-chat-session": token } : {}), ...headers },
  });
  const text = await response.text();
  const json = response.headers.get("content-type")?.startsWith("application/json");
  return {
    status: response.status,
    headers: response.headers,
    body: json ? JSON.parse(text) : text,
  };
}

/** GETs a file's URL as `token`'s user. */
async function read(server: TestServer, url: string, token: string | null, init: RequestInit = {}) {
  const response = await fetch(`${server.origin}${url}`, {
    ...init,
    headers: { ...(token ? { "x-chat-session": token } : {}), ...init.headers },
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, bytes };
}

function assertError(sent: Sent, status: number, code: string, message?: RegExp): void {
  assert.equal(sent.status, status, JSON.stringify(sent.body));
  assert.equal(sent.body.error.code, code);
  assert.match(sent.body.error.message, /^Cannot /);
  if (message) assert.match(sent.body.error.message, message);
}

/** Sends a raw request head (and `body`, then nothing more); resolves with the response head. */
async function rawRequest(port: number, head: string, body = ""): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`${head}\r\n\r\n${body}`));
    const reading = (async () => {
      const buffer = new Uint8Array(4096);
      let text = "";
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      return text;
    })();
    return await within(reading, "an answer before the body was sent");
  } finally {
    conn.close();
  }
}

Deno.test("a PNG is stored, typed from its bytes, sized, and served inline to its uploader", async () => {
  await using s = await setup();
  const bytes = await png(33, 21);
  // The part says octet-stream and the name has no extension: the bytes decide.
  const sent = await upload(s.server, ada.token, bytes, "screenshot", {
    type: "application/octet-stream",
  });
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  assert.deepEqual(Object.keys(sent.body).sort(), [
    "height",
    "id",
    "name",
    "size",
    "type",
    "url",
    "width",
  ]);
  assert.equal(sent.body.type, "image/png");
  assert.equal(sent.body.size, bytes.length);
  assert.deepEqual([sent.body.width, sent.body.height], [33, 21]);
  assert.equal(sent.body.url, `/files/${sent.body.id}/screenshot`);

  const got = await read(s.server, sent.body.url, ada.token);
  assert.equal(got.status, 200);
  assert.deepEqual(got.bytes, bytes);
  assert.equal(got.headers.get("content-type"), "image/png");
  assert.match(got.headers.get("content-disposition")!, /^inline; filename="screenshot"/);
  assert.equal(got.headers.get("x-content-type-options"), "nosniff");
  assert.match(got.headers.get("content-security-policy")!, /default-src 'self'.*; sandbox$/);
  assert.equal(got.headers.get("cross-origin-resource-policy"), "same-origin");
  assert.equal(got.headers.get("content-length"), String(bytes.length));

  const head = await read(s.server, sent.body.url, ada.token, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.bytes.length, 0);
  const etag = got.headers.get("etag")!;
  const again = await read(s.server, sent.body.url, ada.token, {
    headers: { "if-none-match": etag },
  });
  assert.equal(again.status, 304);
  // The name in the URL is only for people: the id finds the file.
  assert.equal((await read(s.server, `/files/${sent.body.id}/other.png`, ada.token)).status, 200);
});

Deno.test("GIF and WebP are inline too, with their sizes", async () => {
  await using s = await setup();
  for (
    const [bytes, name, type, size] of [
      [gif(300, 200), "anim.gif", "image/gif", [300, 200]],
      [webp(640, 480), "photo.webp", "image/webp", [640, 480]],
    ] as const
  ) {
    const sent = await upload(s.server, ada.token, bytes, name, { type });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    assert.equal(sent.body.type, type);
    assert.deepEqual([sent.body.width, sent.body.height], size);
    const got = await read(s.server, sent.body.url, ada.token);
    assert.match(got.headers.get("content-disposition")!, /^inline;/);
  }
});

Deno.test("a JPEG loses its GPS, EXIF, XMP and IPTC on the way in; its size is as displayed", async () => {
  await using s = await setup();
  const photo = jpegWithGps(64, 48, 6);
  const sent = await upload(s.server, ada.token, photo, "IMG_0001.JPG", { type: "image/jpeg" });
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  assert.equal(sent.body.type, "image/jpeg");
  assert.deepEqual([sent.body.width, sent.body.height], [48, 64], "orientation 6: turned");
  const got = await read(s.server, sent.body.url, ada.token);
  assert.equal(got.bytes.length, sent.body.size);
  assert.ok(got.bytes.length < photo.length);
  const found = ExifReader.load(got.bytes.slice().buffer, { expanded: true });
  assert.equal(found.gps, undefined);
  assert.equal(found.xmp, undefined);
  assert.equal(found.iptc, undefined);
  assert.deepEqual(Object.keys(found.exif ?? {}), ["Orientation"]);
  assert.deepEqual(jpegPixels(got.bytes).data, jpegPixels(photo).data, "the same pixels");
  assert.match(got.headers.get("content-disposition")!, /^inline;/);
});

Deno.test("SVG, HTML and everything else are served as attachments, never inline", async () => {
  await using s = await setup();
  const cases = [
    [
      "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
      "x.svg",
      "image/svg+xml",
    ],
    ["<!doctype html><script>alert(document.cookie)</script>", "x.html", "text/html"],
    ["<html><body>no extension</body></html>", "page", "text/html"],
    ["plain words", "notes.txt", "text/plain"],
    ["%PDF-1.4\n1 0 obj<<>>endobj\n", "doc.pdf", "application/pdf"],
  ] as const;
  for (const [text, name, type] of cases) {
    const sent = await upload(s.server, ada.token, text, name, { type: "" });
    assert.equal(sent.status, 201, `${name}: ${JSON.stringify(sent.body)}`);
    assert.equal(sent.body.type, type, name);
    assert.equal(sent.body.width, undefined);
    const got = await read(s.server, sent.body.url, ada.token);
    assert.equal(got.status, 200);
    assert.match(got.headers.get("content-disposition")!, /^attachment; filename=/, name);
    assert.equal(got.headers.get("x-content-type-options"), "nosniff");
    assert.match(got.headers.get("content-security-policy")!, /sandbox/);
    assert.equal(new TextDecoder().decode(got.bytes), text);
  }
  // A name with a path, a reserved character and non-ASCII comes back safe in the header.
  const sent = await upload(s.server, ada.token, "x", "../dir/:ünï:.txt");
  assert.equal(sent.body.name, "_ünï_.txt");
  const got = await read(s.server, sent.body.url, ada.token);
  assert.equal(
    got.headers.get("content-disposition"),
    `attachment; filename="__n__.txt"; filename*=UTF-8''_%C3%BCn%C3%AF_.txt`,
  );
});

Deno.test("a file that claims one type and is another gets 415, and nothing is stored", async () => {
  await using s = await setup();
  const jpeg = jpegWithGps(8, 8, 1);
  const cases: [Uint8Array<ArrayBuffer> | string, string, string, RegExp][] = [
    [jpeg, "cat.png", "", /'cat.png' claims to be image\/png, but its bytes are image\/jpeg/],
    [jpeg, "cat.jpg", "image/gif", /claims to be image\/gif/],
    [
      await png(2, 2),
      "notes.txt",
      "text/plain",
      /claims to be text\/plain, but its bytes are image\/png/,
    ],
    ["<svg/>", "fake.png", "image/png", /its bytes are text/],
    [gif(1, 1), "drawing.svg", "", /claims to be image\/svg\+xml/],
  ];
  for (const [bytes, name, type, message] of cases) {
    assertError(
      await upload(s.server, ada.token, bytes, name, { type }),
      415,
      "unsupported_media_type",
      message,
    );
  }
  assert.deepEqual(await s.files.loose(), [], "nothing stored, nothing left loose");
  const notForm = await fetch(`${s.server.origin}/api/v1/uploads?room=lobby`, {
    method: "POST",
    headers: { "x-chat-session": ada.token, "content-type": "image/png" },
    body: await png(2, 2),
  });
  assertError(
    { status: notForm.status, headers: notForm.headers, body: await notForm.json() },
    415,
    "unsupported_media_type",
    /multipart\/form-data/,
  );
});

Deno.test("413 before the body when Content-Length is over MAX_UPLOAD_BYTES", async () => {
  await using s = await setup({ maxUploadBytes: 1000 });
  // Headers only: the body is never sent, and the answer comes all the same.
  const answer = await rawRequest(
    s.server.port,
    "POST /api/v1/uploads?room=lobby HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
      `X-Chat-Session: ${ada.token}\r\n` +
      "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 50000000",
  );
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /connection: close/i);
});

Deno.test("413 while streaming when there is no Content-Length; nothing is left", async () => {
  await using s = await setup({ maxUploadBytes: 100_000 });
  // A raw chunked request, so that the test sees the answer even when the server closes the
  // connection while the body is still being written (Deno 2.5 does, after a refusal).
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.server.port });
  const encoder = new TextEncoder();
  const chunk = (data: Uint8Array) =>
    new Uint8Array([...encoder.encode(`${data.length.toString(16)}\r\n`), ...data, 13, 10]);
  let answered = false;
  let sent = 0;
  try {
    await conn.write(encoder.encode(
      "POST /api/v1/uploads?room=lobby HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        `X-Chat-Session: ${ada.token}\r\n` +
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n",
    ));
    await conn.write(chunk(encoder.encode(
      '--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n',
    )));
    const writing = (async () => {
      const piece = chunk(new Uint8Array(16_384).fill(7));
      while (!answered && sent < 5_000_000) { // bounded, should the server not stop it
        try {
          await conn.write(piece);
        } catch {
          return; // the server closed the connection: it stopped reading
        }
        sent += 16_384;
      }
    })();
    const reading = (async () => {
      const buffer = new Uint8Array(4096);
      let text = "";
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      return text;
    })();
    const answer = await within(reading, "the 413");
    answered = true;
    await writing;
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /connection: close/i);
    assert.ok(sent < 5_000_000, "the server stopped reading");
  } finally {
    conn.close();
  }
  assert.deepEqual(await s.files.loose(), [], "the partial upload was deleted");
});

Deno.test("408 when the body does not arrive within the upload's time budget", async () => {
  await using s = await setup({ bodyTimeoutMs: 100 });
  const answer = await rawRequest(
    s.server.port,
    "POST /api/v1/uploads?room=lobby HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
      `X-Chat-Session: ${ada.token}\r\n` +
      "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000",
    '--b\r\nContent-Disposition: form-data; name="file"; filename="slow.txt"\r\n\r\nsome',
  );
  assert.match(answer, /^HTTP\/1\.1 408 /);
  assert.match(answer, /connection: close/i);
  assert.deepEqual(await s.files.loose(), []);
});

Deno.test("who may upload and read: authenticated users, the room's readers, the uploader first", async () => {
  await using s = await setup();
  assertError(await upload(s.server, null, "x", "a.txt"), 401, "auth_required");
  assertError(await upload(s.server, "forged.token", "x", "a.txt"), 401, "auth_required");
  assertError(
    await upload(s.server, eve.token, "x", "a.txt", { room: "secret" }),
    403,
    "forbidden",
  );
  assertError(
    await upload(s.server, ada.token, "x", "a.txt", { room: "" }),
    400,
    "invalid_message",
  );
  const noRoom = await fetch(`${s.server.origin}/api/v1/uploads`, {
    method: "POST",
    headers: { "x-chat-session": ada.token },
    body: new FormData(),
  });
  assert.equal(noRoom.status, 400);
  assert.match((await noRoom.json()).error.message, /'room' is required/);
  const noFile = new FormData();
  noFile.append("other", "x");
  const empty = await fetch(`${s.server.origin}/api/v1/uploads?room=lobby`, {
    method: "POST",
    headers: { "x-chat-session": ada.token },
    body: noFile,
  });
  assert.equal(empty.status, 400);
  assert.match((await empty.json()).error.message, /no file in the field 'file'/);
  const wrongMethod = await fetch(`${s.server.origin}/api/v1/uploads`, { method: "GET" });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get("allow"), "POST");
  await wrongMethod.body?.cancel();

  const sent = await upload(s.server, ada.token, "for the secret room", "plan.txt", {
    room: "secret",
  });
  assert.equal(sent.status, 201);
  const url = sent.body.url;
  // Before it is posted, only its uploader reads it; others get 404, as for no file at all.
  assert.equal((await read(s.server, url, ada.token)).status, 200);
  assert.equal((await read(s.server, url, bob.token)).status, 404);
  assert.equal((await read(s.server, url, null)).status, 401);
  // Posted in "secret" (the hub attaches it): whoever may read the room reads it.
  assert.equal(await s.files.attach(sent.body.id, ada.id, "secret", 1), "attached");
  assert.equal((await read(s.server, url, bob.token)).status, 200);
  assert.equal((await read(s.server, url, eve.token)).status, 404, "eve may not read the room");
  assert.equal((await read(s.server, `/files/${"A".repeat(22)}/x`, ada.token)).status, 404);
  assert.equal((await read(s.server, "/files/not-an-id/x", ada.token)).status, 404);
  // The API token uploads as "api".
  const form = new FormData();
  form.append("file", new File(["from a bot"], "bot.txt"));
  const byApi = await fetch(`${s.server.origin}/api/v1/uploads?room=lobby`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_TOKEN}` },
    body: form,
  });
  assert.equal(byApi.status, 201);
  const { id } = await byApi.json();
  assert.equal((await s.files.stat(id))?.owner, "api");
});

Deno.test("the browser policy screens both routes: another site's page gets 403", async () => {
  await using s = await setup();
  const evil = { origin: "http://evil.example", "sec-fetch-site": "cross-site" };
  assert.equal((await upload(s.server, ada.token, "x", "a.txt", { headers: evil })).status, 403);
  const sent = await upload(s.server, ada.token, "x", "a.txt");
  const got = await read(s.server, sent.body.url, ada.token, { headers: evil });
  assert.equal(got.status, 403);
  const own = await upload(s.server, ada.token, "x", "a.txt", {
    headers: { origin: s.server.origin, "sec-fetch-site": "same-origin" },
  });
  assert.equal(own.status, 201, "the server's own page may");
});

Deno.test("quotas: bytes per user and per room per day, shared through the store", async () => {
  await using s = await setup({ uploadUserBytesPerDay: 2000, uploadRoomBytesPerDay: 3000 });
  const kib = "x".repeat(1500);
  assert.equal((await upload(s.server, ada.token, kib, "1.txt")).status, 201);
  const over = await upload(s.server, ada.token, kib, "2.txt");
  assertError(over, 429, "quota_exceeded", /you have uploaded 2000 bytes today/);
  assert.ok(Number(over.headers.get("retry-after")) > 0);
  assert.equal((await upload(s.server, bob.token, kib, "3.txt")).status, 201, "bob has his own");
  const room = await upload(s.server, bob.token, "y".repeat(100), "4.txt");
  assertError(room, 429, "quota_exceeded", /this room has uploaded 3000 bytes today/);
  // Refused files are deleted again; bob's refused bytes were not counted against him.
  assert.equal((await s.files.loose()).length, 2);
  assert.equal(
    (await upload(s.server, bob.token, "z".repeat(400), "5.txt", { room: "other" })).status,
    201,
  );
});

Deno.test("a file store that is down is a 503, never a 500", async () => {
  const kv = await Deno.openKv(":memory:");
  const real = new KvFiles(kv);
  const down: FileStore = Object.assign(Object.create(real), {
    put: () => Promise.reject(new Error("connection refused")),
    stat: () => Promise.reject(new Error("connection refused")),
  });
  const server = await startServer({ files: down, sessionSecret: SECRET });
  try {
    const sent = await upload(server, ada.token, "x", "a.txt");
    assertError(sent, 503, "unavailable");
    assert.equal(sent.headers.get("retry-after"), "1");
    assert.equal((await read(server, `/files/${"A".repeat(22)}/x`, ada.token)).status, 503);
  } finally {
    await server.close();
    kv.close();
  }
});

Deno.test("without a file store the routes are off", async () => {
  const server = await startServer({ sessionSecret: SECRET });
  try {
    const response = await fetch(`${server.origin}/files/${"A".repeat(22)}/x`);
    assert.equal(response.status, 404);
    await response.body?.cancel();
  } finally {
    await server.close();
  }
});
