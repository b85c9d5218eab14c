/**
 * The server API's moderation routes, for the server's operator (the API
 * token): each one a moderation act through {@linkcode Hub.moderate}, so it
 * is decided, stored and applied on every instance as a moderator's `mod`
 * would be, and forms the room's audit log.
 *
 * - `POST /api/v1/rooms/{room}/bans` `{userId, durationMs?, reason?}`, and
 *   `DELETE /api/v1/rooms/{room}/bans/{userId}`;
 * - `POST /api/v1/rooms/{room}/mutes` (the same body), and
 *   `DELETE /api/v1/rooms/{room}/mutes/{userId}`;
 * - `DELETE /api/v1/rooms/{room}/messages/{id}`;
 * - `PUT /api/v1/rooms/{room}/topic` `{topic}`, `PUT …/slow` `{durationMs}`,
 *   `PUT …/owner` `{userId}`;
 * - `GET /api/v1/rooms/{room}/moderation?before&limit`: the audit log,
 *   newest first; `GET …/reports`: the open reports.
 *
 * @module
 */

import type { Hub } from "../hub/hub.ts";
import type { ModRequest } from "../hub/moderation.ts";
import type { Logger } from "../log.ts";
import { type ChatMessage, type ErrorCode, isUserId } from "../protocol.ts";
import type { ModerationStore } from "../store/moderation.ts";
import { apiError, roomOf, unavailable } from "./api_json.ts";
import { json } from "./responses.ts";
import { readCapped } from "./body.ts";

const ROUTE =
  /^\/api\/v1\/rooms\/([^/]+)\/(bans|mutes|messages|topic|slow|owner|moderation|reports)(?:\/([^/]+))?$/;
const DIGITS = /^[0-9]{1,15}$/;
/** Most audit entries one request returns. */
const MAX_AUDIT_PAGE = 100;
/** Largest body of a moderation request, in bytes. */
const MAX_BODY_BYTES = 4096;

/** What the moderation routes use. */
export interface ModerationRoutes {
  hub: Hub;
  moderation: ModerationStore | null;
  log: Logger;
  bodyTimeoutMs: number;
}

/**
 * Answers `req` when its path is a moderation route (after the API token
 * was checked); `null` for any other path.
 */
export async function moderationRoute(
  req: Request,
  pathname: string,
  routes: ModerationRoutes,
): Promise<Response | null> {
  const match = pathname.match(ROUTE);
  if (!match || (match[2] === "messages" && match[3] === undefined)) return null;
  const [, rawRoom, what, rawItem] = match;
  const method = req.method;
  const allow = ALLOWED[what][rawItem === undefined ? 0 : 1];
  if (!allow.split(", ").includes(method)) {
    await req.body?.cancel().catch(() => {});
    return apiError(
      405,
      "method_not_allowed",
      `Cannot handle request: method ${method} is not allowed here`,
      { allow },
    );
  }
  const room = roomOf(rawRoom, "moderate");
  if (room instanceof Response) return room;
  if (!routes.moderation) {
    return apiError(404, "not_found", "Cannot moderate: moderation is off on this server");
  }
  if (what === "moderation") return await audit(routes, room, new URL(req.url).searchParams);
  if (what === "reports") {
    return json(200, { reports: await routes.moderation.reports(room) });
  }
  const item = rawItem === undefined ? undefined : decodeURIComponent(rawItem);
  if (method === "DELETE") {
    if (what === "messages") {
      if (!DIGITS.test(item!)) {
        return apiError(400, "invalid_message", "Cannot delete message: the id is not a number");
      }
      return await act(routes, room, { action: "delete", ref: Number(item) });
    }
    if (!isUserId(item)) {
      return apiError(400, "invalid_message", "Cannot moderate: no such user id");
    }
    return await act(routes, room, { action: what === "bans" ? "unban" : "unmute", userId: item });
  }
  const body = await readBody(req, routes.bodyTimeoutMs);
  if (body instanceof Response) return body;
  switch (what) {
    case "bans":
    case "mutes": {
      const request = sanction(body, what === "bans" ? "ban" : "mute");
      return request instanceof Response ? request : await act(routes, room, request, 201);
    }
    case "topic":
      if (typeof body.topic !== "string") {
        return apiError(400, "invalid_message", "Cannot set topic: 'topic' must be text");
      }
      return await act(routes, room, { action: "topic", topic: body.topic });
    case "slow":
      if (!Number.isSafeInteger(body.durationMs) || (body.durationMs as number) < 0) {
        return apiError(400, "invalid_message", "Cannot set slow mode: 'durationMs' must be ≥ 0");
      }
      return await act(routes, room, { action: "slow", durationMs: body.durationMs as number });
    default: // owner
      if (!isUserId(body.userId)) {
        return apiError(400, "invalid_message", "Cannot give the room an owner: 'userId' names it");
      }
      return await act(routes, room, { action: "owner", userId: body.userId });
  }
}

