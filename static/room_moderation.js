/**
 * What a room's moderation means for this client, with no DOM: its own role
 * (`welcome.role`), the roles of the others (the welcome's members, then the
 * `promote`, `demote` and `owner` events), the topic, slow mode's interval
 * (from `slow` events: the welcome does not carry it), whether this client is
 * muted (the `muted` notice, `muted` errors, `mute` and `unmute` events) and
 * why it was last removed (a `kick` or `ban` of it, before the server's
 * `left`), and, for moderators, the open reports. The mute and the slow
 * interval go to the client's storage, so a reload still knows them.
 *
 * @module
 */

/** @typedef {import("./moderation_text.js").Role} Role */
/** @typedef {import("./moderation_text.js").ModEvent} ModEvent */

/**
 * A report, as moderators see it.
 *
 * @typedef {{ id: string, ref: number, reason: string, by: { id: string, name: string },
 *   at: number }} Report
 */

/** A mute of this client: until when (absent: for good), and why. @typedef {{ until?: number,
 *   reason?: string }} Mute */

/**
 * A kick or ban of this client, as its event told it.
 *
 * @typedef {{ action: string, until?: number, reason?: string, by?: string }} Sanction
 */

/** What a change touched, for the client's events. @typedef {Set<"role" | "roles" | "topic" |
 *   "slow" | "mute" | "reports">} Touched */

const ROLES = new Set(["owner", "moderator", "operator"]);
const MAX_REPORTS = 200;

/** One room's moderation, as this client knows it. */
export class RoomModeration {
  /** This client's role in the room ("" for a member). @type {Role | ""} */
  role = "";
  /** The others' roles, by user id. @type {Map<string, Role>} */
  roles = new Map();
  topic = "";
  /** Slow mode: the least time between two messages of a member, in ms (0: off). */
  slowMs = 0;
  /** @type {Mute | null} */
  mute = null;
  /** @type {Sanction | null} */
  sanction = null;
  /** Open reports, by id (moderators only). @type {Map<string, Report>} */
  reports = new Map();
  #name;
  #read;
  #write;

  /**
   * @param {string} name The room.
   * @param {import("./session.js").Store} store The client's storage.
   */
  constructor(name, { read, write }) {
    this.#name = name;
    this.#read = read;
    this.#write = write;
    this.slowMs = Math.max(0, Number(read(`slow.${name}`)) || 0);
    try {
      const mute = JSON.parse(read(`mute.${name}`) || "null");
      if (mute && typeof mute === "object") this.mute = readMute(mute);
    } catch { /* none */ }
  }

  /** Whether this client moderates the room (owner, moderator or operator). */
  get moderator() {
    return this.role !== "";
  }

  /**
   * Whether this client is muted at `now`. A mute that ended is forgotten.
   *
   * @param {number} [now]
   */
  muted(now = Date.now()) {
    if (this.mute?.until !== undefined && this.mute.until <= now) this.#setMute(null);
    return this.mute !== null;
  }

