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
import type { Peer } from "../hub/peer.ts";
import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import { BatchedSender } from "./batch.ts";
import { Inbound, type InboundOptions } from "./inbound.ts";

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

/** A WebSocket as the hub sees it. */
class WebSocketPeer implements Peer {
  readonly id: string = crypto.randomUUID().slice(0, 8);
  readonly socket: WebSocket;
  readonly inbound: Inbound;
  #sender: BatchedSender;
  #closing = false;

  constructor(socket: WebSocket, sender: BatchedSender, inbound: Inbound) {
    this.socket = socket;
    this.#sender = sender;
    this.inbound = inbound;
  }

  get open(): boolean {
    return !this.#closing && this.socket.readyState === WebSocket.OPEN;
  }

  send(frame: string): void {
    if (!this.#closing) this.#sender.send([this.socket], frame);
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#sender.flush(); // What was queued for it (such as the error saying why) goes first.
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
  #sender: BatchedSender;
  #peers = new Map<WebSocket, WebSocketPeer>();

  /** Creates the transport; see {@linkcode WebSocketTransportOptions}. */
  constructor(options: WebSocketTransportOptions) {
    this.#hub = options.hub;
    this.#log = options.log ?? (() => {});
    this.#inbound = options;
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
   * when it closes (to release its connection slot).
   */
  attach(socket: WebSocket, ip: string, onClose: () => void = () => {}): void {
    const peer = new WebSocketPeer(socket, this.#sender, new Inbound(this.#inbound));
    socket.onopen = () => {
      this.#peers.set(socket, peer);
      this.#hub.connect(peer);
      this.#log({ event: "open", id: peer.id, ip, connections: this.#peers.size });
    };
    socket.onmessage = (event) => this.#receive(peer, event.data);
    socket.onclose = (event) => {
      onClose();
      this.#peers.delete(socket);
      this.#sender.forget(socket);
      this.#hub.disconnect(peer);
      this.#log({ event: "close", id: peer.id, code: event.code, connections: this.#peers.size });
    };
    socket.onerror = () => {}; // A close event always follows.
  }

  /** Closes every socket with 1001; resolves once all closed, or after `graceMs`. */
  async shutdown(graceMs: number = DEFAULTS.shutdownGraceMs): Promise<void> {
    this.#sender.flush();
    const closed = [...this.#peers.keys()].map((socket) =>
      new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.addEventListener("close", () => resolve(), { once: true });
        socket.close(1001, "server is shutting down");
      })
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([Promise.all(closed), grace]);
    clearTimeout(timer);
  }

  #receive(peer: WebSocketPeer, data: unknown): void {
    if (!peer.open) return;
    this.#hub.stats.framesIn++;
    const verdict = peer.inbound.check(data);
    switch (verdict.kind) {
      case "message":
        return this.#hub.receive(peer, verdict.message);
      case "error":
        return this.#hub.reject(peer, verdict.error);
      case "close":
        return this.#hub.violate(peer, verdict.code, verdict.reason);
    }
  }
}
