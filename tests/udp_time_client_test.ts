/**
 * The UDP date/time client (CONTRACT 3.2): in-process with its randomness,
 * sleep, stdin and Ctrl+C replaced (so nothing waits for real delays), then
 * as a person runs it, against our server or the one named by UDP_TIME_ADDR.
 */

import assert from "node:assert/strict";
import { FatalError, parseFlags } from "../lib/cli.ts";
import { startTimeServer } from "../udp/time_server.ts";
import {
  COMMAND,
  runTimeClient,
  type TimeClientDeps,
  type TimeClientOptions,
} from "../udp/time_client.ts";
import {
  runScript,
  runTask,
  runWithStdoutClosed,
  startScript,
  startServer,
  within,
} from "./support.ts";
import {
  assertUdpPortFree,
  externalUdpTarget,
  FakeServer,
  freeUdpPort,
  TestSocket,
} from "./udp_support.ts";

const SCRIPT = "udp/time_client.ts";
const EXTERNAL = await externalUdpTarget("UDP_TIME_ADDR");
const OWN_ONLY = { ignore: EXTERNAL !== undefined };

const ANSWER_LINE =
  /^SEND_(DATE -> \d{4}-\d{2}-\d{2}|TIME -> \d{2}:\d{2}:\d{2})$/;

function optionsFor(
  server: Deno.NetAddr,
  extra: Partial<TimeClientOptions> = {},
): TimeClientOptions {
  return {
    host: server.hostname,
    port: server.port,
    minDelay: 1,
    maxDelay: 2,
    timeout: 0.1,
    ...extra,
  };
}

/** Deps that record output and delays; `random` returns `values` in turn. */
function fakeDeps(values: number[] = [], extra: TimeClientDeps = {}) {
  const lines: string[] = [];
  const sleeps: number[] = [];
  const deps: TimeClientDeps = {
    random: () => values.length ? values.shift()! : 0,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    log: (line) => lines.push(line),
    ...extra,
  };
  return { deps, lines, sleeps };
}

function answerLines(lines: string[]): string[] {
  return lines.filter((line) => / -> /.test(line));
}

/** How long {@linkcode sleepUntilStopped} waits for the stop at most. */
const STOP_DEADLINE_MS = 5000;

/**
 * A sleep that lasts until the client is stopped. A client that is never
 * stopped (its `q` or signal ignored) fails the test after
 * {@linkcode STOP_DEADLINE_MS} instead of hanging the suite.
 */
function sleepUntilStopped(_ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", stopped);
      reject(new Error(`not stopped within ${STOP_DEADLINE_MS} ms`));
    }, STOP_DEADLINE_MS);
    function stopped() {
      clearTimeout(timer);
      resolve();
    }
    if (signal.aborted) stopped();
    else signal.addEventListener("abort", stopped, { once: true });
  });
}

Deno.test("udp-time-client flag defaults: 1-2 s apart, 1 s timeout, no count", () => {
  assert.deepEqual(parseFlags(COMMAND, []), {
    host: "127.0.0.1",
    port: 12001,
    request: undefined,
    count: undefined,
    "min-delay": 1,
    "max-delay": 2,
    timeout: 1,
  });
});

