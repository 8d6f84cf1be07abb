/**
 * Helpers for the TCP tests: a line-based test client whose every wait has a
 * deadline, a log collector that a test can wait on (no sleeps), and the
 * server a protocol test judges (ours, or one named by `TCP_KNOCK_ADDR` /
 * `CALC_ADDR`).
 *
 * @module
 */

import { isConnectionLost } from "../lib/errors.ts";
import { LineReader, writeAll } from "../lib/lines.ts";
import { externalTarget, type Target } from "./support.ts";

const encoder = new TextEncoder();

/** How long a test waits for one answer before it fails. */
export const ANSWER_TIMEOUT_MS = 5000;

/**
 * A TCP connection to the server under test that sends text or bytes and
 * reads answer lines, each with a deadline. Dispose it (`await using`).
 */
export class TestClient implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  readonly lines: LineReader;
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    // Larger than the protocol's limit: the test, not the reader, judges.
    this.lines = new LineReader(conn, { maxBytes: 1 << 20 });
  }

  /** Connect to `target` (Nagle off, so small writes leave at once). */
  static async connect(target: Target): Promise<TestClient> {
    const conn = await Deno.connect({
      hostname: target.hostname,
      port: target.port,
    });
    conn.setNoDelay(true);
    return new TestClient(conn);
  }

  /** Send text (or bytes) exactly as given: no line end is added. */
  async send(data: string | Uint8Array): Promise<void> {
    await writeAll(
      this.conn,
      typeof data === "string" ? encoder.encode(data) : data,
    );
  }

  /** Send `data` one byte per write. */
  async sendBytewise(data: string): Promise<void> {
    for (const byte of encoder.encode(data)) {
      await this.send(Uint8Array.of(byte));
    }
  }

  /**
   * The next answer line, or `null` when the server has closed the
   * connection (a reset counts as closed). Fails after `timeoutMs`, with
   * `late` as its message.
   */
  async readLine(
    timeoutMs = ANSWER_TIMEOUT_MS,
    late = `no answer line within ${timeoutMs} ms`,
  ): Promise<string | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close(); // the pending read ends instead of leaking
        reject(new Error(late));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.lines.readLine(), timeout]);
    } catch (error) {
      if (isConnectionLost(error) && !this.#closed) return null;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next answer line; fails if the server closed instead. */
  async answer(timeoutMs?: number): Promise<string> {
    const line = await this.readLine(timeoutMs);
    if (line === null) throw new Error("the server closed the connection");
    return line;
  }

  /** Send `line` with `\n` and return the one answer line. */
  async ask(line: string): Promise<string> {
    await this.send(`${line}\n`);
    return await this.answer();
  }

  /** `n` answer lines. */
  async answers(n: number): Promise<string[]> {
    const lines = [];
    for (let i = 0; i < n; i++) lines.push(await this.answer());
    return lines;
  }

  /** Fails unless the server closes the connection (no further line). */
  async expectClosed(timeoutMs = ANSWER_TIMEOUT_MS): Promise<void> {
    const line = await this.readLine(timeoutMs, notClosed(timeoutMs));
    if (line !== null) throw new Error(`expected a close, got ${line}`);
  }

  /** Close our side (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Why `expectClosed` failed when the connection stayed open. */
export function notClosed(timeoutMs: number): string {
  return `the server did not close the connection within ${timeoutMs} ms`;
}

/**
 * Log lines from an in-process server, which a test can wait for.
 *
 * @example
 * ```ts ignore
 * const log = new LogCollector();
 * startCalcServer({ hostname: "127.0.0.1", port: 0, log: log.add });
 * await log.waitFor("Ada: Session ended");
 * ```
 */
export class LogCollector {
  readonly lines: string[] = [];
  #waiters = new Set<() => void>();

  /** The `log` function to give the server. */
  readonly add = (line: string): void => {
    this.lines.push(line);
    for (const wake of this.#waiters) wake();
  };

  /** The first line (seen so far or to come) that matches; fails after `timeoutMs`. */
  async waitFor(
    pattern: RegExp | string,
    timeoutMs = ANSWER_TIMEOUT_MS,
  ): Promise<string> {
    const find = () =>
      this.lines.find((line) =>
        typeof pattern === "string"
          ? line.includes(pattern)
          : pattern.test(line)
      );
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake = () => {};
    try {
      return await new Promise<string>((resolve, reject) => {
        wake = () => {
          const line = find();
          if (line !== undefined) resolve(line);
        };
        this.#waiters.add(wake);
        wake();
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `no log line matching ${pattern} within ${timeoutMs} ms; log:\n${
                  this.lines.join("\n")
                }`,
              ),
            ),
          timeoutMs,
        );
      });
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(wake);
    }
  }
}

/** The external server named by `variable`, announced once, or `undefined`. */
export function announceExternal(variable: string): Target | undefined {
  const target = externalTarget(variable);
  if (target) {
    console.log(
      `Judging the server at ${target.hostname}:${target.port} (${variable}); ` +
        "checks that start, stop or read the log of our own server are skipped.",
    );
  }
  return target;
}
