/**
 * A server's log: it writes the lines logged close together (within about
 * two milliseconds) to stdout in one write, and a stdout that cannot be
 * written never stops the server.
 *
 * Why it exists: a busy server logs a line per request or message, and
 * `console.log` makes a system call per line, which costs more than
 * computing the answer. The lines wait for a zero-delay timer, which in Deno
 * fires about two milliseconds later (lib/outbox.ts), so the lines of a few
 * turns may share one write and a person still sees each one at once;
 * `print()` writes what is waiting and then a line such as
 * `... server stopped`.
 *
 * A log that cannot be written is no reason to stop serving a classroom.
 * A closed stdout (nobody reads) drops the lines quietly. A refused write
 * (`> log.txt` on a disk that has filled up) is said once on stderr, the
 * lines are dropped and counted, and once a write works again the log says
 * how many it lost.
 *
 * @example
 * ```ts
 * import { batchedStdout } from "./batched_log.ts";
 * const stdout = batchedStdout();
 * stdout.log("127.0.0.1:50000 sent \"SEND_TIME\" -> 09:26:53");
 * stdout.log("127.0.0.1:50001 sent \"SEND_DATE\" -> 2025-03-14");
 * stdout.print("UDP time server stopped"); // all three lines, one write
 * ```
 *
 * @module
 */

import { OutputClosed, OutputRefused, printLine } from "./cli.ts";
import { errnoName } from "./errors.ts";

/** The log of {@linkcode batchedStdout}. */
export interface BatchedLog {
  /** Queue one line (without `\n`); it is written when the timer fires. */
  log(line: string): void;
  /** Write the queued lines and then `line` now (a server's first and last lines). */
  print(line: string): void;
  /** Write the queued lines now. */
  flush(): void;
}

/** Where {@linkcode batchedStdout} writes; tests give their own. */
export interface LogOutput {
  /** Write lines joined by `\n` (default {@linkcode printLine}). */
  write(text: string): void;
  /** Say on stderr that the log cannot be written (default `console.error`). */
  warn(line: string): void;
}

/**
 * Like `console.log`, but the lines logged before a zero-delay timer fires
 * are written to stdout in one write, and a write that fails does not
 * throw (see the module's text).
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
export function batchedStdout(
  output: LogOutput = { write: printLine, warn: warnQuietly },
): BatchedLog {
  let lines: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lost = 0; // lines dropped since the last write that worked
  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    if (lines.length === 0) return;
    const queued = lines;
    lines = [];
    const news = lost > 0
      ? [
        `(log lines lost while stdout could not be written: ${lost})`,
        ...queued,
      ]
      : queued;
    try {
      output.write(news.join("\n")); // one write for them all
      lost = 0;
    } catch (error) {
      if (error instanceof OutputClosed) return; // nobody reads: no news
      if (!(error instanceof OutputRefused)) throw error; // a bug
      // "Cannot write the output: no space left on device (...)", once.
      if (lost === 0) {
        output.warn(`${error.message}; the server goes on without its log`);
      }
      lost += queued.length;
    }
  }
  function log(line: string): void {
    if (lines.push(line) === 1) timer = setTimeout(flush, 0);
  }
  function print(line: string): void {
    lines.push(line);
    flush();
  }
  return { log, print, flush };
}

/** `console.error`, which itself throws when stderr cannot be written. */
function warnQuietly(line: string): void {
  try {
    console.error(line);
  } catch (error) {
    if (errnoName(error) === undefined) throw error; // a bug
    // stderr is full or closed too: there is nobody left to tell
  }
}
