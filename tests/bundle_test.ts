/**
 * `deno task bundle` makes files a student can copy anywhere: each bundled
 * exercise is copied ALONE into an empty folder and run there with the
 * command its own first lines give, a bundled client against our server and
 * a bundled server with our client.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  copyKit,
  ROOT,
  RunningScript,
  runScript,
  type ScriptResult,
  startServer,
} from "./support.ts";

const BUNDLE_FLAGS = ["--allow-run", "--allow-read", "--allow-write"];

/** A server and its client, and a short scripted session between them. */
interface Pair {
  server: string;
  client: string;
  clientArgs: string[];
  stdin?: string;
  /** What the client prints when the session worked. */
  expect: RegExp;
}

const PAIRS: Pair[] = [
  {
    server: "udp/hello_server.ts",
    client: "udp/hello_client.ts",
    clientArgs: [],
    expect: /"Ok"/,
  },
  {
    server: "udp/time_server.ts",
    client: "udp/time_client.ts",
    clientArgs: ["--count", "1", "--request", "SEND_DATE"],
    expect: /SEND_DATE.*\d{4}-\d\d-\d\d/,
  },
  {
    server: "tcp/knock_server.ts",
    client: "tcp/knock_client.ts",
    clientArgs: [],
    expect: /Who's there\?/,
  },
  {
    server: "tcp/calc_server.ts",
    client: "tcp/calc_client.ts",
    clientArgs: ["--name", "Ada"],
    stdin: "12 + 13\nq\n",
    expect: /25[\s\S]*Session ended/,
  },
  {
    server: "chat/server.ts",
    client: "chat/client.ts",
    clientArgs: ["--name", "ada"],
    stdin: "/who\nquit\n",
    expect: /In the room: ada$/m,
  },
];

Deno.test("deno task bundle: each file runs alone in an empty folder", async (t) => {
  const out = await Deno.makeTempDir({ prefix: "lab-dist-" });
  // Its own temporary folder, to see that it leaves nothing behind there.
  const scratch = await Deno.makeTempDir({ prefix: "lab-tmp-" });
  try {
    const made = await runScript("tools/bundle.ts", ["--out", out], {
      denoFlags: BUNDLE_FLAGS,
      env: { TMPDIR: scratch },
    });
    assert.equal(made.code, 0, made.stderr);
    const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    const expected = PAIRS.flatMap((p) => [p.server, p.client])
      .map(bundledName).sort();
    assert.deepEqual(files, expected);
    assert.deepEqual([...Deno.readDirSync(scratch)], [], "left in TMPDIR");
    // It prints what README.md shows, the folder aside: the run lines too.
    const readme = await Deno.readTextFile(`${ROOT}README.md`);
    const shown = /```console\n\$ deno task bundle\n([^`]*)```/.exec(readme);
    assert.ok(shown, "README.md shows no `deno task bundle` output");
    assert.deepEqual(
      squeeze(made.stdout.replaceAll(`${out}/`, "dist/")),
      squeeze(shown[1]),
    );

    // Run by hand, a file's flags are easily forgotten (--unstable-net
    // above all): each left out in turn gets one sentence naming it.
    await t.step(
      "a flag left out: one sentence that names it, exit 1",
      async () => {
        for (const source of PAIRS.flatMap((p) => [p.server, p.client])) {
          const copy = await copyAlone(out, source);
          try {
            for (const flag of copy.flags) {
              const without = copy.flags.filter((f) => f !== flag);
              const ran = await new RunningScript(
                aloneCommand(
                  { ...copy, flags: without },
                  ["--port", "9"],
                  false,
                )
                  .spawn(),
              ).finish();
              const what = `${copy.name} without ${flag}`;
              assert.equal(ran.code, 1, `${what}: ${ran.stderr}`);
              assert.match(ran.stderr, /^[^\n]+\n$/, `${what}: one line`);
              assert.ok(ran.stderr.includes(flag), `${what}: ${ran.stderr}`);
              if (flag === "--unstable-net") {
                // The command it suggests is the file's own Run line.
                assert.equal(
                  ran.stderr,
                  `UDP needs Deno's --unstable-net flag: deno run ${
                    copy.flags.join(" ")
                  } ${copy.name}\n`,
                );
              }
            }
          } finally {
            await Deno.remove(copy.dir, { recursive: true });
          }
        }
      },
    );

    for (const pair of PAIRS) {
      await t.step(
        `${bundledName(pair.server)} serves our client`,
        async () => {
          await using server = await startAlone(out, pair.server);
          const client = await runScript(
            pair.client,
            ["--port", String(server.port), ...pair.clientArgs],
            { stdin: pair.stdin },
          );
          assert.equal(client.code, 0, client.stderr);
          assert.match(client.stdout, pair.expect);
        },
      );
      await t.step(
        `${bundledName(pair.client)} talks to our server`,
        async () => {
          await using server = await startServer(pair.server);
          const client = await runAlone(out, pair.client, {
            args: ["--port", String(server.port), ...pair.clientArgs],
            stdin: pair.stdin,
          });
          assert.equal(client.code, 0, client.stderr);
          assert.match(client.stdout, pair.expect);
        },
      );
    }
  } finally {
    await Deno.remove(out, { recursive: true });
    await Deno.remove(scratch, { recursive: true });
  }
});

Deno.test("deno task bundle: an exercise that does not parse is named, exit 1", async () => {
  // An instructor's edit gone wrong, in a copy of the kit.
  const copy = await copyKit();
  try {
    const source = `${copy}/tcp/calc_server.ts`;
    await Deno.writeTextFile(source, "\nconst unfinished = ;\n", {
      append: true,
    });
    const r = await runScript(`${copy}/tools/bundle.ts`, [
      "--out",
      `${copy}/dist`,
    ], { denoFlags: BUNDLE_FLAGS });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^Cannot bundle tcp\/calc_server\.ts: /);
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
});

/** Lines with each run of spaces as one (the README's columns differ). */
function squeeze(text: string): string[] {
  return text.trim().split("\n").map((line) => line.replace(/\s+/g, " "));
}

/** `udp/time_server.ts` -> `udp_time_server.js` */
function bundledName(source: string): string {
  return source.replace("/", "_").replace(/\.ts$/, ".js");
}

/**
 * Copy `dist/<source as bundled>` alone into a new empty folder and read
 * the `deno run` flags from its header's `// Run: deno run ...` line.
 */
