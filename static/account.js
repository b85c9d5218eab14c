/**
 * The account API of the page (`/auth/…`, see the README's "Accounts"):
 * who is signed in, the passkey ceremonies (options from the server, the
 * browser's own `navigator.credentials`, the answer back), sign-out, the
 * passkeys and the name. No DOM: Deno tests import it with a `fetch` and a
 * `credentials` of their own.
 *
 * Every call resolves, never rejects: `{ ok: true, value }`, or
 * `{ ok: false, status, code, message }` with the server's error code and
 * message (`name_reserved`, `last_passkey`, …), or one of the page's own:
 * `unsupported` (no WebAuthn here), `cancelled` (the browser's prompt was
 * dismissed or timed out), `network` (no answer).
 *
 * @module
 */

/** An account as the server describes it. @typedef {{ id: string, name: string, createdAt?: number }} Account */

/**
 * A passkey as the server lists it (never its key).
 *
 * @typedef {{ id: string, label: string, transports?: string[], createdAt: number,
 *   lastUsedAt?: number }} PasskeyInfo
 */

/**
 * What `GET /auth/me` answers.
 *
 * @typedef {{ account: Account, passkeys: PasskeyInfo[],
 *   rooms: { room: string, joinedAt?: number, readId?: number }[], blocks: string[] }} Me
 */

/** A refusal, as data. @typedef {{ ok: false, status: number, code: string, message: string }} Refusal */

/**
 * An answer: the value, or why not.
 *
 * @template T
 * @typedef {{ ok: true, value: T } | Refusal} Result
 */

/**
 * What {@linkcode AccountApi} uses of the browser.
 *
 * @typedef {object} AccountApiOptions
 * @property {typeof fetch} [fetch] The global `fetch` by default.
 * @property {Pick<CredentialsContainer, "create" | "get"> | null} [credentials]
 *   `navigator.credentials` by default.
 * @property {any} [PublicKeyCredential] The global one by default (its
 *   `parseCreationOptionsFromJSON` and `parseRequestOptionsFromJSON`).
 */

/**
 * @param {number} status
 * @param {string} code
 * @param {string} message
 * @returns {Refusal}
 */
function refusal(status, code, message) {
  return { ok: false, status, code, message };
}

/** The account routes, with errors as data. */
export class AccountApi {
  /** @type {typeof fetch} */
  #fetch;
  /** @type {Pick<CredentialsContainer, "create" | "get"> | null} */
  #credentials;
  /** @type {any} */
  #PublicKeyCredential;

  /** @param {AccountApiOptions} [options] */
  constructor(options = {}) {
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#credentials = options.credentials !== undefined
      ? options.credentials
      : globalThis.navigator?.credentials ?? null;
    this.#PublicKeyCredential = options.PublicKeyCredential ??
      /** @type {any} */ (globalThis).PublicKeyCredential;
  }

  /** Whether this browser can use passkeys (WebAuthn with the JSON helpers). */
  get supported() {
    const P = this.#PublicKeyCredential;
    return Boolean(
      this.#credentials && P && typeof P.parseCreationOptionsFromJSON === "function" &&
        typeof P.parseRequestOptionsFromJSON === "function",
    );
  }

  /**
   * Who is signed in: the account, its passkeys, rooms and blocks;
   * `auth_required` (401) for a guest, `not_found` (404) when accounts are
   * off on this server.
   *
   * @returns {Promise<Result<Me>>}
   */
  me() {
    return this.#call("GET", "/auth/me");
  }

  /**
   * Registers `name` with a new passkey, and signs in.
   *
   * @param {string} name
   * @param {string} [label] The passkey's name in the list.
   * @returns {Promise<Result<{ account: Account, passkey: PasskeyInfo }>>}
   */
  async register(name, label) {
    const options = await this.#call("POST", "/auth/register/options", { name });
    if (!options.ok) return options;
    const response = await this.#create(options.value);
    if (!response.ok) return response;
    return await this.#call("POST", "/auth/register/verify", withLabel(response.value, label));
  }

  /**
   * Signs in with a passkey the browser offers (no name asked).
   *
   * @returns {Promise<Result<{ account: Account }>>}
   */
  async signIn() {
    const options = await this.#call("POST", "/auth/signin/options", {});
    if (!options.ok) return options;
    if (!this.supported) return unsupported();
    /** @type {any} */
    let credential;
    try {
      const publicKey = this.#PublicKeyCredential.parseRequestOptionsFromJSON(options.value);
      credential = await this.#credentials?.get({ publicKey });
    } catch (error) {
      return fromBrowser(error);
    }
    if (!credential) return refusal(0, "cancelled", "No passkey was chosen.");
    return await this.#call("POST", "/auth/signin/verify", { response: credential.toJSON() });
  }

