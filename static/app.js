/**
 * Deno Chat page: wires the protocol client (`chat_client.js`) to the views.
 * The room comes from `location.hash`, and the room switcher changes the
 * hash. Each tab is its own session, kept in `sessionStorage`
 * (`tab_session.js`); `localStorage` only remembers the last typed
 * nickname, as a suggestion for new tabs.
 *
 * @module
 */

import { ChatClient, checkRoomName } from "./chat_client.js";
import { mentionsName } from "./rich_text.js";
import { adoptLegacy, claimTab, readSuggestion, rememberName, safeStorage } from "./tab_session.js";
import { Composer } from "./view_composer.js";
import { JoinDialog } from "./view_join.js";
import { MembersView } from "./view_members.js";
import { DeleteDialog, MessageMenu } from "./view_menu.js";
import { MessageView } from "./view_messages.js";
import { Notifier } from "./view_notify.js";
import { roomHref, RoomSwitcher } from "./view_rooms.js";
import { StatusView } from "./view_status.js";

const DEFAULT_ROOM = "lobby";
/** A "left" line is taken back when the member returns this soon (a reconnect). */
const REJOIN_MS = 60_000;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The room named by `location.hash` (`#room-name`), or `lobby`, as typed. */
function readHash() {
  let room = location.hash.slice(1);
  try {
    room = decodeURIComponent(room);
  } catch { /* keep the raw text */ }
  return room.trim() || DEFAULT_ROOM;
}

/** Shows `room` in the address bar without a new history entry. @param {string} room */
function replaceHash(room) {
  if (readHash() !== room) history.replaceState(null, "", roomHref(room));
}

/** The WebSocket URL of this page's server. */
function socketUrl() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

/** The event-stream URL of this page's server: the fallback where WebSockets are blocked. */
function sseUrl() {
  return new URL("/sse", location.href);
}

const session = safeStorage("sessionStorage");
const local = safeStorage("localStorage");

// A duplicated tab carries a copy of its original's session: it must not
// join as that user, nor send that tab's outbox.
const { duplicate } = await claimTab(session);
const typed = readHash();
const checked = checkRoomName(typed);
let room = checked.ok ? checked.name : DEFAULT_ROOM;
adoptLegacy(local, session, room);
const client = new ChatClient({
  url: socketUrl,
  sseUrl,
  room,
  storage: session,
  suggestedName: readSuggestion(local),
});

