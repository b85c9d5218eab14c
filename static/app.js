/**
 * Deno Chat page: wires the protocol client (`chat_client.js`) to the views.
 * The tab is in every room of its session at once; the sidebar lists them,
 * and the room in view comes from `location.hash` (opening `#name` joins
 * that room too). Each tab is its own session, kept in `sessionStorage`
 * (`tab_session.js`); `localStorage` only remembers the last typed nickname,
 * as a suggestion for new tabs.
 *
 * Direct conversations are rooms too (`dm:<id>:<id>`), listed under "Direct
 * messages" by the other person's name; people's actions (Message, Block,
 * Report, and for moderators Kick, Mute, Ban, Delete) are in `actions.js`.
 *
 * @module
 */

import { AccountApi } from "./account.js";
import { Actions } from "./actions.js";
import { ChatClient } from "./chat_client.js";
import {
  bannedText,
  canActOn,
  durationText,
  modNotice,
  mutedText,
  removedText,
} from "./moderation_text.js";
import { checkRoomName } from "./names.js";
import {
  adoptLegacy,
  claimTab,
  readSuggestion,
  rememberName,
  safeStorage,
  sessionRooms,
} from "./tab_session.js";
import { FileFetcher } from "./uploads.js";
import { AccountPanel } from "./view_account.js";
import { ActionMenu } from "./view_action_menu.js";
import { AttachView } from "./view_attach.js";
import { Composer } from "./view_composer.js";
import { JoinDialog } from "./view_join.js";
import { MembersView } from "./view_members.js";
import { EmojiPicker, insertAtCaret, ShortcodeCompletion } from "./view_emoji.js";
import { FileViews } from "./view_files.js";
import { DeleteDialog, MessageMenu } from "./view_menu.js";
import { MessageLog } from "./view_messages.js";
import { ModDialog } from "./view_mod_dialog.js";
import { ModerationPanel } from "./view_moderation.js";
import { Notifier } from "./view_notify.js";
import { MessagePane } from "./view_pane.js";
import { roomHref, RoomSwitcher } from "./view_rooms.js";
import { SearchView } from "./view_search.js";
import { Sidebar } from "./view_sidebar.js";
import { StatusView } from "./view_status.js";

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The room named by `location.hash` (`#room-name`), as typed; "" when there is none. */
function readHash() {
  let room = location.hash.slice(1);
  try {
    room = decodeURIComponent(room);
  } catch { /* keep the raw text */ }
  return room.trim();
}

/** Shows `room` in the address bar without a new history entry. @param {string} room */
function replaceHash(room) {
  if (room && readHash() !== room) history.replaceState(null, "", roomHref(room));
}

/** The WebSocket URL of this page's server. */
function socketUrl() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

const session = safeStorage("sessionStorage");
const local = safeStorage("localStorage");

// A duplicated tab carries a copy of its original's session: it must not
// join as that user, nor send that tab's outbox.
const { duplicate } = await claimTab(session);
const typed = readHash();
const checked = typed ? checkRoomName(typed) : { ok: true, name: "" };
const hashRoom = checked.ok ? checked.name : "";
for (const room of new Set([hashRoom, ...sessionRooms(session)])) {
  if (room) adoptLegacy(local, session, room);
}
const client = new ChatClient({
  url: socketUrl,
  sseUrl: () => new URL("/sse", location.href),
  // The address's room, or the session's rooms, or the lobby.
  room: hashRoom || (sessionRooms(session).length || !checked.ok ? null : "lobby"),
  storage: session,
  suggestedName: readSuggestion(local),
});

// --- Views -----------------------------------------------------------------------

