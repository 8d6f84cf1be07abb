/**
 * TCP calculator client (CONTRACT 3.4) as a person runs it: the real script
 * with stdin piped, against our server started in this process, whose log
 * shows what the client really sent.
 */

import assert from "node:assert/strict";
import { isConnectionLost } from "../lib/errors.ts";
import { writeLine } from "../lib/lines.ts";
import { type CalcServer, startCalcServer } from "../tcp/calc_server.ts";
import {
  freePort,
  runScript,
  runWithStdinFrom,
  runWithStdoutClosed,
  scriptedServer,
  startScript,
  within,
} from "./support.ts";
import { ANSWER_TIMEOUT_MS, LogCollector } from "./tcp_support.ts";

const CLIENT = "tcp/calc_client.ts";

// Written out, not imported from the client: a changed prompt must fail here.
/** The prompt before each expression, as CONTRACT 3.4 gives it. */
const PROMPT = "Enter an expression (or 'q' to quit): ";
/** The prompt for the name when there is no --name. */
const NAME_PROMPT = "Enter your name: ";

/** Our server in this process, with its log collected. */
function startServer(): { server: CalcServer; log: LogCollector } {
  const log = new LogCollector();
  const server = startCalcServer({
    hostname: "127.0.0.1",
    port: 0,
    log: log.add,
  });
  return { server, log };
}

/** Run the client against `server` with `stdin` piped in. */
function runClient(server: CalcServer, args: string[], stdin: string) {
  return runScript(CLIENT, ["--port", String(server.addr.port), ...args], {
    stdin,
  });
}

