/**
 * Reading a request body with a cap: the body is streamed and reading stops
 * at the first byte over the limit, so a huge (or endless) body never sits in
 * memory whole. Shared by the server API and the SSE transport's `POST`.
 *
 * @module
 */

/** The result of {@linkcode readCapped}. */
export type BodyResult =
  | { ok: true; text: string }
  | { ok: false; problem: "too_large" | "not_utf8" | "aborted" };

const DECODER = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads `req`'s body as UTF-8 text of at most `limit` bytes. A declared
 * `Content-Length` over the limit is refused without reading; otherwise the
 * body is read chunk by chunk and cancelled as soon as it passes the limit.
 *
 * @example Usage
 * ```ts
 * import { readCapped } from "./body.ts";
 * const req = new Request("http://localhost/", { method: "POST", body: "{}" });
 * await readCapped(req, 1024); // { ok: true, text: "{}" }
 * ```
 */
export async function readCapped(req: Request, limit: number): Promise<BodyResult> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    return { ok: false, problem: "too_large" };
  }
  if (!req.body) return { ok: true, text: "" };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return { ok: false, problem: "too_large" };
      }
      chunks.push(value);
    }
  } catch {
    return { ok: false, problem: "aborted" };
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
