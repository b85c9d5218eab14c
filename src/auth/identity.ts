/**
 * Who is joining: with JWT auth on, the token's identity; otherwise the
 * signed session token's user id, or a new one.
 *
 * @module
 */

import type { JoinMessage } from "../protocol.ts";
import { normalizeName } from "../protocol.ts";
import type { Authenticate } from "./jwt.ts";
import { SessionSigner } from "./session.ts";

/** The identity a `join` resolves to. */
export interface JoinIdentity {
  /** The user id, from the server: a session id or the JWT's `sub`. */
  userId: string;
  /** The display name: the JWT's `name` claim, else the join's `name` (absent if neither). */
  name?: string;
  /**
   * The tab session this connection belongs to, when its user is one tab's
   * guest session: a join by another connection of the same session replaces
   * it in the room (closed with 4000, a network blip the server has not
   * noticed yet). Absent for a JWT subject, whose connections coexist.
   */
  session?: string;
  /** Whether the user is an account (a passkey account): only accounts own or moderate rooms. */
  account?: boolean;
  /** Moderation rights in every room, from a JWT's `role` claim. */
  role?: "admin" | "moderator";
  /** A session token to hand back in the `welcome` (none with JWT auth). */
  token?: string;
  /** The rooms the JWT allows; `undefined` means every room. */
  rooms?: string[];
  /** When the JWT expires, in ms since the epoch. */
  expiresAt?: number;
}

/** Resolves a `join` to an identity; throws `AuthError` for a refused JWT. */
export type Identify = (join: JoinMessage) => Promise<JoinIdentity>;

/**
 * Creates the identify function: `authenticate` when JWT auth is on, else
 * session tokens signed with `sessionSecret`.
 *
 * @example Usage
 * ```ts
 * import { createIdentify } from "./identity.ts";
 * const identify = createIdentify({ sessionSecret: "s3cret", authenticate: null });
 * const who = await identify({ type: "join", room: "lobby", name: "ada" });
 * who.token !== undefined; // true: a new session
 * ```
 */
export function createIdentify(
  options: { sessionSecret: string; authenticate: Authenticate | null },
): Identify {
  const { authenticate } = options;
  const sessions = SessionSigner.create(options.sessionSecret);
  return async ({ name, token, auth }) => {
    if (authenticate) {
      const identity = await authenticate(auth);
      return { ...identity, name: normalizeName(identity.name) ?? name };
    }
    const signer = await sessions;
    const known = token === undefined ? null : await signer.verify(token);
    const session = known === null ? await signer.issue() : { id: known, token: token! };
    return { userId: session.id, name, token: session.token, session: session.id };
  };
}
