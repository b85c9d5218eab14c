/**
 * What every transport does with a frame a client sent, before the hub
 * sees it: the size limit, text only, JSON and protocol validation, and the
 * rate limits, per connection and per address (a warning, then a close).
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
import type { AddressBudgets, AddressBudgetsOptions } from "./address_budget.ts";

/** What to do with one inbound frame. */
export type Verdict =
  | { kind: "message"; message: ClientMessage }
  | { kind: "error"; error: ErrorMessage }
  | { kind: "close"; code: number; reason: string };

/** Options for {@linkcode Inbound}, and for the transports that make them. */
export interface InboundOptions
  extends Pick<AddressBudgetsOptions, "ratePerAddressBurst" | "ratePerAddressPerSecond"> {
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
  /**
   * The per-address buckets, for a transport: every transport of one chat
   * must share the same (`chat.ts` makes it), so streams and sockets of an
   * address draw on one budget.
   * @default {new AddressBudgets(options), the transport's own}
   */
  addressBudgets?: AddressBudgets;
}

/**
 * The inbound checks of one connection. Each frame takes a token from the
 * connection's bucket and from its address's (`address`, shared with the
 * address's other connections); over either it is refused with
 * `rate_limited`, and the strikes count towards 1008 alike.
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
  #address: () => TokenBucket;
  #strikes = 0;

  /**
   * Creates the checks for one connection; see {@linkcode InboundOptions}.
   * `address` finds the bucket of the connection's address (see
   * `AddressBudgets.of`); without it the connection has one of its own.
   */
  constructor(options: InboundOptions = {}, address?: () => TokenBucket) {
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.#strikesAllowed = options.rateLimitStrikes ?? DEFAULTS.rateLimitStrikes;
    this.#bucket = new TokenBucket({
      burst: options.rateBurst ?? DEFAULTS.rateBurst,
      perSecond: options.ratePerSecond ?? DEFAULTS.ratePerSecond,
    });
    if (address) {
      this.#address = address;
    } else {
      const own = new TokenBucket({
        burst: options.ratePerAddressBurst ?? DEFAULTS.ratePerAddressBurst,
        perSecond: options.ratePerAddressPerSecond ?? DEFAULTS.ratePerAddressPerSecond,
      });
      this.#address = () => own;
    }
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
    const waitMs = this.#take();
    if (waitMs > 0) {
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
      return { kind: "error", error: { ...error, retryAfterMs: waitMs } };
    }
    this.#strikes = 0;
    return parsed.ok
      ? { kind: "message", message: parsed.message }
      : { kind: "error", error: parsed.error };
  }

  /**
   * Takes a token from the connection's bucket and from its address's, or
   * none when either is empty: then the milliseconds until that one has one.
   */
  #take(): number {
    if (!this.#bucket.canTake()) return this.#bucket.waitMs;
    const address = this.#address();
    if (!address.take()) return address.waitMs;
    this.#bucket.take();
    return 0;
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
