/**
 * The file store contract (src/store/files.ts), one suite run against every
 * implementation: Deno KV, Redis (a real `redis-server`) and S3 (a real S3
 * API server, `npm:s3rver`, in a child process). After each test that
 * deletes, the store is checked for leftovers: every key or object the
 * store wrote, not only what it shows.
 */
import assert from "node:assert/strict";
import { AwsClient } from "aws4fetch";
import { connectRedis } from "../src/redis/connection.ts";
import { FileError, type FileStore, type NewFile, newFileId } from "../src/store/files.ts";
import { KV_CHUNK_BYTES, KvFiles } from "../src/store/kv_files.ts";
import { REDIS_CHUNK_BYTES, RedisFiles } from "../src/store/redis_files.ts";
import { S3_PART_BYTES, S3Files } from "../src/store/s3_files.ts";
import { skipRedis, startRedis } from "./redis.ts";
import { skipS3, startS3 } from "./s3.ts";

/** An open store: `files()` is one more instance on it; `residue()` lists what it holds. */
interface Opened {
  files(): FileStore;
  /** Every key or object name the stores wrote, sorted. */
  residue(): Promise<string[]>;
  close(): Promise<void>;
}

interface Implementation {
  name: string;
  ignore: boolean;
  /** Whether two attaches at once are decided atomically (s3rver ignores `If-Match`). */
  atomic: boolean;
  open(): Promise<Opened>;
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: "KvFiles",
    ignore: false,
    atomic: true,
    async open() {
      const dir = await Deno.makeTempDir({ prefix: "chat-files-" });
      // Two handles on one file, as two processes have.
      const handles = [await Deno.openKv(`${dir}/chat.kv`), await Deno.openKv(`${dir}/chat.kv`)];
      let next = 0;
      return {
        files: () => new KvFiles(handles[next++ % 2]),
        async residue() {
          const keys: string[] = [];
          for await (const e of handles[0].list({ prefix: ["files"] })) keys.push(e.key.join("/"));
          return keys.sort();
        },
        async close() {
          for (const kv of handles) kv.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "RedisFiles",
    ignore: skipRedis,
    atomic: true,
    async open() {
      const redis = await startRedis();
      const connections = [await connectRedis(redis.url), await connectRedis(redis.url)];
      let next = 0;
      return {
        files: () => new RedisFiles(connections[next++ % 2].client),
        async residue() {
          return (await connections[0].client.keys("chat:file*")).map(String).sort();
        },
        async close() {
          for (const connection of connections) await connection.close();
          await redis[Symbol.asyncDispose]();
        },
      };
    },
  },
  {
    name: "S3Files",
    ignore: skipS3,
    atomic: false,
    async open() {
      const s3 = await startS3();
      const aws = new AwsClient({
        accessKeyId: s3.location.accessKeyId,
        secretAccessKey: s3.location.secretAccessKey,
        service: "s3",
        region: "us-east-1",
      });
      return {
        files: () => new S3Files(s3.location),
        async residue() {
          const response = await aws.fetch(`${s3.endpoint}/chat?list-type=2&prefix=chat/`);
          const xml = await response.text();
          return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]).sort();
        },
        close: () => s3.stop(),
      };
    },
  },
];

const MIB = 1024 * 1024;

function newFile(overrides: Partial<NewFile> = {}): NewFile {
  return {
    id: newFileId(),
    name: "notes.txt",
    type: "text/plain",
    owner: "u1",
    room: "lobby",
    createdAt: 1_000_000,
    ...overrides,
  };
}

/** `size` bytes of a pattern that differs at every position of a chunk. */
function bytes(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return out;
}

/** A stream of `data` in pieces of `piece` bytes (uneven against every chunk size). */
function streamOf(data: Uint8Array, piece = 7919): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) return controller.close();
      controller.enqueue(data.slice(offset, offset + piece));
      offset += piece;
    },
  });
}

/**
 * A stream that sends `data`, then waits: `end()` closes it, `fail()`
 * errors it. `sent` resolves once all of `data` was pulled.
 */
function heldStream(data: Uint8Array) {
  const sent = Promise.withResolvers<void>();
  let control!: ReadableStreamDefaultController<Uint8Array>;
  let delivered = false;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      control = c;
    },
    pull(c) {
      if (delivered) return sent.resolve();
      delivered = true;
      c.enqueue(data);
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    sent: sent.promise,
    end: () => control.close(),
    fail: () => control.error(new Error("connection reset")),
  };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

