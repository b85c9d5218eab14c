/**
 * Smoke test of the benchmark: `bench/run.ts --quick` runs both servers for a
 * few seconds and writes a JSON report with the expected shape. It checks no
 * speed: only that the run works end to end and its numbers are numbers.
 *
 * When `bench/baseline/node_modules` is missing, the quick run installs it
 * with `npm ci --prefix bench/baseline` (npm registry); if that fails, the
 * baseline is skipped with a note and only our server is checked.
 *
 * @module
 */

import assert from "node:assert/strict";

const RUN = new URL("../bench/run.ts", import.meta.url).pathname;
/** The quick run takes about 10 s; an `npm ci` on a cold cache adds some. */
const TIMEOUT_MS = 90_000;

const STEP_NUMBERS = [
  "clients",
  "rate",
  "published",
  "expected",
  "delivered",
  "deliveredRatio",
  "p50",
  "p99",
  "p999",
  "serverCpuPercent",
  "serverPeakRssMb",
  "loadCpuPercent",
] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function assertNumbers(record: Record<string, unknown>, keys: readonly string[], where: string) {
  for (const key of keys) {
    const value = record[key];
    assert.ok(
      typeof value === "number" && Number.isFinite(value),
      `${where}.${key} should be a finite number, got ${JSON.stringify(value)}`,
    );
  }
}

function assertServerReport(report: unknown, kind: string): void {
  assert.ok(isRecord(report), `servers.${kind} should be an object`);
  assert.equal(report.kind, kind);
  assert.ok(Array.isArray(report.sweeps) && report.sweeps.length === 1, `${kind}: one sweep`);
  const sweep = report.sweeps[0];
  assert.ok(isRecord(sweep));
  assertNumbers(
    sweep,
    ["clients", "startRate", "headlineRate", "headlineDeliveredPerSecond"],
    kind,
  );
  assert.ok(Array.isArray(sweep.steps) && sweep.steps.length >= 1, `${kind}: at least one step`);
  const step = sweep.steps[0];
  assert.ok(isRecord(step));
  assertNumbers(step, STEP_NUMBERS, `${kind}.steps[0]`);
  assert.equal(typeof step.pass, "boolean");
  assert.ok((step.published as number) > 0, `${kind}: something was published`);
  assert.ok((step.delivered as number) > 0, `${kind}: something was delivered`);
}

Deno.test("deno task bench --quick produces well-formed JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench_test_" });
  const path = `${dir}/bench.json`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", RUN, "--quick", "--json", path],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, `bench/run.ts --quick exited with ${code}:\n${output}`);

    const report: unknown = JSON.parse(await Deno.readTextFile(path));
    assert.ok(isRecord(report), "the report should be an object");
    assert.equal(report.mode, "quick");
    assert.ok(!Number.isNaN(Date.parse(String(report.date))), "date should be a date");
    assert.ok(isRecord(report.environment));
    assert.equal(typeof report.environment.deno, "string");
    assert.ok(isRecord(report.parameters));
    assertNumbers(report.parameters, ["stepSeconds", "loadProcesses", "textBytes"], "parameters");
    assert.ok(isRecord(report.servers));
    assertServerReport(report.servers.ours, "ours");
    const notes = Array.isArray(report.notes) ? report.notes.map(String) : [];
    if (notes.some((note) => note.startsWith("baseline skipped"))) {
      console.log(`Baseline not checked: ${notes.join("; ")}`);
    } else {
      assertServerReport(report.servers.baseline, "baseline");
    }
    assert.ok(Array.isArray(report.comparison) && report.comparison.length > 0);
    for (const row of report.comparison) {
      assert.ok(isRecord(row) && typeof row.metric === "string");
    }
    assert.match(output, /ours\/baseline/, "the table should be printed");
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
});
