/**
 * What an upload's bytes are and what is taken out of them, without a
 * server: EXIF/XMP/IPTC removal from a real JPEG carrying GPS tags (checked
 * with `npm:exifreader`, an independent parser, and decoded again with
 * `npm:jpeg-js`), image sizes, type detection and claims, file names, the
 * streaming form reader and the capped body stream.
 */
import assert from "node:assert/strict";
import ExifReader from "exifreader";
import { BodyLimitError, cappedStream } from "../src/http/capped_stream.ts";
import { formBoundary, formParts, MultipartError } from "../src/http/multipart.ts";
import { uploadTimeoutMs } from "../src/http/uploads.ts";
import { claimProblem, detectType } from "../src/media/file_type.ts";
import { safeFileName } from "../src/media/file_name.ts";
import { headerSize } from "../src/media/image_size.ts";
import { JpegScrubber, scrubJpeg } from "../src/media/jpeg_scrub.ts";
import { ascii, gif, jpegPixels, jpegWithGps, png, webp } from "./images.ts";

// deno-lint-ignore no-explicit-any
function tags(bytes: Uint8Array): Record<string, any> {
  return ExifReader.load(bytes.slice().buffer, { expanded: true });
}

Deno.test("the test JPEG really carries GPS: exifreader reads our EXIF, XMP and IPTC", () => {
  const photo = jpegWithGps(64, 48);
  const found = tags(photo);
  assert.deepEqual(found.gps?.Latitude !== undefined, true, Object.keys(found).join());
  assert.ok(Math.abs(found.gps.Latitude - (52 + 31 / 60 + 12 / 3600)) < 1e-6);
  assert.ok(Math.abs(found.gps.Longitude - (13 + 24 / 60 + 36 / 3600)) < 1e-6);
  assert.equal(found.exif?.Make?.description, "TestCam");
  assert.equal(found.exif?.Orientation?.value, 6);
  assert.ok(found.xmp, "an XMP segment");
  assert.deepEqual(jpegPixels(photo).width, 64, "a decodable JPEG");
});

Deno.test("scrubJpeg removes GPS, EXIF, XMP and IPTC, keeps the orientation and the pixels", () => {
  const photo = jpegWithGps(64, 48);
  const { bytes, size } = scrubJpeg(photo);
  const found = tags(bytes);
  assert.equal(found.gps, undefined, "no GPS");
  assert.equal(found.xmp, undefined, "no XMP");
  assert.equal(found.iptc, undefined, "no IPTC");
  assert.equal(found.exif?.Make, undefined, "no camera make");
  assert.equal(found.exif?.Orientation?.value, 6, "the orientation stays");
  assert.deepEqual(Object.keys(found.exif ?? {}), ["Orientation"]);
  const text = new TextDecoder("latin1").decode(bytes);
  for (const trace of ["TestCam", "GPSLatitude", "Berlin", "Photoshop"]) {
    assert.ok(!text.includes(trace), `no ${trace} left in the bytes`);
  }
  assert.deepEqual(size, { width: 48, height: 64 }, "as displayed: orientation 6 turns it");
  const before = jpegPixels(photo), after = jpegPixels(bytes);
  assert.deepEqual([after.width, after.height], [64, 48]);
  assert.deepEqual(after.data, before.data, "the image data is untouched");
  assert.ok(bytes.length < photo.length);
});

Deno.test("scrubJpeg: orientation 1 leaves no EXIF at all; the size is the frame's", () => {
  const { bytes, size } = scrubJpeg(jpegWithGps(30, 20, 1));
  assert.equal(tags(bytes).exif, undefined);
  assert.deepEqual(size, { width: 30, height: 20 });
});

Deno.test("JpegScrubber streams: any chunking gives the same bytes as scrubJpeg", async () => {
  const photo = jpegWithGps(40, 40);
  const whole = scrubJpeg(photo).bytes;
  for (const piece of [1, 2, 3, 7, 100, 4096]) {
    const scrubber = new JpegScrubber();
    let offset = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        if (offset >= photo.length) return c.close();
        c.enqueue(photo.slice(offset, offset += piece));
      },
    });
    const out = new Uint8Array(await new Response(source.pipeThrough(scrubber)).arrayBuffer());
    assert.deepEqual(out, whole, `pieces of ${piece}`);
    assert.deepEqual(scrubber.size, { width: 40, height: 40 });
    assert.ok(scrubber.removed);
  }
});

Deno.test("JpegScrubber passes anything that is not a JPEG through unchanged", async () => {
  const bytes = await png(3, 3);
  const out = new Uint8Array(
    await new Response(new Blob([bytes]).stream().pipeThrough(new JpegScrubber())).arrayBuffer(),
  );
  assert.deepEqual(out, bytes);
});

