/**
 * The account store contract: accounts with a reserved name, their passkeys,
 * their cookie sessions, the WebAuthn challenges in flight, and what an
 * account remembers between visits (the rooms it joined, its read position in
 * each, the users it blocks). Kept in the shared store, so every instance
 * sees the same accounts, and every operation that must hold across
 * instances says so below and is tested with two store objects on one KV
 * file and on one Redis (`tests/accounts_contract_test.ts`).
 *
 * Names go in as users wrote them; the store reserves each by its
 * confusable key (`nameKey` in `src/names.ts`), so `ada`, `ADA` and `аda`
 * with a Cyrillic `а` are one reservation.
 *
 * Implementations: `kv_accounts.ts` (Deno KV) and `redis_accounts.ts`
 * (Redis).
 *
 * @module
 */

/** Passkeys one account may hold at most. */
export const MAX_PASSKEYS = 10;
/** Rooms one account remembers at most (joined, with a read position each). */
export const MAX_ACCOUNT_ROOMS = 200;
/** Users one account may block at most. */
export const MAX_BLOCKS = 1000;
/** Sessions {@linkcode AccountStore.sessions} lists at most, newest first. */
export const MAX_LISTED_SESSIONS = 100;

/** An account: a user id that stays, and the name it holds. */
export interface Account {
  /** 16 hex characters, the same shape as a guest session's user id. */
  id: string;
  /** The name as the owner wrote it (NFKC-normalised and trimmed by the caller). */
  name: string;
  /** When it was created, in ms since the epoch. */
  createdAt: number;
}

/** A WebAuthn credential (a passkey) of an account. */
export interface Passkey {
  /** The credential id, base64url, as the browser reports it. */
  id: string;
  accountId: string;
  /** The credential's public key (COSE), as `@simplewebauthn/server` returns it. */
  publicKey: Uint8Array;
  /** The authenticator's signature counter at the last verified use (0 when it keeps none). */
  counter: number;
  /** How the browser may reach the authenticator (`internal`, `hybrid`, `usb`, …). */
  transports: string[];
  /** The owner's name for it ("Laptop"). */
  label: string;
  createdAt: number;
  /** When it last signed in, in ms since the epoch; `null` before its first sign-in. */
  lastUsedAt: number | null;
}

/** A cookie session of an account. */
export interface AccountSession {
  /** The session's id: a hash of the cookie's secret, never the secret itself. */
  id: string;
  accountId: string;
  createdAt: number;
  /** When the cookie stops working, in ms since the epoch. */
  expiresAt: number;
  /** Signed out: the cookie no longer works, on any instance. */
  revoked: boolean;
}

/** What one WebAuthn ceremony in flight remembers between its options and its verify. */
export interface Challenge {
  /** Which ceremony: a new account, a sign-in, or one more passkey for an account. */
  purpose: "register" | "signin" | "add";
  /** The account the ceremony is for: the new account's id, or the signed-in one's. */
  accountId?: string;
  /** The name a new account is to hold. */
  name?: string;
  /** The RP ID the options named. */
  rpId: string;
  /** The page origins the answer may come from. */
  origins: string[];
  /** When it stops being accepted, in ms since the epoch. */
  expiresAt: number;
}

/** A room an account has joined, and how far it has read. */
export interface AccountRoom {
  room: string;
  /** When the account first joined it, in ms since the epoch. */
  joinedAt: number;
  /** The id of the newest message the account has seen in it (0: none). */
  readId: number;
}

/** A new account with its first passkey, for {@linkcode AccountStore.createAccount}. */
export interface NewAccount {
  account: Account;
  passkey: Passkey;
}

/** Why a change to the store was refused: a stable code. */
export type AccountStoreRefusal =
  | "name_reserved"
  | "account_limit"
  | "credential_exists"
  | "passkey_limit"
  | "last_passkey"
  | "not_found";

