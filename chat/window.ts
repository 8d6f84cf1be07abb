/**
 * The chat window's screen and keyboard: typed lines in, shown lines out.
 *
 * On a terminal, a line that arrives while the person is typing must not
 * cut their half-typed line in two. node:readline keeps what is typed (and
 * the cursor); to show a line we clear the prompt and typed text (every row
 * of it, when it is wider than the terminal), print the new line, and let
 * readline redraw the prompt and the typed text below it:
 *
 * ```
 * bob: hi there            <- arrived while typing
 * > I was typing th|       <- prompt and typed text redrawn, cursor kept
 * ```
 *
 * When stdin is not a terminal (a pipe, a file, a test), lines are read
 * plainly and no prompt is printed, so the output is just the conversation.
 * Stdout may be a pipe whose reader stops (`| head -n 2`): then showing a
 * line throws `OutputClosed` (lib/cli.ts), so the client knows to leave.
 *
 * @module
 */

import process from "node:process";
import readline from "node:readline";
import { inputFailure, printLine } from "../lib/cli.ts";

/** What the chat client needs from the screen and keyboard. */
export interface ChatWindow {
  /** Whether a person types the input (stdin is a terminal), not a script. */
  readonly keyboard: boolean;
  /**
   * Show `prompt` (terminal only) and return the next typed line, or null at
   * end of input. A stdin that cannot be read throws a `FatalError`.
   */
  ask(prompt: string): Promise<string | null>;
  /**
   * Show a line without disturbing the line being typed. Throws
   * `OutputClosed` (lib/cli.ts) once nobody reads stdout.
   */
  show(line: string): void;
  /** Stop reading the keyboard (the client is leaving). */
  close(): void;
}

/** A window on this process's stdin and stdout. */
export function openWindow(): ChatWindow {
  const terminal = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal,
  });
  // Ctrl+C in the chat window means "leave", like Ctrl+D.
  rl.on("SIGINT", () => rl.close());
  const typed = rl[Symbol.asyncIterator]();
  let closed = false; // by us, or by Ctrl+D / Ctrl+C / end of input
  let cleared = false;
  rl.on("close", () => (closed = true));

  /**
   * Erase the prompt and the typed text, which wrap onto more rows when
   * wider than the terminal: from the cursor, go up to their first row and
   * clear down. Returns how many rows up that was.
   */
  function eraseTyped(): number {
    const { rows } = rl.getCursorPos(); // counts wide characters as 2 columns
    readline.moveCursor(process.stdout, 0, -rows);
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
    return rows;
  }

  /**
   * Once the keyboard is closed, the last prompt (and whatever was half
   * typed) is not coming back: erase it once, so that the last words (a
   * line that arrived before BYE, an error, the shell prompt) start on a
   * clean line.
   */
  function clearPrompt(): void {
    if (!terminal || cleared) return;
    cleared = true;
    eraseTyped();
  }

  return {
    keyboard: Deno.stdin.isTerminal(),
    async ask(prompt: string): Promise<string | null> {
      if (terminal && !closed) {
        rl.setPrompt(prompt);
        rl.prompt(true);
      }
      // A stdin that cannot be read (`0>>file`: EBADF) is no lost server.
      const next = await typed.next().catch((error) => {
        throw inputFailure(error);
      });
      return next.done ? null : next.value;
    },
    show(line: string): void {
      // Not console.log: it drops what a closed stdout cannot take, and
      // the client would stay in the room for nobody.
      if (closed) clearPrompt(); // Ctrl+D: the room's last lines, no prompt
      if (!terminal || closed) return printLine(line);
      const rows = eraseTyped();
      // readline redraws by first going up as many rows as its cursor was
      // below the prompt's row (it does not know we moved): leave it that
      // many rows under the new line. Newlines, unlike moving down, scroll
      // at the bottom of the screen; the redraw fills those rows again.
      process.stdout.write(`${line}\n${"\n".repeat(rows)}`);
      rl.prompt(true); // prompt and typed text again, cursor where it was
    },
    close(): void {
      if (!closed) rl.close();
      clearPrompt(); // whatever was half typed is not sent
    },
  };
}
