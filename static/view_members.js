/**
 * The member list of the room in view and the "… is typing" line. At phone
 * width the list collapses to a "n members" button that opens it. Offline,
 * nobody is shown: who is there is not known until the connection is back.
 *
 * @module
 */

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
  #last = { members: /** @type {{ id: string, name: string }[]} */ ([]), myId: "" };
  #offline = false;
  /** Who is typing: user id → { name, timer }. @type {Map<string, {name: string, timer: number}>} */
  #typers = new Map();

  /**
   * @param {{ list: HTMLUListElement, count: HTMLElement, typing: HTMLElement,
   *   panel: HTMLElement, toggle: HTMLButtonElement, toggleText: HTMLElement,
   *   state: HTMLElement }} parts
   */
  constructor({ list, count, typing, panel, toggle, toggleText, state }) {
    this.#state = state;
    this.#list = list;
    this.#count = count;
    this.#typingLine = typing;
    this.#panel = panel;
    this.#toggle = toggle;
    this.#toggleText = toggleText;
    toggle.addEventListener("click", () => this.#expand(toggle.ariaExpanded !== "true"));
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

  /** @param {boolean} open */
  #expand(open) {
    this.#toggle.setAttribute("aria-expanded", String(open));
    this.#panel.dataset.expanded = String(open);
  }

  /**
   * Shows `members`, marking the one with id `myId` as you.
   *
   * @param {{ id: string, name: string }[]} members
   * @param {string} myId
   */
  render(members, myId) {
    this.#last = { members, myId };
    if (this.#offline) return;
    const items = members.map((member) => {
      const li = document.createElement("li");
      li.dir = "auto";
      li.textContent = member.name;
      if (member.id === myId) {
        li.classList.add("me");
        const you = document.createElement("span");
        you.className = "you";
        you.textContent = " (you)";
        li.append(you);
      }
      return li;
    });
    this.#list.replaceChildren(...items);
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
      this.#count.textContent = "";
      this.#toggleText.textContent = "Members (offline)";
      this.clearTyping();
    } else this.render(this.#last.members, this.#last.myId);
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
