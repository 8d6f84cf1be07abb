/**
 * Command-line plumbing shared by every exercise: flags, usage, exit codes.
 *
 * A script describes its flags once; {@linkcode parseFlags} turns `Deno.args`
 * into typed values or throws a {@linkcode UsageError}, and
 * {@linkcode runMain} turns the errors a person can cause (bad flags, a port
 * in use, a server that is not running) into one plain sentence and the exit
 * code the contract asks for: 2 for misuse, 1 for a failure, never a stack
 * trace. The clients write stdout through {@linkcode writeStdout} or
 * {@linkcode printLine}: a client ends quietly, exit 0, once its stdout is
 * closed (`| head`), and with one sentence, exit 1, when the system refuses
 * the write (`> out.txt` on a full disk), where `console.log` would drop the
 * line in silence or crash with a stack trace. (A server's log goes on
 * without its lines instead: lib/batched_log.ts.) Anything else is a bug and
 * still crashes loudly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags, runMain, serverFlags } from "./cli.ts";
 *
 * const COMMAND = {
 *   name: "udp-time-server",
 *   summary: "UDP date/time server.",
 *   flags: { ...serverFlags(12001) },
 * } as const;
 * const flags = parseFlags(COMMAND, ["--port", "0"]);
 * assert(flags.port === 0 && flags.host === "0.0.0.0");
 * if (import.meta.main) await runMain(() => console.log("hello"));
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errnoName } from "./errors.ts";
import { writeAll } from "./lines.ts";

/** One flag: its kind, its default, and one line for `--help`. */
export interface FlagSpec {
  /**
   * `port` is a whole number 0-65535, `integer` a whole number >= `min`,
   * `host` a host name or IP address (the characters one can hold).
   */
  kind: "string" | "boolean" | "port" | "host" | "integer" | "number";
  /** Shown in usage after the flag name, e.g. `--port P`. */
  placeholder?: string;
  /** Used when the flag is absent; without it the value is `undefined`. */
  default?: string | number | boolean;
  /** Smallest value accepted for `port`, `integer` and `number` (default 0). */
  min?: number;
  /** Largest value accepted for `integer` and `number`. */
  max?: number;
  /** For `string`: the only values accepted (compared ignoring case). */
  choices?: readonly string[];
  /** One line for `--help`. */
  help: string;
}

/** What a script tells `--help` about itself, and the flags it takes. */
export interface CommandSpec {
  /** The task name a person types, e.g. `calc-client`. */
  name: string;
  /** One sentence: what the script does. */
  summary: string;
  flags: Readonly<Record<string, FlagSpec>>;
}

/** The parsed value of one flag, typed from its spec. */
export type FlagValue<S extends FlagSpec> = S["kind"] extends "boolean"
  ? boolean
  : S["kind"] extends "string" | "host"
    ? S extends { default: string } ? string : string | undefined
  : S extends { default: number } ? number
  : number | undefined;

/** The parsed values of a command's flags, by flag name. */
export type FlagValues<C extends CommandSpec> = {
  -readonly [K in keyof C["flags"]]: FlagValue<C["flags"][K]>;
};

/** A person used the command wrongly: print the message and a hint, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * An expected failure (port in use, server not running, no reply): print the
 * message, which is one plain sentence, and exit 1.
 */
export class FatalError extends Error {
  override name = "FatalError";
}

/**
 * What the system said, as words in a sentence:
 * `Connection refused (os error 111)` -> `connection refused`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plainReason } from "./cli.ts";
 * const error = new Error("Is a directory (os error 21)");
 * assert(plainReason(error) === "is a directory");
 * ```
 */
