/**
 * The users this tab blocks, with no DOM: kept in the tab's storage
 * (`blocks`, with the names they had, for the page to show), and told to the
 * server. The server keeps a guest's list only in its memory, for as long as
 * its session lives on that instance, so on every new connection the tab
 * sends its whole list again (`block` per user, paced); what changed while
 * offline (an unblock too) goes then. The server answers each with `blocks`,
 * its list: once the tab's list is sent, that answer is the truth (another
 * connection of the same account may have changed it).
 *
 * An account's list is kept by the server, in its store: with `resend`
 * false (the client sets it while signed in) the whole list is not sent
 * again on a new connection, only what changed; the list starts from the
 * server's (`GET /auth/me`, through `fromServer`), and its `blocks`
 * answers still bring it.
 *
 * @module
 */

/** Most users a tab blocks (the server's limit is 1,000). */
export const MAX_BLOCKS = 500;

/** A blocked user, with the name they had. @typedef {{ id: string, name: string }} BlockedUser */

/**
 * What the list needs of its client.
 *
 * @typedef {object} BlockListOptions
 * @property {import("./session.js").Store} store The client's storage.
 * @property {import("./outbox.js").Pacer} pacer The client's pacer.
 * @property {(frame: Record<string, unknown>) => boolean} send Sends a frame; false when offline.
 * @property {() => boolean} online Whether the connection is welcomed.
 * @property {boolean} [resend] Whether the whole list goes again on every connection (a
 *   guest's, which the server keeps in memory only); true by default.
 */

/** This tab's blocked users, and their sync with the server. */
export class BlockList {
  /** @type {Map<string, BlockedUser>} */
  #users = new Map();
  /** Frames to send, in order, keyed by user id (the last one for a user wins). @type {Map<string, "block" | "unblock">} */
  #queue = new Map();
  /** True from a new connection until its whole list has been sent and answered. */
  #syncing = false;
  /** Frames sent on this connection and not answered yet. */
  #inFlight = 0;
  #timer = 0;
  /** @type {BlockListOptions} */
  #o;

  /** @param {BlockListOptions} options */
  constructor(options) {
    this.#o = options;
    try {
      const list = JSON.parse(options.store.read("blocks") || "[]");
      for (const user of Array.isArray(list) ? list : []) {
        if (user && typeof user.id === "string" && user.id) {
          this.#users.set(user.id, { id: user.id, name: String(user.name ?? "") });
        }
      }
    } catch { /* none kept */ }
    try {
      const pending = JSON.parse(options.store.read("blocks.pending") || "[]");
      for (const id of Array.isArray(pending) ? pending : []) {
        if (typeof id === "string" && !this.#users.has(id)) this.#queue.set(id, "unblock");
      }
    } catch { /* none kept */ }
  }

  /** Whether user `id` is blocked. @param {string} id */
  has(id) {
    return this.#users.has(id);
  }

  /** The blocked users, in the order they were blocked. */
  get list() {
    return [...this.#users.values()].map((u) => ({ ...u }));
  }

  /**
   * Blocks `user`: at once for this tab, and for the server when online.
   * False when blocked already, or the list is full.
   *
   * @param {BlockedUser} user
   */
  block(user) {
    if (this.#users.has(user.id) || this.#users.size >= MAX_BLOCKS) return false;
    this.#users.set(user.id, { id: user.id, name: user.name });
    this.#save();
    this.#enqueue(user.id, "block");
    return true;
  }

  /**
   * Takes a block back. False when `id` was not blocked.
   *
   * @param {string} id
   */
  unblock(id) {
    if (!this.#users.delete(id)) return false;
    this.#save();
    this.#enqueue(id, "unblock");
    return true;
  }

  /**
   * A new connection is welcomed: the whole list goes to the server again
   * (only what changed offline, with `resend: false`).
   */
  sync() {
    if (this.#o.resend !== false) {
      for (const id of this.#users.keys()) if (!this.#queue.has(id)) this.#queue.set(id, "block");
    }
    this.#syncing = this.#queue.size > 0;
    this.#inFlight = 0;
    this.flush();
  }

  /**
   * The server's `blocks`: its list for this user. While the tab's own list
   * is still on its way, the lists are merged; afterwards the server's is the
   * list. Returns whether the list changed.
   *
   * @param {unknown} users
   */
  fromServer(users) {
    const ids = new Set(Array.isArray(users) ? users.filter((u) => typeof u === "string") : []);
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (this.#syncing || this.#queue.size > 0 || this.#inFlight > 0) {
      if (this.#queue.size === 0 && this.#inFlight === 0) this.#syncing = false;
      // Still sending: add what the server knows and the tab does not (another device's).
      let changed = false;
      for (const id of ids) {
        if (!this.#users.has(id) && this.#queue.get(id) !== "unblock") {
          this.#users.set(id, { id, name: "" });
          changed = true;
        }
      }
      if (changed) this.#save();
      return changed;
    }
    const before = [...this.#users.keys()].join();
    const next = new Map();
    for (const id of ids) next.set(id, this.#users.get(id) ?? { id, name: "" });
    this.#users = next;
    if (before === [...next.keys()].join()) return false;
    this.#save();
    return true;
  }

  /**
   * A name seen for a blocked user (the list shows it).
   *
   * @param {string} id
   * @param {string} name
   */
  seen(id, name) {
    const user = this.#users.get(id);
    if (!user || !name || user.name === name) return;
    user.name = name;
    this.#save();
  }

  /** The server refused a `block` or `unblock` (one too many, yourself): it is answered. */
  refused() {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }

  /** Sends what is queued, paced; the rest waits for the pacer or the next connection. */
  flush() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    if (!this.#o.online()) return;
    for (const [userId, type] of this.#queue) {
      const wait = this.#o.pacer.wait();
      if (wait > 0) {
        this.#timer = setTimeout(() => this.flush(), wait);
        return;
      }
      if (!this.#o.send({ type, userId })) return;
      this.#o.pacer.spend();
      this.#inFlight++;
      this.#queue.delete(userId);
    }
    this.#savePending();
  }

  /** The connection is gone: nothing more goes on it. */
  drop() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#inFlight = 0;
  }

  /**
   * @param {string} id
   * @param {"block" | "unblock"} type
   */
  #enqueue(id, type) {
    this.#queue.set(id, type);
    this.#savePending();
    this.flush();
  }

  #save() {
    this.#o.store.write("blocks", this.#users.size ? JSON.stringify(this.list) : null);
  }

  /** Unblocks not sent yet outlive a reload (blocks are in the list itself). */
  #savePending() {
    const unblocks = [...this.#queue].filter(([, type]) => type === "unblock").map(([id]) => id);
    this.#o.store.write("blocks.pending", unblocks.length ? JSON.stringify(unblocks) : null);
  }
}
