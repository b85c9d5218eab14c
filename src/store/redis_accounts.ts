/**
 * {@linkcode RedisAccounts}: the account store in Redis. Like the Deno KV
 * store, each change reads what it depends on, decides, and commits with
 * one script that first checks those values are unchanged (else the change
 * is tried again): the contract's atomic steps hold across instances. A
 * challenge is taken with `GETDEL`. Values are JSON strings (a passkey's
 * public key in base64url). The keys, each after the prefix (`chat:`):
 *
 * | Key                              | Value                                         |
 * | -------------------------------- | --------------------------------------------- |
 * | `account:<id>`                   | the account, with its name's key              |
 * | `account-name:<name key>`        | the id of the account holding it (JSON key)   |
 * | `accounts:count`                 | how many accounts exist                       |
 * | `passkey:<credential id>`        | the passkey                                   |
 * | `account-passkeys:<id>`          | the account's credential ids                  |
 * | `account-session:<session id>`   | the session, expiring with it (`PXAT`)        |
 * | `account-sessions:<id>`          | sorted set of session ids by creation         |
 * | `challenge:<challenge>`          | the ceremony in flight, expiring (`PXAT`)     |
 * | `account-rooms:<id>`             | `[{room, joinedAt, readId}]`                  |
 * | `account-blocks:<id>`            | the blocked user ids                          |
 *
 * @module
 */

import type { RedisClientType } from "redis";
import { nameKey } from "../names.ts";
import {
  type Account,
  type AccountRoom,
  type AccountSession,
  type AccountStore,
  blockEdit,
  type Challenge,
  counterMovesOn,
  joinEdit,
  leaveEdit,
  type ListEdit,
  MAX_LISTED_SESSIONS,
  MAX_PASSKEYS,
  type NewAccount,
  type Passkey,
  readEdit,
  sortRooms,
  type StoreResult,
  unblockEdit,
} from "./accounts.ts";
import { backoff } from "./kv_contention.ts";

/** Commits tried before a change gives up. */
const MAX_ATTEMPTS = 30;
/**
 * A checked commit: `ARGV[1]` is `{checks: [[k, value|false]], writes:
 * [[k, value|false, pxat]]}` with `k` an index into `KEYS`; every check
 * must find its key's value (`false`: no value), then every write sets (with
 * `PXAT` unless `"0"`) or deletes (`false`). Answers 1, or 0 when a check
 * failed and nothing was written.
 */
const COMMIT_SCRIPT = `
local spec = cjson.decode(ARGV[1])
for _, c in ipairs(spec.checks) do
  local current = redis.call('GET', KEYS[c[1]])
  if c[2] == false then
    if current then return 0 end
  elseif current ~= c[2] then
    return 0
  end
end
for _, w in ipairs(spec.writes) do
  if w[2] == false then
    redis.call('DEL', KEYS[w[1]])
  elseif w[3] ~= '0' then
    redis.call('SET', KEYS[w[1]], w[2], 'PXAT', w[3])
  else
    redis.call('SET', KEYS[w[1]], w[2])
  end
end
return 1`;

/** An account as stored: with its name's key, so a rename frees the right one. */
interface StoredAccount extends Account {
  key: string;
}

/** A passkey as stored: its public key in base64url. */
type StoredPasskey = Omit<Passkey, "publicKey"> & { publicKey: string };

/** One value as read: the JSON text, or `null`. */
type Read = string | null;

/** A change to commit: what was read (to check) and what to write (`null` deletes). */
interface Commit {
  reads: [string, Read][];
  writes: [string, string | null, number?][];
}

type Attempt<T> = { commit: Commit; then: T } | { done: T };

/** Options for {@linkcode RedisAccounts}. */
export interface RedisAccountsOptions {
  /**
   * Starts every key.
   * @default {"chat:"}
   */
  prefix?: string;
  /**
   * The wall clock, in ms since the epoch (sessions and challenges expire by it).
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * The account store in Redis.
 *
 * @example Usage
 * ```ts ignore
 * import { connectRedis } from "../redis/connection.ts";
 * import { RedisAccounts } from "./redis_accounts.ts";
 * const accounts = new RedisAccounts((await connectRedis("redis://127.0.0.1:6379")).client);
 * await accounts.nameOwner("ada"); // null: nobody holds it
 * ```
 */
export class RedisAccounts implements AccountStore {
  #client: RedisClientType;
  #prefix: string;
  #now: () => number;

  /** Wraps a connected client; see {@linkcode RedisAccountsOptions}. */
  constructor(client: RedisClientType, options: RedisAccountsOptions = {}) {
    this.#client = client;
    this.#prefix = options.prefix ?? "chat:";
    this.#now = options.now ?? Date.now;
  }