const status = new StatusView({
  status: $("status"),
  countdown: $("status-countdown"),
  myName: $("my-name"),
  error: $("error"),
  errorText: $("error-text"),
  errorDismiss: $("error-dismiss"),
  errorAction: /** @type {HTMLButtonElement} */ ($("error-action")),
  info: $("info"),
  infoText: $("info-text"),
  infoAction: /** @type {HTMLButtonElement} */ ($("info-action")),
  infoDismiss: $("info-dismiss"),
  banner: $("connection"),
  bannerText: $("connection-text"),
  reconnect: /** @type {HTMLButtonElement} */ ($("reconnect-now")),
}, {
  onReconnect() {
    if (client.online) return;
    if ($("status").dataset.state === "reconnecting") client.reconnect();
    else start();
  },
});
const modDialog = new ModDialog({
  dialog: /** @type {HTMLDialogElement} */ ($("mod-dialog")),
  title: $("mod-title"),
  quote: $("mod-quote"),
  durations: $("mod-durations"),
  choices: $("mod-duration-choices"),
  reasonLabel: $("mod-reason-label"),
  reason: /** @type {HTMLInputElement} */ ($("mod-reason")),
  hint: $("mod-hint"),
  cancel: $("mod-cancel"),
  confirm: /** @type {HTMLButtonElement} */ ($("mod-confirm")),
});
const actions = new Actions({ client, dialog: modDialog, status });
const memberMenu = new ActionMenu($("member-menu"));
const members = new MembersView({
  list: /** @type {HTMLUListElement} */ ($("members")),
  count: $("member-count"),
  typing: $("typing"),
  panel: $("members-panel"),
  toggle: /** @type {HTMLButtonElement} */ ($("members-toggle")),
  toggleText: $("members-toggle-text"),
  state: $("members-state"),
}, {
  onActions: (member, button) => openMemberMenu(member, button),
});
const pane = new MessagePane({
  scroller: $("scroller"),
  jump: /** @type {HTMLButtonElement} */ ($("jump-new")),
  announcer: $("announcer"),
}, {
  onOlder: () => loadOlder(),
  onEnd: () => readUp(),
  onAction: (action, id, li) => act(action, id, li),
  onReact: (id, emoji) => client.react(id, emoji),
  onQuote: (id) => jumpTo(id),
});
/** The emoji picker, for the composer and for reactions. */
const picker = new EmojiPicker();
const menu = new MessageMenu($("message-menu"), {
  onPick(action, id, emoji) {
    if (action === "react") client.react(id, /** @type {string} */ (emoji));
    else if (action === "more") {
      const li = pane.log?.item(id);
      const anchor = li?.querySelector(".menu-button");
      if (li && anchor) {
        picker.toggle(/** @type {HTMLElement} */ (anchor), (emoji) => {
          client.react(id, emoji);
          li.focus();
        }, { label: "React with" });
      }
    } else {
      const li = pane.log?.item(id);
      if (li) act(action, id, li);
    }
  },
});
const deleteDialog = new DeleteDialog({
  dialog: /** @type {HTMLDialogElement} */ ($("delete-dialog")),
  quote: $("delete-quote"),
  cancel: $("delete-cancel"),
});
const notifier = new Notifier(
  {
    icon: /** @type {HTMLLinkElement} */ ($("favicon")),
    button: /** @type {HTMLButtonElement} */ ($("notify")),
  },
  session,
  { onOpen: (room) => go(room) },
);
/** Messages' files, fetched with this tab's session. */
const files = new FileViews(new FileFetcher({ token: () => client.sessionToken }));
const attach = new AttachView({
  button: /** @type {HTMLButtonElement} */ ($("attach")),
  input: /** @type {HTMLInputElement} */ ($("file-input")),
  list: /** @type {HTMLUListElement} */ ($("pending-files")),
  live: $("upload-live"),
  textarea: /** @type {HTMLTextAreaElement} */ ($("text-input")),
  dropZones: [$("scroller"), /** @type {HTMLElement} */ (document.querySelector(".composer-bar"))],
}, {
  token: () => client.sessionToken,
  onError: (message) => status.showError(message),
});
const composer = new Composer({
  form: /** @type {HTMLFormElement} */ ($("composer")),
  input: /** @type {HTMLTextAreaElement} */ ($("text-input")),
  send: /** @type {HTMLButtonElement} */ ($("send")),
  sendLabel: $("send-label"),
  sendWait: $("send-wait"),
  notice: $("composer-notice"),
  noticeText: $("composer-notice-text"),
  countdown: $("composer-countdown"),
  bar: $("composer-mode"),
  barText: $("composer-mode-text"),
  cancel: $("composer-cancel"),
}, {
  storage: session,
  onSubmit(text, mode) {
    if (!client.room) return;
    if (mode.kind === "edit") {
      if (text !== client.message(mode.id)?.text) client.edit(mode.id, text);
      return;
    }
    const replyTo = mode.kind === "reply" ? mode.id : undefined;
    const files = attach.take();
    if (!text.trim() && !files.length) {
      status.showInfo("The files are still uploading: send them once they are ready.");
      return;
    }
    // Files still on their way stay for the next message.
    if (attach.busy) status.showInfo("Files still uploading stay for your next message.");
    const entry = client.say(text, { replyTo, files });
    const log = logOf(client.room);
    log.clearDivider();
    log.showPending(entry, client.name, replyTo ? client.message(replyTo) : undefined);
    pane.scrollToEnd();
  },
  onEditLast() {
    const last = client.lastOwnMessage();
    if (!last) return false;
    composer.edit(last.id, last.text);
    return true;
  },
  onTyping: () => client.typing(),
  hasFiles: () => attach.ready || attach.busy,
});
new ShortcodeCompletion(/** @type {HTMLTextAreaElement} */ ($("text-input")), $("composer"));
$("emoji-button").addEventListener("click", () => {
  picker.toggle($("emoji-button"), (emoji) => {
    insertAtCaret(/** @type {HTMLTextAreaElement} */ ($("text-input")), emoji);
  });
});
const sidebar = new Sidebar({
  nav: $("rooms-nav"),
  list: /** @type {HTMLUListElement} */ ($("joined-rooms")),
  directList: /** @type {HTMLUListElement} */ ($("direct-rooms")),
  directTitle: $("direct-title"),
  toggle: /** @type {HTMLButtonElement} */ ($("rooms-toggle")),
  toggleText: $("rooms-toggle-text"),
  close: $("rooms-close"),
  backdrop: $("drawer-backdrop"),
  add: $("rooms-add"),
}, {
  onLeave: (room) => client.leaveRoom(room),
  onAdd: () => switcher.show(),
});

