/**
 * Read positions told to the server, with no DOM: when the page marks a room
 * read, the client sends `read {room, id}` so that the user's other
 * connections (another tab of an account, another device) take the unread
 * count down, and the next welcome there carries it as `readId`. At most one
 * frame per room per `intervalMs` (the last position goes at the end of the
 * interval), never one the server knows already, and only while joined.
 *
 * @module
 */

/** Least time between two `read` frames of one room, by default. */
export const READ_INTERVAL_MS = 1000;

/**
 * What the marks need of their client.
 *
 * @typedef {object} ReadMarksOptions
 * @property {(room: string) => import("./room_state.js").RoomState | undefined} room A room.
 * @property {import("./outbox.js").Pacer} pacer The client's pacer.
 * @property {(frame: Record<string, unknown>) => boolean} send Sends a frame; false when offline.
 * @property {(room: string) => boolean} ready Whether `room` is joined on the open connection.
 * @property {number} [intervalMs] Least time between two frames of a room.
 */

/** The `read` frames of every room, throttled. */
export class ReadMarks {
  /** Rooms whose next frame waits for the end of their interval, and its timer. @type {Map<string, number>} */
  #timers = new Map();
  /** When each room's last frame went (ms). @type {Map<string, number>} */
  #sentAt = new Map();
  /** @type {ReadMarksOptions} */
  #o;

  /** @param {ReadMarksOptions} options */
  constructor(options) {
    this.#o = options;
  }

  /**
   * Room `name` was read further: tell the server, now or at the end of the
   * room's interval.
   *
   * @param {string} name
   */
  mark(name) {
    if (this.#timers.has(name)) return; // the frame at the end of the interval takes it
    const wait = (this.#sentAt.get(name) ?? -Infinity) + this.#interval() - Date.now();
    if (wait > 0) {
      this.#timers.set(
        name,
        setTimeout(() => {
          this.#timers.delete(name);
          this.#send(name);
        }, wait),
      );
      return;
    }
    this.#send(name);
  }

  /**
   * The server told of a read on another connection: it knows that much.
   *
   * @param {string} name
   * @param {number} id
   */
  told(name, id) {
    const room = this.#o.room(name);
    if (room) room.serverReadId = Math.max(room.serverReadId, id);
  }

  /** The connection is gone: nothing waits (the next welcome says what the server knows). */
  drop() {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** @param {string} name */
  #send(name) {
    const room = this.#o.room(name);
    if (!room || room.readId <= room.serverReadId || !this.#o.ready(name)) return;
    if (this.#o.pacer.level < 2) {
      // Messages first: a read position can wait for the next mark.
      this.#sentAt.set(name, Date.now());
      this.#timers.set(
        name,
        setTimeout(() => {
          this.#timers.delete(name);
          this.#send(name);
        }, this.#interval()),
      );
      return;
    }
    if (!this.#o.send({ type: "read", room: name, id: room.readId })) return;
    this.#o.pacer.spend();
    room.serverReadId = room.readId;
    this.#sentAt.set(name, Date.now());
  }

  #interval() {
    return this.#o.intervalMs ?? READ_INTERVAL_MS;
  }
}
