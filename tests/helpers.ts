/**
 * Test helpers: a real server on port 0, real WebSocket clients that buffer
 * what they receive, and waits that fail with a clear message instead of
 * hanging.
 *
 * @module
 */

import { KvHistory } from "../src/store/kv_history.ts";
import { KvModeration } from "../src/store/kv_moderation.ts";
import { type ChatOptions, createChat } from "../main.ts";
import type { ServerMessage } from "../src/protocol.ts";

/**
 * How long a helper waits for an event before failing. It bounds a failure, never a
 * speed: a passing test waits only as long as its event takes. CI machines stall now and
 * then (twice a 5 s wait ran out on Deno 2.5 for an event that came in 50 ms here), so
 * it is generous.
 */
export const WAIT_MS = 15_000;

/**
 * Every test client connects from 127.0.0.1, one address: a test whose
 * clients together send more than an address may (`RATE_PER_ADDRESS_BURST`
 * at once, then `RATE_PER_ADDRESS_PER_SECOND`) lifts that budget with these
 * options, as the benchmark does with {@linkcode ONE_ADDRESS_LIFTED_ENV}.
 */
export const ONE_ADDRESS_LIFTED = {
  ratePerAddressBurst: 1_000_000,
  ratePerAddressPerSecond: 1_000_000,
  newRoomsPerAddressPerHour: 0,
} as const;

/** {@linkcode ONE_ADDRESS_LIFTED} as environment variables, for `main.ts` in a process. */
export const ONE_ADDRESS_LIFTED_ENV = {
  RATE_PER_ADDRESS_BURST: "1000000",
  RATE_PER_ADDRESS_PER_SECOND: "1000000",
  NEW_ROOMS_PER_ADDRESS_PER_HOUR: "0",
} as const;

/** A chat server listening on 127.0.0.1 with a fresh in-memory KV. */
export interface TestServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `ws://127.0.0.1:PORT/ws` */
  wsUrl: string;
  port: number;
  close(): Promise<void>;
}