const moderation = new ModerationPanel({
  open: /** @type {HTMLButtonElement} */ ($("moderation-open")),
  badge: $("reports-badge"),
  count: $("reports-count"),
  dialog: /** @type {HTMLDialogElement} */ ($("moderation-dialog")),
  title: $("moderation-title"),
  close: $("moderation-close"),
  state: $("reports-state"),
  list: /** @type {HTMLUListElement} */ ($("reports-list")),
  topicForm: /** @type {HTMLFormElement} */ ($("topic-form")),
  topicInput: /** @type {HTMLInputElement} */ ($("topic-input")),
  slowForm: /** @type {HTMLFormElement} */ ($("slow-form")),
  slowSelect: /** @type {HTMLSelectElement} */ ($("slow-select")),
}, {
  onDelete(report, button) {
    const state = client.message(report.ref);
    const message = state
      ? { id: state.id, name: state.name, text: state.text }
      : { id: report.ref, name: "someone", text: "" };
    actions.remove(client.room, message, button);
  },
  onDismiss: (report) => client.moderate("dismiss", { ref: report.ref }),
  onTopic: (topic) => client.moderate("topic", { topic }),
  onSlow: (ms) => client.moderate("slow", { durationMs: ms }),
  reported(ref) {
    const state = client.message(ref);
    return state && { name: state.name, text: state.text, deleted: state.deleted };
  },
});

/** The name of the last welcome in this tab: Escape in the dialog goes back to it. */
let joinedName = "";
/** A message a reply's quote asked to show, while older pages load. */
let jumpTarget = 0;
/** True from a join typed in the dialog until its welcome: the composer gets the focus. */
let focusAfterJoin = false;
/** False until the client is started (not at once when the address names an invalid room). */
let started = false;
/** True while the nickname dialog waits for the answer to a rename. */
let renaming = false;

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
    if (client.online && auth === undefined) {
      // In the rooms already: take the name there, staying in them; the dialog waits.
      renaming = true;
      client.rename(name);
      return false;
    }
    focusAfterJoin = true;
    client.join(name, { typed: true, auth });
    started = true;
  },
  onDismiss(required) {
    renaming = false;
    if (!required) return;
    if (joinedName) client.join(joinedName, { typed: !client.nameIsSuggested });
    else dialog.show({ name: client.name });
  },
});

// --- Account (passkeys) ---------------------------------------------------------------

const account = new AccountPanel({
  open: /** @type {HTMLButtonElement} */ ($("account-open")),
  dialog: /** @type {HTMLDialogElement} */ ($("account-dialog")),
  close: $("account-close"),
  status: $("account-status"),
  guest: $("account-guest"),
  guestText: $("account-guest-text"),
  register: /** @type {HTMLButtonElement} */ ($("account-register")),
  signIn: /** @type {HTMLButtonElement} */ ($("account-signin")),
  signed: $("account-signed"),
  name: $("account-name"),
  renameForm: /** @type {HTMLFormElement} */ ($("account-rename")),
  renameInput: /** @type {HTMLInputElement} */ ($("account-rename-input")),
  passkeys: /** @type {HTMLUListElement} */ ($("passkey-list")),
  addPasskey: /** @type {HTMLButtonElement} */ ($("passkey-add")),
  signOut: /** @type {HTMLButtonElement} */ ($("account-signout")),
  removeDialog: /** @type {HTMLDialogElement} */ ($("passkey-remove-dialog")),
  removeText: $("passkey-remove-text"),
  joinBox: $("join-account"),
  joinText: $("join-account-text"),
  joinSignIn: /** @type {HTMLButtonElement} */ ($("join-signin")),
}, {
  api: new AccountApi(),
  guestName: () => client.account ? client.guestName : client.name,
  // Signed in: the client is the account (its connection reconnects with the cookie), in its rooms.
  onAccount(me) {
    const blocks = me.blocks.filter((id) => typeof id === "string");
    client.useAccount({ id: me.account.id, name: me.account.name }, { blocks });
    for (const { room } of me.rooms) client.joinRoom(room);
    if (dialog.open) {
      dialog.close();
      focusAfterJoin = true;
    }
    // Stopped (asked for a name, signed out): connect; else useAccount has reconnected.
    if (started && $("status").dataset.state === "offline") start();
  },
  onSignOut: () => client.signedOut(),
  // Another tab signed in: a tab asking for a name (signed out, or new) takes that session.
  onSignInElsewhere() {
    if (dialog.open && $("status").dataset.state === "offline") account.load();
  },
});

