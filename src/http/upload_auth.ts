/**
 * Who an upload or a file request comes from: the server API's bearer token
 * (user `api`), a JWT as a bearer token when JWT auth is on (its subject,
 * within its `rooms` claim), an account's session cookie, or a guest's
 * session token in an `X-Chat-Session` header (the page sends it with
 * `fetch`, since guests have no cookie, and shows files from `blob:` URLs).
 * The chat uses it unless given another `authenticateUpload`.
 *
 * @module
 */

import type { Authenticate } from "../auth/jwt.ts";
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
  /** Verifies JWTs (JWT auth on: then there are no guest session tokens). @default {null} */
  authenticate?: Authenticate | null;
  /** The account a request's session cookie signs in to, if any. @default {undefined} */
  account?: (req: Request) => Promise<string | null>;
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
  const { authenticate = null, account } = options;
  return async (req) => {
    const session = req.headers.get(SESSION_HEADER);
    if (session && !authenticate) {
      const userId = await (await signer).verify(session.trim());
      return userId ? { userId } : null;
    }
    const [scheme, token, ...rest] = (req.headers.get("authorization") ?? "").trim().split(/\s+/);
    if (scheme?.toLowerCase() === "bearer" && token && !rest.length) {
      if (check && await check.matches(token)) return { userId: API_UPLOADER };
      if (!authenticate) return null;
      try {
        const { userId, rooms } = await authenticate(token);
        return rooms ? { userId, rooms } : { userId };
      } catch {
        return null; // a refused token is nobody
      }
    }
    const accountId = account && await account(req);
    return accountId ? { userId: accountId } : null;
  };
}
