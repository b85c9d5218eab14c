/**
 * What a file is, from its bytes (`npm:file-type` for binary formats, and a
 * look at text for SVG, HTML and plain text, which it does not detect), and
 * whether what the client claimed (the file name's extension, the part's
 * `Content-Type`) agrees. Only the four raster formats every browser shows
 * safely are served inline: {@linkcode INLINE_TYPES}.
 *
 * @module
 */

import { fileTypeFromBuffer } from "file-type";

/** Bytes of a file's start that {@linkcode detectType} looks at. */
export const SNIFF_BYTES = 4100;

/** Types served inline (`Content-Disposition: inline`); everything else is an attachment. */
export const INLINE_TYPES: ReadonlySet<string> = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
]);

/** What {@linkcode detectType} found. */
export interface DetectedType {
  /** The MIME type, such as `image/png`; `application/octet-stream` when unknown. */
  mime: string;
  /** Whether the bytes are text (UTF-8 without control characters other than white space). */
  text: boolean;
}

/** Types that are text at heart: a claim of one is met by any text. */
const TEXT_TYPES = new Set([
  "text/plain",
  "text/html",
  "text/csv",
  "text/markdown",
  "text/css",
  "text/javascript",
  "application/javascript",
  "application/json",
  "application/xml",
  "text/xml",
  "image/svg+xml",
  "application/xhtml+xml",
]);

/** Binary types whose claim is checked: the bytes must be exactly that. */
const CHECKED_TYPES = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/avif",
  "image/bmp",
  "image/tiff",
  "image/heic",
  "image/x-icon",
  "application/pdf",
]);

/** The types of the extensions whose claim is checked. */
const EXTENSIONS: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  jpe: "image/jpeg",
  jfif: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  bmp: "image/bmp",
  tif: "image/tiff",
  tiff: "image/tiff",
  heic: "image/heic",
  ico: "image/x-icon",
  pdf: "application/pdf",
  svg: "image/svg+xml",
  svgz: "image/svg+xml",
  html: "text/html",
  htm: "text/html",
  xhtml: "application/xhtml+xml",
  txt: "text/plain",
  md: "text/markdown",
  csv: "text/csv",
  json: "application/json",
  xml: "application/xml",
  css: "text/css",
  js: "text/javascript",
};

/** Other names clients use for the same types. */
const ALIASES: Record<string, string> = {
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  "image/x-png": "image/png",
  "image/vnd.microsoft.icon": "image/x-icon",
  "image/heif": "image/heic",
};

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The type of a file whose first bytes are `head` (at least
 * {@linkcode SNIFF_BYTES} of them, or the whole file).
 *
 * @example Usage
 * ```ts
 * import { detectType } from "./file_type.ts";
 * await detectType(new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg'/>"));
 * // { mime: "image/svg+xml", text: true }
 * ```
 */
export async function detectType(head: Uint8Array): Promise<DetectedType> {
  const text = isText(head);
  const found = head.length ? await fileTypeFromBuffer(head) : undefined;
  if (found && found.mime !== "application/xml") return { mime: found.mime, text };
  if (!text) return { mime: "application/octet-stream", text };
  const start = new TextDecoder().decode(head.subarray(0, 1024)).replace(/^\uFEFF/, "")
    .replace(/<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!doctype\s+svg[^>]*>/gi, "").trimStart()
    .toLowerCase();
  if (start.startsWith("<svg")) return { mime: "image/svg+xml", text };
  if (/^<(!doctype html|html|head|body|script|iframe)[\s>]/.test(start)) {
    return { mime: "text/html", text };
  }
  if (found) return { mime: found.mime, text };
  return { mime: "text/plain", text };
}

/**
 * Why a file claimed as `filename` with the part's `partType` is not the
 * `detected` type, or `null` when every claim it makes that can be checked
 * agrees. A claim is checked when it names one of the raster formats or a
 * PDF (the bytes must be exactly that) or a text format (the bytes must be
 * text); other claims (`application/octet-stream`, an unknown extension)
 * claim nothing.
 *
 * @example Usage
 * ```ts
 * import { claimProblem } from "./file_type.ts";
 * claimProblem("cat.png", "image/png", { mime: "image/jpeg", text: false });
 * // "'cat.png' claims to be image/png, but its bytes are image/jpeg"
 * ```
 */
export function claimProblem(
  filename: string,
  partType: string | undefined,
  detected: DetectedType,
): string | null {
  const extension = /\.([A-Za-z0-9]+)$/.exec(filename)?.[1].toLowerCase();
  const claims = [
    extension ? EXTENSIONS[extension] : undefined,
    normalizeType(partType),
  ];
  for (const claim of claims) {
    if (!claim) continue;
    const agrees = TEXT_TYPES.has(claim)
      ? detected.text
      : CHECKED_TYPES.has(claim)
      ? detected.mime === claim
      : true;
    if (!agrees) {
      const what = detected.text ? "text" : detected.mime;
      return `'${filename.slice(0, 100)}' claims to be ${claim}, but its bytes are ${what}`;
    }
  }
  return null;
}

/** A `Content-Type` without parameters, lowercased, aliases resolved; `undefined` for none. */
function normalizeType(type: string | undefined): string | undefined {
  const bare = type?.split(";")[0].trim().toLowerCase();
  if (!bare) return undefined;
  return ALIASES[bare] ?? bare;
}

/**
 * Whether `head` reads as text: UTF-8 (a character cut off at the end is
 * fine) with no control characters but tab, line feed, form feed and
 * carriage return. An empty file is text.
 */
function isText(head: Uint8Array): boolean {
  for (let cut = 0; cut < 4 && cut <= head.length; cut++) {
    try {
      const text = UTF8.decode(head.subarray(0, head.length - cut));
      // deno-lint-ignore no-control-regex -- control characters are what is looked for
      return !/[\x00-\x08\x0b\x0e-\x1f\x7f]/.test(text);
    } catch {
      // A multi-byte character cut by the end of `head`: try without its first bytes.
    }
  }
  return false;
}
