/**
 * Uploading and serving files:
 *
 * - `POST /api/v1/uploads?room=R` (`multipart/form-data`, the file in the
 *   field `file`): stores the file for room `R` and answers 201
 *   `{id, name, size, type, width?, height?, url}`. The type comes from the
 *   bytes (`media/file_type.ts`), never from the client, and a file that
 *   claims another type (its extension or the part's `Content-Type`) gets
 *   415. A JPEG loses its EXIF, XMP and IPTC metadata, GPS included, on the
 *   way to the store (`media/jpeg_scrub.ts`); images get their size.
 * - `GET /files/{id}/{name}` (and `HEAD`): the file, to its uploader until
 *   it is posted, then to whoever may read its room. PNG, JPEG, GIF and
 *   WebP are served `inline`; everything else (SVG and HTML included) as an
 *   `attachment`, with `X-Content-Type-Options: nosniff`, the page's CSP
 *   plus `sandbox`, and `Cross-Origin-Resource-Policy: same-origin`.
 *
 * Who may do either is decided by two hooks the chat wires in:
 * `authenticate(req)` (the API token, a guest's session token in
 * `X-Chat-Session`, an account's cookie) and `canRead(userId, room)`.
 *
 * Limits: `MAX_UPLOAD_BYTES` per file (413 before the body when its
 * `Content-Length` says so, else at the first byte over); a time budget
 * that grows with the size ({@linkcode uploadTimeoutMs}: 10 s plus 1 s per
 * 64 KiB, 408 after it); bytes per user and per room per day, counted in
 * the shared store (429 `quota_exceeded`); and at most
 * {@linkcode MAX_UPLOADS_IN_FLIGHT} uploads at once per user on an instance.
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import { type ImageSize, JpegScrubber } from "../media/jpeg_scrub.ts";
import { claimProblem, detectType, INLINE_TYPES, SNIFF_BYTES } from "../media/file_type.ts";
import { safeFileName } from "../media/file_name.ts";
import { headerSize, SIZE_HEADER_BYTES } from "../media/image_size.ts";
import { checkRoom } from "../protocol.ts";
import {
  FILE_ID_PATTERN,
  FileError,
  type FileStore,
  type NewFile,
  newFileId,
  type StoredFile,
} from "../store/files.ts";
import type { Usage } from "../store/usage.ts";
import { BodyLimitError, cappedStream } from "./capped_stream.ts";
import { formBoundary, formParts, MultipartError } from "./multipart.ts";
import { json, SECURITY_HEADERS } from "./responses.ts";

/** The upload route. */
export const UPLOAD_PATH = "/api/v1/uploads";
/** Files are served under this path: `/files/{id}/{name}`. */
export const FILES_PREFIX = "/files/";
/** The slowest upload allowed, in bytes a second: the time budget grows with the size by it. */
export const UPLOAD_MIN_BYTES_PER_SECOND = 64 * 1024;
/** Bytes a form may carry besides the file (boundaries, headers, small fields). */
export const FORM_OVERHEAD_BYTES = 16 * 1024;
/** Uploads one user may have under way at once on one instance; more get 429. */
export const MAX_UPLOADS_IN_FLIGHT = 4;
/** The window of the per-user and per-room byte counts. */
export const QUOTA_WINDOW_MS = 24 * 60 * 60 * 1000;

/** Who a request comes from, as the `authenticate` hook says. */
export interface UploadIdentity {
  userId: string;
  /** The rooms a JWT's `rooms` claim allows; absent: every room. */
  rooms?: string[];
}

/** Decides who sent a request: `null` for nobody known (401). */
export type UploadAuthenticate = (
  req: Request,
) => UploadIdentity | null | Promise<UploadIdentity | null>;

/**
 * Whether `userId` may read room `room` (and so its files, and upload to
 * it); `identity` is what `authenticate` said of the request.
 */
export type CanRead = (
  userId: string,
  room: string,
  identity: UploadIdentity,
) => boolean | Promise<boolean>;

