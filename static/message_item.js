/**
 * One message as a list item: cloned from the page's `<template>`, filled
 * from a message's state with `textContent` and DOM nodes (its text
 * formatted by `format.js`, with links and mentions; its files by
 * `view_files.js`), never as HTML.
 *
 * @module
 */

import { parseFormatted } from "./format.js";
import { mentionsMe, renderFormatted } from "./view_format.js";

const QUOTE_CHARS = 90;

/** @typedef {import("./conversation.js").MessageState} MessageState */

/**
 * Who reads the list, for mentions and "yours": this tab's user id and name,
 * the names that can be mentioned, and whom this tab blocks (their messages
 * are collapsed to a line); `files` shows a message's files.
 *
 * @typedef {{ myId: string, myName: string, names: () => string[],
 *   blocked?: (userId: string) => boolean,
 *   files?: import("./view_files.js").FileViews }} Reader
 */

/** A short one-line version of `text`. @param {string} text */
export function snippet(text) {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > QUOTE_CHARS ? `${line.slice(0, QUOTE_CHARS - 1)}…` : line;
}

/**
 * The element of a message item that `selector` names (the template has them all).
 *
 * @param {Element} li
 * @param {string} selector
 * @returns {HTMLElement}
 */
export function part(li, selector) {
  return /** @type {HTMLElement} */ (li.querySelector(selector));
}

/**
 * A new item for `state`, from `template`.
 *
 * @param {HTMLTemplateElement} template
 * @param {MessageState} state
 * @param {Reader} reader
 * @param {{ own: boolean, quoted?: MessageState }} options
 * @returns {HTMLLIElement}
 */
export function buildItem(template, state, reader, { own, quoted }) {
  const li = /** @type {HTMLLIElement} */ (
    /** @type {Element} */ (template.content.firstElementChild).cloneNode(true)
  );
  if (state.id) li.dataset.id = String(state.id);
  if (state.cid) li.dataset.cid = state.cid;
  li.dataset.user = state.userId;
  li.dataset.ts = String(state.ts);
  li.classList.toggle("own", own);
  fillItem(li, state, reader, quoted);
  return li;
}

/**
 * Fills an item from a message's state. A message that mentions the reader,
 * or answers one of the reader's messages, is marked (`mentions-me`).
 *
 * @param {HTMLLIElement} li
 * @param {MessageState} state
 * @param {Reader} reader
 * @param {MessageState} [quoted] The message it answers, when known.
 */
export function fillItem(li, state, reader, quoted) {
  // A blocked user's message: one line says so (the log counts a run of them), nothing of it shows.
  const blocked = !li.classList.contains("own") && reader.blocked?.(state.userId) === true;
  if (blocked) li.dataset.blocked = "true";
  else delete li.dataset.blocked;
  const note = part(li, ".blocked-note");
  note.hidden = !blocked;
  if (blocked && !note.textContent) note.textContent = "1 message from a blocked user";
  part(li, ".sender").textContent = state.name;
  fillTime(li, state.ts);
  const text = part(li, ".text");
  li.classList.toggle("deleted", state.deleted);
  part(li, ".edited").hidden = !state.edited || state.deleted;
  part(li, ".menu-button").dataset.off = String(
    state.deleted || (li.dataset.state !== undefined && li.dataset.state !== "sent"),
  );
  if (state.deleted) {
    text.textContent = "This message was deleted.";
    li.classList.remove("mentions-me");
  } else if (blocked) {
    text.replaceChildren();
    li.classList.remove("mentions-me");
  } else {
    const blocks = parseFormatted(state.text, [...reader.names(), reader.myName], reader.myName);
    text.replaceChildren(...renderFormatted(blocks));
    const mentioned = mentionsMe(blocks);
    const answersMe = reader.myId !== "" && !li.classList.contains("own") &&
      (quoted?.userId === reader.myId || li.dataset.replyToMe === "true");
    li.classList.toggle("mentions-me", mentioned || answersMe);
  }
  fillReactions(li, blocked ? { ...state, reactions: [] } : state, reader.myId);
  reader.files?.fill(li, blocked || state.deleted ? [] : state.attachments ?? []);
  if (state.replyTo) {
    li.dataset.replyTo = String(state.replyTo);
    if (quoted || !part(li, ".quote-text").textContent) fillQuote(li, quoted, reader.myId);
  }
}

/**
 * The quote over a reply: who and what it answers.
 *
 * @param {HTMLLIElement} li
 * @param {MessageState | undefined} quoted
 * @param {string} myId
 */
export function fillQuote(li, quoted, myId) {
  const quote = /** @type {HTMLButtonElement} */ (part(li, ".quote"));
  quote.hidden = false;
  quote.title = "Show the message this answers";
  if (quoted && myId && quoted.userId === myId) li.dataset.replyToMe = "true";
  part(quote, ".quote-name").textContent = quoted ? `↩ ${quoted.name}` : "↩";
  part(quote, ".quote-text").textContent = !quoted
    ? "an earlier message"
    : quoted.deleted
    ? "a deleted message"
    : snippet(quoted.text);
}

/**
 * @param {HTMLLIElement} li
 * @param {MessageState} state
 * @param {string} myId
 */
function fillReactions(li, state, myId) {
  const list = part(li, ".reactions");
  list.hidden = state.reactions.length === 0;
  list.replaceChildren(...state.reactions.map(({ emoji, users }) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reaction";
    button.tabIndex = -1;
    button.dataset.emoji = emoji;
    const mine = users.some((u) => u.id === myId);
    button.setAttribute("aria-pressed", String(mine));
    const names = users.map((u) => u.name).join(", ");
    button.title = `${names} reacted with ${emoji}`;
    button.setAttribute("aria-label", `${emoji} ${users.length}: ${names}`);
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(users.length);
    button.append(emoji, " ", count);
    item.append(button);
    return item;
  }));
}

/** @param {HTMLLIElement} li @param {number} ts */
function fillTime(li, ts) {
  const date = new Date(Number.isFinite(ts) ? ts : Date.now());
  const time = /** @type {HTMLTimeElement} */ (part(li, "time"));
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  time.textContent = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * Sets `data-state` (`pending`, `sent` or `failed`) and its visible label.
 *
 * @param {HTMLLIElement} li
 * @param {"pending" | "sent" | "failed"} state
 * @param {string} [reason] Shown when failed.
 */
export function setItemState(li, state, reason = "") {
  li.dataset.state = state;
  part(li, ".state-label").textContent = state === "sent" ? "" : state;
  part(li, ".failure-text").textContent = reason;
  part(li, ".failure").hidden = state !== "failed";
  part(li, ".menu-button").dataset.off = String(
    state !== "sent" || li.classList.contains("deleted"),
  );
}

/**
 * The day a timestamp falls on, as the separator above its first message
 * says it: "Today", "Yesterday", or the date.
 *
 * @param {number} ts
 * @param {number} [now]
 */
export function dayLabel(ts, now = Date.now()) {
  const day = new Date(ts);
  const today = new Date(now);
  const start = (/** @type {Date} */ d) =>
    new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((start(today) - start(day)) / 86_400_000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return day.toLocaleDateString(undefined, {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}

/** A key per local day, to tell two days apart. @param {number} ts */
export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}
