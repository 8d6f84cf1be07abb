/**
 * Helpers for the tests: run the real scripts as a person does, start a
 * server on a free port and learn its address from its first line, and find
 * the server a protocol test should judge (ours, or one named by an
 * environment variable such as `CALC_ADDR=127.0.0.1:12003`).
 *
 * Every process started here is stopped and awaited by its owner's `finally`
 * (or `await using`), so a failing test leaves nothing running. Stopping is
 * SIGTERM first, then SIGKILL (see {@linkcode terminate}), so that what a
 * process started (`deno task` its script, tools/pair.ts its server and
 * client) is stopped with it.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { allPids, procStat } from "../bench/stats.ts";
import { LineReader, streamSource } from "../lib/lines.ts";

/** The project's root folder (tests run scripts by their path from here). */
export // Not .pathname: a folder named "My Labs" would read "My%20Labs".
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** `deno run` flags that every exercise script needs, and no more. */
export const RUN_FLAGS = ["--allow-net", "--unstable-net"];

/** What a finished script did. */
export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode runScript} and {@linkcode startScript}. */
export interface ScriptOptions {
  /** Text written to the script's stdin, which is then closed. */
  stdin?: string;
  /** Extra environment variables (e.g. `TZ`). */
  env?: Record<string, string>;
  /** Stop the script after this many ms (default 20 000): a hang fails. */
  timeoutMs?: number;
  /** `deno run` flags (default {@linkcode RUN_FLAGS}). */
  denoFlags?: string[];
}

/** `deno run <flags> <script> <args>` as a command, from the project root. */
export function denoCommand(
  script: string,
  args: string[],
  options: ScriptOptions & { stdin?: string } = {},
  stdio: { stdin: "piped" | "null"; stdout: "piped"; stderr: "piped" } = {
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  },
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: runArgs(script, args, options),
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    ...stdio,
  });
}

/** `deno` arguments that run `script` with `args`: `run <flags> script args...`. */
function runArgs(
  script: string,
  args: string[],
  options: ScriptOptions,
): string[] {
  return ["run", ...(options.denoFlags ?? RUN_FLAGS), script, ...args];
}

/**
 * Run a script to its end, with `stdin` piped in, and collect what it
 * printed. A script still running after `timeoutMs` is stopped (with what
 * it started: {@linkcode terminate}), and the result says so in `stderr`
 * (code 124), so a hang fails instead of blocking.
 */
export function runScript(
  script: string,
  args: string[] = [],
  options: ScriptOptions = {},
): Promise<ScriptResult> {
  return runToEnd(denoCommand(script, args, options), options);
}

/**
 * Run `deno task -q <name> <args>` from the project root, as a person types
 * it, and collect what it printed (see {@linkcode runScript}).
 */
export function runTask(
  name: string,
  args: string[] = [],
  options: ScriptOptions = {},
): Promise<ScriptResult> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", name, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  return runToEnd(command, options);
}

async function runToEnd(
  command: Deno.Command,
  options: ScriptOptions,
): Promise<ScriptResult> {
  const child = command.spawn();
  let stopping: Promise<void> | undefined;
  const timer = setTimeout(
    () => stopping = terminate(child),
    options.timeoutMs ?? 20_000,
  );
  try {
    if (options.stdin !== undefined) {
      await typeAndClose(child.stdin.getWriter(), options.stdin);
    }
    const { code, signal, stdout, stderr } = await child.output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    const timedOut = stopping !== undefined || signal === "SIGKILL";
    return {
      code: timedOut ? 124 : code,
      stdout: decode(stdout),
      stderr: decode(stderr) + (timedOut ? "\n(stopped: timeout)" : ""),
    };
  } finally {
    clearTimeout(timer);
    await stopping;
  }
}

/** How long a process has after SIGTERM before {@linkcode terminate} kills it. */
const STOP_GRACE_MS = 3000;

/**
 * Stop `child` and what it started, and wait for its exit. SIGTERM first:
 * `deno task` passes it on to its script, and tools/pair.ts and
 * tools/demo.ts stop their servers and clients on it. If `child` has not
 * exited {@linkcode STOP_GRACE_MS} later, SIGKILL, which cannot be passed
 * on, goes to it and to every process under it: a script too broken to
 * stop what it started would otherwise leave that running, holding our
 * pipes open, and the test would wait for their end forever.
 */