/** The methods each route takes: on the collection, and on one item. */
const ALLOWED: Record<string, [string, string]> = {
  bans: ["POST", "DELETE"],
  mutes: ["POST", "DELETE"],
  messages: ["", "DELETE"],
  topic: ["PUT", ""],
  slow: ["PUT", ""],
  owner: ["PUT", ""],
  moderation: ["GET", ""],
  reports: ["GET", ""],
};

/** A mute or ban from its body: `{userId, durationMs?, reason?}`. */
function sanction(body: Record<string, unknown>, action: "ban" | "mute"): ModRequest | Response {
  if (!isUserId(body.userId)) {
    return apiError(400, "invalid_message", `Cannot ${action}: 'userId' must be a user id`);
  }
  const request: ModRequest = { action, userId: body.userId };
  if (body.durationMs !== undefined) {
    if (!Number.isSafeInteger(body.durationMs) || (body.durationMs as number) < 1) {
      return apiError(400, "invalid_message", `Cannot ${action}: 'durationMs' must be ≥ 1`);
    }
    request.durationMs = body.durationMs as number;
  }
  if (body.reason !== undefined) {
    if (typeof body.reason !== "string" || [...body.reason].length > 300) {
      return apiError(400, "invalid_message", `Cannot ${action}: 'reason' must be short text`);
    }
    request.reason = body.reason;
  }
  return request;
}

/** Does the act; answers with its event (`status`), or the refusal as an HTTP error. */
async function act(
  routes: ModerationRoutes,
  room: string,
  request: ModRequest,
  status = 200,
): Promise<Response> {
  const result = await routes.hub.moderate(room, request);
  if ("id" in result) {
    routes.log({ event: "moderation", room, action: request.action });
    return json(status, result satisfies ChatMessage);
  }
  const [http, code] = STATUS[result.code] ?? [400, "invalid_message"] as const;
  return http === 503 ? unavailable(result.message) : apiError(http, code, result.message);
}

const STATUS: Partial<
  Record<ErrorCode, [number, "forbidden" | "not_found" | "invalid_message" | "unavailable"]>
> = {
  forbidden: [403, "forbidden"],
  not_found: [404, "not_found"],
  invalid_message: [400, "invalid_message"],
  unavailable: [503, "unavailable"],
};

async function audit(
  routes: ModerationRoutes,
  room: string,
  params: URLSearchParams,
): Promise<Response> {
  const before = params.get("before");
  const limit = params.get("limit") ?? String(MAX_AUDIT_PAGE);
  if ((before !== null && !DIGITS.test(before)) || !DIGITS.test(limit) || Number(limit) < 1) {
    return apiError(400, "invalid_message", "Cannot read the audit log: bad 'before' or 'limit'");
  }
  const page = await routes.moderation!.audit(
    room,
    before === null ? undefined : Number(before),
    Math.min(MAX_AUDIT_PAGE, Number(limit)),
  );
  return json(200, page);
}

async function readBody(
  req: Request,
  timeoutMs: number,
): Promise<Record<string, unknown> | Response> {
  const type = req.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    await req.body?.cancel().catch(() => {});
    return apiError(415, "unsupported_media_type", "Cannot moderate: the body must be JSON");
  }
  const body = await readCapped(req, MAX_BODY_BYTES, { timeoutMs });
  if (!body.ok) {
    return body.problem === "too_large"
      ? apiError(413, "too_large", `Cannot moderate: the body is over ${MAX_BODY_BYTES} bytes`)
      : body.problem === "timeout"
      ? apiError(408, "timeout", "Cannot moderate: the body did not arrive in time", {
        connection: "close",
      })
      : apiError(400, "invalid_json", "Cannot moderate: the body is not UTF-8 JSON");
  }
  try {
    const value = JSON.parse(body.text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  } catch { /* below */ }
  return apiError(400, "invalid_json", "Cannot moderate: the body must be a JSON object");
}
