/**
 * A streaming `multipart/form-data` reader (RFC 7578): each part's headers,
 * and its body as a stream read straight from the request, so an upload is
 * never held in memory whole (`Request.formData()` would). A part must be
 * read to its end or cancelled before the next one comes.
 *
 * @module
 */

/** One part of a form. */
export interface FormPart {
  /** The field's name (`Content-Disposition: form-data; name="…"`). */
  name: string;
  /** The file name, for a file field. */
  filename?: string;
  /** The part's `Content-Type`, if given. */
  type?: string;
  /** The part's bytes; read it to its end, or cancel it to skip the rest. */
  body: ReadableStream<Uint8Array>;
}

/** Why a form could not be read: a stable code, and a message in Deno's style. */
export class MultipartError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MultipartError";
  }
}

/** The most bytes of one part's headers. */
const MAX_HEADER_BYTES = 8 * 1024;
/** The most parts one form may have. */
const MAX_PARTS = 20;
const CRLF = new Uint8Array([13, 10]);
const HEADER_END = new Uint8Array([13, 10, 13, 10]);

/**
 * The boundary of a `multipart/form-data` content type, or `null`.
 *
 * @example Usage
 * ```ts
 * import { formBoundary } from "./multipart.ts";
 * formBoundary("multipart/form-data; boundary=----x1"); // "----x1"
 * formBoundary("application/json"); // null
 * ```
 */
export function formBoundary(contentType: string | null): string | null {
  if (!contentType) return null;
  const [type, ...params] = contentType.split(";");
  if (type.trim().toLowerCase() !== "multipart/form-data") return null;
  for (const param of params) {
    const match = /^\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s";]{1,70}))\s*$/i.exec(param);
    if (match) return match[1] ?? match[2];
  }
  return null;
}

/**
 * The parts of a form whose body is `body`, one at a time. Throws a
 * {@linkcode MultipartError} for a malformed form (no boundary line, a
 * part's headers over 8 KiB, more than 20 parts, or an end before the
 * closing boundary); an error of `body` itself comes through as it is.
 *
 * @example Usage
 * ```ts
 * import { formParts } from "./multipart.ts";
 * const form = new FormData();
 * form.append("file", new File(["hi"], "a.txt", { type: "text/plain" }));
 * const req = new Request("http://localhost/", { method: "POST", body: form });
 * const boundary = req.headers.get("content-type")!.split("boundary=")[1];
 * for await (const part of formParts(req.body!, boundary)) {
 *   part.name; // "file"
 *   await new Response(part.body).text(); // "hi"
 * }
 * ```
 */
export async function* formParts(
  body: ReadableStream<Uint8Array>,
  boundary: string,
): AsyncGenerator<FormPart> {
  const input = new Input(body);
  // The first boundary may have a preamble before it; later ones follow a CRLF.
  const first = new TextEncoder().encode(`--${boundary}`);
  const delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
  try {
    if (!(await input.skipPast(first, 64 * 1024))) {
      throw new MultipartError("Cannot read form: no boundary line");
    }
    for (let count = 0;; count++) {
      // After a boundary: "--" ends the form, CRLF starts a part.
      const after = await input.take(2);
      if (after[0] === 45 && after[1] === 45) return;
      if (after[0] !== CRLF[0] || after[1] !== CRLF[1]) {
        throw new MultipartError("Cannot read form: a boundary line is malformed");
      }
      if (count === MAX_PARTS) {
        throw new MultipartError(`Cannot read form: it has more than ${MAX_PARTS} parts`);
      }
      const head = await input.until(HEADER_END, MAX_HEADER_BYTES);
      if (head === null) {
        throw new MultipartError("Cannot read form: a part's headers are too long or cut off");
      }
      const part = partHeaders(new TextDecoder().decode(head));
      const done = Promise.withResolvers<void>();
      // Awaited below only if the consumer comes back for the next part: never unhandled.
      done.promise.catch(() => {});
      let finished = false;
      const finish = (error?: unknown) => {
        if (finished) return;
        finished = true;
        if (error) done.reject(error);
        else done.resolve();
      };
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const piece = await input.readUntil(delimiter);
            if (piece === null) {
              controller.close();
              finish();
            } else controller.enqueue(piece);
          } catch (error) {
            controller.error(error);
            finish(error);
          }
        },
        async cancel() {
          try {
            while ((await input.readUntil(delimiter)) !== null) { /* skip */ }
            finish();
          } catch (error) {
            finish(error);
          }
        },
      }, { highWaterMark: 0 });
      yield { ...part, body: stream };
      if (!finished) await stream.cancel(); // the consumer went on without reading it
      await done.promise;
    }
  } finally {
    await input.close();
  }
}

