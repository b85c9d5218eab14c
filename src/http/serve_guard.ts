/**
 * Two things `deno serve` does not do by itself, for `main.ts`'s default
 * export:
 *
 * - **Keep listening when `accept()` fails.** Out of file descriptors
 *   (EMFILE), `Deno.serve`'s accept loop ends, its listener closes, and its
 *   `finished` promise rejects with nobody to handle it, which ends the
 *   process: `Uncaught (in promise) Http: Error: Too many open files (os
 *   error 24)`. The guard handles that rejection and opens the listener
 *   again at the same address, retrying with backoff until descriptors are
 *   free. Open connections are not touched; while no listener is open, new
 *   ones are refused by the kernel.
 * - **Drain before Deno's own shutdown.** Deno 2.9's `deno serve` adds its
 *   own SIGINT/SIGTERM listener right after `onListen` returns. It closes the
 *   listener and cancels every WebSocket's read at once: clients with frames
 *   in flight see an abnormal close, and an upgrade during shutdown a refused
 *   connection. The guard holds that listener back, so the chat can refuse
 *   upgrades with 503 and close each socket with 1001 first; `close()` then
 *   runs it. (Deno 2.5, which Deno Deploy runs, adds no such listener.)
 *
 * @module
 */

/** Options for {@linkcode guardServe}. */
export interface ServeGuardOptions {
  /**
   * Where the guard reports, one line each.
   * @default {console.error}
   */
  log?: (line: string) => void;
  /**
   * First pause before listening again, in ms; it doubles up to `maxRetryMs`.
   * @default {100}
   */
  retryMs?: number;
  /**
   * Longest pause between two attempts to listen again, in ms.
   * @default {2000}
   */
  maxRetryMs?: number;
}

/** What {@linkcode guardServe} returns. */
export interface ServeGuard {
  /** Times the listener was opened again after `accept()` failed. */
  readonly relistens: number;
  /** Runs `deno serve`'s own (held) shutdown and closes the listeners opened again. */
  close(): void;
}

type SignalListener = (signal: Deno.Signal, handler: () => void) => void;

/**
 * Call from `onListen`, after adding your own signal listeners: holds the
 * SIGINT/SIGTERM listener `deno serve` adds once `onListen` returns, and
 * keeps a listener open at `addr` serving `handler`.
 *
 * @example Usage
 * ```ts ignore
 * onListen(addr) {
 *   starter.onSignal(async (running) => {
 *     await running.close();
 *     serving.close();
 *   });
 *   const serving = guardServe(addr, handler);
 * }
 * ```
 */
export function guardServe(
  addr: Deno.Addr,
  handler: Deno.ServeHandler,
  options: ServeGuardOptions = {},
): ServeGuard {
  const log = options.log ?? ((line) => console.error(line));
  const held = holdSignalListeners();
  const replacements = new Set<Deno.HttpServer>();
  let relistens = 0;
  let closed = false;
  let pending = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  let delay = 0;
  let listenedAt = -Infinity;
  const relisten = (reason: Error) => {
    if (closed || pending || addr.transport !== "tcp") return;
    pending = true;
    const where = `${addr.hostname}:${addr.port}`;
    // A listener that fails again soon after it opened waits longer each time (the descriptors
    // are still taken); one that served a while starts over without a pause.
    const first = options.retryMs ?? 100;
    const max = options.maxRetryMs ?? 2000;
    delay = performance.now() - listenedAt < max ? Math.min(Math.max(delay * 2, first), max) : 0;
    log(`The listener stopped (${reason.message}); listening again on ${where}`);
    let reusePort = false;
    const attempt = () => {
      timer = undefined;
      if (closed) return;
      try {
        const server = Deno.serve(
          { hostname: addr.hostname, port: addr.port, reusePort, onListen() {} },
          handler,
        );
        replacements.add(server);
        pending = false;
        relistens++;
        listenedAt = performance.now();
        log(`Listening again on ${where}`);
        server.finished.then(() => replacements.delete(server), (error) => {
          replacements.delete(server);
          if (acceptFailed(error)) relisten(error);
          else void Promise.reject(error); // As unhandled as Deno would leave it.
        });
      } catch (error) {
        if (error instanceof Deno.errors.AddrInUse) {
          if (reusePort) return log(`Cannot listen on ${where} again: ${error.message}`);
          reusePort = true; // deno serve --parallel: the other isolates still listen there.
        }
        delay = Math.min(Math.max(delay * 2, first), max);
        timer = setTimeout(attempt, delay);
      }
    };
    if (delay === 0) attempt();
    else timer = setTimeout(attempt, delay);
  };

  globalThis.addEventListener("unhandledrejection", (event) => {
    if (!acceptFailed(event.reason)) return;
    event.preventDefault();
    relisten(event.reason);
  });

  return {
    get relistens() {
      return relistens;
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      for (const listener of held) listener();
      for (const server of replacements) server.shutdown().catch(() => {});
    },
  };
}

/** Whether `reason` is the rejection of `Deno.serve`'s accept loop: an OS error, wrapped as `Http`. */
function acceptFailed(reason: unknown): reason is Error {
  return reason instanceof Deno.errors.Http && /\(os error \d+\)/.test(reason.message);
}

/**
 * Takes the SIGINT/SIGTERM listeners added until the current task ends
 * instead of adding them, and returns them (each once).
 */
function holdSignalListeners(): Set<() => void> {
  const held = new Set<() => void>();
  const namespace = Deno as unknown as { addSignalListener: SignalListener };
  const add = namespace.addSignalListener;
  try {
    namespace.addSignalListener = (signal, handler) => {
      if (signal === "SIGINT" || signal === "SIGTERM") held.add(handler);
      else add(signal, handler);
    };
  } catch {
    return held; // Not replaceable here: Deno's listener stays as it is.
  }
  queueMicrotask(() => namespace.addSignalListener = add);
  return held;
}
