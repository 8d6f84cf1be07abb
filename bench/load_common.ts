/**
 * What every load tool shares: the flags that say which server to load
 * (`--port`, `--pid`, `--timeout`; the host is always 127.0.0.1), a deadline
 * that ends a run by itself, a bounded worker pool, and the one JSON line a
 * tool prints as its result.
 *
 * Not a script: bench/chat_load.ts, bench/calc_load.ts and bench/udp_load.ts
 * import it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pool } from "./load_common.ts";
 * const seen: number[] = [];
 * await pool(5, 2, async (i) => { seen.push(i); });
 * assert(seen.length === 5);
 * ```
 *
 * @module
 */

import { UsageError } from "../lib/cli.ts";

/** Load tools talk to this machine only. */
export const LOOPBACK = "127.0.0.1";

/** Flags every load tool takes (see lib/cli.ts for the spec format). */
export const LOAD_FLAGS = {
  host: {
    kind: "string",
    placeholder: "H",
    default: LOOPBACK,
    choices: [LOOPBACK],
    help: "server address (only 127.0.0.1 is allowed)",
  },
  port: {
    kind: "port",
    placeholder: "P",
    default: 0,
    help: "server port (required)",
  },
  pid: {
    kind: "integer",
    placeholder: "PID",
    default: 0,
    help: "server process id, to read its CPU time and memory (0: none)",
  },
  timeout: {
    kind: "number",
    placeholder: "S",
    default: 60,
    min: 0.1,
    help: "end the run after S seconds, whatever happened (default 60)",
  },
} as const;

/** Throw a {@linkcode UsageError} unless a server port was given. */
export function requirePort(port: number): void {
  if (port === 0) {
    throw new UsageError("--port is required (the server's port)");
  }
}

/** A result line: numbers, texts, nested summaries; `error` marks a failure. */
export type Report = Record<string, unknown> & { error?: string };

/**
 * Print `report` as one JSON line with `end` (how the run ended) and return
 * the exit code: 0 for a complete run without `error`, 1 otherwise. A run
 * cut short by its deadline is a failure however clean its figures.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { emit } from "./load_common.ts";
 * assert.equal(emit({ lost: 0 }, "complete"), 0); // {"lost":0,"end":"complete"}
 * // {"lost":0,"end":"timeout","error":"run ended: timeout"}
 * assert.equal(emit({ lost: 0 }, "timeout"), 1);
 * ```
 */
export function emit(report: Report, end: string): number {
  const line = { ...report, end };
  if (end !== "complete" && !line.error) line.error = `run ended: ${end}`;
  console.log(JSON.stringify(line));
  return line.error ? 1 : 0;
}

/**
 * Wait for `work`, but at most `seconds`: resolves `"complete"` or
 * `"timeout"`. The timer is cleared either way.
 */
export async function withDeadline(
  work: Promise<unknown>,
  seconds: number,
): Promise<"complete" | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), seconds * 1000);
  });
  try {
    return await Promise.race([work.then(() => "complete" as const), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * Run `task(i)` for every i in [0, n), at most `limit` at a time, in order
 * of i; stop starting new ones once `stop()` is true.
 */
export async function pool(
  n: number,
  limit: number,
  task: (i: number) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  async function worker() {
    while (next < n && !stop()) await task(next++);
  }
  const workers = Math.max(1, Math.min(n, limit));
  await Promise.all(Array.from({ length: workers }, worker));
}

/** A short, stable reason for a failure, to count failures by kind. */
export function reason(error: unknown): string {
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`.replace(/\s*\(os error \d+\)/, "")
      .slice(0, 80);
  }
  return String(error).slice(0, 80);
}

/** Count one occurrence of `key` in `counts`. */
export function tally(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** A random tag that keeps login names unique across runs on one server. */
export function runTag(): string {
  return Math.random().toString(36).slice(2, 6).padEnd(4, "0");
}

/** Close `resource` unless it is closed already. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed (Deno.errors.BadResource)
  }
}
