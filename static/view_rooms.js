/**
 * The room switcher, a directory of the server's rooms: those with members
 * (with their counts) first, then those with history, most recently active
 * first, each marked when this tab has joined it; and a field to join or
 * create a room by name. A room name that cannot be used says why here,
 * where it can be fixed. Choosing a room changes `location.hash`; the page
 * follows the hash, joining the room (the others stay joined).
 *
 * @module
 */

import { checkRoomName } from "./names.js";

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
  /** @type {Set<string>} */
  #joined = new Set();
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

  /**
   * The room in view, and the rooms this tab has joined.
   *
   * @param {string} room
   * @param {string[]} joined
   */
  setCurrent(room, joined) {
    this.#current = room;
    this.#joined = new Set(joined);
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
      ? "Loading the rooms…"
      : "Offline: the list of rooms is not available.";
    if (!asked) this.#list.replaceChildren();
    this.#input.focus();
    if (value) this.#input.select();
  }

  close() {
    if (this.#dialog.open) this.#dialog.close();
  }

  /**
   * Shows the directory (in the server's order: rooms with members, then
   * rooms with history, most recent first). The room in view is always
   * listed.
   *
   * @param {RoomInfo[]} rooms
   */
  render(rooms) {
    const list = rooms.some((r) => r.name === this.#current) || !this.#current
      ? rooms
      : [{ name: this.#current, members: 0, lastId: 0 }, ...rooms];
    this.#listState.textContent = list.length ? "" : "There are no rooms yet: make one below.";
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
      count.textContent = room.members === 0
        ? "no one here"
        : room.members === 1
        ? "1 member"
        : `${room.members} members`;
      a.append(name, count);
      if (room.lastTs) {
        const when = document.createElement("time");
        when.className = "last-active";
        when.dateTime = new Date(room.lastTs).toISOString();
        when.textContent = `active ${ago(room.lastTs)}`;
        a.append(when);
      }
      if (room.name === this.#current) {
        a.setAttribute("aria-current", "page");
        const here = document.createElement("span");
        here.className = "here";
        here.textContent = "you are here";
        a.append(here);
      } else if (this.#joined.has(room.name)) {
        const here = document.createElement("span");
        here.className = "here";
        here.textContent = "joined";
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

/**
 * How long ago `ts` was, in words ("just now", "5 min ago", "3 h ago", "2 days ago").
 *
 * @param {number} ts
 * @param {number} [now]
 */
export function ago(ts, now = Date.now()) {
  const minutes = Math.floor((now - ts) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  return days === 1 ? "1 day ago" : `${days} days ago`;
}