const status = new StatusView({
  status: $("status"),
  myName: $("my-name"),
  error: $("error"),
  errorText: $("error-text"),
  errorDismiss: $("error-dismiss"),
  banner: $("connection"),
  bannerText: $("connection-text"),
  reconnect: /** @type {HTMLButtonElement} */ ($("reconnect-now")),
}, {
  onReconnect() {
    if (client.online) return;
    if ($("status").dataset.state === "reconnecting") client.reconnect();
    else client.start();
  },
});
const members = new MembersView({
  list: /** @type {HTMLUListElement} */ ($("members")),
  count: $("member-count"),
  typing: $("typing"),
  panel: $("members-panel"),
  toggle: /** @type {HTMLButtonElement} */ ($("members-toggle")),
  toggleText: $("members-toggle-text"),
});
const messages = new MessageView({
  scroller: $("scroller"),
  list: /** @type {HTMLOListElement} */ ($("messages")),
  template: /** @type {HTMLTemplateElement} */ ($("message-template")),
  jump: /** @type {HTMLButtonElement} */ ($("jump-new")),
  announcer: $("announcer"),
  loadOlder: /** @type {HTMLButtonElement} */ ($("load-older")),
  historyState: $("history-state"),
}, {
  names: () => members.names,
  onOlder: () => loadOlder(),
  onAction: (action, id, li) => act(action, id, li),
  onReact: (id, emoji) => client.react(id, emoji),
  onQuote: (id) => jumpTo(id),
});
const menu = new MessageMenu($("message-menu"), {
  onPick(action, id, emoji) {
    if (action === "react") client.react(id, /** @type {string} */ (emoji));
    else {
      const li = messages.item(id);
      if (li) act(action, id, li);
    }
  },
});
const deleteDialog = new DeleteDialog({
  dialog: /** @type {HTMLDialogElement} */ ($("delete-dialog")),
  quote: $("delete-quote"),
  cancel: $("delete-cancel"),
});
const notifier = new Notifier({
  icon: /** @type {HTMLLinkElement} */ ($("favicon")),
  button: /** @type {HTMLButtonElement} */ ($("notify")),
}, session);
const composer = new Composer({
  form: /** @type {HTMLFormElement} */ ($("composer")),
  input: /** @type {HTMLTextAreaElement} */ ($("text-input")),
  send: /** @type {HTMLButtonElement} */ ($("send")),
  bar: $("composer-mode"),
  barText: $("composer-mode-text"),
  cancel: $("composer-cancel"),
}, {
  storage: session,
  onSubmit(text, mode) {
    if (mode.kind === "edit") {
      if (text !== client.message(mode.id)?.text) client.edit(mode.id, text);
      return;
    }
    const replyTo = mode.kind === "reply" ? mode.id : undefined;
    const entry = client.say(text, { replyTo });
    messages.clearDivider();
    messages.showPending(entry, client.name, replyTo ? client.message(replyTo) : undefined);
  },
  onEditLast() {
    const last = client.lastOwnMessage();
    if (!last) return false;
    composer.edit(last.id, last.text);
    return true;
  },
  onTyping: () => client.typing(),
});

/** The name of the last welcome in this tab: Escape in the dialog goes back to it. */
let joinedName = "";
/** A message a reply's quote asked to show, while older pages load. */
let jumpTarget = 0;
/** True from a join typed in the dialog until its welcome: the composer gets the focus. */
let focusAfterJoin = false;
/** False until the client is started (not at once when the address names an invalid room). */
let started = false;

const dialog = new JoinDialog({
  dialog: /** @type {HTMLDialogElement} */ ($("join-dialog")),
  form: /** @type {HTMLFormElement} */ ($("join-form")),
  nameInput: /** @type {HTMLInputElement} */ ($("name-input")),
  authRow: $("auth-row"),
  authInput: /** @type {HTMLInputElement} */ ($("auth-input")),
  error: $("join-error"),
}, {
  onSubmit(name, auth) {
    focusAfterJoin = true;
    rememberName(local, name);
    client.join(name, { typed: true, auth });
  },
  onDismiss(required) {
    if (!required) return;
    if (joinedName) client.join(joinedName, { typed: !client.nameIsSuggested });
    else dialog.show({ name: client.name });
  },
});

