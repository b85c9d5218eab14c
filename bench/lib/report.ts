/**
 * The comparison of two servers' reports: one row per metric with the ratio
 * ours/baseline, printed as a plain-text table.
 *
 * @module
 */

import { round } from "./histogram.ts";
import type { ServerReport } from "./phases.ts";

/** One compared metric. */
export interface ComparisonRow {
  metric: string;
  unit: string;
  /** Which direction is good. */
  better: "higher" | "lower" | "info";
  ours: number | string | null;
  baseline: number | string | null;
  /** ours / baseline, when both are numbers and the baseline is not 0. */
  ratio: number | null;
}

type Pick = (report: ServerReport) => number | string | null | undefined;

function sweepOf(report: ServerReport, clients: number) {
  return report.sweeps.find((s) => s.clients === clients);
}

function latencyOf(report: ServerReport, clients: number) {
  return report.latency.find((l) => l.clients === clients)?.step;
}

/** The last attempt at the sweep's first rate (the retry, when the first attempt failed). */
function firstStepOf(report: ServerReport, clients: number) {
  const steps = sweepOf(report, clients)?.steps ?? [];
  return steps.filter((step) => step.rate === steps[0].rate).at(-1);
}

function idleLevel(report: ServerReport, target: number) {
  return report.idle?.levels.find((l) => l.target === target);
}

function yesNo(value: boolean | undefined): string | null {
  return value === undefined ? null : value ? "yes" : "no";
}

/** The metrics compared, in order; rows where neither server has a value are left out. */
function metrics(
  clientCounts: number[],
  idleTargets: number[],
): [string, string, ComparisonRow["better"], Pick][] {
  const rows: [string, string, ComparisonRow["better"], Pick][] = [];
  for (const clients of clientCounts) {
    rows.push(
      [
        `headline rate, ${clients} clients`,
        "publishes/s",
        "higher",
        (r) => sweepOf(r, clients)?.headlineRate,
      ],
      [
        `delivered at headline, ${clients} clients`,
        "msgs/s",
        "higher",
        (r) => sweepOf(r, clients)?.headlineDeliveredPerSecond,
      ],
    );
  }
  for (const clients of clientCounts) {
    rows.push(
      [
        `p50 at 50% of headline, ${clients} clients`,
        "ms",
        "lower",
        (r) => latencyOf(r, clients)?.p50,
      ],
      [
        `p99 at 50% of headline, ${clients} clients`,
        "ms",
        "lower",
        (r) => latencyOf(r, clients)?.p99,
      ],
      [
        `p99.9 at 50% of headline, ${clients} clients`,
        "ms",
        "lower",
        (r) => latencyOf(r, clients)?.p999,
      ],
      [
        `server CPU at 50% of headline, ${clients} clients`,
        "% of a core",
        "info",
        (r) => latencyOf(r, clients)?.serverCpuPercent,
      ],
      [
        `server CPU per 1k deliveries, ${clients} clients`,
        "ms",
        "lower",
        (r) => latencyOf(r, clients)?.serverCpuMsPer1kDeliveries,
      ],
    );
  }
  for (const clients of clientCounts) {
    rows.push(
      [
        `p50 at the first sweep rate, ${clients} clients`,
        "ms",
        "lower",
        (r) => firstStepOf(r, clients)?.p50,
      ],
      [
        `p99 at the first sweep rate, ${clients} clients`,
        "ms",
        "lower",
        (r) => firstStepOf(r, clients)?.p99,
      ],
      [
        `peak RSS in the sweep, ${clients} clients`,
        "MB",
        "lower",
        (r) =>
          sweepOf(r, clients) === undefined
            ? undefined
            : Math.max(...sweepOf(r, clients)!.steps.map((s) => s.serverPeakRssMb)),
      ],
    );
  }
  rows.push(
    ["overload rate (10× headline)", "publishes/s", "info", (r) => r.overload?.rate],
    [
      "overload delivered",
      "%",
      "higher",
      (r) => r.overload ? round(r.overload.step.deliveredRatio * 100, 2) : undefined,
    ],
    ["overload p99", "ms", "lower", (r) => r.overload?.step.p99],
    ["overload 1013 closes", "closes", "info", (r) => r.overload?.step.closes1013],
    ["overload peak RSS", "MB", "lower", (r) => r.overload?.peakRssMb],
    ["answered /healthz after overload", "", "info", (r) => yesNo(r.overload?.health.answered)],
  );
  for (const target of idleTargets) {
    rows.push(
      [
        `idle: RSS per connection at ${target}`,
        "KiB",
        "lower",
        (r) => idleLevel(r, target)?.kbPerConnection,
      ],
    );
  }
  if (idleTargets.length > 0) {
    rows.push(["idle: most connections held", "connections", "higher", (r) => r.idle?.mostHeld]);
  }
  return rows;
}

/** Compares the two reports metric by metric. */
export function compare(
  ours: ServerReport,
  baseline: ServerReport | null,
  clientCounts: number[],
  idleTargets: number[],
): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  for (const [metric, unit, better, pick] of metrics(clientCounts, idleTargets)) {
    const a = pick(ours) ?? null;
    const b = baseline ? pick(baseline) ?? null : null;
    if (a === null && b === null) continue;
    const ratio = typeof a === "number" && typeof b === "number" && b !== 0
      ? round(a / b, 3)
      : null;
    rows.push({ metric, unit, better, ours: a, baseline: b, ratio });
  }
  return rows;
}

function cell(value: number | string | null): string {
  if (value === null) return "-";
  if (typeof value === "string") return value;
  return Number.isInteger(value) ? value.toLocaleString("en-US") : String(value);
}

/** Renders the rows as an aligned text table. */
export function renderTable(rows: ComparisonRow[]): string {
  const header = ["metric", "unit", "better", "ours", "baseline", "ours/baseline"];
  const body = rows.map((r) => [
    r.metric,
    r.unit,
    r.better === "info" ? "" : r.better,
    cell(r.ours),
    cell(r.baseline),
    r.ratio === null ? "-" : r.ratio.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
