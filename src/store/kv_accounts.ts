/**
 * {@linkcode KvAccounts}: the account store in Deno KV. Every change is a
 * checked commit of what it read (retried, after a random wait, when another
 * instance or process changed it first, or held the file's lock), so the
 * contract's atomic steps hold across instances. The keys, all under
 * `["accounts"]`:
 *
 * | Key                                          | Value                                  |
 * | -------------------------------------------- | -------------------------------------- |
 * | `account, <id>`                              | the account, with its name's key       |
 * | `name, <name key>`                           | the id of the account holding it       |
 * | `count`                                      | how many accounts exist                |
 * | `passkey, <credential id>`                   | the passkey                            |
 * | `passkeys_of, <id>`                          | the account's credential ids           |
 * | `session, <session id>`                      | the session, expiring with it          |
 * | `sessions_of, <id>, <createdAt>, <session>`  | an index for listing, expiring with it |
 * | `challenge, <challenge>`                     | the ceremony in flight, expiring       |
 * | `rooms, <id>`                                | `[{room, joinedAt, readId}]`           |
 * | `blocks, <id>`                               | the blocked user ids                   |
 *
 * @module
 */

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
import { backoff, commitOrConflict } from "./kv_contention.ts";

/** Commits tried before a change gives up (each retry waits longer, at random). */
const MAX_ATTEMPTS = 30;
/** Keys one `getMany` may read. */
const GET_MANY = 10;

/** An account as stored: with its name's key, so a rename frees the right one. */
interface StoredAccount extends Account {
  key: string;
}

/** Options for {@linkcode KvAccounts}. */
export interface KvAccountsOptions {
  /**
   * The wall clock, in ms since the epoch (sessions and challenges expire by it).
   * @default {Date.now}
   */
  now?: () => number;
}

/** One try of a change: a commit to try, or the answer without one. */
type Attempt<T> = { op: Deno.AtomicOperation; then: T } | { done: T };

/**
 * The account store in Deno KV.
 *
 * @example Usage
 * ```ts
 * import { KvAccounts } from "./kv_accounts.ts";
 * using kv = await Deno.openKv(":memory:");
 * const accounts = new KvAccounts(kv);
 * await accounts.nameOwner("ada"); // null: nobody holds it
 * ```
 */
export class KvAccounts implements AccountStore {
  #kv: Deno.Kv;
  #now: () => number;

  /** Wraps an open KV; the caller closes it. See {@linkcode KvAccountsOptions}. */
  constructor(kv: Deno.Kv, options: KvAccountsOptions = {}) {
    this.#kv = kv;
    this.#now = options.now ?? Date.now;
  }

