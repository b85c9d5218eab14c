/**
 * The transport under the chat client, with no DOM and no idea of rooms: one
 * WebSocket at a time, reconnects with jittered backoff, and, where
 * WebSockets are blocked, the Server-Sent Events fallback (`sse_socket.js`)
 * with a probe that moves back to a WebSocket once one works again.
 *
 * It hands every server message to `onMessage` (a frame may hold an array of
 * them), says when a socket opened (`onOpen`: time to join) and closed
 * (`onClose`), and reports `connecting` and `reconnecting` to `onStatus`.
 * Whether and when to reconnect after a close is the owner's call
 * ({@linkcode Connection.scheduleReconnect}); the transport for the next
 * attempt is decided here.
 *
 * @module
 */

import { SseSocket } from "./sse_socket.js";

/** Reconnect delays, one per failed attempt in a row; each is jittered to 0.5x–1x. */
export const DEFAULT_BACKOFF_MS = [500, 1000, 2000, 5000, 10000];
/** WebSocket attempts in a row that fail before the client falls back to SSE. */
export const WS_FAILURES_BEFORE_FALLBACK = 2;
/** How often a client on the fallback tries the WebSocket again, by default. */
export const DEFAULT_WS_RETRY_MS = 60_000;
/** A WebSocket closed sooner than this after opening, before a welcome, counts as failed. */
const FLAP_MS = 5000;
/**
 * The first probe after falling back comes this soon: the failures may have
 * been a server restart rather than a network that blocks WebSockets.
 */
const PROBE_SOON_MS = 3000;
/** How long a probe WebSocket must stay open to count as working. */
const PROBE_STABLE_MS = 2000;

/**
 * The messages in one server frame: a JSON object or a JSON array of them.
 * Anything else (bad JSON, non-objects) is dropped.
 *
 * @param {unknown} data The frame's text.
 * @returns {Record<string, unknown>[]}
 */
export function parseFrame(data) {
  if (typeof data !== "string") return [];
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return [];
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.filter((item) => item !== null && typeof item === "object" && !Array.isArray(item));
}

/**
 * A URL, or a function that gives one when a socket opens.
 *
 * @typedef {string | URL | (() => string | URL)} UrlOption
 */

/**
 * Options of {@linkcode Connection}.
 *
 * @typedef {object} ConnectionOptions
 * @property {UrlOption} url The `/ws` URL.
 * @property {UrlOption} [sseUrl] The `/sse` URL: when given, the connection falls back to
 *   Server-Sent Events where WebSockets fail.
 * @property {typeof WebSocket} [WebSocket] The WebSocket constructor; the global one by default.
 * @property {typeof EventSource} [EventSource] The EventSource constructor, for the fallback.
 * @property {number} [wsRetryMs] How often the fallback tries the WebSocket again.
 * @property {number[]} [backoffMs] Reconnect delays; see {@linkcode DEFAULT_BACKOFF_MS}.
 * @property {() => number} [random] Jitter source in [0, 1); `Math.random` by default.
 */

/**
 * What the connection tells its owner.
 *
 * @typedef {object} ConnectionHandlers
 * @property {() => void} onOpen A socket opened: send the joins.
 * @property {(message: Record<string, any>) => void} onMessage One server message.
 * @property {(close: { code: number, reason: string }) => void} onClose The socket closed by
 *   itself (not by {@linkcode Connection.stop} or a reconnect): decide what comes next.
 * @property {() => void} onDrop The socket is gone, for whatever reason: forget what was in
 *   flight on it. Called once per socket.
 * @property {(state: "connecting" | "reconnecting", reason: string, retryAt: number) => void}
 *   onStatus A new attempt starts now, or at `retryAt` (ms since the epoch).
 */

/** One chat connection at a time: a WebSocket, or the SSE fallback. */
export class Connection {
  #url;
  #sseUrl;
  /** @type {typeof WebSocket} */
  #WebSocket;
  /** @type {typeof EventSource | undefined} */
  #EventSource;
  #wsRetryMs;
  #backoffMs;
  #random;
  /** @type {ConnectionHandlers} */
  #on;

