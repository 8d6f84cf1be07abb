/**
 * TCP calculator server (lab part 2, Q6; many clients at once, Q8): each
 * client sends its name, then expressions; every line gets one answer line,
 * and the server prints each request with the client's name.
 *
 * Run:  deno run --allow-net tcp/calc_server.ts   (or: deno task calc-server)
 * Try:  deno task calc-client, or by hand: nc 127.0.0.1 12003
 *
 *     C: Adarsh          S: Hello Adarsh
 *     C: 12 + 13         S: 25
 *     C: 12(10           S: ERROR invalid expression, expected <number> <op> <number>
 *     C: 1 / 0           S: ERROR division by zero
 *     C: q               S: Session ended
 *                           (the server closes the connection)
 *
 * The protocol is stateful (Q7): the server remembers each client's name for
 * the whole session. Each connection is served by its own async task (Q8),
 * so one client waiting to type never delays the others.
 *
 * @module
 */

import { batchedStdout } from "../lib/batched_log.ts";
import {
  maxClientsFlag,
  parseFlags,
  runMain,
  serverFlags,
} from "../lib/cli.ts";
import { answerExpression, trimWhitespace } from "../lib/expression.ts";
import { isConnectionLost } from "../lib/errors.ts";
import {
  encodeLine,
  LineReader,
  LineTooLongError,
  writeAll,
} from "../lib/lines.ts";
import { formatAddr, listenTcp, noDelay, onShutdown } from "../lib/net.ts";
import { escapeControls, quote } from "../lib/printable.ts";
import {
  closeQuietly,
  reportBug,
  serveConnections,
  type ServeOptions,
  type TcpServer,
} from "../lib/tcp_server.ts";

/** The port of the contract's table (12003/tcp). */
export const DEFAULT_PORT = 12003;

/**
 * Most sessions at once: past it a client gets `ERROR server full`, so that
 * a runaway loop of connections (a student's client that never closes) is
 * told no before the server runs out of file descriptors for everyone.
 */
export const DEFAULT_MAX_CLIENTS = 4096;

/** Longest name, in characters (code points). */
export const MAX_NAME_CHARS = 32;

/** How long to wait for a client to close after our last answer. */
const LINGER_MS = 2000;

const BAD_NAME =
  `ERROR invalid name (1-${MAX_NAME_CHARS} characters, no control characters)`;
// C0 controls, DEL and C1 controls: what could move a cursor or change a terminal.
// deno-lint-ignore no-control-regex
const CONTROL_CHARS = /[\x00-\x1f\x7f-\x9f]/;

const COMMAND = {
  name: "calc-server",
  summary:
    "TCP calculator server: one session per client, one answer per line.",
  flags: {
    ...serverFlags(DEFAULT_PORT),
    ...maxClientsFlag(DEFAULT_MAX_CLIENTS, "sessions"),
  },
} as const;

/** Where to listen, and where the log lines go (tests collect them). */
export interface CalcServerOptions {
  hostname: string;
  port: number;
  /** One line per event (default `console.log`). */
  log?: (line: string) => void;
  /** A session that fails with a bug: default crash (tests); the script reports it. */
  onBug?: ServeOptions["onBug"];
  /** Most sessions at once (default {@linkcode DEFAULT_MAX_CLIENTS}). */
  maxClients?: number;
}

/** A running calculator server. */
export type CalcServer = TcpServer;

/** Listen, and run a session for every client until {@linkcode CalcServer.close}. */
export function startCalcServer(options: CalcServerOptions): CalcServer {
  const log = options.log ?? console.log;
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  const listener = listenTcp(options.hostname, options.port);
  let sessions = 0; // under way; the refused are not counted
  async function serve(conn: Deno.TcpConn): Promise<void> {
    if (sessions >= maxClients) return await refuseFull(conn, log);
    sessions++;
    try {
      await runSession(conn, log);
    } finally {
      sessions--;
    }
  }
  // Each connection gets its own task, and the loop goes straight back to
  // accept the next client (lib/tcp_server.ts).
  return serveConnections(
    listener,
    serve,
    {
      log,
      onBug: options.onBug,
    },
  );
}

/**
 * One client too many: its first line, whatever it is, gets this answer,
 * sent at once, and the server closes.
 *
 *     (any line)  -> ERROR server full    closes
 */
async function refuseFull(
  conn: Deno.TcpConn,
  log: (line: string) => void,
): Promise<void> {
  log(`${formatAddr(conn.remoteAddr)} refused: server full`);
  try {
    await writeAll(conn, encodeLine("ERROR server full"));
    await hangUp(conn);
  } catch (error) {
    if (!isConnectionLost(error)) throw error;
  }
}

/** What the server knows about one client. */
interface Session {
  readonly client: string; // its address, host:port
  name: string | null; // as the log shows it; null until its first line
  ended: boolean; // "Session ended" has been printed
  readonly log: (line: string) => void;
}