/** Options for {@linkcode Uploads}. */
export interface UploadsOptions {
  /** Where files are stored. */
  files: FileStore;
  /** Byte counts per user and room, shared by instances; `null` counts nothing. @default {null} */
  usage?: Usage | null;
  /** Who a request comes from. @default {() => null (nobody may upload or read)} */
  authenticate?: UploadAuthenticate;
  /** Whether a user may read a room's files and upload to it. @default {() => true} */
  canRead?: CanRead;
  /** Largest file, in bytes. @default {DEFAULTS.maxUploadBytes} */
  maxUploadBytes?: number;
  /** Bytes one user may upload per day (0: no limit). @default {DEFAULTS.uploadUserBytesPerDay} */
  uploadUserBytesPerDay?: number;
  /** Bytes one room may receive per day (0: no limit). @default {DEFAULTS.uploadRoomBytesPerDay} */
  uploadRoomBytesPerDay?: number;
  /** The fixed part of an upload's time budget, in ms. @default {DEFAULTS.bodyTimeoutMs} */
  bodyTimeoutMs?: number;
  /** The wall clock, in ms since the epoch. @default {Date.now} */
  now?: () => number;
  /** Where refusals of note are logged (never a token or a file name). @default {() => {}} */
  log?: Logger;
}

/** The error codes of the two routes. */
export type UploadErrorCode =
  | "invalid_message"
  | "auth_required"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "timeout"
  | "too_large"
  | "unsupported_media_type"
  | "rate_limited"
  | "quota_exceeded"
  | "unavailable";

/** What a successful upload answers. */
export interface UploadAnswer {
  id: string;
  name: string;
  size: number;
  type: string;
  width?: number;
  height?: number;
  /** Where the file is served: `/files/{id}/{name}`. */
  url: string;
}

/**
 * How long an upload of `bytes` may take, in ms: `baseMs` plus a second per
 * {@linkcode UPLOAD_MIN_BYTES_PER_SECOND} (64 KiB, about 0.5 Mbit/s). The
 * default 10 MiB gets 170 s.
 *
 * @example Usage
 * ```ts
 * import { uploadTimeoutMs } from "./uploads.ts";
 * uploadTimeoutMs(10 * 1024 * 1024); // 170000
 * ```
 */
export function uploadTimeoutMs(bytes: number, baseMs: number = DEFAULTS.bodyTimeoutMs): number {
  return baseMs + Math.ceil((bytes / UPLOAD_MIN_BYTES_PER_SECOND) * 1000);
}

/** The URL a file is served at. */
export function fileUrl(file: Pick<StoredFile, "id" | "name">): string {
  return `${FILES_PREFIX}${file.id}/${encodeURIComponent(file.name)}`;
}

