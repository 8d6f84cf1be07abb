/**
 * The servers' log (lib/batched_log.ts): lines logged together leave in one
 * write, a write the system refuses stops nothing, and a stdout that takes
 * nothing for a while holds up nothing. The real stdout on /dev/full, and
 * one nobody reads, are in stdout_full_test.ts; here a fake one refuses and
 * then recovers, as a disk does once space is freed, or waits as long as a
 * test wants.
 */

import assert from "node:assert/strict";
import {
  batchedStdout,
  CLOSE_WAIT_MS,
  type LogOutput,
  MAX_WAITING_BYTES,
} from "../lib/batched_log.ts";
import { OutputClosed, OutputRefused } from "../lib/cli.ts";
import { within } from "./support.ts";

const REFUSED = "Cannot write the output: no space left on device";

/**
 * A stdout whose next writes (and prints) throw what `failures` holds, one
 * each; `hold()` makes the writes wait until `release()`.
 */
function fakeOutput(...failures: Error[]) {
  const writes: string[] = [];
  const warnings: string[] = [];
  let gate: PromiseWithResolvers<void> | undefined;
  let started = Promise.withResolvers<void>();
  let settled = Promise.withResolvers<void>();
  function take(text: string) {
    const failure = failures.shift();
    if (failure) throw failure;
    writes.push(text);
  }
  const output: LogOutput = {
    async write(text) {
      started.resolve();
      try {
        await gate?.promise;
        take(text);
      } finally {
        settled.resolve();
        settled = Promise.withResolvers();
      }
    },
    print: take, // one stdout: the failures come in order whichever writes
    warn: (line) => warnings.push(line),
  };
  return {
    output,
    writes,
    warnings,
    /** Writes wait from now on; resolves when one has started. */
    hold() {
      gate = Promise.withResolvers();
      started = Promise.withResolvers();
      return started.promise;
    },
    release() {
      gate?.resolve();
      gate = undefined;
    },
    /** Resolves once the log has seen how the next write went. */
    async nextWrite() {
      await within(settled.promise, 2000, "no write came");
      await new Promise((turn) => setTimeout(turn, 0)); // its outcome handled
    },
  };
}

Deno.test("the lines logged in one turn leave in one write, in order", async () => {
  const stdout = fakeOutput();
  const log = batchedStdout(stdout.output);
  log.log("first");
  log.log("second");
  assert.deepEqual(stdout.writes, [], "not before the timer");
  await log.close("stopped");
  assert.deepEqual(stdout.writes, ["first\nsecond\nstopped"]);
});

Deno.test("print() writes at once; close() writes what waits, then its line", async () => {
  const stdout = fakeOutput();
  const log = batchedStdout(stdout.output);
  log.print("Server listening");
  assert.deepEqual(stdout.writes, ["Server listening"], "at once");
  log.log("a request");
  log.print("after it"); // a line waits: this one goes after it
  await log.close("Server stopped");
  assert.deepEqual(stdout.writes, [
    "Server listening",
    "a request\nafter it",
    "Server stopped",
  ]);
});

Deno.test("while stdout takes nothing, nothing waits for it, and the lines beyond the limit are counted", async () => {
  const stdout = fakeOutput();
  const log = batchedStdout(stdout.output);
  const started = stdout.hold();
  log.log("one");
  await within(started, 2000, "the timer never wrote");
  // The write hangs (a pipe nobody reads); the server logs on.
  const line = "x".repeat(999);
  const fits = Math.floor(MAX_WAITING_BYTES / (line.length + 1));
  for (let i = 0; i < fits + 5; i++) log.log(line);
  assert.equal(stdout.writes.length, 0, "still waiting");
  stdout.release(); // the reader is back
  await log.close("stopped");
  assert.equal(stdout.writes[0], "one");
  const next = stdout.writes[1].split("\n");
  assert.equal(
    next[0],
    "(log lines lost while stdout could not be written: 5)",
  );
  assert.equal(next.length, 1 + fits + 1, "the lines that fitted, all kept");
  assert.equal(next.at(-1), "stopped");
  assert.equal(stdout.writes.length, 2);
});

Deno.test({
  name: "close() gives up when stdout takes nothing, after CLOSE_WAIT_MS",
  sanitizeOps: false, // the fake write stays pending, as a real one would
  async fn() {
    const stdout = fakeOutput();
    const log = batchedStdout(stdout.output);
    const started = stdout.hold();
    log.log("never read");
    await within(started, 2000, "the timer never wrote");
    const t0 = performance.now();
    await within(log.close("stopped"), CLOSE_WAIT_MS + 2000, "close hung");
    assert.ok(performance.now() - t0 >= CLOSE_WAIT_MS - 50, "gave up early");
    assert.deepEqual(stdout.writes, []);
  },
});

Deno.test("a refused write is said once, and the lost lines are counted", async () => {
  const full = () => new OutputRefused(`${REFUSED} (check where stdout goes)`);
  const stdout = fakeOutput(full(), full());
  const log = batchedStdout(stdout.output);
  log.print("listening"); // refused at once: said, 1 line lost
  log.log("one");
  await stdout.nextWrite(); // refused too: 2 lost, not said again
  await log.close("two"); // written, after the count
  assert.deepEqual(stdout.warnings, [
    `${REFUSED} (check where stdout goes); the server goes on without its log`,
  ]);
  assert.deepEqual(stdout.writes, [
    "(log lines lost while stdout could not be written: 2)\ntwo",
  ]);
});

