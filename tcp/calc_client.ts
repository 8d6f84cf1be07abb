/**
 * TCP calculator client (lab part 2, Q6): sends your name, then each
 * expression you type, and prints the server's answer. It checks every line
 * first with the server's own parser (lib/expression.ts): a malformed one
 * gets a warning and is not sent.
 *
 * Run:  deno run --allow-net tcp/calc_client.ts [--name Ada]   (or: deno task calc-client)
 * It needs the server running: deno task calc-server. Scripted:
 *       printf '12 + 13\nq\n' | deno task calc-client --name Ada
 *
 *     C: Ada             S: Hello Ada
 *     C: 12 + 13         S: 25
 *        12(10              (warned here, never sent)
 *     C: 1 / 0           S: ERROR division by zero
 *     C: q               S: Session ended
 *
 * The end of input (Ctrl+D, or the end of piped stdin) quits like `q`. A
 * closed stdout (`| head -n 2`: nobody reads any more) ends the client
 * quietly, exit 0. An answer that does not come within --timeout seconds
 * (default 10), or a stdin that cannot be read, ends it with one sentence,
 * exit 1.
 *
 * @module
 */

import {
  clientFlags,
  FatalError,
  inputFailure,
  parseFlags,
  printLine,
  runMain,
  timeoutFlag,
  writeStdout,
} from "../lib/cli.ts";
import { parseExpression, trimWhitespace } from "../lib/expression.ts";
import { isConnectionLost } from "../lib/errors.ts";
import {
  encodeLine,
  LineReader,
  LineTooLongError,
  MAX_LINE_BYTES,
  streamSource,
  writeLine,
} from "../lib/lines.ts";
import { answerWithin, connectTcp, formatAddr } from "../lib/net.ts";
import { escapeControls, quote } from "../lib/printable.ts";

/** The prompt before each expression (the protocol: tcp/README.md, Q6). */
export const PROMPT = "Enter an expression (or 'q' to quit): ";

/** The prompt for the name when there is no --name. */
export const NAME_PROMPT = "Enter your name: ";

/** Longest line read from stdin (a typed line is checked against 1024 later). */
const MAX_TYPED_BYTES = 1 << 20;

const COMMAND = {
  name: "calc-client",
  summary: "TCP calculator client: sends your expressions, prints the answers.",
  flags: {
    ...clientFlags(12003),
    ...timeoutFlag(10, "the connection and each answer"),
    name: {
      kind: "string",
      placeholder: "NAME",
      help: "your name for the session (default: asked)",
    },
  },
} as const;

/** Reads what the person types, showing a prompt first. */
interface Keyboard {
  ask(prompt: string): Promise<string | null>;
}

/** The server's side of the session: one answer line for each line sent. */
interface Calculator {
  ask(line: string): Promise<string>;
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const conn = await connectTcp(flags.host, flags.port, {
    timeout: flags.timeout,
  });
  const server = formatAddr(conn.remoteAddr);
  const keyboard = openKeyboard();
  try {
    const name = flags.name ?? await keyboard.ask(NAME_PROMPT);
    if (name === null) return; // end of input before a name: nothing to end
    if (name.includes("\n")) throw new FatalError("The name must be one line");
    await session(calculator(conn, flags.timeout), name, keyboard);
  } catch (error) {
    throw failure(error, server);
  } finally {
    conn.close();
  }
}

/**
 * The session: the name, then one answer per expression, until `q` (or the
 * end of input, which sends `q` too).
 */
async function session(
  server: Calculator,
  name: string,
  keyboard: Keyboard,
): Promise<void> {
  const greeting = await server.ask(name);
  if (greeting.startsWith("ERROR")) {
    throw new FatalError(
      `The calculator server refused: ${escapeControls(greeting)}`,
    );
  }
  printLine(escapeControls(greeting));
  while (true) {
    const line = await keyboard.ask(PROMPT) ?? "q";
    const text = trimWhitespace(line);
    if (text.toLowerCase() === "q") {
      printLine(escapeControls(await server.ask("q"))); // Session ended
      return;
    }
    const problem = whyNotSent(text);
    if (problem) {
      printLine(`Not sent: ${problem}`);
      continue;
    }
    // The server's answer as it is, unless it would act on the terminal.
    printLine(escapeControls(await server.ask(text)));
  }
}

/** Why `text` is not worth sending, or `undefined` when it is well formed. */
function whyNotSent(text: string): string | undefined {
  if (parseExpression(text) === undefined) {
    return `${
      quote(text)
    } is not <number> <op> <number> (for example 12 + 42; operators + - * / % ^)`;
  }
  if (encodeLine(text).length - 1 > MAX_LINE_BYTES) {
    return `the line is longer than ${MAX_LINE_BYTES} bytes`;
  }
  return undefined;
}

/**
 * The server on `conn`. A server that accepts but never answers: each
 * answer (the greeting too) is waited for at most `timeout` seconds.
 */
function calculator(conn: Deno.TcpConn, timeout: number): Calculator {
  const answers = new LineReader(conn);
  const limit = {
    seconds: timeout,
    server: formatAddr(conn.remoteAddr),
    kind: "calculator server",
  };
  return {
    ask: (line) => answerWithin(exchange(conn, answers, line), limit),
  };
}

/** Send one line and wait for its one answer line. */
async function exchange(
  conn: Deno.TcpConn,
  answers: LineReader,
  line: string,
): Promise<string> {
  await writeLine(conn, line);
  const answer = await answers.readLine();
  if (answer === null) {
    throw new FatalError(
      `The server at ${
        formatAddr(conn.remoteAddr)
      } closed the connection without answering`,
    );
  }
  return answer;
}

/**
 * Lines from stdin, each after its prompt. When stdin is not a terminal
 * (piped), the line read is shown after the prompt, so the output reads like
 * the session a person would have seen.
 */
function openKeyboard(): Keyboard {
  const lines = new LineReader(streamSource(Deno.stdin.readable), {
    maxBytes: MAX_TYPED_BYTES,
  });
  const echo = !Deno.stdin.isTerminal();
  return {
    async ask(prompt: string): Promise<string | null> {
      await writeStdout(prompt); // nobody reads stdout (| head): OutputClosed
      const line = await lines.readLine().catch((error) => {
        printLine(""); // the sentence goes on a line of its own
        throw stdinFailure(error);
      });
      if (line === null) printLine(""); // end of input: leave the prompt's line
      else if (echo) printLine(line);
      return line;
    },
  };
}

/**
 * The one plain sentence for what went wrong reading stdin, or `error`
 * itself (a bug): a line too long, or a system error ({@linkcode inputFailure};
 * {@linkcode failure} would take it for the server's).
 */
function stdinFailure(error: unknown): unknown {
  if (error instanceof LineTooLongError) {
    return new FatalError(
      `A line over ${error.limit} bytes came from stdin; stopping`,
    );
  }
  return inputFailure(error);
}

/** The one plain sentence for what went wrong, or `error` itself (a bug). */
function failure(error: unknown, server: string): unknown {
  if (isConnectionLost(error)) {
    return new FatalError(
      `Lost the connection to the server at ${server} (it stopped or reset the connection)`,
    );
  }
  // Only the server's: the keyboard reports a long line on stdin itself.
  if (error instanceof LineTooLongError) {
    return new FatalError(
      `The server at ${server} answered with a line over ${error.limit} bytes (is it the calculator server?)`,
    );
  }
  return error;
}

if (import.meta.main) await runMain(main, COMMAND);
