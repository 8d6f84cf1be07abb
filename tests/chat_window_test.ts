/**
 * The chat window on a real terminal (CONTRACT 3.5: "Incoming lines never
 * garble the line being typed"): chat/client.ts runs on an 80-column
 * pseudo-terminal (tests/pty_relay.py), ann types a line without Enter,
 * bob talks, and the screen (tests/terminal_screen.ts) must show bob's
 * lines above ann's typed line and every row of that line intact below,
 * however many rows it wraps onto; then what ann typed is sent unchanged.
 *
 * Needs python3 (its pty module); without it the test is ignored with the
 * reason printed.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert";
import { isDeepStrictEqual } from "node:util";
import { ChatClient, Names } from "./chat_support.ts";
import { encodeLine, writeAll } from "../lib/lines.ts";
import {
  ROOT,
  scriptedServer,
  startServer,
  whyPythonUnavailable,
} from "./support.ts";
import { TerminalScreen } from "./terminal_screen.ts";

const COLS = 80;
const ROWS = 24;
const RELAY = `${ROOT}tests/pty_relay.py`;
/** Seconds after which the relay kills the client, whatever happens. */
const RELAY_LIMIT = 30;
const WAIT_MS = 10_000;
const LEFT_KEY = "\x1b[D";
/** What ann's window says once she is in. */
const WELCOME =
  "Welcome to the chat, ann. Type to talk; /who lists the room, " +
  "/msg <name> <text> whispers, quit or /quit leaves.";

const SKIP_REASON = await whyPythonUnavailable("pty");
if (SKIP_REASON) {
  console.log(`chat_window_test: terminal tests ignored: ${SKIP_REASON}`);
}

/** What ann types, the rows it fills, and the line sent after "!" and Enter. */
interface Typing {
  name: string;
  keys: string;
  rows: string[];
  sent: string;
}

const X100 = "x".repeat(100);

const TYPINGS: Typing[] = [
  {
    name: "a line wider than the terminal",
    keys: X100,
    rows: ["> " + "x".repeat(78), "x".repeat(22)],
    sent: X100 + "!",
  },
  {
    name: "prompt and line exactly as wide as the terminal",
    keys: "x".repeat(78),
    rows: ["> " + "x".repeat(78)], // and the cursor alone on the next row
    sent: "x".repeat(78) + "!",
  },
  {
    name: "the cursor moved back to the first of two rows",
    keys: X100 + LEFT_KEY.repeat(30),
    rows: ["> " + "x".repeat(78), "x".repeat(22)],
    sent: "x".repeat(70) + "!" + "x".repeat(30),
  },
  {
    name: "Chinese characters, two columns each",
    keys: "漢字".repeat(45),
    rows: [
      "> " + "漢字".repeat(19) + "漢",
      "字漢".repeat(20),
      "字" + "漢字".repeat(5),
    ],
    sent: "漢字".repeat(45) + "!",
  },
  {
    name: "a wide character that does not fit the last column",
    keys: "a" + "漢字".repeat(25),
    rows: ["> a" + "漢字".repeat(19), "漢字".repeat(6)],
    sent: "a" + "漢字".repeat(25) + "!",
  },
  {
    name: "emoji",
    keys: "😀".repeat(50),
    rows: ["> " + "😀".repeat(39), "😀".repeat(11)],
    sent: "😀".repeat(50) + "!",
  },
];

Deno.test({
  name:
    "lines that arrive while a long line is typed show above it, and it stays whole",
  ignore: SKIP_REASON !== undefined,
  async fn(t) {
    await using server = await startServer("chat/server.ts");
    const welcome = wrap(WELCOME);
    const long = "y".repeat(90);
    const bobsLines = [
      "bob has joined the chat.",
      "bob: IMPORTANT MESSAGE",
      ...wrap(`bob: ${long}`),
    ];
    for (const typing of TYPINGS) {
      await t.step(typing.name, async () => {
        await using ann = new TerminalWindow(server.port);
        await ann.waitForScreen([...welcome, ">"]);
        await ann.type(typing.keys);
        await ann.waitForScreen([...welcome, ...typing.rows]);

        await using bob = await ChatClient.connect(
          { hostname: server.host, port: server.port },
          new Names(),
        );
        await bob.login("bob");
        await bob.send("SAY IMPORTANT MESSAGE");
        await bob.send(`SAY ${long}`);
        await ann.waitForScreen([...welcome, ...bobsLines, ...typing.rows]);

        await ann.type("!\r"); // typing goes on where the cursor was
        await bob.waitFor(`MSG ann ${typing.sent}`);
        await ann.type("/quit\r");
        await bob.waitFor("LEFT ann"); // the name is free for the next step
        strictEqual(await ann.exitCode(), 0);
      });
    }
  },
});

