/**
 * What the hub does with accounts: a signed-in connection's identity (the
 * account's id and name, in every tab and device), the names accounts
 * reserve (a guest cannot join under one), and what an account remembers
 * between visits, kept in the account store: the rooms it joined, how far
 * it read each, and whom it blocks. The hub keeps using its in-memory
 * {@linkcode UserState} for blocks and read positions; this link fills it
 * from the store when an account connects and writes every change through.
 *
 * Writes through are not awaited by the hub: a store that fails them is
 * logged, and the account's next connection reads what the store holds.
 *
 * @module
 */

import type { JoinIdentity } from "../auth/identity.ts";
import type { Logger } from "../log.ts";
import type { AccountStore } from "../store/accounts.ts";
import type { SignedInAs } from "./peer.ts";
import type { UserState } from "./user_state.ts";

/** The part of the account store the hub uses. */
export type HubAccounts = Pick<
  AccountStore,
  | "account"
  | "nameOwner"
  | "joinRoom"
  | "leaveRoom"
  | "markRead"
  | "rooms"
  | "block"
  | "unblock"
  | "blocks"
>;

/**
 * The hub's link to the account store.
 *
 * @example Usage
 * ```ts ignore
 * import { AccountLink } from "./account_link.ts";
 * const link = new AccountLink(accounts, userState, log);
 * const identity = await link.identify({ sessionId, accountId: "0123456789abcdef", name: "ada" });
 * await link.reservedBy("ada", "guest-id"); // the account's id: a guest may not use it
 * ```
 */
export class AccountLink {
  #store: HubAccounts;
  #users: UserState;
  #log: Logger;

  /** Creates the link over `store`, filling `users`. */
  constructor(store: HubAccounts, users: UserState, log: Logger) {
    this.#store = store;
    this.#users = users;
    this.#log = log;
  }

  /**
   * The identity of a connection opened signed in: the account's id and
   * name, no tab session (its connections coexist) and no token. Loads the
   * account's blocks and read positions first; a store that fails that is
   * logged, and the connection goes on with what this instance knew.
   */
  async identify(signedIn: SignedInAs): Promise<JoinIdentity & { name: string }> {
    const { accountId, name } = signedIn;
    try {
      const [blocks, rooms] = await Promise.all([
        this.#store.blocks(accountId),
        this.#store.rooms(accountId),
      ]);
      for (const userId of blocks) this.#users.block(accountId, userId);
      for (const { room, readId } of rooms) this.#users.read(accountId, room, readId);
    } catch (error) {
      this.#log({ event: "error", error: `accounts: load ${accountId}: ${error}` });
    }
    return { userId: accountId, name, account: true };
  }

  /** Fills in whom `accountId` blocks from the store (for a conversation with it). */
  async loadBlocks(accountId: string): Promise<void> {
    for (const userId of await this.#store.blocks(accountId)) this.#users.block(accountId, userId);
  }

  /** The account called `name` (by its confusable key), or `null`. Rejects when the store cannot say. */
  async find(name: string): Promise<{ id: string; name: string } | null> {
    const owner = await this.#store.nameOwner(name);
    const account = owner === null ? null : await this.#store.account(owner);
    return account && { id: account.id, name: account.name };
  }

  /** The account with id `id`, or `null`. Rejects when the store cannot say. */
  async byId(id: string): Promise<{ id: string; name: string } | null> {
    const account = await this.#store.account(id);
    return account && { id: account.id, name: account.name };
  }

  /**
   * The account that reserved `name` (by its confusable key), unless it is
   * `userId` itself: then, or when no account holds it, `null`. Rejects
   * when the store cannot say.
   */
  async reservedBy(name: string, userId: string): Promise<string | null> {
    const owner = await this.#store.nameOwner(name);
    return owner === null || owner === userId ? null : owner;
  }

  /** Whether `userId` is an account's. Rejects when the store cannot say. */
  async isAccount(userId: string): Promise<boolean> {
    return (await this.#store.account(userId)) !== null;
  }

  /** The account joined `room`: it is in its list from now on. */
  joined(accountId: string, room: string): void {
    this.#write("join", () => this.#store.joinRoom(accountId, room, Date.now()));
  }

  /** The account left `room`: it is no longer in its list. */
  left(accountId: string, room: string): void {
    this.#write("leave", () => this.#store.leaveRoom(accountId, room));
  }

  /** The account read `room` up to `id`. */
  read(accountId: string, room: string, id: number): void {
    this.#write("read", () => this.#store.markRead(accountId, room, id));
  }

  /** The account blocks `userId`, or no longer does. */
  block(accountId: string, userId: string, blocked: boolean): void {
    this.#write(
      blocked ? "block" : "unblock",
      () => blocked ? this.#store.block(accountId, userId) : this.#store.unblock(accountId, userId),
    );
  }

  #write(action: string, write: () => Promise<unknown>): void {
    write().catch((error) => this.#log({ event: "error", error: `accounts: ${action}: ${error}` }));
  }
}
