/**
 * The rules for nicknames and room names: what is refused
 * ({@linkcode checkName}), how a name is normalised, and the key that
 * decides whether two names are the same ({@linkcode nameKey}); and the bound
 * on stacked combining marks that message texts share
 * ({@linkcode hasStackedMarks}). Pure code.
 *
 * @module
 */

import CONFUSABLES from "unhomoglyph/data.json" with { type: "json" };

/** Longest nickname or room name, in characters. */
export const MAX_NAME_LENGTH = 32;

/**
 * Most combining marks one character may carry in a row, in a name, a room
 * name or a message text. Four is as many as ordinary text stacks on one
 * letter: Vietnamese two (ệ decomposed), Hindi three (ज़ूँ: nukta, vowel sign,
 * candrabindu), Hebrew with niqqud three (שָּׁ) and four with a cantillation
 * mark or meteg (שִּֽׁ), Tibetan stacks three (བསྒྲུབས, ཧཱུྃ). Zalgo text piles up
 * dozens, and one letter with hundreds covers the page. Only marks drawn on
 * the glyph before them count (Mn, Me, and the few Mc that Unicode counts as
 * Grapheme_Extend); format characters such as the zero-width joiner between
 * them do not end the run. A spacing mark (most Mc) takes its own width and
 * ends it: Burmese "လျှော့" has five marks in a row, but three of them spacing.
 */
export const MAX_COMBINING_MARKS = 4;

// Characters a name or room may not hold: controls, format characters (the
// bidi controls, zero-width characters, the soft hyphen, U+061C, tags, …),
// default-ignorable code points (U+034F, variation selectors, Hangul fillers),
// line and paragraph separators, and characters that draw nothing: the blank
// Braille pattern U+2800 and the musical null notehead U+1D159. Also the
// Specials block U+FFF0-U+FFFF, whose characters stand in for something else:
// the object replacement character U+FFFC (blank or a box, depending on the
// font), the replacement character U+FFFD (what a lone surrogate or broken
// UTF-8 turns into), the interlinear annotation controls U+FFF9-U+FFFB; and
// every noncharacter (U+FDD0-U+FDEF, U+FFFE, U+1FFFF, …), which is for a
// program's internal use, never for text. The two- and three-em dashes
// (U+2E3A, U+2E3B) stand in for omitted words but are visible dashes: allowed.
const INVISIBLE =
  /[\p{Cc}\p{Cf}\p{DI}\p{Zl}\p{Zp}\p{NChar}\u115F\u1160\u2800\u3164\uFFA0\uFFF0-\uFFFF\u{1D159}]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, "gu");
// At least one character that shows: a letter, digit, punctuation or symbol.
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}]/u;
const EDGE_SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu;
const SPACE_RUN = /\p{White_Space}+/gu;
// A name longer than this (UTF-16 units, before trimming) is refused unread.
const MAX_RAW_NAME_LENGTH = 1024;
// More than MAX_COMBINING_MARKS marks drawn on the glyph before them, with
// nothing but format characters between them. The two classes are disjoint,
// so a match that fails has scanned one run from each of its (at most four)
// marks: linear in the text.
const STACKED_MARKS = new RegExp(
  `(?:(?=\\p{M})\\p{Grapheme_Extend}\\p{Cf}*){${MAX_COMBINING_MARKS + 1}}`,
  "u",
);

/** Why {@linkcode checkName} refused a name or room. */
export type NameProblem =
  | "not_string"
  | "ill_formed"
  | "length"
  | "invisible"
  | "marks"
  | "blank";

/** The result of {@linkcode checkName}. */
export type NameCheck =
  | { ok: true; name: string }
  | { ok: false; problem: NameProblem; message: string };

/**
 * Validates a nickname or room name, and says why it is refused. A valid name
 * is returned NFKC-normalized and trimmed: 1–32 characters (code points),
 * well-formed, with no control, format, bidi or other invisible character,
 * at most {@linkcode MAX_COMBINING_MARKS} combining marks on one character,
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
  if (hasStackedMarks(name)) {
    const message = `Cannot join room: ${field} must have at most ${MAX_COMBINING_MARKS} ` +
      "combining marks on one character";
    return { ok: false, problem: "marks", message };
  }
  let count = 0;
  for (const _ of name) if (++count > MAX_NAME_LENGTH) break;
  if (count < 1 || count > MAX_NAME_LENGTH) return refuse("length", length);
  if (!VISIBLE.test(name)) return refuse("blank", "visible: it has no letter, digit or symbol");
  return { ok: true, name };
}

/**
 * Whether some character of the text carries more than
 * {@linkcode MAX_COMBINING_MARKS} combining marks in a row (Zalgo text).
 * Linear in the text's length.
 *
 * @example Usage
 * ```ts
 * import { hasStackedMarks } from "./names.ts";
 * hasStackedMarks("Nguye\u0302\u0303n"); // false
 * hasStackedMarks("Z" + "\u0489".repeat(300)); // true
 * ```
 */