Deno.test("a refusal after the log has recovered is said again", async () => {
  const full = () => new OutputRefused(REFUSED);
  const stdout = fakeOutput(full());
  const log = batchedStdout(stdout.output);
  log.print("lost");
  log.print("kept");
  stdout.output.write = () => Promise.reject(full());
  await log.close("lost again");
  assert.equal(stdout.warnings.length, 2);
});

Deno.test("a closed stdout drops the lines without a word", async () => {
  const stdout = fakeOutput(new OutputClosed("stdout is closed"));
  const log = batchedStdout(stdout.output);
  log.print("nobody reads this");
  log.log("nor this");
  await log.close("nor the last");
  assert.deepEqual(stdout.warnings, []);
  assert.deepEqual(stdout.writes, []);
});

Deno.test("stdout closed during a write: what waits, and what comes, is dropped untried", async () => {
  const stdout = fakeOutput(new OutputClosed("stdout is closed"));
  const log = batchedStdout(stdout.output);
  const started = stdout.hold();
  log.log("one");
  await within(started, 2000, "the timer never wrote");
  log.log("two"); // waits behind "one", whose write then fails: closed
  stdout.release();
  await stdout.nextWrite();
  log.print("three");
  log.log("four");
  await log.close("five");
  assert.deepEqual(stdout.writes, []); // this fake would take them
  assert.deepEqual(stdout.warnings, []);
});

Deno.test("a bug in the write is not taken for a full disk", () => {
  const stdout = fakeOutput(new TypeError("a bug"));
  const log = batchedStdout(stdout.output);
  assert.throws(() => log.print("line"), TypeError);
  assert.deepEqual(stdout.warnings, []);
});

Deno.test("a refused write counts every line it held", async () => {
  const full = () => new OutputRefused(REFUSED);
  const stdout = fakeOutput(full());
  const log = batchedStdout(stdout.output);
  log.log("one");
  log.log("two");
  log.log("three");
  await stdout.nextWrite(); // the three in one write: refused
  await log.close("four");
  assert.deepEqual(stdout.writes, [
    "(log lines lost while stdout could not be written: 3)\nfour",
  ]);
});

Deno.test("print() after lost lines: the count first, then the line, at once", async () => {
  const stdout = fakeOutput(new OutputRefused(REFUSED));
  const log = batchedStdout(stdout.output);
  log.print("lost"); // refused: 1 lost
  log.print("kept");
  await stdout.nextWrite();
  assert.deepEqual(stdout.writes, [
    "(log lines lost while stdout could not be written: 1)\nkept",
  ]);
  await log.close("stopped");
});

Deno.test("print() while a write is in flight goes after it, in order", async () => {
  const stdout = fakeOutput();
  const log = batchedStdout(stdout.output);
  const started = stdout.hold();
  log.log("first");
  await within(started, 2000, "the timer never wrote");
  log.print("second"); // "first" is still being written
  stdout.release();
  await log.close("third");
  assert.deepEqual(stdout.writes, ["first", "second\nthird"]);
});

Deno.test("what is logged while a write waits is written after it, unasked", async () => {
  const writes: string[] = [];
  const started = Promise.withResolvers<void>();
  const back = Promise.withResolvers<void>(); // the reader is back
  const both = Promise.withResolvers<void>();
  const log = batchedStdout({
    async write(text) {
      started.resolve();
      await back.promise;
      writes.push(text);
      if (writes.length === 2) both.resolve();
    },
    print: (line) => writes.push(line),
    warn: () => {},
  });
  log.log("one");
  await within(started.promise, 2000, "the timer never wrote");
  log.log("two");
  back.resolve();
  await within(both.promise, 2000, "two waits for the next log line");
  assert.deepEqual(writes, ["one", "two"]);
  await log.close("stopped");
});

Deno.test("the lines waiting fill MAX_WAITING_BYTES, newlines counted, and not a byte more", async () => {
  const stdout = fakeOutput();
  const log = batchedStdout(stdout.output);
  const started = stdout.hold();
  log.log("in flight");
  await within(started, 2000, "the timer never wrote");
  const line = "x".repeat(1023); // 1024 bytes with its newline
  const fits = MAX_WAITING_BYTES / 1024;
  for (let i = 0; i < fits; i++) log.log(line); // exactly full
  log.log(""); // its newline would be one byte too many
  stdout.release();
  await log.close("stopped");
  const next = stdout.writes[1].split("\n");
  assert.equal(
    next[0],
    "(log lines lost while stdout could not be written: 1)",
  );
  assert.equal(next.length, 1 + fits + 1);
  assert.equal(next.at(-1), "stopped"); // close()'s line is never dropped
});

Deno.test("the real stdout and stderr both full (`> log.txt 2>&1`): nothing thrown; a bug is", async () => {
  // The default output, on a console whose every write the system refuses.
  const enospc = () =>
    Object.assign(new Error("No space left on device (os error 28)"), {
      code: "ENOSPC",
    });
  let stderrFailure: () => Error = enospc;
  const { log, error } = console;
  const write = Deno.stdout.write;
  console.log = () => {
    throw enospc();
  };
  console.error = () => {
    throw stderrFailure();
  };
  Deno.stdout.write = () => Promise.reject(enospc());
  try {
    const stdout = batchedStdout();
    stdout.print("listening"); // refused; the warning on stderr too
    stdout.log("one");
    await stdout.close("stopped");
    stderrFailure = () => new TypeError("a bug");
    assert.throws(() => batchedStdout().print("listening"), TypeError);
  } finally {
    Object.assign(console, { log, error });
    Deno.stdout.write = write;
  }
});
