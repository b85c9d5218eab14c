/**
 * What every `role="menu"` of the page shares: its items, and its keyboard.
 * Arrows move (wrapping around), Home and End go to the ends, Escape closes
 * and gives the focus back, Tab closes and lets the focus move on, Enter and
 * Space pick with the item's own click.
 *
 * @example Usage
 * ```js
 * import { menuItems, onMenuKey } from "./menu_keys.js";
 * menu.addEventListener("keydown", (event) =>
 *   onMenuKey(event, menuItems(menu), (refocus) => close(refocus)));
 * ```
 *
 * @module
 */

/**
 * The menu's items, in document order.
 *
 * @param {ParentNode} menu
 * @returns {HTMLElement[]}
 */
export function menuItems(menu) {
  return [...menu.querySelectorAll('[role="menuitem"]')].map((
    item,
  ) => /** @type {HTMLElement} */ (item));
}

/**
 * Handles a key pressed in a menu.
 *
 * @param {KeyboardEvent} event
 * @param {HTMLElement[]} items The items that can take the focus, in order.
 * @param {(refocus: boolean) => void} close Closes the menu; `refocus` puts
 *   the focus back where the menu was opened from.
 */
export function onMenuKey(event, items, close) {
  const index = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
  /** @param {number} i */
  const go = (i) => {
    event.preventDefault();
    event.stopPropagation();
    items[(i + items.length) % items.length]?.focus();
  };
  switch (event.key) {
    case "ArrowDown":
    case "ArrowRight":
      return go(index + 1);
    case "ArrowUp":
    case "ArrowLeft":
      return go(index - 1);
    case "Home":
      return go(0);
    case "End":
      return go(items.length - 1);
    case "Escape":
      event.preventDefault();
      event.stopPropagation();
      return close(true);
    case "Tab":
      return close(false);
    case "Enter":
    case " ":
      // The item's own click; keep the page's shortcuts out of it.
      event.stopPropagation();
  }
}
