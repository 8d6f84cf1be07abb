/**
 * `deno task demo`, the README's "see it work" command: it must run every
 * exercise with nobody at the keyboard, show both sides, and exit 0.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  copyKit,
  processTree,
  running,
  runScript,
  runWithStdoutClosed,
  startScript,
  startServer,
} from "./support.ts";
import { Actor } from "../tools/actor.ts";
import { allPids } from "../bench/stats.ts";
import { assertUdpPortFree } from "./udp_support.ts";

Deno.test("deno task demo plays every exercise and shows both sides", async (t) => {
  const demo = await runScript("tools/demo.ts", [], {
    denoFlags: ["--allow-run", "--allow-read"],
    timeoutMs: 60_000,
  });
  const out = demo.stdout;
  const expect = (pattern: RegExp, times = 1) => {
    const hits = out.match(new RegExp(pattern, "gm"))?.length ?? 0;
    assert.ok(hits >= times, `expected ${times}x ${pattern} in:\n${out}`);
  };

  await t.step("it exits 0 and says all parts ran", () => {
    assert.equal(demo.code, 0, `${out}\n${demo.stderr}`);
    assert.doesNotMatch(out, /FAILED/);
    expect(/^All 5 parts ran as expected\.$/);
  });

  await t.step("one heading per exercise, each server stopped", () => {
    for (const q of ["Q1: UDP hello", "Q3: UDP date/time", "Q4: TCP knock"]) {
      expect(new RegExp(`^== Part \\d, ${q}`));
    }
    expect(/^== Part 2, Q6: TCP calculator/);
    expect(/^== Part 3, Q8: chat room/);
    expect(/^ {2}server \| .* server stopped$/, 5);
  });

  await t.step("UDP: the joke, Ok, three date/time answers", () => {
    expect(/^ {2}server \| .*127\.0\.0\.1:\d+.*UDP joke/);
    expect(/^ {2}client \| .*127\.0\.0\.1:\d+.*"Ok"/);
    expect(
      /^ {2}client \| SEND_(DATE|TIME) -> (\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d)$/,
      3,
    );
  });

  await t.step("TCP: knock-knock and a calculator session", () => {
    expect(/^ {2}server \| .*"Knock knock"/);
    expect(/^ {2}client \| .*"Who's there\?"/);
    expect(/^ {2}client \| 25$/);
    expect(/^ {2}client \| -0\.75$/);
    expect(/^ {2}client \| Not sent: "12\(10"/);
    expect(/^ {2}client \| ERROR division by zero$/);
    expect(/^ {2}client \| Session ended$/);
    expect(/^ {2}server \| Ada: "12 \+ 13" -> 25$/);
  });

  await t.step("chat: join, talk, leave", () => {
    expect(/^ {3}alice \| bob has joined the chat\.$/);
    // What the demo types shows too, marked with `>`.
    expect(/^ {5}bob > \/who$/);
    expect(/^ {3}alice > hi bob$/);
    expect(/^ {5}bob \| In the room: alice, bob$/);
    expect(/^ {5}bob \| alice: hi bob$/);
    expect(/^ {3}alice \| bob: hello alice, bye$/);
    expect(/^ {3}alice \| bob has left the chat\.$/);
  });
});

Deno.test("deno task demo from a folder whose name has a space", async () => {
  const demo = await demoInCopy(); // "lab kit ...", as a student's "My Labs"
  assert.equal(demo.code, 0, `${demo.stdout}\n${demo.stderr}`);
  assert.match(demo.stdout, /^All 5 parts ran as expected\.$/m);
  assert.deepEqual(demo.left, [], "still running");
});

Deno.test("deno task demo: a part that fails is named, its server stopped, exit 1", async () => {
  // The knock-knock client says "Broken" on stderr and exits 3 after its
  // exchange, as a broken exercise would.
  const demo = await demoInCopy({
    file: "tcp/knock_client.ts",
    from: "await runMain(main, COMMAND);",
    to:
      'await runMain(async () => (await main(), console.error("Broken"), 3));',
  });
  const out = demo.stdout;
  assert.equal(demo.code, 1, `${out}\n${demo.stderr}`);
  assert.deepEqual(demo.left, [], "still running");
  assert.match(out, /^FAILED: client exited with code 3$/m);
  assert.match(out, /^ {2}client . Broken$/m); // its stderr shows too
  assert.match(
    out,
    /^1 of 5 parts failed:\n {2}Part 2, Q4: TCP knock-knock \(12002\/tcp\)\n$/m,
  );
  // Every part ran, and stopped its server: the failed one too.
  assert.equal(out.match(/^ {2}server \| .* server stopped$/gm)?.length, 5);
  assert.match(out, /^ {2}server \| Knock-knock server stopped$/m);
});

Deno.test("deno task demo: a server that ignores SIGTERM is killed 5 s later, its part failed", async () => {
  const demo = await demoInCopy({
    file: "tcp/knock_server.ts",
    from: "onShutdown(stop)",
    to: 'onShutdown(() => console.log("SIGTERM: ignored"))',
  });
  const out = demo.stdout;
  assert.equal(demo.code, 1, `${out}\n${demo.stderr}`);
  assert.match(out, /^FAILED: server did not exit within 5 s$/m);
  assert.match(out, /^1 of 5 parts failed:\n {2}Part 2, Q4: TCP knock/m);
  assert.deepEqual(demo.left, [], "still running");
});

Deno.test("deno task demo: every part checks its scripts' exit codes; a server that never says it listens is stopped", async () => {
  const MAIN = "await runMain(main, COMMAND);";
  const exits = (code: string) =>
    `await runMain(async () => (await main(), ${code}), COMMAND);`;
  const demo = await demoInCopy(
    // Part 1: the server runs, but its first line is not `listening on`.
    {
      file: "udp/hello_server.ts",
      from: "UDP hello server listening on",
      to: "UDP hello server ready on",
    },
    // Part 2: the client exits 1 (a failure, as much as any other code).
    { file: "udp/time_client.ts", from: MAIN, to: exits("1") },
    // Part 3: the server stops, but exits 4.
    { file: "tcp/knock_server.ts", from: MAIN, to: exits("4") },
    { file: "tcp/calc_client.ts", from: MAIN, to: exits("1") },
    // Part 5: bob's window ends well, alice's exits 1.
    {
      file: "chat/client.ts",
      from: MAIN,
      to: exits('Deno.args.includes("alice") ? 1 : 0'),
    },
  );
  const out = demo.stdout;
  assert.equal(demo.code, 1, `${out}\n${demo.stderr}`);
  assert.deepEqual(demo.left, [], "still running");
  const failures = out.match(/^FAILED: .*$/gm);
  assert.deepEqual(failures, [
    "FAILED: server did not show /listening on/ within 10 s",
    "FAILED: client exited with code 1",
    "FAILED: server exited with code 4",
    "FAILED: client exited with code 1",
    "FAILED: alice exited with code 1",
  ]);
  assert.match(out, /^5 of 5 parts failed:$/m);
});

Deno.test("deno task demo: the other clients' exit codes are checked too", async () => {
  const MAIN = "await runMain(main, COMMAND);";
  const demo = await demoInCopy(
    {
      file: "udp/hello_client.ts",
      from: MAIN,
      to: "await runMain(async () => (await main(), 1), COMMAND);",
    },
    {
      file: "chat/client.ts",
      from: MAIN,
      to:
        'await runMain(async () => (await main(), Deno.args.includes("bob") ? 1 : 0), COMMAND);',
    },
  );
  const out = demo.stdout;
  assert.equal(demo.code, 1, `${out}\n${demo.stderr}`);
  assert.deepEqual(demo.left, [], "still running");
  assert.deepEqual(out.match(/^FAILED: .*$/gm), [
    "FAILED: client exited with code 1",
    "FAILED: bob exited with code 1",
  ]);
});

/**
 * The demo run from a copy of the kit ({@linkcode copyKit}), with `edits`
 * made first (each `from` replaced by `to`), as an instructor's change gone
 * wrong: what it printed, and the copy's scripts still running after it
 * (killed, so that a failed test leaves none).
 */
