/**
 * Helpers for the page's client tests (`client_test.ts`, `client_rooms_test.ts`,
 * …): awaiting a client's events, sockets the test can tap, cut or script, and
 * the scripted server's cast: ada (the client) and bob, their frames, and a
 * client of the scripted server.
 *
 * @module
 */
import { ChatClient, memoryStorage } from "../static/chat_client.js";
import type { KeyValueStorage } from "../static/session.js";
import { within } from "./helpers.ts";

// deno-lint-ignore no-explicit-any
export type Detail = any;

/** Resolves with the `detail` of the next `type` event matching `where`. */
export function next(
  client: EventTarget,
  type: string,
  where: (detail: Detail) => boolean = () => true,
): Promise<Detail> {
  const { promise, resolve } = Promise.withResolvers<Detail>();
  const listener = (event: Event) => {
    const detail = (event as CustomEvent).detail;
    if (!where(detail)) return;
    client.removeEventListener(type, listener);
    resolve(detail);
  };
  client.addEventListener(type, listener);
  return within(promise, `a '${type}' event`).finally(() =>
    client.removeEventListener(type, listener)
  );
}

/** Every message event's `[id, name, text]`, in the order they come. */
export function record(client: EventTarget): [number, string, string][] {
  const seen: [number, string, string][] = [];
  client.addEventListener("message", (event) => {
    const { message } = (event as CustomEvent).detail;
    seen.push([message.id, message.name, message.text]);
  });
  return seen;
}

/**
 * A real WebSocket whose sent frames the test can read, and whose link the
 * test can cut: after `cut()` nothing more is received and the socket closes,
 * as when a network drops.
 */
export class TappedSocket extends WebSocket {
  static all: TappedSocket[] = [];
  /** Cut the link right after sending a frame this returns true for. */
  static cutAfter: ((frame: Detail) => boolean) | null = null;
  sent: Detail[] = [];
  #cut = false;

  constructor(url: string | URL) {
    super(url);
    TappedSocket.all.push(this);
  }

  // deno-lint-ignore no-explicit-any
  override addEventListener(type: string, listener: any, options?: any): void {
    if (type !== "message") return super.addEventListener(type, listener, options);
    super.addEventListener(type, (event: Event) => {
      if (!this.#cut) listener(event);
    }, options);
  }

  override send(data: string): void {
    super.send(data);
    const frame = JSON.parse(data);
    this.sent.push(frame);
    if (TappedSocket.cutAfter?.(frame)) {
      TappedSocket.cutAfter = null;
      this.cut();
    }
  }

  /** Drops the link: nothing more is received, and the socket closes. */
  cut(): void {
    this.#cut = true;
    this.close();
  }

  static reset(): void {
    TappedSocket.all = [];
    TappedSocket.cutAfter = null;
  }
}

/** A scripted server socket: the test plays the server. */
export class ScriptedSocket extends EventTarget {
  static all: ScriptedSocket[] = [];
  static readonly OPEN = 1;
  readyState = 0;
  sent: Detail[] = [];

  constructor(readonly url: string) {
    super();
    ScriptedSocket.all.push(this);
  }

  send(data: string): void {
    const frame = JSON.parse(data);
    this.sent.push(frame);
    this.dispatchEvent(new CustomEvent("sent", { detail: frame }));
  }

  /** Resolves with the next frame the client sends that matches `where`. */
  nextSent(where: (frame: Detail) => boolean, what = "a frame"): Promise<Detail> {
    const { promise, resolve } = Promise.withResolvers<Detail>();
    const listener = (event: Event) => {
      const frame = (event as CustomEvent).detail;
      if (where(frame)) resolve(frame);
    };
    this.addEventListener("sent", listener);
    return within(promise, `the client to send ${what}`).finally(() =>
      this.removeEventListener("sent", listener)
    );
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.dispatchEvent(new CloseEvent("close", { code, reason }));
  }

  open(): void {
    this.readyState = 1;
    this.dispatchEvent(new Event("open"));
  }

  /** Delivers server messages in one frame (an array when several). */
  receive(...messages: unknown[]): void {
    const data = JSON.stringify(messages.length === 1 ? messages[0] : messages);
    this.dispatchEvent(new MessageEvent("message", { data }));
  }
}

/** The scripted server's users: ada is the client under test, bob someone else. */
export const ADA = { id: "u1", name: "ada" };
/** See {@linkcode ADA}. */
export const BOB = { id: "u2", name: "bob" };

/** A message of `room` from `who`, as the server sends it. */
export function roomMessage(room: string, id: number, who = BOB, text = `${room}${id}`) {
  return {
    type: "message",
    id,
    room,
    userId: who.id,
    name: who.name,
    text,
    ts: 0,
    cid: `c${room}${id}`,
  };
}

/** A welcome to `room` for ada, with bob there too and nothing read yet. */
export function welcomeAda(
  room: string,
  history: unknown[] = [],
  extra: Record<string, unknown> = {},
) {
  return {
    type: "welcome",
    id: ADA.id,
    token: "t1",
    room,
    name: ADA.name,
    members: [ADA, BOB],
    history,
    epoch: "e1",
    readId: 0,
    ...extra,
  };
}

/**
 * A client of the scripted server, as ada, in `rooms` (the first in view);
 * it reconnects only when the test says so (its backoff is a minute).
 */
export function scriptedClient(
  rooms: string[] = ["lobby"],
  options: { storage?: KeyValueStorage; rateLimitMs?: number } = {},
): ChatClient {
  ScriptedSocket.all = [];
  return new ChatClient({
    url: "ws://scripted/ws",
    room: rooms[0],
    rooms: rooms.slice(1),
    name: ADA.name,
    storage: options.storage ?? memoryStorage(),
    WebSocket: ScriptedSocket as unknown as typeof WebSocket,
    backoffMs: [60_000],
    ...(options.rateLimitMs === undefined ? {} : { rateLimitMs: options.rateLimitMs }),
  });
}
