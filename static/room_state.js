/**
 * One room as the chat client holds it, with no DOM: its members, its
 * conversation, where the client is in its sequence (`lastId` and the
 * store's `epoch`, to resume), how far back it holds (`oldestId`, `hasMore`),
 * and how far this tab has read (`readId`, the unread and mention counts),
 * its moderation (`room_moderation.js`), and in a direct conversation
 * (`dm:<id>:<id>`) the other person (`peer`), each of whose messages counts
 * like a mention. What must survive a reload (`lastId`, `epoch`, `readId`,
 * the peer) goes to the client's storage under the room's name.
 *
 * @module
 */

import { Conversation, isChange, isModDelete } from "./conversation.js";
import { dmUsers } from "./names.js";
import { mentionsName } from "./rich_text.js";
import { RoomModeration } from "./room_moderation.js";

/** Messages a join asks for again after a reload, before the last one the tab saw. */
export const HISTORY_SIZE = 50;
/** Messages one `history` request asks for (the server allows up to 100). */
export const HISTORY_PAGE = 50;

/**
 * Who the client is, to tell its own messages and mentions of it, and whom
 * it blocks (their messages count as neither unread nor mentions).
 *
 * @typedef {{ id: string, name: string, blocks?: { has(id: string): boolean } }} Me
 */

/**
 * What a room's welcome changed: `reason` is why the messages held start
 * over (`fresh`, `gap`, `epoch`) or "", and `history` is the welcome's
 * messages, oldest first.
 *
 * @typedef {{ reason: "" | "fresh" | "gap" | "epoch", history: Record<string, any>[] }} Welcomed
 */

/**
 * A message or change accepted into the room, for the client's event.
 *
 * @typedef {{ type: "message", message: Record<string, any>, own: boolean, history: boolean,
 *     state: import("./conversation.js").MessageState, mention: boolean }
 *   | { type: "change", change: Record<string, any>, own: boolean, history: boolean,
 *     target: import("./conversation.js").MessageState | undefined }
 *   | { type: "moderation", event: Record<string, any>, own: boolean, history: boolean,
 *     target: import("./conversation.js").MessageState | undefined,
 *     touched: import("./room_moderation.js").Touched }
 *   | { type: "gap" }} Accepted
 */

/** The other person of a direct conversation. @typedef {{ userId: string, name: string }} Peer */

/** A room the client is in, or joining. */
export class RoomState {
  /** The room's name. */
  name;
  /** `idle` (no join sent on this connection), `joining`, or `joined`. */
  status = /** @type {"idle" | "joining" | "joined"} */ ("idle");
  /** The members, by id. @type {Map<string, { id: string, name: string }>} */
  members = new Map();
  conversation = new Conversation();
  /** The newest id held, in order. */
  lastId = 0;
  /** The history store's epoch of the last welcome, or "". */
  epoch = "";
  /** The smallest id held (or the one after `lastId`). */
  oldestId = 1;
  /** False once the server said there is nothing older, or the oldest held is message 1. */
  hasMore = false;
  /** The `before` of the history request in flight, or 0. */
  historyBefore = 0;
  /** The last message this tab has read. */
  readId = 0;
  /** Messages from others after `readId`. */
  unread = 0;
  /** Of those, the ones that mention this client or answer its messages. */
  mentions = 0;
  /** When the client last said it is typing here (ms since the epoch). */
  lastTyping = 0;
  /** How far the server knows this user has read the room (its welcome, `read`, ours sent). */
  serverReadId = 0;
  /** True for a direct conversation (`dm:<id>:<id>`). */
  direct = false;
  /** In a direct conversation: the other person, as last known. @type {Peer | null} */
  peer = null;
  /** @type {RoomModeration} */
  moderation;
  /** Not before this time may its join be sent again (after a refusal worth a retry). */
  retryAt = 0;
  /** True once a welcome came in this client's life: later joins resume from `lastId`. */
  #resumed = false;
  /** The `since` of the join in flight. @type {number | undefined} */
  #joinSince;
  /** False until this tab has a read position in the room (its first welcome sets one). */
  #readKnown = false;
  /** True for a conversation the server brought this client into (a welcome it did not ask for). */
  #adopted = false;
  /** The newest event id the last welcome said the room has (0: it did not say). */
  #welcomeLastId = 0;
  #read;
  #write;

