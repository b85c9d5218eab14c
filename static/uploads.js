/**
 * Files for the chat, with no DOM: uploading them (`POST
 * /api/v1/uploads?room=R`, one `multipart/form-data` field `file`) with
 * progress and cancel over `XMLHttpRequest` (injected, so Deno tests give
 * one of their own), a queue per room of the files being attached to the
 * next message, fetching a file's bytes with the session header (`<img src>`
 * cannot send one), and what a file is (an image shown inline, or a file to
 * download). Deno tests import it.
 *
 * Only PNG, JPEG, GIF and WebP images are shown inline, and only with their
 * size known; everything else, SVG and HTML included, is a file to download,
 * never rendered.
 *
 * @module
 */

import { MAX_ATTACHMENTS, readAttachments } from "./conversation.js";

export { MAX_ATTACHMENTS };

/** Where uploads go. */
export const UPLOAD_PATH = "/api/v1/uploads";
/** The header a guest's session token goes in. */
export const SESSION_HEADER = "X-Chat-Session";
/** The largest file the server takes by default (`MAX_UPLOAD_BYTES`). */
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
/** Uploads of one queue at once (the server allows 4 per user). */
export const PARALLEL_UPLOADS = 3;
/** The types shown inline as images; anything else is a file to download. */
export const INLINE_TYPES = Object.freeze(
  new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]),
);

/** @typedef {import("./conversation.js").Attachment} Attachment */

/**
 * Whether `file` is shown inline as an image: one of {@linkcode INLINE_TYPES}
 * with its width and height known (so its place is kept before it loads).
 *
 * @param {Attachment} file
 */
export function isInlineImage(file) {
  return INLINE_TYPES.has(file.type) && Number(file.width) > 0 && Number(file.height) > 0;
}

/**
 * A file's address: `/files/{id}/{name}`.
 *
 * @param {{ id: string, name: string }} file
 */
export function fileUrl(file) {
  return `/files/${encodeURIComponent(file.id)}/${encodeURIComponent(file.name)}`;
}

/**
 * A size for people: "512 bytes", "12 KB", "3.4 MB".
 *
 * @param {number} bytes
 */
