/**
 * The file store contract: uploaded files (images and attachments), kept as
 * bytes plus a small record, in Deno KV (`kv_files.ts`), Redis
 * (`redis_files.ts`) or S3-compatible object storage (`s3_files.ts`). One
 * contract test suite runs against all three.
 *
 * A file's life:
 *
 * 1. **Loose.** {@linkcode FileStore.put} first marks the id loose (with the
 *    time), then writes the bytes, then makes the file visible with its
 *    record in one final step. Until then {@linkcode FileStore.stat} and
 *    {@linkcode FileStore.get} do not see it; a process killed half-way
 *    leaves a loose mark and some bytes, never a visible half file.
 * 2. **Attached.** {@linkcode FileStore.attach} ties a visible file to the
 *    message it was posted in (its room and message id) and clears the
 *    mark. Only its uploader may attach it, to the room it was uploaded for,
 *    and only once.
 * 3. **Gone.** {@linkcode FileStore.delete} (the message was deleted or
 *    pruned), or {@linkcode FileStore.sweep}: every id loose since before a
 *    cutoff (an upload that was never posted, or one cut off by a crash) is
 *    deleted, bytes and record. {@linkcode FileStore.detach} makes a file
 *    loose again, from now.
 *
 * A deletion marks the id loose "since 0" before it removes anything, so a
 * process killed in the middle of one leaves work for the next sweep rather
 * than bytes nobody points at.
 *
 * @module
 */

/** A stored file's record. */
export interface StoredFile {
  /** Random, URL-safe (`[A-Za-z0-9_-]`, 22 characters from 128 random bits). */
  id: string;
  /** The file's name as shown and served (sanitised by the uploader). */
  name: string;
  /** The MIME type, from the bytes (never the client's word). */
  type: string;
  /** Bytes stored. */
  size: number;
  /** Pixels, for images. */
  width?: number;
  /** Pixels, for images. */
  height?: number;
  /** The uploader's user id. */
  owner: string;
  /** The room the file was uploaded for: it may be posted there only. */
  room: string;
  /** The message it is attached to; absent while loose. */
  messageId?: number;
  /** When the upload started, in ms since the epoch. */
  createdAt: number;
}

/** What {@linkcode FileStore.put} is given; the store adds the size. */
export type NewFile = Omit<StoredFile, "size" | "messageId">;

/** A loose id: being uploaded, uploaded and not posted, detached, or being deleted. */
export interface LooseFile {
  id: string;
  /** Since when, in ms since the epoch; 0 for a deletion under way. */
  since: number;
}

/** Why {@linkcode FileStore.attach} did or did not attach a file. */
export type AttachResult =
  /** Attached now, or already attached to this very message. */
  | "attached"
  /** No such visible file (never stored, deleted, swept). */
  | "not_found"
  /** Another user uploaded it. */
  | "forbidden"
  /** It was uploaded for another room. */
  | "other_room"
  /** It is attached to another message already. */
  | "taken";

/** A stable code for each way a file operation fails. */
export type FileErrorCode =
  /** The body passed `maxBytes`. */
  | "too_large"
  /** The body stream failed or was cut off before its end. */
  | "aborted"
  /** The upload was swept (or deleted) before it finished. */
  | "swept"
  /** The store could not be reached. */
  | "unavailable";

/**
 * A file operation that failed, with a stable {@linkcode FileError.code}
 * and a message in Deno's style.
 *
 * @example Usage
 * ```ts
 * import { FileError } from "./files.ts";
 * const error = new FileError("too_large", "Cannot store file: it is over 10485760 bytes");
 * error.code; // "too_large"
 * ```
 */
export class FileError extends Error {
  /** Why it failed. */
  readonly code: FileErrorCode;

  /** Creates the error; `cause` is the underlying failure, if any. */
  constructor(code: FileErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FileError";
    this.code = code;
  }
}

/** A stored file to read: its record and its bytes. */
export interface FileBody {
  file: StoredFile;
  /** The bytes, read as they are pulled; cancel it to stop early. */
  body: ReadableStream<Uint8Array>;
}

/**
 * Where uploaded files live. Every method may reject when the store cannot
 * be reached; only `put` rejects with a {@linkcode FileError} for its own
 * reasons.
 */
