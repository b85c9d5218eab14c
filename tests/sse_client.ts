/**
 * A test client for the SSE transport (`/sse`): reads the event stream with
 * `fetch`, keeps every server message until a test takes it (as
 * `TestClient` does for WebSockets), and posts frames to `/sse/<id>`.
 *
 * @module
 */

import type { ServerMessage } from "../src/protocol.ts";
import { within } from "./helpers.ts";

/** One parsed server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

type Waiter = {
  match: (m: ServerMessage) => boolean;
  resolve: (m: ServerMessage) => void;
  reject: (error: Error) => void;
};

/** Splits a stream of SSE text into events (`\n` line ends, as the server writes). */
export class SseParser {
  #rest = "";
  #event: Partial<SseEvent> & { data?: string } = {};
  /** Comment lines seen (heartbeats). */
  comments = 0;
  /** Called for each comment line. */
  onComment: () => void = () => {};

  /** Feeds text; returns the events it completed. */
  push(text: string): SseEvent[] {
    const lines = (this.#rest + text).split("\n");
    this.#rest = lines.pop()!;
    const done: SseEvent[] = [];
    for (const line of lines) {
      if (line === "") {
        if (this.#event.data !== undefined) {
          done.push({
            event: this.#event.event ?? "message",
            data: this.#event.data,
            id: this.#event.id,
          });
        }
        this.#event = {};
        continue;
      }
      if (line.startsWith(":")) {
        this.comments++;
        this.onComment();
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") {
        this.#event.data = this.#event.data === undefined ? value : `${this.#event.data}\n${value}`;
      } else if (field === "event") this.#event.event = value;
      else if (field === "id") this.#event.id = value;
    }
    return done;
  }
}

/** An open event stream with its connection id. */
export class SseClient implements AsyncDisposable {
  /** The id that `POST /sse/<id>` names. */
  connection = "";
  /** The `id:` of the last event that had one, as a browser keeps it. */
  lastEventId = "";
  /** Every event, in order. */
  readonly events: SseEvent[] = [];
  /** Resolves with the `close` event's code and reason, or `null` if the stream just ended. */
  readonly closed: Promise<{ code: number; reason: string } | null>;
  readonly parser = new SseParser();
  #origin: string;
  #abort = new AbortController();
  /** Its own connection, never pooled: the stream's connection ends with the client. */
  #http = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  #inbox: ServerMessage[] = [];
  #waiters = new Set<Waiter>();
  #reading: Promise<void> = Promise.resolve();
  #body: ReadableStream<Uint8Array> | null = null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #ready = Promise.withResolvers<void>();
  #closed = Promise.withResolvers<{ code: number; reason: string } | null>();
  #ended = false;

  private constructor(origin: string) {
    this.#origin = origin;
    this.closed = this.#closed.promise;
  }

  /** Resolves once `count` comment lines (heartbeats) have come. */
  comments(count: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const check = () => {
      if (this.parser.comments >= count) resolve();
    };
    this.parser.onComment = check;
    check();
    return within(promise, `${count} comment lines`);
  }