/** One answer line, and whether the server closes after sending it. */
interface Reply {
  text: string;
  last: boolean;
}

/**
 * One client's session, from accept to close. A client that disconnects or
 * resets ends its own session only; anything else thrown is a bug.
 */
async function runSession(
  conn: Deno.TcpConn,
  log: (line: string) => void,
): Promise<void> {
  noDelay(conn); // each answer leaves at once: the client waits for it
  const session: Session = {
    client: formatAddr(conn.remoteAddr),
    name: null,
    ended: false,
    log,
  };
  log(`Connection from ${session.client}`);
  try {
    await converse(conn, session);
    await hangUp(conn);
  } catch (error) {
    if (!isConnectionLost(error)) throw error;
  } finally {
    closeQuietly(conn);
    endSession(session, "disconnected");
  }
}

/**
 * Answer each line with one line until `q`, a refused name, a line over the
 * limit, or the end of the stream. Lines that arrived together (a client may
 * send several before reading) are answered with one write: fewer system
 * calls and packets, same bytes.
 *
 *     any line:  (1025 bytes)  -> ERROR line too long    closes
 */
async function converse(conn: Deno.TcpConn, session: Session): Promise<void> {
  const lines = new LineReader(conn);
  let answers: string[] = [];
  while (true) {
    let line: string | null;
    try {
      line = await lines.readLine();
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      answers.push(refuseLongLine(session)); // the client's mistake: answered
      break;
    }
    if (line === null) break; // the client closed its side
    const reply = answerLine(session, line);
    answers.push(reply.text);
    if (reply.last) break;
    if (!lines.hasBufferedLine()) { // nothing more to answer for now
      await writeAll(conn, encodeLines(answers));
      answers = [];
    }
  }
  if (answers.length > 0) await writeAll(conn, encodeLines(answers));
}

/** Lines as the bytes of one write. */
function encodeLines(lines: string[]): Uint8Array {
  return encodeLine(lines.join("\n"));
}

/**
 * The answer to one line of the session.
 *
 *     first line:  Adarsh        -> Hello Adarsh
 *                  (empty)       -> ERROR invalid name (...)      closes
 *     then:        12 + 13       -> 25
 *                  q (or Q)      -> Session ended                 closes
 */
function answerLine(session: Session, line: string): Reply {
  const text = trimWhitespace(line);
  if (session.name === null) return greet(session, text);
  if (text.toLowerCase() === "q") {
    endSession(session);
    return { text: "Session ended", last: true };
  }
  const answer = answerExpression(text);
  session.log(`${session.name}: ${quote(text)} -> ${answer}`);
  return { text: answer, last: false };
}

/** A line over the limit ends the session; the answer says why. */
function refuseLongLine(session: Session): string {
  session.log(`${session.name ?? session.client}: line too long`);
  endSession(session, "line too long");
  return "ERROR line too long";
}

/** The first line: the client's name, 1-32 characters, no control characters. */
function greet(session: Session, name: string): Reply {
  const length = [...name].length; // code points, as a person counts characters
  if (length < 1 || length > MAX_NAME_CHARS || CONTROL_CHARS.test(name)) {
    session.log(`${session.client}: refused the name ${quote(name)}`);
    session.ended = true; // that line says how it ended
    return { text: BAD_NAME, last: true };
  }
  // Kept as the log shows it: a U+202E in it would turn log lines around.
  session.name = escapeControls(name);
  session.log(`${session.client} is ${session.name}`);
  return { text: `Hello ${name}`, last: false };
}

/**
 * Print `<name>: Session ended` once (`<address>: Session ended` for a client
 * that left before it sent a name). A refused name has said its own end.
 */
function endSession(session: Session, why?: string): void {
  if (session.ended) return;
  session.ended = true;
  const who = session.name ?? session.client;
  session.log(`${who}: Session ended${why ? ` (${why})` : ""}`);
}

/**
 * Close after the last answer. Closing with input still unread makes some
 * systems reset the connection, which can destroy that answer before the
 * client reads it. So: say "no more from me" (FIN), then drop whatever the
 * client still sends until it closes too, for at most LINGER_MS.
 */
async function hangUp(conn: Deno.TcpConn): Promise<void> {
  await conn.closeWrite();
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  try {
    const scratch = new Uint8Array(4096);
    while (await conn.read(scratch) !== null) {
      // dropped
    }
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const stdout = batchedStdout();
  const server = startCalcServer({
    hostname: flags.host,
    port: flags.port,
    log: stdout.log,
    onBug: reportBug,
    maxClients: flags["max-clients"],
  });
  // Ready for Ctrl+C or SIGTERM before saying so: a script that reads the
  // first line may stop us right after it.
  const stopped = new Promise((stop) => onShutdown(stop));
  stdout.print(`Calculator server listening on ${formatAddr(server.addr)}`);
  await stopped;
  await server.close();
  await stdout.close("Calculator server stopped");
}

if (import.meta.main) await runMain(main, COMMAND);
