/**
 * Real image files for tests, made here: a JPEG encoded by `npm:jpeg-js`
 * carrying an EXIF segment with a GPS directory (and an XMP segment naming
 * the place) written byte by byte below, a valid PNG (zlib through
 * `CompressionStream`, CRCs computed), and GIF and WebP headers.
 *
 * @module
 */

import jpeg from "jpeg-js";

/** Where the GPS tags say the photo was taken: 52°31'12" N, 13°24'36" E. */
export const LOCATION = { latitude: [52, 31, 12], longitude: [13, 24, 36] } as const;

/**
 * A `width` × `height` JPEG with an EXIF segment (camera make, orientation
 * `orientation`, and a GPS directory with latitude and longitude), an XMP
 * segment with the same place, and an IPTC (APP13) segment, after its JFIF
 * header.
 */
export function jpegWithGps(
  width: number,
  height: number,
  orientation = 6,
): Uint8Array<ArrayBuffer> {
  const pixels = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    pixels.set([(i * 7) & 0xff, (i * 3) & 0xff, 128, 255], i * 4);
  }
  const encoded = new Uint8Array(jpeg.encode({ data: pixels, width, height }, 90).data);
  // SOI, then JFIF APP0 (its length at bytes 4–5): the metadata goes after it.
  const app0End = 4 + ((encoded[4] << 8) | encoded[5]);
  return concat(
    encoded.subarray(0, app0End),
    segment(0xe1, concat(ascii("Exif\0\0"), exifTiff(orientation))),
    segment(0xe1, ascii(`http://ns.adobe.com/xap/1.0/\0${XMP}`)),
    segment(0xed, ascii("Photoshop 3.0\0" + "8BIM\x04\x04\0\0\0\0\0\x0cBerlin, DE\0\0")),
    encoded.subarray(app0End),
  );
}

/** The pixels of a JPEG, decoded by `npm:jpeg-js`. */
export function jpegPixels(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  const decoded = jpeg.decode(bytes, { useTArray: true });
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}

const XMP = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF ' +
  'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description ' +
  'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="52,31.2N" ' +
  'exif:GPSLongitude="13,24.6E"/></rdf:RDF></x:xmpmeta>';

/**
 * A big-endian TIFF structure: IFD0 with Make, Orientation and a pointer to
 * a GPS IFD holding GPSVersionID, GPSLatitudeRef, GPSLatitude,
 * GPSLongitudeRef and GPSLongitude.
 */
function exifTiff(orientation: number): Uint8Array {
  const out = new Uint8Array(172);
  const view = new DataView(out.buffer);
  out.set(ascii("MM"), 0);
  view.setUint16(2, 42);
  view.setUint32(4, 8); // IFD0 at 8
  const entry = (at: number, tag: number, type: number, count: number, value: number) => {
    view.setUint16(at, tag);
    view.setUint16(at + 2, type);
    view.setUint32(at + 4, count);
    view.setUint32(at + 8, value);
  };
  // IFD0 at 8: 3 entries, ending at 8 + 2 + 36 + 4 = 50.
  view.setUint16(8, 3);
  entry(10, 0x010f, 2, 8, 50); // Make, ASCII, 8 bytes at 50
  entry(22, 0x0112, 3, 1, 0); // Orientation, SHORT, inline
  view.setUint16(30, orientation);
  entry(34, 0x8825, 4, 1, 58); // GPSInfo IFD at 58
  view.setUint32(46, 0); // no next IFD
  out.set(ascii("TestCam\0"), 50);
  // GPS IFD at 58: 5 entries, ending at 58 + 2 + 60 + 4 = 124.
  view.setUint16(58, 5);
  entry(60, 0x0000, 1, 4, 0); // GPSVersionID, BYTE × 4, inline
  out.set([2, 3, 0, 0], 68);
  entry(72, 0x0001, 2, 2, 0); // GPSLatitudeRef "N\0", inline
  out.set(ascii("N\0"), 80);
  entry(84, 0x0002, 5, 3, 124); // GPSLatitude, 3 RATIONALs at 124
  entry(96, 0x0003, 2, 2, 0); // GPSLongitudeRef "E\0", inline
  out.set(ascii("E\0"), 104);
  entry(108, 0x0004, 5, 3, 148); // GPSLongitude, 3 RATIONALs at 148
  view.setUint32(120, 0);
  LOCATION.latitude.forEach((v, i) => {
    view.setUint32(124 + i * 8, v);
    view.setUint32(128 + i * 8, 1);
  });
  LOCATION.longitude.forEach((v, i) => {
    view.setUint32(148 + i * 8, v);
    view.setUint32(152 + i * 8, 1);
  });
  return out;
}

/** A valid `width` × `height` RGBA PNG. */
export async function png(width: number, height: number): Promise<Uint8Array<ArrayBuffer>> {
  const raw = new Uint8Array(height * (1 + width * 4));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      raw.set([x * 16, y * 16, 200, 255], y * (1 + width * 4) + 1 + x * 4);
    }
  }
  const zlib = new Uint8Array(
    await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate")))
      .arrayBuffer(),
  );
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA
  return concat(
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", zlib),
    pngChunk("IEND", new Uint8Array(0)),
  );
}

/** A `width` × `height` GIF: a 1×1 image on a logical screen of that size. */
export function gif(width: number, height: number): Uint8Array<ArrayBuffer> {
  const bytes = Uint8Array.from(
    atob("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"),
    (c) => c.charCodeAt(0),
  );
  new DataView(bytes.buffer).setUint16(6, width, true);
  new DataView(bytes.buffer).setUint16(8, height, true);
  return bytes;
}

/** The header of a lossless WebP (`VP8L`) of `width` × `height`, and a few bytes. */
export function webp(width: number, height: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(40);
  const view = new DataView(out.buffer);
  out.set(ascii("RIFF"), 0);
  view.setUint32(4, 32, true);
  out.set(ascii("WEBPVP8L"), 8);
  view.setUint32(16, 20, true);
  out[20] = 0x2f;
  view.setUint32(21, ((width - 1) & 0x3fff) | (((height - 1) & 0x3fff) << 14), true);
  return out;
}

/** `text` as ASCII bytes. */
export function ascii(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** The bytes joined. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function segment(marker: number, payload: Uint8Array): Uint8Array {
  const length = payload.length + 2;
  return concat(Uint8Array.of(0xff, marker, length >> 8, length & 0xff), payload);
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(ascii(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}