Deno.test("runTimeClient()", async (t) => {
  await using server = startTimeServer({
    hostname: "127.0.0.1",
    port: 0,
    now: () => Date.parse("2031-01-02T03:04:05Z"),
    timeZone: "UTC",
    log: () => {},
  });

  await t.step(
    "asks at random, waits a random delay, stops after count",
    async () => {
      // random() is read for the first request, then per step: delay, request.
      const { deps, lines, sleeps } = fakeDeps([0.2, 0.5, 0.7, 0.999, 0.4]);
      const summary = await runTimeClient(
        optionsFor(server.addr, { count: 3, minDelay: 1, maxDelay: 2 }),
        deps,
      );
      assert.deepEqual(answerLines(lines), [
        "SEND_DATE -> 2031-01-02",
        "SEND_TIME -> 03:04:05",
        "SEND_DATE -> 2031-01-02",
      ]);
      assert.deepEqual(sleeps, [1500, 1999]);
      assert.deepEqual(summary, { requests: 3, answered: 3, unanswered: 0 });
      assert.match(lines.at(-1)!, /^Stopped: 3 requests, 3 answered$/);
    },
  );

  await t.step("a fixed --request is always sent", async () => {
    const { deps, lines } = fakeDeps([0.9, 0.9, 0.9, 0.9, 0.9]);
    await runTimeClient(
      optionsFor(server.addr, { count: 3, request: "SEND_DATE" }),
      deps,
    );
    assert.deepEqual(
      answerLines(lines),
      Array(3).fill("SEND_DATE -> 2031-01-02"),
    );
  });

  await t.step("stops on a line 'q', not at the end of input", async () => {
    const { deps, lines } = fakeDeps();
    let answered!: () => void;
    const firstAnswer = new Promise<void>((resolve) => answered = resolve);
    const summary = await runTimeClient(optionsFor(server.addr), {
      ...deps,
      log: (line) => {
        lines.push(line);
        if (line.includes(" -> ")) answered();
      },
      sleep: sleepUntilStopped,
      input: (async function* () {
        yield "hello";
        await firstAnswer;
        yield " Q ";
      })(),
    });
    assert.deepEqual(summary, { requests: 1, answered: 1, unanswered: 0 });
  });

  await t.step("the end of input does not stop it", async () => {
    const { deps } = fakeDeps();
    const summary = await runTimeClient(optionsFor(server.addr, { count: 3 }), {
      ...deps,
      input: (async function* () {})(),
    });
    assert.equal(summary.requests, 3);
  });

  await t.step("Ctrl+C (the signal) stops it during a delay", async () => {
    const stop = new AbortController();
    const { deps, lines } = fakeDeps();
    const summary = await runTimeClient(optionsFor(server.addr), {
      ...deps,
      signal: stop.signal,
      sleep: (ms, signal) => {
        stop.abort();
        return sleepUntilStopped(ms, signal);
      },
    });
    assert.deepEqual(summary, { requests: 1, answered: 1, unanswered: 0 });
    assert.match(lines.at(-1)!, /^Stopped: 1 request, 1 answered$/);
  });
});

