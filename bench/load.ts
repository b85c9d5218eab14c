/**
 * A load generator for the chat: opens clients to one server, joins them to
 * rooms, and runs an open-loop publish schedule (a fixed total rate, whatever
 * the server does), then prints one JSON line ({@linkcode LoadResult}) on
 * stdout.
 *
 * ```sh
 * # 16 clients in one room, 500 says/s over all of them, for 3 s
 * deno run --allow-net=127.0.0.1 bench/load.ts --url ws://127.0.0.1:8000/ws \
 *   --clients 16 --shared-room --rate 500 --duration 3
 * # 1,000 clients in 50 rooms of 20
 * deno run --allow-net=127.0.0.1 bench/load.ts --url ws://127.0.0.1:8000/ws \
 *   --clients 1000 --room-size 20 --rate 1000 --duration 3
 * # 500 clients, each in 10 of 250 rooms of 20
 * deno run --allow-net=127.0.0.1 bench/load.ts --url ws://127.0.0.1:8000/ws \
 *   --clients 500 --room-size 20 --rooms-per-client 10 --rate 1000 --duration 3
 * ```
 *
 * Rooms: with `--shared-room` every client joins `--room` (the orchestrator
 * runs several processes into the same room); otherwise the clients fill
 * rooms of `--room-size` of their own (client i joins room i mod rooms), so
 * the round-robin publish schedule visits the rooms in turn. With
 * `--rooms-per-client K` each client joins K rooms on its one connection:
 * lay the K memberships of every client end to end, client after client, and
 * deal them round the rooms (client i's j-th room is (i·K + j) mod rooms), so
 * every room gets exactly `--room-size` members; clients × K must be a
 * multiple of the room size, and there must be at least K rooms.
 *
 * The protocol of a connection in several rooms: the first `join` carries the
 * name (and the session token on a rejoin), the later ones only the room, and
 * each gets its own `welcome`; the next join waits for the first welcome.
 * Every `say` carries its `room`, also with one room (a server that allows
 * one room per connection, like the baseline, ignores the field). A client's
 * says go to its rooms in turn, and message ids are counted per room.
 *
 * Each publish is a 32-byte text that carries its scheduled send time in
 * microseconds since the epoch, so a receiver in another process measures the
 * delivery latency with the same clock (`performance.timeOrigin +
 * performance.now()`, which follows `Date.now()`). Latency counts from the
 * scheduled time, not the actual send, so a late generator shows up as
 * latency instead of being hidden (no coordinated omission); `sendLagMaxMs`
 * tells how late the generator itself ran.
 *
 * With `--warmup S`, the first S seconds of publishing (texts starting with
 * `W`) warm the server up and are not counted; the measured `--duration`
 * follows at the same rate without a pause.
 *
 * With `--wait-go`, the process writes `READY` on stderr once every client has
 * joined and starts publishing when a line arrives on stdin; the orchestrator
 * uses it to start several processes together. With `--idle`, clients join
 * and stay silent until a line (or end of input) arrives on stdin, or `--hold`
 * seconds pass. With `--join-cost`, `--clients` members join one room (and
 * the first sends `--history` messages), `READY` follows, and on `go` one more
 * client joins: the result says how many bytes every member and the newcomer
 * received for that one join.
 *
 * Every loop is bounded: connects time out, publishing stops after
 * `--duration`, the drain after `--drain` seconds, and the whole process exits
 * after `--max-seconds` whatever happens.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LatencyHistogram } from "./lib/histogram.ts";
import { type JoinCostResult, type LoadResult, READY_LINE } from "./lib/load_result.ts";

/** Connects and joins in flight at once, per process. */
const CONNECT_CONCURRENCY = 64;
/** How long one client may take to connect and get its `welcome`. */
const JOIN_TIMEOUT_MS = 15_000;
/** Rejoins with `since` allowed per client after 1013 closes. */
const MAX_RECONNECTS_PER_CLIENT = 5;
/** Error descriptions kept in the result. */
const MAX_ERROR_SAMPLES = 5;
/** Length of the digits that carry the send time: microseconds since the epoch. */
const TIME_DIGITS = 31;
/** How often the publish loop wakes up. */
const TICK_MS = 1;
/** Join cost: the join's traffic is over once no frame arrived for this long. */
const JOIN_SETTLE_MS = 500;
/** Join cost: wait for the traffic of the join at most this long. */
const JOIN_SETTLE_MAX_MS = 10_000;
/** Most rooms per connection (the server's default `MAX_ROOMS_PER_CONNECTION`). */
const MAX_ROOMS_PER_CLIENT = 50;

