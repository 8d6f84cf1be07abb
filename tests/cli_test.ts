/**
 * lib/cli.ts: flags parsed into typed values or refused with a UsageError,
 * what a person sees from every script for `--help` and a bad flag, the
 * pair tasks' `--help`, every script's default port, every server's default
 * host and its stop on Ctrl+C, and every script's first lines (CONTRACT 1-2).
 */

import assert from "node:assert/strict";
import {
  clientFlags,
  FatalError,
  inputFailure,
  OutputClosed,
  outputFailure,
  OutputRefused,
  parseFlags,
  printLine,
  printWhileOpen,
  serverFlags,
  timeoutFlag,
  usage,
  UsageError,
} from "../lib/cli.ts";
import { exerciseEntries } from "../tools/bundle.ts";
import { ROOT, runScript, runTask, startScript } from "./support.ts";

const COMMAND = {
  name: "demo-task",
  summary: "A demo command.",
  flags: {
    ...serverFlags(12001),
    count: { kind: "integer", min: 1, max: 10, help: "how many" },
    delay: { kind: "number", default: 1, max: 60, help: "seconds" },
    request: {
      kind: "string",
      choices: ["SEND_DATE", "SEND_TIME"],
      help: "which",
    },
    verbose: { kind: "boolean", default: false, help: "say more" },
  },
} as const;

/** parseFlags() must refuse `args` with a UsageError matching `message`. */
function assertUsageError(args: string[], message: RegExp) {
  assert.throws(
    () => parseFlags(COMMAND, args),
    (error) => error instanceof UsageError && message.test(error.message),
    `expected a UsageError for ${JSON.stringify(args)}`,
  );
}