client.addEventListener("prompt", (event) => {
  const { code } = /** @type {CustomEvent} */ (event).detail;
  account.prompted({ reserved: code === "name_reserved" ? client.name : undefined });
});

// Signed out (here, or in another tab of this session): a guest again, asked for a name; unless
// the browser holds a new session (another tab signed in, which ends this one): then that account.
client.addEventListener("signed-out", async (event) => {
  const { name } = /** @type {CustomEvent} */ (event).detail;
  account.signedOut();
  status.setName("");
  if (await account.load()) return;
  account.prompted({ signedOut: true });
  dialog.show({ name });
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
  onGo: (name) => go(name),
});

const search = new SearchView({
  dialog: /** @type {HTMLDialogElement} */ ($("search-dialog")),
  form: /** @type {HTMLFormElement} */ ($("search-form")),
  input: /** @type {HTMLInputElement} */ ($("search-input")),
  state: $("search-state"),
  list: /** @type {HTMLUListElement} */ ($("search-results")),
  more: /** @type {HTMLButtonElement} */ ($("search-more")),
  close: $("search-close"),
  opener: $("search-open"),
}, {
  search: (q, before) => client.search(q, before === undefined ? {} : { before }),
  cancel: () => client.cancelSearch(),
  label: (room) => labelOf(room),
  onJump: (room, id) => find(room, id),
});

// --- Rooms -------------------------------------------------------------------------

/** Each joined room's log. @type {Map<string, MessageLog>} */
const rooms = new Map();

/** The log of `room`, made when first needed. @param {string} room */
function logOf(room) {
  let log = rooms.get(room);
  if (!log) {
    log = new MessageLog(room, {
      log: /** @type {HTMLTemplateElement} */ ($("log-template")),
      item: /** @type {HTMLTemplateElement} */ ($("message-template")),
    }, {
      get myId() {
        return client.userId;
      },
      get myName() {
        return client.name;
      },
      names: () => client.membersOf(room).map((m) => m.name),
      blocked: (userId) => client.isBlocked(userId),
      files,
    });
    log.setHistory({ hasMore: false, unknown: true });
    for (const item of client.outbox) {
      if (item.room === room && !item.kind) log.showPending(item, client.name);
    }
    rooms.set(room, log);
  }
  return log;
}

/** The room `go` or the address asked for: a `room-error` for it opens the switcher. */
let asked = hashRoom;

/** Shows `room` (a valid, normalised name), joining it too: the address follows. @param {string} room */
function go(room) {
  asked = room;
  if (readHash() === room) show(room);
  else location.hash = roomHref(room);
}

/** Makes `room` the room in view (joining it if needed) and shows it. @param {string} room */
function show(room) {
  client.view(room);
  if (!started) start();
  render();
}

/** The log shown when the tab is in no room (after a ban, say). */
const noRoom = new MessageLog("", {
  log: /** @type {HTMLTemplateElement} */ ($("log-template")),
  item: /** @type {HTMLTemplateElement} */ ($("message-template")),
}, { myId: "", myName: "", names: () => [] });
noRoom.setHistory({ hasMore: false, unknown: true });
noRoom.addNotice("You are in no room: open one with All rooms… (Ctrl+K).");

/**
 * How the page names `room`: "#team", or "@bob" for a direct conversation.
 *
 * @param {string} room
 */
function labelOf(room) {
  const state = client.roomState(room);
  if (state?.direct) return `@${state.peer?.name || "someone"}`;
  return `#${room}`;
}

/** Brings the views in line with the client's rooms and the room in view. */
function render() {
  const view = client.room;
  for (const room of [...rooms.keys()]) if (!client.joinedRooms.includes(room)) rooms.delete(room);
  replaceHash(view);
  renderSidebar();
  // A conversation is no room of the directory: it never lists one.
  switcher.setCurrent(client.roomState(view)?.direct ? "" : view, client.joinedRooms);
  renderHeader();
  if (!view && pane.log !== noRoom) {
    // The address names no room either: a link to the room left works again.
    if (started && location.hash) history.replaceState(null, "", location.pathname);
    menu.close(false);
    memberMenu.close(false);
    pane.show(noRoom);
    members.render([], client.userId);
    members.clearTyping();
    renderComposer();
    showFailed();
    return;
  }
  if (!view || pane.log?.room === view) return;
  menu.close(false);
  memberMenu.close(false);
  jumpTarget = 0;
  const log = logOf(view);
  pane.show(log);
  renderMembers();
  members.clearTyping();
  composer.setRoom(view);
  attach.setRoom(view);
  renderComposer();
  showHistory();
  showFailed();
  arrive();
}