/** Command-line options. */
interface Options {
  url: string;
  clients: number;
  room: string;
  prefix: string;
  rate: number;
  duration: number;
  drain: number;
  /** Seconds of publishing at the same rate before the measured `duration`, not counted. */
  warmup: number;
  roomPublishes: number;
  textBytes: number;
  waitGo: boolean;
  idle: boolean;
  joinCost: boolean;
  history: number;
  sharedRoom: boolean;
  roomSize: number;
  /** Rooms each client joins on its one connection. */
  roomsPerClient: number;
  hold: number;
  maxSeconds: number;
}

/** What a client has seen of one of its rooms. */
interface RoomState {
  /** Highest message id delivered in the room; later ids count, earlier ones are duplicates. */
  lastId: number;
  /** Deliveries count only after the room's first `welcome` (its history is older traffic). */
  counting: boolean;
}

/** One connection and what it has seen. */
interface BenchClient {
  name: string;
  /** Its rooms, in join order: the first join names the connection. */
  rooms: string[];
  /** The same names as JSON strings, for the `say` frames. */
  roomsJson: string[];
  /** Per room: ids seen, and whether deliveries count yet. */
  state: Map<string, RoomState>;
  socket: WebSocket | null;
  /** Every room's welcome arrived and the socket has not closed since. */
  open: boolean;
  reconnects: number;
  /** Payload bytes and frames received (UTF-8 bytes with `--join-cost`, else characters). */
  bytes: number;
  frames: number;
  token?: string;
  /** While joining: told of each room's welcome, or of an error frame about a room. */
  onJoin?: (room: string, error?: string) => void;
}

/** Counters shared by every client of the process. */
interface Stats {
  delivered: number;
  duplicates: number;
  closes1013: number;
  reconnects: number;
  errors: number;
  errorSamples: string[];
  lastFrameAt: number;
  histogram: LatencyHistogram;
}

const stats: Stats = {
  delivered: 0,
  duplicates: 0,
  closes1013: 0,
  reconnects: 0,
  errors: 0,
  errorSamples: [],
  lastFrameAt: 0,
  histogram: new LatencyHistogram(),
};
let stopping = false;
let exactBytes = false;
const encoder = new TextEncoder();

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      clients: { type: "string", default: "8" },
      room: { type: "string", default: "bench" },
      prefix: { type: "string", default: "p0" },
      rate: { type: "string", default: "100" },
      duration: { type: "string", default: "3" },
      drain: { type: "string", default: "2" },
      warmup: { type: "string", default: "0" },
      "room-publishes": { type: "string" },
      "text-bytes": { type: "string", default: "32" },
      "wait-go": { type: "boolean", default: false },
      idle: { type: "boolean", default: false },
      "join-cost": { type: "boolean", default: false },
      history: { type: "string", default: "0" },
      "shared-room": { type: "boolean", default: false },
      "room-size": { type: "string", default: "20" },
      "rooms-per-client": { type: "string", default: "1" },
      hold: { type: "string", default: "120" },
      "max-seconds": { type: "string" },
    },
  });
  if (!values.url) throw new TypeError("Cannot start load: --url is required");
  const url = new URL(values.url);
  if (url.hostname !== "127.0.0.1" || (url.protocol !== "ws:" && url.protocol !== "wss:")) {
    throw new TypeError(`Cannot start load: only ws://127.0.0.1 is allowed, got ${values.url}`);
  }
  const duration = positive(values.duration, "duration");
  const drain = positive(values.drain, "drain");
  const rate = positive(values.rate, "rate");
  const hold = positive(values.hold, "hold");
  const idle = values.idle;
  const joinCost = values["join-cost"];
  const warmup = Number(values.warmup);
  if (!Number.isFinite(warmup) || warmup < 0 || warmup > 60) {
    throw new TypeError(
      `Cannot start load: --warmup must be 0 to 60 seconds, got ${values.warmup}`,
    );
  }
  const history = Number(values.history);
  if (!Number.isInteger(history) || history < 0 || history > 1000) {
    throw new TypeError(`Cannot start load: --history must be 0 to 1000, got ${values.history}`);
  }
  const clients = Math.max(1, Math.floor(positive(values.clients, "clients")));
  const roomSize = Math.max(1, Math.floor(positive(values["room-size"], "room-size")));
  const sharedRoom = values["shared-room"] || joinCost;
  const roomsPerClient = Number(values["rooms-per-client"]);
  if (
    !Number.isInteger(roomsPerClient) || roomsPerClient < 1 ||
    roomsPerClient > MAX_ROOMS_PER_CLIENT
  ) {
    throw new TypeError(
      `Cannot start load: --rooms-per-client must be 1 to ${MAX_ROOMS_PER_CLIENT}, ` +
        `got ${values["rooms-per-client"]}`,
    );
  }
  if (roomsPerClient > 1) {
    const memberships = clients * roomsPerClient;
    if (sharedRoom) {
      throw new TypeError("Cannot start load: --rooms-per-client needs rooms of its own");
    }
    if (memberships % roomSize !== 0 || memberships / roomSize < roomsPerClient) {
      throw new TypeError(
        `Cannot start load: ${clients} clients in ${roomsPerClient} rooms each do not fill ` +
          `at least ${roomsPerClient} whole rooms of ${roomSize}`,
      );
    }
  }
  return {
    url: url.href,
    clients,
    room: values.room,
    prefix: values.prefix,
    rate,
    duration,
    drain,
    warmup,
    roomPublishes: values["room-publishes"] === undefined
      ? Math.round(rate * duration)
      : positive(values["room-publishes"], "room-publishes"),
    textBytes: Math.max(TIME_DIGITS + 1, Math.floor(positive(values["text-bytes"], "text-bytes"))),
    waitGo: values["wait-go"],
    idle,
    joinCost,
    history,
    sharedRoom,
    roomSize,
    roomsPerClient,
    hold,
    maxSeconds: values["max-seconds"] === undefined
      ? (idle ? hold : warmup + duration + drain) + 90
      : positive(values["max-seconds"], "max-seconds"),
  };
}

