/**
 * {@linkcode RedisFiles}: uploaded files in Redis, chunked. Keys, with the
 * default prefix:
 *
 * - `chat:files:loose`: a sorted set of loose ids (see `files.ts`), scored
 *   by since when;
 * - `chat:file:<id>:data`: a list of the file's chunks
 *   ({@linkcode REDIS_CHUNK_BYTES} each), given an expiry while the upload
 *   runs, so even a Redis nobody sweeps drops a crashed upload's bytes;
 * - `chat:file:<id>:meta`: a hash, `json` (the record without `messageId`)
 *   and `messageId` once attached.
 *
 * The final step of an upload, the attach, the deletion and each sweep are
 * one Lua script each, so they are atomic however many instances share the
 * Redis.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { RESP_TYPES } from "redis";
import type { RedisClientType } from "redis";
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

/** Bytes per list element. */
export const REDIS_CHUNK_BYTES = 256 * 1024;

/**
 * KEYS: loose, data, meta. ARGV: id, since (as the upload marked it), json.
 * Makes the upload visible when its mark is still the one it set.
 */
const COMMIT_SCRIPT = `
local since = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not since or tonumber(since) ~= tonumber(ARGV[2]) then return 0 end
redis.call('PERSIST', KEYS[2])
redis.call('HSET', KEYS[3], 'json', ARGV[3])
return 1`;

/** KEYS: meta, loose. ARGV: owner, room, messageId, id. */
const ATTACH_SCRIPT = `
local json = redis.call('HGET', KEYS[1], 'json')
if not json then return 'not_found' end
local file = cjson.decode(json)
if file.owner ~= ARGV[1] then return 'forbidden' end
if file.room ~= ARGV[2] then return 'other_room' end
local attached = redis.call('HGET', KEYS[1], 'messageId')
if attached then
  if attached == ARGV[3] then return 'attached' end
  return 'taken'
end
if not redis.call('ZSCORE', KEYS[2], ARGV[4]) then return 'taken' end
redis.call('HSET', KEYS[1], 'messageId', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
return 'attached'`;

/** KEYS: meta, loose. ARGV: id, now. */
const DETACH_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'json') == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'messageId')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1`;

/** KEYS: meta, data, loose. ARGV: id. */
const DELETE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('UNLINK', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`;

/** KEYS: meta, data, loose. ARGV: id, cutoff. */
const SWEEP_SCRIPT = `
local since = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not since or tonumber(since) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('UNLINK', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`;

/** Options for {@linkcode RedisFiles}. */
export interface RedisFilesOptions {
  /**
   * Starts every key.
   * @default {"chat:"}
   */
  prefix?: string;
  /**
   * How long an unfinished upload's bytes live without a sweep, in ms; at
   * least the longest an upload may take.
   * @default {3600000}
   */
  pendingTtlMs?: number;
}

/**
 * Files in Redis.
 *
 * @example Usage
 * ```ts ignore
 * import { connectRedis } from "../redis/connection.ts";
 * import { RedisFiles } from "./redis_files.ts";
 * const files = new RedisFiles((await connectRedis("redis://127.0.0.1:6379")).client);
 * await files.stat("AAAAAAAAAAAAAAAAAAAAAA"); // null
 * ```
 */
export class RedisFiles implements FileStore {
  #client: RedisClientType;
  #prefix: string;
  #pendingTtlMs: number;

  /** Wraps a connected client; see {@linkcode RedisFilesOptions}. */
  constructor(client: RedisClientType, options: RedisFilesOptions = {}) {
    this.#client = client;
    this.#prefix = options.prefix ?? "chat:";
    this.#pendingTtlMs = options.pendingTtlMs ?? 3_600_000;
  }

