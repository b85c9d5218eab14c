/**
 * {@linkcode S3Files}: uploaded files in S3-compatible object storage (AWS
 * S3, Cloudflare R2, MinIO, …), requests signed with SigV4 by
 * `npm:aws4fetch`, addressed path-style (`<endpoint>/<bucket>/<key>`).
 * Objects, under the prefix (`chat/` by default):
 *
 * - `loose/<id>`: the loose mark (see `files.ts`), JSON `{since, uploadId?}`,
 *   written before the bytes and deleted when the file is attached;
 * - `files/<id>/data`: the bytes, one object: a single `PUT` for files up
 *   to {@linkcode S3_PART_BYTES}, a multipart upload (parts of that size)
 *   for larger ones, so an upload holds at most one part in memory;
 * - `files/<id>/upload.json`: the id of the multipart upload while it runs,
 *   for the sweep to abort it after a crash;
 * - `files/<id>/meta.json`: the record, written last: the file is visible
 *   once it exists.
 *
 * Object storage has no transactions: an attach or a sweep is a few
 * requests, and the mark is checked again after an upload's record is
 * written (an upload swept meanwhile deletes itself). An attach or detach
 * rewrites the record with `If-Match` on the ETag it read, so where the
 * service honours conditional writes (AWS S3, R2 and MinIO do; `s3rver`
 * ignores them) two attaches of one file cannot both win. A multipart
 * upload cut off by a crash is aborted by the sweep; a bucket
 * lifecycle rule "abort incomplete multipart uploads after 1 day" is a good
 * second net.
 *
 * @module
 */

import { AwsClient } from "aws4fetch";
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

const MAX_ATTEMPTS = 10;

/** Part size of a multipart upload (S3's smallest part but the last is 5 MiB). */
export const S3_PART_BYTES = 5 * 1024 * 1024;

/** Where the bucket is and how to sign for it. */
export interface S3Location {
  /** The service's URL, such as `https://s3.us-east-1.amazonaws.com` or `http://127.0.0.1:9000`. */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The signing region. @default {"us-east-1"} */
  region?: string;
}

/** Options for {@linkcode S3Files}. */
export interface S3FilesOptions extends S3Location {
  /**
   * Starts every object key.
   * @default {"chat/"}
   */
  prefix?: string;
}

interface LooseMark {
  since: number;
}

/** What a request sends: a body, and headers. */
interface S3Body {
  body?: string | Uint8Array<ArrayBuffer>;
  headers?: Record<string, string>;
}

/**
 * Files in S3-compatible object storage.
 *
 * @example Usage
 * ```ts ignore
 * import { S3Files } from "./s3_files.ts";
 * const files = new S3Files({
 *   endpoint: "http://127.0.0.1:9000", bucket: "chat", accessKeyId: "…", secretAccessKey: "…",
 * });
 * await files.stat("AAAAAAAAAAAAAAAAAAAAAA"); // null
 * ```
 */
export class S3Files implements FileStore {
  #aws: AwsClient;
  #base: string;
  #prefix: string;

