/**
 * Writes every exercise as one self-contained file (its lib/ imports
 * inlined) that a student can copy anywhere and run with Deno alone, e.g.
 * `deno run --allow-net --unstable-net udp_time_server.js`. The exercises
 * and their permissions are read from the `deno run` tasks in deno.json.
 *
 * Run: deno task bundle              (writes dist/*.js)
 *      deno task bundle --out handout
 * Directly: deno run --allow-run --allow-read --allow-write tools/bundle.ts
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { FatalError, parseFlags, printLine, runMain } from "../lib/cli.ts";

// Not .pathname: a folder named "My Labs" would read "My%20Labs".
const ROOT = fileURLToPath(new URL("..", import.meta.url));

const COMMAND = {
  name: "bundle",
  summary:
    "Write each exercise as one self-contained .js file that runs with deno run alone.",
  flags: {
    out: {
      kind: "string",
      placeholder: "DIR",
      default: "dist",
      help: "folder to write the files to (default dist)",
    },
  },
} as const;

/** One exercise script and how it is run, from a deno.json task. */
export interface Entry {
  /** Path from the project root, e.g. `udp/time_server.ts`. */
  source: string;
  /** Its permissions and unstable APIs, e.g. `["--allow-net", "--unstable-net"]`. */
  flags: string[];
  /** The bundled file's name, e.g. `udp_time_server.js`. */
  output: string;
}

async function main(): Promise<void> {
  const { out } = parseFlags(COMMAND);
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const entries = exerciseEntries(config.tasks);
  await Deno.mkdir(out, { recursive: true });
  for (const entry of entries) {
    const code = await bundle(entry.source);
    const source = await Deno.readTextFile(`${ROOT}${entry.source}`);
    const path = `${out}/${entry.output}`;
    const partner = entries.find((e) => e.output === partnerOf(entry.output));
    await Deno.writeTextFile(path, header(entry, source, partner) + code);
    printLine(`${path.padEnd(28)} deno run ${runLine(entry)}`);
  }
  printLine(`${entries.length} files written to ${out}/`);
}

/**
 * The exercises among deno.json's tasks: every `deno run FLAGS DIR/FILE.ts`
 * whose file is in udp/, tcp/ or chat/.
 */
export function exerciseEntries(tasks: Record<string, string>): Entry[] {
  const entries: Entry[] = [];
  for (const command of Object.values(tasks)) {
    const m = /^deno run ((?:--\S+ )*)((?:udp|tcp|chat)\/\w+\.ts)$/.exec(
      command,
    );
    if (!m || entries.some((e) => e.source === m[2])) continue;
    entries.push({
      source: m[2],
      // What the script needs to run at all: its permissions and unstable
      // APIs. Tuning (the chat server's V8 memory flags) matters only with
      // thousands of clients, so a handout's run line stays short.
      flags: m[1].trim().split(" ").filter((flag) =>
        /^--(allow|unstable)-/.test(flag)
      ),
      output: m[2].replace("/", "_").replace(/\.ts$/, ".js"),
    });
  }
  return entries;
}

/** `deno bundle` one script into a string of JavaScript. */
async function bundle(source: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "lab-bundle-" });
  try {
    const output = `${dir}/out.js`;
    const { success, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "deno", "-o", output, source],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) {
      const why = new TextDecoder().decode(stderr).trim();
      throw new FatalError(`Cannot bundle ${source}: ${why}`);
    }
    return await Deno.readTextFile(output);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `udp_time_server.js` <-> `udp_time_client.js` */
function partnerOf(output: string): string {
  return output.includes("server")
    ? output.replace("server", "client")
    : output.replace("client", "server");
}

/** `--allow-net --unstable-net udp_time_server.js` */
function runLine(entry: Entry): string {
  return [...entry.flags, entry.output].join(" ");
}

/**
 * The bundled file's first lines: what it is (the first paragraph of the
 * source's own header), the command that runs it, how to try it by hand.
 */
export function header(
  entry: Entry,
  source: string,
  partner?: Entry,
): string {
  const doc = /^\/\*\*([\s\S]*?)\*\//.exec(source.trimStart())?.[1] ?? "";
  const lines = doc.split("\n").map((l) => l.replace(/^\s*\* ?/, "").trimEnd());
  const start = lines.findIndex((l) => l !== "");
  const end = lines.indexOf("", start);
  const summary = start < 0
    ? []
    : lines.slice(start, end < 0 ? undefined : end);
  const byHand = lines.flatMap((l) => /\bnc\b.*/.exec(l) ?? []);
  return [
    ...wrap(`${entry.output}: ${summary.join(" ")}`.trimEnd(), 76)
      .map((l) => `// ${l}`),
    "//",
    `// Run: deno run ${runLine(entry)}   (--help lists its flags)`,
    ...(partner ? [`// With: deno run ${runLine(partner)}`] : []),
    ...byHand.map((l) => `// Try by hand: ${l}`),
    "//",
    `// Made by \`deno task bundle\` from ${entry.source} of the socket lab kit,`,
    "// with its lib/ modules inlined: change that file, not this one.",
    "",
    "// How its --help and usage errors say to run it (not `deno task`).",
    `globalThis.LAB_RUN_AS = ${JSON.stringify(`deno run ${runLine(entry)}`)};`,
    "",
    "",
  ].join("\n");
}

/** Break `text` into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line];
}

if (import.meta.main) await runMain(main, COMMAND);