async function demoInCopy(
  ...edits: { file: string; from: string; to: string }[]
) {
  const copy = await copyKit();
  try {
    for (const edit of edits) {
      const path = `${copy}/${edit.file}`;
      const source = await Deno.readTextFile(path);
      assert.ok(source.includes(edit.from), `${edit.file}: no ${edit.from}`);
      await Deno.writeTextFile(path, source.replace(edit.from, edit.to));
    }
    const result = await runScript(`${copy}/tools/demo.ts`, [], {
      denoFlags: ["--allow-run", "--allow-read"],
      timeoutMs: 60_000,
    });
    const left = runningIn(copy);
    for (const pid of left) Deno.kill(pid, "SIGKILL");
    return { ...result, left };
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
}

Deno.test("Actor.waitFor(): each line once; a script that has ended fails it at once", async () => {
  await using server = await startServer("udp/time_server.ts");
  await using client = new Actor({
    tag: "client",
    script: "udp/time_client.ts",
    args: [
      ["--port", String(server.port), "--count", "2"],
      ["--request", "SEND_DATE", "--min-delay", "0", "--max-delay", "0"],
    ].flat(),
    print: () => {},
  });
  await client.waitFor(/SEND_DATE ->/);
  await client.waitFor(/SEND_DATE ->/);
  assert.equal(await client.exited(), 0);
  // Both answers were taken: a third is not there, and waiting ends now.
  await assert.rejects(
    client.waitFor(/SEND_DATE ->/),
    /^Error: client ended without showing/,
  );
});

// Once the demo is stopping, a part that goes on to its next script must
// not start one that nothing would stop any more.
Deno.test("Actor.stopAll(): every script running stops, and none starts after", async () => {
  const result = await runScript("tests/actor_stop_all.ts", [], {
    denoFlags: ["--allow-run", "--allow-read"],
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    "server exited 0\nlate: stopped: no new script starts\n",
  );
});

Deno.test("deno task demo: a SIGTERM or SIGINT to it alone stops the scripts it runs", async (t) => {
  // From a copy of the kit, so that what it starts is known by its folder.
  const copy = await copyKit();
  try {
    await t.step("SIGTERM: exit 143", () => signalDemo(copy, "SIGTERM", 143));
    await t.step("SIGINT: exit 130", () => signalDemo(copy, "SIGINT", 130));
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
});

async function signalDemo(copy: string, signal: Deno.Signal, code: number) {
  await using demo = startScript(`${copy}/tools/demo.ts`, [], {
    denoFlags: ["--allow-run", "--allow-read"],
  });
  await demo.waitFor(/^ {2}client \| Asking 127\.0\.0\.1:/);
  // Held still, the demo cannot stop the date/time part's server itself:
  // only the signal can. (Its client may end by itself meanwhile.)
  demo.child.kill("SIGSTOP");
  const [, ...scripts] = processTree(demo.child.pid);
  const commands = scripts.map((pid) =>
    Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ")
  );
  assert.ok(
    commands.some((c) => c.includes("udp/time_server.ts")),
    commands.join("\n"),
  );
  demo.child.kill(signal);
  demo.child.kill("SIGCONT");
  const result = await demo.finish();
  assert.equal(result.code, code, result.stderr);
  assert.match(
    result.stdout,
    new RegExp(`^Stopped \\(${signal}\\): stopping the scripts`, "m"),
  );
  // Stopped, not left to run on under init once the demo has gone.
  // Nor did one start after the signal, as the part it broke gave up.
  const left = [...new Set([...scripts.filter(running), ...runningIn(copy)])];
  for (const pid of left) Deno.kill(pid, "SIGKILL"); // a failed test's too
  assert.deepEqual(left, [], "still running");
}

Deno.test("deno task demo | head: it ends quietly, exit 0, no script left", async () => {
  // Closed in the middle of the first part: the part plays on with its lines
  // dropped, and the next heading, which cannot be written, ends the demo.
  const result = await runWithStdoutClosed("tools/demo.ts", [], {
    closeAfter: "  client | ",
    denoFlags: ["--allow-run", "--allow-read"],
    timeoutMs: 30_000,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const port = /server \| .*listening on 127\.0\.0\.1:(\d+)$/m
    .exec(result.stdout)?.[1];
  assert.ok(port, result.stdout);
  // The UDP hello server it had started is gone: its port is free again.
  assertUdpPortFree(Number(port));
});

Deno.test("deno task demo --help, and a flag it does not take", async () => {
  const flags = { denoFlags: ["--allow-run", "--allow-read"] };
  const help = await runScript("tools/demo.ts", ["--help"], flags);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task demo$/m);
  const bad = await runScript("tools/demo.ts", ["--bogus"], flags);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--bogus/);
});

/** Running processes whose working folder is `dir` (`/proc`, Linux). */
function runningIn(dir: string): number[] {
  const cwd = (pid: number) => {
    try {
      return Deno.readLinkSync(`/proc/${pid}/cwd`);
    } catch {
      return undefined; // gone meanwhile
    }
  };
  return allPids().filter((pid) => cwd(pid) === dir && running(pid));
}
