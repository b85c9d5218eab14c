/**
 * Prometheus text exposition (format 0.0.4) for a handful of counters and
 * gauges. Pure: the caller collects the numbers, this only formats them.
 *
 * @module
 */

/** One sample of a metric, with optional labels. */
export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

/** A metric and its samples. */
export interface MetricFamily {
  /** Metric name, such as `chat_connections`. */
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: Sample[];
}

/** The content type of {@linkcode renderMetrics}' output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Formats metric families as Prometheus text.
 *
 * @example Usage
 * ```ts
 * import { renderMetrics } from "./metrics.ts";
 * renderMetrics([{ name: "up", help: "Is it up", type: "gauge", samples: [{ value: 1 }] }]);
 * // "# HELP up Is it up\n# TYPE up gauge\nup 1\n"
 * ```
 */
export function renderMetrics(families: MetricFamily[]): string {
  let text = "";
  for (const { name, help, type, samples } of families) {
    text += `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n`;
    text += `# TYPE ${name} ${type}\n`;
    for (const { labels, value } of samples) text += `${name}${labelText(labels)} ${value}\n`;
  }
  return text;
}

function labelText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return "";
  const pairs = entries.map(([key, value]) =>
    `${key}="${value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`
  );
  return `{${pairs.join(",")}}`;
}