/** A refusal on its way out: the status, code, message and extra headers. */
class Refusal {
  constructor(
    readonly status: number,
    readonly code: UploadErrorCode,
    readonly message: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

/**
 * The two routes; `main.ts` sends `POST /api/v1/uploads` to
 * {@linkcode Uploads.upload} and `/files/…` to {@linkcode Uploads.serve},
 * each after the browser policy.
 *
 * @example Usage
 * ```ts ignore
 * import { Uploads } from "./uploads.ts";
 * const uploads = new Uploads({ files, authenticate: () => ({ userId: "u1" }) });
 * Deno.serve((req) =>
 *   new URL(req.url).pathname === "/api/v1/uploads" ? uploads.upload(req) : uploads.serve(req)
 * );
 * ```
 */
export class Uploads {
  #files: FileStore;
  #usage: Usage | null;
  #authenticate: UploadAuthenticate;
  #canRead: CanRead;
  #maxBytes: number;
  #userLimit: number;
  #roomLimit: number;
  #bodyTimeoutMs: number;
  #now: () => number;
  #log: Logger;
  #inFlight = new Map<string, number>();

  /** Creates the routes; see {@linkcode UploadsOptions}. */
  constructor(options: UploadsOptions) {
    this.#files = options.files;
    this.#usage = options.usage ?? null;
    this.#authenticate = options.authenticate ?? (() => null);
    this.#canRead = options.canRead ?? (() => true);
    this.#maxBytes = options.maxUploadBytes ?? DEFAULTS.maxUploadBytes;
    this.#userLimit = options.uploadUserBytesPerDay ?? DEFAULTS.uploadUserBytesPerDay;
    this.#roomLimit = options.uploadRoomBytesPerDay ?? DEFAULTS.uploadRoomBytesPerDay;
    this.#bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? (() => {});
  }

  /** The largest file accepted, in bytes. */
  get maxUploadBytes(): number {
    return this.#maxBytes;
  }

  /** Answers `POST /api/v1/uploads`. */
  async upload(req: Request): Promise<Response> {
    let userId: string | undefined;
    try {
      if (req.method !== "POST") {
        throw new Refusal(
          405,
          "method_not_allowed",
          `Cannot upload file: use POST, not ${req.method}`,
          {
            allow: "POST",
          },
        );
      }
      const identity = await this.#identify(req);
      userId = identity.userId;
      const room = await this.#room(req, identity);
      const boundary = formBoundary(req.headers.get("content-type"));
      if (!boundary) {
        throw new Refusal(
          415,
          "unsupported_media_type",
          "Cannot upload file: send multipart/form-data with the file in the field 'file'",
        );
      }
      const declared = Number(req.headers.get("content-length") ?? NaN);
      if (declared > this.#maxBytes + FORM_OVERHEAD_BYTES) throw this.#tooLarge();
      if ((this.#inFlight.get(userId) ?? 0) >= MAX_UPLOADS_IN_FLIGHT) {
        throw new Refusal(
          429,
          "rate_limited",
          `Cannot upload file: ${MAX_UPLOADS_IN_FLIGHT} uploads are under way already`,
          { "retry-after": "1" },
        );
      }
      await this.#checkQuota(userId, room, Number.isFinite(declared) ? declared : 0);
      this.#inFlight.set(userId, (this.#inFlight.get(userId) ?? 0) + 1);
      try {
        const file = await this.#receive(req, boundary, userId, room, declared);
        return json(201, answer(file));
      } finally {
        const left = (this.#inFlight.get(userId) ?? 1) - 1;
        if (left > 0) this.#inFlight.set(userId, left);
        else this.#inFlight.delete(userId);
      }
    } catch (error) {
      await req.body?.cancel().catch(() => {});
      return this.#refuse(error, "upload");
    }
  }

  /** Answers `GET` and `HEAD` `/files/{id}/{name}`. */
  async serve(req: Request): Promise<Response> {
    try {
      await req.body?.cancel().catch(() => {});
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new Refusal(
          405,
          "method_not_allowed",
          `Cannot read file: use GET, not ${req.method}`,
          {
            allow: "GET, HEAD",
          },
        );
      }
      const { pathname } = new URL(req.url);
      const id = /^\/files\/([^/]+)(?:\/[^/]*)?$/.exec(pathname)?.[1];
      const identity = await this.#identify(req);
      const { userId } = identity;
      const notFound = new Refusal(404, "not_found", "Cannot read file: no such file");
      if (!id || !FILE_ID_PATTERN.test(id)) throw notFound;
      const file = await this.#files.stat(id);
      if (!file) throw notFound;
      // Loose: its uploader only. Posted: whoever may read its room. Never say which.
      const allowed = file.messageId === undefined
        ? file.owner === userId
        : await this.#canRead(userId, file.room, identity);
      if (!allowed) throw notFound;
      const etag = `"${file.id}"`;
      const headers = fileHeaders(file, etag);
      const match = req.headers.get("if-none-match");
      if (match && match.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag)) {
        return new Response(null, { status: 304, headers });
      }
      if (req.method === "HEAD") return new Response(null, { status: 200, headers });
      const got = await this.#files.get(id);
      if (!got) throw notFound;
      return new Response(got.body, { status: 200, headers });
    } catch (error) {
      return this.#refuse(error, "read");
    }
  }

  /** The user, or a 401. */
  async #identify(req: Request): Promise<UploadIdentity> {
    const identity = await this.#authenticate(req);
    if (!identity) {
      throw new Refusal(
        401,
        "auth_required",
        "Cannot authorize request: send a session token (X-Chat-Session) or a bearer token",
      );
    }
    return identity;
  }

  /** The room in `?room=`, which the user may read: else 400 or 403. */
  async #room(req: Request, identity: UploadIdentity): Promise<string> {
    const raw = new URL(req.url).searchParams.get("room");
    if (raw === null) {
      throw new Refusal(400, "invalid_message", "Cannot upload file: 'room' is required (?room=…)");
    }
    const checked = checkRoom(raw);
    if (!checked.ok) {
      throw new Refusal(
        400,
        "invalid_message",
        checked.message.replace(/^Cannot join room/, "Cannot upload file"),
      );
    }
    if (!(await this.#canRead(identity.userId, checked.name, identity))) {
      throw new Refusal(403, "forbidden", "Cannot upload file: you may not post in this room");
    }
    return checked.name;
  }

  /** 429 when the user's or the room's bytes for the day are used up already. */
  async #checkQuota(userId: string, room: string, declared: number): Promise<void> {
    if (!this.#usage) return;
    for (const [key, limit] of this.#quotaKeys(userId, room)) {
      if (limit === 0) continue;
      const used = await this.#usage.used(key, QUOTA_WINDOW_MS);
      if (used >= limit || used + Math.max(0, declared - FORM_OVERHEAD_BYTES) > limit) {
        throw this.#overQuota(key, limit);
      }
    }
  }

  #quotaKeys(userId: string, room: string): [string, number][] {
    return [
      [`upload:user:${userId}`, this.#userLimit],
      [`upload:room:${room}`, this.#roomLimit],
    ];
  }

  /** Reads the form and stores its file part. */
  async #receive(
    req: Request,
    boundary: string,
    userId: string,
    room: string,
    declared: number,
  ): Promise<StoredFile> {
    if (!req.body) {
      throw new Refusal(400, "invalid_message", "Cannot upload file: the body is empty");
    }
    const budget = uploadTimeoutMs(
      Number.isFinite(declared) ? Math.min(declared, this.#maxBytes) : this.#maxBytes,
      this.#bodyTimeoutMs,
    );
    const body = cappedStream(req.body, {
      maxBytes: this.#maxBytes + FORM_OVERHEAD_BYTES,
      timeoutMs: budget,
    });
    try {
      for await (const part of formParts(body, boundary)) {
        if (part.name !== "file" || part.filename === undefined) {
          await part.body.cancel();
          continue;
        }
        const file = await this.#store(part.body, part.filename, part.type, userId, room);
        await this.#charge(file, userId, room);
        return file;
      }
    } catch (error) {
      throw limitOf(error) ?? error;
    } finally {
      await body.cancel().catch(() => {});
    }
    throw new Refusal(
      400,
      "invalid_message",
      "Cannot upload file: the form has no file in the field 'file'",
    );
  }

  /** Checks the type from the bytes, then streams the file into the store. */
  async #store(
    body: ReadableStream<Uint8Array>,
    filename: string,
    partType: string | undefined,
    owner: string,
    room: string,
  ): Promise<StoredFile> {
    const reader = body.getReader();
    const head = await readHead(reader, SNIFF_BYTES);
    const detected = await detectType(head.bytes);
    const problem = claimProblem(filename, partType, detected);
    if (problem) {
      await reader.cancel().catch(() => {});
      throw new Refusal(415, "unsupported_media_type", `Cannot upload file: ${problem}`);
    }
    let stream = prepend(head.bytes, head.done ? null : reader);
    const file: NewFile = {
      id: newFileId(),
      name: safeFileName(filename),
      type: detected.mime,
      owner,
      room,
      createdAt: this.#now(),
    };
    let size: ImageSize | null = headerSize(
      head.bytes.subarray(0, SIZE_HEADER_BYTES + 64),
      detected.mime,
    );
    const scrubber = detected.mime === "image/jpeg" ? new JpegScrubber() : null;
    if (scrubber) stream = stream.pipeThrough(scrubber);
    // The store reads the record when the bytes have ended: the JPEG's size is known by then.
    const sized = new TransformStream<Uint8Array, Uint8Array>({
      flush() {
        size ??= scrubber?.size ?? null;
        if (size) Object.assign(file, size);
      },
    });
    try {
      return await this.#files.put(file, stream.pipeThrough(sized), this.#maxBytes);
    } catch (error) {
      if (error instanceof FileError && error.code === "too_large") throw this.#tooLarge();
      throw error;
    }
  }

  /** Counts the file against its user's and room's day; over either, it is deleted again. */
  async #charge(file: StoredFile, userId: string, room: string): Promise<void> {
    if (!this.#usage) return;
    const charged: string[] = [];
    for (const [key, limit] of this.#quotaKeys(userId, room)) {
      if (limit === 0) continue;
      const wait = await this.#usage.add(key, file.size, limit, QUOTA_WINDOW_MS);
      if (wait > 0) {
        for (const done of charged) {
          await this.#usage.add(done, -file.size, Number.MAX_SAFE_INTEGER, QUOTA_WINDOW_MS);
        }
        await this.#files.delete(file.id).catch(() => {}); // else the sweep
        throw this.#overQuota(key, limit, wait);
      }
      charged.push(key);
    }
  }

  #tooLarge(): Refusal {
    return new Refusal(413, "too_large", `Cannot upload file: it is over ${this.#maxBytes} bytes`, {
      connection: "close",
    });
  }

  #overQuota(key: string, limit: number, waitMs?: number): Refusal {
    const who = key.startsWith("upload:user:") ? "you have" : "this room has";
    const retry = Math.ceil((waitMs ?? QUOTA_WINDOW_MS - (this.#now() % QUOTA_WINDOW_MS)) / 1000);
    return new Refusal(
      429,
      "quota_exceeded",
      `Cannot upload file: ${who} uploaded ${limit} bytes today`,
      { "retry-after": String(retry) },
    );
  }

  #refuse(error: unknown, what: "upload" | "read"): Response {
    if (error instanceof Refusal) {
      return json(
        error.status,
        { error: { code: error.code, message: error.message } },
        error.headers,
      );
    }
    const limit = limitOf(error);
    if (limit) return this.#refuse(limit, what);
    if (error instanceof FileError && error.code === "aborted") {
      return this.#refuse(
        new Refusal(400, "invalid_message", "Cannot upload file: the body was cut off"),
        what,
      );
    }
    // The store is down or failed: never a 500 for the client's sake, and no details.
    this.#log({ event: "files", state: `${what} failed`, reason: String(error).slice(0, 200) });
    return json(503, {
      error: { code: "unavailable", message: `Cannot ${what} file: the file store is unavailable` },
    }, { "retry-after": "1" });
  }
}

/** A body limit or a malformed form, wherever in the chain of causes it was thrown, as a refusal. */
function limitOf(error: unknown): Refusal | null {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof Refusal) return e;
    if (e instanceof BodyLimitError) {
      return e.code === "timeout"
        ? new Refusal(408, "timeout", "Cannot upload file: the body did not arrive in time", {
          connection: "close",
        })
        : new Refusal(
          413,
          "too_large",
          `Cannot upload file: ${e.message.replace(/^Cannot read body: /, "")}`,
          {
            connection: "close",
          },
        );
    }
    if (e instanceof MultipartError) {
      return new Refusal(
        400,
        "invalid_message",
        e.message.replace(/^Cannot read form/, "Cannot upload file"),
      );
    }
  }
  return null;
}

