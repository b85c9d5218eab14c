/**
 * The fallback transport, for networks where WebSockets are blocked:
 * Server-Sent Events down, `POST` up. Each event stream is a
 * {@linkcode Peer} of the hub, like a WebSocket; the hub does not know
 * which transport a member uses.
 *
 * - `GET /sse?room=R&name=N[&since=I][&token=T][&auth=JWT][&epoch=E]` opens
 *   `text/event-stream`. The first event is `event: ready` with
 *   `{"connection":"<id>","post":"/sse/<id>"}`. With `room` and `name` the
 *   stream joins at once (the query is the first `join` frame); without
 *   them it waits for a `join` sent by `POST`. A `Last-Event-ID` header
 *   (what `EventSource` sends when it reconnects) resumes after that message
 *   id with its epoch, before `since` and `epoch`.
 * - Every server message is one event, `data: <json>`. The stream's room
 *   (the query's, else the first one joined) numbers its events: its chat
 *   messages carry `id: <message id>:<epoch>`, and its `welcome` the id of
 *   its newest message, so `Last-Event-ID` is the last message the client
 *   holds there, with the store's epoch that proves it is the same store
 *   (just `<message id>` where the store has no epoch). A stream in several
 *   rooms resumes the others with `since` and `epoch` per `join`, as a
 *   WebSocket does.
 * - `POST /sse/<id>` with one client frame as the body (the same JSON as on
 *   a WebSocket) answers 202; the frame goes through the same checks
 *   (`inbound.ts`: size, JSON, validation, rate limit), and errors come back
 *   down the stream as `error` events. 404 when the connection is gone.
 * - Closing sends `event: close` with `{"code","reason"}` (the WebSocket
 *   close codes) and ends the stream.
 *
 * Memory is bounded as on a WebSocket: the stream is pull-based, so bytes
 * the client has not read yet stay in this peer's queue, counted; a stream
 * whose queue stays over `maxBufferedBytes` for `slowGraceMs` (or passes 4×
 * it) is closed with 1013, dropping the backlog (the client resumes from its
 * last event id). An idle stream gets a comment line every `sseHeartbeatMs`,
 * which also finds dead connections.
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";
import type { Hub } from "../hub/hub.ts";
import type { Peer, SentEvent, SignedInAs } from "../hub/peer.ts";
import { addressKey } from "../http/admission.ts";
import { readCapped } from "../http/body.ts";
import { plain, SECURITY_HEADERS } from "../http/responses.ts";
import type { Logger } from "../log.ts";
import { parseClientMessage } from "../protocol.ts";
import { AddressBudgets } from "./address_budget.ts";
import { dispatch, Inbound, type InboundOptions } from "./inbound.ts";

const ENCODER = new TextEncoder();
const CONNECTION_ID = /^[A-Za-z0-9_-]{43}$/;
const DIGITS = /^[0-9]{1,15}$/;
/** A `Last-Event-ID` this transport wrote: a message id, then the store's epoch. */
const EVENT_ID = /^([0-9]{1,15})(?::([A-Za-z0-9_-]{1,64}))?$/;
/** How long a closed stream may take to read its close event before it is cut off, in ms. */
const CLOSE_DRAIN_MS = 5000;
/** Query parameters that make the stream's first `join`. */
const JOIN_FIELDS = ["room", "name", "token", "auth", "epoch"] as const;

/** Options for {@linkcode SseTransport}. */
export interface SseTransportOptions extends InboundOptions {
  /** The hub that peers talk to. */
  hub: Hub;
  /**
   * Where connection events go.
   * @default {() => {}}
   */
  log?: Logger;
  /**
   * Unread bytes a stream may hold for `slowGraceMs` (or 4× at once) before
   * it is closed with 1013.
   * @default {DEFAULTS.maxBufferedBytes}
   */
  maxBufferedBytes?: number;
  /**
   * How long a stream may stay over `maxBufferedBytes`, in milliseconds.
   * @default {DEFAULTS.slowGraceMs}
   */
  slowGraceMs?: number;
  /**
   * How often every stream gets a comment line, in milliseconds.
   * @default {DEFAULTS.sseHeartbeatMs}
   */
  sseHeartbeatMs?: number;
  /**
   * How long a `POST`'s body may take to arrive in full, in ms; a later one
   * gets 408 and its connection is closed (the stream stays open).
   * @default {DEFAULTS.bodyTimeoutMs}
   */
  bodyTimeoutMs?: number;
}

