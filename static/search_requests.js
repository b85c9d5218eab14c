/**
 * The chat client's search and "show in context" requests, with no DOM:
 * `search {q, room?, before?, cid}` (one at a time on a connection, as the
 * server allows; a newer one waits for the answer to the one in flight and
 * replaces any other that waited) and `history {room, around}` (a message
 * with its neighbours, one per room at a time). A search asked while offline,
 * or cut off by a dropped connection, is sent once the client is online
 * again. Deno tests import it.
 *
 * @module
 */

/**
 * A search the page asked for.
 *
 * @typedef {{ cid: string, q: string, room?: string, before?: unknown }} SearchAsk
 */

/**
 * What the requests need of their client.
 *
 * @typedef {object} SearchRequestsOptions
 * @property {(frame: Record<string, unknown>) => boolean} send Sends a frame; false when offline.
 * @property {import("./outbox.js").Pacer} pacer The client's pacer.
 * @property {() => boolean} online Whether the connection is welcomed.
 * @property {(room: string) => boolean} joined Whether `room` is joined on this connection.
 * @property {(type: string, detail: Record<string, unknown>) => void} emit Emits a client event.
 */

/** Refusals of a search worth sending it again after a pause. */
const TRY_AGAIN = new Set(["rate_limited", "unavailable", "internal"]);

/** Searches and around requests, with their retries. */
export class SearchRequests {
  /** @type {SearchRequestsOptions} */
  #o;
  /** The search sent and not answered yet. @type {SearchAsk | null} */
  #inFlight = null;
  /** The search to send next (the newest one asked). @type {SearchAsk | null} */
  #next = null;
  /** Per room, the message whose neighbours were asked for. @type {Map<string, number>} */
  #around = new Map();
  #timer = 0;

  /** @param {SearchRequestsOptions} options */
  constructor(options) {
    this.#o = options;
  }

  /** The search on its way, or waiting to go (the newest asked), or null. */
  get pending() {
    return this.#next ?? this.#inFlight;
  }

  /**
   * Asks for the messages matching `q`, in `room` or in every room of the
   * connection, before the cursor `before` (a previous answer's `next`, as
   * it came). Returns the search's `cid`; its answer comes as a `search`
   * event with the same `cid`.
   *
   * @param {string} q
   * @param {{ room?: string, before?: unknown }} [options]
   * @returns {string}
   */
  search(q, { room, before } = {}) {
    /** @type {SearchAsk} */
    const ask = { cid: `s-${crypto.randomUUID()}`, q };
    if (room) ask.room = room;
    if (before !== undefined && before !== null) ask.before = before;
    this.#next = ask;
    this.flush();
    return ask.cid;
  }

  /** Forgets the searches asked for (the page closed its search). */
  cancel() {
    this.#next = null;
    clearTimeout(this.#timer);
    this.#timer = 0;
  }

  /** Sends the waiting search, when none is on its way and the client is online. */
  flush() {
    if (this.#inFlight || !this.#next || this.#timer || !this.#o.online()) return;
    const wait = this.#o.pacer.wait();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = 0;
        this.flush();
      }, wait);
      return;
    }
    const ask = this.#next;
    /** @type {Record<string, unknown>} */
    const frame = { type: "search", q: ask.q, cid: ask.cid };
    if (ask.room) frame.room = ask.room;
    if (ask.before !== undefined) frame.before = ask.before;
    if (!this.#o.send(frame)) return;
    this.#o.pacer.spend();
    this.#next = null;
    this.#inFlight = ask;
  }

  /**
   * The server's `search` answer: a `search` event for the page, unless a
   * newer search waits (then this one is stale, and that one goes).
   *
   * @param {Record<string, any>} answer
   */
  answered(answer) {
    const ask = this.#inFlight;
    if (!ask || (answer.cid !== undefined && answer.cid !== ask.cid)) return;
    this.#inFlight = null;
    if (!this.#next) {
      this.#o.emit("search", {
        cid: ask.cid,
        q: typeof answer.q === "string" ? answer.q : ask.q,
        ...(ask.room ? { room: ask.room } : {}),
        first: ask.before === undefined,
        results: (Array.isArray(answer.results) ? answer.results : []).filter((m) =>
          m && Number.isSafeInteger(m.id) && typeof m.room === "string"
        ),
        hasMore: answer.hasMore === true && answer.next !== undefined && answer.next !== null,
        next: answer.next ?? null,
      });
    }
    this.flush();
  }

  /**
   * An error frame: a refusal of the search in flight (by its `cid`), or of
   * an around request (a history refusal for its room). Returns true when
   * it was one.
   *
   * @param {Record<string, any>} error
   * @param {number} pause How long to wait before asking again, in ms.
   */
  refused(error, pause) {
    const ask = this.#inFlight;
    if (ask && error.cid === ask.cid) {
      this.#inFlight = null;
      if (TRY_AGAIN.has(error.code)) {
        // A search still running (after a reconnect) or the frame budget: ask again later.
        this.#next ??= ask;
        this.#o.pacer.hold(pause);
      } else if (!this.#next) {
        this.#o.emit("search-error", {
          cid: ask.cid,
          q: ask.q,
          code: String(error.code ?? ""),
          message: typeof error.message === "string" ? error.message : "Cannot search",
        });
      }
      this.flush();
      return true;
    }
    const room = typeof error.room === "string" ? error.room : "";
    if (
      error.cid === undefined && this.#around.has(room) && /^Cannot read history/.test(
        String(error.message),
      )
    ) {
      const id = /** @type {number} */ (this.#around.get(room));
      this.#around.delete(room);
      this.#o.emit("around-error", {
        room,
        id,
        code: String(error.code ?? ""),
        message: String(error.message),
      });
      return true;
    }
    return false;
  }

  /**
   * Asks for message `id` of `room` with its neighbours (`history {room,
   * around}`). False while offline, when the room is not joined, or while
   * the neighbours of another message of the room are on their way.
   *
   * @param {string} room
   * @param {number} id
   */
  around(room, id) {
    if (!Number.isSafeInteger(id) || id < 1) throw new RangeError(`Not a message id: ${id}`);
    if (!this.#o.online() || !this.#o.joined(room)) return false;
    if (this.#around.has(room)) return this.#around.get(room) === id;
    if (!this.#o.send({ type: "history", room, around: id })) return false;
    this.#o.pacer.spend();
    this.#around.set(room, id);
    return true;
  }

  /**
   * The answer to an around request of `room`: the id it was about, or 0
   * when none was asked.
   *
   * @param {string} room
   * @param {unknown} around
   */
  aroundAnswered(room, around) {
    const id = this.#around.get(room);
    if (id === undefined || (around !== undefined && around !== id)) return 0;
    this.#around.delete(room);
    return id;
  }

  /** The connection is gone: the search in flight goes again once online; arounds are lost. */
  drop() {
    if (this.#inFlight) this.#next ??= this.#inFlight;
    this.#inFlight = null;
    clearTimeout(this.#timer);
    this.#timer = 0;
    for (const [room, id] of this.#around) {
      this.#o.emit("around-error", {
        room,
        id,
        code: "offline",
        message: "The connection dropped",
      });
    }
    this.#around.clear();
  }

  /** Stops every timer (the client is closed). */
  close() {
    this.cancel();
    this.#inFlight = null;
    this.#around.clear();
  }
}
