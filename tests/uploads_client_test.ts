/**
 * The page's upload client (`static/uploads.js`) with no browser, against a
 * real server on port 0: a file's progress from the first byte to the last,
 * the server's answer, a queue of files a few at a time, cancel (and the
 * server's slots for a user's uploads given back), the server's refusals in
 * words, and the file read back with the session header, by its uploader
 * only while it is not posted. `XMLHttpRequest` is `tests/xhr_shim.ts`.
 */
import assert from "node:assert/strict";
import {
  FileFetcher,
  fileUrl,
  fitSize,
  formatSize,
  isInlineImage,
  UploadError,
  uploadFile,
  UploadQueue,
} from "../static/uploads.js";
import { SessionSigner } from "../src/auth/session.ts";
import { KvFiles } from "../src/store/kv_files.ts";
import { KvUsage } from "../src/store/kv_usage.ts";
import { startServer, type TestServer, within } from "./helpers.ts";
import { png } from "./images.ts";
import { CHUNK_BYTES, FetchXhr } from "./xhr_shim.ts";

const SECRET = "uploads-client-test-secret";
const signer = await SessionSigner.create(SECRET);
const ada = await signer.issue();
const bob = await signer.issue();
// Deno has no `XMLHttpRequest` (nor its type): the shim stands in for it.
const Xhr = FetchXhr as never;

/** A server with files in an in-memory KV of their own. */
async function setup(options: { maxUploadBytes?: number } = {}) {
  const kv = await Deno.openKv(":memory:");
  const server = await startServer({
    files: new KvFiles(kv),
    usage: new KvUsage(kv),
    sessionSecret: SECRET,
    ...options,
  });
  return {
    server,
    async [Symbol.asyncDispose]() {
      await server.close();
      kv.close();
    },
  };
}

/** `size` bytes of text, named `name`. */
function textFile(size: number, name = "notes.txt"): File {
  return new File([new Uint8Array(size).fill(0x61)], name, { type: "text/plain" });
}

/** Resolves once `queue` has no file queued or uploading. */
function settledQueue(queue: UploadQueue): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  const check = () => {
    if (queue.busy) return;
    queue.removeEventListener("change", check);
    resolve();
  };
  queue.addEventListener("change", check);
  check();
  return within(promise, "the uploads to settle");
}

Deno.test("an upload reports its progress to the last byte, and answers the file as the server stored it", async () => {
  await using s = await setup();
  const image = await png(640, 480);
  const file = new File([image], "cat.png", { type: "image/png" });
  const progress: [number, number][] = [];
  const { promise } = uploadFile({
    file,
    room: "lobby",
    token: ada.token,
    base: s.server.origin,
    XMLHttpRequest: Xhr,
    onProgress: (loaded, total) => progress.push([loaded, total]),
  });
  const stored = await within(promise, "the upload");
  assert.equal(stored.name, "cat.png");
  assert.equal(stored.type, "image/png");
  assert.equal(stored.size, image.byteLength);
  assert.deepEqual([stored.width, stored.height], [640, 480]);
  assert.equal(isInlineImage(stored), true);
  // The request carried the session header and went to the room's upload route.
  const request = FetchXhr.all.at(-1)!;
  assert.equal(request.headers.get("x-chat-session"), ada.token);
  assert.equal(new URL(request.url).search, "?room=lobby");
  // Progress: growing, always of the same total (the form, a bit more than the file), to the end.
  assert.ok(progress.length >= 1);
  const total = progress[0][1];
  assert.ok(total > image.byteLength, "the form is the file and its headers");
  for (let i = 1; i < progress.length; i++) {
    assert.ok(progress[i][0] > progress[i - 1][0], "never backwards");
    assert.equal(progress[i][1], total);
  }
  assert.deepEqual(progress.at(-1), [total, total]);

  await t_readBack(s.server, stored);
});