async function terminate(child: Deno.ChildProcess): Promise<void> {
  // child.kill() for the child: it knows when the child has exited, so a
  // pid reused since then is never hit.
  const signal = (send: () => void) => {
    try {
      send();
    } catch {
      // exited already
    }
  };
  signal(() => child.kill("SIGTERM"));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    child.status.then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), STOP_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (!exited) {
    const [, ...under] = processTree(child.pid); // read while it still runs
    signal(() => child.kill("SIGKILL"));
    for (const pid of under) signal(() => Deno.kill(pid, "SIGKILL"));
  }
  await child.status;
}

/**
 * `pid` and every process under it, parents first, from `/proc` (Linux;
 * elsewhere `pid` alone).
 */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const child of allPids()) {
    const ppid = procStat(child)?.[1]; // undefined: gone meanwhile
    if (ppid === undefined) continue;
    const siblings = children.get(Number(ppid)) ?? [];
    children.set(Number(ppid), [...siblings, child]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    tree.push(...children.get(tree[i]) ?? []);
  }
  return tree;
}

/** True while process `pid` exists and is not a zombie (`/proc`, Linux). */
export function running(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state !== undefined && state !== "Z";
}

/** Options for {@linkcode runWithStdoutClosed}. */
export interface StdoutClosedOptions extends ScriptOptions {
  /** Stop reading, and close stdout, once the output holds this text. */
  closeAfter: string;
  /** Then this runs (a fake server answers, say), so the script writes again. */
  afterClose?: () => Promise<void> | void;
  /** Typed after stdout is closed; then stdin is closed too. */
  stdin?: string;
  /**
   * Instead of `stdin`: keep stdin open, nothing typed, until the script
   * has ended, as a person who reads but does not type. Only the closed
   * stdout (or `afterClose`) can then end the script.
   */
  holdStdin?: boolean;
}

/**
 * Run a script the way `script | head` does: read its stdout until it holds
 * `closeAfter`, then close it as a reader that has what it wanted does, and
 * give the script a reason to write again (`afterClose`, `stdin`). Returns
 * how it ended, with the stdout read before the close.
 */
