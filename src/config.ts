/**
 * The configuration: ONE table of defaults ({@linkcode DEFAULTS}), the
 * environment variables that override them ({@linkcode ENVIRONMENT}), and
 * {@linkcode loadConfig}, which reads them. `main.ts` is the only file that
 * reads `Deno.env`; it hands the result to `loadConfig`. The hub, the
 * transports and `createChat` take their defaults from the same table, and a
 * test keeps the README's configuration table equal to it.
 *
 * @module
 */

import type { AuthOptions } from "./auth/jwt.ts";
import type { S3Location } from "./store/s3_files.ts";

/** Every default, in one place. */
export const DEFAULTS = {
  /** Deno KV file for history; on Deno Deploy the platform's KV is used instead. */
  kvPath: "./chat.kv",
  /** Port under `deno run` (`deno serve` has its own `--port`). */
  port: 8000,
  /** Messages kept per room. */
  historyLimit: 1000,
  /** Frames a connection may send at once. */
  rateBurst: 20,
  /** Sustained frames per second per connection. */
  ratePerSecond: 5,
  /** Frames all connections from one address may send at once (kept after they close). */
  ratePerAddressBurst: 100,
  /** Sustained frames per second from one address, all its connections together. */
  ratePerAddressPerSecond: 25,
  /** Largest frame accepted, in bytes. */
  maxFrameBytes: 64 * 1024,
  /** Unsent bytes a connection may hold for `slowGraceMs` before it is closed with 1013. */
  maxBufferedBytes: 1024 * 1024,
  /** Seconds without a pong before a dead peer is dropped. */
  idleTimeoutSeconds: 30,
  /** Open connections in all. */
  maxConnections: 10_000,
  /** Open connections per remote address. */
  maxConnectionsPerIp: 50,
  /** Log line format. */
  logFormat: "text" as "text" | "json",
  /** Messages a `welcome` carries when the client does not resume. */
  welcomeHistory: 50,
  /** Most bytes of messages a resume replays in its `welcome`. */
  maxReplayBytes: 256 * 1024,
  /** Most events a resume replays in its `welcome`; further back it gets the newest instead. */
  maxReplayEvents: 1000,
  /** Joins and changes a room's queue may hold; more are refused as `unavailable`. */
  maxRoomTasks: 200,
  /** Rooms the store may hold. */
  maxRooms: 10_000,
  /** Rooms one connection may be in at once. */
  maxRoomsPerConnection: 50,
  /** Rooms one address may create per hour (their first message), counted in the store; 0: no limit. */
  newRoomsPerAddressPerHour: 30,
  /** Rate-limited frames tolerated after the warning, before closing with 1008. */
  rateLimitStrikes: 10,
  /** Shortest time between two forwarded `typing` notices of one connection, in ms. */
  typingIntervalMs: 1000,
  /** `say`s a room may hold waiting for the store; more are refused as `unavailable`. */
  maxWaitingSays: 2000,
  /** `say`s all rooms together may hold waiting for the store (or in its commit); more are refused. */
  maxWaitingSaysTotal: 10_000,
  /** How long a connection may stay over `maxBufferedBytes`, in ms. */
  slowGraceMs: 1000,
  /** How often rooms are checked against the store, in ms. */
  watchIntervalMs: 1000,
  /** How often an instance repeats its members to the others, in ms. */
  heartbeatMs: 10_000,
  /** How long other instances list those members without a heartbeat, in ms. */
  presenceTtlMs: 30_000,
  /** How long shutdown waits for connections to close, in ms. */
  shutdownGraceMs: 1500,
  /** Requests the server API's token may make at once. */
  apiRateBurst: 50,
  /** Sustained requests per second for the server API's token. */
  apiRatePerSecond: 10,
  /** How often an idle event stream (`/sse`) gets a comment line, in ms. */
  sseHeartbeatMs: 15_000,
  /** How long a request body (the API's, an SSE `POST`'s) may take to arrive in full, in ms. */
  bodyTimeoutMs: 10_000,
  /** Accounts the store may hold; one more registration gets `account_limit`. */
  maxAccounts: 10_000,
  /** How long a WebAuthn challenge (a ceremony's options) may be answered, in ms. */
  challengeTtlMs: 120_000,
  /** How long an account's session cookie works, in ms (30 days). */
  accountSessionTtlMs: 30 * 86_400_000,
  /** Ceremony requests (passkey options and verifies, renames) one address may make at once. */
  authRateBurst: 20,
  /** Sustained ceremony requests per second from one address. */
  authRatePerSecond: 0.5,
  /** Accounts one address may register per hour, counted in the store so instances share it. */
  registrationsPerAddressPerHour: 10,
  /** Largest uploaded file, in bytes. */
  maxUploadBytes: 10 * 1024 * 1024,
  /** Bytes one user may upload per day, counted in the store (0: no limit). */
  uploadUserBytesPerDay: 200 * 1024 * 1024,
  /** Bytes one room may receive in uploads per day, counted in the store (0: no limit). */
  uploadRoomBytesPerDay: 1024 * 1024 * 1024,
  /** The signing region of `S3_ENDPOINT`. */
  s3Region: "us-east-1",
} as const;