/** The uploader reads its file back with the header; someone else does not, while it is loose. */
async function t_readBack(
  server: TestServer,
  stored: { id: string; name: string; size: number; type: string },
) {
  const mine = new FileFetcher({ token: () => ada.token, base: server.origin });
  const blob = await mine.blob(stored);
  assert.equal(blob.size, stored.size);
  assert.strictEqual(await mine.blob(stored), blob, "kept in memory: one download for both views");
  const theirs = new FileFetcher({ token: () => bob.token, base: server.origin });
  await assert.rejects(theirs.blob(stored), (error: UploadError) => error.status === 404);
  const nobody = new FileFetcher({ base: server.origin });
  await assert.rejects(nobody.blob(stored), UploadError);
  assert.match(fileUrl(stored), /^\/files\/[^/]+\/cat\.png$/);
}

Deno.test("a queue uploads a few files at a time, in order, and hands them to one message", async () => {
  await using s = await setup();
  const queue = new UploadQueue({
    room: "lobby",
    token: () => ada.token,
    base: s.server.origin,
    XMLHttpRequest: Xhr,
    parallel: 2,
  });
  let most = 0;
  queue.addEventListener("change", (event) => {
    const items = (event as CustomEvent).detail as { state: string }[];
    most = Math.max(most, items.filter((i) => i.state === "uploading").length);
  });
  const files = [1, 2, 3, 4, 5].map((n) => textFile(n * 1000, `note-${n}.txt`));
  const { added, refused } = queue.add(files);
  assert.equal(added.length, 5);
  assert.equal(refused.length, 0);
  assert.equal(queue.busy, true);
  await settledQueue(queue);
  assert.equal(most, 2, "never more than `parallel` at once");
  const ready = queue.take();
  assert.deepEqual(ready.map((f) => f.name), files.map((f) => f.name));
  assert.deepEqual(ready.map((f) => f.size), [1000, 2000, 3000, 4000, 5000]);
  assert.ok(ready.every((f) => f.type.startsWith("text/plain") && !isInlineImage(f)));
  assert.deepEqual(queue.items, [], "taken: the queue is empty for the next message");

  // Ten files at most go with one message: the eleventh is refused, not added.
  const many = queue.add(Array.from({ length: 11 }, (_, n) => textFile(10, `n${n}.txt`)));
  assert.equal(many.added.length, 10);
  assert.equal(many.refused.length, 1);
  assert.equal(queue.spaceLeft, 0);
  await settledQueue(queue);
  queue.clear();
});

Deno.test("cancel stops an upload halfway, and the server gives its slot back: more uploads go on", async () => {
  await using s = await setup();
  const queue = new UploadQueue({
    room: "lobby",
    token: () => ada.token,
    base: s.server.origin,
    XMLHttpRequest: Xhr,
  });
  // Five uploads cancelled in the middle, one after another (the server allows 4 at once).
  for (let n = 0; n < 5; n++) {
    const halfway = Promise.withResolvers<string>();
    const onChange = (event: Event) => {
      const [item] = (event as CustomEvent).detail as { key: string; loaded: number }[];
      if (item && item.loaded >= CHUNK_BYTES) halfway.resolve(item.key);
    };
    queue.addEventListener("change", onChange);
    const requests = FetchXhr.all.length;
    queue.add([textFile(40 * CHUNK_BYTES, `big-${n}.txt`)]);
    const key = await within(halfway.promise, "the upload to be on its way");
    queue.removeEventListener("change", onChange);
    const aborted = Promise.withResolvers<void>();
    FetchXhr.all[requests].addEventListener("abort", () => aborted.resolve());
    assert.equal(queue.cancel(key), true);
    await within(aborted.promise, "the request to be aborted");
    assert.deepEqual(queue.items, [], "a cancelled file leaves the queue");
  }
  // The server is not left counting them: a sixth goes through.
  queue.add([textFile(100, "after.txt")]);
  await settledQueue(queue);
  assert.deepEqual(queue.items.map((i) => [i.name, i.state, i.error]), [["after.txt", "done", ""]]);
  queue.clear();
});

