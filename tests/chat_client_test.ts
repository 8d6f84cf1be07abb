/**
 * The chat window as a person uses it: chat/client.ts as a subprocess with
 * piped stdin, against the real server script (or a scripted fake server
 * where the server must misbehave).
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { startChatServer } from "../chat/server.ts";
import { isConnectionLost } from "../lib/errors.ts";
import { encodeLine, LineReader, writeAll } from "../lib/lines.ts";
import { ChatClient, Names } from "./chat_support.ts";
import { LogCollector } from "./tcp_support.ts";
import {
  freePort,
  type PythonPeer,
  type RunningScript,
  runScript,
  runWithStdinFrom,
  runWithStdoutClosed,
  type ScriptedServer,
  scriptedServer,
  type ScriptOptions,
  type ScriptResult,
  startPythonPeer,
  startScript,
  startServer,
  whyPythonUnavailable,
} from "./support.ts";

const CLIENT = "chat/client.ts";
const SERVER = "chat/server.ts";
/** The client needs nothing but the network. */
const CLIENT_FLAGS: ScriptOptions = { denoFlags: ["--allow-net"] };

/** A chat window whose stdin the test types into (or leaves open). */
function startClient(port: number, args: string[] = []): RunningScript {
  return startScript(CLIENT, ["--port", String(port), ...args], {
    ...CLIENT_FLAGS,
    stdin: "",
  });
}

/** Wait for a client to exit on its own, then release its stdin pipe. */
async function exited(client: RunningScript): Promise<ScriptResult> {
  const result = await client.finish();
  await client.closeStdin().catch(() => {}); // gone already: nothing to close
  return result;
}

Deno.test("two chat windows talk through the server", async () => {
  await using server = await startServer(SERVER);
  await using ann = startClient(server.port, ["--name", "ann"]);
  await ann.waitFor(/^Welcome to the chat, ann\./);

  await using bob = startClient(server.port);
  await bob.write("ANN\n"); // taken (ignoring case): asked again
  await bob.waitFor("Name taken: choose another name.");
  await bob.write("bob\n");
  await bob.waitFor(/^Welcome to the chat, bob\./);
  await ann.waitFor("bob has joined the chat.");

  await bob.write("hello ann\n");
  await ann.waitFor("bob: hello ann");
  await ann.write("/msg bob psst\n");
  await bob.waitFor("ann (private): psst");
  await ann.write("/who\n");
  await ann.waitFor("In the room: ann, bob");
  await ann.write("/msg nobody hi\n");
  await ann.waitFor("Error: no such user");
  await ann.write("quit\n");
  const annResult = await ann.finish();
  strictEqual(annResult.code, 0, annResult.stderr);
  // What Ann saw, line by line: no prompts, no protocol words.
  deepStrictEqual(annResult.stdout.split("\n"), [
    "Welcome to the chat, ann. Type to talk; /who lists the room, " +
    "/msg <name> <text> whispers, quit or /quit leaves.",
    "bob has joined the chat.",
    "bob: hello ann",
    "In the room: ann, bob",
    "Error: no such user",
  ]);

  await bob.waitFor("ann has left the chat.");
  await bob.closeStdin(); // end of input: leaves as if quit
  const bobResult = await bob.finish();
  strictEqual(bobResult.code, 0, bobResult.stderr);
  await server.waitFor("bob: hello ann");
  await server.waitFor("bob left");
});

