/**
 * The servers' log (lib/batched_log.ts): lines logged together leave in one
 * write, and a write the system refuses stops nothing. The real stdout on
 * /dev/full is in stdout_full_test.ts; here a fake one refuses and then
 * recovers, as a disk does once space is freed.
 */

import assert from "node:assert/strict";
import { batchedStdout, type LogOutput } from "../lib/batched_log.ts";
import { OutputClosed, OutputRefused } from "../lib/cli.ts";
import { within } from "./support.ts";

const REFUSED = "Cannot write the output: no space left on device";

/** A stdout whose next writes throw what `failures` holds, one each. */
function fakeOutput(...failures: Error[]) {
  const writes: string[] = [];
  const warnings: string[] = [];
  const written = Promise.withResolvers<void>();
  function write(text: string) {
    const failure = failures.shift();
    if (failure) throw failure;
    writes.push(text);
    written.resolve();
  }
  const output: LogOutput = {
    write,
    print: write, // one stdout: the failures come in order whichever writes
    warn: (line) => warnings.push(line),
  };
  return { output, writes, warnings, written: written.promise };
}

Deno.test("the lines logged in one turn leave in one write, in order", async () => {
  const stdout = fakeOutput();
  const log = batchedStdout(stdout.output);
  log.log("first");
  log.log("second");
  assert.deepEqual(stdout.writes, [], "not before the timer");
  await within(stdout.written, 2000, "the timer never wrote");
  assert.deepEqual(stdout.writes, ["first\nsecond"]);
});

Deno.test("print() writes what waits, then its line, at once", () => {
  const stdout = fakeOutput();
  const log = batchedStdout(stdout.output);
  log.log("a request");
  log.print("Server stopped");
  assert.deepEqual(stdout.writes, ["a request", "Server stopped"]);
  log.flush();
  assert.equal(stdout.writes.length, 2, "nothing left to write");
});

Deno.test("a refused write is said once, and the lost lines are counted", () => {
  const full = () => new OutputRefused(`${REFUSED} (check where stdout goes)`);
  const stdout = fakeOutput(full(), full(), full());
  const log = batchedStdout(stdout.output);
  log.print("listening"); // refused: 1 line lost
  log.log("one");
  log.print("two"); // "one", then "two", refused: 3 lost, nothing more said
  assert.deepEqual(stdout.warnings, [
    `${REFUSED} (check where stdout goes); the server goes on without its log`,
  ]);
  log.print("three"); // space again
  log.print("four");
  assert.deepEqual(stdout.writes, [
    "(log lines lost while stdout could not be written: 3)\nthree",
    "four",
  ]);
});

Deno.test("a refusal after the log has recovered is said again", () => {
  const full = () => new OutputRefused(REFUSED);
  const stdout = fakeOutput(full());
  const log = batchedStdout(stdout.output);
  log.print("lost");
  log.print("kept");
  stdout.output.print = () => {
    throw full();
  };
  log.print("lost again");
  assert.equal(stdout.warnings.length, 2);
});

Deno.test("a closed stdout drops the lines without a word", () => {
  const stdout = fakeOutput(new OutputClosed("stdout is closed"));
  const log = batchedStdout(stdout.output);
  log.print("nobody reads this");
  log.print("nor this");
  assert.deepEqual(stdout.warnings, []);
  assert.deepEqual(stdout.writes, ["nor this"], "no count of lost lines");
});

Deno.test("a bug in the write is not taken for a full disk", () => {
  const stdout = fakeOutput(new TypeError("a bug"));
  const log = batchedStdout(stdout.output);
  assert.throws(() => log.print("line"), TypeError);
  assert.deepEqual(stdout.warnings, []);
});
