/**
 * A software WebAuthn authenticator for tests without a browser: it answers
 * the server's options as `navigator.credentials.create()` and `.get()` of
 * a page at `origin` would, with `credential.toJSON()`'s shape. ES256 keys
 * from Web Crypto, `none` attestation, discoverable credentials (the user
 * handle comes back on `get`), a signature counter per credential. Tests
 * pass any `origin` (a foreign one), or a counter of their own (a replay).
 *
 * @module
 */

/** The JSON of a credential, as the page posts it. */
// deno-lint-ignore no-explicit-any
export type CredentialJSON = Record<string, any>;

interface Stored {
  id: string;
  rpId: string;
  userHandle: string;
  keys: CryptoKeyPair;
  counter: number;
}

/** Options for {@linkcode SoftAuthenticator}. */
export interface SoftAuthenticatorOptions {
  /** Whether signatures carry a counter that goes up (else always 0, as synced passkeys do). */
  counts?: boolean;
}

/**
 * An authenticator holding credentials in memory.
 *
 * @example Usage
 * ```ts ignore
 * const authenticator = new SoftAuthenticator();
 * const created = await authenticator.create(options, "http://localhost:8000");
 * const asserted = await authenticator.get(signInOptions, "http://localhost:8000");
 * ```
 */
export class SoftAuthenticator {
  #credentials: Stored[] = [];
  #counts: boolean;

  constructor(options: SoftAuthenticatorOptions = {}) {
    this.#counts = options.counts ?? true;
  }

  /** The ids of the credentials it holds. */
  get ids(): string[] {
    return this.#credentials.map((c) => c.id);
  }

  /** A new credential for `options` (creation options JSON), made on a page at `origin`. */
  async create(options: CredentialJSON, origin: string): Promise<CredentialJSON> {
    const keys = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    ) as CryptoKeyPair;
    const idBytes = crypto.getRandomValues(new Uint8Array(16));
    const id = toBase64Url(idBytes);
    const rpId: string = options.rp.id;
    this.#credentials.push({ id, rpId, userHandle: options.user.id, keys, counter: 0 });
    const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
    const coseKey = cbor(
      new Map<number, unknown>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, fromBase64Url(jwk.x!)],
        [-3, fromBase64Url(jwk.y!)],
      ]),
    );
    const authData = concat(
      await sha256(new TextEncoder().encode(rpId)),
      new Uint8Array([0x45]), // user present, user verified, attested credential data
      uint32(0),
      new Uint8Array(16), // AAGUID
      new Uint8Array([idBytes.length >> 8, idBytes.length & 0xff]),
      idBytes,
      coseKey,
    );
    const attestationObject = cbor(
      new Map<string, unknown>([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]),
    );
    return {
      id,
      rawId: id,
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: {},
      response: {
        clientDataJSON: clientData("webauthn.create", options.challenge, origin),
        attestationObject: toBase64Url(attestationObject),
        transports: ["internal"],
      },
    };
  }

  /**
   * An assertion for `options` (request options JSON) on a page at
   * `origin`, by credential `id` (default: the newest for the RP ID);
   * `counter` overrides the next signature counter.
   */
  async get(
    options: CredentialJSON,
    origin: string,
    { id, counter }: { id?: string; counter?: number } = {},
  ): Promise<CredentialJSON> {
    const credential = this.#credentials.findLast((c) =>
      c.rpId === options.rpId && (id === undefined || c.id === id)
    );
    if (!credential) throw new Error(`No credential for ${options.rpId}`);
    if (this.#counts) credential.counter = counter ?? credential.counter + 1;
    const authData = concat(
      await sha256(new TextEncoder().encode(credential.rpId)),
      new Uint8Array([0x05]), // user present, user verified
      uint32(this.#counts ? credential.counter : 0),
    );
    const clientDataJSON = clientData("webauthn.get", options.challenge, origin);
    const signed = concat(authData, await sha256(fromBase64Url(clientDataJSON)));
    const raw = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        credential.keys.privateKey,
        signed,
      ),
    );
    return {
      id: credential.id,
      rawId: credential.id,
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: {},
      response: {
        clientDataJSON,
        authenticatorData: toBase64Url(authData),
        signature: toBase64Url(derSignature(raw)),
        userHandle: credential.userHandle,
      },
    };
  }
}

function clientData(type: string, challenge: string, origin: string): string {
  const json = JSON.stringify({ type, challenge, origin, crossOrigin: false });
  return toBase64Url(new TextEncoder().encode(json));
}

/** Web Crypto's raw `r‖s` ECDSA signature as the DER that WebAuthn carries. */
function derSignature(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array) => {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    const trimmed = bytes.subarray(start);
    const value = trimmed[0] & 0x80 ? concat(new Uint8Array([0]), trimmed) : trimmed;
    return concat(new Uint8Array([0x02, value.length]), value);
  };
  const body = concat(integer(raw.subarray(0, 32)), integer(raw.subarray(32)));
  return concat(new Uint8Array([0x30, body.length]), body);
}

/** A minimal CBOR encoder: integers, byte and text strings, maps. */
function cbor(value: unknown): Uint8Array<ArrayBuffer> {
  const head = (major: number, length: number) =>
    length < 24
      ? new Uint8Array([(major << 5) | length])
      : length < 256
      ? new Uint8Array([(major << 5) | 24, length])
      : new Uint8Array([(major << 5) | 25, length >> 8, length & 0xff]);
  if (typeof value === "number") return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (value instanceof Uint8Array) return concat(head(2, value.length), value);
  if (typeof value === "string") {
    const bytes = new TextEncoder().encode(value);
    return concat(head(3, bytes.length), bytes);
  }
  if (value instanceof Map) {
    const parts = [head(5, value.size)];
    for (const [k, v] of value) parts.push(cbor(k), cbor(v));
    return concat(...parts);
  }
  throw new TypeError(`Cannot encode ${typeof value} as CBOR`);
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
}

function uint32(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const binary = atob(
    text.replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(text.length / 4) * 4, "="),
  );
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
