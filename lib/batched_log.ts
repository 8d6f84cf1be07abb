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
 * `print()` writes what is waiting, and then on its own a line such as
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
 * stdout.print("UDP time server stopped"); // the two lines, then this one
 * ```
 *
 * @module
 */

import {
  OutputClosed,
  outputFailure,
  OutputRefused,
  printLine,
} from "./cli.ts";
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
  /** Write the line of `print()` (default {@linkcode consoleLog}). */
  print(line: string): void;
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
  output: LogOutput = {
    write: printLine,
    print: consoleLog,
    warn: warnQuietly,
  },
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
    send(queued, output.write); // one write for them all
  }
  function print(line: string): void {
    flush();
    send([line], output.print);
  }
  function send(queued: string[], write: (text: string) => void): void {
    const news = lost > 0
      ? [
        `(log lines lost while stdout could not be written: ${lost})`,
        ...queued,
      ]
      : queued;
    try {
      write(news.join("\n"));
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
  return { log, print, flush };
}

/**
 * `console.log`, with a refused write turned into {@linkcode OutputRefused}
 * (a closed stdout it drops by itself). A server's first and last lines go
 * this way, not through {@linkcode printLine}: measured with Deno 2.9.6, a
 * chat server whose first write to stdout was `Deno.stdout.writeSync` kept
 * its heap after a crowd of 5000 logins (17 KiB per idle client 20 s later,
 * against 9.5 with `console.log` first; 3 fresh runs each, the bench's idle
 * workload). Why, we do not know; the batches that follow are written with
 * `printLine` either way, at no cost.
 */
function consoleLog(line: string): void {
  try {
    console.log(line);
  } catch (error) {
    throw outputFailure(error);
  }
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
