/**
 * {@linkcode KvFiles}: uploaded files in Deno KV, chunked under its 64 KiB
 * value limit. Keys:
 *
 * - `["files", "loose", id]`: `{ since }`, the loose mark (see `files.ts`):
 *   written before the first chunk, cleared when the file is attached;
 * - `["files", "chunk", id, n]`: the bytes, {@linkcode KV_CHUNK_BYTES} each,
 *   written a few to a commit as they arrive;
 * - `["files", "meta", id]`: the record, written by the one final commit
 *   that makes the upload visible (checked against the loose mark, so an
 *   upload swept meanwhile never becomes visible).
 *
 * A process killed mid-upload leaves a mark and some chunks: the sweep
 * deletes them. A deletion first turns the mark into `since: 0` and deletes
 * the record in one commit, then the chunks, then the mark.
 *
 * @module
 */

import { backoff, commitOrConflict } from "./kv_contention.ts";
import {
  asStoredFile,
  type AttachResult,
  chunked,
  type FileBody,
  FileError,
  type FileStore,
  type LooseFile,
  type NewFile,
  type StoredFile,
} from "./files.ts";

/** Bytes per chunk: Deno KV takes values of at most 64 KiB (serialised). */
export const KV_CHUNK_BYTES = 60 * 1024;
/** Chunks per commit while uploading (a commit takes at most 800 KiB). */
const CHUNKS_PER_COMMIT = 8;
/** Deletions per commit (a commit takes at most 1,000 mutations). */
const DELETES_PER_COMMIT = 500;
const MAX_ATTEMPTS = 20;

interface LooseMark {
  since: number;
}

/**
 * Files in Deno KV.
 *
 * @example Usage
 * ```ts
 * import { KvFiles } from "./kv_files.ts";
 * using kv = await Deno.openKv(":memory:");
 * const files = new KvFiles(kv);
 * const body = new Blob(["hello"]).stream();
 * const file = { id: "AAAAAAAAAAAAAAAAAAAAAA", name: "a.txt", type: "text/plain", owner: "u1",
 *   room: "lobby", createdAt: Date.now() };
 * await files.put(file, body, 1024); // { ...file, size: 5 }
 * await files.attach(file.id, "u1", "lobby", 7); // "attached"
 * ```
 */
export class KvFiles implements FileStore {
  #kv: Deno.Kv;

  /** Wraps an open KV; the caller closes it. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Stores a file; see {@linkcode FileStore.put}. */
  async put(
    file: NewFile,
    body: ReadableStream<Uint8Array>,
    maxBytes: number,
  ): Promise<StoredFile> {
    const looseKey = ["files", "loose", file.id];
    const mark = await this.#kv.atomic().check({ key: looseKey, versionstamp: null })
      .set(looseKey, { since: file.createdAt } satisfies LooseMark).commit();
    if (!mark.ok) {
      await body.cancel().catch(() => {});
      throw new Error(`Cannot store file: id ${file.id} is in use`);
    }
    let size = 0;
    let n = 0;
    let pending: Uint8Array[] = [];
    const flush = async () => {
      const op = this.#kv.atomic();
      for (const chunk of pending) op.set(["files", "chunk", file.id, n++], chunk);
      pending = [];
      await op.commit();
    };
    try {
      for await (const chunk of chunked(body, KV_CHUNK_BYTES, maxBytes)) {
        size += chunk.byteLength;
        pending.push(chunk);
        if (pending.length === CHUNKS_PER_COMMIT) await flush();
      }
      if (pending.length) await flush();
      const stored: StoredFile = { ...file, size };
      // Visible only if still loose since our start: a sweep meanwhile wins.
      const done = await this.#kv.atomic()
        .check({ key: looseKey, versionstamp: mark.versionstamp })
        .set(["files", "meta", file.id], stored).commit();
      if (!done.ok) {
        throw new FileError("swept", "Cannot store file: the upload was swept before it ended");
      }
      return stored;
    } catch (error) {
      await this.#purge(file.id).catch(() => {}); // else the sweep will
      throw error;
    }
  }

