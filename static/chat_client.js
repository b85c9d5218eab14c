/**
 * The chat protocol client, with no DOM: one connection (`connection.js`) in
 * any number of rooms (`room_state.js`), a nickname, and an outbox
 * (`outbox.js`) of what the user did, sent and retried with the same `cid`
 * until the server acknowledges it. Everything a tab must remember across a
 * reload (name, session token, the rooms it is in, and per room the last
 * message id, the store's epoch, the read position and the outbox) goes to
 * the injected `storage`; the page passes `sessionStorage`, so every tab is
 * its own session. Deno tests and bots import it as it is.
 *
 * One of the rooms is the room in view ({@linkcode ChatClient.room}): what
 * is said without naming a room goes there. Every event about a room carries
 * `room` in its `detail`.
 *
 * Direct conversations are rooms too (`dm:<id>:<id>`): {@linkcode ChatClient.direct}
 * opens one, and one the server brings this client into (it got a message)
 * is taken in by itself. The users this tab blocks (`blocks.js`) are sent to
 * the server again on every connection; read positions go to the server
 * (`read_marks.js`); moderation acts go through the outbox like messages.
 *
 * @example A bot
 * ```js
 * import { ChatClient } from "./chat_client.js";
 * const client = new ChatClient({ url: "ws://localhost:8000/ws", room: "lobby", name: "bot" });
 * client.addEventListener("message", (event) => console.log(event.detail.message.text));
 * client.start();
 * client.say("hello");
 * ```
 *
 * @example In two rooms
 * ```js
 * const client = new ChatClient({ url, room: "lobby", rooms: ["design"], name: "bot" });
 * client.start();
 * client.say("hello, design", { room: "design" });
 * client.leaveRoom("lobby");
 * ```
 *
 * @module
 */

import { BlockList } from "./blocks.js";
import { Connection } from "./connection.js";
import { isReaction, MAX_ATTACHMENTS, REACTIONS, readAttachments } from "./conversation.js";
import { dmPeer, dmRoom } from "./names.js";
import { entry, Outbox, Pacer } from "./outbox.js";
import { ReadMarks } from "./read_marks.js";
import { Requests } from "./requests.js";
import { joinRefusal, RoomList } from "./room_list.js";
import { SearchRequests } from "./search_requests.js";
import { keyed, memoryStorage, Session } from "./session.js";

export { DEFAULT_BACKOFF_MS, parseFrame, WS_FAILURES_BEFORE_FALLBACK } from "./connection.js";
export { checkRoomName, dmPeer, dmRoom, dmUsers, MAX_NAME_LENGTH, nameVariant } from "./names.js";
export { HISTORY_PAGE, HISTORY_SIZE } from "./room_state.js";
export { MAX_NAME_VARIANTS, memoryStorage } from "./session.js";
export { isReaction, MAX_ATTACHMENTS, REACTIONS };
/** Longest pause a server's `retryAfterMs` hint may ask for. */
const MAX_HINT_MS = 60_000;
/** Longest wait slow mode may ask for (the server's longest interval). */
const MAX_SLOW_MS = 3_600_000;
/** The moderation acts {@linkcode ChatClient.moderate} sends. */
const MOD_ACTIONS = new Set([
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
]);
const AUTH_ERRORS = new Set(["auth_required", "auth_invalid", "auth_expired"]);
const CLOSE_REASONS = {
  1001: "server is restarting",
  1006: "connection lost",
  1008: "disconnected by the server",
  1009: "message too large",
  1013: "server is busy",
  4000: "replaced by a newer connection",
};

/** @typedef {import("./session.js").KeyValueStorage} KeyValueStorage */
/** @typedef {import("./outbox.js").OutboxEntry} OutboxEntry */

/**
 * A room as the `rooms` answer (the directory) lists it.
 *
 * @typedef {{ name: string, members: number, lastId: number, lastTs?: number }} RoomInfo
 */

/**
 * One room as this client holds it ({@linkcode ChatClient.roomState}).
 *
 * @typedef {{ name: string, joined: boolean,
 *   members: { id: string, name: string, role?: string }[],
 *   lastId: number, epoch: string, oldestId: number, hasMore: boolean,
 *   loadingHistory: boolean, readId: number, unread: number, mentions: number,
 *   direct: boolean, peer: { userId: string, name: string } | null, role: string,
 *   topic: string, slowMs: number, mute: { until?: number, reason?: string } | null,
 *   reports: import("./room_moderation.js").Report[] }} RoomSnapshot
 */

/**
 * Options of {@linkcode ChatClient}.
 *
 * @typedef {object} ChatClientOptions
 * @property {string | URL | (() => string | URL)} url The `/ws` URL, or a function giving it.
 * @property {string | null} [room] The room in view, joined first; by default the first
 *   stored room, or `lobby`; `null` for none yet (the stored rooms only).
 * @property {string[]} [rooms] More rooms to join.
 * @property {KeyValueStorage} [storage] Where the session lives; in memory by default. The
 *   rooms a session was in are stored too, and joined again.
 * @property {typeof WebSocket} [WebSocket] The WebSocket constructor; the global one by default.
 * @property {string | URL | (() => string | URL)} [sseUrl] The `/sse` URL: when given, the
 *   client falls back to Server-Sent Events where WebSockets fail.
 * @property {typeof EventSource} [EventSource] The EventSource constructor, for the fallback.
 * @property {number} [wsRetryMs] How often the fallback tries the WebSocket again.
 * @property {string} [name] A name the user chose; it replaces the stored one.
 * @property {string} [suggestedName] Used when no name is stored: on `name_taken`, the
 *   client tries "name2", "name3", … by itself.
 * @property {string} [auth] A JWT for servers that require one.
 * @property {number[]} [backoffMs] Reconnect delays; see `DEFAULT_BACKOFF_MS`.
 * @property {() => number} [random] Jitter source in [0, 1); `Math.random` by default.
 * @property {number} [retryMs] Pause before sending again what the server could not store.
 * @property {number} [rateLimitMs] Pause after a `rate_limited` error that names none.
 * @property {number} [burst] Frames sent at once before pacing starts.
 * @property {number} [perSecond] Sustained frames per second (under the server's 5).
 * @property {number} [typingIntervalMs] Least time between two `typing` frames of a room.
 * @property {string} [prefix] Prefix of every storage key; `chat.` by default.
 */

