/**
 * The rooms a chat client is in, with no DOM: their order, the room in view,
 * the list kept in the session's storage (so a reload joins them again), and
 * the joins on each connection. The connection's first join names it and goes
 * alone (the room in view first); once it is welcomed the others follow,
 * paced under the server's rate limit.
 *
 * @module
 */

import { TRY_AGAIN } from "./requests.js";
import { RoomState } from "./room_state.js";

/**
 * What a refused join calls for: nothing (`ignore`, the room is joined
 * already), dropping the room (`drop`: it cannot be joined, or not under this
 * name, or not while a ban holds), sending it again after a pause (`later`), reconnecting (`reconnect`:
 * the connection's first join), another name (`vary`, a suggested one), or
 * asking the user (`prompt`).
 *
 * @param {string} code The error's code.
 * @param {string} message The error's message.
 * @param {boolean} first Whether it was the connection's first join.
 * @returns {"ignore" | "drop" | "later" | "reconnect" | "vary" | "prompt"}
 */
export function joinRefusal(code, message, first) {
  if (code === "already_joined") return "ignore";
  if (
    code === "room_forbidden" || code === "too_many_rooms" || code === "banned" ||
    (code === "invalid_message" && /^Cannot join room: room\b/.test(message)) ||
    (!first && (code === "name_taken" || code === "invalid_message"))
  ) {
    return "drop";
  }
  if (TRY_AGAIN.has(code)) return first ? "reconnect" : "later";
  return code === "name_taken" ? "vary" : "prompt";
}

/**
 * What the list needs of its client.
 *
 * @typedef {object} RoomListOptions
 * @property {import("./session.js").Store} store The client's storage.
 * @property {import("./outbox.js").Pacer} pacer The client's pacer.
 * @property {(frame: Record<string, unknown>) => boolean} send Sends a frame.
 * @property {() => Record<string, unknown>} naming The fields of the connection's first join.
 */

/** The rooms of a client, in the order they were joined. */
export class RoomList {
  /** @type {Map<string, RoomState>} */
  #rooms = new Map();
  /** The room in view ("" when there is none). */
  view = "";
  /** The room of the connection's first join, while it is on its way. */
  naming = "";
  #timer = 0;
  /** @type {RoomListOptions} */
  #o;

  /** @param {RoomListOptions} options */
  constructor(options) {
    this.#o = options;
  }

  /** The rooms kept by an earlier page of this session. @returns {string[]} */
  stored() {
    try {
      const list = JSON.parse(this.#o.store.read("rooms") || "[]");
      return Array.isArray(list) ? list.filter((r) => typeof r === "string" && r.trim()) : [];
    } catch {
      return [];
    }
  }

  /** The rooms' names, in order. */
  get names() {
    return [...this.#rooms.keys()];
  }

  get size() {
    return this.#rooms.size;
  }

  /** @param {string} name */
  get(name) {
    return this.#rooms.get(name);
  }

  values() {
    return this.#rooms.values();
  }

  /** The room a server message is about: its `room`, or the room in view. @param {Record<string, any>} msg */
  of(msg) {
    return this.#rooms.get(typeof msg.room === "string" ? msg.room : this.view);
  }

  /**
   * Adds `name`, with what the tab kept of it. Returns false when it is in
   * the list already.
   *
   * @param {string} name
   */
  add(name) {
    if (this.#rooms.has(name)) return false;
    this.#rooms.set(name, new RoomState(name, this.#o.store));
    return true;
  }

  /**
   * Takes `name` out of the list and forgets what the tab kept of it; the
   * room in view moves to the first one left. Returns the room, if it was in.
   *
   * @param {string} name
   */
  remove(name) {
    const room = this.#rooms.get(name);
    if (!room) return undefined;
    this.#rooms.delete(name);
    room.forget();
    if (this.naming === name) this.naming = "";
    if (this.view === name) this.view = this.names[0] ?? "";
    return room;
  }

  /** Keeps the list in the session's storage. */
  save() {
    this.#o.store.write("rooms", JSON.stringify(this.names));
  }

  /**
   * Sends the joins that are due. Before the connection is welcomed, only
   * its first join (the room in view if it can), alone; afterwards every
   * room not joined yet, paced.
   *
   * @param {boolean} welcomed Whether the connection was welcomed into a room.
   */
  pump(welcomed) {
    clearTimeout(this.#timer);
    this.#timer = 0;
    const due = new Set([this.#rooms.get(this.view), ...this.#rooms.values()]
      .filter((room) => room !== undefined && room.status === "idle"));
    if (!welcomed) {
      const [first] = due;
      if (this.naming || !first) return;
      this.naming = first.name;
      if (!this.sendJoin(first, true)) this.naming = "";
      return;
    }
    for (const room of due) {
      const wait = Math.max(this.#o.pacer.wait(), room.retryAt - Date.now());
      if (wait > 0) {
        this.#timer = setTimeout(() => this.pump(welcomed), wait);
        return;
      }
      if (!this.sendJoin(room, false)) return;
    }
  }

  /**
   * @param {RoomState} room
   * @param {boolean} first The connection's first join: it carries the name and token.
   * @returns {boolean} False when there is no open connection to send it on.
   */
  sendJoin(room, first) {
    const frame = room.joinFrame();
    if (first) Object.assign(frame, this.#o.naming());
    if (!this.#o.send(frame)) {
      room.drop();
      return false;
    }
    this.#o.pacer.spend();
    return true;
  }

  /**
   * A join to be sent again, not before `pause` from now.
   *
   * @param {RoomState} room
   * @param {number} pause
   */
  later(room, pause) {
    room.status = "idle";
    room.retryAt = Date.now() + pause;
  }

  /** The connection is gone: no room is joined or joining. */
  drop() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.naming = "";
    for (const room of this.#rooms.values()) room.drop();
  }
}
