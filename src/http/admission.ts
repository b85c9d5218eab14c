/**
 * Who may open a connection: the browser policy and the connection caps, in
 * all and per remote address, checked before the upgrade. Every transport
 * takes a slot here and gives it back when its connection ends.
 *
 * The browser policy ({@linkcode browserRequestProblem}) is the one rule set
 * for every route a web page can reach: `/ws`, `GET /sse` and
 * `POST /sse/<id>` (and any page `POST` to come). Its `Origin` check does
 * what Vite's `server.allowedHosts` does against DNS rebinding: a browser's
 * request is the server's own only when its `Host` is an IP address or
 * `localhost` (names an attacker cannot point at us), with the same scheme;
 * any other host name must be listed, as `PUBLIC_ORIGIN` (the server's own
 * public origins) or `ALLOWED_ORIGINS`. Requests without `Origin` that a
 * browser sent (it says so in `Sec-Fetch-*` headers) meet the same `Host`
 * rule, and those headers keep other sites' pages and tags out.
 *
 * The cap in all is kept under the process's open-file limit
 * (`fd_limit.ts`), so new upgrades get 503 before descriptors run out.
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Stats } from "../stats.ts";
import { connectionsThatFit, fdReserve, probeFreeFds, readFdLimit } from "./fd_limit.ts";
import { plain } from "./responses.ts";

/**
 * How long an address that sent {@linkcode OVERSIZE_STRIKES} oversized frames
 * is refused, in ms; also the window those frames must fall in.
 */
export const OVERSIZE_COOLDOWN_MS = 60_000;
/**
 * Oversized frames from one address within {@linkcode OVERSIZE_COOLDOWN_MS}
 * that make it refused. Fewer cost the offending connections only (1009):
 * behind a NAT one careless client must not lock everyone out.
 */
export const OVERSIZE_STRIKES = 3;
/** Addresses remembered for their offences at most; the oldest are forgotten first. */
const MAX_OFFENDERS = 10_000;

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
   * The server's own public origins (`PUBLIC_ORIGIN`), such as
   * `https://chat.example.com`: allowed as `Origin`, also behind a proxy that
   * terminates TLS. Without them only IP addresses and `localhost` count as
   * the server's own host.
   * @default {[]}
   */
  publicOrigins?: string[];
  /**
   * Open connections allowed in all; more get HTTP 503. Lowered to fit
   * under `fdLimit`.
   * @default {DEFAULTS.maxConnections}
   */
  maxConnections?: number;
  /**
   * Open connections allowed per remote address (per /64 for IPv6); more
   * get HTTP 429.
   * @default {DEFAULTS.maxConnectionsPerIp}
   */
  maxConnectionsPerIp?: number;
  /**
   * The process's open-file limit; `null` for none known. Unset: read from
   * `/proc/self/limits`, or else the free descriptors are counted
   * ({@linkcode probeFreeFds}).
   * @default {readFdLimit()}
   */
  fdLimit?: number | null;
  /**
   * How long an address is refused (429) after `oversizeStrikes` frames over
   * the size limit from its connections, in ms; also the window those frames
   * must fall in. 0 never refuses.
   * @default {OVERSIZE_COOLDOWN_MS}
   */
  oversizeCooldownMs?: number;
  /**
   * Frames over the size limit from one address, within `oversizeCooldownMs`,
   * that make it refused for `oversizeCooldownMs`.
   * @default {OVERSIZE_STRIKES}
   */
  oversizeStrikes?: number;
  /**
   * The clock for cooldowns, in ms (`createChat` gives the same to the
   * per-address rate budgets).
   * @default {() => performance.now()}
   */
  clock?: () => number;
}

/**
 * A browser-reachable route, for the browser policy: the rules differ only
 * for event streams, which a page must open with `EventSource` or `fetch`.
 */
export type BrowserRoute = "websocket" | "event-stream" | "post";

/** Why the browser policy refuses a request: a stable code, and the 403's text. */
export interface BrowserProblem {
  code: "origin_not_allowed" | "host_not_allowed" | "cross_site" | "not_event_stream";
  message: string;
  /** The header that decided it, for the log (at most 100 characters). */
  detail: Record<string, string>;
}

/** What the browser policy trusts: the listed origins, and their host names. */
export interface TrustedOrigins {
  /** Listed origins as browsers send them (`https://chat.example.com`). */
  origins: ReadonlySet<string>;
  /** Their host names (`chat.example.com`), which count as the server's own `Host`. */
  hosts: ReadonlySet<string>;
}