/** What the transport needs of a peer's owner. */
interface Owner {
  hub: Hub;
  maxBuffered: number;
  graceMs: number;
  /** The peer will not be sent anything more. */
  closing(peer: SsePeer): void;
  /** The stream is over: it was read to its end, cancelled, or aborted. */
  ended(peer: SsePeer): void;
}

/** One event stream as the hub sees it. */
class SsePeer implements Peer {
  readonly id: string = crypto.randomUUID().slice(0, 8);
  readonly address: string;
  /** The room whose message ids number this stream's events; the first one joined by default. */
  room: string | undefined;
  /** The store's epoch, from the room's welcome: part of each event id. */
  #epoch: string | undefined;
  /** The secret that `POST /sse/<connection>` must name. */
  readonly connection: string = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  readonly inbound: Inbound;
  readonly stream: ReadableStream<Uint8Array>;
  /** The close code, for the log: 1006 when the client went away. */
  closeCode = 1006;
  #owner: Owner;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  /** Events not handed to the response yet, and their size in bytes. */
  #queue: Uint8Array[] = [];
  #queued = 0;
  /** Bytes queued in the current task: not a backlog yet. */
  #fresh = 0;
  /** Resolves the pending `pull`: the response waits for data. */
  #pulling: (() => void) | null = null;
  #tickScheduled = false;
  #slowSince: number | null = null;
  #closing = false;
  #ended = false;
  #endTimer: ReturnType<typeof setTimeout> | undefined;

  readonly signedIn: SignedInAs | undefined;

