/**
 * The hub: rooms as Sets of peers, users and their connections, and what
 * members do in rooms (`join`, `leave`, `say`, `typing`, history, changes,
 * `rename`). It talks to {@linkcode Peer}s, never sockets, so it runs the
 * same behind any transport and is unit-tested with fake peers.
 *
 * A connection may be in many rooms at once (up to
 * `maxRoomsPerConnection`); every room-scoped frame names its room, or
 * leaves it out on a connection in exactly one room. The hub indexes users
 * as well as rooms, and addresses both through one targeting primitive
 * ({@linkcode Target}): a room's connections, a user's, or a user's in one
 * room.
 *
 * The path of one `say`: it waits in its room's `says` with the others that
 * came meanwhile; the room's queue stores them together (one commit), then
 * acks each to its sender and sends each to every member in id order; the
 * {@linkcode Cluster} forwards it to other instances that have members
 * there.
 *
 * @module
 */

import { AuthError } from "../auth/jwt.ts";
import type { Identify, JoinIdentity } from "../auth/identity.ts";
import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import {
  type BlockMessage,
  type ChatMessage,
  type ClientMessage,
  type DirectMessageRequest,
  dmRoom,
  dmUsers,
  type ErrorCode,
  type ErrorMessage,
  errorMessage,
  type HistoryRequest,
  type JoinMessage,
  type Member,
  type ModMessage,
  nameKey,
  type ReadMessage,
  type RenameMessage,
  type ReportMessage,
  type RoomInfo,
  type SayMessage,
  type SearchRequest,
  type ServerMessage,
} from "../protocol.ts";
import { Stats } from "../stats.ts";
import {
  type HistoryStore,
  MAX_BATCH,
  type MessageDraft,
  type Replay,
  RoomLimitError,
} from "../store/history.ts";
import { type ChangeRequest, decideChange } from "./changes.ts";
import type { Control } from "../bus/bus.ts";
import type { Quota } from "../store/quota.ts";
import type { Cluster } from "./cluster.ts";
import { RoomDirectory } from "./directory.ts";
import type { PresenceChange } from "./presence.ts";
import { encode, type Peer, type SentEvent } from "./peer.ts";
import { Room, type WaitingSay } from "./room.ts";
import { UserState } from "./user_state.ts";
import { AccountLink, type HubAccounts } from "./account_link.ts";
import { checkFiles, fileIds } from "./message_files.ts";
import type { Attachments } from "../attachments.ts";
import type { MessageSearch } from "../store/search.ts";
import { applyAct, decideAct, mayPost, type ModRequest, type Role, roleOf } from "./moderation.ts";
import {
  emptyPolicy,
  inForce,
  type ModerationStore,
  type RoomPolicy,
} from "../store/moderation.ts";

/** Close reasons for refused authentication. */
const AUTH_CLOSE_REASONS: Record<AuthError["code"], string> = {
  auth_required: "authentication required",
  auth_invalid: "invalid token",
  auth_expired: "token expired",
};
/** The longest delay `setTimeout` takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const HOUR_MS = 3_600_000;
/** User names remembered for conversations' `peer` at most. */
const MAX_NAMES = 10_000;
/** Results a `search` answer holds at most. */
const SEARCH_PAGE = 20;
/** How long a user who sent an oversized frame must wait before joining again, in ms. */
export const OFFENDER_COOLDOWN_MS = 60_000;
/** Offenders remembered at most; the oldest are forgotten first. */
const MAX_OFFENDERS = 10_000;

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  /** Where room history lives. */
  history: HistoryStore;
  /** Resolves a connection's first `join` to a user. */
  identify: Identify;
  /** The link to other instances; `null` for a single instance. */
  cluster?: Cluster | null;
  /**
   * Where connection events go.
   * @default {() => {}}
   */
  log?: Logger;
  /**
   * Counters for `/metrics`.
   * @default {new Stats()}
   */
  stats?: Stats;
  /**
   * Messages a `welcome` carries when the client does not resume.
   * @default {DEFAULTS.welcomeHistory}
   */
  welcomeHistory?: number;
  /**
   * Rooms one connection may be in at once; one more join gets `too_many_rooms`.
   * @default {DEFAULTS.maxRoomsPerConnection}
   */
  maxRoomsPerConnection?: number;
  /**
   * `say`s a room may hold waiting for the store; more are refused.
   * @default {DEFAULTS.maxWaitingSays}
   */
  maxWaitingSays?: number;
  /**
   * `say`s all rooms together may hold waiting for the store, or in a
   * commit not yet done; more are refused. Bounds memory and latency when
   * many rooms are busy at once.
   * @default {DEFAULTS.maxWaitingSaysTotal}
   */
  maxWaitingSaysTotal?: number;
  /**
   * Tasks (joins, changes, history catch-ups) a room's queue may hold;
   * more are refused as `unavailable`, so one flood cannot stall a room.
   * @default {DEFAULTS.maxRoomTasks}
   */
  maxRoomTasks?: number;
  /**
   * Shortest time between two forwarded `typing` notices of one connection
   * in one room, in ms.
   * @default {DEFAULTS.typingIntervalMs}
   */
  typingIntervalMs?: number;
  /**
   * Most bytes of messages a resume's `welcome` replays; further back, the
   * welcome holds the newest messages with `recovered: false`.
   * @default {DEFAULTS.maxReplayBytes}
   */
  maxReplayBytes?: number;
  /**
   * Most events a resume's `welcome` replays: a resume further back reads
   * only the newest messages (with `recovered: false`), never the room.
   * @default {DEFAULTS.maxReplayEvents}
   */
  maxReplayEvents?: number;
  /**
   * Whether joins need a JWT: then `rooms` answers only after a join, within
   * the token's `rooms` claim.
   * @default {false}
   */
  authenticated?: boolean;
  /**
   * How long a name claim in the shared roster lasts without a heartbeat, in ms.
   * @default {DEFAULTS.presenceTtlMs}
   */
  claimTtlMs?: number;
  /**
   * Where moderation lives (owners, moderators, mutes, bans, slow mode,
   * topic, reports, audit log); `null` turns moderation off (`mod` gets
   * `forbidden`).
   * @default {null}
   */
  moderation?: ModerationStore | null;
  /**
   * Whether a user id is an account's (only accounts own or moderate
   * rooms). Without it, the account store says so, and without that only a
   * connected user's own identity.
   * @default {undefined}
   */
  isAccount?: (userId: string) => Promise<boolean>;
  /**
   * Where accounts live: a connection opened signed in (`Peer.signedIn`)
   * is its account, guests cannot use a name an account reserved, and an
   * account's rooms, read positions and blocks are kept there. `null` turns
   * accounts off (every connection is a guest, or a JWT's subject).
   * @default {null}
   */
  accounts?: HubAccounts | null;
  /**
   * Files uploaded for rooms: a `say` may carry them, a deleted or pruned
   * message takes its files along. `null` turns attachments off.
   * @default {null}
   */
  attachments?: Attachments | null;
  /** Search over the rooms' retained history (`search`); `null` turns it off. @default {null} */
  search?: MessageSearch | null;
  /**
   * Counters shared by every instance, for the new rooms each address may
   * create; `null` for no limit.
   * @default {null}
   */
  quota?: Quota | null;
  /**
   * Rooms one address may create per hour (a room is created by its first
   * message); 0 for no limit.
   * @default {DEFAULTS.newRoomsPerAddressPerHour}
   */
  newRoomsPerAddressPerHour?: number;
  /**
   * The clock, in ms since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
}

/** What the hub knows of one connection. */
interface Connection {
  /** Who it is, once its first join resolved it. */
  identity?: JoinIdentity & { name: string };
  /** The first join's identification, while it is in flight. */
  identifying?: Promise<(JoinIdentity & { name: string }) | null>;
  /** The rooms it is in. */
  rooms: Map<string, Room>;
  /** The rooms whose join is in flight. */
  joining: Set<string>;
  /** Rooms left while their join was in flight. */
  cancelled: Set<string>;
  /** When it last sent `typing`, per room (`performance.now()`). */
  lastTyping: Map<string, number>;
  /** Closes the connection when its JWT expires. */
  expiry?: ReturnType<typeof setTimeout>;
  /** Whether a search of its runs now (one at a time). */
  searching?: boolean;
}

/**
 * Whom a frame goes to: a room's connections here (but `except`), a user's
 * connections, or a user's connections in one room.
 */
export type Target =
  | { room: Room; except?: Peer }
  | { user: string }
  | { user: string; room: Room };

/**
 * Rooms and their members on this instance.
 *
 * @example Usage
 * ```ts ignore
 * import { Hub } from "./hub.ts";
 * const hub = new Hub({ history, identify });
 * hub.connect(peer);
 * hub.receive(peer, { type: "join", room: "lobby", name: "ada" });
 * hub.receive(peer, { type: "join", room: "design" });
 * hub.receive(peer, { type: "say", room: "design", text: "hi", cid: "c1" });
 * hub.disconnect(peer);
 * ```
 */
export class Hub {
  #history: HistoryStore;
  #identify: Identify;
  #cluster: Cluster | null;
  #log: Logger;
  #welcomeHistory: number;
  #maxRoomsPerConnection: number;
  #maxWaitingSays: number;
  #maxWaitingSaysTotal: number;
  #maxRoomTasks: number;
  /** `say`s waiting in every room, or in a commit not yet done. */
  #waiting = 0;
  #typingIntervalMs: number;
  #claimTtlMs: number;
  #authenticated: boolean;
  #maxReplayBytes: number;
  #maxReplayEvents: number;
  #now: () => number;
  #quota: Quota | null;
  #moderation: ModerationStore | null;
  #isAccount: ((userId: string) => Promise<boolean>) | undefined;
  #accounts: AccountLink | null;
  #attachments: Attachments | null;
  #search: MessageSearch | null;
  #newRoomsPerHour: number;
  #rooms = new Map<string, Room>();
  #connections = new Map<Peer, Connection>();
  /** Each user's identified connections: the user index. */
  #users = new Map<string, Set<Peer>>();
  /** What each user blocks and has read (in memory; accounts keep theirs in the store). */
  #userState = new UserState();
  /** The names of users this instance has seen, for a conversation's `peer`. */
  #names = new Map<string, string>();
  /** Users who sent an oversized frame, until when they may join again. */
  #offenders = new Map<string, number>();
  #directory: RoomDirectory;
  /** Counters for `/metrics`. */
  readonly stats: Stats;