/** Reads until `n` bytes or the end. */
async function readHead(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  n: number,
): Promise<{ bytes: Uint8Array; done: boolean }> {
  const pieces: Uint8Array[] = [];
  let size = 0;
  while (size < n) {
    const { done, value } = await reader.read();
    if (done) return { bytes: join(pieces, size), done: true };
    pieces.push(value);
    size += value.byteLength;
  }
  return { bytes: join(pieces, size), done: false };
}

/** `head`, then the rest of `reader`. */
function prepend(
  head: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array> | null,
): ReadableStream<Uint8Array> {
  let first = true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (first) {
        first = false;
        if (head.byteLength) return controller.enqueue(head);
      }
      if (!reader) return controller.close();
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader?.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

function join(pieces: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.byteLength;
  }
  return out;
}

function answer(file: StoredFile): UploadAnswer {
  const { id, name, size, type, width, height } = file;
  return {
    id,
    name,
    size,
    type,
    ...(width !== undefined ? { width, height } : {}),
    url: fileUrl(file),
  };
}

/** The headers a file is served with. */
function fileHeaders(file: StoredFile, etag: string): Headers {
  const inline = INLINE_TYPES.has(file.type);
  const ascii = file.name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  const type = file.type.startsWith("text/") ? `${file.type}; charset=utf-8` : file.type;
  return new Headers({
    ...SECURITY_HEADERS,
    "content-security-policy": `${SECURITY_HEADERS["content-security-policy"]}; sandbox`,
    "content-type": type,
    "content-length": String(file.size),
    "content-disposition": `${inline ? "inline" : "attachment"}; filename="${ascii}"; ` +
      `filename*=UTF-8''${encodeRfc5987(file.name)}`,
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "private, no-cache",
    "vary": "authorization, cookie, x-chat-session",
    etag,
  });
}

function encodeRfc5987(text: string): string {
  return encodeURIComponent(text).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
