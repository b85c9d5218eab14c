/**
 * The pixel size of a PNG, GIF or WebP from its first bytes: a small header
 * parser, no decoding. (A JPEG's size is read by `jpeg_scrub.ts` while its
 * metadata is removed, since its frame header can come after large
 * segments.)
 *
 * @module
 */

import type { ImageSize } from "./jpeg_scrub.ts";

/** Bytes of the file's start that {@linkcode headerSize} needs at most. */
export const SIZE_HEADER_BYTES = 30;

/**
 * The size in the header of a PNG (`IHDR`), GIF (logical screen) or WebP
 * (`VP8 `, `VP8L` or `VP8X`) image, or `null` when `head` is too short or
 * `type` is another type.
 *
 * @example Usage
 * ```ts
 * import { headerSize } from "./image_size.ts";
 * const gif = new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x20, 0x00, 0x10, 0x00]);
 * headerSize(gif, "image/gif"); // { width: 32, height: 16 }
 * ```
 */
export function headerSize(head: Uint8Array, type: string): ImageSize | null {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const has = (n: number) => head.length >= n;
  switch (type) {
    case "image/png": // signature (8), IHDR length and type (8), width, height (big-endian)
      return has(24) ? positive(view.getUint32(16), view.getUint32(20)) : null;
    case "image/gif": // "GIF89a", then width and height (little-endian)
      return has(10) ? positive(view.getUint16(6, true), view.getUint16(8, true)) : null;
    case "image/webp":
      return has(30) ? webpSize(head, view) : null;
    default:
      return null;
  }
}

/** RIFF "WEBP", then the first chunk: lossy, lossless or extended. */
function webpSize(head: Uint8Array, view: DataView): ImageSize | null {
  const chunk = String.fromCharCode(...head.subarray(12, 16));
  if (chunk === "VP8 ") { // key frame: 3-byte tag, start code, 14-bit width and height
    return positive(view.getUint16(26, true) & 0x3fff, view.getUint16(28, true) & 0x3fff);
  }
  if (chunk === "VP8L") { // signature 0x2f, then 14 bits width − 1, 14 bits height − 1
    const bits = view.getUint32(21, true);
    return positive((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
  }
  if (chunk === "VP8X") { // flags (4), then 24-bit canvas width − 1 and height − 1
    const width = (head[24] | (head[25] << 8) | (head[26] << 16)) + 1;
    const height = (head[27] | (head[28] << 8) | (head[29] << 16)) + 1;
    return positive(width, height);
  }
  return null;
}

function positive(width: number, height: number): ImageSize | null {
  return width > 0 && height > 0 ? { width, height } : null;
}