  /** Creates a hub; see {@linkcode HubOptions}. */
  constructor(options: HubOptions) {
    this.#history = options.history;
    this.#identify = options.identify;
    this.#cluster = options.cluster ?? null;
    this.#log = options.log ?? (() => {});
    this.stats = options.stats ?? new Stats();
    this.#welcomeHistory = options.welcomeHistory ?? DEFAULTS.welcomeHistory;
    this.#maxRoomsPerConnection = options.maxRoomsPerConnection ??
      DEFAULTS.maxRoomsPerConnection;
    this.#maxWaitingSays = options.maxWaitingSays ?? DEFAULTS.maxWaitingSays;
    this.#maxWaitingSaysTotal = options.maxWaitingSaysTotal ?? DEFAULTS.maxWaitingSaysTotal;
    this.#maxRoomTasks = options.maxRoomTasks ?? DEFAULTS.maxRoomTasks;
    this.#typingIntervalMs = options.typingIntervalMs ?? DEFAULTS.typingIntervalMs;
    this.#claimTtlMs = options.claimTtlMs ?? DEFAULTS.presenceTtlMs;
    this.#authenticated = options.authenticated ?? false;
    this.#maxReplayBytes = options.maxReplayBytes ?? DEFAULTS.maxReplayBytes;
    this.#maxReplayEvents = options.maxReplayEvents ?? DEFAULTS.maxReplayEvents;
    this.#now = options.now ?? Date.now;
    this.#quota = options.quota ?? null;
    this.#moderation = options.moderation ?? null;
    this.#accounts = options.accounts && !this.#authenticated
      ? new AccountLink(options.accounts, this.#userState, this.#log)
      : null;
    const accounts = this.#accounts;
    this.#attachments = options.attachments ?? null;
    this.#search = options.search ?? null;
    // A pruned message's files go with it.
    if (this.#attachments) {
      this.#history.onPrunedFiles?.((room, ids) => this.#deleteFiles(room, ids));
    }
    this.#isAccount = options.isAccount ?? (accounts ? (id) => accounts.isAccount(id) : undefined);
    this.#newRoomsPerHour = options.newRoomsPerAddressPerHour ??
      DEFAULTS.newRoomsPerAddressPerHour;
    const cluster = this.#cluster;
    this.#directory = new RoomDirectory(
      this.#history,
      {
        live: () => this.#rooms.values(),
        remoteRooms: () => cluster?.remoteRooms() ?? new Map(),
        remoteMembers: (room) => cluster?.remoteMembers(room) ?? [],
      },
      this.#log,
      this.#now,
    );
    this.#cluster?.start({
      rooms: () => this.#rooms.values(),
      room: (name) => this.#rooms.get(name),
      catchUp: (room, message) => this.#enqueue(room, null, () => this.#deliverUpTo(room, message)),
      keyOf: (member) => nameKey(member.name),
      showPresence: (room, change) => this.#showRemote(room, change),
      showTyping: (room, member) =>
        this.#deliver({ room }, { type: "typing", room: room.name, member }),
      control: (room, control) => this.#control(room, control),
    });
  }

  /** Connected peers. */
  get peers(): number {
    return this.#connections.size;
  }

  /** The rooms this instance holds, with their member counts. */
  get rooms(): { name: string; members: number; lastId: number }[] {
    return [...this.#rooms.values()].map((room) => ({
      name: room.name,
      members: room.members.length,
      lastId: room.lastId,
    }));
  }

  /** The connections of user `userId` on this instance (the user index). */
  connectionsOf(userId: string): number {
    return this.#users.get(userId)?.size ?? 0;
  }

  /**
   * The room directory, as `rooms` answers it (see `directory.ts`): rooms
   * with members here or on other instances, then rooms with stored
   * history, most recently active first, only those in `allowed` when given.
   */
  directory(allowed?: string[]): Promise<RoomInfo[]> {
    return this.#directory.list(allowed);
  }

  /** Starts tracking a peer; call {@linkcode Hub.disconnect} when it is gone. */
  connect(peer: Peer): void {
    this.#connections.set(peer, {
      rooms: new Map(),
      joining: new Set(),
      cancelled: new Set(),
      lastTyping: new Map(),
    });
  }

  /** The peer left: it leaves every room it is in, and the hub forgets it. */
  disconnect(peer: Peer): void {
    const connection = this.#connections.get(peer);
    if (!connection) return;
    clearTimeout(connection.expiry);
    this.#leaveAll(peer, connection, true);
    this.#connections.delete(peer);
    const userId = connection.identity?.userId;
    const peers = userId === undefined ? undefined : this.#users.get(userId);
    if (peers) {
      peers.delete(peer);
      if (peers.size === 0) this.#users.delete(userId!);
    }
  }

  /** Handles one valid client message. */
  receive(peer: Peer, message: ClientMessage): void {
    const connection = this.#connections.get(peer);
    if (!connection) return;
    switch (message.type) {
      case "join":
        return void this.#join(peer, connection, message).catch((error) => {
          connection.joining.delete(message.room);
          this.#log({ event: "error", id: peer.id, error: String(error) });
          this.refuse(
            peer,
            "internal",
            "Cannot join room: internal error",
            undefined,
            message.room,
          );
        });
      case "leave":
        return this.#leave(peer, connection, message.room);
      case "rename":
        return void this.#rename(peer, connection, message).catch((error) => {
          this.#log({ event: "error", id: peer.id, error: `rename: ${error}` });
          this.refuse(peer, "unavailable", "Cannot rename: the store is unavailable, retry soon");
        });
      case "dm":
        return void this.#direct(peer, connection, message).catch((error) => {
          this.#log({ event: "error", id: peer.id, error: `dm: ${error}` });
          this.refuse(peer, "internal", "Cannot open conversation: internal error");
        });
      case "block":
      case "unblock":
        return this.#block(peer, connection, message);
      case "read":
        return void this.#read(peer, connection, message);
      case "mod":
        return this.#mod(peer, connection, message);
      case "report":
        return void this.#report(peer, connection, message);
      case "reports":
        return void this.#listReports(peer, connection, message.room);
      case "say":
        return this.#say(peer, connection, message);
      case "typing":
        return this.#typing(peer, connection, message.room);
      case "history":
        return void this.#page(peer, connection, message);
      case "search":
        return void this.#find(peer, connection, message);
      case "edit":
      case "delete":
      case "react":
        return this.#change(peer, connection, message);
      case "rooms":
        return void this.#listRooms(peer, connection);
    }
  }

  /** Sends `peer` an error with a stable code; the connection stays usable. */
  refuse(peer: Peer, code: ErrorCode, message: string, cid?: string, room?: string): void {
    this.reject(peer, errorMessage(code, message, cid, room));
  }

  /** Sends `peer` an error message, and counts it. */
  reject(peer: Peer, error: ErrorMessage): void {
    this.stats.count(this.stats.errors, error.code);
    peer.send(encode(error));
  }

  /**
   * Closes `peer` for a policy violation, with a close code and reason, and
   * logs it. A user whose connection sent an oversized frame (1009) may not
   * join again for {@linkcode OFFENDER_COOLDOWN_MS}.
   */
  violate(peer: Peer, code: number, reason: string): void {
    this.#log({ event: "violation", id: peer.id, code, reason });
    this.stats.count(this.stats.closes, code);
    const connection = this.#connections.get(peer);
    if (connection) {
      if (code === 1009 && connection.identity) this.#coolDown(connection.identity.userId);
      this.#leaveAll(peer, connection, true);
    }
    peer.close(code, reason);
  }

  /**
   * An account's cookie session ended (signed out, or replaced by a new
   * sign-in in the same browser): its connections here and on every other
   * instance close with 4001 `signed out`.
   */
  signOut(sessionId: string): void {
    const control: Control = { action: "signout", session: sessionId };
    this.#control("", control);
    this.#cluster?.command("", control);
  }

  /** An account was renamed: its connections here and on every other instance take the name. */
  accountRenamed(accountId: string, name: string): void {
    const control: Control = { action: "renamed", user: accountId, name };
    this.#control("", control);
    this.#cluster?.command("", control);
  }

  /**
   * Deletes a room: its whole history in the store, and every member on
   * every instance leaves it (`left` with the reason "room deleted"). A
   * later join or message starts it afresh at id 1. Resolves `false` when
   * there was nothing to delete (no history, no member here).
   */
  async deleteRoom(name: string): Promise<boolean> {
    const held = (this.#rooms.get(name)?.connections ?? 0) > 0;
    const files = this.#attachments ? await this.#roomFiles(name) : [];
    const stored = await this.#history.deleteRoom(name);
    if (files.length > 0) this.#deleteFiles(name, files);
    const control: Control = { action: "evict", reason: "room deleted", reset: true };
    this.#control(name, control);
    this.#cluster?.command(name, control);
    this.#directory.invalidate();
    return stored || held;
  }

  /** The files of the messages a room retains (read before it is deleted). */
  async #roomFiles(name: string): Promise<string[]> {
    const ids: string[] = [];
    for (let since = 0;;) {
      const page = await this.#history.after(name, since, 500);
      for (const message of page.messages) ids.push(...fileIds(message));
      if (!page.more || page.messages.length === 0) return ids;
      since = page.messages.at(-1)!.id;
    }
  }

  /** Resolves once every room's queued work is done. */
  async settled(): Promise<void> {
    await Promise.all([...this.#rooms.values()].map((room) => room.settled()));
  }

  /** Stops the cluster link. Peers are closed by their transports. */
  async close(): Promise<void> {
    await this.#cluster?.close();
  }

  // --- join ----------------------------------------------------------------

  async #join(peer: Peer, connection: Connection, message: JoinMessage): Promise<void> {
    const name = message.room;
    if (connection.rooms.has(name) || connection.joining.has(name)) {
      return this.refuse(
        peer,
        "already_joined",
        "Cannot join room: already in it",
        undefined,
        name,
      );
    }
    if (connection.rooms.size + connection.joining.size >= this.#maxRoomsPerConnection) {
      return this.refuse(
        peer,
        "too_many_rooms",
        `Cannot join room: a connection may be in at most ${this.#maxRoomsPerConnection} rooms`,
        undefined,
        name,
      );
    }
    connection.joining.add(name);
    const identity = await this.#identityOf(peer, connection, message);
    if (!identity) return void connection.joining.delete(name);
    const wait = this.#cooldownLeft(identity.userId);
    if (wait > 0) {
      connection.joining.delete(name);
      return this.reject(peer, {
        ...errorMessage(
          "rate_limited",
          "Cannot join room: a frame of yours was too large, wait a minute",
          undefined,
          name,
        ),
        retryAfterMs: wait,
      });
    }
    const pair = dmUsers(name);
    if (pair && !pair.includes(identity.userId)) {
      connection.joining.delete(name);
      return this.refuse(
        peer,
        "room_forbidden",
        "Cannot join room: this conversation is someone else's",
        undefined,
        name,
      );
    }
    if (!pair && identity.rooms && !identity.rooms.includes(name)) {
      connection.joining.delete(name);
      return this.refuse(
        peer,
        "room_forbidden",
        "Cannot join room: your token does not allow it",
        undefined,
        name,
      );
    }
    const room = this.#roomOf(name);
    if (room.queued >= this.#maxRoomTasks) {
      connection.joining.delete(name);
      this.#dropIfIdle(room);
      return this.refuse(
        peer,
        "unavailable",
        "Cannot join room: it is busy, retry soon",
        undefined,
        name,
      );
    }
    this.#enqueue(room, peer, () => this.#enter(peer, connection, room, identity, message));
  }

  /**
   * The connection's identity: resolved by its first join (a later join
   * waits for it), the same for every later join. A later join may leave
   * `name` out; another name is refused. `null` when the join was refused.
   */
  async #identityOf(
    peer: Peer,
    connection: Connection,
    message: JoinMessage,
  ): Promise<(JoinIdentity & { name: string }) | null> {
    if (!connection.identity && !connection.identifying) {
      connection.identifying = this.#identifyFirst(peer, connection, message);
      try {
        return await connection.identifying;
      } finally {
        connection.identifying = undefined;
      }
    }
    const identity = connection.identity ?? await connection.identifying;
    if (!identity) {
      // The first join was refused: this one identifies afresh.
      return this.#identityOf(peer, connection, message);
    }
    // An account's name is its account's: a join's name is not asked for, and not read.
    if (identity.account && peer.signedIn) return identity;
    if (message.name !== undefined && message.name !== identity.name) {
      // Until it is in a room (say its first name was taken), a connection may pick another.
      if (connection.rooms.size === 0 && connection.joining.size === 1) {
        if (await this.#reserved(peer, identity, message.name, "join room", message.room)) {
          return null;
        }
        identity.name = message.name;
        return identity;
      }
      this.refuse(
        peer,
        "invalid_message",
        `Cannot join room: this connection's name is '${identity.name}'; send rename to change it`,
        undefined,
        message.room,
      );
      return null;
    }
    return identity;
  }

  /**
   * Whether `name` is reserved by an account other than the identity's,
   * after refusing the frame: `name_reserved`, or `unavailable` when the
   * account store cannot say. Never with accounts off, nor for an account.
   */
  async #reserved(
    peer: Peer,
    identity: JoinIdentity,
    name: string,
    doing: string,
    room?: string,
  ): Promise<boolean> {
    if (!this.#accounts || identity.account) return false;
    try {
      if (await this.#accounts.reservedBy(name, identity.userId) === null) return false;
      this.refuse(
        peer,
        "name_reserved",
        `Cannot ${doing}: the name belongs to an account; sign in to use it`,
        undefined,
        room,
      );
    } catch (error) {
      this.#log({ event: "error", id: peer.id, error: `accounts: name: ${error}` });
      this.refuse(
        peer,
        "unavailable",
        `Cannot ${doing}: accounts are unavailable, retry soon`,
        undefined,
        room,
      );
    }
    return true;
  }

  async #identifyFirst(
    peer: Peer,
    connection: Connection,
    message: JoinMessage,
  ): Promise<(JoinIdentity & { name: string }) | null> {
    let identity: JoinIdentity;
    try {
      identity = peer.signedIn && this.#accounts
        ? await this.#accounts.identify(peer.signedIn)
        : await this.#identify(message);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      this.refuse(peer, error.code, error.message, undefined, message.room);
      this.violate(peer, 1008, AUTH_CLOSE_REASONS[error.code]);
      return null;
    }
    const name = identity.name;
    if (name === undefined) {
      this.refuse(
        peer,
        "invalid_message",
        "Cannot join room: 'name' is required on a connection's first join",
        undefined,
        message.room,
      );
      return null;
    }
    if (await this.#reserved(peer, identity, name, "join room", message.room)) return null;
    if (!this.#connections.has(peer)) return null;
    const named = { ...identity, name };
    connection.identity = named;
    this.#remember(named.userId, name);
    let peers = this.#users.get(named.userId);
    if (!peers) this.#users.set(named.userId, peers = new Set());
    peers.add(peer);
    if (named.expiresAt !== undefined) this.#expireAt(peer, connection, named.expiresAt);
    return named;
  }

  /**
   * The join itself, in the room's queue: claim the name, catch the room up
   * with the store, and welcome the peer. A store that fails answers
   * `unavailable`, and the claim is given back.
   */
  async #enter(
    peer: Peer,
    connection: Connection,
    room: Room,
    identity: JoinIdentity & { name: string },
    message: JoinMessage,
  ): Promise<void> {
    let claimed = false;
    try {
      if (connection.cancelled.has(room.name)) {
        return this.#send(peer, { type: "left", room: room.name });
      }
      if (!peer.open || !this.#connections.has(peer)) return;
      const stale = await this.#claimName(room, identity, peer);
      if (stale === null) {
        return this.refuse(
          peer,
          "name_taken",
          "Cannot join room: name is taken",
          undefined,
          room.name,
        );
      }
      claimed = true;
      // Catch the room up with the store first: the welcome then holds
      // everything up to lastId, and every later message is broadcast.
      if (room.lastId < 0) {
        room.policy = await this.#moderation?.policy(room.name) ?? emptyPolicy();
        room.lastId = await this.#history.latest(room.name);
      } else await this.#deliverUpTo(room);
      const ban = inForce(room.policy.bans[identity.userId], this.#now());
      if (ban && roleOf(identity.userId, room.policy, identity.role) === "member") {
        this.#releaseUnlessHere(room, identity);
        return this.reject(peer, {
          ...errorMessage(
            "banned",
            "Cannot join room: you are banned from it",
            undefined,
            room.name,
          ),
          ...(ban.until === undefined ? {} : { until: ban.until }),
          ...(ban.reason === undefined ? {} : { reason: ban.reason }),
        });
      }
      const epoch = await this.#history.epoch?.();
      const replay = await this.#replay(room, message.since, epoch, message.epoch);
      if (!peer.open || !this.#connections.has(peer)) {
        return this.#releaseUnlessHere(room, identity);
      }
      if (connection.cancelled.has(room.name)) {
        // Left while joining: nobody saw it come.
        this.#releaseUnlessHere(room, identity);
        return this.#send(peer, { type: "left", room: room.name });
      }
      this.#admit(peer, connection, room, identity, { ...replay, epoch });
      // The same tab session's older connection goes now: its user stays in this room
      // through the new one, so nobody here sees it leave and come back.
      for (const old of stale) {
        const oldConnection = this.#connections.get(old);
        if (oldConnection) this.#leaveAll(old, oldConnection, false);
        old.close(4000, "replaced by a new connection");
      }
    } catch (error) {
      this.#log({ event: "error", room: room.name, id: peer.id, error: `join: ${error}` });
      if (claimed) this.#releaseUnlessHere(room, identity);
      this.refuse(
        peer,
        "unavailable",
        "Cannot join room: the store is unavailable, retry soon",
        undefined,
        room.name,
      );
    } finally {
      // Until here the join counts as in flight: another join of the room is already_joined.
      connection.joining.delete(room.name);
      connection.cancelled.delete(room.name);
    }
  }

  /** Gives a name claim back to the shared roster, unless the user is still in the room. */
  #releaseUnlessHere(room: Room, { userId, name }: { userId: string; name: string }): void {
    if (room.user(userId)) return;
    this.#cluster?.roster?.release(room.name, nameKey(name), userId).catch((error) =>
      this.#log({ event: "error", room: room.name, error: `roster: ${error}` })
    );
  }

  /**
   * Whether the name is free in the room for this user: here, on the other
   * instances, and in the shared roster (an atomic claim). Resolves with the
   * connections the join replaces (the same tab session's, in this room), or
   * `null` when the name is taken.
   */
  async #claimName(
    room: Room,
    identity: JoinIdentity & { name: string },
    peer: Peer,
  ): Promise<Peer[] | null> {
    const { userId, name, session } = identity;
    const stale = () => session === undefined ? [] : room.peersOf(userId).filter((p) => p !== peer);
    if (dmUsers(room.name)) return stale(); // two people, known by id: no names to claim
    if (!this.#nameFree(room, userId, name)) return null;
    const roster = this.#cluster?.roster;
    if (roster && !await roster.claim(room.name, nameKey(name), userId, this.#claimTtlMs)) {
      return null;
    }
    return stale();
  }

  /** Whether no other user holds a name with `name`'s key in the room, here or elsewhere. */
  #nameFree(room: Room, userId: string, name: string): boolean {
    const key = nameKey(name);
    const taken = (m: Member) => m.id !== userId && nameKey(m.name) === key;
    return !room.members.some(taken) &&
      !(this.#cluster?.remoteMembers(room.name).some(taken) ?? false);
  }

  /**
   * What a joiner gets: after `since` when it resumes, else the newest
   * messages. A resume is replayed only when the store is the one its ids
   * came from (its `epoch` matches) and it is short enough for one welcome;
   * otherwise the newest messages, with `recovered: false`. A resume further
   * back than `maxReplayEvents` never reads the room.
   */
  async #replay(
    room: Room,
    since: number | undefined,
    epoch: string | undefined,
    theirs: string | undefined,
  ): Promise<Partial<Replay>> {
    const recent = () => this.#history.recent(room.name, this.#welcomeHistory);
    if (since === undefined) return { messages: await recent() };
    // Without its epoch, a resume cannot be told apart from one into a wiped store.
    const sameStore = epoch === undefined || theirs === epoch;
    // The store keeps at most `limit` messages and as many changes: a longer gap is pruned.
    const reach = Math.min(this.#maxReplayEvents, 2 * this.#history.limit);
    if (!sameStore || since > room.lastId || room.lastId - since > reach) {
      return { messages: await recent(), complete: false };
    }
    const replay = await this.#history.after(room.name, since, this.#maxReplayEvents);
    // Too far back for one welcome: the newest messages instead, and the
    // page reads older ones with `history`. What one join holds is bounded.
    if (!replay.complete || replay.more || bytesOver(replay.messages, this.#maxReplayBytes)) {
      return { messages: await recent(), complete: false };
    }
    return replay;
  }

  /** Puts the peer in the room, welcomes it and tells the others. */
  #admit(
    peer: Peer,
    connection: Connection,
    room: Room,
    identity: JoinIdentity & { name: string },
    replay: Partial<Replay> & { epoch?: string },
  ): void {
    const member = { id: identity.userId, name: identity.name };
    connection.rooms.set(room.name, room);
    const arrived = room.add(peer, member);
    const history = (replay.messages ?? []).filter((m) => m.id <= room.lastId);
    const newest = history.at(-1);
    this.#send(peer, {
      type: "welcome",
      id: member.id,
      ...(identity.token ? { token: identity.token } : {}),
      room: room.name,
      name: member.name,
      members: this.#membersOf(room),
      history,
      ...(replay.complete === undefined ? {} : { recovered: replay.complete }),
      ...(replay.epoch === undefined ? {} : { epoch: replay.epoch }),
      readId: this.#userState.readId(member.id, room.name),
      ...this.#peerOf(room.name, member.id),
      ...(room.policy.topic ? { topic: room.policy.topic } : {}),
      ...this.#roleField(room, member.id, identity.role),
      lastId: Math.max(room.lastId, 0),
      ...(room.policy.slowMs > 0 ? { slowMs: room.policy.slowMs } : {}),
      ...this.#mutedField(room, member.id),
    }, {
      room: room.name,
      id: newest?.id ?? room.lastId,
      ...(replay.epoch === undefined ? {} : { epoch: replay.epoch }),
    });
    if (arrived) {
      if (!this.#presentElsewhere(room, member.id)) {
        this.#deliver({ room, except: peer }, {
          type: "presence",
          room: room.name,
          event: "join",
          member: { ...member, ...this.#roleField(room, member.id, identity.role) },
        });
      }
      this.#cluster?.announce(room);
    }
    if (identity.account && peer.signedIn) this.#accounts?.joined(member.id, room.name);
    this.#log({ event: "join", id: peer.id, user: member.id, room: room.name });
  }

  /** Closes the peer with 1008 when its token expires, however far away that is. */
  #expireAt(peer: Peer, connection: Connection, expiresAt: number): void {
    const wait = expiresAt - Date.now();
    connection.expiry = setTimeout(
      () =>
        wait > MAX_TIMEOUT_MS
          ? this.#expireAt(peer, connection, expiresAt)
          : this.violate(peer, 1008, "token expired"),
      Math.max(0, Math.min(wait, MAX_TIMEOUT_MS)),
    );
  }

  // --- leave and rename ------------------------------------------------------

  /** Answers `leave`: out of one room, the connection stays in the others. */
  #leave(peer: Peer, connection: Connection, name: string): void {
    const room = connection.rooms.get(name);
    if (room) {
      this.#exit(peer, connection, room, true);
      const identity = connection.identity;
      if (identity?.account && peer.signedIn) this.#accounts?.left(identity.userId, name);
      return this.#send(peer, { type: "left", room: name });
    }
    if (connection.joining.has(name)) return void connection.cancelled.add(name);
    this.refuse(peer, "not_joined", "Cannot leave room: not in it", undefined, name);
  }

  /**
   * Answers `rename`: the new name is claimed in every room the connection
   * is in (here, on other instances, in the shared roster), then each room
   * sees a presence `rename`. A name taken in any of them changes nothing.
   */
  async #rename(peer: Peer, connection: Connection, { name }: RenameMessage): Promise<void> {
    const identity = connection.identity;
    if (!identity) return this.refuse(peer, "not_joined", "Cannot rename: join a room first");
    const { userId, name: before } = identity;
    if (identity.account && peer.signedIn) {
      return this.refuse(
        peer,
        "forbidden",
        "Cannot rename: an account's name changes with POST /auth/rename",
      );
    }
    if (name === before) return this.#send(peer, { type: "renamed", name });
    if (await this.#reserved(peer, identity, name, "rename")) return;
    const rooms = [...connection.rooms.values()];
    const taken = () =>
      this.refuse(peer, "name_taken", "Cannot rename: the name is taken in one of your rooms");
    if (rooms.some((room) => !this.#nameFree(room, userId, name))) return taken();
    const roster = this.#cluster?.roster;
    const key = nameKey(name);
    if (roster && key !== nameKey(before)) {
      const claims = await Promise.all(
        rooms.map((room) => roster.claim(room.name, key, userId, this.#claimTtlMs)),
      );
      if (claims.includes(false)) {
        rooms.forEach((room, i) => claims[i] && roster.release(room.name, key, userId));
        return taken();
      }
    }
    identity.name = name;
    this.#showRename(userId, before, name, connection.rooms.values());
    this.#send(peer, { type: "renamed", name });
  }

  /**
   * A user's new name, shown in `rooms`: each sees a presence `rename` (once
   * per user), and the old name's claim in the shared roster is released.
   */
  #showRename(userId: string, before: string, name: string, rooms: Iterable<Room>): void {
    this.#remember(userId, name);
    const roster = this.#cluster?.roster;
    const moved = nameKey(name) !== nameKey(before);
    for (const room of rooms) {
      const previous = room.rename(userId, name);
      if (!previous) continue;
      if (roster && moved) roster.release(room.name, nameKey(before), userId).catch(() => {});
      this.#deliver({ room }, {
        type: "presence",
        room: room.name,
        event: "rename",
        member: { id: userId, name },
        previous: previous.name,
      });
      this.#cluster?.announce(room);
    }
  }

  /**
   * An account took a new name (`POST /auth/rename`, which reserved it):
   * each of its connections here takes it and is told (`renamed`), and its
   * rooms see a presence `rename`. The new name's claims in the shared
   * roster are taken without asking: the account's reservation wins.
   */
  #accountRenamed(accountId: string, name: string): void {
    const roster = this.#cluster?.roster;
    for (const peer of this.#users.get(accountId) ?? []) {
      const connection = this.#connections.get(peer);
      const identity = connection?.identity;
      if (!connection || !identity?.account || identity.name === name) continue;
      const before = identity.name;
      identity.name = name;
      for (const room of connection.rooms.values()) {
        roster?.claim(room.name, nameKey(name), accountId, this.#claimTtlMs).catch(() => {});
      }
      this.#showRename(accountId, before, name, connection.rooms.values());
      this.#send(peer, { type: "renamed", name });
    }
  }

  /**
   * The room a room-scoped frame is about, or `null` after refusing it:
   * `name`, which the connection must be in, or, when the frame names none,
   * the connection's one room.
   */
  #roomFor(
    peer: Peer,
    connection: Connection,
    name: string | undefined,
    doing: string,
    cid?: string,
  ): Room | null {
    if (name === undefined) {
      if (connection.rooms.size === 1) return connection.rooms.values().next().value!;
      if (connection.rooms.size === 0) {
        this.refuse(peer, "not_joined", `Cannot ${doing}: join a room first`, cid);
      } else {
        this.refuse(
          peer,
          "invalid_message",
          `Cannot ${doing}: 'room' is required on a connection in several rooms`,
          cid,
        );
      }
      return null;
    }
    const room = connection.rooms.get(name);
    if (!room) this.refuse(peer, "not_joined", `Cannot ${doing}: not in this room`, cid, name);
    return room ?? null;
  }

  // --- say -----------------------------------------------------------------

  #say(
    peer: Peer,
    connection: Connection,
    { room: name, text, cid, replyTo, attachments }: SayMessage,
  ): void {
    const room = this.#roomFor(peer, connection, name, "send message", cid);
    const member = room?.memberOf(peer);
    if (!room || !member) return;
    if (this.#blockedIn(room.name, member.id)) {
      const reason = "Cannot send message: you are blocked in this conversation";
      return this.refuse(peer, "blocked", reason, cid, room.name);
    }
    if (!this.#mayPost(peer, connection, room, member.id, "send message", cid, true)) return;
    if (this.#full(room)) {
      // The store cannot keep up: refuse rather than queue without bound.
      const reason = "Cannot send message: the server is busy, retry soon";
      return this.refuse(peer, "unavailable", reason, cid, room.name);
    }
    const draft: MessageDraft = {
      room: room.name,
      userId: member.id,
      name: member.name,
      text,
      cid,
    };
    if (replyTo !== undefined) draft.replyTo = replyTo;
    if (attachments) return void this.#sayWithFiles(peer, room, draft, attachments);
    this.#wait(room, { draft, sender: peer });
  }

  /**
   * A `say` carrying files: they are checked (the sender's uploads for this
   * room, not posted elsewhere) before it waits with the room's others, so
   * it may be stored after a later `say` of the sender without files.
   */
  async #sayWithFiles(peer: Peer, room: Room, draft: MessageDraft, ids: string[]): Promise<void> {
    const { cid } = draft;
    const attachments = this.#attachments;
    if (!attachments) {
      const reason = "Cannot send message: this server takes no files";
      return this.refuse(peer, "invalid_message", reason, cid, room.name);
    }
    try {
      const verdict = await checkFiles(
        attachments,
        this.#history,
        ids,
        draft.userId,
        room.name,
        cid,
      );
      if (!verdict.ok) return this.refuse(peer, verdict.code, verdict.message, cid, room.name);
      draft.attachments = verdict.files;
    } catch (error) {
      this.#log({ event: "error", room: room.name, error: `files: ${error}` });
      const reason = "Cannot send message: files are unavailable, retry soon";
      return this.refuse(peer, "unavailable", reason, cid, room.name);
    }
    if (!room.memberOf(peer)) return; // left meanwhile
    if (this.#full(room)) {
      const reason = "Cannot send message: the server is busy, retry soon";
      return this.refuse(peer, "unavailable", reason, cid, room.name);
    }
    this.#wait(room, { draft, sender: peer });
  }

  /** Whether `room`, or the server as a whole, holds as many waiting `say`s as it may. */
  #full(room: Room): boolean {
    return room.says.length >= this.#maxWaitingSays || this.#waiting >= this.#maxWaitingSaysTotal;
  }

  /** Queues a `say` to be stored with the others waiting in its room. */
  #wait(room: Room, say: WaitingSay): void {
    this.#waiting++;
    room.says.push(say);
    if (room.says.length === 1) this.#enqueue(room, null, () => this.#store(room));
  }

  /**
   * Posts a message from the server side (an API call, a bot) to `room`,
   * as a `say` of a member would be: the same per-room order, store and
   * dedupe by sender and `cid`, marked `bot: true`. Resolves with the
   * stored message (the first one, for a repeated `cid`); rejects with a
   * {@linkcode NameTakenError} when a member holds the name in the room
   * (here or on another instance) or an account reserved it, else when the
   * store fails or is too busy.
   */
  async post(roomName: string, draft: Omit<MessageDraft, "room" | "bot">): Promise<ChatMessage> {
    if (this.#accounts && await this.#accounts.reservedBy(draft.name, draft.userId) !== null) {
      throw new NameTakenError(draft.name, true);
    }
    const room = this.#roomOf(roomName);
    if (!this.#nameFree(room, draft.userId, draft.name)) {
      this.#dropIfIdle(room);
      return Promise.reject(new NameTakenError(draft.name));
    }
    if (this.#full(room)) {
      this.#dropIfIdle(room);
      return Promise.reject(new Error("Cannot send message: the server is busy, retry soon"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<ChatMessage>();
    const sender = (result: ChatMessage | Error) =>
      result instanceof Error ? reject(result) : resolve(result);
    this.#wait(room, { draft: { ...draft, room: roomName, bot: true }, sender });
    return promise;
  }

  /**
   * Stores the `say`s waiting in the room in one go (one commit when busy),
   * then acknowledges each to its sender and sends it to the room.
   */
  async #store(room: Room): Promise<void> {
    const batch = room.says.splice(0, MAX_BATCH);
    if (room.says.length > 0) this.#enqueue(room, null, () => this.#store(room));
    try {
      await this.#commit(room, batch);
    } finally {
      this.#waiting -= batch.length;
    }
  }

  /**
   * Stores a batch in one append, then acknowledges each to its sender and
   * sends each new one to the room and to the other instances. Runs inside
   * the room's queue.
   */
  async #commit(room: Room, batch: WaitingSay[]): Promise<void> {
    if (room.lastId === 0) batch = await this.#mayCreate(room, batch);
    if (batch.length === 0) return;
    let results;
    try {
      const doomed = await this.#filesDeletedBy(room, batch);
      results = await this.#history.appendMany(room.name, batch.map((say) => say.draft));
      for (const [i, ids] of doomed) if (!results[i].duplicate) this.#deleteFiles(room, ids);
    } catch (error) {
      const full = error instanceof RoomLimitError;
      if (!full) this.#log({ event: "error", room: room.name, error: `store: ${error}` });
      const [code, reason] = full
        ? [
          "room_limit",
          "Cannot send message: the server holds its most rooms, use an existing one",
        ] as const
        : ["unavailable", "Cannot send message: history is unavailable, retry soon"] as const;
      for (const { sender, draft } of batch) {
        if (typeof sender === "function") sender(full ? error : new Error(reason));
        else this.refuse(sender, code, changeReason(draft, reason), draft.cid, room.name);
      }
      return;
    }
    for (const [i, { message, duplicate }] of results.entries()) {
      const { sender } = batch[i];
      if (typeof sender === "function") sender(message);
      else this.#send(sender, { type: "ack", room: room.name, cid: message.cid, id: message.id });
      if (duplicate) continue;
      if (message.id === 1) {
        this.#directory.invalidate(); // a new room: list it at once
        if (typeof sender !== "function") await this.#claimOwnership(room, sender);
      }
      this.stats.stored++;
      if (message.attachments) this.#attachFiles(room, message);
      await this.#deliverUpTo(room, message);
      this.#cluster?.forward({ kind: "message", room: room.name, message });
      if (message.kind === undefined && dmUsers(room.name)) this.#pullIn(room.name, true);
    }
  }

  /**
   * The files of the messages a batch deletes (the author's delete, or a
   * moderator's), by the batch's index: read before the delete is stored,
   * as the deleted message no longer shows them.
   */
  async #filesDeletedBy(room: Room, batch: WaitingSay[]): Promise<Map<number, string[]>> {
    const doomed = new Map<number, string[]>();
    if (!this.#attachments) return doomed;
    for (const [i, { draft }] of batch.entries()) {
      const deletes = draft.kind === "delete" ||
        (draft.kind === "moderation" && draft.action === "delete");
      if (!deletes || draft.ref === undefined) continue;
      const ids = fileIds(await this.#history.get(room.name, draft.ref));
      if (ids.length > 0) doomed.set(i, ids);
    }
    return doomed;
  }

  /** Ties a stored message's files to it (in the background; a failure is logged). */
  #attachFiles(room: Room, message: ChatMessage): void {
    this.#attachments?.attach(fileIds(message), message.userId, room.name, message.id).catch(
      (error) => this.#log({ event: "error", room: room.name, error: `files: attach: ${error}` }),
    );
  }

  /** Deletes files whose message went (in the background; a failure is logged). */
  #deleteFiles(room: Room | string, ids: string[]): void {
    const name = typeof room === "string" ? room : room.name;
    this.#attachments?.deleteFiles(ids).catch((error) =>
      this.#log({ event: "error", room: name, error: `files: delete: ${error}` })
    );
  }

  /**
   * The first message of a room creates it in the store: its sender's
   * address takes one of its new rooms for the hour (counted in the store,
   * so every instance shares the count). Senders whose address has none
   * left get `rate_limited` with `retryAfterMs`; the batch goes on from the
   * first sender allowed (the room then exists for the others). Server-side
   * posts and peers without an address are not counted.
   */
  async #mayCreate(room: Room, batch: WaitingSay[]): Promise<WaitingSay[]> {
    const quota = this.#quota;
    if (!quota || this.#newRoomsPerHour === 0) return batch;
    for (let i = 0; i < batch.length; i++) {
      const { sender, draft } = batch[i];
      if (typeof sender === "function" || sender.address === undefined) return batch.slice(i);
      let wait: number;
      try {
        wait = await quota.take(`new-rooms:${sender.address}`, this.#newRoomsPerHour, HOUR_MS);
      } catch (error) {
        this.#log({ event: "error", room: room.name, error: `quota: ${error}` });
        return batch.slice(i); // the store will answer for itself
      }
      if (wait === 0) return batch.slice(i);
      this.reject(sender, {
        ...errorMessage(
          "rate_limited",
          `Cannot create room: your address created ${this.#newRoomsPerHour} rooms this hour`,
          draft.cid,
          room.name,
        ),
        retryAfterMs: wait,
      });
    }
    return [];
  }

  /**
   * Sends stored messages to the room's peers in id order, once each. When
   * `message` is the next id it goes out at once; after a gap (another
   * instance's message that this one has not seen) the store fills it first.
   * Runs inside the room's queue.
   */
  async #deliverUpTo(room: Room, message?: ChatMessage): Promise<void> {
    if (room.lastId < 0 || (message && message.id <= room.lastId)) return;
    if (message && message.id === room.lastId + 1) return this.#broadcastMessage(room, message);
    const { messages } = await this.#history.after(room.name, room.lastId);
    for (const missing of messages) {
      if (missing.id > room.lastId) this.#broadcastMessage(room, missing);
    }
  }

  /** Sends the room's next message to its peers. */
  #broadcastMessage(room: Room, message: ChatMessage): void {
    room.lastId = message.id;
    room.lastTs = Math.max(room.lastTs, message.ts);
    this.#deliver({ room }, message, { room: room.name, id: message.id });
    if (message.kind === "moderation") this.#applyMod(room, message);
  }

  // --- history, changes and rooms --------------------------------------------

  /**
   * Answers `history`: a page of older messages from the store, or message
   * `around` with its neighbours (half of `limit` on each side).
   */
  async #page(peer: Peer, connection: Connection, request: HistoryRequest): Promise<void> {
    const room = this.#roomFor(peer, connection, request.room, "read history");
    if (!room) return;
    try {
      const { around, limit } = request;
      if (around !== undefined) {
        const half = Math.max(1, Math.floor(limit / 2));
        const upTo = Math.min(around, Math.max(room.lastId, 0));
        const [older, newer] = await Promise.all([
          this.#history.before(room.name, upTo + 1, half + 1),
          this.#history.after(room.name, upTo, 3 * half),
        ]);
        const later = newer.messages.filter((m) => m.kind === undefined && m.id <= room.lastId)
          .slice(0, half);
        const last = later.at(-1)?.id ?? upTo;
        return this.#send(peer, {
          type: "history",
          room: room.name,
          messages: [...older.messages, ...later],
          hasMore: older.hasMore,
          around,
          hasNewer: last < room.lastId && (newer.more === true || later.length === half),
        });
      }
      const page = await this.#history.before(room.name, request.before!, limit);
      const messages = page.messages.filter((m) => m.id <= room.lastId);
      this.#send(peer, { type: "history", room: room.name, messages, hasMore: page.hasMore });
    } catch (error) {
      this.#log({ event: "error", room: room.name, error: `history: ${error}` });
      this.refuse(
        peer,
        "unavailable",
        "Cannot read history: the store is unavailable, retry soon",
        undefined,
        room.name,
      );
    }
  }

  /**
   * Answers `search`: the rooms the connection is in (or the one it names),
   * newest first, one search at a time per connection.
   */
  async #find(peer: Peer, connection: Connection, request: SearchRequest): Promise<void> {
    const { q, cid, before } = request;
    const search = this.#search;
    if (!search) return this.refuse(peer, "invalid_message", "Cannot search: search is off", cid);
    let rooms: string[];
    if (request.room !== undefined) {
      const room = this.#roomFor(peer, connection, request.room, "search", cid);
      if (!room) return;
      rooms = [room.name];
    } else {
      rooms = [...connection.rooms.keys()];
      if (rooms.length === 0) {
        return this.refuse(peer, "not_joined", "Cannot search: join a room first", cid);
      }
    }
    if (connection.searching) {
      return this.reject(peer, {
        ...errorMessage("rate_limited", "Cannot search: a search of yours is running", cid),
        retryAfterMs: 500,
      });
    }
    connection.searching = true;
    try {
      const found = await search.search({ q, rooms, before, limit: SEARCH_PAGE });
      if (!found.ok) return this.refuse(peer, found.code, found.message, cid);
      this.#send(peer, {
        type: "search",
        ...(cid === undefined ? {} : { cid }),
        q,
        results: found.messages,
        hasMore: found.hasMore,
        ...(found.next ? { next: found.next } : {}),
      });
    } catch (error) {
      this.#log({ event: "error", id: peer.id, error: `search: ${error}` });
      this.refuse(peer, "unavailable", "Cannot search: the store is unavailable, retry soon", cid);
    } finally {
      connection.searching = false;
    }
  }

  /**
   * An edit, delete or reaction: decided inside the room's queue against
   * the message it changes (one read of its current state), then stored
   * and sent like any message, as an event of its own. A retry of a change
   * already stored is acknowledged again. While the store is down it gets
   * `unavailable` with its `cid`, to be sent again.
   */
  #change(peer: Peer, connection: Connection, request: ChangeRequest): void {
    const doing = CHANGE_DOING[request.type];
    const room = this.#roomFor(peer, connection, request.room, doing, request.cid);
    const member = room?.memberOf(peer);
    if (!room || !member) return;
    if (
      request.type !== "delete" &&
      !this.#mayPost(peer, connection, room, member.id, doing, request.cid, false)
    ) return;
    const unavailable = (why: string) =>
      this.refuse(peer, "unavailable", `Cannot ${doing}: ${why}`, request.cid, room.name);
    if (room.queued >= this.#maxRoomTasks) return unavailable("the room is busy, retry soon");
    this.#enqueue(room, peer, async () => {
      let draft: MessageDraft;
      try {
        const prior = await this.#history.stored(room.name, member.id, request.cid);
        if (prior !== null) {
          return this.#send(peer, { type: "ack", room: room.name, cid: request.cid, id: prior });
        }
        const original = await this.#history.get(room.name, request.ref);
        const verdict = decideChange(request, member.id, original);
        if (!verdict.ok) {
          return this.refuse(peer, verdict.code, verdict.message, request.cid, room.name);
        }
        draft = {
          room: room.name,
          userId: member.id,
          name: member.name,
          cid: request.cid,
          ...verdict.event,
        };
      } catch (error) {
        this.#log({ event: "error", room: room.name, error: `change: ${error}` });
        return unavailable("history is unavailable, retry soon");
      }
      await this.#commit(room, [{ draft, sender: peer }]);
    });
  }

  /**
   * Answers `rooms`: the room directory, within the token's `rooms` claim.
   * Rooms whose name starts with `_` are never listed.
   */
  async #listRooms(peer: Peer, connection: Connection): Promise<void> {
    if (this.#authenticated && !connection.identity) {
      return this.refuse(
        peer,
        "not_joined",
        "Cannot list rooms: join a room with your token first",
      );
    }
    this.#send(peer, { type: "rooms", rooms: await this.directory(connection.identity?.rooms) });
  }

  // --- typing and leaving --------------------------------------------------

  #typing(peer: Peer, connection: Connection, name: string | undefined): void {
    const room = this.#roomFor(peer, connection, name, "send typing");
    const member = room?.memberOf(peer);
    if (!room || !member) return;
    const now = performance.now();
    if (now - (connection.lastTyping.get(room.name) ?? -Infinity) < this.#typingIntervalMs) return;
    connection.lastTyping.set(room.name, now);
    this.#deliver({ room, except: peer }, { type: "typing", room: room.name, member });
    this.#cluster?.forward({ kind: "typing", room: room.name, member });
  }

  /** The connection leaves every room; name claims are released unless `release` is false. */
  #leaveAll(peer: Peer, connection: Connection, release: boolean): void {
    for (const room of [...connection.rooms.values()]) this.#exit(peer, connection, room, release);
  }

  /**
   * The connection leaves one room. When it was its user's last connection
   * there, the others see the presence `leave`, and the name claim is
   * released unless `release` is false.
   */
  #exit(peer: Peer, connection: Connection, room: Room, release: boolean): void {
    connection.rooms.delete(room.name);
    connection.lastTyping.delete(room.name);
    const gone = room.remove(peer);
    if (gone) {
      if (release) this.#releaseUnlessHere(room, { userId: gone.id, name: gone.name });
      if (!this.#presentElsewhere(room, gone.id)) {
        this.#deliver({ room }, {
          type: "presence",
          room: room.name,
          event: "leave",
          member: gone,
        });
      }
      this.#cluster?.announce(room);
    }
    this.#dropIfIdle(room);
  }

  /**
   * Carries out a command on this instance's connections in room `name`,
   * whether it started here or on another instance: the evicted connections
   * leave the room (the others see them go) and are told why.
   */
  #control(name: string, control: Control): void {
    if (control.action === "pull") return this.#pullIn(name, false);
    if (control.action === "signout") {
      for (const peer of [...this.#connections.keys()]) {
        if (peer.signedIn?.sessionId === control.session) peer.close(4001, "signed out");
      }
      return;
    }
    if (control.action === "renamed") return this.#accountRenamed(control.user, control.name);
    if (control.action === "read") {
      if (!this.#users.has(control.user)) return; // its state here is loaded when it connects
      if (this.#userState.read(control.user, name, control.id)) this.#tellRead(control.user, name);
      return;
    }
    if (control.action === "report") {
      const room = this.#rooms.get(name);
      if (!room) return;
      for (const peer of room.peers) {
        const member = room.memberOf(peer);
        const role = member &&
          roleOf(member.id, room.policy, this.#connections.get(peer)?.identity?.role);
        if (role && role !== "member") {
          this.#send(peer, { type: "report", room: name, report: control.report });
        }
      }
      return;
    }
    const room = this.#rooms.get(name);
    if (!room) return;
    const user = control.user;
    const target: Target = user === undefined ? { room } : { user, room };
    for (const peer of [...this.#targets(target)]) {
      const connection = this.#connections.get(peer);
      if (!connection) continue;
      this.#exit(peer, connection, room, true);
      this.#send(peer, { type: "left", room: name, reason: control.reason });
    }
    if (control.reset) room.lastId = -1;
  }

  /** Shows the other instances' joins and leaves to this instance's peers. */
  #showRemote(room: Room, { joined, left }: PresenceChange): void {
    if (room.connections === 0) return;
    const here = new Set(room.members.map((m) => m.id));
    const show = (event: "join" | "leave", member: Member) => {
      if (!here.has(member.id)) {
        this.#deliver({ room }, { type: "presence", room: room.name, event, member });
      }
    };
    for (const member of joined) show("join", member);
    for (const member of left) show("leave", member);
  }

  // --- moderation ------------------------------------------------------------

  /**
   * Whether the member may post in the room now (not muted, not too soon in
   * slow mode); refuses with `muted` or `slow_mode` when not. `say`:
   * remember the time, for slow mode.
   */
  #mayPost(
    peer: Peer,
    connection: Connection,
    room: Room,
    userId: string,
    doing: string,
    cid: string,
    say: boolean,
  ): boolean {
    const now = this.#now();
    const role = roleOf(userId, room.policy, connection.identity?.role);
    const verdict = mayPost(
      userId,
      role,
      room.policy,
      say ? room.lastSay.get(userId) : undefined,
      now,
    );
    if (verdict.ok) {
      if (say && room.policy.slowMs > 0) room.lastSay.set(userId, now);
      return true;
    }
    const mute = room.policy.mutes[userId];
    const message = verdict.code === "muted"
      ? `Cannot ${doing}: you are muted in this room`
      : `Cannot ${doing}: slow mode, wait a moment`;
    this.reject(peer, {
      ...errorMessage(verdict.code, message, cid, room.name),
      ...(verdict.retryAfterMs === undefined ? {} : { retryAfterMs: verdict.retryAfterMs }),
      ...(verdict.until === undefined ? {} : { until: verdict.until }),
      ...(verdict.code === "muted" && mute?.reason ? { reason: mute.reason } : {}),
    });
    return false;
  }

  /** The account that creates a room (its first message) owns it. */
  async #claimOwnership(room: Room, creator: Peer): Promise<void> {
    const identity = this.#connections.get(creator)?.identity;
    if (!identity?.account || !this.#moderation) return;
    try {
      room.policy = await this.#moderation.update(
        room.name,
        (p) => p.owner ? p : { ...p, owner: identity.userId },
      );
    } catch (error) {
      this.#log({ event: "error", room: room.name, error: `owner: ${error}` });
    }
  }

  /** Answers `mod` from a member: decided, stored and applied as {@linkcode Hub.moderate} does. */
  #mod(peer: Peer, connection: Connection, message: ModMessage): void {
    const room = this.#roomFor(peer, connection, message.room, "moderate", message.cid);
    const member = room?.memberOf(peer);
    if (!room || !member) return;
    const actor = { member, operator: connection.identity?.role };
    void this.#act(room, message, actor, message.cid).then((result) => {
      if ("id" in result) {
        this.#send(peer, { type: "ack", room: room.name, cid: message.cid, id: result.id });
      } else this.refuse(peer, result.code, result.message, message.cid, room.name);
    });
  }

  /**
   * A moderation act by the server's operator (the server API): decided,
   * stored in the moderation store and as an event in the room's sequence,
   * and applied on every instance. Resolves with the event, or why not.
   */
  async moderate(
    roomName: string,
    request: ModRequest,
    cid: string = crypto.randomUUID(),
  ): Promise<ChatMessage | { code: ErrorCode; message: string }> {
    const room = this.#roomOf(roomName);
    const operator = { member: { id: "operator", name: "operator" }, operator: "admin" as const };
    try {
      const result = await this.#act(room, request, operator, cid);
      return "id" in result ? result : result;
    } finally {
      this.#dropIfIdle(room);
    }
  }

  /**
   * Decides an act against the room's policy in the store, stores the new
   * policy, then the event (once per `cid`), which every instance applies
   * as it delivers it. Runs in the room's queue, so acts in a room are
   * decided one after another.
   */
  #act(
    room: Room,
    request: ModRequest,
    actor: { member: Member; operator?: "admin" | "moderator" },
    cid: string,
  ): Promise<ChatMessage | { code: ErrorCode; message: string }> {
    const { promise, resolve } = Promise.withResolvers<
      ChatMessage | { code: ErrorCode; message: string }
    >();
    const moderation = this.#moderation;
    if (!moderation) {
      resolve({ code: "forbidden", message: "Cannot moderate: moderation is off on this server" });
      return promise;
    }
    if (room.queued >= this.#maxRoomTasks) {
      resolve({ code: "unavailable", message: "Cannot moderate: the room is busy, retry soon" });
      return promise;
    }
    this.#enqueue(room, null, async () => {
      try {
        const prior = await this.#history.stored(room.name, actor.member.id, cid);
        if (prior !== null) {
          const stored = await this.#history.after(room.name, prior - 1, 1);
          return resolve(
            stored.messages[0] ?? { code: "not_found", message: "Cannot moderate: gone" },
          );
        }
        const policy = await moderation.policy(room.name);
        const role = roleOf(actor.member.id, policy, actor.operator);
        const target = await this.#targetOf(room, request.userId, policy);
        const verdict = decideAct(request, role, target, this.#now());
        if (!verdict.ok) return resolve(verdict);
        if (request.action === "delete" && !await this.#history.get(room.name, request.ref!)) {
          return resolve({
            code: "not_found",
            message: `Cannot delete: no message ${request.ref}`,
          });
        }
        const draft: MessageDraft = {
          room: room.name,
          userId: actor.member.id,
          name: actor.member.name,
          cid,
          kind: "moderation",
          by: actor.member,
          ...verdict.event,
        };
        const event = { type: "message", id: 0, ts: this.#now(), ...draft } as ChatMessage;
        room.policy = await moderation.update(room.name, (p) => applyAct(p, event));
        const [stored] = await this.#history.appendMany(room.name, [draft]);
        if (!stored.duplicate) {
          if (room.lastId >= 0) await this.#deliverUpTo(room, stored.message);
          this.#cluster?.forward({ kind: "message", room: room.name, message: stored.message });
          await moderation.log(room.name, stored.message);
          if (
            request.ref !== undefined &&
            (request.action === "delete" || request.action === "dismiss")
          ) {
            await moderation.close(room.name, { ref: request.ref });
          }
        }
        resolve(stored.message);
      } catch (error) {
        this.#log({ event: "error", room: room.name, error: `mod: ${error}` });
        resolve({
          code: "unavailable",
          message: "Cannot moderate: the store is unavailable, retry soon",
        });
      }
    });
    return promise;
  }

  /** The user an act is on, with their role and whether they are an account. */
  async #targetOf(
    room: Room,
    userId: string | undefined,
    policy: RoomPolicy,
  ): Promise<{ member: Member; role: Role; account: boolean } | null> {
    if (userId === undefined) return null;
    const connection = [...this.#users.get(userId) ?? []]
      .map((peer) => this.#connections.get(peer)?.identity).find(Boolean);
    const name = room.user(userId)?.name ?? connection?.name ?? this.#names.get(userId) ?? userId;
    const account = connection?.account ?? (await this.#isAccount?.(userId)) ?? false;
    return {
      member: { id: userId, name },
      role: roleOf(userId, policy, connection?.role),
      account,
    };
  }

  /**
   * Applies a moderation event delivered to the room (here, or found from
   * another instance): the policy follows it, a kicked or banned user's
   * connections leave the room, a muted user is told.
   */
  #applyMod(room: Room, event: ChatMessage): void {
    room.policy = applyAct(room.policy, event);
    const target = event.target?.id;
    if (!target) return;
    if (event.action === "kick" || event.action === "ban") {
      const reason = event.action === "kick" ? "kicked" : "banned";
      this.#control(room.name, { action: "evict", user: target, reason });
    } else if (event.action === "mute") {
      this.#deliver({ user: target, room }, {
        type: "muted",
        room: room.name,
        ...(event.until === undefined ? {} : { until: event.until }),
        ...(event.reason === undefined ? {} : { reason: event.reason }),
      });
    }
  }

  /** Answers `report`: stored, and told at once to the room's moderators online. */
  async #report(peer: Peer, connection: Connection, message: ReportMessage): Promise<void> {
    const room = this.#roomFor(peer, connection, message.room, "report message");
    const member = room?.memberOf(peer);
    if (!room || !member) return;
    const moderation = this.#moderation;
    if (!moderation) {
      return this.refuse(peer, "forbidden", "Cannot report message: moderation is off");
    }
    const report = {
      id: crypto.randomUUID(),
      ref: message.ref,
      reason: message.reason,
      by: member,
      at: this.#now(),
    };
    try {
      if (!await moderation.report(room.name, report)) {
        return this.refuse(
          peer,
          "unavailable",
          "Cannot report message: too many open reports",
          undefined,
          room.name,
        );
      }
    } catch (error) {
      this.#log({ event: "error", room: room.name, error: `report: ${error}` });
      return this.refuse(
        peer,
        "unavailable",
        "Cannot report message: the store is unavailable",
        undefined,
        room.name,
      );
    }
    this.#control(room.name, { action: "report", report });
    this.#cluster?.command(room.name, { action: "report", report });
    this.#send(peer, { type: "reported", room: room.name, ref: message.ref });
  }

  /** Answers `reports`: the room's open reports, for its moderators. */
  async #listReports(peer: Peer, connection: Connection, name: string | undefined): Promise<void> {
    const room = this.#roomFor(peer, connection, name, "list reports");
    const member = room?.memberOf(peer);
    if (!room || !member) return;
    if (roleOf(member.id, room.policy, connection.identity?.role) === "member") {
      return this.refuse(
        peer,
        "forbidden",
        "Cannot list reports: only moderators may",
        undefined,
        room.name,
      );
    }
    try {
      const reports = await this.#moderation?.reports(room.name) ?? [];
      this.#send(peer, { type: "reports", room: room.name, reports });
    } catch {
      this.refuse(
        peer,
        "unavailable",
        "Cannot list reports: the store is unavailable",
        undefined,
        room.name,
      );
    }
  }

  /** The `role` field of a welcome: only for a member who has one. */
  /** A member's own mute in a room, for its welcome, while it holds. */
  #mutedField(room: Room, userId: string): { muted?: { until?: number; reason?: string } } {
    const mute = inForce(room.policy.mutes[userId], this.#now());
    if (!mute) return {};
    return {
      muted: {
        ...(mute.until === undefined ? {} : { until: mute.until }),
        ...(mute.reason === undefined ? {} : { reason: mute.reason }),
      },
    };
  }

  #roleField(
    room: Room,
    userId: string,
    operator?: "admin" | "moderator",
  ): { role?: Exclude<Role, "member"> } {
    const role = roleOf(userId, room.policy, operator);
    return role === "member" ? {} : { role };
  }

  // --- direct conversations, blocks, read positions ----------------------------

  /**
   * Answers `dm {name}`: the conversation with the user called `name` (an
   * account, or a guest online here or on another instance), joined like
   * any room. Refused when it is you, nobody of that name is known, or they
   * block you.
   */
  async #direct(peer: Peer, connection: Connection, request: DirectMessageRequest): Promise<void> {
    const me = connection.identity;
    if (!me) return this.refuse(peer, "not_joined", "Cannot open conversation: join a room first");
    const { name = "", userId } = request;
    let found = userId === undefined ? this.#findUser(name) : this.#findUser(undefined, userId);
    let account = found === undefined ? false : this.#isConnectedAccount(found.id);
    if (!found && this.#accounts) {
      try {
        found = (userId === undefined
          ? await this.#accounts.find(name)
          : await this.#accounts.byId(userId)) ?? undefined;
        account = found !== undefined;
      } catch (error) {
        this.#log({ event: "error", id: peer.id, error: `accounts: find: ${error}` });
      }
    }
    if (found) this.#remember(found.id, found.name);
    const other = found?.id;
    if (other === me.userId) {
      return this.refuse(peer, "invalid_message", "Cannot open conversation: that is you");
    }
    if (other === undefined) {
      return this.refuse(
        peer,
        "not_found",
        `Cannot open conversation: ${
          userId === undefined ? `nobody called '${name}'` : `no user '${userId}'`
        } is online${this.#accounts ? " or has an account" : ""}`,
      );
    }
    const room = dmRoom(me.userId, other);
    // An account's blocks are in the store, whether or not it is online here.
    if (account) await this.#accounts?.loadBlocks(other).catch(() => {});
    if (this.#userState.blocks(other, me.userId)) {
      return this.refuse(
        peer,
        "blocked",
        "Cannot open conversation: they block you",
        undefined,
        room,
      );
    }
    await this.#join(peer, connection, { type: "join", room });
  }

  /** Whether a user connected here is an account. */
  #isConnectedAccount(userId: string): boolean {
    for (const peer of this.#users.get(userId) ?? []) {
      if (this.#connections.get(peer)?.identity?.account) return true;
    }
    return false;
  }

  /** The user called `name` (by its key), or with id `userId`, here or on another instance. */
  #findUser(name: string | undefined, userId?: string): Member | undefined {
    const key = name === undefined ? undefined : nameKey(name);
    const matches = (id: string, named: string) =>
      userId === undefined ? nameKey(named) === key : id === userId;
    for (const connection of this.#connections.values()) {
      const identity = connection.identity;
      if (identity && matches(identity.userId, identity.name)) {
        return { id: identity.userId, name: identity.name };
      }
    }
    return this.#cluster?.findMember((m) => matches(m.id, m.name));
  }

  /**
   * A direct conversation got a message: each of its two people's
   * connections here that is not in it joins it by itself (its welcome
   * brings the message). `tellOthers`: and so do the other instances'.
   */
  #pullIn(name: string, tellOthers: boolean): void {
    const pair = dmUsers(name);
    if (!pair) return;
    for (const userId of pair) {
      for (const peer of this.#users.get(userId) ?? []) {
        const connection = this.#connections.get(peer);
        if (!connection || connection.rooms.has(name) || connection.joining.has(name)) continue;
        const other = pair[0] === userId ? pair[1] : pair[0];
        if (this.#userState.blocks(userId, other)) continue;
        void this.#join(peer, connection, { type: "join", room: name }).catch((error) =>
          this.#log({ event: "error", id: peer.id, error: `dm: ${error}` })
        );
      }
    }
    if (tellOthers) this.#cluster?.command(name, { action: "pull" });
  }

  /** Whether room `name` is a conversation whose other person blocks `userId`. */
  #blockedIn(name: string, userId: string): boolean {
    const pair = dmUsers(name);
    if (!pair) return false;
    const other = pair[0] === userId ? pair[1] : pair[0];
    return this.#userState.blocks(other, userId);
  }

  /** Answers `block` and `unblock` with the user's list of blocked users. */
  #block(peer: Peer, connection: Connection, { type, userId }: BlockMessage): void {
    const me = connection.identity;
    if (!me) return this.refuse(peer, "not_joined", `Cannot ${type} user: join a room first`);
    if (userId === me.userId) {
      return this.refuse(peer, "invalid_message", `Cannot ${type} user: that is you`);
    }
    if (type === "unblock") this.#userState.unblock(me.userId, userId);
    else if (!this.#userState.block(me.userId, userId)) {
      return this.refuse(peer, "invalid_message", "Cannot block user: you block too many already");
    }
    if (me.account && peer.signedIn) this.#accounts?.block(me.userId, userId, type === "block");
    this.#deliver({ user: me.userId }, {
      type: "blocks",
      users: this.#userState.blocked(me.userId),
    });
  }

  /** Answers `read`: the position moves forward, and the user's other connections are told. */
  async #read(peer: Peer, connection: Connection, { room: name, id }: ReadMessage): Promise<void> {
    const room = this.#roomFor(peer, connection, name, "mark read");
    const member = room?.memberOf(peer);
    if (!room || !member) return;
    let last = Math.max(room.lastId, 0);
    // A message acked a moment ago may not be delivered here yet: the store knows it.
    if (id > last) last = await this.#history.latest(room.name).catch(() => last);
    if (!this.#userState.read(member.id, room.name, Math.min(id, last))) return;
    const readId = this.#userState.readId(member.id, room.name);
    if (connection.identity?.account && peer.signedIn) {
      this.#accounts?.read(member.id, room.name, readId);
      // An account's other devices may be on other instances.
      this.#cluster?.command(room.name, { action: "read", user: member.id, id: readId });
    }
    this.#tellRead(member.id, room.name, peer);
  }

  /** Tells the user's connections here, but `except`, how far they read `room`. */
  #tellRead(userId: string, room: string, except?: Peer): void {
    const read: ServerMessage = { type: "read", room, id: this.#userState.readId(userId, room) };
    for (const other of this.#users.get(userId) ?? []) {
      if (other !== except) this.#send(other, read);
    }
  }

  /** A conversation's `peer` for its welcome: the other person, with the name last seen. */
  #peerOf(name: string, userId: string): { peer?: { userId: string; name: string } } {
    const pair = dmUsers(name);
    if (!pair) return {};
    const other = pair[0] === userId ? pair[1] : pair[0];
    return { peer: { userId: other, name: this.#names.get(other) ?? "" } };
  }

  /** Remembers a user's name, for conversations' `peer`. */
  #remember(userId: string, name: string): void {
    this.#names.delete(userId);
    this.#names.set(userId, name);
    if (this.#names.size > MAX_NAMES) this.#names.delete(this.#names.keys().next().value!);
  }

  // --- users, rooms and targets ----------------------------------------------

  /** A user who sent an oversized frame waits before joining again. */
  #coolDown(userId: string): void {
    this.#offenders.delete(userId);
    this.#offenders.set(userId, this.#now() + OFFENDER_COOLDOWN_MS);
    if (this.#offenders.size > MAX_OFFENDERS) {
      this.#offenders.delete(this.#offenders.keys().next().value!);
    }
  }

  /** How long `userId` must still wait before joining, in ms (0: not at all). */
  #cooldownLeft(userId: string): number {
    const until = this.#offenders.get(userId);
    if (until === undefined) return 0;
    const left = until - this.#now();
    if (left <= 0) this.#offenders.delete(userId);
    return Math.max(0, left);
  }

  /** Whether user `userId` is in the room through another instance. */
  #presentElsewhere(room: Room, userId: string): boolean {
    return this.#cluster?.remoteMembers(room.name).some((m) => m.id === userId) ?? false;
  }

  /**
   * The room's members here, then the other instances' (each user once),
   * each with their role when they have one.
   */
  #membersOf(room: Room): Member[] {
    const local = room.members;
    const here = new Set(local.map((m) => m.id));
    const remote = this.#cluster?.remoteMembers(room.name) ?? [];
    return [...local, ...remote.filter((m) => !here.has(m.id))].map((member) => {
      const operator = [...this.#users.get(member.id) ?? []]
        .map((peer) => this.#connections.get(peer)?.identity?.role).find(Boolean);
      const role = roleOf(member.id, room.policy, operator);
      return role === "member" ? member : { ...member, role };
    });
  }

  #roomOf(name: string): Room {
    let room = this.#rooms.get(name);
    if (!room) this.#rooms.set(name, room = new Room(name));
    return room;
  }

  /**
   * Runs `task` in the room's queue. A failure is reported to `peer` as
   * `internal`, or only logged.
   */
  #enqueue(room: Room, peer: Peer | null, task: () => Promise<void>): void {
    room.enqueue(task, (error) => {
      this.#log({ event: "error", room: room.name, id: peer?.id ?? "-", error: String(error) });
      if (peer) {
        this.refuse(
          peer,
          "internal",
          "Cannot complete request: internal error",
          undefined,
          room.name,
        );
      }
    }, () => this.#dropIfIdle(room));
  }

  #dropIfIdle(room: Room): void {
    if (room.idle && this.#rooms.get(room.name) === room) this.#rooms.delete(room.name);
  }

  /** The connections a target names. */
  *#targets(target: Target): Iterable<Peer> {
    if ("user" in target) {
      for (const peer of this.#users.get(target.user) ?? []) {
        if (!("room" in target) || target.room.has(peer)) yield peer;
      }
      return;
    }
    for (const peer of target.room.peers) if (peer !== target.except) yield peer;
  }

  /** Encodes `message` once and sends it to every connection `target` names. */
  #deliver(target: Target, message: ServerMessage, event?: SentEvent): void {
    const frame = encode(message);
    if ("user" in target) {
      for (const peer of this.#targets(target)) peer.send(frame, event);
      return;
    }
    // A room's members, on the hot path: a plain loop, no generator.
    const except = target.except;
    for (const peer of target.room.peers) if (peer !== except) peer.send(frame, event);
  }

  #send(peer: Peer, message: ServerMessage, event?: SentEvent): void {
    peer.send(encode(message), event);
  }
}

