/**
 * The room switcher: the active rooms with their member counts, and a field
 * to join or create a room by name. A room name that cannot be used says why
 * here, where it can be fixed. Choosing a room changes `location.hash`; the
 * page follows the hash.
 *
 * @module
 */

import { checkRoomName } from "./chat_client.js";

/**
 * @typedef {import("./chat_client.js").RoomInfo} RoomInfo
 */

/** The link to `room`: its name in the URL hash. @param {string} room */
export function roomHref(room) {
  return `#${encodeURIComponent(room)}`;
}

/** The switcher dialog. */
export class RoomSwitcher {
  /** @type {HTMLDialogElement} */
  #dialog;
  /** @type {HTMLUListElement} */
  #list;
  /** @type {HTMLElement} */
  #listState;
  /** @type {HTMLInputElement} */
  #input;
  /** @type {HTMLElement} */
  #error;
  /** @type {HTMLElement} */
  #opener;
  #current = "";
  /** @type {() => boolean} */
  #onOpen;

  /**
   * @param {{ dialog: HTMLDialogElement, list: HTMLUListElement, listState: HTMLElement,
   *   form: HTMLFormElement, input: HTMLInputElement, error: HTMLElement, close: HTMLElement,
   *   opener: HTMLElement }} parts
   * @param {{ onOpen: () => boolean, onGo: (room: string) => void }} handlers `onOpen` asks
   *   for the room list (false when offline); `onGo` switches to a room.
   */
  constructor({ dialog, list, listState, form, input, error, close, opener }, { onOpen, onGo }) {
    this.#dialog = dialog;
    this.#list = list;
    this.#listState = listState;
    this.#input = input;
    this.#error = error;
    this.#opener = opener;
    this.#onOpen = onOpen;
    opener.addEventListener("click", () => this.show());
    close.addEventListener("click", () => this.close());
    dialog.addEventListener("close", () => {
      opener.setAttribute("aria-expanded", "false");
    });
    // A click on the backdrop closes it.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) this.close();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const checked = checkRoomName(input.value);
      if (!checked.ok) return this.#showError(checked.message);
      this.#showError("");
      this.close();
      onGo(checked.name);
    });
    input.addEventListener("input", () => this.#showError(""));
    list.addEventListener("click", (event) => {
      if (/** @type {Element} */ (event.target).closest("a")) this.close();
    });
  }

  /** True while open. */
  get open() {
    return this.#dialog.open;
  }

  /** The room shown as current. @param {string} room */
  setCurrent(room) {
    this.#current = room;
  }

  /**
   * Opens the switcher and asks for the room list.
   *
   * @param {{ error?: string, value?: string }} [options] `error`: why the room in `value`
   *   cannot be joined.
   */
  show({ error = "", value = "" } = {}) {
    this.#showError(error);
    this.#input.value = value;
    if (!this.#dialog.open) this.#dialog.showModal();
    this.#opener.setAttribute("aria-expanded", "true");
    const asked = this.#onOpen();
    this.#listState.textContent = asked
      ? "Loading the active rooms…"
      : "Offline: the list of rooms is not available.";
    if (!asked) this.#list.replaceChildren();
    this.#input.focus();
    if (value) this.#input.select();
  }

  close() {
    if (this.#dialog.open) this.#dialog.close();
  }

  /**
   * Shows the active rooms (busiest first, as the server sends them). The
   * current room is always listed.
   *
   * @param {RoomInfo[]} rooms
   */
  render(rooms) {
    const list = rooms.some((r) => r.name === this.#current) || !this.#current
      ? rooms
      : [{ name: this.#current, members: 0, lastId: 0 }, ...rooms];
    this.#listState.textContent = list.length ? "" : "No rooms are active right now.";
    this.#list.replaceChildren(...list.map((room) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = roomHref(room.name);
      a.className = "room-link";
      const name = document.createElement("span");
      name.className = "room";
      name.dir = "auto";
      name.textContent = room.name;
      const count = document.createElement("span");
      count.className = "members-count";
      count.textContent = room.members === 1 ? "1 member" : `${room.members} members`;
      a.append(name, count);
      if (room.name === this.#current) {
        a.setAttribute("aria-current", "page");
        const here = document.createElement("span");
        here.className = "here";
        here.textContent = "you are here";
        a.append(here);
      }
      li.append(a);
      return li;
    }));
  }

  /** @param {string} text */
  #showError(text) {
    this.#error.textContent = text;
    this.#error.hidden = !text;
    this.#input.setAttribute("aria-invalid", String(Boolean(text)));
  }
}
