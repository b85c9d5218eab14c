/**
 * Deno Chat page: one WebSocket to `/ws`, a room taken from `location.hash`,
 * and an outbox in localStorage so that nothing typed is lost while offline.
 * Every piece of user text reaches the DOM through `textContent`.
 *
 * @module
 */

/** Reconnect delays, one per failed attempt; each is jittered to 0.5x–1x. */
const BACKOFF_MS = [500, 1000, 2000, 5000, 10000];
/** Outbox entries sent at once after a reconnect; the rest are paced to stay under the rate limit. */
const OUTBOX_BURST = 10;
const OUTBOX_INTERVAL_MS = 250;
/** Wait before sending again what the server could not store (error `unavailable`). */
const STORE_RETRY_MS = 2000;
const TYPING_SEND_MS = 2000;
const TYPING_SHOW_MS = 3000;
const ERROR_HIDE_MS = 8000;
const SCROLL_SLACK_PX = 40;
const MAX_NAME_LENGTH = 32;
const DEFAULT_ROOM = "lobby";
const NAME_KEY = "chat.name";
/** Per tab (sessionStorage): two tabs are two sessions. */
const TOKEN_KEY = "chat.token";
/** A JWT the user pasted, for servers that require one (sessionStorage). */
const AUTH_KEY = "chat.auth";
const AUTH_ERRORS = new Set(["auth_required", "auth_invalid", "auth_expired"]);
const CID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const CLOSE_REASONS = {
  1001: "server is restarting",
  1006: "connection lost",
  1008: "disconnected by the server",
  1009: "message too large",
  1013: "server is busy",
  4000: "replaced by a newer connection",
};

const $ = (id) => document.getElementById(id);
const ui = {
  room: $("room-name"),
  status: $("status"),
  changeName: $("change-name"),
  error: $("error"),
  errorText: $("error-text"),
  errorDismiss: $("error-dismiss"),
  messages: $("messages"),
  typing: $("typing"),
  members: $("members"),
  memberCount: $("member-count"),
  composer: $("composer"),
  input: $("text-input"),
  dialog: $("join-dialog"),
  joinForm: $("join-form"),
  nameInput: $("name-input"),
  authRow: $("auth-row"),
  authInput: $("auth-input"),
  joinError: $("join-error"),
  template: $("message-template"),
};

const state = {
  room: readRoom(),
  name: readText(NAME_KEY),
  /** @type {WebSocket | null} */
  socket: null,
  /** True between `welcome` and the socket closing. */
  online: false,
  myId: "",
  /** True once this page got a welcome in the room: later joins resume with `since`. */
  resumable: false,
  attempt: 0,
  flushTimer: 0,
  retryTimer: 0,
  atPrompt: false,
  reconnectTimer: 0,
  countdownTimer: 0,
  errorTimer: 0,
  lastTypingSent: 0,
  unread: 0,
  /** Server ids rendered in the current room. */
  shown: new Set(),
  /** Own items rendered from the outbox, by cid. @type {Map<string, HTMLLIElement>} */
  byCid: new Map(),
  /** Who is typing: user id → { name, timer }. */
  typers: new Map(),
};

// --- Storage ---------------------------------------------------------------

