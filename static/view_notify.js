/**
 * Mentions you are not looking at (the tab is hidden, or they are in a room
 * not in view), and direct messages, which notify the same way: a desktop
 * notification (permission is asked only when you
 * press "Notify me", never on load; clicking it shows the room) and, while
 * the tab is hidden, a badge with the count on the tab's icon, which goes
 * away when you come back.
 *
 * @module
 */

import { snippet } from "./message_item.js";

const ICON = "/favicon.svg";
/** The page's icon with a red badge, as an SVG data URL (CSP allows `data:` images). */
function badgeIcon(/** @type {number} */ count) {
  const label = count > 9 ? "9+" : String(count);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">` +
    `<path fill="#0b6e4f" d="M6 4h20a4 4 0 0 1 4 4v12a4 4 0 0 1-4 4H14l-7 6v-6H6a4 4 0 0 1-4-4V8a4 4 0 0 1 4-4z"/>` +
    `<circle cx="23" cy="9" r="9" fill="#d93025"/>` +
    `<text x="23" y="13" font-family="sans-serif" font-size="${label.length > 1 ? 10 : 12}" ` +
    `font-weight="700" fill="#fff" text-anchor="middle">${label}</text></svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

/** Desktop notifications and the icon badge for mentions. */
export class Notifier {
  /** @type {HTMLLinkElement} */
  #icon;
  /** @type {HTMLButtonElement} */
  #button;
  /** @type {{ getItem(key: string): string | null, setItem(key: string, value: string): void }} */
  #storage;
  #mentions = 0;
  /** @type {(room: string) => void} */
  #onOpen;

  /**
   * @param {{ icon: HTMLLinkElement, button: HTMLButtonElement }} parts
   * @param {{ getItem(key: string): string | null, setItem(key: string, value: string): void }} storage
   *   Where this tab keeps "notifications on".
   * @param {{ onOpen: (room: string) => void }} handlers `onOpen` shows a room (a click on
   *   its notification).
   */
  constructor({ icon, button }, storage, { onOpen }) {
    this.#onOpen = onOpen;
    this.#icon = icon;
    this.#button = button;
    this.#storage = storage;
    button.hidden = !("Notification" in globalThis);
    button.addEventListener("click", () => this.#toggle());
    this.#render();
  }

  /** True when a mention in a hidden tab shows a desktop notification. */
  get enabled() {
    return "Notification" in globalThis && Notification.permission === "granted" &&
      this.#read() !== "off";
  }

  /**
   * A message that mentions you arrived. Unless you are looking at it (the
   * tab is visible and `room` is in view), a desktop notification, when
   * allowed; while the tab is hidden, a badge on its icon too.
   *
   * @param {{ name: string, text: string }} message
   * @param {string} room
   * @param {{ inView: boolean, label?: string, direct?: boolean }} options Whether `room` is
   *   the room in view; how the page names it ("#team"); whether it is a direct conversation.
   */
  mention(message, room, { inView, label = `#${room}`, direct = false }) {
    if (!document.hidden && inView) return;
    if (document.hidden) {
      this.#mentions++;
      this.#icon.href = badgeIcon(this.#mentions);
    }
    if (!this.enabled) return;
    try {
      const title = direct
        ? `${message.name} sent you a message`
        : `${message.name} mentioned you in ${label}`;
      const notification = new Notification(title, {
        body: snippet(message.text),
        tag: `chat-mention-${room}`,
        icon: ICON,
      });
      notification.addEventListener("click", () => {
        globalThis.focus();
        this.#onOpen(room);
        notification.close();
      });
    } catch { /* notifications not allowed here */ }
  }

  /** You are back: no badge. */
  clear() {
    this.#mentions = 0;
    this.#icon.href = ICON;
  }

  async #toggle() {
    if (Notification.permission === "default") {
      // Asked on this click only.
      const answer = await Notification.requestPermission();
      this.#write(answer === "granted" ? "on" : "off");
    } else if (Notification.permission === "granted") {
      this.#write(this.#read() === "off" ? "on" : "off");
    }
    this.#render();
  }

  #render() {
    const denied = "Notification" in globalThis && Notification.permission === "denied";
    const on = this.enabled;
    this.#button.setAttribute("aria-pressed", String(on));
    this.#button.title = denied
      ? "Notifications are blocked for this site in the browser's settings"
      : "A desktop notification when someone mentions you while this tab is hidden";
    this.#button.disabled = denied;
  }

  #read() {
    try {
      return this.#storage.getItem("chat.notify") ?? "";
    } catch {
      return "";
    }
  }

  /** @param {string} value */
  #write(value) {
    try {
      this.#storage.setItem("chat.notify", value);
    } catch { /* disabled */ }
  }
}
