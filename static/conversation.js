/**
 * What a room's messages look like once their changes are applied: edits,
 * deletes and reactions are events of their own in the room's sequence, and
 * this folds them into the message they change. No DOM; each room of the
 * chat client keeps one, and Deno tests import it.
 *
 * A message read from history (a welcome, a history page) comes in its
 * current state already (`edited`, `deleted`, `reactions`): that state is
 * where folding starts, and the changes the client holds are folded on top,
 * in id order. Folding is idempotent: a change the state holds already
 * changes nothing again (an edit sets the same text, a reaction is on or off
 * as it was), a change applied twice is kept once (by its id), and one that
 * comes before its message (a history page brings it later) is kept until
 * the message comes. The rules are the server's (`src/store/fold.ts`).
 *
 * @module
 */

/** The reactions the page offers first; the server takes any single emoji. */
export const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🚀"];

/** Longest emoji a reaction may be, in UTF-16 units (the server's limit). */
const MAX_EMOJI_LENGTH = 40;

/**
 * Whether `value` may be a reaction's emoji as the server sends it: the
 * server checks that it is one emoji; the page only that it is short text.
 *
 * @param {unknown} value
 * @returns {value is string}
 */
export function isReactionEmoji(value) {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_EMOJI_LENGTH;
}

/**
 * Whether `emoji` may be sent as a reaction: short text (see
 * {@linkcode isReactionEmoji}) with no spaces or control characters; the
 * server decides whether it is one emoji.
 *
 * @param {unknown} emoji
 * @returns {emoji is string}
 */
export function isReaction(emoji) {
  return isReactionEmoji(emoji) && !/[\s\p{Cc}]/u.test(emoji);
}

/**
 * A file a message carries, as the server describes it; its bytes are at
 * `/files/{id}/{name}` (see `uploads.js`).
 *
 * @typedef {{ id: string, name: string, size: number, type: string, width?: number,
 *   height?: number }} Attachment
 */

/**
 * A message or a change to one, as the server sends it.
 *
 * @typedef {{
 *   id: number, userId: string, name: string, text: string, ts: number, cid?: string,
 *   room?: string, replyTo?: number, kind?: "edit" | "delete" | "reaction" | "moderation",
 *   ref?: number, emoji?: string, on?: boolean, edited?: boolean, deleted?: boolean,
 *   reactions?: Reaction[], action?: string, attachments?: Attachment[],
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
 *   attachments: Attachment[],
 * }} MessageState
 */

/**
 * True for an edit, delete or reaction event, and for a moderator's delete
 * (`kind: "moderation"`, `action: "delete"`), which deletes any message.
 *
 * @param {ChatEvent} event
 */
export function isChange(event) {
  return event.kind === "edit" || event.kind === "delete" || event.kind === "reaction" ||
    isModDelete(event);
}

/** True for a moderator's delete of message `ref`. @param {ChatEvent} event */
export function isModDelete(event) {
  return event.kind === "moderation" && event.action === "delete" &&
    Number.isSafeInteger(event.ref);
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
   * The messages held with ids above `id`, in their current state.
   *
   * @param {number} id
   * @returns {MessageState[]}
   */
  after(id) {
    return [...this.#states.values()].filter((state) => state.id > id);
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
      text: message.deleted ? "" : message.text,
      ts: message.ts,
      edited: message.edited === true && message.deleted !== true,
      deleted: message.deleted === true,
      reactions: message.deleted ? [] : readReactions(message.reactions),
      attachments: message.deleted ? [] : readAttachments(message.attachments),
    };
    if (message.cid) state.cid = message.cid;
    if (Number.isSafeInteger(message.replyTo)) state.replyTo = message.replyTo;
    const changes = [...(this.#changes.get(id)?.values() ?? [])].sort((a, b) => a.id - b.id);
    for (const change of changes) foldInto(state, change);
    this.#states.set(id, state);
    return state;
  }
}

/**
 * Applies one change to a message's state, as the server's `fold.ts` does:
 * an edit by the author replaces the text (and the files, when it names
 * them); a delete (the author's, or a moderator's) empties it and drops the
 * reactions and the files; a reaction puts one user's emoji on or takes it off (a new
 * emoji goes last, a new user last in its emoji); nothing changes a deleted
 * message.
 *
 * @param {MessageState} state
 * @param {ChatEvent} change
 */
function foldInto(state, change) {
  if (state.deleted) return;
  if (change.kind === "edit") {
    if (change.userId !== state.userId) return;
    state.text = change.text;
    state.edited = true;
    if (Array.isArray(change.attachments)) state.attachments = readAttachments(change.attachments);
  } else if (change.kind === "delete" || isModDelete(change)) {
    state.deleted = true;
    state.edited = false;
    state.text = "";
    state.reactions = [];
    state.attachments = [];
  } else if (change.kind === "reaction" && isReactionEmoji(change.emoji)) {
    const user = { id: change.userId, name: change.name };
    const reaction = state.reactions.find((r) => r.emoji === change.emoji);
    const has = reaction?.users.some((u) => u.id === user.id) ?? false;
    if (change.on && !has) {
      if (reaction) reaction.users.push(user);
      else state.reactions.push({ emoji: String(change.emoji), users: [user] });
    } else if (!change.on && reaction && has) {
      reaction.users = reaction.users.filter((u) => u.id !== user.id);
      if (reaction.users.length === 0) state.reactions.splice(state.reactions.indexOf(reaction), 1);
    }
  }
}

/**
 * A copy of the reactions a message from history comes with, keeping the
 * well-formed ones, in their order.
 *
 * @param {unknown} reactions
 * @returns {Reaction[]}
 */
function readReactions(reactions) {
  if (!Array.isArray(reactions)) return [];
  return reactions
    .filter((r) => r && isReactionEmoji(r.emoji) && Array.isArray(r.users))
    .map((r) => ({
      emoji: r.emoji,
      users: r.users
        .filter((/** @type {any} */ u) => u && typeof u.id === "string")
        .map((/** @type {any} */ u) => ({ id: u.id, name: String(u.name ?? "") })),
    }))
    .filter((r) => r.users.length > 0);
}

/** Most files one message carries (the server's limit). */
export const MAX_ATTACHMENTS = 10;

/**
 * The well-formed files of a message, in their order (at most
 * {@linkcode MAX_ATTACHMENTS}): a string `id` and `name`, a size, a type,
 * and a positive whole `width` and `height` when both are given.
 *
 * @param {unknown} attachments
 * @returns {Attachment[]}
 */
export function readAttachments(attachments) {
  if (!Array.isArray(attachments)) return [];
  /** @type {Attachment[]} */
  const out = [];
  for (const a of attachments) {
    if (!a || typeof a.id !== "string" || !a.id || typeof a.name !== "string") continue;
    /** @type {Attachment} */
    const file = {
      id: a.id,
      name: a.name,
      size: Number.isSafeInteger(a.size) && a.size >= 0 ? a.size : 0,
      type: typeof a.type === "string" ? a.type : "application/octet-stream",
    };
    const sized = (/** @type {unknown} */ n) => Number.isSafeInteger(n) && Number(n) > 0;
    if (sized(a.width) && sized(a.height)) {
      file.width = a.width;
      file.height = a.height;
    }
    out.push(file);
    if (out.length === MAX_ATTACHMENTS) break;
  }
  return out;
}
