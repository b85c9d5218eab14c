/**
 * A message's files in the log. Images (PNG, JPEG, GIF, WebP with a known
 * size) show inline as a thumbnail whose box is reserved from their width
 * and height before the bytes come (no layout jump), linking to the full
 * image; anything else, SVG included, is a chip with its name, size and a
 * download link, never rendered. The bytes are fetched with the session
 * header (`uploads.js`'s {@linkcode FileFetcher}) and shown from `blob:` URLs.
 *
 * @module
 */

import { fitSize, formatSize, isInlineImage } from "./uploads.js";

/** @typedef {import("./conversation.js").Attachment} Attachment */

/** The largest box a thumbnail takes, in CSS pixels. */
export const THUMB_BOX = Object.freeze({ width: 320, height: 240 });

/** Builds and fills the files of messages, one `blob:` URL per file. */
export class FileViews {
  /** @type {import("./uploads.js").FileFetcher} */
  #fetcher;
  /** @type {Map<string, Promise<string>>} */
  #urls = new Map();

  /** @param {import("./uploads.js").FileFetcher} fetcher */
  constructor(fetcher) {
    this.#fetcher = fetcher;
  }

  /**
   * A `blob:` URL of `file`'s bytes (made once per file).
   *
   * @param {Attachment} file
   * @returns {Promise<string>}
   */
  url(file) {
    let url = this.#urls.get(file.id);
    if (!url) {
      url = this.#fetcher.blob(file).then((blob) => URL.createObjectURL(blob));
      url.catch(() => this.#urls.delete(file.id));
      this.#urls.set(file.id, url);
    }
    return url;
  }

  /**
   * Puts the files of a message in `li` (after its text), or takes them out
   * when it has none. Files already shown stay as they are.
   *
   * @param {HTMLElement} li
   * @param {Attachment[]} files
   */
  fill(li, files) {
    let list = /** @type {HTMLUListElement | null} */ (li.querySelector(":scope > .attachments"));
    const key = files.map((f) => f.id).join(",");
    if (!files.length) return list?.remove();
    if (list?.dataset.files === key) return;
    if (!list) {
      list = document.createElement("ul");
      list.className = "attachments";
      list.setAttribute("aria-label", "Files");
      li.querySelector(".text")?.after(list);
    }
    list.dataset.files = key;
    list.replaceChildren(...files.map((file) => {
      const item = document.createElement("li");
      item.append(isInlineImage(file) ? this.#image(file) : this.#chip(file));
      return item;
    }));
  }

  /** @param {Attachment} file */
  #image(file) {
    const { width, height } = fitSize(file, THUMB_BOX);
    const link = document.createElement("a");
    link.className = "attachment-image";
    link.target = "_blank";
    link.rel = "noopener";
    link.tabIndex = -1;
    link.dataset.fileId = file.id;
    link.title = `${file.name} (${formatSize(file.size)}): open full size`;
    const img = document.createElement("img");
    img.alt = file.name;
    img.width = width;
    img.height = height;
    img.decoding = "async";
    // The box is kept at the image's shape before (and after) its bytes come.
    img.style.aspectRatio = `${width} / ${height}`;
    link.append(img);
    this.url(file).then((url) => {
      img.src = url;
      link.href = url;
    }, () => {
      link.dataset.failed = "true";
      img.alt = `${file.name} (no longer there)`;
    });
    return link;
  }

  /** @param {Attachment} file */
  #chip(file) {
    const link = document.createElement("a");
    link.className = "attachment-file";
    link.tabIndex = -1;
    link.download = file.name;
    // A real address until the bytes are fetched (it needs the session header, so a click fetches them).
    link.href = "#";
    link.dataset.fileId = file.id;
    const verb = document.createElement("span");
    verb.className = "visually-hidden";
    verb.textContent = "Download ";
    const icon = document.createElement("span");
    icon.className = "file-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = "📄";
    const name = document.createElement("span");
    name.className = "file-name";
    name.textContent = file.name;
    const size = document.createElement("span");
    size.className = "file-size";
    size.textContent = formatSize(file.size);
    link.append(verb, icon, name, size);
    link.addEventListener("click", (event) => {
      if (link.dataset.ready === "true") return;
      event.preventDefault();
      if (link.dataset.busy === "true") return;
      link.dataset.busy = "true";
      this.url(file).then((url) => {
        link.href = url;
        link.dataset.ready = "true";
        link.click();
      }, () => {
        link.dataset.failed = "true";
        size.textContent = "no longer there";
      }).finally(() => delete link.dataset.busy);
    });
    return link;
  }
}
