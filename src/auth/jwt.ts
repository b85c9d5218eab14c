/**
 * Optional JWT authentication, verified with `jose`. A key comes from an HS256
 * secret, a PEM public key, or a JWKS URL; the token's `sub` becomes the user
 * id, its `name` claim the display name, its `rooms` claim (when present)
 * the rooms the user may join: an array of room names, and its `role` claim
 * (`admin` or `moderator`) its moderation rights in every room. A `rooms` claim of any
 * other shape is refused (`auth_invalid`); only an absent one allows every room.
 *
 * @module
 */

import { createRemoteJWKSet, errors, importSPKI, type JWTPayload, jwtVerify } from "jose";
import { normalizeName } from "../protocol.ts";

/** Where the verification key comes from; at most one is used. */
export interface AuthOptions {
  /** HS256 shared secret. */
  jwtSecret?: string;
  /** PEM (SPKI) public key, for tokens signed with `algorithm`. */
  publicKey?: string;
  /**
   * Algorithm of tokens checked against `publicKey`.
   * @default {"RS256"}
   */
  algorithm?: string;
  /** URL of a JWKS document. */
  jwksUrl?: string;
}

/** Who a valid token says the user is. */
export interface Identity {
  userId: string;
  /** Display name from the `name` claim, if any. */
  name?: string;
  /** Rooms the user may join; `undefined` means any. */
  rooms?: string[];
  /** Expiry in milliseconds since the epoch, if the token has one. */
  expiresAt?: number;
  /**
   * The `role` claim: `admin` (an operator: moderates every room) or
   * `moderator` (moderator rights in every room); any other value is none.
   */
  role?: "admin" | "moderator";
}

/** Why a token was refused; `code` is the protocol's error code. */
export class AuthError extends Error {
  /** `auth_required`, `auth_invalid` or `auth_expired`. */
  readonly code: "auth_required" | "auth_invalid" | "auth_expired";

  /** Creates an error with a protocol code. */
  constructor(code: AuthError["code"], message: string) {
    super(message);
    this.name = "AuthError";
    this.code = code;
  }
}

/** Verifies a token; resolves with the identity or rejects with an {@linkcode AuthError}. */
export type Authenticate = (token: string | undefined) => Promise<Identity>;

/**
 * Builds a verifier from the configured key, or returns `null` when no key is
 * configured (authentication off).
 *
 * @example Usage
 * ```ts ignore
 * import { createAuthenticator } from "./jwt.ts";
 * const authenticate = await createAuthenticator({ jwtSecret: "s3cret" });
 * const identity = await authenticate!(token); // { userId: "alice", ... }
 * ```
 */
export async function createAuthenticator(options: AuthOptions): Promise<Authenticate | null> {
  const { jwtSecret, publicKey, jwksUrl, algorithm = "RS256" } = options;
  let verify: (token: string) => Promise<JWTPayload>;
  if (jwtSecret) {
    const key = new TextEncoder().encode(jwtSecret);
    verify = async (token) => (await jwtVerify(token, key, { algorithms: ["HS256"] })).payload;
  } else if (publicKey) {
    const key = await importSPKI(publicKey, algorithm);
    verify = async (token) => (await jwtVerify(token, key, { algorithms: [algorithm] })).payload;
  } else if (jwksUrl) {
    const keys = createRemoteJWKSet(new URL(jwksUrl));
    verify = async (token) =>
      (await jwtVerify(token, keys, { algorithms: ["RS256", "ES256", "EdDSA"] })).payload;
  } else {
    return null;
  }
  return async (token) => {
    if (!token) throw new AuthError("auth_required", "Cannot join room: a token is required");
    let payload: JWTPayload;
    try {
      payload = await verify(token);
    } catch (error) {
      if (error instanceof errors.JWTExpired) {
        throw new AuthError("auth_expired", "Cannot join room: the token has expired");
      }
      if (error instanceof errors.JOSEError) {
        throw new AuthError("auth_invalid", "Cannot join room: the token is invalid");
      }
      throw error;
    }
    return identityOf(payload);
  };
}

function identityOf(payload: JWTPayload): Identity {
  const { sub, name, rooms, exp, role } = payload;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 128 || !sub.isWellFormed()) {
    throw new AuthError("auth_invalid", "Cannot join room: the token has no valid 'sub'");
  }
  return {
    userId: sub,
    name: typeof name === "string" ? name : undefined,
    rooms: roomsOf(rooms),
    expiresAt: typeof exp === "number" ? exp * 1000 : undefined,
    ...(role === "admin" || role === "moderator" ? { role } : {}),
  };
}

/**
 * The `rooms` claim as a list, normalized like a `join`'s room. Only an absent
 * claim means every room: anything else that is not an array of strings is
 * refused, so a malformed claim never opens more rooms than it names.
 */
function roomsOf(rooms: unknown): string[] | undefined {
  if (rooms === undefined) return undefined;
  if (!Array.isArray(rooms) || !rooms.every((room) => typeof room === "string")) {
    throw new AuthError(
      "auth_invalid",
      "Cannot join room: the token's 'rooms' claim must be an array of strings",
    );
  }
  // A room that is no valid room name stays as it is: no join can match it.
  return rooms.map((room: string) => normalizeName(room) ?? room);
}
