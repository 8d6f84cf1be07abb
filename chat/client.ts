/**
 * Chat window (part 3, Q8): log in with a unique name, then every line you
 * type reaches everyone else in the room (the protocol: chat/README.md).
 *
 * Run:   deno run --allow-net chat/client.ts [--host 127.0.0.1] [--port 5000] [--name ann]
 *        deno task chat-client
 * Type:  a line to say it, /who to list the room, /msg <name> <text> to
 *        whisper, quit or /quit (or Ctrl+D) to leave.
 *
 * ```
 * C: LOGIN ann             S: WELCOME ann         (name taken? S: ERROR name taken)
 * C: SAY hi all            (shown to the others as "ann: hi all")
 * S: MSG bob hello         shown as "bob: hello"
 * S: JOINED cat            shown as "cat has joined the chat."
 * C: QUIT                  S: BYE
 * ```
 *
 * Exit codes: 0 after leaving (quit, or end of input, or a closed stdout:
 * `| head -n 2` has its lines, and the window leaves the room quietly), 1
 * when the server is not running, goes away, does not answer a login or a
 * QUIT within --timeout seconds (default 10), or does not take a typed line
 * within them (it stopped reading), or when stdin cannot be read; 2 for bad
 * flags.
 *
 * @module
 */

import {
  clientFlags,
  FatalError,
  OutputClosed,
  parseFlags,
  runMain,
  timeoutFlag,
} from "../lib/cli.ts";
import { isConnectionLost } from "../lib/errors.ts";
import {
  encodeLine,
  LineReader,
  LineTooLongError,
  MAX_LINE_BYTES,
  writeLine,
} from "../lib/lines.ts";
import {
  type AnswerLimit,
  answerWithin,
  connectTcp,
  formatAddr,
} from "../lib/net.ts";
import { escapeControls, quote } from "../lib/printable.ts";
import { type ChatWindow, openWindow } from "./window.ts";

const DEFAULT_PORT = 5000;

/**
 * Longest line taken from the server. Most are short, but `USERS` names
 * everyone in the room: 25 bytes a name, so a room of 20,000 fits.
 */
const MAX_SERVER_LINE_BYTES = 512 * 1024;

const COMMAND = {
  name: "chat-client",
  summary: "Chat window: log in to the chat server and talk to the room.",
  flags: {
    ...clientFlags(DEFAULT_PORT),
    ...timeoutFlag(
      10,
      "the server to take the connection, answer a login or a quit, or take a typed line",
    ),
    name: {
      kind: "string",
      placeholder: "NAME",
      help:
        "login name (default: asked, and asked again if refused; a refused --name ends a scripted client)",
    },
  },
} as const;

const HELP = "Type to talk; /who lists the room, /msg <name> <text> " +
  "whispers, quit or /quit leaves.";

async function main(): Promise<number> {
  const flags = parseFlags(COMMAND);
  const conn = await connectTcp(flags.host, flags.port, {
    timeout: flags.timeout,
  });
  const window = openWindow();
  try {
    return await chat(conn, window, flags);
  } finally {
    window.close();
    conn.close();
  }
}

/**
 * The whole session on an open connection: log in, then talk. How it ends:
 *
 *     input ends before a name is taken    QUIT, exit 0
 *     the login refused (server full ...)  "The chat server refused: ...", exit 1
 *     not a chat server's answer           "... answered the login with ...", exit 1
 *     --name refused, input not typed      "The chat server refused --name ...: ...", exit 1
 *     the server says BYE                  exit 0
 *     the server closes the connection     "The chat server closed the connection", exit 1
 *     quit, /quit, Ctrl+D, end of input    QUIT, then BYE (or the close) within --timeout:
 *                                          exit 0, else "No answer from ...", exit 1
 *     stdout closed (`| head`)             QUIT, then exit 0 quietly whatever the server does
 *     a typed line not taken in time       "No answer from ...", exit 1
 *     a server line over 512 KiB           "The chat server sent a line longer than ...", exit 1
 *     stdin that cannot be read            "Cannot read the input: ...", exit 1
 *
 * Saying QUIT lets the room hear at once that the person left. The
 * deadlines (--timeout, as for a login) are there because a server that
 * stops reading would otherwise hold the window forever; its "no answer"
 * is the same sentence as for an unanswered login.
 */
async function chat(
  conn: Deno.TcpConn,
  window: ChatWindow,
  options: { name?: string; timeout: number },
): Promise<number> {
  const server = new ServerLines(conn, options.timeout);
  const loggedIn = await logIn(conn, server, window, options.name);
  if (loggedIn === undefined) return await leave(conn, server);
  const output = watchOutput(window);
  output.window.show(`Welcome to the chat, ${loggedIn}. ${HELP}`);
  const reading = showIncoming(server, output.window);
  const leaving = new AbortController(); // then nothing typed is sent
  const typing = sendTyped(conn, server, output.window, leaving.signal)
    .then(
      () => "quit" as const,
      (error) => {
        if (!isConnectionLost(error)) throw error;
        return reading; // the reader says how the connection ended
      },
    );
  const end = await Promise.race([reading, typing, output.closed]);
  if (end === "BYE") return 0;
  if (end === null) {
    throw new FatalError("The chat server closed the connection");
  }
  leaving.abort();
  if (end === "output closed") window.close();
  // The session is ending: a typed line that the server has still not
  // taken by its deadline is no news now. A bug still is (crashes loudly).
  typing.catch((error) => {
    if (!(error instanceof FatalError)) throw error;
  });
  try {
    // QUIT, the lines already on their way (still shown), then BYE or the
    // close without it: either way the server has let the person go.
    await server.within(sayQuit(conn).then(() => reading));
  } catch (error) {
    if (end === "quit" || !(error instanceof FatalError)) throw error;
  }
  if (end === "output closed") throw new OutputClosed("stdout is closed");
  return 0;
}