Deno.test("runTimeClient() when datagrams are lost", async (t) => {
  await t.step("sends a request again, up to 3 times in all", async () => {
    await using fake = new FakeServer(async (_got, reply) => {
      if (fake.received.length === 3) await reply("12:00:00");
    });
    const { deps, lines } = fakeDeps();
    const summary = await runTimeClient(
      optionsFor(fake.addr, { count: 1, request: "SEND_TIME" }),
      deps,
    );
    assert.deepEqual(
      fake.received.map((r) => r.text),
      Array(3).fill("SEND_TIME"),
    );
    assert.equal(lines.filter((l) => /sending it again/.test(l)).length, 2);
    assert.deepEqual(answerLines(lines), ["SEND_TIME -> 12:00:00"]);
    assert.equal(summary.answered, 1);
  });

  await t.step("reports a request after 3 tries and goes on", async () => {
    await using fake = new FakeServer(async (_got, reply) => {
      if (fake.received.length > 3) await reply("2030-01-01");
    });
    const { deps, lines } = fakeDeps();
    const summary = await runTimeClient(
      optionsFor(fake.addr, { count: 2, request: "SEND_DATE" }),
      deps,
    );
    assert.deepEqual(answerLines(lines), [
      "SEND_DATE -> (no answer after 3 tries)",
      "SEND_DATE -> 2030-01-01",
    ]);
    assert.deepEqual(summary, { requests: 2, answered: 1, unanswered: 1 });
  });

  await t.step(
    "a late answer to the other request is not taken for this one's",
    async () => {
      // Each request meets a stray answer of the other kind first, as when
      // a slow server's answer to the previous request arrives late.
      await using fake = new FakeServer(async (got, reply) => {
        const date = got.text === "SEND_DATE";
        await reply(date ? "12:00:00" : "2030-01-01");
        await reply(date ? "2030-01-01" : "12:00:00");
      });
      const { deps, lines } = fakeDeps([0.2, 0.5, 0.7]); // DATE, delay, TIME
      await runTimeClient(optionsFor(fake.addr, { count: 2 }), deps);
      assert.deepEqual(answerLines(lines), [
        "SEND_DATE -> 2030-01-01",
        "SEND_TIME -> 12:00:00",
      ]);
      assert.ok(
        lines.includes(
          "SEND_DATE: ignored 12:00:00, a late answer to the other request",
        ),
        lines.join("\n"),
      );
    },
  );

  await t.step(
    "a late answer of the same kind is dropped before the next request",
    async () => {
      // The first SEND_DATE is answered twice (as when a retry crossed a
      // slow answer). The second answer cannot be told from a real one, so
      // the client must forget it before asking again, not print it as the
      // answer to the next SEND_DATE.
      await using intruder = new TestSocket();
      const strayRead = Promise.withResolvers<void>();
      await using fake = new FakeServer(async (got, reply) => {
        if (fake.received.length > 1) return await reply("2030-01-03");
        await reply("2030-01-01");
        await reply("2030-01-02");
        // Sent after the stray answer from another socket of this process:
        // once the client reports it, the stray answer is in its inbox.
        await intruder.send("marker", got.from);
      });
      const { deps, lines } = fakeDeps([], {
        sleep: () => within(strayRead.promise, 5000, "stray never read"),
        log: (line) => {
          lines.push(line);
          if (line.startsWith("Ignored a datagram from")) strayRead.resolve();
        },
      });
      await runTimeClient(
        optionsFor(fake.addr, { count: 2, request: "SEND_DATE", timeout: 5 }),
        deps,
      );
      assert.deepEqual(answerLines(lines), [
        "SEND_DATE -> 2030-01-01",
        "SEND_DATE -> 2030-01-03",
      ]);
    },
  );

  await t.step(
    "a server that never answers: every request reported, then an error",
    async () => {
      await using fake = new FakeServer(() => {});
      const { deps, lines } = fakeDeps();
      await assert.rejects(
        runTimeClient(optionsFor(fake.addr, { count: 2 }), deps),
        (error) =>
          error instanceof FatalError &&
          /^No answer from 127\.0\.0\.1:\d+ to any of 2 requests, each sent 3 times \(is the server running\?\)$/
            .test(error.message),
      );
      assert.equal(fake.received.length, 6);
      assert.equal(
        answerLines(lines).filter((l) => /no answer after 3 tries/.test(l))
          .length,
        2,
      );
    },
  );

  await t.step(
    "Ctrl+C while waiting for an answer stops at once, no error",
    async () => {
      const stop = new AbortController();
      await using fake = new FakeServer(() => stop.abort());
      const { deps } = fakeDeps();
      const summary = await runTimeClient(
        optionsFor(fake.addr, { timeout: 2 }),
        {
          ...deps,
          signal: stop.signal,
        },
      );
      assert.deepEqual(summary, { requests: 1, answered: 0, unanswered: 0 });
      assert.equal(fake.received.length, 1);
    },
  );
});

Deno.test("runTimeClient() takes answers only from the server's address", async (t) => {
  await using intruder = new TestSocket();

  await t.step(
    "a datagram from elsewhere is ignored, the server's is taken",
    async () => {
      await using fake = new FakeServer(async (got, reply) => {
        await intruder.send("1999-12-31", got.from);
        await reply("2030-01-01");
      });
      const { deps, lines } = fakeDeps();
      await runTimeClient(
        optionsFor(fake.addr, { count: 1, request: "SEND_DATE" }),
        deps,
      );
      assert.deepEqual(answerLines(lines), ["SEND_DATE -> 2030-01-01"]);
      assert.ok(
        lines.includes(
          `Ignored a datagram from 127.0.0.1:${intruder.addr.port}`,
        ),
        lines.join("\n"),
      );
    },
  );

  await t.step("answers only from elsewhere count as no answer", async () => {
    await using fake = new FakeServer(async (got) => {
      await intruder.send("1999-12-31", got.from);
    });
    const { deps, lines } = fakeDeps();
    await assert.rejects(
      runTimeClient(optionsFor(fake.addr, { count: 1 }), deps),
      FatalError,
    );
    assert.equal(fake.received.length, 3);
    assert.ok(!lines.some((l) => l.includes("1999")), lines.join("\n"));
  });

  await t.step("escapes an answer that holds control characters", async () => {
    await using fake = new FakeServer((_got, reply) => reply("\x1b[2J12:00"));
    const { deps, lines } = fakeDeps();
    await runTimeClient(
      optionsFor(fake.addr, { count: 1, request: "SEND_TIME" }),
      deps,
    );
    assert.deepEqual(answerLines(lines), [
      String.raw`SEND_TIME -> \x1b[2J12:00`,
    ]);
  });

  await t.step(
    "prints an answer of 60 characters whole, a longer one cut",
    async () => {
      const sixty = "é".repeat(60); // 60 characters, 120 bytes
      let asked = 0;
      await using fake = new FakeServer((_got, reply) =>
        reply(++asked === 1 ? sixty : `${sixty}!`)
      );
      const { deps, lines } = fakeDeps();
      await runTimeClient(
        optionsFor(fake.addr, { count: 2, request: "SEND_TIME" }),
        deps,
      );
      assert.deepEqual(answerLines(lines), [
        `SEND_TIME -> ${sixty}`,
        `SEND_TIME -> "${sixty}…" (121 bytes)`,
      ]);
    },
  );
});

