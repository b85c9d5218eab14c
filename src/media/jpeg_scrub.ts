/**
 * Removes location and other camera metadata from a JPEG as it streams
 * through, at the byte level: every APP1 segment (EXIF, with its GPS
 * directory, and XMP) and every APP13 segment (Photoshop's IPTC, which can
 * name a place) is dropped before the first scan; the image data itself is
 * passed on untouched, so nothing is decoded or re-encoded. The one EXIF
 * field a viewer needs, the orientation, is kept in a new 34-byte EXIF
 * segment of its own, so a phone photo does not turn sideways. The frame
 * header's size is read on the way, for the upload's `width` and `height`.
 *
 * A JPEG is a sequence of segments (`FF xx`, then a 2-byte length for most)
 * up to the start of scan (`FF DA`), after which the entropy-coded data and
 * any later segments are copied as they come. A stream that does not start
 * with a JPEG's `FF D8` is passed on unchanged.
 *
 * @module
 */

/** An image's size in pixels, as displayed (the EXIF orientation applied). */
export interface ImageSize {
  width: number;
  height: number;
}

/** Segments that are dropped: APP1 (EXIF, XMP) and APP13 (IPTC). */
const DROPPED = new Set([0xe1, 0xed]);
/** Frame headers (SOF0–SOF15, without DHT C4, JPG C8 and DAC CC). */
const FRAMES = new Set([
  0xc0,
  0xc1,
  0xc2,
  0xc3,
  0xc5,
  0xc6,
  0xc7,
  0xc9,
  0xca,
  0xcb,
  0xcd,
  0xce,
  0xcf,
]);
const EXIF_HEADER = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const ORIENTATION_TAG = 0x0112;

/**
 * A `TransformStream` that scrubs a JPEG's metadata; {@linkcode size} is the
 * frame's size once the stream has passed it.
 *
 * @example Usage
 * ```ts ignore
 * import { JpegScrubber } from "./jpeg_scrub.ts";
 * const scrubber = new JpegScrubber();
 * const clean = await new Response(photo.pipeThrough(scrubber)).bytes();
 * scrubber.size; // { width: 4032, height: 3024 }
 * ```
 */
export class JpegScrubber extends TransformStream<Uint8Array, Uint8Array> {
  #parser: Parser;

  /** A scrubber for one stream. */
  constructor() {
    const parser = new Parser();
    super({
      transform: (chunk, controller) => parser.push(chunk, (out) => controller.enqueue(out)),
      flush: (controller) => parser.end((out) => controller.enqueue(out)),
    });
    this.#parser = parser;
  }

  /** The displayed size, once the frame header passed; `null` before, or for no JPEG. */
  get size(): ImageSize | null {
    return this.#parser.size;
  }

  /** Whether an APP1 or APP13 segment was removed. */
  get removed(): boolean {
    return this.#parser.removed;
  }
}

/**
 * Scrubs a whole JPEG in memory; see {@linkcode JpegScrubber}.
 *
 * @example Usage
 * ```ts ignore
 * import { scrubJpeg } from "./jpeg_scrub.ts";
 * const { bytes, size } = scrubJpeg(photo); // photo: Uint8Array
 * ```
 */
export function scrubJpeg(input: Uint8Array): { bytes: Uint8Array; size: ImageSize | null } {
  const parser = new Parser();
  const out: Uint8Array[] = [];
  parser.push(input, (b) => out.push(b));
  parser.end((b) => out.push(b));
  const bytes = new Uint8Array(out.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const b of out) {
    bytes.set(b, offset);
    offset += b.byteLength;
  }
  return { bytes, size: parser.size };
}

/** The segment parser behind both. */
class Parser {
  size: ImageSize | null = null;
  removed = false;
  #state: "start" | "segments" | "data" | "other" = "start";
  #pending: Uint8Array = new Uint8Array(0);
  #frame: { width: number; height: number } | null = null;
  #orientation = 1;