  /** Creates an account with its first passkey; see {@linkcode AccountStore.createAccount}. */
  createAccount({ account, passkey }: NewAccount, maxAccounts: number) {
    const key = nameKey(account.name);
    const keys = [
      this.#nameKey(key),
      this.#k("account", account.id),
      `${this.#prefix}accounts:count`,
      this.#k("passkey", passkey.id),
      this.#k("account-passkeys", account.id),
    ];
    return this.#change("create account", async (): Promise<Attempt<StoreResult<Account>>> => {
      const [held, existing, count, credential, list] = await this.#client.mGet(keys);
      if (held !== null) return { done: { ok: false, code: "name_reserved" } };
      if (credential !== null) return { done: { ok: false, code: "credential_exists" } };
      const total = Number(count ?? 0);
      if (total >= maxAccounts) return { done: { ok: false, code: "account_limit" } };
      if (existing !== null) throw new Error("Cannot create account: its id is taken");
      const stored: StoredAccount = { ...account, key };
      const commit: Commit = {
        reads: [
          [keys[0], held],
          [keys[1], existing],
          [keys[2], count],
          [keys[3], credential],
          [keys[4], list],
        ],
        writes: [
          [keys[0], account.id],
          [keys[1], JSON.stringify(stored)],
          [keys[2], String(total + 1)],
          [keys[3], storePasskey({ ...passkey, accountId: account.id })],
          [keys[4], JSON.stringify([passkey.id])],
        ],
      };
      return { commit, then: { ok: true, value: account } };
    });
  }

  /** The account `id`, or `null`. */
  async account(id: string): Promise<Account | null> {
    const text = await this.#client.get(this.#k("account", id));
    return text ? publicAccount(JSON.parse(text)) : null;
  }

  /** Who holds `name`'s key; see {@linkcode AccountStore.nameOwner}. */
  async nameOwner(name: string): Promise<string | null> {
    return await this.#client.get(this.#nameKey(nameKey(name)));
  }

  /** Renames an account; see {@linkcode AccountStore.rename}. */
  rename(id: string, name: string): Promise<StoreResult<Account>> {
    const key = nameKey(name);
    const accountKey = this.#k("account", id);
    const newKey = this.#nameKey(key);
    return this.#change("rename account", async (): Promise<Attempt<StoreResult<Account>>> => {
      const [text, held] = await this.#client.mGet([accountKey, newKey]);
      if (!text) return { done: { ok: false, code: "not_found" } };
      if (held !== null && held !== id) return { done: { ok: false, code: "name_reserved" } };
      const stored: StoredAccount = JSON.parse(text);
      const renamed: StoredAccount = { ...stored, name, key };
      const writes: Commit["writes"] = [[accountKey, JSON.stringify(renamed)], [newKey, id]];
      if (stored.key !== key) writes.push([this.#nameKey(stored.key), null]);
      const commit = { reads: [[accountKey, text], [newKey, held]] as [string, Read][], writes };
      return { commit, then: { ok: true, value: publicAccount(renamed) } };
    });
  }

  /** How many accounts exist. */
  async count(): Promise<number> {
    return Number(await this.#client.get(`${this.#prefix}accounts:count`) ?? 0);
  }

  /** Adds a passkey; see {@linkcode AccountStore.addPasskey}. */
  addPasskey(passkey: Passkey): Promise<StoreResult<Passkey>> {
    const keys = [
      this.#k("account", passkey.accountId),
      this.#k("account-passkeys", passkey.accountId),
      this.#k("passkey", passkey.id),
    ];
    return this.#change("add passkey", async (): Promise<Attempt<StoreResult<Passkey>>> => {
      const [account, list, credential] = await this.#client.mGet(keys);
      if (account === null) return { done: { ok: false, code: "not_found" } };
      if (credential !== null) return { done: { ok: false, code: "credential_exists" } };
      const ids: string[] = list ? JSON.parse(list) : [];
      if (ids.length >= MAX_PASSKEYS) return { done: { ok: false, code: "passkey_limit" } };
      const commit: Commit = {
        reads: [[keys[0], account], [keys[1], list], [keys[2], credential]],
        writes: [[keys[2], storePasskey(passkey)], [keys[1], JSON.stringify([...ids, passkey.id])]],
      };
      return { commit, then: { ok: true, value: passkey } };
    });
  }

  /** The passkey `id`, or `null`. */
  async passkey(id: string): Promise<Passkey | null> {
    const text = await this.#client.get(this.#k("passkey", id));
    return text ? loadPasskey(text) : null;
  }

  /** The account's passkeys, oldest first. */
  async passkeys(accountId: string): Promise<Passkey[]> {
    const list = await this.#client.get(this.#k("account-passkeys", accountId));
    const ids: string[] = list ? JSON.parse(list) : [];
    if (ids.length === 0) return [];
    const texts = await this.#client.mGet(ids.map((id) => this.#k("passkey", id)));
    return texts.filter((text): text is string => text !== null).map(loadPasskey);
  }

  /** Removes a passkey, never the last; see {@linkcode AccountStore.removePasskey}. */
  removePasskey(accountId: string, id: string): Promise<StoreResult<null>> {
    const listKey = this.#k("account-passkeys", accountId);
    return this.#change("remove passkey", async (): Promise<Attempt<StoreResult<null>>> => {
      const list = await this.#client.get(listKey);
      const ids: string[] = list ? JSON.parse(list) : [];
      if (!ids.includes(id)) return { done: { ok: false, code: "not_found" } };
      if (ids.length <= 1) return { done: { ok: false, code: "last_passkey" } };
      const rest = JSON.stringify(ids.filter((other) => other !== id));
      const commit: Commit = {
        reads: [[listKey, list]],
        writes: [[listKey, rest], [this.#k("passkey", id), null]],
      };
      return { commit, then: { ok: true, value: null } };
    });
  }

  /** Records a sign-in; see {@linkcode AccountStore.recordUse}. */
  recordUse(id: string, counter: number, usedAt: number): Promise<boolean> {
    const key = this.#k("passkey", id);
    return this.#change("record passkey use", async (): Promise<Attempt<boolean>> => {
      const text = await this.#client.get(key);
      if (!text) return { done: false };
      const stored: StoredPasskey = JSON.parse(text);
      if (!counterMovesOn(stored.counter, counter)) return { done: false };
      const used = JSON.stringify({ ...stored, counter, lastUsedAt: usedAt });
      return { commit: { reads: [[key, text]], writes: [[key, used]] }, then: true };
    });
  }

  /** Stores a session until it expires. */
  async createSession(session: AccountSession): Promise<void> {
    const index = this.#k("account-sessions", session.accountId);
    await this.#client.multi()
      .set(this.#k("account-session", session.id), JSON.stringify(session), {
        PXAT: session.expiresAt,
      })
      .zAdd(index, { score: session.createdAt, value: session.id })
      .pExpireAt(index, session.expiresAt, "GT")
      .pExpireAt(index, session.expiresAt, "NX")
      .exec();
  }

  /** A session and its account in one read; see {@linkcode AccountStore.resolveSession}. */
  async resolveSession(
    id: string,
    accountId: string,
  ): Promise<{ session: AccountSession; account: Account } | null> {
    const [sessionText, accountText] = await this.#client.mGet([
      this.#k("account-session", id),
      this.#k("account", accountId),
    ]);
    if (!sessionText || !accountText) return null;
    const session: AccountSession = JSON.parse(sessionText);
    if (session.accountId !== accountId || session.expiresAt <= this.#now()) return null;
    return { session, account: publicAccount(JSON.parse(accountText)) };
  }

  /** Revokes a session on every instance; `false` when unknown. */
  revokeSession(id: string): Promise<boolean> {
    const key = this.#k("account-session", id);
    return this.#change("revoke session", async (): Promise<Attempt<boolean>> => {
      const text = await this.#client.get(key);
      if (!text) return { done: false };
      const session: AccountSession = JSON.parse(text);
      if (session.expiresAt <= this.#now()) return { done: false };
      if (session.revoked) return { done: true };
      const revoked = JSON.stringify({ ...session, revoked: true });
      return {
        commit: { reads: [[key, text]], writes: [[key, revoked, session.expiresAt]] },
        then: true,
      };
    });
  }

  /** The account's unexpired sessions, newest first; expired ones leave the index. */
  async sessions(accountId: string): Promise<AccountSession[]> {
    const index = this.#k("account-sessions", accountId);
    const ids = await this.#client.zRange(index, "+inf", "-inf", {
      BY: "SCORE",
      REV: true,
      LIMIT: { offset: 0, count: MAX_LISTED_SESSIONS * 2 },
    });
    if (ids.length === 0) return [];
    const texts = await this.#client.mGet(ids.map((id) => this.#k("account-session", id)));
    const gone = ids.filter((_, i) => texts[i] === null);
    if (gone.length > 0) await this.#client.zRem(index, gone);
    const now = this.#now();
    return texts.filter((text): text is string => text !== null)
      .map((text): AccountSession => JSON.parse(text))
      .filter((session) => session.expiresAt > now)
      .slice(0, MAX_LISTED_SESSIONS);
  }

  /** Stores a challenge until it expires. */
  async putChallenge(challenge: string, data: Challenge): Promise<void> {
    await this.#client.set(this.#k("challenge", challenge), JSON.stringify(data), {
      PXAT: Math.max(this.#now() + 1, data.expiresAt),
    });
  }

  /** Takes a challenge, once (`GETDEL`); see {@linkcode AccountStore.takeChallenge}. */
  async takeChallenge(challenge: string): Promise<Challenge | null> {
    const text = await this.#client.getDel(this.#k("challenge", challenge));
    if (!text) return null;
    const data: Challenge = JSON.parse(text);
    return data.expiresAt > this.#now() ? data : null;
  }

  /** Remembers a joined room; see {@linkcode AccountStore.joinRoom}. */
  joinRoom(accountId: string, room: string, joinedAt: number): Promise<boolean> {
    return this.#editList(this.#k("account-rooms", accountId), joinEdit(room, joinedAt));
  }

  /** Forgets a room and its read position. */
  async leaveRoom(accountId: string, room: string): Promise<void> {
    await this.#editList(this.#k("account-rooms", accountId), leaveEdit(room));
  }

  /** Moves a read position forward; see {@linkcode AccountStore.markRead}. */
  async markRead(accountId: string, room: string, id: number): Promise<void> {
    await this.#editList(this.#k("account-rooms", accountId), readEdit(room, id));
  }

  /** The rooms an account joined, with read positions. */
  async rooms(accountId: string): Promise<AccountRoom[]> {
    const text = await this.#client.get(this.#k("account-rooms", accountId));
    return sortRooms(text ? JSON.parse(text) : []);
  }

  /** Blocks a user; see {@linkcode AccountStore.block}. */
  block(accountId: string, userId: string): Promise<boolean> {
    return this.#editList(this.#k("account-blocks", accountId), blockEdit(userId));
  }

  /** Unblocks a user. */
  async unblock(accountId: string, userId: string): Promise<void> {
    await this.#editList(this.#k("account-blocks", accountId), unblockEdit(userId));
  }

  /** The user ids the account blocks. */
  async blocks(accountId: string): Promise<string[]> {
    const text = await this.#client.get(this.#k("account-blocks", accountId));
    return text ? JSON.parse(text) : [];
  }

  /** Edits the JSON list at `key` with a checked commit. */
  #editList<T>(key: string, edit: ListEdit<T>): Promise<boolean> {
    return this.#change("update account", async (): Promise<Attempt<boolean>> => {
      const text = await this.#client.get(key);
      const list: T[] = text ? JSON.parse(text) : [];
      const answer = edit(list);
      if (answer !== "changed") return { done: answer };
      return {
        commit: { reads: [[key, text]], writes: [[key, JSON.stringify(list)]] },
        then: true,
      };
    });
  }

  /** Runs `attempt` until its commit's checks pass, or it answers without one. */
  async #change<T>(what: string, attempt: () => Promise<Attempt<T>>): Promise<T> {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const step = await attempt();
      if ("done" in step) return step.done;
      if (await this.#commit(step.commit)) return step.then;
      await backoff(i);
    }
    throw new Error(`Cannot ${what}: ${MAX_ATTEMPTS} commits lost to other instances`);
  }

  /** Runs {@linkcode COMMIT_SCRIPT}: `true` when every read was unchanged and all was written. */
  async #commit({ reads, writes }: Commit): Promise<boolean> {
    const keys: string[] = [];
    const index = (key: string) => {
      const at = keys.indexOf(key);
      return at >= 0 ? at + 1 : keys.push(key);
    };
    const spec = {
      checks: reads.map(([key, value]) => [index(key), value ?? false]),
      writes: writes.map(([key, value, pxat]) => [index(key), value ?? false, String(pxat ?? 0)]),
    };
    const reply = await this.#client.eval(COMMIT_SCRIPT, {
      keys,
      arguments: [JSON.stringify(spec)],
    });
    return reply === 1;
  }

  #k(kind: string, id: string): string {
    return `${this.#prefix}${kind}:${id}`;
  }

  #nameKey(key: string): string {
    return `${this.#prefix}account-name:${JSON.stringify(key)}`;
  }
}

function publicAccount({ id, name, createdAt }: StoredAccount): Account {
  return { id, name, createdAt };
}

function storePasskey(passkey: Passkey): string {
  const stored: StoredPasskey = { ...passkey, publicKey: toBase64Url(passkey.publicKey) };
  return JSON.stringify(stored);
}

function loadPasskey(text: string): Passkey {
  const stored: StoredPasskey = JSON.parse(text);
  return { ...stored, publicKey: fromBase64Url(stored.publicKey) };
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
