/**
 * Emoji in the page: a picker (a searchable grid of emoji: type to search,
 * arrows move, Enter picks, Escape closes, the focus goes back where it
 * was), used by the composer's Emoji button and by a message menu's "More
 * reactions", and `:shortcode:` completion in the composer (a list of
 * suggestions under the caret's word: ↑/↓ move, Tab or Enter takes one,
 * Escape closes it). Built with DOM nodes only; the search is `emoji.js`'s.
 *
 * @module
 */

import { completeShortcode, searchEmoji } from "./emoji.js";
import { EMOJI } from "./emoji_data.js";

/** How many emoji the picker shows at once. */
const SHOWN = 80;
/** Emoji per row of the grid (the CSS grid has as many columns). */
export const PICKER_COLUMNS = 8;
/** The emoji shown before anything is typed: the first ones (faces, hands, hearts). */
const FIRST = EMOJI.slice(0, SHOWN).map(([emoji, name]) => ({ emoji, name }));

let ids = 0;

/**
 * The picker: one element, opened near the control that asked for it.
 */
export class EmojiPicker {
  /** @type {HTMLElement} */
  #root;
  /** @type {HTMLInputElement} */
  #search;
  /** @type {HTMLElement} */
  #grid;
  /** @type {HTMLElement} */
  #count;
  /** @type {{ emoji: string, name: string }[]} */
  #shown = [];
  #active = 0;
  /** @type {((emoji: string) => void) | null} */
  #onPick = null;
  /** @type {HTMLElement | null} */
  #returnTo = null;

