/**
 * Moderation in words, with no DOM: the one-line notice a moderation event
 * shows in a room's log ("bob muted ada for 1 hour: spam"), durations and
 * end times, role labels, who may act on whom (the server's rules, so the
 * page offers only what it would allow), and the choices the dialogs offer.
 *
 * @module
 */

/** A role someone can hold in a room. @typedef {"owner" | "moderator" | "operator"} Role */

/**
 * A moderation event (`kind: "moderation"`), as the server sends it.
 *
 * @typedef {{ id: number, action?: string, target?: { id: string, name: string },
 *   by?: { id: string, name?: string }, userId?: string, name?: string, reason?: string,
 *   until?: number, durationMs?: number, text?: string, ts: number, ref?: number }} ModEvent
 */

/** How long a mute lasts: the choices of the mute dialog. */
export const MUTE_CHOICES = [
  { label: "10 minutes", ms: 10 * 60_000 },
  { label: "1 hour", ms: 60 * 60_000 },
  { label: "1 day", ms: 24 * 60 * 60_000 },
];

/** How long a ban lasts (0: for good). */
export const BAN_CHOICES = [
  { label: "1 hour", ms: 60 * 60_000 },
  { label: "1 day", ms: 24 * 60 * 60_000 },
  { label: "1 week", ms: 7 * 24 * 60 * 60_000 },
  { label: "For good", ms: 0 },
];

/** Slow mode's intervals (0: off). */
export const SLOW_CHOICES = [
  { label: "Off", ms: 0 },
  { label: "10 seconds", ms: 10_000 },
  { label: "30 seconds", ms: 30_000 },
  { label: "1 minute", ms: 60_000 },
  { label: "5 minutes", ms: 5 * 60_000 },
];

/**
 * Whether someone with role `mine` may kick, mute or ban someone with role
 * `theirs` ("" for a member), as the server decides (`src/hub/moderation.ts`):
 * moderators act on members, owners on moderators too, operators on anyone.
 *
 * @param {Role | ""} mine
 * @param {Role | "" | undefined} theirs
 */
export function canActOn(mine, theirs) {
  if (!mine) return false;
  if (mine === "operator") return true;
  if (!theirs) return true;
  return mine === "owner" && theirs === "moderator";
}

/** The word for a role, as the member list shows it. @param {string | undefined} role */
export function roleLabel(role) {
  return role === "owner" || role === "moderator" || role === "operator" ? role : "";
}

/**
 * A length of time in words: "30 seconds", "10 minutes", "1 hour", "2 days",
 * rounded to the largest unit that fits.
 *
 * @param {number} ms
 */
export function durationText(ms) {
  const units = /** @type {const} */ ([
    ["day", 86_400_000],
    ["hour", 3_600_000],
    ["minute", 60_000],
    ["second", 1000],
  ]);
  for (const [unit, size] of units) {
    if (ms >= size * 0.95 || unit === "second") {
      const n = Math.max(1, Math.round(ms / size));
      return `${n} ${unit}${n === 1 ? "" : "s"}`;
    }
  }
  return "";
}

/**
 * When something ends, in words: "until 14:05" today, else "until Mon 12
 * Jan, 14:05"; "for good" without an end.
 *
 * @param {number | undefined} until In ms since the epoch.
 * @param {number} [now]
 */
export function untilText(until, now = Date.now()) {
  if (until === undefined || !Number.isFinite(until)) return "for good";
  const end = new Date(until);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const time = `${pad(end.getHours())}:${pad(end.getMinutes())}`;
  if (new Date(now).toDateString() === end.toDateString()) return `until ${time}`;
  const day = end.toLocaleDateString("en", { weekday: "short", day: "numeric", month: "short" });
  return `until ${day}, ${time}`;
}

/**
 * Time left as a countdown: "9:05", "1:02:03", "3 days" (0 or less: "").
 *
 * @param {number} ms
 */
export function countdownText(ms) {
  if (!(ms > 0)) return "";
  const s = Math.ceil(ms / 1000);
  if (s >= 86_400 * 2) return `${Math.floor(s / 86_400)} days`;
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/** Who did an act, as a notice names them. @param {ModEvent} event */
function actor(event) {
  if (event.by?.id === "operator") return "The server's operator";
  return event.by?.name || event.name || "A moderator";
}

/**
 * The one-line notice a moderation event shows in the log, or "" for one
 * that shows none (a dismissal, to someone who is not a moderator).
 *
 * @param {ModEvent} event
 * @param {{ moderator?: boolean }} [viewer] Whether the reader moderates the room.
 */
export function modNotice(event, { moderator = false } = {}) {
  const by = actor(event);
  const target = event.target?.name || "someone";
  const why = event.reason ? `: ${event.reason}` : "";
  const lasting = event.until === undefined
    ? ""
    : ` for ${durationText(Math.max(0, event.until - event.ts))}`;
  switch (event.action) {
    case "kick":
      return `${by} removed ${target} from the room${why}`;
    case "mute":
      return `${by} muted ${target}${lasting}${why}`;
    case "unmute":
      return `${by} unmuted ${target}`;
    case "ban":
      return `${by} banned ${target}${lasting || " for good"}${why}`;
    case "unban":
      return `${by} unbanned ${target}`;
    case "delete":
      return `${by} deleted a message${why}`;
    case "slow":
      return event.durationMs
        ? `${by} turned on slow mode: one message every ${durationText(event.durationMs)}`
        : `${by} turned off slow mode`;
    case "topic":
      return event.text ? `${by} set the topic to “${event.text}”` : `${by} removed the topic`;
    case "promote":
      return `${by} made ${target} a moderator`;
    case "demote":
      return `${by} removed ${target} as a moderator`;
    case "owner":
      return `${target} now owns the room`;
    case "dismiss":
      return moderator ? `${by} dismissed the reports on a message` : "";
    default:
      return "";
  }
}

/**
 * Why you cannot write in a room: "You are muted in #team until 14:05:
 * spam." (or "for good").
 *
 * @param {string} label The room as the page names it ("#team", "@bob").
 * @param {{ until?: number, reason?: string }} mute
 * @param {number} [now]
 */
export function mutedText(label, { until, reason }, now = Date.now()) {
  return `You are muted in ${label} ${untilText(until, now)}${reason ? `: ${reason}` : ""}.`;
}

/**
 * What a kick or ban tells its target: "ada banned you from #team until
 * 14:05: spam." A kick says they may come back.
 *
 * @param {string} label
 * @param {{ action: string, until?: number, reason?: string, by?: string }} sanction
 * @param {number} [now]
 */
export function removedText(label, { action, until, reason, by }, now = Date.now()) {
  const who = by || "A moderator";
  const why = reason ? `: ${reason}` : "";
  if (action === "ban") return `${who} banned you from ${label} ${untilText(until, now)}${why}.`;
  return `${who} removed you from ${label}${why}. You may join it again.`;
}

/**
 * A refused join because of a ban: "You are banned from #team until 14:05:
 * spam."
 *
 * @param {string} label
 * @param {{ until?: number, reason?: string }} ban
 * @param {number} [now]
 */
export function bannedText(label, { until, reason }, now = Date.now()) {
  return `You are banned from ${label} ${untilText(until, now)}${reason ? `: ${reason}` : ""}.`;
}
