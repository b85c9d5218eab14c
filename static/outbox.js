/**
 * What the user did that the server has not acknowledged yet, for every room
 * of a client: messages, edits, deletes, reactions and moderation acts, each
 * with its `cid`.
 * The outbox keeps them in the tab's storage (`outbox.<room>`), sends them in
 * order when their room is joined, paced under the server's rate limit
 * ({@linkcode Pacer}), and sends them again with the same `cid` after a
 * reconnect or a refusal worth retrying (`unavailable`, `rate_limited`,
 * `not_joined`), until the server acknowledges them. In slow mode a room's
 * messages wait their turn there (`slow_mode` says how long, and the client
 * paces itself once it knows the room's interval); the room's other entries
 * go on. No DOM.
 *
 * @module
 */

import { readAttachments } from "./conversation.js";

/** Errors for an entry that are worth sending again, with the same `cid`, after a pause. */
export const RETRY_ERRORS = new Set(["unavailable", "rate_limited", "not_joined"]);
const CID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const KINDS = ["edit", "delete", "react", "mod"];
const MOD_FIELDS = /** @type {const} */ (["userId", "ref", "durationMs", "reason", "topic"]);

/**
 * Something the user did that the server has not acknowledged yet, in
 * `room`: a message (no `kind`, maybe a `replyTo`, maybe `files` uploaded
 * for it: their ids go as the say's `attachments`), an edit, delete or
 * reaction of message `ref`, or a moderation act (`mod`: `action` and its
 * fields). `text` is always a string ("" but for a message or an edit).
 *
 * @typedef {{
 *   cid: string, room: string, text: string, ts: number, state: "pending" | "failed",
 *   replyTo?: number, kind?: "edit" | "delete" | "react" | "mod", ref?: number, emoji?: string,
 *   action?: string, userId?: string, durationMs?: number, reason?: string, topic?: string,
 *   files?: import("./conversation.js").Attachment[],
 * }} OutboxEntry
 */

/**
 * A new pending entry of `room` with a fresh `cid`.
 *
 * @param {string} room
 * @param {string} text
 * @returns {OutboxEntry}
 */
export function entry(room, text) {
  return { cid: crypto.randomUUID(), room, text, ts: Date.now(), state: "pending" };
}

/**
 * A token bucket shared by everything a client sends, kept under the
 * server's: `burst` frames at once, then `perSecond`. A `rate_limited` from
 * the server holds every frame until the pause it names.
 */
export class Pacer {
  #burst;
  #perSecond;
  #tokens;
  #at;
  #holdUntil = 0;

  /** @param {{ burst?: number, perSecond?: number }} [options] */
  constructor({ burst = 10, perSecond = 4 } = {}) {
    this.#burst = burst;
    this.#perSecond = perSecond;
    this.#tokens = burst;
    this.#at = Date.now();
  }

  /** The tokens there are now. */
  get level() {
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) / 1000 * this.#perSecond);
    this.#at = now;
    return this.#tokens;
  }

  /** How long until the next frame may go, in ms (0: now). */
  wait() {
    const held = this.#holdUntil - Date.now();
    if (held > 0) return held;
    const level = this.level;
    return level >= 1 ? 0 : Math.ceil((1 - level) / this.#perSecond * 1000);
  }

  /** Takes a token for a frame that goes now, whether or not there is one. */
  spend() {
    void this.level;
    this.#tokens--;
  }

  /**
   * The server refused a frame with `rate_limited`: nothing more for `ms`, then
   * one frame, then the steady pace (its bucket is empty).
   *
   * @param {number} ms
   */
  limited(ms) {
    this.hold(ms);
    this.#tokens = Math.min(this.level, 1);
  }

  /** Holds every frame for `ms`. @param {number} ms */
  hold(ms) {
    this.#holdUntil = Math.max(this.#holdUntil, Date.now() + ms);
  }
}

/**
 * Options of {@linkcode Outbox}.
 *
 * @typedef {object} OutboxOptions
 * @property {Pacer} pacer The client's pacer.
 * @property {(frame: Record<string, unknown>) => boolean} send Sends a frame; false when offline.
 * @property {(room: string) => boolean} ready Whether `room` is joined on the open connection.
 * @property {(key: string) => string} read Reads a storage key ("" when absent).
 * @property {(key: string, value: string | null) => void} write Writes one (null removes it).
 * @property {(type: string, detail: Record<string, unknown>) => void} emit Emits a client event.
 * @property {(room: string) => number} [spacing] After a message goes to `room`, how long its
 *   next one waits, in ms (slow mode; 0: not at all).
 */

