/**
 * The chat's parts, put together: the hub and its link to other instances,
 * the two transports (WebSocket and the Server-Sent Events fallback),
 * admission, the server API, the account routes, and the counters. `main.ts` routes requests to
 * them; this file only builds them, each from its own options.
 *
 * @module
 */

import { createIdentify } from "./auth/identity.ts";
import type { Authenticate } from "./auth/jwt.ts";
import { TokenCheck } from "./auth/token_check.ts";
import type { Bus } from "./bus/bus.ts";
import { LocalBus } from "./bus/local_bus.ts";
import { DEFAULTS } from "./config.ts";
import { Admission, type AdmissionOptions } from "./http/admission.ts";
import { Api, type ApiOptions } from "./http/api.ts";
import { AuthApi, type AuthApiOptions } from "./http/auth_api.ts";
import { API_UPLOADER, sessionUploadAuth } from "./http/upload_auth.ts";
import {
  type UploadAuthenticate,
  type UploadIdentity,
  Uploads,
  type UploadsOptions,
  uploadTimeoutMs,
} from "./http/uploads.ts";
import { Attachments, ORPHAN_AGE_MS } from "./attachments.ts";
import type { FileStore } from "./store/files.ts";
import { MessageSearch } from "./store/search.ts";
import { dmUsers } from "./protocol.ts";
import type { Usage } from "./store/usage.ts";
import { metricsResponse } from "./http/chat_metrics.ts";
import { healthResponse } from "./http/health.ts";
import { plain } from "./http/responses.ts";
import { Cluster, type ClusterOptions } from "./hub/cluster.ts";
import { Hub, type HubOptions } from "./hub/hub.ts";
import type { SignedInAs } from "./hub/peer.ts";
import { consoleLogger, type Logger } from "./log.ts";
import type { ServiceState } from "./state.ts";
import { Stats } from "./stats.ts";
import type { HistoryStore } from "./store/history.ts";
import { AddressBudgets } from "./transport/address_budget.ts";
import { SseTransport, type SseTransportOptions } from "./transport/sse.ts";
import { WebSocketTransport, type WebSocketTransportOptions } from "./transport/websocket.ts";

