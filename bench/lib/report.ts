/**
 * The comparison of our server's configurations with the baseline measured in
 * the same run: one row per metric with the ratio ours/baseline, the checks
 * against the speed targets, and both as plain-text tables.
 *
 * @module
 */

import type { CpuRun } from "./cpu_phase.ts";
import { round } from "./histogram.ts";
import type { BenchParameters, FixedShape, ServerReport, Shape, ShapeId, Sweep } from "./phases.ts";
import { STORE_NAMES, type TargetId } from "./servers.ts";

/** One compared metric. */
export interface ComparisonRow {
  /** The phase the row comes from. */
  phase: "sweep" | "latency" | "overload" | "idle" | "join" | "membership" | "cpu";
  metric: string;
  unit: string;
  /** Which direction is good. */
  better: "higher" | "lower" | "info";
  /** Which of our configurations the `ours` column is. */
  target: TargetId;
  ours: number | string | null;
  baseline: number | string | null;
  /** The value is a lower bound: the top of the rate grid passed. */
  oursAtLeast?: boolean;
  baselineAtLeast?: boolean;
  /** ours / baseline, when both are numbers and the baseline is not 0. */
  ratio: number | null;
}

/** A check against one of the targets. */
export interface TargetCheck {
  name: string;
  status: "pass" | "miss" | "not measured";
  /** What was measured, in words. */
  measured: string;
}

type Pick = (report: ServerReport) => number | string | null | undefined;
type AtLeast = (report: ServerReport) => boolean | undefined;

interface MetricDef {
  phase: ComparisonRow["phase"];
  metric: string;
  unit: string;
  better: ComparisonRow["better"];
  pick: Pick;
  atLeast?: AtLeast;
  /** Our configurations this row is shown for (default: only `ours`). */
  targets?: TargetId[];
}

function sweepOf(report: ServerReport, shape: Shape["id"]): Sweep | undefined {
  return report.sweeps.find((s) => s.shape === shape);
}

function latencyOf(report: ServerReport, shape: Shape["id"]) {
  return report.latency.find((l) => l.shape === shape)?.step;
}

function overloadOf(report: ServerReport, shape: Shape["id"]) {
  return report.overload.find((o) => o.shape === shape);
}

/** The last attempt at the sweep's first rate: the same absolute load for every server. */
function firstStepOf(report: ServerReport, shape: Shape["id"]) {
  const sweep = sweepOf(report, shape);
  const steps = sweep?.steps ?? [];
  return steps.filter((step) => step.rate === sweep?.startRate).at(-1);
}

function cpuOf(report: ServerReport | undefined, shape: ShapeId): CpuRun | undefined {
  return report?.cpu.find((run) => run.shape === shape);
}

/** How a CPU run's rounds went, for the rows: "3: 1 disturbed, 3 held". */
function roundsText(run: CpuRun | undefined): string | undefined {
  if (!run) return undefined;
  return `${run.rounds.length}: ${run.disturbedRounds} disturbed, ${run.heldRounds} held`;
}

function idleLevel(report: ServerReport, target: number) {
  return report.idle?.levels.find((l) => l.target === target);
}

function yesNo(value: boolean | undefined): string | null {
  return value === undefined ? null : value ? "yes" : "no";
}

const EXTRA_TARGETS: TargetId[] = ["ours", "ours-memory", "ours-redis"];

