/**
 * Batched sending with backpressure. Frames for a socket are queued and
 * written together: as a JSON array when there are several, as the single
 * frame when there is one. An idle server flushes at the end of the current
 * task, so nothing waits; a busy one flushes at most once per `windowMs`, so
 * many events share one frame (and one syscall).
 *
 * A socket whose unsent data stays above `maxBufferedBytes` for `slowGraceMs`
 * (or grows past four times it) is handed to `onSlow` instead of growing.
 *
 * @module
 */

/** Options for {@linkcode BatchedSender}. */
export interface BatchedSenderOptions {
  /**
   * Called once for a socket that cannot keep up; it should close it.
   */
  onSlow: (socket: WebSocket) => void;
  /**
   * Shortest time between two flushes while busy, in milliseconds.
   * @default {2}
   */
  windowMs?: number;
  /**
   * Unsent bytes a socket may hold before it counts as slow.
   * @default {1048576}
   */
  maxBufferedBytes?: number;
  /**
   * How long a socket may stay above `maxBufferedBytes`, in milliseconds.
   * @default {1000}
   */
  slowGraceMs?: number;
  /**
   * Clock in milliseconds, replaceable in tests.
   * @default {performance.now}
   */
  now?: () => number;
}

/**
 * Queues serialized frames per socket and writes each queue as one frame.
 *
 * @example Usage
 * ```ts ignore
 * import { BatchedSender } from "./batch.ts";
 * const sender = new BatchedSender({ onSlow: (s) => s.close(1013, "too slow") });
 * sender.send([socketA, socketB], JSON.stringify({ type: "message", text: "hi" }));
 * ```
 */
export class BatchedSender {
  #onSlow: (socket: WebSocket) => void;
  #windowMs: number;
  #maxBuffered: number;
  #graceMs: number;
  #now: () => number;
  /** Each socket's outgoing state, from its first frame until it is forgotten. */
  #outgoing = new Map<WebSocket, Outgoing>();
  /** The sockets with frames queued, in the order of their first frame since the last flush. */
  #dirty: Outgoing[] = [];
  #scheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastFlush = -Infinity;
  #frames = 0;
  #events = 0;
  #batched = 0;

  /** Creates a sender; see {@linkcode BatchedSenderOptions}. */
  constructor(options: BatchedSenderOptions) {
    this.#onSlow = options.onSlow;
    this.#windowMs = options.windowMs ?? 2;
    this.#maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
    this.#graceMs = options.slowGraceMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Frames written, events carried, and frames that carried more than one
   * event, so far; events/frames is the batching factor.
   */
  get stats(): { frames: number; events: number; batched: number } {
    return { frames: this.#frames, events: this.#events, batched: this.#batched };
  }

  /** Queues one serialized event for each open socket in `sockets`. */
  send(sockets: Iterable<WebSocket>, frame: string): void {
    for (const socket of sockets) this.#queue(this.#of(socket), frame);
    this.#schedule();
  }

  /** Queues one serialized event for `socket`, if it is open: {@linkcode BatchedSender.send} for one. */
  sendOne(socket: WebSocket, frame: string): void {
    this.#queue(this.#of(socket), frame);
    this.#schedule();
  }

  #of(socket: WebSocket): Outgoing {
    let outgoing = this.#outgoing.get(socket);
    if (!outgoing) {
      outgoing = { socket, frames: [], bound: Infinity, slowSince: undefined };
      this.#outgoing.set(socket, outgoing);
    }
    return outgoing;
  }

  #queue(outgoing: Outgoing, frame: string): void {
    if (outgoing.socket.readyState !== WebSocket.OPEN) return;
    if (outgoing.frames.push(frame) === 1) this.#dirty.push(outgoing);
  }

  /** Drops what is queued for a socket that is gone. */
  forget(socket: WebSocket): void {
    const outgoing = this.#outgoing.get(socket);
    if (outgoing) outgoing.frames.length = 0;
    this.#outgoing.delete(socket);
  }

  #schedule(): void {
    if (this.#scheduled || this.#dirty.length === 0) return;
    this.#scheduled = true;
    const wait = this.#lastFlush + this.#windowMs - this.#now();
    if (wait <= 0) queueMicrotask(() => this.flush());
    else this.#timer = setTimeout(() => this.flush(), wait);
  }

  /** Writes everything queued now (a scheduled flush becomes a no-op). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#scheduled = false;
    this.#lastFlush = this.#now();
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    this.#dirty = [];
    for (const outgoing of dirty) {
      const { socket, frames } = outgoing;
      if (frames.length === 0) continue; // forgotten since
      outgoing.frames = [];
      if (socket.readyState !== WebSocket.OPEN || this.#tooSlow(outgoing)) continue;
      const frame = frames.length === 1 ? frames[0] : `[${frames.join(",")}]`;
      socket.send(frame);
      outgoing.bound += 3 * frame.length;
      this.#frames++;
      this.#events += frames.length;
      if (frames.length > 1) this.#batched++;
    }
  }

  #tooSlow(outgoing: Outgoing): boolean {
    if (outgoing.bound <= this.#maxBuffered) return false;
    const { socket } = outgoing;
    const buffered = socket.bufferedAmount;
    outgoing.bound = buffered;
    if (buffered <= this.#maxBuffered) {
      outgoing.slowSince = undefined;
      return false;
    }
    const now = this.#now();
    outgoing.slowSince ??= now;
    if (now - outgoing.slowSince < this.#graceMs && buffered <= 4 * this.#maxBuffered) return false;
    this.forget(socket);
    this.#onSlow(socket);
    return true;
  }
}

/** What the sender keeps for one socket. */
interface Outgoing {
  socket: WebSocket;
  /** Serialized events waiting for the next flush. */
  frames: string[];
  /**
   * An upper bound on the socket's `bufferedAmount`: what it last reported,
   * plus at most 3 bytes per UTF-16 unit sent since. Reading the real value
   * costs a call into the runtime per socket and flush, so it is read only
   * when the bound could be over the limit (at first, `Infinity`: read).
   */
  bound: number;
  /** When its unsent data went over the limit, while it stays over. */
  slowSince: number | undefined;
}
