/**
 * The chat protocol: every message type, and the validation of what clients
 * send. Pure code: no sockets, no I/O, so it is tested with plain asserts.
 *
 * Frames are JSON text. A client sends one {@linkcode ClientMessage} per
 * frame; the server answers with {@linkcode ServerMessage}s.
 *
 * @module
 */

import { isSingleEmoji } from "./emoji.ts";
import { checkName, hasStackedMarks, MAX_COMBINING_MARKS, type NameCheck } from "./names.ts";
import { FILE_ID_PATTERN } from "./store/files.ts";

export {
  checkName,
  MAX_COMBINING_MARKS,
  MAX_NAME_LENGTH,
  type NameCheck,
  nameKey,
  type NameProblem,
  normalizeName,
} from "./names.ts";

/** Longest `say` text, in characters. */
export const MAX_TEXT_LENGTH = 2000;
/** Longest client-chosen message id (`cid`). */
export const MAX_CID_LENGTH = 64;
/** Longest session token accepted in `join`. */
export const MAX_TOKEN_LENGTH = 256;
/** Longest JWT accepted in `join`. */
export const MAX_AUTH_LENGTH = 8192;
/** Most messages one `history` request returns. */
export const MAX_HISTORY_PAGE = 100;
/** Rooms one connection may be in at once, by default (`MAX_ROOMS_PER_CONNECTION`). */
export const DEFAULT_MAX_ROOMS_PER_CONNECTION = 50;
/** The reactions the page offers first; a reaction may be any single emoji. */
export const REACTIONS: readonly string[] = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🚀"];

/** A member of a room, as other members see them. */
export interface Member {
  /** Server-assigned user id. */
  id: string;
  /** Display name, unique within the room. */
  name: string;
  /** In a welcome's member list: the member's role, when they have one. */
  role?: "owner" | "moderator" | "operator";
}

/** One emoji on a message, and who gave it, in the order they did. */
export interface Reaction {
  emoji: string;
  users: Member[];
}

/**
 * Ask to enter a room. A connection may be in several rooms: it sends one
 * `join` per room, each answered by its own `welcome`. The first join names
 * the connection (`name`); later ones may leave `name` out, and may not
 * change it (see {@linkcode RenameMessage}).
 */
export interface JoinMessage {
  type: "join";
  room: string;
  /** The nickname; required on the connection's first join. */
  name?: string;
  /** Id of the last message the client holds in this room, to resume. */
  since?: number;
  /** The session token from an earlier `welcome`, to keep the same user id. */
  token?: string;
  /** A JWT, when the server requires authentication. */
  auth?: string;
  /** The `epoch` of the welcome that `since` came from: a resume across a store wipe is not complete. */
  epoch?: string;
}

/** Leave one room; the connection stays, in its other rooms. Answered with `left`. */
export interface LeaveMessage {
  type: "leave";
  room: string;
}

/**
 * Change the connection's nickname in every room it is in, without leaving
 * them. Answered with `renamed`; the rooms get a `presence` event `rename`.
 */
export interface RenameMessage {
  type: "rename";
  name: string;
}

/**
 * The room a room-scoped frame is about: required on a connection in several
 * rooms; on a connection in exactly one room it may be left out.
 */
interface RoomScoped {
  room?: string;
}

/** Files one message may carry at most. */
export const MAX_ATTACHMENTS = 10;

/** Post a text (and files uploaded for the room) to a room. */
export interface SayMessage extends RoomScoped {
  type: "say";
  /** May be empty when the message carries files. */
  text: string;
  /** Client-chosen id, echoed back in the `ack`; retries reuse it. */
  cid: string;
  /** The id of the message this one answers. */
  replyTo?: number;
  /** Ids of files uploaded for this room (`POST /api/v1/uploads`), at most {@linkcode MAX_ATTACHMENTS}. */
  attachments?: string[];
}

/**
 * Ask for a page of a room's history: older messages (`before`), or a
 * message with its neighbours (`around`, to jump to a search result).
 */
export interface HistoryRequest extends RoomScoped {
  type: "history";
  /** Messages with ids below this one. */
  before?: number;
  /** Message `around` and up to `limit` / 2 on each side of it. */
  around?: number;
  /** How many, 1–{@linkcode MAX_HISTORY_PAGE}. */
  limit: number;
}

