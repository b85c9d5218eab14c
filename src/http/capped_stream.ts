/**
 * A request body as a stream with a size cap and a deadline, for bodies too
 * large to read whole (uploads): the bytes pass through as they arrive, and
 * the stream fails with a {@linkcode BodyLimitError} at the first byte over
 * the cap, or when the deadline passes, cancelling the source either way.
 * (`body.ts` reads small bodies whole, with the same two rules.)
 *
 * @module
 */

/** Why a capped body stopped: over its size, or past its deadline. */
export class BodyLimitError extends Error {
  /** `too_large` (answer 413) or `timeout` (answer 408). */
  readonly code: "too_large" | "timeout";

  /** Creates the error. */
  constructor(code: "too_large" | "timeout", message: string) {
    super(message);
    this.name = "BodyLimitError";
    this.code = code;
  }
}

/** Options for {@linkcode cappedStream}. */
export interface CappedStreamOptions {
  /** The most bytes that may pass. */
  maxBytes: number;
  /** How long the whole body may take, in ms from now. */
  timeoutMs: number;
}

/**
 * `body` with a cap and a deadline; see the module doc. The deadline's
 * timer is cleared when the stream ends, fails or is cancelled.
 *
 * @example Usage
 * ```ts
 * import { cappedStream } from "./capped_stream.ts";
 * const body = new Blob([new Uint8Array(100)]).stream();
 * const capped = cappedStream(body, { maxBytes: 10, timeoutMs: 1000 });
 * await new Response(capped).arrayBuffer().catch((e) => e.code); // "too_large"
 * ```
 */
export function cappedStream(
  body: ReadableStream<Uint8Array>,
  options: CappedStreamOptions,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let size = 0;
  let late = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  let fail: (error: BodyLimitError) => void = () => {};
  return new ReadableStream<Uint8Array>({
    start(controller) {
      fail = (error) => {
        stop();
        controller.error(error);
        reader.cancel().catch(() => {});
      };
      timer = setTimeout(() => {
        late = true;
        fail(
          new BodyLimitError(
            "timeout",
            `Cannot read body: not complete within ${options.timeoutMs} ms`,
          ),
        );
      }, options.timeoutMs);
    },
    async pull(controller) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        stop();
        if (!late) controller.error(error);
        return;
      }
      if (late) return; // already failed
      if (result.done) {
        stop();
        controller.close();
        return;
      }
      size += result.value.byteLength;
      if (size > options.maxBytes) {
        fail(
          new BodyLimitError("too_large", `Cannot read body: it is over ${options.maxBytes} bytes`),
        );
        return;
      }
      controller.enqueue(result.value);
    },
    async cancel(reason) {
      stop();
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}