/** Reads a part's `Content-Disposition` and `Content-Type`. */
function partHeaders(text: string): Omit<FormPart, "body"> {
  let name: string | undefined;
  let filename: string | undefined;
  let type: string | undefined;
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const header = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (header === "content-type") type = value;
    if (header !== "content-disposition") continue;
    for (const match of value.matchAll(/;\s*([\w*]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g)) {
      const key = match[1].toLowerCase();
      const raw = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : match[3];
      if (key === "name") name = raw;
      else if (key === "filename") filename ??= raw;
      else if (key === "filename*") filename = decodeExtended(raw) ?? filename;
    }
  }
  if (name === undefined) {
    throw new MultipartError("Cannot read form: a part has no name");
  }
  return { name, filename, type };
}

/** RFC 5987 `UTF-8''text%20here`, or `undefined`. */
function decodeExtended(value: string): string | undefined {
  const match = /^utf-8'[^']*'(.*)$/i.exec(value);
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
}

/** The request body with a look-ahead buffer. */
class Input {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: Uint8Array = new Uint8Array(0);
  #done = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** Reads more into the buffer; `false` at the end of the body. */
  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const { done, value } = await this.#reader.read();
    if (done) {
      this.#done = true;
      return false;
    }
    const joined = new Uint8Array(this.#buffer.length + value.length);
    joined.set(this.#buffer);
    joined.set(value, this.#buffer.length);
    this.#buffer = joined;
    return true;
  }

  /** Exactly `n` bytes. */
  async take(n: number): Promise<Uint8Array> {
    while (this.#buffer.length < n) {
      if (!(await this.#fill())) throw new MultipartError("Cannot read form: it ends too soon");
    }
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** Skips past the first `pattern` within `limit` bytes; `false` when it is not there. */
  async skipPast(pattern: Uint8Array, limit: number): Promise<boolean> {
    while (true) {
      const at = indexOf(this.#buffer, pattern);
      if (at >= 0) {
        this.#buffer = this.#buffer.subarray(at + pattern.length);
        return true;
      }
      if (this.#buffer.length > limit || !(await this.#fill())) return false;
    }
  }

  /** The bytes before `pattern` (which is consumed), within `limit`; `null` when not found. */
  async until(pattern: Uint8Array, limit: number): Promise<Uint8Array | null> {
    while (true) {
      const at = indexOf(this.#buffer, pattern);
      if (at > limit) return null;
      if (at >= 0) {
        const out = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.subarray(at + pattern.length);
        return out;
      }
      if (this.#buffer.length > limit || !(await this.#fill())) return null;
    }
  }

  /**
   * The next bytes before `delimiter`, as many as are safe to hand out;
   * `null` once the delimiter itself is reached (and consumed).
   */
  async readUntil(delimiter: Uint8Array): Promise<Uint8Array | null> {
    while (true) {
      const at = indexOf(this.#buffer, delimiter);
      if (at === 0) {
        this.#buffer = this.#buffer.subarray(delimiter.length);
        return null;
      }
      if (at > 0) return this.#split(at);
      // Everything but a tail that could be the start of the delimiter is part of the body.
      const safe = this.#buffer.length - delimiter.length + 1;
      if (safe > 0) return this.#split(safe);
      if (!(await this.#fill())) throw new MultipartError("Cannot read form: it ends too soon");
    }
  }

  #split(n: number): Uint8Array {
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  async close(): Promise<void> {
    if (!this.#done) await this.#reader.cancel().catch(() => {});
    this.#reader.releaseLock();
  }
}

/** Where `pattern` first occurs in `data`, or −1. */
function indexOf(data: Uint8Array, pattern: Uint8Array): number {
  const first = pattern[0];
  for (let i = data.indexOf(first); i >= 0 && i <= data.length - pattern.length;) {
    let j = 1;
    while (j < pattern.length && data[i + j] === pattern[j]) j++;
    if (j === pattern.length) return i;
    i = data.indexOf(first, i + 1);
  }
  return -1;
}
