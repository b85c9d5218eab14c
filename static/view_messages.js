/**
 * The message list: confirmed messages in id order, then this tab's own
 * unconfirmed ones (pending or failed) at the bottom, plus notices. Older
 * pages go on top without moving what you read; while you read higher up,
 * new messages get an unread divider and a "new messages ↓" button. Every
 * piece of user text goes in through `textContent` (links and mentions are
 * built as elements from `rich_text.js` parts).
 *
 * @module
 */

import { parseText } from "./rich_text.js";

const SCROLL_SLACK_PX = 40;
const UNCONFIRMED = 'li.message[data-state="pending"], li.message[data-state="failed"]';
const QUOTE_CHARS = 90;

/**
 * A message as the page shows it: a message's state (its changes applied),
 * or an unconfirmed outbox entry.
 *
 * @typedef {import("./conversation.js").MessageState} MessageState
 */

/**
 * What a message's actions do: `menu` opens its menu; the others act at once.
 *
 * @typedef {"menu" | "reply" | "edit" | "delete"} MessageAction
 */

/**
 * The element of a message item that `selector` names (the template has them all).
 *
 * @param {Element} li
 * @param {string} selector
 * @returns {HTMLElement}
 */
function part(li, selector) {
  return /** @type {HTMLElement} */ (li.querySelector(selector));
}

/** A short one-line version of `text`. @param {string} text */
export function snippet(text) {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > QUOTE_CHARS ? `${line.slice(0, QUOTE_CHARS - 1)}…` : line;
}

/** Renders the conversation into an `<ol>` inside a scrolling container. */
export class MessageView {
  /** @type {HTMLElement} */
  #scroller;
  /** @type {HTMLOListElement} */
  #list;
  /** @type {HTMLTemplateElement} */
  #template;
  /** @type {HTMLButtonElement} */
  #jump;
  /** @type {HTMLElement} */
  #announcer;
  /** @type {HTMLButtonElement} */
  #loadOlder;
  /** @type {HTMLElement} */
  #historyState;
  /** Own items by cid, pending or confirmed. @type {Map<string, HTMLLIElement>} */
  #byCid = new Map();
  /** @type {() => string[]} */
  #names;
  #myId = "";
  #myName = "";
  #unread = 0;
  /** @type {HTMLLIElement | null} */
  #divider = null;