// A script's input lines are its messages: a refused --name ends it,
// rather than trying its lines as names (a terminal is asked again:
// tests/chat_window_test.ts). A name typed in (no --name) is asked again.
Deno.test("a refused --name ends a scripted client; a refused typed name is asked again", async (t) => {
  await using server = await startServer(SERVER);
  await using ann = startClient(server.port, ["--name", "ann"]);
  await ann.waitFor(/^Welcome/);
  await t.step("--name taken, ignoring case", async () => {
    const result = await runScript(
      CLIENT,
      ["--port", String(server.port), "--name", "Ann"],
      { ...CLIENT_FLAGS, stdin: "hello everyone\nquit\n" },
    );
    strictEqual(result.code, 1, result.stderr);
    strictEqual(result.stdout, "");
    strictEqual(
      result.stderr,
      "The chat server refused --name Ann: Name taken\n",
    );
  });
  await t.step("--name invalid", async () => {
    const result = await runScript(
      CLIENT,
      ["--port", String(server.port), "--name", "bad name!"],
      { ...CLIENT_FLAGS, stdin: "hi\n" },
    );
    strictEqual(result.code, 1, result.stderr);
    strictEqual(
      result.stderr,
      "The chat server refused --name bad name!: " +
        "Invalid name (1-24 letters, digits, _ - .)\n",
    );
  });
  await t.step(
    "typed names: asked again; end of input while asked: exit 0",
    async () => {
      const result = await runScript(
        CLIENT,
        ["--port", String(server.port)],
        { ...CLIENT_FLAGS, stdin: "ANN\nnot valid\n" },
      );
      strictEqual(result.code, 0, result.stderr);
      strictEqual(
        result.stdout,
        "Name taken: choose another name.\n" +
          "Invalid name (1-24 letters, digits, _ - .): choose another name.\n",
      );
      strictEqual(result.stderr, "");
    },
  );
  await ann.closeStdin();
  const annResult = await ann.finish();
  strictEqual(annResult.code, 0);
  // Nobody else got in: no input line was tried as a name.
  strictEqual(annResult.stdout.includes("has joined"), false, annResult.stdout);
});

Deno.test("a --name of more than one line: one sentence, exit 1, nothing sent", async () => {
  await using server = await startServer(SERVER);
  // Each would send a second command after the LOGIN line.
  for (const name of ["inj\nSAY injected text", "bad name\nLOGIN other"]) {
    const result = await runScript(
      CLIENT,
      ["--port", String(server.port), "--name", name],
      { ...CLIENT_FLAGS, stdin: "" },
    );
    strictEqual(result.code, 1, result.stderr);
    strictEqual(result.stderr, "The name must be one line\n");
    strictEqual(result.stdout, "");
    await server.waitFor(/ disconnected$/); // the server's last word on it
  }
  // Connections came and went; nobody logged in, nothing was said.
  deepStrictEqual(
    server.seen.filter((line) => !/listening on| (dis)?connected$/.test(line)),
    [],
  );
});

Deno.test("a name typed at the prompt goes out as one LOGIN line", async () => {
  const received: string[] = [];
  using server = scriptedServer(async (conn, lines) => {
    for (let line; (line = await lines.readLine()) !== null;) {
      received.push(line);
      const quit = line === "QUIT";
      await writeAll(conn, encodeLine(quit ? "BYE" : "ERROR invalid name"));
      if (quit) return;
    }
  });
  // A carriage return ends a typed line too: two answers, two LOGIN lines.
  const result = await runScript(CLIENT, ["--port", String(server.port)], {
    ...CLIENT_FLAGS,
    stdin: "bad name\rLOGIN other\n",
  });
  strictEqual(result.code, 0, result.stderr);
  await server.serving;
  deepStrictEqual(received, ["LOGIN bad name", "LOGIN LOGIN other", "QUIT"]);
});

Deno.test("a typed line is sent as typed: leading and trailing spaces are kept", async () => {
  using server = recordingServer();
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port), "--name", "ann"],
    { ...CLIENT_FLAGS, stdin: "  two spaces before, one after \n" },
  );
  strictEqual(result.code, 0, result.stderr);
  await server.serving;
  deepStrictEqual(server.received, [
    "SAY   two spaces before, one after ",
    "QUIT",
  ]);
});