  /** Stores a file; see {@linkcode FileStore.put}. */
  async put(
    file: NewFile,
    body: ReadableStream<Uint8Array>,
    maxBytes: number,
  ): Promise<StoredFile> {
    const loose = this.#looseKey();
    const { data, meta } = this.#keys(file.id);
    if (
      !(await this.#client.zAdd(loose, { score: file.createdAt, value: file.id }, { NX: true }))
    ) {
      await body.cancel().catch(() => {});
      throw new Error(`Cannot store file: id ${file.id} is in use`);
    }
    let size = 0;
    try {
      for await (const chunk of chunked(body, REDIS_CHUNK_BYTES, maxBytes)) {
        size += chunk.byteLength;
        await this.#client.multi().rPush(
          data,
          Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
        )
          .pExpire(data, this.#pendingTtlMs).exec();
      }
      const stored: StoredFile = { ...file, size };
      const done = await this.#client.eval(COMMIT_SCRIPT, {
        keys: [loose, data, meta],
        arguments: [file.id, String(file.createdAt), JSON.stringify(stored)],
      });
      if (Number(done) !== 1) {
        throw new FileError("swept", "Cannot store file: the upload was swept before it ended");
      }
      return stored;
    } catch (error) {
      // Not visible: the bytes and the mark go (or else the sweep, or the data's expiry, takes them).
      await this.#client.multi().unlink(data).zRem(loose, file.id).exec().catch(() => {});
      throw error;
    }
  }

  /** Reads a file; see {@linkcode FileStore.get}. */
  async get(id: string): Promise<FileBody | null> {
    const file = await this.stat(id);
    if (!file) return null;
    const binary = this.#client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    const { data } = this.#keys(id);
    let index = 0;
    let read = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = await binary.lIndex(data, index++) as Buffer | null;
        if (chunk === null) {
          if (read === file.size) controller.close();
          else controller.error(new Error(`Cannot read file: ${id} was deleted while read`));
          return;
        }
        read += chunk.byteLength;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      },
    }, { highWaterMark: 0 });
    return { file, body };
  }

  /** A file's record; see {@linkcode FileStore.stat}. */
  async stat(id: string): Promise<StoredFile | null> {
    const fields = await this.#client.hGetAll(this.#keys(id).meta);
    if (!fields.json) return null;
    let file: StoredFile | null;
    try {
      file = asStoredFile(JSON.parse(fields.json));
    } catch {
      return null;
    }
    if (file && fields.messageId) file.messageId = Number(fields.messageId);
    return file;
  }

  /** Deletes a file; see {@linkcode FileStore.delete}. */
  async delete(id: string): Promise<boolean> {
    const { meta, data } = this.#keys(id);
    const deleted = await this.#client.eval(DELETE_SCRIPT, {
      keys: [meta, data, this.#looseKey()],
      arguments: [id],
    });
    return Number(deleted) === 1;
  }

  /** Attaches a file; see {@linkcode FileStore.attach}. */
  async attach(id: string, owner: string, room: string, messageId: number): Promise<AttachResult> {
    const result = await this.#client.eval(ATTACH_SCRIPT, {
      keys: [this.#keys(id).meta, this.#looseKey()],
      arguments: [owner, room, String(messageId), id],
    });
    return String(result) as AttachResult;
  }

  /** Detaches a file; see {@linkcode FileStore.detach}. */
  async detach(id: string, now: number): Promise<boolean> {
    const done = await this.#client.eval(DETACH_SCRIPT, {
      keys: [this.#keys(id).meta, this.#looseKey()],
      arguments: [id, String(now)],
    });
    return Number(done) === 1;
  }

  /** Every loose id; see {@linkcode FileStore.loose}. */
  async loose(): Promise<LooseFile[]> {
    const entries = await this.#client.zRangeWithScores(this.#looseKey(), 0, -1);
    return entries.map(({ value, score }) => ({ id: String(value), since: score }));
  }

  /** Deletes what was loose before `cutoff`; see {@linkcode FileStore.sweep}. */
  async sweep(cutoff: number): Promise<number> {
    const loose = this.#looseKey();
    const ids = await this.#client.zRangeByScore(loose, "-inf", `(${cutoff}`);
    let swept = 0;
    for (const id of ids) {
      const { meta, data } = this.#keys(String(id));
      const done = await this.#client.eval(SWEEP_SCRIPT, {
        keys: [meta, data, loose],
        arguments: [String(id), String(cutoff)],
      });
      swept += Number(done);
    }
    return swept;
  }

  #looseKey(): string {
    return `${this.#prefix}files:loose`;
  }

  #keys(id: string): { data: string; meta: string } {
    return { data: `${this.#prefix}file:${id}:data`, meta: `${this.#prefix}file:${id}:meta` };
  }
}