function positive(value: string | undefined, name: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) {
    throw new TypeError(`Cannot start load: --${name} must be a positive number, got ${value}`);
  }
  return parsed;
}

/** Milliseconds since the epoch, with sub-millisecond precision. */
function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

function recordError(description: string): void {
  stats.errors++;
  if (stats.errorSamples.length < MAX_ERROR_SAMPLES) stats.errorSamples.push(description);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The room an event is about: its `room`, else (an older server) the client's only room. */
function roomOf(client: BenchClient, event: Record<string, unknown>): string {
  return typeof event.room === "string" ? event.room : client.rooms[0];
}

/**
 * Counts one `message` event for `client` in `state` (its room), with its latency when it is
 * ours; a warm-up message (text starting with `W`) only moves the room's last id.
 */
function countMessage(
  state: RoomState | undefined,
  event: Record<string, unknown>,
  now: number,
): void {
  if (state === undefined) return recordError("message for a room the client is not in");
  if (!state.counting) return;
  const id = event.id;
  if (typeof id !== "number") return recordError("message without a numeric id");
  if (id <= state.lastId) {
    stats.duplicates++;
    return;
  }
  state.lastId = id;
  const text = event.text;
  if (typeof text === "string" && text.charCodeAt(0) === 87 /* W */) return;
  stats.delivered++;
  if (typeof text === "string" && text.charCodeAt(0) === 84 /* T */) {
    const sentAt = Number(text.slice(1, TIME_DIGITS + 1)) / 1000;
    if (Number.isFinite(sentAt)) stats.histogram.record(now - sentAt);
  }
}

function handleEvent(client: BenchClient, event: unknown, now: number): void {
  if (!isRecord(event)) return;
  switch (event.type) {
    case "message":
      return countMessage(client.state.get(roomOf(client, event)), event, now);
    case "welcome": {
      if (typeof event.token === "string") client.token = event.token;
      const room = roomOf(client, event);
      const state = client.state.get(room);
      if (state === undefined) return recordError(`welcome for a room not asked for: ${room}`);
      const history = Array.isArray(event.history) ? event.history : [];
      for (const message of history) {
        if (!isRecord(message) || typeof message.id !== "number") continue;
        if (state.counting) countMessage(state, message, now);
        else state.lastId = Math.max(state.lastId, message.id);
      }
      state.counting = true;
      client.onJoin?.(room);
      return;
    }
    case "error":
      recordError(`error frame: ${String(event.code)}`);
      // An error about a say (it has a cid) is no answer to a join.
      if (event.cid === undefined) {
        client.onJoin?.(roomOf(client, event), `error ${String(event.code)}`);
      }
      return;
  }
}

function handleFrame(client: BenchClient, data: unknown): void {
  if (typeof data !== "string") return;
  const now = epochNow();
  stats.lastFrameAt = now;
  client.frames++;
  // The bench's own payloads are ASCII, so characters are bytes; --join-cost counts exactly.
  client.bytes += exactBytes ? encoder.encode(data).byteLength : data.length;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return recordError("a frame that is not JSON");
  }
  if (Array.isArray(value)) {
    for (const event of value) handleEvent(client, event, now);
  } else {
    handleEvent(client, value, now);
  }
}

