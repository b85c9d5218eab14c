/**
 * The chat protocol client, with no DOM: one WebSocket, a room, a nickname,
 * resume with `since` after a reconnect (with backoff), and an outbox of
 * messages that are sent, and retried with the same `cid`, until the server
 * acknowledges them. Everything a tab must remember across a reload (name,
 * session token, last message id and store epoch per room, outbox) goes to
 * the injected `storage`; the page passes `sessionStorage`, so every tab is
 * its own session. Deno tests and bots import it as it is.
 *
 * Where WebSockets are blocked (a proxy that refuses the upgrade, or closes
 * it at once), a client given `sseUrl` falls back by itself to Server-Sent
 * Events down and `POST` up (`sse_socket.js`), with the same protocol, and
 * tries the WebSocket again every `wsRetryMs`. `transport` says which one is
 * in use, and every `status` event carries it.
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
 * @module
 */

import { Conversation, isChange, REACTIONS } from "./conversation.js";
import { SseSocket } from "./sse_socket.js";

export { REACTIONS };

/** Reconnect delays, one per failed attempt in a row; each is jittered to 0.5x–1x. */
export const DEFAULT_BACKOFF_MS = [500, 1000, 2000, 5000, 10000];
/** Longest nickname, in characters (the server's limit). */
export const MAX_NAME_LENGTH = 32;
/** Messages a join asks for again after a reload, before the last one the tab saw. */
export const HISTORY_SIZE = 50;
/** How many free variants of a suggested name are tried before asking the user. */
export const MAX_NAME_VARIANTS = 20;
/** Messages one `history` request asks for (the server allows up to 100). */
export const HISTORY_PAGE = 50;
/** WebSocket attempts in a row that fail before the client falls back to SSE. */
export const WS_FAILURES_BEFORE_FALLBACK = 2;
/** A WebSocket closed sooner than this after opening, before a welcome, counts as failed. */
const FLAP_MS = 5000;
/** How often a client on the fallback tries the WebSocket again, by default. */
export const DEFAULT_WS_RETRY_MS = 60_000;
/**
 * The first probe after falling back comes this soon: the failures may have
 * been a server restart rather than a network that blocks WebSockets.
 */
const PROBE_SOON_MS = 3000;
/** How long a probe WebSocket must stay open to count as working. */
const PROBE_STABLE_MS = 2000;
/** Longest pause a server's `retryAfterMs` hint may ask for. */
const MAX_HINT_MS = 60_000;

const CID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const AUTH_ERRORS = new Set(["auth_required", "auth_invalid", "auth_expired"]);
/** Errors for a `say` that are worth sending again, with the same `cid`, after a pause. */
const RETRY_ERRORS = new Set(["unavailable", "rate_limited", "not_joined"]);
// The server's rules for names and rooms (src/names.ts), so that the page can
// say what is wrong with a room name before it tries to join it.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{DI}\p{Zl}\p{Zp}\u115F\u1160\u2800\u3164\uFFA0]/u;
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}]/u;
const EDGE_SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu;
const CLOSE_REASONS = {
  1001: "server is restarting",
  1006: "connection lost",
  1008: "disconnected by the server",
  1009: "message too large",
  1013: "server is busy",
  4000: "replaced by a newer connection",
};

/**
 * A storage with the `Storage` methods the client uses. `sessionStorage` and
 * `localStorage` are ones; {@linkcode memoryStorage} makes one for tests.
 *
 * @typedef {{
 *   getItem(key: string): string | null,
 *   setItem(key: string, value: string): void,
 *   removeItem(key: string): void,
 * }} KeyValueStorage
 */

/**
 * Something the user did that the server has not acknowledged yet: a message
 * (no `kind`, maybe a `replyTo`), or an edit, delete or reaction of message
 * `ref`. `text` is always a string ("" for a delete or a reaction).
 *
 * @typedef {{
 *   cid: string, text: string, ts: number, state: "pending" | "failed",
 *   replyTo?: number, kind?: "edit" | "delete" | "react", ref?: number, emoji?: string,
 * }} OutboxEntry
 */

/**
 * A room as the `rooms` answer lists it.
 *
 * @typedef {{ name: string, members: number, lastId: number }} RoomInfo
 */

/**
 * Options of {@linkcode ChatClient}.
 *
 * @typedef {object} ChatClientOptions
 * @property {string | URL | (() => string | URL)} url The `/ws` URL, or a function giving it.
 * @property {string} [room] The room to join; `lobby` by default.
 * @property {KeyValueStorage} [storage] Where the session lives; in memory by default.
 * @property {typeof WebSocket} [WebSocket] The WebSocket constructor; the global one by default.
 * @property {string | URL | (() => string | URL)} [sseUrl] The `/sse` URL: when given, the
 *   client falls back to Server-Sent Events where WebSockets fail.
 * @property {typeof EventSource} [EventSource] The EventSource constructor, for the fallback.
 * @property {number} [wsRetryMs] How often the fallback tries the WebSocket again.
 * @property {string} [name] A name the user chose; it replaces the stored one.
 * @property {string} [suggestedName] Used when no name is stored: on `name_taken`, the
 *   client tries "name2", "name3", … by itself.
 * @property {string} [auth] A JWT for servers that require one.
 * @property {number[]} [backoffMs] Reconnect delays; see {@linkcode DEFAULT_BACKOFF_MS}.
 * @property {() => number} [random] Jitter source in [0, 1); `Math.random` by default.
 * @property {number} [retryMs] Pause before sending again what the server could not store.
 * @property {number} [rateLimitMs] Pause after a `rate_limited` error.
 * @property {number} [burst] `say` frames sent at once before pacing starts.
 * @property {number} [perSecond] Sustained `say` frames per second (under the server's 5).
 * @property {number} [typingIntervalMs] Least time between two `typing` frames.
 * @property {string} [prefix] Prefix of every storage key; `chat.` by default.
 */

