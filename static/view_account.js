/**
 * The account panel (a dialog opened from the header's "Account"): for a
 * guest, "Keep this name" (register the tab's name with a passkey) and "Sign
 * in with a passkey"; signed in, the account's name (and a form to rename
 * it), its passkeys (add one, remove one after a confirmation; the server
 * refuses the last) and "Sign out". It also puts "Sign in with a passkey"
 * in the nickname dialog, where a name that belongs to an account sends
 * the guest.
 *
 * What changes is said in a live region (`role="status"`); the server's
 * refusals are shown as it words them. Elements are made with the DOM, never
 * with `innerHTML`; no inline script or style (the page's CSP).
 *
 * @module
 */

/** @typedef {import("./account.js").AccountApi} AccountApi */
/** @typedef {import("./account.js").Me} Me */
/** @typedef {import("./account.js").PasskeyInfo} PasskeyInfo */

/**
 * The panel's elements (from `index.html`).
 *
 * @typedef {object} AccountParts
 * @property {HTMLButtonElement} open The header's "Account".
 * @property {HTMLDialogElement} dialog
 * @property {HTMLElement} close
 * @property {HTMLElement} status The live region.
 * @property {HTMLElement} guest The guest's part.
 * @property {HTMLElement} guestText
 * @property {HTMLButtonElement} register "Keep this name".
 * @property {HTMLButtonElement} signIn
 * @property {HTMLElement} signed The signed-in part.
 * @property {HTMLElement} name The account's name.
 * @property {HTMLFormElement} renameForm
 * @property {HTMLInputElement} renameInput
 * @property {HTMLUListElement} passkeys
 * @property {HTMLButtonElement} addPasskey
 * @property {HTMLButtonElement} signOut
 * @property {HTMLDialogElement} removeDialog The confirmation before removing a passkey.
 * @property {HTMLElement} removeText
 * @property {HTMLElement} joinBox The nickname dialog's account part.
 * @property {HTMLElement} joinText
 * @property {HTMLButtonElement} joinSignIn
 */

/**
 * What the panel needs of the page.
 *
 * @typedef {object} AccountHandlers
 * @property {AccountApi} api
 * @property {() => string} guestName The tab's name, for "Keep this name".
 * @property {(me: Me) => void} onAccount Signed in (on load, a sign-in, a registration):
 *   the page makes the client the account's.
 * @property {() => void} onSignOut Signed out here: the page goes back to a guest.
 * @property {() => void} [onSignInElsewhere] Another tab of this browser signed in (the
 *   browser's cookie is now that session's).
 */

const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

/** The account panel. */
export class AccountPanel {
  /** @type {AccountParts} */
  #p;
  /** @type {AccountHandlers} */
  #h;
  /** The signed-in account, or null. @type {Me | null} */
  #me = null;
  /** Whether the server has accounts (and the browser passkeys). */
  #enabled = false;
  /** True while a request runs: the buttons wait. */
  #busy = false;
  /** The passkey the confirmation asks about. @type {PasskeyInfo | null} */
  #removing = null;
  /** Tells the browser's other tabs of a sign-in. @type {BroadcastChannel | null} */
  #channel = null;

