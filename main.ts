/**
 * Deno Chat, the front door. Read it top to bottom: the configuration, the
 * backends (where history lives and how instances talk), the hub (rooms of
 * peers), and the one HTTP handler: `/ws` upgrades to a WebSocket,
 * `/healthz` and `/metrics` report, and every other path serves `static/`.
 *
 * Run it with `deno task start` (`deno serve main.ts`), or `deno run -A
 * main.ts` (port `PORT`, default 8000); import {@linkcode createChat} to
 * embed it. The parts live in `src/`, a folder per role.
 *
 * @module
 */

import { createIdentify } from "./src/auth/identity.ts";
import type { Authenticate } from "./src/auth/jwt.ts";
import { createAuthenticator } from "./src/auth/jwt.ts";
import { openBackends } from "./src/backends.ts";
import type { Bus } from "./src/bus/bus.ts";
import { LocalBus } from "./src/bus/local_bus.ts";
import { type Config, DEFAULTS, loadConfig } from "./src/config.ts";
import { Admission, type AdmissionOptions } from "./src/http/admission.ts";
import { Api, type ApiOptions } from "./src/http/api.ts";
import { metricsResponse } from "./src/http/chat_metrics.ts";
import { healthResponse } from "./src/http/health.ts";
import { plain } from "./src/http/responses.ts";
import { serveStatic } from "./src/http/static_files.ts";
import { guardServe } from "./src/http/serve_guard.ts";
import { Cluster, type ClusterOptions } from "./src/hub/cluster.ts";
import { Hub, type HubOptions } from "./src/hub/hub.ts";
import { consoleLogger, type Logger } from "./src/log.ts";
import type { ServiceState } from "./src/state.ts";
import { Stats } from "./src/stats.ts";
import type { HistoryStore } from "./src/store/history.ts";
import { WebSocketTransport, type WebSocketTransportOptions } from "./src/transport/websocket.ts";
import { SseTransport, type SseTransportOptions } from "./src/transport/sse.ts";
import { serveUnlessServed, Starter } from "./src/starter.ts";

const STATIC_ROOT = new URL("./static/", import.meta.url);
/** Longer request URLs get 414. */
const MAX_URL_LENGTH = 8 * 1024;

/** Options for {@linkcode createChat}: each part's own options, documented where they live. */
export type ChatOptions =
  & Omit<HubOptions, "identify" | "cluster" | "stats" | "log">
  & Omit<ClusterOptions, "bus" | "history" | "log">
  & Omit<WebSocketTransportOptions, "hub" | "log">
  & Omit<AdmissionOptions, "stats" | "log">
  & Omit<ApiOptions, "hub" | "history" | "log">
  & Omit<SseTransportOptions, "hub" | "log">
  & {
    /** Where room history lives. */
    history: HistoryStore;
    /** Fan-out to other instances. @default {new LocalBus()} */
    bus?: Bus;
    /** Whether the store is reachable, for `/healthz`. @default {() => ({ ok: true })} */
    storeState?: () => ServiceState;
    /** Signs session tokens. @default {a random secret} */
    sessionSecret?: string;
    /** Verifies JWTs; when set, every join must carry one. @default {null} */
    authenticate?: Authenticate | null;
    /** Seconds without a pong before a peer is dropped. @default {DEFAULTS.idleTimeoutSeconds} */
    idleTimeoutSeconds?: number;
    /** Serve `/metrics`, optionally behind a bearer token. @default {{ enabled: false }} */
    metrics?: { enabled: boolean; token?: string };
    /** Where connection events go, one line each. @default {consoleLogger()} */
    log?: Logger;
  };

/** A running chat: its HTTP handler and its lifecycle. */
export interface Chat {
  /** The HTTP handler, for `Deno.serve`. */
  fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** Refuses new connections and closes open ones with 1001; resolves once closed. */
  shutdown(): Promise<void>;
  /** Open connections. */
  readonly connections: number;
}

