/**
 * A message's actions menu: the reactions, Reply, for your own messages Edit
 * and Delete; for someone else's, Message (a direct conversation), Report,
 * Block (Unblock), and for moderators Delete, Kick, Mute and Ban, each named
 * with the person ("Mute bob…"). A blocked user's message offers Unblock
 * only. One menu element, moved into the message it is opened on. Keyboard:
 * arrows move, Home/End, Enter picks, Escape or Tab closes and focus goes
 * back to the message.
 *
 * @module
 */

import { menuItems, onMenuKey } from "./menu_keys.js";

/**
 * What a message's menu does (`more`: react with any emoji, from the picker).
 *
 * @typedef {"reply" | "edit" | "delete" | "react" | "more" | "message" | "report" | "block" |
 *   "kick" | "mute" | "ban"} MenuAction
 */

/**
 * What the menu offers on a message.
 *
 * @typedef {{ own: boolean, reacted: string[], name?: string, blocked?: boolean,
 *   direct?: boolean, moderate?: boolean, remove?: boolean }} MenuOptions `moderate`: you may
 *   kick, mute and ban its author; `remove`: you may delete it as a moderator.
 */

/** The actions menu. */
export class MessageMenu {
  /** @type {HTMLElement} */
  #menu;
  /** @type {HTMLLIElement | null} */
  #li = null;
  #id = 0;

  /**
   * @param {HTMLElement} menu The `role="menu"` element.
   * @param {{ onPick: (action: MenuAction, id: number, emoji?: string) => void }} handlers
   */
  constructor(menu, { onPick }) {
    this.#menu = menu;
    menu.addEventListener("click", (event) => {
      const item = /** @type {HTMLElement | null} */ (
        /** @type {Element} */ (event.target).closest('[role="menuitem"]')
      );
      if (!item) return;
      const id = this.#id;
      const emoji = item.dataset.emoji;
      const action = /** @type {MenuAction | undefined} */ (item.dataset.action);
      // Edit, reply and a conversation move the focus; a dialog gives it back to the message.
      this.close(
        !(action === "edit" || action === "reply" || action === "message" || action === "more"),
      );
      if (emoji) onPick("react", id, emoji);
      else if (action) onPick(action, id);
    });
    menu.addEventListener(
      "keydown",
      (event) => onMenuKey(event, this.#visible(), (refocus) => this.close(refocus)),
    );
    document.addEventListener("pointerdown", (event) => {
      const target = /** @type {Node} */ (event.target);
      if (this.#li && !menu.contains(target) && !this.#button()?.contains(target)) {
        this.close(false);
      }
    });
  }

  /** True while open. */
  get open() {
    return this.#li !== null;
  }

  /**
   * Opens the menu on message item `li` (message `id`). Opening it again on
   * the same message closes it.
   *
   * @param {HTMLLIElement} li
   * @param {number} id
   * @param {MenuOptions} options `reacted`: your reactions on it.
   */
  toggle(li, id, options) {
    if (this.#li === li) return this.close(true);
    this.close(false);
    this.#li = li;
    this.#id = id;
    const { own, reacted, name = "", blocked = false, direct = false } = options;
    const moderate = !own && options.moderate === true;
    /** @type {Record<string, { show: boolean, label?: string }>} */
    const offer = {
      reply: { show: !blocked },
      more: { show: !blocked },
      edit: { show: own },
      delete: {
        show: own || options.remove === true && !blocked,
        label: own ? "Delete" : "Delete…",
      },
      message: { show: !own && !blocked && !direct, label: `Message ${name}` },
      report: { show: !own && !blocked, label: "Report…" },
      block: { show: !own, label: `${blocked ? "Unblock" : "Block"} ${name}` },
      kick: { show: moderate, label: `Kick ${name}…` },
      mute: { show: moderate, label: `Mute ${name}…` },
      ban: { show: moderate, label: `Ban ${name}…` },
    };
    /** @type {HTMLElement} */ (this.#menu.querySelector(".emoji-row")).hidden = blocked;
    /** @type {HTMLElement} */ (this.#menu.querySelector('[data-group="mod"]')).hidden = !moderate;
    for (const item of menuItems(this.#menu)) {
      const action = item.dataset.action;
      if (action) {
        item.hidden = !offer[action]?.show;
        if (offer[action]?.label) item.textContent = /** @type {string} */ (offer[action].label);
      }
      if (item.dataset.emoji) {
        const on = reacted.includes(item.dataset.emoji);
        item.setAttribute("aria-label", `${on ? "Take back" : "React"} ${item.dataset.emoji}`);
        item.classList.toggle("on", on);
      }
    }
    li.classList.add("menu-open");
    // Under the message's text and reactions, inside its bubble.
    (li.querySelector(".failure") ?? li.lastElementChild)?.before(this.#menu);
    this.#menu.hidden = false;
    this.#button()?.setAttribute("aria-expanded", "true");
    this.#visible()[0]?.focus();
  }

  /**
   * Closes the menu.
   *
   * @param {boolean} [refocus] Put focus back on the message.
   */
  close(refocus = true) {
    const li = this.#li;
    if (!li) return;
    this.#button()?.setAttribute("aria-expanded", "false");
    li.classList.remove("menu-open");
    this.#menu.hidden = true;
    document.body.append(this.#menu);
    this.#li = null;
    if (refocus) li.focus();
  }

  #button() {
    return this.#li?.querySelector(".menu-button");
  }

  #visible() {
    return menuItems(this.#menu).filter((item) => !item.hidden && !item.closest("[hidden]"));
  }
}

/**
 * "Delete this message?": an in-page modal dialog (not `window.confirm`)
 * that quotes the message. Cancel is focused first; Escape cancels.
 */
export class DeleteDialog {
  /** @type {HTMLDialogElement} */
  #dialog;
  /** @type {HTMLElement} */
  #quote;
  /** @type {HTMLElement} */
  #cancel;
  /** @type {(() => void) | null} */
  #onConfirm = null;
  /** @type {HTMLElement | null} */
  #returnTo = null;

  /**
   * @param {{ dialog: HTMLDialogElement, quote: HTMLElement, cancel: HTMLElement }} parts
   */
  constructor({ dialog, quote, cancel }) {
    this.#dialog = dialog;
    this.#quote = quote;
    this.#cancel = cancel;
    dialog.addEventListener("close", () => {
      const confirm = dialog.returnValue === "delete" ? this.#onConfirm : null;
      this.#onConfirm = null;
      dialog.returnValue = "";
      if (this.#returnTo?.isConnected) this.#returnTo.focus();
      this.#returnTo = null;
      confirm?.();
    });
  }

  /** True while open. */
  get open() {
    return this.#dialog.open;
  }

  /**
   * Asks whether to delete a message with `text`; `onConfirm` runs on Delete.
   *
   * @param {string} text
   * @param {() => void} onConfirm
   * @param {HTMLElement | null} returnTo Focused again when the dialog closes.
   */
  ask(text, onConfirm, returnTo) {
    this.#quote.textContent = text;
    this.#onConfirm = onConfirm;
    this.#returnTo = returnTo;
    this.#dialog.returnValue = "";
    this.#dialog.showModal();
    this.#cancel.focus();
  }
}
