/**
 * The member list of the room in view and the "… is typing" line. Each
 * member shows their role (owner, moderator, operator), "(blocked)" when
 * this tab blocks them, and a "⋯" button with their actions (Message, Block,
 * and for moderators Kick, Mute, Ban). At phone width the list collapses to
 * a "n members" button that opens it. Offline, nobody is shown: who is there
 * is not known until the connection is back.
 *
 * @module
 */

import { roleLabel } from "./moderation_text.js";

/** A member as the list shows them. @typedef {{ id: string, name: string, role?: string }} ListedMember */

const TYPING_SHOW_MS = 3000;

/** Renders who is in the room and who is typing. */
export class MembersView {
  /** @type {HTMLUListElement} */
  #list;
  /** @type {HTMLElement} */
  #count;
  /** @type {HTMLElement} */
  #typingLine;
  /** @type {HTMLElement} */
  #panel;
  /** @type {HTMLButtonElement} */
  #toggle;
  /** @type {HTMLElement} */
  #toggleText;
  /** @type {HTMLElement} */
  #state;
  /** The members last rendered, for when the connection is back. */
  #last = {
    members: /** @type {ListedMember[]} */ ([]),
    myId: "",
    blocked: /** @type {(id: string) => boolean} */ (() => false),
  };
  #offline = false;
  /** Who is typing: user id → { name, timer }. @type {Map<string, {name: string, timer: number}>} */
  #typers = new Map();

  /**
   * @param {{ list: HTMLUListElement, count: HTMLElement, typing: HTMLElement,
   *   panel: HTMLElement, toggle: HTMLButtonElement, toggleText: HTMLElement,
   *   state: HTMLElement }} parts
   * @param {{ onActions: (member: ListedMember, button: HTMLElement) => void }} handlers
   *   `onActions`: a member's "⋯" button was pressed.
   */
  constructor({ list, count, typing, panel, toggle, toggleText, state }, { onActions }) {
    this.#state = state;
    this.#list = list;
    this.#count = count;
    this.#typingLine = typing;
    this.#panel = panel;
    this.#toggle = toggle;
    this.#toggleText = toggleText;
    toggle.addEventListener("click", () => this.#expand(toggle.ariaExpanded !== "true"));
    list.addEventListener("click", (event) => {
      const button = /** @type {HTMLElement | null} */ (
        /** @type {Element} */ (event.target).closest(".member-actions")
      );
      const member = this.#last.members.find((m) => m.id === button?.dataset.id);
      if (button && member) onActions(member, button);
    });
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && toggle.ariaExpanded === "true") {
        this.#expand(false);
        toggle.focus();
      }
    });
  }

  /** The names of the members, as last rendered. */
  get names() {
    return [...this.#names];
  }

  /** @type {string[]} */
  #names = [];
  /** Each member's item, by user id. @type {Map<string, HTMLLIElement>} */
  #items = new Map();

  /** @param {boolean} open */
  #expand(open) {
    this.#toggle.setAttribute("aria-expanded", String(open));
    this.#panel.dataset.expanded = String(open);
  }

  /**
   * Shows `members`, marking the one with id `myId` as you, each with their
   * role and their actions. Items are updated in place (by user id), so a
   * focused "⋯" button, or the menu open in an item, stays.
   *
   * @param {ListedMember[]} members
   * @param {string} myId
   * @param {(id: string) => boolean} [blocked] Whether this tab blocks a user.
   */
  render(members, myId, blocked = this.#last.blocked) {
    this.#last = { members, myId, blocked };
    if (this.#offline) return;
    const ids = new Set(members.map((m) => m.id));
    for (const [id, li] of this.#items) {
      if (!ids.has(id)) {
        li.remove();
        this.#items.delete(id);
      }
    }
    members.forEach((member, index) => {
      let li = this.#items.get(member.id);
      if (!li) this.#items.set(member.id, li = document.createElement("li"));
      fillMember(li, member, member.id === myId, blocked(member.id));
      if (this.#list.children[index] !== li) {
        this.#list.insertBefore(li, this.#list.children[index] ?? null);
      }
    });
    this.#names = members.map((m) => m.name);
    this.#count.textContent = members.length ? `(${members.length})` : "";
    this.#toggleText.textContent = members.length === 1 ? "1 member" : `${members.length} members`;
  }

  /**
   * Offline: the list is emptied and says why; online again, the last list
   * comes back until the welcome brings a fresh one.
   *
   * @param {boolean} offline
   */
  setOffline(offline) {
    if (offline === this.#offline) return;
    this.#offline = offline;
    this.#state.hidden = !offline;
    this.#state.textContent = offline ? "Offline: who is here shows again once reconnected." : "";
    if (offline) {
      this.#list.replaceChildren();
      this.#items.clear();
      this.#count.textContent = "";
      this.#toggleText.textContent = "Members (offline)";
      this.clearTyping();
    } else this.render(this.#last.members, this.#last.myId, this.#last.blocked);
  }

  /** Shows `member` as typing for a few seconds. @param {{ id: string, name: string }} member */
  typing(member) {
    clearTimeout(this.#typers.get(member.id)?.timer);
    const timer = setTimeout(() => this.stopTyping(member.id), TYPING_SHOW_MS);
    this.#typers.set(member.id, { name: member.name, timer });
    this.#renderTyping();
  }

  /** @param {string} id */
  stopTyping(id) {
    const entry = this.#typers.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.#typers.delete(id);
    this.#renderTyping();
  }

  /** Forgets everyone typing (offline, another room). */
  clearTyping() {
    for (const { timer } of this.#typers.values()) clearTimeout(timer);
    this.#typers.clear();
    this.#renderTyping();
  }

  #renderTyping() {
    const names = [...this.#typers.values()].map((t) => t.name);
    const last = names.pop();
    this.#typingLine.textContent = !last
      ? ""
      : names.length
      ? `${names.join(", ")} and ${last} are typing…`
      : `${last} is typing…`;
  }
}

/**
 * Fills a member's item: the name, the role, "(you)" or "(blocked)", and
 * the actions button of someone else (kept when it is there already).
 *
 * @param {HTMLLIElement} li
 * @param {ListedMember} member
 * @param {boolean} me
 * @param {boolean} blocked
 */
function fillMember(li, member, me, blocked) {
  li.classList.toggle("me", me);
  const name = document.createElement("span");
  name.className = "member-name";
  name.dir = "auto";
  name.textContent = member.name;
  const parts = /** @type {Node[]} */ ([name]);
  const role = roleLabel(member.role);
  if (role) {
    const badge = document.createElement("span");
    badge.className = `role role-${role}`;
    badge.append(hidden(", "), role);
    parts.push(badge);
  }
  if (me || blocked) {
    const note = document.createElement("span");
    note.className = "you";
    note.textContent = me ? " (you)" : " (blocked)";
    parts.push(note);
  }
  /** @type {HTMLElement | null} */
  let button = li.querySelector(".member-actions");
  // The button and the menu open after it stay in place (moving them would lose the focus).
  for (const child of [...li.childNodes]) {
    if (child !== button && !(child instanceof Element && child.getAttribute("role") === "menu")) {
      child.remove();
    }
  }
  if (me) {
    button?.remove();
    return li.append(...parts);
  }
  if (!button) {
    button = document.createElement("button");
    button.type = "button";
    button.className = "icon member-actions";
    button.setAttribute("aria-haspopup", "menu");
    button.setAttribute("aria-expanded", "false");
    button.textContent = "⋯";
    li.append(button);
  }
  button.dataset.id = member.id;
  button.setAttribute("aria-label", `Actions for ${member.name}`);
  button.title = `Actions for ${member.name}`;
  button.before(...parts);
}

/** Text for screen readers only. @param {string} text */
function hidden(text) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = text;
  return span;
}
