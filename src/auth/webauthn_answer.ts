/**
 * Reading a WebAuthn answer as the page sends it (`credential.toJSON()` of
 * `navigator.credentials.create()` or `.get()`) before anything is looked
 * up: its shape, its sizes, and the fields of its `clientDataJSON` that
 * decide which stored challenge and passkey it is about. Pure code; the
 * signature is checked by `@simplewebauthn/server` afterwards.
 *
 * @module
 */

/** Longest credential id accepted, in base64url characters (WebAuthn allows 1,023 bytes). */
const MAX_ID_LENGTH = 1366;
/** Longest `clientDataJSON`, `authenticatorData` or `signature`, in base64url characters. */
const MAX_FIELD_LENGTH = 8192;
/** Longest `attestationObject`, in base64url characters. */
const MAX_ATTESTATION_LENGTH = 16_384;
/** Longest challenge, in base64url characters (this server makes 43). */
const MAX_CHALLENGE_LENGTH = 128;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The parts of an answer the ceremony needs before verifying it. */
export interface Answer {
  /** The credential id (base64url). */
  id: string;
  /** The challenge the authenticator signed (base64url), from `clientDataJSON`. */
  challenge: string;
  /** The page origin the browser reports, from `clientDataJSON`. */
  origin: string;
  /** A `get()` answer's user handle, decoded as text (the account id); else `null`. */
  userHandle: string | null;
  /** A `create()` answer's transports; else empty. */
  transports: string[];
}

/** What is wrong with an answer, as the end of `'response' …`. */
export type AnswerProblem = string;

/**
 * Reads `value`, the JSON of a `create()` or `get()` credential (`kind`).
 *
 * @example Usage
 * ```ts
 * import { readAnswer } from "./webauthn_answer.ts";
 * readAnswer({}, "get"); // { ok: false, problem: "must be the credential's toJSON()" }
 * ```
 */
export function readAnswer(
  value: unknown,
  kind: "create" | "get",
): { ok: true; value: Answer } | { ok: false; problem: AnswerProblem } {
  const wrong = { ok: false as const, problem: "must be the credential's toJSON()" };
  if (!isObject(value) || !isObject(value.response)) return wrong;
  const { id, rawId, type, response } = value;
  if (!isBase64Url(id, MAX_ID_LENGTH) || id === "" || rawId !== id || type !== "public-key") {
    return { ok: false, problem: "must have a base64url 'id' and 'rawId' and type 'public-key'" };
  }
  if (!isBase64Url(response.clientDataJSON, MAX_FIELD_LENGTH)) return wrong;
  const clientData = decodeJson(response.clientDataJSON);
  if (
    !isObject(clientData) || clientData.type !== `webauthn.${kind}` ||
    !isBase64Url(clientData.challenge, MAX_CHALLENGE_LENGTH) || clientData.challenge === "" ||
    typeof clientData.origin !== "string"
  ) {
    return { ok: false, problem: `must carry the client data of a ${kind}() ceremony` };
  }
  const answer: Answer = {
    id,
    challenge: clientData.challenge,
    origin: clientData.origin,
    userHandle: null,
    transports: [],
  };
  if (kind === "create") {
    if (!isBase64Url(response.attestationObject, MAX_ATTESTATION_LENGTH)) return wrong;
    const transports = response.transports;
    if (Array.isArray(transports) && transports.every((t) => typeof t === "string")) {
      answer.transports = transports.slice(0, 8).map((t) => t.slice(0, 32));
    }
    return { ok: true, value: answer };
  }
  if (
    !isBase64Url(response.authenticatorData, MAX_FIELD_LENGTH) ||
    !isBase64Url(response.signature, MAX_FIELD_LENGTH)
  ) {
    return wrong;
  }
  const handle = response.userHandle;
  if (handle !== undefined && handle !== null) {
    if (!isBase64Url(handle, 128)) return wrong;
    answer.userHandle = decodeText(handle) ?? ""; // not UTF-8: no account's
  }
  return { ok: true, value: answer };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isBase64Url(value: unknown, max: number): value is string {
  return typeof value === "string" && value.length <= max && BASE64URL.test(value);
}

/** Decodes base64url text as UTF-8; `null` when it is not. */
function decodeText(text: string): string | null {
  try {
    const binary = atob(
      text.replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(text.length / 4) * 4, "="),
    );
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function decodeJson(text: string): unknown {
  const decoded = decodeText(text);
  if (decoded === null) return null;
  try {
    return JSON.parse(decoded);
  } catch {
    return null;
  }
}
