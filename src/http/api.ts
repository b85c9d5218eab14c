/**
 * The server API, for bots and back ends: post to a room, read its history,
 * list the rooms. Off unless a token is configured (`API_TOKEN`); every
 * request carries `Authorization: Bearer <token>`, compared in constant
 * time and never logged.
 *
 * - `POST /api/v1/rooms/{room}/messages` `{"text","name","cid?"}`: posted
 *   through {@linkcode Hub.post}, so members see it like any `say` (same
 *   validation, per-room order, stored once per `cid`), marked `bot: true`.
 *   201 with the stored message, also for a repeated `cid` (then it is the
 *   first one); 409 when a member of the room holds the name or an account reserved it.
 * - `GET /api/v1/rooms/{room}/messages?since=N&limit=M`:
 *   `{"messages":[…],"complete":…}` from the history store.
 * - `GET /api/v1/rooms`: `{"rooms":[{"name","members","lastId","lastTs"}]}`,
 *   the room directory, as the protocol's `rooms` answers it.
 * - `DELETE /api/v1/rooms/{room}`: deletes the room's history, and every
 *   member on every instance leaves it; 204, or 404 when it had none.
 * - `GET /api/v1/rooms/{room}/search?q=…&before=TS:ID`: `{"results":[…],
 *   "hasMore","next"?}`, newest first; `before` is the previous answer's
 *   `next` as `ts:id`.
 *
 * Errors are `{"error":{"code","message"}}` with 400, 401, 403, 404, 405,
 * 408, 409, 413, 415, 429 or 503.
 *
 * @module
 */

import { TokenCheck } from "../auth/token_check.ts";
import { DEFAULTS } from "../config.ts";
import { type Hub, NameTakenError } from "../hub/hub.ts";
import type { Logger } from "../log.ts";
import { type ChatMessage, checkName, parseClientMessage } from "../protocol.ts";
import type { HistoryStore } from "../store/history.ts";
import type { MessageSearch } from "../store/search.ts";

/** Results a search answers at most. */
const MAX_SEARCH_PAGE = 20;
import { TokenBucket } from "../rate_limit.ts";
import { readCapped } from "./body.ts";
import { apiError, invalid, roomOf, unavailable } from "./api_json.ts";
import { moderationRoute } from "./moderation_api.ts";
import type { ModerationStore } from "../store/moderation.ts";
import { json, SECURITY_HEADERS } from "./responses.ts";

/** Most messages one history request returns. */
export const MAX_PAGE = 100;
const PREFIX = "/api/v1/";
const ROOM_MESSAGES = /^\/api\/v1\/rooms\/([^/]+)\/messages$/;
const ROOM = /^\/api\/v1\/rooms\/([^/]+)$/;
const ROOM_SEARCH = /^\/api\/v1\/rooms\/([^/]+)\/search$/;
const CURSOR = /^(\d{1,16}):(\d{1,16})$/;
const DIGITS = /^[0-9]{1,15}$/;

/** Options for {@linkcode Api}. */
export interface ApiOptions {
  /** The hub that posts go through. */
  hub: Hub;
  /** Where history is read from. */
  history: HistoryStore;
  /** Search over the rooms' history; `null` turns the search route off (404). @default {null} */
  search?: MessageSearch | null;
  /** The bearer token the API requires; unset turns the API off (404). @default {undefined} */
  apiToken?: string;
  /**
   * Largest request body, in bytes; larger ones get 413.
   * @default {DEFAULTS.maxFrameBytes}
   */
  maxFrameBytes?: number;
  /**
   * How long a request body may take to arrive in full, in ms; a later one
   * gets 408 and its connection is closed.
   * @default {DEFAULTS.bodyTimeoutMs}
   */
  bodyTimeoutMs?: number;
  /**
   * Requests the token may make at once.
   * @default {DEFAULTS.apiRateBurst}
   */
  apiRateBurst?: number;
  /**
   * Sustained requests per second for the token.
   * @default {DEFAULTS.apiRatePerSecond}
   */
  apiRatePerSecond?: number;
  /**
   * Where moderation lives, for the moderation routes; `null` turns them off.
   * @default {null}
   */
  moderation?: ModerationStore | null;
  /**
   * Where refusals are logged (never a token or a body).
   * @default {() => {}}
   */
  log?: Logger;
}

/**
 * The `/api/v1/` routes.
 *
 * @example Usage
 * ```ts ignore
 * import { Api } from "./api.ts";
 * const api = new Api({ hub, history, apiToken: "a long random token" });
 * Deno.serve((req) => api.handle(req));
 * ```
 */
export class Api {
  #hub: Hub;
  #history: HistoryStore;
  #check: TokenCheck | null;
  #maxBodyBytes: number;
  #bodyTimeoutMs: number;
  #bucket: TokenBucket;
  #perSecond: number;
  /** Wrong tokens: guessing is slowed to a few tries a second, whoever tries. */
  #failures = new TokenBucket({ burst: 10, perSecond: 2 });
  #log: Logger;
  #moderation: ModerationStore | null;
  #search: MessageSearch | null;

