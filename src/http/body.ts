/**
 * Reading a request body with a cap and a deadline: the body is streamed and
 * reading stops at the first byte over the limit, so a huge (or endless)
 * body never sits in memory whole, and a body that has not fully arrived in
 * time (`bodyTimeoutMs`, 10 s) is cancelled, so a slow or stalled sender
 * cannot hold the request open. Shared by the server API and the SSE
 * transport's `POST`: every body the server reads goes through here.
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";

/** Why a body was not read: over the limit, not UTF-8, cut off, or not complete in time. */
export type BodyProblem = "too_large" | "not_utf8" | "aborted" | "timeout";

/** The result of {@linkcode readCapped}. */
export type BodyResult =
  | { ok: true; text: string }
  | { ok: false; problem: BodyProblem };

/** Options for {@linkcode readCapped}. */
export interface ReadOptions {
  /**
   * How long the whole body may take to arrive, in ms, from the start of
   * reading; then reading stops, the body is cancelled and the result is
   * `timeout` (answer it with 408 and `connection: close`).
   * @default {DEFAULTS.bodyTimeoutMs}
   */
  timeoutMs?: number;
}

const DECODER = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads `req`'s body as UTF-8 text of at most `limit` bytes, arriving within
 * `options.timeoutMs`. A declared `Content-Length` over the limit is refused
 * without reading; otherwise the body is read chunk by chunk and cancelled
 * as soon as it passes the limit or the deadline.
 *
 * @example Usage
 * ```ts
 * import { readCapped } from "./body.ts";
 * const req = new Request("http://localhost/", { method: "POST", body: "{}" });
 * await readCapped(req, 1024); // { ok: true, text: "{}" }
 * ```
 */
export async function readCapped(
  req: Request,
  limit: number,
  options: ReadOptions = {},
): Promise<BodyResult> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    return { ok: false, problem: "too_large" };
  }
  if (!req.body) return { ok: true, text: "" };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let late = false;
  // Cancelling ends the pending read (it resolves as done), and tells the sender to stop.
  const deadline = setTimeout(() => {
    late = true;
    reader.cancel().catch(() => {});
  }, options.timeoutMs ?? DEFAULTS.bodyTimeoutMs);
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (late) return { ok: false, problem: "timeout" };
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return { ok: false, problem: "too_large" };
      }
      chunks.push(value);
    }
  } catch {
    return { ok: false, problem: late ? "timeout" : "aborted" };
  } finally {
    clearTimeout(deadline);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return { ok: true, text: DECODER.decode(bytes) };
  } catch {
    return { ok: false, problem: "not_utf8" };
  }
}