  /** Talks to the bucket `options` names; see {@linkcode S3FilesOptions}. */
  constructor(options: S3FilesOptions) {
    this.#aws = new AwsClient({
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      service: "s3",
      region: options.region ?? "us-east-1",
      retries: 2,
    });
    this.#base = `${options.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(options.bucket)}`;
    this.#prefix = options.prefix ?? "chat/";
  }

  /** Stores a file; see {@linkcode FileStore.put}. */
  async put(
    file: NewFile,
    body: ReadableStream<Uint8Array>,
    maxBytes: number,
  ): Promise<StoredFile> {
    const mark: LooseMark = { since: file.createdAt };
    const data = this.#dataKey(file.id);
    try {
      await this.#putJson(this.#looseKey(file.id), mark);
    } catch (error) {
      await body.cancel().catch(() => {});
      throw error;
    }
    let size = 0;
    let held: Uint8Array<ArrayBuffer> | undefined;
    let uploadId: string | undefined;
    const parts: string[] = [];
    try {
      for await (const piece of chunked(body, S3_PART_BYTES, maxBytes)) {
        size += piece.byteLength;
        if (held) {
          if (!uploadId) {
            uploadId = await this.#startMultipart(data);
            // So that a sweep can abort it (the mark is written once: its absence means swept).
            await this.#putJson(this.#uploadKey(file.id), { uploadId });
          }
          parts.push(await this.#uploadPart(data, uploadId, parts.length + 1, held));
        }
        held = piece;
      }
      if (uploadId) {
        parts.push(await this.#uploadPart(data, uploadId, parts.length + 1, held!));
        await this.#completeMultipart(data, uploadId, parts);
      } else {
        await this.#send("PUT", data, { body: held ?? new Uint8Array(0) }, "store file");
      }
      const stored: StoredFile = { ...file, size };
      await this.#putJson(this.#metaKey(file.id), stored);
      // No transactions: make sure no sweep took the upload meanwhile.
      const still = await this.#getJson<LooseMark>(this.#looseKey(file.id));
      if (still?.since !== file.createdAt) {
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
    const response = await this.#aws.fetch(this.#url(this.#dataKey(id)));
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok || !response.body) throw await this.#failure(response, "read file");
    return { file, body: response.body };
  }

  /** A file's record; see {@linkcode FileStore.stat}. */
  async stat(id: string): Promise<StoredFile | null> {
    return asStoredFile(await this.#getJson(this.#metaKey(id)));
  }

  /** Deletes a file; see {@linkcode FileStore.delete}. */
  async delete(id: string): Promise<boolean> {
    if (!(await this.stat(id))) return false;
    await this.#putJson(this.#looseKey(id), { since: 0 } satisfies LooseMark);
    await this.#purge(id);
    return true;
  }

  /** Attaches a file; see {@linkcode FileStore.attach}. */
  async attach(id: string, owner: string, room: string, messageId: number): Promise<AttachResult> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const read = await this.#getRecord(id);
      if (!read) return "not_found";
      const { file, etag } = read;
      if (file.owner !== owner) return "forbidden";
      if (file.room !== room) return "other_room";
      if (file.messageId === messageId) return "attached";
      if (file.messageId !== undefined) return "taken";
      const mark = await this.#getJson<LooseMark>(this.#looseKey(id));
      if (!mark || mark.since === 0) return "taken";
      if (!(await this.#putRecord({ ...file, messageId }, etag))) continue; // another write won
      await this.#send("DELETE", this.#looseKey(id), {}, "attach file");
      return "attached";
    }
    throw new Error(`Cannot attach file: ${id} is too contended`);
  }

  /** Detaches a file; see {@linkcode FileStore.detach}. */
  async detach(id: string, now: number): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const read = await this.#getRecord(id);
      if (!read) return false;
      await this.#putJson(this.#looseKey(id), { since: now } satisfies LooseMark);
      const { messageId: _, ...loose } = read.file;
      if (await this.#putRecord(loose, read.etag)) return true;
    }
    throw new Error(`Cannot detach file: ${id} is too contended`);
  }

  /** Every loose id; see {@linkcode FileStore.loose}. */
  async loose(): Promise<LooseFile[]> {
    const found: LooseFile[] = [];
    for (const key of await this.#list(`${this.#prefix}loose/`)) {
      const id = key.slice(`${this.#prefix}loose/`.length);
      const mark = await this.#getJson<LooseMark>(key);
      if (mark) found.push({ id, since: Number(mark.since) || 0 });
    }
    return found;
  }

  /** Deletes what was loose before `cutoff`; see {@linkcode FileStore.sweep}. */
  async sweep(cutoff: number): Promise<number> {
    let swept = 0;
    for (const { id, since } of await this.loose()) {
      if (since >= cutoff) continue;
      const mark = await this.#getJson<LooseMark>(this.#looseKey(id));
      if (!mark || mark.since >= cutoff) continue; // attached or touched meanwhile
      await this.#purge(id);
      swept++;
    }
    return swept;
  }

  /** Deletes the record, the bytes (aborting an unfinished multipart upload), then the mark. */
  async #purge(id: string): Promise<void> {
    await this.#send("DELETE", this.#metaKey(id), {}, "delete file");
    const { uploadId } = await this.#getJson<{ uploadId?: string }>(this.#uploadKey(id)) ?? {};
    if (uploadId) {
      // Best effort: a store without multipart aborts (or one that finished it) may refuse.
      const url = `${this.#url(this.#dataKey(id))}?uploadId=${encodeURIComponent(uploadId)}`;
      await this.#aws.fetch(url, { method: "DELETE" }).then((r) => r.body?.cancel(), () => {});
    }
    await this.#send("DELETE", this.#dataKey(id), {}, "delete file");
    await this.#send("DELETE", this.#uploadKey(id), {}, "delete file");
    await this.#send("DELETE", this.#looseKey(id), {}, "delete file");
  }

  async #startMultipart(key: string): Promise<string> {
    const xml = await this.#send("POST", key, {}, "store file", "?uploads");
    const uploadId = xmlValues(xml, "UploadId")[0];
    if (!uploadId) throw new Error("Cannot store file: S3 sent no UploadId");
    return uploadId;
  }

  async #uploadPart(
    key: string,
    uploadId: string,
    n: number,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<string> {
    const query = `?partNumber=${n}&uploadId=${encodeURIComponent(uploadId)}`;
    const response = await this.#aws.fetch(`${this.#url(key)}${query}`, {
      method: "PUT",
      body: bytes,
    });
    if (!response.ok) throw await this.#failure(response, "store file");
    await response.body?.cancel();
    const etag = response.headers.get("etag");
    if (!etag) throw new Error("Cannot store file: S3 sent no ETag for a part");
    return etag;
  }

  async #completeMultipart(key: string, uploadId: string, etags: string[]): Promise<void> {
    const parts = etags.map((etag, i) =>
      `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`
    ).join("");
    const xml = await this.#send(
      "POST",
      key,
      { body: `<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>` },
      "store file",
      `?uploadId=${encodeURIComponent(uploadId)}`,
    );
    // S3 may answer 200 with an error in the body.
    if (/<Error>/.test(xml)) throw new Error(`Cannot store file: S3 refused the upload's end`);
  }

  /** Every key under `prefix`, following continuation tokens. */
  async #list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ "list-type": "2", prefix });
      if (token) query.set("continuation-token", token);
      const response = await this.#aws.fetch(`${this.#base}?${query}`);
      if (!response.ok) throw await this.#failure(response, "list files");
      const xml = await response.text();
      keys.push(...xmlValues(xml, "Key"));
      token = xmlValues(xml, "IsTruncated")[0] === "true"
        ? xmlValues(xml, "NextContinuationToken")[0]
        : undefined;
    } while (token);
    return keys;
  }

  /** The record and its ETag, or `null`. */
  async #getRecord(id: string): Promise<{ file: StoredFile; etag: string | null } | null> {
    const response = await this.#aws.fetch(this.#url(this.#metaKey(id)));
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) throw await this.#failure(response, "read file");
    let file: StoredFile | null = null;
    try {
      file = asStoredFile(JSON.parse(await response.text()));
    } catch { /* not a record */ }
    return file ? { file, etag: response.headers.get("etag") } : null;
  }

  /** Writes the record if it is still the one with `etag`; `false` when another write won. */
  async #putRecord(file: StoredFile, etag: string | null): Promise<boolean> {
    const response = await this.#aws.fetch(this.#url(this.#metaKey(file.id)), {
      method: "PUT",
      body: JSON.stringify(file),
      headers: { "content-type": "application/json", ...(etag ? { "if-match": etag } : {}) },
    });
    if (response.status === 412 || response.status === 409) {
      await response.body?.cancel();
      return false;
    }
    if (!response.ok) throw await this.#failure(response, "store file");
    await response.body?.cancel();
    return true;
  }

  async #getJson<T = unknown>(key: string): Promise<T | null> {
    const response = await this.#aws.fetch(this.#url(key));
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) throw await this.#failure(response, "read file");
    try {
      return JSON.parse(await response.text()) as T;
    } catch {
      return null;
    }
  }

  async #putJson(key: string, value: unknown): Promise<void> {
    await this.#send("PUT", key, {
      body: JSON.stringify(value),
      headers: { "content-type": "application/json" },
    }, "store file");
  }

  /** Sends a request; resolves with the answer's text, or throws for a status other than 2xx. */
  async #send(
    method: string,
    key: string,
    init: S3Body,
    what: string,
    query = "",
  ): Promise<string> {
    const response = await this.#aws.fetch(`${this.#url(key)}${query}`, {
      method,
      body: init.body,
      headers: init.headers,
    });
    if (!response.ok) throw await this.#failure(response, what);
    return await response.text();
  }

  async #failure(response: Response, what: string): Promise<Error> {
    const text = await response.text().catch(() => "");
    const code = xmlValues(text, "Code")[0] ?? "";
    return new Error(`Cannot ${what}: S3 answered ${response.status}${code ? ` ${code}` : ""}`);
  }

  #url(key: string): string {
    return `${this.#base}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  #looseKey(id: string): string {
    return `${this.#prefix}loose/${id}`;
  }

  #uploadKey(id: string): string {
    return `${this.#prefix}files/${id}/upload.json`;
  }

  #dataKey(id: string): string {
    return `${this.#prefix}files/${id}/data`;
  }

  #metaKey(id: string): string {
    return `${this.#prefix}files/${id}/meta.json`;
  }
}

/** The texts of every `<tag>…</tag>` in `xml`, entities decoded. */
function xmlValues(xml: string, tag: string): string[] {
  const values: string[] = [];
  for (const match of xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, "g"))) {
    values.push(
      match[1].replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">").replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
        .replace(/&amp;/g, "&"),
    );
  }
  return values;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