  push(chunk: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    if (this.#state === "data" || this.#state === "other") return emit(chunk);
    const buffer = concat(this.#pending, chunk);
    let at = 0;
    if (this.#state === "start") {
      if (buffer.length < 2) {
        this.#pending = buffer;
        return;
      }
      if (buffer[0] !== 0xff || buffer[1] !== 0xd8) {
        this.#state = "other";
        this.#pending = new Uint8Array(0);
        return emit(buffer);
      }
      emit(buffer.subarray(0, 2));
      at = 2;
      this.#state = "segments";
    }
    while (this.#state === "segments") {
      // A marker, after any fill bytes (FF FF …).
      let m = at;
      while (m < buffer.length && buffer[m] === 0xff) m++;
      if (m >= buffer.length) break;
      if (m === at) { // Not a marker: a broken file. Pass the rest on as it is.
        this.#state = "data";
        break;
      }
      const marker = buffer[m];
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        emit(Uint8Array.of(0xff, marker)); // standalone markers, no length
        at = m + 1;
        continue;
      }
      if (marker === 0xda || marker === 0xd9) { // start of scan or end of image
        this.#state = "data";
        at = m - 1;
        break;
      }
      if (m + 3 > buffer.length) break;
      const length = (buffer[m + 1] << 8) | buffer[m + 2];
      const end = m + 1 + length;
      if (end > buffer.length) break; // wait for the whole segment (at most 64 KiB)
      const payload = buffer.subarray(m + 3, end);
      if (DROPPED.has(marker)) {
        this.removed = true;
        const orientation = marker === 0xe1 ? orientationOf(payload) : null;
        if (orientation !== null && this.#orientation === 1) {
          this.#orientation = orientation;
          // The orientation alone goes back where the EXIF segment was.
          if (orientation !== 1) emit(orientationSegment(orientation));
        }
      } else {
        if (FRAMES.has(marker) && payload.length >= 5) {
          this.#frame = {
            height: (payload[1] << 8) | payload[2],
            width: (payload[3] << 8) | payload[4],
          };
        }
        emit(buffer.subarray(m - 1, end));
      }
      at = end;
    }
    if (this.#frame && !this.size) {
      const swap = this.#orientation >= 5;
      const { width, height } = this.#frame;
      this.size = swap ? { width: height, height: width } : { width, height };
    }
    if (this.#state === "data") {
      this.#pending = new Uint8Array(0);
      if (at < buffer.length) emit(buffer.subarray(at));
      return;
    }
    this.#pending = buffer.slice(at);
  }

  end(emit: (bytes: Uint8Array) => void): void {
    if (this.#pending.length) emit(this.#pending); // a truncated file: what is left, as it is
    this.#pending = new Uint8Array(0);
  }
}

/** The EXIF orientation (1–8) in an APP1 payload, or `null`. */
function orientationOf(payload: Uint8Array): number | null {
  if (payload.length < 14 || EXIF_HEADER.some((b, i) => payload[i] !== b)) return null;
  const tiff = payload.subarray(6);
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const little = tiff[0] === 0x49 && tiff[1] === 0x49; // "II"
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return null; // "MM"
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return null;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return null;
    if (view.getUint16(entry, little) !== ORIENTATION_TAG) continue;
    const value = view.getUint16(entry + 8, little);
    return value >= 1 && value <= 8 ? value : null;
  }
  return null;
}

/** An APP1 segment holding an EXIF IFD0 with the orientation alone. */
function orientationSegment(orientation: number): Uint8Array {
  return Uint8Array.of(
    0xff,
    0xe1,
    0x00,
    0x22, // length 34
    ...EXIF_HEADER,
    0x4d,
    0x4d,
    0x00,
    0x2a,
    0x00,
    0x00,
    0x00,
    0x08, // "MM", 42, IFD0 at 8
    0x00,
    0x01, // one entry
    0x01,
    0x12,
    0x00,
    0x03,
    0x00,
    0x00,
    0x00,
    0x01, // orientation, SHORT, count 1
    0x00,
    orientation,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00, // no next IFD
  );
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
