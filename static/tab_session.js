/**
 * Per-tab sessions for the page. Each tab keeps its session (name, token,
 * last ids, epochs, outbox) in `sessionStorage`; `localStorage` only holds
 * the name suggested to new tabs. A duplicated tab starts with a copy of the
 * original's `sessionStorage`: {@linkcode claimTab} notices that another live
 * tab holds the same tab id and gives the copy a session of its own.
 *
 * @module
 */

import { memoryStorage } from "./session.js";

/** localStorage key of the name suggested to new tabs. */
export const SUGGESTION_KEY = "chat.name";
/** sessionStorage key of this tab's id. */
const TAB_KEY = "chat.tabId";
const CHANNEL = "chat.tabs";
const LOCK_PREFIX = "chat.tab.";

/**
 * A real `Storage`, or the in-memory stand-in when storage is disabled.
 *
 * @typedef {Storage | ReturnType<typeof memoryStorage>} TabStorage
 */

/**
 * `sessionStorage` or `localStorage` when usable, else a storage in memory
 * (disabled cookies, private modes that throw).
 *
 * @param {"sessionStorage" | "localStorage"} kind
 * @returns {TabStorage}
 */
export function safeStorage(kind) {
  try {
    const storage = globalThis[kind];
    const probe = "chat.probe";
    storage.setItem(probe, "1");
    storage.removeItem(probe);
    return storage;
  } catch {
    return memoryStorage();
  }
}

/**
 * The name to suggest to a new tab: the last one typed in any tab.
 *
 * @param {{ getItem(key: string): string | null }} local
 */
export function readSuggestion(local) {
  try {
    return local.getItem(SUGGESTION_KEY) ?? "";
  } catch {
    return "";
  }
}

/**
 * Remembers a name the user typed, as the suggestion for new tabs.
 *
 * @param {{ setItem(key: string, value: string): void }} local
 * @param {string} name
 */
export function rememberName(local, name) {
  try {
    local.setItem(SUGGESTION_KEY, name);
  } catch { /* full or disabled */ }
}

/**
 * Moves what an earlier version of the page kept in `localStorage` for every
 * tab (`chat.outbox.<room>`, `chat.lastId.<room>`) out of it: the first tab to
 * open the room takes the outbox into its own session, so one tab sends it.
 *
 * @param {TabStorage} local
 * @param {TabStorage} session
 * @param {string} room
 */
export function adoptLegacy(local, session, room) {
  try {
    const key = `chat.outbox.${room}`;
    const legacy = JSON.parse(local.getItem(key) || "[]");
    local.removeItem(key);
    local.removeItem(`chat.lastId.${room}`);
    if (!Array.isArray(legacy) || legacy.length === 0) return;
    const own = JSON.parse(session.getItem(key) || "[]");
    const cids = new Set(own.map((/** @type {{cid: string}} */ e) => e.cid));
    session.setItem(key, JSON.stringify([...own, ...legacy.filter((e) => !cids.has(e?.cid))]));
  } catch { /* unreadable: nothing to adopt */ }
}

/**
 * The rooms this tab's session is in (kept by the chat client as
 * `chat.rooms`), to adopt their legacy outboxes before the client loads them.
 *
 * @param {TabStorage} session
 * @returns {string[]}
 */
export function sessionRooms(session) {
  try {
    const rooms = JSON.parse(session.getItem("chat.rooms") || "[]");
    return Array.isArray(rooms) ? rooms.filter((r) => typeof r === "string") : [];
  } catch {
    return [];
  }
}

/**
 * Forgets this tab's session (a copy of another tab's), keeping nothing but
 * the storage's other keys.
 *
 * @param {TabStorage} session
 */
function forgetSession(session) {
  try {
    const keys = "map" in session
      ? [...session.map.keys()]
      : Array.from({ length: session.length }, (_, i) => session.key(i));
    for (const key of keys) if (key?.startsWith("chat.")) session.removeItem(key);
  } catch { /* disabled */ }
}

/**
 * Claims a tab id for this page and holds it while the page lives. A new tab
 * gets a new id; a reloaded tab keeps its id; a duplicated tab, whose copied
 * id another live tab still holds, forgets the copied session and gets a new
 * id. Answers other tabs that ask whether an id is held.
 *
 * @param {TabStorage} session
 * @param {{ timeoutMs?: number }} [options] How long to wait for a silent holder.
 * @returns {Promise<{ tabId: string, duplicate: boolean }>}
 */
export async function claimTab(session, { timeoutMs = 1500 } = {}) {
  const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
  const locks = globalThis.navigator?.locks;
  let tabId = session.getItem(TAB_KEY) ?? "";
  let duplicate = false;
  if (tabId) duplicate = !(await holdIfFree(locks, tabId, channel, timeoutMs));
  if (!tabId || duplicate) {
    if (duplicate) forgetSession(session);
    tabId = crypto.randomUUID();
    try {
      session.setItem(TAB_KEY, tabId);
    } catch { /* disabled: the id lives in memory */ }
    if (locks) hold(locks, tabId).catch(() => {});
  }
  channel?.addEventListener("message", (event) => {
    if (event.data?.type === "who" && event.data.tabId === tabId) {
      channel.postMessage({ type: "mine", tabId });
    }
  });
  return { tabId, duplicate };
}

/**
 * Resolves true once this page holds `tabId`, or false when another live tab
 * holds it: that tab answers on the channel, or keeps its lock past
 * `timeoutMs`. A reload may find its own earlier lock not yet released: then
 * nobody answers, and the lock comes soon.
 *
 * @param {LockManager | undefined} locks
 * @param {string} tabId
 * @param {BroadcastChannel | null} channel
 * @param {number} timeoutMs
 */
async function holdIfFree(locks, tabId, channel, timeoutMs) {
  if (locks && await tryHold(locks, tabId)) return true;
  if (!channel) return true;
  const abort = new AbortController();
  const { promise, resolve } = Promise.withResolvers();
  const onMessage = (/** @type {MessageEvent} */ event) => {
    if (event.data?.type === "mine" && event.data.tabId === tabId) resolve(false);
  };
  channel.addEventListener("message", onMessage);
  channel.postMessage({ type: "who", tabId });
  // Without locks, silence for a short while means nobody else has this id.
  const timer = setTimeout(() => resolve(!locks), locks ? timeoutMs : Math.min(timeoutMs, 300));
  if (locks) hold(locks, tabId, abort.signal).then(() => resolve(true), () => {});
  const free = await promise;
  clearTimeout(timer);
  channel.removeEventListener("message", onMessage);
  if (!free) abort.abort();
  return free;
}

/**
 * Takes the lock of `tabId` now if nobody holds it, keeping it for good.
 *
 * @param {LockManager} locks
 * @param {string} tabId
 * @returns {Promise<boolean>}
 */
function tryHold(locks, tabId) {
  const { promise, resolve } = Promise.withResolvers();
  locks.request(LOCK_PREFIX + tabId, { ifAvailable: true }, (lock) => {
    resolve(lock !== null);
    return lock ? new Promise(() => {}) : undefined;
  }).catch(() => resolve(true));
  return promise;
}

/**
 * Waits for the lock of `tabId` and keeps it for good; rejects when aborted.
 *
 * @param {LockManager} locks
 * @param {string} tabId
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function hold(locks, tabId, signal) {
  /** @type {PromiseWithResolvers<void>} */
  const { promise, resolve, reject } = Promise.withResolvers();
  locks.request(LOCK_PREFIX + tabId, { signal }, () => {
    resolve();
    return new Promise(() => {});
  }).catch(reject);
  return promise;
}