/**
 * A chat client for one tab (or bot), in one or more rooms. Emits
 * `CustomEvent`s; `detail` holds:
 *
 * - `status`: `{ state, reason, retryAt, transport }`, the connection: `connecting`,
 *   `online` (the server accepted the first join), `reconnecting` (`retryAt` in ms since the
 *   epoch), `offline` (`reason` is `replaced`, `prompt`, `room`, `closed` or `signed-out`).
 * - `welcome`: `{ room, welcome }`, the server's welcome to a room, before its history.
 * - `joined`: `{ room }`, a room's welcome and its history were taken in.
 * - `reset`: `{ room, reason }`: forget the room's messages shown (`fresh` first join,
 *   `gap` the server could not replay everything, `epoch` the history store is a new one).
 * - `message`: `{ room, message, own, history, state, mention }`, each plain message once,
 *   in id order; `state` is the message with the changes known applied; `mention` is true
 *   when it mentions this client or answers one of its messages.
 * - `change`: `{ room, change, own, history, target }`, an edit, delete or reaction, once,
 *   in id order; `target` is the new state of the message it changes, or undefined when
 *   that message is older than what the client holds.
 * - `older`: `{ room, messages, hasMore, oldestId }`, a page answering
 *   {@linkcode ChatClient.history}; `history-error`: `{ room, message }`.
 * - `unread`: `{ room, unread, mentions }`, the room's counts after its read position.
 * - `rooms`: `{ rooms }`, the directory, answering {@linkcode ChatClient.rooms}.
 * - `sent`: `{ room, cid, id }`, an outbox entry was stored by the server.
 * - `failed`: `{ room, cid, code, message, entry }`, an outbox entry was refused for good:
 *   a message stays in the outbox as `failed`; an edit, delete or reaction is dropped.
 * - `outbox`: `{ room, entries }`, the room's outbox changed.
 * - `members`: `{ room, members }`, the room's whole member list, after a change.
 * - `presence`: `{ room, event, member, repeat, previous? }`: someone joined, left, or took
 *   another name (`event` `rename`, `previous` the old one); `repeat` is true for a join of
 *   someone already listed (a reconnect) or a leave of someone who is not.
 * - `typing`: `{ room, member }`, someone else is typing.
 * - `rooms-changed`: `{ rooms, view }`, the rooms joined or the room in view changed.
 * - `left`: `{ room, reason, sanction }`, the server took this client out of a room;
 *   `sanction` is the kick or ban that did (`{ action, until?, reason?, by? }`) when known.
 * - `room-error`: `{ room, code, message, until?, reason? }`, the room cannot be joined (an
 *   invalid name, one the token does not allow, the name is taken there, too many rooms, a
 *   ban: `until` and `reason` say which); it is dropped.
 * - `direct`: `{ room, peer, opened }`, a direct conversation came in: `opened` when
 *   {@linkcode ChatClient.direct} asked for it, else the other person wrote.
 * - `direct-error`: `{ name, code, message }`, {@linkcode ChatClient.direct} was refused
 *   (`not_found`: nobody of that name is online, `blocked`: they block you).
 * - `blocks`: `{ users }`, the users this tab blocks (`[{ id, name }]`), after a change and
 *   after each answer of the server.
 * - `moderation`: `{ room, event, own, history, target }`, a moderation event, once, in id
 *   order (`target`: the message a moderator deleted, in its new state).
 * - `policy`: `{ room, touched }`, what the room's moderation means for this client changed
 *   (`touched` holds `role`, `roles`, `topic`, `slow`, `mute`); see `roomState`.
 * - `slow`: `{ room, until }`, the room's messages wait until then in slow mode (0: no more).
 * - `reports`: `{ room, reports, added? }`, the room's open reports (moderators).
 * - `reported`: `{ room, ref }`, a {@linkcode ChatClient.report} is in.
 * - `name`: `{ name }`, the name this session holds changed (a variant, a rename).
 * - `rename-error`: `{ code, message }`, a {@linkcode ChatClient.rename} was refused; the
 *   name and the rooms stay as they were.
 * - `prompt`: `{ message, needsToken, code }`, a name (or a token) is needed from the user;
 *   the client waits for {@linkcode ChatClient.join}. `code` is the refusal's, if any
 *   (`name_reserved`: the name belongs to an account).
 * - `signed-out`: `{ name }`, the account's session ended (4001, or
 *   {@linkcode ChatClient.signedOut}); the client stopped, a guest again (`name` is the
 *   tab's guest nickname).
 * - `search`: `{ cid, q, room?, first, results, hasMore, next }`, the answer to
 *   {@linkcode ChatClient.search} (`results`: messages, newest first, each with its `room`;
 *   `next`: the cursor for {@linkcode ChatClient.search}'s `before`, as it came).
 * - `search-error`: `{ cid, q, code, message }`, a search was refused (`invalid_message`,
 *   `not_joined`).
 * - `around`: `{ room, id, merged, messages, moderation, hasMore, hasNewer }`, the answer to
 *   {@linkcode ChatClient.around}: message `id` with its neighbours, oldest first. `merged`:
 *   they reach the messages held and were taken in (an `older` event came first with the ones
 *   new to the room); otherwise they stand apart (`messages` in their current state).
 * - `around-error`: `{ room, id, code, message }`, an around request failed.
 * - `error`: `{ code, message, room? }`, any other refusal, for a banner.
 */
export class ChatClient extends EventTarget {
  #store;
  #session;
  #connection;
  #pacer;
  #outbox;
  #rooms;
  #requests;
  #blocks;
  #reads;
  #searches;
  #retryMs;
  #rateLimitMs;
  #typingIntervalMs;
  #random;
  /** True while the client should be connected (started, not prompting or replaced). */
  #running = false;
  /** True once the server welcomed this connection into a room. */
  #online = false;
  /** Rooms this client left, until the server's `left`. */
  #leaving = new Set();
  /** The name a `rename` in flight asks for. */
  #renaming = "";
  /** The names asked for with `dm` and not answered yet. @type {Set<string>} */
  #directing = new Set();
  /** Per room, the timer that ends this client's mute there. @type {Map<string, number>} */
  #muteTimers = new Map();
  #gapRejoins = 0;

