/**
 * The account's session cookie: `chat_session`, `HttpOnly` (no script reads
 * it), `SameSite=Lax` (other sites' requests do not carry it, but a link
 * followed to the chat does), `Path=/`, `Secure` when the page is on HTTPS,
 * for 30 days (`accountSessionTtlMs`).
 *
 * Its value is `<account id>.<secret>`: 256 random bits, unguessable, not
 * signed. Every use is checked against the store anyway (that is what makes
 * sign-out revoke it on every instance at once), so a signature would add a
 * key to keep and nothing a lookup does not already give. The store never
 * holds the secret: a session's id is the first 128 bits of its SHA-256, so
 * neither a copy of the store, nor the id passed to logs, hooks and other
 * instances, makes a cookie that works. The account id in the cookie lets
 * {@linkcode CookieSessions.sessionFromRequest} read the session and the
 * account in one store read.
 *
 * No cache: one read per call, so a revoked session fails at its next use
 * everywhere. (Measured need: none; a connection calls it once, when it
 * opens.)
 *
 * @module
 */

import { DEFAULTS } from "../config.ts";
import type { Account, AccountSession, AccountStore } from "../store/accounts.ts";

/** The cookie's name. */
export const SESSION_COOKIE = "chat_session";
const VALUE = /^([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

/** Who a request's cookie signs in: the session's id (not its secret) and its account. */
export interface SignedIn {
  sessionId: string;
  account: Account;
}

/** Options for {@linkcode CookieSessions}. */
export interface CookieSessionsOptions {
  /** Where sessions and accounts live. */
  accounts: AccountStore;
  /**
   * How long a session works, in ms.
   * @default {DEFAULTS.accountSessionTtlMs}
   */
  ttlMs?: number;
  /**
   * The wall clock, in ms since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * Cookie sessions over an account store.
 *
 * @example Usage
 * ```ts ignore
 * import { CookieSessions } from "./cookie_session.ts";
 * const sessions = new CookieSessions({ accounts });
 * const { setCookie } = await sessions.start(account.id, true);
 * // … later, on any instance:
 * const signedIn = await sessions.sessionFromRequest(req); // { sessionId, account } or null
 * ```
 */
export class CookieSessions {
  #accounts: AccountStore;
  #ttlMs: number;
  #now: () => number;

  /** Creates the sessions; see {@linkcode CookieSessionsOptions}. */
  constructor(options: CookieSessionsOptions) {
    this.#accounts = options.accounts;
    this.#ttlMs = options.ttlMs ?? DEFAULTS.accountSessionTtlMs;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Starts a session of `accountId`: stores it and answers the `Set-Cookie`
   * value that carries it (`secure` when the page is on HTTPS).
   */
  async start(
    accountId: string,
    secure: boolean,
  ): Promise<{ session: AccountSession; setCookie: string }> {
    const secret = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
    const createdAt = this.#now();
    const session: AccountSession = {
      id: await sessionId(secret),
      accountId,
      createdAt,
      expiresAt: createdAt + this.#ttlMs,
      revoked: false,
    };
    await this.#accounts.createSession(session);
    const maxAge = Math.floor(this.#ttlMs / 1000);
    return { session, setCookie: cookie(`${accountId}.${secret}`, maxAge, secure) };
  }

  /**
   * Who `req`'s `chat_session` cookie signs in, or `null` (no cookie, a
   * malformed or unknown one, revoked, or expired). One store read.
   * Rejects when the store cannot be reached.
   */
  async sessionFromRequest(req: Request): Promise<SignedIn | null> {
    const value = cookieValue(req);
    if (!value) return null;
    const id = await sessionId(value.secret);
    const found = await this.#accounts.resolveSession(id, value.accountId);
    if (!found || found.session.revoked || found.session.expiresAt <= this.#now()) return null;
    return { sessionId: id, account: found.account };
  }

  /** Revokes session `sessionId` on every instance; `false` when it was unknown. */
  async revoke(sessionId: string): Promise<boolean> {
    return await this.#accounts.revokeSession(sessionId);
  }
}

/** The `Set-Cookie` value that removes the cookie. */
export function clearedCookie(secure: boolean): string {
  return cookie("", 0, secure);
}

/**
 * Whether the page that sent `req` is on HTTPS (its `Origin`, else the
 * request's own URL): the cookie then gets `Secure`.
 */
export function isSecurePage(req: Request): boolean {
  const origin = req.headers.get("origin");
  return (origin ?? req.url).startsWith("https:");
}

function cookie(value: string, maxAge: number, secure: boolean): string {
  const parts = [`${SESSION_COOKIE}=${value}`, "Path=/", `Max-Age=${maxAge}`, "HttpOnly"];
  parts.push("SameSite=Lax");
  if (secure) parts.push("Secure");
  return parts.join("; ");
}

/** The first well-formed `chat_session` value in `req`'s cookies. */
function cookieValue(req: Request): { accountId: string; secret: string } | null {
  const header = req.headers.get("cookie");
  if (!header || header.length > 8192) return null;
  for (const pair of header.split(";")) {
    const at = pair.indexOf("=");
    if (at < 0 || pair.slice(0, at).trim() !== SESSION_COOKIE) continue;
    const match = pair.slice(at + 1).trim().match(VALUE);
    if (match) return { accountId: match[1], secret: match[2] };
  }
  return null;
}

/** A session's id: the first 128 bits of the SHA-256 of its secret, in hex. */
async function sessionId(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return Array.from(new Uint8Array(digest).subarray(0, 16), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}
