/**
 * The WebSocket transport: adapts each upgraded Deno `WebSocket` to a
 * {@linkcode Peer} for the hub. Inbound frames go through the size and rate
 * checks of `inbound.ts`; outbound frames go through one
 * {@linkcode BatchedSender}, which batches them and closes slow readers with
 * 1013.
 *
 * @module
 */

import type { Hub } from "../hub/hub.ts";
import { encode, type Peer, type SignedInAs } from "../hub/peer.ts";
import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import { addressKey } from "../http/admission.ts";
import { AddressBudgets } from "./address_budget.ts";
import { BatchedSender } from "./batch.ts";
import { dispatch, Inbound, type InboundOptions } from "./inbound.ts";

/** Options for {@linkcode WebSocketTransport}. */
export interface WebSocketTransportOptions extends InboundOptions {
  /** The hub that peers talk to. */
  hub: Hub;
  /**
   * Where connection events go.
   * @default {() => {}}
   */
  log?: Logger;
  /**
   * Unsent bytes a socket may hold for `slowGraceMs` (or 4× at once) before
   * it is closed with 1013 "too slow".
   * @default {DEFAULTS.maxBufferedBytes}
   */
  maxBufferedBytes?: number;
  /**
   * How long a socket may stay over `maxBufferedBytes`, in milliseconds.
   * @default {DEFAULTS.slowGraceMs}
   */
  slowGraceMs?: number;
}

/** How long a socket must have sent nothing before shutdown closes it, in ms. */
export const QUIET_MS = 100;
/**
 * A timer this late (in ms) means this process stalled, and a frame from any socket this
 * recent that it is still reading a backlog: a socket's quiet is not trusted then.
 */
const LATE_MS = 20;

/**
 * Why `req` is not a WebSocket upgrade Deno can accept (answered with 400),
 * or `null`: `Deno.upgradeWebSocket` throws on these, which would be a 500.
 */
export function upgradeProblem(req: Request): string | null {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return "Expected a WebSocket upgrade request";
  }
  if (!req.headers.get("sec-websocket-key")) return "Missing Sec-WebSocket-Key";
  if (req.headers.get("sec-websocket-version") !== "13") return "Unsupported Sec-WebSocket-Version";
  return null;
}

/** A WebSocket as the hub sees it. */
class WebSocketPeer implements Peer {
  readonly id: string = crypto.randomUUID().slice(0, 8);
  readonly address: string;
  readonly socket: WebSocket;
  readonly inbound: Inbound;
  #sender: BatchedSender;
  #closing = false;
  /** When its last frame arrived (`performance.now()`). */
  lastFrameAt = -Infinity;

  readonly signedIn: SignedInAs | undefined;

  constructor(
    socket: WebSocket,
    sender: BatchedSender,
    inbound: Inbound,
    address: string,
    signedIn?: SignedInAs,
  ) {
    this.socket = socket;
    this.address = address;
    this.signedIn = signedIn;
    this.#sender = sender;
    this.inbound = inbound;
  }

  get open(): boolean {
    return !this.#closing && this.socket.readyState === WebSocket.OPEN;
  }

  send(frame: string): void {
    if (!this.#closing) this.#sender.sendOne(this.socket, frame);
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#sender.flush(); // What was queued for it (such as the error saying why) goes first.
    // The code and reason as a last frame too: Deno 2.5 (Deno Deploy) answers the client's Close
    // with a second Close, which Chromium reports as 1006 (denoland/deno#21642; 2.9 sends one).
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(encode({ type: "close", code, reason }));
    }
    this.socket.close(code, reason);
  }
}

/**
 * Upgraded WebSockets, each a peer of the hub.
 *
 * @example Usage
 * ```ts ignore
 * import { WebSocketTransport } from "./websocket.ts";
 * const websockets = new WebSocketTransport({ hub });
 * Deno.serve((req) => {
 *   const { socket, response } = Deno.upgradeWebSocket(req);
 *   websockets.attach(socket);
 *   return response;
 * });
 * ```
 */
export class WebSocketTransport {
  #hub: Hub;
  #log: Logger;
  #inbound: InboundOptions;
  #addresses: AddressBudgets;
  #sender: BatchedSender;
  #peers = new Map<WebSocket, WebSocketPeer>();
  #draining = false;
  #lastFrameAt = -Infinity;