/** A connection's slot: give it back when the connection ends. */
export interface Slot {
  /** Frees the slot; later calls do nothing. */
  release(): void;
  /**
   * The connection sent a frame over the size limit: a strike against its
   * address, which is refused for a while after {@linkcode OVERSIZE_STRIKES}.
   */
  oversized(): void;
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
  #trusted: TrustedOrigins;
  #max: number;
  #maxPerIp: number;
  #cooldownMs: number;
  #strikes: number;
  #now: () => number;
  #open = 0;
  #perIp = new Map<string, number>();
  /** Addresses with recent oversized frames, in the order of their last one. */
  #offenders = new Map<string, Offences>();
  #closing = false;

  /** Creates the caps; see {@linkcode AdmissionOptions}. */
  constructor(options: AdmissionOptions) {
    this.#stats = options.stats;
    this.#log = options.log ?? (() => {});
    this.#trusted = trustedOrigins([
      ...options.allowedOrigins ?? [],
      ...options.publicOrigins ?? [],
    ]);
    this.#maxPerIp = options.maxConnectionsPerIp ?? DEFAULTS.maxConnectionsPerIp;
    this.#cooldownMs = options.oversizeCooldownMs ?? OVERSIZE_COOLDOWN_MS;
    this.#strikes = Math.max(1, options.oversizeStrikes ?? OVERSIZE_STRIKES);
    this.#now = options.clock ?? (() => performance.now());
    const configured = options.maxConnections ?? DEFAULTS.maxConnections;
    this.#max = configured;
    const fdLimit = options.fdLimit === undefined ? readFdLimit() : options.fdLimit;
    if (fdLimit !== null) {
      this.#lower(configured, connectionsThatFit(fdLimit), {
        fdLimit,
        reserve: fdReserve(fdLimit),
      });
    } else if (options.fdLimit === undefined) {
      // No /proc/self/limits (Deno wants --allow-all for it): count the free descriptors.
      const free = probeFreeFds(configured + fdReserve(configured));
      if (free !== null && free !== Infinity) {
        this.#lower(configured, connectionsThatFit(free), {
          freeFds: free,
          reserve: fdReserve(free),
        });
      }
    }
  }

  #lower(configured: number, fit: number, why: Record<string, number>): void {
    if (fit >= configured) return;
    this.#max = fit;
    this.#log({ event: "limit", setting: "maxConnections", configured, effective: fit, ...why });
  }

  /** The cap in all, after fitting it under the open-file limit. */
  get maxConnections(): number {
    return this.#max;
  }

  /** Refuses every new connection from now on (503). */
  close(): void {
    this.#closing = true;
  }

  /**
   * The browser policy for a request to `route` from `ip`: a 403 to answer
   * (logged and counted), or `null` to go on. Every browser-reachable route
   * runs it before anything else: {@linkcode Admission.admit} does, and
   * `main.ts` for `POST /sse/<id>`.
   */
  screen(req: Request, ip: string, route: BrowserRoute): Response | null {
    const problem = browserRequestProblem(req, route, this.#trusted);
    if (!problem) return null;
    const reason = problem.code.replaceAll("_", " ");
    this.#log({ event: "refused", ip, status: 403, reason, ...problem.detail });
    this.#stats.count(this.#stats.refusals, 403);
    return refusal(403, problem.message);
  }

  /**
   * Takes a slot for a connection from `ip` to `route`, or answers why not:
   * 503 while shutting down or full, 403 from the browser policy
   * ({@linkcode Admission.screen}), 429 for an address over its cap or in its
   * cooldown.
   */
  admit(req: Request, ip: string, route: BrowserRoute = "websocket"): Response | Slot {
    if (this.#closing) return refusal(503, "Server is shutting down", "1");
    const refused = this.screen(req, ip, route);
    if (refused) return refused;
    const key = addressKey(ip);
    if (this.#coolingDown(key)) {
      return this.#refuse(
        ip,
        429,
        "oversized frames",
        "Refused for a while: frames were too large",
      );
    }
    if (this.#open >= this.#max) {
      return this.#refuse(ip, 503, "server full", "Server is full, try again later");
    }
    const fromIp = this.#perIp.get(key) ?? 0;
    if (fromIp >= this.#maxPerIp) {
      return this.#refuse(
        ip,
        429,
        "too many connections from this address",
        "Too many connections from this address",
      );
    }
    this.#open++;
    this.#perIp.set(key, fromIp + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        const left = this.#perIp.get(key)! - 1;
        if (left === 0) this.#perIp.delete(key);
        else this.#perIp.set(key, left);
      },
      oversized: () => this.#strike(key),
    };
  }

  #coolingDown(key: string): boolean {
    const offences = this.#offenders.get(key);
    return offences !== undefined && offences.until > this.#now();
  }

  /** One oversized frame from `key`; the strike that fills the window starts its cooldown. */
  #strike(key: string): void {
    if (this.#cooldownMs <= 0) return;
    const now = this.#now();
    const offences = this.#offenders.get(key) ?? { times: [], until: -Infinity };
    this.#offenders.delete(key); // Re-inserted last: the Map stays ordered by the last offence.
    offences.times = offences.times.filter((at) => now - at < this.#cooldownMs);
    offences.times.push(now);
    if (offences.times.length >= this.#strikes) {
      offences.until = now + this.#cooldownMs;
      offences.times = []; // After its cooldown the address starts with no strikes.
    }
    this.#offenders.set(key, offences);
    // Forgotten oldest first: those whose offences are all older than the window, and past the cap.
    for (const [oldest, { times, until }] of this.#offenders) {
      const over = until <= now && now - (times.at(-1) ?? -Infinity) >= this.#cooldownMs;
      if (this.#offenders.size <= MAX_OFFENDERS && !over) break;
      this.#offenders.delete(oldest);
    }
  }

  #refuse(ip: string, status: 429 | 503, reason: string, body: string): Response {
    this.#log({ event: "refused", ip, status, reason });
    this.#stats.count(this.#stats.refusals, status);
    return refusal(status, body, "10");
  }
}

