/**
 * What moderators of the room in view get: a "Moderation" button in the
 * header with the count of open reports, and the panel it opens: the open
 * reports (the message, who reported it and why, with Delete and Dismiss),
 * and the room's settings (topic, slow mode). Hidden for members.
 *
 * @module
 */

import { SLOW_CHOICES } from "./moderation_text.js";
import { snippet } from "./message_item.js";

/** @typedef {import("./room_moderation.js").Report} Report */

/**
 * The reported message, as the panel shows it: its author and text, when
 * the page holds it.
 *
 * @typedef {{ name: string, text: string, deleted: boolean } | undefined} Reported
 */

/** The header's button and the moderation panel. */
export class ModerationPanel {
  #p;
  #h;
  /** @type {Report[]} */
  #reports = [];
  #label = "";

  /**
   * @param {{ open: HTMLButtonElement, badge: HTMLElement, count: HTMLElement,
   *   dialog: HTMLDialogElement, title: HTMLElement, close: HTMLElement, state: HTMLElement,
   *   list: HTMLUListElement, topicForm: HTMLFormElement, topicInput: HTMLInputElement,
   *   slowForm: HTMLFormElement, slowSelect: HTMLSelectElement }} parts
   * @param {{ onDelete: (report: Report, button: HTMLElement) => void,
   *   onDismiss: (report: Report) => void, onTopic: (topic: string) => void,
   *   onSlow: (ms: number) => void, reported: (ref: number) => Reported }} handlers
   */
  constructor(parts, handlers) {
    this.#p = parts;
    this.#h = handlers;
    parts.slowSelect.replaceChildren(...SLOW_CHOICES.map((choice) => {
      const option = document.createElement("option");
      option.value = String(choice.ms);
      option.textContent = choice.label;
      return option;
    }));
    parts.open.addEventListener("click", () => this.show());
    parts.close.addEventListener("click", () => parts.dialog.close());
    parts.dialog.addEventListener("click", (event) => {
      if (event.target === parts.dialog) parts.dialog.close();
    });
    parts.topicForm.addEventListener("submit", (event) => {
      event.preventDefault();
      handlers.onTopic(parts.topicInput.value.trim());
    });
    parts.slowForm.addEventListener("submit", (event) => {
      event.preventDefault();
      handlers.onSlow(Number(parts.slowSelect.value));
    });
    parts.list.addEventListener("click", (event) => {
      const button = /** @type {HTMLElement | null} */ (
        /** @type {Element} */ (event.target).closest("button[data-report]")
      );
      const report = this.#reports.find((r) => r.id === button?.dataset.report);
      if (!button || !report) return;
      if (button.dataset.do === "delete") handlers.onDelete(report, button);
      else handlers.onDismiss(report);
    });
  }

  /** True while the panel is open. */
  get open() {
    return this.#p.dialog.open;
  }

  /**
   * The room in view: the button shows for its moderators only.
   *
   * @param {{ moderator: boolean, label: string, topic: string, slowMs: number }} room
   */
  setRoom({ moderator, label, topic, slowMs }) {
    const p = this.#p;
    this.#label = label;
    p.open.hidden = !moderator;
    p.title.textContent = `Moderation of ${label}`;
    if (!p.dialog.open) p.topicInput.value = topic;
    const known = SLOW_CHOICES.some((c) => c.ms === slowMs);
    if (!known) {
      const option = document.createElement("option");
      option.value = String(slowMs);
      option.textContent = `${Math.round(slowMs / 1000)} seconds`;
      p.slowSelect.append(option);
    }
    if (!p.dialog.open) p.slowSelect.value = String(slowMs);
    if (!moderator && p.dialog.open) p.dialog.close();
  }

  /**
   * The open reports of the room in view, oldest first.
   *
   * @param {Report[]} reports
   */
  setReports(reports) {
    const p = this.#p;
    this.#reports = reports;
    const n = reports.length;
    p.badge.hidden = n === 0;
    p.badge.textContent = String(n);
    p.count.textContent = n === 0 ? "" : n === 1 ? ", 1 open report" : `, ${n} open reports`;
    p.state.textContent = n === 0 ? `No open reports in ${this.#label}.` : "";
    const focused = /** @type {HTMLElement | null} */ (document.activeElement);
    const refocus = focused && p.list.contains(focused);
    p.list.replaceChildren(...reports.map((report) => this.#item(report)));
    if (refocus && !focused.isConnected) {
      (/** @type {HTMLElement | null} */ (p.list.querySelector("button")) ?? p.close).focus();
    }
  }

  /** Opens the panel. */
  show() {
    const p = this.#p;
    if (!p.dialog.open) p.dialog.showModal();
    this.setReports(this.#reports);
    (/** @type {HTMLElement | null} */ (p.list.querySelector("button")) ?? p.topicInput).focus();
  }

  /** @param {Report} report */
  #item(report) {
    const li = document.createElement("li");
    li.className = "report";
    const what = document.createElement("p");
    what.className = "report-what";
    what.id = `report-${report.id}`;
    const message = this.#h.reported(report.ref);
    if (!message) what.textContent = `Message ${report.ref} (not loaded here)`;
    else {
      const author = document.createElement("strong");
      author.dir = "auto";
      author.textContent = message.name;
      const text = document.createElement("span");
      text.dir = "auto";
      text.textContent = message.deleted ? " (deleted)" : `: “${snippet(message.text)}”`;
      what.append(author, text);
    }
    const why = document.createElement("p");
    why.className = "report-why";
    const at = new Date(report.at);
    const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
    why.textContent = `Reported by ${report.by.name || "someone"} at ${pad(at.getHours())}:${
      pad(at.getMinutes())
    }: ${report.reason}`;
    const row = document.createElement("div");
    row.className = "row";
    const remove = button("Delete message…", "delete", report, "small danger");
    remove.hidden = message?.deleted === true;
    row.append(remove, button("Dismiss", "dismiss", report, "small secondary"));
    li.append(what, why, row);
    return li;
  }
}

/**
 * @param {string} text
 * @param {string} action
 * @param {Report} report
 * @param {string} className
 */
function button(text, action, report, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.dataset.report = report.id;
  b.dataset.do = action;
  b.setAttribute("aria-describedby", `report-${report.id}`);
  return b;
}