/**
 * A storage kept in a `Map`: nothing survives the process. For tests, bots,
 * and browsers where storage is disabled.
 *
 * @returns {KeyValueStorage & { map: Map<string, string> }}
 */
export function memoryStorage() {
  const map = new Map();
  return {
    map,
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, String(value)),
    removeItem: (key) => void map.delete(key),
  };
}

/**
 * The messages in one server frame: a JSON object or a JSON array of them.
 * Anything else (bad JSON, non-objects) is dropped.
 *
 * @param {unknown} data The frame's text.
 * @returns {Record<string, unknown>[]}
 */
export function parseFrame(data) {
  if (typeof data !== "string") return [];
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return [];
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.filter((item) => item !== null && typeof item === "object" && !Array.isArray(item));
}

/**
 * Checks a room name as the server will: NFKC-normalised and trimmed, 1–32
 * characters, none of them control, format or invisible, and at least one
 * that shows.
 *
 * @param {string} room
 * @returns {{ ok: true, name: string } | { ok: false, message: string }}
 */
export function checkRoomName(room) {
  const name = String(room).toWellFormed().normalize("NFKC").replace(EDGE_SPACE, "");
  const invisible = INVISIBLE.exec(name);
  if (invisible) {
    const code = /** @type {number} */ (invisible[0].codePointAt(0)).toString(16).toUpperCase();
    return {
      ok: false,
      message: `A room name cannot hold invisible or control characters (U+${
        code.padStart(4, "0")
      }).`,
    };
  }
  const length = [...name].length;
  if (length < 1 || length > MAX_NAME_LENGTH) {
    return { ok: false, message: `A room name has 1–${MAX_NAME_LENGTH} characters.` };
  }
  if (!VISIBLE.test(name)) {
    return { ok: false, message: "A room name needs a letter, digit or symbol." };
  }
  return { ok: true, name };
}

/**
 * Variant `n` of a name: `ada` → `ada2`, cut so that it stays within
 * {@linkcode MAX_NAME_LENGTH} characters.
 *
 * @param {string} base The name to vary.
 * @param {number} n The number to append.
 * @returns {string}
 */
export function nameVariant(base, n) {
  const suffix = String(n);
  return [...base.trim()].slice(0, MAX_NAME_LENGTH - suffix.length).join("").trimEnd() + suffix;
}

/**
 * A chat connection for one tab (or bot). Emits `CustomEvent`s; `detail` holds:
 *
 * - `status`: `{ state, reason, retryAt, transport }`, `state` one of `connecting`, `online`,
 *   `reconnecting` (`retryAt` in ms since the epoch), `offline` (`reason` is
 *   `replaced`, `prompt` or `closed`).
 * - `welcome`: `{ welcome }`, the server's welcome, before its history is emitted.
 * - `reset`: `{ reason }`: forget the messages shown (`fresh` first join, `gap` the
 *   server could not replay everything, `epoch` the history store is a new one).
 * - `message`: `{ message, own, history, state }`, each plain message once, in id
 *   order; `state` is the message with the changes already known applied.
 * - `change`: `{ change, own, history, target }`, an edit, delete or reaction, once,
 *   in id order; `target` is the new state of the message it changes, or undefined
 *   when that message is older than what the client holds (it is applied when a
 *   history page brings it).
 * - `older`: `{ messages, hasMore, oldestId }`, a page of older messages (states,
 *   oldest first) answering {@linkcode ChatClient.history}.
 * - `history-error`: `{ message }`, a history page could not be read.
 * - `rooms`: `{ rooms }`, the answer to {@linkcode ChatClient.rooms}.
 * - `sent`: `{ cid, id }`, an outbox entry was stored by the server.
 * - `failed`: `{ cid, code, message, entry }`, an outbox entry was refused for good.
 *   A message stays in the outbox as `failed`; an edit, delete or reaction is dropped.
 * - `outbox`: `{ entries }`, the outbox changed.
 * - `members`: `{ members }`, the whole member list, after a welcome or presence event.
 * - `presence`: `{ event, member, repeat }`, someone joined or left; `repeat` is true
 *   for a join of someone already listed (a reconnect) or a leave of someone who is not.
 * - `room-error`: `{ room, code, message }`, the room cannot be joined (an invalid name,
 *   or one the token does not allow); the client waits for {@linkcode ChatClient.setRoom}.
 * - `typing`: `{ member }`, someone else is typing.
 * - `name`: `{ name }`, the name this session holds changed (a variant, or the server's).
 * - `prompt`: `{ message, needsToken }`, a name (or a token) is needed from the user;
 *   the client waits for {@linkcode ChatClient.join}.
 * - `error`: `{ code, message }`, any other refusal, for a banner.
 */
export class ChatClient extends EventTarget {
  /** @type {KeyValueStorage} */
  #storage;
  /** @type {typeof WebSocket} */
  #WebSocket;
  #url;
  /** @type {ChatClientOptions["sseUrl"]} */
  #sseUrl;
  /** @type {typeof EventSource | undefined} */
  #EventSource;
  #wsRetryMs;
  /** The transport in use: `websocket`, or `sse` (the fallback). */
  #transport = "websocket";
  /** WebSocket attempts in a row that failed. */
  #wsFailures = 0;
  /** When the current socket opened (0: not yet), and whether it got a welcome. */
  #openedAt = 0;
  #welcomed = false;
  #probeTimer = 0;
  #nextProbeMs = 0;
  /** A WebSocket opened, while on the fallback, to see whether WebSockets work again. */
  #probe = /** @type {WebSocket | null} */ (null);
  #prefix;
  #backoffMs;
  #random;
  #retryMs;
  #rateLimitMs;
  #burst;
  #perSecond;
  #typingIntervalMs;

