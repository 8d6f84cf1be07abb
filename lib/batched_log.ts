/**
 * A server's log: it writes the lines logged close together (within about
 * two milliseconds) to stdout in one write, and a stdout that cannot be
 * written, or is not being read, never stops the server.
 *
 * Why it exists: a busy server logs a line per request or message, and
 * `console.log` makes a system call per line, which costs more than
 * computing the answer. The lines wait for a zero-delay timer, which in Deno
 * fires about two milliseconds later (lib/outbox.ts), so the lines of a few
 * turns may share one write and a person still sees each one at once.
 *
 * A log that cannot be written is no reason to stop serving a classroom.
 * The writes do not wait in the server's event loop: a stdout nobody is
 * reading for now (`deno task chat-server | less` left on its first page,
 * a terminal paused with Ctrl+S) would otherwise freeze the whole server
 * once the pipe or the terminal's buffer is full. While a write waits, the
 * lines logged meanwhile wait for the next one, up to
 * {@linkcode MAX_WAITING_BYTES}; past that they are dropped and counted. A
 * closed stdout (nobody will ever read) drops the lines quietly. A refused
 * write (`> log.txt` on a disk that has filled up) is said once on stderr,
 * and its lines are dropped and counted. Once a write works again, the log
 * says how many lines it lost.
 *
 * @example
 * ```ts
 * import { batchedStdout } from "./batched_log.ts";
 * const stdout = batchedStdout();
 * stdout.print("UDP time server listening on 0.0.0.0:12001"); // at once
 * stdout.log("127.0.0.1:50000 sent \"SEND_TIME\" -> 09:26:53");
 * stdout.log("127.0.0.1:50001 sent \"SEND_DATE\" -> 2025-03-14");
 * await stdout.close("UDP time server stopped"); // the two lines, then this one
 * ```
 *
 * @module
 */

import { OutputClosed, outputFailure, OutputRefused } from "./cli.ts";
import { errnoName } from "./errors.ts";
import { writeAll } from "./lines.ts";

/**
 * Most bytes of log lines kept waiting while stdout takes none: some ten
 * thousand lines. Past it, lines are dropped and counted.
 */
export const MAX_WAITING_BYTES = 1 << 20;

/** Longest {@linkcode BatchedLog.close} waits for stdout to take the last lines. */
export const CLOSE_WAIT_MS = 1000;

/** The log of {@linkcode batchedStdout}. */
export interface BatchedLog {
  /** Queue one line (without `\n`); it is written when the timer fires. */
  log(line: string): void;
  /**
   * Write `line` at once (a server's first line, which a script starting
   * the server waits for); after any lines still waiting, if there are.
   */
  print(line: string): void;
  /**
   * Write what waits and then `line` (a server's last). Resolves once they
   * are written, or after {@linkcode CLOSE_WAIT_MS} if stdout does not take
   * them: a stopping server does not wait for a reader that may never come.
   */
  close(line: string): Promise<void>;
}

/** Where {@linkcode batchedStdout} writes; tests give their own. */
export interface LogOutput {
  /**
   * Write lines joined by `\n` (default: `Deno.stdout.write`, which does
   * not hold up the event loop). Rejects with `OutputClosed` or
   * `OutputRefused` when stdout cannot be written.
   */
  write(text: string): Promise<void>;
  /** Write one line now (default {@linkcode consoleLog}). */
  print(line: string): void;
  /** Say on stderr that the log cannot be written (default `console.error`). */
  warn(line: string): void;
}

/**
 * Like `console.log`, but the lines logged before a zero-delay timer fires
 * are written to stdout in one write, the server never waits for stdout,
 * and a write that fails does not throw (see the module's text).
 *
 * @example
 * ```ts
 * import { batchedStdout } from "./batched_log.ts";
 * const { log, close } = batchedStdout();
 * log("first");
 * log("second");
 * await close("stopped");
 * ```
 */
export function batchedStdout(
  output: LogOutput = {
    write: writeStdout,
    print: consoleLog,
    warn: warnQuietly,
  },
): BatchedLog {
  let waiting: string[] = [];
  let waitingBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writing: Promise<void> | undefined; // the write in flight
  let lost = 0; // lines dropped since the last write that worked
  let refused = false; // said on stderr; said again after a write works
  let closed = false; // nobody reads: drop everything

  /** Queue a line, or drop and count it if too much waits (`always`: never). */
  function queue(line: string, always = false): void {
    if (closed) return;
    if (!always && waitingBytes + line.length >= MAX_WAITING_BYTES) {
      lost++;
      return;
    }
    waiting.push(line);
    waitingBytes += line.length + 1;
  }

  function log(line: string): void {
    queue(line);
    if (waiting.length === 1 && writing === undefined) {
      timer = setTimeout(flush, 0);
    }
  }

  /** Start writing what waits, unless a write is in flight (it will). */
  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    if (writing !== undefined || waiting.length === 0) return;
    const count = waiting.length;
    const reported = lost; // dropped before this write, said in it
    const text = [
      ...(reported > 0
        ? [`(log lines lost while stdout could not be written: ${reported})`]
        : []),
      ...waiting,
    ].join("\n");
    waiting = [];
    waitingBytes = 0;
    writing = output.write(text).then(
      () => {
        lost -= reported;
        refused = false;
      },
      (error) => failed(error, count),
    ).finally(() => {
      writing = undefined;
      // What was logged meanwhile goes at the next tick of the timer, with
      // what comes until then: one write per tick at most, as before.
      if (waiting.length > 0) timer = setTimeout(flush, 0);
    });
  }

  /** A write failed: note it, or rethrow a bug (which stops the server). */
  function failed(error: unknown, count: number): void {
    if (error instanceof OutputClosed) {
      closed = true; // nobody reads: no news, ever
      waiting = [];
      waitingBytes = 0;
      return;
    }
    if (!(error instanceof OutputRefused)) throw error; // a bug
    // "Cannot write the output: no space left on device (...)", once.
    if (!refused) {
      output.warn(`${error.message}; the server goes on without its log`);
    }
    refused = true;
    lost += count;
  }

  function print(line: string): void {
    if (writing !== undefined || waiting.length > 0 || lost > 0 || closed) {
      queue(line, true);
      return flush();
    }
    try {
      output.print(line);
      refused = false;
    } catch (error) {
      failed(error, 1);
    }
  }

  async function close(line: string): Promise<void> {
    queue(line, true);
    let giveUp: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((done) =>
      giveUp = setTimeout(() => done("late"), CLOSE_WAIT_MS)
    );
    try {
      while (true) {
        flush(); // what waits, unless a write is in flight
        if (writing === undefined) return; // all written (or dropped)
        if (await Promise.race([writing, late]) === "late") return;
      }
    } finally {
      clearTimeout(giveUp);
    }
  }

  return { log, print, close };
}

const encoder = new TextEncoder();

/** Write `text` and a newline to stdout, without blocking the event loop. */
async function writeStdout(text: string): Promise<void> {
  try {
    await writeAll(Deno.stdout, encoder.encode(`${text}\n`));
  } catch (error) {
    throw outputFailure(error);
  }
}

/**
 * `console.log`, with a refused write turned into {@linkcode OutputRefused}
 * (a closed stdout it drops by itself). A server's first line goes this way:
 * measured with Deno 2.9.6, a chat server whose first write to stdout was
 * `Deno.stdout.writeSync` kept its heap after a crowd of 5000 logins (17 KiB
 * per idle client 20 s later, against 9.5 with `console.log` first; 3 fresh
 * runs each, the bench's idle workload). Why, we do not know.
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
