/**
 * The hub: rooms as Sets of peers, and what members do in them (`join`,
 * `say`, `typing`, leaving). It talks to {@linkcode Peer}s, never sockets,
 * so it runs the same behind any transport and is unit-tested with fake
 * peers.
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
  type ChatMessage,
  type ClientMessage,
  type ErrorCode,
  type ErrorMessage,
  errorMessage,
  type HistoryRequest,
  type JoinMessage,
  type Member,
  nameKey,
  type RoomInfo,
  type SayMessage,
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
import type { Cluster } from "./cluster.ts";
import type { PresenceChange } from "./presence.ts";
import { encode, type Peer } from "./peer.ts";
import { Room, type WaitingSay } from "./room.ts";

/** Close reasons for refused authentication. */
const AUTH_CLOSE_REASONS: Record<AuthError["code"], string> = {
  auth_required: "authentication required",
  auth_invalid: "invalid token",
  auth_expired: "token expired",
};
/** The longest delay `setTimeout` takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  /** Where room history lives. */
  history: HistoryStore;
  /** Resolves a `join` to a user. */
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
   * Shortest time between two forwarded `typing` notices of one peer, in ms.
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
}

/** What the hub knows of a connected peer. */
interface Session {
  room?: Room;
  member?: Member;
  joining: boolean;
  lastTyping: number;
  /** The rooms the member's token allows; `undefined` means every room. */
  allowed?: string[];
  /** Closes the peer when its JWT expires. */
  expiry?: ReturnType<typeof setTimeout>;
}

/**
 * Rooms and their members on this instance.
 *
 * @example Usage
 * ```ts ignore
 * import { Hub } from "./hub.ts";
 * const hub = new Hub({ history, identify });
 * hub.connect(peer);
 * hub.receive(peer, { type: "join", room: "lobby", name: "ada" });
 * hub.disconnect(peer);
 * ```
 */