export async function runWithStdoutClosed(
  script: string,
  args: string[],
  options: StdoutClosedOptions,
): Promise<ScriptResult> {
  const piped = options.stdin !== undefined || options.holdStdin === true;
  const child = denoCommand(script, args, options, {
    stdin: piped ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stopping: Promise<void> | undefined;
  const timer = setTimeout(
    () => stopping = terminate(child),
    options.timeoutMs ?? 20_000,
  );
  const stderr = new Response(child.stderr).text();
  const stdin = piped ? child.stdin.getWriter() : undefined;
  try {
    const reader = child.stdout.getReader();
    const decoder = new TextDecoder();
    let stdout = "";
    while (!stdout.includes(options.closeAfter)) {
      const { value, done } = await reader.read();
      if (done) break; // ended first: the caller's checks say how
      stdout += decoder.decode(value, { stream: true });
    }
    await reader.cancel(); // closes our end: the script's next write fails
    await options.afterClose?.();
    if (stdin && !options.holdStdin) {
      await typeAndClose(stdin, options.stdin ?? "");
    }
    const { code, signal } = await child.status;
    const timedOut = stopping !== undefined || signal === "SIGKILL";
    return {
      code: timedOut ? 124 : code,
      stdout,
      stderr: await stderr + (timedOut ? "\n(stopped: timeout)" : ""),
    };
  } finally {
    clearTimeout(timer);
    // Closed above, unless held open or a check failed.
    await stdin?.close().catch(() => {});
    await stopping;
    await terminate(child); // still running only if a check above failed first
    await stderr;
  }
}

/**
 * Run a script with its stdin opened by the shell on `path` (`< path`, or
 * `0>> path` with `writeOnly`), which `Deno.Command` cannot do, and collect
 * what it printed (see {@linkcode runScript}). A folder there, or a stdin
 * opened for writing only, makes every read of stdin fail (EISDIR, EBADF),
 * as a real error of the input would.
 */
export function runWithStdinFrom(
  path: string,
  script: string,
  args: string[],
  options: Omit<ScriptOptions, "stdin"> & { writeOnly?: boolean } = {},
): Promise<ScriptResult> {
  const redirect = options.writeOnly ? "0>>" : "<";
  return runToEnd(
    redirected(`${redirect} "$STDIN_PATH"`, script, args, options, {
      STDIN_PATH: path,
    }),
    options,
  );
}

/**
 * Run a script with its stdout on /dev/full, where every write fails with
 * ENOSPC as on a full disk (`> log.txt`), and collect its exit code and
 * stderr (see {@linkcode runScript}).
 */
export function runWithStdoutFull(
  script: string,
  args: string[],
  options: Omit<ScriptOptions, "stdin"> = {},
): Promise<ScriptResult> {
  return runToEnd(
    redirected(">/dev/full", script, args, options),
    options,
  );
}

/**
 * Start a script with its stdout on /dev/full (see
 * {@linkcode runWithStdoutFull}). Its stderr takes the place of its stdout
 * (`2>&1 >/dev/full`), so {@linkcode RunningScript.waitFor} waits for a
 * warning, and `stop()` returns the warnings as `stdout`.
 */
export function startWithStdoutFull(
  script: string,
  args: string[],
  options: Omit<ScriptOptions, "stdin"> = {},
): RunningScript {
  return new RunningScript(
    redirected("2>&1 >/dev/full", script, args, options).spawn(),
  );
}

/**
 * `sh -c 'exec deno run ... <redirections>'`: the shell opens the files,
 * which `Deno.Command` cannot do, and becomes the script (exec), so a
 * timeout stops the script itself.
 */
function redirected(
  redirections: string,
  script: string,
  args: string[],
  options: ScriptOptions,
  env: Record<string, string> = {},
): Deno.Command {
  const deno = [Deno.execPath(), ...runArgs(script, args, options)];
  return new Deno.Command("sh", {
    args: ["-c", `exec "$0" "$@" ${redirections}`, ...deno],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Write `text` to a script's stdin and close it. A script that has ended
 * before reading it (no server to talk to, its stdout closed) is no error:
 * its exit status and output tell the test what happened.
 */
async function typeAndClose(
  stdin: WritableStreamDefaultWriter<Uint8Array>,
  text: string,
): Promise<void> {
  try {
    await stdin.write(new TextEncoder().encode(text));
    await stdin.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

/** A script running in the background (a server, or a client under test). */
export class RunningScript implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /** Lines of stdout not yet consumed by {@linkcode RunningScript.waitFor}. */
  readonly stdout: LineReader;
  /** Every stdout line seen so far. */
  readonly seen: string[] = [];
  #stderr: Promise<string>;
  #stdinWriter?: WritableStreamDefaultWriter<Uint8Array>;
  /** Set when a deadline stopped the script: see {@linkcode terminate}. */
  #stopping?: Promise<void>;

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.stdout = new LineReader(streamSource(child.stdout), {
      maxBytes: 1 << 20,
    });
    this.#stderr = new Response(child.stderr).text();
  }

  /** Read stdout lines until one matches; returns it. Fails at end of output. */
  async waitFor(pattern: RegExp | string, timeoutMs = 15_000): Promise<string> {
    let late = false;
    const deadline = setTimeout(() => {
      late = true;
      this.#terminate();
    }, timeoutMs);
    try {
      while (true) {
        const line = await this.stdout.readLine();
        if (line === null) {
          const why = late
            ? `no ${pattern} within ${timeoutMs} ms`
            : `output ended before ${pattern}`;
          throw new Error(
            `${why}; saw:\n${this.seen.join("\n")}\nstderr:\n${await this
              .#stderr}`,
          );
        }
        this.seen.push(line);
        const hit = typeof pattern === "string"
          ? line.includes(pattern)
          : pattern.test(line);
        if (hit) return line;
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Write text to the script's stdin (opened with `stdin: ""`). */
  async write(text: string): Promise<void> {
    this.#stdinWriter ??= this.child.stdin.getWriter();
    await this.#stdinWriter.write(new TextEncoder().encode(text));
  }

  /** Close the script's stdin: end of input. */
  async closeStdin(): Promise<void> {
    this.#stdinWriter ??= this.child.stdin.getWriter();
    await this.#stdinWriter.close();
  }

  /** Send a signal and collect the exit status and the rest of the output. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<ScriptResult> {
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
    return await this.finish();
  }

  /** Wait for the exit; returns the code and all remaining output. */
  async finish(timeoutMs = 15_000): Promise<ScriptResult> {
    const timer = setTimeout(() => this.#terminate(), timeoutMs);
    try {
      for await (const line of this.stdout) this.seen.push(line);
      const status = await this.child.status;
      await this.#stopping;
      try {
        // Piped but never written to, it still has to be closed.
        await (this.#stdinWriter ?? this.child.stdin).close();
      } catch {
        // not piped, or the process is gone and its stdin closed already
      }
      const timedOut = this.#stopping !== undefined ||
        status.signal === "SIGKILL";
      return {
        code: timedOut ? 124 : status.code,
        stdout: this.seen.join("\n"),
        stderr: await this.#stderr,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** A deadline passed: stop the script and what it started. */
  #terminate(): void {
    this.#stopping ??= terminate(this.child);
  }

  /** Stop the script and what it started ({@linkcode terminate}). */
  async [Symbol.asyncDispose](): Promise<void> {
    await terminate(this.child);
    await this.finish();
  }
}

/** Start a script in the background; stdin is piped when `stdin` is given. */
export function startScript(
  script: string,
  args: string[] = [],
  options: ScriptOptions = {},
): RunningScript {
  return new RunningScript(denoCommand(script, args, options).spawn());
}

/** A server script running on a free port of 127.0.0.1. */
export type StartedServer = RunningScript & {
  host: string;
  port: number;
  /** The server's first line of output (`... listening on HOST:PORT`). */
  firstLine: string;
};

/**
 * Start a server script with `--host 127.0.0.1 --port 0` and wait for its
 * `listening on HOST:PORT` line, which must be its first line of output.
 */
export async function startServer(
  script: string,
  args: string[] = [],
  options: ScriptOptions = {},
): Promise<StartedServer> {
  const running = startScript(
    script,
    ["--host", "127.0.0.1", "--port", "0", ...args],
    options,
  );
  try {
    const firstLine = await running.waitFor(/./);
    const m = /listening on (\S+):(\d+)/.exec(firstLine);
    if (!m) throw new Error(`first line has no 'listening on': ${firstLine}`);
    return Object.assign(running, {
      host: m[1],
      port: Number(m[2]),
      firstLine,
    });
  } catch (error) {
    await running.stop("SIGKILL");
    throw error;
  }
}

/** A server played by a test: see {@linkcode scriptedServer}. */
export interface ScriptedServer extends Disposable {
  port: number;
  /** Settles when `script` has finished (rejects if it failed). */
  serving: Promise<void>;
}

/**
 * A server on a free port of 127.0.0.1 that runs `script` on its first
 * connection, then closes it: a test plays a server that misbehaves (stays
 * silent, sends what a hostile one might). Dispose it to stop listening;
 * disposed before any client came (the test failed first), it serves
 * nobody, quietly.
 *
 * A script that fails (one of its assertions) fails the test it belongs
 * to, whether or not the test has awaited `serving` yet: the failure is
 * held, and disposing throws it if the test never asked for `serving`.
 * Left to reject on its own, it would be an uncaught error that cancels
 * every other test of the file.
 */
export function scriptedServer(
  script: (conn: Deno.TcpConn, lines: LineReader) => Promise<void>,
): ScriptedServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let disposed = false;
  const served = (async () => {
    let accepted: Deno.TcpConn;
    try {
      accepted = await listener.accept();
    } catch (error) {
      if (disposed) return;
      throw error;
    }
    using conn = accepted;
    await script(conn, new LineReader(conn));
  })();
  let failure: { error: unknown } | undefined;
  let seen = false;
  served.catch((error) => failure = { error });
  return {
    port: listener.addr.port,
    get serving() {
      seen = true;
      return served;
    },
    [Symbol.dispose]: () => {
      disposed = true;
      listener.close();
      if (!failure || seen) return;
      // Printed as well as thrown: when the test has failed too, the runner
      // shows only "An error was suppressed during disposal".
      console.error("The scripted server failed:", failure.error);
      throw failure.error;
    },
  };
}

/**
 * `promise`, or a failure with `message` once `ms` have passed: a deadline
 * for something that must happen, never a measurement (the timer is
 * cleared either way).
 */
export async function within<T>(
  promise: PromiseLike<T>,
  ms: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A `host:port` a protocol test talks to. */
export interface Target {
  hostname: string;
  port: number;
}

/**
 * The server named by environment variable `name` (`host:port`), or
 * `undefined` when it is unset and the test should start our own.
 */
export function externalTarget(name: string): Target | undefined {
  const value = Deno.env.get(name);
  if (!value) return undefined;
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  if (!m) throw new Error(`${name} must be host:port, not ${value}`);
  return { hostname: m[1], port: Number(m[2]) };
}

/**
 * Whether `text` holds a character that could act on a terminal: C0, DEL
 * and C1 controls, format characters (a right-to-left override), and the
 * line and paragraph separators U+2028 and U+2029, which some terminals and
 * editors take as a line end. The one check for every server's log.
 */
export function hasControlChars(text: string): boolean {
  return /[\p{Cc}\p{Cf}\u2028\u2029]/u.test(text);
}

/** A free TCP port on 127.0.0.1 at this moment (nothing listens on it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/**
 * Why python3 with `module` cannot run here (a sentence for a skipped
 * test), or undefined when it can. Tests that need it are ignored without
 * it on a developer's machine; .ci/run installs it.
 */
export async function whyPythonUnavailable(
  module: string,
): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command("python3", {
      args: ["-c", `import ${module}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : `python3 has no ${module} module`;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return "python3 is not installed (apt-get install python3)";
    }
    throw error;
  }
}

/** A python3 helper of tests/ that listens on a port of 127.0.0.1. */
export interface PythonPeer extends AsyncDisposable {
  port: number;
  /** The lines it printed after the port, once it has ended. */
  rest(): Promise<string[]>;
}

/**
 * Start `python3 tests/<script> <args>`, which prints its port on its
 * first line. Disposing closes its stdin (where a helper that serves until
 * then sees its end), then kills it if it is still running.
 */
export async function startPythonPeer(
  script: string,
  args: string[] = [],
): Promise<PythonPeer> {
  const child = new Deno.Command("python3", {
    args: [`${ROOT}tests/${script}`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = new LineReader(streamSource(child.stdout));
  let rest: Promise<string[]> | undefined;
  const readRest = () =>
    rest ??= (async () => {
      const seen: string[] = [];
      for await (const line of lines) seen.push(line);
      return seen;
    })();
  const stop = async () => {
    await child.stdin.close().catch(() => {}); // already ended
    try {
      child.kill();
    } catch {
      // it ended by itself
    }
    await readRest(); // to its end, which it closed by exiting
    await child.status;
  };
  try {
    const first = await lines.readLine();
    const port = Number(first);
    if (!Number.isInteger(port) || port <= 0) {
      throw new Error(`${script} printed no port: ${first}`);
    }
    return {
      port,
      async rest() {
        const seen = await within(readRest(), 10_000, `${script} never ended`);
        await child.status;
        return seen;
      },
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A copy of the kit's code (lib/, tools/, the exercises, deno.json) in a new
 * temporary folder, for a test that breaks one file the way an instructor's
 * edit might. The caller removes it.
 */
export async function copyKit(): Promise<string> {
  // A space in its name, as in "My Labs": every path must survive it.
  const copy = await Deno.makeTempDir({ prefix: "lab kit " });
  for (const dir of ["lib", "tools", "udp", "tcp", "chat"]) {
    await copyDir(`${ROOT}${dir}`, `${copy}/${dir}`);
  }
  await Deno.copyFile(`${ROOT}deno.json`, `${copy}/deno.json`);
  return copy;
}

/** Copy the directory `from` to `to`, files and subdirectories. */
async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const [source, target] = [`${from}/${entry.name}`, `${to}/${entry.name}`];
    if (entry.isDirectory) await copyDir(source, target);
    else await Deno.copyFile(source, target);
  }
}
