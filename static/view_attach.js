/**
 * Files for the next message, in the composer: the Attach button (a file
 * picker), pasting images or files into the box, and dropping files on the
 * messages or the composer. Each file uploads at once (a queue per room,
 * `uploads.js`), shown as a chip with its name and size, a `<progress>` while
 * it goes, why it failed (with Retry), and a button to remove it (which
 * cancels its upload). The uploaded ones go with the next message sent.
 *
 * @module
 */

import { formatSize, UploadQueue } from "./uploads.js";

/**
 * The page's parts the view uses.
 *
 * @typedef {{ button: HTMLButtonElement, input: HTMLInputElement, list: HTMLUListElement,
 *   live: HTMLElement, textarea: HTMLTextAreaElement, dropZones: HTMLElement[] }} AttachParts
 */

/** The composer's files. */
export class AttachView {
  /** @type {AttachParts} */
  #parts;
  /** @type {Map<string, UploadQueue>} */
  #queues = new Map();
  #room = "";
  /** @type {() => string} */
  #token;
  /** @type {(message: string) => void} */
  #onError;
  /** @type {() => void} */
  #onChange;
  /** Drag enters minus leaves, to know when a drag left the page's zones. */
  #drags = 0;

  /**
   * @param {AttachParts} parts
   * @param {{ token: () => string, onError: (message: string) => void,
   *   onChange?: () => void }} handlers `token`: the session token for uploads; `onChange`:
   *   the files changed (what Send may do changed).
   */
  constructor(parts, { token, onError, onChange = () => {} }) {
    this.#parts = parts;
    this.#token = token;
    this.#onError = onError;
    this.#onChange = onChange;
    parts.button.addEventListener("click", () => parts.input.click());
    parts.input.addEventListener("change", () => {
      this.add([...(parts.input.files ?? [])]);
      parts.input.value = "";
    });
    parts.textarea.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (!files.length) return;
      event.preventDefault();
      this.add(files);
    });
    for (const zone of parts.dropZones) {
      zone.addEventListener("dragenter", (event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        this.#drags++;
        document.body.dataset.dropping = "true";
      });
      zone.addEventListener("dragover", (event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
      });
      zone.addEventListener("dragleave", () => {
        this.#drags = Math.max(0, this.#drags - 1);
        if (!this.#drags) delete document.body.dataset.dropping;
      });
      zone.addEventListener("drop", (event) => {
        this.#drags = 0;
        delete document.body.dataset.dropping;
        const files = [...(event.dataTransfer?.files ?? [])];
        if (!files.length) return;
        event.preventDefault();
        this.add(files);
        parts.textarea.focus();
      });
    }
    parts.list.addEventListener("click", (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest("button");
      const key = button?.closest("li")?.dataset.key;
      if (!button || !key) return;
      const queue = this.#queue();
      if (button.dataset.do === "retry") queue?.retry(key);
      else if (button.dataset.do === "remove") {
        queue?.cancel(key);
        parts.textarea.focus();
      }
    });
  }

  /** Shows the files of `room` (another room's stay, uploading, for when it is back). @param {string} room */
  setRoom(room) {
    this.#room = room;
    this.#render();
  }

  /** Whether the button and drops can take files now. @param {boolean} enabled */
  setEnabled(enabled) {
    this.#parts.button.disabled = !enabled;
  }

  /** True while a file of the room in view is still uploading (or waiting to). */
  get busy() {
    return this.#queue()?.busy ?? false;
  }

  /** True when files are uploaded and wait for Send. */
  get ready() {
    return (this.#queue()?.ready.length ?? 0) > 0;
  }

  /**
   * Adds files to the room in view's next message and starts uploading them.
   *
   * @param {File[]} files
   */
  add(files) {
    if (!this.#room || !files.length) return;
    if (this.#parts.button.disabled) return this.#onError("You cannot send files here now.");
    let queue = this.#queues.get(this.#room);
    if (!queue) {
      queue = new UploadQueue({ room: this.#room, token: this.#token });
      const room = this.#room;
      queue.addEventListener("change", () => {
        if (room === this.#room) this.#render();
      });
      this.#queues.set(room, queue);
    }
    const { added, refused } = queue.add(files);
    if (refused.length) {
      this.#onError(`At most 10 files go with one message: ${refused.length} left out.`);
    }
    if (added.length) {
      this.#parts.live.textContent = added.length === 1
        ? `Uploading ${added[0].name}.`
        : `Uploading ${added.length} files.`;
    }
  }

  /**
   * The uploaded files of the room in view, for the message being sent:
   * they leave the composer.
   *
   * @returns {import("./conversation.js").Attachment[]}
   */
  take() {
    return this.#queue()?.take() ?? [];
  }

  #queue() {
    return this.#queues.get(this.#room);
  }

  #render() {
    const items = this.#queue()?.items ?? [];
    const list = this.#parts.list;
    list.hidden = items.length === 0;
    /** @type {Map<string, HTMLLIElement>} */
    const old = new Map();
    for (const li of /** @type {NodeListOf<HTMLLIElement>} */ (list.querySelectorAll("li"))) {
      old.set(/** @type {string} */ (li.dataset.key), li);
    }
    list.replaceChildren(...items.map((item) => {
      const li = old.get(item.key) ?? chip(item);
      const previous = li.dataset.state;
      li.dataset.state = item.state;
      const progress = /** @type {HTMLProgressElement} */ (li.querySelector("progress"));
      progress.hidden = item.state !== "uploading" && item.state !== "queued";
      progress.max = Math.max(1, item.total);
      progress.value = item.loaded;
      const percent = Math.round((100 * item.loaded) / Math.max(1, item.total));
      const state = /** @type {HTMLElement} */ (li.querySelector(".upload-state"));
      state.textContent = item.state === "failed"
        ? item.error
        : item.state === "done"
        ? "ready"
        : item.state === "queued"
        ? "waiting"
        : `${percent}%`;
      /** @type {HTMLElement} */ (li.querySelector('[data-do="retry"]')).hidden =
        item.state !== "failed" || !item.retriable;
      if (previous !== item.state) {
        if (item.state === "failed") {
          this.#parts.live.textContent = `${item.name} was not uploaded: ${item.error}`;
        } else if (item.state === "done") {
          this.#parts.live.textContent = `${item.name} is ready to send.`;
        }
      }
      return li;
    }));
    this.#onChange();
  }
}

/**
 * A new chip for an upload.
 *
 * @param {import("./uploads.js").UploadItem} item
 * @returns {HTMLLIElement}
 */
function chip(item) {
  const li = document.createElement("li");
  li.className = "pending-file";
  li.dataset.key = item.key;
  const name = document.createElement("span");
  name.className = "file-name";
  name.textContent = item.name;
  const size = document.createElement("span");
  size.className = "file-size";
  size.textContent = formatSize(item.size);
  const progress = document.createElement("progress");
  progress.setAttribute("aria-label", `Uploading ${item.name}`);
  const state = document.createElement("span");
  state.className = "upload-state";
  const retry = document.createElement("button");
  retry.type = "button";
  retry.className = "small secondary";
  retry.dataset.do = "retry";
  retry.textContent = "Retry";
  retry.setAttribute("aria-label", `Retry ${item.name}`);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "icon";
  remove.dataset.do = "remove";
  remove.textContent = "×";
  remove.title = "Remove (cancels its upload)";
  remove.setAttribute("aria-label", `Remove ${item.name}`);
  li.append(name, size, progress, state, retry, remove);
  return li;
}

/** Whether a drag carries files. @param {DragEvent} event */
function hasFiles(event) {
  return [...(event.dataTransfer?.types ?? [])].includes("Files");
}