Deno.test({
  name:
    "the prompt comes back after each line; when the server goes, the half-typed line makes way for the error",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using server = await startServer("chat/server.ts");
    const welcome = wrap(WELCOME);
    await using ann = new TerminalWindow(server.port);
    await ann.waitForScreen([...welcome, ">"]);
    await ann.type("hi\r");
    await ann.waitForScreen([...welcome, "> hi", ">"]);
    await server.waitFor("ann: hi"); // taken: what follows is typed in the room
    await ann.type("half typed");
    await ann.waitForScreen([...welcome, "> hi", "> half typed"]);
    await server.stop("SIGKILL");
    // Not "> half typedThe chat server closed the connection".
    await ann.waitForScreen([
      ...welcome,
      "> hi",
      "The chat server closed the connection",
    ]);
    strictEqual(await ann.exitCode(), 1);
  },
});

Deno.test({
  name: "Ctrl+C leaves the room like Ctrl+D: exit 0",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using server = await startServer("chat/server.ts");
    await using ann = new TerminalWindow(server.port);
    await server.waitFor("logged in as ann");
    await ann.type("half typed\x03");
    strictEqual(await ann.exitCode(), 0);
    await server.waitFor("ann left");
  },
});

Deno.test({
  name:
    "after Ctrl+D, the lines that come before BYE are shown, the prompt gone",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    using server = scriptedServer(async (conn, lines) => {
      strictEqual(await lines.readLine(), "LOGIN ann");
      await writeAll(conn, encodeLine("WELCOME ann"));
      strictEqual(await lines.readLine(), "QUIT");
      await writeAll(conn, encodeLine("MSG bob wait, one more thing"));
      await writeAll(conn, encodeLine("BYE"));
    });
    const welcome = wrap(WELCOME);
    await using ann = new TerminalWindow(server.port);
    await ann.waitForScreen([...welcome, ">"]);
    await ann.type("\x04"); // Ctrl+D on an empty line: end of input
    strictEqual(await ann.exitCode(), 0);
    await server.serving;
    // Shown, not a crash, and on a line of its own: not "> bob: wait, ...".
    await ann.waitForScreen([...welcome, "bob: wait, one more thing"]);
  },
});

// A person at the keyboard whose --name is taken is asked for another
// (a script is not: tests/chat_client_test.ts).
Deno.test({
  name: "a refused --name on a terminal: asked again",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using server = await startServer("chat/server.ts");
    await using other = await ChatClient.connect(
      { hostname: server.host, port: server.port },
      new Names(),
    );
    await other.login("ANN");
    await using ann = new TerminalWindow(server.port);
    await ann.waitForScreen([
      "Name taken: choose another name.",
      "Your name:",
    ]);
    await ann.type("ann2\r");
    await ann.waitForScreen([
      "Name taken: choose another name.",
      "Your name: ann2",
      ...wrap(WELCOME.replace("ann.", "ann2.")),
      ">",
    ]);
    await ann.type("/quit\r");
    strictEqual(await ann.exitCode(), 0);
  },
});