Deno.test("headerSize reads PNG, GIF and WebP headers", async () => {
  assert.deepEqual(headerSize(await png(17, 9), "image/png"), { width: 17, height: 9 });
  assert.deepEqual(headerSize(gif(300, 200), "image/gif"), { width: 300, height: 200 });
  assert.deepEqual(headerSize(webp(640, 480), "image/webp"), { width: 640, height: 480 });
  assert.equal(headerSize(new Uint8Array(5), "image/png"), null, "too short");
  assert.equal(headerSize(gif(1, 1), "application/pdf"), null);
});

Deno.test("detectType: from the bytes, text formats included", async () => {
  const text = (s: string) => detectType(new TextEncoder().encode(s));
  assert.deepEqual(await detectType(await png(2, 2)), { mime: "image/png", text: false });
  assert.equal((await detectType(jpegWithGps(8, 8))).mime, "image/jpeg");
  assert.equal((await detectType(gif(1, 1))).mime, "image/gif");
  assert.equal((await detectType(webp(2, 2))).mime, "image/webp");
  assert.equal((await detectType(ascii("%PDF-1.7\n%âãÏÓ\n"))).mime, "application/pdf");
  assert.deepEqual(await text("<svg xmlns='http://www.w3.org/2000/svg'/>"), {
    mime: "image/svg+xml",
    text: true,
  });
  assert.equal((await text('<?xml version="1.0"?>\n<!-- hi -->\n<svg/>')).mime, "image/svg+xml");
  assert.equal((await text("<!DOCTYPE html><p>hi")).mime, "text/html");
  assert.equal((await text("  <html><script>alert(1)</script>")).mime, "text/html");
  assert.equal((await text("just words, ünïcödé 🎉")).mime, "text/plain");
  assert.equal((await text('<?xml version="1.0"?><feed/>')).mime, "application/xml");
  assert.deepEqual(await detectType(Uint8Array.of(0, 1, 2, 3, 255)), {
    mime: "application/octet-stream",
    text: false,
  });
  assert.deepEqual(await detectType(new Uint8Array(0)), { mime: "text/plain", text: true });
  // A multi-byte character cut at the end of the sniffed head is still text.
  const cut = new TextEncoder().encode("é".repeat(10)).subarray(0, 19);
  assert.equal((await detectType(cut)).text, true);
});

Deno.test("claimProblem: a name or part type that claims another type is a problem", () => {
  const jpeg = { mime: "image/jpeg", text: false };
  const textual = { mime: "text/plain", text: true };
  assert.equal(claimProblem("cat.jpg", "image/jpeg", jpeg), null);
  assert.equal(claimProblem("cat.JPEG", "image/pjpeg", jpeg), null, "aliases and case");
  assert.equal(claimProblem("cat", "application/octet-stream", jpeg), null, "no claim");
  assert.equal(claimProblem("archive.xyz", "", jpeg), null, "an unknown extension claims nothing");
  assert.match(
    claimProblem("cat.png", "", jpeg)!,
    /claims to be image\/png, but its bytes are image\/jpeg/,
  );
  assert.match(claimProblem("cat.jpg", "image/gif", jpeg)!, /image\/gif/);
  assert.match(claimProblem("notes.txt", "text/plain", jpeg)!, /text\/plain/);
  assert.match(claimProblem("page.svg", "", { mime: "application/pdf", text: false })!, /svg/);
  assert.equal(claimProblem("page.svg", "image/svg+xml", textual), null, "text meets a text claim");
  assert.equal(claimProblem("data.csv", "application/vnd.ms-excel", textual), null);
  assert.match(claimProblem("photo.png", "", textual)!, /its bytes are text/);
});

Deno.test("safeFileName: last segment, no invisible or reserved characters, bounded", () => {
  assert.equal(safeFileName("C:\\Users\\ada\\cat.png"), "cat.png");
  assert.equal(safeFileName("../../etc/passwd"), "passwd");
  assert.equal(safeFileName("invoice\u202Egnp.exe"), "invoicegnp.exe");
  assert.equal(safeFileName('a<b>:"c"|?*.txt'), "a_b___c____.txt");
  assert.equal(safeFileName("  .hidden. "), "hidden");
  assert.equal(safeFileName("e\u0301te\u0301.txt"), "été.txt");
  assert.equal(safeFileName(""), "file");
  assert.equal(safeFileName("\u0000\u200b"), "file");
  const long = safeFileName(`${"x".repeat(300)}.jpeg`);
  assert.equal([...long].length, 120);
  assert.ok(long.endsWith(".jpeg"));
  assert.equal(safeFileName("\ud800.txt"), "txt", "a lone surrogate is dropped");
});

Deno.test("uploadTimeoutMs: 10 s plus a second per 64 KiB", () => {
  assert.equal(uploadTimeoutMs(0), 10_000);
  assert.equal(uploadTimeoutMs(64 * 1024), 11_000);
  assert.equal(uploadTimeoutMs(10 * 1024 * 1024), 170_000);
});

