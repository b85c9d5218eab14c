/**
 * A client's file name made safe to store, show and send back in a
 * `Content-Disposition` header.
 *
 * @module
 */

/** Longest name kept, in code points (the extension is kept when cut). */
export const MAX_FILE_NAME_LENGTH = 120;

/** Control, format (bidi overrides, zero-width) and other invisible characters. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u{FFF0}-\u{FFFF}]/gu;
/** Characters no file system or header likes. */
const RESERVED = /[\\/:*?"<>|]/g;

/**
 * The last path segment of `name`, NFC-normalised, without invisible and
 * bidi characters (a right-to-left override could show `exe.png` for
 * `png.exe`), reserved characters replaced by `_`, without leading dots or
 * trailing dots and spaces, at most {@linkcode MAX_FILE_NAME_LENGTH} code
 * points (keeping the extension); `file` when nothing is left.
 *
 * @example Usage
 * ```ts
 * import { safeFileName } from "./file_name.ts";
 * safeFileName("C:\\photos\\cat.png"); // "cat.png"
 * safeFileName("invoice\u202Egnp.exe"); // "invoicegnp.exe"
 * safeFileName("..."); // "file"
 * ```
 */
export function safeFileName(name: string): string {
  const well = name.isWellFormed() ? name : name.toWellFormed();
  const base = well.split(/[\\/]/).pop() ?? "";
  let clean = base.normalize("NFC").replace(INVISIBLE, "").replace(RESERVED, "_").trim()
    .replace(/^\.+/, "").replace(/[.\s]+$/, "");
  const points = [...clean];
  if (points.length > MAX_FILE_NAME_LENGTH) {
    const dot = clean.lastIndexOf(".");
    const extension = dot > 0 ? [...clean.slice(dot)].slice(0, 16).join("") : "";
    const keep = MAX_FILE_NAME_LENGTH - [...extension].length;
    clean = points.slice(0, keep).join("") + extension;
  }
  return clean || "file";
}
