/**
 * The account routes under `/auth/`: JSON in and out, errors
 * `{"error":{"code","message"}}` as the server API's (`auth_responses.ts`).
 *
 * | Route                         | Body                 | Answer                               |
 * | ----------------------------- | -------------------- | ------------------------------------ |
 * | `POST /auth/register/options` | `{name}`             | options for `credentials.create()`   |
 * | `POST /auth/register/verify`  | `{response, label?}` | 201 `{account, passkey}`, the cookie |
 * | `POST /auth/signin/options`   | `{}`                 | options for `credentials.get()`      |
 * | `POST /auth/signin/verify`    | `{response}`         | `{account}`, the cookie              |
 * | `POST /auth/signout`          |                      | 204, the session revoked everywhere  |
 * | `GET /auth/me`                |                      | `{account, passkeys, rooms, blocks}` |
 * | `GET /auth/passkeys`          |                      | `{passkeys}`                         |
 * | `POST /auth/passkeys/options` | `{}`                 | options to add a passkey             |
 * | `POST /auth/passkeys/verify`  | `{response, label?}` | 201 `{passkey}`                      |
 * | `DELETE /auth/passkeys/{id}`  |                      | 204; never the last one (409)        |
 * | `POST /auth/rename`           | `{name}`             | `{account}`; 409 `name_reserved`     |
 *
 * Every request meets the browser policy first (`Admission.screen`); then
 * a route for the signed-in needs the session cookie (401), the ceremonies
 * and renames take a token from their address's bucket (429), and a
 * registration one of its address's registrations for the hour in the
 * shared quota. Off (404) without an account store, or with JWT auth on.
 * Logs name the action, the address and the account, never a cookie, a
 * challenge, a credential or a key.
 *
 * @module
 */

import {
  clearedCookie,
  CookieSessions,
  isSecurePage,
  type SignedIn,
} from "../auth/cookie_session.ts";
import type { Authenticate } from "../auth/jwt.ts";
import { type Ceremony, type CeremonyCode, Passkeys } from "../auth/passkeys.ts";
import { DEFAULTS } from "../config.ts";
import type { Logger } from "../log.ts";
import { checkName } from "../names.ts";
import { KeyedBuckets } from "../rate_limit.ts";
import type { AccountStore, Passkey } from "../store/accounts.ts";
import type { Quota } from "../store/quota.ts";
import { addressKey, type Admission } from "./admission.ts";
import { authError, readJsonBody, refused } from "./auth_responses.ts";
import { json, SECURITY_HEADERS } from "./responses.ts";

const HOUR_MS = 3_600_000;
const PASSKEY_PATH = /^\/auth\/passkeys\/([A-Za-z0-9_-]{1,1366})$/;

/** Options for {@linkcode AuthApi}. */
export interface AuthApiOptions {
  /** Where accounts live; unset turns accounts off (404). @default {null} */
  accounts?: AccountStore | null;
  /** Verifies JWTs; when set, accounts are off (404). @default {null} */
  authenticate?: Authenticate | null;
  /** The browser policy, which every request meets first. */
  admission: Pick<Admission, "screen">;
  /** Counts registrations per address per hour for every instance; unset: not counted. */
  quota?: Quota | null;
  /** The server's public origins (see `relying_party.ts`). @default {[]} */
  publicOrigins?: string[];
  /** Accounts the store may hold. @default {DEFAULTS.maxAccounts} */
  maxAccounts?: number;
  /** How long a ceremony's options may be answered, in ms. @default {DEFAULTS.challengeTtlMs} */
  challengeTtlMs?: number;
  /** How long a session cookie works, in ms. @default {DEFAULTS.accountSessionTtlMs} */
  accountSessionTtlMs?: number;
  /** Ceremony requests one address may make at once. @default {DEFAULTS.authRateBurst} */
  authRateBurst?: number;
  /** Sustained ceremony requests per second per address. @default {DEFAULTS.authRatePerSecond} */
  authRatePerSecond?: number;
  /**
   * Accounts one address (per /64 for IPv6) may register per hour; 0: no limit.
   * @default {DEFAULTS.registrationsPerAddressPerHour}
   */
  registrationsPerAddressPerHour?: number;
  /** How long a body may take to arrive in full, in ms. @default {DEFAULTS.bodyTimeoutMs} */
  bodyTimeoutMs?: number;
  /**
   * Called once a session has ended (signed out, or replaced by a new
   * sign-in in the same browser), to close its connections on every
   * instance. @default {() => {}}
   */
  onSignOut?: (sessionId: string, accountId: string) => void;
  /** Called once an account holds a new name. @default {() => {}} */
  onRename?: (accountId: string, name: string) => void;
  /** Where sign-ins and refusals are logged. @default {() => {}} */
  log?: Logger;
  /** The wall clock for sessions and challenges, in ms. @default {Date.now} */
  now?: () => number;
  /** The clock of the per-address buckets, in ms. @default {() => performance.now()} */
  clock?: () => number;
}

