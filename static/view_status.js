/**
 * The header's status line and nickname, the connection banner (with
 * "Reconnect now"), the error banner, and the document title with its
 * unread count.
 *
 * @module
 */

const ERROR_HIDE_MS = 8000;

/** Texts for the client's `offline` reasons. */
const OFFLINE_TEXT = {
  replaced: "Offline – this session connected again elsewhere",
  prompt: "Offline – choose a nickname",
  room: "Offline – choose a room",
  closed: "Offline",
};

/** Shows connection state, who you are, and errors. */
export class StatusView {
  /** @type {HTMLElement} */
  #status;
  /** @type {HTMLElement} */
  #myName;
  /** @type {HTMLElement} */
  #error;
  /** @type {HTMLElement} */
  #errorText;
  /** @type {HTMLElement} */
  #banner;
  /** @type {HTMLElement} */
  #bannerText;
  /** @type {HTMLButtonElement} */
  #reconnect;
  #errorTimer = 0;
  #countdown = 0;
  #room = "";
  #unread = 0;

  /**
   * @param {{ status: HTMLElement, myName: HTMLElement, error: HTMLElement,
   *   errorText: HTMLElement, errorDismiss: HTMLElement, banner: HTMLElement,
   *   bannerText: HTMLElement, reconnect: HTMLButtonElement }} parts
   * @param {{ onReconnect: () => void }} handlers "Reconnect now".
   */
  constructor(
    { status, myName, error, errorText, errorDismiss, banner, bannerText, reconnect },
    { onReconnect },
  ) {
    this.#status = status;
    this.#myName = myName;
    this.#error = error;
    this.#errorText = errorText;
    this.#banner = banner;
    this.#bannerText = bannerText;
    this.#reconnect = reconnect;
    errorDismiss.addEventListener("click", () => this.hideError());
    reconnect.addEventListener("click", () => onReconnect());
  }

  /**
   * Shows a status from the client: `connecting`, `online`, `reconnecting`
   * (counting down to `retryAt`) or `offline` (with its reason).
   *
   * @param {{ state: string, reason?: string, retryAt?: number }} status
   */
  show({ state, reason = "", retryAt = 0 }) {
    clearInterval(this.#countdown);
    this.#banner.hidden = true;
    if (state === "reconnecting") {
      const tick = () => {
        const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
        this.#set(state, `Reconnecting in ${seconds} s… (${reason})`);
        this.#bannerText.textContent =
          `Connection lost (${reason}). Trying again in ${seconds} s; what you write is kept and sent when it is back.`;
      };
      tick();
      this.#countdown = setInterval(tick, 1000);
      // An immediate rejoin (a hole in the ids) is not worth a banner.
      if (retryAt - Date.now() >= 250) this.#showBanner("Reconnect now");
    } else if (state === "online") {
      this.#set(state, "Online");
    } else if (state === "connecting") {
      this.#set(state, "Connecting…");
    } else {
      this.#set("offline", OFFLINE_TEXT[/** @type {keyof OFFLINE_TEXT} */ (reason)] ?? "Offline");
      if (reason === "replaced") {
        this.#bannerText.textContent =
          "This session connected again in another tab or window, so this one stopped.";
        this.#showBanner("Use it here");
      } else if (reason === "closed") {
        this.#bannerText.textContent = "Disconnected.";
        this.#showBanner("Reconnect now");
      }
    }
  }

  /** @param {string} label */
  #showBanner(label) {
    this.#reconnect.textContent = label;
    this.#banner.hidden = false;
  }

  /** Shows this tab's nickname. @param {string} name */
  setName(name) {
    this.#myName.textContent = name;
    this.#myName.hidden = !name;
  }

  /** @param {string} text */
  showError(text) {
    clearTimeout(this.#errorTimer);
    this.#errorText.textContent = text;
    this.#error.hidden = false;
    this.#errorTimer = setTimeout(() => this.hideError(), ERROR_HIDE_MS);
  }

  hideError() {
    clearTimeout(this.#errorTimer);
    this.#error.hidden = true;
  }

  /** Names the room in the title. @param {string} room */
  setRoom(room) {
    this.#room = room;
    this.#unread = 0;
    this.#title();
  }

  /** Counts one more unread message in the title. */
  addUnread() {
    this.#unread++;
    this.#title();
  }

  /** Everything was seen. */
  clearUnread() {
    this.#unread = 0;
    this.#title();
  }

  /** @param {string} state @param {string} text */
  #set(state, text) {
    this.#status.dataset.state = state;
    this.#status.textContent = text;
  }

  #title() {
    document.title = `${this.#unread ? `(${this.#unread}) ` : ""}#${this.#room} – Deno Chat`;
  }
}
