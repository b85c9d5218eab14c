/**
 * Search: a dialog opened with `/` (when not typing) or the header's Search
 * button. Typing searches the rooms of this tab (after a short pause); the
 * results list each message's room, time, sender and a snippet, newest
 * first, with "More results" while the server has more. Enter or a click on
 * a result jumps to the message in its room (`onJump`). Built with DOM nodes
 * only.
 *
 * @module
 */

import { parseFormatted, plainText } from "./format.js";
import { snippet } from "./message_item.js";

/** How long typing pauses before the search goes. */
const DEBOUNCE_MS = 250;

/**
 * The page's parts the view uses.
 *
 * @typedef {{ dialog: HTMLDialogElement, form: HTMLFormElement, input: HTMLInputElement,
 *   state: HTMLElement, list: HTMLUListElement, more: HTMLButtonElement,
 *   close: HTMLElement, opener: HTMLElement }} SearchParts
 */

/**
 * A search result, as the client's `search` event has it.
 *
 * @typedef {{ id: number, room: string, name: string, text: string, ts: number }} Found
 */

/** The search dialog. */
export class SearchView {
  /** @type {SearchParts} */
  #parts;
  /** @type {(q: string, before?: unknown) => string} */
  #search;
  /** @type {() => void} */
  #cancel;
  /** @type {(room: string) => string} */
  #label;
  #timer = 0;
  /** The cid of the search whose answer is awaited, "" when none. */
  #cid = "";
  /** The cursor for "More results". */
  #next = /** @type {unknown} */ (null);
  #query = "";

  /**
   * @param {SearchParts} parts
   * @param {{ search: (q: string, before?: unknown) => string, cancel: () => void,
   *   label: (room: string) => string, onJump: (room: string, id: number) => void }} handlers
   *   `search` asks the client (its cid comes back); `label` names a room ("#team", "@bob").
   */
  constructor(parts, { search, cancel, label, onJump }) {
    this.#parts = parts;
    this.#search = search;
    this.#cancel = cancel;
    this.#label = label;
    parts.opener.addEventListener("click", () => this.show());
    parts.close.addEventListener("click", () => parts.dialog.close());
    parts.dialog.addEventListener("close", () => {
      clearTimeout(this.#timer);
      this.#cid = "";
      this.#cancel();
    });
    parts.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#ask(true);
    });
    parts.input.addEventListener("input", () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#ask(false), DEBOUNCE_MS);
    });
    parts.input.addEventListener("keydown", (event) => {
      // ↓ from the box goes to the first result.
      if (event.key !== "ArrowDown") return;
      const first = /** @type {HTMLElement | null} */ (parts.list.querySelector("button"));
      if (first) {
        event.preventDefault();
        first.focus();
      }
    });
    parts.list.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      const buttons = [...parts.list.querySelectorAll("button")];
      const index = buttons.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
      if (index < 0) return;
      event.preventDefault();
      const next = index + (event.key === "ArrowDown" ? 1 : -1);
      if (next < 0) parts.input.focus();
      else buttons[Math.min(next, buttons.length - 1)].focus();
    });
    parts.list.addEventListener("click", (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest("button");
      if (!button?.dataset.room) return;
      parts.dialog.close();
      onJump(button.dataset.room, Number(button.dataset.id));
    });
    parts.more.addEventListener("click", () => {
      if (this.#next === null || !this.#query) return;
      this.#cid = this.#search(this.#query, this.#next);
      parts.more.disabled = true;
      parts.state.textContent = "Searching…";
    });
  }

  /** True while open. */
  get open() {
    return this.#parts.dialog.open;
  }

  /** Opens the search with the focus in its box (what was typed before is kept, selected). */
  show() {
    const { dialog, input } = this.#parts;
    if (!dialog.open) dialog.showModal();
    input.focus();
    input.select();
  }

  /**
   * The client's `search` event: shows the results (a first page replaces
   * the list, a next one adds to it), unless it answers an older search.
   *
   * @param {{ cid: string, q: string, first: boolean, results: Found[], hasMore: boolean,
   *   next: unknown }} answer
   */
  showResults(answer) {
    if (answer.cid !== this.#cid) return;
    this.#cid = "";
    const { list, more, state } = this.#parts;
    const items = answer.results.map((found) => this.#item(found));
    if (answer.first) list.replaceChildren(...items);
    else list.append(...items);
    this.#next = answer.hasMore ? answer.next : null;
    more.hidden = !answer.hasMore;
    more.disabled = false;
    const count = list.children.length;
    state.textContent = count === 0
      ? `No messages match “${answer.q}”.`
      : `${count}${answer.hasMore ? "+" : ""} ${
        count === 1 ? "message" : "messages"
      } match “${answer.q}”.`;
  }

  /**
   * A search was refused (`search-error`).
   *
   * @param {{ cid: string, message: string }} error
   */
  showError(error) {
    if (error.cid !== this.#cid) return;
    this.#cid = "";
    this.#parts.more.disabled = false;
    this.#parts.state.textContent = error.message;
  }

  /** @param {boolean} now Enter: search even when the words did not change. */
  #ask(now) {
    clearTimeout(this.#timer);
    const q = this.#parts.input.value.trim();
    if (!q) {
      this.#query = "";
      this.#cid = "";
      this.#cancel();
      this.#parts.list.replaceChildren();
      this.#parts.more.hidden = true;
      this.#parts.state.textContent = "";
      return;
    }
    if (q === this.#query && !now && this.#cid) return;
    this.#query = q;
    this.#cid = this.#search(q);
    this.#parts.state.textContent = "Searching…";
  }

  /** @param {Found} found */
  #item(found) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "search-result";
    button.dataset.room = found.room;
    button.dataset.id = String(found.id);
    const head = document.createElement("span");
    head.className = "search-head";
    const room = document.createElement("span");
    room.className = "search-room";
    room.textContent = this.#label(found.room);
    const name = document.createElement("span");
    name.className = "search-name";
    name.textContent = found.name;
    const time = document.createElement("time");
    const date = new Date(found.ts);
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleString(undefined, {
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
    head.append(room, " · ", name, " · ", time);
    const text = document.createElement("span");
    text.className = "search-text";
    text.dir = "auto";
    text.textContent = snippet(plainText(parseFormatted(found.text)));
    button.append(head, text);
    li.append(button);
    return li;
  }
}
