/**
 * The fallback transport, shaped like a `WebSocket` so that the chat client
 * uses it unchanged: Server-Sent Events down (`GET /sse`, an `EventSource`),
 * `POST /sse/<connection>` up, one frame per request, in order. See
 * `src/transport/sse.ts` for the server side.
 *
 * It emits `open` (once the server's `ready` event names the connection),
 * `message` (`data` is one server message as JSON text), `error`, and
 * `close` (`code` and `reason` from the server's `close` event, or 1006 when
 * the stream or a `POST` fails). The `EventSource`'s own reconnecting is
 * turned off: the chat client reconnects itself, with `since` and its
 * session token.
 *
 * @example Usage
 * ```js
 * import { SseSocket } from "./sse_socket.js";
 * const socket = new SseSocket("http://localhost:8000/sse");
 * socket.addEventListener("open", () => {
 *   socket.send(JSON.stringify({ type: "join", room: "lobby", name: "ada" }));
 * });
 * socket.addEventListener("message", (event) => console.log(event.data));
 * ```
 *
 * @module
 */

/**
 * A `WebSocket`-like connection over an event stream and `POST`s.
 */
export class SseSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /** 0 connecting, 1 open, 2 closing, 3 closed, as `WebSocket.readyState`. */
  readyState = 0;
  /** Always 0: frames are queued in `POST`s, not in a send buffer. */
  bufferedAmount = 0;
  /** The URL of the event stream. */
  url = "";
  /** @type {EventSource} */
  #source;
  #postUrl = "";
  /** Frames waiting for their `POST`, in order. @type {string[]} */
  #outbox = [];
  #posting = false;
  /** @type {typeof fetch} */
  #fetch;

  /**
   * @param {string | URL} url The `/sse` URL.
   * @param {{ EventSource?: typeof EventSource, fetch?: typeof fetch }} [options]
   *   Replacements for the globals, for tests.
   */
  constructor(url, options = {}) {
    super();
    this.url = String(url);
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const Source = options.EventSource ?? globalThis.EventSource;
    this.#source = new Source(this.url);
    this.#source.addEventListener("ready", (event) => {
      if (this.readyState !== 0) return;
      const { post } = JSON.parse(/** @type {MessageEvent} */ (event).data);
      this.#postUrl = new URL(post, this.url).href;
      this.readyState = 1;
      this.dispatchEvent(new Event("open"));
      this.#pump();
    });
    this.#source.addEventListener("message", (event) => {
      if (this.readyState !== 1) return;
      this.dispatchEvent(new MessageEvent("message", { data: event.data }));
    });
    this.#source.addEventListener("close", (event) => {
      let code = 1006, reason = "";
      try {
        ({ code, reason } = JSON.parse(/** @type {MessageEvent} */ (event).data));
      } catch { /* keep 1006 */ }
      this.#finish(code, reason, true);
    });
    this.#source.addEventListener("error", () => {
      // A failed or dropped stream: no automatic retry, the chat client decides.
      if (this.readyState >= 2) return;
      this.dispatchEvent(new Event("error"));
      this.#finish(1006, "", false);
    });
  }

  /**
   * Queues one frame; frames are posted one at a time, in order.
   *
   * @param {string} data
   */
  send(data) {
    if (this.readyState === 0) throw new DOMException("Still connecting", "InvalidStateError");
    if (this.readyState !== 1) return;
    this.#outbox.push(String(data));
    this.#pump();
  }

  /**
   * Closes the stream; a `close` event follows with `code` and `reason`.
   *
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "") {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.#source.close();
    queueMicrotask(() => this.#finish(code, reason, true));
  }

  async #pump() {
    if (this.#posting) return;
    this.#posting = true;
    try {
      while (this.readyState === 1 && this.#outbox.length > 0) {
        const body = this.#outbox[0];
        let status = 0;
        try {
          const response = await this.#fetch(this.#postUrl, {
            method: "POST",
            body,
            headers: { "content-type": "text/plain;charset=UTF-8" },
          });
          status = response.status;
          await response.body?.cancel();
        } catch { /* network failure: status 0 */ }
        this.#outbox.shift();
        // 413: the server closes the stream with 1009, which comes as an event.
        if (status === 413) continue;
        if (status < 200 || status >= 300) {
          this.#finish(1006, status ? `HTTP ${status}` : "", false);
        }
      }
    } finally {
      this.#posting = false;
    }
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} wasClean
   */
  #finish(code, reason, wasClean) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.#source.close();
    this.#outbox = [];
    this.dispatchEvent(new CloseEvent("close", { code, reason, wasClean }));
  }
}