  /** Runs `attempt` until its commit succeeds, or it answers without one. */
  async #change<T>(what: string, attempt: () => Promise<Attempt<T>>): Promise<T> {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const step = await attempt();
      if ("done" in step) return step.done;
      if ((await commitOrConflict(step.op)).ok) return step.then;
      await backoff(i);
    }
    throw new Error(`Cannot ${what}: ${MAX_ATTEMPTS} commits lost to other instances`);
  }

  /** Creates an account with its first passkey; see {@linkcode AccountStore.createAccount}. */
  createAccount({ account, passkey }: NewAccount, maxAccounts: number) {
    const key = nameKey(account.name);
    const stored: StoredAccount = { ...account, key };
    return this.#change("create account", async (): Promise<Attempt<StoreResult<Account>>> => {
      const [held, existing, count, credential] = await this.#kv.getMany<unknown[]>([
        ["accounts", "name", key],
        ["accounts", "account", account.id],
        ["accounts", "count"],
        ["accounts", "passkey", passkey.id],
      ]);
      if (held.value !== null) return { done: { ok: false, code: "name_reserved" } };
      if (credential.value !== null) return { done: { ok: false, code: "credential_exists" } };
      const total = Number(count.value ?? 0);
      if (total >= maxAccounts) return { done: { ok: false, code: "account_limit" } };
      if (existing.value !== null) throw new Error("Cannot create account: its id is taken");
      const op = this.#kv.atomic().check(held, existing, count, credential)
        .set(["accounts", "name", key], account.id)
        .set(["accounts", "account", account.id], stored)
        .set(["accounts", "count"], total + 1)
        .set(["accounts", "passkey", passkey.id], { ...passkey, accountId: account.id })
        .set(["accounts", "passkeys_of", account.id], [passkey.id]);
      return { op, then: { ok: true, value: account } };
    });
  }

  /** The account `id`, or `null`. */
  async account(id: string): Promise<Account | null> {
    const entry = await this.#kv.get<StoredAccount>(["accounts", "account", id]);
    return entry.value ? publicAccount(entry.value) : null;
  }

  /** Who holds `name`'s key; see {@linkcode AccountStore.nameOwner}. */
  async nameOwner(name: string): Promise<string | null> {
    return (await this.#kv.get<string>(["accounts", "name", nameKey(name)])).value;
  }

  /** Renames an account; see {@linkcode AccountStore.rename}. */
  rename(id: string, name: string): Promise<StoreResult<Account>> {
    const key = nameKey(name);
    return this.#change("rename account", async (): Promise<Attempt<StoreResult<Account>>> => {
      const [entry, held] = await this.#kv.getMany<[StoredAccount, string]>([
        ["accounts", "account", id],
        ["accounts", "name", key],
      ]);
      if (!entry.value) return { done: { ok: false, code: "not_found" } };
      if (held.value !== null && held.value !== id) {
        return { done: { ok: false, code: "name_reserved" } };
      }
      const renamed: StoredAccount = { ...entry.value, name, key };
      const op = this.#kv.atomic().check(entry, held)
        .set(["accounts", "account", id], renamed)
        .set(["accounts", "name", key], id);
      if (entry.value.key !== key) op.delete(["accounts", "name", entry.value.key]);
      return { op, then: { ok: true, value: publicAccount(renamed) } };
    });
  }

  /** How many accounts exist. */
  async count(): Promise<number> {
    return Number((await this.#kv.get<number>(["accounts", "count"])).value ?? 0);
  }

  /** Adds a passkey; see {@linkcode AccountStore.addPasskey}. */
  addPasskey(passkey: Passkey): Promise<StoreResult<Passkey>> {
    return this.#change("add passkey", async (): Promise<Attempt<StoreResult<Passkey>>> => {
      const [account, list, credential] = await this.#kv.getMany<unknown[]>([
        ["accounts", "account", passkey.accountId],
        ["accounts", "passkeys_of", passkey.accountId],
        ["accounts", "passkey", passkey.id],
      ]);
      if (account.value === null) return { done: { ok: false, code: "not_found" } };
      if (credential.value !== null) return { done: { ok: false, code: "credential_exists" } };
      const ids = (list.value ?? []) as string[];
      if (ids.length >= MAX_PASSKEYS) return { done: { ok: false, code: "passkey_limit" } };
      const op = this.#kv.atomic().check(account, list, credential)
        .set(["accounts", "passkey", passkey.id], passkey)
        .set(["accounts", "passkeys_of", passkey.accountId], [...ids, passkey.id]);
      return { op, then: { ok: true, value: passkey } };
    });
  }

  /** The passkey `id`, or `null`. */
  async passkey(id: string): Promise<Passkey | null> {
    return (await this.#kv.get<Passkey>(["accounts", "passkey", id])).value;
  }

  /** The account's passkeys, oldest first. */
  async passkeys(accountId: string): Promise<Passkey[]> {
    const ids = (await this.#kv.get<string[]>(["accounts", "passkeys_of", accountId])).value ?? [];
    const keys = ids.map((id): Deno.KvKey => ["accounts", "passkey", id]);
    return (await this.#getMany<Passkey>(keys)).filter((p): p is Passkey => p !== null);
  }

  /** Removes a passkey, never the last; see {@linkcode AccountStore.removePasskey}. */
  removePasskey(accountId: string, id: string): Promise<StoreResult<null>> {
    return this.#change("remove passkey", async (): Promise<Attempt<StoreResult<null>>> => {
      const list = await this.#kv.get<string[]>(["accounts", "passkeys_of", accountId]);
      const ids = list.value ?? [];
      if (!ids.includes(id)) return { done: { ok: false, code: "not_found" } };
      if (ids.length <= 1) return { done: { ok: false, code: "last_passkey" } };
      const op = this.#kv.atomic().check(list)
        .set(["accounts", "passkeys_of", accountId], ids.filter((other) => other !== id))
        .delete(["accounts", "passkey", id]);
      return { op, then: { ok: true, value: null } };
    });
  }

  /** Records a sign-in; see {@linkcode AccountStore.recordUse}. */
  recordUse(id: string, counter: number, usedAt: number): Promise<boolean> {
    return this.#change("record passkey use", async (): Promise<Attempt<boolean>> => {
      const entry = await this.#kv.get<Passkey>(["accounts", "passkey", id]);
      if (!entry.value || !counterMovesOn(entry.value.counter, counter)) return { done: false };
      const op = this.#kv.atomic().check(entry)
        .set(["accounts", "passkey", id], { ...entry.value, counter, lastUsedAt: usedAt });
      return { op, then: true };
    });
  }

  /** Stores a session until it expires. */
  async createSession(session: AccountSession): Promise<void> {
    const expireIn = Math.max(1, session.expiresAt - this.#now());
    const index = ["accounts", "sessions_of", session.accountId, session.createdAt, session.id];
    await this.#change("create session", () =>
      Promise.resolve({
        op: this.#kv.atomic()
          .set(["accounts", "session", session.id], session, { expireIn })
          .set(index, session.id, { expireIn }),
        then: undefined,
      }));
  }

  /** A session and its account in one read; see {@linkcode AccountStore.resolveSession}. */
  async resolveSession(
    id: string,
    accountId: string,
  ): Promise<{ session: AccountSession; account: Account } | null> {
    const [session, account] = await this.#kv.getMany<[AccountSession, StoredAccount]>([
      ["accounts", "session", id],
      ["accounts", "account", accountId],
    ]);
    if (!session.value || !account.value || session.value.accountId !== accountId) return null;
    if (session.value.expiresAt <= this.#now()) return null;
    return { session: session.value, account: publicAccount(account.value) };
  }

  /** Revokes a session on every instance; `false` when unknown. */
  revokeSession(id: string): Promise<boolean> {
    return this.#change("revoke session", async (): Promise<Attempt<boolean>> => {
      const entry = await this.#kv.get<AccountSession>(["accounts", "session", id]);
      if (!entry.value || entry.value.expiresAt <= this.#now()) return { done: false };
      if (entry.value.revoked) return { done: true };
      const expireIn = Math.max(1, entry.value.expiresAt - this.#now());
      const op = this.#kv.atomic().check(entry)
        .set(["accounts", "session", id], { ...entry.value, revoked: true }, { expireIn });
      return { op, then: true };
    });
  }

  /** The account's unexpired sessions, newest first. */
  async sessions(accountId: string): Promise<AccountSession[]> {
    const ids: string[] = [];
    const list = this.#kv.list<string>(
      { prefix: ["accounts", "sessions_of", accountId] },
      { reverse: true, limit: MAX_LISTED_SESSIONS * 2 },
    );
    for await (const { value } of list) ids.push(value);
    const now = this.#now();
    const sessions = await this.#getMany<AccountSession>(
      ids.map((id): Deno.KvKey => ["accounts", "session", id]),
    );
    return sessions.filter((s): s is AccountSession => s !== null && s.expiresAt > now)
      .slice(0, MAX_LISTED_SESSIONS);
  }

  /** Stores a challenge until it expires. */
  async putChallenge(challenge: string, data: Challenge): Promise<void> {
    const expireIn = Math.max(1, data.expiresAt - this.#now());
    await this.#kv.set(["accounts", "challenge", challenge], data, { expireIn });
  }

  /** Takes a challenge, once; see {@linkcode AccountStore.takeChallenge}. */
  takeChallenge(challenge: string): Promise<Challenge | null> {
    const key = ["accounts", "challenge", challenge];
    return this.#change("take challenge", async (): Promise<Attempt<Challenge | null>> => {
      const entry = await this.#kv.get<Challenge>(key);
      if (!entry.value) return { done: null };
      const fresh = entry.value.expiresAt > this.#now() ? entry.value : null;
      return { op: this.#kv.atomic().check(entry).delete(key), then: fresh };
    });
  }

  /** Remembers a joined room; see {@linkcode AccountStore.joinRoom}. */
  joinRoom(accountId: string, room: string, joinedAt: number): Promise<boolean> {
    return this.#editList(["accounts", "rooms", accountId], joinEdit(room, joinedAt));
  }

  /** Forgets a room and its read position. */
  async leaveRoom(accountId: string, room: string): Promise<void> {
    await this.#editList(["accounts", "rooms", accountId], leaveEdit(room));
  }

  /** Moves a read position forward; see {@linkcode AccountStore.markRead}. */
  async markRead(accountId: string, room: string, id: number): Promise<void> {
    await this.#editList(["accounts", "rooms", accountId], readEdit(room, id));
  }

  /** The rooms an account joined, with read positions. */
  async rooms(accountId: string): Promise<AccountRoom[]> {
    return sortRooms(
      (await this.#kv.get<AccountRoom[]>(["accounts", "rooms", accountId])).value ?? [],
    );
  }

  /** Blocks a user; see {@linkcode AccountStore.block}. */
  block(accountId: string, userId: string): Promise<boolean> {
    return this.#editList(["accounts", "blocks", accountId], blockEdit(userId));
  }

  /** Unblocks a user. */
  async unblock(accountId: string, userId: string): Promise<void> {
    await this.#editList(["accounts", "blocks", accountId], unblockEdit(userId));
  }

  /** The user ids the account blocks. */
  async blocks(accountId: string): Promise<string[]> {
    return (await this.#kv.get<string[]>(["accounts", "blocks", accountId])).value ?? [];
  }

  /** Edits the list at `key` with a checked commit. */
  #editList<T>(key: Deno.KvKey, edit: ListEdit<T>): Promise<boolean> {
    return this.#change("update account", async (): Promise<Attempt<boolean>> => {
      const entry = await this.#kv.get<T[]>(key);
      const list = entry.value ?? [];
      const answer = edit(list);
      if (answer !== "changed") return { done: answer };
      return { op: this.#kv.atomic().check(entry).set(key, list), then: true };
    });
  }

  /** Values of `keys`, in order, reading at most {@linkcode GET_MANY} at a time. */
  async #getMany<T>(keys: Deno.KvKey[]): Promise<(T | null)[]> {
    const values: (T | null)[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY) {
      const entries = await this.#kv.getMany<T[]>(keys.slice(i, i + GET_MANY));
      values.push(...entries.map((entry) => entry.value));
    }
    return values;
  }
}

function publicAccount({ id, name, createdAt }: StoredAccount): Account {
  return { id, name, createdAt };
}
