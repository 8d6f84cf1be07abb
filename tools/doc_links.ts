/**
 * Checks the guides' links into the code, and moves them when the code moves.
 * A link like [`session.name = name;`](../tcp/calc_server.ts#L216) promises
 * that line 216 of that file says `session.name = name;`; after an edit
 * above it, the promise breaks. tests/docs_test.ts runs the check;
 * `--fix` points each broken link at the one line that now says it.
 *
 * Run: deno run --allow-read --allow-write tools/doc_links.ts [--fix]
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseFlags, runMain } from "../lib/cli.ts";

const ROOT_URL = new URL("..", import.meta.url);
// Not ROOT_URL.pathname: a folder named "My Labs" would read "My%20Labs".
const ROOT = fileURLToPath(ROOT_URL);

/** The guides with links into the code, from the project root. */
export const GUIDES = [
  "README.md",
  "udp/README.md",
  "tcp/README.md",
  "chat/README.md",
  "docs/wireshark.md",
  "docs/stateless.md",
  "bench/NOTES.md",
];

const COMMAND = {
  name: "doc-links",
  summary: "Check the guides' links into the code (--fix moves them).",
  flags: {
    fix: {
      kind: "boolean",
      help: "point broken links at the line that now says it",
    },
  },
} as const;

/**
 * `[text](target)`, where target is not a web address or an anchor. A label
 * in backticks may hold `]` (``[`const [data, sender] = datagram;`](...)``).
 */
const LINK = /\[(`[^`]+`|[^\]]*)\]\((?!https?:|#|mailto:)([^)\s]+)\)/g;

/** A link that does not keep its promise. */
export interface BrokenLink {
  guide: string;
  target: string;
  /** Where the target starts in the guide's text. */
  index: number;
  /** What is wrong, in one sentence. */
  problem: string;
  /** The link as it should be, when exactly one line says the quote. */
  fixed?: string;
}

/** Every broken link of `guide` (a path from the project root). */
export async function brokenLinks(guide: string): Promise<BrokenLink[]> {
  const text = await Deno.readTextFile(`${ROOT}${guide}`);
  const broken: BrokenLink[] = [];
  for (const match of text.matchAll(LINK)) {
    const [whole, label, target] = match;
    const index = match.index + whole.length - target.length - 1;
    const [path, anchor] = target.split("#");
    const file = new URL(path, new URL(guide, ROOT_URL));
    const content = await Deno.readTextFile(file).catch(() => undefined);
    if (content === undefined) {
      broken.push({
        guide,
        target,
        index,
        problem: `${target} does not exist`,
      });
      continue;
    }
    const line = Number(/^L(\d+)$/.exec(anchor ?? "")?.[1]);
    const quoted = /^`(.+)`$/.exec(label)?.[1];
    if (!line || quoted === undefined) continue;
    const lines = content.split("\n");
    if (lines[line - 1]?.includes(quoted)) continue;
    const hits = lines.flatMap((l, i) => l.includes(quoted) ? [i + 1] : []);
    broken.push({
      guide,
      target,
      index,
      problem: `${target} is now "${(lines[line - 1] ?? "").trim()}", ` +
        `not "${quoted}" (found at ${
          hits.length ? hits.map((n) => `L${n}`).join(", ") : "no line"
        })`,
      fixed: hits.length === 1 ? `${path}#L${hits[0]}` : undefined,
    });
  }
  return broken;
}

async function main(): Promise<number> {
  const { fix } = parseFlags(COMMAND);
  let left = 0;
  for (const guide of GUIDES) {
    const broken = await brokenLinks(guide);
    let text = await Deno.readTextFile(`${ROOT}${guide}`);
    for (const link of broken.toReversed()) { // from the end: indexes hold
      if (fix && link.fixed) {
        text = text.slice(0, link.index) + link.fixed +
          text.slice(link.index + link.target.length);
        console.log(`${guide}: ${link.target} -> ${link.fixed}`);
      } else {
        console.log(`${guide}: ${link.problem}`);
        left++;
      }
    }
    if (fix) await Deno.writeTextFile(`${ROOT}${guide}`, text);
  }
  if (left > 0) {
    console.log(
      `${left} broken link(s)${
        fix ? " left to fix by hand" : "; --fix moves the ones it can"
      }`,
    );
  }
  return left > 0 ? 1 : 0;
}

if (import.meta.main) await runMain(main, COMMAND);
