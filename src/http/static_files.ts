/**
 * Serves the chat page from a folder, with content types, ETags, `HEAD` and
 * security headers. No request path can leave the folder.
 *
 * @module
 */

import { plain, SECURITY_HEADERS } from "./responses.ts";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json; charset=utf-8",
  txt: "text/plain; charset=utf-8",
};

/**
 * Answers a `GET` or `HEAD` request with a file under `root`; `/` is
 * `index.html`. Unknown or unsafe paths get 404, other methods 405.
 *
 * @example Usage
 * ```ts ignore
 * import { serveStatic } from "./static_files.ts";
 * const root = new URL("./static/", import.meta.url);
 * Deno.serve((req) => serveStatic(req, root));
 * ```
 */
export async function serveStatic(req: Request, root: URL): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return plain(405, "Method not allowed", { allow: "GET, HEAD" });
  }
  const relative = safePath(new URL(req.url).pathname);
  if (relative === null) return plain(404, "Not found");
  let body: Uint8Array<ArrayBuffer>;
  try {
    body = await Deno.readFile(new URL(relative, root));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.IsADirectory) {
      return plain(404, "Not found");
    }
    throw error;
  }
  const etag = await etagOf(body);
  const headers = new Headers({
    ...SECURITY_HEADERS,
    "content-type": CONTENT_TYPES[relative.split(".").pop() ?? ""] ?? "application/octet-stream",
    "cache-control": "no-cache",
    etag,
  });
  if (req.headers.get("if-none-match")?.split(/\s*,\s*/).includes(etag)) {
    return new Response(null, { status: 304, headers });
  }
  headers.set("content-length", String(body.byteLength));
  return new Response(req.method === "HEAD" ? null : body, { headers });
}

/** Maps a URL path to a relative file path, or `null` when it is unsafe. */
function safePath(pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (/[\\\0:]/.test(decoded)) return null;
  const segments = decoded.split("/").filter((segment) => segment !== "");
  if (segments.some((segment) => segment === "." || segment === ".." || segment.startsWith("."))) {
    return null;
  }
  return segments.length === 0 ? "index.html" : segments.map(encodeURIComponent).join("/");
}

async function etagOf(body: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return `"${Array.from(digest.subarray(0, 12), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
}