  /**
   * @param {string} name
   * @param {{ read: (key: string) => string, write: (key: string, value: string | null) => void }}
   *   storage The client's storage, keys without its prefix.
   */
  constructor(name, { read, write }) {
    this.name = name;
    this.#read = read;
    this.#write = write;
    this.lastId = readId(read(`lastId.${name}`));
    this.epoch = read(`epoch.${name}`);
    const stored = read(`read.${name}`);
    this.#readKnown = stored !== "";
    this.readId = readId(stored);
    this.moderation = new RoomModeration(name, { read, write });
    this.direct = dmUsers(name) !== null;
    if (this.direct) {
      try {
        const peer = JSON.parse(read(`peer.${name}`) || "null");
        if (peer && typeof peer.userId === "string") {
          this.peer = { userId: peer.userId, name: String(peer.name ?? "") };
        }
      } catch { /* none kept */ }
    }
  }

  /**
   * The member list, each with their role when they have one.
   *
   * @returns {{ id: string, name: string, role?: import("./moderation_text.js").Role }[]}
   */
  get memberList() {
    return [...this.members.values()].map((member) => {
      const role = this.moderation.roles.get(member.id);
      return role ? { ...member, role } : member;
    });
  }

  /**
   * A welcome this client did not ask for is on its way: the server brought
   * it into this conversation, which got a message. Its messages after the
   * welcome's `readId` are unread (not read up to the end, as a join's are).
   */
  adopt() {
    this.#adopted = true;
    this.#joinSince = undefined;
    this.status = "joining";
  }

  /**
   * The server brought this client into a conversation it is in already but
   * has not joined again yet on this connection (its join was still to be
   * sent): that welcome is a fresh one, the newest messages; what the tab
   * read stays read.
   */
  pulled() {
    this.#joinSince = undefined;
    this.status = "joining";
  }

  /**
   * What the client holds of the room, as `ChatClient.roomState` gives it.
   *
   * @param {boolean} online Whether the connection is welcomed.
   */
  snapshot(online) {
    return {
      name: this.name,
      joined: this.status === "joined" && online,
      members: this.memberList,
      lastId: this.lastId,
      epoch: this.epoch,
      oldestId: this.oldestId,
      hasMore: this.hasMore,
      loadingHistory: this.historyBefore > 0,
      readId: this.readId,
      unread: this.unread,
      mentions: this.mentions,
      direct: this.direct,
      peer: this.peer ? { ...this.peer } : null,
      role: this.moderation.role,
      topic: this.moderation.topic,
      slowMs: this.moderation.slowMs,
      mute: this.moderation.muted() ? { ...this.moderation.mute } : null,
      reports: [...this.moderation.reports.values()].map((r) => ({ ...r })),
    };
  }

  /**
   * The `join` frame for this room: a resume from `lastId` (with the epoch),
   * or, on a page that has not shown the room yet, the last messages before
   * it too.
   *
   * @returns {Record<string, unknown>}
   */
  joinFrame() {
    const since = this.#resumed
      ? this.lastId
      : this.lastId > 0
      ? Math.max(0, this.lastId - HISTORY_SIZE)
      : undefined;
    this.#joinSince = since;
    this.status = "joining";
    return {
      type: "join",
      room: this.name,
      ...(since === undefined ? {} : { since }),
      ...(since !== undefined && this.epoch ? { epoch: this.epoch } : {}),
    };
  }