  constructor() {
    const id = `emoji-picker-${++ids}`;
    this.#root = document.createElement("div");
    this.#root.className = "emoji-picker";
    this.#root.id = id;
    this.#root.setAttribute("role", "dialog");
    this.#root.setAttribute("aria-label", "Emoji");
    this.#root.hidden = true;
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = `${id}-search`;
    label.textContent = "Search emoji";
    this.#search = document.createElement("input");
    this.#search.type = "search";
    this.#search.id = `${id}-search`;
    this.#search.placeholder = "Search emoji…";
    this.#search.autocomplete = "off";
    this.#search.spellcheck = false;
    this.#search.setAttribute("role", "combobox");
    this.#search.setAttribute("aria-expanded", "true");
    this.#search.setAttribute("aria-autocomplete", "list");
    this.#search.setAttribute("aria-controls", `${id}-grid`);
    this.#search.setAttribute("aria-describedby", `${id}-help`);
    const help = document.createElement("p");
    help.id = `${id}-help`;
    help.className = "visually-hidden";
    help.textContent = "Arrow keys move in the grid, Enter picks, Escape closes.";
    this.#grid = document.createElement("div");
    this.#grid.id = `${id}-grid`;
    this.#grid.className = "emoji-grid";
    this.#grid.setAttribute("role", "listbox");
    this.#grid.setAttribute("aria-label", "Emoji");
    this.#count = document.createElement("p");
    this.#count.className = "emoji-count";
    this.#count.setAttribute("role", "status");
    this.#root.append(label, this.#search, help, this.#grid, this.#count);
    document.body.append(this.#root);

    this.#search.addEventListener("input", () => this.#fill());
    this.#search.addEventListener("keydown", (event) => this.#onKey(event));
    this.#grid.addEventListener("click", (event) => {
      const option = /** @type {HTMLElement} */ (event.target).closest('[role="option"]');
      if (option) this.#pick(Number(/** @type {HTMLElement} */ (option).dataset.index));
    });
    // A pointer press in the grid keeps the focus in the search box.
    this.#grid.addEventListener("mousedown", (event) => event.preventDefault());
    document.addEventListener("pointerdown", (event) => {
      const target = /** @type {Node} */ (event.target);
      if (this.open && !this.#root.contains(target) && !this.#returnTo?.contains(target)) {
        this.close(false);
      }
    });
  }

  /** True while open. */
  get open() {
    return !this.#root.hidden;
  }

  /**
   * Opens the picker by `anchor` (the control that asked; it gets the focus
   * back); `onPick` gets the emoji picked. Asking again from the same
   * control closes it.
   *
   * @param {HTMLElement} anchor
   * @param {(emoji: string) => void} onPick
   * @param {{ label?: string }} [options] What the picker is for ("Emoji", "React with").
   */
  toggle(anchor, onPick, { label = "Emoji" } = {}) {
    if (this.open && this.#returnTo === anchor) return this.close(true);
    this.#onPick = onPick;
    this.#returnTo = anchor;
    // Only a control that says it opens this dialog says whether it is open.
    if (anchor.getAttribute("aria-haspopup") === "dialog") {
      anchor.setAttribute("aria-expanded", "true");
    }
    this.#root.setAttribute("aria-label", label);
    this.#search.value = "";
    this.#fill();
    this.#root.hidden = false;
    this.#place(anchor);
    this.#search.focus();
  }

  /** Closes the picker; `refocus` gives the focus back to its control. */
  close(refocus = true) {
    if (!this.open) return;
    this.#root.hidden = true;
    const anchor = this.#returnTo;
    if (anchor?.getAttribute("aria-haspopup") === "dialog") {
      anchor.setAttribute("aria-expanded", "false");
    }
    this.#returnTo = null;
    this.#onPick = null;
    if (refocus && anchor?.isConnected) anchor.focus();
  }

  /** @param {HTMLElement} anchor */
  #place(anchor) {
    const rect = anchor.getBoundingClientRect();
    const box = this.#root.getBoundingClientRect();
    const left = Math.max(8, Math.min(rect.left, innerWidth - box.width - 8));
    const above = rect.top - box.height - 6;
    const top = above >= 8 ? above : Math.min(rect.bottom + 6, innerHeight - box.height - 8);
    this.#root.style.left = `${Math.round(left)}px`;
    this.#root.style.top = `${Math.round(Math.max(8, top))}px`;
  }

  #fill() {
    const query = this.#search.value.trim();
    this.#shown = query ? searchEmoji(query, SHOWN) : FIRST;
    this.#active = 0;
    const base = this.#grid.id;
    this.#grid.replaceChildren(...this.#shown.map(({ emoji, name }, index) => {
      const option = document.createElement("span");
      option.id = `${base}-${index}`;
      option.className = "emoji-option";
      option.setAttribute("role", "option");
      option.setAttribute("aria-label", name);
      option.setAttribute("aria-selected", "false");
      option.title = name;
      option.dataset.index = String(index);
      option.dataset.emoji = emoji;
      option.textContent = emoji;
      return option;
    }));
    this.#count.textContent = query
      ? this.#shown.length ? `${this.#shown.length} emoji found` : "No emoji found"
      : "";
    this.#activate(0);
  }

  /** @param {number} index */
  #activate(index) {
    if (!this.#shown.length) {
      this.#search.removeAttribute("aria-activedescendant");
      return;
    }
    this.#active = Math.max(0, Math.min(index, this.#shown.length - 1));
    for (const option of this.#grid.children) option.setAttribute("aria-selected", "false");
    const option = /** @type {HTMLElement} */ (this.#grid.children[this.#active]);
    option.setAttribute("aria-selected", "true");
    option.scrollIntoView({ block: "nearest" });
    this.#search.setAttribute("aria-activedescendant", option.id);
  }

  /** @param {number} index */
  #pick(index) {
    const choice = this.#shown[index];
    const onPick = this.#onPick;
    if (!choice || !onPick) return;
    this.close(true);
    onPick(choice.emoji);
  }

  /** @param {KeyboardEvent} event */
  #onKey(event) {
    const moves = /** @type {Record<string, number>} */ ({
      ArrowRight: 1,
      ArrowLeft: -1,
      ArrowDown: PICKER_COLUMNS,
      ArrowUp: -PICKER_COLUMNS,
    });
    if (event.key in moves) {
      // Left and right move the caret while there is text to move in... unless the grid is used.
      event.preventDefault();
      this.#activate(this.#active + moves[event.key]);
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.#pick(this.#active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.close(true);
    } else if (event.key === "Tab") {
      this.close(false);
    }
  }
}

/**
 * `:shortcode` completion for a text box: while the word before the caret is
 * `:` and two or more letters, a list of matching emoji shows; ↑/↓ move,
 * Tab or Enter takes one (it replaces the word), Escape closes the list.
 */
export class ShortcodeCompletion {
  /** @type {HTMLTextAreaElement} */
  #input;
  /** @type {HTMLElement} */
  #list;
  /** @type {HTMLElement} */
  #live;
  /** @type {ReturnType<typeof completeShortcode>} */
  #match = null;
  #active = 0;
  /** The text the list was closed on with Escape: not offered again until it changes. */
  #dismissed = "";