/** The header: the room in view (or the person), its topic, the moderation button. */
function renderHeader() {
  const view = client.room;
  const state = client.roomState(view);
  const direct = state?.direct === true;
  const name = $("room-name");
  name.textContent = !view ? "No room" : direct ? state?.peer?.name || "someone" : view;
  name.dataset.direct = String(direct);
  name.dataset.none = String(!view);
  $("messages-heading").textContent = !view
    ? "Messages"
    : direct
    ? `Messages with ${state?.peer?.name || "someone"}`
    : `Messages in #${view}`;
  const topic = state?.topic ?? "";
  $("topic").hidden = !topic;
  $("topic").title = topic;
  $("topic-text").textContent = topic;
  moderation.setRoom({
    moderator: Boolean(state?.role),
    label: labelOf(view),
    topic,
    slowMs: state?.slowMs ?? 0,
  });
  moderation.setReports(state?.role ? state.reports : []);
}

/** The member list of the room in view, with roles and who is blocked. */
function renderMembers() {
  members.render(client.membersOf(client.room), client.userId, (id) => client.isBlocked(id));
  if (memberMenu.open && !memberMenu.button?.isConnected) memberMenu.close(false);
}

/** What limits writing in the room in view: no room, a mute, slow mode. */
function renderComposer() {
  const state = client.roomState();
  if (!client.room || !state) {
    composer.setNotice({ text: "You are in no room: pick one to write.", locked: true });
  } else if (state.mute) {
    composer.setNotice({
      text: mutedText(labelOf(client.room), state.mute),
      until: state.mute.until,
      locked: true,
    });
  } else if (state.slowMs > 0 && !state.role) {
    composer.setNotice({ text: `Slow mode: one message every ${durationText(state.slowMs)}.` });
  } else composer.setNotice({ text: "" });
  composer.setWait(client.room ? client.slowUntil() : 0);
  attach.setEnabled(Boolean(client.room && state && !state.mute));
}

/**
 * The room in view is shown (a switch, the tab back in front, a resume):
 * what came since it was read starts with the divider, and the first mention
 * of you in it, or else the divider, is brought into view if it is not.
 */
function arrive() {
  const state = client.roomState();
  const log = pane.log;
  if (!state || !log || document.hidden) return;
  if (state.unread > 0) {
    log.placeDivider(state.readId);
    const mention = state.mentions > 0 ? log.firstUnreadMention(state.readId) : null;
    if (mention) {
      if (!pane.inView(mention)) pane.reveal(mention, { focus: false });
    } else if (log.divider && !pane.inView(log.divider)) pane.showAtTop(log.divider);
  }
  readUp();
}

/** The room in view is read up to its end when the end is in view and the tab is visible. */
function readUp() {
  if (client.room && pane.stuck && !document.hidden) client.markRead(client.room);
}

function renderSidebar() {
  let unread = 0, mentions = 0;
  const list = client.joinedRooms.map((name) => {
    const state = client.roomState(name);
    unread += state?.unread ?? 0;
    mentions += state?.mentions ?? 0;
    return {
      name,
      unread: state?.unread ?? 0,
      mentions: state?.mentions ?? 0,
      joined: state?.joined ?? false,
      direct: state?.direct ?? false,
      label: state?.peer?.name ?? "",
    };
  });
  sidebar.render(list, client.room);
  status.setTitle(client.room ? labelOf(client.room) : "", { unread, mentions });
  pane.setUnread(client.roomState()?.unread ?? 0);
}

// --- Client events ---------------------------------------------------------------

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
  members.setOffline(detail.state !== "online");
  renderSidebar();
  if (detail.state === "online") {
    showHistory();
    if (copyNotice && client.room) {
      copyNotice = false;
      logOf(client.room).addNotice("This tab was a copy of another one: it is a new session.");
    }
  }
});

on("prompt", ({ message, needsToken }) => {
  renaming = false;
  dialog.show({ name: client.name, error: message, needsToken });
});

on("room-error", ({ room, code, message, until, reason }) => {
  render();
  const text = code === "banned" ? bannedText(`#${room}`, { until, reason }) : message;
  if (room === asked || !client.room) switcher.show({ error: text, value: room });
  else status.showError(code === "banned" ? text : `#${room}: ${message}`);
});

on("rooms-changed", () => render());

on("left", ({ room, reason, sanction }) => {
  if (sanction) {
    // Why, by whom and until when, until dismissed; a kicked user may come straight back.
    const kick = sanction.action === "kick";
    return status.showError(removedText(`#${room}`, sanction), {
      sticky: true,
      ...(kick ? { action: { label: `Join #${room} again`, run: () => go(room) } } : {}),
    });
  }
  status.showError(`You are no longer in #${room}${reason ? ` (${reason})` : ""}.`, {
    sticky: reason === "kicked" || reason === "banned",
  });
});

on("direct", ({ room, opened }) => {
  renderSidebar();
  if (opened && room === client.room) {
    asked = room;
    composer.focus();
  }
});