export function plainReason(error: Error): string {
  const text = error.message.replace(/\s*\(os error \d+\)$/, "");
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * The plain sentence for a system error while reading stdin (`< folder`
 * gives EISDIR, a write-only stdin EBADF), or `error` itself. Said where
 * the read is known to be stdin's: a client that talks to a server would
 * otherwise take the system error for a lost connection, and blame the
 * server (or, in the chat window, wait for it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FatalError, inputFailure } from "./cli.ts";
 * const error = Object.assign(new Error("Is a directory (os error 21)"), {
 *   code: "EISDIR",
 * });
 * const failure = inputFailure(error) as FatalError;
 * assert(
 *   failure.message ===
 *     "Cannot read the input: is a directory (check what stdin comes from)",
 * );
 * ```
 */
export function inputFailure(error: unknown): unknown {
  if (errnoName(error) === undefined) return error;
  return new FatalError(
    `Cannot read the input: ${
      plainReason(error as Error)
    } (check what stdin comes from)`,
  );
}

/**
 * Nobody reads stdout any more: it was piped into a program that has exited
 * (`| head -n 2` has its two lines), and {@linkcode writeStdout} found out.
 * {@linkcode runMain} then ends the script
 * quietly with exit 0, as the end of input ends a client: the reader chose
 * to stop, nothing failed, and `set -o pipefail` scripts do not fail. (A C
 * program would be killed by SIGPIPE, status 141 in the shell; Deno ignores
 * that signal and reports `BrokenPipe` on the write instead.)
 */
export class OutputClosed extends Error {
  override name = "OutputClosed";
}

/**
 * The system refused a write to stdout (`> /dev/full`, `> out.txt` on a
 * disk that has filled up): one plain sentence, exit 1, as any
 * {@linkcode FatalError}.
 */
export class OutputRefused extends FatalError {
  override name = "OutputRefused";
}

/**
 * `print` (default {@linkcode printLine}) for lines that are passed on, not
 * the point (a server's log shown by a tool): once stdout is closed
 * ({@linkcode OutputClosed}) or refused ({@linkcode OutputRefused}), later
 * lines are dropped instead of thrown, so the caller goes on reading them
 * (a script whose output pipe is full would stall).
 *
 * @example
 * ```ts
 * import { printWhileOpen } from "./cli.ts";
 * const show = printWhileOpen();
 * show("[server] Connection from 127.0.0.1:50000");
 * ```
 */
export function printWhileOpen(
  print: (line: string) => void = printLine,
): (line: string) => void {
  let open = true;
  return (line) => {
    if (!open) return;
    try {
      print(line);
    } catch (error) {
      if (!(error instanceof OutputClosed || error instanceof OutputRefused)) {
        throw error; // a bug
      }
      open = false;
    }
  };
}

/** Thrown by {@linkcode parseFlags} for `--help` after printing the usage. */
class HelpShown extends Error {}

/**
 * The `--host` and `--port` flags of a server, which binds all interfaces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags, serverFlags } from "./cli.ts";
 * const cmd = { name: "demo-server", summary: "Demo.", flags: serverFlags(5000) };
 * const flags = parseFlags(cmd, ["--port", "0"]);
 * assert(flags.host === "0.0.0.0" && flags.port === 0);
 * ```
 */
export function serverFlags(defaultPort: number) {
  return {
    host: {
      kind: "host",
      placeholder: "H",
      default: "0.0.0.0",
      help: "address to listen on (0.0.0.0: every interface)",
    },
    port: {
      kind: "port",
      placeholder: "P",
      default: defaultPort,
      help: `port to listen on, 0 for any free one (default ${defaultPort})`,
    },
  } as const;
}

/**
 * The `--host` and `--port` flags of a client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clientFlags, parseFlags } from "./cli.ts";
 * const cmd = { name: "demo-client", summary: "Demo.", flags: clientFlags(5000) };
 * const flags = parseFlags(cmd, []);
 * assert(flags.host === "127.0.0.1" && flags.port === 5000);
 * ```
 */
export function clientFlags(defaultPort: number) {
  return {
    host: {
      kind: "host",
      placeholder: "H",
      default: "127.0.0.1",
      help: "server address (default 127.0.0.1)",
    },
    port: {
      kind: "port",
      placeholder: "P",
      default: defaultPort,
      min: 1, // 0 means "any free port" to a server; nothing listens there
      help: `server port, 1-65535 (default ${defaultPort})`,
    },
  } as const;
}

/**
 * The `--timeout S` flag of a client that waits for a server's answers; its
 * help line is `seconds to wait for <wait> (default <defaultSeconds>)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags, timeoutFlag } from "./cli.ts";
 * const cmd = { name: "x", summary: "X.", flags: timeoutFlag(5, "the answer") };
 * assert(parseFlags(cmd, []).timeout === 5);
 * assert(parseFlags(cmd, ["--timeout", "0.5"]).timeout === 0.5);
 * ```
 */
export function timeoutFlag(defaultSeconds: number, wait: string) {
  return {
    timeout: {
      kind: "number",
      placeholder: "S",
      default: defaultSeconds,
      min: 0.01,
      max: 3600,
      help: `seconds to wait for ${wait} (default ${defaultSeconds})`,
    },
  } as const;
}

/**
 * The `--max-clients` flag of a server that refuses one client too many
 * with `ERROR server full`; `what` names what it counts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maxClientsFlag, parseFlags } from "./cli.ts";
 * const cmd = { name: "demo-server", summary: "Demo.", flags: maxClientsFlag(4096, "sessions") };
 * assert(parseFlags(cmd, ["--max-clients", "2"])["max-clients"] === 2);
 * ```
 */
export function maxClientsFlag(defaultCount: number, what: string) {
  return {
    "max-clients": {
      kind: "integer",
      min: 1,
      default: defaultCount,
      help:
        `most ${what} at once; more get ERROR server full (default ${defaultCount})`,
    },
  } as const;
}

/**
 * Parse `args` against `command`, or throw {@linkcode UsageError}.
 * `--help` prints the usage to stdout and exits 0 (under {@linkcode runMain}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./cli.ts";
 * const cmd = {
 *   name: "demo",
 *   summary: "Demo.",
 *   flags: { count: { kind: "integer", min: 1, help: "how many" } },
 * } as const;
 * assert(parseFlags(cmd, ["--count", "3"]).count === 3);
 * ```
 */
export function parseFlags<const C extends CommandSpec>(
  command: C,
  args: string[] = Deno.args,
): FlagValues<C> {
  const options: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
  };
  for (const [name, spec] of Object.entries(command.flags)) {
    options[name] = { type: spec.kind === "boolean" ? "boolean" : "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(args, options),
      options,
      strict: true,
    }));
  } catch (error) {
    // parseArgs' own messages are clear but long; keep their first sentence.
    throw new UsageError(firstSentence((error as Error).message));
  }
  if (values.help) {
    printLine(usage(command));
    throw new HelpShown();
  }
  const result: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(command.flags)) {
    const raw = values[name];
    result[name] = raw === undefined ? spec.default : convert(name, spec, raw);
  }
  return result as FlagValues<C>;
}

