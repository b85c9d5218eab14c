/**
 * Deno Chat page: wires the protocol client (`chat_client.js`) to the views.
 * The room comes from `location.hash`. Each tab is its own session, kept in
 * `sessionStorage` (`tab_session.js`); `localStorage` only remembers the
 * last typed nickname, as a suggestion for new tabs.
 *
 * @module
 */

import { ChatClient } from "./chat_client.js";
import { adoptLegacy, claimTab, readSuggestion, rememberName, safeStorage } from "./tab_session.js";
import { JoinDialog } from "./view_join.js";
import { MembersView } from "./view_members.js";
import { MessageView } from "./view_messages.js";
import { StatusView } from "./view_status.js";

const DEFAULT_ROOM = "lobby";

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The room named by `location.hash` (`#room-name`), or `lobby`. */
function readRoom() {
  let room = location.hash.slice(1);
  try {
    room = decodeURIComponent(room);
  } catch { /* keep the raw text */ }
  return room.trim() || DEFAULT_ROOM;
}

/** The WebSocket URL of this page's server. */
function socketUrl() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

const session = safeStorage("sessionStorage");
const local = safeStorage("localStorage");

const status = new StatusView({
  status: $("status"),
  myName: $("my-name"),
  error: $("error"),
  errorText: $("error-text"),
  errorDismiss: $("error-dismiss"),
});
const members = new MembersView({
  list: /** @type {HTMLUListElement} */ ($("members")),
  count: $("member-count"),
  typing: $("typing"),
});
const messages = new MessageView({
  list: /** @type {HTMLOListElement} */ ($("messages")),
  template: /** @type {HTMLTemplateElement} */ ($("message-template")),
  onRetry(cid) {
    if (client.retry(cid)) messages.markPending(cid);
  },
});

// A duplicated tab carries a copy of its original's session: it must not
// join as that user, nor send that tab's outbox.
const { duplicate } = await claimTab(session);
let room = readRoom();
adoptLegacy(local, session, room);
const client = new ChatClient({
  url: socketUrl,
  room,
  storage: session,
  suggestedName: readSuggestion(local),
});
/** The name of the last welcome in this tab: Escape in the dialog goes back to it. */
let joinedName = "";

const dialog = new JoinDialog({
  dialog: /** @type {HTMLDialogElement} */ ($("join-dialog")),
  form: /** @type {HTMLFormElement} */ ($("join-form")),
  nameInput: /** @type {HTMLInputElement} */ ($("name-input")),
  authRow: $("auth-row"),
  authInput: /** @type {HTMLInputElement} */ ($("auth-input")),
  error: $("join-error"),
}, {
  onSubmit(name, auth) {
    rememberName(local, name);
    client.join(name, { typed: true, auth });
  },
  onDismiss(required) {
    if (!required) return;
    if (joinedName) client.join(joinedName, { typed: !client.nameIsSuggested });
    else dialog.show({ name: client.name });
  },
});

// --- Client events -----------------------------------------------------------

/**
 * @param {string} type
 * @param {(detail: any) => void} handler
 */
function on(type, handler) {
  client.addEventListener(type, (event) => handler(/** @type {CustomEvent} */ (event).detail));
}

/** Told once, when the copy is online. */
let copyNotice = duplicate;

on("status", (detail) => {
  status.show(detail);
  if (detail.state !== "online") members.clearTyping();
  else if (copyNotice) {
    copyNotice = false;
    messages.addNotice("This tab was a copy of another one: it is a new session.");
  }
});

on("prompt", ({ message, needsToken }) => {
  dialog.show({ name: client.name, error: message, needsToken });
});

on("welcome", () => {
  joinedName = client.name;
  document.body.dataset.myId = client.userId;
  status.setName(client.name);
});

on("name", ({ name }) => {
  status.setName(name);
  messages.setOwnName(name);
});

on("members", ({ members: list }) => members.render(list, client.userId));

on("presence", ({ event, member }) => {
  if (member.id === client.userId) return;
  if (event === "leave") members.stopTyping(member.id);
  messages.addNotice(`${member.name} ${event === "join" ? "joined" : "left"}`);
});

on("typing", ({ member }) => members.typing(member));

on("reset", ({ reason }) => {
  messages.reset(
    reason === "gap"
      ? "Some older messages are not shown."
      : reason === "epoch"
      ? "The history was reset on the server."
      : "",
  );
});

on("message", ({ message, own, history }) => {
  members.stopTyping(message.userId);
  messages.addMessage(message, { own });
  if (!history && !own && document.hidden) status.addUnread();
});

on("sent", ({ cid, id }) => messages.markSent(cid, id));

on("failed", ({ cid, message }) => messages.markFailed(cid, message));

on("error", ({ message }) => status.showError(message));

// --- Composer ----------------------------------------------------------------

const composer = /** @type {HTMLFormElement} */ ($("composer"));
const input = /** @type {HTMLTextAreaElement} */ ($("text-input"));

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.replace(/\s+$/, "");
  if (!text.trim()) return;
  input.value = "";
  messages.showPending(client.say(text), client.name);
  input.focus();
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

input.addEventListener("input", () => client.typing());

$("change-name").addEventListener("click", () => {
  dialog.show({ name: client.name, required: !client.online && !joinedName });
});

// --- Page ----------------------------------------------------------------------

/** Shows the current room with this tab's outbox for it. */
function enterRoom() {
  messages.clear();
  members.render([], "");
  members.clearTyping();
  $("room-name").textContent = room;
  status.setRoom(room);
  for (const entry of client.outbox) messages.showPending(entry, client.name);
  messages.scrollToEnd();
}

globalThis.addEventListener("hashchange", () => {
  const next = readRoom();
  if (next === room) return;
  room = next;
  adoptLegacy(local, session, room);
  client.setRoom(room);
  enterRoom();
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) status.clearUnread();
});

// Back online: skip the rest of the backoff wait.
globalThis.addEventListener("online", () => client.reconnect());

enterRoom();
status.setName(client.name);
client.start();
document.body.dataset.ready = "true";