export function hasStackedMarks(text: string): boolean {
  return STACKED_MARKS.test(text);
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
// How Latin a prototype looks, best first: plain ASCII ("N"), ASCII letters
// with combining marks ("H\u0329" for Cyrillic "Ң"), other Latin letters
// ("Ʌ" for Greek "Λ"), anything else.
const ASCII = 3;
const ASCII_WITH_MARKS = 2;
const LATIN = 1;
const NOT_ASCII = /\P{ASCII}/u;
const NOT_ASCII_OR_MARK = /[^\p{ASCII}\p{M}]/u;
const NOT_LATIN = /[^\p{ASCII}\p{M}\p{Script=Latin}]/u;
// What nameKey replaces each character with (see replacementOf), remembered
// on first sight for the table's characters and for letters that have a case:
// some 8,600 code points at most.
const REPLACEMENTS = new Map<string, string>();
// A dot above on i or j merges with its own dot: "i\u0307" looks like "i",
// and "İ" (I and a dot above) is the capital of "i".
const SOFT_DOTTED_DOT = /([ij])\u0307/gi;

/**
 * The key that decides whether two names are the same name: two users may
 * not hold names with the same key in one room. Pure and fast (it runs on
 * every join).
 *
 * The key is a case-insensitive confusable skeleton (Unicode TR39): NFKC,
 * invisible characters dropped, NFD, then each character replaced by its
 * prototype from the Unicode confusables table and lowercased, so that
 * Cyrillic "а", fullwidth "ａ" and Latin "a" agree. Where a letter's two cases
 * have different prototypes, the most Latin one wins for both: Cyrillic "м"
 * (prototype "ʍ") takes its capital's "M", Greek "Σ" takes "σ"'s "o"; but a
 * letter whose own prototype is plain ASCII keeps it, so Greek "Ν" is "n" and
 * "ν" is "v" ("ΝΥ" is "NY", "νυ" is "vu"). As "I" (capital i) looks like "l"
 * (small L), "i" and "l" share a key. Runs of white space count as one space.
 * The key is for comparison only, never for display.
 *
 * @example Usage
 * ```ts
 * import { nameKey } from "./names.ts";
 * nameKey("admin") === nameKey("ADMİN"); // true
 * nameKey("admin") === nameKey("\u0430dmin"); // true: Cyrillic "а"
 * nameKey("NY") === nameKey("\u039D\u03A5"); // true: Greek "ΝΥ"
 * nameKey("bob") === nameKey("rob"); // false
 * ```
 */
export function nameKey(name: string): string {
  const text = name.normalize("NFKC").replace(INVISIBLE_ALL, "").normalize("NFD")
    .replace(SOFT_DOTTED_DOT, "$1");
  // Twice: a prototype may itself have one ("М" → "M" → "m" → "rn").
  const key = skeleton(skeleton(text));
  return key.replace(SPACE_RUN, " ").trim().replaceAll("i", "l");
}

function skeleton(text: string): string {
  let out = "";
  for (const char of text) out += REPLACEMENTS.get(char) ?? replacement(char);
  return out.normalize("NFD").replace(SOFT_DOTTED_DOT, "$1");
}

function replacement(char: string): string {
  const known = PROTOTYPES.has(char);
  if (!known && char.charCodeAt(0) < 0x80) return char.toLowerCase();
  if (!known && char.toUpperCase() === char && char.toLowerCase() === char) return char;
  const replacement = replacementOf(char);
  REPLACEMENTS.set(char, replacement);
  return replacement;
}

// The character's prototype, lowercased, when it is plain ASCII. Otherwise the
// most Latin of the prototypes of its capital, itself, its lowercase and that
// one's capital ("ẞ" → "ß" → "SS"), lowercased: one from the table before a
// character that has none, then the first. When none looks Latin, its
// lowercase's prototype.
function replacementOf(char: string): string {
  const own = prototypes(char);
  if (!NOT_ASCII.test(own)) return own.toLowerCase();
  const upper = char.toUpperCase();
  const lower = upper.toLowerCase();
  if (upper === char && lower === char) return own;
  let best = prototypes(lower);
  let bestScore = 1;
  for (const other of [upper, char, lower, lower.toUpperCase()]) {
    const prototype = prototypes(other);
    const score = 2 * latinRank(prototype) + (prototype === other ? 0 : 1);
    if (score > bestScore) [best, bestScore] = [prototype, score];
  }
  return best.toLowerCase();
}

// Each character of the text replaced by its prototype.
function prototypes(text: string): string {
  let out = "";
  for (const char of text) out += PROTOTYPES.get(char) ?? char;
  return out;
}

function latinRank(text: string): number {
  if (!NOT_ASCII.test(text)) return ASCII;
  if (!NOT_ASCII_OR_MARK.test(text)) return ASCII_WITH_MARKS;
  return NOT_LATIN.test(text) ? 0 : LATIN;
}
