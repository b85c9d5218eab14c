/**
 * Who may open a connection: the `Origin` allowlist and the connection
 * caps, in all and per remote address, checked before the upgrade. Every
 * transport takes a slot here and gives it back when its connection ends.
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Stats } from "../stats.ts";
import { plain } from "./responses.ts";

/** Options for {@linkcode Admission}. */
export interface AdmissionOptions {
  /** Counters for refused connections. */
  stats: Stats;
  /**
   * Where refusals are logged.
   * @default {() => {}}
   */
  log?: Logger;
  /**
   * Origins allowed besides the server's own; requests without `Origin` are
   * always allowed.
   * @default {[]}
   */
  allowedOrigins?: string[];
  /**
   * Open connections allowed in all; more get HTTP 503.
   * @default {DEFAULTS.maxConnections}
   */
  maxConnections?: number;
  /**
   * Open connections allowed per remote address; more get HTTP 429.
   * @default {DEFAULTS.maxConnectionsPerIp}
   */
  maxConnectionsPerIp?: number;
}

/**
 * Connection slots.
 *
 * @example Usage
 * ```ts ignore
 * const admitted = admission.admit(req, ip);
 * if (admitted instanceof Response) return admitted; // 403, 429 or 503
 * // ... upgrade, and call admitted.release() when the connection closes.
 * ```
 */
export class Admission {
  #stats: Stats;
  #log: Logger;
  #allowedOrigins: string[];
  #max: number;
  #maxPerIp: number;
  #open = 0;
  #perIp = new Map<string, number>();
  #closing = false;

  /** Creates the caps; see {@linkcode AdmissionOptions}. */
  constructor(options: AdmissionOptions) {
    this.#stats = options.stats;
    this.#log = options.log ?? (() => {});
    this.#allowedOrigins = options.allowedOrigins ?? [];
    this.#max = options.maxConnections ?? DEFAULTS.maxConnections;
    this.#maxPerIp = options.maxConnectionsPerIp ?? DEFAULTS.maxConnectionsPerIp;
  }

  /** Refuses every new connection from now on (503). */
  close(): void {
    this.#closing = true;
  }

  /**
   * Takes a slot for a connection from `ip`, or answers why not: 503 while
   * shutting down or full, 403 for a foreign origin, 429 for an address over
   * its cap.
   */
  admit(req: Request, ip: string): Response | { release(): void } {
    if (this.#closing) return plain(503, "Server is shutting down");
    if (!originAllowed(req, this.#allowedOrigins)) return plain(403, "Origin not allowed");
    if (this.#open >= this.#max) return this.#refuse(ip, 503, "server full");
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (fromIp >= this.#maxPerIp) {
      return this.#refuse(ip, 429, "too many connections from this address");
    }
    this.#open++;
    this.#perIp.set(ip, fromIp + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        const left = this.#perIp.get(ip)! - 1;
        if (left === 0) this.#perIp.delete(ip);
        else this.#perIp.set(ip, left);
      },
    };
  }

  #refuse(ip: string, status: 429 | 503, reason: string): Response {
    this.#log({ event: "refused", ip, status, reason });
    this.#stats.count(this.#stats.refusals, status);
    const body = status === 503
      ? "Server is full, try again later"
      : "Too many connections from this address";
    return plain(status, body, { "retry-after": "10" });
  }
}

/** Same-origin requests, listed origins, and requests without `Origin` pass. */
function originAllowed(req: Request, allowed: string[]): boolean {
  const origin = req.headers.get("origin");
  if (origin === null || allowed.includes(origin)) return true;
  try {
    return new URL(origin).host === (req.headers.get("host") ?? new URL(req.url).host);
  } catch {
    return false;
  }
}
