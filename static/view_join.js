/**
 * The nickname dialog (with the access token field when the server requires
 * one). Keyboard first: it opens with the name selected, Enter joins, Escape
 * goes back.
 *
 * @module
 */

import { MAX_NAME_LENGTH } from "./names.js";

/** The join dialog. */
export class JoinDialog {
  /** @type {HTMLDialogElement} */
  #dialog;
  /** @type {HTMLInputElement} */
  #name;
  /** @type {HTMLElement} */
  #authRow;
  /** @type {HTMLInputElement} */
  #auth;
  /** @type {HTMLElement} */
  #error;
  /** True while the dialog is open because the page cannot go on without an answer. */
  #required = false;
  /** True when the dialog closes with an answer, not through Escape. */
  #answered = false;

  /**
   * @param {{ dialog: HTMLDialogElement, form: HTMLFormElement, nameInput: HTMLInputElement,
   *   authRow: HTMLElement, authInput: HTMLInputElement, error: HTMLElement }} parts
   * @param {{ onSubmit: (name: string, auth: string | undefined) => boolean | void,
   *   onDismiss: (required: boolean) => void }} handlers `auth` is undefined when
   *   no token was asked for; `onSubmit` returns false to keep the dialog open until
   *   {@linkcode JoinDialog.close} or {@linkcode JoinDialog.refuse} (a rename on its way);
   *   `onDismiss` runs on Escape.
   */
  constructor({ dialog, form, nameInput, authRow, authInput, error }, { onSubmit, onDismiss }) {
    this.#dialog = dialog;
    this.#name = nameInput;
    this.#authRow = authRow;
    this.#auth = authInput;
    this.#error = error;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = this.#name.value.trim();
      if (!name || [...name].length > MAX_NAME_LENGTH) {
        return this.#showError(`Please enter 1–${MAX_NAME_LENGTH} characters.`);
      }
      const auth = this.#authRow.hidden ? undefined : this.#auth.value.trim();
      this.#showError("");
      if (onSubmit(name, auth) !== false) this.close();
    });
    // Escape: the page decides whether there is anything to go back to.
    dialog.addEventListener("close", () => {
      const required = this.#required;
      if (this.#answered) this.#answered = false;
      else onDismiss(required);
    });
  }

  /** True while open. */
  get open() {
    return this.#dialog.open;
  }

  /**
   * Opens the dialog with `name` selected.
   *
   * @param {{ name?: string, error?: string, needsToken?: boolean, required?: boolean }} options
   */
  show({ name = "", error = "", needsToken = false, required = true } = {}) {
    this.#required = required;
    this.#showError(error);
    this.#name.value = name;
    if (needsToken) this.#authRow.hidden = false;
    this.#auth.required = !this.#authRow.hidden;
    if (!this.#dialog.open) this.#dialog.showModal();
    this.#name.focus();
    this.#name.select();
  }

  /**
   * The name was refused (a rename): says why, and selects the name to fix it.
   *
   * @param {string} message
   */
  refuse(message) {
    if (!this.#dialog.open) return this.show({ name: this.#name.value, error: message });
    this.#showError(message);
    this.#name.focus();
    this.#name.select();
  }

  /** Closes it (the page has its answer). */
  close() {
    this.#required = false;
    if (!this.#dialog.open) return;
    this.#answered = true;
    this.#dialog.close();
  }

  /** @param {string} text */
  #showError(text) {
    this.#error.textContent = text;
    this.#error.hidden = !text;
  }
}
