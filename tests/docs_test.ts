/**
 * The guides point into the code: a link like
 * [`session.name = name;`](../tcp/calc_server.ts#L216) promises that line 216
 * of that file says `session.name = name;`. This keeps the promise when the
 * code moves (tools/doc_links.ts; its `--fix` moves the links), and checks
 * that every relative link leads to a file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname, relative } from "node:path";
import { brokenLinks, GUIDES } from "../tools/doc_links.ts";
import { ROOT, runScript } from "./support.ts";

Deno.test("guides: code links quote the line they point at", async (t) => {
  for (const guide of GUIDES) {
    await t.step(guide, async () => {
      const broken = await brokenLinks(guide);
      assert.deepEqual(
        broken.map((b) => b.problem),
        [],
        "fix with: deno run --allow-read --allow-write tools/doc_links.ts --fix",
      );
    });
  }
});

// `deno test --doc` runs the `@example`s, but a failing `console.assert` only
// prints "Assertion failed" and the example still passes: examples assert
// with node:assert, which throws.
Deno.test("doc examples use node:assert, never console.assert", async () => {
  const offenders: string[] = [];
  for (const folder of ["lib", "udp", "tcp", "chat", "tools", "bench"]) {
    for await (const entry of Deno.readDir(folder)) {
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      const path = `${folder}/${entry.name}`;
      const text = await Deno.readTextFile(path);
      if (text.includes("console" + ".assert(")) offenders.push(path);
    }
  }
  assert.deepEqual(offenders, []);
});

// CONTRACT 1: JSR is not reachable from our machines, so nothing comes from
// it; npm packages are for tests only, and through deno.json's imports.
Deno.test("imports: nothing from JSR; npm packages in tests only, through deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile("deno.json")) as {
    imports?: Record<string, string>;
  };
  const mapped = Object.entries(config.imports ?? {});
  assert.deepEqual(mapped.filter(([, to]) => /^(jsr|https?):/.test(to)), []);
  assert.doesNotMatch(await Deno.readTextFile("deno.lock"), /"jsr:/);
  const npm = mapped.filter(([, to]) => to.startsWith("npm:")).map(([name]) =>
    name
  );
  const offenders: string[] = [];
  for (const path of await typeScriptFiles(".")) {
    const text = await Deno.readTextFile(path);
    const inTests = path.startsWith("tests/");
    for (const [, specifier] of text.matchAll(IMPORT)) {
      const fromNpm = npm.some((name) =>
        specifier === name || specifier.startsWith(`${name}/`)
      );
      if (
        /^(jsr|npm|https?):/.test(specifier) || (fromNpm && !inTests)
      ) {
        offenders.push(`${path}: ${specifier}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

/** What an import or export names: `from "x"`, `import "x"`, `import("x")`. */
const IMPORT = /(?:\bfrom|\bimport\s*\(?)\s*["']([^"'\s]+)["']/g;

/** Every .ts file under `dir`, as a relative path, `dist/` left out. */
async function typeScriptFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = dir === "." ? entry.name : `${dir}/${entry.name}`;
    if (entry.name.startsWith(".") || path === "dist") continue;
    if (entry.isDirectory) found.push(...await typeScriptFiles(path));
    else if (entry.isFile && path.endsWith(".ts")) found.push(path);
  }
  return found;
}

// A transcript's `Task <name> <command>` line is what `deno task <name>`
// prints: it must still be deno.json's command for that task.
Deno.test("guides: Task lines in transcripts match deno.json", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile("deno.json")) as {
    tasks: Record<string, string>;
  };
  const stale: string[] = [];
  for (const guide of GUIDES) {
    const text = await Deno.readTextFile(guide);
    for (const [line, name, command] of text.matchAll(/^Task (\S+) (.*)$/gm)) {
      const task = tasks[name];
      if (task === undefined || !command.startsWith(task)) {
        stale.push(`${guide}: ${line}`);
      }
    }
  }
  assert.deepEqual(stale, []);
});

/** A code file for the link checker: what each line says, from line 1. */
const CODE = [
  "const alpha = 1;",
  "// plain",
  "const beta = 2;",
  "gamma();",
  "gamma();",
  "const [a, b] = pair;",
  "// filler",
  "// filler",
  "// filler",
  "// filler",
  "const delta = 4;",
  "const epsilon = 5;",
].join("\n") + "\n";