/** The result of a change that may be refused. */
export type StoreResult<T> = { ok: true; value: T } | { ok: false; code: AccountStoreRefusal };

/** Accounts, passkeys, sessions, challenges, rooms and blocks in the shared store. */
export interface AccountStore {
  /**
   * Creates `init.account` with its first passkey, reserving its name's
   * key. Atomic across instances: of two creations of names with one key,
   * exactly one succeeds (the other gets `name_reserved`); a credential id
   * already stored gets `credential_exists`; and the count of accounts never
   * passes `maxAccounts` (`account_limit`), however many create at once.
   */
  createAccount(init: NewAccount, maxAccounts: number): Promise<StoreResult<Account>>;
  /** The account `id`, or `null`. */
  account(id: string): Promise<Account | null>;
  /** The id of the account holding `name`'s key (any name that looks the same), or `null`. */
  nameOwner(name: string): Promise<string | null>;
  /**
   * Gives account `id` the name `name`: reserves the new key and frees the
   * old one in one step, atomic across instances (no moment holds both or
   * neither, and of two accounts renaming to one key at once exactly one
   * succeeds). A key held by another account gets `name_reserved`; the same
   * key (a change of case) just changes the name.
   */
  rename(id: string, name: string): Promise<StoreResult<Account>>;
  /** How many accounts exist. */
  count(): Promise<number>;

  /**
   * Adds a passkey to its account. Atomic across instances: a credential id
   * already stored gets `credential_exists`, and an account never holds more
   * than {@linkcode MAX_PASSKEYS} (`passkey_limit`).
   */
  addPasskey(passkey: Passkey): Promise<StoreResult<Passkey>>;
  /** The passkey with credential id `id`, or `null`. */
  passkey(id: string): Promise<Passkey | null>;
  /** The account's passkeys, oldest first. */
  passkeys(accountId: string): Promise<Passkey[]>;
  /**
   * Removes passkey `id` of `accountId`. Never the last one: atomic across
   * instances, so two removals at once of an account's last two passkeys
   * leave one (`last_passkey`). `not_found` when the account has no such
   * passkey.
   */
  removePasskey(accountId: string, id: string): Promise<StoreResult<null>>;
  /**
   * Records a verified sign-in of passkey `id`: its new `counter` and
   * `usedAt`. Atomic across instances: the counter only goes up, so of two
   * sign-ins that verified against the same old counter only one records
   * (the other answers `false`: a replay or a cloned authenticator). A
   * counter of 0 (an authenticator that keeps none) always records.
   */
  recordUse(id: string, counter: number, usedAt: number): Promise<boolean>;

  /** Stores a new session until its `expiresAt`. */
  createSession(session: AccountSession): Promise<void>;
  /**
   * Session `id` and its account in one read, when the session belongs to
   * `accountId`; `null` when either is unknown, or it expired. A revoked
   * session is returned (with `revoked: true`) until it expires.
   */
  resolveSession(
    id: string,
    accountId: string,
  ): Promise<{ session: AccountSession; account: Account } | null>;
  /** Marks session `id` revoked, on every instance at once; `false` when unknown. */
  revokeSession(id: string): Promise<boolean>;
  /** The account's unexpired sessions, revoked ones too, newest first (at most 100). */
  sessions(accountId: string): Promise<AccountSession[]>;

  /** Stores a challenge (base64url) until its `expiresAt`. */
  putChallenge(challenge: string, data: Challenge): Promise<void>;
  /**
   * Takes a challenge: returns it and deletes it in one step, atomic across
   * instances, so of two takes at once exactly one gets it. `null` when
   * unknown, taken already, or expired.
   */
  takeChallenge(challenge: string): Promise<Challenge | null>;