/** What a route's handler gets: the request, its address, its JSON body and its session. */
interface Context {
  req: Request;
  ip: string;
  body: Record<string, unknown>;
  session: SignedIn;
}

/** One route: its method, whether it needs a session, a token, a body; and its handler. */
interface Route {
  method: "GET" | "POST" | "DELETE";
  /** Words the messages: `Cannot <action>: …`. */
  action: string;
  signedIn?: boolean;
  /** Takes a token from the address's bucket. */
  limited?: boolean;
  /** Reads a JSON object body. */
  body?: boolean;
  run(context: Context): Promise<Response>;
}

/**
 * The `/auth/` routes, and {@linkcode AuthApi.sessionFromRequest} for the
 * transports.
 *
 * @example Usage
 * ```ts ignore
 * import { AuthApi } from "./auth_api.ts";
 * const auth = new AuthApi({ accounts, admission });
 * Deno.serve((req, info) => auth.handle(req, info.remoteAddr.hostname));
 * ```
 */
export class AuthApi {
  /** The account store, or `null` when accounts are off. */
  readonly accounts: AccountStore | null;
  #off: string | null;
  #admission: Pick<Admission, "screen">;
  #passkeys: Passkeys;
  #sessions: CookieSessions;
  #quota: Quota | null;
  #perHour: number;
  #buckets: KeyedBuckets;
  #bodyTimeoutMs: number;
  #onSignOut: (sessionId: string, accountId: string) => void;
  #onRename: (accountId: string, name: string) => void;
  #log: Logger;
  #routes: Record<string, Route>;