/** Search the rooms the connection is in (or one of them), newest first. */
export interface SearchRequest {
  type: "search";
  /** Words to find (every one, whole or as a prefix, without case or accents). */
  q: string;
  /** One room the connection is in; absent: all of them. */
  room?: string;
  /** The previous answer's `next`, for the page after it. */
  before?: SearchCursor;
  /** Echoed in the answer, to match it. */
  cid?: string;
}

/** Where a search page ended: the previous answer's `next`, sent back as is. */
export interface SearchCursor {
  ts: number;
  room: string;
  id: number;
}

/** Change the text of one of your own messages. */
export interface EditMessage extends RoomScoped {
  type: "edit";
  /** The id of the message to edit. */
  ref: number;
  text: string;
  cid: string;
}

/** Delete one of your own messages. */
export interface DeleteMessage extends RoomScoped {
  type: "delete";
  ref: number;
  cid: string;
}

/** Toggle your reaction to a message. */
export interface ReactMessage extends RoomScoped {
  type: "react";
  ref: number;
  /** Any single emoji ({@linkcode REACTIONS} are offered first). */
  emoji: string;
  cid: string;
}

/** Ask for the room directory. */
export interface RoomsRequest {
  type: "rooms";
}

/** Tell a room that you are typing. */
export interface TypingMessage extends RoomScoped {
  type: "typing";
}

/**
 * Open the direct conversation with the user called `name` (an account, or
 * a guest online now): answered with the conversation's `welcome`, whose
 * `room` is `dm:<id>:<id>` (the two user ids, sorted) and whose `peer` is
 * the other person. From then on it is a room like any other.
 */
export interface DirectMessageRequest {
  type: "dm";
  /** The person's name (by its confusable key). */
  name?: string;
  /** The person's user id (a member list's), which picks one of two people of one name. */
  userId?: string;
}

/** Stop (or start again) receiving direct messages from a user. Answered with `blocks`. */
export interface BlockMessage {
  type: "block" | "unblock";
  userId: string;
}

/** You have read room `room` up to message `id`: your other connections are told. */
export interface ReadMessage {
  type: "read";
  room: string;
  id: number;
}

/**
 * A moderation act in a room: by its owner, its moderators, or an
 * operator. Every act is an event in the room's sequence (`kind:
 * "moderation"`). Idempotent per `cid`.
 */
export interface ModMessage extends RoomScoped {
  type: "mod";
  action: ModAction;
  /** The user acted on: `kick`, `mute`, `unmute`, `ban`, `unban`, `promote`, `demote`. */
  userId?: string;
  /** The message acted on: `delete`, `dismiss` (its reports). */
  ref?: number;
  /** A mute's or ban's length (absent: for good), or slow mode's interval (0: off). */
  durationMs?: number;
  /** Why (kept in the audit log), up to 300 characters. */
  reason?: string;
  /** The room's topic, for `topic` (empty: none). */
  topic?: string;
  cid: string;
}

/** Flag a message for the room's moderators. */
export interface ReportMessage extends RoomScoped {
  type: "report";
  ref: number;
  reason: string;
}

/** Ask for a room's open reports (moderators). */
export interface ReportsRequest extends RoomScoped {
  type: "reports";
}

/** Everything a client may send. */
export type ClientMessage =
  | JoinMessage
  | LeaveMessage
  | RenameMessage
  | DirectMessageRequest
  | BlockMessage
  | ReadMessage
  | ModMessage
  | ReportMessage
  | ReportsRequest
  | SayMessage
  | TypingMessage
  | HistoryRequest
  | SearchRequest
  | EditMessage
  | DeleteMessage
  | ReactMessage
  | RoomsRequest;

/**
 * What an event that is not a plain message is: a change to an earlier
 * message, or a moderation act. A plain message has no `kind`.
 */
export type MessageKind = "edit" | "delete" | "reaction" | "moderation";

/** What a moderator (or the room's owner, or an operator) can do; see `mod`. */
export type ModAction =
  | "kick"
  | "mute"
  | "unmute"
  | "ban"
  | "unban"
  | "delete"
  | "slow"
  | "topic"
  | "promote"
  | "demote"
  | "owner"
  | "dismiss";

/** The moderation acts a client may send in `mod` (`owner` is the operator's, through the API). */
export const MOD_ACTIONS: readonly ModAction[] = [
  "kick",
  "mute",
  "unmute",
  "ban",
  "unban",
  "delete",
  "slow",
  "topic",
  "promote",
  "demote",
  "dismiss",
];