  /** @type {"websocket" | "sse"} */
  #transport = "websocket";
  /** @type {WebSocket | null} */
  #socket = null;
  /** Sockets not closed yet, each with a promise of its close. @type {Set<Promise<void>>} */
  #closing = new Set();
  #running = false;
  #attempt = 0;
  #reconnectTimer = 0;
  /** WebSocket attempts in a row that failed. */
  #wsFailures = 0;
  /** When the current socket opened (0: not yet), and whether the server welcomed it. */
  #openedAt = 0;
  #welcomed = false;
  #probeTimer = 0;
  #nextProbeMs = 0;
  /** A WebSocket opened, while on the fallback, to see whether WebSockets work again. */
  #probe = /** @type {WebSocket | null} */ (null);

  /**
   * @param {ConnectionOptions} options
   * @param {ConnectionHandlers} handlers
   */
  constructor(options, handlers) {
    this.#url = options.url;
    this.#sseUrl = options.sseUrl;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#EventSource = options.EventSource;
    this.#wsRetryMs = options.wsRetryMs ?? DEFAULT_WS_RETRY_MS;
    this.#backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.#random = options.random ?? Math.random;
    this.#on = handlers;
  }

  /** The transport in use: `websocket`, or `sse` when WebSockets failed. */
  get transport() {
    return this.#transport;
  }

  /** True while the socket is open. */
  get open() {
    return this.#socket?.readyState === 1;
  }

  /** True while the owner wants to stay connected. */
  get running() {
    return this.#running;
  }

  /** Connects now (closing any socket first), and keeps reconnecting until stopped. */
  start() {
    this.#running = true;
    this.#attempt = 0;
    this.#connect();
  }

  /** Disconnects for good: no reconnect, no probe. */
  stop() {
    this.#running = false;
    this.#stopProbe();
    this.#disconnect();
  }

  /** Connects at once when waiting for a reconnect (the network is back). */
  reconnect() {
    if (this.#running && !this.#socket) {
      this.#attempt = 0;
      this.#connect();
    }
  }