/** Builds the hub and its transports around `options.history`, and the one handler. */
export function createChat(options: ChatOptions): Chat {
  const { history, log = consoleLogger(), bus = new LocalBus(), metrics = { enabled: false } } =
    options;
  const stats = new Stats();
  const identify = createIdentify({
    sessionSecret: options.sessionSecret ?? crypto.randomUUID() + crypto.randomUUID(),
    authenticate: options.authenticate ?? null,
  });
  const cluster = new Cluster({ ...options, bus, history, log });
  const hub = new Hub({ ...options, identify, cluster, log, stats });
  const websockets = new WebSocketTransport({ ...options, hub, log });
  const admission = new Admission({ ...options, stats, log });
  const api = new Api({ ...options, hub, history, log });
  const sse = new SseTransport({ ...options, hub, log });
  const idleTimeout = options.idleTimeoutSeconds ?? DEFAULTS.idleTimeoutSeconds;
  const startedAt = Date.now();

  async function fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    if (req.url.length > MAX_URL_LENGTH) return plain(414, "URI too long");
    const { pathname } = new URL(req.url);
    switch (pathname) {
      case "/ws": {
        const invalid = invalidUpgrade(req);
        if (invalid) return plain(400, invalid);
        const ip = info && "hostname" in info.remoteAddr ? info.remoteAddr.hostname : "unknown";
        const admitted = admission.admit(req, ip);
        if (admitted instanceof Response) return admitted;
        const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout });
        websockets.attach(socket, ip, admitted.release, admitted.oversized);
        return response;
      }
      case "/sse": {
        const ip = info && "hostname" in info.remoteAddr ? info.remoteAddr.hostname : "unknown";
        return sse.open(req, ip, () => admission.admit(req, ip));
      }
      case "/healthz":
        return healthResponse({
          states: [bus.state, options.storeState?.() ?? { ok: true }],
          connections: websockets.connections + sse.connections,
          rooms: hub.rooms.length,
          startedAt,
        });
      case "/metrics":
        return metricsResponse(req, metrics, () => ({
          stats,
          connections: websockets.connections + sse.connections,
          rooms: hub.rooms,
          historyLimit: history.limit,
          busUp: bus.state.ok,
          sent: websockets.stats,
        }));
      default:
        if (pathname.startsWith("/api/")) return await api.handle(req);
        if (pathname.startsWith("/sse/")) return await sse.post(req, pathname.slice(5));
        return await serveStatic(req, STATIC_ROOT);
    }
  }

  return {
    fetch,
    async shutdown() {
      admission.close();
      await hub.close();
      await Promise.all([websockets.shutdown(), sse.shutdown()]);
      await hub.settled();
    },
    get connections() {
      return websockets.connections + sse.connections;
    },
  };
}

/** Why `req` is not a WebSocket upgrade Deno can accept, or `null`. */
function invalidUpgrade(req: Request): string | null {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return "Expected a WebSocket upgrade request";
  }
  if (!req.headers.get("sec-websocket-key")) return "Missing Sec-WebSocket-Key";
  if (req.headers.get("sec-websocket-version") !== "13") return "Unsupported Sec-WebSocket-Version";
  return null;
}

/** Reads the configuration, opens the backends and creates the chat. */
async function start(config: Config): Promise<{ chat: Chat; close(): Promise<void> }> {
  const authenticate = await createAuthenticator(config.auth);
  if (authenticate) console.log("JWT authentication is on: every join must carry a token");
  const backends = await openBackends(config);
  console.log(`History and fan-out: ${backends.description}`);
  const log = consoleLogger(config.logFormat);
  const chat = createChat({ ...config, ...backends, authenticate, log });
  return {
    chat,
    async close() {
      await chat.shutdown();
      await backends.close();
    },
  };
}

/** A server fault: one log line without the request, and a 500 without details. */
function internalError(error: unknown): Response {
  console.error(`error: ${error instanceof Error ? error.message : error}`);
  return plain(500, "Internal server error");
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
      return healthResponse({ states: [started.state], connections: 0, rooms: 0, startedAt: 0 });
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