/** Every room's unacknowledged entries, oldest first. */
export class Outbox {
  /** @type {OutboxEntry[]} */
  #entries = [];
  /** Cids sent on the current connection and not answered yet. */
  #inFlight = new Set();
  /** Rooms whose messages wait (slow mode), until when (ms since the epoch). @type {Map<string, number>} */
  #holds = new Map();
  #timer = 0;
  /** @type {OutboxOptions} */
  #o;

  /** @param {OutboxOptions} options */
  constructor(options) {
    this.#o = options;
  }

  /** A copy of the entries, oldest first; `room` picks one room's. @param {string} [room] */
  entries(room) {
    return this.#entries.filter((e) => room === undefined || e.room === room)
      .map((e) => ({ ...e }));
  }

  /** The entry `cid`, or undefined. @param {unknown} cid */
  find(cid) {
    return this.#entries.find((e) => e.cid === cid);
  }

  /** Takes `room`'s stored entries in (after a reload, or a join). @param {string} room */
  load(room) {
    const cids = new Set(this.#entries.map((e) => e.cid));
    const stored = readEntries(this.#o.read(`outbox.${room}`), room)
      .filter((e) => !cids.has(e.cid));
    if (stored.length) this.#entries.push(...stored);
  }

  /** Drops `room`'s entries (the room was left): they will not be sent. @param {string} room */
  forget(room) {
    const before = this.#entries.length;
    this.#entries = this.#entries.filter((e) => e.room !== room);
    this.#o.write(`outbox.${room}`, null);
    if (this.#entries.length !== before) this.#o.emit("outbox", { room, entries: [] });
  }

  /**
   * Adds an entry and sends it when it can.
   *
   * @param {OutboxEntry} entry
   * @returns {OutboxEntry} A copy.
   */
  add(entry) {
    this.#entries.push(entry);
    this.#save(entry.room);
    this.flush();
    return { ...entry };
  }

  /**
   * The server stored entry `cid` as message `id`: it leaves the outbox.
   *
   * @param {unknown} cid
   * @param {unknown} id
   * @returns {boolean} Whether it was an entry.
   */
  confirm(cid, id) {
    const entry = this.find(cid);
    if (!entry) return false;
    this.#entries.splice(this.#entries.indexOf(entry), 1);
    this.#inFlight.delete(entry.cid);
    this.#save(entry.room);
    this.#o.emit("sent", { room: entry.room, cid: entry.cid, id });
    return true;
  }

  /**
   * The server refused `entry`: kept and sent again after `pause` when the
   * code is worth a retry; otherwise a message is marked failed and a change
   * (which cannot be made) is dropped.
   *
   * @param {OutboxEntry} entry
   * @param {string} code
   * @param {string} message
   * @param {number} pause In ms.
   */
  refused(entry, code, message, pause) {
    this.#inFlight.delete(entry.cid);
    if (code === "slow_mode" && !entry.kind) {
      // Too soon in slow mode: this room's messages wait for the time the server names.
      this.hold(entry.room, pause);
      return this.flush();
    }
    if (RETRY_ERRORS.has(code)) {
      this.#o.pacer.hold(pause);
      return this.flush();
    }
    if (entry.kind) this.#entries.splice(this.#entries.indexOf(entry), 1);
    else entry.state = "failed";
    this.#save(entry.room);
    this.#o.emit("failed", {
      room: entry.room,
      cid: entry.cid,
      code,
      message,
      entry: { ...entry },
    });
  }

  /** Sends every failed entry (of `room`) again. Returns how many. @param {string} [room] */
  retryFailed(room) {
    const failed = this.#entries.filter((e) =>
      e.state === "failed" && (room === undefined || e.room === room)
    );
    for (const entry of failed) entry.state = "pending";
    for (const name of new Set(failed.map((e) => e.room))) this.#save(name);
    if (failed.length) this.flush();
    return failed.length;
  }