export function formatSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 1024) {
    return `${Math.max(0, Math.round(bytes || 0))} ${bytes === 1 ? "byte" : "bytes"}`;
  }
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1).replace(/\.0$/, "") : Math.round(value)} ${units[unit]}`;
}

/**
 * The size an image is shown at: its own, scaled down to fit `max` (and
 * never up), so its place is reserved before its bytes come.
 *
 * @param {{ width?: number, height?: number }} file
 * @param {{ width: number, height: number }} max
 * @returns {{ width: number, height: number }}
 */
export function fitSize(file, max) {
  const width = Number(file.width) || max.width;
  const height = Number(file.height) || max.height;
  const scale = Math.min(1, max.width / width, max.height / height);
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

/** An upload or a file request the server refused, or that never reached it. */
export class UploadError extends Error {
  /**
   * @param {string} message For people.
   * @param {{ status?: number, code?: string, retryAfter?: number }} [details] `status` 0:
   *   no answer (the network), `code`: the server's (`too_large`, `quota_exceeded`, …) or
   *   `aborted`.
   */
  constructor(message, { status = 0, code = "", retryAfter } = {}) {
    super(message);
    this.name = "UploadError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * Why an upload was refused, in words, from the server's answer.
 *
 * @param {number} status
 * @param {string} code
 * @param {string} message The server's message, if any.
 */
export function refusalText(status, code, message) {
  if (status === 413 || code === "too_large") {
    // The server names its limit in bytes: "Cannot upload file: it is over 10485760 bytes".
    const limit = Number(/over (\d+) bytes/.exec(message)?.[1]);
    return `It is too large: files may have up to ${
      formatSize(limit > 0 ? limit : MAX_UPLOAD_BYTES)
    }.`;
  }
  if (status === 415) return "Its type is not allowed, or does not match its name.";
  if (code === "quota_exceeded") return "Today's upload allowance is used up: try tomorrow.";
  if (status === 429) return "Too many uploads at once: try again in a moment.";
  if (status === 401 || code === "auth_required") return "Join the room first.";
  if (status === 403) return "You may not upload files here.";
  if (status === 404) return "Uploads are off on this server.";
  if (status === 408) return "It took too long to arrive.";
  if (status === 503) return "The file store is unavailable: try again.";
  return message || `The server refused it (${status}).`;
}

/**
 * Options of {@linkcode uploadFile}.
 *
 * @typedef {object} UploadOptions
 * @property {Blob & { name?: string }} file The file (a `File`, or a `Blob` with `name`).
 * @property {string} room The room it is for.
 * @property {string} [token] The session token (`X-Chat-Session`); none for an account,
 *   whose cookie goes by itself.
 * @property {string | URL} [base] The server's origin; the page's own by default.
 * @property {typeof XMLHttpRequest} [XMLHttpRequest] The constructor; the global one by default.
 * @property {(loaded: number, total: number) => void} [onProgress] Bytes of the request sent.
 */

/**
 * Uploads one file for `room`, reporting progress. `promise` resolves with
 * the file as the server describes it (`{id, name, size, type, width?,
 * height?}`), or rejects with an {@linkcode UploadError} (`code` `aborted`
 * after `abort()`).
 *
 * @example
 * ```js
 * const { promise, abort } = uploadFile({ file, room: "lobby", token, onProgress: (n, of) => {} });
 * const attachment = await promise; // { id, name, size, type, width, height }
 * ```
 *
 * @param {UploadOptions} options
 * @returns {{ promise: Promise<Attachment>, abort: () => void }}
 */
export function uploadFile(options) {
  const Xhr = options.XMLHttpRequest ?? globalThis.XMLHttpRequest;
  const { promise, resolve, reject } = /** @type {PromiseWithResolvers<Attachment>} */ (
    Promise.withResolvers()
  );
  const xhr = new Xhr();
  const url = new URL(
    `${UPLOAD_PATH}?room=${encodeURIComponent(options.room)}`,
    options.base ?? globalThis.location?.href,
  );
  xhr.open("POST", url.href);
  if (options.token) xhr.setRequestHeader(SESSION_HEADER, options.token);
  xhr.responseType = "text";
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) options.onProgress?.(event.loaded, event.total);
  });
  xhr.addEventListener("load", () => {
    let body = null;
    try {
      body = JSON.parse(xhr.responseText);
    } catch { /* not JSON: a proxy's page, say */ }
    if (xhr.status === 201 && body) {
      const [file] = readAttachments([body]);
      if (file) return resolve(file);
    }
    const code = String(body?.error?.code ?? "");
    const retry = Number(xhr.getResponseHeader("retry-after"));
    reject(
      new UploadError(refusalText(xhr.status, code, String(body?.error?.message ?? "")), {
        status: xhr.status,
        code,
        ...(retry > 0 ? { retryAfter: retry } : {}),
      }),
    );
  });
  xhr.addEventListener("error", () => {
    reject(new UploadError("The connection failed: try again.", { code: "network" }));
  });
  xhr.addEventListener("abort", () => {
    reject(new UploadError("Cancelled.", { code: "aborted" }));
  });
  const form = new FormData();
  form.append("file", options.file, options.file.name ?? "file");
  xhr.send(form);
  return { promise, abort: () => xhr.abort() };
}

/** Refusals that the same file would get again: bad request, forbidden, too large, wrong type. */
const FINAL_STATUSES = new Set([400, 403, 413, 415]);

/**
 * One file on its way to the next message: `queued`, `uploading` (with
 * `loaded` of `total` bytes sent), `done` (`file` is the server's
 * description) or `failed` (`error` says why; `retriable` when sending it
 * again may help: not for a file too large, of a refused type, or refused
 * for good).
 *
 * @typedef {{ key: string, name: string, size: number, type: string,
 *   state: "queued" | "uploading" | "done" | "failed", loaded: number, total: number,
 *   error: string, retriable: boolean, file: Attachment | null,
 *   blob: Blob & { name?: string } }} UploadItem
 */

/**
 * Options of {@linkcode UploadQueue}.
 *
 * @typedef {object} UploadQueueOptions
 * @property {string} room The room the files are for.
 * @property {() => string} [token] The session token now ("" for none).
 * @property {string | URL} [base] The server's origin.
 * @property {typeof XMLHttpRequest} [XMLHttpRequest] For {@linkcode uploadFile}.
 * @property {number} [parallel] Uploads at once; {@linkcode PARALLEL_UPLOADS} by default.
 * @property {number} [maxBytes] Files larger than this fail at once, unsent.
 */

/**
 * The files being attached to a room's next message: each uploaded as soon
 * as it is added, a few at once, with progress; cancel stops one, retry
 * sends a failed one again, and `take()` hands the uploaded ones to a
 * message. Emits `change` (`detail`: the items) whenever anything changes.
 */
export class UploadQueue extends EventTarget {
  /** The room the files are for. */
  room;
  /** @type {UploadItem[]} */
  #items = [];
  /** @type {Map<string, () => void>} */
  #aborts = new Map();
  /** @type {UploadQueueOptions} */
  #o;

  /** @param {UploadQueueOptions} options */
  constructor(options) {
    super();
    this.room = options.room;
    this.#o = options;
  }

  /** A copy of the items, in the order they were added. */
  get items() {
    return this.#items.map((item) => ({ ...item }));
  }

  /** True while a file is queued or uploading. */
  get busy() {
    return this.#items.some((i) => i.state === "queued" || i.state === "uploading");
  }

  /** The uploaded files, ready to go with a message. */
  get ready() {
    return this.#items.flatMap((i) => i.state === "done" && i.file ? [i.file] : []);
  }

  /** How many more files one message may carry. */
  get spaceLeft() {
    return Math.max(0, MAX_ATTACHMENTS - this.#items.length);
  }

  /**
   * Adds files and starts uploading them. At most {@linkcode MAX_ATTACHMENTS}
   * are held at once: the rest are returned, not added.
   *
   * @param {Iterable<Blob & { name?: string }>} files
   * @returns {{ added: UploadItem[], refused: (Blob & { name?: string })[] }}
   */
  add(files) {
    /** @type {UploadItem[]} */
    const added = [];
    const refused = [];
    for (const blob of files) {
      if (this.#items.length >= MAX_ATTACHMENTS) {
        refused.push(blob);
        continue;
      }
      /** @type {UploadItem} */
      const item = {
        key: crypto.randomUUID(),
        name: blob.name || "file",
        size: blob.size,
        type: blob.type,
        state: "queued",
        loaded: 0,
        total: blob.size,
        error: "",
        retriable: true,
        file: null,
        blob,
      };
      const max = this.#o.maxBytes ?? MAX_UPLOAD_BYTES;
      if (blob.size > max) {
        item.state = "failed";
        item.error = `It is too large: files may have up to ${formatSize(max)}.`;
        item.retriable = false;
      }
      this.#items.push(item);
      added.push({ ...item });
    }
    this.#pump();
    this.#changed();
    return { added, refused };
  }

  /**
   * Stops an upload (or forgets a file, whatever its state): it goes from
   * the queue. False when there is no such item.
   *
   * @param {string} key
   */
  cancel(key) {
    const item = this.#items.find((i) => i.key === key);
    if (!item) return false;
    this.#items.splice(this.#items.indexOf(item), 1);
    const abort = this.#aborts.get(key);
    this.#aborts.delete(key);
    abort?.();
    this.#pump();
    this.#changed();
    return true;
  }

  /** Sends a failed file again. False when it is not a failed one. @param {string} key */
  retry(key) {
    const item = this.#items.find((i) => i.key === key);
    if (!item || item.state !== "failed" || !item.retriable) return false;
    Object.assign(item, { state: "queued", loaded: 0, error: "" });
    this.#pump();
    this.#changed();
    return true;
  }

  /**
   * Hands the uploaded files over (to a message): they leave the queue;
   * files still uploading or failed stay.
   *
   * @returns {Attachment[]}
   */
  take() {
    const files = this.ready;
    this.#items = this.#items.filter((i) => i.state !== "done");
    if (files.length) this.#changed();
    return files;
  }

  /** Stops every upload and forgets every file. */
  clear() {
    const aborts = [...this.#aborts.values()];
    this.#aborts.clear();
    this.#items = [];
    for (const abort of aborts) abort();
    this.#changed();
  }

  /** Starts queued uploads while fewer than `parallel` run. */
  #pump() {
    const parallel = this.#o.parallel ?? PARALLEL_UPLOADS;
    for (const item of this.#items) {
      if (this.#aborts.size >= parallel) return;
      if (item.state === "queued") this.#start(item);
    }
  }

  /** @param {UploadItem} item */
  #start(item) {
    item.state = "uploading";
    const { promise, abort } = uploadFile({
      file: item.blob,
      room: this.room,
      token: this.#o.token?.() ?? "",
      ...(this.#o.base ? { base: this.#o.base } : {}),
      ...(this.#o.XMLHttpRequest ? { XMLHttpRequest: this.#o.XMLHttpRequest } : {}),
      onProgress: (loaded, total) => {
        if (item.state !== "uploading") return;
        item.loaded = loaded;
        item.total = total;
        this.#changed();
      },
    });
    this.#aborts.set(item.key, abort);
    promise.then(
      (file) => {
        item.state = "done";
        item.file = file;
        item.loaded = item.total;
      },
      (/** @type {UploadError} */ error) => {
        item.state = "failed";
        item.error = error.message;
        item.retriable = !FINAL_STATUSES.has(error.status);
      },
    ).finally(() => {
      if (this.#aborts.get(item.key) !== abort) return; // cancelled: gone already
      this.#aborts.delete(item.key);
      this.#pump();
      this.#changed();
    });
  }

  #changed() {
    this.dispatchEvent(new CustomEvent("change", { detail: this.items }));
  }
}

/**
 * Fetches files with the session header, keeping the newest few in memory
 * so a thumbnail and its full-size view share one download.
 */
export class FileFetcher {
  /** @type {Map<string, Promise<Blob>>} */
  #cache = new Map();
  #token;
  #fetch;
  #base;
  #keep;

  /**
   * @param {{ token?: () => string, fetch?: typeof fetch, base?: string | URL,
   *   keep?: number }} [options] `keep`: how many files stay in memory (default 40).
   */
  constructor({ token, fetch: fetcher, base, keep = 40 } = {}) {
    this.#token = token ?? (() => "");
    this.#fetch = fetcher ?? globalThis.fetch.bind(globalThis);
    this.#base = base;
    this.#keep = keep;
  }

  /**
   * The bytes of `file`. Rejects with an {@linkcode UploadError} (status 404
   * once its message is deleted).
   *
   * @param {Attachment} file
   * @returns {Promise<Blob>}
   */
  blob(file) {
    const held = this.#cache.get(file.id);
    if (held) {
      // The newest used stays longest.
      this.#cache.delete(file.id);
      this.#cache.set(file.id, held);
      return held;
    }
    const promise = this.#get(file);
    this.#cache.set(file.id, promise);
    promise.catch(() => this.#cache.delete(file.id));
    while (this.#cache.size > this.#keep) {
      this.#cache.delete(/** @type {string} */ (this.#cache.keys().next().value));
    }
    return promise;
  }

  /** Forgets a file (its message was deleted). @param {string} id */
  forget(id) {
    this.#cache.delete(id);
  }

  /** @param {Attachment} file */
  async #get(file) {
    const token = this.#token();
    const url = new URL(fileUrl(file), this.#base ?? globalThis.location?.href);
    const response = await this.#fetch(url, {
      headers: token ? { [SESSION_HEADER]: token } : {},
      credentials: "same-origin",
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new UploadError(
        response.status === 404 ? "This file is no longer there." : "The file did not load.",
        { status: response.status },
      );
    }
    return await response.blob();
  }
}
