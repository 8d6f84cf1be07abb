/**
 * UDP date/time client (lab part 1, Q3): asks the time server for the date
 * or the time, prints each answer, waits a random 1-2 s, and asks again,
 * until --count requests, Ctrl+C, or a line `q` on stdin.
 *
 * Run:  deno run --allow-net --unstable-net udp/time_client.ts   (or: deno task udp-time-client)
 * It needs the server running (deno task udp-time-server), or run both with
 * deno task udp-time. Try: deno task udp-time-client --count 3 --request send_time
 *
 *     C: SEND_TIME    S: 09:26:53
 *     C: SEND_DATE    (lost: no answer within --timeout)
 *     C: SEND_DATE    S: 2025-03-14       (the same request, sent again)
 *
 * UDP may lose a request or its answer, so a request unanswered within
 * --timeout is sent again, at most 3 times in all; then it is reported and
 * the loop goes on. Exit code: 1 (and one sentence on stderr) when requests
 * were given up and none was ever answered: the server is not running or
 * cannot be reached. Otherwise 0, Ctrl+C and `q` included. The end of stdin
 * does not stop the client, so it also runs with no terminal, and a stdin
 * line over 1024 bytes is ignored (with a note), not the lines after it. A
 * closed stdout stops it, exit 0: `deno task udp-time-client | head -n 5`
 * ends after five lines.
 *
 * @module
 */

import {
  clientFlags,
  FatalError,
  parseFlags,
  printLine,
  runMain,
  timeoutFlag,
  UsageError,
} from "../lib/cli.ts";
import { errnoName } from "../lib/errors.ts";
import { LineReader, LineTooLongError, streamSource } from "../lib/lines.ts";
import { formatAddr, onShutdown } from "../lib/net.ts";
import { escapeControls } from "../lib/printable.ts";
import {
  addrText,
  decodeUtf8,
  Inbox,
  lookupServer,
  MAX_SHOWN_CHARS,
  openClientSocket,
  sendFailure,
  showDatagram,
} from "./datagram.ts";

/** The two requests the server understands. */
export const REQUESTS = ["SEND_DATE", "SEND_TIME"] as const;

/** Tries per request: the first one and 2 more. */
export const ATTEMPTS = 3;

/** The script's flags, with the contract's defaults (tools/pair.ts shows them too). */
export const COMMAND = {
  name: "udp-time-client",
  summary: "UDP date/time client: asks for the date or time again and again.",
  flags: {
    ...clientFlags(12001),
    request: {
      kind: "string",
      placeholder: "R",
      choices: REQUESTS,
      help:
        "always send R (SEND_DATE or SEND_TIME); default: either, at random",
    },
    count: {
      kind: "integer",
      placeholder: "N",
      min: 1,
      help: "stop after N requests (default: Ctrl+C, or q and Enter)",
    },
    "min-delay": {
      kind: "number",
      placeholder: "S",
      default: 1,
      max: 3600,
      help: "shortest wait between requests, in seconds (default 1)",
    },
    "max-delay": {
      kind: "number",
      placeholder: "S",
      default: 2,
      max: 3600,
      help: "longest wait between requests, in seconds (default 2)",
    },
    ...timeoutFlag(1, "each answer before sending again"),
  },
} as const;

/** What to ask, how often, and how long to wait (times in seconds). */
export interface TimeClientOptions {
  host: string;
  port: number;
  /** Always this request; default: a random one each time. */
  request?: typeof REQUESTS[number];
  /** Stop after this many requests; default: only `q` or the signal stops. */
  count?: number;
  minDelay: number;
  maxDelay: number;
  /** Wait for one answer before sending the request again. */
  timeout: number;
}

/** What the client takes from the world; tests replace it. */
export interface TimeClientDeps {
  /** A number in [0, 1) (default `Math.random`): picks requests and delays. */
  random?: () => number;
  /** Wait `ms` between requests, or less if `signal` is aborted. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Lines the person types: `q` stops the client; their end does not. */
  input?: AsyncIterable<string>;
  /** Aborted on Ctrl+C: the client stops at once. */
  signal?: AbortSignal;
  /** Each line of output (default `console.log`). */
  log?: (line: string) => void;
}

/** How a run went. */
export interface TimeClientSummary {
  /** Requests sent (retries not counted). */
  requests: number;
  answered: number;
  /** Given up after {@linkcode ATTEMPTS} tries. */
  unanswered: number;
}

/**
 * Ask, print, wait, ask again, until `count`, `q` or `signal`. Throws
 * {@linkcode FatalError} when requests went unanswered and none was answered.
 */
export async function runTimeClient(
  options: TimeClientOptions,
  deps: TimeClientDeps = {},
): Promise<TimeClientSummary> {
  const log = deps.log ?? console.log;
  const server = await lookupServer(options.host, options.port);
  const socket = openClientSocket(server);
  const inbox = new Inbox(socket, server, (other) => {
    log(`Ignored a datagram from ${addrText(other)}`);
  });
  const stop = new AbortController();
  const quit = () => stop.abort();
  deps.signal?.addEventListener("abort", quit);
  if (deps.signal?.aborted) quit();
  if (deps.input) void quitOnQ(deps.input, quit);
  const local = formatAddr(socket.addr as Deno.NetAddr);
  log(
    `Asking ${
      formatAddr(server)
    } from ${local} (Ctrl+C, or q and Enter, stops)`,
  );
  let summary: TimeClientSummary;
  try {
    const exchange = {
      socket,
      inbox,
      server,
      log,
      options,
      signal: stop.signal,
    };
    summary = await askRepeatedly(exchange, deps);
  } finally {
    deps.signal?.removeEventListener("abort", quit);
    socket.close();
    await inbox.done;
  }
  log(
    `Stopped: ${
      count(summary.requests, "request")
    }, ${summary.answered} answered`,
  );
  if (summary.unanswered > 0 && summary.answered === 0) {
    const where = formatAddr(server);
    throw new FatalError(
      `No answer from ${where} to any of ${
        count(summary.unanswered, "request")
      }, each sent ${ATTEMPTS} times (is the server running?)`,
    );
  }
  return summary;
}

