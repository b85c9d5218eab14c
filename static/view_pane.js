/**
 * The scrolling pane that shows the log of the room in view, with the
 * "Jump to latest" control, the screen reader announcer and the keyboard.
 *
 * Switching rooms swaps the log in the pane, and each log comes back where
 * it was left. While the view is at the end it stays there ("stuck"):
 * whatever grows under it (new messages, an edit that wraps, the history
 * button appearing above) is followed after layout, through a
 * `ResizeObserver`, so the newest message is never cut. Scrolling up unsticks
 * it, and the jump control shows.
 *
 * Keyboard: the list is one tab stop; arrows, Home and End move between
 * messages; a message's own links, quote and reactions come next in the tab
 * order only while it has the focus, so Tab leaves the list for what
 * follows it (the composer) instead of jumping to the top.
 *
 * @module
 */

/** How near the end (in px) still counts as at the end. */
const END_SLACK_PX = 40;
/** Inside a message: what Tab may reach while the message has the focus. */
const INNER = ".quote:not([hidden]), .reaction, .text a, .attachments a";
/** The messages the arrows move between (a run of blocked users' messages is one line). */
const ITEMS = "li.message:not(.blocked-more)";

/**
 * What a message's actions do: `menu` opens its menu; the others act at once.
 *
 * @typedef {"menu" | "reply" | "edit" | "delete"} MessageAction
 */

/** @typedef {import("./view_messages.js").MessageLog} MessageLog */

/** The message pane. */
export class MessagePane {
  /** @type {HTMLElement} */
  #scroller;
  /** @type {HTMLButtonElement} */
  #jump;
  /** @type {HTMLElement} */
  #announcer;
  /** @type {MessageLog | null} */
  #log = null;
  /** True while the view follows the end. */
  #stuck = true;
  #lastTop = 0;
  #unread = 0;
  /** The message whose inner controls are in the tab order. @type {Element | null} */
  #roving = null;
  #loadObserver;
  /** @type {() => void} */
  #onEnd;
  /** @type {() => void} */
  #onOlder;

