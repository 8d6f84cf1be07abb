/**
 * A server's log that writes the lines logged close together (within
 * about two milliseconds) to stdout in one write.
 *
 * Why it exists: a busy server logs a line per request or message, and
 * `console.log` makes a system call per line, which costs more than
 * computing the answer. The lines wait for a zero-delay timer, which in Deno
 * fires about two milliseconds later (lib/outbox.ts), so the lines of a few
 * turns may share one write and a person still sees each one at once;
 * `flush()` writes what is waiting before a last line such as
 * `... server stopped`.
 *
 * @example
 * ```ts
 * import { batchedStdout } from "./batched_log.ts";
 * const stdout = batchedStdout();
 * stdout.log("127.0.0.1:50000 sent \"SEND_TIME\" -> 09:26:53");
 * stdout.log("127.0.0.1:50001 sent \"SEND_DATE\" -> 2025-03-14");
 * stdout.flush(); // both lines, one write
 * ```
 *
 * @module
 */

import { OutputClosed, printLine } from "./cli.ts";

/** The log of {@linkcode batchedStdout}. */
export interface BatchedLog {
  /** Queue one line (without `\n`); it is written when the timer fires. */
  log(line: string): void;
  /** Write the queued lines now (call it before the server's last line). */
  flush(): void;
}

/**
 * Like `console.log`, but the lines logged before a zero-delay timer fires
 * are written to stdout in one write. A closed stdout (nobody reads)
 * drops them quietly.
 *
 * @example
 * ```ts
 * import { batchedStdout } from "./batched_log.ts";
 * const { log, flush } = batchedStdout();
 * log("first");
 * log("second");
 * flush();
 * ```
 */
export function batchedStdout(): BatchedLog {
  let lines: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    if (lines.length === 0) return;
    const text = lines.join("\n");
    lines = [];
    try {
      printLine(text); // one write for them all
    } catch (error) {
      if (!(error instanceof OutputClosed)) throw error; // nobody reads
    }
  }
  function log(line: string): void {
    if (lines.push(line) === 1) timer = setTimeout(flush, 0);
  }
  return { log, flush };
}
