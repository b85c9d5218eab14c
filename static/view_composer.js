/**
 * The composer: write, reply to a message, or edit one of yours. Enter
 * sends, Shift+Enter adds a line, ↑ in an empty box edits your last message,
 * Escape cancels a reply or an edit. What you were writing is kept per tab
 * and room (`sessionStorage`), so a reload or a switch to another room does
 * not lose it. Typing tells the room (`onTyping`); editing does not.
 *
 * A line over the box says what limits writing in the room: muted (why and
 * until when, with a countdown; the box and Send are disabled until then),
 * slow mode (how often; Send counts down to when the next message goes), or
 * no room at all.
 *
 * @module
 */

import { countdownText } from "./moderation_text.js";
import { snippet } from "./message_item.js";

/**
 * What the composer is doing.
 *
 * @typedef {{ kind: "say" } | { kind: "reply", id: number, name: string, text: string }
 *   | { kind: "edit", id: number, text: string }} ComposerMode
 */

/** The message box and its reply/edit bar. */
export class Composer {
  /** @type {HTMLFormElement} */
  #form;
  /** @type {HTMLTextAreaElement} */
  #input;
  /** @type {HTMLButtonElement} */
  #send;
  /** @type {HTMLElement} */
  #sendLabel;
  /** @type {HTMLElement} */
  #sendWait;
  /** @type {HTMLElement} */
  #notice;
  /** @type {HTMLElement} */
  #noticeText;
  /** @type {HTMLElement} */
  #countdown;
  #noticeTimer = 0;
  #waitTimer = 0;
  /** @type {HTMLElement} */
  #bar;
  /** @type {HTMLElement} */
  #barText;
  /** @type {ComposerMode} */
  #mode = { kind: "say" };
  /** The draft to restore when an edit is cancelled. */
  #draft = "";
  /** @type {{ getItem(key: string): string | null, setItem(key: string, value: string): void,
   *   removeItem(key: string): void }} */
  #storage;
  #room = "";