/** The shortest `API_TOKEN` accepted. */
export const MIN_API_TOKEN_LENGTH = 16;

/** One environment variable: its name, the setting it fills, and its README text. */
export interface EnvSetting {
  /** The variable, such as `HISTORY_LIMIT`. */
  name: string;
  /** The default as the README shows it. */
  shown: string;
  /** What it does, as the README says it. */
  meaning: string;
}

const shown = (value: number | string) => `\`${value}\``;

/** Every environment variable `loadConfig` reads, in README order. */
export const ENVIRONMENT: readonly EnvSetting[] = [
  {
    name: "PORT",
    shown: shown(DEFAULTS.port),
    meaning: "Port under `deno run main.ts` (container hosts set it); `deno serve` takes `--port`.",
  },
  {
    name: "KV_PATH",
    shown: shown(DEFAULTS.kvPath),
    meaning: "Deno KV file for history; `:memory:` keeps nothing. On Deno Deploy " +
      "(`DENO_DEPLOYMENT_ID` set) the default is the platform's KV.",
  },
  {
    name: "HISTORY_LIMIT",
    shown: shown(DEFAULTS.historyLimit),
    meaning: "Messages kept per room; older ones are pruned.",
  },
  {
    name: "MAX_ROOMS",
    shown: shown(DEFAULTS.maxRooms),
    meaning: "Rooms the store may hold; the first message of one more gets `room_limit`.",
  },
  {
    name: "MAX_ROOMS_PER_CONNECTION",
    shown: shown(DEFAULTS.maxRoomsPerConnection),
    meaning: "Rooms one connection may be in at once; one more join gets `too_many_rooms`.",
  },
  {
    name: "NEW_ROOMS_PER_ADDRESS_PER_HOUR",
    shown: shown(DEFAULTS.newRoomsPerAddressPerHour),
    meaning: "Rooms one address (per /64 for IPv6) may create in an hour, by their first " +
      "message, counted in the store so instances share it; more get `rate_limited`. `0` " +
      "turns it off.",
  },
  {
    name: "ALLOWED_ORIGINS",
    shown: "(none)",
    meaning: "Comma-separated origins allowed besides the server's own.",
  },
  {
    name: "PUBLIC_ORIGIN",
    shown: "(none)",
    meaning: "The server's public origin, such as `https://chat.example.com` (comma-separated " +
      "for several): pages there may connect, also behind a proxy that terminates TLS. " +
      "Without it only IP addresses and `localhost` count as the server's own host. On Deno " +
      "Deploy the app's `deno.net` URLs are added (from `DENO_DEPLOY_APP_SLUG`, " +
      "`DENO_DEPLOY_ORG_SLUG` and `DENO_DEPLOY_BUILD_ID`).",
  },
  {
    name: "RATE_BURST",
    shown: shown(DEFAULTS.rateBurst),
    meaning: "Frames a connection may send at once.",
  },
  {
    name: "RATE_PER_SECOND",
    shown: shown(DEFAULTS.ratePerSecond),
    meaning: "Sustained frames per second per connection.",
  },
  {
    name: "RATE_PER_ADDRESS_BURST",
    shown: shown(DEFAULTS.ratePerAddressBurst),
    meaning: "Frames all connections from one address (per /64 for IPv6) may send at once, " +
      "WebSockets and event streams together. Kept after they close: reconnecting does not " +
      "refill it.",
  },
  {
    name: "RATE_PER_ADDRESS_PER_SECOND",
    shown: shown(DEFAULTS.ratePerAddressPerSecond),
    meaning: "Sustained frames per second from one address, all its connections together.",
  },
  {
    name: "MAX_FRAME_BYTES",
    shown: shown(DEFAULTS.maxFrameBytes),
    meaning: "Larger frames close the socket with 1009; after 3 from one address within 60 s, " +
      "that address gets HTTP 429 for 60 s.",
  },
  {
    name: "MAX_BUFFERED_BYTES",
    shown: shown(DEFAULTS.maxBufferedBytes),
    meaning:
      "Unsent bytes a socket may hold for 1 s (or 4× at once) before it is closed with 1013.",
  },
  {
    name: "IDLE_TIMEOUT",
    shown: shown(DEFAULTS.idleTimeoutSeconds),
    meaning: "Seconds without a pong before a dead peer is dropped.",
  },
  {
    name: "SESSION_SECRET",
    shown: "random, kept in KV (or Redis)",
    meaning: "Signs session tokens. Without it a random secret is made once and stored, " +
      "so every instance shares it.",
  },
  {
    name: "MAX_CONNECTIONS",
    shown: shown(DEFAULTS.maxConnections),
    meaning: "Open sockets in all; more get HTTP 503 before the upgrade. Lowered at start to " +
      "fit under the open-file limit (logged).",
  },
  {
    name: "MAX_CONNECTIONS_PER_IP",
    shown: shown(DEFAULTS.maxConnectionsPerIp),
    meaning: "Open sockets per remote address (per /64 for IPv6); more get HTTP 429.",
  },
  {
    name: "AUTH_JWT_SECRET",
    shown: "(none)",
    meaning: "Turns JWT auth on: HS256 tokens signed with this secret.",
  },
  {
    name: "AUTH_PUBLIC_KEY",
    shown: "(none)",
    meaning: "Or: a PEM (SPKI) public key; `AUTH_JWT_ALG` names its algorithm (default `RS256`).",
  },
  {
    name: "AUTH_JWKS_URL",
    shown: "(none)",
    meaning: "Or: a JWKS URL (RS256, ES256, EdDSA).",
  },
  {
    name: "METRICS",
    shown: "(off)",
    meaning: "`1` serves Prometheus metrics at `/metrics`.",
  },
  {
    name: "METRICS_TOKEN",
    shown: "(none)",
    meaning: "Serves `/metrics` to requests with `Authorization: Bearer <token>` only.",
  },
  {
    name: "LOG_FORMAT",
    shown: shown(DEFAULTS.logFormat),
    meaning: "`json` prints one JSON object per log line.",
  },
  {
    name: "REDIS_URL",
    shown: "(none)",
    meaning: "Redis for history and fan-out between processes and machines.",
  },
  {
    name: "API_TOKEN",
    shown: "(none)",
    meaning: "Turns the server API on (`/api/v1/`): requests carry " +
      "`Authorization: Bearer <API_TOKEN>`. At least 16 characters.",
  },
  {
    name: "MAX_ACCOUNTS",
    shown: shown(DEFAULTS.maxAccounts),
    meaning: "Accounts the store may hold (see [Accounts](#accounts)); one more registration " +
      "gets `account_limit`. `0` allows none.",
  },
  {
    name: "MAX_UPLOAD_BYTES",
    shown: shown(DEFAULTS.maxUploadBytes),
    meaning: "Largest uploaded file (10 MiB): 413 before the body when `Content-Length` says " +
      "so, else at the first byte over.",
  },
  {
    name: "UPLOAD_USER_BYTES_PER_DAY",
    shown: shown(DEFAULTS.uploadUserBytesPerDay),
    meaning: "Bytes one user may upload per day (200 MiB), counted in the store so instances " +
      "share it; more get 429 `quota_exceeded`. `0` turns it off.",
  },
  {
    name: "UPLOAD_ROOM_BYTES_PER_DAY",
    shown: shown(DEFAULTS.uploadRoomBytesPerDay),
    meaning: "Bytes uploaded for one room per day (1 GiB), counted the same way. `0` turns it " +
      "off.",
  },
  {
    name: "S3_ENDPOINT",
    shown: "(none)",
    meaning: "Keeps uploaded files in S3-compatible object storage at this URL (path-style, " +
      "such as `https://s3.us-east-1.amazonaws.com` or `http://127.0.0.1:9000`) instead of " +
      "Deno KV or Redis; needs the three below.",
  },
  {
    name: "S3_BUCKET",
    shown: "(none)",
    meaning: "The bucket for uploaded files.",
  },
  {
    name: "S3_ACCESS_KEY_ID",
    shown: "(none)",
    meaning: "The access key that signs requests to `S3_ENDPOINT` (SigV4).",
  },
  {
    name: "S3_SECRET_ACCESS_KEY",
    shown: "(none)",
    meaning: "Its secret.",
  },
  {
    name: "S3_REGION",
    shown: shown(DEFAULTS.s3Region),
    meaning: "The region requests are signed for (R2 takes `auto`).",
  },
];