Deno.test("calc client", async (t) => {
  await t.step(
    "the contract's session with --name; a malformed line is never sent",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      const result = await runClient(
        server,
        ["--name", "Ada"],
        "12 + 13\n12(10\n1 / 0\nq\n",
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
      // Piped stdin: each line read is shown after its prompt.
      assert.deepEqual(result.stdout.split("\n"), [
        "Hello Ada",
        `${PROMPT}12 + 13`,
        "25",
        `${PROMPT}12(10`,
        `Not sent: "12(10" is not <number> <op> <number> (for example 12 + 42; operators + - * / % ^)`,
        `${PROMPT}1 / 0`,
        "ERROR division by zero",
        `${PROMPT}q`,
        "Session ended",
        "",
      ]);
      await log.waitFor("Ada: Session ended");
      const requests = log.lines.filter((line) => line.startsWith("Ada: "));
      assert.deepEqual(requests, [
        `Ada: "12 + 13" -> 25`,
        `Ada: "1 / 0" -> ERROR division by zero`,
        "Ada: Session ended",
      ]);
      assert.ok(
        !log.lines.some((line) => line.includes("12(10")),
        "12(10 reached the server",
      );
    },
  );

  await t.step("end of input without q ends the session cleanly", async () => {
    const { server, log } = startServer();
    await using _ = server;
    const result = await runClient(server, ["--name", "Eof"], "2 ^ 10\n");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^1024$/m);
    assert.match(result.stdout, /\nSession ended\n$/);
    // The client sent q: the server saw a quit, not a dropped connection.
    assert.equal(await log.waitFor("Eof: Session ended"), "Eof: Session ended");
  });

  await t.step(
    "without --name, the name is read from stdin first",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      // Q in capitals quits as q does (as in the original lab).
      const result = await runClient(server, [], "Bob\n6 * 7\nQ\n");
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.split("\n").slice(0, 6), [
        `${NAME_PROMPT}Bob`,
        "Hello Bob",
        `${PROMPT}6 * 7`,
        "42",
        `${PROMPT}Q`,
        "Session ended",
      ]);
      await log.waitFor(`Bob: "6 * 7" -> 42`);
    },
  );

  await t.step("end of input before a name: exit 0, no session", async () => {
    // The test plays the server: it records every line the client sends
    // until the client closes, so "nothing was sent" is known, not hoped.
    const received: string[] = [];
    using server = scriptedServer(async (_conn, lines) => {
      for (let line; (line = await lines.readLine()) !== null;) {
        received.push(line);
      }
    });
    const result = await runScript(CLIENT, ["--port", String(server.port)], {
      stdin: "",
    });
    assert.equal(result.code, 0, result.stderr);
    // The client has exited, so its connection has ended; within a deadline
    // in case it never connected.
    await within(
      server.serving,
      ANSWER_TIMEOUT_MS,
      "the client never connected",
    );
    assert.equal(result.stdout, `${NAME_PROMPT}\n`);
    assert.deepEqual(received, [], "the client sent a line");
  });

  await t.step(
    "a --name of two lines: one sentence, exit 1, nothing sent",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      // Sent as it is, its second line would be taken for an expression and
      // every answer after it would belong to the line before.
      const result = await runClient(server, ["--name", "Ada\n1+1"], "q\n");
      assert.equal(result.code, 1);
      assert.equal(result.stderr, "The name must be one line\n");
      assert.ok(!log.lines.some((line) => line.includes("Ada")), "sent");
    },
  );

  await t.step(
    "a server that resets the connection: one sentence, exit 1",
    async () => {
      // It reads one byte of the name and closes with the rest unread: the
      // kernel then resets the connection instead of closing it.
      using server = scriptedServer(async (conn) => {
        await conn.read(new Uint8Array(1));
        await writeLine(conn, "Hello Ada");
      });
      const result = await runScript(
        CLIENT,
        ["--port", String(server.port), "--name", "Ada"],
        { stdin: "1 + 1\nq\n" },
      );
      await server.serving;
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `Lost the connection to the server at 127.0.0.1:${server.port} (it stopped or reset the connection)\n`,
      );
    },
  );

  await t.step("a name the server refuses: its ERROR, exit 1", async () => {
    const { server } = startServer();
    await using _ = server;
    const result = await runClient(server, ["--name", "x".repeat(33)], "");
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      "The calculator server refused: ERROR invalid name (1-32 characters, no control characters)\n",
    );
  });

  await t.step(
    "lines over 1024 bytes and other malformed lines are not sent",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      const long = `1${"0".repeat(1100)} + 1`; // well formed, but too long
      const result = await runClient(
        server,
        ["--name", "Ada"],
        `${long}\n\n1 + 2 + 3\n  3--4  \nQ\n`,
      );
      assert.equal(result.code, 0, result.stderr);
      const warnings = result.stdout.split("\n").filter((l) =>
        l.startsWith("Not sent: ")
      );
      assert.equal(warnings.length, 3, result.stdout);
      assert.match(warnings[0], /longer than 1024 bytes/);
      assert.match(result.stdout, /^7$/m); // the spaces around 3--4 are fine
      assert.match(result.stdout, /\nSession ended\n$/); // Q quits too
      await log.waitFor("Ada: Session ended");
      const requests = log.lines.filter((line) => line.startsWith("Ada: "));
      assert.deepEqual(requests, [`Ada: "3--4" -> 7`, "Ada: Session ended"]);
    },
  );

  await t.step(
    "a typed line of 1024 bytes is sent, one of 1025 bytes is not",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      // Well formed, the answer is 2; leading zeros make up the length.
      const expression = (bytes: number) => `${"0".repeat(bytes - 5)}1 + 1`;
      const longest = expression(1024);
      const tooLong = expression(1025);
      assert.equal(new TextEncoder().encode(longest).length, 1024);
      const result = await runClient(
        server,
        ["--name", "Ada"],
        `${tooLong}\n${longest}\nq\n`,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.split("\n"), [
        "Hello Ada",
        `${PROMPT}${tooLong}`,
        "Not sent: the line is longer than 1024 bytes",
        `${PROMPT}${longest}`,
        "2",
        `${PROMPT}q`,
        "Session ended",
        "",
      ]);
      await log.waitFor("Ada: Session ended");
      const requests = log.lines.filter((line) => line.startsWith("Ada: "));
      assert.deepEqual(requests, [
        `Ada: ${JSON.stringify(longest)} -> 2`,
        "Ada: Session ended",
      ]);
    },
  );

  await t.step(
    "a server's control characters are shown escaped, never acted on",
    async () => {
      // A hostile server: it answers with a screen clear and a
      // right-to-left override instead of plain text.
      using server = scriptedServer(async (conn, lines) => {
        await lines.readLine(); // the name
        await writeLine(conn, "Hello \x1b[2JAda");
        await lines.readLine(); // 1 + 1
        await writeLine(conn, "2\u202e1");
        await lines.readLine(); // q
        await writeLine(conn, "Session ended\x07");
      });
      const result = await runScript(CLIENT, [
        "--port",
        String(server.port),
        "--name",
        "Ada",
      ], { stdin: "1 + 1\nq\n" });
      await server.serving;
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.split("\n"), [
        String.raw`Hello \x1b[2JAda`,
        `${PROMPT}1 + 1`,
        String.raw`2\u{202e}1`,
        `${PROMPT}q`,
        String.raw`Session ended\x07`,
        "",
      ]);
    },
  );

  await t.step("no server: one sentence, exit 1", async () => {
    const port = freePort(); // nothing listens there
    const result = await runScript(CLIENT, [
      "--port",
      String(port),
      "--name",
      "Ada",
    ], {
      stdin: "1 + 1\nq\n",
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      `Cannot connect to 127.0.0.1:${port}: connection refused (is the server running on that port?)\n`,
    );
  });

  await t.step(
    "the server gone mid-session: one sentence, exit 1",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      await using client = startScript(
        CLIENT,
        ["--port", String(server.addr.port), "--name", "Ada"],
        { stdin: "" },
      );
      await client.write("1 + 1\n");
      await client.waitFor(/^2$/);
      await log.waitFor(`Ada: "1 + 1" -> 2`);
      await server.close();
      await client.write("2 + 2\n");
      const result = await client.finish();
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        new RegExp(
          `^(The server at|Lost the connection to the server at) 127\\.0\\.0\\.1:${server.addr.port} [^\\n]*\\n$`,
        ),
      );
    },
  );

  await t.step(
    "a server that never answers: --timeout, one sentence, exit 1",
    async () => {
      // Silent from the start (like `nc -l`), or after the greeting.
      for (const greeting of [undefined, "Hello Ada"]) {
        using server = scriptedServer(async (conn, lines) => {
          if (greeting) {
            await lines.readLine(); // the name
            await writeLine(conn, greeting);
          }
          while (await lines.readLine() !== null) {
            // read on, answer nothing, until the client gives up and closes
          }
        });
        const result = await runScript(CLIENT, [
          "--port",
          String(server.port),
          "--name",
          "Ada",
          "--timeout",
          "0.2",
        ], { stdin: "1 + 1\nq\n" });
        assert.equal(result.code, 1, result.stderr);
        assert.equal(
          result.stderr,
          `No answer from 127.0.0.1:${server.port} within 0.2 s (is it the calculator server?)\n`,
        );
        assert.equal(
          result.stdout,
          greeting ? `${greeting}\n${PROMPT}1 + 1\n` : "",
        );
        await server.serving; // after the checks: it waits for a connection
      }
    },
  );

  await t.step(
    "a closed stdout (| head): the client ends quietly, exit 0",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      const result = await runWithStdoutClosed(
        CLIENT,
        ["--port", String(server.addr.port), "--name", "Ada"],
        { closeAfter: "Hello Ada\n", stdin: "1 + 1\n2 + 2\n" },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, ""); // not "Lost the connection ..."
      await log.waitFor(/^Ada: Session ended/);
    },
  );

  await t.step(
    "a line over 1 MiB on stdin: one sentence that says so, exit 1",
    async () => {
      const { server } = startServer();
      await using _ = server;
      const long = "1".repeat((1 << 20) + 2);
      const result = await runClient(server, ["--name", "Ada"], `${long}\n`);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        "A line over 1048576 bytes came from stdin; stopping\n",
      );
    },
  );

  await t.step(
    "stdin that cannot be read: says so, does not blame the server, exit 1",
    async () => {
      const { server, log } = startServer();
      await using _ = server;
      // A folder as stdin: the shell opens it, every read fails (EISDIR).
      const result = await runWithStdinFrom(".", CLIENT, [
        "--port",
        String(server.addr.port),
        "--name",
        "Ada",
      ]);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        "Cannot read the input: is a directory (check what stdin comes from)\n",
      );
      // The prompt's line is ended: the sentence is not printed after it.
      assert.equal(result.stdout, `Hello Ada\n${PROMPT}\n`);
      await log.waitFor(/^Ada: Session ended/);
    },
  );

  await t.step(
    "a line over 1024 bytes from the server: one sentence that says so, exit 1",
    async () => {
      using server = scriptedServer(async (conn, lines) => {
        await lines.readLine(); // the name
        try {
          await writeLine(conn, `Hello ${"x".repeat(2000)}`);
          await lines.readLine(); // the client's close (a reset, maybe)
        } catch (error) {
          if (!isConnectionLost(error)) throw error;
        }
      });
      const result = await runScript(CLIENT, [
        "--port",
        String(server.port),
        "--name",
        "Ada",
      ], { stdin: "" });
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `The server at 127.0.0.1:${server.port} answered with a line over 1024 bytes (is it the calculator server?)\n`,
      );
      await server.serving;
    },
  );

  await t.step("--help shows --name and --timeout", async () => {
    const result = await runScript(CLIENT, ["--help"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /--name NAME/);
    assert.match(
      result.stdout,
      /--timeout S +seconds to wait for the connection and each answer \(default 10\)/,
    );
  });
});