for (const implementation of IMPLEMENTATIONS) {
  const contract = (name: string, fn: (store: Opened) => Promise<void>) =>
    Deno.test(
      { name: `${implementation.name}: ${name}`, ignore: implementation.ignore },
      async () => {
        const store = await implementation.open();
        try {
          await fn(store);
        } finally {
          await store.close();
        }
      },
    );

  contract("put, stat and get: the bytes and the record come back as stored", async (s) => {
    const files = s.files();
    // Empty, one byte, and sizes across each store's chunk boundaries.
    const sizes = [0, 1, KV_CHUNK_BYTES, KV_CHUNK_BYTES + 1, REDIS_CHUNK_BYTES * 2 + 3];
    for (const size of sizes) {
      const file = newFile({ width: 3, height: 2 });
      const data = bytes(size, size);
      const stored = await files.put(file, streamOf(data), 10 * MIB);
      assert.deepEqual(stored, { ...file, size });
      assert.deepEqual(await s.files().stat(file.id), stored, "another instance sees it");
      const got = await s.files().get(file.id);
      assert.ok(got);
      assert.deepEqual(got.file, stored);
      assert.deepEqual(await readAll(got.body), data, `${size} bytes`);
    }
    assert.equal(await files.stat(newFileId()), null);
    assert.equal(await files.get(newFileId()), null);
  });

  contract(
    "a file larger than a multipart part (S3) or many chunks comes back whole",
    async (s) => {
      const data = bytes(S3_PART_BYTES + 300_000, 9);
      const file = newFile();
      const stored = await s.files().put(file, streamOf(data, 65_536), 10 * MIB);
      assert.equal(stored.size, data.length);
      const got = await s.files().get(file.id);
      assert.deepEqual(await readAll(got!.body), data);
    },
  );

  contract("a body over maxBytes is refused (too_large) and leaves nothing", async (s) => {
    const file = newFile();
    let cancelled = false;
    const data = bytes(300_000);
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(data.slice(offset, offset += 10_000));
        if (offset >= data.length) c.close();
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    await assert.rejects(
      () => s.files().put(file, body, 100_000),
      (error: unknown) => error instanceof FileError && error.code === "too_large",
    );
    assert.ok(cancelled, "the body was cancelled at the limit");
    assert.ok(offset < data.length, `reading stopped early, at ${offset} bytes`);
    assert.equal(await s.files().stat(file.id), null);
    assert.deepEqual(await s.files().loose(), []);
    assert.deepEqual(await s.residue(), []);
  });

  contract("a body that fails is refused (aborted) and leaves nothing", async (s) => {
    const file = newFile();
    const held = heldStream(bytes(REDIS_CHUNK_BYTES + 10));
    const put = s.files().put(file, held.stream, 10 * MIB);
    await held.sent;
    held.fail();
    await assert.rejects(put, (e: unknown) => e instanceof FileError && e.code === "aborted");
    assert.equal(await s.files().stat(file.id), null);
    assert.deepEqual(await s.residue(), []);
  });

  contract("an upload under way is loose and invisible; the sweep takes it", async (s) => {
    const files = s.files();
    const file = newFile({ createdAt: 5000 });
    const held = heldStream(bytes(S3_PART_BYTES + 1000));
    const put = files.put(file, held.stream, 10 * MIB);
    put.catch(() => {});
    await held.sent;
    assert.equal(await s.files().stat(file.id), null, "not visible before its end");
    assert.deepEqual(await s.files().loose(), [{ id: file.id, since: 5000 }]);
    assert.equal(await s.files().sweep(5000), 0, "not loose since before the cutoff");
    assert.equal(await s.files().sweep(5001), 1);
    held.end(); // The upload ends after its sweep: it must not become visible.
    await assert.rejects(put, (e: unknown) => e instanceof FileError && e.code === "swept");
    assert.equal(await s.files().stat(file.id), null);
    assert.deepEqual(await s.files().loose(), []);
    assert.deepEqual(await s.residue(), []);
  });

  contract("attach: only the uploader, only to its room, only once", async (s) => {
    const files = s.files();
    const file = newFile();
    await files.put(file, streamOf(bytes(10)), MIB);
    assert.deepEqual(await files.loose(), [{ id: file.id, since: file.createdAt }]);
    assert.equal(await s.files().attach(file.id, "u2", "lobby", 7), "forbidden");
    assert.equal(await s.files().attach(file.id, "u1", "other", 7), "other_room");
    assert.equal(await s.files().attach(newFileId(), "u1", "lobby", 7), "not_found");
    assert.equal(await s.files().attach(file.id, "u1", "lobby", 7), "attached");
    assert.equal(await s.files().attach(file.id, "u1", "lobby", 7), "attached", "idempotent");
    assert.equal(await s.files().attach(file.id, "u1", "lobby", 8), "taken");
    assert.equal((await s.files().stat(file.id))?.messageId, 7);
    assert.deepEqual(await s.files().loose(), []);
    assert.equal(await s.files().sweep(Number.MAX_SAFE_INTEGER), 0, "attached files stay");
    assert.deepEqual(await readAll((await files.get(file.id))!.body), bytes(10));
  });

  if (implementation.atomic) {
    contract("attaches at once from two instances: one message wins", async (s) => {
      const file = newFile();
      await s.files().put(file, streamOf(bytes(10)), MIB);
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => s.files().attach(file.id, "u1", "lobby", 10 + i)),
      );
      assert.equal(results.filter((r) => r === "attached").length, 1, results.join());
      const winner = 10 + results.indexOf("attached");
      assert.equal((await s.files().stat(file.id))?.messageId, winner);
    });
  }

  contract("detach makes a file loose again from then; the sweep then takes it", async (s) => {
    const files = s.files();
    const file = newFile();
    await files.put(file, streamOf(bytes(10)), MIB);
    assert.equal(await files.attach(file.id, "u1", "lobby", 3), "attached");
    assert.equal(await s.files().detach(file.id, 9_000_000), true);
    assert.equal(await s.files().detach(newFileId(), 9_000_000), false);
    assert.equal((await files.stat(file.id))?.messageId, undefined);
    assert.deepEqual(await files.loose(), [{ id: file.id, since: 9_000_000 }]);
    assert.equal(await files.sweep(9_000_000), 0);
    assert.equal(await files.sweep(9_000_001), 1);
    assert.equal(await files.stat(file.id), null);
    assert.deepEqual(await s.residue(), []);
  });

  contract("delete removes bytes and record; a second delete is false", async (s) => {
    const files = s.files();
    const loose = newFile(), attached = newFile();
    await files.put(loose, streamOf(bytes(REDIS_CHUNK_BYTES + 5)), MIB);
    await files.put(attached, streamOf(bytes(KV_CHUNK_BYTES * 3)), MIB);
    assert.equal(await files.attach(attached.id, "u1", "lobby", 1), "attached");
    assert.equal(await s.files().delete(loose.id), true);
    assert.equal(await s.files().delete(attached.id), true);
    assert.equal(await s.files().delete(attached.id), false);
    assert.equal(await files.get(attached.id), null);
    assert.equal(await files.attach(loose.id, "u1", "lobby", 2), "not_found");
    assert.deepEqual(await files.loose(), []);
    assert.deepEqual(await s.residue(), []);
  });

  contract("sweep takes only what was loose before the cutoff", async (s) => {
    const files = s.files();
    const old = newFile({ createdAt: 1000 }), young = newFile({ createdAt: 2000 });
    const posted = newFile({ createdAt: 500 });
    for (const file of [old, young, posted]) await files.put(file, streamOf(bytes(100)), MIB);
    assert.equal(await files.attach(posted.id, "u1", "lobby", 1), "attached");
    assert.equal(await s.files().sweep(1500), 1);
    assert.equal(await files.stat(old.id), null);
    assert.ok(await files.stat(young.id));
    assert.ok(await files.stat(posted.id));
    assert.deepEqual(await files.loose(), [{ id: young.id, since: 2000 }]);
  });

  contract("a read can stop early: cancelling the body", async (s) => {
    const file = newFile();
    await s.files().put(file, streamOf(bytes(REDIS_CHUNK_BYTES * 3)), MIB);
    const got = await s.files().get(file.id);
    const reader = got!.body.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.byteLength > 0);
    await reader.cancel();
  });
}
