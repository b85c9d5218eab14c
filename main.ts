/**
 * Deno Chat, the front door. Read it top to bottom: the configuration, the
 * backends (where history lives and how instances talk), the hub with its
 * transports, and the one HTTP handler: `/ws` upgrades to a WebSocket,
 * `/sse` is the fallback for networks that block WebSockets, `/api/v1/` is
 * the server API, `/auth/` the accounts (passkeys and their session
 * cookie), `/healthz` and `/metrics` report, and every other path
 * serves the page in `static/`.
 *
 * Run it with `deno task start` (`deno serve main.ts`), or `deno run -A
 * main.ts` (port `PORT`, default 8000); import {@linkcode createChat} to
 * embed it. The parts live in `src/`, a folder per role.
 *
 * @module
 */

import { createAuthenticator } from "./src/auth/jwt.ts";
import { openBackends } from "./src/backends.ts";
import { assembleChat, type ChatOptions } from "./src/chat.ts";
import { type Config, loadConfig } from "./src/config.ts";
import { healthResponse } from "./src/http/health.ts";
import { internalError, plain } from "./src/http/responses.ts";
import { FILES_PREFIX, UPLOAD_PATH } from "./src/http/uploads.ts";
import { guardServe } from "./src/http/serve_guard.ts";
import { serveStatic } from "./src/http/static_files.ts";
import { consoleLogger } from "./src/log.ts";
import { serveUnlessServed, Starter } from "./src/starter.ts";
import { upgradeProblem } from "./src/transport/websocket.ts";

export type { ChatOptions } from "./src/chat.ts";

const STATIC_ROOT = new URL("./static/", import.meta.url);
const STARTED_AT = Date.now();
/** Longer request URLs get 414. */
const MAX_URL_LENGTH = 8 * 1024;

/** A running chat: its HTTP handler and its lifecycle. */
export interface Chat {
  /** The HTTP handler, for `Deno.serve`. */
  fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** Refuses new connections and closes open ones with 1001; resolves once closed. */
  shutdown(): Promise<void>;
  /** Open connections. */
  readonly connections: number;
}

/**
 * The hub and its transports around `options.history`, behind the one
 * handler.
 *
 * @example Usage
 * ```ts ignore
 * import { createChat } from "./main.ts";
 * import { KvHistory } from "./src/store/kv_history.ts";
 * const chat = createChat({ history: new KvHistory(await Deno.openKv(":memory:")) });
 * Deno.serve(chat.fetch);
 * ```
 */
export function createChat(options: ChatOptions): Chat {
  const parts = assembleChat(options);
  const { admission, websockets, sse, api } = parts;

  async function fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    if (req.url.length > MAX_URL_LENGTH) return plain(414, "URI too long");
    const { pathname } = new URL(req.url);
    const ip = info && "hostname" in info.remoteAddr ? info.remoteAddr.hostname : "unknown";
    switch (pathname) {
      // Every route a page can reach goes through the browser policy first (admission.ts).
      case "/ws": {
        const problem = upgradeProblem(req);
        if (problem) return plain(400, problem);
        const admitted = admission.admit(req, ip, "websocket"); // Browser policy, connection caps
        if (admitted instanceof Response) return admitted;
        const signedIn = await parts.signedIn(req); // The account its cookie signs in to, if any
        if (signedIn instanceof Response) {
          admitted.release();
          return signedIn;
        }
        const { socket, response } = Deno.upgradeWebSocket(req, {
          idleTimeout: parts.idleTimeout,
        });
        websockets.attach(socket, ip, admitted.release, admitted.oversized, signedIn);
        return response;
      }
      case "/sse": { // The slot (and the browser policy) comes before the query's join.
        const signedIn = await parts.signedIn(req);
        if (signedIn instanceof Response) return signedIn;
        return sse.open(req, ip, () => admission.admit(req, ip, "event-stream"), signedIn);
      }
      case "/healthz":
        return parts.health();
      case "/metrics":
        return parts.metrics(req);
      default:
        if (parts.uploads && (pathname === UPLOAD_PATH || pathname.startsWith(FILES_PREFIX))) {
          const refused = admission.screen(req, ip, "post"); // Browser policy, for both routes
          if (refused) {
            await req.body?.cancel().catch(() => {});
            return refused;
          }
          if (pathname === UPLOAD_PATH) return await parts.uploads.upload(req);
          return await parts.uploads.serve(req);
        }
        if (pathname.startsWith("/api/")) return await api.handle(req);
        if (pathname.startsWith("/auth/")) return await parts.auth.handle(req, ip); // accounts
        if (pathname.startsWith("/sse/")) {
          const refused = admission.screen(req, ip, "post");
          if (refused) {
            await req.body?.cancel().catch(() => {});
            return refused;
          }
          return await sse.post(req, pathname.slice(5));
        }
        return await serveStatic(req, STATIC_ROOT);
    }
  }

  return {
    fetch,
    shutdown: () => parts.shutdown(),
    get connections() {
      return parts.connections;
    },
  };
}

/** Reads the configuration, opens the backends and creates the chat. */
async function start(config: Config): Promise<{ chat: Chat; close(): Promise<void> }> {
  const authenticate = await createAuthenticator(config.auth);
  if (authenticate) console.log("JWT authentication is on: every join must carry a token");
  const log = consoleLogger(config.logFormat);
  const backends = await openBackends(config, log);
  console.log(`History and fan-out: ${backends.description}`);
  const chat = createChat({ ...config, ...backends, authenticate, log });
  return {
    chat,
    async close() {
      await chat.shutdown();
      await backends.close();
    },
  };
}

const starter = new Starter(() => start(loadConfig(Deno.env.toObject())));

/**
 * The entry point for `deno serve main.ts` (what `deno task start` runs),
 * `deno run main.ts` (container hosts, and Deno Deploy) and `deno serve
 * --parallel`. A start that fails (the store unreachable for a moment) is
 * retried by the next request, and `/healthz` says why meanwhile.
 */
const entry = {
  async fetch(req, info) {
    const started = await starter.get();
    if (started.ok) return await started.value.chat.fetch(req, info).catch(internalError);
    if (new URL(req.url).pathname === "/healthz") {
      const states = [started.state];
      return healthResponse({ states, connections: 0, rooms: 0, startedAt: STARTED_AT });
    }
    return plain(503, `Cannot start: ${started.state.reason}`, { "retry-after": "1" });
  },
  onListen(addr) {
    if (addr.transport === "tcp") {
      const host = addr.hostname === "0.0.0.0" ? "localhost" : addr.hostname;
      console.log(`Listening on http://${host}:${addr.port}/`);
    }
    starter.onSignal(async (running) => {
      try {
        await running.close(); // 503 for new upgrades, 1001 for every socket, while still listening
      } finally {
        serving.close(); // then deno serve's own shutdown closes the listener
      }
    });
    // After onSignal: holds deno serve's own SIGTERM listener until the chat has drained, and
    // listens again when accept() fails (out of file descriptors) instead of exiting.
    const serving = guardServe(addr, (req, info) => this.fetch(req, info));
    void starter.get();
  },
} satisfies Deno.ServeDefaultExport;

// `deno serve` serves the default export itself; under `deno run` nothing would.
if (import.meta.main) serveUnlessServed(entry, () => loadConfig(Deno.env.toObject()).port);

export default entry;