  /**
   * Opens `/sse` with `query`; resolves once the `ready` event came (or, with
   * `read: false`, once the response headers came: the stream is then left
   * unread until {@linkcode SseClient.read}).
   */
  static async open(
    origin: string,
    query: Record<string, string | number | undefined> = {},
    options: { headers?: HeadersInit; read?: boolean } = {},
  ): Promise<SseClient> {
    const client = new SseClient(origin);
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    let response: Response;
    try {
      response = await fetch(`${origin}/sse?${params}`, {
        headers: { accept: "text/event-stream", ...options.headers },
        signal: client.#abort.signal,
        client: client.#http,
      });
    } catch (error) {
      client.#http.close();
      throw error;
    }
    if (response.status !== 200) {
      const text = await response.text();
      client.#http.close();
      throw new Error(`GET /sse answered ${response.status}: ${text}`);
    }
    client.#body = response.body!;
    if (options.read === false) return client;
    client.read();
    await within(client.#ready.promise, "the 'ready' event");
    return client;
  }

  /** Opens a stream that joins `room` as `name` at once; resolves with the welcome. */
  static async join(
    origin: string,
    room: string,
    name: string,
    extra: Record<string, string | number | undefined> = {},
    headers?: HeadersInit,
  ) {
    const client = await SseClient.open(origin, { room, name, ...extra }, { headers });
    const welcome = await client.next("welcome");
    return { client, welcome };
  }

  /** Starts reading the stream (once). */
  read(): Promise<void> {
    if (!this.#body) return this.#reading;
    const reader = this.#body.getReader();
    this.#body = null;
    this.#reader = reader;
    this.#reading = (async () => {
      const decoder = new TextDecoder();
      try {
        while (true) {
          const { done, value } = await reader.read();
          // A fetch aborted while chunks are buffered may go on yielding them.
          if (done || this.#abort.signal.aborted) break;
          for (const event of this.parser.push(decoder.decode(value, { stream: true }))) {
            this.#event(event);
          }
        }
      } catch { /* aborted or reset */ }
      await reader.cancel().catch(() => {});
      this.#end(null);
    })();
    return this.#reading;
  }

  /** POSTs one frame (an object as JSON, or a raw string) to this stream's connection. */
  async post(frame: unknown, connection = this.connection): Promise<number> {
    const response = await fetch(`${this.#origin}/sse/${connection}`, {
      method: "POST",
      body: typeof frame === "string" ? frame : JSON.stringify(frame),
    });
    await response.body?.cancel();
    return response.status;
  }

  /**
   * Takes the first message of `type` (and matching `where`), waiting for it
   * if needed. Rejects on timeout, or when the stream ends first.
   */
  next<T extends ServerMessage["type"]>(
    type: T,
    where: (m: Extract<ServerMessage, { type: T }>) => boolean = () => true,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    const match = (m: ServerMessage) =>
      m.type === type && where(m as Extract<ServerMessage, { type: T }>);
    const index = this.#inbox.findIndex(match);
    if (index >= 0) {
      return Promise.resolve(
        this.#inbox.splice(index, 1)[0] as Extract<ServerMessage, { type: T }>,
      );
    }
    let waiter: Waiter;
    const arrived = new Promise<ServerMessage>((resolve, reject) => {
      waiter = { match, resolve, reject };
      if (this.#ended) reject(new Error(`The stream has ended: no '${type}' will come`));
      else this.#waiters.add(waiter);
    });
    return within(arrived, `a '${type}' event`).finally(() =>
      this.#waiters.delete(waiter)
    ) as Promise<
      Extract<ServerMessage, { type: T }>
    >;
  }

  /** Every buffered message of `type`, removed from the inbox. */
  drain<T extends ServerMessage["type"]>(type: T): Extract<ServerMessage, { type: T }>[] {
    const taken = this.#inbox.filter((m) => m.type === type);
    this.#inbox = this.#inbox.filter((m) => m.type !== type);
    return taken as Extract<ServerMessage, { type: T }>[];
  }

  /** Resolves with the close event, failing if it does not come. */
  waitClosed(what = "the server to close the stream") {
    return within(this.closed, what);
  }

  /** Drops the connection (as a closed tab does) and waits for the reader to stop. */
  async close(): Promise<void> {
    this.#abort.abort();
    if (this.#body) await this.#body.cancel().catch(() => {});
    // Ends a read that waits for data: an aborted fetch may not.
    await this.#reader?.cancel().catch(() => {});
    this.#body = null;
    await this.#reading;
    this.#end(null);
    this.#http.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #event(event: SseEvent): void {
    this.events.push(event);
    if (event.id !== undefined) this.lastEventId = event.id;
    if (event.event === "ready") {
      this.connection = JSON.parse(event.data).connection;
      this.#ready.resolve();
    } else if (event.event === "close") {
      this.#end(JSON.parse(event.data));
    } else if (event.event === "message") {
      this.#deliver(JSON.parse(event.data));
    }
  }

  #end(close: { code: number; reason: string } | null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closed.resolve(close);
    this.#ready.reject(new Error("The stream ended before 'ready'"));
    this.#ready.promise.catch(() => {});
    for (const waiter of this.#waiters) {
      waiter.reject(new Error(`The stream ended (${JSON.stringify(close)}) while waiting`));
    }
    this.#waiters.clear();
  }

  #deliver(message: ServerMessage): void {
    for (const waiter of this.#waiters) {
      if (waiter.match(message)) {
        this.#waiters.delete(waiter);
        waiter.resolve(message);
        return;
      }
    }
    this.#inbox.push(message);
  }
}