  /**
   * @param {{ scroller: HTMLElement, list: HTMLOListElement, template: HTMLTemplateElement,
   *   jump: HTMLButtonElement, announcer: HTMLElement, loadOlder: HTMLButtonElement,
   *   historyState: HTMLElement }} parts
   * @param {{ names: () => string[], onOlder: () => void,
   *   onAction: (action: MessageAction, id: number, li: HTMLLIElement) => void,
   *   onReact: (id: number, emoji: string) => void, onQuote: (id: number) => void }} handlers
   *   `names` lists who can be mentioned; `onOlder` asks for older messages.
   */
  constructor(
    { scroller, list, template, jump, announcer, loadOlder, historyState },
    { names, onOlder, onAction, onReact, onQuote },
  ) {
    this.#scroller = scroller;
    this.#list = list;
    this.#template = template;
    this.#jump = jump;
    this.#announcer = announcer;
    this.#loadOlder = loadOlder;
    this.#historyState = historyState;
    this.#names = names;
    loadOlder.addEventListener("click", () => onOlder());
    // Reaching the top loads the page before it.
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !loadOlder.hidden) onOlder();
    }, { root: scroller, rootMargin: "200px 0px 0px 0px" }).observe(loadOlder);
    list.addEventListener("click", (event) => {
      const target = /** @type {Element} */ (event.target);
      const li = /** @type {HTMLLIElement | null} */ (target.closest("li.message"));
      const id = Number(li?.dataset.id);
      if (!li || !id) return;
      if (target.closest(".menu-button")) onAction("menu", id, li);
      else if (target.closest(".quote")) onQuote(Number(li.dataset.replyTo));
      else {
        const chip = /** @type {HTMLElement | null} */ (target.closest(".reaction"));
        if (chip?.dataset.emoji) onReact(id, chip.dataset.emoji);
      }
    });
    scroller.addEventListener("keydown", (event) => this.#onKey(event, onAction));
    scroller.addEventListener("scroll", () => {
      if (this.#nearEnd()) this.#setUnread(0);
      if (this.nearTop() && !loadOlder.hidden && !loadOlder.disabled) onOlder();
    }, { passive: true });
    jump.addEventListener("click", () => this.jumpToUnread());
  }

  /** This tab's user id and name: its messages are `own`, mentions of it stand out. */
  setMe(/** @type {string} */ id, /** @type {string} */ name) {
    this.#myId = id;
    this.#myName = name;
  }

  /** Empties the list (another room). */
  clear() {
    this.#byCid.clear();
    this.#divider = null;
    this.#setUnread(0);
    this.#list.replaceChildren();
  }

  /**
   * Removes every confirmed message and notice; own unconfirmed items stay.
   *
   * @param {string} [notice] Shown in their place, when given.
   */
  reset(notice) {
    for (const li of [...this.#list.children]) {
      const item = /** @type {HTMLLIElement} */ (li);
      if (item.dataset.state === "pending" || item.dataset.state === "failed") continue;
      item.remove();
      if (item.dataset.cid) this.#byCid.delete(item.dataset.cid);
    }
    this.#divider = null;
    this.#setUnread(0);
    if (notice) this.addNotice(notice, "gap");
  }

  /**
   * Shows an outbox entry as an own item at the bottom.
   *
   * @param {{ cid: string, text: string, ts: number, state: string, replyTo?: number }} entry
   * @param {string} name The sender's name.
   * @param {MessageState} [quoted] The message it answers, when known.
   */
  showPending(entry, name, quoted) {
    const li = this.#build(
      {
        id: 0,
        cid: entry.cid,
        userId: this.#myId,
        name,
        text: entry.text,
        ts: entry.ts,
        edited: false,
        deleted: false,
        reactions: [],
        ...(entry.replyTo ? { replyTo: entry.replyTo } : {}),
      },
      true,
      quoted,
    );
    this.#byCid.set(entry.cid, li);
    this.#follow(true, () => this.#list.append(li));
    if (entry.state === "failed") this.#setState(li, "failed", "Not sent.");
    else this.#setState(li, "pending");
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
    this.#setState(li, "sent");
    this.#insert(li, id);
  }

  /** @param {string} cid @param {string} reason */
  markFailed(cid, reason) {
    const li = this.#byCid.get(cid);
    if (li) this.#setState(li, "failed", reason);
  }

  /** @param {string} cid */
  markPending(cid) {
    const li = this.#byCid.get(cid);
    if (li) this.#setState(li, "pending");
  }

  /** Removes an unconfirmed own item (discarded). @param {string} cid */
  drop(cid) {
    const li = this.#byCid.get(cid);
    if (li && li.dataset.state !== "sent") {
      li.remove();
      this.#byCid.delete(cid);
    }
  }

  /**
   * Shows a message from the server (each comes once, in id order). An own
   * message already shown from the outbox is updated in place. A live
   * message from someone else, while you read higher up or the tab is
   * hidden, starts (or adds to) the unread part.
   *
   * @param {MessageState} state
   * @param {{ own: boolean, live?: boolean, quoted?: MessageState }} options
   */
  addMessage(state, { own, live = false, quoted }) {
    const mine = own && state.cid ? this.#byCid.get(state.cid) : undefined;
    if (mine) {
      this.#fill(mine, state, quoted);
      this.markSent(/** @type {string} */ (state.cid), state.id);
      return;
    }
    const li = this.#build(state, own, quoted);
    this.#setState(li, "sent");
    if (own && state.cid) this.#byCid.set(state.cid, li);
    const unseen = live && !own && (document.hidden || !this.#nearEnd());
    this.#follow(false, () => {
      this.#insert(li, state.id);
      if (unseen) {
        if (!this.#divider?.isConnected) this.#addDivider(li);
        this.#setUnread(this.#unread + 1);
      }
    });
    if (live && !own) this.#announcer.textContent = `${state.name}: ${state.text}`;
  }

  /**
   * Prepends a page of older messages (oldest first) above everything shown,
   * keeping what is on screen where it is.
   *
   * @param {MessageState[]} states
   * @param {(state: MessageState) => MessageState | undefined} quotedOf
   */
  addOlder(states, quotedOf) {
    const fragment = document.createDocumentFragment();
    for (const state of states) {
      if (this.#list.querySelector(`li.message[data-id="${state.id}"]`)) continue;
      const li = this.#build(state, state.userId === this.#myId, quotedOf(state));
      this.#setState(li, "sent");
      fragment.append(li);
    }
    const fromBottom = this.#scroller.scrollHeight - this.#scroller.scrollTop;
    this.#list.insertBefore(fragment, this.#list.firstChild);
    this.#scroller.scrollTop = this.#scroller.scrollHeight - fromBottom;
    // Replies shown earlier whose original just arrived get their quote.
    for (const state of states) this.#refreshQuotes(state);
  }

  /**
   * Shows a message's new state (an edit, a delete, a reaction).
   *
   * @param {MessageState} state
   */
  update(state) {
    const li = this.item(state.id);
    if (li) this.#follow(false, () => this.#fill(li, state));
    this.#refreshQuotes(state);
  }

  /** The item of message `id`, or null. @param {number} id */
  item(id) {
    return /** @type {HTMLLIElement | null} */ (
      this.#list.querySelector(`li.message[data-id="${id}"]`)
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
    if (unknown) {
      this.#loadOlder.hidden = true;
      this.#historyState.textContent = "";
      return;
    }
    this.#loadOlder.hidden = !hasMore;
    this.#loadOlder.disabled = loading;
    this.#loadOlder.textContent = loading ? "Loading older messages…" : "Load older messages";
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
    this.#follow(false, () => this.#list.insertBefore(li, this.#firstUnconfirmed()));
    return li;
  }

  /** Shows `name` as the sender of the own items not confirmed yet. @param {string} name */
  setOwnName(name) {
    this.#myName = name;
    for (const li of this.#list.querySelectorAll(UNCONFIRMED)) {
      part(li, ".sender").textContent = name;
    }
  }

  /** True when the top of the list (where older messages load) is in view, or nearly. */
  nearTop() {
    return this.#scroller.scrollTop < this.#list.offsetTop + 200;
  }

  /** Scrolls to the newest item. */
  scrollToEnd() {
    this.#scroller.scrollTop = this.#scroller.scrollHeight;
  }

  /** Takes the unread divider away (you wrote something: you have read up to here). */
  clearDivider() {
    this.#divider?.remove();
    this.#divider = null;
  }

  /** Scrolls to the first unread message, or to the end when it is in view already. */
  jumpToUnread() {
    const divider = this.#divider;
    if (divider?.isConnected && divider.offsetTop < this.#scroller.scrollTop) {
      this.#scroller.scrollTop = divider.offsetTop - this.#list.offsetTop;
    } else this.scrollToEnd();
    if (this.#nearEnd()) this.#setUnread(0);
  }

  /**
   * Scrolls message `id` into view, focuses it and marks it for a moment.
   * Returns false when it is not shown.
   *
   * @param {number} id
   */
  reveal(id) {
    const li = this.item(id);
    if (!li) return false;
    li.scrollIntoView({ block: "center" });
    li.classList.remove("flash");
    void li.offsetWidth; // restart the animation
    li.classList.add("flash");
    li.addEventListener("animationend", () => li.classList.remove("flash"), { once: true });
    li.focus({ preventScroll: true });
    return true;
  }

  /**
   * Puts a confirmed item in id order, above the unconfirmed ones.
   *
   * @param {HTMLLIElement} li
   * @param {number} id
   */
  #insert(li, id) {
    let before = this.#firstUnconfirmed();
    let previous = before ? before.previousElementSibling : this.#list.lastElementChild;
    while (previous && previous !== li && Number(previous.getAttribute("data-id")) > id) {
      before = previous;
      previous = previous.previousElementSibling;
    }
    if (before !== li) this.#list.insertBefore(li, before);
  }

  #firstUnconfirmed() {
    return this.#list.querySelector(UNCONFIRMED);
  }

  #nearEnd() {
    const s = this.#scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= SCROLL_SLACK_PX;
  }

  /** @param {HTMLLIElement} before */
  #addDivider(before) {
    this.#divider?.remove();
    const li = document.createElement("li");
    li.className = "unread-divider";
    li.textContent = "New messages";
    this.#list.insertBefore(li, before);
    this.#divider = li;
  }

  /** @param {number} count */
  #setUnread(count) {
    this.#unread = count;
    this.#jump.hidden = count === 0;
    this.#jump.textContent = count === 1 ? "1 new message ↓" : `${count} new messages ↓`;
  }

  /**
   * Runs `change`, then scrolls to the bottom if forced or if it was near it.
   *
   * @param {boolean} force
   * @param {() => void} change
   */
  #follow(force, change) {
    const near = this.#nearEnd() && !document.hidden;
    change();
    if (force || near) this.scrollToEnd();
  }

  /**
   * Clones the template and fills it.
   *
   * @param {MessageState} state
   * @param {boolean} own
   * @param {MessageState} [quoted]
   * @returns {HTMLLIElement}
   */
  #build(state, own, quoted) {
    const li = /** @type {HTMLLIElement} */ (
      /** @type {Element} */ (this.#template.content.firstElementChild).cloneNode(true)
    );
    if (state.id) li.dataset.id = String(state.id);
    if (state.cid) li.dataset.cid = state.cid;
    li.dataset.user = state.userId;
    li.classList.toggle("own", own);
    this.#fill(li, state, quoted);
    return li;
  }

  /**
   * Fills an item from a message's state.
   *
   * @param {HTMLLIElement} li
   * @param {MessageState} state
   * @param {MessageState} [quoted]
   */
  #fill(li, state, quoted) {
    part(li, ".sender").textContent = state.name;
    this.#fillTime(li, state.ts);
    const text = part(li, ".text");
    li.classList.toggle("deleted", state.deleted);
    part(li, ".edited").hidden = !state.edited || state.deleted;
    if (state.deleted) {
      text.textContent = "This message was deleted.";
      li.classList.remove("mentions-me");
    } else {
      const parts = parseText(state.text, [...this.#names(), this.#myName], this.#myName);
      text.replaceChildren(...parts.map((p) => {
        if (p.type === "link") {
          const a = document.createElement("a");
          a.href = p.href;
          a.rel = "noopener noreferrer";
          a.target = "_blank";
          a.textContent = p.text;
          return a;
        }
        if (p.type === "mention") {
          const span = document.createElement(p.me ? "mark" : "span");
          span.className = p.me ? "mention me" : "mention";
          span.textContent = p.text;
          return span;
        }
        return document.createTextNode(p.text);
      }));
      li.classList.toggle("mentions-me", parts.some((p) => p.type === "mention" && p.me));
    }
    part(li, ".menu-button").hidden = state.deleted;
    this.#fillReactions(li, state);
    if (state.replyTo) {
      li.dataset.replyTo = String(state.replyTo);
      if (quoted || !part(li, ".quote-text").textContent) this.#fillQuote(li, quoted);
    }
  }

  /**
   * @param {HTMLLIElement} li
   * @param {MessageState} state
   */
  #fillReactions(li, state) {
    const list = part(li, ".reactions");
    list.hidden = state.reactions.length === 0;
    list.replaceChildren(...state.reactions.map(({ emoji, users }) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reaction";
      button.dataset.emoji = emoji;
      const mine = users.some((u) => u.id === this.#myId);
      button.setAttribute("aria-pressed", String(mine));
      const names = users.map((u) => u.name).join(", ");
      button.title = `${names} reacted with ${emoji}`;
      button.setAttribute("aria-label", `${emoji} ${users.length}: ${names}`);
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = String(users.length);
      button.append(emoji, " ", count);
      item.append(button);
      return item;
    }));
  }

  /**
   * @param {HTMLLIElement} li
   * @param {MessageState} [quoted]
   */
  #fillQuote(li, quoted) {
    const quote = /** @type {HTMLButtonElement} */ (part(li, ".quote"));
    quote.hidden = false;
    quote.title = "Show the message this answers";
    part(quote, ".quote-name").textContent = quoted ? `↩ ${quoted.name}` : "↩";
    part(quote, ".quote-text").textContent = !quoted
      ? "an earlier message"
      : quoted.deleted
      ? "a deleted message"
      : snippet(quoted.text);
  }

  /** Updates the quotes of the replies to `state`. @param {MessageState} state */
  #refreshQuotes(state) {
    for (const li of this.#list.querySelectorAll(`li.message[data-reply-to="${state.id}"]`)) {
      this.#fillQuote(/** @type {HTMLLIElement} */ (li), state);
    }
  }

  /** @param {HTMLLIElement} li @param {number} ts */
  #fillTime(li, ts) {
    const date = new Date(Number.isFinite(ts) ? ts : Date.now());
    const time = /** @type {HTMLTimeElement} */ (part(li, "time"));
    time.dateTime = date.toISOString();
    time.title = date.toLocaleString();
    const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
    time.textContent = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  /**
   * Sets `data-state` (`pending`, `sent` or `failed`) and its visible label.
   *
   * @param {HTMLLIElement} li
   * @param {"pending" | "sent" | "failed"} state
   * @param {string} [reason] Shown when failed.
   */
  #setState(li, state, reason = "") {
    li.dataset.state = state;
    part(li, ".state-label").textContent = state === "sent" ? "" : state;
    part(li, ".failure-text").textContent = reason;
    part(li, ".failure").hidden = state !== "failed";
    part(li, ".menu-button").hidden = state !== "sent" || li.classList.contains("deleted");
  }

  /**
   * Keyboard: arrows move between messages; on a message, Enter opens its
   * actions, R replies, E edits and Delete deletes.
   *
   * @param {KeyboardEvent} event
   * @param {(action: MessageAction, id: number, li: HTMLLIElement) => void} onAction
   */
  #onKey(event, onAction) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = /** @type {HTMLElement} */ (event.target);
    const current = target.matches("li.message") ? /** @type {HTMLLIElement} */ (target) : null;
    const items = /** @type {HTMLLIElement[]} */ ([...this.#list.querySelectorAll("li.message")]);
    /** @param {HTMLLIElement | undefined} li */
    const go = (li) => {
      if (!li) return;
      event.preventDefault();
      li.focus();
    };
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (target !== this.#scroller && !current) return;
      const index = current ? items.indexOf(current) : -1;
      if (event.key === "ArrowUp") go(index < 0 ? items.at(-1) : items[Math.max(0, index - 1)]);
      else if (index >= 0) go(items[index + 1]);
      else go(items[0]);
      return;
    }
    if (!current) return;
    if (event.key === "Home") return go(items[0]);
    if (event.key === "End") return go(items.at(-1));
    const id = Number(current.dataset.id);
    if (!id || current.classList.contains("deleted")) return;
    const own = current.classList.contains("own");
    /** @type {MessageAction | ""} */
    const action = event.key === "Enter" || event.key === "ContextMenu"
      ? "menu"
      : event.key === "r" || event.key === "R"
      ? "reply"
      : (event.key === "e" || event.key === "E") && own
      ? "edit"
      : event.key === "Delete" && own
      ? "delete"
      : "";
    if (!action) return;
    event.preventDefault();
    onAction(action, id, current);
  }
}