/** A file a message carries; served at `/files/{id}/{name}` (the name URI-encoded). */
export interface Attachment {
  id: string;
  name: string;
  /** Bytes. */
  size: number;
  /** The MIME type, from the bytes. */
  type: string;
  /** Pixels, for an image. */
  width?: number;
  /** Pixels, for an image. */
  height?: number;
}

/** A chat message, as stored and broadcast. */
export interface ChatMessage {
  type: "message";
  /** Position in the room's sequence: 1, 2, 3, … with no gaps. */
  id: number;
  room: string;
  /** Sender's user id, always set by the server. */
  userId: string;
  /** Sender's display name. */
  name: string;
  text: string;
  /** Server time, in milliseconds since the epoch. */
  ts: number;
  /** The sender's `cid`, so a sender can match its pending copy. */
  cid: string;
  /** Absent for a plain message; else what this event changes in message `ref`. */
  kind?: MessageKind;
  /** The message an edit, delete or reaction applies to. */
  ref?: number;
  /** A reaction's emoji. */
  emoji?: string;
  /** A reaction: `true` when added, `false` when taken back. */
  on?: boolean;
  /** The message a plain message answers. */
  replyTo?: number;
  /** The files a plain message carries. */
  attachments?: Attachment[];
  /**
   * `true` for a message posted through the server API (a bot or a back
   * end), not by a member: the page marks it "bot". Its name is never one a
   * member holds in the room.
   */
  bot?: boolean;
  /**
   * A plain message read from history (a welcome, a `history` page, a
   * replay) comes in its current state, its changes folded in: `edited`
   * when its text was edited (the text is the newest one), `deleted` when
   * it was deleted (the text is empty), and its `reactions`. A live message
   * has none of these; changes to it follow as events of their own.
   */
  edited?: boolean;
  /** See `edited`. */
  deleted?: boolean;
  /** See `edited`: the reactions it has, the first given first. */
  reactions?: Reaction[];
  /** A moderation event (`kind: "moderation"`): what was done. */
  action?: ModAction;
  /** A moderation event: whom it was done to. */
  target?: Member;
  /** A moderation event: who did it (a member, or `{id: "operator"}` through the API). */
  by?: Member;
  /** A moderation event: why, as its author said. */
  reason?: string;
  /** A moderation event: until when a mute or ban holds, in ms since the epoch (absent: for good). */
  until?: number;
  /** A moderation event `slow`: the shortest time between two says of a member, in ms (0: off). */
  durationMs?: number;
}

/** The answer to `join`. */
export interface WelcomeMessage {
  type: "welcome";
  /** Your user id; the same on every connection that presents `token`. */
  id: string;
  /**
   * Your session token: present it in the next `join` to keep your id.
   * Absent when the server authenticates with JWTs instead.
   */
  token?: string;
  room: string;
  name: string;
  members: Member[];
  /** Messages you missed (after `since`), or the newest 50. */
  history: ChatMessage[];
  /**
   * Present when the join carried `since`: `true` when `history` holds every
   * message after it, `false` when some were older than the retention, or
   * the store was wiped since (its `epoch` changed).
   */
  recovered?: boolean;
  /** The history store's epoch: send it back with `since` to resume. */
  epoch?: string;
  /** The newest message id you have read in the room (0: none yet), kept for your user. */
  readId?: number;
  /** In a direct conversation: the other person. */
  peer?: { userId: string; name: string };
  /** The room's topic, when it has one. */
  topic?: string;
  /** Your role in the room, when you have one: `owner`, `moderator` or `operator`. */
  role?: "owner" | "moderator" | "operator";
  /** The room's newest event id (a change or an act may follow the newest message in `history`). */
  lastId?: number;
  /** The room's slow mode: the shortest time between two says of a member, in ms. */
  slowMs?: number;
  /** Your mute in the room, while it holds: until when (absent: for good), and why. */
  muted?: { until?: number; reason?: string };
}

/** The server stored your `say` (or change): it is now delivered to the whole room. */
export interface AckMessage {
  type: "ack";
  room: string;
  cid: string;
  /** The stored message's id. */
  id: number;
}

/**
 * Someone joined or left a room, or took another name. Presence is per user:
 * a user's second connection to a room is no second member.
 */
export interface PresenceMessage {
  type: "presence";
  room: string;
  event: "join" | "leave" | "rename";
  /** Who came, went or was renamed (with the new name); the full list is only in the `welcome`. */
  member: Member;
  /** With `rename`: the name before. */
  previous?: string;
}

/** Someone else in a room is typing. */
export interface TypingNotice {
  type: "typing";
  room: string;
  member: Member;
}