  /** Creates the API; see {@linkcode ApiOptions}. */
  constructor(options: ApiOptions) {
    this.#hub = options.hub;
    this.#history = options.history;
    this.#check = options.apiToken ? new TokenCheck(options.apiToken) : null;
    this.#maxBodyBytes = options.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.#bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs;
    this.#perSecond = options.apiRatePerSecond ?? DEFAULTS.apiRatePerSecond;
    this.#bucket = new TokenBucket({
      burst: options.apiRateBurst ?? DEFAULTS.apiRateBurst,
      perSecond: this.#perSecond,
    });
    this.#log = options.log ?? (() => {});
    this.#moderation = options.moderation ?? null;
    this.#search = options.search ?? null;
  }

  /** Whether a token is configured. */
  get enabled(): boolean {
    return this.#check !== null;
  }

  /** Answers a request whose path starts with `/api/`. */
  async handle(req: Request): Promise<Response> {
    if (!this.#check) {
      return apiError(404, "not_found", "Cannot find route: the API is off (set API_TOKEN)");
    }
    const refused = await this.#authorize(req);
    if (refused) {
      await req.body?.cancel().catch(() => {});
      return refused;
    }
    const { pathname, searchParams } = new URL(req.url);
    const route = pathname.match(ROOM_MESSAGES);
    if (route) {
      if (req.method === "POST") return await this.#post(req, route[1]);
      if (req.method === "GET") return await this.#messages(route[1], searchParams);
      return this.#notAllowed(req, "GET, POST");
    }
    const search = pathname.match(ROOM_SEARCH);
    if (search && this.#search) {
      if (req.method === "GET") return await this.#find(this.#search, search[1], searchParams);
      return this.#notAllowed(req, "GET");
    }
    const moderated = await moderationRoute(req, pathname, {
      hub: this.#hub,
      moderation: this.#moderation,
      log: this.#log,
      bodyTimeoutMs: this.#bodyTimeoutMs,
    });
    if (moderated) return moderated;
    const room = pathname.match(ROOM);
    if (room) {
      if (req.method === "DELETE") return await this.#deleteRoom(room[1]);
      return this.#notAllowed(req, "DELETE");
    }
    if (pathname === `${PREFIX}rooms`) {
      if (req.method === "GET") return await this.#rooms();
      return this.#notAllowed(req, "GET");
    }
    await req.body?.cancel().catch(() => {});
    return apiError(404, "not_found", `Cannot find route: ${req.method} ${pathname.slice(0, 100)}`);
  }

  /** 401 without a bearer token, 403 for a wrong one, 429 over the rate; else `null`. */
  async #authorize(req: Request): Promise<Response | null> {
    const header = req.headers.get("authorization") ?? "";
    const [scheme, presented, ...rest] = header.trim().split(/\s+/);
    if (scheme?.toLowerCase() !== "bearer" || !presented || rest.length > 0) {
      return apiError(
        401,
        "auth_required",
        "Cannot authorize request: a bearer token is required",
        {
          "www-authenticate": 'Bearer realm="api"',
        },
      );
    }
    if (!await this.#check!.matches(presented)) {
      this.#log({ event: "api_refused", status: 403 });
      if (!this.#failures.take()) return this.#tooMany();
      return apiError(403, "auth_invalid", "Cannot authorize request: the token is not valid");
    }
    if (!this.#bucket.take()) {
      this.#log({ event: "api_refused", status: 429 });
      return this.#tooMany();
    }
    return null;
  }

  #tooMany(): Response {
    const seconds = Math.max(1, Math.ceil(1 / this.#perSecond));
    return apiError(429, "rate_limited", "Cannot handle request: rate limit exceeded, slow down", {
      "retry-after": String(seconds),
    });
  }

  async #notAllowed(req: Request, allow: string): Promise<Response> {
    await req.body?.cancel().catch(() => {});
    return apiError(
      405,
      "method_not_allowed",
      `Cannot handle request: method ${req.method} is not allowed here`,
      { allow },
    );
  }

  // --- routes --------------------------------------------------------------

  async #post(req: Request, rawRoom: string): Promise<Response> {
    const type = req.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
    if (type !== "application/json") {
      await req.body?.cancel().catch(() => {});
      return apiError(
        415,
        "unsupported_media_type",
        "Cannot post message: the body must be application/json",
      );
    }
    const room = roomOf(rawRoom, "post message");
    if (room instanceof Response) {
      await req.body?.cancel().catch(() => {});
      return room;
    }
    const body = await readCapped(req, this.#maxBodyBytes, { timeoutMs: this.#bodyTimeoutMs });
    if (!body.ok) {
      if (body.problem === "timeout") {
        return apiError(
          408,
          "timeout",
          `Cannot post message: the body did not arrive within ${this.#bodyTimeoutMs} ms`,
          { connection: "close" },
        );
      }
      return body.problem === "too_large"
        ? apiError(
          413,
          "too_large",
          `Cannot post message: the body is larger than ${this.#maxBodyBytes} bytes`,
        )
        : apiError(400, "invalid_json", "Cannot post message: the body is not valid UTF-8 JSON");
    }
    let value: unknown;
    try {
      value = JSON.parse(body.text);
    } catch {
      return apiError(400, "invalid_json", "Cannot post message: the body is not valid JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return apiError(400, "invalid_message", "Cannot post message: the body must be an object");
    }
    const fields = value as Record<string, unknown>;
    // The protocol's own rules: a join's for the name, a say's for the text and cid.
    const checked = checkName(fields.name, "name");
    if (!checked.ok) return invalid(checked.message);
    const cid = fields.cid === undefined ? crypto.randomUUID() : fields.cid;
    const say = parseClientMessage({ type: "say", text: fields.text, cid });
    if (!say.ok) return invalid(say.error.message);
    if (say.message.type !== "say") throw new Error("unreachable");
    const name = checked.name;
    let message: ChatMessage;
    try {
      message = await this.#hub.post(room, {
        userId: `api:${name}`,
        name,
        text: say.message.text,
        cid: say.message.cid,
      });
    } catch (error) {
      if (error instanceof NameTakenError) {
        return apiError(409, error.reserved ? "name_reserved" : "name_taken", error.message);
      }
      this.#log({ event: "api_error", room, error: String(error) });
      const reason = error instanceof Error && error.message.startsWith("Cannot send message:")
        ? error.message.replace("Cannot send message:", "Cannot post message:")
        : "Cannot post message: history is unavailable, retry soon";
      return unavailable(reason);
    }
    return json(201, message);
  }

  async #messages(rawRoom: string, params: URLSearchParams): Promise<Response> {
    const room = roomOf(rawRoom, "read messages");
    if (room instanceof Response) return room;
    const since = params.get("since") ?? "0";
    if (!DIGITS.test(since)) {
      return apiError(
        400,
        "invalid_message",
        "Cannot read messages: 'since' must be a non-negative integer",
      );
    }
    const limitText = params.get("limit") ?? String(MAX_PAGE);
    if (!DIGITS.test(limitText) || Number(limitText) < 1) {
      return apiError(
        400,
        "invalid_message",
        "Cannot read messages: 'limit' must be a positive integer",
      );
    }
    const limit = Math.min(MAX_PAGE, Number(limitText));
    try {
      const replay = await this.#history.after(room, Number(since), limit);
      return json(200, { messages: replay.messages, complete: replay.complete });
    } catch (error) {
      this.#log({ event: "api_error", room, error: String(error) });
      return unavailable("Cannot read messages: history is unavailable, retry soon");
    }
  }

  /** Searches one room: newest first, 20 at a time. */
  async #find(search: MessageSearch, rawRoom: string, params: URLSearchParams): Promise<Response> {
    const room = roomOf(rawRoom, "search");
    if (room instanceof Response) return room;
    const q = params.get("q") ?? "";
    const before = params.get("before");
    const cursor = before === null ? null : CURSOR.exec(before);
    if (before !== null && !cursor) {
      return invalid("Cannot search: 'before' must be the previous answer's next, as ts:id");
    }
    try {
      const found = await search.search({
        q,
        rooms: [room],
        limit: MAX_SEARCH_PAGE,
        ...(cursor ? { before: { ts: Number(cursor[1]), room, id: Number(cursor[2]) } } : {}),
      });
      if (!found.ok) return apiError(400, found.code, found.message);
      return json(200, {
        results: found.messages,
        hasMore: found.hasMore,
        ...(found.next ? { next: found.next } : {}),
      });
    } catch (error) {
      this.#log({ event: "api_error", room, error: String(error) });
      return unavailable("Cannot search: history is unavailable, retry soon");
    }
  }

  /** Deletes a room's history and empties it everywhere: 204, or 404 when there was nothing. */
  async #deleteRoom(rawRoom: string): Promise<Response> {
    const room = roomOf(rawRoom, "delete room");
    if (room instanceof Response) return room;
    try {
      if (!await this.#hub.deleteRoom(room)) {
        return apiError(404, "not_found", "Cannot delete room: it has no history and no member");
      }
    } catch (error) {
      this.#log({ event: "api_error", room, error: String(error) });
      return unavailable("Cannot delete room: history is unavailable, retry soon");
    }
    this.#log({ event: "room_deleted", room });
    return new Response(null, { status: 204, headers: SECURITY_HEADERS });
  }

  async #rooms(): Promise<Response> {
    return json(200, { rooms: await this.#hub.directory() });
  }
}