/** Settings read once from the environment by {@linkcode loadConfig}. */
export interface Config {
  /** Deno KV path; `undefined` is the platform's KV (Deno Deploy). */
  kvPath?: string;
  port: number;
  historyLimit: number;
  maxRooms: number;
  maxRoomsPerConnection: number;
  newRoomsPerAddressPerHour: number;
  allowedOrigins: string[];
  rateBurst: number;
  ratePerSecond: number;
  ratePerAddressBurst: number;
  ratePerAddressPerSecond: number;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  idleTimeoutSeconds: number;
  /** Secret for session tokens; `undefined` means a random one, stored in KV or Redis. */
  sessionSecret?: string;
  maxConnections: number;
  maxConnectionsPerIp: number;
  logFormat: "text" | "json";
  /** Redis for history and fan-out between processes; unset means Deno KV. */
  redisUrl?: string;
  metrics: { enabled: boolean; token?: string };
  /** JWT verification keys; none set means authentication is off. */
  auth: AuthOptions;
  /** The server API's bearer token; unset means the API is off. */
  apiToken?: string;
  /** The server's own public origins (`PUBLIC_ORIGIN`, and Deno Deploy's URLs); unset: none. */
  publicOrigins?: string[];
  /** Accounts the store may hold. */
  maxAccounts: number;
  maxUploadBytes: number;
  uploadUserBytesPerDay: number;
  uploadRoomBytesPerDay: number;
  /** S3-compatible storage for uploaded files; unset keeps them in Deno KV or Redis. */
  s3?: S3Location;
}

