/**
 * The header's status line and nickname, the connection banner (with
 * "Reconnect now"), the error banner (which a kick or a ban keeps until it is
 * dismissed, with "Join again" after a kick), the info banner ("You blocked
 * bob", "Report sent"), and the document title with the unread and mention
 * counts of every joined room.
 *
 * The status line is a live region: it changes (and is announced) when the
 * state does. The countdown to the next attempt is shown beside it, out of
 * the live region, so a screen reader does not read it every second.
 *
 * @module
 */

const ERROR_HIDE_MS = 8000;
/** Reasons that only say the connection went: "Connection lost (connection lost)" says it twice. */
const PLAIN_REASONS = new Set(["connection lost", "connection closed", ""]);

/** Texts for the client's `offline` reasons. */
const OFFLINE_TEXT = {
  replaced: "Offline – this session connected again elsewhere",
  prompt: "Offline – choose a nickname",
  room: "Offline – choose a room",
  closed: "Offline",
  "signed-out": "Signed out",
};

/** Shows connection state, who you are, and errors. */
export class StatusView {
  /** @type {HTMLElement} */
  #status;
  /** @type {HTMLElement} */
  #countdownText;
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
  /** @type {HTMLButtonElement | undefined} */
  #errorAction;
  /** @type {{ box: HTMLElement, text: HTMLElement, action: HTMLButtonElement } | undefined} */
  #info;
  /** @type {(() => void) | null} */
  #onErrorAction = null;
  /** @type {(() => void) | null} */
  #onInfoAction = null;
  #infoTimer = 0;
  #errorTimer = 0;
  #countdown = 0;

  /**
   * @param {{ status: HTMLElement, countdown: HTMLElement, myName: HTMLElement,
   *   error: HTMLElement, errorText: HTMLElement, errorDismiss: HTMLElement,
   *   errorAction?: HTMLButtonElement, info?: HTMLElement, infoText?: HTMLElement,
   *   infoAction?: HTMLButtonElement, infoDismiss?: HTMLElement,
   *   banner: HTMLElement, bannerText: HTMLElement, reconnect: HTMLButtonElement }} parts
   * @param {{ onReconnect: () => void }} handlers "Reconnect now".
   */
  constructor(
    {
      status,
      countdown,
      myName,
      error,
      errorText,
      errorDismiss,
      errorAction,
      info,
      infoText,
      infoAction,
      infoDismiss,
      banner,
      bannerText,
      reconnect,
    },
    { onReconnect },
  ) {
    this.#status = status;
    this.#countdownText = countdown;
    this.#myName = myName;
    this.#error = error;
    this.#errorText = errorText;
    this.#banner = banner;
    this.#bannerText = bannerText;
    this.#reconnect = reconnect;
    errorDismiss.addEventListener("click", () => this.hideError());
    reconnect.addEventListener("click", () => onReconnect());
    this.#errorAction = errorAction;
    errorAction?.addEventListener("click", () => {
      const run = this.#onErrorAction;
      this.hideError();
      run?.();
    });
    if (info && infoText && infoAction) {
      this.#info = { box: info, text: infoText, action: infoAction };
      infoAction.addEventListener("click", () => {
        const run = this.#onInfoAction;
        this.hideInfo();
        run?.();
      });
      infoDismiss?.addEventListener("click", () => this.hideInfo());
    }
  }

  /**
   * Shows a status from the client: `connecting`, `online`, `reconnecting`
   * (counting down to `retryAt`) or `offline` (with its reason).
   *
   * @param {{ state: string, reason?: string, retryAt?: number }} status
   */
  show({ state, reason = "", retryAt = 0 }) {
    clearInterval(this.#countdown);
    this.#countdownText.textContent = "";
    this.#banner.hidden = true;
    if (state === "reconnecting") {
      const why = PLAIN_REASONS.has(reason) ? "" : ` (${reason})`;
      this.#set(state, `Reconnecting…${why}`);
      const tick = () => {
        const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
        this.#countdownText.textContent = `in ${seconds} s`;
        this.#bannerText.textContent =
          `Connection lost${why}. Trying again in ${seconds} s; what you write is kept and sent when it is back.`;
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

  /**
   * Shows an error. A `sticky` one (a kick, a ban) stays until dismissed;
   * `action` adds a button ("Join again").
   *
   * @param {string} text
   * @param {{ sticky?: boolean, action?: { label: string, run: () => void } }} [options]
   */
  showError(text, { sticky = false, action } = {}) {
    clearTimeout(this.#errorTimer);
    this.#errorText.textContent = text;
    this.#error.hidden = false;
    this.#onErrorAction = action?.run ?? null;
    if (this.#errorAction) {
      this.#errorAction.hidden = !action;
      this.#errorAction.textContent = action?.label ?? "";
    }
    if (!sticky) this.#errorTimer = setTimeout(() => this.hideError(), ERROR_HIDE_MS);
  }

  hideError() {
    clearTimeout(this.#errorTimer);
    this.#error.hidden = true;
    this.#onErrorAction = null;
  }

  /**
   * Shows a piece of news that is no error ("You blocked bob."), for a few
   * seconds; `action` adds a button ("Undo").
   *
   * @param {string} text
   * @param {{ action?: { label: string, run: () => void } }} [options]
   */
  showInfo(text, { action } = {}) {
    const info = this.#info;
    if (!info) return;
    clearTimeout(this.#infoTimer);
    info.text.textContent = text;
    info.box.hidden = false;
    this.#onInfoAction = action?.run ?? null;
    info.action.hidden = !action;
    info.action.textContent = action?.label ?? "";
    this.#infoTimer = setTimeout(() => this.hideInfo(), ERROR_HIDE_MS);
  }

  hideInfo() {
    clearTimeout(this.#infoTimer);
    if (this.#info) this.#info.box.hidden = true;
    this.#onInfoAction = null;
  }

  /**
   * The title: the room in view (as the page names it: "#team", "@bob"), and
   * what waits in every joined room.
   *
   * @param {string} room
   * @param {{ unread: number, mentions: number }} counts
   */
  setTitle(room, { unread, mentions }) {
    const waiting = !unread
      ? ""
      : mentions
      ? `(${unread}, ${mentions === 1 ? "1 mention" : `${mentions} mentions`}) `
      : `(${unread}) `;
    document.title = `${waiting}${room || "No room"} – Deno Chat`;
  }

  /** @param {string} state @param {string} text */
  #set(state, text) {
    this.#status.dataset.state = state;
    this.#status.textContent = text;
  }
}