on("direct-error", ({ name, code, message }) => {
  status.showError(
    code === "not_found"
      ? `Nobody called ${name} is online: you can write to people while they are here.`
      : code === "blocked"
      ? `${name} does not take direct messages from you.`
      : message,
  );
});

on("blocks", () => {
  for (const [room, log] of rooms) log.refill((id) => client.message(id, room));
  renderMembers();
  renderSidebar();
});

on("moderation", ({ room, event, target, history, own }) => {
  const log = logOf(room);
  const text = modNotice(event, { moderator: Boolean(client.roomState(room)?.role) });
  if (text) log.addModNotice(event.id, text);
  if (target) log.update(target, quotedOf(room, target));
  if (!text || history || room !== client.room) return;
  pane.announce(text);
  // The panel covers the log: your own act is confirmed over it.
  if (own && moderation.open) status.showInfo(`${text}.`);
});

on("policy", ({ room, touched }) => {
  if (room !== client.room) return;
  renderHeader();
  renderComposer();
  if (touched.includes("roles") || touched.includes("role")) renderMembers();
});

on("slow", ({ room, until }) => {
  if (room === client.room) composer.setWait(until);
});

on("reports", ({ room, reports, added }) => {
  if (room !== client.room) return;
  moderation.setReports(reports);
  if (added) pane.announce(`New report in ${labelOf(room)}: ${added.reason}`);
});

on("reported", ({ room }) => {
  status.showInfo(`Thank you: the moderators of ${labelOf(room)} will look at it.`);
});

on("welcome", ({ room }) => {
  joinedName = client.name;
  document.body.dataset.myId = client.userId;
  status.setName(client.name);
  if (room !== client.room) return;
  // After joining, the composer has the focus (unless you are elsewhere).
  const active = document.activeElement;
  const idle = !active || active === document.body || focusAfterJoin;
  focusAfterJoin = false;
  const dialogs = dialog.open || switcher.open || deleteDialog.open || modDialog.open ||
    moderation.open;
  if (!dialogs && idle) composer.focus();
});

on("joined", ({ room }) => {
  renderSidebar();
  if (room !== client.room) return;
  showHistory();
  arrive();
});

on("name", ({ name }) => {
  status.setName(name);
  for (const log of rooms.values()) log.setOwnName(name);
  if (renaming) {
    renaming = false;
    dialog.close();
    composer.focus();
  }
});

on("rename-error", ({ message }) => {
  if (renaming) dialog.refuse(message);
  else status.showError(message);
});

on("members", ({ room }) => {
  if (room === client.room) renderMembers();
  // A conversation's name follows the other person's.
  if (client.roomState(room)?.direct) {
    renderSidebar();
    if (room === client.room) renderHeader();
  }
});

on("presence", (presence) => {
  if (presence.event === "leave" && presence.room === client.room) {
    members.stopTyping(presence.member.id);
  }
  // In a conversation the other person's comings and goings are no news (nor a block's).
  if (client.roomState(presence.room)?.direct && presence.event !== "rename") return;
  rooms.get(presence.room)?.presence(presence, client.userId);
});

on("typing", ({ room, member }) => {
  if (room === client.room) members.typing(member);
});

on("reset", ({ room, reason }) => {
  logOf(room).reset(
    reason === "gap"
      ? "Some messages were missed while away: scroll up to load them."
      : reason === "epoch"
      ? "The history was reset on the server."
      : "",
  );
});

on("message", ({ room, state, own, history, mention }) => {
  const inView = room === client.room;
  if (inView) members.stopTyping(state.userId);
  const snapshot = client.roomState(room);
  const read = snapshot?.readId ?? 0;
  const looking = inView && pane.stuck && !document.hidden;
  const blocked = client.isBlocked(state.userId);
  logOf(room).addMessage(state, {
    own,
    quoted: quotedOf(room, state),
    unseen: !own && !blocked && state.id > read && !looking,
  });
  if (history || own || blocked) return;
  if (inView) pane.announce(`${state.name}: ${state.text}${filesSaid(state.attachments)}`);
  if (mention) {
    notifier.mention(state, room, {
      inView,
      label: labelOf(room),
      direct: snapshot?.direct === true,
    });
  }
  if (looking) readUp();
});

on("change", ({ room, target }) => {
  if (!target) return;
  logOf(room).update(target, quotedOf(room, target));
  if (
    room === client.room && target.deleted && composer.mode.kind !== "say" &&
    composer.mode.id === target.id
  ) {
    composer.cancel();
  }
});