/**
 * Reads the configuration from environment variables, with
 * {@linkcode DEFAULTS}. Throws a `TypeError` naming the variable for a value
 * it cannot read.
 *
 * @example Usage
 * ```ts
 * import { loadConfig } from "./config.ts";
 * loadConfig({ HISTORY_LIMIT: "50" }).historyLimit; // 50
 * loadConfig({}).rateBurst; // 20
 * ```
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const int = (name: string, fallback: number) => integer(name, env[name], fallback);
  return {
    kvPath: env.KV_PATH || (env.DENO_DEPLOYMENT_ID ? undefined : DEFAULTS.kvPath),
    port: int("PORT", DEFAULTS.port),
    historyLimit: int("HISTORY_LIMIT", DEFAULTS.historyLimit),
    maxRooms: int("MAX_ROOMS", DEFAULTS.maxRooms),
    maxRoomsPerConnection: int("MAX_ROOMS_PER_CONNECTION", DEFAULTS.maxRoomsPerConnection),
    newRoomsPerAddressPerHour: int(
      "NEW_ROOMS_PER_ADDRESS_PER_HOUR",
      DEFAULTS.newRoomsPerAddressPerHour,
    ),
    allowedOrigins: (env.ALLOWED_ORIGINS ?? "").split(",").map((o) => o.trim()).filter(Boolean),
    rateBurst: int("RATE_BURST", DEFAULTS.rateBurst),
    ratePerSecond: int("RATE_PER_SECOND", DEFAULTS.ratePerSecond),
    ratePerAddressBurst: int("RATE_PER_ADDRESS_BURST", DEFAULTS.ratePerAddressBurst),
    ratePerAddressPerSecond: int("RATE_PER_ADDRESS_PER_SECOND", DEFAULTS.ratePerAddressPerSecond),
    maxFrameBytes: int("MAX_FRAME_BYTES", DEFAULTS.maxFrameBytes),
    maxBufferedBytes: int("MAX_BUFFERED_BYTES", DEFAULTS.maxBufferedBytes),
    idleTimeoutSeconds: int("IDLE_TIMEOUT", DEFAULTS.idleTimeoutSeconds),
    sessionSecret: env.SESSION_SECRET || undefined,
    maxConnections: int("MAX_CONNECTIONS", DEFAULTS.maxConnections),
    maxConnectionsPerIp: int("MAX_CONNECTIONS_PER_IP", DEFAULTS.maxConnectionsPerIp),
    logFormat: env.LOG_FORMAT === "json" ? "json" : DEFAULTS.logFormat,
    redisUrl: env.REDIS_URL || undefined,
    metrics: {
      enabled: env.METRICS === "1" || !!env.METRICS_TOKEN,
      token: env.METRICS_TOKEN || undefined,
    },
    auth: {
      jwtSecret: env.AUTH_JWT_SECRET || undefined,
      publicKey: env.AUTH_PUBLIC_KEY || undefined,
      algorithm: env.AUTH_JWT_ALG || undefined,
      jwksUrl: env.AUTH_JWKS_URL || undefined,
    },
    maxAccounts: int("MAX_ACCOUNTS", DEFAULTS.maxAccounts),
    ...(env.API_TOKEN ? { apiToken: apiToken(env.API_TOKEN) } : {}),
    ...publicOrigins(env),
    maxUploadBytes: int("MAX_UPLOAD_BYTES", DEFAULTS.maxUploadBytes),
    uploadUserBytesPerDay: int("UPLOAD_USER_BYTES_PER_DAY", DEFAULTS.uploadUserBytesPerDay),
    uploadRoomBytesPerDay: int("UPLOAD_ROOM_BYTES_PER_DAY", DEFAULTS.uploadRoomBytesPerDay),
    ...s3Location(env),
  };
}

/** `S3_*`: all four, or none (then files stay in the history's store). */
function s3Location(env: Record<string, string | undefined>): { s3?: S3Location } {
  const names = ["S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"] as const;
  const region = env.S3_REGION || DEFAULTS.s3Region;
  const set = names.filter((name) => env[name]);
  if (set.length === 0) return {};
  const missing = names.filter((name) => !env[name]);
  if (missing.length) {
    throw new TypeError(
      `Cannot read ${missing[0]}: it must be set with ${set.join(", ")} (or none of them)`,
    );
  }
  const endpoint = URL.parse(env.S3_ENDPOINT!);
  if (!endpoint || !/^https?:$/.test(endpoint.protocol)) {
    throw new TypeError(`Cannot read S3_ENDPOINT: '${env.S3_ENDPOINT}' is not an http(s) URL`);
  }
  return {
    s3: {
      endpoint: env.S3_ENDPOINT!,
      bucket: env.S3_BUCKET!,
      accessKeyId: env.S3_ACCESS_KEY_ID!,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY!,
      region,
    },
  };
}