  /**
   * Signs out: the session ends on every tab and device that shares it.
   *
   * @returns {Promise<Result<null>>}
   */
  signOut() {
    return this.#call("POST", "/auth/signout");
  }

  /** @returns {Promise<Result<{ passkeys: PasskeyInfo[] }>>} */
  passkeys() {
    return this.#call("GET", "/auth/passkeys");
  }

  /**
   * Adds a passkey to the signed-in account.
   *
   * @param {string} [label]
   * @returns {Promise<Result<{ passkey: PasskeyInfo }>>}
   */
  async addPasskey(label) {
    const options = await this.#call("POST", "/auth/passkeys/options", {});
    if (!options.ok) return options;
    const response = await this.#create(options.value);
    if (!response.ok) return response;
    return await this.#call("POST", "/auth/passkeys/verify", withLabel(response.value, label));
  }

  /**
   * Removes passkey `id` (`last_passkey` for the account's last one).
   *
   * @param {string} id
   * @returns {Promise<Result<null>>}
   */
  removePasskey(id) {
    return this.#call("DELETE", `/auth/passkeys/${encodeURIComponent(id)}`);
  }

  /**
   * Gives the account another name.
   *
   * @param {string} name
   * @returns {Promise<Result<{ account: Account }>>}
   */
  rename(name) {
    return this.#call("POST", "/auth/rename", { name });
  }

  /**
   * `navigator.credentials.create()` for creation options in JSON; answers
   * the credential's `toJSON()`.
   *
   * @param {unknown} json
   * @returns {Promise<Result<unknown>>}
   */
  async #create(json) {
    if (!this.supported) return unsupported();
    try {
      const publicKey = this.#PublicKeyCredential.parseCreationOptionsFromJSON(json);
      /** @type {any} */
      const credential = await this.#credentials?.create({ publicKey });
      if (!credential) return refusal(0, "cancelled", "No passkey was made.");
      return { ok: true, value: credential.toJSON() };
    } catch (error) {
      return fromBrowser(error);
    }
  }

  /**
   * One request: JSON in and out; a 204 is `null`.
   *
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<Result<any>>}
   */
  async #call(method, path, body) {
    /** @type {Response} */
    let response;
    try {
      response = await this.#fetch(path, {
        method,
        credentials: "same-origin",
        ...(body === undefined
          ? {}
          : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      });
    } catch {
      return refusal(0, "network", "The server cannot be reached; try again.");
    }
    if (response.status === 204) {
      await response.body?.cancel();
      return { ok: true, value: null };
    }
    /** @type {any} */
    let json = null;
    try {
      json = await response.json();
    } catch { /* not JSON: said below */ }
    if (response.ok && json !== null) return { ok: true, value: json };
    const error = json?.error;
    return refusal(
      response.status,
      typeof error?.code === "string" ? error.code : "unavailable",
      typeof error?.message === "string"
        ? error.message
        : `The server answered ${response.status}; try again.`,
    );
  }
}

/**
 * @param {unknown} response
 * @param {string | undefined} label
 */
function withLabel(response, label) {
  return label ? { response, label } : { response };
}

/** @returns {Refusal} */
function unsupported() {
  return refusal(0, "unsupported", "This browser cannot use passkeys.");
}

/**
 * What a WebAuthn call's rejection means for the person.
 *
 * @param {unknown} error
 * @returns {Refusal}
 */
function fromBrowser(error) {
  const name = /** @type {{ name?: string }} */ (error)?.name;
  if (name === "NotAllowedError" || name === "AbortError") {
    return refusal(0, "cancelled", "The passkey prompt was cancelled or timed out.");
  }
  if (name === "InvalidStateError") {
    return refusal(0, "credential_exists", "This device already holds a passkey of the account.");
  }
  if (name === "SecurityError") {
    return refusal(0, "unsupported", "Passkeys do not work on this address (use localhost).");
  }
  const message = /** @type {{ message?: string }} */ (error)?.message;
  return refusal(0, "failed", `The passkey could not be used${message ? `: ${message}` : "."}`);
}