  /**
   * @param {AccountParts} parts
   * @param {AccountHandlers} handlers
   */
  constructor(parts, handlers) {
    this.#p = parts;
    this.#h = handlers;
    parts.open.addEventListener("click", () => this.show());
    parts.close.addEventListener("click", () => parts.dialog.close());
    parts.register.addEventListener("click", () => this.#register());
    parts.signIn.addEventListener("click", () => this.signIn());
    parts.joinSignIn.addEventListener("click", () => this.signIn(parts.joinText));
    parts.addPasskey.addEventListener("click", () => this.#addPasskey());
    parts.signOut.addEventListener("click", () => this.#signOut());
    parts.renameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#rename();
    });
    parts.removeDialog.addEventListener("close", () => {
      const passkey = this.#removing;
      this.#removing = null;
      const confirmed = parts.removeDialog.returnValue === "remove";
      parts.removeDialog.returnValue = "";
      if (passkey && confirmed) this.#remove(passkey);
      else this.#focusPasskey(passkey?.id);
    });
    if (typeof BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel("chat.account");
      this.#channel.addEventListener("message", (event) => {
        if (event.data?.type === "signed-in") handlers.onSignInElsewhere?.();
      });
    }
  }

  /** The signed-in account (`GET /auth/me`), or null for a guest. */
  get me() {
    return this.#me;
  }

  /** True while the panel is open. */
  get open() {
    return this.#p.dialog.open || this.#p.removeDialog.open;
  }

  /**
   * Asks the server who is signed in, and shows it; `onAccount` runs when
   * someone is. Hides every account control when the server has no
   * accounts or the browser no passkeys.
   *
   * @returns {Promise<Me | null>}
   */
  async load() {
    const me = await this.#h.api.me();
    this.#enabled = this.#h.api.supported && (me.ok || me.code !== "not_found");
    this.#p.open.hidden = !this.#enabled;
    this.#p.joinBox.hidden = !this.#enabled;
    if (!me.ok) {
      this.#render();
      return null;
    }
    this.#signedIn(me.value);
    return me.value;
  }

  /**
   * Opens the panel; `focus` "rename" puts the cursor in the name field.
   *
   * @param {{ focus?: "rename" }} [options]
   */
  show({ focus } = {}) {
    if (!this.#enabled) return;
    this.#say("");
    this.#render();
    if (!this.#p.dialog.open) this.#p.dialog.showModal();
    if (this.#me && focus === "rename") {
      this.#p.renameInput.focus();
      this.#p.renameInput.select();
    } else if (this.#me) this.#p.signOut.focus();
    else (this.#p.register.disabled ? this.#p.signIn : this.#p.register).focus();
  }

  /**
   * The nickname dialog opens: its account part says that the name
   * `reserved` belongs to an account when the server said so, or offers
   * sign-in.
   *
   * `signedOut` says the account's session just ended.
   *
   * @param {{ reserved?: string, signedOut?: boolean }} [options]
   */
  prompted({ reserved, signedOut = false } = {}) {
    const text = this.#p.joinText;
    text.textContent = reserved
      ? `The name “${reserved}” belongs to an account. If it is yours, sign in with its passkey; if not, choose another name.`
      : signedOut
      ? "Signed out. Choose a nickname to go on as a guest, or sign in again with your passkey."
      : "Have an account? Sign in with its passkey.";
    text.dataset.reserved = String(Boolean(reserved));
  }

  /** The account's session ended (here or elsewhere): the panel shows a guest's. */
  signedOut() {
    this.#me = null;
    this.#render();
    if (this.#p.removeDialog.open) this.#p.removeDialog.close();
    if (this.#p.dialog.open) this.#p.dialog.close();
  }

  /**
   * Signs in with a passkey; what happens is said in `where` (the panel's
   * live region by default).
   *
   * @param {HTMLElement} [where]
   */
  async signIn(where = this.#p.status) {
    await this.#run(where, "Waiting for your passkey…", async () => {
      const done = await this.#h.api.signIn();
      if (!done.ok) return done.message;
      const me = await this.#h.api.me();
      if (!me.ok) return me.message;
      this.#signedIn(me.value);
      this.#channel?.postMessage({ type: "signed-in" });
      return `Signed in as ${me.value.account.name}.`;
    });
  }

  async #register() {
    const name = this.#h.guestName().trim();
    if (!name) return this.#say("Choose a nickname first, then keep it.");
    await this.#run(this.#p.status, `Making a passkey for “${name}”…`, async () => {
      const done = await this.#h.api.register(name, passkeyLabel());
      if (!done.ok) return done.message;
      const me = await this.#h.api.me();
      if (!me.ok) return me.message;
      this.#signedIn(me.value);
      this.#channel?.postMessage({ type: "signed-in" });
      this.#p.signOut.focus();
      return `Signed in as ${me.value.account.name}: the name is yours, with this passkey.`;
    });
  }

  async #addPasskey() {
    await this.#run(this.#p.status, "Waiting for the new passkey…", async () => {
      const done = await this.#h.api.addPasskey(passkeyLabel());
      if (!done.ok) return done.message;
      await this.#refresh();
      return `Passkey added: ${done.value.passkey.label}.`;
    });
  }

  /** @param {PasskeyInfo} passkey */
  async #remove(passkey) {
    await this.#run(this.#p.status, `Removing ${passkey.label}…`, async () => {
      const done = await this.#h.api.removePasskey(passkey.id);
      if (!done.ok) {
        this.#focusPasskey(passkey.id);
        return done.message;
      }
      await this.#refresh();
      this.#p.addPasskey.focus();
      return `Passkey removed: ${passkey.label}.`;
    });
  }

  async #rename() {
    const name = this.#p.renameInput.value.trim();
    if (!name || name === this.#me?.account.name) return;
    await this.#run(this.#p.status, "Renaming…", async () => {
      const done = await this.#h.api.rename(name);
      if (!done.ok) return done.message;
      if (this.#me) this.#me.account = done.value.account;
      this.#render();
      return `Your name is now ${done.value.account.name}.`;
    });
  }

  async #signOut() {
    await this.#run(this.#p.status, "Signing out…", async () => {
      const done = await this.#h.api.signOut();
      if (!done.ok) return done.message;
      this.signedOut();
      this.#h.onSignOut();
      return "Signed out.";
    });
  }

  /** The account's passkeys again, after a change. */
  async #refresh() {
    const me = await this.#h.api.me();
    if (me.ok) this.#me = me.value;
    this.#render();
  }

  /** @param {Me} me */
  #signedIn(me) {
    this.#me = me;
    this.#render();
    this.#h.onAccount(me);
  }

  /**
   * Runs one request with the buttons waiting; its answer (a sentence) goes
   * to `where`.
   *
   * @param {HTMLElement} where
   * @param {string} waiting
   * @param {() => Promise<string>} task
   */
  async #run(where, waiting, task) {
    if (this.#busy) return;
    this.#busy = true;
    this.#setBusy(true);
    this.#say(waiting, where);
    try {
      this.#say(await task(), where);
    } finally {
      this.#busy = false;
      this.#setBusy(false);
    }
  }

  /** @param {boolean} busy */
  #setBusy(busy) {
    const p = this.#p;
    for (const button of [p.register, p.signIn, p.joinSignIn, p.addPasskey, p.signOut]) {
      button.disabled = busy;
    }
    if (!busy && !this.#h.guestName().trim()) p.register.disabled = true;
    p.dialog.setAttribute("aria-busy", String(busy));
  }

  /**
   * @param {string} text
   * @param {HTMLElement} [where]
   */
  #say(text, where = this.#p.status) {
    where.textContent = text;
  }

  /** Shows the guest's part or the account's. */
  #render() {
    const p = this.#p;
    const me = this.#me;
    p.guest.hidden = Boolean(me);
    p.signed.hidden = !me;
    p.open.textContent = me ? "Account" : "Sign in";
    p.open.dataset.signedIn = String(Boolean(me));
    if (!me) {
      const name = this.#h.guestName();
      p.guestText.textContent = name
        ? `You are a guest: “${name}” is yours while this tab is open. Keep it with a passkey, on this device and on every other that has the passkey.`
        : "You are a guest. Sign in with a passkey, or choose a nickname and keep it.";
      p.register.textContent = name ? `Keep the name “${name}”` : "Keep this name";
      p.register.disabled = !name || this.#busy;
      return;
    }
    p.name.textContent = me.account.name;
    if (document.activeElement !== p.renameInput) p.renameInput.value = me.account.name;
    p.passkeys.replaceChildren(...me.passkeys.map((passkey) => this.#passkeyItem(passkey)));
  }

  /** @param {PasskeyInfo} passkey */
  #passkeyItem(passkey) {
    const li = document.createElement("li");
    li.className = "passkey";
    li.dataset.id = passkey.id;
    const label = document.createElement("span");
    label.className = "passkey-label";
    label.textContent = passkey.label;
    const when = document.createElement("span");
    when.className = "hint";
    when.textContent = `added ${DATE.format(passkey.createdAt)}` +
      (passkey.lastUsedAt ? `, last used ${DATE.format(passkey.lastUsedAt)}` : "");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary small";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove passkey ${passkey.label}, ${when.textContent}`);
    remove.addEventListener("click", () => this.#confirmRemove(passkey));
    li.append(label, " ", when, " ", remove);
    return li;
  }

  /** @param {PasskeyInfo} passkey */
  #confirmRemove(passkey) {
    if (this.#busy) return;
    this.#removing = passkey;
    this.#p.removeText.textContent = (this.#me?.passkeys.length ?? 0) > 1
      ? `“${passkey.label}” will no longer sign in to ${this.#me?.account.name}.`
      : `“${passkey.label}” is the account's only passkey: the server keeps the last one.`;
    this.#p.removeDialog.returnValue = "";
    this.#p.removeDialog.showModal();
  }

  /** Puts the focus back on a passkey's Remove (or on Add). @param {string} [id] */
  #focusPasskey(id) {
    const item = [...this.#p.passkeys.children].find((li) =>
      /** @type {HTMLElement} */ (li).dataset.id === id
    );
    const button = item?.querySelector("button");
    (button ?? this.#p.addPasskey).focus();
  }
}

/** A label for a new passkey: the browser's platform, when it says. */
function passkeyLabel() {
  const nav = /** @type {any} */ (globalThis.navigator);
  const platform = String(nav?.userAgentData?.platform || nav?.platform || "").slice(0, 40);
  return platform ? `Passkey on ${platform}` : "Passkey";
}
