/**
 * What a room's messages look like once their changes are applied: edits,
 * deletes and reactions are events of their own in the room's sequence, and
 * this folds them into the message they change. No DOM; `chat_client.js`
 * keeps one per room and Deno tests import it.
 *
 * Changes are kept by their id and folded in id order, so applying one twice
 * (a resume replays it) or out of order (a history page brings a message
 * after the changes to it) gives the same state.
 *
 * @module
 */

/** The reactions a message can get, in the order they are shown. */
export const REACTIONS = ["👍", "❤", "😂", "🎉", "😮", "😢", "👀", "🚀"];

/**
 * A message or a change to one, as the server sends it.
 *
 * @typedef {{
 *   id: number, userId: string, name: string, text: string, ts: number, cid?: string,
 *   room?: string, replyTo?: number, kind?: "edit" | "delete" | "reaction", ref?: number,
 *   emoji?: string, on?: boolean,
 * }} ChatEvent
 */

/**
 * A reaction on a message: who gave it, in the order they did.
 *
 * @typedef {{ emoji: string, users: { id: string, name: string }[] }} Reaction
 */

/**
 * A message with its changes applied.
 *
 * @typedef {{
 *   id: number, userId: string, name: string, text: string, ts: number, cid?: string,
 *   replyTo?: number, edited: boolean, deleted: boolean, reactions: Reaction[],
 * }} MessageState
 */

/** True for an edit, delete or reaction event. @param {ChatEvent} event */
export function isChange(event) {
  return event.kind === "edit" || event.kind === "delete" || event.kind === "reaction";
}

/** The messages of one room, with their changes folded in. */
export class Conversation {
  /** Plain messages by id. @type {Map<number, ChatEvent>} */
  #messages = new Map();
  /** Changes by the id of the message they change, each map keyed by the change's id. @type {Map<number, Map<number, ChatEvent>>} */
  #changes = new Map();
  /** @type {Map<number, MessageState>} */
  #states = new Map();
  #oldest = Infinity;

  /** Forgets everything (another room, or a history that starts over). */
  clear() {
    this.#messages.clear();
    this.#changes.clear();
    this.#states.clear();
    this.#oldest = Infinity;
  }

  /** The smallest id of any event held, or `Infinity`. */
  get oldestId() {
    return this.#oldest;
  }

  /**
   * Adds a plain message, with any changes to it that came before it.
   *
   * @param {ChatEvent} message
   * @returns {MessageState}
   */
  add(message) {
    this.#oldest = Math.min(this.#oldest, message.id);
    this.#messages.set(message.id, message);
    return this.#fold(message.id);
  }

  /**
   * Applies a change. Returns the state of the message it changes, or
   * undefined when that message is not held (yet).
   *
   * @param {ChatEvent} change
   * @returns {MessageState | undefined}
   */
  apply(change) {
    this.#oldest = Math.min(this.#oldest, change.id);
    const ref = Number(change.ref);
    if (!Number.isSafeInteger(ref)) return undefined;
    let changes = this.#changes.get(ref);
    if (!changes) this.#changes.set(ref, changes = new Map());
    changes.set(change.id, change);
    return this.#messages.has(ref) ? this.#fold(ref) : undefined;
  }

  /**
   * The state of message `id`, or undefined.
   *
   * @param {number} id
   * @returns {MessageState | undefined}
   */
  get(id) {
    return this.#states.get(id);
  }

  /**
   * The newest message by `userId` that is not deleted, or undefined.
   *
   * @param {string} userId
   * @returns {MessageState | undefined}
   */
  lastBy(userId) {
    let last;
    for (const state of this.#states.values()) {
      if (state.userId === userId && !state.deleted && (!last || state.id > last.id)) {
        last = state;
      }
    }
    return last;
  }

  /** @param {number} id @returns {MessageState} */
  #fold(id) {
    const message = /** @type {ChatEvent} */ (this.#messages.get(id));
    /** @type {MessageState} */
    const state = {
      id: message.id,
      userId: message.userId,
      name: message.name,
      text: message.text,
      ts: message.ts,
      edited: false,
      deleted: false,
      reactions: [],
    };
    if (message.cid) state.cid = message.cid;
    if (Number.isSafeInteger(message.replyTo)) state.replyTo = message.replyTo;
    const changes = [...(this.#changes.get(id)?.values() ?? [])].sort((a, b) => a.id - b.id);
    /** Who reacted with what, in the order they first did: "emoji\0userId" → name. */
    const reacted = new Map();
    for (const change of changes) {
      if (change.kind === "edit" && change.userId === message.userId) {
        state.text = change.text;
        state.edited = true;
      } else if (change.kind === "delete" && change.userId === message.userId) {
        state.deleted = true;
      } else if (change.kind === "reaction" && REACTIONS.includes(String(change.emoji))) {
        const key = `${change.emoji}\0${change.userId}`;
        if (change.on) {
          if (!reacted.has(key)) reacted.set(key, change.name);
        } else reacted.delete(key);
      }
    }
    if (state.deleted) state.text = "";
    else {
      for (const emoji of REACTIONS) {
        const users = [];
        for (const [key, name] of reacted) {
          const [e, userId] = key.split("\0");
          if (e === emoji) users.push({ id: userId, name });
        }
        if (users.length) state.reactions.push({ emoji, users });
      }
    }
    this.#states.set(id, state);
    return state;
  }
}