/** An address's recent oversized frames (times, in ms) and the end of its cooldown. */
interface Offences {
  times: number[];
  until: number;
}

/**
 * A refusal. `connection: close` asks Deno to drop the connection after it,
 * so a refused client holds no descriptor (Deno 2.5 does; Deno 2.9.6 sends
 * the header but keeps the connection open until the client closes it).
 */
function refusal(status: number, body: string, retryAfter?: string): Response {
  const headers: Record<string, string> = { connection: "close" };
  if (retryAfter) headers["retry-after"] = retryAfter;
  return plain(status, body, headers);
}

/**
 * The key an address is counted under: IPv4 addresses as they are, IPv6
 * addresses by their /64 (one subscriber's prefix; a host can use any
 * address in it), IPv4-mapped IPv6 as IPv4.
 *
 * @example Usage
 * ```ts
 * import { addressKey } from "./admission.ts";
 * addressKey("2001:db8:1:2:aaaa::1"); // "2001:db8:1:2::/64"
 * addressKey("::ffff:192.0.2.1"); // "192.0.2.1"
 * ```
 */
export function addressKey(ip: string): string {
  const address = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  if (!address.includes(":")) return address;
  const mapped = address.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i);
  if (mapped) return mapped[1];
  const [head, tail = ""] = address.split("%")[0].toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = address.includes("::") && tail ? tail.split(":") : [];
  const groups = address.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":") + "::/64";
}

/**
 * The browser policy: why a request to `route` must be refused (403), or
 * `null`. One rule set for every route a web page can reach, applied before
 * anything happens (no join, no frame read):
 *
 * 1. An `Origin`, where there is one, must pass {@linkcode originAllowed}.
 * 2. `Sec-Fetch-Site` other than `same-origin` or `none` (`cross-site`,
 *    `same-site`): refused unless the `Origin` is listed. Other sites' tags
 *    (`<img>`, `<iframe>`, `<video>`, …) send no `Origin` on a `GET`.
 * 3. A request a browser sent (an `Origin`, or any `Sec-Fetch-*` header)
 *    must name an allowed `Host`: an IP address, `localhost` or a name under
 *    `.localhost`, or the host name of a listed origin; unless its `Origin`
 *    is listed. A DNS-rebinding page's `EventSource` carries no `Origin`
 *    (it is same-origin to the browser), but its `Host` is the attacker's.
 * 4. An event stream (`GET /sse`) must have `Sec-Fetch-Dest: empty`, as
 *    `EventSource` and `fetch` send, when the header is there: tags send
 *    `image`, `iframe`, `video`, `script`, …
 *
 * Requests with none of these headers (terminal tools, bots, servers) pass,
 * whatever their `Host`: they are not a visitor's browser acting for a page.
 *
 * @example Usage
 * ```ts
 * import { browserRequestProblem, trustedOrigins } from "./admission.ts";
 * const trusted = trustedOrigins(["https://chat.example.com"]);
 * const img = new Request("https://chat.example.com/sse?room=a&name=b", {
 *   headers: { "sec-fetch-site": "cross-site", "sec-fetch-dest": "image" },
 * });
 * browserRequestProblem(img, "event-stream", trusted)?.code; // "cross_site"
 * ```
 */
