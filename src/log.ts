/**
 * One-line logs of connection events, as `key=value` text or as JSON. Never
 * pass message bodies or tokens in a log event.
 *
 * @module
 */

/** A log event: what happened, and its fields. */
export type LogEvent = { event: string } & Record<string, string | number | boolean>;

/** Where log events go. */
export type Logger = (entry: LogEvent) => void;

const PLAIN = /^[A-Za-z0-9_.:\/-]+$/;

/**
 * Formats an event as `event key=value …`; strings with spaces or quotes are
 * JSON-quoted.
 *
 * @example Usage
 * ```ts
 * import { formatText } from "./log.ts";
 * formatText({ event: "close", id: "ab12", code: 1000 }); // "close id=ab12 code=1000"
 * ```
 */
export function formatText({ event, ...fields }: LogEvent): string {
  const pairs = Object.entries(fields).map(([key, value]) =>
    `${key}=${typeof value === "string" && !PLAIN.test(value) ? JSON.stringify(value) : value}`
  );
  return [event, ...pairs].join(" ");
}

/** Formats an event as one line of JSON with a `time` field. */
export function formatJson(entry: LogEvent): string {
  return JSON.stringify({ time: new Date().toISOString(), ...entry });
}

/** A logger that prints to the console in `format`. */
export function consoleLogger(format: "text" | "json" = "text"): Logger {
  const formatter = format === "json" ? formatJson : formatText;
  return (entry) => console.log(formatter(entry));
}