export class Hub {
  #history: HistoryStore;
  #identify: Identify;
  #cluster: Cluster | null;
  #log: Logger;
  #welcomeHistory: number;
  #maxWaitingSays: number;
  #maxWaitingSaysTotal: number;
  /** `say`s waiting in every room, or in a commit not yet done. */
  #waiting = 0;
  #typingIntervalMs: number;
  #claimTtlMs: number;
  #authenticated: boolean;
  #maxReplayBytes: number;
  #rooms = new Map<string, Room>();
  #sessions = new Map<Peer, Session>();
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
    this.#maxWaitingSays = options.maxWaitingSays ?? DEFAULTS.maxWaitingSays;
    this.#maxWaitingSaysTotal = options.maxWaitingSaysTotal ?? DEFAULTS.maxWaitingSaysTotal;
    this.#typingIntervalMs = options.typingIntervalMs ?? DEFAULTS.typingIntervalMs;
    this.#claimTtlMs = options.claimTtlMs ?? DEFAULTS.presenceTtlMs;
    this.#authenticated = options.authenticated ?? false;
    this.#maxReplayBytes = options.maxReplayBytes ?? DEFAULTS.maxReplayBytes;
    this.#cluster?.start({
      rooms: () => this.#rooms.values(),
      room: (name) => this.#rooms.get(name),
      catchUp: (room, message) => this.#enqueue(room, null, () => this.#deliverUpTo(room, message)),
      keyOf: (member) => nameKey(member.name),
      showPresence: (room, change) => this.#showRemote(room, change),
      showTyping: (room, member) => this.#broadcast(room, { type: "typing", member }),
    });
  }

  /** Connected peers. */
  get peers(): number {
    return this.#sessions.size;
  }

  /** The rooms this instance holds, with their member counts. */
  get rooms(): { name: string; members: number; lastId: number }[] {
    return [...this.#rooms.values()].map((room) => ({
      name: room.name,
      members: room.members.size,
      lastId: room.lastId,
    }));
  }

  /**
   * The rooms with members here or on other instances, busiest first, as
   * `rooms` answers them: never a room named `_…`, and only those in
   * `allowed` when given (a token's `rooms` claim).
   */
  activeRooms(allowed?: string[]): RoomInfo[] {
    const counts = new Map(this.#cluster?.remoteRooms() ?? []);
    const lastIds = new Map<string, number>();
    for (const room of this.#rooms.values()) {
      if (room.members.size === 0) continue;
      counts.set(room.name, (counts.get(room.name) ?? 0) + room.members.size);
      lastIds.set(room.name, Math.max(room.lastId, 0));
    }
    return [...counts]
      .filter(([name]) => !name.startsWith("_") && (!allowed || allowed.includes(name)))
      .map(([name, members]) => ({ name, members, lastId: lastIds.get(name) ?? 0 }))
      .sort((a, b) => b.members - a.members || a.name.localeCompare(b.name));
  }

  /** Starts tracking a peer; call {@linkcode Hub.disconnect} when it is gone. */
  connect(peer: Peer): void {
    this.#sessions.set(peer, { joining: false, lastTyping: -Infinity });
  }

  /** The peer left: it leaves its room, and the hub forgets it. */
  disconnect(peer: Peer): void {
    const session = this.#sessions.get(peer);
    if (!session) return;
    clearTimeout(session.expiry);
    this.#leave(peer, session);
    this.#sessions.delete(peer);
  }

  /** Handles one valid client message. */
  receive(peer: Peer, message: ClientMessage): void {
    const session = this.#sessions.get(peer);
    if (!session) return;
    switch (message.type) {
      case "join":
        return void this.#join(peer, session, message).catch((error) => {
          session.joining = false;
          this.#log({ event: "error", id: peer.id, error: String(error) });
          this.refuse(peer, "internal", "Cannot join room: internal error");
        });
      case "say":
        return this.#say(peer, session, message);
      case "typing":
        return this.#typing(peer, session);
      case "history":
        return void this.#page(peer, session, message);
      case "edit":
      case "delete":
      case "react":
        return this.#change(peer, session, message);
      case "rooms":
        return this.#listRooms(peer, session);
    }
  }

  /** Sends `peer` an error with a stable code; the connection stays usable. */
  refuse(peer: Peer, code: ErrorCode, message: string, cid?: string): void {
    this.reject(peer, errorMessage(code, message, cid));
  }

  /** Sends `peer` an error message, and counts it. */
  reject(peer: Peer, error: ErrorMessage): void {
    this.stats.count(this.stats.errors, error.code);
    peer.send(encode(error));
  }

  /** Closes `peer` for a policy violation, with a close code and reason, and logs it. */
  violate(peer: Peer, code: number, reason: string): void {
    this.#log({ event: "violation", id: peer.id, code, reason });
    this.stats.count(this.stats.closes, code);
    const session = this.#sessions.get(peer);
    if (session) this.#leave(peer, session);
    peer.close(code, reason);
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

  async #join(peer: Peer, session: Session, message: JoinMessage): Promise<void> {
    if (session.room || session.joining) {
      return this.refuse(peer, "already_joined", "Cannot join room: already in a room");
    }
    session.joining = true;
    let identity: JoinIdentity;
    try {
      identity = await this.#identify(message);
    } catch (error) {
      session.joining = false;
      if (!(error instanceof AuthError)) throw error;
      this.refuse(peer, error.code, error.message);
      return this.violate(peer, 1008, AUTH_CLOSE_REASONS[error.code]);
    }
    if (identity.rooms && !identity.rooms.includes(message.room)) {
      session.joining = false;
      return this.refuse(peer, "room_forbidden", "Cannot join room: your token does not allow it");
    }
    const room = this.#roomOf(message.room);
    this.#enqueue(room, peer, () => this.#enter(peer, session, room, identity, message));
  }

  /**
   * The join itself, in the room's queue: claim the name, catch the room up
   * with the store, and welcome the peer. A store that fails answers
   * `unavailable`, and the claim is given back.
   */
  async #enter(
    peer: Peer,
    session: Session,
    room: Room,
    identity: JoinIdentity,
    message: JoinMessage,
  ): Promise<void> {
    session.joining = false;
    let claimed = false;
    try {
      if (!await this.#claimName(room, identity)) {
        return this.refuse(peer, "name_taken", "Cannot join room: name is taken");
      }
      claimed = true;
      // Catch the room up with the store first: the welcome then holds
      // everything up to lastId, and every later message is broadcast.
      if (room.lastId < 0) room.lastId = await this.#history.latest(room.name);
      else await this.#deliverUpTo(room);
      const epoch = await this.#history.epoch?.();
      const wiped = epoch !== undefined && message.epoch !== undefined && message.epoch !== epoch;
      const replay = await this.#replay(room.name, wiped ? -1 : message.since);
      if (!peer.open || !this.#sessions.has(peer)) return this.#release(room, identity);
      this.#admit(peer, session, room, identity, { ...replay, epoch });
    } catch (error) {
      this.#log({ event: "error", room: room.name, id: peer.id, error: `join: ${error}` });
      if (claimed) this.#release(room, identity);
      this.refuse(peer, "unavailable", "Cannot join room: the store is unavailable, retry soon");
    }
  }

  /** Gives a name claim back to the shared roster. */
  #release(room: Room, { userId, name }: { userId: string; name: string }): void {
    this.#cluster?.roster?.release(room.name, nameKey(name), userId).catch((error) =>
      this.#log({ event: "error", room: room.name, error: `roster: ${error}` })
    );
  }

  /**
   * Whether the name is free in the room for this user: here, on the other
   * instances, and in the shared roster (an atomic claim). A live connection
   * of the same user under the same name is replaced (closed with 4000):
   * typically a network blip the server has not noticed yet.
   */
  async #claimName(room: Room, { userId, name }: JoinIdentity): Promise<boolean> {
    const key = nameKey(name);
    const holder = [...room.members].find(([, m]) => nameKey(m.name) === key);
    const elsewhere = this.#cluster?.remoteMembers(room.name).find((m) => nameKey(m.name) === key);
    if ((holder && holder[1].id !== userId) || (elsewhere && elsewhere.id !== userId)) {
      return false;
    }
    const roster = this.#cluster?.roster;
    if (roster && !await roster.claim(room.name, key, userId, this.#claimTtlMs)) return false;
    if (holder) {
      const [stale] = holder;
      this.#leave(stale, this.#sessions.get(stale), false);
      stale.close(4000, "replaced by a new connection");
    }
    return true;
  }

  /**
   * What a joiner gets: after `since` when it resumes, else the newest
   * messages; `since` -1 means its ids are from a wiped store.
   */
  async #replay(room: string, since: number | undefined): Promise<Partial<Replay>> {
    const recent = () => this.#history.recent(room, this.#welcomeHistory);
    if (since === undefined) return { messages: await recent() };
    if (since < 0) return { messages: await recent(), complete: false };
    const replay = await this.#history.after(room, since);
    // Too far back for one welcome: the newest messages instead, and the
    // page reads older ones with `history`. What one join holds is bounded.
    if (!replay.complete || bytesOver(replay.messages, this.#maxReplayBytes)) {
      return { messages: await recent(), complete: false };
    }
    return replay;
  }

  /** Puts the peer in the room, welcomes it and tells the others. */
  #admit(
    peer: Peer,
    session: Session,
    room: Room,
    identity: JoinIdentity,
    replay: Partial<Replay> & { epoch?: string },
  ): void {
    const member = { id: identity.userId, name: identity.name };
    session.allowed = identity.rooms;
    session.room = room;
    session.member = member;
    room.members.set(peer, member);
    if (identity.expiresAt !== undefined) this.#expireAt(peer, session, identity.expiresAt);
    const members = this.#membersOf(room);
    this.#send(peer, {
      type: "welcome",
      id: member.id,
      ...(identity.token ? { token: identity.token } : {}),
      room: room.name,
      name: member.name,
      members,
      history: (replay.messages ?? []).filter((m) => m.id <= room.lastId),
      ...(replay.complete === undefined ? {} : { recovered: replay.complete }),
      ...(replay.epoch === undefined ? {} : { epoch: replay.epoch }),
    });
    this.#broadcast(room, { type: "presence", event: "join", member }, peer);
    this.#cluster?.announce(room);
    this.#log({ event: "join", id: peer.id, user: member.id, room: room.name });
  }

  /** Closes the peer with 1008 when its token expires, however far away that is. */
  #expireAt(peer: Peer, session: Session, expiresAt: number): void {
    const wait = expiresAt - Date.now();
    session.expiry = setTimeout(
      () =>
        wait > MAX_TIMEOUT_MS
          ? this.#expireAt(peer, session, expiresAt)
          : this.violate(peer, 1008, "token expired"),
      Math.max(0, Math.min(wait, MAX_TIMEOUT_MS)),
    );
  }

  // --- say -----------------------------------------------------------------

  #say(peer: Peer, session: Session, { text, cid, replyTo }: SayMessage): void {
    const { room, member } = session;
    if (!room || !member) {
      return this.refuse(peer, "not_joined", "Cannot send message: join a room first", cid);
    }
    if (this.#full(room)) {
      // The store cannot keep up: refuse rather than queue without bound.
      const reason = "Cannot send message: the server is busy, retry soon";
      return this.refuse(peer, "unavailable", reason, cid);
    }
    const draft: MessageDraft = {
      room: room.name,
      userId: member.id,
      name: member.name,
      text,
      cid,
    };
    if (replyTo !== undefined) draft.replyTo = replyTo;
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
   * dedupe by sender and `cid`. Resolves with the stored message (the
   * first one, for a repeated `cid`); rejects when the store fails or is
   * too busy.
   */
  post(roomName: string, draft: Omit<MessageDraft, "room">): Promise<ChatMessage> {
    const room = this.#roomOf(roomName);
    if (this.#full(room)) {
      this.#dropIfIdle(room);
      return Promise.reject(new Error("Cannot send message: the server is busy, retry soon"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<ChatMessage>();
    const sender = (result: ChatMessage | Error) =>
      result instanceof Error ? reject(result) : resolve(result);
    this.#wait(room, { draft: { ...draft, room: roomName }, sender });
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
    let results;
    try {
      results = await this.#history.appendMany(room.name, batch.map((say) => say.draft));
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
        else this.refuse(sender, code, reason, draft.cid);
      }
      return;
    }
    for (const [i, { message, duplicate }] of results.entries()) {
      const { sender } = batch[i];
      if (typeof sender === "function") sender(message);
      else this.#send(sender, { type: "ack", cid: message.cid, id: message.id });
      if (duplicate) continue;
      this.stats.stored++;
      await this.#deliverUpTo(room, message);
      this.#cluster?.forward({ kind: "message", room: room.name, message });
    }
  }

  /**
   * Sends stored messages to the room's peers in id order, once each. When
   * `message` is the next id it goes out at once; after a gap (another
   * instance's message that this one has not seen) the store fills it first.
   * Runs inside the room's queue.
   */
  async #deliverUpTo(room: Room, message?: ChatMessage): Promise<void> {
    if (room.lastId < 0 || (message && message.id <= room.lastId)) return;
    if (message && message.id === room.lastId + 1) {
      room.lastId = message.id;
      return this.#broadcast(room, message);
    }
    const { messages } = await this.#history.after(room.name, room.lastId);
    for (const missing of messages) {
      if (missing.id <= room.lastId) continue;
      room.lastId = missing.id;
      this.#broadcast(room, missing);
    }
  }

  // --- history, changes and rooms --------------------------------------------

  /** Answers `history`: a page of older messages from the store. */
  async #page(peer: Peer, session: Session, { before, limit }: HistoryRequest): Promise<void> {
    const room = session.room;
    if (!room) return this.refuse(peer, "not_joined", "Cannot read history: join a room first");
    try {
      const page = await this.#history.before(room.name, before, limit);
      const messages = page.messages.filter((m) => m.id <= room.lastId);
      this.#send(peer, { type: "history", messages, hasMore: page.hasMore });
    } catch (error) {
      this.#log({ event: "error", room: room.name, error: `history: ${error}` });
      this.refuse(peer, "unavailable", "Cannot read history: the store is unavailable, retry soon");
    }
  }

  /**
   * An edit, delete or reaction: decided against the store inside the room's
   * queue, then stored and sent like any message, as an event of its own.
   */
  #change(peer: Peer, session: Session, request: ChangeRequest): void {
    const { room, member } = session;
    if (!room || !member) {
      return this.refuse(
        peer,
        "not_joined",
        "Cannot change message: join a room first",
        request.cid,
      );
    }
    this.#enqueue(room, peer, async () => {
      const { messages } = await this.#history.after(room.name, request.ref - 1);
      const verdict = decideChange(request, member.id, messages);
      if (!verdict.ok) return this.refuse(peer, verdict.code, verdict.message, request.cid);
      if ("duplicate" in verdict) {
        return this.#send(peer, { type: "ack", cid: request.cid, id: verdict.duplicate.id });
      }
      const draft = { room: room.name, userId: member.id, name: member.name, cid: request.cid };
      await this.#commit(room, [{ draft: { ...draft, ...verdict.event }, sender: peer }]);
    });
  }

  /**
   * Answers `rooms`: the rooms with members here or on other instances,
   * within the token's `rooms` claim. Rooms whose name starts with `_` are
   * never listed.
   */
  #listRooms(peer: Peer, session: Session): void {
    if (this.#authenticated && !session.member) {
      return this.refuse(
        peer,
        "not_joined",
        "Cannot list rooms: join a room with your token first",
      );
    }
    this.#send(peer, { type: "rooms", rooms: this.activeRooms(session.allowed) });
  }

  // --- typing and leaving --------------------------------------------------

  #typing(peer: Peer, session: Session): void {
    const { room, member } = session;
    if (!room || !member) {
      return this.refuse(peer, "not_joined", "Cannot send typing: join a room first");
    }
    const now = performance.now();
    if (now - session.lastTyping < this.#typingIntervalMs) return;
    session.lastTyping = now;
    this.#broadcast(room, { type: "typing", member }, peer);
    this.#cluster?.forward({ kind: "typing", room: room.name, member });
  }

  /** The peer leaves its room; its name claim is released unless `release` is false. */
  #leave(peer: Peer, session: Session | undefined, release = true): void {
    const room = session?.room;
    if (!session || !room || !room.members.delete(peer)) return;
    session.room = undefined;
    if (release) this.#release(room, { userId: session.member!.id, name: session.member!.name });
    this.#broadcast(room, { type: "presence", event: "leave", member: session.member! });
    this.#cluster?.announce(room);
    this.#dropIfIdle(room);
  }

  /** Shows the other instances' joins and leaves to this instance's peers. */
  #showRemote(room: Room, { joined, left }: PresenceChange): void {
    if (room.members.size === 0) return;
    for (const member of joined) this.#broadcast(room, { type: "presence", event: "join", member });
    for (const member of left) this.#broadcast(room, { type: "presence", event: "leave", member });
  }

  // --- rooms ---------------------------------------------------------------

  /** This instance's members of the room, then the other instances'. */
  #membersOf(room: Room): Member[] {
    const local = [...room.members.values()];
    const here = new Set(local.map((m) => m.id));
    const remote = this.#cluster?.remoteMembers(room.name) ?? [];
    return [...local, ...remote.filter((m) => !here.has(m.id))];
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
      if (peer) this.refuse(peer, "internal", "Cannot complete request: internal error");
    }, () => this.#dropIfIdle(room));
  }

  #dropIfIdle(room: Room): void {
    if (room.idle && this.#rooms.get(room.name) === room) this.#rooms.delete(room.name);
  }

  #send(peer: Peer, message: ServerMessage): void {
    peer.send(encode(message));
  }

  /** Encodes once and sends to every peer in the room but `except`. */
  #broadcast(room: Room, message: ServerMessage, except?: Peer): void {
    const frame = encode(message);
    for (const peer of room.peers) if (peer !== except) peer.send(frame);
  }
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
