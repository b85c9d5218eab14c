/**
 * The in-page dialog that asks before a moderation act or a report ("Mute
 * bob?", "Ban bob?", "Report this message?"): what it is about (a quoted
 * message), for how long (radio buttons), a reason (optional, or required
 * for a report), Cancel and the act. Cancel has the focus first; Escape
 * cancels; the focus goes back to where it came from.
 *
 * @module
 */

/**
 * What the dialog asks.
 *
 * @typedef {object} ModQuestion
 * @property {string} title "Mute bob?"
 * @property {string} confirm The act's button: "Mute".
 * @property {string} [quote] A message's text, quoted.
 * @property {{ label: string, ms: number }[]} [choices] How long, when it lasts.
 * @property {number} [choice] The choice checked first (its index).
 * @property {string} [reasonLabel] "Reason (optional)" by default.
 * @property {boolean} [reasonRequired] A report needs one.
 * @property {string} [hint] One line on what happens.
 * @property {boolean} [danger] The act's button in red (the default).
 */

/** The moderation dialog. */
export class ModDialog {
  /** @type {HTMLDialogElement} */
  #dialog;
  #p;
  /** @type {((answer: { ms: number, reason: string }) => void) | null} */
  #onConfirm = null;
  /** @type {HTMLElement | null} */
  #returnTo = null;

  /**
   * @param {{ dialog: HTMLDialogElement, title: HTMLElement, quote: HTMLElement,
   *   durations: HTMLElement, choices: HTMLElement, reasonLabel: HTMLElement,
   *   reason: HTMLInputElement, hint: HTMLElement, cancel: HTMLElement,
   *   confirm: HTMLButtonElement }} parts
   */
  constructor(parts) {
    this.#dialog = parts.dialog;
    this.#p = parts;
    // Enter in the reason confirms (the form's first button is Cancel).
    parts.reason.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.isComposing) return;
      event.preventDefault();
      parts.confirm.form?.requestSubmit(parts.confirm);
    });
    parts.dialog.addEventListener("close", () => {
      const confirm = parts.dialog.returnValue === "confirm" ? this.#onConfirm : null;
      this.#onConfirm = null;
      parts.dialog.returnValue = "";
      const checked = /** @type {HTMLInputElement | null} */ (
        parts.choices.querySelector("input:checked")
      );
      const answer = { ms: Number(checked?.value ?? 0), reason: parts.reason.value.trim() };
      if (this.#returnTo?.isConnected) this.#returnTo.focus();
      this.#returnTo = null;
      confirm?.(answer);
    });
  }

  /** True while open. */
  get open() {
    return this.#dialog.open;
  }

  /**
   * Asks `question`; `onConfirm` runs with the answer when the act is
   * confirmed.
   *
   * @param {ModQuestion} question
   * @param {(answer: { ms: number, reason: string }) => void} onConfirm
   * @param {HTMLElement | null} returnTo Focused again when the dialog closes.
   */
  ask(question, onConfirm, returnTo) {
    const p = this.#p;
    p.title.textContent = question.title;
    p.quote.textContent = question.quote ?? "";
    p.quote.hidden = question.quote === undefined;
    const choices = question.choices ?? [];
    p.durations.hidden = choices.length === 0;
    p.choices.replaceChildren(...choices.map((choice, i) => {
      const label = document.createElement("label");
      label.className = "choice";
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "duration";
      input.value = String(choice.ms);
      input.checked = i === (question.choice ?? 0);
      label.append(input, ` ${choice.label}`);
      return label;
    }));
    p.reasonLabel.textContent = question.reasonLabel ?? "Reason (optional)";
    p.reason.value = "";
    p.reason.required = question.reasonRequired === true;
    p.hint.textContent = question.hint ?? "";
    p.confirm.textContent = question.confirm;
    p.confirm.className = question.danger === false ? "" : "danger";
    this.#onConfirm = onConfirm;
    this.#returnTo = returnTo;
    this.#dialog.returnValue = "";
    this.#dialog.showModal();
    p.cancel.focus();
  }
}