  /**
   * Closes the socket and connects again after `delay` (the next backoff step
   * by default), unless stopped.
   *
   * @param {string} reason Why, for the status line.
   * @param {number} [delay] In ms.
   */
  scheduleReconnect(reason, delay = this.backoff()) {
    this.#disconnect();
    if (!this.#running) return;
    this.#on.onStatus("reconnecting", reason, Date.now() + delay);
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  /** The next reconnect delay (jittered), counting one more failed attempt. */
  backoff() {
    const base = this.#backoffMs[Math.min(this.#attempt, this.#backoffMs.length - 1)] ?? 1000;
    this.#attempt++;
    return base * (0.5 + this.#random() * 0.5);
  }

  /** The server accepted this socket (a welcome came): it works. */
  welcomed() {
    this.#welcomed = true;
    this.#wsFailures = 0;
    this.#attempt = 0;
    if (this.#transport === "sse") this.#scheduleProbe();
  }

  /**
   * Sends one client frame; false when no socket is open.
   *
   * @param {unknown} frame
   */
  send(frame) {
    if (this.#socket?.readyState !== 1) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  /** Stops, and resolves once every socket it opened is closed. */
  async close() {
    this.stop();
    await Promise.all([...this.#closing]);
  }

  #connect() {
    this.#disconnect();
    this.#on.onStatus("connecting", "", 0);
    this.#openedAt = 0;
    this.#welcomed = false;
    /** @type {WebSocket} */
    let socket;
    try {
      if (this.#transport === "sse") {
        socket = /** @type {WebSocket} */ (/** @type {unknown} */ (
          new SseSocket(/** @type {string | URL} */ (resolve(this.#sseUrl)), {
            EventSource: this.#EventSource,
          })
        ));
      } else {
        this.#stopProbe();
        socket = new this.#WebSocket(/** @type {string | URL} */ (resolve(this.#url)));
      }
    } catch (error) {
      this.scheduleReconnect(`cannot connect: ${error}`);
      return;
    }
    this.#socket = socket;
    this.#track(socket);
    socket.addEventListener("open", () => {
      if (socket !== this.#socket) return;
      this.#openedAt = Date.now();
      this.#on.onOpen();
    });
    /**
     * The code and reason the server said it closes with, in its last frame: on Deno 2.5 the
     * close event says 1006 instead (the server sends a second Close frame, denoland/deno#21642).
     * @type {{ code: number, reason: string } | null}
     */
    let notice = null;
    socket.addEventListener("message", (event) => {
      for (const message of parseFrame(event.data)) {
        if (socket !== this.#socket) return;
        if (message.type !== "close") this.#on.onMessage(message);
        else if (Number.isInteger(message.code) && typeof message.reason === "string") {
          notice = { code: /** @type {number} */ (message.code), reason: message.reason };
        }
      }
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.#socket) return;
      const closed = event.code === 1006 && notice ? notice : event;
      this.#judge(closed);
      this.#socket = null;
      this.#on.onDrop();
      this.#on.onClose({ code: closed.code, reason: closed.reason });
    });
  }

  /** Keeps a promise of the socket's close, for {@linkcode Connection.close}. @param {WebSocket} socket */
  #track(socket) {
    /** @type {Promise<void>} */
    const closed = new Promise((resolve) => {
      socket.addEventListener("close", () => resolve(), { once: true });
    });
    this.#closing.add(closed);
    closed.then(() => this.#closing.delete(closed));
  }

  /**
   * Picks the transport of the next attempt after the socket closed. A
   * WebSocket that never opened, or closed soon after opening without a
   * welcome, failed; after {@linkcode WS_FAILURES_BEFORE_FALLBACK} in a row
   * the client falls back to SSE. A fallback stream that never opened either
   * means the server is down rather than WebSockets blocked: the next attempt
   * is a WebSocket again.
   *
   * @param {{ code: number, reason: string }} event
   */
  #judge(event) {
    if (!this.#sseUrl || event.code === 4000 || event.code === 1008) return;
    if (this.#transport === "websocket") {
      const failed = this.#openedAt === 0 ||
        (!this.#welcomed && Date.now() - this.#openedAt < FLAP_MS);
      this.#wsFailures = failed ? this.#wsFailures + 1 : 0;
      if (this.#wsFailures >= WS_FAILURES_BEFORE_FALLBACK) {
        this.#wsFailures = 0;
        this.#transport = "sse"; // after the usual backoff: the server may just be down
        this.#nextProbeMs = Math.min(PROBE_SOON_MS, this.#wsRetryMs);
      }
    } else if (this.#openedAt === 0) {
      this.#transport = "websocket";
    }
  }

  /** On the fallback: tries a WebSocket after `wsRetryMs`, and goes back to it if it works. */
  #scheduleProbe() {
    if (this.#probeTimer || this.#probe) return;
    const delay = this.#nextProbeMs || this.#wsRetryMs;
    this.#nextProbeMs = this.#wsRetryMs;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = 0;
      if (!this.#running || this.#transport !== "sse") return;
      let probe;
      try {
        probe = new this.#WebSocket(/** @type {string | URL} */ (resolve(this.#url)));
      } catch {
        return this.#scheduleProbe();
      }
      this.#probe = probe;
      this.#track(probe);
      let stable = 0;
      probe.addEventListener("open", () => {
        stable = setTimeout(() => {
          if (this.#probe !== probe) return;
          // WebSockets work again: switch back now (the outbox is resent, by cid).
          this.#stopProbe();
          this.#transport = "websocket";
          this.#wsFailures = 0;
          this.#attempt = 0;
          if (this.#running) this.#connect();
        }, PROBE_STABLE_MS);
      });
      probe.addEventListener("close", () => {
        clearTimeout(stable);
        if (this.#probe !== probe) return;
        this.#probe = null;
        if (this.#running && this.#transport === "sse") this.#scheduleProbe();
      });
    }, delay);
  }

  #stopProbe() {
    clearTimeout(this.#probeTimer);
    this.#probeTimer = 0;
    const probe = this.#probe;
    this.#probe = null;
    if (probe && probe.readyState < 2) probe.close(1000, "probe done");
  }

  /** Closes the socket (if any) and the reconnect timer; the connection stays `running`. */
  #disconnect() {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = 0;
    const socket = this.#socket;
    this.#socket = null;
    if (!socket) return;
    this.#on.onDrop();
    if (socket.readyState < 2) socket.close(1000, "leaving");
  }
}

/** @param {UrlOption | undefined} url */
function resolve(url) {
  return typeof url === "function" ? url() : url;
}
