/**
 * A Redis connection that never crashes the server and reconnects with
 * backoff. {@linkcode connectRedis} is what `RedisBus` and `RedisHistory`
 * use.
 *
 * @module
 */

import { createClient, type RedisClientType } from "redis";
import { CLOSED, OK, type ServiceState as BusState } from "../state.ts";

/** A node-redis client, as {@linkcode connectRedis} creates it. */
export type RedisClient = RedisClientType;

/** Options for {@linkcode connectRedis}. */
export interface RedisConnectionOptions {
  /**
   * First delay before reconnecting, in milliseconds; it doubles after each
   * failed attempt, up to `retryMaxMs` (each delay varies by ±20%).
   * @default {100}
   */
  retryInitialMs?: number;
  /**
   * Longest delay between reconnection attempts, in milliseconds.
   * @default {5000}
   */
  retryMaxMs?: number;
  /**
   * How long the TCP connection, then the handshake, may each take, in
   * milliseconds; also the longest wait for pending replies on close.
   * @default {5000}
   */
  connectTimeoutMs?: number;
  /**
   * While connected, a PING is sent after this many milliseconds of the
   * previous one; a PING unanswered for as long means the server hangs (or
   * the network dropped without a reset): the connection is dropped and
   * retried. `0` disables it.
   * @default {5000}
   */
  healthCheckMs?: number;
  /** Called whenever {@linkcode RedisConnection.state} changes. */
  onStateChange?: (state: BusState) => void;
}

/** Options for {@linkcode RedisConnection.open}. */
export interface RedisConnectionInit extends RedisConnectionOptions {
  /**
   * Runs after every successful (re)connection, before the state turns ok
   * (e.g. to subscribe). When it throws, the connection is dropped and
   * retried.
   */
  onConnect?: (client: RedisClient) => Promise<void>;
}

/**
 * One Redis connection that never crashes the process and never gives up:
 * it reconnects with exponential backoff until closed, and reports
 * {@linkcode RedisConnection.state} meanwhile.
 *
 * Commands sent while disconnected are rejected at once (the offline queue
 * is disabled), so callers see the error instead of waiting.
 */
