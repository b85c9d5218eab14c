/**
 * Signed session tokens: the server gives each new user an id and a token
 * `<id>.<HMAC-SHA256 of id>`. A client that presents the token again gets the
 * same id back, and nobody can forge a token for another id.
 *
 * @module
 */

const ENCODER = new TextEncoder();
const ID_PATTERN = /^[0-9a-f]{16}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
// HMAC-SHA256 signatures are 32 bytes (43 base64url characters).
const SIGNATURE_BYTES = 32;
// Longer than any token this signer issues (16 + 1 + 43 characters).
const MAX_TOKEN_LENGTH = 256;

/**
 * Issues and verifies session tokens with one secret.
 *
 * @example Usage
 * ```ts
 * import { SessionSigner } from "./session.ts";
 * const signer = await SessionSigner.create("a long random secret");
 * const { id, token } = await signer.issue();
 * (await signer.verify(token)) === id; // true
 * ```
 */
export class SessionSigner {
  #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** Imports `secret` as an HMAC key. */
  static async create(secret: string): Promise<SessionSigner> {
    const key = await crypto.subtle.importKey(
      "raw",
      ENCODER.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return new SessionSigner(key);
  }

  /** A new random user id and its token. */
  async issue(): Promise<{ id: string; token: string }> {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    const id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    const signature = await crypto.subtle.sign("HMAC", this.#key, ENCODER.encode(id));
    return { id, token: `${id}.${toBase64Url(new Uint8Array(signature))}` };
  }

  /**
   * The user id in `token`, or `null` when it is malformed or forged. Never
   * throws, whatever the input: a bad token just starts a new session.
   */
  async verify(token: string): Promise<string | null> {
    if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) return null;
    const [id, signature, extra] = token.split(".");
    if (extra !== undefined || !ID_PATTERN.test(id) || !signature) return null;
    const bytes = fromBase64Url(signature);
    if (bytes === null || bytes.length !== SIGNATURE_BYTES) return null;
    try {
      return await crypto.subtle.verify("HMAC", this.#key, bytes, ENCODER.encode(id)) ? id : null;
    } catch {
      return null;
    }
  }
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/**
 * Decodes unpadded base64url, or returns `null` for anything else: a bad
 * character, an impossible length (`atob` throws on those), padding, or a
 * non-canonical encoding (stray bits in the last character), so each byte
 * string has exactly one encoding.
 */
function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return null;
  let binary: string;
  try {
    binary = atob(
      text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "="),
    );
  } catch {
    return null;
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return toBase64Url(bytes) === text ? bytes : null;
}
