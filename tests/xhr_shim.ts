/**
 * An `XMLHttpRequest` for Deno tests of the page's upload client
 * (`static/uploads.js`), which Deno does not have: the parts the client uses
 * (`open`, `setRequestHeader`, `send` of a `FormData`, `abort`,
 * `upload`'s `progress`, `load`, `error`, `abort`, `status`, `responseText`,
 * `getResponseHeader`), over `fetch` with a streamed body. Progress is told
 * as each chunk of the body is taken by the connection, as a browser tells
 * it as bytes go out.
 *
 * @module
 */

/** Bytes per chunk of the streamed body (and so per progress event). */
export const CHUNK_BYTES = 64 * 1024;

/** A progress event as `XMLHttpRequestUpload` fires it. */
class ProgressEvent extends Event {
  constructor(type: string, readonly loaded: number, readonly total: number) {
    super(type);
  }
  readonly lengthComputable = true;
}

export class FetchXhr extends EventTarget {
  /** Every request made, for a test to look at. */
  static all: FetchXhr[] = [];
  readonly upload = new EventTarget();
  status = 0;
  responseText = "";
  responseType = "";
  method = "";
  url = "";
  readonly headers = new Headers();
  #controller = new AbortController();
  #response: Response | null = null;
  #aborted = false;

  constructor() {
    super();
    FetchXhr.all.push(this);
  }

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers.set(name, value);
  }

  getResponseHeader(name: string): string | null {
    return this.#response?.headers.get(name) ?? null;
  }

  send(body: FormData): void {
    void this.#send(body);
  }

  abort(): void {
    if (this.#aborted || this.#response) return;
    this.#aborted = true;
    this.#controller.abort();
  }

  async #send(form: FormData): Promise<void> {
    // The form as a browser sends it: its multipart bytes and their boundary.
    const encoded = new Request("http://form/", { method: "POST", body: form });
    const type = encoded.headers.get("content-type") ?? "";
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    const total = bytes.byteLength;
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        if (this.#aborted) return;
        if (offset >= total) return controller.close();
        const chunk = bytes.slice(offset, offset + CHUNK_BYTES);
        offset += chunk.byteLength;
        controller.enqueue(chunk);
        this.upload.dispatchEvent(new ProgressEvent("progress", offset, total));
      },
    });
    this.headers.set("content-type", type);
    try {
      const response = await fetch(this.url, {
        method: this.method,
        headers: this.headers,
        body: stream,
        signal: this.#controller.signal,
      });
      this.responseText = await response.text();
      this.#response = response;
      this.status = response.status;
    } catch (error) {
      if (this.#aborted) return void this.dispatchEvent(new Event("abort"));
      this.dispatchEvent(new Event("error"));
      if (!(error instanceof TypeError)) throw error;
      return;
    }
    this.dispatchEvent(new Event("load"));
  }
}
