/**
 * Who an upload or a file request comes from, until accounts are wired in:
 * the server API's bearer token (user `api`), or a guest's session token in
 * an `X-Chat-Session` header (the page sends it with `fetch`, since guests
 * have no cookie, and shows files from `blob:` URLs). The chat uses it
 * unless given another `authenticateUpload`.
 *
 * @module
 */

import { SessionSigner } from "../auth/session.ts";
import { TokenCheck } from "../auth/token_check.ts";
import type { UploadAuthenticate } from "./uploads.ts";

/** The header a guest's session token comes in. */
export const SESSION_HEADER = "x-chat-session";
/** The user id the API token uploads as. */
export const API_UPLOADER = "api";

/** Options for {@linkcode sessionUploadAuth}. */
export interface SessionUploadAuthOptions {
  /** The secret session tokens are signed with. */
  sessionSecret: string;
  /** The server API's token; unset: no bearer token is accepted. @default {undefined} */
  apiToken?: string;
}

/**
 * An `authenticate` hook for uploads: `Authorization: Bearer <API_TOKEN>`
 * is user `api`, `X-Chat-Session: <token>` the session's user; anything
 * else is nobody (`null`). A wrong token is nobody too, never an error.
 *
 * @example Usage
 * ```ts
 * import { SessionSigner } from "../auth/session.ts";
 * import { sessionUploadAuth } from "./upload_auth.ts";
 * const signer = await SessionSigner.create("secret");
 * const { id, token } = await signer.issue();
 * const authenticate = sessionUploadAuth({ sessionSecret: "secret" });
 * const req = new Request("http://localhost/", { headers: { "x-chat-session": token } });
 * (await authenticate(req))?.userId === id; // true
 * ```
 */
export function sessionUploadAuth(options: SessionUploadAuthOptions): UploadAuthenticate {
  const signer = SessionSigner.create(options.sessionSecret);
  const check = options.apiToken ? new TokenCheck(options.apiToken) : null;
  return async (req) => {
    const session = req.headers.get(SESSION_HEADER);
    if (session) {
      const userId = await (await signer).verify(session.trim());
      return userId ? { userId } : null;
    }
    const [scheme, token, ...rest] = (req.headers.get("authorization") ?? "").trim().split(/\s+/);
    if (check && scheme?.toLowerCase() === "bearer" && token && !rest.length) {
      return (await check.matches(token)) ? { userId: API_UPLOADER } : null;
    }
    return null;
  };
}