/** The metrics compared, in order; rows where neither server has a value are left out. */
function metrics(p: BenchParameters): MetricDef[] {
  const rows: MetricDef[] = [];
  for (const shape of p.shapes) {
    rows.push(
      {
        phase: "sweep",
        metric: `headline, ${shape.name}`,
        unit: "says/s",
        better: "higher",
        pick: (r) => sweepOf(r, shape.id)?.headlineRate,
        atLeast: (r) => sweepOf(r, shape.id)?.atGridTop,
        targets: EXTRA_TARGETS,
      },
      {
        phase: "sweep",
        metric: `delivered at headline, ${shape.name}`,
        unit: "msgs/s",
        better: "higher",
        pick: (r) => sweepOf(r, shape.id)?.headlineDeliveredPerSecond,
        atLeast: (r) => sweepOf(r, shape.id)?.atGridTop,
      },
      {
        phase: "sweep",
        metric: `p50 at the first rate (${shape.startRate}/s), ${shape.name}`,
        unit: "ms",
        better: "lower",
        pick: (r) => firstStepOf(r, shape.id)?.p50,
      },
      {
        phase: "sweep",
        metric: `p99 at the first rate (${shape.startRate}/s), ${shape.name}`,
        unit: "ms",
        better: "lower",
        pick: (r) => firstStepOf(r, shape.id)?.p99,
        targets: EXTRA_TARGETS,
      },
      {
        phase: "sweep",
        metric: `peak RSS in the sweep, ${shape.name}`,
        unit: "MB",
        better: "lower",
        pick: (r) => {
          const sweep = sweepOf(r, shape.id);
          return sweep ? Math.max(...sweep.steps.map((s) => s.serverPeakRssMb)) : undefined;
        },
      },
    );
  }
  for (const shape of p.shapes) {
    const half = `at ${Math.round(p.latencyFraction * 100)}% of headline, ${shape.name}`;
    rows.push(
      {
        phase: "latency",
        metric: `p50 ${half}`,
        unit: "ms",
        better: "lower",
        pick: (r) => latencyOf(r, shape.id)?.p50,
      },
      {
        phase: "latency",
        metric: `p99 ${half}`,
        unit: "ms",
        better: "lower",
        pick: (r) => latencyOf(r, shape.id)?.p99,
        targets: EXTRA_TARGETS,
      },
      {
        phase: "latency",
        metric: `p99.9 ${half}`,
        unit: "ms",
        better: "lower",
        pick: (r) => latencyOf(r, shape.id)?.p999,
      },
      {
        phase: "latency",
        metric: `server CPU ${half}`,
        unit: "% of a core",
        better: "info",
        pick: (r) => latencyOf(r, shape.id)?.serverCpuPercent,
      },
      {
        phase: "latency",
        metric: `server CPU per 1k deliveries ${half}`,
        unit: "ms",
        better: "lower",
        pick: (r) => latencyOf(r, shape.id)?.serverCpuMsPer1kDeliveries,
        targets: EXTRA_TARGETS,
      },
    );
  }
  for (const shape of p.shapes) {
    const what = `overload (${p.overloadFactor}× headline), ${shape.name}`;
    rows.push(
      {
        phase: "overload",
        metric: `${what}: offered`,
        unit: "says/s",
        better: "info",
        pick: (r) => overloadOf(r, shape.id)?.rate,
      },
      {
        phase: "overload",
        metric: `${what}: sent`,
        unit: "says/s",
        better: "info",
        pick: (r) => overloadOf(r, shape.id)?.step.publishedPerSecond,
      },
      {
        phase: "overload",
        metric: `${what}: delivered`,
        unit: "%",
        better: "higher",
        pick: (r) => {
          const o = overloadOf(r, shape.id);
          return o ? round(o.step.deliveredRatio * 100, 2) : undefined;
        },
      },
      {
        phase: "overload",
        metric: `${what}: p99`,
        unit: "ms",
        better: "lower",
        pick: (r) => overloadOf(r, shape.id)?.step.p99,
      },
      {
        phase: "overload",
        metric: `${what}: 1013 closes`,
        unit: "closes",
        better: "info",
        pick: (r) => overloadOf(r, shape.id)?.step.closes1013,
      },
      {
        phase: "overload",
        metric: `${what}: peak RSS`,
        unit: "MB",
        better: "lower",
        pick: (r) => overloadOf(r, shape.id)?.peakRssMb,
      },
      {
        phase: "overload",
        metric: `${what}: /healthz answered after`,
        unit: "",
        better: "info",
        pick: (r) => yesNo(overloadOf(r, shape.id)?.health.answered),
      },
    );
  }
  for (const level of p.idleTargets) {
    rows.push({
      phase: "idle",
      metric: `idle: RSS per connection at ${
        level.toLocaleString("en-US")
      } (rooms of ${p.idleRoomSize})`,
      unit: "KiB",
      better: "lower",
      pick: (r) => idleLevel(r, level)?.kbPerConnection,
    });
  }
  if (p.idleTargets.length > 0) {
    rows.push({
      phase: "idle",
      metric: "idle: most connections held",
      unit: "connections",
      better: "higher",
      pick: (r) => r.idle?.mostHeld,
    });
  }
  for (const shape of p.cpuShapes) {
    const at = `${shape.name} at ${shape.rate.toLocaleString("en-US")} says/s`;
    rows.push(
      {
        phase: "cpu",
        metric: `${at}: server CPU per delivery`,
        unit: "µs",
        better: "lower",
        pick: (r) => cpuOf(r, shape.id)?.median.usPerDelivery,
        targets: EXTRA_TARGETS,
      },
      {
        phase: "cpu",
        metric: `${at}: deliveries`,
        unit: "msgs/s",
        better: "info",
        pick: (r) => cpuOf(r, shape.id)?.median.deliveredPerSecond,
      },
      {
        phase: "cpu",
        metric: `${at}: server CPU`,
        unit: "% of a core",
        better: "info",
        pick: (r) => cpuOf(r, shape.id)?.median.serverCpuPercent,
      },
      {
        phase: "cpu",
        metric: `${at}: p50`,
        unit: "ms",
        better: "lower",
        pick: (r) => cpuOf(r, shape.id)?.median.p50,
      },
      {
        phase: "cpu",
        metric: `${at}: p99`,
        unit: "ms",
        better: "lower",
        pick: (r) => cpuOf(r, shape.id)?.median.p99,
        targets: EXTRA_TARGETS,
      },
      {
        phase: "cpu",
        metric: `${at}: rounds`,
        unit: "",
        better: "info",
        pick: (r) => roundsText(cpuOf(r, shape.id)),
      },
    );
  }
  if (p.membership !== null) {
    const m = p.membership;
    const idle = `${m.clients.toLocaleString("en-US")} clients idle`;
    rows.push(
      {
        phase: "membership",
        metric: `${idle}, 1 room each (rooms of ${m.roomSize}): server RSS`,
        unit: "MB",
        better: "info",
        pick: (r) => r.membership?.oneRssMb,
      },
      {
        phase: "membership",
        metric: `${idle}, ${m.roomsPerClient} rooms each (rooms of ${m.roomSize}): server RSS`,
        unit: "MB",
        better: "info",
        pick: (r) => r.membership?.manyRssMb,
      },
      {
        phase: "membership",
        metric: `RSS per membership (${m.roomsPerClient} rooms each against 1)`,
        unit: "bytes",
        better: "lower",
        pick: (r) => r.membership?.bytesPerMembership,
      },
      {
        phase: "membership",
        metric: `heap per membership (${m.roomsPerClient} rooms each against 1)`,
        unit: "bytes",
        better: "lower",
        pick: (r) => r.membership?.heapBytesPerMembership ?? undefined,
      },
    );
  }
  if (p.joinCostMembers > 0) {
    const room = `one join into a room of ${p.joinCostMembers}`;
    rows.push(
      {
        phase: "join",
        metric: `${room}: bytes received in all`,
        unit: "bytes",
        better: "lower",
        pick: (r) => r.joinCost?.totalBytes,
      },
      {
        phase: "join",
        metric: `${room}: bytes to the members`,
        unit: "bytes",
        better: "lower",
        pick: (r) => r.joinCost?.memberBytes,
      },
      {
        phase: "join",
        metric: `${room}: bytes to the newcomer (${p.joinCostHistory} messages of history)`,
        unit: "bytes",
        better: "lower",
        pick: (r) => r.joinCost?.newcomerBytes,
      },
    );
  }
  return rows;
}

