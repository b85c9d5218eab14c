/**
 * The rules for nicknames and room names: what is refused
 * ({@linkcode checkName}), how a name is normalised, and the key that
 * decides whether two names are the same ({@linkcode nameKey}). Pure code.
 *
 * @module
 */

import CONFUSABLES from "unhomoglyph/data.json" with { type: "json" };

/** Longest nickname or room name, in characters. */
export const MAX_NAME_LENGTH = 32;

// Characters a name or room may not hold: controls, format characters (the
// bidi controls, zero-width characters, the soft hyphen, U+061C, tags, …),
// default-ignorable code points (U+034F, variation selectors, Hangul fillers),
// line and paragraph separators, and the blank Braille pattern U+2800.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{DI}\p{Zl}\p{Zp}\u115F\u1160\u2800\u3164\uFFA0]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, "gu");
// At least one character that shows: a letter, digit, punctuation or symbol.
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}]/u;
const EDGE_SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu;
const SPACE_RUN = /\p{White_Space}+/gu;
// A name longer than this (UTF-16 units, before trimming) is refused unread.
const MAX_RAW_NAME_LENGTH = 1024;

/** Why {@linkcode checkName} refused a name or room. */
export type NameProblem = "not_string" | "ill_formed" | "length" | "invisible" | "blank";

/** The result of {@linkcode checkName}. */
export type NameCheck =
  | { ok: true; name: string }
  | { ok: false; problem: NameProblem; message: string };

/**
 * Validates a nickname or room name, and says why it is refused. A valid name
 * is returned NFKC-normalized and trimmed: 1–32 characters (code points),
 * well-formed, with no control, format, bidi or other invisible character,
 * and at least one visible character. `field` names the value in the message
 * (`name` or `room`).
 *
 * @example Usage
 * ```ts
 * import { checkName } from "./names.ts";
 * checkName(" ａｄａ ", "name"); // { ok: true, name: "ada" }
 * checkName("a\u200Bda", "name").ok; // false: a zero-width space
 * ```
 */
export function checkName(value: unknown, field: "name" | "room"): NameCheck {
  const refuse = (problem: NameProblem, why: string): NameCheck => ({
    ok: false,
    problem,
    message: `Cannot join room: ${field} must be ${why}`,
  });
  const length = `1-${MAX_NAME_LENGTH} characters`;
  if (typeof value !== "string") return refuse("not_string", `a string of ${length}`);
  if (value.length > MAX_RAW_NAME_LENGTH) return refuse("length", length);
  if (!value.isWellFormed()) {
    return refuse("ill_formed", "well-formed Unicode (no lone surrogates)");
  }
  const name = value.normalize("NFKC").replace(EDGE_SPACE, "");
  const invisible = INVISIBLE.exec(name);
  if (invisible) {
    const code = invisible[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return refuse(
      "invisible",
      `free of control, format, bidi and invisible characters (found U+${code})`,
    );
  }
  let count = 0;
  for (const _ of name) if (++count > MAX_NAME_LENGTH) break;
  if (count < 1 || count > MAX_NAME_LENGTH) return refuse("length", length);
  if (!VISIBLE.test(name)) return refuse("blank", "visible: it has no letter, digit or symbol");
  return { ok: true, name };
}

/**
 * Validates a nickname or room name and returns it normalized (NFKC) and
 * trimmed, or `null`. See {@linkcode checkName} for the rules.
 *
 * @example Usage
 * ```ts
 * import { normalizeName } from "./names.ts";
 * normalizeName("  ada "); // "ada"
 * normalizeName("\u0007"); // null
 * ```
 */
export function normalizeName(value: unknown): string | null {
  const result = checkName(value, "name");
  return result.ok ? result.name : null;
}

// The Unicode confusables table (UTS #39, confusables.txt), one source code
// point to its prototype, as shipped by npm:unhomoglyph.
const PROTOTYPES: ReadonlyMap<string, string> = new Map(
  Object.entries(CONFUSABLES as Record<string, string>),
);
// What nameKey replaces each character with (see prototypeOf), computed once
// for the table's characters and their lowercase forms.
const REPLACEMENTS: ReadonlyMap<string, string> = (() => {
  const replacements = new Map<string, string>();
  for (const source of PROTOTYPES.keys()) {
    replacements.set(source, prototypeOf(source));
    const lower = source.toLowerCase();
    if (lower !== source && !PROTOTYPES.has(lower)) replacements.set(lower, prototypeOf(lower));
  }
  return replacements;
})();
// A dot above on i or j merges with its own dot: "i\u0307" looks like "i".
const SOFT_DOTTED_DOT = /([ij])\u0307/g;

/**
 * The key that decides whether two names are the same name: two users may
 * not hold names with the same key in one room. Pure and fast (it runs on
 * every join).
 *
 * The key is a case-folded confusable skeleton (Unicode TR39): NFKC, invisible
 * characters dropped, full case folding ("İ" and "ß" included), NFD, then each
 * character replaced by its prototype from the Unicode confusables table, so
 * that Cyrillic "а", fullwidth "ａ" and Latin "a" agree. A lowercase letter
 * whose own prototype is not ASCII but whose capital looks like an ASCII
 * capital takes that one (Cyrillic "м" → "M"), so "АDМIN" in Cyrillic capitals
 * is "admin" too. As "I" (capital i) looks like "l" (small L), "i" and "l"
 * share a key. Runs of white space count as one space. The key is for
 * comparison only, never for display.
 *
 * @example Usage
 * ```ts
 * import { nameKey } from "./names.ts";
 * nameKey("admin") === nameKey("ADMİN"); // true
 * nameKey("admin") === nameKey("\u0430dmin"); // true: Cyrillic "а"
 * nameKey("bob") === nameKey("rob"); // false
 * ```
 */
export function nameKey(name: string): string {
  let key = name.normalize("NFKC").replace(INVISIBLE_ALL, "").toUpperCase().toLowerCase()
    .normalize("NFD").replace(SOFT_DOTTED_DOT, "$1");
  // Twice: a prototype may itself have one ("М" → "M" → "m" → "rn").
  key = skeleton(skeleton(key));
  return key.replace(SPACE_RUN, " ").trim().replaceAll("i", "l");
}

function skeleton(text: string): string {
  let out = "";
  for (const char of text) {
    out += REPLACEMENTS.get(char) ?? (char.charCodeAt(0) < 0x80 ? char : prototypeOf(char));
  }
  return out.toLowerCase().normalize("NFD").replace(SOFT_DOTTED_DOT, "$1");
}

// The character's prototype from the table, or its capital's when only that
// one is ASCII: lowercase Cyrillic "м" is "ʍ" in the table, but "М" is "M".
function prototypeOf(char: string): string {
  const own = PROTOTYPES.get(char) ?? char;
  if (isAscii(own)) return own;
  const capital = char.toUpperCase();
  if (capital !== char) {
    const prototype = PROTOTYPES.get(capital) ?? capital;
    if (isAscii(prototype)) return prototype;
  }
  return own;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}
