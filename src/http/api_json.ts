/**
 * What every `/api/v1/` route answers with: `{"error":{"code","message"}}`
 * errors with stable codes (as JSON from `responses.ts`), and the room named
 * in a path, checked as a `join`'s would be.
 *
 * @module
 */

import { checkName } from "../protocol.ts";
import { json } from "./responses.ts";

/** The API's error codes. */
export type ApiErrorCode =
  | "invalid_json"
  | "invalid_message"
  | "auth_required"
  | "auth_invalid"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "name_taken"
  | "name_reserved"
  | "timeout"
  | "too_large"
  | "unsupported_media_type"
  | "rate_limited"
  | "unavailable";

/** An error response: `{"error":{"code","message"}}`. */
export function apiError(
  status: number,
  code: ApiErrorCode,
  message: string,
  extra: Record<string, string> = {},
): Response {
  return json(status, { error: { code, message } }, extra);
}

/** The room named in the path, decoded and normalized, or a 400. */
export function roomOf(raw: string, action: string): string | Response {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return invalid(`Cannot ${action}: the room is not valid percent-encoding`);
  }
  const room = checkName(decoded, "room");
  if (!room.ok) return invalid(room.message.replace(/^Cannot join room:/, `Cannot ${action}:`));
  return room.name;
}

/** A 400 with a protocol validation message, worded for the API. */
export function invalid(message: string): Response {
  return apiError(
    400,
    "invalid_message",
    message.replace(/^Cannot (join room|send message):/, "Cannot post message:"),
  );
}

export function unavailable(message: string): Response {
  return apiError(503, "unavailable", message, { "retry-after": "1" });
}
