/**
 * A real-time chat server. One HTTP handler: `/ws` upgrades to a WebSocket,
 * `/healthz` reports health, and every other path serves the page in
 * `static/`. Each room is a Set of sockets; a message is stored in the room's
 * history (Deno KV or Redis), acknowledged to its sender, then sent to every
 * socket in the room, in the order the server accepted it. Other instances
 * (isolates, processes, machines) hear of it on a bus and send it to their
 * own sockets; the store fills any gap a lost bus event leaves.
 *
 * Run it with `deno task start` (`deno serve main.ts`); import
 * {@linkcode createChat} to embed it.
 *
 * @module
 */

import { type Authenticate, AuthError, type AuthOptions, createAuthenticator } from "./auth.ts";
import { BatchedSender } from "./batch.ts";
import { BroadcastChannelBus, type Bus, type BusEvent, type BusState, LocalBus } from "./bus.ts";
import { connectRedis, RedisBus } from "./redis_bus.ts";
import { type HistoryStore, KvHistory, MAX_BATCH, type MessageDraft } from "./history.ts";
import { RedisHistory } from "./redis_history.ts";
import { consoleLogger, type Logger } from "./log.ts";
import { type MetricFamily, METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import {
  type ChatMessage,
  decodeClientMessage,
  type ErrorCode,
  type ErrorMessage,
  errorMessage,
  type JoinMessage,
  type Member,
  normalizeName,
  type SayMessage,
  type ServerMessage,
} from "./protocol.ts";
import { type PresenceChange, RemotePresence } from "./presence.ts";
import { TokenBucket } from "./rate_limit.ts";
import { SessionSigner } from "./session.ts";
import { SECURITY_HEADERS, serveStatic } from "./static_files.ts";

/** Messages a `welcome` carries when the client does not resume. */
export const WELCOME_HISTORY = 50;
/** Rate-limited frames tolerated after the warning, before closing with 1008. */
const RATE_LIMIT_STRIKES = 10;
/** Minimum time between two forwarded `typing` notices of one connection. */
const TYPING_INTERVAL_MS = 1000;
/** Close reasons for refused authentication. */
const AUTH_CLOSE_REASONS: Record<AuthError["code"], string> = {
  auth_required: "authentication required",
  auth_invalid: "invalid token",
  auth_expired: "token expired",
};
/** `say`s a room may hold waiting for the store; more are refused as `unavailable`. */
const MAX_WAITING_SAYS = 2000;
/** How long shutdown waits for sockets to close. */
const SHUTDOWN_GRACE_MS = 1500;

/** Settings read once from the environment by {@linkcode loadConfig}. */
export interface Config {
  /** Deno KV path; `undefined` is the platform's KV (Deno Deploy). */
  kvPath?: string;
  historyLimit: number;
  allowedOrigins: string[];
  rateBurst: number;
  ratePerSecond: number;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  idleTimeoutSeconds: number;
  /** Secret for session tokens; `undefined` means a random one, stored in KV or Redis. */
  sessionSecret?: string;
  maxConnections: number;
  maxConnectionsPerIp: number;
  logFormat: "text" | "json";
  /** Redis for history and fan-out between processes; unset means Deno KV and BroadcastChannel. */
  redisUrl?: string;
  metrics: { enabled: boolean; token?: string };
  /** JWT verification keys; none set means authentication is off. */
  auth: AuthOptions;
}

/** Reads the configuration from environment variables, with defaults. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  return {
    kvPath: env.KV_PATH ?? (env.DENO_DEPLOYMENT_ID ? undefined : "./chat.kv"),
    historyLimit: integer(env.HISTORY_LIMIT, 1000),
    allowedOrigins: (env.ALLOWED_ORIGINS ?? "").split(",").map((o) => o.trim()).filter(Boolean),
    rateBurst: integer(env.RATE_BURST, 20),
    ratePerSecond: integer(env.RATE_PER_SECOND, 5),
    maxFrameBytes: integer(env.MAX_FRAME_BYTES, 64 * 1024),
    maxBufferedBytes: integer(env.MAX_BUFFERED_BYTES, 1024 * 1024),
    idleTimeoutSeconds: integer(env.IDLE_TIMEOUT, 30),
    sessionSecret: env.SESSION_SECRET || undefined,
    maxConnections: integer(env.MAX_CONNECTIONS, 10_000),
    maxConnectionsPerIp: integer(env.MAX_CONNECTIONS_PER_IP, 50),
    logFormat: env.LOG_FORMAT === "json" ? "json" : "text",
    redisUrl: env.REDIS_URL || undefined,
    metrics: {
      enabled: env.METRICS === "1" || !!env.METRICS_TOKEN,
      token: env.METRICS_TOKEN || undefined,
    },
    auth: {
      jwtSecret: env.AUTH_JWT_SECRET || undefined,
      publicKey: env.AUTH_PUBLIC_KEY || undefined,
      algorithm: env.AUTH_JWT_ALG || undefined,
      jwksUrl: env.AUTH_JWKS_URL || undefined,
    },
  };
}

/** Options for {@linkcode createChat}. */
export interface ChatOptions {
  /** Where room history lives. */
  history: HistoryStore;
  /**
   * Origins allowed besides the server's own; requests without `Origin` are
   * always allowed.
   * @default {[]}
   */
  allowedOrigins?: string[];
  /**
   * Frames a connection may send at once.
   * @default {20}
   */
  rateBurst?: number;
  /**
   * Sustained frames per second per connection.
   * @default {5}
   */
  ratePerSecond?: number;
  /**
   * Largest frame accepted; larger ones close the socket with 1009.
   * @default {65536}
   */
  maxFrameBytes?: number;
  /**
   * Unsent bytes a socket may hold for a second before it is closed with
   * 1013 "too slow"; past four times this it is closed at once.
   * @default {1048576}
   */
  maxBufferedBytes?: number;
  /**
   * Seconds without a pong before a peer is dropped.
   * @default {30}
   */
  idleTimeoutSeconds?: number;
  /**
   * Secret that signs session tokens. Without one, a random secret is made,
   * so tokens stop working when the process restarts.
   * @default {a random secret}
   */
  sessionSecret?: string;
  /**
   * Verifies JWTs; when set, every join must carry a valid token.
   * @default {null}
   */
  authenticate?: Authenticate | null;
  /**
   * Open sockets allowed in all; more get HTTP 503 before the upgrade.
   * @default {10000}
   */
  maxConnections?: number;
  /**
   * Open sockets allowed per remote IP; more get HTTP 429.
   * @default {50}
   */
  maxConnectionsPerIp?: number;
  /**
   * Fan-out to other instances (isolates, processes, machines).
   * @default {new LocalBus()}
   */
  bus?: Bus;
  /**
   * Whether the history store is reachable, for `/healthz`.
   * @default {() => ({ ok: true })}
   */
  storeState?: () => BusState;
  /**
   * How often rooms are checked against the store, to catch messages whose
   * fan-out was lost, in milliseconds.
   * @default {1000}
   */
  watchIntervalMs?: number;
  /**
   * How often this instance repeats its members on the bus, in milliseconds.
   * @default {10000}
   */
  heartbeatMs?: number;
  /**
   * How long other instances keep listing those members without a
   * heartbeat, in milliseconds: the most a crashed instance's members linger.
   * @default {30000}
   */
  presenceTtlMs?: number;
  /**
   * Where connection events go, one line each. Never message bodies.
   * @default {consoleLogger("text")}
   */
  log?: Logger;
  /**
   * Serve Prometheus metrics at `/metrics`. With a `token`, scrapers must
   * send `Authorization: Bearer <token>`.
   * @default {{ enabled: false }}
   */
  metrics?: { enabled: boolean; token?: string };
}

/** A running chat: its HTTP handler and its lifecycle. */
export interface Chat {
  /** The HTTP handler, for `Deno.serve`. */
  fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** Refuses new sockets and closes open ones with 1001; resolves once closed. */
  shutdown(): Promise<void>;
  /** Open sockets. */
  readonly connections: number;
}

/** One connected socket and what it has joined. */
interface Client {
  socket: WebSocket;
  /** Connection id, for logs. */
  id: string;
  /** User id, set by `join`: from the session token, or new. */
  userId?: string;
  bucket: TokenBucket;
  strikes: number;
  lastTyping: number;
  /** Set once the server decided to close this socket: later frames are ignored. */
  closing: boolean;
  /** A join is being verified. */
  joining?: boolean;
  /** Closes the socket when its JWT expires. */
  expiry?: ReturnType<typeof setTimeout>;
  room?: Room;
  name?: string;
}

/** A room: its sockets, and a queue that keeps its events in order. */
interface Room {
  name: string;
  clients: Set<Client>;
  tail: Promise<void>;
  /** Tasks queued and not finished; the room is kept until they are. */
  pending: number;
  /** Highest message id sent to this room's sockets; -1 until the room is caught up. */
  lastId: number;
  /** When this instance last announced the room's members on the bus. */
  announced: number;
  /** `say`s waiting to be stored together, in arrival order. */
  says: { client: Client; draft: MessageDraft }[];
}

/**
 * Creates the chat handler.
 *
 * @example Usage
 * ```ts ignore
 * import { createChat } from "./main.ts";
 * import { KvHistory } from "./history.ts";
 * const chat = createChat({ history: new KvHistory(await Deno.openKv(":memory:")) });
 * Deno.serve(chat.fetch);
 * ```
 */
export function createChat(options: ChatOptions): Chat {
  const {
    history,
    allowedOrigins = [],
    rateBurst = 20,
    ratePerSecond = 5,
    maxFrameBytes = 64 * 1024,
    maxBufferedBytes = 1024 * 1024,
    idleTimeoutSeconds = 30,
    sessionSecret = crypto.randomUUID() + crypto.randomUUID(),
    authenticate = null,
    maxConnections = 10_000,
    maxConnectionsPerIp = 50,
    log = consoleLogger(),
    metrics = { enabled: false },
    bus = new LocalBus(),
    watchIntervalMs = 1000,
    heartbeatMs = 10_000,
    storeState = (): BusState => ({ ok: true }),
    presenceTtlMs = 30_000,
  } = options;
  const sessions = SessionSigner.create(sessionSecret);
  const staticRoot = new URL("./static/", import.meta.url);
  const startedAt = Date.now();
  const sockets = new Set<Client>();
  const rooms = new Map<string, Room>();
  const remote = new RemotePresence();
  /** Instances heard from on the bus. */
  const peers = new Set<string>();
  let closing = false;
  // Counters for /metrics.
  let framesIn = 0;
  let stored = 0;
  const errors = new Map<ErrorCode, number>();
  const closes = new Map<number, number>();
  const refusals = new Map<number, number>();
  /** Upgraded sockets, in all and per remote IP, for the connection caps. */
  let upgraded = 0;
  const perIp = new Map<string, number>();
  // Every frame goes through the sender: events of one tick (or of a few ms
  // when busy) share a frame, and a socket that cannot keep up is closed.
  const sender = new BatchedSender({
    maxBufferedBytes,
    onSlow(socket) {
      const client = [...sockets].find((c) => c.socket === socket);
      if (!client) return;
      leave(client);
      violate(client, 1013, "too slow");
    },
  });

  const unsubscribe = bus.subscribe(onBusEvent);
  let watching = false;
  const watcher = setInterval(() => {
    if (watching) return;
    watching = true;
    watch().catch((error) => log({ event: "error", error: `watch: ${error}` }))
      .finally(() => watching = false);
  }, watchIntervalMs);

  function send(client: Client, message: ServerMessage): void {
    sender.send([client.socket], JSON.stringify(message));
  }

  /** Serializes once and queues the frame for every socket in the room. */
  function broadcast(room: Room, message: ServerMessage, except?: Client): void {
    const recipients = [];
    for (const client of room.clients) if (client !== except) recipients.push(client.socket);
    sender.send(recipients, JSON.stringify(message));
  }

  function refuse(client: Client, code: ErrorCode, message: string, cid?: string): void {
    reject(client, errorMessage(code, message, cid));
  }

  function reject(client: Client, error: ErrorMessage): void {
    errors.set(error.code, (errors.get(error.code) ?? 0) + 1);
    send(client, error);
  }

  /** This instance's members of the room, then the other instances'. */
  function membersOf(room: Room): Member[] {
    const local = [...room.clients].map(memberOf);
    const here = new Set(local.map((m) => m.id));
    return [...local, ...remote.members(room.name).filter((m) => !here.has(m.id))];
  }

  function roomOf(name: string): Room {
    let room = rooms.get(name);
    if (!room) {
      room = {
        name,
        clients: new Set(),
        tail: Promise.resolve(),
        pending: 0,
        lastId: -1,
        announced: 0,
        says: [],
      };
      rooms.set(name, room);
    }
    return room;
  }

  /**
   * Runs `task` after every earlier task of the room, so events keep their
   * order. A failure is reported to `client` (with `cid`), or only logged.
   */
  function enqueue(
    room: Room,
    client: Client | null,
    task: () => Promise<void>,
    cid?: string,
  ): void {
    room.pending++;
    room.tail = room.tail.then(task).catch((error) => {
      log({ event: "error", room: room.name, id: client?.id ?? "-", error: String(error) });
      if (client) refuse(client, "internal", "Cannot complete request: internal error", cid);
    }).finally(() => {
      room.pending--;
      dropIfEmpty(room);
    });
  }

  /**
   * Who is joining: the JWT's identity when authentication is on, else the
   * session token's user id (or a new one).
   */
  async function identify(
    { name, token, auth }: JoinMessage,
  ): Promise<
    { userId: string; name: string; token?: string; rooms?: string[]; expiresAt?: number }
  > {
    if (authenticate) {
      const identity = await authenticate(auth);
      return { ...identity, name: normalizeName(identity.name) ?? name };
    }
    const signer = await sessions;
    const known = token === undefined ? null : await signer.verify(token);
    const session = known === null ? await signer.issue() : { id: known, token: token! };
    return { userId: session.id, name, token: session.token };
  }

  async function join(client: Client, message: JoinMessage): Promise<void> {
    const { room: roomName, since } = message;
    if (client.room || client.joining) {
      return refuse(client, "already_joined", "Cannot join room: already in a room");
    }
    client.joining = true;
    let identity;
    try {
      identity = await identify(message);
    } catch (error) {
      client.joining = false;
      if (!(error instanceof AuthError)) throw error;
      refuse(client, error.code, error.message);
      return violate(client, 1008, AUTH_CLOSE_REASONS[error.code]);
    }
    if (identity.rooms && !identity.rooms.includes(roomName)) {
      client.joining = false;
      return refuse(client, "room_forbidden", "Cannot join room: your token does not allow it");
    }
    const { userId, name } = identity;
    const target = roomOf(roomName);
    enqueue(target, client, async () => {
      client.joining = false;
      const folded = name.toLowerCase();
      const holder = [...target.clients].find((c) => c.name!.toLowerCase() === folded);
      const elsewhere = remote.members(roomName).find((m) => m.name.toLowerCase() === folded);
      if ((holder && holder.userId !== userId) || (elsewhere && elsewhere.id !== userId)) {
        return refuse(client, "name_taken", "Cannot join room: name is taken");
      }
      if (holder) {
        // The same user joins again, typically after a network blip the
        // server has not noticed yet: the new connection replaces the old one.
        leave(holder);
        holder.closing = true;
        holder.socket.close(4000, "replaced by a new connection");
      }
      // Catch the room up with the store first: the welcome then holds
      // everything up to lastId, and every later message is broadcast.
      if (target.lastId < 0) target.lastId = await history.latest(roomName);
      else await deliverUpTo(target);
      let replay: { messages: ChatMessage[]; complete?: boolean };
      if (since === undefined) {
        replay = { messages: await history.recent(roomName, WELCOME_HISTORY) };
      } else {
        replay = await history.after(roomName, since);
        if (!replay.complete) {
          replay.messages = await history.recent(roomName, WELCOME_HISTORY);
        }
      }
      if (client.socket.readyState !== WebSocket.OPEN) return;
      client.room = target;
      client.name = name;
      client.userId = userId;
      target.clients.add(client);
      if (identity.expiresAt !== undefined) {
        client.expiry = setTimeout(
          () => violate(client, 1008, "token expired"),
          Math.max(0, identity.expiresAt - Date.now()),
        );
      }
      const members = membersOf(target);
      send(client, {
        type: "welcome",
        id: userId,
        ...(identity.token ? { token: identity.token } : {}),
        room: roomName,
        name,
        members,
        history: replay.messages.filter((m) => m.id <= target.lastId),
        ...(replay.complete === undefined ? {} : { recovered: replay.complete }),
      });
      const member = memberOf(client);
      broadcast(target, { type: "presence", event: "join", member, members }, client);
      announce(target);
      log({ event: "join", id: client.id, user: userId, room: roomName });
    });
  }

  function say(client: Client, { text, cid }: SayMessage): void {
    const room = client.room;
    if (!room) return refuse(client, "not_joined", "Cannot send message: join a room first", cid);
    if (room.says.length >= MAX_WAITING_SAYS) {
      // The store cannot keep up: refuse rather than queue without bound.
      return refuse(
        client,
        "unavailable",
        "Cannot send message: the server is busy, retry soon",
        cid,
      );
    }
    const draft = { room: room.name, userId: client.userId!, name: client.name!, text, cid };
    room.says.push({ client, draft });
    if (room.says.length === 1) enqueue(room, null, () => store(room));
  }

  /**
   * Stores every `say` waiting in the room in one go (one KV commit when
   * busy), then acknowledges each to its sender and sends it to the room.
   */
  async function store(room: Room): Promise<void> {
    const batch = room.says.splice(0, MAX_BATCH);
    if (room.says.length > 0) enqueue(room, null, () => store(room));
    let results;
    try {
      results = await history.appendMany(room.name, batch.map((say) => say.draft));
    } catch (error) {
      log({ event: "error", room: room.name, error: `store: ${error}` });
      for (const { client, draft } of batch) {
        refuse(
          client,
          "unavailable",
          "Cannot send message: history is unavailable, retry soon",
          draft.cid,
        );
      }
      return;
    }
    for (const [i, { message, duplicate }] of results.entries()) {
      send(batch[i].client, { type: "ack", cid: message.cid, id: message.id });
      if (duplicate) continue;
      stored++;
      await deliverUpTo(room, message);
      if (remote.members(room.name).length > 0) {
        // Only instances with members in the room need it; a race with a new
        // one is covered by its store watcher.
        bus.publish({ kind: "message", room: room.name, message });
      }
    }
  }

  /**
   * Sends stored messages to the room's sockets in id order, once each. When
   * `message` is the next id it goes out at once; after a gap (another
   * instance's message that this one has not seen) the store fills it first.
   * Runs inside the room's queue.
   */
  async function deliverUpTo(room: Room, message?: ChatMessage): Promise<void> {
    if (room.lastId < 0 || (message && message.id <= room.lastId)) return;
    if (message && message.id === room.lastId + 1) {
      room.lastId = message.id;
      return broadcast(room, message);
    }
    const { messages } = await history.after(room.name, room.lastId);
    for (const missing of messages) {
      if (missing.id <= room.lastId) continue;
      room.lastId = missing.id;
      broadcast(room, missing);
    }
  }

  /** Tells the other instances who is in the room here, for about 30 s. */
  function announce(room: Room): void {
    room.announced = Date.now();
    const members = [...room.clients].map(memberOf);
    bus.publish({
      kind: "presence",
      room: room.name,
      members,
      expiresAt: room.announced + presenceTtlMs,
    });
  }

  /** Shows the other instances' joins and leaves to this instance's sockets. */
  function showRemote({ room: name, joined, left }: PresenceChange): void {
    const room = rooms.get(name);
    if (!room || room.clients.size === 0) return;
    const members = membersOf(room);
    for (const member of joined) {
      broadcast(room, { type: "presence", event: "join", member, members });
    }
    for (const member of left) {
      broadcast(room, { type: "presence", event: "leave", member, members });
    }
  }

  /** Handles what other instances published. */
  function onBusEvent(event: BusEvent): void {
    if (event.kind === "presence") {
      if (!peers.has(event.origin)) {
        // A new instance: tell it at once who is here, rather than at the next heartbeat.
        peers.add(event.origin);
        for (const room of rooms.values()) if (room.clients.size > 0) announce(room);
      }
      return showRemote(remote.update(event.origin, event.room, event.members, event.expiresAt));
    }
    const room = rooms.get(event.room);
    if (!room || room.clients.size === 0) return;
    if (event.kind === "typing") return broadcast(room, { type: "typing", member: event.member });
    enqueue(room, null, () => deliverUpTo(room, event.message));
  }

  /**
   * Once a second: catch rooms up with the store (a fan-out the bus lost is
   * found even when no later message follows), repeat presence heartbeats,
   * and expire the members of instances that went quiet.
   */
  async function watch(): Promise<void> {
    const now = Date.now();
    for (const change of remote.sweep(now)) showRemote(change);
    for (const room of rooms.values()) {
      if (room.clients.size === 0 || room.lastId < 0) continue;
      if (now - room.announced >= heartbeatMs) announce(room);
      if (await history.latest(room.name) > room.lastId) {
        enqueue(room, null, () => deliverUpTo(room));
      }
    }
  }

  function typing(client: Client): void {
    if (!client.room) return refuse(client, "not_joined", "Cannot send typing: join a room first");
    const now = performance.now();
    if (now - client.lastTyping < TYPING_INTERVAL_MS) return;
    client.lastTyping = now;
    broadcast(client.room, { type: "typing", member: memberOf(client) }, client);
    if (remote.members(client.room.name).length > 0) {
      bus.publish({ kind: "typing", room: client.room.name, member: memberOf(client) });
    }
  }

  function leave(client: Client): void {
    const room = client.room;
    if (!room || !room.clients.delete(client)) return;
    const members = membersOf(room);
    broadcast(room, { type: "presence", event: "leave", member: memberOf(client), members });
    announce(room);
    dropIfEmpty(room);
  }

  function dropIfEmpty(room: Room): void {
    if (room.clients.size === 0 && room.pending === 0 && rooms.get(room.name) === room) {
      rooms.delete(room.name);
    }
  }

  function receive(client: Client, data: unknown): void {
    if (client.closing) return;
    framesIn++;
    if (typeof data !== "string") {
      const size = data instanceof ArrayBuffer
        ? data.byteLength
        : data instanceof Blob
        ? data.size
        : 0;
      if (size > maxFrameBytes) return violate(client, 1009, "frame too large");
      return refuse(
        client,
        "binary_unsupported",
        "Cannot read message: binary frames are not supported",
      );
    }
    if (byteLengthOver(data, maxFrameBytes)) return violate(client, 1009, "frame too large");
    const parsed = decodeClientMessage(data);
    if (!client.bucket.take()) {
      client.strikes++;
      if (client.strikes > RATE_LIMIT_STRIKES) return violate(client, 1008, "rate limit exceeded");
      const cid = parsed.ok && parsed.message.type === "say" ? parsed.message.cid : undefined;
      return refuse(
        client,
        "rate_limited",
        "Cannot send message: rate limit exceeded, slow down",
        cid,
      );
    }
    client.strikes = 0;
    if (!parsed.ok) return reject(client, parsed.error);
    const message = parsed.message;
    switch (message.type) {
      case "join":
        return void join(client, message).catch((error) => {
          client.joining = false;
          log({ event: "error", id: client.id, error: String(error) });
          refuse(client, "internal", "Cannot join room: internal error");
        });
      case "say":
        return say(client, message);
      case "typing":
        return typing(client);
    }
  }

  function violate(client: Client, code: number, reason: string): void {
    log({ event: "violation", id: client.id, code, reason });
    closes.set(code, (closes.get(code) ?? 0) + 1);
    client.closing = true;
    sender.flush(); // What was queued for it (such as the error saying why) goes first.
    client.socket.close(code, reason);
  }

  function upgrade(req: Request, ip: string): Response {
    if (closing) return plain(503, "Server is shutting down");
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return plain(400, "Expected a WebSocket upgrade request");
    }
    if (!originAllowed(req, allowedOrigins)) return plain(403, "Origin not allowed");
    if (upgraded >= maxConnections) {
      log({ event: "refused", ip, status: 503, reason: "server full" });
      refusals.set(503, (refusals.get(503) ?? 0) + 1);
      return plain(503, "Server is full, try again later", { "retry-after": "10" });
    }
    const fromIp = perIp.get(ip) ?? 0;
    if (fromIp >= maxConnectionsPerIp) {
      log({ event: "refused", ip, status: 429, reason: "too many connections from this address" });
      refusals.set(429, (refusals.get(429) ?? 0) + 1);
      return plain(429, "Too many connections from this address", { "retry-after": "10" });
    }
    const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: idleTimeoutSeconds });
    upgraded++;
    perIp.set(ip, fromIp + 1);
    const client: Client = {
      socket,
      id: crypto.randomUUID().slice(0, 8),
      bucket: new TokenBucket({ burst: rateBurst, perSecond: ratePerSecond }),
      strikes: 0,
      lastTyping: -Infinity,
      closing: false,
    };
    socket.onopen = () => {
      sockets.add(client);
      log({ event: "open", id: client.id, ip, connections: sockets.size });
    };
    socket.onmessage = (event) => receive(client, event.data);
    socket.onclose = (event) => {
      upgraded--;
      const left = perIp.get(ip)! - 1;
      if (left === 0) perIp.delete(ip);
      else perIp.set(ip, left);
      sockets.delete(client);
      sender.forget(socket);
      clearTimeout(client.expiry);
      leave(client);
      log({ event: "close", id: client.id, code: event.code, connections: sockets.size });
    };
    socket.onerror = () => {}; // A close event always follows.
    return response;
  }

  function health(): Response {
    const problems = [bus.state, storeState()].filter((state) => !state.ok);
    const ok = problems.length === 0;
    const reason = problems.map((state) => state.reason ?? "unavailable").join("; ");
    const body = {
      ok,
      status: ok ? "ok" : "degraded",
      ...(reason ? { reason } : {}),
      connections: sockets.size,
      rooms: rooms.size,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
    return Response.json(body, { headers: { "cache-control": "no-store" } });
  }

  /** `/metrics`: 404 unless enabled, 401 without the right bearer token. */
  async function metricsResponse(req: Request): Promise<Response> {
    if (!metrics.enabled) return plain(404, "Not found");
    if (metrics.token && req.headers.get("authorization") !== `Bearer ${metrics.token}`) {
      return plain(401, "Metrics need a bearer token", { "www-authenticate": "Bearer" });
    }
    let members = 0, historySize = 0;
    for (const room of rooms.values()) {
      members += room.clients.size;
      historySize += Math.min(await history.latest(room.name), history.limit);
    }
    const { frames, events, batched } = sender.stats;
    const byCode = <K>(map: Map<K, number>, label: string) =>
      [...map].map(([key, value]) => ({ labels: { [label]: String(key) }, value }));
    const families: MetricFamily[] = [
      gauge("chat_connections", "Open WebSocket connections", sockets.size),
      gauge("chat_rooms", "Rooms with members or pending work", rooms.size),
      gauge("chat_members", "Members in all rooms", members),
      gauge("chat_history_messages", "Retained messages in the active rooms", historySize),
      gauge("chat_bus_up", "1 while the bus between instances works, else 0", bus.state.ok ? 1 : 0),
      counter("chat_frames_received_total", "Frames received from clients", framesIn),
      counter("chat_messages_stored_total", "Chat messages stored and broadcast", stored),
      counter("chat_events_sent_total", "Events sent to clients", events),
      counter("chat_frames_sent_total", "Frames sent to clients", frames),
      counter("chat_batched_frames_total", "Frames that carried several events", batched),
      {
        name: "chat_errors_total",
        help: "Error events sent, by code (validation, rate limit, auth, ...)",
        type: "counter",
        samples: byCode(errors, "code"),
      },
      {
        name: "chat_closes_total",
        help: "Sockets closed by the server for a violation, by close code (1013 is too slow)",
        type: "counter",
        samples: byCode(closes, "code"),
      },
      {
        name: "chat_refused_total",
        help: "Upgrades refused by the connection caps, by HTTP status",
        type: "counter",
        samples: byCode(refusals, "status"),
      },
    ];
    return new Response(renderMetrics(families), {
      headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
    });
  }

  return {
    fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
      const { pathname } = new URL(req.url);
      if (pathname === "/ws") {
        const address = info?.remoteAddr;
        const ip = address && "hostname" in address ? address.hostname : "unknown";
        return Promise.resolve(upgrade(req, ip));
      }
      if (pathname === "/healthz") return Promise.resolve(health());
      if (pathname === "/metrics") return metricsResponse(req);
      return serveStatic(req, staticRoot);
    },
    async shutdown(): Promise<void> {
      closing = true;
      clearInterval(watcher);
      unsubscribe();
      sender.flush();
      const closed = [...sockets].map(({ socket }) =>
        new Promise<void>((resolve) => {
          if (socket.readyState === WebSocket.CLOSED) return resolve();
          socket.addEventListener("close", () => resolve(), { once: true });
          socket.close(1001, "server is shutting down");
        })
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, SHUTDOWN_GRACE_MS));
      await Promise.race([Promise.all(closed), grace]);
      clearTimeout(timer);
      await Promise.all([...rooms.values()].map((room) => room.tail));
    },
    get connections() {
      return sockets.size;
    },
  };
}