/** You left a room (your `leave`, or the server removed you, with a `reason`). */
export interface LeftMessage {
  type: "left";
  room: string;
  reason?: string;
}

/** Your `rename` took effect in every room you are in. */
export interface RenamedMessage {
  type: "renamed";
  name: string;
}

/** You (on another connection) read room `room` up to message `id`. */
export interface ReadNotice {
  type: "read";
  room: string;
  id: number;
}

/** A moderator muted you in `room`, until `until` (absent: for good). */
export interface MutedNotice {
  type: "muted";
  room: string;
  until?: number;
  reason?: string;
}

/** A report, as moderators see it. */
export interface ReportInfo {
  id: string;
  ref: number;
  reason: string;
  by: Member;
  at: number;
}

/** To the room's moderators online: a member flagged a message. */
export interface ReportNotice {
  type: "report";
  room: string;
  report: ReportInfo;
}

/** The answer to `report`: the report is in, and the room's moderators were told. */
export interface ReportedMessage {
  type: "reported";
  room: string;
  ref: number;
}

/** The answer to `reports`: the room's open reports, oldest first. */
export interface ReportsMessage {
  type: "reports";
  room: string;
  reports: ReportInfo[];
}

/** The users you block, after a `block` or `unblock`. */
export interface BlocksMessage {
  type: "blocks";
  users: string[];
}

/** Stable error codes, one per kind of refusal. */
export type ErrorCode =
  | "invalid_json"
  | "binary_unsupported"
  | "invalid_message"
  | "unknown_type"
  | "not_joined"
  | "already_joined"
  | "too_many_rooms"
  | "name_taken"
  | "name_reserved"
  | "blocked"
  | "muted"
  | "banned"
  | "slow_mode"
  | "rate_limited"
  | "auth_required"
  | "auth_invalid"
  | "auth_expired"
  | "room_forbidden"
  | "forbidden"
  | "not_found"
  | "deleted"
  | "room_limit"
  | "unavailable"
  | "internal";

/** The answer to `history`: older messages, oldest first. */
export interface HistoryPage {
  type: "history";
  room: string;
  messages: ChatMessage[];
  /** `true` when the store holds messages older than these. */
  hasMore: boolean;
  /** For `history {around}`: the message asked for. */
  around?: number;
  /** For `history {around}`: `true` when newer messages follow these. */
  hasNewer?: boolean;
}

/** The answer to `search`: matching messages, newest first, each with its `room`. */
export interface SearchResults {
  type: "search";
  /** The request's `cid`, when it had one. */
  cid?: string;
  q: string;
  results: ChatMessage[];
  /** `true` when older matches follow: ask again with `before: next`. */
  hasMore: boolean;
  next?: SearchCursor;
}

/** A room, as the `rooms` answer lists it. */
export interface RoomInfo {
  name: string;
  /** Members here and on the other instances. */
  members: number;
  /** The room's newest message id, as far as this server knows. */
  lastId: number;
  /** When that message was stored, in ms since the epoch (0 when unknown). */
  lastTs: number;
}

/** The answer to `rooms`. */
export interface RoomsMessage {
  type: "rooms";
  rooms: RoomInfo[];
}

/** A refused request. The connection stays usable unless it is closed. */
export interface ErrorMessage {
  type: "error";
  code: ErrorCode;
  message: string;
  /** The room the refused request was about, when it named or implied one. */
  room?: string;
  /** The `cid` of the refused `say`, when there was one. */
  cid?: string;
  /** With `rate_limited` and `slow_mode`: how long to wait before the next frame, in ms. */
  retryAfterMs?: number;
  /** With `muted` and `banned`: until when, in ms since the epoch (absent: for good). */
  until?: number;
  /** With `muted` and `banned`: the moderator's reason, when given. */
  reason?: string;
}

/**
 * The last frame before the server closes a WebSocket: the close code and
 * reason, for a client whose close event lost them (see `websocket.ts`).
 */
export interface CloseNotice {
  type: "close";
  code: number;
  reason: string;
}

/** Everything the server sends. */
export type ServerMessage =
  | WelcomeMessage
  | ChatMessage
  | AckMessage
  | PresenceMessage
  | TypingNotice
  | LeftMessage
  | RenamedMessage
  | ReadNotice
  | BlocksMessage
  | MutedNotice
  | ReportNotice
  | ReportedMessage
  | ReportsMessage
  | HistoryPage
  | SearchResults
  | RoomsMessage
  | ErrorMessage
  | CloseNotice;