Deno.test("runTimeClient() with an unknown host", async () => {
  await assert.rejects(
    runTimeClient({
      ...optionsFor({ transport: "udp", hostname: "x", port: 1 }),
      host: "nohost.invalid",
    }),
    (error) =>
      error instanceof FatalError &&
      error.message ===
        "Cannot send to nohost.invalid:1: host not found (check --host)",
  );
});

/** The server the script tests talk to: UDP_TIME_ADDR, or ours in a subprocess. */
async function withServerArgs(
  check: (hostPort: string[]) => Promise<void>,
): Promise<void> {
  if (EXTERNAL) {
    return await check([
      "--host",
      EXTERNAL.hostname,
      "--port",
      String(EXTERNAL.port),
    ]);
  }
  await using server = await startServer("udp/time_server.ts");
  await check(["--host", server.host, "--port", String(server.port)]);
}

Deno.test("udp-time-client script", async (t) => {
  await t.step(
    "--count 3: three requests with their answers, exit 0",
    async () => {
      await withServerArgs(async (hostPort) => {
        const result = await runScript(SCRIPT, [
          ...hostPort,
          "--count",
          "3",
          "--min-delay",
          "0.05",
          "--max-delay",
          "0.1",
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stderr, "");
        const lines = result.stdout.trimEnd().split("\n");
        assert.match(lines[0], /^Asking 127\.0\.0\.1:\d+ from 0\.0\.0\.0:\d+/);
        assert.equal(
          lines.filter((l) => ANSWER_LINE.test(l)).length,
          3,
          result.stdout,
        );
        assert.equal(lines.at(-1), "Stopped: 3 requests, 3 answered");
      });
    },
  );

  await t.step("--request send_time (any case) fixes the request", async () => {
    await withServerArgs(async (hostPort) => {
      const result = await runScript(SCRIPT, [
        ...hostPort,
        "--request",
        "send_time",
        "--count",
        "2",
        "--min-delay",
        "0",
        "--max-delay",
        "0",
      ]);
      assert.equal(result.code, 0, result.stderr);
      const answers = result.stdout.split("\n").filter((l) =>
        ANSWER_LINE.test(l)
      );
      assert.equal(answers.length, 2, result.stdout);
      assert.ok(
        answers.every((l) => l.startsWith("SEND_TIME -> ")),
        result.stdout,
      );
    });
  });

  await t.step(
    "--min-delay and --max-delay are the wait between requests",
    async () => {
      await withServerArgs(async (hostPort) => {
        // No wait: the four answers come one right after another, where
        // the default 1-2 s would put at least 3 s between the first and
        // the last.
        await using quick = startScript(SCRIPT, [
          ...hostPort,
          "--count",
          "4",
          "--min-delay",
          "0",
          "--max-delay",
          "0",
        ]);
        await quick.waitFor(ANSWER_LINE);
        const first = performance.now();
        for (let i = 1; i < 4; i++) await quick.waitFor(ANSWER_LINE);
        const spread = performance.now() - first;
        assert.ok(spread < 2000, `4 answers over ${Math.round(spread)} ms`);
        assert.equal((await quick.finish()).code, 0);
        // 0.5 s: three requests have two waits between them. Counted from
        // before the client started, so a slow machine only adds to it.
        const started = performance.now();
        const slow = await runScript(SCRIPT, [
          ...hostPort,
          "--count",
          "3",
          "--min-delay",
          "0.5",
          "--max-delay",
          "0.5",
        ]);
        const took = performance.now() - started;
        assert.equal(slow.code, 0, slow.stderr);
        assert.ok(took >= 950, `3 requests in ${Math.round(took)} ms`);
      });
    },
  );

  await t.step("a closed stdout (| head) stops it, exit 0", async () => {
    await withServerArgs(async (hostPort) => {
      // No --count: before, it went on asking for nobody until killed.
      const result = await runWithStdoutClosed(SCRIPT, [
        ...hostPort,
        "--min-delay",
        "0.05",
        "--max-delay",
        "0.1",
      ], { closeAfter: " -> ", timeoutMs: 10_000 });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
    });
  });

  await t.step("a line q on stdin stops it, exit 0", async () => {
    await withServerArgs(async (hostPort) => {
      await using client = startScript(SCRIPT, hostPort, { stdin: "" });
      await client.waitFor(ANSWER_LINE);
      await client.write("q\n");
      const result = await client.finish(5000);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Stopped: 1 request, 1 answered$/);
    });
  });

  await t.step(
    "a line over 1024 bytes is ignored, a q after it still stops it",
    async () => {
      await withServerArgs(async (hostPort) => {
        await using client = startScript(
          SCRIPT,
          [...hostPort, "--count", "3", "--min-delay", "1", "--max-delay", "1"],
          { stdin: "" },
        );
        await client.waitFor(ANSWER_LINE);
        await client.write(`${"a".repeat(2000)}\nq\n`);
        const result = await client.finish(10_000);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stderr, "");
        const lines = result.stdout.trimEnd().split("\n");
        assert.equal(lines.at(-1), "Stopped: 1 request, 1 answered");
        assert.ok(
          lines.includes("Ignored a line over 1024 bytes on stdin"),
          result.stdout,
        );
      });
    },
  );

  await t.step(
    "stdin closed: it goes on; Ctrl+C stops it, exit 0",
    async () => {
      await withServerArgs(async (hostPort) => {
        await using client = startScript(SCRIPT, [
          ...hostPort,
          "--min-delay",
          "0.05",
          "--max-delay",
          "0.1",
        ], { stdin: "" });
        await client.closeStdin();
        for (let i = 0; i < 3; i++) await client.waitFor(ANSWER_LINE);
        const result = await client.stop("SIGINT");
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stderr, "");
        assert.match(result.stdout, /Stopped: (\d+) requests?, \1 answered$/);
      });
    },
  );

  await t.step(
    "no server: each request tried 3 times, --timeout each, then reported; exit 1",
    async () => {
      const port = freeUdpPort();
      const started = performance.now();
      const result = await runScript(SCRIPT, [
        "--port",
        String(port),
        "--count",
        "2",
        "--timeout",
        "0.2",
        "--min-delay",
        "0",
        "--max-delay",
        "0",
      ]);
      // 2 requests, 3 tries each, 0.2 s for each try: at least 1.2 s,
      // counted from before the client started, so a slow machine only
      // makes it longer. A client that waits less than --timeout fails.
      const waited = performance.now() - started;
      assert.ok(waited >= 1140, `gave up after ${Math.round(waited)} ms`);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `No answer from 127.0.0.1:${port} to any of 2 requests, each sent 3 times (is the server running?)\n`,
      );
      assert.equal(
        result.stdout.split("\n").filter((l) =>
          l.endsWith("-> (no answer after 3 tries)")
        ).length,
        2,
      );
      assert.equal(
        result.stdout.split("\n").filter((l) =>
          /no answer within 0\.2 s, sending it again \(try [23] of 3\)$/
            .test(l)
        ).length,
        4,
        result.stdout,
      );
    },
  );

  await t.step("host not found: one sentence on stderr, exit 1", async () => {
    const result = await runScript(SCRIPT, [
      "--host",
      "nohost.invalid",
      "--count",
      "1",
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "Cannot send to nohost.invalid:12001: host not found (check --host)\n",
    );
  });

  await t.step(
    "--min-delay above --max-delay is a usage error, exit 2",
    async () => {
      const result = await runScript(SCRIPT, [
        "--min-delay",
        "3",
        "--max-delay",
        "2",
      ]);
      assert.equal(result.code, 2);
      assert.equal(result.stdout, "");
      assert.deepEqual(result.stderr.trimEnd().split("\n"), [
        "--min-delay (3) must not be more than --max-delay (2)",
        "Run 'deno task udp-time-client --help' for usage.",
      ]);
    },
  );
});

