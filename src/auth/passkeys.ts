/**
 * The WebAuthn ceremonies, with `@simplewebauthn/server`: register a new
 * account (a passkey and the name the guest wants to keep), sign in with a
 * discoverable passkey (no name asked: the authenticator says whose it is,
 * so a passkey synced to, or copied onto, another browser or device signs
 * in to the same account), and add one more passkey to a signed-in account.
 *
 * Each ceremony is two steps: its options carry a fresh random challenge,
 * stored with what the ceremony is for ({@linkcode Challenge}) until it is
 * answered or expires (`challengeTtlMs`, 120 s by default); the verify step
 * takes it from the store (once: a replayed answer finds it gone) and checks
 * the answer against it: its origin must be one the relying party allows
 * (`relying_party.ts`), its RP ID hash that RP ID, its signature the
 * stored public key's, and its signature counter must move on (recorded
 * atomically, so a replay that raced the original is refused too).
 *
 * Results are data: `{ok: true, value}`, or `{ok: false, code, message}`
 * with a stable code and a Deno-style message (`Cannot sign in: …`).
 *
 * @module
 */

import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import { DEFAULTS } from "../config.ts";
import { checkName } from "../names.ts";
import type { Account, AccountStore, Challenge, Passkey } from "../store/accounts.ts";
import { type RelyingParty, relyingParty } from "./relying_party.ts";
import { type AnswerProblem, readAnswer } from "./webauthn_answer.ts";

/** The name browsers show for this site in their passkey dialogs, by default. */
export const RP_NAME = "Deno Chat";
/** A passkey's label when its owner gives none. */
export const DEFAULT_LABEL = "Passkey";
/** Longest passkey label, in characters. */
export const MAX_LABEL_LENGTH = 64;

/** Why a ceremony was refused: a stable code. */
export type CeremonyCode =
  | "invalid_message"
  | "no_relying_party"
  | "name_reserved"
  | "account_limit"
  | "challenge_invalid"
  | "unknown_credential"
  | "verification_failed"
  | "replayed"
  | "credential_exists"
  | "passkey_limit";

/** A ceremony's result. */
export type Ceremony<T> = { ok: true; value: T } | {
  ok: false;
  code: CeremonyCode;
  message: string;
};

/** Options for {@linkcode Passkeys}. */
export interface PasskeysOptions {
  /** Where accounts, passkeys and challenges live. */
  accounts: AccountStore;
  /**
   * The server's public origins (`PUBLIC_ORIGIN`, Deno Deploy's URLs): the
   * first one's host name is the RP ID. Without them only `localhost` works.
   * @default {[]}
   */
  publicOrigins?: string[];
  /**
   * Accounts the store may hold.
   * @default {DEFAULTS.maxAccounts}
   */
  maxAccounts?: number;
  /**
   * How long a ceremony's options may be answered, in ms (at most 300 s;
   * browsers time a ceremony out after the same).
   * @default {DEFAULTS.challengeTtlMs}
   */
  challengeTtlMs?: number;
  /**
   * The site's name in the browser's passkey dialogs.
   * @default {RP_NAME}
   */
  rpName?: string;
  /**
   * The wall clock, in ms since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
}

/** A verified registration: the new account and its passkey. */
export interface Registered {
  account: Account;
  passkey: Passkey;
}

/**
 * The ceremonies, over one account store.
 *
 * @example Usage
 * ```ts ignore
 * import { Passkeys } from "./passkeys.ts";
 * const passkeys = new Passkeys({ accounts });
 * const options = await passkeys.registrationOptions(req, "ada"); // to navigator.credentials.create
 * const done = await passkeys.verifyRegistration(credential.toJSON(), "Laptop");
 * if (done.ok) done.value.account.id; // "3f2a…", 16 hex characters
 * ```
 */
export class Passkeys {
  #accounts: AccountStore;
  #publicOrigins: string[];
  #maxAccounts: number;
  #ttlMs: number;
  #rpName: string;
  #now: () => number;