/**
 * `--port -1` as `--port=-1`: parseArgs would take `-1` for a flag and say
 * only "argument is ambiguous"; joined, the range check says what is wrong.
 */
function joinNegativeValues(
  args: string[],
  options: Record<string, { type: "string" | "boolean" }>,
): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : "";
    const next = args[i + 1];
    if (
      options[name]?.type === "string" && next !== undefined &&
      /^-\.?\d/.test(next)
    ) {
      joined.push(`${args[i]}=${next}`);
      i++;
    } else {
      joined.push(args[i]);
    }
  }
  return joined;
}

function convert(name: string, spec: FlagSpec, raw: string | boolean) {
  if (typeof raw === "boolean") return raw;
  const min = spec.min ?? 0;
  switch (spec.kind) {
    case "port": {
      const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
      if (!(n >= min && n <= 65535)) {
        throw new UsageError(
          `--${name} must be a whole number from ${min} to 65535, not "${raw}"`,
        );
      }
      return n;
    }
    case "host": {
      // Letters, digits and - . _ of names, : of IPv6, [ ] % as in
      // [fe80::1%eth0]. Anything else (an empty value, a space, a URL) no
      // lookup can find, and Deno refuses it before trying.
      if (!/^[A-Za-z0-9._:%[\]-]+$/.test(raw)) {
        throw new UsageError(
          `--${name} must be a host name or IP address (like 127.0.0.1, ::1 or lab-pc), not "${raw}"`,
        );
      }
      // [::1] as ::1: Deno.listen takes both, the UDP lookup only this one.
      return raw.replace(/^\[(.*)\]$/, "$1");
    }
    case "integer":
    case "number": {
      const pattern = spec.kind === "integer"
        ? /^-?\d+$/
        : /^-?(\d+\.?\d*|\.\d+)$/;
      const n = pattern.test(raw.trim()) ? Number(raw) : NaN;
      const what = spec.kind === "integer" ? "a whole number" : "a number";
      const range = spec.max === undefined
        ? `${min} or more`
        : `from ${min} to ${spec.max}`;
      if (!(n >= min && n <= (spec.max ?? Infinity))) {
        throw new UsageError(
          `--${name} must be ${what} ${range}, not "${raw}"`,
        );
      }
      return n;
    }
    default: {
      if (!spec.choices) return raw;
      const choice = spec.choices.find((c) =>
        c.toLowerCase() === raw.toLowerCase()
      );
      if (choice === undefined) {
        throw new UsageError(
          `--${name} must be one of ${spec.choices.join(", ")}, not "${raw}"`,
        );
      }
      return choice;
    }
  }
}

function firstSentence(message: string): string {
  return message.split(/\.\s|\n/)[0].replace(/\.$/, "");
}

/**
 * The text `--help` prints: the summary, the command line and one line per flag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usage } from "./cli.ts";
 * const text = usage({ name: "x", summary: "X.", flags: {} });
 * assert(text.includes("deno task x"));
 * ```
 */
export function usage(command: CommandSpec): string {
  const entries = Object.entries(command.flags);
  const synopsis = entries.map(([name, spec]) =>
    spec.kind === "boolean" ? `[--${name}]` : `[--${name} ${placeholder(spec)}]`
  );
  const rows = entries.map(([name, spec]) => {
    const left = spec.kind === "boolean"
      ? `--${name}`
      : `--${name} ${placeholder(spec)}`;
    return `  ${left.padEnd(22)} ${spec.help}`;
  });
  rows.push(`  ${"--help".padEnd(22)} show this help and exit`);
  return [
    command.summary,
    "",
    `Usage: ${howToRun(command.name)} ${synopsis.join(" ")}`.trimEnd(),
    "",
    "Options:",
    ...rows,
  ].join("\n");
}

