/**
 * The server's rules for names and rooms (`src/names.ts`), as far as the
 * page needs them: so that it can say what is wrong with a room name before
 * it tries to join it, and vary a suggested nickname that is taken. No DOM.
 *
 * @module
 */

/** Longest nickname or room name, in characters (the server's limit). */
export const MAX_NAME_LENGTH = 32;

const INVISIBLE = /[\p{Cc}\p{Cf}\p{DI}\p{Zl}\p{Zp}\u115F\u1160\u2800\u3164\uFFA0]/u;
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}]/u;
const EDGE_SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu;
const DM_ROOM = /^dm:([A-Za-z0-9_.@-]{1,64}):([A-Za-z0-9_.@-]{1,64})$/;

/**
 * Checks a room name as the server will: NFKC-normalised and trimmed, 1–32
 * characters, none of them control, format or invisible, and at least one
 * that shows. A direct conversation's room (`dm:<id>:<id>`, the two user ids
 * in order) is longer than a name may be and is checked by its shape.
 *
 * @example
 * ```js
 * checkRoomName(" ｔｅａｍ "); // { ok: true, name: "team" }
 * ```
 *
 * @param {string} room
 * @returns {{ ok: true, name: string } | { ok: false, message: string }}
 */
export function checkRoomName(room) {
  const text = String(room).trim();
  if (text.startsWith("dm:")) {
    return dmUsers(text) ? { ok: true, name: text } : {
      ok: false,
      message: "A conversation's room is 'dm:' and two user ids: open it from the member list.",
    };
  }
  const name = String(room).toWellFormed().normalize("NFKC").replace(EDGE_SPACE, "");
  const invisible = INVISIBLE.exec(name);
  if (invisible) {
    const code = /** @type {number} */ (invisible[0].codePointAt(0)).toString(16).toUpperCase();
    return {
      ok: false,
      message: `A room name cannot hold invisible or control characters (U+${
        code.padStart(4, "0")
      }).`,
    };
  }
  const length = [...name].length;
  if (length < 1 || length > MAX_NAME_LENGTH) {
    return { ok: false, message: `A room name has 1–${MAX_NAME_LENGTH} characters.` };
  }
  if (!VISIBLE.test(name)) {
    return { ok: false, message: "A room name needs a letter, digit or symbol." };
  }
  return { ok: true, name };
}

/**
 * Variant `n` of a name: `ada` → `ada2`, cut so that it stays within
 * {@linkcode MAX_NAME_LENGTH} characters.
 *
 * @param {string} base The name to vary.
 * @param {number} n The number to append.
 * @returns {string}
 */
export function nameVariant(base, n) {
  const suffix = String(n);
  return [...base.trim()].slice(0, MAX_NAME_LENGTH - suffix.length).join("").trimEnd() + suffix;
}

/**
 * The two user ids of a direct conversation's room (`dm:<id>:<id>`, in
 * order), or null for any other room.
 *
 * @param {string} room
 * @returns {[string, string] | null}
 */
export function dmUsers(room) {
  if (!room.startsWith("dm:")) return null;
  const match = DM_ROOM.exec(room);
  return match && match[1] < match[2] ? [match[1], match[2]] : null;
}

/**
 * The room of the direct conversation between users `a` and `b`.
 *
 * @param {string} a
 * @param {string} b
 */
export function dmRoom(a, b) {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/**
 * The other person of direct conversation `room` for user `me`, or "" when
 * `room` is not one of `me`'s conversations.
 *
 * @param {string} room
 * @param {string} me
 */
export function dmPeer(room, me) {
  const pair = dmUsers(room);
  if (!pair || !me || !pair.includes(me)) return "";
  return pair[0] === me ? pair[1] : pair[0];
}