function memberOf(client: Client): Member {
  return { id: client.userId!, name: client.name! };
}

function gauge(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "gauge", samples: [{ value }] };
}

function counter(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "counter", samples: [{ value }] };
}

/** Same-origin requests, listed origins, and requests without `Origin` pass. */
function originAllowed(req: Request, allowed: string[]): boolean {
  const origin = req.headers.get("origin");
  if (origin === null || allowed.includes(origin)) return true;
  try {
    return new URL(origin).host === (req.headers.get("host") ?? new URL(req.url).host);
  } catch {
    return false;
  }
}

function byteLengthOver(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return new TextEncoder().encode(text).byteLength > limit;
}

function plain(status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8", ...extra },
  });
}

function integer(value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw new TypeError(`Cannot read configuration: '${value}' is not a non-negative integer`);
  }
  return parsed;
}

/** One chat per isolate, made on first use from the environment. */
let running: Promise<Chat> | undefined;

/** Reads the configuration, opens history and starts the chat; once. */
function start(): Promise<Chat> {
  return running ??= (async () => {
    const config = loadConfig(Deno.env.toObject());
    const authenticate = await createAuthenticator(config.auth);
    if (authenticate) console.log("JWT authentication is on: every join must carry a token");
    const log = consoleLogger(config.logFormat);
    let history: HistoryStore, bus: Bus, storeState: () => BusState, release: () => Promise<void>;
    if (config.redisUrl) {
      // Many processes or machines: Redis holds the history and carries the fan-out.
      const redis = await connectRedis(config.redisUrl);
      history = new RedisHistory(redis.client, { limit: config.historyLimit });
      if (!config.sessionSecret && redis.state.ok) {
        // One random secret for every instance, kept in Redis.
        await redis.client.set("chat:session-secret", crypto.randomUUID(), { NX: true });
        config.sessionSecret = await redis.client.get("chat:session-secret") ?? undefined;
      }
      bus = await RedisBus.connect(config.redisUrl);
      storeState = () => redis.state;
      release = async () => {
        await bus.close();
        await redis.close();
      };
    } else {
      // One process (or deno serve --parallel, or Deno Deploy): Deno KV and BroadcastChannel.
      const kv = await Deno.openKv(config.kvPath);
      history = new KvHistory(kv, { limit: config.historyLimit });
      if (!config.sessionSecret) {
        // One random secret for every isolate and restart, kept in KV.
        const key = ["config", "session-secret"];
        await kv.atomic().check({ key, versionstamp: null }).set(key, crypto.randomUUID()).commit();
        config.sessionSecret = (await kv.get<string>(key)).value ?? undefined;
      }
      bus = new BroadcastChannelBus();
      storeState = () => ({ ok: true });
      release = async () => {
        await bus.close();
        kv.close();
      };
    }
    if (!config.sessionSecret) {
      console.warn("SESSION_SECRET is not set and none is stored: sessions end on restart");
    }
    const chat = createChat({ ...config, history, bus, storeState, authenticate, log });
    const stop = async (signal: string) => {
      console.log(`${signal}: shutting down, ${chat.connections} connection(s) open`);
      await chat.shutdown();
      await release();
      Deno.exit(0);
    };
    try {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        Deno.addSignalListener(signal, () => stop(signal));
      }
    } catch { /* No signals here (Deno Deploy): the platform stops the isolate. */ }
    return chat;
  })();
}

/**
 * The entry point for `deno serve main.ts` (what `deno task start` runs) and
 * for Deno Deploy.
 */
export default {
  async fetch(req, info) {
    return await (await start()).fetch(req, info);
  },
  onListen(addr) {
    if (addr.transport === "tcp") {
      const host = addr.hostname === "0.0.0.0" ? "localhost" : addr.hostname;
      console.log(`Listening on http://${host}:${addr.port}/`);
    }
    start().catch((error) => {
      console.error(`Cannot start: ${error}`);
      Deno.exit(1);
    });
  },
} satisfies Deno.ServeDefaultExport;
