/**
 * Starts something once, on first use, without ever caching a failure: a
 * start that throws (the store unreachable for a moment) is reported, and
 * the next call after a short pause tries again. Also stops it on SIGINT or
 * SIGTERM where the runtime has signals.
 *
 * @module
 */

import type { ServiceState } from "./state.ts";

/** What {@linkcode Starter.get} resolves to. */
export type Started<T> = { ok: true; value: T } | { ok: false; state: ServiceState };

/** Options for {@linkcode Starter}. */
export interface StarterOptions {
  /**
   * Shortest time between two attempts, in milliseconds.
   * @default {1000}
   */
  retryMs?: number;
  /**
   * Where failures are reported.
   * @default {console.error}
   */
  report?: (message: string) => void;
}

/**
 * A lazily started value whose failed starts are retried.
 *
 * @example Usage
 * ```ts
 * import { Starter } from "./starter.ts";
 * let tries = 0;
 * const starter = new Starter(() => ++tries === 1 ? Promise.reject(new Error("busy")) : Promise.resolve(tries), {
 *   retryMs: 0,
 *   report: () => {},
 * });
 * (await starter.get()).ok; // false
 * (await starter.get()).ok; // true
 * ```
 */
export class Starter<T> {
  #start: () => Promise<T>;
  #retryMs: number;
  #report: (message: string) => void;
  #current: Promise<Started<T>> | undefined;
  #failed = false;
  #failedAt = -Infinity;

  /** Wraps `start`; nothing runs until {@linkcode Starter.get}. */
  constructor(start: () => Promise<T>, options: StarterOptions = {}) {
    this.#start = start;
    this.#retryMs = options.retryMs ?? 1000;
    this.#report = options.report ?? ((message) => console.error(message));
  }

  /**
   * The started value, starting it on first use. After a failed start, the
   * failure is answered for `retryMs`, then the next call starts again.
   */
  get(): Promise<Started<T>> {
    const retry = this.#failed && performance.now() - this.#failedAt >= this.#retryMs;
    if (!this.#current || retry) {
      this.#failed = false;
      this.#current = this.#attempt();
    }
    return this.#current;
  }

  async #attempt(): Promise<Started<T>> {
    try {
      return { ok: true, value: await this.#start() };
    } catch (error) {
      this.#failed = true;
      this.#failedAt = performance.now();
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.#report(`Cannot start: ${reason} (retrying on the next request)`);
      return { ok: false, state: { ok: false, reason: `starting: ${reason}` } };
    }
  }

  /**
   * On SIGINT or SIGTERM, runs `stop` with the started value, then exits.
   * Does nothing where the runtime has no signals.
   */
  onSignal(stop: (value: T) => Promise<void>): void {
    const handle = async (signal: string) => {
      const started = this.#current ? await this.#current : null;
      console.log(`${signal}: shutting down`);
      if (started?.ok) await stop(started.value);
      Deno.exit(0);
    };
    try {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        Deno.addSignalListener(signal, () => void handle(signal));
      }
    } catch { /* No signals here: the platform stops the isolate itself. */ }
  }
}

/** What {@linkcode serveUnlessServed} serves: a `deno serve` default export. */
export interface ServeEntry {
  fetch(req: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response>;
  onListen?(addr: Deno.NetAddr): void;
}

/**
 * Makes the main module serve under `deno run` as under `deno serve`.
 * `deno serve` serves the default export itself, calling `Deno.serve` in
 * every isolate after the module is evaluated and before the `load` event;
 * `deno run` does not (it only warns "Detected export default { fetch }"),
 * and neither do hosts that run the entry like it, such as Deno Deploy. So
 * this watches for a `Deno.serve` call until `load`, and when none came,
 * serves `entry` on `port()` itself. Call it only from the main module.
 *
 * @example Usage
 * ```ts ignore
 * const entry = { fetch: () => new Response("hi") };
 * if (import.meta.main) serveUnlessServed(entry, () => 8000);
 * export default entry;
 * ```
 */
export function serveUnlessServed(entry: ServeEntry, port: () => number): void {
  const descriptor = Object.getOwnPropertyDescriptor(Deno, "serve");
  if (!descriptor?.configurable) return;
  const serve = Deno.serve;
  let served = false;
  const watching = (...args: unknown[]) => {
    served = true;
    return (serve as (...args: unknown[]) => Deno.HttpServer).apply(Deno, args);
  };
  Object.defineProperty(
    Deno,
    "serve",
    "value" in descriptor
      ? { ...descriptor, value: watching }
      : { ...descriptor, get: () => watching },
  );
  addEventListener("load", () => {
    Object.defineProperty(Deno, "serve", descriptor);
    if (served) return;
    serve({
      port: port(),
      onListen: (addr) => entry.onListen?.(addr as Deno.NetAddr),
    }, entry.fetch);
  }, { once: true });
}