async function copyAlone(out: string, source: string) {
  const name = bundledName(source);
  const dir = await Deno.makeTempDir({ prefix: "lab-alone-" });
  try {
    await Deno.copyFile(`${out}/${name}`, `${dir}/${name}`);
    const text = await Deno.readTextFile(`${dir}/${name}`);
    assert.match(text, new RegExp(`^// ${RegExp.escape(name)}: \\S`));
    const run = new RegExp(
      `^// Run: deno run ((?:--\\S+ )*)${RegExp.escape(name)}`,
      "m",
    )
      .exec(text);
    assert.ok(run, `${name} has no '// Run: deno run ... ${name}' line`);
    // What it is in full (its source's first paragraph, to its full stop),
    // its partner's command next to its own, and for a server, nc by hand.
    assert.match(text, /^[^]*?\.\n\/\/\n\/\/ Run: /);
    const partner = name.includes("server")
      ? name.replace("server", "client")
      : name.replace("client", "server");
    assert.match(
      text,
      new RegExp(`^// With: deno run (?:--\\S+ )*${partner}$`, "m"),
    );
    if (name.includes("server")) assert.match(text, /^\/\/ Try by hand: nc /m);
    return { dir, name, flags: run[1].trim().split(" ") };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

function aloneCommand(
  copy: { dir: string; name: string; flags: string[] },
  args: string[],
  stdin: boolean,
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...copy.flags, copy.name, ...args],
    cwd: copy.dir,
    env: { NO_COLOR: "1" },
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Its --help, and the hint after a wrong flag, say how to run the file
 * itself: alone, `deno task` has no such task.
 */
async function checkHelp(copy: { dir: string; name: string; flags: string[] }) {
  const runAs = `deno run ${copy.flags.join(" ")} ${copy.name}`;
  const help = await new RunningScript(
    aloneCommand(copy, ["--help"], false).spawn(),
  ).finish();
  assert.equal(help.code, 0, help.stderr);
  assert.match(
    help.stdout,
    new RegExp(`^Usage: ${RegExp.escape(runAs)} \\[--`, "m"),
  );
  const wrong = await new RunningScript(
    aloneCommand(copy, ["--bogus"], false).spawn(),
  ).finish();
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.equal(
    wrong.stderr,
    `Unknown option '--bogus'\nRun '${runAs} --help' for usage.\n`,
  );
}

/** Run a bundled client alone (after checking its --help) to its end. */
async function runAlone(
  out: string,
  source: string,
  options: { args: string[]; stdin?: string },
): Promise<ScriptResult> {
  const copy = await copyAlone(out, source);
  try {
    await checkHelp(copy);
    const running = new RunningScript(
      aloneCommand(copy, options.args, options.stdin !== undefined).spawn(),
    );
    if (options.stdin !== undefined) {
      await running.write(options.stdin);
      await running.closeStdin();
    }
    return await running.finish();
  } finally {
    await Deno.remove(copy.dir, { recursive: true });
  }
}

/** Start a bundled server alone (after checking its --help), free port. */
async function startAlone(out: string, source: string) {
  const copy = await copyAlone(out, source);
  let running: RunningScript | undefined;
  const dispose = async () => {
    await running?.stop();
    await Deno.remove(copy.dir, { recursive: true });
  };
  try {
    await checkHelp(copy);
    running = new RunningScript(
      aloneCommand(copy, ["--host", "127.0.0.1", "--port", "0"], false).spawn(),
    );
    const first = await running.waitFor(/./);
    const port = Number(/listening on \S+:(\d+)/.exec(first)?.[1]);
    assert.ok(port > 0, `first line has no 'listening on': ${first}`);
    return { port, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