/** The result of {@linkcode parseClientMessage}. */
export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; error: ErrorMessage };

const CID_PATTERN = /^[A-Za-z0-9_-]+$/;
const USER_ID = /^[A-Za-z0-9_.@-]{1,64}$/;
const DM_ROOM = /^dm:([A-Za-z0-9_.@-]{1,64}):([A-Za-z0-9_.@-]{1,64})$/;

/**
 * Validates one decoded client frame. Takes anything `JSON.parse` may return
 * and never throws.
 *
 * @example Usage
 * ```ts
 * import { parseClientMessage } from "./protocol.ts";
 * const result = parseClientMessage({ type: "say", text: "hi", cid: "c1" });
 * if (result.ok) console.log(result.message.type); // "say"
 * ```
 */
export function parseClientMessage(value: unknown): ParseResult {
  if (!isRecord(value) || typeof value.type !== "string") {
    return fail("invalid_message", "Cannot read message: expected an object with a string 'type'");
  }
  switch (value.type) {
    case "join":
      return parseJoin(value);
    case "leave":
      return parseLeave(value);
    case "rename":
      return parseRename(value);
    case "dm":
      return parseDirect(value);
    case "block":
    case "unblock":
      return parseBlock(value);
    case "read":
      return parseRead(value);
    case "mod":
      return scoped(value, "moderate", parseMod(value));
    case "report":
      return scoped(value, "report message", parseReport(value));
    case "reports":
      return scoped(value, "list reports", { ok: true, message: { type: "reports" } });
    case "say":
      return scoped(value, "send message", parseSay(value));
    case "typing":
      return scoped(value, "send typing", { ok: true, message: { type: "typing" } });
    case "history":
      return scoped(value, "read history", parseHistory(value));
    case "search":
      return scoped(value, "search", parseSearch(value));
    case "edit":
    case "delete":
    case "react":
      return scoped(value, CHANGE_ACTIONS[value.type], parseChange(value));
    case "rooms":
      return { ok: true, message: { type: "rooms" } };
    default:
      return fail(
        "unknown_type",
        `Cannot handle message: unknown type '${value.type.slice(0, 32).toWellFormed()}'`,
      );
  }
}

/**
 * Parses and validates one text frame. Invalid JSON is an `invalid_json`
 * error, never an exception.
 *
 * @example Usage
 * ```ts
 * import { decodeClientMessage } from "./protocol.ts";
 * decodeClientMessage("{oops").ok; // false
 * ```
 */
export function decodeClientMessage(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail("invalid_json", "Cannot parse message: it is not valid JSON");
  }
  return parseClientMessage(value);
}

/** Builds an {@linkcode ErrorMessage}, about `room` when given. */
export function errorMessage(
  code: ErrorCode,
  message: string,
  cid?: string,
  room?: string,
): ErrorMessage {
  const error: ErrorMessage = { type: "error", code, message };
  if (room !== undefined) error.room = room;
  if (cid !== undefined) error.cid = cid;
  return error;
}

const CHANGE_ACTIONS = {
  edit: "edit message",
  delete: "delete message",
  react: "react to message",
} as const;

/**
 * Adds a room-scoped frame's optional `room` to a parsed message, or refuses
 * a `room` that is not a valid room name (`doing` names the action).
 */
function scoped(value: Record<string, unknown>, doing: string, parsed: ParseResult): ParseResult {
  if (value.room === undefined) return parsed;
  if (!parsed.ok) {
    // A refused frame names its room too, when it names a valid one.
    const room = checkRoom(value.room);
    return room.ok ? { ok: false, error: { ...parsed.error, room: room.name } } : parsed;
  }
  const room = checkRoom(value.room);
  const cid = "cid" in parsed.message ? parsed.message.cid : undefined;
  if (!room.ok) {
    return fail(
      "invalid_message",
      room.message.replace("Cannot join room:", `Cannot ${doing}:`),
      cid,
    );
  }
  return { ok: true, message: { ...parsed.message, room: room.name } as ClientMessage };
}

function parseLeave(value: Record<string, unknown>): ParseResult {
  const room = checkRoom(value.room);
  if (!room.ok) {
    return fail("invalid_message", room.message.replace("Cannot join room:", "Cannot leave room:"));
  }
  return { ok: true, message: { type: "leave", room: room.name } };
}