/** Rows of the extra configurations say which store; plain rows are the default (KV file). */
function storeSuffix(target: TargetId, reports: Partial<Record<TargetId, ServerReport>>): string {
  const store = reports[target]?.store;
  return target !== "ours" && store ? ` [${STORE_NAMES[store]}]` : "";
}

/** Compares each of our configurations with the baseline, metric by metric. */
export function compare(
  reports: Partial<Record<TargetId, ServerReport>>,
  p: BenchParameters,
): ComparisonRow[] {
  const baseline = reports.baseline ?? null;
  const rows: ComparisonRow[] = [];
  for (const def of metrics(p)) {
    for (const target of def.targets ?? ["ours"]) {
      const ours = reports[target as TargetId];
      if (!ours) continue;
      const a = def.pick(ours) ?? null;
      const b = baseline ? def.pick(baseline) ?? null : null;
      if (a === null && (b === null || target !== "ours")) continue;
      const ratio = typeof a === "number" && typeof b === "number" && b !== 0
        ? round(a / b, 3)
        : null;
      const row: ComparisonRow = {
        phase: def.phase,
        metric: `${def.metric}${storeSuffix(target as TargetId, reports)}`,
        unit: def.unit,
        better: def.better,
        target: target as TargetId,
        ours: a,
        baseline: b,
        ratio,
      };
      if (def.atLeast) {
        if (a !== null && def.atLeast(ours)) row.oursAtLeast = true;
        if (b !== null && baseline && def.atLeast(baseline)) row.baselineAtLeast = true;
      }
      rows.push(row);
    }
  }
  return rows;
}