/** Write `files` (path: text) under a new temporary folder; returns it. */
async function tempTree(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "lab-links-" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(`${dir}/${path}`), { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
  return dir;
}

// The guides' links all hold today, so the test above cannot show that a
// stale one would be caught: this guide has one of each kind.
Deno.test("doc_links.ts finds each kind of broken link, and the fix when there is one", async () => {
  const dir = await tempTree({
    "code.ts": CODE,
    "guide.md": [
      "[`const alpha = 1;`](code.ts#L1) holds.",
      "[`const beta = 2;`](code.ts#L2) has moved to line 3.",
      "[`gamma();`](code.ts#L1) is on two lines now.",
      "[`const [a, b] = pair;`](code.ts#L7) has moved to line 6.",
      "[`const delta = 4;`](code.ts#L12) has moved to line 11.",
      "[`const epsilon = 5;`](code.ts#L12) holds.",
      "[a plain label](code.ts#L1) quotes nothing.",
      "[missing](nowhere.ts) leads nowhere.",
      "[the web](https://example.com/code.ts#L1) is not ours.",
    ].join("\n"),
  });
  try {
    const guide = relative(ROOT, `${dir}/guide.md`);
    const text = await Deno.readTextFile(`${dir}/guide.md`);
    const broken = await brokenLinks(guide);
    assert.deepEqual(
      broken.map(({ target, problem, fixed }) => ({ target, problem, fixed })),
      [
        {
          target: "code.ts#L2",
          problem:
            'code.ts#L2 is now "// plain", not "const beta = 2;" (found at L3)',
          fixed: "code.ts#L3",
        },
        {
          target: "code.ts#L1",
          problem:
            'code.ts#L1 is now "const alpha = 1;", not "gamma();" (found at L4, L5)',
          fixed: undefined, // two lines say it: left to a person
        },
        {
          target: "code.ts#L7",
          problem:
            'code.ts#L7 is now "// filler", not "const [a, b] = pair;" (found at L6)',
          fixed: "code.ts#L6",
        },
        {
          target: "code.ts#L12",
          problem:
            'code.ts#L12 is now "const epsilon = 5;", not "const delta = 4;" (found at L11)',
          fixed: "code.ts#L11",
        },
        {
          target: "nowhere.ts",
          problem: "nowhere.ts does not exist",
          fixed: undefined,
        },
      ],
    );
    // --fix replaces the text at `index`: it must be the target itself.
    for (const { index, target } of broken) {
      assert.equal(text.slice(index, index + target.length), target);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The tool rewrites the guides, so it runs on a copy of itself, lib/ and
// guides of its own. Each fix changes the guide's length; they must not
// shift each other.
Deno.test("doc_links.ts reports without --fix, moves what it can with it, exits 1 while any is left", async () => {
  const guides = Object.fromEntries(GUIDES.map((guide) => [guide, ""]));
  const sources: Record<string, string> = {};
  for (
    const path of [
      "tools/doc_links.ts",
      "lib/cli.ts",
      "lib/errors.ts",
      "lib/lines.ts",
    ]
  ) {
    sources[path] = await Deno.readTextFile(`${ROOT}${path}`);
  }
  const stale = [
    "[`const delta = 4;`](code.ts#L2),",
    "[`const beta = 2;`](code.ts#L1),",
    "[`gamma();`](code.ts#L1).",
  ].join("\n");
  const dir = await tempTree({
    ...sources,
    ...guides,
    "code.ts": CODE,
    "README.md": stale,
  });
  const readme = () => Deno.readTextFile(`${dir}/README.md`);
  const run = (args: string[]) =>
    runScript(`${dir}/tools/doc_links.ts`, args, {
      denoFlags: ["--allow-read", "--allow-write"],
    });
  try {
    const check = await run([]);
    assert.equal(check.code, 1, check.stderr);
    assert.match(
      check.stdout,
      /3 broken link\(s\); --fix moves the ones it can\n$/,
    );
    assert.equal(await readme(), stale);

    const fix = await run(["--fix"]);
    assert.equal(fix.code, 1, fix.stderr);
    assert.equal(
      fix.stdout,
      [
        'README.md: code.ts#L1 is now "const alpha = 1;", not "gamma();" (found at L4, L5)',
        "README.md: code.ts#L1 -> code.ts#L3",
        "README.md: code.ts#L2 -> code.ts#L11",
        "1 broken link(s) left to fix by hand",
        "",
      ].join("\n"),
    );
    const fixed = [
      "[`const delta = 4;`](code.ts#L11),",
      "[`const beta = 2;`](code.ts#L3),",
      "[`gamma();`](code.ts#L1).",
    ].join("\n");
    assert.equal(await readme(), fixed);

    await Deno.writeTextFile(
      `${dir}/README.md`,
      fixed.replace(/\n.*gamma.*$/, ""),
    );
    const clean = await run([]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