const switcher = new RoomSwitcher({
  dialog: /** @type {HTMLDialogElement} */ ($("room-dialog")),
  list: /** @type {HTMLUListElement} */ ($("room-list")),
  listState: $("room-list-state"),
  form: /** @type {HTMLFormElement} */ ($("room-form")),
  input: /** @type {HTMLInputElement} */ ($("room-input")),
  error: $("room-error"),
  close: $("room-close"),
  opener: $("room-button"),
}, {
  onOpen: () => client.rooms(),
  onGo(name) {
    if (name === room && client.online) return;
    if (readHash() === name) switchRoom(name);
    else location.hash = roomHref(name);
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
  // Which transport carries the chat: the WebSocket, or the fallback.
  const line = $("status");
  line.dataset.transport = detail.transport;
  if (detail.state === "online") {
    line.textContent = detail.transport === "sse"
      ? "Online via SSE (WebSockets blocked)"
      : "Online via WebSocket";
  }
  if (detail.state !== "online") members.clearTyping();
  else {
    showHistory();
    if (copyNotice) {
      copyNotice = false;
      messages.addNotice("This tab was a copy of another one: it is a new session.");
    }
  }
});

on("prompt", ({ message, needsToken }) => {
  dialog.show({ name: client.name, error: message, needsToken });
});

on("room-error", ({ message }) => {
  switcher.show({ error: message, value: client.room });
});

on("welcome", () => {
  joinedName = client.name;
  document.body.dataset.myId = client.userId;
  messages.setMe(client.userId, client.name);
  status.setName(client.name);
  // After joining, the composer has the focus (unless you are elsewhere).
  const active = document.activeElement;
  const idle = !active || active === document.body || focusAfterJoin;
  focusAfterJoin = false;
  if (!dialog.open && !switcher.open && !deleteDialog.open && idle) composer.focus();
});

on("name", ({ name }) => {
  status.setName(name);
  messages.setOwnName(name);
});

on("members", ({ members: list }) => members.render(list, client.userId));

/** "X left" lines by user id, to take back when X comes straight back. */
const leftLines = new Map();

on("presence", ({ event, member, repeat }) => {
  if (member.id === client.userId) return;
  if (event === "leave") members.stopTyping(member.id);
  if (repeat) return; // a join of someone already here: a reconnect
  const left = leftLines.get(member.id);
  leftLines.delete(member.id);
  if (
    event === "join" && left && left.name === member.name && left.li.isConnected &&
    Date.now() - left.at < REJOIN_MS
  ) {
    left.li.remove();
    return;
  }
  const li = messages.addNotice(`${member.name} ${event === "join" ? "joined" : "left"}`);
  if (event === "leave") leftLines.set(member.id, { li, name: member.name, at: Date.now() });
});

on("typing", ({ member }) => members.typing(member));

on("reset", ({ reason }) => {
  messages.reset(
    reason === "gap"
      ? "Some messages were missed while away: scroll up to load them."
      : reason === "epoch"
      ? "The history was reset on the server."
      : "",
  );
});

on("message", ({ state, own, history }) => {
  members.stopTyping(state.userId);
  messages.addMessage(state, { own, live: !history, quoted: quotedOf(state) });
  if (history || own) return;
  if (document.hidden) status.addUnread();
  if (mentionsName(state.text, client.name)) notifier.mention(state, room);
});

on("change", ({ target }) => {
  if (!target) return;
  messages.update(target);
  if (target.deleted && composer.mode.kind !== "say" && composer.mode.id === target.id) {
    composer.cancel();
  }
});

on("older", ({ messages: states }) => {
  messages.addOlder(states, quotedOf);
  showHistory();
  if (jumpTarget) jumpTo(jumpTarget);
  // Still at the top (a short page, or you kept scrolling): the page before.
  else if (messages.nearTop()) loadOlder();
});

on("history-error", ({ message }) => {
  jumpTarget = 0;
  showHistory(message);
});

on("rooms", ({ rooms }) => switcher.render(rooms));

on("sent", ({ cid, id }) => messages.markSent(cid, id));

on("failed", ({ cid, message, entry }) => {
  if (entry.kind) status.showError(message);
  else messages.markFailed(cid, message);
});

on("outbox", () => showFailed());

on("error", ({ message }) => status.showError(message));

// --- Actions -------------------------------------------------------------------

/** The message `state` answers, when it is one and the client holds it. @param {any} state */
function quotedOf(state) {
  return state.replyTo ? client.message(state.replyTo) : undefined;
}

/**
 * Does a message action: open its menu, reply, edit or delete.
 *
 * @param {"menu" | "reply" | "edit" | "delete"} action
 * @param {number} id
 * @param {HTMLLIElement} li
 */
function act(action, id, li) {
  const state = client.message(id);
  if (!state || state.deleted) return;
  const own = state.userId === client.userId;
  if (action === "menu") {
    const reacted = state.reactions.filter((r) => r.users.some((u) => u.id === client.userId))
      .map((r) => r.emoji);
    menu.toggle(li, id, { own, reacted });
  } else if (action === "reply") composer.reply(id, state.name, state.text);
  else if (action === "edit" && own) composer.edit(id, state.text);
  else if (action === "delete" && own) {
    deleteDialog.ask(state.text, () => client.remove(id), li);
  }
}

/** Asks for the page before the oldest message shown. */
function loadOlder() {
  if (client.history()) showHistory();
}

/** @param {string} [error] */
function showHistory(error = "") {
  messages.setHistory({
    hasMore: client.hasMore,
    loading: client.loadingHistory,
    oldestId: client.oldestId,
    error,
  });
}

/**
 * Shows message `id` (a reply's original), loading older pages until it is
 * there.
 *
 * @param {number} id
 */
function jumpTo(id) {
  if (messages.reveal(id)) {
    jumpTarget = 0;
    return;
  }
  if (id < client.oldestId && client.hasMore) {
    jumpTarget = id;
    if (!client.loadingHistory) loadOlder();
    return;
  }
  jumpTarget = 0;
  status.showError("That message is no longer kept.");
}

/** The bar under the messages when some were not sent: one Retry for all. */
function showFailed() {
  const failed = client.outbox.filter((e) => !e.kind && e.state === "failed").length;
  $("failed-bar").hidden = failed === 0;
  $("failed-text").textContent = failed === 1
    ? "1 message was not sent."
    : `${failed} messages were not sent.`;
}

$("retry-failed").addEventListener("click", () => {
  const failed = client.outbox.filter((e) => e.state === "failed").map((e) => e.cid);
  client.retryFailed();
  for (const cid of failed) messages.markPending(cid);
  showFailed();
});

$("discard-failed").addEventListener("click", () => {
  for (const cid of client.discardFailed()) messages.drop(cid);
  showFailed();
});

$("change-name").addEventListener("click", () => {
  dialog.show({ name: client.name, required: !client.online && !joinedName });
});

// Ctrl+K (⌘K): the room switcher, from anywhere.
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
    if (dialog.open || deleteDialog.open) return;
    event.preventDefault();
    switcher.show();
  }
});

