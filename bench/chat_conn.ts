/**
 * A chat client connection for the load tools, built for volume: it reads
 * the server's lines as bytes and hands each to a handler without decoding
 * it (a fan-out run reads hundreds of thousands of lines a second, so the
 * load tool must stay cheaper than the server it measures).
 *
 * ```
 * C: LOGIN bench_r7
 * S: WELCOME bench_r7          <- loginChat() resolves here
 * S: JOINED bench_r8           <- later lines go to the handler
 * S: MSG bench_s0 @0:17:1234567:xxxx
 * ```
 *
 * Not a script: bench/chat_load.ts imports it.
 *
 * @example
 * ```ts ignore
 * import { loginChat } from "./chat_conn.ts";
 * const conn = await loginChat({ port: 5000, name: "ada", onLine: () => {} });
 * conn.close();
 * ```
 *
 * @module
 */

import { LOOPBACK } from "./load_common.ts";
import { writeAll } from "../lib/lines.ts";

const LF = 0x0a;
const CR = 0x0d;
const READ_SIZE = 16 * 1024;
/** A server line longer than this is a broken server (the contract: 1 KiB). */
const MAX_LINE = 64 * 1024;

/** Handles one line: `buf[start..end)`, without its line end; valid only during the call. */
export type LineHandler = (buf: Uint8Array, start: number, end: number) => void;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The text of a line handed to a {@linkcode LineHandler}. */
export function lineText(buf: Uint8Array, start: number, end: number): string {
  return decoder.decode(buf.subarray(start, end));
}

/** True when the line `buf[start..end)` begins with the ASCII `prefix`. */
export function startsWith(
  buf: Uint8Array,
  start: number,
  end: number,
  prefix: string,
): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (buf[start + i] !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** One TCP connection to a chat server whose lines go to `onLine`. */
export class LineConn {
  readonly conn: Deno.TcpConn;
  /** Where each line goes; may be replaced at any time. */
  onLine: LineHandler;
  /** Resolves when the server closes or the connection fails (never rejects). */
  readonly closed: Promise<void>;
  /** Why reading stopped, when it was not a clean end of stream. */
  failure: unknown = null;
  #open = true;

  constructor(conn: Deno.TcpConn, onLine: LineHandler) {
    this.conn = conn;
    this.onLine = onLine;
    this.closed = this.#readLoop();
  }

  /** Send one line (the `\n` is added). */
  send(text: string): Promise<void> {
    return writeAll(this.conn, encoder.encode(text + "\n"));
  }

  /** Close the connection (again is harmless). */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.conn.close();
    } catch {
      // already closed by a failed read or write
    }
  }

  async #readLoop(): Promise<void> {
    let buf: Uint8Array = new Uint8Array(READ_SIZE);
    let end = 0;
    try {
      while (true) {
        if (end === buf.length) buf = grow(buf);
        const n = await this.conn.read(buf.subarray(end));
        if (n === null) break;
        const scanFrom = end;
        end += n;
        const rest = this.#deliver(buf, scanFrom, end);
        if (rest > 0) buf.copyWithin(0, rest, end);
        end -= rest;
      }
    } catch (error) {
      if (this.#open) this.failure = error; // closing it ourselves is no failure
    } finally {
      this.close();
    }
  }

  /** Hand every complete line in buf[0..end) to onLine; returns where the rest starts. */
  #deliver(buf: Uint8Array, scanFrom: number, end: number): number {
    let start = 0;
    let nl = buf.indexOf(LF, scanFrom);
    while (nl >= 0 && nl < end) {
      const lineEnd = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
      this.onLine(buf, start, lineEnd);
      start = nl + 1;
      nl = buf.indexOf(LF, start);
    }
    return start;
  }
}

function grow(buf: Uint8Array): Uint8Array {
  if (buf.length >= MAX_LINE) {
    throw new Error(`server sent a line over ${MAX_LINE} bytes`);
  }
  const bigger = new Uint8Array(buf.length * 2);
  bigger.set(buf);
  return bigger;
}

/** What {@linkcode loginChat} needs. */
export interface LoginOptions {
  port: number;
  name: string;
  /** Gets every line after `WELCOME` (the same read may already hold some). */
  onLine: LineHandler;
  /** Give up after this many ms without `WELCOME` (default 10 000). */
  timeoutMs?: number;
}

/**
 * Connect to 127.0.0.1:`port` and `LOGIN name`; resolves once `WELCOME name`
 * arrives, and rejects on an `ERROR` line, a closed connection or the
 * timeout (closing the connection).
 */
export async function loginChat(options: LoginOptions): Promise<LineConn> {
  const { name, onLine } = options;
  const conn = await Deno.connect({ hostname: LOOPBACK, port: options.port });
  conn.setNoDelay(true);
  const welcome = `WELCOME ${name}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let line: LineConn | undefined;
  try {
    return await new Promise<LineConn>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error("no WELCOME in time")),
        options.timeoutMs ?? 10_000,
      );
      line = new LineConn(conn, (buf, start, end) => {
        const text = lineText(buf, start, end);
        if (text === welcome) {
          line!.onLine = onLine;
          resolve(line!);
        } else if (text.startsWith("ERROR")) {
          reject(new Error(`server said ${text.slice(0, 60)}`));
        }
      });
      line.closed.then(() => reject(new Error("closed before WELCOME")));
      line.send(`LOGIN ${name}`).catch(reject);
    });
  } catch (error) {
    line?.close();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