export interface FileStore {
  /**
   * Stores `body` as file `file.id`: marks the id loose (since
   * `file.createdAt`), writes the bytes, then makes the file visible with
   * its record. Past `maxBytes` the body is cancelled, what was written is
   * deleted, and it rejects with `too_large`; a failing body rejects with
   * `aborted`, and an upload swept meanwhile with `swept`. Resolves with the
   * record, `size` filled in. The file stays loose until attached. `file`
   * is read once the body has ended, so what only the bytes tell (a JPEG's
   * size) may be filled in while they stream.
   */
  put(file: NewFile, body: ReadableStream<Uint8Array>, maxBytes: number): Promise<StoredFile>;
  /** The visible file `id` with its bytes, or `null`. */
  get(id: string): Promise<FileBody | null>;
  /** The visible file `id`'s record, or `null`. */
  stat(id: string): Promise<StoredFile | null>;
  /**
   * Deletes file `id`, bytes and record, and resolves `true`; `false` when
   * there was no visible file (a loose upload under way is left to the
   * sweep).
   */
  delete(id: string): Promise<boolean>;
  /**
   * Attaches file `id` to message `messageId` of `room`, when `owner`
   * uploaded it for that room and it is not attached elsewhere; clears its
   * loose mark. Attaching it again to the same message changes nothing.
   */
  attach(id: string, owner: string, room: string, messageId: number): Promise<AttachResult>;
  /**
   * Detaches file `id` from its message: loose again since `now`, so the
   * sweep deletes it unless it is attached again meanwhile. Resolves `false`
   * when there is no visible file.
   */
  detach(id: string, now: number): Promise<boolean>;
  /** Every loose id, in no particular order: the candidates of a sweep. */
  loose(): Promise<LooseFile[]>;
  /**
   * Deletes every id loose since before `cutoff` (ms since the epoch): its
   * bytes, its record if any, and its mark. Resolves with how many ids were
   * deleted.
   */
  sweep(cutoff: number): Promise<number>;
}

/** Characters of a file id. */
export const FILE_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/**
 * A new random file id: 128 bits, base64url, 22 characters.
 *
 * @example Usage
 * ```ts
 * import { FILE_ID_PATTERN, newFileId } from "./files.ts";
 * FILE_ID_PATTERN.test(newFileId()); // true
 * ```
 */
export function newFileId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/**
 * Cuts a byte stream into pieces of exactly `size` bytes (the last one
 * shorter), counting as it goes: past `maxBytes` it cancels the source and
 * throws a `too_large` {@linkcode FileError}; a failing source throws
 * `aborted`. Shared by the stores that keep files in chunks.
 *
 * @example Usage
 * ```ts
 * import { chunked } from "./files.ts";
 * const body = new Blob([new Uint8Array(10)]).stream();
 * const sizes: number[] = [];
 * for await (const piece of chunked(body, 4, 100)) sizes.push(piece.length);
 * sizes; // [4, 4, 2]
 * ```
 */
export async function* chunked(
  body: ReadableStream<Uint8Array>,
  size: number,
  maxBytes: number,
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  const reader = body.getReader();
  let buffer = new Uint8Array(size);
  let filled = 0;
  let total = 0;
  let finished = false;
  try {
    while (true) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        finished = true; // the source failed: nothing to cancel
        throw new FileError("aborted", "Cannot store file: the upload was cut off", {
          cause: error,
        });
      }
      if (result.done) {
        finished = true;
        break;
      }
      const value = result.value;
      total += value.byteLength;
      if (total > maxBytes) {
        throw new FileError("too_large", `Cannot store file: it is over ${maxBytes} bytes`);
      }
      let offset = 0;
      while (offset < value.byteLength) {
        const take = Math.min(size - filled, value.byteLength - offset);
        buffer.set(value.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === size) {
          yield buffer;
          buffer = new Uint8Array(size);
          filled = 0;
        }
      }
    }
    if (filled > 0) yield buffer.slice(0, filled);
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * A file record read back from a store, checked for shape; `null` for
 * anything else (a store is shared, and its data may be older than this
 * code).
 */
export function asStoredFile(value: unknown): StoredFile | null {
  if (typeof value !== "object" || value === null) return null;
  const file = value as Record<string, unknown>;
  const ok = typeof file.id === "string" && typeof file.name === "string" &&
    typeof file.type === "string" && typeof file.size === "number" &&
    typeof file.owner === "string" && typeof file.room === "string" &&
    typeof file.createdAt === "number";
  return ok ? file as unknown as StoredFile : null;
}
