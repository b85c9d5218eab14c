/**
 * A small actions menu whose items are given each time it opens: a member's
 * actions in the member list (Message, Block, and for moderators Kick, Mute,
 * Ban). One `role="menu"` element, put right after the button that opens it.
 * Keyboard: arrows, Home and End move, Enter picks, Escape closes and gives
 * the focus back to the button, Tab closes.
 *
 * @module
 */

import { menuItems, onMenuKey } from "./menu_keys.js";

/**
 * One item: what it does (`action`), what it says, and whether it is
 * destructive; `group` starts a new group (a separator before it).
 *
 * @typedef {{ action: string, label: string, danger?: boolean, group?: boolean }} MenuItem
 */

/** A menu of actions. */
export class ActionMenu {
  /** @type {HTMLElement} */
  #menu;
  /** The button it was opened from. @type {HTMLElement | null} */
  #button = null;
  /** @type {(action: string) => void} */
  #pick = () => {};

  /** @param {HTMLElement} menu The `role="menu"` element. */
  constructor(menu) {
    this.#menu = menu;
    menu.addEventListener("click", (event) => {
      const item = /** @type {HTMLElement | null} */ (
        /** @type {Element} */ (event.target).closest('[role="menuitem"]')
      );
      if (!item?.dataset.action) return;
      const pick = this.#pick;
      this.close(false);
      pick(item.dataset.action);
    });
    menu.addEventListener(
      "keydown",
      (event) => onMenuKey(event, menuItems(menu), (refocus) => this.close(refocus)),
    );
    document.addEventListener("pointerdown", (event) => {
      const target = /** @type {Node} */ (event.target);
      if (this.#button && !menu.contains(target) && !this.#button.contains(target)) {
        this.close(false);
      }
    });
  }

  /** True while open. */
  get open() {
    return this.#button !== null;
  }

  /** The button the menu is open for, or null. */
  get button() {
    return this.#button;
  }

  /**
   * Opens the menu after `button` with `items`; `onPick` runs with the
   * picked item's action. Opening it again from the same button closes it.
   *
   * @param {HTMLElement} button
   * @param {MenuItem[]} items
   * @param {(action: string) => void} onPick
   */
  toggle(button, items, onPick) {
    if (this.#button === button) return this.close(true);
    this.close(false);
    this.#button = button;
    this.#pick = onPick;
    this.#menu.replaceChildren(...items.flatMap((item, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.setAttribute("role", "menuitem");
      b.dataset.action = item.action;
      b.textContent = item.label;
      if (item.danger) b.className = "danger-text";
      if (!item.group || i === 0) return [b];
      const separator = document.createElement("div");
      separator.setAttribute("role", "separator");
      separator.className = "menu-separator";
      return [separator, b];
    }));
    button.after(this.#menu);
    this.#menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    menuItems(this.#menu)[0]?.focus();
  }

  /**
   * Closes the menu.
   *
   * @param {boolean} [refocus] Put the focus back on its button.
   */
  close(refocus = true) {
    const button = this.#button;
    if (!button) return;
    this.#button = null;
    button.setAttribute("aria-expanded", "false");
    this.#menu.hidden = true;
    document.body.append(this.#menu);
    if (refocus && button.isConnected) button.focus();
  }
}
