/**
 * The message list: confirmed messages in id order, then this tab's own
 * unconfirmed ones (pending or failed) at the bottom, plus notices. Every
 * piece of user text goes in through `textContent`.
 *
 * @module
 */

const SCROLL_SLACK_PX = 40;
const UNCONFIRMED = 'li.message[data-state="pending"], li.message[data-state="failed"]';

/**
 * A message as the server sends it.
 *
 * @typedef {{ id: number, name: string, text: string, ts: number, cid?: string, userId: string }} ChatMessage
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

/** Renders the conversation into an `<ol>`. */
export class MessageView {
  /** @type {HTMLOListElement} */
  #list;
  /** @type {HTMLTemplateElement} */
  #template;
  /** Own items by cid, pending or confirmed. @type {Map<string, HTMLLIElement>} */
  #byCid = new Map();

  /**
   * @param {{ list: HTMLOListElement, template: HTMLTemplateElement,
   *   onRetry: (cid: string) => void }} parts
   */
  constructor({ list, template, onRetry }) {
    this.#list = list;
    this.#template = template;
    list.addEventListener("click", (event) => {
      const button = /** @type {Element} */ (event.target).closest(".retry");
      const cid = button?.closest("li")?.dataset.cid;
      if (cid) onRetry(cid);
    });
  }

  /** Empties the list (another room). */
  clear() {
    this.#byCid.clear();
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
    if (notice) this.addNotice(notice, "gap");
  }

  /**
   * Shows an outbox entry as an own item at the bottom.
   *
   * @param {{ cid: string, text: string, ts: number, state: string }} entry
   * @param {string} name The sender's name.
   */
  showPending(entry, name) {
    const li = this.#build({ ...entry, name, own: true });
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

  /**
   * Shows a message from the server (each comes once, in id order). An own
   * message already shown from the outbox is updated in place.
   *
   * @param {ChatMessage} message
   * @param {{ own: boolean, scroll?: boolean }} options
   */
  addMessage(message, { own, scroll = true }) {
    const mine = own && message.cid ? this.#byCid.get(message.cid) : undefined;
    if (mine) {
      part(mine, ".sender").textContent = message.name;
      this.#fillTime(mine, message.ts);
      this.markSent(/** @type {string} */ (message.cid), message.id);
      return;
    }
    const li = this.#build({ ...message, own });
    this.#setState(li, "sent");
    if (own && message.cid) this.#byCid.set(message.cid, li);
    this.#follow(false, () => this.#insert(li, message.id), scroll);
  }

  /**
   * Adds a line such as "bob joined" after the newest confirmed message.
   *
   * @param {string} text
   * @param {string} [className]
   */
  addNotice(text, className = "notice") {
    const li = document.createElement("li");
    li.className = className;
    li.textContent = text;
    this.#follow(false, () => this.#list.insertBefore(li, this.#firstUnconfirmed()));
  }

  /** Shows `name` as the sender of the own items not confirmed yet. @param {string} name */
  setOwnName(name) {
    for (const li of this.#list.querySelectorAll(UNCONFIRMED)) {
      part(li, ".sender").textContent = name;
    }
  }

  /** Scrolls to the newest item. */
  scrollToEnd() {
    this.#list.scrollTop = this.#list.scrollHeight;
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

  /**
   * Runs `change`, then scrolls to the bottom if forced or if it was near it.
   *
   * @param {boolean} force
   * @param {() => void} change
   */
  #follow(force, change, scroll = true) {
    const list = this.#list;
    const near = list.scrollHeight - list.scrollTop - list.clientHeight <= SCROLL_SLACK_PX;
    change();
    if (scroll && (force || near)) list.scrollTop = list.scrollHeight;
  }

  /**
   * Clones the template and fills it.
   *
   * @param {{ id?: number, cid?: string, name: string, text: string, ts: number, own: boolean }} item
   * @returns {HTMLLIElement}
   */
  #build({ id, cid, name, text, ts, own }) {
    const li = /** @type {HTMLLIElement} */ (
      /** @type {Element} */ (this.#template.content.firstElementChild).cloneNode(true)
    );
    if (id !== undefined) li.dataset.id = String(id);
    if (cid) li.dataset.cid = cid;
    li.classList.toggle("own", own);
    part(li, ".sender").textContent = name;
    part(li, ".text").textContent = text;
    this.#fillTime(li, ts);
    return li;
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
  }
}
