/**
 * The seam between the hub and the transports: a {@linkcode Peer} is
 * anything that can be sent server messages and be closed. The hub never
 * sees a socket; `transport/websocket.ts` adapts a Deno `WebSocket` to this
 * interface, and another transport is one more adapter.
 *
 * @module
 */

import type { ServerMessage } from "../protocol.ts";

/**
 * One connected client, as the hub sees it.
 *
 * @example A peer that collects what it is sent (as the hub's unit tests use)
 * ```ts
 * import type { Peer } from "./peer.ts";
 * const sent: string[] = [];
 * const peer: Peer = {
 *   id: "p1",
 *   open: true,
 *   send(frame) { sent.push(frame); },
 *   close(code, reason) { console.log(code, reason); },
 * };
 * peer.send(JSON.stringify({ type: "typing", member: { id: "u1", name: "ada" } }));
 * ```
 */
export interface Peer {
  /** A short connection id, for logs. */
  readonly id: string;
  /**
   * The remote address's key (`addressKey`: an IPv4 address, or an IPv6
   * /64), for budgets per address; absent for peers without one (tests).
   */
  readonly address?: string;
  /** `false` once the connection is closing or closed: sends are dropped then. */
  readonly open: boolean;
  /**
   * The account the connection was opened signed in to (the page's
   * `chat_session` cookie), as the transport found it; absent for a guest.
   */
  readonly signedIn?: SignedInAs;
  /**
   * Queues one JSON-encoded {@linkcode ServerMessage} (see {@linkcode encode}).
   * Never throws and never blocks: a peer that cannot keep up is closed by
   * its transport (1013), which then tells the hub it left. `event` names
   * the room and the newest message id the frame brings (a `message`, or a
   * `welcome`'s history), for transports that number their events (SSE's
   * `id:` line) without reading the frame again.
   */
  send(frame: string, event?: SentEvent): void;
  /**
   * Closes the connection with a WebSocket close code and reason, after what
   * was queued for it. The transport tells the hub when it is gone.
   */
  close(code: number, reason: string): void;
}

/** An account a connection is signed in to: its cookie session, the account's id and name. */
export interface SignedInAs {
  /** The cookie session's id (never its secret): signing out closes its connections. */
  sessionId: string;
  accountId: string;
  /** The account's name when the connection opened. */
  name: string;
}

/** What a frame brings, for a transport that numbers events: a room's message id. */
export interface SentEvent {
  room: string;
  id: number;
  /** The store's epoch, on a `welcome`: the ids' store. */
  epoch?: string;
}

/** Encodes a server message once, for any number of peers. */
export function encode(message: ServerMessage): string {
  return JSON.stringify(message);
}