  constructor(
    owner: Owner,
    inbound: Inbound,
    address: string,
    room?: string,
    signedIn?: SignedInAs,
  ) {
    this.#owner = owner;
    this.inbound = inbound;
    this.address = address;
    this.room = room;
    this.signedIn = signedIn;
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      cancel: () => this.#end(),
    }, { highWaterMark: 0 });
  }

  get open(): boolean {
    return !this.#closing;
  }

  send(frame: string, event?: SentEvent): void {
    if (this.#closing) return;
    let line = "";
    if (event) {
      this.room ??= event.room;
      if (event.room === this.room) {
        if (event.epoch !== undefined) this.#epoch = event.epoch;
        line = `id: ${event.id}${this.#epoch === undefined ? "" : `:${this.#epoch}`}\n`;
      }
    }
    this.#push(`${line}data: ${frame}\n\n`);
  }

  /** Sends a named event (such as `ready`) or a comment, outside the protocol. */
  sendRaw(text: string): void {
    if (!this.#closing) this.#push(text);
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.closeCode = code;
    if (code === 1013) {
      // Too slow: what it has not read is dropped; it resumes from its last event id.
      this.#queue = [];
      this.#queued = 0;
    }
    this.#push(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    // The hub hears of it after the current task, as from a WebSocket's close event.
    queueMicrotask(() => this.#owner.closing(this));
    // A client that does not read its close event in time is cut off.
    this.#endTimer = setTimeout(() => this.abort(), CLOSE_DRAIN_MS);
  }

  /** Ends the stream now, whatever is unread (the connection is reset). */
  abort(): void {
    if (this.#ended) return;
    try {
      this.#controller.error(new Error("closed"));
    } catch { /* already closed */ }
    this.#end();
  }

  /**
   * Closes the peer with 1013 when its backlog (bytes queued before the
   * current task that the response has not taken) stays over the limit
   * for the grace time, or passes 4× it.
   */
  checkSlow(now: number = performance.now()): void {
    if (this.#closing) return;
    const { maxBuffered, graceMs } = this.#owner;
    const backlog = this.#queued - this.#fresh;
    if (backlog <= maxBuffered) {
      this.#slowSince = null;
      return;
    }
    this.#slowSince ??= now;
    if (backlog > 4 * maxBuffered || now - this.#slowSince >= graceMs) {
      this.#owner.hub.violate(this, 1013, "too slow");
    }
  }

  #push(text: string): void {
    if (this.#ended) return;
    const bytes = ENCODER.encode(text);
    this.#queue.push(bytes);
    this.#queued += bytes.byteLength;
    this.#fresh += bytes.byteLength;
    if (this.#tickScheduled) return;
    // After this task: its events go out as one chunk if the response is
    // waiting; if not, the backlog is checked (outside the hub's loops).
    this.#tickScheduled = true;
    queueMicrotask(() => {
      this.#tickScheduled = false;
      if (this.#pulling) this.#deliver();
      else this.checkSlow();
      this.#fresh = 0;
    });
  }

  /** The response wants more: hand it the queue, or wait for data. */
  #pull(): Promise<void> | void {
    if (this.#ended) return;
    if (this.#queue.length > 0 && !this.#tickScheduled) return this.#deliver();
    return new Promise<void>((resolve) => this.#pulling = resolve);
  }

  /** Hands the queue to the response as one chunk; after the close event, ends it. */
  #deliver(): void {
    const done = this.#pulling;
    this.#pulling = null;
    if (this.#ended) return done?.();
    if (this.#queue.length > 0) {
      const chunk = this.#queue.length === 1 ? this.#queue[0] : concat(this.#queue, this.#queued);
      this.#queue = [];
      this.#queued = 0;
      this.#slowSince = null;
      try {
        this.#controller.enqueue(chunk);
        // After the close event, the stream ends once it is read. (Handing over a chunk
        // may cancel the stream at once, when the response finds the connection gone.)
        if (this.#closing && !this.#ended) this.#controller.close();
      } catch { /* the response is gone: cancelled */ }
      if (this.#closing) this.#end();
    }
    done?.();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closing = true;
    clearTimeout(this.#endTimer);
    this.#queue = [];
    this.#queued = 0;
    const done = this.#pulling;
    this.#pulling = null;
    done?.();
    this.#owner.ended(this);
  }
}

/**
 * Event streams, each a peer of the hub.
 *
 * @example Usage
 * ```ts ignore
 * import { SseTransport } from "./sse.ts";
 * const sse = new SseTransport({ hub });
 * Deno.serve((req) => {
 *   const { pathname } = new URL(req.url);
 *   if (pathname === "/sse") return sse.open(req, "127.0.0.1", () => ({ release() {} }));
 *   return sse.post(req, pathname.slice("/sse/".length));
 * });
 * ```
 */
export class SseTransport {
  #hub: Hub;
  #log: Logger;
  #inbound: InboundOptions;
  #addresses: AddressBudgets;
  #maxFrameBytes: number;
  #maxBuffered: number;
  #graceMs: number;
  #heartbeatMs: number;
  #bodyTimeoutMs: number;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Open streams by connection id. */
  #peers = new Map<string, SsePeer>();
  /** Every stream not ended yet (closing ones too), with its slot's release. */
  #streams = new Map<SsePeer, () => void>();
  #drained: (() => void) | null = null;
  #owner: Owner;

  /** Creates the transport; see {@linkcode SseTransportOptions}. */
  constructor(options: SseTransportOptions) {
    this.#hub = options.hub;
    this.#log = options.log ?? (() => {});
    this.#inbound = options;
    this.#addresses = options.addressBudgets ?? new AddressBudgets(options);
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.#maxBuffered = options.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes;
    this.#graceMs = options.slowGraceMs ?? DEFAULTS.slowGraceMs;
    this.#heartbeatMs = options.sseHeartbeatMs ?? DEFAULTS.sseHeartbeatMs;
    this.#bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs;
    this.#owner = {
      hub: this.#hub,
      maxBuffered: this.#maxBuffered,
      graceMs: this.#graceMs,
      closing: (peer) => this.#closing(peer),
      ended: (peer) => this.#ended(peer),
    };
  }

  /** Open event streams. */
  get connections(): number {
    return this.#peers.size;
  }

  /**
   * Answers `GET /sse`: checks the query, takes a connection slot with
   * `admit` (whose refusal is the answer), and opens the stream.
   * `signedIn` is the account the request's cookie signed in to, if any.
   */
  open(
    req: Request,
    ip: string,
    admit: () => Response | { release(): void },
    signedIn?: SignedInAs,
  ): Response {
    if (req.method !== "GET") return plain(405, "Method not allowed", { allow: "GET" });
    const join = this.#joinOf(req);
    if (join instanceof Response) return join;
    const admitted = admit();
    if (admitted instanceof Response) return admitted;
    const room = typeof join?.room === "string" ? join.room : undefined;
    const inbound = new Inbound(this.#inbound, this.#addresses.of(ip));
    const peer = new SsePeer(this.#owner, inbound, addressKey(ip), room, signedIn);
    this.#peers.set(peer.connection, peer);
    this.#streams.set(peer, admitted.release);
    this.#hub.connect(peer);
    this.#startHeartbeat();
    this.#log({ event: "open", id: peer.id, ip, transport: "sse", connections: this.#peers.size });
    const ready = { connection: peer.connection, post: `/sse/${peer.connection}` };
    peer.sendRaw(`retry: 2000\nevent: ready\ndata: ${JSON.stringify(ready)}\n\n`);
    if (join) this.#receive(peer, JSON.stringify(join));
    return new Response(peer.stream, {
      headers: {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Answers `POST /sse/<connection>`: one client frame for that stream. */
  async post(req: Request, connection: string): Promise<Response> {
    const peer = CONNECTION_ID.test(connection) ? this.#peers.get(connection) : undefined;
    if (!peer || !peer.open) {
      await req.body?.cancel().catch(() => {});
      return plain(404, "Unknown connection: open a new event stream");
    }
    if (req.method !== "POST") {
      await req.body?.cancel().catch(() => {});
      return plain(405, "Method not allowed", { allow: "POST" });
    }
    const body = await readCapped(req, this.#maxFrameBytes, { timeoutMs: this.#bodyTimeoutMs });
    if (!body.ok) {
      if (body.problem === "timeout") {
        const message =
          `Cannot send message: the frame did not arrive within ${this.#bodyTimeoutMs} ms`;
        return plain(408, message, { connection: "close" });
      }
      if (body.problem === "too_large") {
        this.#hub.violate(peer, 1009, "frame too large");
        return plain(413, `Frame larger than ${this.#maxFrameBytes} bytes`);
      }
      return plain(400, body.problem === "not_utf8" ? "Frame is not UTF-8" : "Frame not read");
    }
    this.#receive(peer, body.text);
    return new Response(null, { status: 202, headers: SECURITY_HEADERS });
  }

  /** Closes every stream with 1001; resolves once all ended, or after `graceMs`. */
  async shutdown(graceMs: number = DEFAULTS.shutdownGraceMs): Promise<void> {
    if (this.#streams.size === 0) return;
    const drained = new Promise<void>((resolve) => this.#drained = resolve);
    for (const peer of [...this.#streams.keys()]) peer.close(1001, "server is shutting down");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([drained, grace]);
    clearTimeout(timer);
    for (const peer of [...this.#streams.keys()]) peer.abort();
  }

  /** The first `join`, from the query; `null` for a bare stream; a 400 when invalid. */
  #joinOf(req: Request): Record<string, unknown> | null | Response {
    const params = new URL(req.url).searchParams;
    if (!params.has("room") && !params.has("name")) return null;
    if (!params.get("name")) return plain(400, "Cannot join room: 'name' is required in the query");
    const join: Record<string, unknown> = { type: "join" };
    for (const field of JOIN_FIELDS) {
      const value = params.get(field);
      if (value !== null) join[field] = value;
    }
    const lastEventId = EVENT_ID.exec(req.headers.get("last-event-id")?.trim() ?? "");
    if (lastEventId?.[2]) join.epoch = lastEventId[2];
    else if (lastEventId) delete join.epoch;
    const since = lastEventId ? lastEventId[1] : params.get("since");
    if (since !== null) {
      if (!DIGITS.test(since)) {
        return plain(400, "Cannot join room: 'since' must be a non-negative integer");
      }
      join.since = Number(since);
    }
    const parsed = parseClientMessage(join);
    if (!parsed.ok) return plain(400, parsed.error.message);
    if (parsed.message.type === "join") join.room = parsed.message.room;
    return join;
  }

  /** One inbound frame, through the same checks as a WebSocket's. */
  #receive(peer: SsePeer, text: string): void {
    if (!peer.open) return;
    this.#hub.stats.framesIn++;
    dispatch(this.#hub, peer, peer.inbound.check(text));
  }

  #startHeartbeat(): void {
    if (this.#heartbeat !== undefined) return;
    this.#heartbeat = setInterval(() => {
      const now = performance.now();
      for (const peer of this.#peers.values()) {
        peer.sendRaw(": ping\n\n");
        peer.checkSlow(now);
      }
    }, this.#heartbeatMs);
  }

  /** The peer is closing: the hub forgets it, and its connection id is void. */
  #closing(peer: SsePeer): void {
    if (this.#peers.get(peer.connection) !== peer) return;
    this.#peers.delete(peer.connection);
    this.#hub.disconnect(peer);
  }

  /** The stream is over: its slot is released. */
  #ended(peer: SsePeer): void {
    this.#closing(peer);
    const release = this.#streams.get(peer);
    if (!release) return;
    this.#streams.delete(peer);
    release();
    this.#log({
      event: "close",
      id: peer.id,
      transport: "sse",
      code: peer.closeCode,
      connections: this.#peers.size,
    });
    if (this.#streams.size === 0) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
      this.#drained?.();
      this.#drained = null;
    }
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}