Deno.test(
  "deno task udp-time: server and client together",
  OWN_ONLY,
  async () => {
    const { code, stdout: out, stderr } = await runTask("udp-time", [
      "--count",
      "2",
      "--min-delay",
      "0.05",
      "--max-delay",
      "0.1",
    ]);
    assert.equal(code, 0, stderr);
    const lines = out.trimEnd().split("\n");
    assert.match(
      lines[0],
      /^\[server\] UDP time server listening on 127\.0\.0\.1:\d+$/,
    );
    assert.equal(lines.filter((l) => ANSWER_LINE.test(l)).length, 2, out);
    assert.equal(
      lines.filter((l) =>
        /^\[server\] 127\.0\.0\.1:\d+ sent "SEND_(DATE|TIME)" -> /.test(l)
      ).length,
      2,
      out,
    );
    assert.ok(lines.includes("Stopped: 2 requests, 2 answered"), out);
    assert.equal(lines.at(-1), "[server] UDP time server stopped");
  },
);

Deno.test(
  "deno task udp-time: a signal to it alone stops the client, then the server",
  OWN_ONLY,
  async () => {
    // As `kill PID` would: only the task's own process gets the signal. The
    // client stops by itself after --count anyway, so that a regression
    // fails this test instead of hanging it on an orphaned client's output.
    await using pair = startScript("tools/pair.ts", [
      ...["udp/time_server.ts", "udp/time_client.ts", "--count", "20"],
      ...["--min-delay", "0.1", "--max-delay", "0.2"],
    ], { denoFlags: ["--allow-run", "--allow-read"] });
    await pair.waitFor(ANSWER_LINE);
    pair.child.kill("SIGTERM");
    const result = await pair.finish();
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    const stopped = lines.find((l) => l.startsWith("Stopped: "));
    assert.ok(stopped && !stopped.startsWith("Stopped: 20 "), result.stdout);
    assert.equal(lines.at(-1), "[server] UDP time server stopped");
  },
);

