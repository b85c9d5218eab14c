/**
 * Plain-text and JSON HTTP responses with the security headers every
 * response carries.
 *
 * @module
 */

/** Headers sent with every response the server makes itself. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
    "form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/**
 * A `text/plain` response with the security headers and any `extra` ones.
 *
 * @example Usage
 * ```ts
 * import { plain } from "./responses.ts";
 * const response = plain(405, "Method not allowed", { allow: "GET, HEAD" });
 * response.status; // 405
 * ```
 */
export function plain(status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8", ...extra },
  });
}

/**
 * A JSON response with the security headers, `Cache-Control: no-store` and
 * any `extra` ones.
 *
 * @example Usage
 * ```ts
 * import { json } from "./responses.ts";
 * const response = json(404, { error: { code: "not_found", message: "No such room" } });
 * response.headers.get("cache-control"); // "no-store"
 * ```
 */
export function json(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...extra,
    },
  });
}

/**
 * A server fault: one log line without the request (no path, no stack
 * trace), and a 500 without details.
 */
export function internalError(error: unknown): Response {
  console.error(`error: ${error instanceof Error ? error.message : error}`);
  return plain(500, "Internal server error");
}