  /**
   * Takes a welcome: the members, the epoch, and whether what the client
   * held starts over. The welcome's messages are then given to
   * {@linkcode RoomState.accept}, then {@linkcode RoomState.settle} is called.
   *
   * @param {Record<string, any>} welcome
   * @returns {Welcomed}
   */
  welcome(welcome) {
    const epoch = typeof welcome.epoch === "string" ? welcome.epoch : "";
    const epochChanged = epoch !== "" && this.epoch !== "" && epoch !== this.epoch;
    if (epoch) {
      this.epoch = epoch;
      this.#write(`epoch.${this.name}`, epoch);
    }
    this.members = new Map(
      (Array.isArray(welcome.members) ? welcome.members : [])
        .filter((m) => m && typeof m.id === "string")
        .map((m) => [m.id, { id: m.id, name: String(m.name) }]),
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
    if (reason) {
      this.#setLastId(history.length ? history[0].id - 1 : 0);
      this.conversation.clear();
      this.unread = this.mentions = 0;
      if (reason === "epoch") this.#readKnown = false;
    } else {
      this.#setLastId(since ?? 0);
    }
    if (reason || !this.#resumed) {
      this.oldestId = this.lastId + 1;
      this.hasMore = this.oldestId > 1;
    }
    // How far this user has read here, by the server (another tab, device, or this one).
    const read = Number.isSafeInteger(welcome.readId) && welcome.readId > 0 ? welcome.readId : 0;
    this.serverReadId = read;
    if (this.#adopted || read > this.readId) {
      this.readId = Math.max(read, this.#adopted ? 0 : this.readId);
      this.#readKnown = true;
      this.#write(`read.${this.name}`, String(this.readId));
    }
    this.#adopted = false;
    if (this.direct && welcome.peer && typeof welcome.peer.userId === "string") {
      this.#setPeer(welcome.peer.userId, String(welcome.peer.name ?? ""));
    }
    this.moderation.welcome(welcome);
    // How far the room goes: acts and changes may follow its newest message.
    this.#welcomeLastId = Number.isSafeInteger(welcome.lastId) ? welcome.lastId : 0;
    this.#resumed = true;
    this.status = "joined";
    return { reason, history };
  }

  /**
   * After a welcome's messages: a room this tab had no read position in is
   * read up to here.
   *
   * @param {Me} me
   */
  settle(me) {
    if (this.#welcomeLastId > this.lastId) this.#setLastId(this.#welcomeLastId);
    this.#welcomeLastId = 0;
    if (!this.#readKnown) this.markRead(this.lastId, me);
  }

  /**
   * Takes a message or change, once, in id order. A live one past a hole in
   * the ids means some never arrived (`gap`: rejoin with `since`).
   *
   * @param {Record<string, any>} message
   * @param {boolean} live False for messages from a welcome's history.
   * @param {Me} me
   * @returns {Accepted | null} null when it was not new.
   */
  accept(message, live, me) {
    if (this.status !== "joined") return null;
    if (!Number.isSafeInteger(message.id) || message.id < 1 || message.id <= this.lastId) {
      return null;
    }
    if (live && message.id > this.lastId + 1) return { type: "gap" };
    this.#setLastId(message.id);
    const own = me.id !== "" && message.userId === me.id;
    const event = /** @type {import("./conversation.js").ChatEvent} */ (message);
    if (event.kind === "moderation") {
      const target = isModDelete(event) ? this.conversation.apply(event) : undefined;
      if (target && target.id > this.readId) this.#recount(me);
      const touched = this.moderation.apply(message, me.id);
      return { type: "moderation", event: message, own, history: !live, target, touched };
    }
    if (isChange(event)) {
      const target = this.conversation.apply(event);
      if (target && target.id > this.readId) this.#recount(me);
      return { type: "change", change: message, own, history: !live, target };
    }
    const state = this.conversation.add(event);
    if (this.direct && this.peer?.userId === state.userId && state.name !== this.peer.name) {
      this.#setPeer(state.userId, state.name);
    }
    const mention = !own && this.#mentions(state, me);
    if (!own && !state.deleted && state.id > this.readId && !me.blocks?.has(state.userId)) {
      this.unread++;
      if (mention) this.mentions++;
    }
    return { type: "message", message, own, history: !live, state, mention };
  }

  /**
   * Takes a presence event. Returns what happened, with `repeat` true for a
   * join of someone already listed (a reconnect) or a leave of someone who
   * is not, and `previous` the name before a rename.
   *
   * @param {Record<string, any>} presence
   * @returns {{ event: string, member: { id: string, name: string }, repeat: boolean,
   *   previous?: string } | null}
   */
  presence(presence) {
    const { event, member } = presence;
    if (Array.isArray(presence.members)) {
      const known = member && this.members.has(member.id);
      this.members = new Map(presence.members.map((/** @type {any} */ m) => [m.id, m]));
      return member ? { event, member, repeat: event === "join" ? known : !known } : null;
    }
    if (!member || typeof member.id !== "string") return null;
    const known = this.members.get(member.id);
    if (event === "rename") {
      const previous = typeof presence.previous === "string" ? presence.previous : known?.name;
      this.members.set(member.id, { id: member.id, name: String(member.name) });
      if (this.peer?.userId === member.id) this.#setPeer(member.id, String(member.name));
      return { event, member, repeat: false, ...(previous ? { previous } : {}) };
    }
    if (event === "join") {
      this.members.set(member.id, { id: member.id, name: String(member.name) });
      this.moderation.joined(member);
    } else if (event === "leave") this.members.delete(member.id);
    return { event, member, repeat: event === "join" ? known !== undefined : !known };
  }

  /**
   * The `history` frame asking for the messages before `before`, or null when
   * there is nothing to ask for or a page is on its way.
   *
   * @param {number} [before]
   */
  historyFrame(before = this.oldestId) {
    if (this.status !== "joined" || this.historyBefore > 0) return null;
    if (
      !Number.isSafeInteger(before) || before <= 1 || (!this.hasMore && before >= this.oldestId)
    ) {
      return null;
    }
    this.historyBefore = before;
    return { type: "history", room: this.name, before, limit: HISTORY_PAGE };
  }

  /**
   * Takes a page of older messages (in their current state, or changes from
   * an older server), answering {@linkcode RoomState.historyFrame}.
   *
   * @param {Record<string, any>} page
   * @param {Me} me
   */
  older(page, me) {
    if (!this.historyBefore) return null;
    this.historyBefore = 0;
    const events = (Array.isArray(page.messages) ? page.messages : [])
      .filter((m) => m && Number.isSafeInteger(m.id) && m.id > 0 && m.id < this.oldestId)
      .sort((a, b) => a.id - b.id);
    const ids = [];
    /** Moderation events of the page: notices for the log (they change nothing now). */
    const moderation = [];
    for (const event of events) {
      if (event.kind === "moderation") moderation.push(event);
      if (isChange(event)) this.conversation.apply(event);
      else if (event.kind !== "moderation") {
        this.conversation.add(event);
        ids.push(event.id);
      }
    }
    this.oldestId = Math.min(this.oldestId, events[0]?.id ?? this.oldestId);
    // An empty page below `before` means nothing older is kept.
    this.hasMore = page.hasMore === true && events.length > 0 && this.oldestId > 1;
    if (events.some((e) => e.id > this.readId)) this.#recount(me);
    const messages = ids.map((id) => /** @type {any} */ (this.conversation.get(id)));
    return { messages, moderation, hasMore: this.hasMore, oldestId: this.oldestId };
  }

  /**
   * Takes the answer to `history {around}`: a message with its neighbours,
   * oldest first, each in its current state. When they reach what the room
   * holds (their newest is right before the oldest held, or later), the ones
   * older than that are taken in as a page of older messages would be
   * (`merged`); otherwise they stand apart, folded on their own, and the
   * room's messages are left as they were.
   *
   * @param {Record<string, any>} page
   * @param {Me} me
   * @returns {{ merged: boolean, messages: import("./conversation.js").MessageState[],
   *   moderation: Record<string, any>[], hasMore: boolean, hasNewer: boolean,
   *   oldestId: number }}
   */
  around(page, me) {
    const events = (Array.isArray(page.messages) ? page.messages : [])
      .filter((m) => m && Number.isSafeInteger(m.id) && m.id > 0)
      .sort((a, b) => a.id - b.id);
    const hasNewer = page.hasNewer === true;
    const newest = events.at(-1)?.id ?? 0;
    const reaches = this.status === "joined" && events.length > 0 &&
      (newest + 1 >= this.oldestId || (!hasNewer && this.lastId <= newest));
    const conversation = reaches ? this.conversation : new Conversation();
    const ids = [];
    const moderation = [];
    for (const event of events) {
      if (reaches && event.id >= this.oldestId) continue;
      if (event.kind === "moderation") moderation.push(event);
      if (isChange(event)) conversation.apply(event);
      else if (event.kind !== "moderation") {
        conversation.add(event);
        ids.push(event.id);
      }
    }
    if (reaches && events[0].id < this.oldestId) {
      this.oldestId = events[0].id;
      this.hasMore = page.hasMore === true && this.oldestId > 1;
      if (events.some((e) => e.id > this.readId)) this.#recount(me);
    }
    const messages = ids.map((id) => /** @type {any} */ (conversation.get(id)));
    return {
      merged: reaches,
      messages,
      moderation,
      hasMore: page.hasMore === true,
      hasNewer,
      oldestId: reaches ? this.oldestId : events[0]?.id ?? 0,
    };
  }

  /**
   * Marks the room read up to `id`, once it is joined.
   *
   * @param {number} id
   * @param {Me} me
   * @param {boolean} [told] The server told it (another connection read that far): it may be
   *   past the newest message this client holds.
   * @returns {boolean} Whether the counts changed.
   */
  markRead(id, me, told = false) {
    // Before the welcome there is nothing read yet: the first welcome decides.
    if (this.status !== "joined") return false;
    const next = told
      ? Math.max(this.readId, id)
      : Math.min(Math.max(this.readId, id), this.lastId);
    const changed = next !== this.readId || !this.#readKnown;
    this.readId = next;
    this.#readKnown = true;
    if (changed) this.#write(`read.${this.name}`, String(next));
    const before = [this.unread, this.mentions];
    this.#recount(me);
    return changed || before[0] !== this.unread || before[1] !== this.mentions;
  }

  /** The counts again, from the messages held. @param {Me} me */
  #recount(me) {
    let unread = 0, mentions = 0;
    for (const state of this.conversation.after(this.readId)) {
      if (state.deleted || (me.id !== "" && state.userId === me.id)) continue;
      if (me.blocks?.has(state.userId)) continue;
      unread++;
      if (this.#mentions(state, me)) mentions++;
    }
    this.unread = unread;
    this.mentions = mentions;
  }

  /** The counts again, after the block list changed. @param {Me} me */
  recount(me) {
    const before = [this.unread, this.mentions];
    this.#recount(me);
    return before[0] !== this.unread || before[1] !== this.mentions;
  }

  /**
   * Whether a message mentions `me` or answers one of its messages; in a
   * direct conversation, every message of the other person does.
   *
   * @param {import("./conversation.js").MessageState} state
   * @param {Me} me
   */
  #mentions(state, me) {
    if (state.deleted || me.blocks?.has(state.userId)) return false;
    if (this.direct && state.userId !== me.id) return true;
    if (mentionsName(state.text, me.name)) return true;
    const quoted = state.replyTo ? this.conversation.get(state.replyTo) : undefined;
    return me.id !== "" && quoted?.userId === me.id;
  }

  /** The connection is gone: nothing is joined or on its way. */
  drop() {
    this.status = "idle";
    this.historyBefore = 0;
  }

  /** Forgets what the tab kept of this room (it left it). */
  forget() {
    for (const key of ["lastId", "epoch", "read", "peer"]) this.#write(`${key}.${this.name}`, null);
    this.moderation.forget();
  }

  /**
   * The other person of this conversation is `userId`, called `name` (kept
   * for the sidebar of a reloaded tab; an empty name keeps the one known).
   *
   * @param {string} userId
   * @param {string} name
   */
  #setPeer(userId, name) {
    const next = { userId, name: name || (this.peer?.userId === userId ? this.peer.name : "") };
    if (this.peer?.userId === next.userId && this.peer.name === next.name) return;
    this.peer = next;
    this.#write(`peer.${this.name}`, JSON.stringify(next));
  }

  /** @param {number} id */
  #setLastId(id) {
    this.lastId = id;
    this.#write(`lastId.${this.name}`, id > 0 ? String(id) : null);
  }
}

/** A stored id, or 0. @param {string} text */
function readId(text) {
  const id = Number(text);
  return Number.isSafeInteger(id) && id > 0 ? id : 0;
}
