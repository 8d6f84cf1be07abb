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