/**
 * Opens `client`'s socket and joins its rooms: the first with the name (and the session token,
 * if any), then the others at once without it. With `resume`, every join carries `since` (the
 * room's last id). Resolves once every room's `welcome` arrived; rejects on an error frame about
 * a room being joined, a close, or a timeout.
 */
function connect(client: BenchClient, url: string, resume = false): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = new WebSocket(url);
    client.socket = socket;
    let settled = false;
    const waiting = new Set<string>();
    const timer = setTimeout(
      () =>
        fail(
          `join timed out after ${JOIN_TIMEOUT_MS} ms (${
            waiting.size || client.rooms.length
          } of ${client.rooms.length} rooms without welcome)`,
        ),
      JOIN_TIMEOUT_MS,
    );
    function fail(reason: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.onJoin = undefined;
      try {
        socket.close();
      } catch {
        // Already closing.
      }
      reject(new Error(reason));
    }
    function join(room: string, first: boolean): void {
      const frame: Record<string, unknown> = { type: "join", room };
      if (first) {
        frame.name = client.name;
        if (client.token !== undefined) frame.token = client.token;
      }
      if (resume) frame.since = client.state.get(room)!.lastId;
      waiting.add(room);
      socket.send(JSON.stringify(frame));
    }
    client.onJoin = (room, error) => {
      if (settled || !waiting.has(room)) return;
      if (error !== undefined) return fail(`${error} joining ${room}`);
      waiting.delete(room);
      if (room === client.rooms[0]) {
        for (const other of client.rooms.slice(1)) join(other, false);
      }
      if (waiting.size > 0) return;
      settled = true;
      clearTimeout(timer);
      client.onJoin = undefined;
      client.open = true;
      resolve();
    };
    socket.onopen = () => join(client.rooms[0], true);
    socket.onmessage = (event) => handleFrame(client, event.data);
    socket.onerror = () => {}; // A close event follows.
    socket.onclose = (event) => {
      if (!settled) return fail(`closed with ${event.code} before welcome`);
      if (client.socket !== socket) return;
      client.open = false;
      if (stopping) return;
      if (event.code === 1013) {
        stats.closes1013++;
        if (client.reconnects < MAX_RECONNECTS_PER_CLIENT) reconnect(client, url);
      } else {
        recordError(`closed with ${event.code}${event.reason ? ` (${event.reason})` : ""}`);
      }
    };
  });
}

function reconnect(client: BenchClient, url: string): void {
  client.reconnects++;
  stats.reconnects++;
  connect(client, url, true).catch((error) => recordError(`rejoin: ${error.message}`));
}

/** Connects every client, `CONNECT_CONCURRENCY` at a time; returns how many joined. */
async function connectAll(clients: BenchClient[], url: string): Promise<number> {
  let next = 0;
  let joined = 0;
  async function worker(): Promise<void> {
    while (next < clients.length) {
      const client = clients[next++];
      try {
        await connect(client, url);
        joined++;
      } catch (error) {
        recordError(`join ${client.name}: ${(error as Error).message}`);
      }
    }
  }
  const workers = Math.min(CONNECT_CONCURRENCY, clients.length);
  await Promise.all(Array.from({ length: workers }, worker));
  return joined;
}