  /** Creates the transport; see {@linkcode WebSocketTransportOptions}. */
  constructor(options: WebSocketTransportOptions) {
    this.#hub = options.hub;
    this.#log = options.log ?? (() => {});
    this.#inbound = options;
    this.#addresses = options.addressBudgets ?? new AddressBudgets(options);
    this.#sender = new BatchedSender({
      maxBufferedBytes: options.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
      slowGraceMs: options.slowGraceMs ?? DEFAULTS.slowGraceMs,
      onSlow: (socket) => {
        const peer = this.#peers.get(socket);
        if (peer) this.#hub.violate(peer, 1013, "too slow");
      },
    });
  }

  /** Open sockets. */
  get connections(): number {
    return this.#peers.size;
  }

  /** Frames written, events carried and frames that carried several events. */
  get stats(): BatchedSender["stats"] {
    return this.#sender.stats;
  }

  /**
   * Makes a freshly upgraded socket a peer of the hub. `onClose` runs once
   * when it closes (to release its connection slot); `onOversized` when it
   * sent a frame over the size limit (to refuse its address for a while).
   * `signedIn` is the account its request's cookie signed in to, if any.
   */
  attach(
    socket: WebSocket,
    ip: string,
    onClose: () => void = () => {},
    onOversized: () => void = () => {},
    signedIn?: SignedInAs,
  ): void {
    const inbound = new Inbound(this.#inbound, this.#addresses.of(ip));
    const peer = new WebSocketPeer(socket, this.#sender, inbound, addressKey(ip), signedIn);
    socket.onopen = () => {
      this.#peers.set(socket, peer);
      this.#hub.connect(peer);
      this.#log({ event: "open", id: peer.id, ip, connections: this.#peers.size });
    };
    socket.onmessage = (event) => this.#receive(peer, event.data, onOversized);
    socket.onclose = (event) => {
      onClose();
      this.#peers.delete(socket);
      this.#sender.forget(socket);
      this.#hub.disconnect(peer);
      this.#log({ event: "close", id: peer.id, code: event.code, connections: this.#peers.size });
    };
    socket.onerror = () => {}; // A close event always follows.
  }

  /**
   * Closes every socket with 1001; resolves once all closed, or after
   * `graceMs`. Frames that arrive meanwhile are ignored, and each socket is
   * closed once it has been quiet for {@linkcode QUIET_MS} (or half the
   * grace has passed): Deno's server WebSocket drops the connection, without
   * waiting for the client's Close, when a data frame arrives after its own
   * Close (denoland/deno#24301), so a client with frames in flight would see
   * an abnormal close instead of 1001.
   */
  async shutdown(graceMs: number = DEFAULTS.shutdownGraceMs): Promise<void> {
    this.#draining = true;
    this.#sender.flush();
    const started = performance.now();
    const timers = new Set<ReturnType<typeof setTimeout>>();
    const closed = [...this.#peers.values()].map((peer) =>
      new Promise<void>((resolve) => {
        if (peer.socket.readyState === WebSocket.CLOSED) return resolve();
        peer.socket.addEventListener("close", () => resolve(), { once: true });
        // Quiet is only trusted when this process is not behind: checked from a timer that was on
        // time (no stall) while no socket has sent for a while (no backlog of unread frames).
        const check = (due: number) => {
          const now = performance.now();
          const quiet = now - peer.lastFrameAt;
          const settled = now - due < LATE_MS && now - this.#lastFrameAt >= LATE_MS;
          if ((quiet >= QUIET_MS && settled) || now - started >= graceMs / 2) {
            return peer.close(1001, "server is shutting down");
          }
          later(Math.max(QUIET_MS - quiet, LATE_MS / 2));
        };
        const later = (wait: number) => {
          const due = performance.now() + wait;
          timers.add(setTimeout(() => check(due), wait));
        };
        later(Math.max(QUIET_MS - (started - peer.lastFrameAt), LATE_MS / 2));
      })
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([Promise.all(closed), grace]);
    clearTimeout(timer);
    for (const quietTimer of timers) clearTimeout(quietTimer);
  }

  #receive(peer: WebSocketPeer, data: unknown, onOversized: () => void): void {
    peer.lastFrameAt = this.#lastFrameAt = performance.now();
    if (this.#draining || !peer.open) return;
    this.#hub.stats.framesIn++;
    const verdict = peer.inbound.check(data);
    if (verdict.kind === "close" && verdict.code === 1009) onOversized();
    dispatch(this.#hub, peer, verdict);
  }
}
