/**
 * One room's message log: confirmed messages in id order, then this tab's
 * own unconfirmed ones (pending or failed) at the bottom, notices, moderation
 * notices in id order ("bob muted ada for 1 hour: spam"), the unread
 * divider, date separators, messages of one sender within five minutes
 * grouped (name and time shown once), and a run of messages from blocked
 * users collapsed to one line ("3 messages from a blocked user"). A log lives while its room is joined;
 * only the room in view is in the document (see `view_pane.js`), the others
 * are kept up to date off it. Every piece of user text goes in through
 * `textContent` (see `message_item.js`).
 *
 * @module
 */

import {
  buildItem,
  dayKey,
  dayLabel,
  fillItem,
  fillQuote,
  part,
  setItemState,
} from "./message_item.js";

const UNCONFIRMED = 'li.message[data-state="pending"], li.message[data-state="failed"]';
/** Messages of one sender this close together form a group. */
const GROUP_MS = 5 * 60_000;
/** A "left" line is taken back when the member returns this soon (a reconnect). */
const REJOIN_MS = 60_000;

/** @typedef {import("./conversation.js").MessageState} MessageState */
/** @typedef {import("./message_item.js").Reader} Reader */

/** The log of one room. */
export class MessageLog {
  /** The room's name. */
  room;
  /** The log's root element (history edge and list), put in the scroller while in view. */
  root;
  /** @type {HTMLOListElement} */
  list;
  /** @type {HTMLButtonElement} */
  loadOlder;
  /** @type {HTMLElement} */
  #historyState;
  /** @type {HTMLTemplateElement} */
  #template;
  /** @type {Reader} */
  #reader;
  /** Own items by cid, pending or confirmed. @type {Map<string, HTMLLIElement>} */
  #byCid = new Map();
  /** @type {HTMLLIElement | null} */
  #divider = null;
  /** Where the scroller was when this log was last in view (see `view_pane.js`). */
  saved = { top: 0, stuck: true };
  /** "X left" lines by user id, to take back when X comes straight back. @type {Map<string,
   *   { li: HTMLLIElement, name: string, at: number }>} */
  #leftLines = new Map();

  /**
   * @param {string} room
   * @param {{ log: HTMLTemplateElement, item: HTMLTemplateElement }} templates
   * @param {Reader} reader
   */
  constructor(room, templates, reader) {
    this.room = room;
    this.root = /** @type {HTMLElement} */ (
      /** @type {Element} */ (templates.log.content.firstElementChild).cloneNode(true)
    );
    this.root.dataset.room = room;
    this.list = /** @type {HTMLOListElement} */ (this.root.querySelector("ol"));
    this.loadOlder = /** @type {HTMLButtonElement} */ (this.root.querySelector(".load-older"));
    this.#historyState = part(this.root, ".history-state");
    this.#template = templates.item;
    this.#reader = reader;
  }

  /** The unread divider, when there is one. */
  get divider() {
    return this.#divider?.isConnected ? this.#divider : null;
  }

  /**
   * Removes every confirmed message and notice; own unconfirmed items stay.
   *
   * @param {string} [notice] Shown in their place, when given.
   */
  reset(notice) {
    for (const li of [...this.list.children]) {
      const item = /** @type {HTMLLIElement} */ (li);
      if (item.dataset.state === "pending" || item.dataset.state === "failed") continue;
      item.remove();
      if (item.dataset.cid) this.#byCid.delete(item.dataset.cid);
    }
    this.#divider = null;
    if (notice) this.addNotice(notice, "gap");
    this.#layout();
  }