Deno.test("the server closes after QUIT without a BYE: the person quit, exit 0", async () => {
  using server = fakeServer(async (_conn, lines) => {
    strictEqual(await lines.readLine(), "QUIT");
    // No BYE: the connection just closes.
  });
  const result = await runAnn(server.port); // input ends: QUIT
  await server.serving;
  strictEqual(result.code, 0, result.stderr);
  strictEqual(result.stderr, "");
  match(result.stdout, /^Welcome to the chat, ann\.[^\n]*\n$/); // nothing else
});

Deno.test('--name "" is asked for like no --name at all', async () => {
  await using server = await startServer(SERVER);
  const args = ["--port", String(server.port), "--name", ""];
  const asked = await runScript(CLIENT, args, {
    ...CLIENT_FLAGS,
    stdin: "cat\n",
  });
  strictEqual(asked.code, 0, asked.stderr);
  match(asked.stdout, /^Welcome to the chat, cat\./);
  const noAnswer = await runScript(CLIENT, args, {
    ...CLIENT_FLAGS,
    stdin: "",
  });
  strictEqual(noAnswer.code, 0, noAnswer.stderr);
  strictEqual(noAnswer.stdout, "");
});

Deno.test("the server goes away: one line saying so, exit 1", async (t) => {
  await t.step("killed", async () => {
    await using server = await startServer(SERVER);
    await using ann = startClient(server.port, ["--name", "ann"]);
    await ann.waitFor(/^Welcome/);
    await server.stop("SIGKILL");
    const result = await exited(ann);
    strictEqual(result.code, 1);
    strictEqual(result.stderr, "The chat server closed the connection\n");
  });

  await t.step("stopped (SIGTERM)", async () => {
    await using server = await startServer(SERVER);
    await using ann = startClient(server.port, ["--name", "ann"]);
    await ann.waitFor(/^Welcome/);
    await server.stop("SIGTERM");
    const result = await exited(ann);
    strictEqual(result.code, 1);
    match(result.stdout, /Error: server shutting down$/);
    strictEqual(result.stderr, "The chat server closed the connection\n");
  });
});

Deno.test("no server: one plain sentence, exit 1", async () => {
  const port = freePort();
  const result = await runScript(CLIENT, ["--port", String(port)], {
    ...CLIENT_FLAGS,
    stdin: "ann\n",
  });
  strictEqual(result.code, 1);
  strictEqual(
    result.stderr,
    `Cannot connect to 127.0.0.1:${port}: connection refused (is the server running on that port?)\n`,
  );
  strictEqual(result.stdout, "");
});

Deno.test("a server that never answers the login: --timeout, one sentence, exit 1", async (t) => {
  const silent = () =>
    scriptedServer(async (_conn, lines) => {
      while (await lines.readLine() !== null) {
        // read on, answer nothing, until the client gives up and closes
      }
    });
  const noAnswer = (port: number) =>
    `No answer from 127.0.0.1:${port} within 0.2 s (is it the chat server?)\n`;

  await t.step("LOGIN unanswered", async () => {
    using server = silent();
    const args = ["--port", String(server.port), "--timeout", "0.2"];
    const result = await runScript(CLIENT, [...args, "--name", "ann"], {
      ...CLIENT_FLAGS,
      stdin: "",
    });
    strictEqual(result.code, 1, result.stderr);
    strictEqual(result.stderr, noAnswer(server.port));
    await server.serving; // after the checks: it waits for a connection
  });

  await t.step("QUIT unanswered (input ended before a name)", async () => {
    using server = silent();
    const args = ["--port", String(server.port), "--timeout", "0.2"];
    const result = await runScript(CLIENT, args, {
      ...CLIENT_FLAGS,
      stdin: "",
    });
    strictEqual(result.code, 1, result.stderr);
    strictEqual(result.stderr, noAnswer(server.port));
    await server.serving;
  });
});

