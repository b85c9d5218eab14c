/**
 * Signed session tokens: the server gives each new user an id and a token
 * `<id>.<HMAC-SHA256 of id>`. A client that presents the token again gets the
 * same id back, and nobody can forge a token for another id.
 *
 * @module
 */

const ENCODER = new TextEncoder();
const ID_PATTERN = /^[0-9a-f]{16}$/;

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

  /** The user id in `token`, or `null` when it is malformed or forged. */
  async verify(token: string): Promise<string | null> {
    const [id, signature, extra] = token.split(".");
    if (extra !== undefined || !ID_PATTERN.test(id) || !signature) return null;
    const bytes = fromBase64Url(signature);
    if (bytes === null) return null;
    const ok = await crypto.subtle.verify("HMAC", this.#key, bytes, ENCODER.encode(id));
    return ok ? id : null;
  }
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