  /**
   * Shows an outbox entry as an own item at the bottom.
   *
   * @param {{ cid: string, text: string, ts: number, state: string, replyTo?: number,
   *   files?: import("./conversation.js").Attachment[] }} entry
   * @param {string} name The sender's name.
   * @param {MessageState} [quoted] The message it answers, when known.
   */
  showPending(entry, name, quoted) {
    const state = {
      id: 0,
      cid: entry.cid,
      userId: this.#reader.myId,
      name,
      text: entry.text,
      ts: entry.ts,
      edited: false,
      deleted: false,
      reactions: [],
      attachments: entry.files ?? [],
      ...(entry.replyTo ? { replyTo: entry.replyTo } : {}),
    };
    const li = buildItem(this.#template, state, this.#reader, { own: true, quoted });
    this.#byCid.set(entry.cid, li);
    this.list.append(li);
    if (entry.state === "failed") setItemState(li, "failed", "Not sent.");
    else setItemState(li, "pending");
    this.#layout();
  }

  /**
   * The own item `cid` is stored as message `id`: it moves up among the
   * confirmed messages.
   *
   * @param {string} cid
   * @param {number} id
   */
  markSent(cid, id) {
    const li = this.#byCid.get(cid);
    if (!li || li.dataset.state === "sent") return;
    li.dataset.id = String(id);
    setItemState(li, "sent");
    this.#insert(li, id);
    this.#layout();
  }

  /** @param {string} cid @param {string} reason */
  markFailed(cid, reason) {
    const li = this.#byCid.get(cid);
    if (li) setItemState(li, "failed", reason);
  }

  /** @param {string} cid */
  markPending(cid) {
    const li = this.#byCid.get(cid);
    if (li) setItemState(li, "pending");
  }

  /** Removes an unconfirmed own item (discarded). @param {string} cid */
  drop(cid) {
    const li = this.#byCid.get(cid);
    if (li && li.dataset.state !== "sent") {
      li.remove();
      this.#byCid.delete(cid);
      this.#layout();
    }
  }

  /**
   * Shows a message from the server (each comes once, in id order). An own
   * message already shown from the outbox is updated in place. An `unseen`
   * one (someone else's, while this room is out of view, the tab hidden or
   * the list scrolled up) starts the unread part, if it has not started.
   *
   * @param {MessageState} state
   * @param {{ own: boolean, quoted?: MessageState, unseen?: boolean }} options
   * @returns {HTMLLIElement}
   */
  addMessage(state, { own, quoted, unseen = false }) {
    const mine = own && state.cid ? this.#byCid.get(state.cid) : undefined;
    if (mine) {
      fillItem(mine, state, this.#reader, quoted);
      this.markSent(/** @type {string} */ (state.cid), state.id);
      return mine;
    }
    const li = buildItem(this.#template, state, this.#reader, { own, quoted });
    setItemState(li, "sent");
    if (own && state.cid) this.#byCid.set(state.cid, li);
    this.#insert(li, state.id);
    if (unseen && !this.divider) this.#addDivider(li);
    this.#layout();
    return li;
  }

  /**
   * Prepends a page of older messages (oldest first) above everything shown.
   * The pane keeps what is on screen where it is.
   *
   * @param {MessageState[]} states
   * @param {(state: MessageState) => MessageState | undefined} quotedOf
   * @param {{ id: number, text: string }[]} [notices] Moderation notices of the page.
   */
  addOlder(states, quotedOf, notices = []) {
    const fragment = document.createDocumentFragment();
    const byId = [...states, ...notices].sort((a, b) => a.id - b.id);
    for (const entry of byId) {
      if ("text" in entry && !("userId" in entry)) {
        if (!this.#modNotice(entry.id)) fragment.append(modNotice(entry.id, entry.text));
        continue;
      }
      const state = /** @type {MessageState} */ (entry);
      if (this.item(state.id)) continue;
      const li = buildItem(this.#template, state, this.#reader, {
        own: state.userId === this.#reader.myId,
        quoted: quotedOf(state),
      });
      setItemState(li, "sent");
      fragment.append(li);
    }
    this.list.insertBefore(fragment, this.list.firstChild);
    // Replies shown earlier whose original just arrived get their quote.
    for (const state of states) this.refreshQuotes(state);
    this.#layout();
  }

  /**
   * Shows a message's new state (an edit, a delete, a reaction).
   *
   * @param {MessageState} state
   * @param {MessageState} [quoted]
   */
  update(state, quoted) {
    const li = this.item(state.id);
    if (li) fillItem(li, state, this.#reader, quoted);
    this.refreshQuotes(state);
  }

  /**
   * Fills every confirmed message again (the block list changed).
   *
   * @param {(id: number) => MessageState | undefined} stateOf
   */
  refill(stateOf) {
    for (const li of this.list.querySelectorAll("li.message[data-id]")) {
      const item = /** @type {HTMLLIElement} */ (li);
      const state = stateOf(Number(item.dataset.id));
      if (!state) continue;
      fillItem(item, state, this.#reader, state.replyTo ? stateOf(state.replyTo) : undefined);
    }
    this.#layout();
  }

  /**
   * A moderation event's one-line notice, at its place in the sequence
   * (once per event id).
   *
   * @param {number} id
   * @param {string} text
   */
  addModNotice(id, text) {
    if (this.#modNotice(id)) return;
    this.#insert(modNotice(id, text), id);
    this.#layout();
  }

  /** @param {number} id */
  #modNotice(id) {
    return this.list.querySelector(`li.mod-notice[data-id="${id}"]`);
  }

  /** Updates the quotes of the replies to `state`. @param {MessageState} state */
  refreshQuotes(state) {
    for (const li of this.list.querySelectorAll(`li.message[data-reply-to="${state.id}"]`)) {
      fillQuote(/** @type {HTMLLIElement} */ (li), state, this.#reader.myId);
      li.classList.toggle(
        "mentions-me",
        li.classList.contains("mentions-me") || /** @type {HTMLElement} */ (li).dataset
              .replyToMe === "true",
      );
    }
  }

  /** The item of message `id`, or null. @param {number} id */
  item(id) {
    return /** @type {HTMLLIElement | null} */ (
      this.list.querySelector(`li.message[data-id="${id}"]`)
    );
  }

  /**
   * The top of the list: a button to load older messages, or why there are
   * none.
   *
   * @param {{ hasMore: boolean, loading?: boolean, oldestId?: number, error?: string,
   *   unknown?: boolean }} state `unknown`: not joined yet, nothing to say.
   */
  setHistory({ hasMore, loading = false, oldestId = 1, error = "", unknown = false }) {
    const button = this.loadOlder;
    if (unknown) {
      button.hidden = true;
      this.#historyState.textContent = "";
      return;
    }
    button.hidden = !hasMore;
    // aria-disabled, not disabled: a focused button keeps the focus while a page loads.
    button.setAttribute("aria-disabled", String(loading));
    button.textContent = loading ? "Loading older messages…" : "Load older messages";
    this.#historyState.textContent = error
      ? error
      : hasMore
      ? ""
      : oldestId > 1
      ? "Older messages are no longer kept: the server keeps the newest 1,000 of a room."
      : "This is the beginning of the room.";
  }

  /**
   * Adds a line such as "bob joined" after the newest confirmed message.
   *
   * @param {string} text
   * @param {string} [className]
   * @returns {HTMLLIElement}
   */
  addNotice(text, className = "notice") {
    const li = document.createElement("li");
    li.className = className;
    li.textContent = text;
    this.list.insertBefore(li, this.list.querySelector(UNCONFIRMED));
    this.#layout();
    return li;
  }

  /**
   * A line for someone who came, went or took another name ("bob joined",
   * "ada is now ada2"). A reconnect adds nothing: a join of someone listed
   * (`repeat`) is no news, and a "left" line is taken back when the member
   * comes straight back under the same name.
   *
   * @param {{ event: string, member: { id: string, name: string }, repeat?: boolean,
   *   previous?: string }} presence
   * @param {string} myId This tab's user id: its own joins and leaves are not shown.
   */
  presence({ event, member, repeat, previous }, myId) {
    if (event === "rename") {
      return void this.addNotice(`${previous ?? "someone"} is now ${member.name}`);
    }
    if (member.id === myId || repeat) return;
    const left = this.#leftLines.get(member.id);
    this.#leftLines.delete(member.id);
    if (
      event === "join" && left && left.name === member.name && left.li.isConnected &&
      Date.now() - left.at < REJOIN_MS
    ) {
      left.li.remove();
      return this.#layout();
    }
    const li = this.addNotice(`${member.name} ${event === "join" ? "joined" : "left"}`);
    if (event === "leave") {
      this.#leftLines.set(member.id, { li, name: member.name, at: Date.now() });
    }
  }

  /** Shows `name` as the sender of the own items not confirmed yet. @param {string} name */
  setOwnName(name) {
    for (const li of this.list.querySelectorAll(UNCONFIRMED)) {
      part(li, ".sender").textContent = name;
    }
  }

  /** Takes the unread divider away (you wrote something: you have read up to here). */
  clearDivider() {
    this.#divider?.remove();
    this.#divider = null;
    this.#layout();
  }

  /**
   * Puts the unread divider over the first message from someone else after
   * `readId` (none when there is no such message).
   *
   * @param {number} readId
   */
  placeDivider(readId) {
    const first = this.#firstUnread(readId, "li.message:not(.own)");
    if (!first) return;
    if (this.divider?.nextElementSibling === first) return;
    this.#addDivider(first);
    this.#layout();
  }

  /**
   * The first message after `readId` that mentions this tab or answers it.
   *
   * @param {number} readId
   */
  firstUnreadMention(readId) {
    return this.#firstUnread(readId, "li.message.mentions-me:not(.own)");
  }

  /**
   * @param {number} readId
   * @param {string} selector
   * @returns {HTMLLIElement | null}
   */
  #firstUnread(readId, selector) {
    for (const li of this.list.querySelectorAll(selector)) {
      if (Number(/** @type {HTMLElement} */ (li).dataset.id) > readId) {
        return /** @type {HTMLLIElement} */ (li);
      }
    }
    return null;
  }

  /**
   * Puts a confirmed item in id order, above the unconfirmed ones. Notices
   * and the divider stay where they were put, between the messages around
   * them.
   *
   * @param {HTMLLIElement} li
   * @param {number} id
   */
  #insert(li, id) {
    /** @type {Element | null} */
    let before = [...this.list.querySelectorAll(UNCONFIRMED)].find((e) => e !== li) ?? null;
    let previous = before ? before.previousElementSibling : this.list.lastElementChild;
    for (; previous; previous = previous.previousElementSibling) {
      if (previous === li || !previous.matches("li.message")) continue;
      if (Number(previous.getAttribute("data-id")) < id) break;
      before = previous;
    }
    if (before !== li) this.list.insertBefore(li, before);
  }

  /** @param {HTMLLIElement} before */
  #addDivider(before) {
    this.#divider?.remove();
    const li = document.createElement("li");
    li.className = "unread-divider";
    li.textContent = "New messages";
    this.list.insertBefore(li, before);
    this.#divider = li;
  }

  /**
   * Date separators between days, and groups: a message that follows one of
   * the same sender within {@linkcode GROUP_MS}, with nothing in between,
   * shows no name and time of its own (they stay for screen readers). A run
   * of blocked users' messages shows as its first one, which counts them.
   */
  #layout() {
    for (const day of this.list.querySelectorAll(":scope > li.day")) day.remove();
    /** @type {HTMLElement | null} */
    let previous = null;
    let lastDay = "";
    /** The first message of the current run of blocked ones, and how many follow it. */
    let run = /** @type {{ li: HTMLElement, count: number } | null} */ (null);
    const endRun = () => {
      if (run) {
        part(run.li, ".blocked-note").textContent = run.count === 1
          ? "1 message from a blocked user"
          : `${run.count} messages from a blocked user`;
      }
      run = null;
    };
    for (const child of [...this.list.children]) {
      const li = /** @type {HTMLElement} */ (child);
      if (!li.matches("li.message")) {
        previous = null;
        if (!li.matches("li.day")) endRun();
        continue;
      }
      const blocked = li.dataset.blocked === "true";
      li.classList.toggle("blocked-more", blocked && run !== null);
      if (blocked && run) run.count++;
      else if (blocked) run = { li, count: 1 };
      else endRun();
      const ts = Number(li.dataset.ts);
      const key = dayKey(ts);
      if (key !== lastDay) {
        const day = document.createElement("li");
        day.className = "day";
        day.textContent = dayLabel(ts);
        // Above the unread divider when that is right above the message.
        const above = this.#divider && li.previousElementSibling === this.#divider
          ? this.#divider
          : li;
        this.list.insertBefore(day, above);
        lastDay = key;
        previous = null;
      }
      const grouped = previous !== null && previous.dataset.user === li.dataset.user &&
        previous.dataset.state === li.dataset.state && !blocked &&
        ts - Number(previous.dataset.ts) < GROUP_MS;
      li.classList.toggle("grouped", grouped);
      previous = blocked ? null : li;
    }
    endRun();
  }
}

/**
 * A moderation event's line.
 *
 * @param {number} id
 * @param {string} text
 */
function modNotice(id, text) {
  const li = document.createElement("li");
  li.className = "notice mod-notice";
  li.dataset.id = String(id);
  li.textContent = text;
  return li;
}