Deno.test("parseFlags()", async (t) => {
  await t.step("gives defaults for absent flags, undefined without one", () => {
    assert.deepEqual(parseFlags(COMMAND, []), {
      host: "0.0.0.0",
      port: 12001,
      count: undefined,
      delay: 1,
      request: undefined,
      verbose: false,
    });
    const client = parseFlags(
      { name: "c", summary: "C.", flags: clientFlags(12000) },
      [],
    );
    assert.deepEqual(client, { host: "127.0.0.1", port: 12000 });
  });

  await t.step("accepts ports 0 to 65535", () => {
    for (const port of ["0", "1", "12001", "65535"]) {
      assert.equal(parseFlags(COMMAND, ["--port", port]).port, Number(port));
    }
    assert.equal(parseFlags(COMMAND, ["--port=80"]).port, 80);
  });

  await t.step("refuses other ports", () => {
    for (
      const port of ["65536", "-1", "abc", "", "1.5", "0x10", " 80", "123456"]
    ) {
      assertUsageError(
        ["--port", port],
        /^--port must be a whole number from 0 to 65535, not ".*"$/,
      );
    }
  });

  await t.step("a client's port is 1 to 65535: 0 means any to a server", () => {
    const client = { name: "c", summary: "C.", flags: clientFlags(12000) };
    assert.equal(parseFlags(client, ["--port", "1"]).port, 1);
    assert.throws(
      () => parseFlags(client, ["--port", "0"]),
      /^UsageError: --port must be a whole number from 1 to 65535, not "0"$/,
    );
  });

  await t.step("accepts host names and IP addresses as hosts", () => {
    for (
      const host of [
        "127.0.0.1",
        "::1",
        "lab-pc",
        "lab_pc.local",
        "fe80::1%eth0",
      ]
    ) {
      assert.equal(parseFlags(COMMAND, ["--host", host]).host, host);
    }
    assert.equal(parseFlags(COMMAND, ["--host", "[::1]"]).host, "::1");
  });

  await t.step("refuses hosts no lookup can find: empty, spaces, URLs", () => {
    for (const host of ["", " ", "a b", "http://lab-pc", "lab-pc/", "é.fr"]) {
      assertUsageError(
        ["--host", host],
        /^--host must be a host name or IP address \(like 127\.0\.0\.1, ::1 or lab-pc\), not ".*"$/,
      );
    }
  });

  await t.step("checks integer and number ranges", () => {
    assert.equal(parseFlags(COMMAND, ["--count", "1"]).count, 1);
    assert.equal(parseFlags(COMMAND, ["--count", "10"]).count, 10);
    for (const count of ["0", "11", "2.5", "x", "", "-3"]) {
      assertUsageError(
        ["--count", count],
        /^--count must be a whole number from 1 to 10, not ".*"$/,
      );
    }
    assert.equal(parseFlags(COMMAND, ["--delay", "0"]).delay, 0);
    assert.equal(parseFlags(COMMAND, ["--delay", ".5"]).delay, 0.5);
    assert.equal(parseFlags(COMMAND, ["--delay", "60"]).delay, 60);
    for (const delay of ["-0.1", "-.5", "60.5", "1e3", "abc", ""]) {
      assertUsageError(
        ["--delay", delay],
        /^--delay must be a number from 0 to 60, not ".*"$/,
      );
    }
  });

  await t.step("takes a number with spaces around it (macOS `wc -l`)", () => {
    assert.equal(parseFlags(COMMAND, ["--count", "  7\n"]).count, 7);
    assert.equal(parseFlags(COMMAND, ["--delay", " 0.5 "]).delay, 0.5);
  });

  await t.step(
    "matches choices ignoring case, returns the canonical one",
    () => {
      assert.equal(
        parseFlags(COMMAND, ["--request", "send_time"]).request,
        "SEND_TIME",
      );
      assert.equal(
        parseFlags(COMMAND, ["--request", "Send_Date"]).request,
        "SEND_DATE",
      );
      assertUsageError(
        ["--request", "SEND_NOW"],
        /^--request must be one of SEND_DATE, SEND_TIME, not "SEND_NOW"$/,
      );
    },
  );

  await t.step(
    "refuses unknown flags, stray arguments and missing values",
    () => {
      assertUsageError(["--bogus"], /--bogus/);
      assertUsageError(["stray"], /stray/);
      assertUsageError(["--port"], /--port/);
      assertUsageError(["-x"], /-x/);
      // parseArgs' first sentence only, and only what was typed: a negative
      // number joins a flag that takes a value, nothing else.
      assertUsageError(["stray", "-1"], /^Unexpected argument 'stray'$/);
      assertUsageError(["--verbose", "-1"], /^Unknown option '-1'$/);
    },
  );

  await t.step("keeps a refusal to one line", () => {
    const refused = [
      ["--bogus"],
      ["--port"],
      ["extra"],
      ["--count", "0"],
      ["--port", "--host"], // parseArgs says this in three lines
    ];
    for (const args of refused) {
      try {
        parseFlags(COMMAND, args);
        assert.fail(`accepted ${args}`);
      } catch (error) {
        assert.ok(error instanceof UsageError);
        assert.ok(!error.message.includes("\n"), error.message);
      }
    }
  });

  await t.step(
    "--help prints the usage and stops, without a UsageError",
    () => {
      const printed: string[] = [];
      const write = Deno.stdout.writeSync;
      Deno.stdout.writeSync = (bytes: Uint8Array) => {
        printed.push(new TextDecoder().decode(bytes));
        return bytes.length;
      };
      try {
        assert.throws(
          () => parseFlags(COMMAND, ["--port", "1", "--help"]),
          (error) => error instanceof Error && !(error instanceof UsageError),
        );
      } finally {
        Deno.stdout.writeSync = write;
      }
      assert.deepEqual(printed, [`${usage(COMMAND)}\n`]);
    },
  );
});

Deno.test("usage() names the task and every flag with its help", () => {
  const text = usage(COMMAND);
  assert.ok(text.startsWith("A demo command.\n"));
  assert.match(
    text,
    /^Usage: deno task demo-task \[--host H\] \[--port P\] \[--count N\] \[--delay N\] \[--request TEXT\] \[--verbose\]$/m,
  );
  for (const [name, spec] of Object.entries(COMMAND.flags)) {
    const line = text.split("\n").find((l) => l.startsWith(`  --${name} `));
    assert.ok(line?.endsWith(` ${spec.help}`), `--${name}: ${line}`);
  }
  assert.ok(
    text.endsWith("\n  --help                 show this help and exit"),
  );
  // Every help text starts in the column of --help's.
  for (const line of text.split("\n").filter((l) => l.startsWith("  --"))) {
    assert.match(line.slice(0, 25), /^ {2}--\S+( \S+)? +$/, line);
    assert.notEqual(line[25], " ", line);
  }
});