/** Options for `createChat`: each part's own options, documented where they live. */
export type ChatOptions =
  & Omit<HubOptions, "identify" | "cluster" | "stats" | "log">
  & Omit<ClusterOptions, "bus" | "history" | "log">
  & Omit<WebSocketTransportOptions, "hub" | "log" | "addressBudgets">
  & Omit<AdmissionOptions, "stats" | "log">
  & Omit<ApiOptions, "hub" | "history" | "log">
  & Omit<SseTransportOptions, "hub" | "log" | "addressBudgets">
  & Omit<AuthApiOptions, "admission" | "log">
  & Omit<UploadsOptions, "files" | "usage" | "authenticate" | "log" | "bodyTimeoutMs">
  & {
    /** Uploaded files; unset turns uploads off (the two routes answer 404). @default {undefined} */
    files?: FileStore;
    /** Bytes uploaded per user and room per day, shared by instances. @default {null} */
    usage?: Usage | null;
    /**
     * Who an upload or a file request comes from.
     * @default {the API token as user `api`, or a session token in `X-Chat-Session`}
     */
    authenticateUpload?: UploadAuthenticate;
    /**
     * How long an uploaded file may wait to be posted before the sweep deletes it, in ms.
     * @default {ORPHAN_AGE_MS (10 minutes), or longer when the largest upload's budget is}
     */
    orphanAgeMs?: number;
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

/** The parts `main.ts` routes requests to. */
export interface ChatParts {
  hub: Hub;
  websockets: WebSocketTransport;
  sse: SseTransport;
  admission: Admission;
  api: Api;
  /** The account routes (`/auth/`). */
  auth: AuthApi;
  /**
   * The account a request's `chat_session` cookie signs in to, for the
   * transports; `undefined` for a guest (no cookie, or one that no longer
   * works), and a 503 when the account store cannot say.
   */
  signedIn(req: Request): Promise<SignedInAs | undefined | Response>;
  /** The upload and file routes, when there is a file store. */
  uploads: Uploads | null;
  /** Files and their messages: what the hub calls on say, edit, delete and prune. */
  attachments: Attachments | null;
  /** Seconds without a pong before a WebSocket peer is dropped. */
  idleTimeout: number;
  /** Open connections, on both transports. */
  readonly connections: number;
  /** Answers `/healthz`. */
  health(): Response;
  /** Answers `/metrics`. */
  metrics(req: Request): Promise<Response>;
  /** Refuses new connections, closes open ones with 1001, and waits for the rooms' work. */
  shutdown(): Promise<void>;
}

/**
 * Builds every part around `options.history`.
 *
 * @example Usage
 * ```ts ignore
 * import { assembleChat } from "./chat.ts";
 * const parts = assembleChat({ history });
 * parts.hub.rooms; // []
 * ```
 */
export function assembleChat(options: ChatOptions): ChatParts {
  const { history, log = consoleLogger(), bus = new LocalBus() } = options;
  const stats = new Stats();
  const sessionSecret = options.sessionSecret ?? crypto.randomUUID() + crypto.randomUUID();
  const identify = createIdentify({
    sessionSecret,
    authenticate: options.authenticate ?? null,
  });
  const cluster = new Cluster({ ...options, bus, history, log });
  const authenticated = !!options.authenticate;
  const admission = new Admission({ ...options, stats, log });
  const auth = new AuthApi({
    ...options,
    admission,
    log,
    // A session that ends closes its connections everywhere; a new name reaches them too.
    onSignOut(sessionId, accountId) {
      hub.signOut(sessionId);
      options.onSignOut?.(sessionId, accountId);
    },
    onRename(accountId, name) {
      hub.accountRenamed(accountId, name);
      options.onRename?.(accountId, name);
    },
  });
  const { uploads, attachments } = fileParts(options, sessionSecret, log, auth);
  const search = new MessageSearch(history);
  const hub = new Hub({
    ...options,
    identify,
    cluster,
    log,
    stats,
    authenticated,
    attachments,
    search,
  });
  // One budget per address for both transports: its sockets and streams share it.
  const addressBudgets = new AddressBudgets(options);
  const websockets = new WebSocketTransport({ ...options, hub, log, addressBudgets });
  const sse = new SseTransport({ ...options, hub, log, addressBudgets });
  const api = new Api({ ...options, hub, history, search, log });
  const startedAt = Date.now();
  const { enabled = false, token } = options.metrics ?? {};
  const metricsCheck = token ? new TokenCheck(token) : undefined;
  const connections = () => websockets.connections + sse.connections;
  return {
    hub,
    websockets,
    sse,
    admission,
    api,
    auth,
    async signedIn(req) {
      try {
        const found = await auth.sessionFromRequest(req);
        if (!found) return undefined;
        return {
          sessionId: found.sessionId,
          accountId: found.account.id,
          name: found.account.name,
        };
      } catch (error) {
        log({ event: "error", error: `accounts: session: ${error}` });
        return plain(503, "Cannot connect: accounts are unavailable, retry soon", {
          "retry-after": "1",
        });
      }
    },
    uploads,
    attachments,
    idleTimeout: options.idleTimeoutSeconds ?? DEFAULTS.idleTimeoutSeconds,
    get connections() {
      return connections();
    },
    health: () =>
      healthResponse({
        states: [bus.state, options.storeState?.() ?? { ok: true }],
        connections: connections(),
        rooms: hub.rooms.length,
        startedAt,
      }),
    metrics: (req) =>
      metricsResponse(req, { enabled, check: metricsCheck }, () => ({
        stats,
        connections: connections(),
        rooms: hub.rooms,
        historyLimit: history.limit,
        busUp: bus.state.ok,
        sent: websockets.stats,
      })),
    async shutdown() {
      admission.close();
      await hub.close();
      await Promise.all([websockets.shutdown(), sse.shutdown()]);
      await hub.settled();
      await attachments?.close();
    },
  };
}

/**
 * The upload routes and the attachments service, when there is a file
 * store; the sweep starts at once. Until accounts are wired in, uploads are
 * authenticated by the API token or a guest's session token.
 */
function fileParts(
  options: ChatOptions,
  sessionSecret: string,
  log: Logger,
  auth: AuthApi,
): { uploads: Uploads | null; attachments: Attachments | null } {
  const { files } = options;
  if (!files) return { uploads: null, attachments: null };
  const uploads = new Uploads({
    canRead: mayReadRoom,
    ...options,
    files,
    usage: options.usage ?? null,
    authenticate: options.authenticateUpload ??
      sessionUploadAuth({
        sessionSecret,
        apiToken: options.apiToken,
        authenticate: options.authenticate ?? null,
        account: async (req) => (await auth.sessionFromRequest(req))?.account.id ?? null,
      }),
    bodyTimeoutMs: options.bodyTimeoutMs,
    log,
  });
  // A file may not be swept while its upload can still be running.
  const longest = uploadTimeoutMs(uploads.maxUploadBytes, options.bodyTimeoutMs) + 60_000;
  const orphanAgeMs = Math.max(options.orphanAgeMs ?? ORPHAN_AGE_MS, longest);
  const attachments = new Attachments({ files, orphanAgeMs, log });
  attachments.start();
  return { uploads, attachments };
}

/**
 * Who may read a room's files (and upload to it): a conversation's two
 * people, a JWT's subject within its `rooms` claim, the API token, and
 * anyone else in an open room, as anyone may join one.
 */
function mayReadRoom(userId: string, room: string, identity: UploadIdentity): boolean {
  if (userId === API_UPLOADER) return true;
  const pair = dmUsers(room);
  if (pair) return pair.includes(userId);
  return identity.rooms === undefined || identity.rooms.includes(room);
}