  /**
   * @param {{ form: HTMLFormElement, input: HTMLTextAreaElement, send: HTMLButtonElement,
   *   sendLabel: HTMLElement, sendWait: HTMLElement, notice: HTMLElement,
   *   noticeText: HTMLElement, countdown: HTMLElement,
   *   bar: HTMLElement, barText: HTMLElement, cancel: HTMLElement }} parts
   * @param {{ storage: { getItem(key: string): string | null, setItem(key: string, value: string): void,
   *   removeItem(key: string): void }, onSubmit: (text: string, mode: ComposerMode) => void,
   *   onEditLast: () => boolean, onTyping: () => void, hasFiles?: () => boolean }} handlers
   *   `onEditLast` starts editing your last message and says whether there was one;
   *   `hasFiles`: files wait to go, so a message with no text may be sent.
   */
  constructor(
    { form, input, send, sendLabel, sendWait, notice, noticeText, countdown, bar, barText, cancel },
    { storage, onSubmit, onEditLast, onTyping, hasFiles = () => false },
  ) {
    this.#form = form;
    this.#input = input;
    this.#send = send;
    this.#sendLabel = sendLabel;
    this.#sendWait = sendWait;
    this.#notice = notice;
    this.#noticeText = noticeText;
    this.#countdown = countdown;
    this.#bar = bar;
    this.#barText = barText;
    this.#storage = storage;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.disabled) return;
      const text = input.value.replace(/\s+$/, "");
      const mode = this.#mode;
      if (!text.trim() && (mode.kind === "edit" || !hasFiles())) return;
      input.value = "";
      this.#setMode({ kind: "say" }, mode.kind === "edit" ? this.#draft : "");
      this.#save();
      onSubmit(text, mode);
      input.focus();
    });
    input.addEventListener("keydown", (event) => {
      if (event.isComposing) return;
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        form.requestSubmit();
      } else if (event.key === "Escape" && this.#mode.kind !== "say") {
        event.preventDefault();
        this.cancel();
      } else if (
        event.key === "ArrowUp" && input.value === "" && this.#mode.kind !== "edit" &&
        !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey
      ) {
        if (onEditLast()) event.preventDefault();
      }
    });
    input.addEventListener("input", () => {
      this.#save();
      // Editing a message is not writing one: the others are not told.
      if (this.#mode.kind !== "edit") onTyping();
    });
    cancel.addEventListener("click", () => this.cancel());
  }

  /** What the composer is doing now. */
  get mode() {
    return this.#mode;
  }

  /** Loads the draft of `room` (another room, or the page's start). @param {string} room */
  setRoom(room) {
    this.#room = room;
    this.#setMode({ kind: "say" }, "");
    this.#input.value = this.#read();
  }

  /**
   * Answers message `id` by `name`: a bar over the box quotes it.
   *
   * @param {number} id
   * @param {string} name
   * @param {string} text
   */
  reply(id, name, text) {
    const draft = this.#mode.kind === "edit" ? this.#draft : this.#input.value;
    this.#setMode({ kind: "reply", id, name, text }, draft);
    this.focus();
  }

  /**
   * Edits your message `id`: its text goes in the box.
   *
   * @param {number} id
   * @param {string} text
   */
  edit(id, text) {
    const draft = this.#mode.kind === "edit" ? this.#draft : this.#input.value;
    this.#setMode({ kind: "edit", id, text }, text);
    this.#draft = draft;
    this.focus();
    this.#input.select();
  }

  /** Back to writing a new message. */
  cancel() {
    const restore = this.#mode.kind === "edit" ? this.#draft : this.#input.value;
    this.#setMode({ kind: "say" }, restore);
    this.#save();
    this.focus();
  }

  /**
   * What limits writing here, on the line over the box: `text` ("" for
   * nothing), counting down to `until` when given; `locked` disables the box
   * and Send (a mute, no room).
   *
   * @param {{ text: string, until?: number, locked?: boolean }} notice
   */
  setNotice({ text, until, locked = false }) {
    clearInterval(this.#noticeTimer);
    this.#noticeTimer = 0;
    this.#notice.hidden = !text;
    if (this.#noticeText.textContent !== text) this.#noticeText.textContent = text;
    this.#notice.dataset.locked = String(locked);
    this.#countdown.textContent = "";
    if (until !== undefined && text) {
      const tick = () => {
        const left = countdownText(until - Date.now());
        this.#countdown.textContent = left ? `${left} left` : "";
        if (!left) clearInterval(this.#noticeTimer);
      };
      tick();
      this.#noticeTimer = setInterval(tick, 1000);
    }
    const hadFocus = document.activeElement === this.#input;
    this.#input.disabled = locked;
    this.#send.disabled = locked;
    this.#input.placeholder = locked ? "You cannot write here now" : "Write a message…";
    if (!locked && hadFocus) this.#input.focus();
  }

  /**
   * Slow mode: Send counts down to `until` (ms since the epoch; 0: no wait).
   * A message sent meanwhile waits its turn, pending.
   *
   * @param {number} until
   */
  setWait(until) {
    clearInterval(this.#waitTimer);
    this.#waitTimer = 0;
    const tick = () => {
      const seconds = Math.ceil((until - Date.now()) / 1000);
      this.#sendWait.hidden = seconds <= 0;
      this.#sendWait.textContent = seconds > 0 ? ` ${seconds} s` : "";
      this.#send.dataset.wait = String(seconds > 0);
      if (seconds <= 0) clearInterval(this.#waitTimer);
    };
    tick();
    if (until > Date.now()) this.#waitTimer = setInterval(tick, 1000);
  }

  /** Puts the caret in the box, at the end. */
  focus() {
    this.#input.focus();
    const end = this.#input.value.length;
    this.#input.setSelectionRange(end, end);
  }

  /**
   * @param {ComposerMode} mode
   * @param {string} value The box's text afterwards.
   */
  #setMode(mode, value) {
    this.#mode = mode;
    this.#draft = "";
    this.#input.value = value;
    this.#bar.hidden = mode.kind === "say";
    this.#bar.dataset.mode = mode.kind;
    this.#barText.textContent = mode.kind === "reply"
      ? `Replying to ${mode.name}: ${snippet(mode.text)}`
      : mode.kind === "edit"
      ? "Editing your message (Escape cancels)"
      : "";
    this.#sendLabel.textContent = mode.kind === "edit" ? "Save" : "Send";
    this.#input.setAttribute(
      "aria-label",
      mode.kind === "reply"
        ? `Reply to ${mode.name}`
        : mode.kind === "edit"
        ? "Edit message"
        : "Message",
    );
  }

  #key() {
    return `chat.draft.${this.#room}`;
  }

  #read() {
    try {
      return this.#storage.getItem(this.#key()) ?? "";
    } catch {
      return "";
    }
  }

  #save() {
    if (this.#mode.kind === "edit") return;
    try {
      const text = this.#input.value;
      if (text) this.#storage.setItem(this.#key(), text);
      else this.#storage.removeItem(this.#key());
    } catch { /* full or disabled */ }
  }
}
