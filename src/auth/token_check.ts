/**
 * Bearer tokens compared in constant time, for the server API and
 * `/metrics`.
 *
 * @module
 */

/**
 * Compares bearer tokens in constant time: both sides are HMAC-ed with a
 * random key, and the digests compared byte by byte without an early exit,
 * so neither the length nor the content of the expected token leaks.
 *
 * @example Usage
 * ```ts
 * import { TokenCheck } from "./token_check.ts";
 * const check = new TokenCheck("a long random token");
 * await check.matches("a long random token"); // true
 * await check.matches("a guess"); // false
 * ```
 */
export class TokenCheck {
  #key: Promise<CryptoKey>;
  #expected: Promise<Uint8Array>;

  /** Prepares the comparison with the expected `token`. */
  constructor(token: string) {
    this.#key = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    this.#expected = this.#digest(token);
  }

  /** Whether `presented` is the expected token. */
  async matches(presented: string): Promise<boolean> {
    const [a, b] = await Promise.all([this.#digest(presented), this.#expected]);
    let difference = 0;
    for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
    return difference === 0;
  }

  async #digest(text: string): Promise<Uint8Array> {
    const signature = await crypto.subtle.sign(
      "HMAC",
      await this.#key,
      new TextEncoder().encode(text),
    );
    return new Uint8Array(signature);
  }
}