  /** Drops every failed entry (of `room`). Returns their cids. @param {string} [room] */
  discardFailed(room) {
    const cids = this.#entries.filter((e) =>
      e.state === "failed" && (room === undefined || e.room === room)
    ).map((e) => e.cid);
    for (const cid of cids) this.discard(cid);
    return cids;
  }

  /** Sends entry `cid` again. False when there is none. @param {string} cid */
  retry(cid) {
    const entry = this.find(cid);
    if (!entry) return false;
    entry.state = "pending";
    this.#save(entry.room);
    this.flush();
    return true;
  }

  /** Drops entry `cid` without sending it. @param {string} cid */
  discard(cid) {
    const entry = this.find(cid);
    if (!entry) return false;
    this.#entries.splice(this.#entries.indexOf(entry), 1);
    this.#inFlight.delete(cid);
    this.#save(entry.room);
    return true;
  }

  /**
   * The messages of `room` wait `ms` from now (slow mode), and a `slow` event
   * says until when. A shorter hold than one in force changes nothing.
   *
   * @param {string} room
   * @param {number} ms
   */
  hold(room, ms) {
    const until = Date.now() + ms;
    if ((this.#holds.get(room) ?? 0) >= until) return;
    this.#holds.set(room, until);
    this.#o.emit("slow", { room, until });
  }

  /** The messages of `room` need not wait any more (slow mode is off). @param {string} room */
  release(room) {
    if (!this.#holds.delete(room)) return;
    this.#o.emit("slow", { room, until: 0 });
    this.flush();
  }

  /** Until when the messages of `room` wait (0: they do not). @param {string} room */
  heldUntil(room) {
    const until = this.#holds.get(room) ?? 0;
    return until > Date.now() ? until : 0;
  }

  /** Sends pending entries of joined rooms in order, paced. */
  flush() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    let next = Infinity;
    for (const entry of this.#entries) {
      if (entry.state !== "pending" || this.#inFlight.has(entry.cid)) continue;
      if (!this.#o.ready(entry.room)) continue;
      if (!entry.kind) {
        const held = this.heldUntil(entry.room);
        if (held) {
          next = Math.min(next, held);
          continue;
        }
        if (this.#holds.delete(entry.room)) this.#o.emit("slow", { room: entry.room, until: 0 });
      }
      const wait = this.#o.pacer.wait();
      if (wait > 0) {
        this.#timer = setTimeout(() => this.flush(), wait);
        return;
      }
      if (!this.#o.send(frameOf(entry))) return;
      this.#o.pacer.spend();
      this.#inFlight.add(entry.cid);
      const spacing = entry.kind ? 0 : this.#o.spacing?.(entry.room) ?? 0;
      if (spacing > 0) this.hold(entry.room, spacing);
    }
    if (next < Infinity) this.#timer = setTimeout(() => this.flush(), next - Date.now());
  }

  /** The connection is gone: nothing is in flight any more. */
  reset() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#inFlight.clear();
  }

  /** Stops every timer (the client is closed). */
  close() {
    this.reset();
    this.#holds.clear();
  }

  /** @param {string} room */
  #save(room) {
    const entries = this.#entries.filter((e) => e.room === room);
    this.#o.write(
      `outbox.${room}`,
      entries.length ? JSON.stringify(entries.map(({ room: _room, ...rest }) => rest)) : null,
    );
    this.#o.emit("outbox", { room, entries: entries.map((e) => ({ ...e })) });
  }
}

/**
 * The frame that sends an outbox entry.
 *
 * @param {OutboxEntry} entry
 * @returns {Record<string, unknown>}
 */
export function frameOf(entry) {
  const { kind, cid, room, text, ref, emoji, replyTo } = entry;
  if (kind === "mod") {
    /** @type {Record<string, unknown>} */
    const frame = { type: "mod", room, action: entry.action, cid };
    for (const field of MOD_FIELDS) if (entry[field] !== undefined) frame[field] = entry[field];
    return frame;
  }
  if (kind === "edit") return { type: "edit", room, ref, text, cid };
  if (kind === "delete") return { type: "delete", room, ref, cid };
  if (kind === "react") return { type: "react", room, ref, emoji, cid };
  const files = entry.files?.length ? { attachments: entry.files.map((f) => f.id) } : {};
  return { type: "say", room, text, cid, ...(replyTo === undefined ? {} : { replyTo }), ...files };
}

/**
 * The valid entries in a stored outbox (JSON text) of `room`.
 *
 * @param {string} text
 * @param {string} room
 * @returns {OutboxEntry[]}
 */
function readEntries(text, room) {
  let list;
  try {
    list = JSON.parse(text || "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list
    .filter((e) => e && CID_PATTERN.test(e.cid) && typeof e.text === "string")
    .filter((e) =>
      e.kind === undefined ||
      (e.kind === "mod" ? typeof e.action === "string" : KINDS.includes(e.kind)) &&
        (e.kind === "mod" || Number.isSafeInteger(e.ref))
    )
    .map((e) => {
      /** @type {OutboxEntry} */
      const entry = {
        cid: e.cid,
        room,
        text: e.text,
        ts: Number.isFinite(e.ts) ? e.ts : Date.now(),
        state: e.state === "failed" ? "failed" : "pending",
      };
      if (Number.isSafeInteger(e.replyTo)) entry.replyTo = e.replyTo;
      const files = e.kind === undefined ? readAttachments(e.files) : [];
      if (files.length) entry.files = files;
      if (e.kind === "mod") {
        entry.kind = "mod";
        entry.action = e.action;
        for (const field of MOD_FIELDS) if (e[field] !== undefined) entry[field] = e[field];
      } else if (e.kind) Object.assign(entry, { kind: e.kind, ref: e.ref });
      if (e.kind === "react") entry.emoji = String(e.emoji);
      return entry;
    });
}