Deno.test("a server that never answers QUIT: --timeout, one sentence, exit 1", async () => {
  // CONTRACT 2: no reply is one plain sentence and exit 1, as for LOGIN.
  let welcomed = 0;
  let closed = 0;
  using server = fakeServer(async (_conn, lines) => {
    welcomed = performance.now(); // before the client can send QUIT
    strictEqual(await lines.readLine(), "QUIT"); // its input has ended
    while (await lines.readLine() !== null) {
      // answer nothing, until the client gives up and closes
    }
    closed = performance.now();
  });
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port), "--name", "ann", "--timeout", "1"],
    { ...CLIENT_FLAGS, stdin: "" },
  );
  strictEqual(result.code, 1, result.stderr);
  strictEqual(
    result.stderr,
    `No answer from 127.0.0.1:${server.port} within 1 s (is it the chat server?)\n`,
  );
  match(result.stdout, /^Welcome to the chat, ann\.[^\n]*\n$/);
  await server.serving;
  // Not before the timeout: 1 ms for the clocks' rounding.
  const waited = closed - welcomed;
  ok(waited >= 1000 - 1, `gave up after ${waited} ms`);
});

Deno.test("a server that stops reading: the typed lines it does not take are bounded by --timeout, exit 1", async () => {
  // More than the sockets' buffers hold (megabytes on loopback), so the
  // window's writes stop being taken long before its input ends. Without
  // the bound it waited forever, its end of input (and any quit) unread.
  const line = `${"x".repeat(999)}\n`;
  const typed = line.repeat(32 * 1024); // 32 MiB
  const ended = Promise.withResolvers<void>();
  using server = fakeServer(async (_conn, lines) => {
    await ended.promise; // welcomed, and then reads nothing until the end
    while (await lines.readLine().catch(() => null) !== null) {
      // what the window sent and the server never took
    }
  });
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port), "--name", "ann", "--timeout", "1"],
    { ...CLIENT_FLAGS, stdin: typed, timeoutMs: 30_000 },
  );
  ended.resolve();
  await server.serving;
  strictEqual(result.code, 1, result.stderr);
  strictEqual(
    result.stderr,
    `No answer from 127.0.0.1:${server.port} within 1 s (is it the chat server?)\n`,
  );
});