/** The bounds of ours/baseline: exact, or open on one side when a grid's top was reached. */
function ratioBounds(row: ComparisonRow): { low: number; high: number } | null {
  if (row.ratio === null) return null;
  return {
    low: row.baselineAtLeast ? 0 : row.ratio,
    high: row.oursAtLeast ? Infinity : row.ratio,
  };
}

/** `≥ 2.5`, `≤ 2.5`, or `2.5`. */
export function ratioText(row: ComparisonRow): string {
  if (row.ratio === null) return "-";
  const value = row.ratio.toFixed(2);
  if (row.oursAtLeast && row.baselineAtLeast) return `? ${value}`;
  if (row.oursAtLeast) return `≥ ${value}`;
  if (row.baselineAtLeast) return `≤ ${value}`;
  return value;
}

function findRow(rows: ComparisonRow[], metric: string, target: TargetId = "ours") {
  return rows.find((r) => r.target === target && r.metric.startsWith(metric));
}

function headlineCheck(
  rows: ComparisonRow[],
  shape: Shape | undefined,
  goal: number,
  name: string,
): TargetCheck {
  const row = shape ? findRow(rows, `headline, ${shape.name}`) : undefined;
  const bounds = row ? ratioBounds(row) : null;
  if (!row || !bounds) {
    return { name, status: "not measured", measured: "no headline for both servers" };
  }
  const measured = `${ratioText(row)}× (${cell(row.ours, row.oursAtLeast)} vs ` +
    `${cell(row.baseline, row.baselineAtLeast)} says/s, both at p99 ≤ 50 ms)`;
  if (bounds.low >= goal) return { name, status: "pass", measured };
  if (bounds.high < goal) return { name, status: "miss", measured };
  return { name, status: "not measured", measured: `${measured}: the grid's top was reached` };
}