  /**
   * Remembers that the account joined `room` (the first `joinedAt` stays).
   * `false` when the account already remembers {@linkcode MAX_ACCOUNT_ROOMS}
   * other rooms. Atomic across instances.
   */
  joinRoom(accountId: string, room: string, joinedAt: number): Promise<boolean>;
  /** Forgets `room` and its read position. */
  leaveRoom(accountId: string, room: string): Promise<void>;
  /**
   * Moves the read position in a joined room to `id`, never back: atomic
   * across instances, so the highest of two marks at once wins. A room the
   * account has not joined is ignored.
   */
  markRead(accountId: string, room: string, id: number): Promise<void>;
  /** The rooms the account joined, with read positions, oldest join first. */
  rooms(accountId: string): Promise<AccountRoom[]>;

  /**
   * Adds `userId` to the account's block list; `false` when the list holds
   * {@linkcode MAX_BLOCKS} others already. Atomic across instances.
   */
  block(accountId: string, userId: string): Promise<boolean>;
  /** Takes `userId` off the account's block list. */
  unblock(accountId: string, userId: string): Promise<void>;
  /** The user ids the account blocks, in the order they were blocked. */
  blocks(accountId: string): Promise<string[]>;
}

/**
 * A change to one stored list (an account's rooms, its blocks): it edits the
 * list in place and answers `"changed"` to store it, or the call's answer
 * when there is nothing to store. Shared by the implementations, which
 * store the list with a checked commit.
 */
export type ListEdit<T> = (list: T[]) => boolean | "changed";

/** {@linkcode AccountStore.joinRoom} as a {@linkcode ListEdit}. */
export function joinEdit(room: string, joinedAt: number): ListEdit<AccountRoom> {
  return (rooms) => {
    if (rooms.some((r) => r.room === room)) return true;
    if (rooms.length >= MAX_ACCOUNT_ROOMS) return false;
    rooms.push({ room, joinedAt, readId: 0 });
    return "changed";
  };
}

/** {@linkcode AccountStore.leaveRoom} as a {@linkcode ListEdit}. */
export function leaveEdit(room: string): ListEdit<AccountRoom> {
  return (rooms) => {
    const at = rooms.findIndex((r) => r.room === room);
    if (at < 0) return true;
    rooms.splice(at, 1);
    return "changed";
  };
}

/** {@linkcode AccountStore.markRead} as a {@linkcode ListEdit}. */
export function readEdit(room: string, id: number): ListEdit<AccountRoom> {
  return (rooms) => {
    const joined = rooms.find((r) => r.room === room);
    if (!joined || joined.readId >= id) return true;
    joined.readId = id;
    return "changed";
  };
}

/** {@linkcode AccountStore.block} as a {@linkcode ListEdit}. */
export function blockEdit(userId: string): ListEdit<string> {
  return (blocks) => {
    if (blocks.includes(userId)) return true;
    if (blocks.length >= MAX_BLOCKS) return false;
    blocks.push(userId);
    return "changed";
  };
}

/** {@linkcode AccountStore.unblock} as a {@linkcode ListEdit}. */
export function unblockEdit(userId: string): ListEdit<string> {
  return (blocks) => {
    const at = blocks.indexOf(userId);
    if (at < 0) return true;
    blocks.splice(at, 1);
    return "changed";
  };
}

/** The rooms as {@linkcode AccountStore.rooms} lists them: oldest join first. */
export function sortRooms(rooms: AccountRoom[]): AccountRoom[] {
  return rooms.sort((a, b) => a.joinedAt - b.joinedAt || (a.room < b.room ? -1 : 1));
}

/**
 * Whether a passkey whose stored signature counter is `stored` may record
 * `counter`: it must go up, unless the authenticator keeps none (both 0).
 * Shared by the implementations.
 *
 * @example Usage
 * ```ts
 * import { counterMovesOn } from "./accounts.ts";
 * counterMovesOn(4, 5); // true
 * counterMovesOn(5, 5); // false: a replay, or a cloned authenticator
 * counterMovesOn(0, 0); // true: no counter kept
 * ```
 */
export function counterMovesOn(stored: number, counter: number): boolean {
  return (stored === 0 && counter === 0) || counter > stored;
}
