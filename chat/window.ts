/**
 * The chat window's screen and keyboard: typed lines in, shown lines out.
 *
 * On a terminal, a line that arrives while the person is typing must not
 * cut their half-typed line in two. node:readline keeps what is typed (and
 * the cursor); to show a line we clear the input line, print the new line,
 * and let readline redraw the prompt and the typed text below it:
 *
 * ```
 * bob: hi there            <- arrived while typing
 * > I was typing th|       <- prompt and typed text redrawn, cursor kept
 * ```
 *
 * When stdin is not a terminal (a pipe, a file, a test), lines are read
 * plainly and no prompt is printed, so the output is just the conversation.
 *
 * @module
 */

import process from "node:process";
import readline from "node:readline";

/** What the chat client needs from the screen and keyboard. */
export interface ChatWindow {
  /** Show `prompt` (terminal only) and return the next typed line, or null at end of input. */
  ask(prompt: string): Promise<string | null>;
  /** Show a line without disturbing the line being typed. */
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

  return {
    async ask(prompt: string): Promise<string | null> {
      if (terminal && !closed) {
        rl.setPrompt(prompt);
        rl.prompt(true);
      }
      const next = await typed.next();
      return next.done ? null : next.value;
    },
    show(line: string): void {
      if (!terminal || closed) return void console.log(line);
      readline.cursorTo(process.stdout, 0);
      readline.clearLine(process.stdout, 0);
      process.stdout.write(`${line}\n`);
      rl.prompt(true); // prompt and typed text again, cursor where it was
    },
    close(): void {
      if (!closed) rl.close();
      if (!terminal || cleared) return;
      cleared = true;
      // Whatever was half typed is not sent: leave a clean line for the
      // last words (an error, the shell prompt).
      readline.cursorTo(process.stdout, 0);
      readline.clearLine(process.stdout, 0);
    },
  };
}