on("older", ({ room, messages: states, moderation: events }) => {
  const log = logOf(room);
  const moderator = Boolean(client.roomState(room)?.role);
  const notices = (events ?? []).map((/** @type {any} */ event) => ({
    id: event.id,
    text: modNotice(event, { moderator }),
  })).filter((/** @type {{ text: string }} */ n) => n.text);
  const add = () => log.addOlder(states, (state) => quotedOf(room, state), notices);
  if (room !== client.room) return add();
  pane.keepPlace(add);
  showHistory();
  if (jumpTarget) jumpTo(jumpTarget);
  // Still at the top (a short page, or you kept scrolling): the page before.
  else if (pane.nearTop()) loadOlder();
});

on("history-error", ({ room, message }) => {
  if (room !== client.room) return;
  jumpTarget = 0;
  showHistory(message);
});

on("rooms", ({ rooms: list }) => switcher.render(list));

on("search", (answer) => search.showResults(answer));

on("search-error", (error) => search.showError(error));

on("around", ({ room, id }) => {
  if (room !== found.room || id !== found.id || room !== client.room) return;
  jumpTo(id);
});

on("around-error", ({ room, id }) => {
  if (room === found.room && id === found.id && room === client.room) jumpTo(id);
});

on("sent", ({ room, cid, id }) => rooms.get(room)?.markSent(cid, id));

on("failed", ({ room, cid, message, entry }) => {
  if (entry.kind) status.showError(message);
  else rooms.get(room)?.markFailed(cid, message);
});

on("outbox", () => showFailed());

on("unread", () => renderSidebar());

on("error", ({ message }) => status.showError(message));

// --- Actions -------------------------------------------------------------------------

/**
 * The message `state` answers, when it is one and the client holds it.
 *
 * @param {string} room
 * @param {any} state
 */
function quotedOf(room, state) {
  return state.replyTo ? client.message(state.replyTo, room) : undefined;
}

/**
 * The role of user `id` in the room in view ("" for a member, or someone
 * not here).
 *
 * @param {string} id
 */
function roleOf(id) {
  return client.membersOf(client.room).find((m) => m.id === id)?.role ?? "";
}

/**
 * Does a message action in the room in view: open its menu, reply, edit or
 * delete; on someone else's: message, report, block; a moderator's delete,
 * kick, mute and ban.
 *
 * @param {"menu" | import("./view_menu.js").MenuAction} action
 * @param {number} id
 * @param {HTMLLIElement} li
 */
function act(action, id, li) {
  const state = client.message(id);
  const room = client.room;
  const snapshot = client.roomState();
  if (!state || state.deleted || !snapshot) return;
  const own = state.userId === client.userId;
  const person = { id: state.userId, name: state.name };
  const blocked = client.isBlocked(state.userId);
  const moderate = canActOn(
    /** @type {any} */ (snapshot.role),
    /** @type {any} */ (roleOf(
      state.userId,
    )),
  );
  if (action === "menu") {
    const reacted = state.reactions.filter((r) => r.users.some((u) => u.id === client.userId))
      .map((r) => r.emoji);
    menu.toggle(li, id, {
      own,
      reacted,
      name: state.name,
      blocked,
      direct: snapshot.direct,
      moderate,
      // A moderator's delete takes any message (the server decides no more).
      remove: Boolean(snapshot.role),
    });
    // The last message's menu opens below it: all of it comes into view.
    if (menu.open) pane.bringIntoView($("message-menu"));
  } else if (action === "reply" && !blocked) composer.reply(id, state.name, state.text);
  else if (action === "edit" && own) composer.edit(id, state.text);
  else if (action === "delete" && own) {
    deleteDialog.ask(state.text, () => client.remove(id), li);
  } else if (action === "delete" && snapshot.role) actions.remove(room, state, li);
  else if (action === "message" && !own) actions.message(person);
  else if (action === "report" && !own) actions.report(room, state, li);
  else if (action === "block" && !own) actions.toggleBlock(person);
  else if (action === "kick" && moderate) actions.kick(room, person, li);
  else if (action === "mute" && moderate) actions.mute(room, person, li);
  else if (action === "ban" && moderate) actions.ban(room, person, li);
}

/**
 * Opens a member's actions menu: Message, Block (Unblock), and for
 * moderators Kick, Mute and Ban when they may act on them.
 *
 * @param {{ id: string, name: string, role?: string }} member
 * @param {HTMLElement} button
 */
function openMemberMenu(member, button) {
  const room = client.room;
  const snapshot = client.roomState();
  if (!snapshot) return;
  const blocked = client.isBlocked(member.id);
  const moderate = canActOn(/** @type {any} */ (snapshot.role), /** @type {any} */ (member.role));
  /** @type {import("./view_action_menu.js").MenuItem[]} */
  const items = [];
  if (!blocked && !snapshot.direct) {
    items.push({ action: "message", label: `Message ${member.name}` });
  }
  items.push({ action: "block", label: `${blocked ? "Unblock" : "Block"} ${member.name}` });
  if (moderate) {
    items.push(
      { action: "kick", label: `Kick ${member.name}…`, group: true },
      { action: "mute", label: `Mute ${member.name}…` },
      { action: "ban", label: `Ban ${member.name}…`, danger: true },
    );
  }
  const person = { id: member.id, name: member.name };
  memberMenu.toggle(button, items, (action) => {
    if (action === "message") actions.message(person);
    else if (action === "block") actions.toggleBlock(person);
    else if (action === "kick") actions.kick(room, person, button);
    else if (action === "mute") actions.mute(room, person, button);
    else if (action === "ban") actions.ban(room, person, button);
  });
}