  /**
   * Takes a welcome: this client's role, the members' roles, the topic, the
   * room's slow mode and this client's own mute.
   *
   * @param {Record<string, any>} welcome
   * @returns {Touched}
   */
  welcome(welcome) {
    /** @type {Touched} */
    const touched = new Set(["role", "roles", "topic"]);
    const hadRole = this.role;
    this.role = ROLES.has(welcome.role) ? welcome.role : "";
    if (hadRole && !this.role) this.reports.clear();
    this.topic = typeof welcome.topic === "string" ? welcome.topic : "";
    this.roles = new Map();
    for (const member of Array.isArray(welcome.members) ? welcome.members : []) {
      if (member && typeof member.id === "string" && ROLES.has(member.role)) {
        this.roles.set(member.id, member.role);
      }
    }
    this.sanction = null;
    this.slowMs = Math.max(0, Number(welcome.slowMs) || 0);
    this.#write(`slow.${this.#name}`, this.slowMs ? String(this.slowMs) : null);
    this.#setMute(
      welcome.muted && typeof welcome.muted === "object" ? readMute(welcome.muted) : null,
    );
    touched.add("mute");
    return touched;
  }

  /**
   * A member who joined, with their role when they have one.
   *
   * @param {{ id: string, role?: unknown }} member
   * @returns {Touched}
   */
  joined(member) {
    if (!ROLES.has(/** @type {string} */ (member.role))) return new Set();
    this.roles.set(member.id, /** @type {Role} */ (member.role));
    return new Set(["roles"]);
  }

  /**
   * Applies a moderation event of the room (live, or from a welcome's
   * history: those are the newest events, so applying them in order ends in
   * the room's current state).
   *
   * @param {ModEvent} event
   * @param {string} myId
   * @returns {Touched}
   */
  apply(event, myId) {
    /** @type {Touched} */
    const touched = new Set();
    const target = event.target?.id;
    const mine = target !== undefined && target === myId;
    switch (event.action) {
      case "mute":
        if (mine) {
          this.#setMute({
            ...(event.until === undefined ? {} : { until: event.until }),
            ...(event.reason ? { reason: event.reason } : {}),
          });
          touched.add("mute");
        }
        break;
      case "unmute":
        if (mine) {
          this.#setMute(null);
          touched.add("mute");
        }
        break;
      case "kick":
      case "ban":
        if (mine) {
          this.sanction = {
            action: event.action,
            ...(event.until === undefined ? {} : { until: event.until }),
            ...(event.reason ? { reason: event.reason } : {}),
            ...(event.by?.name ? { by: event.by.name } : {}),
          };
        }
        break;
      case "slow":
        this.slowMs = Math.max(0, Number(event.durationMs) || 0);
        this.#write(`slow.${this.#name}`, this.slowMs ? String(this.slowMs) : null);
        touched.add("slow");
        break;
      case "topic":
        this.topic = typeof event.text === "string" ? event.text : "";
        touched.add("topic");
        break;
      case "promote":
      case "demote":
      case "owner":
        if (target !== undefined) this.#role(event.action, target, mine, touched);
        break;
      case "delete":
      case "dismiss":
        if (this.#closeReports(event.ref)) touched.add("reports");
        break;
    }
    return touched;
  }

  /**
   * A mute told by the server (`muted`, or a `muted` error).
   *
   * @param {{ until?: unknown, reason?: unknown }} detail
   */
  muteFrom(detail) {
    this.#setMute(readMute(detail));
  }

  /** The moderators' list of open reports, oldest first. @param {unknown} list */
  setReports(list) {
    this.reports = new Map();
    for (const report of Array.isArray(list) ? list : []) this.addReport(report);
  }

  /**
   * One more open report. False when it is not one, or already known.
   *
   * @param {any} report
   */
  addReport(report) {
    if (
      !report || typeof report.id !== "string" || !Number.isSafeInteger(report.ref) ||
      this.reports.has(report.id)
    ) {
      return false;
    }
    this.reports.set(report.id, {
      id: report.id,
      ref: report.ref,
      reason: String(report.reason ?? ""),
      by: { id: String(report.by?.id ?? ""), name: String(report.by?.name ?? "") },
      at: Number(report.at) || 0,
    });
    if (this.reports.size > MAX_REPORTS) this.reports.delete(this.reports.keys().next().value);
    return true;
  }

  /** Forgets what the tab kept of the room (it left it). */
  forget() {
    for (const key of ["slow", "mute"]) this.#write(`${key}.${this.#name}`, null);
  }

  /**
   * @param {"promote" | "demote" | "owner"} action
   * @param {string} target
   * @param {boolean} mine
   * @param {Touched} touched
   */
  #role(action, target, mine, touched) {
    const before = this.roles.get(target);
    if (action === "owner") {
      for (const [id, role] of this.roles) if (role === "owner") this.roles.delete(id);
      if (before !== "operator") this.roles.set(target, "owner");
    } else if (action === "promote" && !before) this.roles.set(target, "moderator");
    else if (action === "demote" && before === "moderator") this.roles.delete(target);
    touched.add("roles");
    if (!mine || this.role === "operator") {
      // The room has one owner: another one means this client is not it any more.
      if (action === "owner" && this.role === "owner") {
        this.role = "";
        this.reports.clear();
        touched.add("role");
      }
      return;
    }
    const role = this.roles.get(target) ?? "";
    if (role !== this.role) {
      this.role = role;
      if (!role) this.reports.clear();
      touched.add("role");
    }
  }

  /** Closes the reports on message `ref`. @param {number | undefined} ref */
  #closeReports(ref) {
    let closed = false;
    for (const [id, report] of this.reports) {
      if (report.ref === ref) {
        this.reports.delete(id);
        closed = true;
      }
    }
    return closed;
  }

  /** @param {Mute | null} mute */
  #setMute(mute) {
    this.mute = mute;
    this.#write(`mute.${this.#name}`, mute ? JSON.stringify(mute) : null);
  }
}

/**
 * A mute from a frame or storage: its end when it is a number, its reason
 * when it is text.
 *
 * @param {{ until?: unknown, reason?: unknown }} value
 * @returns {Mute}
 */
function readMute({ until, reason }) {
  return {
    ...(Number.isFinite(until) ? { until: /** @type {number} */ (until) } : {}),
    ...(typeof reason === "string" && reason ? { reason } : {}),
  };
}