/** Resolves with the first line on stdin, or `null` at end of input. */
async function readStdinLine(): Promise<string | null> {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) return text === "" ? null : text;
      text += value;
    }
    return text.slice(0, text.indexOf("\n"));
  } finally {
    reader.releaseLock();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The text of a publish: `T` (or `W` during the warm-up), the scheduled time in µs, padded to
 * `bytes`.
 */
function publishText(scheduledEpochMs: number, bytes: number, tag = "T"): string {
  const digits = String(Math.round(scheduledEpochMs * 1000)).padStart(TIME_DIGITS, "0");
  return (tag + digits).padEnd(bytes, ".");
}

interface PublishOutcome {
  published: number;
  skipped: number;
  sendLagMaxMs: number;
}

/**
 * Sends `warmup` publishes and then `scheduled` ones at `rate` per second, round-robin over the
 * clients, each client's over its rooms in turn; only the `scheduled` ones count (in the
 * outcome, and at the receivers).
 */
async function publish(
  clients: BenchClient[],
  options: Options,
  scheduled: number,
  warmup = 0,
  onMeasuredStart: () => void = () => {},
): Promise<PublishOutcome> {
  const interval = 1000 / options.rate;
  const total = warmup + scheduled;
  const start = performance.now();
  const startEpoch = performance.timeOrigin + start;
  // Give up on the schedule well after it should have ended, whatever happens.
  const giveUpAt = start + (options.warmup + options.duration) * 1000 + 5000;
  let next = 0;
  let published = 0;
  let skipped = 0;
  let sendLagMaxMs = 0;
  if (warmup === 0) onMeasuredStart();
  while (next < total) {
    const now = performance.now();
    if (now > giveUpAt) break;
    while (next < total && next * interval <= now - start) {
      const client = clients[next % clients.length];
      const room = client.roomsJson[Math.floor(next / clients.length) % client.rooms.length];
      const measured = next >= warmup;
      if (next === warmup && warmup > 0) onMeasuredStart();
      if (client.open && client.socket?.readyState === WebSocket.OPEN) {
        const text = publishText(
          startEpoch + next * interval,
          options.textBytes,
          measured ? "T" : "W",
        );
        client.socket.send(
          `{"type":"say","room":${room},"text":"${text}","cid":"${options.prefix}-${next}"}`,
        );
        if (measured) {
          published++;
          sendLagMaxMs = Math.max(sendLagMaxMs, now - start - next * interval);
        }
      } else if (measured) {
        skipped++;
      }
      next++;
    }
    if (next < total) await sleep(TICK_MS);
  }
  skipped += total - Math.max(next, warmup);
  return { published, skipped, sendLagMaxMs };
}

/** Waits until `target` deliveries arrived or `ms` passed. */
async function drain(target: number, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (stats.delivered < target && performance.now() < until) await sleep(10);
}

/** Waits until no frame arrived for `quietMs`, at most `maxMs`. */
async function settle(quietMs: number, maxMs: number): Promise<void> {
  const until = performance.now() + maxMs;
  while (epochNow() - stats.lastFrameAt < quietMs && performance.now() < until) await sleep(20);
}

function closeAll(clients: BenchClient[]): void {
  stopping = true;
  for (const client of clients) {
    try {
      client.socket?.close(1000, "bench done");
    } catch {
      // Already closed.
    }
  }
}

function makeClient(name: string, rooms: string[]): BenchClient {
  return {
    name,
    rooms,
    roomsJson: rooms.map((room) => JSON.stringify(room)),
    state: new Map(rooms.map((room) => [room, { lastId: 0, counting: false }])),
    socket: null,
    open: false,
    reconnects: 0,
    bytes: 0,
    frames: 0,
  };
}

/** The rooms of client `i`: see the module's documentation. */
function roomsOf(options: Options, i: number): string[] {
  if (options.sharedRoom) return [options.room];
  const k = options.roomsPerClient;
  const rooms = Math.ceil((options.clients * k) / options.roomSize);
  return Array.from(
    { length: k },
    (_, j) => `${options.room}-${options.prefix}-${(i * k + j) % rooms}`,
  );
}

function makeClients(options: Options): BenchClient[] {
  return Array.from(
    { length: options.clients },
    (_, i) => makeClient(`${options.prefix}c${i}`, roomsOf(options, i)),
  );
}

/**
 * Join cost: the first member sends `count` messages (so the newcomer's
 * welcome carries history, as in a room in use) and waits until they are back.
 */
async function seedHistory(client: BenchClient, count: number): Promise<void> {
  if (count === 0 || !client.open) return;
  const target = stats.delivered + count;
  for (let i = 0; i < count; i++) {
    client.socket!.send(JSON.stringify({
      type: "say",
      room: client.rooms[0],
      text: publishText(epochNow(), 32),
      cid: `seed-${i}`,
    }));
  }
  await drain(target, 10_000);
}

/** Join cost: one more client joins; what did everyone receive for it? */
async function measureJoin(
  members: BenchClient[],
  options: Options,
): Promise<JoinCostResult> {
  for (const member of members) {
    member.bytes = 0;
    member.frames = 0;
  }
  const newcomer = makeClient(`${options.prefix}new`, [options.room]);
  const started = performance.now();
  let welcomeMs = -1;
  try {
    await connect(newcomer, options.url);
    welcomeMs = performance.now() - started;
  } catch (error) {
    recordError(`newcomer: ${(error as Error).message}`);
  }
  await settle(JOIN_SETTLE_MS, JOIN_SETTLE_MAX_MS);
  const memberBytes = members.reduce((sum, m) => sum + m.bytes, 0);
  return {
    members: members.filter((m) => m.open).length,
    memberBytes,
    memberFrames: members.reduce((sum, m) => sum + m.frames, 0),
    membersReached: members.filter((m) => m.frames > 0).length,
    newcomerBytes: newcomer.bytes,
    newcomerFrames: newcomer.frames,
    totalBytes: memberBytes + newcomer.bytes,
    welcomeMs: Math.round(welcomeMs),
    settledMs: Math.round(performance.now() - started),
  };
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  exactBytes = options.joinCost;
  // The last resort: this process ends by itself whatever happens.
  const lifetime = setTimeout(() => {
    console.error(`load: gave up after ${options.maxSeconds} s`);
    Deno.exit(3);
  }, options.maxSeconds * 1000);
  Deno.unrefTimer(lifetime);

  const clients = makeClients(options);
  const connectStart = performance.now();
  const joined = await connectAll(clients, options.url);
  const connectMs = performance.now() - connectStart;
  if (options.joinCost) await seedHistory(clients[0], options.history);
  if (options.waitGo || options.idle || options.joinCost) {
    // Clients that joined every one of their rooms.
    console.error(`${READY_LINE} ${joined}`);
  }

  const publishing = !options.idle && !options.joinCost;
  const scheduled = publishing ? Math.round(options.rate * options.duration) : 0;
  let outcome: PublishOutcome = { published: 0, skipped: 0, sendLagMaxMs: 0 };
  let joinCost: JoinCostResult | undefined;
  let expected = 0;
  let framesBefore = clients.reduce((sum, c) => sum + c.frames, 0);
  let bytesBefore = clients.reduce((sum, c) => sum + c.bytes, 0);
  const runStart = performance.now();
  if (options.idle) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const held = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), options.hold * 1000);
    });
    await Promise.race([readStdinLine(), held]);
    clearTimeout(timer);
  } else {
    if ((options.waitGo || options.joinCost) && (await readStdinLine()) === null) {
      console.error("load: stdin closed before go; stopping");
      closeAll(clients);
      Deno.exit(2);
    }
    if (options.joinCost) {
      joinCost = await measureJoin(clients, options);
    } else {
      // Frames and bytes count from the end of the warm-up (a few of its frames still arrive).
      outcome = await publish(
        clients,
        options,
        scheduled,
        Math.round(options.rate * options.warmup),
        () => {
          framesBefore = clients.reduce((sum, c) => sum + c.frames, 0);
          bytesBefore = clients.reduce((sum, c) => sum + c.bytes, 0);
        },
      );
      // Shared room: every client sees every process's publishes. Own rooms: only ours.
      expected = options.sharedRoom
        ? Math.round(options.roomPublishes) * clients.length
        : outcome.published * options.roomSize;
      await drain(expected, options.drain * 1000);
    }
  }
  const runMs = performance.now() - runStart;

  const result: LoadResult = {
    mode: options.idle ? "idle" : options.joinCost ? "join-cost" : "publish",
    clients: clients.length,
    joined,
    scheduled,
    published: outcome.published,
    skipped: outcome.skipped,
    expected,
    delivered: stats.delivered,
    duplicates: stats.duplicates,
    framesReceived: clients.reduce((sum, c) => sum + c.frames, 0) - framesBefore,
    bytesReceived: clients.reduce((sum, c) => sum + c.bytes, 0) - bytesBefore,
    latency: stats.histogram.summary(),
    histogram: stats.histogram.toData(),
    closes1013: stats.closes1013,
    reconnects: stats.reconnects,
    errors: stats.errors,
    errorSamples: stats.errorSamples,
    sendLagMaxMs: Math.round(outcome.sendLagMaxMs * 1000) / 1000,
    connectMs: Math.round(connectMs),
    runMs: Math.round(runMs),
    ...(joinCost ? { joinCost } : {}),
  };
  console.log(JSON.stringify(result));
  closeAll(clients);
  await sleep(100);
  Deno.exit(0);
}

if (import.meta.main) {
  await main();
}
