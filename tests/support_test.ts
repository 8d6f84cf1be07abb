/**
 * tests/support.ts stops what a script started along with the script: a
 * timed-out `deno task` and a disposed tools/pair.ts take their server and
 * client with them, so a failing test leaves nothing running. A server
 * played by a test fails that test, not the whole file, when its script
 * fails.
 *
 * @module
 */

import assert from "node:assert/strict";
import { writeLine } from "../lib/lines.ts";
import { runTask, scriptedServer, startScript } from "./support.ts";

const ANSWER_LINE =
  /^SEND_(DATE -> \d{4}-\d{2}-\d{2}|TIME -> \d{2}:\d{2}:\d{2})$/;

// 60 requests 50 ms apart take 3 s or more: a client stopped by the signal
// has sent fewer. One left running after a SIGKILL reaches 60 by itself, so
// a regression fails these tests instead of hanging them.
const CLIENT_ARGS = [
  "--count",
  "60",
  "--min-delay",
  "0.05",
  "--max-delay",
  "0.05",
];

/** The pair's output shows its client and its server stopped by a signal. */
function assertStoppedEarly(lines: string[], stdout: string): void {
  const stopped = lines.find((l) => l.startsWith("Stopped: "));
  assert.ok(stopped, `the client never said it stopped:\n${stdout}`);
  assert.ok(!stopped.startsWith("Stopped: 60 "), stdout);
  assert.equal(lines.at(-1), "[server] UDP time server stopped", stdout);
}

Deno.test("runTask() at its timeout stops the task's script and what that started", async () => {
  const result = await runTask("udp-time", CLIENT_ARGS, { timeoutMs: 1000 });
  assert.equal(result.code, 124, result.stderr);
  assert.match(result.stderr, /\(stopped: timeout\)$/);
  assertStoppedEarly(result.stdout.trimEnd().split("\n"), result.stdout);
});

Deno.test("a disposed tools/pair.ts stops its server and client too", async () => {
  await using pair = startScript("tools/pair.ts", [
    "udp/time_server.ts",
    "udp/time_client.ts",
    ...CLIENT_ARGS,
  ], { denoFlags: ["--allow-run", "--allow-read"] });
  await pair.waitFor(ANSWER_LINE);
  await pair[Symbol.asyncDispose](); // what the end of this block does
  assertStoppedEarly(pair.seen, pair.seen.join("\n"));
});

Deno.test("a scripted server's failure fails its own test", async (t) => {
  /** Sends `line` to `server` and reads until the server has closed. */
  async function talkTo(server: { port: number }, line: string) {
    using conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    await writeLine(conn, line);
    const buffer = new Uint8Array(64);
    while (await conn.read(buffer) !== null);
  }
  const expectHello = async (
    _conn: Deno.TcpConn,
    lines: { readLine(): Promise<string | null> },
  ) => {
    assert.equal(await lines.readLine(), "HELLO");
  };

  await t.step(
    "when the test never asked for it: disposing prints and throws it",
    async () => {
      const server = scriptedServer(expectHello);
      await talkTo(server, "GOODBYE"); // the script has failed and closed
      const printed: unknown[][] = [];
      const consoleError = console.error;
      console.error = (...args) => printed.push(args);
      try {
        assert.throws(
          () => server[Symbol.dispose](),
          /'GOODBYE' !== 'HELLO'/,
        );
      } finally {
        console.error = consoleError;
      }
      assert.equal(printed.length, 1);
      assert.equal(printed[0][0], "The scripted server failed:");
      assert.match(String(printed[0][1]), /'GOODBYE' !== 'HELLO'/);
    },
  );

  await t.step(
    "when the test awaits serving: it rejects there, once",
    async () => {
      using server = scriptedServer(expectHello);
      await talkTo(server, "GOODBYE");
      await assert.rejects(server.serving, /'GOODBYE' !== 'HELLO'/);
    },
  );

  await t.step("a script that passes: serving resolves", async () => {
    using server = scriptedServer(expectHello);
    await talkTo(server, "HELLO");
    await server.serving;
  });

  await t.step(
    "disposed before any client came: it serves nobody, quietly",
    async () => {
      const server = scriptedServer(expectHello);
      server[Symbol.dispose]();
      await server.serving;
    },
  );
});
