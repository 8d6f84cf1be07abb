/**
 * Starting and stopping the benchmark's processes: a server under test
 * (any shell command that prints `listening on HOST:PORT` first) and a load
 * tool (a Deno script that prints one JSON line). Each runs in its own
 * process group, with the open-files limit raised to the hard limit, and is
 * killed (the whole group) and awaited when it is done or out of time.
 *
 * Not a script: bench/main.ts imports it.
 *
 * @example
 * ```ts ignore
 * import { startServer } from "./processes.ts";
 * const server = await startServer("node ../shared/bench/chat_server_node.mjs", { cwd: "." });
 * console.log(server.port, server.pid);
 * await server.stop();
 * ```
 *
 * @module
 */

import { allPids, procStat } from "./stats.ts";

const LISTENING = /listening on (\S+):(\d+)/;
/** Keep this much of a process's output, for error messages. */
const TAIL_BYTES = 2048;
/**
 * Keep this much of a load tool's stdout: its JSON result line, which lists
 * failure reasons and wrong answers and can outgrow TAIL_BYTES.
 */
const RESULT_BYTES = 1 << 20;
/** bash runs the command with `ulimit -n` raised as far as it may go. */
const RAISE_FILES = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; ';

/** The last bytes a stream produced, kept while it is drained. */
class Tail {
  text = "";
  readonly done: Promise<void>;

  constructor(
    stream: ReadableStream<Uint8Array>,
    firstLine?: (line: string) => void,
    keepBytes = TAIL_BYTES,
  ) {
    this.done = this.#drain(stream, firstLine, keepBytes);
  }

  async #drain(
    stream: ReadableStream<Uint8Array>,
    firstLine: ((line: string) => void) | undefined,
    keepBytes: number,
  ) {
    const decoder = new TextDecoder();
    let head = "";
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      if (firstLine) {
        head += text;
        const nl = head.indexOf("\n");
        if (nl >= 0) {
          firstLine(head.slice(0, nl));
          firstLine = undefined;
        }
      }
      this.text = (this.text + text).slice(-keepBytes);
    }
    firstLine?.(head);
  }
}

/** PATH with this Deno first, so a command's `deno` is the one running us. */
function envWithDeno(): Record<string, string> {
  const dir = Deno.execPath().replace(/\/[^/]*$/, "");
  return { PATH: `${dir}:${Deno.env.get("PATH") ?? ""}`, NO_COLOR: "1" };
}

/** Every process group started here and not yet over. */
const live = new Set<Deno.ChildProcess>();

/** Kill every process group started here (on Ctrl+C: they are not in ours). */
export function killAll(): void {
  for (const child of live) killGroup(child, "SIGKILL");
}

function spawnGroup(shellCommand: string, cwd: string): Deno.ChildProcess {
  const child = new Deno.Command("bash", {
    args: ["-c", RAISE_FILES + shellCommand],
    cwd,
    env: envWithDeno(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true, // its own process group: killGroup() reaches `deno task` children too
  }).spawn();
  live.add(child);
  child.status.finally(() => live.delete(child));
  return child;
}

function killGroup(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    Deno.kill(-child.pid, signal);
  } catch {
    // the whole group has exited
  }
}

