/**
 * The benchmark's table: one row per workload and server, with the headline
 * figure, its ratio to the first server of the workload, latency, problems
 * (lost, failed, wrong: must be 0), and the server's CPU and memory.
 *
 * Not a script: bench/main.ts imports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTable } from "./report.ts";
 * assert(formatTable([]).startsWith("workload"));
 * ```
 *
 * @module
 */

import type { ToolResult } from "./processes.ts";
import type { StopResult } from "./processes.ts";
import type { Workload } from "./workloads.ts";

/** One workload run against one server. */
export interface RunResult {
  workload: Workload;
  server: string;
  result: ToolResult;
  /** How the server ended when stopped (null if it never started). */
  stop: StopResult | null;
  /** The server's process id (the listening process), once it started. */
  serverPid: number | null;
  /** Problems found: an empty list means the run counts as correct. */
  problems: string[];
}

/** Lost, failed or wrong operations a run reports (each must be 0). */
export function problemCount(r: ToolResult): number {
  const n = (
    key: string,
  ) => (typeof r[key] === "number" ? r[key] as number : 0);
  return n("lost") + n("failures") + n("wrong") + n("bad_answers") +
    n("out_of_order") +
    n("malformed") + n("errors") + n("left_events") + n("dropped");
}

/** The table, as text. */
export function formatTable(runs: RunResult[]): string {
  const header = [
    "workload",
    "server",
    "figure",
    "unit",
    "x first",
    "p50 ms",
    "p99 ms",
    "problems",
    "srv cpu s",
    "cpu us/op",
    "rss MB",
    "status",
  ];
  const rows = [header];
  const first = new Map<string, number>();
  for (const run of runs) {
    const r = run.result;
    const figure = num(r[run.workload.metric]);
    if (figure != null && !first.has(run.workload.name)) {
      first.set(run.workload.name, figure);
    }
    const base = first.get(run.workload.name);
    const cpu = num(r.server_cpu_s);
    const ops = num(r.ops);
    rows.push([
      run.workload.name,
      run.server,
      fmt(figure),
      run.workload.unit,
      figure != null && base ? (figure / base).toFixed(2) : "-",
      fmt(num(r.p50_ms)),
      fmt(num(r.p99_ms)),
      String(problemCount(r)),
      fmt(cpu),
      cpu != null && ops ? fmt((cpu * 1e6) / ops) : "-",
      fmt(num(r.server_rss_mb)),
      run.problems.length ? `FAIL: ${run.problems.join("; ")}` : "ok",
    ]);
  }
  const widths = header.map((_, i) =>
    Math.max(...rows.map((row) => row[i].length))
  );
  return rows.map((row) =>
    row.map((cell, i) =>
      i === row.length - 1
        ? cell
        : i < 2 || i === 3
        ? cell.padEnd(widths[i])
        : cell.padStart(widths[i])
    ).join("  ").trimEnd()
  ).join("\n");
}

function num(x: unknown): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

function fmt(x: number | null): string {
  if (x == null) return "-";
  if (Math.abs(x) >= 100) return String(Math.round(x));
  return String(Math.round(x * 100) / 100);
}