/** Checks our default configuration (`ours`) against the targets. */
export function checkTargets(
  reports: Partial<Record<TargetId, ServerReport>>,
  rows: ComparisonRow[],
  p: BenchParameters,
): TargetCheck[] {
  const ours = reports.ours;
  const room = p.shapes.find((s) => s.id === "room");
  const rooms = p.shapes.find((s) => s.id === "rooms");
  const checks: TargetCheck[] = [
    headlineCheck(rows, room, 4, `${room?.name ?? "one room"}: ≥ 4× baseline with p99 ≤ 50 ms`),
    headlineCheck(rows, rooms, 2, `${rooms?.name ?? "many rooms"}: ≥ 2× baseline`),
  ];

  const latency = ours?.latency ?? [];
  checks.push(
    latency.length === 0
      ? { name: "p99 ≤ 10 ms at half of each headline", status: "not measured", measured: "-" }
      : {
        name: "p99 ≤ 10 ms at half of each headline",
        status: latency.length === p.shapes.length && latency.every((l) => l.step.p99 <= 10)
          ? "pass"
          : "miss",
        measured: latency.map((l) => `${l.step.p99} ms (${l.shape}, ${l.rate}/s)`).join(", "),
      },
  );

  const overloads = ours?.overload ?? [];
  checks.push(
    overloads.length === 0
      ? { name: "RSS < 300 MB under 10× overload", status: "not measured", measured: "-" }
      : {
        name: "RSS < 300 MB under 10× overload",
        status: overloads.length === p.shapes.length &&
            overloads.every((o) => o.peakRssMb < 300 && o.alive)
          ? "pass"
          : "miss",
        measured: overloads.map((o) =>
          `${o.peakRssMb} MB (${o.shape}, ${o.rate}/s offered${o.alive ? "" : ", server died"})`
        ).join(", "),
      },
  );

  const last = ours?.idle?.levels.at(-1);
  checks.push(
    !last ? { name: "≤ 30 KiB per idle connection", status: "not measured", measured: "-" } : {
      name: "≤ 30 KiB per idle connection",
      status: last.kbPerConnection <= 30 ? "pass" : "miss",
      measured: `${last.kbPerConnection} KiB at ${last.held} connections ` +
        `(rooms of ${ours!.idle!.roomSize})`,
    },
  );

  const join = ours?.joinCost;
  const members = p.joinCostMembers + 1;
  checks.push(
    !join
      ? {
        name: `joining a room of ${members} sends < 100 KiB`,
        status: "not measured",
        measured: "-",
      }
      : {
        name: `joining a room of ${members} sends < 100 KiB`,
        status: join.totalBytes < 100 * 1024 ? "pass" : "miss",
        measured: `${round(join.totalBytes / 1024, 1)} KiB (members ` +
          `${round(join.memberBytes / 1024, 1)} KiB in ${join.memberFrames} frames, newcomer ` +
          `${round(join.newcomerBytes / 1024, 1)} KiB)`,
      },
  );

  // Issue #21: cheaper per message than a server that stores nothing.
  checks.push(
    headlineCheck(rows, rooms, 1, `${rooms?.name ?? "many rooms"}: ≥ 1× baseline (#21)`),
  );
  const cpuRooms = p.cpuShapes.find((s) => s.id === "rooms");
  const cpuRoom = p.cpuShapes.find((s) => s.id === "room");
  checks.push(cpuRatioCheck(reports, cpuRooms, 1, "many rooms"));
  checks.push(cpuP99Check(reports, cpuRooms, 10));
  checks.push(cpuRatioCheck(reports, cpuRoom, 0.4, "one room"));

  // Issue #18: be in many rooms at once.
  const m = ours?.membership;
  const perMembership = `≤ 2 KiB per membership (${
    p.membership?.roomsPerClient ?? 10
  } rooms each against 1) (#18)`;
  checks.push(
    // What one more membership holds is the heap it adds; the RSS grows more, by what the
    // join storm allocated and the allocator keeps (both are printed).
    !m || m.heapBytesPerMembership === null
      ? { name: perMembership, status: "not measured", measured: "-" }
      : {
        name: perMembership,
        status: m.heapBytesPerMembership <= MEMBERSHIP_BYTES_GOAL ? "pass" : "miss",
        measured: `${m.heapBytesPerMembership.toLocaleString("en-US")} bytes of heap (RSS: ` +
          `${m.bytesPerMembership.toLocaleString("en-US")} bytes; ${m.clients} clients: ` +
          `${m.oneRssMb} MB with 1 room each, ${m.manyRssMb} MB with ${m.roomsPerClient}; ` +
          `median of ${m.rounds.length})`,
      },
  );
  return checks;
}

/** Issue #18's goal for the memory of one more membership, in bytes. */
const MEMBERSHIP_BYTES_GOAL = 2 * 1024;