/** A multipart body of `fields`, cut into pieces of `piece` bytes. */
function form(
  boundary: string,
  fields: { name: string; filename?: string; type?: string; data: Uint8Array | string }[],
  piece = 5,
): ReadableStream<Uint8Array> {
  const parts: Uint8Array[] = [ascii("preamble\r\n")];
  for (const f of fields) {
    const disposition = `form-data; name="${f.name}"` +
      (f.filename !== undefined ? `; filename="${f.filename}"` : "");
    parts.push(ascii(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n`));
    if (f.type) parts.push(ascii(`Content-Type: ${f.type}\r\n`));
    parts.push(ascii("\r\n"));
    parts.push(typeof f.data === "string" ? new TextEncoder().encode(f.data) : f.data);
    parts.push(ascii("\r\n"));
  }
  parts.push(ascii(`--${boundary}--\r\n`));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    all.set(p, offset);
    offset += p.length;
  }
  offset = 0;
  return new ReadableStream({
    pull(c) {
      if (offset >= all.length) return c.close();
      c.enqueue(all.slice(offset, offset += piece));
    },
  });
}

Deno.test("formParts reads parts in any chunking, with bytes that look like boundaries", async () => {
  const tricky = ascii("line\r\n--bound\r\n--boundar\r\n-");
  for (const piece of [1, 3, 5, 64, 10_000]) {
    const parts: { name: string; filename?: string; type?: string; text: string }[] = [];
    const body = form("boundary", [
      { name: "room", data: "lobby" },
      { name: "file", filename: "a b.bin", type: "application/octet-stream", data: tricky },
      { name: "skipped", data: "never read" },
      { name: "empty", filename: "", data: "" },
    ], piece);
    for await (const part of formParts(body, "boundary")) {
      if (part.name === "skipped") continue; // not read: skipped by the reader
      const text = new TextDecoder("latin1").decode(await new Response(part.body).arrayBuffer());
      parts.push({ name: part.name, filename: part.filename, type: part.type, text });
    }
    assert.deepEqual(parts, [
      { name: "room", filename: undefined, type: undefined, text: "lobby" },
      {
        name: "file",
        filename: "a b.bin",
        type: "application/octet-stream",
        text: "line\r\n--bound\r\n--boundar\r\n-",
      },
      { name: "empty", filename: "", type: undefined, text: "" },
    ], `pieces of ${piece}`);
  }
});

Deno.test("formParts agrees with the form a Request encodes itself", async () => {
  const data = await png(20, 20);
  const fd = new FormData();
  fd.append("note", "héllo");
  fd.append("file", new File([data], "ünï code.png", { type: "image/png" }));
  const req = new Request("http://localhost/", { method: "POST", body: fd });
  const boundary = formBoundary(req.headers.get("content-type"))!;
  const seen: string[] = [];
  for await (const part of formParts(req.body!, boundary)) {
    const bytes = new Uint8Array(await new Response(part.body).arrayBuffer());
    seen.push(`${part.name}:${part.filename}:${part.type}:${bytes.length}`);
    if (part.name === "file") assert.deepEqual(bytes, data);
  }
  assert.deepEqual(seen, [
    "note:undefined:undefined:6",
    `file:ünï code.png:image/png:${data.length}`,
  ]);
});

Deno.test("formParts refuses malformed forms with a MultipartError", async () => {
  const read = async (body: string) => {
    for await (const part of formParts(new Blob([body]).stream(), "b")) await part.body.cancel();
  };
  await assert.rejects(() => read("no boundary here"), MultipartError);
  await assert.rejects(
    () => read('--b\r\nContent-Disposition: form-data; name="f"\r\n\r\ncut'),
    /ends too soon/,
  );
  await assert.rejects(
    () => read("--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--"),
    /no name/,
  );
  await assert.rejects(() => read(`--b\r\n${"X-Long: y\r\n".repeat(1000)}\r\n`), /too long/);
  const many =
    Array.from({ length: 21 }, () => '--b\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n')
      .join("") + "--b--";
  await assert.rejects(() => read(many), /more than 20 parts/);
  assert.equal(formBoundary('multipart/form-data; boundary="quoted b"'), "quoted b");
  assert.equal(formBoundary("multipart/form-data"), null);
  assert.equal(formBoundary("multipart/mixed; boundary=x"), null);
});

Deno.test("cappedStream: passes bytes, stops at the cap, and at the deadline", async () => {
  const ok = cappedStream(new Blob(["hello"]).stream(), { maxBytes: 5, timeoutMs: 5000 });
  assert.equal(await new Response(ok).text(), "hello");
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(1000)),
    cancel: () => {
      cancelled = true;
    },
  });
  const big = cappedStream(endless, { maxBytes: 5000, timeoutMs: 5000 });
  await assert.rejects(
    () => new Response(big).arrayBuffer(),
    (e: unknown) => e instanceof BodyLimitError && e.code === "too_large",
  );
  assert.ok(cancelled, "the source was cancelled");
  const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
  const late = cappedStream(stalled, { maxBytes: 5000, timeoutMs: 50 });
  await assert.rejects(
    () => new Response(late).arrayBuffer(),
    (e: unknown) => e instanceof BodyLimitError && e.code === "timeout",
  );
});