  /** Creates the ceremonies; see {@linkcode PasskeysOptions}. */
  constructor(options: PasskeysOptions) {
    this.#accounts = options.accounts;
    this.#publicOrigins = options.publicOrigins ?? [];
    this.#maxAccounts = options.maxAccounts ?? DEFAULTS.maxAccounts;
    this.#ttlMs = options.challengeTtlMs ?? DEFAULTS.challengeTtlMs;
    this.#rpName = options.rpName ?? RP_NAME;
    this.#now = options.now ?? Date.now;
    if (!(this.#ttlMs >= 1000 && this.#ttlMs <= 300_000)) {
      throw new RangeError(`Cannot use passkeys: challengeTtlMs must be 1–300 s (${this.#ttlMs})`);
    }
  }

  /**
   * Options for `navigator.credentials.create()` that make a new account
   * holding `name`: refused when the name is invalid, reserved by an account
   * (`name_reserved`), or the store is full (`account_limit`).
   */
  async registrationOptions(
    req: Request,
    name: unknown,
  ): Promise<Ceremony<PublicKeyCredentialCreationOptionsJSON>> {
    const action = "register";
    const rp = this.#party(req, action);
    if (!rp.ok) return rp;
    const checked = checkName(name, "name");
    if (!checked.ok) return refuse("invalid_message", reword(checked.message, action));
    if (await this.#accounts.nameOwner(checked.name) !== null) {
      return refuse("name_reserved", `Cannot register: the name '${checked.name}' is reserved`);
    }
    if (await this.#accounts.count() >= this.#maxAccounts) return accountLimit();
    const accountId = newAccountId();
    return await this.#creationOptions(rp.value, "register", accountId, checked.name, []);
  }

  /**
   * Checks the answer to {@linkcode Passkeys.registrationOptions} and
   * creates the account with its passkey, labelled `label`.
   */
  async verifyRegistration(response: unknown, label: unknown): Promise<Ceremony<Registered>> {
    const checked = await this.checkRegistration(response, label);
    return checked.ok ? await this.createRegistered(checked.value) : checked;
  }

  /**
   * The first half of {@linkcode Passkeys.verifyRegistration}: checks the
   * answer (taking its challenge) and answers the account it would create,
   * stored by {@linkcode Passkeys.createRegistered}; a caller counts it
   * in between.
   */
  async checkRegistration(response: unknown, label: unknown): Promise<Ceremony<Registered>> {
    const verified = await this.#verifyCreation(response, label, "register");
    if (!verified.ok) return verified;
    const { challenge, passkey } = verified.value;
    const account = { id: challenge.accountId!, name: challenge.name!, createdAt: this.#now() };
    return { ok: true, value: { account, passkey } };
  }

  /** Creates a checked registration: the account with its passkey, its name reserved. */
  async createRegistered({ account, passkey }: Registered): Promise<Ceremony<Registered>> {
    const created = await this.#accounts.createAccount({ account, passkey }, this.#maxAccounts);
    if (created.ok) return { ok: true, value: { account, passkey } };
    if (created.code === "name_reserved") {
      return refuse("name_reserved", `Cannot register: the name '${account.name}' is reserved`);
    }
    if (created.code === "account_limit") return accountLimit();
    return refuse("credential_exists", "Cannot register: this passkey is registered already");
  }

  /** Options for `navigator.credentials.create()` that add a passkey to `account`. */
  async addOptions(
    req: Request,
    account: Account,
  ): Promise<Ceremony<PublicKeyCredentialCreationOptionsJSON>> {
    const rp = this.#party(req, "add passkey");
    if (!rp.ok) return rp;
    const existing = await this.#accounts.passkeys(account.id);
    const exclude = existing.map(({ id, transports }) => ({ id, transports }));
    return await this.#creationOptions(rp.value, "add", account.id, account.name, exclude);
  }

  /** Checks the answer to {@linkcode Passkeys.addOptions} and adds the passkey to `account`. */
  async verifyAdd(account: Account, response: unknown, label: unknown): Promise<Ceremony<Passkey>> {
    const verified = await this.#verifyCreation(response, label, "add", account.id);
    if (!verified.ok) return verified;
    const added = await this.#accounts.addPasskey(verified.value.passkey);
    if (added.ok) return added;
    if (added.code === "passkey_limit") {
      return refuse("passkey_limit", "Cannot add passkey: the account holds its most passkeys");
    }
    if (added.code === "credential_exists") {
      return refuse("credential_exists", "Cannot add passkey: this passkey is registered already");
    }
    return refuse("unknown_credential", "Cannot add passkey: the account is gone");
  }

  /** Options for `navigator.credentials.get()`: any discoverable passkey of this site. */
  async authenticationOptions(
    req: Request,
  ): Promise<Ceremony<PublicKeyCredentialRequestOptionsJSON>> {
    const rp = this.#party(req, "sign in");
    if (!rp.ok) return rp;
    const options = await generateAuthenticationOptions({
      rpID: rp.value.rpId,
      userVerification: "preferred",
      timeout: this.#ttlMs,
    });
    await this.#accounts.putChallenge(options.challenge, {
      purpose: "signin",
      ...rp.value,
      expiresAt: this.#now() + this.#ttlMs,
    });
    return { ok: true, value: options };
  }

  /**
   * Checks the answer to {@linkcode Passkeys.authenticationOptions}: the
   * account whose passkey signed it, or why not (`challenge_invalid`,
   * `unknown_credential`, `verification_failed`, `replayed`).
   */
  async verifyAuthentication(
    response: unknown,
  ): Promise<Ceremony<{ account: Account; passkey: Passkey }>> {
    const action = "sign in";
    const answer = readAnswer(response, "get");
    if (!answer.ok) return answerProblem(answer.problem, action);
    const challenge = await this.#take(answer.value.challenge, "signin");
    if (!challenge) return staleChallenge(action);
    const foreign = foreignOrigin(answer.value.origin, challenge, action);
    if (foreign) return foreign;
    const passkey = await this.#accounts.passkey(answer.value.id);
    if (
      !passkey ||
      (answer.value.userHandle !== null && answer.value.userHandle !== passkey.accountId)
    ) {
      return refuse("unknown_credential", "Cannot sign in: this passkey is not registered here");
    }
    let newCounter: number;
    try {
      const { verified, authenticationInfo } = await verifyAuthenticationResponse({
        // deno-lint-ignore no-explicit-any
        response: response as any,
        expectedChallenge: answer.value.challenge,
        expectedOrigin: challenge.origins,
        expectedRPID: challenge.rpId,
        credential: {
          id: passkey.id,
          publicKey: new Uint8Array(passkey.publicKey),
          counter: passkey.counter,
          transports: passkey.transports,
        },
        requireUserVerification: false,
      });
      if (!verified) return doesNotVerify(action);
      newCounter = authenticationInfo.newCounter;
    } catch (error) {
      if (error instanceof Error && /counter/i.test(error.message)) return replayed();
      return doesNotVerify(action);
    }
    if (!await this.#accounts.recordUse(passkey.id, newCounter, this.#now())) return replayed();
    const account = await this.#accounts.account(passkey.accountId);
    if (!account) return refuse("unknown_credential", "Cannot sign in: the account is gone");
    return { ok: true, value: { account, passkey: { ...passkey, counter: newCounter } } };
  }

  #party(req: Request, action: string): Ceremony<RelyingParty> {
    const rp = relyingParty(req, this.#publicOrigins);
    if (rp) return { ok: true, value: rp };
    return refuse(
      "no_relying_party",
      `Cannot ${action}: passkeys work on localhost or an origin in PUBLIC_ORIGIN`,
    );
  }

  async #creationOptions(
    rp: RelyingParty,
    purpose: "register" | "add",
    accountId: string,
    name: string,
    exclude: { id: string; transports?: string[] }[],
  ): Promise<Ceremony<PublicKeyCredentialCreationOptionsJSON>> {
    const options = await generateRegistrationOptions({
      rpName: this.#rpName,
      rpID: rp.rpId,
      userName: name,
      userDisplayName: name,
      userID: new TextEncoder().encode(accountId),
      attestationType: "none",
      authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
      excludeCredentials: exclude,
      timeout: this.#ttlMs,
    });
    await this.#accounts.putChallenge(options.challenge, {
      purpose,
      accountId,
      name,
      ...rp,
      expiresAt: this.#now() + this.#ttlMs,
    });
    return { ok: true, value: options };
  }

