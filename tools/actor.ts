/**
 * One exercise script played by the demo as a person would: started with
 * `deno run`, every line it prints shown with its tag (`  server | ...`),
 * lines "typed" into it shown with `>`, and ways to wait for what it shows.
 *
 *     $ deno run --allow-net tcp/knock_server.ts --host 127.0.0.1 --port 0
 *       server | Knock-knock server listening on 127.0.0.1:40713
 *
 * Dispose an actor (`await using`) to stop it: SIGTERM, then SIGKILL if it
 * has not exited 5 s later; either way it is awaited.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { printWhileOpen } from "../lib/cli.ts";
import { LineReader, streamSource } from "../lib/lines.ts";

// Not .pathname: a folder named "My Labs" would read "My%20Labs".
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** How long {@linkcode Actor.waitFor} and {@linkcode Actor.exited} wait. */
export const WAIT_MS = 10_000;

/** Options of a new {@linkcode Actor}. */
export interface ActorOptions {
  /** Shown before each line, e.g. `server` or `alice`. */
  tag: string;
  /** Path from the project root, e.g. `udp/time_server.ts`. */
  script: string;
  args?: string[];
  /** Pipe stdin, so that {@linkcode Actor.type} can write to it. */
  stdin?: boolean;
  /**
   * Print each typed line as `tag > line` (default true). Off for scripts
   * that echo what they read from a pipe themselves, as the calculator
   * client does after its prompt.
   */
  showTyped?: boolean;
  /** Where lines go (default printLine). */
  print?: (line: string) => void;
}

/** A running script whose output is printed and can be waited for. */
export class Actor implements AsyncDisposable {
  /** Every actor not yet exited: what a stopped demo still has to stop. */
  static readonly #running = new Set<Actor>();
  static #stopped = false;

  /**
   * Stop every script still running (as {@linkcode Actor.stop}); no new one
   * starts after this.
   */
  static async stopAll(): Promise<void> {
    Actor.#stopped = true;
    await Promise.all(
      [...Actor.#running].map((actor) => actor.stop().catch(() => {})),
    );
  }

  readonly tag: string;
  /** Everything it printed, stdout and stderr, in order of arrival. */
  readonly lines: string[] = [];
  #child: Deno.ChildProcess;
  #print: (line: string) => void;
  #showTyped: boolean;
  #cursor = 0;
  #changed = Promise.withResolvers<void>();
  #reading: Promise<void>;
  #writer?: WritableStreamDefaultWriter<Uint8Array>;

  /** Start `deno run <net flags> SCRIPT ARGS` from the project root. */
  constructor(options: ActorOptions) {
    if (Actor.#stopped) throw new Error("stopped: no new script starts");
    this.tag = options.tag;
    // Once stdout fails, the demo still waits for the lines it needs.
    this.#print = printWhileOpen(options.print);
    this.#showTyped = options.showTyped ?? true;
    const flags = options.script.startsWith("udp/")
      ? ["--allow-net", "--unstable-net"]
      : ["--allow-net"];
    const args = ["run", ...flags, options.script, ...(options.args ?? [])];
    this.#print(`$ deno ${args.join(" ")}`);
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    Actor.#running.add(this);
    this.#child.status.then(() => Actor.#running.delete(this));
    if (options.stdin) this.#writer = this.#child.stdin.getWriter();
    this.#reading = Promise.all([
      this.#collect(this.#child.stdout, "|"),
      this.#collect(this.#child.stderr, "!"),
    ]).then(() => this.#notify());
  }

  async #collect(stream: ReadableStream<Uint8Array>, mark: string) {
    const reader = new LineReader(streamSource(stream), { maxBytes: 1 << 20 });
    for await (const line of reader) {
      this.lines.push(line);
      this.#print(`  ${this.tag.padStart(6)} ${mark} ${line}`);
      this.#notify();
    }
  }

  #notify() {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  /**
   * The next line (after the last one waited for) that matches; fails when
   * the script ends or `timeoutMs` passes first.
   */
  async waitFor(pattern: RegExp, timeoutMs = WAIT_MS): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      while (true) {
        const index = this.lines.findIndex((line, i) =>
          i >= this.#cursor && pattern.test(line)
        );
        if (index >= 0) {
          this.#cursor = index + 1;
          return this.lines[index];
        }
        const ended = this.#reading.then(() => "ended" as const);
        const what = await Promise.race([
          this.#changed.promise,
          ended,
          timeout,
        ]);
        if (
          what === "ended" &&
          !this.lines.slice(this.#cursor).some((l) => pattern.test(l))
        ) {
          throw new Error(`${this.tag} ended without showing ${pattern}`);
        }
        if (what === "timeout") {
          throw new Error(
            `${this.tag} did not show ${pattern} within ${timeoutMs / 1000} s`,
          );
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Type a line into the script's stdin (shown as `tag > line`). */
  async type(line: string): Promise<void> {
    if (this.#showTyped) this.#print(`  ${this.tag.padStart(6)} > ${line}`);
    await this.#writer!.write(new TextEncoder().encode(line + "\n"));
  }

  /** Close stdin: end of input, as Ctrl+D in a terminal. */
  async endInput(): Promise<void> {
    if (this.#showTyped) {
      this.#print(`  ${this.tag.padStart(6)} > (end of input)`);
    }
    await this.#closeInput();
  }

  async #closeInput() {
    const writer = this.#writer;
    this.#writer = undefined;
    await writer?.close().catch(() => {});
  }

  /** Wait for the script to exit by itself; its exit code. */
  async exited(timeoutMs = WAIT_MS): Promise<number> {
    const timer = setTimeout(() => this.#kill("SIGKILL"), timeoutMs);
    try {
      const status = await this.#child.status;
      await this.#reading;
      await this.#closeInput();
      if (status.signal === "SIGKILL") {
        throw new Error(
          `${this.tag} did not exit within ${timeoutMs / 1000} s`,
        );
      }
      return status.code;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop it as Ctrl+C would (SIGTERM here); its exit code. */
  stop(): Promise<number> {
    this.#kill("SIGTERM");
    return this.exited(5_000);
  }

  #kill(signal: Deno.Signal) {
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop().catch(() => {});
  }
}
