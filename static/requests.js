/**
 * The chat client's requests that carry no `cid`: pages of older messages
 * (`history`, one at a time per room) and the room directory (`rooms`). A
 * refusal worth a retry asks again after the pause; a `rate_limited` does
 * not say which frame it refused, so every request that may be the one is
 * asked again. No DOM.
 *
 * @module
 */

/** Refusals worth asking again after a pause. */
export const TRY_AGAIN = new Set(["unavailable", "rate_limited", "internal", "not_joined"]);

/**
 * What the requests need of their client.
 *
 * @typedef {object} RequestsOptions
 * @property {import("./room_list.js").RoomList} rooms The client's rooms.
 * @property {import("./outbox.js").Pacer} pacer The client's pacer.
 * @property {(frame: Record<string, unknown>) => boolean} send Sends a frame.
 * @property {() => boolean} online Whether the connection is welcomed.
 * @property {(type: string, detail: Record<string, unknown>) => void} emit Emits a client event.
 */

/** History pages and the directory, with their retries. */
export class Requests {
  /** @type {RequestsOptions} */
  #o;
  #roomsPending = false;
  /** @type {Set<number>} */
  #timers = new Set();

  /** @param {RequestsOptions} options */
  constructor(options) {
    this.#o = options;
  }

  /**
   * Asks for the messages of `room` before `before` (its oldest held by
   * default). False when there is nothing to ask for, or while offline or a
   * page of it is on its way.
   *
   * @param {string} room
   * @param {number} [before]
   */
  history(room, before) {
    const frame = this.#o.online() ? this.#o.rooms.get(room)?.historyFrame(before) : null;
    if (!frame) return false;
    this.#o.pacer.spend();
    return this.#o.send(frame);
  }

  /** Asks for the directory; false while offline. */
  directory() {
    if (!this.#o.online()) return false;
    if (this.#roomsPending) return true;
    this.#roomsPending = true;
    this.#o.pacer.spend();
    return this.#o.send({ type: "rooms" });
  }

  /** The directory came. */
  answered() {
    this.#roomsPending = false;
  }

  /**
   * A refusal with no cid: a history page or the directory asked again after
   * `pause`, a failed page reported as `history-error`; joins that may have
   * been rate limited are returned, to be sent again.
   *
   * @param {string} code
   * @param {string} message
   * @param {number} pause
   * @param {unknown} about The room the error names, if any.
   * @returns {import("./room_state.js").RoomState[] | null} The joins to send again, or null
   *   when the refusal was none of these.
   */
  refused(code, message, pause, about) {
    const limited = code === "rate_limited";
    const all = [...this.#o.rooms.values()];
    const pages = all.filter((room) =>
      room.historyBefore > 0 &&
      (limited ||
        (/^Cannot read history/.test(message) && (about === undefined || about === room.name)))
    );
    const directory = this.#roomsPending && (limited || /^Cannot list rooms/.test(message));
    const joins = limited ? all.filter((room) => room.status === "joining") : [];
    if (!pages.length && !directory && !joins.length) return null;
    const retry = TRY_AGAIN.has(code) && this.#o.online();
    for (const room of pages) {
      const before = room.historyBefore;
      room.historyBefore = 0;
      if (retry) this.#later(() => this.history(room.name, before), pause);
      else this.#o.emit("history-error", { room: room.name, message });
    }
    if (directory) {
      this.#roomsPending = false;
      if (retry) this.#later(() => this.directory(), pause);
    }
    return joins;
  }

  /** The connection is gone: nothing is on its way, nothing is asked again. */
  drop() {
    this.#roomsPending = false;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /**
   * @param {() => void} task
   * @param {number} pause
   */
  #later(task, pause) {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      task();
    }, pause);
    this.#timers.add(timer);
  }
}