/**
 * `window` for the time in the room, whose `show` does not throw
 * `OutputClosed` into the middle of reading or typing: `closed` resolves
 * instead, and later lines are not shown (nobody would read them).
 */
function watchOutput(
  window: ChatWindow,
): { window: ChatWindow; closed: Promise<"output closed"> } {
  const closed = Promise.withResolvers<"output closed">();
  let open = true;
  return {
    closed: closed.promise,
    window: {
      keyboard: window.keyboard,
      ask: (prompt) => window.ask(prompt),
      close: () => window.close(),
      show(line: string): void {
        if (!open) return;
        try {
          window.show(line);
        } catch (error) {
          if (!(error instanceof OutputClosed)) throw error;
          open = false;
          closed.resolve("output closed");
        }
      },
    },
  };
}

/**
 * Show the server's lines until its `BYE` (returned) or the end of the
 * connection (`null`).
 */
async function showIncoming(
  server: ServerLines,
  window: ChatWindow,
): Promise<"BYE" | null> {
  while (true) {
    const line = await server.next();
    if (line === null || line === "BYE") return line;
    const shown = describe(line);
    if (shown !== undefined) window.show(shown);
  }
}

/**
 * Ask for a name until the server accepts one. Returns the name, or
 * `undefined` when the input ended first. A refused `--name` is asked again
 * of a person at a terminal; a script's next input lines are its messages,
 * not names to try, so there it ends the client.
 */
async function logIn(
  conn: Deno.Conn,
  server: ServerLines,
  window: ChatWindow,
  flagName?: string,
): Promise<string | undefined> {
  let name = flagName;
  let fromFlag = Boolean(flagName?.trim());
  while (true) {
    // No name yet, or an empty one (`--name ""`, or Enter): ask.
    name = name?.trim() || (await window.ask("Your name: "))?.trim();
    if (name === undefined) return undefined;
    if (name === "") continue;
    // What follows a newline would reach the server as a command of its own
    // (`--name $'ann\nSAY hi'`). Typed names cannot hold one; --name can.
    if (name.includes("\n")) throw new FatalError("The name must be one line");
    await writeLine(conn, `LOGIN ${name}`);
    const answer = await server.answer();
    if (answer === null) {
      throw new FatalError("The chat server closed the connection");
    }
    if (answer.startsWith("WELCOME")) return name;
    if (!answer.startsWith("ERROR")) {
      const at = formatAddr(conn.remoteAddr as Deno.NetAddr);
      throw new FatalError(
        `${at} answered the login with ${
          quote(answer)
        } (is it the chat server?)`,
      );
    }
    const why = reason(answer);
    // "name taken", "invalid name (...)": try another. Anything else (server
    // full, login timeout, shutting down) ends the session.
    if (!/name/i.test(why)) {
      throw new FatalError(`The chat server refused: ${why}`);
    }
    if (fromFlag && !window.keyboard) {
      throw new FatalError(
        `The chat server refused --name ${escapeControls(name)}: ${why}`,
      );
    }
    window.show(`${why}: choose another name.`);
    name = undefined;
    fromFlag = false;
  }
}

/** Before logging in: say QUIT and wait for BYE (or the end). */
async function leave(conn: Deno.Conn, server: ServerLines): Promise<number> {
  await sayQuit(conn);
  while (true) {
    const line = await server.answer();
    if (line === null || line === "BYE") return 0;
  }
}

/**
 * Send `QUIT`. A connection lost already is no error here: the reader finds
 * its end, and the person was leaving anyway.
 */
async function sayQuit(conn: Deno.Conn): Promise<void> {
  try {
    await writeLine(conn, "QUIT");
  } catch (error) {
    if (!isConnectionLost(error)) throw error;
  }
}

/**
 * Send what the person types until they quit or their input ends, or the
 * session is `leaving` for another reason. Each line must be taken by the
 * server within the timeout.
 */
async function sendTyped(
  conn: Deno.Conn,
  server: ServerLines,
  window: ChatWindow,
  leaving: AbortSignal,
): Promise<void> {
  for (let typed; (typed = await window.ask("> ")) !== null;) {
    if (leaving.aborted) return; // lines read before it: not sent
    const action = actionFor(typed);
    if (action === "quit") return;
    if (action === undefined) continue;
    if ("hint" in action) window.show(action.hint);
    else await server.within(writeLine(conn, action.send));
  }
}