/** `1 request`, `3 requests`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

interface Exchange {
  socket: Deno.DatagramConn;
  inbox: Inbox;
  server: Deno.NetAddr;
  log: (line: string) => void;
  options: TimeClientOptions;
  /** Aborted by Ctrl+C or `q`. */
  signal: AbortSignal;
}

/** One request after another, a random delay apart, until count or stop. */
async function askRepeatedly(
  exchange: Exchange,
  deps: TimeClientDeps,
): Promise<TimeClientSummary> {
  const { options, signal, log } = exchange;
  const random = deps.random ?? Math.random;
  const summary = { requests: 0, answered: 0, unanswered: 0 };
  while (summary.requests !== options.count && !signal.aborted) {
    if (summary.requests > 0) {
      const seconds = options.minDelay +
        random() * (options.maxDelay - options.minDelay);
      await (deps.sleep ?? sleep)(seconds * 1000, signal);
      if (signal.aborted) break;
    }
    const request = options.request ?? REQUESTS[random() < 0.5 ? 0 : 1];
    summary.requests++;
    const answer = await ask(request, exchange);
    if (signal.aborted) break;
    if (answer === null) summary.unanswered++;
    else summary.answered++;
    log(`${request} -> ${answer ?? `(no answer after ${ATTEMPTS} tries)`}`);
  }
  return summary;
}

/**
 * Send `request` and wait for its answer, up to {@linkcode ATTEMPTS} times.
 * The answer as printable text, or `null` when none came (or on stop).
 */
async function ask(
  request: string,
  exchange: Exchange,
): Promise<string | null> {
  const { socket, inbox, server, log, options, signal } = exchange;
  const datagram = new TextEncoder().encode(request);
  inbox.clear(); // a late answer to an earlier request is not this one's
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (attempt > 1) {
      log(
        `${request}: no answer within ${options.timeout} s, sending it again (try ${attempt} of ${ATTEMPTS})`,
      );
    }
    try {
      await socket.send(datagram, server);
    } catch (error) {
      throw sendFailure(error, server);
    }
    const deadline = Date.now() + options.timeout * 1000;
    while (true) {
      const answer = await inbox.next(deadline - Date.now(), signal);
      if (answer === null) break;
      const text = showAnswer(answer);
      if (!answersTheOther(request, text)) return text;
      log(`${request}: ignored ${text}, a late answer to the other request`);
    }
    if (signal.aborted) return null;
  }
  return null;
}

/**
 * Whether `answer` plainly answers the other request: a time for
 * SEND_DATE, a date for SEND_TIME. UDP answers carry no request number, so
 * an answer that comes after its request was given up (a slow server) may
 * meet the next request; one of the same kind cannot be told apart.
 */
function answersTheOther(request: string, answer: string): boolean {
  const other = request === "SEND_DATE"
    ? /^\d\d:\d\d:\d\d$/
    : /^\d{4}-\d\d-\d\d$/;
  return other.test(answer);
}

/** The answer as sent, unless it holds what a terminal must not print raw. */
function showAnswer(data: Uint8Array): string {
  const text = decodeUtf8(data);
  if (text === null || text.length > MAX_SHOWN_CHARS) return showDatagram(data);
  return escapeControls(text);
}

/** Call `quit` when a line is `q`; the end of the lines changes nothing. */
async function quitOnQ(lines: AsyncIterable<string>, quit: () => void) {
  try {
    for await (const line of lines) {
      if (line.trim().toLowerCase() === "q") return quit();
    }
  } catch (error) {
    // stdin cannot be read (the system says why): stop watching it; Ctrl+C
    // still works. Anything else is a bug, and crashes the client.
    if (errnoName(error) === undefined) throw error;
  }
}

/**
 * The lines typed on stdin. A line over 1024 bytes cannot be `q`: it is
 * skipped with a note, and the lines after it are read as usual.
 */
async function* stdinLines(
  log: (line: string) => void,
): AsyncIterable<string> {
  const reader = new LineReader(streamSource(Deno.stdin.readable));
  while (true) {
    let line: string | null;
    try {
      line = await reader.readLine();
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      log(`Ignored a line over ${error.limit} bytes on stdin`);
      await reader.skipLine();
      continue;
    }
    if (line === null) return;
    yield line;
  }
}

/** Resolve after `ms`, or as soon as `signal` is aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
    if (signal.aborted) done();
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  if (flags["min-delay"] > flags["max-delay"]) {
    throw new UsageError(
      `--min-delay (${flags["min-delay"]}) must not be more than --max-delay (${
        flags["max-delay"]
      })`,
    );
  }
  const stop = new AbortController();
  onShutdown(() => stop.abort()); // Ctrl+C: finish cleanly, exit 0
  await runTimeClient({
    host: flags.host,
    port: flags.port,
    request: flags.request as TimeClientOptions["request"],
    count: flags.count,
    minDelay: flags["min-delay"],
    maxDelay: flags["max-delay"],
    timeout: flags.timeout,
  }, {
    signal: stop.signal,
    input: stdinLines(console.log),
    // `| head -n 5` has its lines: stop then, not ask on for nobody.
    log: printLine,
  });
}

if (import.meta.main) await runMain(main, COMMAND);