function parseDirect(value: Record<string, unknown>): ParseResult {
  if (value.userId !== undefined) {
    if (!isUserId(value.userId)) {
      return fail("invalid_message", "Cannot open conversation: 'userId' must be a user id");
    }
    return { ok: true, message: { type: "dm", userId: value.userId } };
  }
  const name = checkName(value.name, "name");
  if (!name.ok) {
    return fail(
      "invalid_message",
      name.message.replace("Cannot join room:", "Cannot open conversation:"),
    );
  }
  return { ok: true, message: { type: "dm", name: name.name } };
}

function parseBlock(value: Record<string, unknown>): ParseResult {
  const type = value.type as "block" | "unblock";
  if (!isUserId(value.userId)) {
    return fail("invalid_message", `Cannot ${type} user: 'userId' must be a user id`);
  }
  return { ok: true, message: { type, userId: value.userId } };
}

function parseRead(value: Record<string, unknown>): ParseResult {
  const room = checkRoom(value.room);
  if (!room.ok) {
    return fail("invalid_message", room.message.replace("Cannot join room:", "Cannot mark read:"));
  }
  if (!isId(value.id)) {
    return fail("invalid_message", "Cannot mark read: 'id' must be a message id");
  }
  return { ok: true, message: { type: "read", room: room.name, id: value.id } };
}

/**
 * A room name as {@linkcode checkName} reads it, or a direct conversation's
 * id (`dm:<id>:<id>`, two user ids in order), which is longer than a name
 * may be and is checked by its shape instead. Every room whose name starts
 * with `dm:` is a direct conversation.
 */
export function checkRoom(value: unknown): NameCheck {
  if (typeof value === "string" && value.startsWith("dm:")) {
    return dmUsers(value) ? { ok: true, name: value } : {
      ok: false,
      problem: "not_string",
      message: "Cannot join room: a 'dm:' room is a conversation of two user ids, 'dm:<id>:<id>'",
    };
  }
  return checkName(value, "room");
}

/** The two user ids of a direct conversation's room, in order, or `null` for another name. */
export function dmUsers(room: string): [string, string] | null {
  if (!room.startsWith("dm:")) return null; // most rooms: no regular expression
  const match = DM_ROOM.exec(room);
  return match && match[1] < match[2] ? [match[1], match[2]] : null;
}

