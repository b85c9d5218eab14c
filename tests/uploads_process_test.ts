/**
 * An upload cut off by a SIGKILL: `main.ts` runs as a real process on a KV
 * file, receives half of a 4 MiB upload, and is killed once some of its
 * chunks are in the file (seen through file-system events on the KV file,
 * not by waiting). The upload is invisible, its loose mark and chunks are
 * there, and the sweep (the one the server runs every minute, with its clock
 * past the orphan age) leaves nothing behind. A server started again on the
 * same file takes uploads as before.
 */
import assert from "node:assert/strict";
import { Attachments, ORPHAN_AGE_MS } from "../src/attachments.ts";
import { KvFiles } from "../src/store/kv_files.ts";
import { within } from "./helpers.ts";
import { startProcess } from "./process.ts";

const API_TOKEN = "process-test-api-token-0123456789";
const DECLARED = 4 * 1024 * 1024;
const SENT = 1536 * 1024;

/** Every key the file store holds, as text. */
async function fileKeys(kv: Deno.Kv): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of kv.list({ prefix: ["files"] })) keys.push(entry.key.join("/"));
  return keys;
}

Deno.test("a SIGKILL in the middle of an upload leaves no orphan after the sweep", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-upload-kill-" });
  const path = `${dir}/chat.kv`;
  const env = { KV_PATH: path, API_TOKEN, SESSION_SECRET: "process-test-secret" };
  const server = await startProcess(env);
  const watcher = Deno.watchFs(dir);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const kv = await Deno.openKv(path);
  try {
    const boundary = "killboundary";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; ` +
      `filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    await conn.write(new TextEncoder().encode(
      "POST /api/v1/uploads?room=lobby HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        `Authorization: Bearer ${API_TOKEN}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${DECLARED}\r\n\r\n${head}`,
    ));
    const bytes = crypto.getRandomValues(new Uint8Array(64 * 1024));
    for (let sent = 0; sent < SENT; sent += bytes.length) await conn.write(bytes);

    // Each commit to the KV file is a file-system event: look at the store after each one.
    const chunksStored = (async () => {
      for await (const _ of watcher) {
        const keys = await fileKeys(kv);
        if (keys.filter((k) => k.startsWith("files/chunk/")).length >= 8) return keys;
      }
      throw new Error("the watcher ended");
    })();
    const before = await within(chunksStored, "the upload's first chunks in the KV file", 20_000);
    await server.stop("SIGKILL");

    const files = new KvFiles(kv);
    const loose = await files.loose();
    assert.equal(loose.length, 1, "the cut-off upload is loose");
    assert.equal(await files.stat(loose[0].id), null, "and never became visible");
    assert.ok(before.some((k) => k.startsWith("files/loose/")));
    assert.equal((await fileKeys(kv)).filter((k) => k.startsWith("files/meta/")).length, 0);

    // Not yet: it is younger than the orphan age.
    assert.equal(await new Attachments({ files }).sweep(), 0);
    const later = new Attachments({ files, now: () => Date.now() + ORPHAN_AGE_MS + 60_000 });
    assert.equal(await later.sweep(), 1);
    assert.deepEqual(await fileKeys(kv), [], "no chunk, mark or record is left");
  } finally {
    try {
      watcher.close();
    } catch { /* Deno 2.5 closed it when the loop above returned */ }
    conn.close();
    await server.stop("SIGKILL");
    kv.close();
  }

  // Started again on the same file, it takes an upload as before.
  const again = await startProcess(env);
  try {
    const form = new FormData();
    form.append("file", new File(["after the crash"], "after.txt"));
    const response = await fetch(`${again.origin}/api/v1/uploads?room=lobby`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_TOKEN}` },
      body: form,
    });
    assert.equal(response.status, 201);
    const { url } = await response.json();
    const file = await fetch(`${again.origin}${url}`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    assert.equal(await file.text(), "after the crash");
  } finally {
    await again.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
