/**
 * `/metrics` for the chat: off unless enabled, optionally behind a bearer
 * token, and the chat's gauges and counters in Prometheus text.
 *
 * @module
 */

import type { TokenCheck } from "../auth/token_check.ts";
import type { Stats } from "../stats.ts";
import { type MetricFamily, METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { plain } from "./responses.ts";

/** The numbers `/metrics` shows, collected by the caller. */
export interface ChatNumbers {
  stats: Stats;
  connections: number;
  rooms: { members: number; lastId: number }[];
  /** Messages kept per room. */
  historyLimit: number;
  busUp: boolean;
  /** Frames written, events carried and frames that carried several events. */
  sent: { frames: number; events: number; batched: number };
}

/**
 * Answers `/metrics`: 404 unless `enabled`, 401 without the right bearer
 * token, else the metrics.
 *
 * @example Usage
 * ```ts ignore
 * const response = await metricsResponse(req, { enabled: true }, () => numbers);
 * ```
 */
export async function metricsResponse(
  req: Request,
  settings: { enabled: boolean; check?: TokenCheck },
  collect: () => ChatNumbers,
): Promise<Response> {
  if (!settings.enabled) return plain(404, "Not found");
  const presented = req.headers.get("authorization")?.match(/^Bearer (.+)$/)?.[1] ?? "";
  if (settings.check && !await settings.check.matches(presented)) {
    return plain(401, "Metrics need a bearer token", { "www-authenticate": "Bearer" });
  }
  return new Response(renderMetrics(families(collect())), {
    headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
  });
}

function families(numbers: ChatNumbers): MetricFamily[] {
  const { stats, sent } = numbers;
  const members = numbers.rooms.reduce((sum, room) => sum + room.members, 0);
  const retained = numbers.rooms.reduce(
    (sum, room) => sum + Math.min(Math.max(room.lastId, 0), numbers.historyLimit),
    0,
  );
  const byKey = <K>(map: Map<K, number>, label: string) =>
    [...map].map(([key, value]) => ({ labels: { [label]: String(key) }, value }));
  return [
    gauge("chat_connections", "Open WebSocket connections", numbers.connections),
    gauge("chat_rooms", "Rooms with members or pending work", numbers.rooms.length),
    gauge("chat_members", "Members in all rooms", members),
    gauge("chat_history_messages", "Retained messages in the active rooms", retained),
    gauge("chat_bus_up", "1 while the bus between instances works, else 0", numbers.busUp ? 1 : 0),
    ...memoryGauges(),
    counter("chat_frames_received_total", "Frames received from clients", stats.framesIn),
    counter("chat_messages_stored_total", "Chat messages stored and broadcast", stats.stored),
    counter("chat_events_sent_total", "Events sent to clients", sent.events),
    counter("chat_frames_sent_total", "Frames sent to clients", sent.frames),
    counter("chat_batched_frames_total", "Frames that carried several events", sent.batched),
    {
      name: "chat_errors_total",
      help: "Error events sent, by code (validation, rate limit, auth, ...)",
      type: "counter",
      samples: byKey(stats.errors, "code"),
    },
    {
      name: "chat_closes_total",
      help: "Sockets closed by the server for a violation, by close code (1013 is too slow)",
      type: "counter",
      samples: byKey(stats.closes, "code"),
    },
    {
      name: "chat_refused_total",
      help: "Connections and page requests refused by admission, by HTTP status",
      type: "counter",
      samples: byKey(stats.refusals, "status"),
    },
  ];
}

/** The process's memory: resident, and the JavaScript heap (what the chat's objects hold). */
function memoryGauges(): MetricFamily[] {
  const memory = Deno.memoryUsage();
  return [
    gauge("process_resident_memory_bytes", "Resident memory of the process", memory.rss),
    gauge("deno_heap_used_bytes", "JavaScript heap in use (V8), garbage included", memory.heapUsed),
    gauge("deno_heap_total_bytes", "JavaScript heap reserved (V8)", memory.heapTotal),
  ];
}

function gauge(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "gauge", samples: [{ value }] };
}

function counter(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "counter", samples: [{ value }] };
}