  #room = "lobby";
  #name = "";
  /** The suggestion the current name was derived from; "" when the user chose it. */
  #nameFrom = "";
  #variantTries = 0;
  #auth = "";
  #userId = "";
  /** @type {WebSocket | null} */
  #socket = null;
  /** Sockets not closed yet, each with a promise of its close. @type {Set<Promise<void>>} */
  #closing = new Set();
  #online = false;
  /** True while the client should stay connected. */
  #running = false;
  #attempt = 0;
  #gapRejoins = 0;
  #reconnectTimer = 0;
  #flushTimer = 0;
  #holdUntil = 0;
  #tokens = 0;
  #tokensAt = 0;
  #lastTyping = 0;
  /** True once this client got a welcome in the room: later joins resume from lastId. */
  #resumed = false;
  /** The `since` of the join in flight, or undefined. @type {number | undefined} */
  #joinSince;
  #lastId = 0;
  #epoch = "";
  /** @type {OutboxEntry[]} */
  #outbox = [];
  /** Cids sent on the current connection and not answered yet. */
  #inFlight = new Set();
  /** @type {Map<string, {id: string, name: string}>} */
  #members = new Map();
  #conversation = new Conversation();
  /** The smallest id the client holds in this room (or the one after `lastId`). */
  #oldestId = 1;
  #hasMore = false;
  /** The `before` of the history request in flight, or 0. */
  #historyBefore = 0;
  #roomsPending = false;
  #requestTimer = 0;
  /** True when the server refused the room itself: another room is needed. */
  #roomRefused = false;

  /** @param {ChatClientOptions} options */
  constructor(options) {
    super();
    this.#url = options.url;
    this.#storage = options.storage ?? memoryStorage();
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#sseUrl = options.sseUrl;
    this.#EventSource = options.EventSource;
    this.#wsRetryMs = options.wsRetryMs ?? DEFAULT_WS_RETRY_MS;
    this.#prefix = options.prefix ?? "chat.";
    this.#backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.#random = options.random ?? Math.random;
    this.#retryMs = options.retryMs ?? 2000;
    this.#rateLimitMs = options.rateLimitMs ?? 1000;
    this.#burst = options.burst ?? 10;
    this.#perSecond = options.perSecond ?? 4;
    this.#typingIntervalMs = options.typingIntervalMs ?? 2000;
    this.#tokens = this.#burst;
    this.#tokensAt = Date.now();
    this.#auth = options.auth ?? this.#read("auth");
    if (options.name?.trim()) {
      this.#setName(options.name.trim(), "");
    } else {
      this.#name = this.#read("name");
      this.#nameFrom = this.#read("nameFrom");
      if (!this.#name && options.suggestedName?.trim()) {
        this.#setName(options.suggestedName.trim(), options.suggestedName.trim());
      }
    }
    this.#enter(options.room?.trim() || "lobby");
  }

  /** The room. */
  get room() {
    return this.#room;
  }

  /** The name this session joins with ("" when none is known yet). */
  get name() {
    return this.#name;
  }

  /** True when the name came from a suggestion rather than from the user. */
  get nameIsSuggested() {
    return this.#nameFrom !== "";
  }

  /** The user id from the last welcome, or "". */
  get userId() {
    return this.#userId;
  }

  /** The transport in use: `websocket`, or `sse` when WebSockets failed. */
  get transport() {
    return this.#transport;
  }

  /** True between a welcome and the socket closing. */
  get online() {
    return this.#online;
  }

  /** The newest message id seen in the room, in order. */
  get lastId() {
    return this.#lastId;
  }

  /** The history store's epoch from the last welcome, or "". */
  get epoch() {
    return this.#epoch;
  }