/** Resolve with the child's status, or with null after `ms`. */
async function statusWithin(child: Deno.ChildProcess, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) =>
    timer = setTimeout(() => resolve(null), ms)
  );
  try {
    return await Promise.race([child.status, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How a server ended when asked to stop. */
export interface StopResult {
  /** Exit code after SIGTERM, or `null` if it had to be killed. */
  code: number | null;
  signal: string | null;
  /** The last line it printed (`... server stopped` for ours). */
  lastLine: string;
}

/** A server under test, running. */
export interface RunningServer {
  /** The process that owns the listening socket (not a `deno task` or bash wrapper). */
  pid: number;
  port: number;
  /** SIGTERM the server, give it `graceMs` to exit, then kill its whole group. */
  stop(graceMs?: number): Promise<StopResult>;
}

/**
 * Start `command --host 127.0.0.1 --port 0` with bash in `cwd` and wait (at
 * most `timeoutMs`) for its `listening on HOST:PORT` line.
 */
export async function startServer(
  command: string,
  options: { cwd: string; timeoutMs?: number },
): Promise<RunningServer> {
  const child = spawnGroup(`${command} --host 127.0.0.1 --port 0`, options.cwd);
  let gotFirst: (line: string) => void = () => {};
  const first = new Promise<string>((resolve) => gotFirst = resolve);
  const out = new Tail(child.stdout, gotFirst);
  const err = new Tail(child.stderr);
  const stop = async (graceMs = 5000): Promise<StopResult> => {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch {
      // it exited already
    }
    const status = await statusWithin(child, graceMs);
    killGroup(child, "SIGKILL"); // whatever it left behind
    await child.status;
    await Promise.all([out.done, err.done]);
    const lines = out.text.trimEnd().split("\n");
    return {
      code: status?.code ?? null,
      signal: status?.signal ?? null,
      lastLine: lines[lines.length - 1] ?? "",
    };
  };
  let pid = child.pid;
  const line = await Promise.race([
    first,
    statusWithin(child, options.timeoutMs ?? 30_000),
  ]);
  const m = typeof line === "string" ? LISTENING.exec(line) : null;
  if (!m) {
    await stop(0);
    throw new Error(
      `'${command}' did not print 'listening on HOST:PORT' first: ${
        JSON.stringify(line)
      }; ` +
        `stderr: ${err.text.trim().slice(-400)}`,
    );
  }
  const port = Number(m[2]);
  pid = listenerPid(child.pid, port) ?? child.pid;
  return { pid, port, stop };
}

/**
 * The process in group `pgid` that holds a socket bound to `port` (TCP in
 * LISTEN state, or UDP), found through /proc; `null` if none is found.
 */
export function listenerPid(pgid: number, port: number): number | null {
  const inodes = socketInodes(port);
  for (const pid of groupPids(pgid)) {
    try {
      for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
        const target = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m && inodes.has(m[1])) return pid;
      }
    } catch {
      // exited meanwhile
    }
  }
  return null;
}

/** Inodes of sockets bound to `port`, from /proc/net/{tcp,tcp6,udp,udp6}. */
function socketInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["tcp", "tcp6", "udp", "udp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(`/proc/net/${table}`);
    } catch {
      continue;
    }
    for (const row of text.trim().split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const cols = row.trim().split(/\s+/);
      const localPort = parseInt(cols[1].split(":")[1], 16);
      const listening = table.startsWith("udp") || cols[3] === "0A";
      if (localPort === port && listening) inodes.add(cols[9]);
    }
  }
  return inodes;
}

/** Every process whose process group is `pgid`. */
function groupPids(pgid: number): number[] {
  // A process that exited meanwhile has no stat: NaN, in no group.
  return allPids().filter((pid) => Number(procStat(pid)?.[2]) === pgid);
}

/** What a load tool run gave: its JSON line, or an error saying why not. */
export type ToolResult = Record<string, unknown> & { error?: string };

/**
 * Run a load tool (`deno run -A <script> <args>`) in `cwd` and parse the JSON
 * line it prints last. A tool still running `timeoutMs` after its start is
 * killed (the whole group) and the result says so.
 */
export async function runTool(
  script: string,
  args: string[],
  options: { cwd: string; timeoutMs: number; denoFlags?: string[] },
): Promise<ToolResult> {
  const argv = [
    "deno",
    "run",
    ...(options.denoFlags ?? ["-A"]),
    script,
    ...args,
  ];
  const child = spawnGroup(argv.map(shellQuote).join(" "), options.cwd);
  const out = new Tail(child.stdout, undefined, RESULT_BYTES);
  const err = new Tail(child.stderr);
  const killer = setTimeout(
    () => killGroup(child, "SIGKILL"),
    options.timeoutMs,
  );
  try {
    const status = await child.status;
    await Promise.all([out.done, err.done]);
    const last = out.text.trim().split("\n").pop() ?? "";
    try {
      return JSON.parse(last);
    } catch {
      const why = status.signal === "SIGKILL"
        ? "killed after its time limit"
        : `exit ${status.code}`;
      return {
        error: `${script}: no JSON result (${why}): ${
          err.text.trim().slice(-300)
        }`,
      };
    }
  } finally {
    clearTimeout(killer);
    killGroup(child, "SIGKILL");
  }
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word)
    ? word
    : `'${word.replaceAll("'", `'\\''`)}'`;
}
