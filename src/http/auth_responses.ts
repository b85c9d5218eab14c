/**
 * What the account routes (`auth_api.ts`) answer with: errors
 * `{"error":{"code","message"}}` with one status per code (as JSON from
 * `responses.ts`), and the JSON body of a request, read through `body.ts`
 * (a cap and a deadline).
 *
 * @module
 */

import type { CeremonyCode } from "../auth/passkeys.ts";
import { readCapped } from "./body.ts";
import { json } from "./responses.ts";

/** Largest body an account route reads, in bytes (an attestation is a few KiB). */
export const MAX_AUTH_BODY_BYTES = 16 * 1024;

/** The account routes' error codes: the ceremonies' and the HTTP ones. */
export type AuthErrorCode =
  | CeremonyCode
  | "invalid_json"
  | "auth_required"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "last_passkey"
  | "timeout"
  | "too_large"
  | "unsupported_media_type"
  | "rate_limited"
  | "unavailable";

/** The status each code answers with. */
export const STATUS: Readonly<Record<AuthErrorCode, number>> = {
  invalid_json: 400,
  invalid_message: 400,
  no_relying_party: 400,
  challenge_invalid: 400,
  auth_required: 401,
  unknown_credential: 401,
  verification_failed: 401,
  replayed: 401,
  forbidden: 403,
  account_limit: 403,
  not_found: 404,
  method_not_allowed: 405,
  timeout: 408,
  name_reserved: 409,
  credential_exists: 409,
  passkey_limit: 409,
  last_passkey: 409,
  too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
};

/**
 * An error: `{"error":{"code","message"}}` with the code's status.
 *
 * @example Usage
 * ```ts
 * import { authError } from "./auth_responses.ts";
 * authError("name_reserved", "Cannot register: the name 'ada' is reserved").status; // 409
 * ```
 */
export function authError(
  code: AuthErrorCode,
  message: string,
  extra: Record<string, string> = {},
): Response {
  return json(STATUS[code], { error: { code, message } }, extra);
}

/** A ceremony's refusal as an error response. */
export function refused(result: { code: CeremonyCode; message: string }): Response {
  return authError(result.code, result.message);
}

/**
 * Reads `req`'s body as a JSON object: the object, or the error to answer
 * (415 without `Content-Type: application/json`, 413 over
 * {@linkcode MAX_AUTH_BODY_BYTES}, 408 when not in full within `timeoutMs`,
 * 400 for text that is not a JSON object). `action` words the messages.
 */
export async function readJsonBody(
  req: Request,
  action: string,
  timeoutMs: number,
): Promise<Record<string, unknown> | Response> {
  const type = req.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    await req.body?.cancel().catch(() => {});
    return authError(
      "unsupported_media_type",
      `Cannot ${action}: the body must be application/json`,
    );
  }
  const body = await readCapped(req, MAX_AUTH_BODY_BYTES, { timeoutMs });
  if (!body.ok) {
    if (body.problem === "timeout") {
      return authError(
        "timeout",
        `Cannot ${action}: the body did not arrive within ${timeoutMs} ms`,
        { connection: "close" },
      );
    }
    if (body.problem === "too_large") {
      return authError(
        "too_large",
        `Cannot ${action}: the body is larger than ${MAX_AUTH_BODY_BYTES} bytes`,
      );
    }
    return authError("invalid_json", `Cannot ${action}: the body is not valid UTF-8 JSON`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body.text);
  } catch {
    return authError("invalid_json", `Cannot ${action}: the body is not valid JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return authError("invalid_message", `Cannot ${action}: the body must be a JSON object`);
  }
  return value as Record<string, unknown>;
}
