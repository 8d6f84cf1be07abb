/**
 * The guides point into the code: a link like
 * [`session.name = name;`](../tcp/calc_server.ts#L216) promises that line 216
 * of that file says `session.name = name;`. These checks keep the promise
 * when the code moves, and check that every relative link leads to a file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT } from "./support.ts";

/** The guides with links into the code. */
const GUIDES = [
  "README.md",
  "udp/README.md",
  "tcp/README.md",
  "chat/README.md",
  "docs/wireshark.md",
  "docs/stateless.md",
];

/** `[text](target)`, where target is not a web address or an anchor. */
const LINK = /\[([^\]]*)\]\((?!https?:|#|mailto:)([^)\s]+)\)/g;

Deno.test("guides: code links quote the line they point at", async (t) => {
  for (const guide of GUIDES) {
    const text = await readIfPresent(guide);
    if (text === undefined) continue;
    await t.step(guide, async () => {
      for (const [, label, target] of text.matchAll(LINK)) {
        const [path, anchor] = target.split("#");
        const file = new URL(path, new URL(guide, `file://${ROOT}`));
        const content = await Deno.readTextFile(file).catch(() => undefined);
        assert.ok(content !== undefined, `${guide}: ${target} does not exist`);
        const line = /^L(\d+)$/.exec(anchor ?? "")?.[1];
        const quoted = /^`(.+)`$/.exec(label)?.[1];
        if (line === undefined || quoted === undefined) continue;
        const actual = content.split("\n")[Number(line) - 1] ?? "";
        assert.ok(
          actual.includes(quoted),
          `${guide}: ${target} is now "${actual.trim()}", not "${quoted}"`,
        );
      }
    });
  }
});

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(`${ROOT}${path}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}