Deno.test(
  "deno task udp-time: a q typed goes to the client, which stops, then its server",
  OWN_ONLY,
  async () => {
    await using pair = startScript("tools/pair.ts", [
      ...["udp/time_server.ts", "udp/time_client.ts"],
      ...["--min-delay", "0.1", "--max-delay", "0.2"],
    ], { denoFlags: ["--allow-run", "--allow-read"], stdin: "" });
    await pair.waitFor(ANSWER_LINE);
    await pair.write("q\n");
    const result = await pair.finish(5000);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.ok(
      lines.some((l) => /^Stopped: \d+ requests?, /.test(l)),
      result.stdout,
    );
    assert.equal(lines.at(-1), "[server] UDP time server stopped");
  },
);

Deno.test(
  "deno task udp-time | head: the pair ends quietly, exit 0, its server gone",
  OWN_ONLY,
  async () => {
    // No --count: the client would ask on for nobody, and the server's lines
    // after the close meet a stdout that is gone. The pair says nothing of it
    // and ends with its client, its server stopped.
    const result = await runWithStdoutClosed("tools/pair.ts", [
      ...["udp/time_server.ts", "udp/time_client.ts", "--request", "SEND_TIME"],
      ...["--min-delay", "0.05", "--max-delay", "0.1"],
    ], {
      closeAfter: "SEND_TIME -> ",
      denoFlags: ["--allow-run", "--allow-read"],
      timeoutMs: 10_000,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const port = /^\[server\] UDP time server listening on 127\.0\.0\.1:(\d+)$/m
      .exec(result.stdout)?.[1];
    assert.ok(port, result.stdout);
    assertUdpPortFree(Number(port)); // its server is stopped
  },
);

Deno.test("deno task udp-time --port: refused, it picks the port", async () => {
  const result = await runTask("udp-time", ["--port", "5"]);
  assert.equal(result.code, 2);
  // One sentence and the pair's own usage hint (not `deno task --help`,
  // Deno's own help), as for any other flag the pair refuses.
  assert.equal(
    result.stderr,
    "--port is chosen here (the server runs on a free port of 127.0.0.1); to reach another server, run its client task alone\n" +
      "Run 'deno task udp-time --help' for usage.\n",
  );
  // As --flag=value too.
  const joined = await runTask("udp-time", ["--host=lab-pc"]);
  assert.equal(joined.code, 2);
  assert.match(joined.stderr, /^--host is chosen here \(/);
});