function readText(key) {
  try {
    return localStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

function readSession(key) {
  try {
    return sessionStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

function writeSession(key, value) {
  try {
    sessionStorage.setItem(key, value);
  } catch { /* disabled: the next connection gets a new id */ }
}

function writeText(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch { /* storage full or disabled: keep going in memory */ }
}

/** Last message id seen in `room`, or 0. */
function getLastId(room = state.room) {
  const id = Number(readText(`chat.lastId.${room}`));
  return Number.isSafeInteger(id) && id > 0 ? id : 0;
}

/** Raises the stored last id of the current room to `id`. */
function bumpLastId(id) {
  if (Number.isSafeInteger(id) && id > getLastId()) {
    writeText(`chat.lastId.${state.room}`, String(id));
  }
}

/** The outbox of the current room: `[{cid, text, ts, state}]`, oldest first. */
function loadOutbox() {
  try {
    const list = JSON.parse(readText(`chat.outbox.${state.room}`) || "[]");
    return Array.isArray(list)
      ? list.filter((e) => e && CID_PATTERN.test(e.cid) && typeof e.text === "string")
      : [];
  } catch {
    return [];
  }
}

function saveOutbox(outbox) {
  writeText(`chat.outbox.${state.room}`, outbox.length ? JSON.stringify(outbox) : null);
}

/** Applies `change` to the outbox entry `cid`, or removes it when `change` is null. */
function updateOutbox(cid, change) {
  const outbox = loadOutbox();
  const index = outbox.findIndex((e) => e.cid === cid);
  if (index < 0) return false;
  if (change) Object.assign(outbox[index], change);
  else outbox.splice(index, 1);
  saveOutbox(outbox);
  return true;
}

// --- Connection ------------------------------------------------------------

/** The room named by `location.hash` (`#room-name`), or `lobby`. */
function readRoom() {
  let room = location.hash.slice(1);
  try {
    room = decodeURIComponent(room);
  } catch { /* keep the raw text */ }
  return room.trim() || DEFAULT_ROOM;
}

/**
 * Opens a socket to `/ws` and joins the current room, resuming after the last
 * message id seen. Shows the name prompt instead when no name is known.
 */
function connect() {
  disconnect();
  if (!state.name) return showPrompt();
  setStatus("connecting", "Connecting…");
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.addEventListener("open", () => {
    if (socket !== state.socket) return;
    const since = state.resumable ? getLastId() : 0;
    const token = readSession(TOKEN_KEY);
    const auth = readSession(AUTH_KEY);
    send({
      type: "join",
      room: state.room,
      name: state.name,
      ...(since ? { since } : {}),
      ...(token ? { token } : {}),
      ...(auth ? { auth } : {}),
    });
  });
  socket.addEventListener("message", (event) => {
    if (socket === state.socket) receive(event.data);
  });
  socket.addEventListener("close", (event) => {
    if (socket !== state.socket) return;
    state.socket = null;
    state.online = false;
    clearTypers();
    if (state.atPrompt) setStatus("offline", "Offline");
    else if (event.code === 1008 && event.reason === "token expired") {
      writeSession(AUTH_KEY, "");
      showPrompt("Your access token has expired: paste a fresh one.", true);
    } else if (event.code === 4000) {
      setStatus("offline", "Offline – this session connected again elsewhere");
    } else scheduleReconnect(event.reason || CLOSE_REASONS[event.code] || "connection closed");
  });
}

/** Closes the socket (if any) and cancels any pending reconnect. */
function disconnect() {
  clearTimeout(state.reconnectTimer);
  clearTimeout(state.flushTimer);
  clearInterval(state.countdownTimer);
  const socket = state.socket;
  state.socket = null;
  state.online = false;
  clearTypers();
  if (socket && socket.readyState < WebSocket.CLOSING) socket.close(1000, "leaving");
}

/** Waits a jittered backoff delay, counting down in the status line, then reconnects. */
function scheduleReconnect(reason) {
  disconnect();
  const base = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
  const delay = base * (0.5 + Math.random() * 0.5);
  const due = Date.now() + delay;
  state.attempt++;
  const tick = () => {
    const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
    setStatus("reconnecting", `Reconnecting in ${seconds} s… (${reason})`);
  };
  tick();
  state.countdownTimer = setInterval(tick, 1000);
  state.reconnectTimer = setTimeout(connect, delay);
}

function send(message) {
  if (state.socket?.readyState !== WebSocket.OPEN) return false;
  state.socket.send(JSON.stringify(message));
  return true;
}

function setStatus(name, text) {
  ui.status.dataset.state = name;
  ui.status.textContent = text;
}

// --- Server events ---------------------------------------------------------

/** Handles one frame: a JSON object or a JSON array of them. */
function receive(data) {
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return;
  }
  for (const msg of Array.isArray(parsed) ? parsed : [parsed]) {
    switch (msg?.type) {
      case "welcome":
        onWelcome(msg);
        break;
      case "message":
        onMessage(msg);
        break;
      case "ack":
        confirmOwn(msg.cid, msg.id);
        break;
      case "presence":
        onPresence(msg);
        break;
      case "typing":
        onTyping(msg);
        break;
      case "error":
        onError(msg);
        break;
    }
  }
}

/**
 * Joined: reset the backoff, show members and history (confirming outbox
 * entries it contains), then re-send the outbox entries still pending.
 */
function onWelcome(welcome) {
  state.online = true;
  state.attempt = 0;
  state.myId = welcome.id;
  if (welcome.token) writeSession(TOKEN_KEY, welcome.token);
  document.body.dataset.myId = welcome.id;
  if (welcome.name && welcome.name !== state.name) {
    state.name = welcome.name;
    writeText(NAME_KEY, state.name);
  }
  setStatus("online", "Online");
  renderMembers(welcome.members ?? []);
  // Resumed but not recovered: the server could not replay everything we
  // missed (or its ids restarted), so show its recent history afresh.
  const restart = state.resumable && welcome.recovered === false;
  state.resumable = true;
  follow(false, () => {
    if (restart) clearShown();
    if (restart) addNotice("Some older messages are not shown.", "gap");
    for (const message of welcome.history ?? []) onMessage(message, false);
  });
  flushOutbox(loadOutbox().filter((entry) => entry.state === "pending"));
}

/** Sends outbox entries in order: a burst, then paced under the server's rate limit. */
function flushOutbox(entries, sent = 0) {
  clearTimeout(state.flushTimer);
  let index = 0;
  for (; index < entries.length && (sent < OUTBOX_BURST || index === 0); index++, sent++) {
    const entry = entries[index];
    if (!state.online || !state.byCid.has(entry.cid)) continue;
    send({ type: "say", text: entry.text, cid: entry.cid });
  }
  if (index < entries.length && state.online) {
    state.flushTimer = setTimeout(
      () => flushOutbox(entries.slice(index), sent),
      OUTBOX_INTERVAL_MS,
    );
  }
}

/** Removes every confirmed message and notice; pending and failed own items stay. */
function clearShown() {
  for (const li of [...ui.messages.children]) {
    if (li.dataset.state !== "pending" && li.dataset.state !== "failed") li.remove();
  }
  state.shown.clear();
  writeText(`chat.lastId.${state.room}`, null);
}

/** Renders a chat message once, or confirms the pending own item with its cid. */
function onMessage(message, scroll = true) {
  if (message.room !== undefined && message.room !== state.room) return;
  clearTyper(message.userId);
  if (isOwn(message) && confirmOwn(message.cid, message.id, message)) return;
  if (!Number.isSafeInteger(message.id) || state.shown.has(message.id)) return;
  const last = getLastId();
  if (scroll && last > 0 && message.id > last + 1) {
    // A gap: messages last+1 … id-1 never arrived. Rejoin with `since` to get them in order.
    return connect();
  }
  state.shown.add(message.id);
  bumpLastId(message.id);
  const li = buildMessage({ ...message, own: isOwn(message), state: "sent" });
  if (scroll) follow(false, () => insertItem(li));
  else insertItem(li);
  if (document.hidden && !isOwn(message)) {
    state.unread++;
    updateTitle();
  }
}

function isOwn(message) {
  return message.userId === state.myId || message.name === state.name;
}

/**
 * Marks the own item `cid` as sent with server id `id` (from an `ack` or the
 * broadcast), drops it from the outbox, and keeps it in place: never twice.
 * Returns false when no such item is shown.
 */
function confirmOwn(cid, id, message) {
  const li = state.byCid.get(cid);
  if (!li) return false;
  updateOutbox(cid, null);
  if (message) {
    fillTime(li, message.ts);
    li.querySelector(".sender").textContent = message.name;
  }
  if (li.dataset.state === "sent") return true;
  li.dataset.id = String(id);
  setItemState(li, "sent");
  state.shown.add(id);
  bumpLastId(id);
  const first = firstUnconfirmed();
  if (first && first.compareDocumentPosition(li) & Node.DOCUMENT_POSITION_FOLLOWING) {
    ui.messages.insertBefore(li, first);
  }
  return true;
}

function onPresence({ event, member, members }) {
  renderMembers(members ?? []);
  if (!member || member.id === state.myId) return;
  if (event === "leave") clearTyper(member.id);
  follow(false, () => addNotice(`${member.name} ${event === "join" ? "joined" : "left"}`));
}

function onTyping({ member }) {
  if (!member || member.id === state.myId) return;
  clearTimeout(state.typers.get(member.id)?.timer);
  const timer = setTimeout(() => clearTyper(member.id), TYPING_SHOW_MS);
  state.typers.set(member.id, { name: member.name, timer });
  renderTyping();
}

/**
 * Before `welcome`, a refused name goes back to the prompt; after it, a
 * refused `say` marks its item failed; anything else shows in the banner.
 */
function onError(error) {
  if (AUTH_ERRORS.has(error.code)) {
    writeSession(AUTH_KEY, "");
    return showPrompt(error.message, true);
  }
  if (!state.online && (error.code === "name_taken" || error.code === "invalid_message")) {
    disconnect();
    return showPrompt(error.message);
  }
  if (error.code === "unavailable" && error.cid && state.byCid.has(error.cid)) {
    // The server could not store it yet: it stays pending and is sent again soon.
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => {
      flushOutbox(loadOutbox().filter((entry) => entry.state === "pending"));
    }, STORE_RETRY_MS);
    return;
  }
  if (error.cid && state.byCid.has(error.cid) && updateOutbox(error.cid, { state: "failed" })) {
    return setItemState(state.byCid.get(error.cid), "failed", error.message);
  }
  showError(error.message || "Something went wrong");
}

// --- Rendering -------------------------------------------------------------

/** Clones the message template and fills it from a message or outbox entry. */
function buildMessage({ id, cid, name, text, ts, own, state: itemState }) {
  const li = ui.template.content.firstElementChild.cloneNode(true);
  if (id !== undefined) li.dataset.id = String(id);
  if (cid) li.dataset.cid = cid;
  li.classList.toggle("own", own);
  li.querySelector(".sender").textContent = name;
  li.querySelector(".text").textContent = text;
  setItemState(li, itemState);
  fillTime(li, ts);
  return li;
}

function fillTime(li, ts) {
  const date = new Date(Number.isFinite(ts) ? ts : Date.now());
  const time = li.querySelector(".time");
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
  const pad = (n) => String(n).padStart(2, "0");
  time.textContent = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Shows an outbox entry as an own item, keyed by its cid. */
function renderOutboxEntry(entry) {
  const li = buildMessage({ ...entry, name: state.name, own: true, state: "pending" });
  state.byCid.set(entry.cid, li);
  ui.messages.append(li);
  if (entry.state === "failed") setItemState(li, "failed", "Not sent.");
}

/** Sets `data-state` (`pending`, `sent` or `failed`) and its visible label; `failed` shows `reason`. */
function setItemState(li, itemState, reason = "") {
  li.dataset.state = itemState;
  li.querySelector(".state-label").textContent = itemState === "sent" ? "" : itemState;
  li.querySelector(".failure-text").textContent = reason;
  li.querySelector(".failure").hidden = itemState !== "failed";
}

/** Own items not yet confirmed stay at the bottom; everything else goes above them. */
function firstUnconfirmed() {
  return ui.messages.querySelector(
    'li.message[data-state="pending"], li.message[data-state="failed"]',
  );
}

function insertItem(li) {
  ui.messages.insertBefore(li, firstUnconfirmed());
}

function addNotice(text, className = "notice") {
  const li = document.createElement("li");
  li.className = className;
  li.textContent = text;
  insertItem(li);
}

/** Runs `change`, then scrolls to the bottom if forced or if we were near it. */
function follow(force, change) {
  const list = ui.messages;
  const near = list.scrollHeight - list.scrollTop - list.clientHeight <= SCROLL_SLACK_PX;
  change();
  if (force || near) list.scrollTop = list.scrollHeight;
}

function renderMembers(members) {
  const items = members.map((member) => {
    const li = document.createElement("li");
    li.textContent = member.name;
    if (member.id === state.myId) {
      li.classList.add("me");
      const you = document.createElement("span");
      you.className = "you";
      you.textContent = " (you)";
      li.append(you);
    }
    return li;
  });
  ui.members.replaceChildren(...items);
  ui.memberCount.textContent = `(${members.length})`;
}

function clearTyper(id) {
  const entry = state.typers.get(id);
  if (!entry) return;
  clearTimeout(entry.timer);
  state.typers.delete(id);
  renderTyping();
}

function clearTypers() {
  for (const { timer } of state.typers.values()) clearTimeout(timer);
  state.typers.clear();
  renderTyping();
}

function renderTyping() {
  const names = [...state.typers.values()].map((t) => t.name);
  const last = names.pop();
  ui.typing.textContent = !last
    ? ""
    : names.length
    ? `${names.join(", ")} and ${last} are typing…`
    : `${last} is typing…`;
}

function updateTitle() {
  document.title = `${state.unread ? `(${state.unread}) ` : ""}#${state.room} – Deno Chat`;
}

function showError(text) {
  clearTimeout(state.errorTimer);
  ui.errorText.textContent = text;
  ui.error.hidden = false;
  state.errorTimer = setTimeout(() => ui.error.hidden = true, ERROR_HIDE_MS);
}

/** Empties the view and shows the current room with its outbox. */
function enterRoom() {
  state.shown.clear();
  state.byCid.clear();
  state.unread = 0;
  ui.messages.replaceChildren();
  ui.members.replaceChildren();
  ui.memberCount.textContent = "";
  ui.room.textContent = state.room;
  updateTitle();
  for (const entry of loadOutbox()) renderOutboxEntry(entry);
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

// --- Name prompt -----------------------------------------------------------

/** Disconnects and asks for a nickname (and a token when `needsToken`), optionally showing why. */
function showPrompt(errorText = "", needsToken = false) {
  disconnect();
  state.atPrompt = true;
  setStatus("offline", "Offline – choose a nickname");
  ui.joinError.textContent = errorText;
  ui.joinError.hidden = !errorText;
  ui.nameInput.value = state.name;
  if (needsToken) ui.authRow.hidden = false;
  ui.authInput.required = !ui.authRow.hidden;
  if (!ui.dialog.open) ui.dialog.showModal();
  ui.nameInput.focus();
  ui.nameInput.select();
}

function leavePrompt() {
  state.atPrompt = false;
  if (ui.dialog.open) ui.dialog.close();
  state.attempt = 0;
  connect();
}

ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.nameInput.value.trim();
  if (!name || [...name].length > MAX_NAME_LENGTH) {
    ui.joinError.textContent = `Please enter 1–${MAX_NAME_LENGTH} characters.`;
    ui.joinError.hidden = false;
    return;
  }
  state.name = name;
  writeText(NAME_KEY, name);
  if (!ui.authRow.hidden) writeSession(AUTH_KEY, ui.authInput.value.trim());
  leavePrompt();
});

// Escape closes the dialog: rejoin under the old name, or ask again if there is none.
ui.dialog.addEventListener("close", () => {
  if (!state.atPrompt) return;
  if (state.name) leavePrompt();
  else ui.dialog.showModal();
});

ui.changeName.addEventListener("click", () => showPrompt());

// --- Composer --------------------------------------------------------------

/** Puts the text into the outbox, shows it as pending, and sends it if online. */
function sendText(text) {
  const entry = { cid: crypto.randomUUID(), text, ts: Date.now(), state: "pending" };
  saveOutbox([...loadOutbox(), entry]);
  follow(true, () => renderOutboxEntry(entry));
  if (state.online) send({ type: "say", text, cid: entry.cid });
}

/** Sends the failed item `li` again. */
function retry(li) {
  const cid = li.dataset.cid;
  const entry = loadOutbox().find((e) => e.cid === cid);
  if (!entry) return;
  updateOutbox(cid, { state: "pending" });
  setItemState(li, "pending");
  if (state.online) send({ type: "say", text: entry.text, cid });
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value.replace(/\s+$/, "");
  if (!text.trim()) return;
  ui.input.value = "";
  sendText(text);
  ui.input.focus();
});

ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.input.addEventListener("input", () => {
  const now = Date.now();
  if (!state.online || now - state.lastTypingSent < TYPING_SEND_MS) return;
  if (send({ type: "typing" })) state.lastTypingSent = now;
});

ui.messages.addEventListener("click", (event) => {
  const button = event.target.closest(".retry");
  if (button) retry(button.closest("li"));
});

ui.errorDismiss.addEventListener("click", () => {
  clearTimeout(state.errorTimer);
  ui.error.hidden = true;
});

// --- Page ------------------------------------------------------------------

globalThis.addEventListener("hashchange", () => {
  const room = readRoom();
  if (room === state.room) return;
  disconnect();
  state.room = room;
  state.resumable = false;
  enterRoom();
  if (!state.atPrompt) {
    state.attempt = 0;
    connect();
  }
});

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  state.unread = 0;
  updateTitle();
});

// Back online: skip the rest of the backoff wait.
globalThis.addEventListener("online", () => {
  if (!state.socket && !state.atPrompt && state.name) connect();
});

enterRoom();
connect();
document.body.dataset.ready = "true";