Deno.test("timeoutFlag() takes 0.01 to 3600 seconds", () => {
  const command = { name: "x", summary: "X.", flags: timeoutFlag(5, "it") };
  assert.equal(parseFlags(command, ["--timeout", "0.01"]).timeout, 0.01);
  assert.equal(parseFlags(command, ["--timeout", "3600"]).timeout, 3600);
  for (const seconds of ["0", "0.001", "3600.5"]) {
    assert.throws(
      () => parseFlags(command, ["--timeout", seconds]),
      new UsageError(
        `--timeout must be a number from 0.01 to 3600, not "${seconds}"`,
      ),
    );
  }
});

Deno.test("printLine() writes the whole line when stdout takes it in pieces", () => {
  const written: number[] = [];
  const writeSync = Deno.stdout.writeSync;
  Deno.stdout.writeSync = (bytes: Uint8Array) => {
    written.push(...bytes.subarray(0, 3)); // a pipe with room for 3 bytes
    return Math.min(3, bytes.length);
  };
  try {
    printLine("SEND_TIME -> 09:26:53");
  } finally {
    Deno.stdout.writeSync = writeSync;
  }
  assert.equal(
    new TextDecoder().decode(new Uint8Array(written)),
    "SEND_TIME -> 09:26:53\n",
  );
});

Deno.test("a system error of stdin or stdout becomes one sentence; a bug stays itself", () => {
  const system = (message: string, code: string) =>
    Object.assign(new Error(message), { code });
  const unread = inputFailure(system("Is a directory (os error 21)", "EISDIR"));
  assert.ok(unread instanceof FatalError);
  const unwritten = outputFailure(
    system("No space left on device (os error 28)", "ENOSPC"),
  );
  assert.ok(unwritten instanceof OutputRefused);
  assert.equal(
    unwritten.message,
    "Cannot write the output: no space left on device (check where stdout goes)",
  );
  assert.ok(
    outputFailure(new Deno.errors.BrokenPipe("Broken pipe")) instanceof
      OutputClosed,
  );
  for (const bug of [new TypeError("a bug"), new Error("no code")]) {
    assert.equal(inputFailure(bug), bug);
    assert.equal(outputFailure(bug), bug);
  }
});

/** Every exercise script and its task (CONTRACT 1), written out. */
const SCRIPTS = {
  "udp/hello_server.ts": "udp-hello-server",
  "udp/hello_client.ts": "udp-hello-client",
  "udp/time_server.ts": "udp-time-server",
  "udp/time_client.ts": "udp-time-client",
  "tcp/knock_server.ts": "tcp-knock-server",
  "tcp/knock_client.ts": "tcp-knock-client",
  "tcp/calc_server.ts": "calc-server",
  "tcp/calc_client.ts": "calc-client",
  "chat/server.ts": "chat-server",
  "chat/client.ts": "chat-client",
};