Deno.test({
  name:
    "typed on a terminal, stdout to a file: the file gets the conversation, no prompts or cursor moves",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using server = await startServer("chat/server.ts");
    const file = await Deno.makeTempFile();
    const relay = new Deno.Command("python3", {
      args: [
        ...[RELAY, String(COLS), String(ROWS), String(RELAY_LIMIT)],
        // exec: the shell becomes the client, its stdout the file.
        ...["sh", "-c", 'exec "$0" "$@" > "$OUT"'],
        ...[Deno.execPath(), "run", "--allow-net", "chat/client.ts"],
        ...["--port", String(server.port), "--name", "ann"],
      ],
      cwd: ROOT,
      env: { TERM: "xterm", NO_COLOR: "1", OUT: file },
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const keyboard = relay.stdin.getWriter();
    try {
      await server.waitFor("logged in as ann");
      await keyboard.write(new TextEncoder().encode("hi\r/quit\r"));
      await keyboard.close();
      strictEqual((await relay.status).code, 0);
      await server.waitFor("ann: hi");
      strictEqual(
        await Deno.readTextFile(file),
        `${WELCOME}\n`,
      );
    } finally {
      await keyboard.close().catch(() => {}); // closed above, unless it failed
      try {
        relay.kill("SIGKILL");
      } catch {
        // it has ended
      }
      await relay.status;
      await Deno.remove(file);
    }
  },
});

/** ASCII `text` as the rows it fills on the terminal. */
function wrap(text: string): string[] {
  return text.match(new RegExp(`.{1,${COLS}}`, "g"))!.map((row) =>
    row.trimEnd()
  );
}

/** chat/client.ts as ann on a pseudo-terminal, and the screen it draws. */
class TerminalWindow implements AsyncDisposable {
  // Start at the bottom, as on a terminal in use: every new row scrolls.
  readonly screen = new TerminalScreen(COLS, ROWS);
  readonly #child: Deno.ChildProcess;
  readonly #keyboard: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  readonly #stderr: Promise<string>;
  /** Resolved (and replaced) whenever output arrives, or at its end. */
  #output = Promise.withResolvers<void>();
  #ended = false;
  #error: unknown;

  constructor(port: number) {
    this.screen.write("\n".repeat(ROWS - 1));
    this.#child = new Deno.Command("python3", {
      args: [
        ...[RELAY, String(COLS), String(ROWS), String(RELAY_LIMIT)],
        ...[Deno.execPath(), "run", "--allow-net", "chat/client.ts"],
        ...["--port", String(port), "--name", "ann"],
      ],
      cwd: ROOT,
      env: { TERM: "xterm", NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#keyboard = this.#child.stdin.getWriter();
    this.#stderr = new Response(this.#child.stderr).text();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.#child.stdout) {
        this.screen.write(decoder.decode(chunk, { stream: true }));
        this.#arrived();
      }
    } catch (error) {
      this.#error = error; // output the screen does not understand
    }
    this.#ended = true;
    this.#arrived();
  }

  #arrived(): void {
    const waiting = this.#output;
    this.#output = Promise.withResolvers();
    waiting.resolve();
  }

  /**
   * The rows that have text, top to bottom. Blank rows are left out: when a
   * wide character wraps before the last column, Deno's readline does not
   * redraw, loses count of one row, and one blank row is left above the
   * typed line at the next incoming line (a gap, nothing lost).
   */
  shown(): string[] {
    return this.screen.text().filter((row) => row !== "");
  }

  /** Wait until the rows with text are `expected`; fail after WAIT_MS. */
  async waitForScreen(expected: string[]): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (true) {
      const next = this.#output.promise;
      if (this.#error) throw this.#error;
      if (isDeepStrictEqual(this.shown(), expected)) return;
      const left = deadline - Date.now();
      if (this.#ended || left <= 0) {
        deepStrictEqual(
          this.shown(),
          expected,
          "the screen is not as expected",
        );
      }
      const timeout = Promise.withResolvers<void>();
      const timer = setTimeout(timeout.resolve, left);
      try {
        await Promise.race([next, timeout.promise]);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Type `keys` (Enter is "\r"). */
  async type(keys: string): Promise<void> {
    await this.#keyboard.write(new TextEncoder().encode(keys));
  }

  /** Wait for the client to exit; its exit code. */
  async exitCode(): Promise<number> {
    const { code } = await this.#child.status;
    if (code !== 0) console.log(await this.#stderr);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM"); // the relay kills the client
    } catch {
      // exited already
    }
    await this.#child.status;
    await this.#keyboard.close().catch(() => {});
    await this.#reading;
    await this.#stderr;
  }
}