/** Asks for the page before the oldest message shown. */
function loadOlder() {
  if (client.history()) showHistory();
}

/** @param {string} [error] */
function showHistory(error = "") {
  const state = client.roomState();
  if (!state || !pane.log) return;
  if (!state.joined && !error) return pane.log.setHistory({ hasMore: false, unknown: true });
  pane.log.setHistory({
    hasMore: state.hasMore,
    loading: state.loadingHistory,
    oldestId: state.oldestId,
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
  const li = pane.log?.item(id);
  if (li) {
    jumpTarget = 0;
    pane.reveal(li);
    if (id === found.id && client.room === found.room) markFound(li);
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

/**
 * What a message's files add to its announcement: " (2 files)".
 *
 * @param {unknown[] | undefined} files
 */
function filesSaid(files) {
  const count = files?.length ?? 0;
  return count === 0 ? "" : count === 1 ? " (1 file)" : ` (${count} files)`;
}

/** The search result being jumped to (its neighbours asked for with `history {around}`). */
const found = { room: "", id: 0 };
/** How long a found message stays highlighted. */
const FOUND_MS = 4000;

/**
 * Shows message `id` of `room` (a search result): its room comes into view,
 * its neighbours are loaded when the log does not hold it, and it is
 * focused and highlighted for a few seconds.
 *
 * @param {string} room
 * @param {number} id
 */
function find(room, id) {
  found.room = room;
  found.id = id;
  if (room !== client.room) {
    asked = room;
    show(room);
  }
  if (pane.log?.item(id)) return jumpTo(id);
  // Not held: its neighbours (when they reach what the log holds), or else older pages.
  if (!client.around(room, id)) jumpTo(id);
}

/** Highlights a found message for a few seconds. @param {HTMLLIElement} li */
function markFound(li) {
  li.classList.add("found");
  setTimeout(() => li.classList.remove("found"), FOUND_MS);
}

/** The bar under the messages when some of the room in view were not sent: one Retry for all. */
function showFailed() {
  const failed =
    client.outbox.filter((e) => e.room === client.room && !e.kind && e.state === "failed").length;
  $("failed-bar").hidden = failed === 0;
  $("failed-text").textContent = failed === 1
    ? "1 message was not sent."
    : `${failed} messages were not sent.`;
}

$("retry-failed").addEventListener("click", () => {
  const room = client.room;
  const failed = client.outbox.filter((e) => e.room === room && e.state === "failed");
  client.retryFailed(room);
  for (const { cid } of failed) rooms.get(room)?.markPending(cid);
  showFailed();
});

$("discard-failed").addEventListener("click", () => {
  const room = client.room;
  for (const cid of client.discardFailed(room)) rooms.get(room)?.drop(cid);
  showFailed();
});

$("change-name").addEventListener("click", () => {
  if (client.account) return account.show({ focus: "rename" });
  dialog.show({ name: client.name, required: !client.online && !joinedName });
});

// Ctrl+K (⌘K): the room switcher, from anywhere.
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
    if (dialog.open || deleteDialog.open || modDialog.open || moderation.open || account.open) {
      return;
    }
    event.preventDefault();
    switcher.show();
  }
});

// "/": the search, unless typing somewhere or a dialog is open.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = /** @type {HTMLElement} */ (event.target);
  if (target.closest("input, textarea, select, [contenteditable], dialog[open]")) return;
  if (dialog.open || switcher.open || deleteDialog.open || modDialog.open || moderation.open) {
    return;
  }
  event.preventDefault();
  picker.close(false);
  search.show();
});

// --- Page ----------------------------------------------------------------------------

function start() {
  started = true;
  client.start();
}

globalThis.addEventListener("hashchange", () => {
  const value = readHash();
  if (!value) return replaceHash(client.room);
  const next = checkRoomName(value);
  if (!next.ok) {
    // Say so where it can be fixed, and keep the address on the room shown.
    replaceHash(client.room);
    switcher.show({ error: next.message, value });
    return;
  }
  asked = next.name;
  show(next.name);
});

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  notifier.clear();
  arrive();
});

// Back online: skip the rest of the backoff wait.
globalThis.addEventListener("online", () => client.reconnect());

await account.load();
render();
status.setName(client.name);
if (client.joinedRooms.length > 0) start();
if (!checked.ok) {
  if (!started) status.show({ state: "offline", reason: "room" });
  switcher.show({ error: checked.message, value: typed });
}
document.body.dataset.ready = "true";
