/**
 * tests/support.ts stops what a script started along with the script: a
 * timed-out `deno task` and a disposed tools/pair.ts take their server and
 * client with them, so a failing test leaves nothing running.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runTask, startScript } from "./support.ts";

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