  /** Reads a file; see {@linkcode FileStore.get}. */
  async get(id: string): Promise<FileBody | null> {
    const file = await this.stat(id);
    if (!file) return null;
    const kv = this.#kv;
    let iterator: Deno.KvListIterator<Uint8Array> | undefined;
    let read = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        iterator ??= kv.list<Uint8Array>({ prefix: ["files", "chunk", id] }, { batchSize: 4 });
        const next = await iterator.next();
        if (next.done) {
          if (read === file.size) controller.close();
          else controller.error(new Error(`Cannot read file: ${id} was deleted while read`));
          return;
        }
        read += next.value.value.byteLength;
        controller.enqueue(next.value.value);
      },
    }, { highWaterMark: 0 });
    return { file, body };
  }

  /** A file's record; see {@linkcode FileStore.stat}. */
  async stat(id: string): Promise<StoredFile | null> {
    return asStoredFile((await this.#kv.get(["files", "meta", id])).value);
  }

  /** Deletes a file; see {@linkcode FileStore.delete}. */
  async delete(id: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const meta = await this.#kv.get(["files", "meta", id]);
      if (meta.versionstamp === null) return false;
      const op = this.#kv.atomic().check(meta).delete(meta.key)
        .set(["files", "loose", id], { since: 0 } satisfies LooseMark);
      if ((await commitOrConflict(op)).ok) {
        await this.#purge(id);
        return true;
      }
      await backoff(attempt);
    }
    throw new Error(`Cannot delete file: ${id} is too contended`);
  }

  /** Attaches a file; see {@linkcode FileStore.attach}. */
  async attach(id: string, owner: string, room: string, messageId: number): Promise<AttachResult> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [meta, loose] = await this.#kv.getMany([
        ["files", "meta", id],
        ["files", "loose", id],
      ]);
      const file = asStoredFile(meta.value);
      if (!file) return "not_found";
      if (file.owner !== owner) return "forbidden";
      if (file.room !== room) return "other_room";
      if (file.messageId === messageId) return "attached";
      if (file.messageId !== undefined || loose.versionstamp === null) return "taken";
      const op = this.#kv.atomic().check(meta, loose)
        .set(meta.key, { ...file, messageId } satisfies StoredFile).delete(loose.key);
      if ((await commitOrConflict(op)).ok) return "attached";
      await backoff(attempt);
    }
    throw new Error(`Cannot attach file: ${id} is too contended`);
  }

  /** Detaches a file; see {@linkcode FileStore.detach}. */
  async detach(id: string, now: number): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const meta = await this.#kv.get(["files", "meta", id]);
      const file = asStoredFile(meta.value);
      if (!file) return false;
      const { messageId: _, ...loose } = file;
      const op = this.#kv.atomic().check(meta).set(meta.key, loose)
        .set(["files", "loose", id], { since: now } satisfies LooseMark);
      if ((await commitOrConflict(op)).ok) return true;
      await backoff(attempt);
    }
    throw new Error(`Cannot detach file: ${id} is too contended`);
  }

  /** Every loose id; see {@linkcode FileStore.loose}. */
  async loose(): Promise<LooseFile[]> {
    const found: LooseFile[] = [];
    for await (const entry of this.#kv.list<LooseMark>({ prefix: ["files", "loose"] })) {
      found.push({ id: String(entry.key[2]), since: Number(entry.value?.since ?? 0) });
    }
    return found;
  }

  /** Deletes what was loose before `cutoff`; see {@linkcode FileStore.sweep}. */
  async sweep(cutoff: number): Promise<number> {
    let swept = 0;
    for await (const entry of this.#kv.list<LooseMark>({ prefix: ["files", "loose"] })) {
      if (Number(entry.value?.since ?? 0) >= cutoff) continue;
      const id = String(entry.key[2]);
      // Claim it: the record goes and the mark becomes a deletion, unless an attach came first.
      const op = this.#kv.atomic().check(entry).delete(["files", "meta", id])
        .set(entry.key, { since: 0 } satisfies LooseMark);
      if (!(await commitOrConflict(op)).ok) continue;
      await this.#purge(id);
      swept++;
    }
    return swept;
  }

  /** Deletes every chunk of `id`, its record, then its mark. */
  async #purge(id: string): Promise<void> {
    let keys: Deno.KvKey[] = [];
    const drop = async () => {
      const op = this.#kv.atomic();
      for (const key of keys) op.delete(key);
      keys = [];
      await op.commit();
    };
    for await (const entry of this.#kv.list({ prefix: ["files", "chunk", id] })) {
      keys.push(entry.key);
      if (keys.length === DELETES_PER_COMMIT) await drop();
    }
    keys.push(["files", "meta", id], ["files", "loose", id]);
    await drop();
  }
}