  /** The room's members, as last known. */
  get members() {
    return [...this.#members.values()];
  }

  /** A copy of the outbox, oldest first. @returns {OutboxEntry[]} */
  get outbox() {
    return this.#outbox.map((entry) => ({ ...entry }));
  }

  /** The smallest message id held: {@linkcode ChatClient.history} asks for the ones before it. */
  get oldestId() {
    return this.#oldestId;
  }

  /** False once the server said there is nothing older, or the oldest held is message 1. */
  get hasMore() {
    return this.#hasMore;
  }

  /** True while a history page is on its way. */
  get loadingHistory() {
    return this.#historyBefore > 0;
  }

  /**
   * Message `id` with its edits, deletion and reactions applied, or undefined
   * when the client does not hold it.
   *
   * @param {number} id
   */
  message(id) {
    return this.#conversation.get(id);
  }

  /**
   * This session's newest message that is not deleted (for "edit the last
   * one"), or undefined.
   */
  lastOwnMessage() {
    return this.#userId ? this.#conversation.lastBy(this.#userId) : undefined;
  }

  /** Connects and joins with the known name, or emits `prompt` when there is none. */
  start() {
    this.#running = true;
    this.#roomRefused = false;
    this.#attempt = 0;
    this.#connect();
  }

  /**
   * Joins under `name` (reconnecting now). A name the user `typed` that is
   * taken ends in a `prompt`; a suggested one is varied until one is free.
   *
   * @param {string} name The nickname.
   * @param {{ typed?: boolean, auth?: string }} [options]
   */
  join(name, options = {}) {
    const trimmed = name.trim();
    this.#setName(trimmed, options.typed === false ? trimmed : "");
    if (options.auth !== undefined) {
      this.#auth = options.auth;
      this.#write("auth", options.auth || null);
    }
    this.start();
  }

  /** Reconnects at once when waiting for a reconnect (the network is back). */
  reconnect() {
    if (this.#running && !this.#socket) {
      this.#attempt = 0;
      this.#connect();
    }
  }

  /**
   * Switches to another room: leaves this one and joins `room` with that
   * room's own last id, epoch and outbox.
   *
   * @param {string} room The room's name.
   */
  setRoom(room) {
    room = room.trim() || "lobby";
    if (room === this.#room && !this.#roomRefused) return;
    this.#disconnect();
    this.#enter(room);
    if (this.#running || this.#roomRefused) this.start();
  }

  /**
   * Puts `text` in the outbox and sends it when online. It is sent again,
   * with the same `cid`, after reconnects and retriable errors, until the
   * server acknowledges it.
   *
   * @param {string} text The message.
   * @param {{ replyTo?: number }} [options] `replyTo`: the id of the message it answers.
   * @returns {OutboxEntry} The new entry.
   */
  say(text, options = {}) {
    /** @type {OutboxEntry} */
    const entry = { cid: crypto.randomUUID(), text, ts: Date.now(), state: "pending" };
    if (Number.isSafeInteger(options.replyTo) && Number(options.replyTo) > 0) {
      entry.replyTo = options.replyTo;
    }
    return this.#queue(entry);
  }

  /**
   * Answers message `ref` with `text`: {@linkcode ChatClient.say} with `replyTo`.
   *
   * @param {number} ref
   * @param {string} text
   */
  reply(ref, text) {
    return this.say(text, { replyTo: ref });
  }

  /**
   * Replaces the text of this session's message `ref`. Sent like a message,
   * with retries; the change arrives as a `change` event.
   *
   * @param {number} ref
   * @param {string} text
   */
  edit(ref, text) {
    return this.#queue({ ...this.#changeEntry("edit", ref), text });
  }

  /**
   * Deletes this session's message `ref`.
   *
   * @param {number} ref
   */
  remove(ref) {
    return this.#queue(this.#changeEntry("delete", ref));
  }

  /**
   * Toggles this session's reaction `emoji` (one of {@linkcode REACTIONS}) on message `ref`.
   *
   * @param {number} ref
   * @param {string} emoji
   */
  react(ref, emoji) {
    if (!REACTIONS.includes(emoji)) throw new RangeError(`Not a reaction: ${emoji}`);
    return this.#queue({ ...this.#changeEntry("react", ref), emoji });
  }

  /**
   * Asks for the messages before `before` (the oldest one held by default);
   * they come as an `older` event. Returns false when there is nothing to
   * ask for, or while offline or a page is already on its way.
   *
   * @param {number} [before]
   */
  history(before = this.#oldestId) {
    if (!this.#online || this.#historyBefore > 0) return false;
    if (
      !Number.isSafeInteger(before) || before <= 1 || (!this.#hasMore && before >= this.#oldestId)
    ) {
      return false;
    }
    this.#historyBefore = before;
    this.#spend();
    return this.#send({ type: "history", before, limit: HISTORY_PAGE });
  }

  /**
   * Asks for the active rooms; they come as a `rooms` event. Returns false
   * while offline.
   */
  rooms() {
    if (!this.#online) return false;
    if (this.#roomsPending) return true;
    this.#roomsPending = true;
    this.#spend();
    return this.#send({ type: "rooms" });
  }

  /** Sends every failed message again. Returns how many. */
  retryFailed() {
    const failed = this.#outbox.filter((e) => e.state === "failed");
    for (const entry of failed) entry.state = "pending";
    if (failed.length) {
      this.#saveOutbox();
      this.#flush();
    }
    return failed.length;
  }

  /** Drops every failed message. Returns their cids. */
  discardFailed() {
    const cids = this.#outbox.filter((e) => e.state === "failed").map((e) => e.cid);
    for (const cid of cids) this.discard(cid);
    return cids;
  }

  /**
   * Sends a failed outbox entry again.
   *
   * @param {string} cid The entry's cid.
   * @returns {boolean} False when there is no such entry.
   */
  retry(cid) {
    const entry = this.#outbox.find((e) => e.cid === cid);
    if (!entry) return false;
    entry.state = "pending";
    this.#saveOutbox();
    this.#flush();
    return true;
  }

  /** Drops an outbox entry without sending it. @param {string} cid */
  discard(cid) {
    const index = this.#outbox.findIndex((e) => e.cid === cid);
    if (index < 0) return false;
    this.#outbox.splice(index, 1);
    this.#inFlight.delete(cid);
    this.#saveOutbox();
    return true;
  }

  /**
   * Tells the room you are typing, at most once per `typingIntervalMs`, and
   * never at the cost of a message (it is skipped when sending is paced).
   */
  typing() {
    const now = Date.now();
    if (!this.#online || now - this.#lastTyping < this.#typingIntervalMs) return;
    if (this.#refill() < 2) return;
    this.#spend();
    if (this.#send({ type: "typing" })) this.#lastTyping = now;
  }

  /**
   * Disconnects for good: no reconnect, every timer cleared. Resolves once
   * every socket it opened is closed.
   *
   * @returns {Promise<void>}
   */
  async close() {
    this.#running = false;
    this.#stopProbe();
    this.#disconnect();
    this.#status("offline", "closed");
    await Promise.all([...this.#closing]);
  }

  // --- Connection ----------------------------------------------------------

  #connect() {
    this.#disconnect();
    if (!this.#name) {
      this.#running = false;
      this.#status("offline", "prompt");
      this.#emit("prompt", { message: "", needsToken: false });
      return;
    }
    this.#status("connecting");
    this.#openedAt = 0;
    this.#welcomed = false;
    /** @type {WebSocket} */
    let socket;
    try {
      if (this.#transport === "sse") {
        const url = typeof this.#sseUrl === "function" ? this.#sseUrl() : this.#sseUrl;
        socket = /** @type {WebSocket} */ (/** @type {unknown} */ (
          new SseSocket(/** @type {string | URL} */ (url), { EventSource: this.#EventSource })
        ));
      } else {
        this.#stopProbe();
        const url = typeof this.#url === "function" ? this.#url() : this.#url;
        socket = new this.#WebSocket(url);
      }
    } catch (error) {
      this.#scheduleReconnect(`cannot connect: ${error}`);
      return;
    }
    this.#socket = socket;
    /** @type {Promise<void>} */
    const closed = new Promise((resolve) => {
      socket.addEventListener("close", () => resolve(), { once: true });
    });
    this.#closing.add(closed);
    closed.then(() => this.#closing.delete(closed));
    socket.addEventListener("open", () => {
      if (socket !== this.#socket) return;
      this.#openedAt = Date.now();
      this.#sendJoin();
    });
    /**
     * The code and reason the server said it closes with, in its last frame: on Deno 2.5 the
     * close event says 1006 instead (the server sends a second Close frame, denoland/deno#21642).
     * @type {{ code: number, reason: string } | null}
     */
    let notice = null;
    socket.addEventListener("message", (event) => {
      if (socket !== this.#socket) return;
      for (const message of parseFrame(event.data)) {
        if (socket !== this.#socket) return;
        if (message.type !== "close") this.#receive(message);
        else if (Number.isInteger(message.code) && typeof message.reason === "string") {
          notice = { code: message.code, reason: message.reason };
        }
      }
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.#socket) return;
      const closed = event.code === 1006 && notice ? notice : event;
      this.#judge(closed);
      this.#onClose(closed);
    });
  }

  /**
   * Picks the transport of the next attempt after the socket closed. A
   * WebSocket that never opened, or closed soon after opening without a
   * welcome, failed; after {@linkcode WS_FAILURES_BEFORE_FALLBACK} in a row
   * the client falls back to SSE. A fallback stream that never opened either
   * means the server is down rather than WebSockets blocked: the next attempt
   * is a WebSocket again.
   *
   * @param {{ code: number, reason: string }} event
   */
  #judge(event) {
    if (!this.#sseUrl || event.code === 4000 || event.code === 1008) return;
    if (this.#transport === "websocket") {
      const failed = this.#openedAt === 0 ||
        (!this.#welcomed && Date.now() - this.#openedAt < FLAP_MS);
      this.#wsFailures = failed ? this.#wsFailures + 1 : 0;
      if (this.#wsFailures >= WS_FAILURES_BEFORE_FALLBACK) {
        this.#wsFailures = 0;
        this.#transport = "sse"; // after the usual backoff: the server may just be down
        this.#nextProbeMs = Math.min(PROBE_SOON_MS, this.#wsRetryMs);
      }
    } else if (this.#openedAt === 0) {
      this.#transport = "websocket";
    }
  }

  /** On the fallback: tries a WebSocket after `wsRetryMs`, and goes back to it if it works. */
  #scheduleProbe() {
    if (this.#probeTimer || this.#probe) return;
    const delay = this.#nextProbeMs || this.#wsRetryMs;
    this.#nextProbeMs = this.#wsRetryMs;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = 0;
      if (!this.#running || this.#transport !== "sse") return;
      const url = typeof this.#url === "function" ? this.#url() : this.#url;
      let probe;
      try {
        probe = new this.#WebSocket(url);
      } catch {
        return this.#scheduleProbe();
      }
      this.#probe = probe;
      let stable = 0;
      const closed = new Promise((resolve) => {
        probe.addEventListener("close", () => resolve(undefined), { once: true });
      });
      this.#closing.add(closed);
      closed.then(() => this.#closing.delete(closed));
      probe.addEventListener("open", () => {
        stable = setTimeout(() => {
          if (this.#probe !== probe) return;
          // WebSockets work again: switch back now (the outbox is resent, by cid).
          this.#stopProbe();
          this.#transport = "websocket";
          this.#wsFailures = 0;
          this.#attempt = 0;
          if (this.#running) this.#connect();
        }, PROBE_STABLE_MS);
      });
      probe.addEventListener("close", () => {
        clearTimeout(stable);
        if (this.#probe !== probe) return;
        this.#probe = null;
        if (this.#running && this.#transport === "sse") this.#scheduleProbe();
      });
    }, delay);
  }

  #stopProbe() {
    clearTimeout(this.#probeTimer);
    this.#probeTimer = 0;
    const probe = this.#probe;
    this.#probe = null;
    if (probe && probe.readyState < 2) probe.close(1000, "probe done");
  }

  /** Closes the socket (if any) and clears the timers; the client stays `running`. */
  #disconnect() {
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#requestTimer);
    this.#reconnectTimer = 0;
    this.#flushTimer = 0;
    this.#requestTimer = 0;
    this.#historyBefore = 0;
    this.#roomsPending = false;
    const socket = this.#socket;
    this.#socket = null;
    this.#online = false;
    this.#inFlight.clear();
    if (socket && socket.readyState < 2) socket.close(1000, "leaving");
  }

  #sendJoin() {
    const since = this.#resumed
      ? this.#lastId
      : this.#lastId > 0
      ? Math.max(0, this.#lastId - HISTORY_SIZE)
      : undefined;
    this.#joinSince = since;
    const token = this.#read("token");
    this.#send({
      type: "join",
      room: this.#room,
      name: this.#name,
      ...(since === undefined ? {} : { since }),
      ...(since !== undefined && this.#epoch ? { epoch: this.#epoch } : {}),
      ...(token ? { token } : {}),
      ...(this.#auth ? { auth: this.#auth } : {}),
    });
  }

  /** @param {{ code: number, reason: string }} event */
  #onClose(event) {
    this.#socket = null;
    this.#online = false;
    this.#inFlight.clear();
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#requestTimer);
    this.#historyBefore = 0;
    this.#roomsPending = false;
    if (event.code === 4000) {
      // The same session joined again elsewhere: reconnecting would take it back.
      this.#running = false;
      this.#status("offline", "replaced");
    } else if (event.code === 1008 && event.reason === "token expired") {
      this.#auth = "";
      this.#write("auth", null);
      this.#toPrompt("Your access token has expired: paste a fresh one.", true);
    } else {
      this.#scheduleReconnect(
        event.reason || CLOSE_REASONS[/** @type {keyof CLOSE_REASONS} */ (event.code)] ||
          "connection closed",
      );
    }
  }

  /** @param {string} reason */
  #scheduleReconnect(reason, delay = this.#backoff()) {
    this.#disconnect();
    if (!this.#running) return;
    this.#status("reconnecting", reason, Date.now() + delay);
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #backoff() {
    const base = this.#backoffMs[Math.min(this.#attempt, this.#backoffMs.length - 1)] ?? 1000;
    this.#attempt++;
    return base * (0.5 + this.#random() * 0.5);
  }

  /** Stops and asks for a name (and a token when `needsToken`). */
  #toPrompt(message = "", needsToken = false) {
    this.#running = false;
    this.#disconnect();
    this.#status("offline", "prompt");
    this.#emit("prompt", { message, needsToken });
  }

  /** @param {unknown} message */
  #send(message) {
    if (this.#socket?.readyState !== 1) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  // --- Server events -------------------------------------------------------

  /** @param {Record<string, any>} msg */
  #receive(msg) {
    switch (msg.type) {
      case "welcome":
        return this.#onWelcome(msg);
      case "message":
        return this.#onMessage(msg, true);
      case "ack":
        return void this.#confirm(msg.cid, msg.id);
      case "presence":
        return this.#onPresence(msg);
      case "typing":
        if (msg.member && msg.member.id !== this.#userId) {
          this.#emit("typing", { member: msg.member });
        }
        return;
      case "history":
        return this.#onHistory(msg);
      case "rooms":
        this.#roomsPending = false;
        return this.#emit("rooms", {
          rooms: (Array.isArray(msg.rooms) ? msg.rooms : []).filter((r) =>
            r && typeof r.name === "string"
          ),
        });
      case "error":
        return this.#onError(msg);
    }
  }

  /** A page of older messages. @param {Record<string, any>} page */
  #onHistory(page) {
    const before = this.#historyBefore;
    if (!before) return;
    this.#historyBefore = 0;
    const events = (Array.isArray(page.messages) ? page.messages : [])
      .filter((m) => m && Number.isSafeInteger(m.id) && m.id > 0 && m.id < this.#oldestId)
      .sort((a, b) => a.id - b.id);
    const ids = [];
    for (const event of events) {
      if (isChange(event)) this.#conversation.apply(event);
      else {
        this.#conversation.add(event);
        ids.push(event.id);
      }
    }
    this.#oldestId = Math.min(this.#oldestId, events[0]?.id ?? this.#oldestId);
    // An empty page below `before` means nothing older is kept.
    this.#hasMore = page.hasMore === true && events.length > 0 && this.#oldestId > 1;
    const messages = ids.map((id) => this.#conversation.get(id));
    this.#emit("older", { messages, hasMore: this.#hasMore, oldestId: this.#oldestId });
  }

  /** @param {Record<string, any>} welcome */
  #onWelcome(welcome) {
    if (typeof welcome.room === "string" && welcome.room !== this.#room) return;
    this.#online = true;
    this.#welcomed = true;
    this.#wsFailures = 0;
    if (this.#transport === "sse") this.#scheduleProbe();
    this.#attempt = 0;
    this.#variantTries = 0;
    this.#userId = String(welcome.id ?? "");
    if (typeof welcome.token === "string" && welcome.token) this.#write("token", welcome.token);
    if (typeof welcome.name === "string" && welcome.name && welcome.name !== this.#name) {
      this.#setName(welcome.name, this.#nameFrom);
      this.#emit("name", { name: this.#name });
    } else this.#write("name", this.#name);
    const epoch = typeof welcome.epoch === "string" ? welcome.epoch : "";
    const epochChanged = epoch !== "" && this.#epoch !== "" && epoch !== this.#epoch;
    if (epoch) {
      this.#epoch = epoch;
      this.#write(`epoch.${this.#room}`, epoch);
    }
    this.#members = new Map(
      (Array.isArray(welcome.members) ? welcome.members : []).map((m) => [m.id, m]),
    );
    const history = (Array.isArray(welcome.history) ? welcome.history : [])
      .filter((m) => m && Number.isSafeInteger(m.id))
      .sort((a, b) => a.id - b.id);
    const since = this.#joinSince;
    // Start over from what the welcome brings: on a first join, when the
    // server could not replay everything after `since` (a "gap" only when
    // this client had shown the room already), or when the store is new.
    const reason = epochChanged
      ? "epoch"
      : since === undefined || (welcome.recovered === false && !this.#resumed)
      ? "fresh"
      : welcome.recovered === false
      ? "gap"
      : "";
    this.#emit("welcome", { welcome });
    this.#emit("members", { members: this.members });
    const resumed = this.#resumed;
    if (reason) {
      this.#setLastId(history.length ? history[0].id - 1 : 0);
      this.#conversation.clear();
      this.#emit("reset", { reason });
    } else {
      this.#setLastId(since ?? 0);
    }
    if (reason || !resumed) {
      this.#oldestId = this.#lastId + 1;
      this.#hasMore = this.#oldestId > 1;
    }
    this.#resumed = true;
    for (const message of history) this.#onMessage(message, false);
    this.#status("online");
    this.#flush();
  }

  /**
   * Emits a message once, in id order. A live message past a hole in the ids
   * means some never arrived: rejoin with `since` to get them in order.
   *
   * @param {Record<string, any>} message
   * @param {boolean} live False for messages from a welcome's history.
   */
  #onMessage(message, live) {
    if (!this.#online) return;
    if (message.room !== undefined && message.room !== this.#room) return;
    if (!Number.isSafeInteger(message.id) || message.id < 1) return;
    const own = this.#userId !== "" && message.userId === this.#userId;
    if (own) this.#confirm(message.cid, message.id);
    if (message.id <= this.#lastId) return;
    if (live && message.id > this.#lastId + 1) {
      this.#gapRejoins++;
      this.#scheduleReconnect("missing messages", this.#gapRejoins > 1 ? this.#backoff() : 0);
      return;
    }
    if (live) this.#gapRejoins = 0;
    this.#setLastId(message.id);
    const event = /** @type {import("./conversation.js").ChatEvent} */ (message);
    if (isChange(event)) {
      const target = this.#conversation.apply(event);
      this.#emit("change", { change: message, own, history: !live, target });
    } else {
      const state = this.#conversation.add(event);
      this.#emit("message", { message, own, history: !live, state });
    }
  }

  /**
   * The server stored the outbox entry `cid` as message `id`.
   *
   * @param {unknown} cid
   * @param {unknown} id
   */
  #confirm(cid, id) {
    if (typeof cid !== "string") return false;
    const index = this.#outbox.findIndex((e) => e.cid === cid);
    if (index < 0) return false;
    this.#outbox.splice(index, 1);
    this.#inFlight.delete(cid);
    this.#saveOutbox();
    this.#emit("sent", { cid, id });
    return true;
  }

  /** @param {Record<string, any>} presence */
  #onPresence(presence) {
    const { event, member } = presence;
    const known = member && typeof member.id === "string" && this.#members.has(member.id);
    const repeat = event === "join" ? known : !known;
    if (Array.isArray(presence.members)) {
      this.#members = new Map(presence.members.map((m) => [m.id, m]));
    } else if (member && typeof member.id === "string") {
      if (event === "join") this.#members.set(member.id, member);
      else if (event === "leave") this.#members.delete(member.id);
    }
    this.#emit("members", { members: this.members });
    if (member) this.#emit("presence", { event, member, repeat });
  }

  /** @param {Record<string, any>} error */
  #onError(error) {
    const { code, cid } = error;
    const message = typeof error.message === "string" ? error.message : "Something went wrong";
    if (AUTH_ERRORS.has(code)) {
      this.#auth = "";
      this.#write("auth", null);
      return this.#toPrompt(message, true);
    }
    if (!this.#online && cid === undefined && this.#onJoinRefused(code, message)) return;
    const pause = code === "rate_limited" ? hintMs(error) ?? this.#rateLimitMs : this.#retryMs;
    if (code === "rate_limited") {
      // Whatever was refused, the server wants a pause: nothing more before it.
      this.#holdUntil = Math.max(this.#holdUntil, Date.now() + pause);
      // Its bucket is empty: after the pause, one frame, then the steady pace.
      this.#tokens = Math.min(this.#tokens, 1);
      this.#tokensAt = Date.now();
    }
    const entry = typeof cid === "string" ? this.#outbox.find((e) => e.cid === cid) : undefined;
    if (entry) return this.#onEntryRefused(entry, code, message, pause);
    if (cid === undefined && this.#onRequestRefused(code, message, pause)) return;
    if (code === "rate_limited") return; // a typing frame: nothing to redo
    this.#emit("error", { code, message });
  }

  /**
   * A refused join: another room, another name, or a later try.
   * @param {string} code
   * @param {string} message
   * @returns {boolean} whether it was handled
   */
  #onJoinRefused(code, message) {
    if (
      code === "room_forbidden" ||
      (code === "invalid_message" && /^Cannot join room: room\b/.test(message))
    ) {
      // Another name will not help: the room itself is refused.
      this.#running = false;
      this.#roomRefused = true;
      this.#disconnect();
      this.#status("offline", "room");
      this.#emit("room-error", { room: this.#room, code, message });
      return true;
    }
    if (code === "name_taken" && this.#nameFrom && this.#variantTries < MAX_NAME_VARIANTS) {
      // A suggested name: try a free variant on the same socket.
      this.#variantTries++;
      const n = this.#variantTries < 10
        ? this.#variantTries + 1
        : 10 + Math.floor(this.#random() * 9990);
      this.#setName(nameVariant(this.#nameFrom, n), this.#nameFrom);
      this.#emit("name", { name: this.#name });
      this.#sendJoin();
      return true;
    }
    if (code === "name_taken" || code === "invalid_message") {
      if (this.#nameFrom) this.#setName(this.#nameFrom, "");
      this.#toPrompt(message);
      return true;
    }
    if (code === "rate_limited" || code === "internal" || code === "unavailable") {
      this.#scheduleReconnect(message, Math.max(this.#rateLimitMs, this.#backoff()));
      return true;
    }
    return false;
  }

  /**
   * A refused outbox entry: kept and sent again after `pause`, or failed.
   * @param {any} entry
   * @param {string} code
   * @param {string} message
   * @param {number} pause
   */
  #onEntryRefused(entry, code, message, pause) {
    const { cid } = entry;
    this.#inFlight.delete(cid);
    if (RETRY_ERRORS.has(code)) {
      // Kept pending, sent again after a pause with the same cid.
      this.#holdUntil = Math.max(this.#holdUntil, Date.now() + pause);
      return this.#flush();
    }
    if (entry.kind) {
      // An edit, delete or reaction that cannot be made: nothing to retry.
      this.#outbox.splice(this.#outbox.indexOf(entry), 1);
    } else entry.state = "failed";
    this.#saveOutbox();
    this.#emit("failed", { cid, code, message, entry: { ...entry } });
  }

  /**
   * A refused history or rooms request (they carry no cid): asked again
   * after `pause`, or reported.
   * @param {string} code
   * @param {string} message
   * @param {number} pause
   * @returns {boolean} whether it was handled
   */
  #onRequestRefused(code, message, pause) {
    if (!this.#historyBefore && !this.#roomsPending) return false;
    const history = /^Cannot read history/.test(message) ||
      (code === "rate_limited" && this.#historyBefore > 0);
    const rooms = /^Cannot list rooms/.test(message) ||
      (code === "rate_limited" && this.#roomsPending && !history);
    if (!history && !rooms) return false;
    const before = this.#historyBefore;
    if (history) this.#historyBefore = 0;
    if (rooms) this.#roomsPending = false;
    if (RETRY_ERRORS.has(code) && this.#online) {
      clearTimeout(this.#requestTimer);
      this.#requestTimer = setTimeout(() => {
        if (history) this.history(before);
        if (rooms) this.rooms();
      }, pause);
      return true;
    }
    if (history) {
      this.#emit("history-error", { message });
      return true;
    }
    return false;
  }

  // --- Outbox --------------------------------------------------------------

  /** Sends pending entries in order, paced under the server's rate limit. */
  #flush() {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = 0;
    if (!this.#online) return;
    const now = Date.now();
    if (now < this.#holdUntil) {
      this.#flushTimer = setTimeout(() => this.#flush(), this.#holdUntil - now);
      return;
    }
    this.#refill();
    for (const entry of this.#outbox) {
      if (entry.state !== "pending" || this.#inFlight.has(entry.cid)) continue;
      if (this.#tokens < 1) {
        const wait = Math.ceil((1 - this.#tokens) / this.#perSecond * 1000);
        this.#flushTimer = setTimeout(() => this.#flush(), wait);
        return;
      }
      if (!this.#send(frameOf(entry))) return;
      this.#tokens--;
      this.#inFlight.add(entry.cid);
    }
  }

  /** Adds the tokens earned since the last look; returns how many there are. */
  #refill() {
    const now = Date.now();
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + (now - this.#tokensAt) / 1000 * this.#perSecond,
    );
    this.#tokensAt = now;
    return this.#tokens;
  }

  /** Counts a frame that is not an outbox entry (history, rooms, typing) against the pace. */
  #spend() {
    this.#refill();
    this.#tokens--;
  }

  /** @param {OutboxEntry} entry */
  #queue(entry) {
    this.#outbox.push(entry);
    this.#saveOutbox();
    this.#flush();
    return { ...entry };
  }

  /**
   * @param {"edit" | "delete" | "react"} kind
   * @param {number} ref
   * @returns {OutboxEntry}
   */
  #changeEntry(kind, ref) {
    if (!Number.isSafeInteger(ref) || ref < 1) throw new RangeError(`Not a message id: ${ref}`);
    return { cid: crypto.randomUUID(), kind, ref, text: "", ts: Date.now(), state: "pending" };
  }

  #saveOutbox() {
    this.#write(
      `outbox.${this.#room}`,
      this.#outbox.length ? JSON.stringify(this.#outbox) : null,
    );
    this.#emit("outbox", { entries: this.outbox });
  }

  /** @returns {OutboxEntry[]} */
  #loadOutbox() {
    try {
      const list = JSON.parse(this.#read(`outbox.${this.#room}`) || "[]");
      return Array.isArray(list)
        ? list.filter((e) => e && CID_PATTERN.test(e.cid) && typeof e.text === "string")
          .filter((e) =>
            e.kind === undefined ||
            (["edit", "delete", "react"].includes(e.kind) && Number.isSafeInteger(e.ref))
          )
          .map((e) => {
            /** @type {OutboxEntry} */
            const entry = {
              cid: e.cid,
              text: e.text,
              ts: Number.isFinite(e.ts) ? e.ts : Date.now(),
              state: e.state === "failed" ? "failed" : "pending",
            };
            if (Number.isSafeInteger(e.replyTo)) entry.replyTo = e.replyTo;
            if (e.kind) Object.assign(entry, { kind: e.kind, ref: e.ref });
            if (e.kind === "react") entry.emoji = String(e.emoji);
            return entry;
          })
        : [];
    } catch {
      return [];
    }
  }

  // --- State ---------------------------------------------------------------

  /** Loads the room's own state. @param {string} room */
  #enter(room) {
    this.#room = room;
    this.#resumed = false;
    this.#members.clear();
    this.#conversation.clear();
    this.#oldestId = 1;
    this.#hasMore = false;
    const id = Number(this.#read(`lastId.${room}`));
    this.#lastId = Number.isSafeInteger(id) && id > 0 ? id : 0;
    this.#epoch = this.#read(`epoch.${room}`);
    this.#outbox = this.#loadOutbox();
  }

  /** @param {number} id */
  #setLastId(id) {
    this.#lastId = id;
    this.#write(`lastId.${this.#room}`, id > 0 ? String(id) : null);
  }

  /**
   * @param {string} name
   * @param {string} from The suggestion it came from, or "" when typed.
   */
  #setName(name, from) {
    this.#name = name;
    this.#nameFrom = from;
    this.#write("name", name || null);
    this.#write("nameFrom", from || null);
  }

  /**
   * @param {string} state
   * @param {string} [reason]
   * @param {number} [retryAt]
   */
  #status(state, reason = "", retryAt = 0) {
    this.#emit("status", { state, reason, retryAt, transport: this.#transport });
  }

  /** @param {string} key */
  #read(key) {
    try {
      return this.#storage.getItem(this.#prefix + key) ?? "";
    } catch {
      return "";
    }
  }

  /**
   * @param {string} key
   * @param {string | null} value Null removes the key.
   */
  #write(key, value) {
    try {
      if (value === null) this.#storage.removeItem(this.#prefix + key);
      else this.#storage.setItem(this.#prefix + key, value);
    } catch { /* full or disabled: the session lives on in memory */ }
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
 * The frame that sends an outbox entry.
 *
 * @param {OutboxEntry} entry
 */
function frameOf({ kind, cid, text, ref, emoji, replyTo }) {
  if (kind === "edit") return { type: "edit", ref, text, cid };
  if (kind === "delete") return { type: "delete", ref, cid };
  if (kind === "react") return { type: "react", ref, emoji, cid };
  return { type: "say", text, cid, ...(replyTo === undefined ? {} : { replyTo }) };
}

/**
 * The pause a `rate_limited` error asks for, in ms (`retryAfterMs`, or
 * `retryAfter` in seconds), or undefined when it names none.
 *
 * @param {Record<string, any>} error
 */
function hintMs(error) {
  const ms = Number.isFinite(error.retryAfterMs)
    ? error.retryAfterMs
    : Number.isFinite(error.retryAfter)
    ? error.retryAfter * 1000
    : NaN;
  return ms > 0 ? Math.min(ms, MAX_HINT_MS) : undefined;
}