Deno.test("every script, as a person runs it", async (t) => {
  for (const [script, task] of Object.entries(SCRIPTS)) {
    await t.step(`${script} --help: usage on stdout, exit 0`, async () => {
      const result = await runScript(script, ["--help"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
      assert.match(
        result.stdout,
        new RegExp(`^Usage: deno task ${task} `, "m"),
      );
      assert.match(result.stdout, /--host H/);
      assert.match(result.stdout, /--port P/);
    });

    const badArgs = [
      ["--bogus"],
      ["--port", "65536"],
      ["--port", "abc"],
      ["--host", ""],
    ];
    for (const args of badArgs) {
      await t.step(
        `${script} ${args.join(" ")}: one line and a hint on stderr, exit 2`,
        async () => {
          const result = await runScript(script, args);
          assert.equal(result.code, 2, result.stderr);
          assert.equal(result.stdout, "");
          const lines = result.stderr.trimEnd().split("\n");
          assert.equal(lines.length, 2, result.stderr);
          assert.match(
            lines[0],
            args[0] === "--bogus"
              ? /--bogus/
              : new RegExp(`^${args[0]} must be`),
          );
          assert.equal(lines[1], `Run 'deno task ${task} --help' for usage.`);
        },
      );
    }
  }
});

/** The pair tasks (CONTRACT 1), with a flag of their client's. */
const PAIRS = {
  "udp-hello": "--message TEXT",
  "udp-time": "--request R",
  "tcp-knock": "--timeout S",
};

Deno.test("every pair task answers --help and a bad flag itself, under its own name", async (t) => {
  for (const [task, clientFlag] of Object.entries(PAIRS)) {
    await t.step(task, async () => {
      const result = await runTask(task, ["--timeout", "3", "--help"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
      // The pair's own name, no server started, and not --host or --port,
      // which the pair refuses (it picks them).
      assert.match(
        result.stdout,
        new RegExp(`^Usage: deno task ${task} `, "m"),
      );
      assert.ok(result.stdout.includes(`  ${clientFlag} `), result.stdout);
      assert.doesNotMatch(result.stdout, /--host|--port|\[server\]/);
    });
    await t.step(
      `${task} --bogus: refused before a server starts`,
      async () => {
        const result = await runTask(task, ["--bogus"]);
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stdout, "");
        assert.equal(
          result.stderr,
          `Unknown option '--bogus'\nRun 'deno task ${task} --help' for usage.\n`,
        );
      },
    );
  }
});

/**
 * CONTRACT 1's table, written out (never the scripts' own constants): each
 * script's default port, as its --help states it and as it really uses it.
 */
const DEFAULT_PORTS = [
  ["udp/hello_server.ts", 12000],
  ["udp/hello_client.ts", 12000],
  ["udp/time_server.ts", 12001],
  ["udp/time_client.ts", 12001],
  ["tcp/knock_server.ts", 12002],
  ["tcp/knock_client.ts", 12002],
  ["tcp/calc_server.ts", 12003],
  ["tcp/calc_client.ts", 12003],
  ["chat/server.ts", 5000],
  ["chat/client.ts", 5000],
] as const;

Deno.test("every script's default port is the contract's", async (t) => {
  for (const [script, port] of DEFAULT_PORTS) {
    await t.step(`${script}: ${port}`, async () => {
      const help = await runScript(script, ["--help"]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(
        help.stdout,
        new RegExp(`^  --port P .*\\(default ${port}\\)$`, "m"),
      );
      // The port really used, with nothing bound or reached: a server told
      // to listen on an address that is not this machine's (TEST-NET-1), a
      // client sent to a host that cannot exist. Each names HOST:PORT.
      const host = script.endsWith("server.ts")
        ? "192.0.2.1"
        : "nohost.invalid";
      const result = await runScript(script, ["--host", host], { stdin: "" });
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `^Cannot (listen on|send to|connect to) ${
            host.replaceAll(".", "\\.")
          }:${port}\\b`,
        ),
      );
      if (!script.endsWith("server.ts")) return;
      // Which of the two a server says: a name no lookup finds, or an
      // address that is not this machine's.
      assert.match(
        result.stderr,
        /: the host is not an address of this machine \(check --host\)\n$/,
      );
      const unknown = await runScript(script, ["--host", "nohost.invalid"]);
      assert.equal(unknown.code, 1, unknown.stderr);
      assert.match(
        unknown.stderr,
        /^Cannot listen on nohost\.invalid:\d+(\/udp)?: host not found \(check --host\)\n$/,
      );
    });
  }
});

// CONTRACT 2: servers bind 0.0.0.0 unless told otherwise (other computers
// reach them, as the lab asks), and Ctrl+C stops them as SIGTERM does.
Deno.test("every server binds 0.0.0.0 by default and stops on SIGINT, exit 0", async (t) => {
  const servers = Object.keys(SCRIPTS).filter((s) => s.endsWith("server.ts"));
  for (const script of servers) {
    await t.step(script, async () => {
      await using server = startScript(script, ["--port", "0"]);
      const first = await server.waitFor(/./);
      assert.match(first, / listening on 0\.0\.0\.0:[1-9]\d*$/);
      const result = await server.stop("SIGINT");
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
    });
  }
});

// CONTRACT 1: "A script's first lines say, in one sentence, what it is and
// the exact command that runs it": the `deno run` of its task in deno.json,
// with the permissions and unstable APIs it needs (tools/bundle.ts reads
// them the same way; the bundled files' first lines: tests/bundle_test.ts).
Deno.test("every script's first lines give the deno run command of its task", async (t) => {
  const { tasks } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const entries = exerciseEntries(tasks);
  assert.deepEqual(
    entries.map((e) => e.source).sort(),
    Object.keys(SCRIPTS).sort(),
  );
  for (const entry of entries) {
    await t.step(entry.source, async () => {
      const text = await Deno.readTextFile(`${ROOT}${entry.source}`);
      const header = /^\/\*\*\n([^]*?)\*\//.exec(text)?.[1];
      assert.ok(header, `${entry.source} does not start with a doc comment`);
      // What it is: its first paragraph, which ends with a full stop.
      const [what] = header.split("\n *\n");
      assert.match(what, /^ \* \S[^]*\.$/);
      const command = ["deno run", ...entry.flags, entry.source].join(" ");
      assert.match(
        header,
        new RegExp(`^ \\* Run: +${RegExp.escape(command)}( |$)`, "m"),
        `no 'Run: ${command}' line`,
      );
    });
  }
});

Deno.test("a script run without --allow-net: Deno's own sentence, exit 1", async (t) => {
  const cases = [
    ["udp/hello_server.ts", "0.0.0.0:12000"],
    ["tcp/knock_client.ts", "127.0.0.1:12002"],
  ];
  for (const [script, where] of cases) {
    await t.step(script, async () => {
      const result = await runScript(script, [], { denoFlags: [] });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(
        result.stderr,
        `Requires net access to "${where}", run again with the --allow-net flag\n`,
      );
    });
  }
});

/** `runMain(main)` run as a script: how it ended, what it printed. */
function runMainOf(main: string) {
  const cli = new URL("../lib/cli.ts", import.meta.url).href;
  const script = `import * as cli from ${JSON.stringify(cli)};
await cli.runMain(${main});`;
  return runScript("-", [], { stdin: script, denoFlags: [] });
}

Deno.test("runMain(): the exit code for each way a script ends", async (t) => {
  await t.step("what main returns", async () => {
    const result = await runMainOf("() => 3");
    assert.deepEqual(result, { code: 3, stdout: "", stderr: "" });
  });
  await t.step(
    "a UsageError with no command: its message alone, 2",
    async () => {
      const result = await runMainOf(
        '() => { throw new cli.UsageError("usage: pair.ts A B"); }',
      );
      assert.deepEqual(result, {
        code: 2,
        stdout: "",
        stderr: "usage: pair.ts A B\n",
      });
    },
  );
  await t.step("stdout closed: quietly, 0", async () => {
    const result = await runMainOf(
      '() => { throw new cli.OutputClosed("stdout is closed"); }',
    );
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
  });
  await t.step(
    "a bug: a crash with its stack trace, not a quiet 1",
    async () => {
      const result = await runMainOf(
        '() => { throw new TypeError("a bug"); }',
      );
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: Uncaught .*TypeError: a bug$/m);
      assert.match(result.stderr, /^ +at /m);
    },
  );
});

Deno.test("printWhileOpen() drops the lines after stdout fails, and rethrows a bug", () => {
  for (
    const failure of [new OutputClosed("closed"), new OutputRefused("full")]
  ) {
    const printed: string[] = [];
    const outcomes: (Error | undefined)[] = [undefined, failure, undefined];
    const show = printWhileOpen((line) => {
      const next = outcomes.shift();
      if (next) throw next;
      printed.push(line);
    });
    show("one");
    show("two"); // fails: dropped, and so is what follows
    show("three");
    assert.deepEqual(printed, ["one"]);
  }
  const buggy = printWhileOpen(() => {
    throw new TypeError("a bug");
  });
  assert.throws(() => buggy("line"), TypeError);
});