/** A server-side post under a name a member of the room holds. */
export class NameTakenError extends Error {
  /** Whether an account reserved the name (`name_reserved`), rather than a member holding it. */
  readonly reserved: boolean;

  /** Creates the error for `name`; `reserved` when an account holds it. */
  constructor(name: string, reserved = false) {
    super(
      reserved
        ? `Cannot post message: the name '${name}' belongs to an account`
        : `Cannot post message: a member of the room is called '${name}'`,
    );
    this.name = "NameTakenError";
    this.reserved = reserved;
  }
}

/** What a change does, for messages: "Cannot edit message: …". */
const CHANGE_DOING = {
  edit: "edit message",
  delete: "delete message",
  react: "react to message",
} as const;

/** A refusal worded for the draft's kind: a change says what it was. */
function changeReason(draft: MessageDraft, reason: string): string {
  const doing = draft.kind === "edit"
    ? "edit message"
    : draft.kind === "delete"
    ? "delete message"
    : draft.kind === "reaction"
    ? "react to message"
    : undefined;
  return doing ? reason.replace("send message", doing) : reason;
}

/** Whether the messages' JSON takes more than `limit` bytes (counted in UTF-16 units × 3 at most). */
function bytesOver(messages: ChatMessage[], limit: number): boolean {
  let bytes = 0;
  for (const message of messages) {
    bytes += 3 * message.text.length + 160;
    if (bytes > limit) return true;
  }
  return false;
}
