/**
 * The member list and the "… is typing" line.
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
  /** Who is typing: user id → { name, timer }. @type {Map<string, {name: string, timer: number}>} */
  #typers = new Map();

  /** @param {{ list: HTMLUListElement, count: HTMLElement, typing: HTMLElement }} parts */
  constructor({ list, count, typing }) {
    this.#list = list;
    this.#count = count;
    this.#typingLine = typing;
  }

  /**
   * Shows `members`, marking the one with id `myId` as you.
   *
   * @param {{ id: string, name: string }[]} members
   * @param {string} myId
   */
  render(members, myId) {
    const items = members.map((member) => {
      const li = document.createElement("li");
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
    this.#count.textContent = members.length ? `(${members.length})` : "";
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