/** What went on in a CPU run, beyond its median: rounds, disturbed ones, whether it held. */
function cpuRunText(who: string, run: CpuRun): string {
  const parts = [`${run.rounds.length} rounds`];
  if (run.disturbedRounds > 0) parts.push(`${run.disturbedRounds} disturbed`);
  if (!run.held) parts.push(`did not hold the rate: ${run.heldRounds} held`);
  return `${who} ${parts.join(", ")}`;
}

/** "one room of 32 at 2,000 says/s", or `fallback` when the shape was not run. */
function atRate(shape: FixedShape | undefined, fallback: string): string {
  return shape ? `${shape.name} at ${shape.rate.toLocaleString("en-US")} says/s` : fallback;
}

/** Our CPU per delivery against the baseline's in `shape`, at most `goal` times it (#21). */
function cpuRatioCheck(
  reports: Partial<Record<TargetId, ServerReport>>,
  shape: FixedShape | undefined,
  goal: number,
  fallback: string,
): TargetCheck {
  const name = `${atRate(shape, fallback)}: server CPU per delivery ≤ ${
    goal.toFixed(1)
  }× baseline (#21)`;
  const ours = shape ? cpuOf(reports.ours, shape.id) : undefined;
  const base = shape ? cpuOf(reports.baseline, shape.id) : undefined;
  if (!ours || !base || base.median.usPerDelivery === 0) {
    return { name, status: "not measured", measured: "no CPU phase for both servers" };
  }
  const ratio = ours.median.usPerDelivery / base.median.usPerDelivery;
  const measured = `${ratio.toFixed(2)}× (${ours.median.usPerDelivery} vs ` +
    `${base.median.usPerDelivery} µs, medians; ${cpuRunText("ours", ours)}; ` +
    `${cpuRunText("baseline", base)})`;
  // At a rate the baseline does not hold, its deliveries lag the window: no fair comparison.
  if (!base.held) return { name, status: "not measured", measured };
  if (!ours.held) return { name, status: "miss", measured };
  return { name, status: ratio <= goal ? "pass" : "miss", measured };
}

/** Our median p99 in the CPU phase's `shape`, at most `goalMs` (#21). */
function cpuP99Check(
  reports: Partial<Record<TargetId, ServerReport>>,
  shape: FixedShape | undefined,
  goalMs: number,
): TargetCheck {
  const name = `${atRate(shape, "many rooms")}: p99 ≤ ${goalMs} ms (#21)`;
  const ours = shape ? cpuOf(reports.ours, shape.id) : undefined;
  if (!ours) return { name, status: "not measured", measured: "-" };
  return {
    name,
    status: ours.median.p99 <= goalMs && ours.held ? "pass" : "miss",
    measured: `${ours.median.p99} ms (median; ${cpuRunText("", ours).trim()})`,
  };
}

function cell(value: number | string | null, atLeast?: boolean): string {
  if (value === null) return "-";
  if (typeof value === "string") return value;
  // Rates on the 1.5× grid are fractional: whole numbers read better from 100 up.
  const text = Number.isInteger(value) || Math.abs(value) >= 100
    ? Math.round(value).toLocaleString("en-US")
    : String(value);
  return atLeast ? `≥ ${text}` : text;
}

function renderColumns(header: string[], body: string[][], rightFrom: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((c, i) => (i >= rightFrom ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** Renders the rows as an aligned text table. */
export function renderTable(rows: ComparisonRow[]): string {
  const header = ["metric", "unit", "better", "ours", "baseline", "ours/baseline"];
  const body = rows.map((r) => [
    r.metric,
    r.unit,
    r.better === "info" ? "" : r.better,
    cell(r.ours, r.oursAtLeast),
    cell(r.baseline, r.baselineAtLeast),
    ratioText(r),
  ]);
  return renderColumns(header, body, 3);
}

/** Renders the target checks, one line each. */
export function renderChecks(checks: TargetCheck[]): string {
  const status = { pass: "PASS", miss: "MISS", "not measured": "n/a " } as const;
  return checks.map((c) => `${status[c.status]}  ${c.name}: ${c.measured}`).join("\n");
}