/** The room of the direct conversation between two users. */
export function dmRoom(a: string, b: string): string {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** Whether a user id can name a direct conversation (the server's ids, or a JWT's `sub`). */
export function isUserId(value: unknown): value is string {
  return typeof value === "string" && USER_ID.test(value);
}

/** Longest `reason` of a moderation act or a report, in characters. */
export const MAX_REASON_LENGTH = 300;

function parseMod(value: Record<string, unknown>): ParseResult {
  const cid = value.cid;
  if (!isCid(cid)) {
    return fail(
      "invalid_message",
      `Cannot moderate: 'cid' must be 1-${MAX_CID_LENGTH} letters, digits, '_' or '-'`,
    );
  }
  const action = value.action;
  if (typeof action !== "string" || !MOD_ACTIONS.includes(action as ModAction)) {
    return fail(
      "invalid_message",
      `Cannot moderate: 'action' must be one of ${MOD_ACTIONS.join(", ")}`,
      cid,
    );
  }
  const message: ModMessage = { type: "mod", action: action as ModAction, cid };
  if (value.userId !== undefined) {
    if (!isUserId(value.userId)) {
      return fail("invalid_message", "Cannot moderate: 'userId' must be a user id", cid);
    }
    message.userId = value.userId;
  }
  if (value.ref !== undefined) {
    if (!isId(value.ref)) {
      return fail("invalid_message", "Cannot moderate: 'ref' must be a message id", cid);
    }
    message.ref = value.ref;
  }
  if (value.durationMs !== undefined) {
    if (!Number.isSafeInteger(value.durationMs) || (value.durationMs as number) < 0) {
      return fail(
        "invalid_message",
        "Cannot moderate: 'durationMs' must be a non-negative integer",
        cid,
      );
    }
    message.durationMs = value.durationMs as number;
  }
  for (const field of ["reason", "topic"] as const) {
    const text = value[field];
    if (text === undefined) continue;
    if (typeof text !== "string" || !text.isWellFormed() || [...text].length > MAX_REASON_LENGTH) {
      return fail(
        "invalid_message",
        `Cannot moderate: '${field}' must be text of at most ${MAX_REASON_LENGTH} characters`,
        cid,
      );
    }
    message[field] = text;
  }
  return { ok: true, message };
}

function parseReport(value: Record<string, unknown>): ParseResult {
  if (!isId(value.ref)) {
    return fail("invalid_message", "Cannot report message: 'ref' must be a message id");
  }
  const reason = value.reason;
  if (
    typeof reason !== "string" || !reason.trim() || !reason.isWellFormed() ||
    [...reason].length > MAX_REASON_LENGTH
  ) {
    return fail(
      "invalid_message",
      `Cannot report message: 'reason' must be text of 1-${MAX_REASON_LENGTH} characters`,
    );
  }
  return { ok: true, message: { type: "report", ref: value.ref, reason: reason.trim() } };
}

function parseRename(value: Record<string, unknown>): ParseResult {
  const name = checkName(value.name, "name");
  if (!name.ok) {
    return fail("invalid_message", name.message.replace("Cannot join room:", "Cannot rename:"));
  }
  return { ok: true, message: { type: "rename", name: name.name } };
}

function parseJoin(value: Record<string, unknown>): ParseResult {
  const room = checkRoom(value.room);
  if (!room.ok) return fail("invalid_message", room.message);
  const message: JoinMessage = { type: "join", room: room.name };
  if (value.name !== undefined) {
    const name = checkName(value.name, "name");
    if (!name.ok) return fail("invalid_message", name.message, undefined, room.name);
    message.name = name.name;
  }
  if (value.since !== undefined) {
    if (!Number.isSafeInteger(value.since) || (value.since as number) < 0) {
      return fail("invalid_message", "Cannot join room: 'since' must be a non-negative integer");
    }
    message.since = value.since as number;
  }
  if (value.token !== undefined) {
    if (typeof value.token !== "string" || value.token.length > MAX_TOKEN_LENGTH) {
      return fail("invalid_message", "Cannot join room: 'token' must be a session token string");
    }
    if (!value.token.isWellFormed()) {
      return fail("invalid_message", "Cannot join room: 'token' contains a lone surrogate");
    }
    message.token = value.token;
  }
  if (value.auth !== undefined) {
    if (typeof value.auth !== "string" || value.auth.length > MAX_AUTH_LENGTH) {
      return fail("invalid_message", "Cannot join room: 'auth' must be a token string");
    }
    if (!value.auth.isWellFormed()) {
      return fail("invalid_message", "Cannot join room: 'auth' contains a lone surrogate");
    }
    message.auth = value.auth;
  }
  if (value.epoch !== undefined) {
    if (
      typeof value.epoch !== "string" || value.epoch.length > MAX_CID_LENGTH ||
      !value.epoch.isWellFormed()
    ) {
      return fail("invalid_message", "Cannot join room: 'epoch' must be the epoch of a welcome");
    }
    message.epoch = value.epoch;
  }
  return { ok: true, message };
}

function parseSay(value: Record<string, unknown>): ParseResult {
  const cid = value.cid;
  if (!isCid(cid)) {
    return fail(
      "invalid_message",
      `Cannot send message: 'cid' must be 1-${MAX_CID_LENGTH} letters, digits, '_' or '-'`,
    );
  }
  const attachments = value.attachments;
  if (attachments !== undefined) {
    if (
      !Array.isArray(attachments) || attachments.length > MAX_ATTACHMENTS ||
      !attachments.every((id) => typeof id === "string" && FILE_ID_PATTERN.test(id)) ||
      new Set(attachments).size !== attachments.length
    ) {
      return fail(
        "invalid_message",
        `Cannot send message: 'attachments' must be up to ${MAX_ATTACHMENTS} different file ids`,
        cid,
      );
    }
  }
  const files = attachments?.length ? attachments as string[] : undefined;
  const text = files && value.text === "" ? "" : checkText(value.text, "send message", cid);
  if (typeof text !== "string") return text;
  const message: SayMessage = { type: "say", text, cid };
  if (files) message.attachments = files;
  if (value.replyTo !== undefined) {
    if (!isId(value.replyTo)) {
      return fail("invalid_message", "Cannot send message: 'replyTo' must be a message id", cid);
    }
    message.replyTo = value.replyTo;
  }
  return { ok: true, message };
}

function parseHistory(value: Record<string, unknown>): ParseResult {
  const { before, around, limit = 50 } = value;
  if (around !== undefined) {
    if (!isId(around) || before !== undefined) {
      return fail(
        "invalid_message",
        "Cannot read history: 'around' must be a message id, without 'before'",
      );
    }
  } else if (!isId(before)) {
    return fail("invalid_message", "Cannot read history: 'before' must be a message id");
  }
  if (
    !Number.isSafeInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_HISTORY_PAGE
  ) {
    return fail("invalid_message", `Cannot read history: 'limit' must be 1-${MAX_HISTORY_PAGE}`);
  }
  return {
    ok: true,
    message: around !== undefined
      ? { type: "history", around, limit: limit as number }
      : { type: "history", before: before as number, limit: limit as number },
  };
}

/** Longest search query, in characters. */
export const MAX_QUERY_LENGTH = 200;

function parseSearch(value: Record<string, unknown>): ParseResult {
  const { q, before, cid } = value;
  if (cid !== undefined && !isCid(cid)) {
    return fail(
      "invalid_message",
      `Cannot search: 'cid' must be 1-${MAX_CID_LENGTH} letters, digits, '_' or '-'`,
    );
  }
  if (
    typeof q !== "string" || !q.trim() || q.length > MAX_QUERY_LENGTH || !q.isWellFormed()
  ) {
    return fail(
      "invalid_message",
      `Cannot search: 'q' must be text of 1-${MAX_QUERY_LENGTH} characters`,
      cid as string | undefined,
    );
  }
  const message: SearchRequest = { type: "search", q: q.trim() };
  if (cid !== undefined) message.cid = cid as string;
  if (before !== undefined) {
    const cursor = before as Record<string, unknown>;
    const room = typeof cursor === "object" && cursor !== null ? checkRoom(cursor.room) : null;
    if (!room?.ok || !Number.isSafeInteger(cursor.ts) || !isId(cursor.id)) {
      return fail(
        "invalid_message",
        "Cannot search: 'before' must be the previous answer's 'next'",
        message.cid,
      );
    }
    message.before = { ts: cursor.ts as number, room: room.name, id: cursor.id as number };
  }
  return { ok: true, message };
}

/** `edit`, `delete` and `react`: a `ref`, a `cid`, and a text or an emoji. */
function parseChange(value: Record<string, unknown>): ParseResult {
  const type = value.type as "edit" | "delete" | "react";
  const what = { edit: "edit", delete: "delete", react: "react to" }[type];
  const cid = value.cid;
  if (!isCid(cid)) {
    return fail(
      "invalid_message",
      `Cannot ${what} message: 'cid' must be 1-${MAX_CID_LENGTH} letters, digits, '_' or '-'`,
    );
  }
  if (!isId(value.ref)) {
    return fail("invalid_message", `Cannot ${what} message: 'ref' must be a message id`, cid);
  }
  const ref = value.ref;
  if (type === "delete") return { ok: true, message: { type, ref, cid } };
  if (type === "react") {
    if (typeof value.emoji !== "string" || !isSingleEmoji(value.emoji)) {
      return fail("invalid_message", "Cannot react to message: 'emoji' must be one emoji", cid);
    }
    return { ok: true, message: { type, ref, emoji: value.emoji, cid } };
  }
  const text = checkText(value.text, "edit message", cid);
  if (typeof text !== "string") return text;
  return { ok: true, message: { type, ref, text, cid } };
}

/** A message id: a positive safe integer. */
function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

function isCid(cid: unknown): cid is string {
  return typeof cid === "string" && cid.length > 0 && cid.length <= MAX_CID_LENGTH &&
    cid.isWellFormed() && CID_PATTERN.test(cid);
}

/** The text, or why it is refused. */
function checkText(text: unknown, doing: string, cid: string): string | ParseResult {
  if (typeof text !== "string" || text.trim().length === 0) {
    return fail("invalid_message", `Cannot ${doing}: 'text' must be a non-empty string`, cid);
  }
  if (text.length > MAX_TEXT_LENGTH) {
    return fail(
      "invalid_message",
      `Cannot ${doing}: text is longer than ${MAX_TEXT_LENGTH} characters`,
      cid,
    );
  }
  if (!text.isWellFormed()) {
    return fail("invalid_message", `Cannot ${doing}: text contains a lone surrogate`, cid);
  }
  if (hasStackedMarks(text)) {
    return fail(
      "invalid_message",
      `Cannot ${doing}: text has more than ${MAX_COMBINING_MARKS} combining marks on one character`,
      cid,
    );
  }
  return text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(code: ErrorCode, message: string, cid?: string, room?: string): ParseResult {
  return { ok: false, error: errorMessage(code, message, cid, room) };
}