  /**
   * @param {{ scroller: HTMLElement, jump: HTMLButtonElement, announcer: HTMLElement }} parts
   * @param {{ onOlder: () => void, onEnd: () => void,
   *   onAction: (action: MessageAction, id: number, li: HTMLLIElement) => void,
   *   onReact: (id: number, emoji: string) => void, onQuote: (id: number) => void }} handlers
   *   `onOlder` asks for older messages; `onEnd` says the view reached the end (all read).
   */
  constructor({ scroller, jump, announcer }, { onOlder, onEnd, onAction, onReact, onQuote }) {
    this.#scroller = scroller;
    this.#jump = jump;
    this.#announcer = announcer;
    this.#onEnd = onEnd;
    this.#onOlder = onOlder;
    // Reaching the top loads the page before it.
    this.#loadObserver = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.#older();
    }, { root: scroller, rootMargin: "200px 0px 0px 0px" });
    // Whatever grows under a view at the end is followed, after layout.
    const follow = new ResizeObserver(() => {
      if (this.#stuck && !document.hidden) this.scrollToEnd();
    });
    follow.observe(scroller);
    this.#follow = follow;
    scroller.addEventListener("click", (event) => {
      const target = /** @type {Element} */ (event.target);
      if (target.closest(".load-older")) return this.#older();
      const li = /** @type {HTMLLIElement | null} */ (target.closest("li.message"));
      const id = Number(li?.dataset.id);
      if (!li || !id) return;
      if (target.closest(".menu-button")) onAction("menu", id, li);
      else if (target.closest(".quote")) onQuote(Number(li.dataset.replyTo));
      else {
        const chip = /** @type {HTMLElement | null} */ (target.closest(".reaction"));
        if (chip?.dataset.emoji) onReact(id, chip.dataset.emoji);
      }
    });
    scroller.addEventListener("keydown", (event) => this.#onKey(event, onAction));
    scroller.addEventListener(
      "focusin",
      (event) => this.#rove(/** @type {Element} */ (event.target)),
    );
    scroller.addEventListener("scroll", () => this.#onScroll(), { passive: true });
    jump.addEventListener("click", () => this.jumpToUnread());
  }

  /** @type {ResizeObserver} */
  #follow;

  /** The log in view. */
  get log() {
    return this.#log;
  }

  /** True while the view follows the end of the log. */
  get stuck() {
    return this.#stuck;
  }

  /**
   * Shows `log`, putting the one in view away with its scroll position; `log`
   * comes back where it was left (or at the end, when it was there).
   *
   * @param {MessageLog} log
   */
  show(log) {
    if (this.#log === log) return;
    const old = this.#log;
    if (old) {
      old.saved = { top: this.#scroller.scrollTop, stuck: this.#stuck };
      this.#follow.unobserve(old.root);
      this.#loadObserver.unobserve(old.loadOlder);
    }
    this.#log = log;
    this.#roving = null;
    this.#scroller.replaceChildren(log.root);
    this.#scroller.dataset.room = log.room;
    this.#stuck = log.saved.stuck;
    if (this.#stuck) this.scrollToEnd();
    else this.#scroller.scrollTop = log.saved.top;
    this.#lastTop = this.#scroller.scrollTop;
    this.#follow.observe(log.root);
    this.#loadObserver.observe(log.loadOlder);
    this.#renderJump();
  }

  /** Scrolls to the newest item; the view follows the end from now on. */
  scrollToEnd() {
    this.#stuck = true;
    this.#scroller.scrollTop = this.#scroller.scrollHeight;
    this.#lastTop = this.#scroller.scrollTop;
    this.#renderJump();
  }

  /**
   * Runs `change` (which adds older messages above) and keeps what is on
   * screen where it is: the first message in view stays at the same height.
   *
   * @param {() => void} change
   */
  keepPlace(change) {
    const s = this.#scroller;
    const top = s.getBoundingClientRect().top;
    const anchor = [...(this.#log?.list.querySelectorAll("li.message") ?? [])]
      .find((li) => li.getBoundingClientRect().bottom > top);
    const offset = anchor ? anchor.getBoundingClientRect().top - top : 0;
    const fromBottom = s.scrollHeight - s.scrollTop;
    change();
    if (this.#stuck) return;
    s.scrollTop = anchor?.isConnected
      ? s.scrollTop + (anchor.getBoundingClientRect().top - top) - offset
      : s.scrollHeight - fromBottom;
    this.#lastTop = s.scrollTop;
  }

  /** True when the top of the list (where older messages load) is in view, or nearly. */
  nearTop() {
    return this.#scroller.scrollTop < 200;
  }

  /** The count of new messages the jump control offers. @param {number} count */
  setUnread(count) {
    this.#unread = count;
    this.#renderJump();
  }

  /** Says `text` to screen readers (a new message in the room in view). @param {string} text */
  announce(text) {
    this.#announcer.textContent = text;
  }

  /**
   * Down to the first unread message while it is below the view, else to the
   * end.
   */
  jumpToUnread() {
    const divider = this.#log?.divider;
    const s = this.#scroller;
    if (divider && this.#offsetOf(divider) > s.scrollTop + s.clientHeight - END_SLACK_PX) {
      this.showAtTop(divider);
    } else this.scrollToEnd();
    if (this.#stuck) this.#onEnd();
  }

  /**
   * Scrolls `li` into the middle of the view and marks it for a moment;
   * `focus` moves the focus to it.
   *
   * @param {HTMLLIElement} li
   * @param {{ focus?: boolean }} [options]
   */
  reveal(li, { focus = true } = {}) {
    li.scrollIntoView({ block: "center" });
    this.#lastTop = this.#scroller.scrollTop;
    this.#stuck = this.#atEnd();
    this.#renderJump();
    li.classList.remove("flash");
    void li.offsetWidth; // restart the animation
    li.classList.add("flash");
    li.addEventListener("animationend", () => li.classList.remove("flash"), { once: true });
    if (focus) li.focus({ preventScroll: true });
  }

  /**
   * Brings `element` (a menu opened in a message) fully into view, without
   * moving more than needed.
   *
   * @param {Element} element
   */
  bringIntoView(element) {
    element.scrollIntoView({ block: "nearest" });
    this.#lastTop = this.#scroller.scrollTop;
    this.#stuck = this.#atEnd();
    this.#renderJump();
  }

  /**
   * Whether `element` is wholly in view.
   *
   * @param {Element} element
   */
  inView(element) {
    const view = this.#scroller.getBoundingClientRect();
    const box = element.getBoundingClientRect();
    return box.top >= view.top && box.bottom <= view.bottom;
  }

  /** Where `element` is in the scrolled content, in px from its top. @param {Element} element */
  #offsetOf(element) {
    const s = this.#scroller;
    return element.getBoundingClientRect().top - s.getBoundingClientRect().top + s.scrollTop;
  }

  /**
   * Scrolls `element` (the unread divider) near the top of the view.
   *
   * @param {Element} element
   */
  showAtTop(element) {
    this.#scroller.scrollTop = Math.max(0, this.#offsetOf(element) - 8);
    this.#lastTop = this.#scroller.scrollTop;
    this.#stuck = this.#atEnd();
    this.#renderJump();
  }

  #atEnd() {
    const s = this.#scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= END_SLACK_PX;
  }

  #onScroll() {
    const top = this.#scroller.scrollTop;
    // Only moving up unsticks: content that grew before the follow-up scroll is no reason.
    if (this.#atEnd()) this.#stuck = true;
    else if (top < this.#lastTop - 2) this.#stuck = false;
    this.#lastTop = top;
    this.#renderJump();
    if (this.#stuck) this.#onEnd();
    if (this.nearTop()) this.#older();
  }

  #older() {
    const button = this.#log?.loadOlder;
    if (button && !button.hidden && button.getAttribute("aria-disabled") !== "true") {
      this.#onOlder();
    }
  }

  /** The jump control: shown whenever the view is not at the end. */
  #renderJump() {
    this.#jump.hidden = this.#stuck || this.#log === null;
    this.#jump.textContent = this.#unread === 0
      ? "Jump to latest ↓"
      : this.#unread === 1
      ? "1 new message ↓"
      : `${this.#unread} new messages ↓`;
  }

  /**
   * A message's links, quote and reactions are in the tab order while it has
   * the focus, and only then.
   *
   * @param {Element} target
   */
  #rove(target) {
    const li = target.closest("li.message");
    if (li === this.#roving) return;
    for (const inner of this.#roving?.querySelectorAll(INNER) ?? []) {
      inner.setAttribute("tabindex", "-1");
    }
    this.#roving = li;
    for (const inner of li?.querySelectorAll(INNER) ?? []) inner.setAttribute("tabindex", "0");
  }

  /**
   * Keyboard: arrows move between messages; on a message, Enter opens its
   * actions, R replies, E edits and Delete deletes. Up from the first
   * message loads older ones.
   *
   * @param {KeyboardEvent} event
   * @param {(action: MessageAction, id: number, li: HTMLLIElement) => void} onAction
   */
  #onKey(event, onAction) {
    if (event.altKey || event.ctrlKey || event.metaKey || !this.#log) return;
    const target = /** @type {HTMLElement} */ (event.target);
    const current = target.matches("li.message") ? /** @type {HTMLLIElement} */ (target) : null;
    const items = /** @type {HTMLLIElement[]} */ ([
      ...this.#log.list.querySelectorAll(ITEMS),
    ]);
    /** @param {HTMLLIElement | undefined} li */
    const go = (li) => {
      if (!li) return;
      event.preventDefault();
      li.focus();
    };
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (target !== this.#scroller && !current) return;
      const index = current ? items.indexOf(current) : -1;
      if (event.key === "ArrowUp" && index === 0) this.#older();
      if (event.key === "ArrowUp") go(index < 0 ? items.at(-1) : items[Math.max(0, index - 1)]);
      else if (index >= 0) go(items[index + 1]);
      else go(items[0]);
      return;
    }
    if (!current) return;
    if (event.key === "Home") return go(items[0]);
    if (event.key === "End") return go(items.at(-1));
    const id = Number(current.dataset.id);
    if (!id || current.classList.contains("deleted")) return;
    const own = current.classList.contains("own");
    // A blocked user's message: only its menu (Unblock).
    const blocked = current.dataset.blocked === "true";
    /** @type {MessageAction | ""} */
    const action = event.key === "Enter" || event.key === "ContextMenu"
      ? "menu"
      : blocked
      ? ""
      : event.key === "r" || event.key === "R"
      ? "reply"
      : (event.key === "e" || event.key === "E") && own
      ? "edit"
      : event.key === "Delete" && own
      ? "delete"
      : "";
    if (!action) return;
    event.preventDefault();
    onAction(action, id, current);
  }
}