/** What a typed line asks for: a protocol line, a hint, leaving, or nothing. */
export type Action = { send: string } | { hint: string } | "quit" | undefined;

/**
 * What to do with a typed line.
 *
 * ```
 * "hello"            -> { send: "SAY hello" }
 * "/msg bob psst"    -> { send: "TELL bob psst" }
 * "/who"             -> { send: "WHO" }
 * "quit", "/quit"    -> "quit"
 * "/msg bob"         -> { hint: "Usage: /msg <name> <text>" }
 * "/dance"           -> { hint: "Unknown command /dance. Type to talk; ..." }
 * (over 1024 bytes)  -> { hint: "Not sent: the line is longer than ..." }
 * ""                 -> undefined (nothing is sent)
 * ```
 */
export function actionFor(typed: string): Action {
  const text = typed.trim();
  if (text === "") return undefined;
  const lower = text.toLowerCase();
  if (lower === "quit" || lower === "/quit") return "quit";
  if (lower === "/who") return { send: "WHO" };
  const msg = /^\/msg\s+(\S+)\s+(.*\S)/i.exec(text);
  if (/^\/msg(\s|$)/i.test(text) && !msg) {
    return { hint: "Usage: /msg <name> <text>" };
  }
  if (text.startsWith("/") && !msg) {
    return { hint: `Unknown command ${text.split(/\s/)[0]}. ${HELP}` };
  }
  const line = msg ? `TELL ${msg[1]} ${msg[2]}` : `SAY ${typed}`;
  // The server closes the connection on a longer line: say so instead.
  const bytes = encodeLine(line).length - 1; // without its "\n"
  if (bytes > MAX_LINE_BYTES) {
    return {
      hint:
        `Not sent: the line is longer than ${MAX_LINE_BYTES} bytes (${bytes} with the command)`,
    };
  }
  return { send: line };
}

/**
 * How a server line is shown to a person (`undefined`: not shown). Text
 * from the network is passed through {@linkcode escapeControls}.
 *
 * ```
 * JOINED cat         -> cat has joined the chat.
 * LEFT cat           -> cat has left the chat.
 * MSG bob hi         -> bob: hi
 * PRIVATE bob psst   -> bob (private): psst
 * USERS ann bob      -> In the room: ann, bob
 * ERROR no such user -> Error: no such user
 * ```
 */
export function describe(line: string): string | undefined {
  const space = line.indexOf(" ");
  const word = space < 0 ? line : line.slice(0, space);
  // Only a person reads this window: emoji joined with U+200D stay whole.
  const rest = escapeControls(space < 0 ? "" : line.slice(space + 1), {
    keepJoiner: true,
  });
  const gap = rest.indexOf(" ");
  const from = gap < 0 ? rest : rest.slice(0, gap);
  const text = gap < 0 ? "" : rest.slice(gap + 1);
  switch (word) {
    case "JOINED":
      return `${rest} has joined the chat.`;
    case "LEFT":
      return `${rest} has left the chat.`;
    case "MSG":
      return `${from}: ${text}`;
    case "PRIVATE":
      return `${from} (private): ${text}`;
    case "USERS":
      return `In the room: ${rest.split(" ").join(", ")}`;
    case "ERROR":
      return `Error: ${rest}`;
    case "WELCOME":
    case "BYE":
      return undefined;
    default:
      return escapeControls(line);
  }
}

/** `ERROR name taken` -> `Name taken`. */
function reason(answer: string): string {
  const text = escapeControls(answer.replace(/^ERROR\s*/, "")) || "refused";
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The server's lines; `null` once it has closed (or reset) the connection. */
class ServerLines {
  readonly #reader: LineReader;
  readonly #limit: AnswerLimit;

  /** `timeout`: seconds to wait for an {@linkcode ServerLines.answer}. */
  constructor(conn: Deno.TcpConn, timeout: number) {
    this.#reader = new LineReader(conn, { maxBytes: MAX_SERVER_LINE_BYTES });
    const server = formatAddr(conn.remoteAddr);
    this.#limit = { seconds: timeout, server, kind: "chat server" };
  }

  /**
   * The next line, which must come within the timeout: an answer the
   * client waits for while logging in. Once in the room, a server may stay
   * silent for as long as nobody talks, so {@linkcode ServerLines.next}
   * waits without one.
   */
  answer(): Promise<string | null> {
    return this.within(this.next());
  }

  /**
   * `work` (a write to the server, or a read of its lines), which must end
   * within the timeout, or a {@linkcode FatalError} that says the server did
   * not answer: a typed line it does not take, the wait for BYE after QUIT.
   */
  within<T>(work: Promise<T>): Promise<T> {
    return answerWithin(work, this.#limit);
  }

  async next(): Promise<string | null> {
    try {
      return await this.#reader.readLine();
    } catch (error) {
      if (isConnectionLost(error)) return null;
      if (error instanceof LineTooLongError) {
        throw new FatalError(
          `The chat server sent a line longer than ${MAX_SERVER_LINE_BYTES} bytes`,
        );
      }
      throw error;
    }
  }
}

if (import.meta.main) await runMain(main, COMMAND);