  /** Checks a `create()` answer for `purpose`: the challenge it took, and the new passkey. */
  async #verifyCreation(
    response: unknown,
    label: unknown,
    purpose: "register" | "add",
    accountId?: string,
  ): Promise<Ceremony<{ challenge: Challenge; passkey: Passkey }>> {
    const action = purpose === "register" ? "register" : "add passkey";
    const checkedLabel = checkLabel(label, action);
    if (!checkedLabel.ok) return checkedLabel;
    const answer = readAnswer(response, "create");
    if (!answer.ok) return answerProblem(answer.problem, action);
    const challenge = await this.#take(answer.value.challenge, purpose);
    if (!challenge || (accountId !== undefined && challenge.accountId !== accountId)) {
      return staleChallenge(action);
    }
    const foreign = foreignOrigin(answer.value.origin, challenge, action);
    if (foreign) return foreign;
    try {
      const { verified, registrationInfo } = await verifyRegistrationResponse({
        // deno-lint-ignore no-explicit-any
        response: response as any,
        expectedChallenge: answer.value.challenge,
        expectedOrigin: challenge.origins,
        expectedRPID: challenge.rpId,
        requireUserVerification: false,
      });
      if (!verified) return doesNotVerify(action);
      const { credential } = registrationInfo;
      const now = this.#now();
      const passkey: Passkey = {
        id: credential.id,
        accountId: challenge.accountId!,
        publicKey: credential.publicKey,
        counter: credential.counter,
        transports: credential.transports ?? answer.value.transports,
        label: checkedLabel.value,
        createdAt: now,
        lastUsedAt: null,
      };
      return { ok: true, value: { challenge, passkey } };
    } catch {
      return doesNotVerify(action);
    }
  }

  /** Takes the challenge for `purpose`; `null` when unknown, used, expired or for another ceremony. */
  async #take(challenge: string, purpose: Challenge["purpose"]): Promise<Challenge | null> {
    const taken = await this.#accounts.takeChallenge(challenge);
    if (!taken || taken.purpose !== purpose || taken.expiresAt <= this.#now()) return null;
    return taken;
  }
}