/**
 * The command a person types to start this program: `deno task <name>`, or,
 * in a file made by `deno task bundle`, which a student runs alone, the
 * `deno run` line its first statement sets (tools/bundle.ts):
 *
 *     globalThis.LAB_RUN_AS = "deno run --allow-net --unstable-net udp_time_server.js";
 */
function howToRun(name: string): string {
  const bundled = (globalThis as { LAB_RUN_AS?: unknown }).LAB_RUN_AS;
  return typeof bundled === "string" ? bundled : `deno task ${name}`;
}

function placeholder(spec: FlagSpec): string {
  return spec.placeholder ?? (spec.kind === "string" ? "TEXT" : "N");
}

const encoder = new TextEncoder();

/**
 * Write `text` to stdout as it is (a prompt, with no line end). A closed
 * stdout throws {@linkcode OutputClosed}: the system's `BrokenPipe` looks
 * just like a socket's, and a client would take it for a lost server. A
 * refused write (a full disk) throws {@linkcode OutputRefused}, which says so.
 * (`console.log` tells nobody: it drops what a closed stdout cannot take.)
 *
 * @example
 * ```ts
 * import { writeStdout } from "./cli.ts";
 * await writeStdout("Enter your name: ");
 * ```
 */
export async function writeStdout(text: string): Promise<void> {
  try {
    await writeAll(Deno.stdout, encoder.encode(text));
  } catch (error) {
    throw outputFailure(error);
  }
}

/**
 * `console.log` for a script that prints until stopped, whose output may be
 * piped into `head`: a closed stdout throws {@linkcode OutputClosed}, where
 * `console.log` would drop the line in silence and leave the script
 * running for nobody. A refused write (`> /dev/full`, a full disk) throws
 * {@linkcode OutputRefused} with a plain sentence, where `console.log` would
 * throw the system's error.
 *
 * @example
 * ```ts
 * import { printLine } from "./cli.ts";
 * printLine("SEND_TIME -> 09:26:53");
 * ```
 */
export function printLine(line: string): void {
  const bytes = encoder.encode(`${line}\n`);
  try {
    let written = 0;
    while (written < bytes.length) {
      written += Deno.stdout.writeSync(bytes.subarray(written));
    }
  } catch (error) {
    throw outputFailure(error);
  }
}

/**
 * A write to stdout failed: {@linkcode OutputClosed} if nobody reads it,
 * {@linkcode OutputRefused} with a plain sentence if the system refused the
 * write (`> /dev/full`, a full disk under `> log.txt`), else `error`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outputFailure, OutputRefused } from "./cli.ts";
 * const full = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
 * assert(outputFailure(full) instanceof OutputRefused);
 * ```
 */
export function outputFailure(error: unknown): unknown {
  if (error instanceof Deno.errors.BrokenPipe) {
    return new OutputClosed("stdout is closed");
  }
  if (errnoName(error) === undefined) return error;
  return new OutputRefused(
    `Cannot write the output: ${
      plainReason(error as Error)
    } (check where stdout goes)`,
  );
}

/**
 * Run a script's `main` and exit with the code the contract asks for:
 * its return value (default 0), 2 after a {@linkcode UsageError}, 1 after a
 * {@linkcode FatalError}, 0 after {@linkcode OutputClosed}, without a word
 * (nobody would read it). Other errors are bugs and are rethrown.
 *
 * @example
 * ```ts
 * import { FatalError, runMain } from "./cli.ts";
 * if (import.meta.main) {
 *   await runMain(() => {
 *     throw new FatalError("Cannot connect to 127.0.0.1:5000: connection refused");
 *   });
 * }
 * ```
 */
export async function runMain(
  main: () => void | number | Promise<void | number>,
  command?: CommandSpec,
): Promise<never> {
  try {
    Deno.exit((await main()) ?? 0);
  } catch (error) {
    if (error instanceof HelpShown || error instanceof OutputClosed) {
      Deno.exit(0);
    }
    if (error instanceof UsageError) {
      console.error(error.message);
      // Without a command (tools/pair.ts, whose flags are its client's),
      // the message has to say it all: `deno task --help` is Deno's help.
      if (command) {
        console.error(`Run '${howToRun(command.name)} --help' for usage.`);
      }
      Deno.exit(2);
    }
    if (error instanceof FatalError) {
      console.error(error.message);
      Deno.exit(1);
    }
    throw error;
  }
}