Deno.test("refusals in words: a false type claim (415), too large (413, and at once in the page), no session (401)", async () => {
  await using s = await setup({ maxUploadBytes: 4096 });
  const image = await png(8, 8);
  const queue = new UploadQueue({
    room: "lobby",
    token: () => ada.token,
    base: s.server.origin,
    XMLHttpRequest: Xhr,
    maxBytes: 100_000,
  });
  queue.add([
    new File([image], "notes.txt", { type: "text/plain" }),
    textFile(8000, "large.txt"),
    textFile(200_000, "huge.txt"),
  ]);
  await settledQueue(queue);
  const byName = Object.fromEntries(queue.items.map((i) => [i.name, i]));
  assert.equal(byName["notes.txt"].state, "failed");
  assert.match(byName["notes.txt"].error, /type is not allowed, or does not match its name/);
  assert.equal(byName["large.txt"].state, "failed");
  assert.match(
    byName["large.txt"].error,
    /too large: files may have up to 4 KB/,
    "the server's limit",
  );
  assert.match(byName["huge.txt"].error, /too large: files may have up to 98 KB/);
  assert.equal(FetchXhr.all.filter((x) => x.url.startsWith(s.server.origin)).length >= 2, true);
  // What the same file would get again is not offered again: too large, a refused type.
  for (const name of ["huge.txt", "large.txt", "notes.txt"]) {
    assert.equal(byName[name].retriable, false, name);
    assert.equal(queue.retry(byName[name].key), false, name);
  }
  queue.clear();
  // A refusal that may pass later is: no session yet (401), then one.
  let token = "";
  const later = new UploadQueue({
    room: "lobby",
    token: () => token,
    base: s.server.origin,
    XMLHttpRequest: Xhr,
  });
  later.add([textFile(10, "later.txt")]);
  await settledQueue(later);
  assert.deepEqual([later.items[0].state, later.items[0].retriable], ["failed", true]);
  token = ada.token;
  assert.equal(later.retry(later.items[0].key), true);
  await settledQueue(later);
  assert.equal(later.items[0].state, "done");
  later.clear();

  const anonymous = uploadFile({
    file: textFile(10),
    room: "lobby",
    base: s.server.origin,
    XMLHttpRequest: Xhr,
  });
  await assert.rejects(
    anonymous.promise,
    (error: UploadError) => error.status === 401 && /Join the room first/.test(error.message),
  );
});

Deno.test("sizes for people, and an image's place fitted without growing it", () => {
  assert.equal(formatSize(0), "0 bytes");
  assert.equal(formatSize(1), "1 byte");
  assert.equal(formatSize(1023), "1023 bytes");
  assert.equal(formatSize(1536), "1.5 KB");
  assert.equal(formatSize(48_213), "47 KB");
  assert.equal(formatSize(10 * 1024 * 1024), "10 MB");
  assert.deepEqual(fitSize({ width: 800, height: 600 }, { width: 320, height: 240 }), {
    width: 320,
    height: 240,
  });
  assert.deepEqual(fitSize({ width: 100, height: 1000 }, { width: 320, height: 240 }), {
    width: 24,
    height: 240,
  });
  assert.deepEqual(fitSize({ width: 40, height: 30 }, { width: 320, height: 240 }), {
    width: 40,
    height: 30,
  });
  assert.equal(isInlineImage({ id: "x", name: "a.svg", size: 1, type: "image/svg+xml" }), false);
  assert.equal(
    isInlineImage({
      id: "x",
      name: "a.svg",
      size: 1,
      type: "image/svg+xml",
      width: 10,
      height: 10,
    }),
    false,
    "an SVG is never shown inline, even with a size",
  );
  assert.equal(isInlineImage({ id: "x", name: "a.png", size: 1, type: "image/png" }), false);
  assert.equal(fileUrl({ id: "a/b", name: "my cat?.png" }), "/files/a%2Fb/my%20cat%3F.png");
});