  /** @param {ChatClientOptions} options */
  constructor(options) {
    super();
    this.#store = keyed(options.storage ?? memoryStorage(), options.prefix ?? "chat.");
    this.#session = new Session(this.#store, options);
    this.#retryMs = options.retryMs ?? 2000;
    this.#rateLimitMs = options.rateLimitMs ?? 1000;
    this.#typingIntervalMs = options.typingIntervalMs ?? 2000;
    this.#random = options.random ?? Math.random;
    this.#pacer = new Pacer({ burst: options.burst ?? 10, perSecond: options.perSecond ?? 4 });
    this.#connection = new Connection(options, {
      onOpen: () => this.#pump(),
      onMessage: (message) => this.#receive(message),
      onClose: (close) => this.#onClose(close),
      onDrop: () => this.#drop(),
      onStatus: (state, reason, retryAt) => this.#status(state, reason, retryAt),
    });
    const send = (/** @type {Record<string, unknown>} */ frame) => this.#connection.send(frame);
    this.#rooms = new RoomList({
      store: this.#store,
      pacer: this.#pacer,
      send,
      naming: () => this.#session.joinFields(),
    });
    this.#requests = new Requests({
      rooms: this.#rooms,
      pacer: this.#pacer,
      send,
      online: () => this.#online,
      emit: (type, detail) => this.#emit(type, detail),
    });
    const ready = (/** @type {string} */ room) =>
      this.#online && this.#rooms.get(room)?.status === "joined";
    this.#outbox = new Outbox({
      ...this.#store,
      pacer: this.#pacer,
      send,
      ready,
      emit: (type, detail) => this.#emit(type, detail),
      // Slow mode: a member's next message waits the room's interval (moderators are exempt).
      spacing: (room) => {
        const moderation = this.#rooms.get(room)?.moderation;
        return moderation && !moderation.moderator ? moderation.slowMs : 0;
      },
    });
    const session = this.#session;
    this.#blocks = new BlockList({
      store: this.#store,
      pacer: this.#pacer,
      send,
      online: () => this.#online,
      // An account's list is the server's: the tab's guest list is not sent to it.
      get resend() {
        return session.account === null;
      },
    });
    this.#reads = new ReadMarks({
      room: (name) => this.#rooms.get(name),
      pacer: this.#pacer,
      send,
      ready,
    });
    this.#searches = new SearchRequests({
      send,
      pacer: this.#pacer,
      online: () => this.#online,
      joined: ready,
      emit: (type, detail) => this.#emit(type, detail),
    });
    const stored = this.#rooms.stored();
    const view = options.room === null
      ? stored[0] ?? ""
      : options.room?.trim() || stored[0] || "lobby";
    for (const room of [...stored, view, ...(options.rooms ?? [])]) this.#add(room.trim());
    this.#rooms.view = view;
    this.#rooms.save();
  }

  // --- State -----------------------------------------------------------------

  /** The room in view: what is said without naming a room goes there. */
  get room() {
    return this.#rooms.view;
  }

  /** The rooms this client is in or joining, in the order they were joined. */
  get joinedRooms() {
    return this.#rooms.names;
  }

  /** The name this session joins with ("" when none is known yet). */
  get name() {
    return this.#session.name;
  }

  /** True when the name came from a suggestion rather than from the user. */
  get nameIsSuggested() {
    return this.#session.suggested;
  }

  /** The user id from the last welcome, or "". */
  get userId() {
    return this.#session.userId;
  }

  /**
   * The session token from the last welcome ("" before one): a guest's
   * uploads and file requests carry it in `X-Chat-Session`.
   */
  get sessionToken() {
    return this.#store.read("token");
  }

  /** The transport in use: `websocket`, or `sse` when WebSockets failed. */
  get transport() {
    return this.#connection.transport;
  }

  /** True between the server's first welcome and the connection closing. */
  get online() {
    return this.#online;
  }

  /** A copy of the outbox of every room, oldest first (each entry names its `room`). */
  get outbox() {
    return this.#outbox.entries();
  }

  /** The members of the room in view, as last known. */
  get members() {
    return this.membersOf(this.room);
  }

  /** The newest message id seen in the room in view, in order. */
  get lastId() {
    return this.roomState()?.lastId ?? 0;
  }

  /** The history store's epoch from the room in view's last welcome, or "". */
  get epoch() {
    return this.roomState()?.epoch ?? "";
  }

  /** The smallest message id held in the room in view. */
  get oldestId() {
    return this.roomState()?.oldestId ?? 1;
  }

  /** False once the server said the room in view has nothing older. */
  get hasMore() {
    return this.roomState()?.hasMore ?? false;
  }

  /** True while a history page of the room in view is on its way. */
  get loadingHistory() {
    return this.roomState()?.loadingHistory ?? false;
  }

  /**
   * What the client holds of `room`, or undefined when it is not in it.
   *
   * @param {string} [room] The room in view by default.
   * @returns {RoomSnapshot | undefined}
   */
  roomState(room = this.room) {
    return this.#rooms.get(room)?.snapshot(this.#online);
  }

  /** The members of `room`, as last known, each with their role when they have one. @param {string} room */
  membersOf(room) {
    return this.#rooms.get(room)?.memberList ?? [];
  }

  /** The users this tab blocks, in the order it blocked them: `[{ id, name }]`. */
  get blocked() {
    return this.#blocks.list;
  }

  /** Whether this tab blocks user `id`. @param {string} id */
  isBlocked(id) {
    return this.#blocks.has(id);
  }

  /**
   * Until when a message to `room` waits in slow mode (ms since the epoch; 0: it does not).
   *
   * @param {string} [room] The room in view by default.
   */
  slowUntil(room = this.room) {
    return this.#outbox.heldUntil(room);
  }

  /**
   * Message `id` of `room` with its edits, deletion and reactions applied,
   * or undefined when the client does not hold it.
   *
   * @param {number} id
   * @param {string} [room] The room in view by default.
   */
  message(id, room = this.room) {
    return this.#rooms.get(room)?.conversation.get(id);
  }

  /**
   * This session's newest message in `room` that is not deleted (for "edit
   * the last one"), or undefined.
   *
   * @param {string} [room] The room in view by default.
   */
  lastOwnMessage(room = this.room) {
    const userId = this.#session.userId;
    return userId ? this.#rooms.get(room)?.conversation.lastBy(userId) : undefined;
  }

  // --- Connecting, names and rooms --------------------------------------------

  /** Connects and joins every room, or emits `prompt` when there is no name yet. */
  start() {
    this.#running = true;
    if (!this.#session.name) return this.#toPrompt();
    if (this.#rooms.size === 0) return this.#status("offline", "room");
    this.#connection.start();
  }

  /**
   * Joins under `name` (reconnecting now). A name the user `typed` that is
   * taken ends in a `prompt`; a suggested one is varied until one is free.
   * Once joined, {@linkcode ChatClient.rename} changes the name and keeps the rooms.
   *
   * @param {string} name The nickname.
   * @param {{ typed?: boolean, auth?: string }} [options]
   */
  join(name, options = {}) {
    const trimmed = name.trim();
    this.#session.setName(trimmed, options.typed === false ? trimmed : "");
    if (options.auth !== undefined) this.#session.setAuth(options.auth);
    this.start();
  }

  /**
   * Takes another name in every room at once, without leaving them. A `name`
   * event follows, or a `rename-error` (such as `name_taken`) and nothing
   * changes. Offline, the name is kept for the next connection.
   *
   * @param {string} name
   */
  rename(name) {
    const trimmed = name.trim();
    if (!trimmed) return;
    if (!this.#online) {
      this.#session.setName(trimmed, "");
      return this.#emit("name", { name: trimmed });
    }
    this.#renaming = trimmed;
    this.#pacer.spend();
    this.#connection.send({ type: "rename", name: trimmed });
  }

  /** The account this client is signed in to (`{ id, name }`), or null for a guest. */
  get account() {
    return this.#session.account;
  }

  /** The tab's guest nickname, kept while signed in ("" when none is known). */
  get guestName() {
    return this.#session.guestName;
  }

  /**
   * Makes this client an account's (`{ id, name }`, after `GET /auth/me`, a
   * sign-in or a registration) or a guest's again (`null`). Running, it
   * connects again at once, so that the new connection carries the cookie
   * (and is the account, in every room). A `name` event follows. `blocks`
   * (the user ids of `GET /auth/me`) become the tab's block list (a
   * `blocks` event follows when it changed); the tab's list is not sent to
   * an account, whose list the server keeps.
   *
   * @param {{ id: string, name: string } | null} account
   * @param {{ blocks?: string[] }} [options]
   */
  useAccount(account, options = {}) {
    this.#session.useAccount(account);
    this.#emit("name", { name: this.name });
    if (account && Array.isArray(options.blocks) && this.#blocks.fromServer(options.blocks)) {
      this.#blocksChanged();
    }
    if (this.#running && this.#session.name && this.#rooms.size > 0) this.#connection.start();
  }

  /**
   * The account's session ended (signed out here, or the server closed the
   * connection with 4001): back to a guest, stopped, `offline` with reason
   * `signed-out`, and a `signed-out` event; {@linkcode ChatClient.join}
   * goes on as a guest. Nothing happens for a guest.
   */
  signedOut() {
    if (this.#session.account) this.#endAccount();
  }

  /** Reconnects at once when waiting for a reconnect (the network is back). */
  reconnect() {
    this.#connection.reconnect();
  }

  /**
   * Joins `room` too (the rooms joined before stay joined); it resumes where
   * this session was in it. Returns false when the client is in it already.
   *
   * @param {string} room
   */
  joinRoom(room) {
    if (!this.#add(room.trim())) return false;
    this.#changed();
    if (this.#running && !this.#connection.running) this.#connection.start();
    else this.#pump();
    return true;
  }

  /**
   * Makes `room` the room in view, joining it first when needed. The other
   * rooms stay joined. ({@linkcode ChatClient.setRoom} is the same, for bots
   * written for one room.)
   *
   * @param {string} room
   */
  view(room) {
    room = room.trim() || "lobby";
    if (this.room === room && this.#rooms.get(room)) return;
    this.#rooms.view = room;
    if (!this.joinRoom(room)) this.#changed();
  }

  /** @param {string} room */
  setRoom(room) {
    this.view(room);
  }

  /**
   * Leaves `room`: the server is told, and what this tab kept of the room
   * (its position, its outbox) is forgotten. The room in view moves to the
   * first room left. Returns false when the client was not in it.
   *
   * @param {string} room
   */
  leaveRoom(room) {
    const state = this.#rooms.remove(room);
    if (!state) return false;
    this.#forgetRoom(room);
    if (state.status !== "idle" && this.#connection.send({ type: "leave", room })) {
      this.#pacer.spend();
      this.#leaving.add(room);
    }
    this.#changed();
    this.#pump();
    return true;
  }

  /**
   * Disconnects for good: no reconnect, every timer cleared. Resolves once
   * every socket it opened is closed.
   *
   * @returns {Promise<void>}
   */
  async close() {
    this.#running = false;
    for (const timer of this.#muteTimers.values()) clearTimeout(timer);
    this.#muteTimers.clear();
    this.#outbox.close();
    this.#searches.close();
    const closed = this.#connection.close();
    this.#status("offline", "closed");
    await closed;
  }

  // --- Saying things -----------------------------------------------------------

  /**
   * Puts `text` in the outbox of `room` and sends it when that room is
   * joined. It is sent again, with the same `cid`, after reconnects and
   * retriable errors, until the server acknowledges it.
   *
   * @param {string} text The message ("" when it carries files).
   * @param {{ replyTo?: number, room?: string,
   *   files?: import("./conversation.js").Attachment[] }} [options] `replyTo`: the id of the
   *   message it answers; `room`: the room in view by default; `files`: files uploaded for
   *   that room (at most {@linkcode MAX_ATTACHMENTS}, as the upload answered them), whose ids
   *   go as the say's `attachments` (kept with the entry across reconnects and reloads).
   * @returns {OutboxEntry} The new entry.
   */
  say(text, options = {}) {
    const replyTo = Number.isSafeInteger(options.replyTo) && Number(options.replyTo) > 0
      ? { replyTo: options.replyTo }
      : {};
    const files = readAttachments(options.files ?? []);
    if ((options.files?.length ?? 0) > MAX_ATTACHMENTS) {
      throw new RangeError(`At most ${MAX_ATTACHMENTS} files go with one message`);
    }
    return this.#outbox.add({
      ...entry(this.#target(options.room), text),
      ...replyTo,
      ...(files.length ? { files } : {}),
    });
  }

  /**
   * Answers message `ref` with `text`: {@linkcode ChatClient.say} with `replyTo`.
   *
   * @param {number} ref
   * @param {string} text
   * @param {{ room?: string }} [options]
   */
  reply(ref, text, options = {}) {
    return this.say(text, { ...options, replyTo: ref });
  }

  /**
   * Replaces the text of this session's message `ref`. Sent like a message,
   * with retries; the change arrives as a `change` event.
   *
   * @param {number} ref
   * @param {string} text
   * @param {{ room?: string }} [options]
   */
  edit(ref, text, options = {}) {
    return this.#outbox.add({ ...this.#change("edit", ref, options.room), text });
  }

  /**
   * Deletes this session's message `ref`.
   *
   * @param {number} ref
   * @param {{ room?: string }} [options]
   */
  remove(ref, options = {}) {
    return this.#outbox.add(this.#change("delete", ref, options.room));
  }

  /**
   * Toggles this session's reaction `emoji` on message `ref`: one emoji, any
   * (the menu offers {@linkcode REACTIONS} at once; the server refuses what
   * is not one emoji, or one too many kinds on a message, with
   * `invalid_message`).
   *
   * @param {number} ref
   * @param {string} emoji
   * @param {{ room?: string }} [options]
   */
  react(ref, emoji, options = {}) {
    if (!isReaction(emoji)) throw new RangeError(`Not a reaction: ${emoji}`);
    return this.#outbox.add({ ...this.#change("react", ref, options.room), emoji });
  }

  /**
   * Asks for the messages of a room before `before` (the oldest one held by
   * default); they come as an `older` event. Returns false when there is
   * nothing to ask for, or while offline or a page is already on its way.
   *
   * @param {number | { before?: number, room?: string }} [options] `before`, or both.
   */
  history(options = {}) {
    const { before, room } = typeof options === "number" ? { before: options } : options;
    return this.#requests.history(room ?? this.room, before);
  }

  /**
   * Searches the messages of every room this connection is in (or of
   * `room`) for `q`: every word a word or the start of one. The answer comes
   * as a `search` event with the returned `cid` (or a `search-error`); for
   * the next page, ask again with `before` set to its `next`. One search is
   * on its way at a time: a newer one waits for it and makes its answer
   * stale (only the newest is answered). Offline, it waits for the
   * connection.
   *
   * @param {string} q
   * @param {{ room?: string, before?: unknown }} [options]
   * @returns {string} The search's cid.
   */
  search(q, options = {}) {
    return this.#searches.search(q.trim(), options);
  }

  /** Forgets the searches asked for and not answered (the page closed its search). */
  cancelSearch() {
    this.#searches.cancel();
  }

  /**
   * Asks for message `id` of `room` with its neighbours (`history {room,
   * around}`); they come as an `around` event. False while offline, or when
   * the room is not joined.
   *
   * @param {string} room
   * @param {number} id
   */
  around(room, id) {
    return this.#searches.around(room, id);
  }

  /** Asks for the room directory; it comes as a `rooms` event. False while offline. */
  rooms() {
    return this.#requests.directory();
  }

  /**
   * Marks `room` read up to message `id` (its newest by default); an `unread`
   * event follows when its counts change.
   *
   * @param {string} [room] The room in view by default.
   * @param {number} [id]
   */
  markRead(room = this.room, id) {
    const state = this.#rooms.get(room);
    if (!state) return;
    if (state.markRead(id ?? state.lastId, this.#me())) this.#unread(state);
    this.#reads.mark(room);
  }

  // --- People: direct conversations and blocks -----------------------------------

  /**
   * Opens the direct conversation with the user called `name` and makes it
   * the room in view: at once when this client is in it already (found by
   * the member's id in a room), else by asking the server (`dm`); a `direct`
   * event follows, or a `direct-error`. Returns the room when it is known
   * now, `true` when asked, `false` while offline.
   *
   * @param {string} name
   * @param {string} [userId] Their user id, when known (from a member list or a message).
   * @returns {string | boolean}
   */
  direct(name, userId) {
    const me = this.#session.userId;
    const id = userId ?? this.#memberNamed(name)?.id;
    if (id && me) {
      const room = dmRoom(me, id);
      if (this.#rooms.get(room)) {
        this.view(room);
        return room;
      }
    }
    if (!this.#online) return false;
    this.#directing.add(nameKey(name));
    this.#pacer.spend();
    // By id when the member is known: a name is unique in a room, not on the server.
    return this.#connection.send(id ? { type: "dm", userId: id } : { type: "dm", name });
  }

  /**
   * Blocks `user`: their messages count as neither unread nor mentions here
   * (the page hides them), the server refuses their direct messages, and a
   * conversation with them is left. Kept in the tab's storage, and sent to
   * the server again on every connection. False when blocked already.
   *
   * @param {{ id: string, name: string }} user
   */
  block(user) {
    if (!user.id || user.id === this.#session.userId || !this.#blocks.block(user)) return false;
    this.#blocksChanged();
    const room = dmRoom(this.#session.userId, user.id);
    if (this.#session.userId && this.#rooms.get(room)) this.leaveRoom(room);
    return true;
  }

  /** Takes a block back. False when `id` was not blocked. @param {string} id */
  unblock(id) {
    if (!this.#blocks.unblock(id)) return false;
    this.#blocksChanged();
    return true;
  }

  // --- Moderation ------------------------------------------------------------------

  /**
   * A moderation act in `room` (see the README's Moderation): sent through
   * the outbox like a message, with a `cid`, so it goes once however often it
   * is retried. The server answers with an `ack` (a `sent` event) and the act's
   * `moderation` event, or refuses it (a `failed` event with its `code`).
   *
   * @param {string} action `kick`, `mute`, `unmute`, `ban`, `unban`, `delete`, `slow`,
   *   `topic`, `promote`, `demote` or `dismiss`.
   * @param {{ room?: string, userId?: string, ref?: number, durationMs?: number,
   *   reason?: string, topic?: string }} [options]
   * @returns {OutboxEntry}
   */
  moderate(action, options = {}) {
    if (!MOD_ACTIONS.has(action)) throw new RangeError(`Not a moderation act: ${action}`);
    /** @type {OutboxEntry} */
    const act = { ...entry(this.#target(options.room), ""), kind: "mod", action };
    if (options.userId) act.userId = options.userId;
    if (Number.isSafeInteger(options.ref)) act.ref = options.ref;
    if (Number.isSafeInteger(options.durationMs) && Number(options.durationMs) >= 0) {
      act.durationMs = options.durationMs;
    }
    const reason = options.reason?.trim();
    if (reason) act.reason = reason;
    if (options.topic !== undefined) act.topic = options.topic.trim();
    return this.#outbox.add(act);
  }

  /**
   * Flags message `ref` of `room` for its moderators, saying why. A
   * `reported` event follows, or an `error`. False while offline.
   *
   * @param {number} ref
   * @param {string} reason 1–300 characters.
   * @param {{ room?: string }} [options]
   */
  report(ref, reason, options = {}) {
    const room = this.#target(options.room);
    if (!this.#online || this.#rooms.get(room)?.status !== "joined" || !reason.trim()) {
      return false;
    }
    this.#pacer.spend();
    return this.#connection.send({ type: "report", room, ref, reason: reason.trim() });
  }

  /**
   * Asks for the open reports of `room` (its moderators only); they come as a
   * `reports` event. False while offline.
   *
   * @param {string} [room] The room in view by default.
   */
  requestReports(room = this.room) {
    if (!this.#online || this.#rooms.get(room)?.status !== "joined") return false;
    this.#pacer.spend();
    return this.#connection.send({ type: "reports", room });
  }

  /** Sends every failed message (of `room`) again. Returns how many. @param {string} [room] */
  retryFailed(room) {
    return this.#outbox.retryFailed(room);
  }

  /** Drops every failed message (of `room`). Returns their cids. @param {string} [room] */
  discardFailed(room) {
    return this.#outbox.discardFailed(room);
  }

  /** Sends a failed outbox entry again; false when there is none. @param {string} cid */
  retry(cid) {
    return this.#outbox.retry(cid);
  }

  /** Drops an outbox entry without sending it. @param {string} cid */
  discard(cid) {
    return this.#outbox.discard(cid);
  }

  /**
   * Tells `room` you are typing, at most once per `typingIntervalMs`, and
   * never at the cost of a message (it is skipped when sending is paced).
   *
   * @param {string} [room] The room in view by default.
   */
  typing(room = this.room) {
    const state = this.#rooms.get(room);
    const now = Date.now();
    if (!this.#online || state?.status !== "joined") return;
    if (now - state.lastTyping < this.#typingIntervalMs || this.#pacer.level < 2) return;
    this.#pacer.spend();
    if (this.#connection.send({ type: "typing", room })) state.lastTyping = now;
  }

  // --- Server events -------------------------------------------------------------

  /** @param {Record<string, any>} msg */
  #receive(msg) {
    const room = this.#rooms.of(msg);
    switch (msg.type) {
      case "welcome":
        return this.#onWelcome(msg);
      case "message":
        return this.#onMessage(msg, true);
      case "ack":
        return void this.#outbox.confirm(msg.cid, msg.id);
      case "presence": {
        const change = room?.presence(msg);
        if (!room) return;
        this.#emit("members", { room: room.name, members: room.memberList });
        if (change) this.#emit("presence", { room: room.name, ...change });
        return;
      }
      case "typing":
        if (room && msg.member && msg.member.id !== this.userId) {
          this.#emit("typing", { room: room.name, member: msg.member });
        }
        return;
      case "search":
        return this.#searches.answered(msg);
      case "history": {
        if (room && msg.around !== undefined) return this.#onAround(room, msg);
        const page = room?.older(msg, this.#me());
        if (!room || !page) return;
        this.#emit("older", { room: room.name, ...page });
        return this.#unread(room);
      }
      case "rooms":
        this.#requests.answered();
        return this.#emit("rooms", {
          rooms: (Array.isArray(msg.rooms) ? msg.rooms : []).filter((r) =>
            r && typeof r.name === "string"
          ),
        });
      case "left":
        return this.#onLeft(String(msg.room), String(msg.reason ?? ""));
      case "renamed":
        this.#renaming = "";
        if (typeof msg.name !== "string" || !msg.name) return;
        this.#session.setName(msg.name, "");
        return this.#emit("name", { name: msg.name });
      case "read":
        // Read on another connection of this user: the counts go down here too.
        if (!room || !Number.isSafeInteger(msg.id)) return;
        this.#reads.told(room.name, msg.id);
        if (room.markRead(msg.id, this.#me(), true)) this.#unread(room);
        return;
      case "blocks":
        // The server's answer: the counts follow when the list changed; the page is told anyway.
        if (this.#blocks.fromServer(msg.users)) return this.#blocksChanged();
        return this.#emit("blocks", { users: this.#blocks.list });
      case "muted":
        if (!room) return;
        room.moderation.muteFrom(msg);
        return this.#policy(room, ["mute"]);
      case "report":
        if (room?.moderation.moderator && room.moderation.addReport(msg.report)) {
          this.#emitReports(room, msg.report);
        }
        return;
      case "reports":
        if (!room?.moderation.moderator) return;
        room.moderation.setReports(msg.reports);
        return this.#emitReports(room);
      case "reported":
        if (room) this.#emit("reported", { room: room.name, ref: msg.ref });
        return;
      case "error":
        return this.#onError(msg);
    }
  }

  /** @param {Record<string, any>} welcome */
  #onWelcome(welcome) {
    const direct = this.#takeDirect(welcome);
    if (direct === "refused") return;
    const room = this.#rooms.of(welcome);
    // A conversation whose join was still to be sent, and the server brought the client in.
    if (room?.status === "idle" && room.direct && this.#online) room.pulled();
    if (!room || room.status !== "joining") {
      // Not wanted any more (and no leave on its way): leave it.
      const name = welcome.room;
      if (!room && typeof name === "string" && !this.#leaving.has(name)) {
        if (this.#connection.send({ type: "leave", room: name })) this.#leaving.add(name);
      }
      return;
    }
    const first = !this.#online;
    if (first) {
      this.#online = true;
      this.#rooms.naming = "";
      this.#connection.welcomed();
      if (this.#session.welcomed(welcome)) this.#emit("name", { name: this.name });
    }
    const wasModerator = room.moderation.moderator;
    const { reason, history } = room.welcome(welcome);
    this.#emit("welcome", { room: room.name, welcome });
    this.#emit("members", { room: room.name, members: room.memberList });
    if (reason) this.#emit("reset", { room: room.name, reason });
    // A conversation the server brought this client into: what it did not read is news.
    const readId = room.readId;
    for (const message of history) {
      this.#onMessage(message, false, direct === "adopted" && message.id > readId);
    }
    room.settle(this.#me());
    if (direct) {
      this.#changed();
      this.#emit("direct", { room: room.name, peer: room.peer, opened: direct === "opened" });
    }
    this.#emit("joined", { room: room.name });
    this.#policy(room, ["role", "roles", "topic", "slow", "mute"]);
    if (room.moderation.moderator) this.requestReports(room.name);
    else if (wasModerator) this.#emitReports(room);
    this.#unread(room);
    if (first) {
      this.#status("online");
      this.#blocks.sync();
    }
    this.#outbox.flush();
    this.#searches.flush();
    this.#pump();
  }

  /**
   * The answer to {@linkcode ChatClient.around}: the messages that reach
   * what the room holds are taken in (an `older` event), then the `around`
   * event says where the message is.
   *
   * @param {import("./room_state.js").RoomState} room
   * @param {Record<string, any>} page
   */
  #onAround(room, page) {
    const id = this.#searches.aroundAnswered(room.name, page.around);
    if (!id) return;
    const answer = room.around(page, this.#me());
    if (answer.merged) {
      const { messages, moderation, oldestId } = answer;
      this.#emit("older", {
        room: room.name,
        messages,
        moderation,
        hasMore: room.hasMore,
        oldestId,
      });
      this.#unread(room);
    }
    this.#emit("around", { room: room.name, id, ...answer });
  }

  /**
   * A welcome to a direct conversation of this user that this client is not
   * in: the answer to {@linkcode ChatClient.direct} (`opened`), or the
   * server brought it in because the conversation got a message
   * (`adopted`); either way the room joins the list. One with someone this
   * tab blocks is left at once (`refused`). "" for any other welcome.
   *
   * @param {Record<string, any>} welcome
   * @returns {"" | "opened" | "adopted" | "refused"}
   */
  #takeDirect(welcome) {
    const name = welcome.room;
    const me = this.#session.userId;
    if (typeof name !== "string" || this.#rooms.get(name) || this.#leaving.has(name)) return "";
    const peer = dmPeer(name, me);
    if (!this.#online || !peer) return "";
    if (this.#blocks.has(peer)) {
      if (this.#connection.send({ type: "leave", room: name })) this.#leaving.add(name);
      return "refused";
    }
    const key = nameKey(String(welcome.peer?.name ?? ""));
    const opened = this.#directing.delete(key);
    this.#add(name);
    const room = /** @type {import("./room_state.js").RoomState} */ (this.#rooms.get(name));
    if (opened) room.joinFrame(); // as a join of ours: read up to its end
    else room.adopt();
    if (opened) this.#rooms.view = name;
    return opened ? "opened" : "adopted";
  }

  /**
   * A message or change, for its room.
   *
   * @param {Record<string, any>} message
   * @param {boolean} live False for messages from a welcome's history.
   * @param {boolean} [fresh] A message from a welcome's history that is news all the same
   *   (a conversation the server brought this client into): not marked `history`.
   */
  #onMessage(message, live, fresh = false) {
    const room = this.#rooms.of(message);
    if (!room || !this.#online) return;
    if (this.userId !== "" && message.userId === this.userId) {
      this.#outbox.confirm(message.cid, message.id);
    }
    if (this.#blocks.has(message.userId)) this.#blocks.seen(message.userId, message.name);
    const counts = [room.unread, room.mentions];
    const accepted = room.accept(message, live, this.#me());
    if (!accepted) return;
    if (accepted.type === "gap") {
      // Some never arrived: rejoin with `since` to get them in order.
      this.#gapRejoins++;
      return this.#connection.scheduleReconnect(
        "missing messages",
        this.#gapRejoins > 1 ? this.#connection.backoff() : 0,
      );
    }
    if (live) this.#gapRejoins = 0;
    if (accepted.type === "moderation") return this.#onModeration(room, accepted);
    const { type, ...detail } = accepted;
    if (fresh && "history" in detail) detail.history = false;
    this.#emit(type, { room: room.name, ...detail });
    if (live && (room.unread !== counts[0] || room.mentions !== counts[1])) this.#unread(room);
  }

  /**
   * A moderation event: the room's moderation follows it (already), the
   * page is told, and what it changed for this client takes effect.
   *
   * @param {import("./room_state.js").RoomState} room
   * @param {Extract<import("./room_state.js").Accepted, { type: "moderation" }>} accepted
   */
  #onModeration(room, { type: _type, touched, ...detail }) {
    this.#emit("moderation", { room: room.name, ...detail });
    if (touched.has("slow") && room.moderation.slowMs === 0) this.#outbox.release(room.name);
    if (touched.has("reports")) this.#emitReports(room);
    if (touched.has("role") && room.moderation.moderator && !detail.history) {
      this.requestReports(room.name);
    } else if (touched.has("role")) this.#emitReports(room);
    if (touched.size) this.#policy(room, [...touched].filter((t) => t !== "reports"));
  }

  /**
   * The server's `left`: the answer to a leave, or the server took the client out.
   *
   * @param {string} name
   * @param {string} reason
   */
  #onLeft(name, reason) {
    if (this.#leaving.delete(name)) return;
    const sanction = this.#rooms.get(name)?.moderation.sanction ?? null;
    if (!this.#rooms.remove(name)) return;
    this.#forgetRoom(name);
    this.#changed();
    this.#emit("left", { room: name, reason, sanction });
  }

  /** @param {Record<string, any>} error */
  #onError(error) {
    const { code, cid } = error;
    const message = typeof error.message === "string" ? error.message : "Something went wrong";
    if (AUTH_ERRORS.has(code)) {
      this.#session.setAuth("");
      return this.#toPrompt(message, true);
    }
    const pause = code === "rate_limited"
      ? hintMs(error) ?? this.#rateLimitMs
      : code === "slow_mode"
      ? Math.min(hintMs(error, MAX_SLOW_MS) ?? this.#retryMs, MAX_SLOW_MS)
      : this.#retryMs;
    if (code === "rate_limited") this.#pacer.limited(pause);
    const room = this.#rooms.of(error);
    if (code === "muted" && room) {
      // Why and until when: the composer says so until it ends.
      room.moderation.muteFrom(error);
      this.#policy(room, ["mute"]);
    }
    const entry = this.#outbox.find(cid);
    if (entry) return this.#outbox.refused(entry, code, message, pause);
    if (this.#searches.refused(error, pause)) return;
    if (cid !== undefined || /^Cannot leave room/.test(message)) return;
    // A join the server made for the client first (a conversation that got a message).
    if (code === "already_joined" && room?.status === "joined") return;
    if (room?.status === "joining" && /^Cannot join room/.test(message)) {
      return this.#onJoinRefused(room, code, message, pause, error);
    }
    if (/^Cannot open conversation/.test(message)) {
      const [name] = this.#directing;
      this.#directing.clear();
      return this.#emit("direct-error", { name: name ?? "", code, message });
    }
    if (/^Cannot (un)?block user/.test(message)) this.#blocks.refused();
    if (this.#renaming && (/^Cannot rename/.test(message) || code === "name_taken")) {
      this.#renaming = "";
      return this.#emit("rename-error", { code, message });
    }
    const joins = this.#requests.refused(code, message, pause, error.room);
    if (joins) {
      // A join maybe refused: sent again after the pause (`already_joined` if it got in).
      for (const room of joins) this.#rooms.later(room, pause);
      return this.#pump();
    }
    if (code === "rate_limited") return; // a typing frame: nothing to redo
    const about = typeof error.room === "string" ? { room: error.room } : {};
    this.#emit("error", { code, message, ...about });
  }

  /**
   * A refused join (see `joinRefusal`).
   *
   * @param {import("./room_state.js").RoomState} room
   * @param {string} code
   * @param {string} message
   * @param {number} pause
   * @param {Record<string, any>} error
   */
  #onJoinRefused(room, code, message, pause, error) {
    if (code === "name_taken" && this.#session.account) {
      // The account's name is its own: a guest connection of this tab still leaving holds it.
      if (this.#online) {
        this.#rooms.later(room, pause);
        return this.#pump();
      }
      return this.#connection.scheduleReconnect(message, this.#connection.backoff());
    }
    switch (joinRefusal(code, message, !this.#online)) {
      case "ignore":
        return;
      case "drop":
        return this.#refuseRoom(room.name, code, message, {
          ...(Number.isFinite(error.until) ? { until: error.until } : {}),
          ...(typeof error.reason === "string" && error.reason ? { reason: error.reason } : {}),
        });
      case "later":
        this.#rooms.later(room, pause);
        return this.#pump();
      case "reconnect": {
        const delay = Math.max(this.#rateLimitMs, this.#connection.backoff());
        return this.#connection.scheduleReconnect(message, delay);
      }
      case "vary":
        // A suggested name: try a free variant on the same socket.
        if (this.#session.vary(this.#random)) {
          this.#emit("name", { name: this.name });
          return void this.#rooms.sendJoin(room, true);
        }
    }
    this.#toPrompt(message, false, code);
  }

  /**
   * The server will not have this client in `name`: the room is dropped, and
   * the page is told why.
   *
   * @param {string} name
   * @param {string} code
   * @param {string} message
   * @param {{ until?: number, reason?: string }} [extra] A ban's end and reason.
   */
  #refuseRoom(name, code, message, extra = {}) {
    this.#rooms.remove(name);
    this.#forgetRoom(name);
    this.#changed();
    this.#emit("room-error", { room: name, code, message, ...extra });
    if (this.#rooms.size > 0 || this.#online) return this.#pump();
    this.#connection.stop();
    this.#status("offline", "room");
  }

  /** @param {{ code: number, reason: string }} event */
  #onClose(event) {
    if (event.code === 4000) {
      // The same session joined again elsewhere: reconnecting would take it back.
      this.#running = false;
      this.#connection.stop();
      this.#status("offline", "replaced");
    } else if (event.code === 4001) {
      // The account's session ended (signed out, maybe elsewhere): no reconnect as it.
      this.#endAccount();
    } else if (event.code === 1008 && event.reason === "token expired") {
      this.#session.setAuth("");
      this.#toPrompt("Your access token has expired: paste a fresh one.", true);
    } else {
      this.#connection.scheduleReconnect(
        event.reason || CLOSE_REASONS[/** @type {keyof CLOSE_REASONS} */ (event.code)] ||
          "connection closed",
      );
    }
  }

  /** Back to a guest, stopped, and the page told (`signed-out`). */
  #endAccount() {
    this.#session.useAccount(null);
    this.#running = false;
    this.#connection.stop();
    this.#status("offline", "signed-out");
    this.#emit("signed-out", { name: this.#session.guestName });
  }

  /** The socket is gone: nothing is joined or in flight on it. */
  #drop() {
    this.#online = false;
    this.#renaming = "";
    this.#leaving.clear();
    this.#directing.clear();
    this.#requests.drop();
    this.#searches.drop();
    this.#outbox.reset();
    this.#blocks.drop();
    this.#reads.drop();
    this.#rooms.drop();
  }

  /**
   * Stops and asks for a name (and a token when `needsToken`); `code` is the
   * refusal's (`name_reserved`: the name is an account's).
   */
  #toPrompt(message = "", needsToken = false, code = "") {
    this.#running = false;
    this.#connection.stop();
    this.#status("offline", "prompt");
    this.#emit("prompt", { message, needsToken, code });
  }

  // --- Helpers -------------------------------------------------------------------

  /** Sends the joins that are due, when connected. */
  #pump() {
    if (this.#connection.open) this.#rooms.pump(this.#online);
  }

  /**
   * Adds `room` to the list with its stored outbox; false when it is in it
   * already (or empty).
   *
   * @param {string} room
   */
  #add(room) {
    if (!room || !this.#rooms.add(room)) return false;
    this.#outbox.load(room);
    return true;
  }

  /** The room an action names, or the room in view. @param {string | undefined} room */
  #target(room) {
    const name = room ?? this.room;
    if (!this.#rooms.get(name)) throw new RangeError(`Not in room: ${name}`);
    return name;
  }

  /**
   * @param {"edit" | "delete" | "react"} kind
   * @param {number} ref
   * @param {string | undefined} room
   * @returns {OutboxEntry}
   */
  #change(kind, ref, room) {
    if (!Number.isSafeInteger(ref) || ref < 1) throw new RangeError(`Not a message id: ${ref}`);
    return { ...entry(this.#target(room), ""), kind, ref };
  }

  /** The rooms or the room in view changed: keep them and say so. */
  #changed() {
    this.#rooms.save();
    this.#emit("rooms-changed", { rooms: this.joinedRooms, view: this.room });
  }

  /** @param {import("./room_state.js").RoomState} room */
  #unread(room) {
    this.#emit("unread", { room: room.name, unread: room.unread, mentions: room.mentions });
  }

  #me() {
    return { id: this.#session.userId, name: this.#session.name, blocks: this.#blocks };
  }

  /** What the client kept of a room it is no longer in goes. @param {string} name */
  #forgetRoom(name) {
    this.#outbox.forget(name);
    this.#outbox.release(name);
    clearTimeout(this.#muteTimers.get(name));
    this.#muteTimers.delete(name);
  }

  /** The block list changed: the counts follow, and the page is told. */
  #blocksChanged() {
    const me = this.#me();
    for (const room of this.#rooms.values()) if (room.recount(me)) this.#unread(room);
    this.#emit("blocks", { users: this.#blocks.list });
  }

  /**
   * The room's moderation changed for this client: the page is told, and a
   * mute with an end is lifted by itself then.
   *
   * @param {import("./room_state.js").RoomState} room
   * @param {string[]} touched
   */
  #policy(room, touched) {
    if (touched.includes("mute")) {
      clearTimeout(this.#muteTimers.get(room.name));
      this.#muteTimers.delete(room.name);
      const until = room.moderation.muted() ? room.moderation.mute?.until : undefined;
      if (until !== undefined) {
        const wait = Math.min(until - Date.now(), 2 ** 31 - 1);
        this.#muteTimers.set(
          room.name,
          setTimeout(() => {
            this.#muteTimers.delete(room.name);
            if (this.#rooms.get(room.name) === room) this.#policy(room, ["mute"]);
          }, wait),
        );
      }
    }
    this.#emit("policy", { room: room.name, touched });
  }

  /**
   * The room's open reports, to the page.
   *
   * @param {import("./room_state.js").RoomState} room
   * @param {unknown} [added] The report that just came.
   */
  #emitReports(room, added) {
    const reports = [...room.moderation.reports.values()].map((r) => ({ ...r }));
    this.#emit("reports", { room: room.name, reports, ...(added ? { added } : {}) });
  }

  /** A member called `name` in any room (the room in view first). @param {string} name */
  #memberNamed(name) {
    const key = nameKey(name);
    for (const room of [this.#rooms.get(this.room), ...this.#rooms.values()]) {
      const member = room?.memberList.find((m) => nameKey(m.name) === key);
      if (member) return member;
    }
    return undefined;
  }

  /**
   * @param {string} state
   * @param {string} [reason]
   * @param {number} [retryAt]
   */
  #status(state, reason = "", retryAt = 0) {
    this.#emit("status", { state, reason, retryAt, transport: this.#connection.transport });
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * The pause a `rate_limited` or `slow_mode` error asks for, in ms
 * (`retryAfterMs`, or `retryAfter` in seconds), at most `max`, or undefined
 * when it names none.
 *
 * @param {Record<string, any>} error
 * @param {number} [max]
 */
function hintMs(error, max = MAX_HINT_MS) {
  const ms = Number.isFinite(error.retryAfterMs)
    ? error.retryAfterMs
    : Number.isFinite(error.retryAfter)
    ? error.retryAfter * 1000
    : NaN;
  return ms > 0 ? Math.min(ms, max) : undefined;
}

/**
 * A name as the client compares it: NFKC, lower case, trimmed (the server
 * also folds confusable letters; this is enough to match its answer).
 *
 * @param {string} name
 */
function nameKey(name) {
  return name.normalize("NFKC").toLowerCase().trim();
}
