/**
 * What every transport does with a frame a client sent, before the hub
 * sees it: the size limit, text only, JSON and protocol validation, and the
 * per-connection rate limit (a warning, then a close).
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";
import type { Hub } from "../hub/hub.ts";
import type { Peer } from "../hub/peer.ts";
import {
  type ClientMessage,
  decodeClientMessage,
  type ErrorMessage,
  errorMessage,
} from "../protocol.ts";
import { TokenBucket } from "../rate_limit.ts";

/** What to do with one inbound frame. */
export type Verdict =
  | { kind: "message"; message: ClientMessage }
  | { kind: "error"; error: ErrorMessage }
  | { kind: "close"; code: number; reason: string };

/** Options for {@linkcode Inbound}. */
export interface InboundOptions {
  /**
   * Largest frame accepted, in bytes; larger ones close with 1009.
   * @default {DEFAULTS.maxFrameBytes}
   */
  maxFrameBytes?: number;
  /**
   * Frames a connection may send at once.
   * @default {DEFAULTS.rateBurst}
   */
  rateBurst?: number;
  /**
   * Sustained frames per second.
   * @default {DEFAULTS.ratePerSecond}
   */
  ratePerSecond?: number;
  /**
   * Rate-limited frames tolerated after the warning, before closing with 1008.
   * @default {DEFAULTS.rateLimitStrikes}
   */
  rateLimitStrikes?: number;
}

/**
 * The inbound checks of one connection.
 *
 * @example Usage
 * ```ts
 * import { Inbound } from "./inbound.ts";
 * const inbound = new Inbound({ rateBurst: 1, ratePerSecond: 1 });
 * inbound.check('{"type":"typing"}').kind; // "message"
 * inbound.check('{"type":"typing"}').kind; // "error" (rate_limited)
 * ```
 */
export class Inbound {
  #maxFrameBytes: number;
  #strikesAllowed: number;
  #bucket: TokenBucket;
  #strikes = 0;

  /** Creates the checks for one connection; see {@linkcode InboundOptions}. */
  constructor(options: InboundOptions = {}) {
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.#strikesAllowed = options.rateLimitStrikes ?? DEFAULTS.rateLimitStrikes;
    this.#bucket = new TokenBucket({
      burst: options.rateBurst ?? DEFAULTS.rateBurst,
      perSecond: options.ratePerSecond ?? DEFAULTS.ratePerSecond,
    });
  }

  /** Checks one frame: a text `string`, or binary data. */
  check(data: unknown): Verdict {
    if (typeof data !== "string") {
      const size = data instanceof ArrayBuffer
        ? data.byteLength
        : data instanceof Blob
        ? data.size
        : ArrayBuffer.isView(data)
        ? data.byteLength
        : 0;
      if (size > this.#maxFrameBytes) {
        return { kind: "close", code: 1009, reason: "frame too large" };
      }
      const error = errorMessage(
        "binary_unsupported",
        "Cannot read message: binary frames are not supported",
      );
      return { kind: "error", error };
    }
    if (byteLengthOver(data, this.#maxFrameBytes)) {
      return { kind: "close", code: 1009, reason: "frame too large" };
    }
    const parsed = decodeClientMessage(data);
    if (!this.#bucket.take()) {
      this.#strikes++;
      if (this.#strikes > this.#strikesAllowed) {
        return { kind: "close", code: 1008, reason: "rate limit exceeded" };
      }
      // The refused frame's cid (a say, edit, delete or reaction), so the sender can retry it.
      const cid = parsed.ok && "cid" in parsed.message ? parsed.message.cid : undefined;
      const error = errorMessage(
        "rate_limited",
        "Cannot send message: rate limit exceeded, slow down",
        cid,
      );
      return { kind: "error", error: { ...error, retryAfterMs: this.#bucket.waitMs } };
    }
    this.#strikes = 0;
    return parsed.ok
      ? { kind: "message", message: parsed.message }
      : { kind: "error", error: parsed.error };
  }
}

/**
 * Hands a checked frame to the hub: a message to handle, an error to send
 * back, or a violation that closes the peer. Every transport ends its
 * inbound path here.
 */
export function dispatch(hub: Hub, peer: Peer, verdict: Verdict): void {
  switch (verdict.kind) {
    case "message":
      return hub.receive(peer, verdict.message);
    case "error":
      return hub.reject(peer, verdict.error);
    case "close":
      return hub.violate(peer, verdict.code, verdict.reason);
  }
}

function byteLengthOver(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return new TextEncoder().encode(text).byteLength > limit;
}