export class RedisConnection implements AsyncDisposable {
  /** The node-redis client. Use it for commands; do not close it directly. */
  readonly client: RedisClient;
  #init: RedisConnectionInit;
  #retryInitialMs: number;
  #retryMaxMs: number;
  #connectTimeoutMs: number;
  #healthCheckMs: number;
  #state: BusState = { ok: false, reason: "redis: connecting" };
  #failures = 0;
  /** The running connection attempt. */
  #attempt: Promise<void> | undefined;
  /** Whether the current attempt got past the TCP connection. */
  #socketUp = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #healthTimer: ReturnType<typeof setTimeout> | undefined;
  /** The running health check. */
  #healthCheck: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  private constructor(client: RedisClient, init: RedisConnectionInit) {
    this.client = client;
    this.#init = init;
    this.#retryInitialMs = init.retryInitialMs ?? 100;
    this.#retryMaxMs = init.retryMaxMs ?? 5000;
    this.#connectTimeoutMs = init.connectTimeoutMs ?? 5000;
    this.#healthCheckMs = init.healthCheckMs ?? 5000;
    // An 'error' event without a listener would crash the process.
    client.on("error", (error: unknown) => this.#onError(error));
    client.on("connect", () => this.#socketUp = true);
    client.on("end", () => {
      if (!this.#closing && this.#state.ok) {
        this.#setState({ ok: false, reason: "redis: connection closed" });
      }
    });
    this.#connect();
  }

  /**
   * Starts connecting to `url` and returns at once; see
   * {@linkcode connectRedis}, which also waits for the first attempt.
   * Throws only for a malformed `url`.
   */
  static open(url: string, init: RedisConnectionInit = {}): RedisConnection {
    return new RedisConnection(
      createClient({
        url,
        // Commands fail fast while disconnected instead of queueing unboundedly.
        disableOfflineQueue: true,
        socket: {
          connectTimeout: init.connectTimeoutMs ?? 5000,
          // Reconnection is ours, with timers that close() can cancel.
          reconnectStrategy: false,
        },
      }),
      init,
    );
  }

  /** Starts a second connection to the same server (node-redis `duplicate()`). */
  duplicate(init: RedisConnectionInit = {}): RedisConnection {
    return new RedisConnection(this.client.duplicate(), init);
  }

  /** `{ ok: true }` while connected, else `{ ok: false, reason: "redis: …" }`. */
  get state(): BusState {
    return this.#state;
  }

  /**
   * Resolves when the current connection attempt ends, successful or not:
   * at once if none is running.
   */
  async settled(): Promise<void> {
    await this.#attempt;
  }

  /**
   * Stops reconnecting, waits for the replies still due (bounded by the
   * connect timeout), then closes the socket. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as {@linkcode RedisConnection.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #connect(): void {
    this.#retryTimer = undefined;
    if (this.#closing || this.#attempt) return;
    const attempt = this.#tryConnect().finally(() => {
      if (this.#attempt === attempt) this.#attempt = undefined;
    });
    this.#attempt = attempt;
  }

  async #tryConnect(): Promise<void> {
    this.#socketUp = false;
    const connected = (async () => {
      await this.client.connect();
      await this.#init.onConnect?.(this.client);
    })();
    try {
      // node-redis times out the TCP connection; a server that accepts it
      // but never answers the handshake is cut off here.
      while (!await settlesWithin(connected, this.#connectTimeoutMs)) {
        if (this.#socketUp) this.#destroyQuietly();
      }
      await connected;
      if (!this.client.isReady) throw new Error("Socket closed unexpectedly");
      this.#failures = 0;
      if (this.#closing) return;
      this.#setState(OK);
      this.#scheduleHealthCheck();
    } catch (error) {
      this.#destroyQuietly();
      if (!this.#closing) this.#setState({ ok: false, reason: `redis: ${describe(error)}` });
      this.#scheduleRetry();
    }
  }

  #onError(error: unknown): void {
    if (this.#closing) return;
    if (!this.client.isReady) this.#setState({ ok: false, reason: `redis: ${describe(error)}` });
    // Reconnection is left to us: a lost connection ends with isOpen false.
    if (!this.client.isOpen && !this.#attempt) this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closing || this.#retryTimer !== undefined) return;
    const base = Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** this.#failures);
    this.#failures = Math.min(this.#failures + 1, 30);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #scheduleHealthCheck(): void {
    if (this.#closing || this.#healthCheckMs <= 0) return;
    clearTimeout(this.#healthTimer);
    this.#healthTimer = setTimeout(() => {
      this.#healthTimer = undefined;
      this.#healthCheck = this.#checkHealth().finally(() => this.#healthCheck = undefined);
    }, this.#healthCheckMs);
  }

  async #checkHealth(): Promise<void> {
    // Not ready: the connection was lost, and its reconnection restarts the checks.
    if (this.#closing || !this.client.isReady) return;
    const answered = await settlesWithin(this.client.ping(), this.#healthCheckMs);
    if (this.#closing || !this.client.isReady) return;
    if (answered) {
      this.#scheduleHealthCheck();
      return;
    }
    this.#setState({
      ok: false,
      reason: `redis: no reply to PING within ${this.#healthCheckMs} ms`,
    });
    this.#destroyQuietly();
    this.#scheduleRetry();
  }

  #destroyQuietly(): void {
    try {
      if (this.client.isOpen) this.client.destroy();
    } catch { /* already closed */ }
  }

  async #close(): Promise<void> {
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#healthTimer);
    this.#retryTimer = this.#healthTimer = undefined;
    if (this.#attempt) {
      // Cut a handshake short; a TCP connection is bounded by its timeout.
      if (this.#socketUp) this.#destroyQuietly();
      await this.#attempt;
    }
    if (this.client.isReady) {
      // Replies come in order: once PING answers, every earlier command has.
      await settlesWithin(this.client.ping(), this.#connectTimeoutMs);
    }
    this.#destroyQuietly();
    await this.#healthCheck;
    this.#setState(CLOSED);
  }

  #setState(state: BusState): void {
    if (state.ok === this.#state.ok && state.reason === this.#state.reason) return;
    this.#state = state;
    try {
      this.#init.onStateChange?.(state);
    } catch { /* a listener's problem must not break reconnection */ }
  }
}

/**
 * Connects to Redis at `url` (`redis://[[user]:password@]host[:port][/db]`,
 * or `rediss://` for TLS).
 *
 * Never rejects because Redis is unreachable: it waits for the first attempt
 * only, then keeps retrying in the background with exponential backoff
 * (100 ms doubling up to 5 s) while {@linkcode RedisConnection.state} says
 * why it is down. It throws only for a malformed `url`.
 *
 * `RedisHistory` should get a connection of its own
 * (`new RedisHistory((await connectRedis(url)).client)`), not the bus's:
 * history commands then never queue behind fan-out traffic, and the bus and
 * the history close independently.
 *
 * @example Usage
 * ```ts ignore
 * import { connectRedis } from "./connection.ts";
 * await using redis = await connectRedis("redis://127.0.0.1:6379");
 * if (redis.state.ok) await redis.client.set("greeting", "hi");
 * ```
 */
export async function connectRedis(
  url: string,
  options: RedisConnectionOptions = {},
): Promise<RedisConnection> {
  const connection = RedisConnection.open(url, options);
  await connection.settled();
  return connection;
}

/** Whether `promise` settles within `ms`; clears its timer either way. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A one-line description of a connection error. */
function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(describe).join("; ");
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return error.message || (typeof code === "string" ? code : error.name);
  }
  return String(error);
}
