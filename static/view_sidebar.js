/**
 * The room sidebar: a `nav` named "Rooms" listing the rooms this tab has
 * joined, each a link to `#name` whose name says how many messages wait
 * ("3 unread", "1 mention"), the room in view marked `aria-current="page"`,
 * and a button to leave each; then, under "Direct messages", the tab's
 * conversations by the other person's name ("@bob, 1 unread"). Alt+↑ and
 * Alt+↓ move to the room above or below. At phone width it is a drawer,
 * opened from the header's "Rooms" button; Escape, a pick or a tap beside it
 * closes it.
 *
 * @module
 */

import { roomHref } from "./view_rooms.js";

/**
 * One joined room as the sidebar shows it: a direct conversation (`direct`)
 * is listed under "Direct messages" as `label` (the other person's name).
 *
 * @typedef {{ name: string, unread: number, mentions: number, joined: boolean,
 *   direct?: boolean, label?: string }} SidebarRoom
 */

/** The sidebar, and the drawer it becomes on a phone. */
export class Sidebar {
  /** @type {HTMLElement} */
  #nav;
  /** @type {HTMLUListElement} */
  #list;
  /** @type {HTMLUListElement} */
  #directList;
  /** @type {HTMLElement} */
  #directTitle;
  /** @type {HTMLButtonElement} */
  #toggle;
  /** @type {HTMLElement} */
  #toggleText;
  /** @type {HTMLElement} */
  #backdrop;
  /** The count on the phone's "Rooms" button (its hidden text says it in words). */
  #toggleBadge = Object.assign(document.createElement("span"), {
    className: "badge unread",
    hidden: true,
    ariaHidden: "true",
  });
  /** Each room's item, by name. @type {Map<string, { li: HTMLLIElement, link: HTMLAnchorElement,
   *   name: HTMLElement, unread: HTMLElement, mentions: HTMLElement, leave: HTMLButtonElement,
   *   direct: boolean }>} */
  #items = new Map();
  #current = "";

  /**
   * @param {{ nav: HTMLElement, list: HTMLUListElement, directList: HTMLUListElement,
   *   directTitle: HTMLElement, toggle: HTMLButtonElement, toggleText: HTMLElement,
   *   close: HTMLElement, backdrop: HTMLElement, add: HTMLElement }} parts
   * @param {{ onLeave: (room: string) => void, onAdd: () => void }} handlers
   */
  constructor(
    { nav, list, directList, directTitle, toggle, toggleText, close, backdrop, add },
    { onLeave, onAdd },
  ) {
    this.#nav = nav;
    this.#list = list;
    this.#directList = directList;
    this.#directTitle = directTitle;
    this.#toggle = toggle;
    this.#toggleText = toggleText;
    this.#backdrop = backdrop;
    toggle.append(this.#toggleBadge);
    toggle.addEventListener("click", () => this.setOpen(!this.open, true));
    nav.addEventListener("transitionend", (event) => {
      if (event.target === nav && event.propertyName === "transform") delete nav.dataset.sliding;
    });
    close.addEventListener("click", () => this.setOpen(false, true));
    backdrop.addEventListener("click", () => this.setOpen(false, false));
    add.addEventListener("click", () => {
      this.setOpen(false, false);
      onAdd();
    });
    const onClick = (/** @type {MouseEvent} */ event) => {
      const target = /** @type {Element} */ (event.target);
      const leave = /** @type {HTMLElement | null} */ (target.closest(".leave"));
      if (leave?.dataset.room) return onLeave(leave.dataset.room);
      if (target.closest("a")) this.setOpen(false, false);
    };
    list.addEventListener("click", onClick);
    directList.addEventListener("click", onClick);
    nav.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.open) {
        event.preventDefault();
        this.setOpen(false, true);
      } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
        event.preventDefault();
        this.#step(event.key === "ArrowUp" ? -1 : 1);
      }
    });
  }

  /** True while the drawer is open (phone width). */
  get open() {
    return this.#nav.dataset.open === "true";
  }

  /**
   * Opens or closes the drawer. Opening puts the focus on the room in view;
   * closing with `refocus` puts it back on the header's button.
   *
   * @param {boolean} open
   * @param {boolean} refocus
   */
  setOpen(open, refocus) {
    if (open === this.open) return;
    // It slides (unless motion is reduced) until its transform's transition ends.
    if (!matchMedia("(prefers-reduced-motion: reduce)").matches) this.#nav.dataset.sliding = "true";
    this.#nav.dataset.open = String(open);
    this.#toggle.setAttribute("aria-expanded", String(open));
    this.#backdrop.hidden = !open;
    if (open) (this.#items.get(this.#current)?.link ?? this.#nav).focus();
    else if (refocus) this.#toggle.focus();
  }

  /**
   * Shows the joined rooms, in order, `current` being the room in view. Items
   * are updated in place, so a focused link keeps the focus.
   *
   * @param {SidebarRoom[]} rooms
   * @param {string} current
   */
  render(rooms, current) {
    this.#current = current;
    const names = new Set(rooms.map((r) => r.name));
    for (const [name, item] of this.#items) {
      if (!names.has(name)) {
        item.li.remove();
        this.#items.delete(name);
      }
    }
    let waiting = 0;
    const counters = { room: 0, direct: 0 };
    rooms.forEach((room) => {
      const direct = room.direct === true;
      const list = direct ? this.#directList : this.#list;
      const index = counters[direct ? "direct" : "room"]++;
      const item = this.#items.get(room.name) ?? this.#create(room.name, direct);
      if (list.children[index] !== item.li) {
        list.insertBefore(item.li, list.children[index] ?? null);
      }
      if (direct) this.#label(item, room.label ?? "");
      const here = room.name === current;
      if (here) item.link.setAttribute("aria-current", "page");
      else item.link.removeAttribute("aria-current");
      item.li.dataset.joined = String(room.joined);
      // The link's name says it in words: "#team, 1 mention, 3 unread" ("@bob, 1 unread").
      item.unread.hidden = room.unread === 0;
      item.unread.replaceChildren(hidden(", "), String(room.unread), hidden(" unread"));
      item.mentions.hidden = room.mentions === 0 || direct;
      const at = Object.assign(document.createElement("span"), { textContent: "@" });
      at.setAttribute("aria-hidden", "true");
      item.mentions.replaceChildren(
        hidden(", "),
        at,
        String(room.mentions),
        hidden(room.mentions === 1 ? " mention" : " mentions"),
      );
      item.leave.hidden = rooms.length === 1;
      if (!here) waiting += room.unread;
    });
    this.#directTitle.hidden = this.#directList.hidden = counters.direct === 0;
    // The phone's "Rooms" button says what waits in the other rooms.
    this.#toggleText.textContent = waiting ? `Rooms, ${waiting} unread` : "Rooms";
    this.#toggleBadge.hidden = waiting === 0;
    this.#toggleBadge.textContent = String(waiting);
  }

  /** @param {number} step -1 for the room above, 1 for the one below. */
  #step(step) {
    const links = /** @type {HTMLAnchorElement[]} */ ([
      ...this.#nav.querySelectorAll("a.room-link"),
    ]);
    const index = links.findIndex((link) => link === document.activeElement);
    const from = index >= 0 ? index : links.findIndex((l) => l.hasAttribute("aria-current"));
    const next = links[(from + step + links.length) % links.length];
    if (!next) return;
    next.focus();
    next.click();
  }

  /**
   * A conversation's item says whom it is with: "@bob".
   *
   * @param {{ name: HTMLElement, leave: HTMLButtonElement }} item
   * @param {string} label
   */
  #label(item, label) {
    const who = label || "someone";
    if (item.name.dataset.label === who) return;
    item.name.dataset.label = who;
    item.name.replaceChildren(
      Object.assign(document.createElement("span"), { className: "hash", textContent: "@" }),
      who,
    );
    item.leave.setAttribute("aria-label", `Close the conversation with ${who}`);
    item.leave.title = `Close the conversation with ${who}`;
  }

  /**
   * @param {string} name
   * @param {boolean} direct
   */
  #create(name, direct) {
    const li = document.createElement("li");
    li.className = direct ? "joined-room direct" : "joined-room";
    const link = document.createElement("a");
    link.className = "room-link";
    link.href = roomHref(name);
    const label = document.createElement("span");
    label.className = "room-name";
    label.dir = "auto";
    label.append(
      Object.assign(document.createElement("span"), {
        className: "hash",
        textContent: "#",
      }),
      name,
    );
    const mentions = document.createElement("span");
    mentions.className = "badge mentions";
    const unread = document.createElement("span");
    unread.className = "badge unread";
    link.append(label, mentions, unread);
    const leave = document.createElement("button");
    leave.type = "button";
    leave.className = "icon leave";
    leave.dataset.room = name;
    leave.setAttribute("aria-label", `Leave #${name}`);
    leave.title = `Leave #${name}`;
    leave.textContent = "×";
    li.append(link, leave);
    const item = { li, link, name: label, unread, mentions, leave, direct };
    this.#items.set(name, item);
    return item;
  }
}

/** Text for screen readers only. @param {string} text */
function hidden(text) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = text;
  return span;
}
