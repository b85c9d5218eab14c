/**
 * Who a chat client is, with no DOM: its nickname (typed, or a suggestion
 * varied until one is free), the server's session token and user id, and a
 * JWT when the server wants one; and the storage all of it lives in.
 *
 * Signed in to an account, the client is the account: its id and name, no
 * name or token in a join (the connection's cookie says who it is). The
 * tab's guest nickname and token stay in storage, untouched, for when it
 * signs out.
 *
 * @module
 */

import { nameVariant } from "./names.js";

/** How many free variants of a suggested name are tried before asking the user. */
export const MAX_NAME_VARIANTS = 20;

/**
 * A storage with the `Storage` methods the client uses. `sessionStorage` and
 * `localStorage` are ones; {@linkcode memoryStorage} makes one for tests.
 *
 * @typedef {{
 *   getItem(key: string): string | null,
 *   setItem(key: string, value: string): void,
 *   removeItem(key: string): void,
 * }} KeyValueStorage
 */

/**
 * Reads and writes of one client's keys: `read` gives "" for a missing key,
 * `write` removes the key for `null`. Neither throws (a full or disabled
 * storage keeps the session in memory only).
 *
 * @typedef {{ read: (key: string) => string, write: (key: string, value: string | null) => void }}
 *   Store
 */

/**
 * A storage kept in a `Map`: nothing survives the process. For tests, bots,
 * and browsers where storage is disabled.
 *
 * @returns {KeyValueStorage & { map: Map<string, string> }}
 */
export function memoryStorage() {
  const map = new Map();
  return {
    map,
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, String(value)),
    removeItem: (key) => void map.delete(key),
  };
}

/**
 * The keys of `storage` that start with `prefix`, as a {@linkcode Store}.
 *
 * @param {KeyValueStorage} storage
 * @param {string} prefix
 * @returns {Store}
 */
export function keyed(storage, prefix) {
  return {
    read(key) {
      try {
        return storage.getItem(prefix + key) ?? "";
      } catch {
        return "";
      }
    },
    write(key, value) {
      try {
        if (value === null) storage.removeItem(prefix + key);
        else storage.setItem(prefix + key, value);
      } catch { /* full or disabled: the session lives on in memory */ }
    },
  };
}

/** An account as the client knows it. @typedef {{ id: string, name: string }} AccountIdentity */

/** A client's identity: name, token, user id, JWT; or the account it is signed in to. */
export class Session {
  /** @type {Store} */
  #store;
  /** The account signed in to, or null for a guest. @type {AccountIdentity | null} */
  #account = null;
  #name = "";
  /** The suggestion the current name was derived from; "" when the user chose it. */
  #nameFrom = "";
  #variantTries = 0;
  #auth = "";
  /** The user id from the last welcome, or "". */
  userId = "";

  /**
   * @param {Store} store
   * @param {{ name?: string, suggestedName?: string, auth?: string }} options `name` replaces
   *   the stored one; `suggestedName` is used when none is stored.
   */
  constructor(store, { name, suggestedName, auth }) {
    this.#store = store;
    this.#auth = auth ?? store.read("auth");
    if (name?.trim()) this.setName(name.trim(), "");
    else {
      this.#name = store.read("name");
      this.#nameFrom = store.read("nameFrom");
      if (!this.#name && suggestedName?.trim()) {
        this.setName(suggestedName.trim(), suggestedName.trim());
      }
    }
  }

  /** The nickname, or the account's name ("" when none is known yet). */
  get name() {
    return this.#account ? this.#account.name : this.#name;
  }

  /** The tab's guest nickname, kept while signed in ("" when none is known). */
  get guestName() {
    return this.#name;
  }

  /** True when the name came from a suggestion rather than from the user. */
  get suggested() {
    return !this.#account && this.#nameFrom !== "";
  }

  /** True when a JWT is used (accounts are off then). */
  get hasAuth() {
    return this.#auth !== "";
  }

  /** The account signed in to (a copy), or null for a guest. */
  get account() {
    return this.#account && { ...this.#account };
  }

  /**
   * Signs in to `account` (the user id is its id), or back to the guest
   * (`null`; the user id is known again at the next welcome). The guest's
   * name and token stay in storage either way.
   *
   * @param {AccountIdentity | null} account
   */
  useAccount(account) {
    this.#account = account && { id: account.id, name: account.name };
    this.#variantTries = 0;
    this.userId = account ? account.id : "";
  }

  /**
   * The name: the guest's nickname, or while signed in the account's (the
   * guest's stays as it was).
   *
   * @param {string} name
   * @param {string} from The suggestion it came from, or "" when typed.
   */
  setName(name, from) {
    if (this.#account) {
      this.#account.name = name;
      return;
    }
    this.#name = name;
    this.#nameFrom = from;
    this.#store.write("name", name || null);
    this.#store.write("nameFrom", from || null);
  }

  /** A JWT to join with ("" forgets it). @param {string} auth */
  setAuth(auth) {
    this.#auth = auth;
    this.#store.write("auth", auth || null);
  }

  /**
   * What the connection's first join carries: the name, the token, the JWT;
   * nothing for an account (its cookie says who it is).
   */
  joinFields() {
    if (this.#account) return {};
    const token = this.#store.read("token");
    return {
      name: this.#name,
      ...(token ? { token } : {}),
      ...(this.#auth ? { auth: this.#auth } : {}),
    };
  }

  /**
   * The suggested name is taken: the next variant (`ada2`, `ada3`, … then
   * random numbers), or false when the name was typed or enough were tried.
   * A typed name stays; a suggestion given up on goes back to its base.
   *
   * @param {() => number} random
   * @returns {boolean} Whether there is a variant to try.
   */
  vary(random) {
    if (!this.#nameFrom || this.#account) return false;
    if (this.#variantTries >= MAX_NAME_VARIANTS) {
      this.setName(this.#nameFrom, "");
      return false;
    }
    this.#variantTries++;
    const n = this.#variantTries < 10 ? this.#variantTries + 1 : 10 + Math.floor(random() * 9990);
    this.setName(nameVariant(this.#nameFrom, n), this.#nameFrom);
    return true;
  }

  /**
   * The server welcomed the connection: its token, user id, and the name it
   * holds. Returns true when that name is not the one asked for.
   *
   * @param {Record<string, any>} welcome
   */
  welcomed(welcome) {
    this.#variantTries = 0;
    this.userId = String(welcome.id ?? "");
    if (this.#account) {
      // The account's: nothing of it goes to the tab's storage.
      this.#account.id = this.userId;
      const renamed = typeof welcome.name === "string" && welcome.name !== "" &&
        welcome.name !== this.#account.name;
      if (renamed) this.#account.name = welcome.name;
      return renamed;
    }
    if (typeof welcome.token === "string" && welcome.token) {
      this.#store.write("token", welcome.token);
    }
    if (typeof welcome.name === "string" && welcome.name && welcome.name !== this.#name) {
      this.setName(welcome.name, this.#nameFrom);
      return true;
    }
    this.#store.write("name", this.#name);
    return false;
  }
}
