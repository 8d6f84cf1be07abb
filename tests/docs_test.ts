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
import { brokenLinks, GUIDES } from "../tools/doc_links.ts";

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