// --- Page ----------------------------------------------------------------------

/** Shows the current room with this tab's outbox for it. */
function enterRoom() {
  messages.clear();
  messages.setHistory({ hasMore: false, unknown: true });
  menu.close(false);
  members.render([], "");
  members.clearTyping();
  leftLines.clear();
  jumpTarget = 0;
  $("room-name").textContent = room;
  status.setRoom(room);
  switcher.setCurrent(room);
  composer.setRoom(room);
  for (const entry of client.outbox) {
    if (!entry.kind) messages.showPending(entry, client.name);
  }
  showFailed();
  messages.scrollToEnd();
}

/** Leaves this room for `next` (a valid, normalised name). @param {string} next */
function switchRoom(next) {
  replaceHash(next);
  if (next === room && client.online) return;
  room = next;
  adoptLegacy(local, session, room);
  client.setRoom(room);
  enterRoom();
  if (!started) {
    started = true;
    client.start();
  }
}

globalThis.addEventListener("hashchange", () => {
  const next = checkRoomName(readHash());
  if (!next.ok) {
    // Say so where it can be fixed, and keep the address on the room shown.
    const value = readHash();
    replaceHash(room);
    switcher.show({ error: next.message, value });
    return;
  }
  switchRoom(next.name);
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    status.clearUnread();
    notifier.clear();
  }
});

// Back online: skip the rest of the backoff wait.
globalThis.addEventListener("online", () => client.reconnect());

enterRoom();
status.setName(client.name);
if (checked.ok) {
  replaceHash(room);
  started = true;
  client.start();
} else {
  status.show({ state: "offline", reason: "room" });
  switcher.show({ error: checked.message, value: typed });
}
document.body.dataset.ready = "true";