/** `PUBLIC_ORIGIN`'s origins, and on Deno Deploy the app's own URLs. */
function publicOrigins(env: Record<string, string | undefined>): { publicOrigins?: string[] } {
  const origins = (env.PUBLIC_ORIGIN ?? "").split(",").map((o) => o.trim()).filter(Boolean)
    .map((value) => {
      const url = URL.parse(value);
      if (!url || !/^https?:$/.test(url.protocol) || url.href !== `${url.origin}/`) {
        throw new TypeError(
          `Cannot read PUBLIC_ORIGIN: '${value}' is not an origin such as https://chat.example.com`,
        );
      }
      return url.origin;
    });
  const { DENO_DEPLOY_APP_SLUG: app, DENO_DEPLOY_ORG_SLUG: org } = env;
  if (app && org) {
    origins.push(`https://${app}.${org}.deno.net`.toLowerCase());
    const build = env.DENO_DEPLOY_BUILD_ID;
    if (build) origins.push(`https://${app}-${build}.${org}.deno.net`.toLowerCase());
  }
  return origins.length ? { publicOrigins: origins } : {};
}

function apiToken(value: string): string {
  if (value.length < MIN_API_TOKEN_LENGTH || /\s/.test(value)) {
    throw new TypeError(
      `Cannot read API_TOKEN: it must be at least ${MIN_API_TOKEN_LENGTH} characters ` +
        "without spaces",
    );
  }
  return value;
}

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(parsed)) {
    throw new TypeError(`Cannot read ${name}: '${value}' is not a non-negative integer`);
  }
  return parsed;
}