  /** Creates the routes; see {@linkcode AuthApiOptions}. */
  constructor(options: AuthApiOptions) {
    this.#off = options.authenticate
      ? "Cannot find route: accounts are off while JWT auth is on"
      : options.accounts
      ? null
      : "Cannot find route: accounts are off (no account store)";
    this.accounts = this.#off ? null : options.accounts!;
    const accounts = options.accounts!;
    this.#admission = options.admission;
    this.#passkeys = new Passkeys({ ...options, accounts });
    this.#sessions = new CookieSessions({
      accounts,
      ttlMs: options.accountSessionTtlMs,
      now: options.now,
    });
    this.#quota = options.quota ?? null;
    this.#perHour = options.registrationsPerAddressPerHour ??
      DEFAULTS.registrationsPerAddressPerHour;
    this.#buckets = new KeyedBuckets({
      burst: options.authRateBurst ?? DEFAULTS.authRateBurst,
      perSecond: options.authRatePerSecond ?? DEFAULTS.authRatePerSecond,
      now: options.clock,
    });
    this.#bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs;
    this.#onSignOut = options.onSignOut ?? (() => {});
    this.#onRename = options.onRename ?? (() => {});
    this.#log = options.log ?? (() => {});
    this.#routes = this.#table();
  }

  /** Whether accounts are on. */
  get enabled(): boolean {
    return this.#off === null;
  }

  /**
   * Who `req`'s session cookie signs in (`{sessionId, account}`), or `null`:
   * no cookie, a revoked or expired session, or accounts off. One store
   * read; rejects when the store cannot be reached.
   */
  async sessionFromRequest(req: Request): Promise<SignedIn | null> {
    return this.#off ? null : await this.#sessions.sessionFromRequest(req);
  }

  /** Answers a request whose path starts with `/auth/`, from address `ip`. */
  async handle(req: Request, ip: string): Promise<Response> {
    if (this.#off) return await cancelled(req, authError("not_found", this.#off));
    const screened = this.#admission.screen(req, ip, "post"); // the browser policy, first
    if (screened) return await cancelled(req, authError("forbidden", await screened.text()));
    const { pathname } = new URL(req.url);
    const passkey = pathname.match(PASSKEY_PATH);
    const route = Object.hasOwn(this.#routes, pathname)
      ? this.#routes[pathname]
      : passkey
      ? this.#removeRoute(passkey[1])
      : undefined;
    if (!route) {
      const where = `${req.method} ${pathname.slice(0, 100)}`;
      return await cancelled(req, authError("not_found", `Cannot find route: ${where}`));
    }
    if (req.method !== route.method) {
      const message = `Cannot ${route.action}: method ${req.method} is not allowed here`;
      return await cancelled(
        req,
        authError("method_not_allowed", message, { allow: route.method }),
      );
    }
    try {
      return await this.#run(route, req, ip);
    } catch (error) {
      await req.body?.cancel().catch(() => {});
      const reason = error instanceof Error ? error.message : String(error);
      this.#log({ event: "auth_error", action: route.action, ip, error: reason.slice(0, 200) });
      return authError(
        "unavailable",
        `Cannot ${route.action}: the account store is unavailable, retry soon`,
        { "retry-after": "1" },
      );
    }
  }

  /** The session, the address's token and the body a route needs, then the route. */
  async #run(route: Route, req: Request, ip: string): Promise<Response> {
    let session: SignedIn | null = null;
    if (route.signedIn) {
      session = await this.#sessions.sessionFromRequest(req);
      if (!session) {
        const message = `Cannot ${route.action}: sign in first`;
        return await cancelled(req, authError("auth_required", message));
      }
    }
    if (route.limited) {
      const bucket = this.#buckets.get(addressKey(ip));
      if (!bucket.take()) {
        this.#log({ event: "auth_refused", action: route.action, ip, code: "rate_limited" });
        const seconds = String(Math.max(1, Math.ceil(bucket.waitMs / 1000)));
        const message = `Cannot ${route.action}: too many requests from this address, slow down`;
        return await cancelled(req, authError("rate_limited", message, { "retry-after": seconds }));
      }
    }
    let body: Record<string, unknown> = {};
    if (route.body) {
      const read = await readJsonBody(req, route.action, this.#bodyTimeoutMs);
      if (read instanceof Response) return read;
      body = read;
    } else {
      await req.body?.cancel().catch(() => {});
    }
    return await route.run({ req, ip, body, session: session! });
  }

  #table(): Record<string, Route> {
    const passkeys = this.#passkeys;
    const accounts = this.accounts!;
    const ceremony = { method: "POST", limited: true, body: true } as const;
    return {
      "/auth/register/options": {
        ...ceremony,
        action: "register",
        run: async ({ req, body }) => answer(await passkeys.registrationOptions(req, body.name)),
      },
      "/auth/register/verify": { ...ceremony, action: "register", run: (c) => this.#register(c) },
      "/auth/signin/options": {
        ...ceremony,
        action: "sign in",
        run: async ({ req }) => answer(await passkeys.authenticationOptions(req)),
      },
      "/auth/signin/verify": { ...ceremony, action: "sign in", run: (c) => this.#signIn(c) },
      "/auth/signout": { method: "POST", action: "sign out", run: (c) => this.#signOut(c) },
      "/auth/me": {
        method: "GET",
        action: "read account",
        signedIn: true,
        run: async ({ session: { account } }) => {
          const [keys, rooms, blocks] = await Promise.all([
            accounts.passkeys(account.id),
            accounts.rooms(account.id),
            accounts.blocks(account.id),
          ]);
          return json(200, { account, passkeys: keys.map(passkeyView), rooms, blocks });
        },
      },
      "/auth/passkeys": {
        method: "GET",
        action: "list passkeys",
        signedIn: true,
        run: async ({ session }) =>
          json(200, { passkeys: (await accounts.passkeys(session.account.id)).map(passkeyView) }),
      },
      "/auth/passkeys/options": {
        ...ceremony,
        action: "add passkey",
        signedIn: true,
        run: async ({ req, session }) => answer(await passkeys.addOptions(req, session.account)),
      },
      "/auth/passkeys/verify": {
        ...ceremony,
        action: "add passkey",
        signedIn: true,
        run: async ({ ip, body, session }) => {
          const added = await passkeys.verifyAdd(session.account, body.response, body.label);
          if (!added.ok) return this.#refuse("add passkey", ip, added);
          this.#log({ event: "auth", action: "add passkey", ip, account: session.account.id });
          return json(201, { passkey: passkeyView(added.value) });
        },
      },
      "/auth/rename": {
        ...ceremony,
        action: "rename",
        signedIn: true,
        run: (c) => this.#rename(c),
      },
    };
  }

  /** `DELETE /auth/passkeys/{id}`: never the last one. */
  #removeRoute(id: string): Route {
    return {
      method: "DELETE",
      action: "remove passkey",
      signedIn: true,
      run: async ({ ip, session: { account } }) => {
        const removed = await this.accounts!.removePasskey(account.id, id);
        if (removed.ok) {
          this.#log({ event: "auth", action: "remove passkey", ip, account: account.id });
          return new Response(null, { status: 204, headers: SECURITY_HEADERS });
        }
        return removed.code === "last_passkey"
          ? authError("last_passkey", "Cannot remove passkey: it is the account's last one")
          : authError("not_found", "Cannot remove passkey: the account has no such passkey");
      },
    };
  }

  /** A verified registration takes one of its address's registrations for the hour. */
  async #register({ req, ip, body }: Context): Promise<Response> {
    const checked = await this.#passkeys.checkRegistration(body.response, body.label);
    if (!checked.ok) return this.#refuse("register", ip, checked);
    const limited = await this.#takeRegistration(ip);
    if (limited) return limited;
    const done = await this.#passkeys.createRegistered(checked.value);
    if (!done.ok) return this.#refuse("register", ip, done);
    const { account, passkey } = done.value;
    this.#log({ event: "auth", action: "register", ip, account: account.id });
    const cookie = await this.#startSession(req, account.id);
    return json(201, { account, passkey: passkeyView(passkey) }, { "set-cookie": cookie });
  }

  async #signIn({ req, ip, body }: Context): Promise<Response> {
    const done = await this.#passkeys.verifyAuthentication(body.response);
    if (!done.ok) return this.#refuse("sign in", ip, done);
    const { account } = done.value;
    this.#log({ event: "auth", action: "sign in", ip, account: account.id });
    const cookie = await this.#startSession(req, account.id);
    return json(200, { account }, { "set-cookie": cookie });
  }

  async #signOut({ req, ip }: Context): Promise<Response> {
    const session = await this.#sessions.sessionFromRequest(req);
    if (session) {
      await this.#end(session);
      this.#log({ event: "auth", action: "sign out", ip, account: session.account.id });
    }
    return new Response(null, {
      status: 204,
      headers: { ...SECURITY_HEADERS, "set-cookie": clearedCookie(isSecurePage(req)) },
    });
  }

  async #rename({ ip, body, session }: Context): Promise<Response> {
    const checked = checkName(body.name, "name");
    if (!checked.ok) {
      return authError(
        "invalid_message",
        checked.message.replace(/^Cannot [^:]+:/, "Cannot rename:"),
      );
    }
    const renamed = await this.accounts!.rename(session.account.id, checked.name);
    if (!renamed.ok) {
      return renamed.code === "name_reserved"
        ? authError("name_reserved", `Cannot rename: the name '${checked.name}' is reserved`)
        : authError("not_found", "Cannot rename: the account is gone");
    }
    this.#log({ event: "auth", action: "rename", ip, account: session.account.id });
    this.#callback(() => this.#onRename(session.account.id, checked.name));
    return json(200, { account: renamed.value });
  }

  /** A new session for `accountId`; the browser's previous one, if any, ends. */
  async #startSession(req: Request, accountId: string): Promise<string> {
    const previous = await this.#sessions.sessionFromRequest(req);
    if (previous) await this.#end(previous);
    return (await this.#sessions.start(accountId, isSecurePage(req))).setCookie;
  }

  async #end(session: SignedIn): Promise<void> {
    await this.#sessions.revoke(session.sessionId);
    this.#callback(() => this.#onSignOut(session.sessionId, session.account.id));
  }

  /** One of the address's registrations for the hour, or the 429 that says when to retry. */
  async #takeRegistration(ip: string): Promise<Response | null> {
    if (!this.#quota || this.#perHour === 0) return null;
    const waitMs = await this.#quota.take(
      `registrations:${addressKey(ip)}`,
      this.#perHour,
      HOUR_MS,
    );
    if (waitMs === 0) return null;
    this.#log({ event: "auth_refused", action: "register", ip, code: "rate_limited" });
    return authError(
      "rate_limited",
      `Cannot register: this address registered ${this.#perHour} accounts this hour`,
      { "retry-after": String(Math.ceil(waitMs / 1000)) },
    );
  }

  #refuse(action: string, ip: string, result: { code: CeremonyCode; message: string }): Response {
    this.#log({ event: "auth_refused", action, ip, code: result.code });
    return refused(result);
  }

  #callback(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#log({ event: "auth_error", error: `callback: ${String(error).slice(0, 200)}` });
    }
  }
}

/** A passkey as its owner sees it: no public key. */
export function passkeyView(passkey: Passkey) {
  const { id, label, transports, createdAt, lastUsedAt } = passkey;
  return { id, label, transports, createdAt, lastUsedAt };
}

/** A ceremony's options (200), or its refusal. */
function answer<T>(result: Ceremony<T>): Response {
  return result.ok ? json(200, result.value) : refused(result);
}

async function cancelled(req: Request, response: Response): Promise<Response> {
  await req.body?.cancel().catch(() => {});
  return response;
}