  /**
   * @param {HTMLTextAreaElement} input
   * @param {HTMLElement} keys An ancestor of `input` whose keys are seen first (the form), so
   *   Enter takes a suggestion rather than sending.
   */
  constructor(input, keys) {
    this.#input = input;
    const id = `${input.id}-emoji`;
    this.#list = document.createElement("ul");
    this.#list.id = id;
    this.#list.className = "emoji-suggestions";
    this.#list.setAttribute("role", "listbox");
    this.#list.setAttribute("aria-label", "Emoji suggestions");
    this.#list.hidden = true;
    this.#live = document.createElement("p");
    this.#live.className = "visually-hidden";
    this.#live.setAttribute("aria-live", "polite");
    keys.before(this.#list, this.#live);
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", id);
    input.addEventListener("input", () => this.#update());
    input.addEventListener("click", () => this.#update());
    input.addEventListener("blur", () => this.#close());
    this.#list.addEventListener("mousedown", (event) => event.preventDefault());
    this.#list.addEventListener("click", (event) => {
      const option = /** @type {HTMLElement} */ (event.target).closest('[role="option"]');
      if (option) this.#take(Number(/** @type {HTMLElement} */ (option).dataset.index));
    });
    keys.addEventListener("keydown", (event) => {
      if (event.target !== input || !this.#match || event.isComposing) return;
      const count = this.#match.matches.length;
      const stop = () => {
        event.preventDefault();
        event.stopPropagation();
      };
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        stop();
        this.#activate((this.#active + (event.key === "ArrowDown" ? 1 : -1) + count) % count);
      } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
        if (event.shiftKey) return;
        stop();
        this.#take(this.#active);
      } else if (event.key === "Escape") {
        stop();
        this.#dismissed = input.value;
        this.#close();
      }
    }, { capture: true });
  }

  /** True while suggestions show. */
  get open() {
    return this.#match !== null;
  }

  #update() {
    const input = this.#input;
    const match = input.selectionStart === input.selectionEnd && input.value !== this.#dismissed
      ? completeShortcode(input.value, input.selectionStart)
      : null;
    if (!match) return this.#close();
    const same = this.#match?.query === match.query;
    this.#match = match;
    if (!same) this.#active = 0;
    this.#list.replaceChildren(...match.matches.map((info, index) => {
      const li = document.createElement("li");
      li.id = `${this.#list.id}-${index}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.index = String(index);
      const emoji = document.createElement("span");
      emoji.className = "emoji-glyph";
      emoji.textContent = info.emoji;
      const code = document.createElement("span");
      code.textContent = `:${info.shortcodes[0] ?? info.name}:`;
      li.append(emoji, " ", code);
      return li;
    }));
    this.#list.hidden = false;
    this.#activate(Math.min(this.#active, match.matches.length - 1));
    if (!same) {
      this.#live.textContent = `${match.matches.length} emoji: ${
        match.matches[0].name
      }. Tab or Enter takes it.`;
    }
  }

  /** @param {number} index */
  #activate(index) {
    this.#active = index;
    for (const li of this.#list.children) li.setAttribute("aria-selected", "false");
    const li = this.#list.children[index];
    li?.setAttribute("aria-selected", "true");
    if (li) this.#input.setAttribute("aria-activedescendant", li.id);
  }

  /** @param {number} index */
  #take(index) {
    const match = this.#match;
    const info = match?.matches[index];
    if (!match || !info) return;
    this.#input.setRangeText(info.emoji, match.start, match.end, "end");
    this.#close();
    this.#input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  #close() {
    this.#match = null;
    this.#list.hidden = true;
    this.#list.replaceChildren();
    this.#input.removeAttribute("aria-activedescendant");
  }
}

/**
 * Puts `text` in `input` at the caret (over the selection), then tells the
 * box it changed (so its draft is kept).
 *
 * @param {HTMLTextAreaElement} input
 * @param {string} text
 */
export function insertAtCaret(input, text) {
  input.setRangeText(text, input.selectionStart, input.selectionEnd, "end");
  input.dispatchEvent(new Event("input", { bubbles: true }));
  input.focus();
}