export function browserRequestProblem(
  req: Request,
  route: BrowserRoute,
  trusted: TrustedOrigins,
): BrowserProblem | null {
  const headers = req.headers;
  const origin = headers.get("origin");
  const clip = (value: string) => value.slice(0, 100);
  if (!originAllowed(req, trusted.origins)) {
    return {
      code: "origin_not_allowed",
      message: "Cannot connect: origin not allowed",
      detail: { origin: clip(origin ?? "") },
    };
  }
  const listed = origin !== null && trusted.origins.has(origin);
  const site = headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none" && !listed) {
    return {
      code: "cross_site",
      message: "Cannot connect: requests from other sites are not allowed",
      detail: { site: clip(site) },
    };
  }
  const fromBrowser = origin !== null ||
    [...headers.keys()].some((name) => name.startsWith("sec-fetch-"));
  // A stream whose query joins a room does so only on the server's own host names, whoever
  // asks: a page that rebinds a host name to this server over plain HTTP sends neither Origin
  // nor Sec-Fetch-* (Chromium sends them only to HTTPS and loopback), so Host is all there is.
  // A bot on another host name opens a bare stream and POSTs its join instead.
  const query = route === "event-stream" ? new URL(req.url).searchParams : null;
  const joins = query !== null && (query.has("room") || query.has("name"));
  if ((fromBrowser || joins) && !listed) {
    const host = requestHost(req);
    if (host === null || !(rebindProof(host) || trusted.hosts.has(host))) {
      return {
        code: "host_not_allowed",
        message: "Cannot connect: this host name is not the server's (set PUBLIC_ORIGIN)",
        detail: { host: clip(headers.get("host") ?? "") },
      };
    }
  }
  const dest = headers.get("sec-fetch-dest");
  if (route === "event-stream" && dest !== null && dest !== "empty") {
    return {
      code: "not_event_stream",
      message: "Cannot open event stream: open it with EventSource or fetch",
      detail: { dest: clip(dest) },
    };
  }
  return null;
}

/**
 * The browser policy's trust, from the listed origins (`ALLOWED_ORIGINS` and
 * `PUBLIC_ORIGIN`): the origins, and their host names.
 */
export function trustedOrigins(listed: readonly string[]): TrustedOrigins {
  const origins = new Set(listed.map(canonicalOrigin));
  const hosts = new Set<string>();
  for (const origin of origins) {
    const url = URL.parse(origin);
    if (url && url.hostname) hosts.add(url.hostname);
  }
  return { origins, hosts };
}

/** The request's host name as `URL` normalizes it (from `Host`, or the URL); `null` if none. */
function requestHost(req: Request): string | null {
  const url = URL.parse(req.url);
  if (!url) return null;
  const host = req.headers.get("host") ?? url.host;
  return URL.parse(`${url.protocol}//${host}`)?.hostname || null;
}

/** An origin as browsers send it (`https://chat.example.com`), or the text unchanged. */
function canonicalOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return url.origin === "null" ? origin : url.origin;
  } catch {
    return origin;
  }
}

/**
 * Requests without `Origin`, listed origins, and the server's own origin
 * pass. "Own" means the `Origin` has the request's scheme and `Host`, and
 * that host is one DNS rebinding cannot reach: an IP address, `localhost`
 * or a name under `.localhost`.
 */
export function originAllowed(req: Request, listed: ReadonlySet<string>): boolean {
  const origin = req.headers.get("origin");
  if (origin === null || listed.has(origin)) return true;
  try {
    const from = new URL(origin);
    const url = new URL(req.url);
    const own = new URL(`${url.protocol}//${req.headers.get("host") ?? url.host}`);
    return from.protocol === own.protocol && from.host === own.host && rebindProof(own.hostname);
  } catch {
    return false;
  }
}

/** Whether `hostname` (as `URL` normalizes it) is an IP literal or a `localhost` name. */
function rebindProof(hostname: string): boolean {
  return hostname === "localhost" || hostname.endsWith(".localhost") ||
    /^\d+\.\d+\.\d+\.\d+$/.test(hostname) || hostname.startsWith("[");
}