/** A new account id: 16 hex characters, as a guest session's user id. */
export function newAccountId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A passkey's label: NFKC-normalised and trimmed, 1–64 characters with no
 * control or invisible characters; {@linkcode DEFAULT_LABEL} when absent.
 */
export function checkLabel(label: unknown, action: string): Ceremony<string> {
  if (label === undefined || label === null) return { ok: true, value: DEFAULT_LABEL };
  const bad = () =>
    refuse(
      "invalid_message",
      `Cannot ${action}: 'label' must be 1–${MAX_LABEL_LENGTH} visible characters`,
    );
  if (typeof label !== "string" || label.length > MAX_LABEL_LENGTH * 4) return bad();
  const value = label.normalize("NFKC").trim();
  const length = [...value].length;
  if (length < 1 || length > MAX_LABEL_LENGTH || /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(value)) {
    return bad();
  }
  return { ok: true, value };
}

function refuse(
  code: CeremonyCode,
  message: string,
): { ok: false; code: CeremonyCode; message: string } {
  return { ok: false, code, message };
}

/** A name check's message (`Cannot join room: …`), worded for `action`. */
function reword(message: string, action: string): string {
  return message.replace(/^Cannot [^:]+:/, `Cannot ${action}:`);
}

function accountLimit() {
  return refuse("account_limit", "Cannot register: the server holds its most accounts");
}

function staleChallenge(action: string) {
  return refuse(
    "challenge_invalid",
    `Cannot ${action}: the challenge is unknown, used or expired; ask for new options`,
  );
}

function doesNotVerify(action: string) {
  return refuse("verification_failed", `Cannot ${action}: the passkey's answer does not verify`);
}

function replayed() {
  return refuse(
    "replayed",
    "Cannot sign in: the passkey's counter did not move on (a replayed answer, or a copied passkey)",
  );
}

/** A refusal when the answer was made on an origin the challenge does not allow. */
function foreignOrigin(origin: string, challenge: Challenge, action: string) {
  if (challenge.origins.includes(origin)) return null;
  return refuse(
    "verification_failed",
    `Cannot ${action}: the passkey's answer was made on another origin (${origin.slice(0, 100)})`,
  );
}

function answerProblem(problem: AnswerProblem, action: string) {
  return refuse("invalid_message", `Cannot ${action}: 'response' ${problem}`);
}