/** Starts the chat on a free port. Options override the test defaults. */
export async function startServer(
  options: Partial<ChatOptions> & { historyLimit?: number; kvPath?: string } = {},
): Promise<TestServer> {
  const kv = await Deno.openKv(options.kvPath ?? ":memory:");
  const chat = createChat({
    history: new KvHistory(kv, { limit: options.historyLimit }),
    moderation: new KvModeration(kv),
    log: () => {},
    ...options,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, chat.fetch);
  const { port } = server.addr;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await chat.shutdown();
    await server.shutdown();
    kv.close();
  };
  return {
    origin: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Resolves with `promise`, or rejects with `what` after `ms`. */
export async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for a condition that callbacks change, such as `bus.state.ok`:
 * pass {@linkcode Changes.notify} as the callback (e.g. `onStateChange`),
 * then await {@linkcode Changes.until}. Nothing polls.
 */
export class Changes {
  #checks = new Set<() => void>();

  /** Checks every awaited condition again; pass it as an event callback. */
  readonly notify = (): void => {
    for (const check of this.#checks) check();
  };

  /**
   * Resolves once `condition()` is true: now, or after a later
   * {@linkcode Changes.notify}. Rejects with `what` after `ms`.
   */
  async until(condition: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    if (condition()) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const check = () => {
      if (condition()) resolve();
    };
    this.#checks.add(check);
    try {
      await within(promise, what, ms);
    } finally {
      this.#checks.delete(check);
    }
  }
}

type Waiter = {
  match: (m: ServerMessage) => boolean;
  resolve: (m: ServerMessage) => void;
  reject: (error: Error) => void;
};

/** A WebSocket client that keeps every message until a test takes it. */
export class TestClient implements AsyncDisposable {
  /** The underlying socket. */
  readonly socket: WebSocket;
  /** Resolves with the close event. */
  readonly closed: Promise<CloseEvent>;
  #inbox: ServerMessage[] = [];
  #waiters = new Set<Waiter>();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) =>
      socket.addEventListener("close", resolve, { once: true })
    );
    this.closed.then((event) => {
      for (const waiter of this.#waiters) {
        waiter.reject(new Error(`The socket closed (${event.code} ${event.reason}) while waiting`));
      }
      this.#waiters.clear();
    });
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      for (const message of Array.isArray(data) ? data : [data]) this.#deliver(message);
    });
  }

  /** Opens a socket to `url`, optionally with extra handshake headers. */
  static async connect(url: string, headers?: HeadersInit): Promise<TestClient> {
    const socket = new WebSocket(url, headers ? { headers } : undefined);
    const client = new TestClient(socket);
    const opened = new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener("error", () => reject(new Error(`Cannot connect to ${url}`)), {
        once: true,
      });
    });
    await within(opened, `the socket to ${url} to open`);
    return client;
  }

  /**
   * Connects and joins `room` as `name`; resolves with the welcome. A refusal
   * fails at once, with the server's error code and message.
   */
  static async join(url: string, room: string, name: string, since?: number, epoch?: string) {
    const client = await TestClient.connect(url);
    client.send({ type: "join", room, name, since, epoch });
    const answer = await client.#take(
      (m) => m.type === "welcome" || m.type === "error",
      "a 'welcome' message",
    );
    if (answer.type !== "welcome") {
      await client.close();
      throw new Error(`The join as ${name} was refused: ${JSON.stringify(answer)}`);
    }
    return { client, welcome: answer };
  }

  /** Sends one JSON frame (or a raw string or bytes). */
  send(data: unknown): void {
    this.socket.send(
      typeof data === "string" || data instanceof Uint8Array ? data : JSON.stringify(data),
    );
  }

  /**
   * Takes the first message of `type` (and matching `where`), waiting for it
   * if needed. Rejects on timeout, or when the socket closes first.
   */
  next<T extends ServerMessage["type"]>(
    type: T,
    where: (m: Extract<ServerMessage, { type: T }>) => boolean = () => true,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    const match = (m: ServerMessage) =>
      m.type === type && where(m as Extract<ServerMessage, { type: T }>);
    return this.#take(match, `a '${type}' message`) as Promise<
      Extract<ServerMessage, { type: T }>
    >;
  }

  /**
   * Takes the first message that `match`es, waiting for it (up to `ms`) if
   * needed. Rejects on timeout, or when the socket closes first.
   */
  take(match: (m: ServerMessage) => boolean, what: string, ms = WAIT_MS): Promise<ServerMessage> {
    return this.#take(match, what, ms);
  }

  /** Takes the first message that `match`es, waiting for it if needed. */
  #take(match: (m: ServerMessage) => boolean, what: string, ms = WAIT_MS): Promise<ServerMessage> {
    const index = this.#inbox.findIndex(match);
    if (index >= 0) return Promise.resolve(this.#inbox.splice(index, 1)[0]);
    let waiter: Waiter;
    const arrived = new Promise<ServerMessage>((resolve, reject) => {
      waiter = { match, resolve, reject };
      if (this.socket.readyState === WebSocket.CLOSED) {
        reject(new Error(`The socket is closed: no ${what} will come`));
      } else {
        this.#waiters.add(waiter);
      }
    });
    return within(arrived, what, ms).finally(() => this.#waiters.delete(waiter));
  }

  /** Every buffered message of `type`, removed from the inbox. */
  drain<T extends ServerMessage["type"]>(type: T): Extract<ServerMessage, { type: T }>[] {
    const taken = this.#inbox.filter((m) => m.type === type);
    this.#inbox = this.#inbox.filter((m) => m.type !== type);
    return taken as Extract<ServerMessage, { type: T }>[];
  }

  /** Resolves with the close event, failing if it does not come. */
  waitClosed(what = "the server to close the socket"): Promise<CloseEvent> {
    return within(this.closed, what);
  }

  /** Closes the socket and waits for the close to finish. */
  async close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) this.socket.close();
    await this.waitClosed("the socket to close");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
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

/** A seeded PRNG (mulberry32): the same seed replays the same run. */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Sends `head` (a request line and headers, without the blank line) with a
 * `Content-Length` of 100 and only the first bytes of that body, never the
 * rest, over a raw connection to 127.0.0.1; resolves with what the server
 * answered (at least the response head). The connection is closed after.
 */
export async function stalledRequest(port: number, head: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`${head}\r\nContent-Length: 100\r\n\r\n{"type":`));
    const reading = (async () => {
      const buffer = new Uint8Array(4096);
      let text = "";
      while (!text.includes("\r\n\r\n")) {
        const read = await conn.read(buffer);
        if (read === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, read));
      }
      return text;
    })();
    return await within(reading, "an answer to a request whose body never ends");
  } finally {
    conn.close();
  }
}