Deno.test("stdin that cannot be read: one sentence, exit 1, not a wait", async (t) => {
  // A stdin opened for writing only (`0>> file`): every read fails (EBADF).
  // Before, the error went up as a stack trace while logging in, and in
  // the room it was taken for a lost connection: the window waited forever.
  const file = await Deno.makeTempFile();
  const log = new LogCollector();
  await using server = startChatServer({
    hostname: "127.0.0.1",
    port: 0,
    log: log.add,
  });
  const names = new Names();
  const expected =
    "Cannot read the input: bad file descriptor (check what stdin comes from)\n";
  try {
    await t.step("asked for a name", async () => {
      const result = await runWithStdinFrom(
        file,
        CLIENT,
        ["--port", String(server.addr.port)],
        { ...CLIENT_FLAGS, writeOnly: true },
      );
      strictEqual(result.code, 1, result.stderr);
      strictEqual(result.stderr, expected);
    });
    await t.step("in the room", async () => {
      const ann = names.of("ann");
      const result = await runWithStdinFrom(
        file,
        CLIENT,
        ["--port", String(server.addr.port), "--name", ann],
        { ...CLIENT_FLAGS, writeOnly: true, timeoutMs: 10_000 },
      );
      strictEqual(result.code, 1, result.stderr);
      strictEqual(result.stderr, expected);
      await log.waitFor(`${ann} left`);
    });
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("--timeout does not bound a quiet room: silence is waited for", async () => {
  using server = fakeServer(async (conn, lines) => {
    // Longer than the client's --timeout: nobody talks for a while.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await writeAll(conn, encodeLine("MSG bob anyone here?"));
    strictEqual(await lines.readLine(), "QUIT");
    await writeAll(conn, encodeLine("BYE"));
  });
  await using ann = startClient(server.port, [
    "--name",
    "ann",
    "--timeout",
    "0.1",
  ]);
  await ann.waitFor("bob: anyone here?");
  await ann.write("quit\n");
  const result = await exited(ann);
  strictEqual(result.code, 0, result.stderr);
  strictEqual(result.stderr, "");
  await server.serving;
});

/**
 * ann logs in to a fake server, and her window's stdout is closed after the
 * welcome; the server then says something, and checks that QUIT comes.
 * `input`: what her stdin does meanwhile.
 */
async function closeStdoutThenExpectQuit(
  input: { stdin: string } | { holdStdin: true },
): Promise<void> {
  const talk = Promise.withResolvers<void>();
  using server = fakeServer(async (conn, lines) => {
    await talk.promise; // once nobody reads the window's output
    await writeAll(conn, encodeLine("MSG bob anyone here?"));
    strictEqual(await lines.readLine(), "QUIT");
    await writeAll(conn, encodeLine("BYE"));
  });
  const result = await runWithStdoutClosed(
    CLIENT,
    ["--port", String(server.port), "--name", "ann"],
    {
      ...CLIENT_FLAGS,
      closeAfter: "Welcome to the chat",
      afterClose: talk.resolve,
      ...input,
    },
  );
  strictEqual(result.code, 0, result.stderr);
  strictEqual(result.stderr, "");
  await server.serving;
}

Deno.test("a closed stdout (| head): not taken for the server, exit 0", async () => {
  await closeStdoutThenExpectQuit({ stdin: "" }); // the input ends: ann leaves
});

Deno.test("a closed stdout (| head) with stdin still open: the window leaves the room, exit 0", async (t) => {
  // Nobody reads the window and nobody types: only the closed stdout can
  // tell the client to go. Before, it stayed in the room until its input
  // ended, printing into the void.
  await t.step("our server: the others see it leave", async () => {
    const log = new LogCollector();
    await using server = startChatServer({
      hostname: "127.0.0.1",
      port: 0,
      log: log.add,
    });
    const target = { hostname: "127.0.0.1", port: server.addr.port };
    const names = new Names();
    const ann = names.of("ann");
    await using bob = await ChatClient.login(target, names, "bob");
    const result = await runWithStdoutClosed(
      CLIENT,
      ["--port", String(server.addr.port), "--name", ann],
      {
        ...CLIENT_FLAGS,
        closeAfter: "Welcome to the chat",
        // Something for the window to show, now that nobody reads it.
        afterClose: () => bob.send("SAY anyone here?"),
        holdStdin: true,
      },
    );
    strictEqual(result.code, 0, result.stderr);
    strictEqual(result.stderr, "");
    await bob.waitFor(`LEFT ${ann}`);
    await log.waitFor(`${ann} left`);
  });

  await t.step("it says QUIT, not just drops the connection", async () => {
    await closeStdoutThenExpectQuit({ holdStdin: true });
  });
});

Deno.test("the server closes while the login waits for its answer: one sentence, exit 1", async () => {
  using server = scriptedServer(async (_conn, lines) => {
    strictEqual(await lines.readLine(), "LOGIN ann");
    // No answer: the connection just closes.
  });
  const result = await runAnn(server.port);
  await server.serving;
  strictEqual(result.code, 1, result.stderr);
  strictEqual(result.stderr, "The chat server closed the connection\n");
  strictEqual(result.stdout, "");
});

Deno.test("after BYE the window closes at once: it does not wait for the server to close", async (t) => {
  // Our server gives a client a while to close after BYE before closing
  // itself. This one waits for the window to close first.
  const byeThenWait = async (conn: Deno.Conn, lines: LineReader) => {
    strictEqual(await lines.readLine(), "QUIT");
    await writeAll(conn, encodeLine("BYE"));
    strictEqual(await lines.readLine(), null); // the window closed: done
  };

  await t.step("in the room", async () => {
    using server = fakeServer(byeThenWait);
    const result = await runAnn(server.port); // input ends: QUIT
    await server.serving;
    strictEqual(result.code, 0, result.stderr);
    strictEqual(result.stderr, "");
  });

  await t.step("input ended before a name", async () => {
    using server = scriptedServer(byeThenWait);
    const result = await runScript(CLIENT, ["--port", String(server.port)], {
      ...CLIENT_FLAGS,
      stdin: "",
    });
    await server.serving;
    strictEqual(result.code, 0, result.stderr);
    strictEqual(result.stderr, "");
  });
});

Deno.test("a BYE the window did not ask for ends it: exit 0, nothing sent after it", async () => {
  using server = fakeServer(async (conn, lines) => {
    await writeAll(conn, encodeLine("WELCOME ann")); // again: not shown
    await writeAll(conn, encodeLine("BYE"));
    strictEqual(await lines.readLine(), null); // no QUIT: the window just closed
  });
  // Its stdin stays open: only the BYE can end it.
  await using ann = startClient(server.port, ["--name", "ann"]);
  const result = await exited(ann);
  await server.serving;
  strictEqual(result.code, 0, result.stderr);
  strictEqual(result.stderr, "");
  // Every line it showed: the welcome, and nothing else.
  match(result.stdout, /^Welcome to the chat, ann\.[^\n]*$/);
});

Deno.test("typed lines that are no message: a hint, or nothing; none is sent", async () => {
  using server = recordingServer();
  const long = "x".repeat(1100);
  const result = await runScript(
    CLIENT,
    ["--port", String(server.port), "--name", "ann"],
    { ...CLIENT_FLAGS, stdin: `/dance\n\n   \n${long}\nhi\n` },
  );
  strictEqual(result.code, 0, result.stderr);
  await server.serving;
  deepStrictEqual(server.received, ["SAY hi", "QUIT"]);
  deepStrictEqual(result.stdout.split("\n").slice(1), [
    "Unknown command /dance. Type to talk; /who lists the room, " +
    "/msg <name> <text> whispers, quit or /quit leaves.",
    "Not sent: the line is longer than 1024 bytes (1104 with the command)",
    "",
  ]);
});

Deno.test("a name is sent without the spaces around it; an empty one is asked again without a word", async (t) => {
  for (
    const [name, options] of [
      ["--name with spaces", { args: ["--name", "  ann "], stdin: "" }],
      ["typed", { args: [], stdin: "\n   \n ann \n" }],
    ] as const
  ) {
    await t.step(name, async () => {
      using server = fakeServer(async (conn, lines) => {
        strictEqual(await lines.readLine(), "QUIT");
        await writeAll(conn, encodeLine("BYE"));
      });
      const result = await runScript(
        CLIENT,
        ["--port", String(server.port), ...options.args],
        { ...CLIENT_FLAGS, stdin: options.stdin },
      );
      await server.serving; // it had "LOGIN ann", and nothing before it
      strictEqual(result.code, 0, result.stderr);
      match(result.stdout, /^Welcome to the chat, ann\.[^\n]*\n$/);
    });
  }
});

Deno.test("a refusal's reason cannot act on the terminal either", async (t) => {
  await t.step("asked again, then refused", async () => {
    using server = scriptedServer(async (conn, lines) => {
      strictEqual(await lines.readLine(), "LOGIN ann");
      await writeAll(conn, encodeLine("ERROR name \x1b[2Jtaken"));
      strictEqual(await lines.readLine(), "LOGIN bob");
      await writeAll(conn, encodeLine("ERROR \x1b]0;owned\x07full"));
      strictEqual(await lines.readLine(), null); // the window gave up
    });
    const result = await runScript(CLIENT, ["--port", String(server.port)], {
      ...CLIENT_FLAGS,
      stdin: "ann\nbob\n",
    });
    await server.serving;
    strictEqual(result.code, 1, result.stderr);
    strictEqual(
      result.stdout,
      String.raw`Name \x1b[2Jtaken: choose another name.` + "\n",
    );
    strictEqual(
      result.stderr,
      String.raw`The chat server refused: \x1b]0;owned\x07full` + "\n",
    );
  });

  await t.step("no reason given", async () => {
    const { result } = await annAnswered("ERROR");
    strictEqual(result.code, 1, result.stderr);
    strictEqual(result.stderr, "The chat server refused: Refused\n");
  });

  // The calculator server, say: it greets whatever comes first as a name.
  await t.step("an answer that is neither WELCOME nor ERROR", async () => {
    const { port, result } = await annAnswered("Hello LOGIN ann");
    strictEqual(result.code, 1, result.stderr);
    strictEqual(
      result.stderr,
      `127.0.0.1:${port} answered the login with "Hello LOGIN ann" (is it the chat server?)\n`,
    );
  });
});

/**
 * Run ann's window against a server that answers her `LOGIN ann` with
 * `answer`, after which she must close without another word.
 */
async function annAnswered(answer: string) {
  using server = scriptedServer(async (conn, lines) => {
    strictEqual(await lines.readLine(), "LOGIN ann");
    await writeAll(conn, encodeLine(answer));
    strictEqual(await lines.readLine(), null);
  });
  const result = await runAnn(server.port);
  await server.serving;
  return { port: server.port, result };
}

const NO_PYTHON = await whyPythonUnavailable("socket");

/**
 * A chat server that welcomes ann, reads her next line and resets the
 * connection (a RST, no FIN), as a server that crashes might. A Deno server
 * cannot: its close ends with a FIN, which the window reads as a plain end.
 */
function resettingServer(): Promise<PythonPeer> {
  return startPythonPeer("reset_peer.py", ["server", "WELCOME ann"]);
}

Deno.test({
  name: "a server that resets the connection: taken as a close, not a crash",
  ignore: NO_PYTHON !== undefined,
  async fn(t) {
    await t.step("after QUIT: the person quit, exit 0", async () => {
      await using server = await resettingServer();
      const result = await runAnn(server.port); // input ends: QUIT
      deepStrictEqual(await server.rest(), ["LOGIN ann", "QUIT"]);
      strictEqual(result.code, 0, result.stderr);
      strictEqual(result.stderr, "");
    });

    await t.step(
      "while it asks for another name, then input ends: exit 0",
      async () => {
        await using server = await startPythonPeer("reset_peer.py", [
          "server",
          "ERROR name taken",
          "--at-once",
        ]);
        await using ann = startClient(server.port, []);
        await ann.write("ann\n"); // typed: a refused name is asked again
        await ann.waitFor("Name taken: choose another name.");
        // The peer has reset the connection and exited: its QUIT cannot go.
        deepStrictEqual(await server.rest(), ["LOGIN ann"]);
        await ann.closeStdin();
        const result = await ann.finish();
        strictEqual(result.code, 0, result.stderr);
        strictEqual(result.stderr, "");
      },
    );

    await t.step("in the room: one sentence, exit 1", async () => {
      await using server = await resettingServer();
      await using ann = startClient(server.port, ["--name", "ann"]);
      await ann.waitFor(/^Welcome/);
      await ann.write("hello\n");
      const result = await exited(ann);
      deepStrictEqual(await server.rest(), ["LOGIN ann", "SAY hello"]);
      strictEqual(result.code, 1, result.stderr);
      strictEqual(result.stderr, "The chat server closed the connection\n");
    });
  },
});

Deno.test("a full server: the reason, exit 1", async () => {
  await using server = await startServer(SERVER, ["--max-clients", "1"]);
  await using ann = startClient(server.port, ["--name", "ann"]);
  await ann.waitFor(/^Welcome/);
  const result = await runScript(CLIENT, ["--port", String(server.port)], {
    ...CLIENT_FLAGS,
    stdin: "bob\n",
  });
  strictEqual(result.code, 1);
  strictEqual(result.stderr, "The chat server refused: Server full\n");
  await ann.closeStdin();
  strictEqual((await ann.finish()).code, 0);
});

Deno.test("lines from the server cannot act on the terminal", async () => {
  // A fake server that sends what a hostile one might.
  using server = fakeServer(async (conn, lines) => {
    await writeAll(conn, encodeLine("MSG eve a\x1b[2Jb\u009b31m\u202ec"));
    await writeAll(conn, encodeLine("SOMETHING \x07odd"));
    strictEqual(await lines.readLine(), "QUIT");
    await writeAll(conn, encodeLine("BYE"));
  });
  const result = await runAnn(server.port);
  await server.serving;
  strictEqual(result.code, 0, result.stderr);
  const lines = result.stdout.split("\n");
  strictEqual(lines[1], String.raw`eve: a\x1b[2Jb\x9b31m\u{202e}c`);
  strictEqual(lines[2], String.raw`SOMETHING \x07odd`);
  ok(!/[\p{Cc}]/u.test(result.stdout.replaceAll("\n", "")));
});

Deno.test("a crowded room's USERS line is shown; a line past 512 KiB: one sentence, exit 1", async () => {
  const crowd = Array.from({ length: 5000 }, (_, i) => `member${i}`);
  using server = fakeServer(async (conn, lines) => {
    await writeAll(conn, encodeLine(`USERS ${crowd.join(" ")}`));
    try {
      await writeAll(conn, encodeLine(`MSG eve ${"x".repeat(600_000)}`));
      // Closing with the client's QUIT unread would reset the connection,
      // and the client would see that instead of the long line.
      while (await lines.readLine() !== null) {
        // QUIT, then the end when the client exits
      }
    } catch (error) {
      if (!isConnectionLost(error)) throw error; // the client left mid-line
    }
  });
  const result = await runAnn(server.port);
  await server.serving;
  strictEqual(result.code, 1);
  strictEqual(
    result.stderr,
    "The chat server sent a line longer than 524288 bytes\n",
  );
  strictEqual(
    result.stdout.split("\n")[1],
    `In the room: ${crowd.join(", ")}`,
  );
});

/**
 * A {@linkcode scriptedServer} that expects `LOGIN ann`, answers
 * `WELCOME ann`, then runs `script`.
 */
function fakeServer(
  script: (conn: Deno.Conn, lines: LineReader) => Promise<void>,
): ScriptedServer {
  return scriptedServer(async (conn, lines) => {
    strictEqual(await lines.readLine(), "LOGIN ann");
    await writeAll(conn, encodeLine("WELCOME ann"));
    await script(conn, lines);
  });
}

/**
 * {@linkcode fakeServer} that records every line after ann's login and
 * answers QUIT with BYE.
 */
function recordingServer(): ScriptedServer & { received: string[] } {
  const received: string[] = [];
  const server = fakeServer(async (conn, lines) => {
    for (let line; (line = await lines.readLine()) !== null;) {
      received.push(line);
      if (line === "QUIT") return await writeAll(conn, encodeLine("BYE"));
    }
  });
  return Object.assign(server, { received });
}

/** The chat window as ann, typing nothing (so it leaves at once). */
function runAnn(port: number): Promise<ScriptResult> {
  return runScript(CLIENT, ["--port", String(port), "--name", "ann"], {
    ...CLIENT_FLAGS,
    stdin: "",
  });
}

Deno.test("--help and bad flags", async () => {
  const help = await runScript(CLIENT, ["--help"], CLIENT_FLAGS);
  strictEqual(help.code, 0);
  match(help.stdout, /--name NAME/);
  // The contract's port, written out: not the script's own constant.
  match(help.stdout, /^ +--port P +.*\(default 5000\)$/m);
  match(
    help.stdout,
    /--timeout S +seconds to wait for the server to take the connection, answer a login or a quit, or take a typed line \(default 10\)/,
  );
  const bad = await runScript(CLIENT, ["--port", "99999"], CLIENT_FLAGS);
  strictEqual(bad.code, 2);
  match(bad.stderr, /--port must be/);
});
