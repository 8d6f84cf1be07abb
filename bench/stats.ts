/**
 * Measuring helpers for the benchmark: a monotonic microsecond clock,
 * latency samples with percentiles, and what Linux says about a process in
 * /proc (resident memory, CPU time, open-files limit).
 *
 * Not a script: bench/main.ts and the load tools import it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Samples } from "./stats.ts";
 * const latency = new Samples();
 * for (const ms of [1, 2, 3, 4, 100]) latency.add(ms);
 * assert(latency.summary().p50_ms === 3);
 * ```
 *
 * @module
 */

/** Linux reports CPU time in clock ticks of 1/100 s (`getconf CLK_TCK`). */
const TICKS_PER_SECOND = 100;

/** Monotonic time in whole microseconds since this process started. */
export function nowUs(): number {
  return Math.round(performance.now() * 1000);
}

/** `x` rounded to `digits` decimals; `null` for a missing or infinite value. */
export function round(x: number | null | undefined, digits = 3): number | null {
  if (x == null || !Number.isFinite(x)) return null;
  const scale = 10 ** digits;
  return Math.round(x * scale) / scale;
}

/** Percentiles of latencies in milliseconds, as every load tool reports them. */
export interface LatencySummary {
  samples: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

/**
 * Latency samples in milliseconds. Keeps every sample up to `capacity`
 * (2 million by default, 16 MB), then a uniform random subset of them
 * (reservoir sampling); the maximum is always exact.
 */
export class Samples {
  #values: Float64Array;
  #kept = 0;
  #seen = 0;
  #max = -Infinity;

  constructor(capacity = 1 << 21) {
    this.#values = new Float64Array(capacity);
  }

  /** Record one latency, in ms. */
  add(ms: number): void {
    if (ms > this.#max) this.#max = ms;
    if (this.#kept < this.#values.length) {
      this.#values[this.#kept++] = ms;
    } else {
      const slot = Math.floor(Math.random() * (this.#seen + 1));
      if (slot < this.#values.length) this.#values[slot] = ms;
    }
    this.#seen++;
  }

  /** Nearest-rank percentiles of what was recorded. */
  summary(): LatencySummary {
    const sorted = this.#values.slice(0, this.#kept).sort();
    return {
      samples: this.#seen,
      p50_ms: percentile(sorted, 0.5),
      p90_ms: percentile(sorted, 0.9),
      p99_ms: percentile(sorted, 0.99),
      max_ms: this.#seen ? round(this.#max) : null,
    };
  }
}

/**
 * Nearest-rank percentile `p` (0-1) of ascending `sorted`; `null` when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { percentile } from "./stats.ts";
 * assert(percentile(new Float64Array([1, 2, 3, 4]), 0.5) === 2);
 * ```
 */
export function percentile(
  sorted: ArrayLike<number>,
  p: number,
): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(0, Math.ceil(p * sorted.length) - 1);
  return round(sorted[rank]);
}

function readProc(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null; // the process is gone, or this is not Linux
  }
}

/** Resident memory of process `pid` in KiB (`VmRSS` in /proc/PID/status). */
export function rssKiB(pid: number | "self"): number | null {
  const status = readProc(`/proc/${pid}/status`);
  const m = status && /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : null;
}

/** Every process's pid, from /proc ([] if this is not Linux). */
export function allPids(): number[] {
  try {
    return [...Deno.readDirSync("/proc")]
      .filter((entry) => /^\d+$/.test(entry.name))
      .map((entry) => Number(entry.name));
  } catch {
    return [];
  }
}

/**
 * The fields of /proc/PID/stat after "pid (comm) ", read from the last ")"
 * so that a name holding spaces or ")" cannot shift them: state is 0, ppid
 * 1, pgrp 2, utime 11, stime 12. `null` if the process is gone or this is
 * not Linux.
 */
export function procStat(pid: number | "self"): string[] | null {
  const stat = readProc(`/proc/${pid}/stat`);
  return stat === null
    ? null
    : stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU seconds (user + system) process `pid` has used (/proc/PID/stat). */
export function cpuSeconds(pid: number | "self"): number | null {
  const fields = procStat(pid);
  if (!fields) return null;
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * The limit on open files of process `pid`: the soft one (what it may open
 * now) or the hard one (how far it may raise it); Infinity if unlimited.
 */
export function openFilesLimit(
  pid: number | "self",
  which: "soft" | "hard" = "soft",
): number | null {
  const limits = readProc(`/proc/${pid}/limits`);
  const m = limits &&
    /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits);
  if (!m) return null;
  const value = which === "soft" ? m[1] : m[2];
  return value === "unlimited" ? Infinity : Number(value);
}

/** CPU used over a measured phase, by the server and by the load tool. */
export interface CpuUse {
  /** Server CPU seconds over the phase (`null` without a server pid). */
  server_cpu_s: number | null;
  /** Server CPU as a share of one core, in percent. */
  server_cpu_pct: number | null;
  /** The load tool's own share of one core: near 100, it was the limit. */
  loadgen_cpu_pct: number | null;
}

/**
 * Start measuring CPU use; the returned function reports it for the time
 * since, for server `pid` (0: none) and for this process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cpuMeter } from "./stats.ts";
 * const stop = cpuMeter(0);
 * assert(stop().server_cpu_s === null);
 * ```
 */
export function cpuMeter(pid: number): () => CpuUse {
  const t0 = nowUs();
  const server0 = pid ? cpuSeconds(pid) : null;
  const self0 = cpuSeconds("self");
  return () => {
    const seconds = (nowUs() - t0) / 1e6;
    const server1 = pid ? cpuSeconds(pid) : null;
    const self1 = cpuSeconds("self");
    const server = server0 == null || server1 == null
      ? null
      : server1 - server0;
    const self = self0 == null || self1 == null ? null : self1 - self0;
    return {
      server_cpu_s: round(server, 2),
      server_cpu_pct: server == null
        ? null
        : round((100 * server) / seconds, 0),
      loadgen_cpu_pct: self == null ? null : round((100 * self) / seconds, 0),
    };
  };
}
