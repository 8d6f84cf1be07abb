/**
 * Line framing for TCP: TCP delivers a stream of bytes, not messages, so one
 * `read` may hold half a line, three lines, or a line that ends in the middle
 * of a UTF-8 character. {@linkcode LineReader} turns those reads into whole
 * lines; {@linkcode writeAll} makes sure every byte of a line is written
 * (`write` may take only part of it).
 *
 * On the wire every message is one line:
 *
 * ```
 * C: 12 + 13\n        (or 12 + 13\r\n: the \r is dropped)
 * S: 25\n
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LineReader } from "./lines.ts";
 * const chunks = ["12 + 1", "3\r\nq\n"].map((s) => new TextEncoder().encode(s));
 * const source = {
 *   read(p: Uint8Array) {
 *     const chunk = chunks.shift();
 *     if (!chunk) return Promise.resolve(null);
 *     p.set(chunk);
 *     return Promise.resolve(chunk.length);
 *   },
 * };
 * const lines = [];
 * for await (const line of new LineReader(source)) lines.push(line);
 * assert(lines.join("|") === "12 + 13|q");
 * ```
 *
 * @module
 */

/** Where a {@linkcode LineReader} gets its bytes: a `Deno.Conn` fits. */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

/** Where {@linkcode writeAll} puts bytes: a `Deno.Conn` fits. */
export interface ByteSink {
  write(p: Uint8Array): Promise<number>;
}

/** The limit the contract sets for one line, in bytes without `\r\n`. */
export const MAX_LINE_BYTES = 1024;

/**
 * A line longer than the reader's limit arrived. The stream is unusable,
 * unless {@linkcode LineReader.skipLine} drops the rest of that line.
 */
export class LineTooLongError extends Error {
  override name = "LineTooLongError";
  constructor(readonly limit: number) {
    super(`line too long (more than ${limit} bytes)`);
  }
}

const LF = 0x0a;
const CR = 0x0d;
/**
 * One decoder for every reader: each line is decoded whole (no `stream`
 * option), so it keeps no state between calls, and a server with thousands
 * of idle connections does not hold thousands of decoders.
 * ignoreBOM: keep a U+FEFF that starts a line; it is part of the text.
 */
const lineDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Options of a {@linkcode LineReader}. */
export interface LineReaderOptions {
  /** Longest line accepted, in bytes without the line end (default 1024). */
  maxBytes?: number;
  /**
   * Bytes read at a time (default 2048). The buffer grows for a long line,
   * up to `maxBytes`; a small one keeps an idle connection cheap.
   */
  bufferSize?: number;
  /**
   * Largest the buffer grows to while reads keep filling it (default: no
   * such growth). A busy sender is then read in a few big reads, while an
   * idle connection keeps its small buffer.
   */
  maxBufferSize?: number;
}

/**
 * Reads `\n`-terminated UTF-8 lines from a byte stream, one at a time.
 * The line end (`\n` or `\r\n`) is removed; invalid UTF-8 becomes U+FFFD.
 * A last line without `\n` before the end of the stream is still a line.
 * A line over `maxBytes` throws {@linkcode LineTooLongError} without ever
 * holding more than `maxBytes + 2` bytes (or `maxBufferSize`, if larger).
 *
 * @example
 * ```ts ignore
 * import { LineReader } from "./lines.ts";
 * const conn = await Deno.connect({ port: 12003 });
 * for await (const line of new LineReader(conn)) console.log(line);
 * ```
 */
export class LineReader implements AsyncIterable<string> {
  readonly #source: ByteSource;
  readonly #maxBytes: number;
  readonly #maxBufferSize: number;
  #buffer: Uint8Array;
  #filled = false; // the last read took all the room it was given
  #start = 0; // first byte not yet returned
  #end = 0; // one past the last byte read
  #scanned = 0; // bytes from #start known to hold no '\n'
  #eof = false;
  #lineBytes = 0;

  constructor(source: ByteSource, options: LineReaderOptions = {}) {
    this.#source = source;
    this.#maxBytes = options.maxBytes ?? MAX_LINE_BYTES;
    this.#buffer = new Uint8Array(
      Math.max(1, Math.min(options.bufferSize ?? 2048, this.#maxBytes + 2)),
    );
    this.#maxBufferSize = options.maxBufferSize ?? 0;
  }

  /**
   * Whether {@linkcode LineReader.readLine} can answer without reading from
   * the source: a whole line is buffered, or the stream has ended. A server
   * uses it to answer a batch of lines that arrived together in one write.
   */
  hasBufferedLine(): boolean {
    if (this.#eof) return true;
    const unscanned = this.#buffer.subarray(
      this.#start + this.#scanned,
      this.#end,
    );
    if (unscanned.indexOf(LF) >= 0) return true;
    this.#scanned = this.#end - this.#start;
    return false;
  }

  /**
   * Bytes of the line {@linkcode LineReader.readLine} returned last, without
   * its line end (what a client sent, for a server that limits its rate).
   */
  get lineBytes(): number {
    return this.#lineBytes;
  }

  /** The next line, or `null` at the end of the stream. */
  async readLine(): Promise<string | null> {
    while (true) {
      const nl = this.#buffer.subarray(this.#start + this.#scanned, this.#end)
        .indexOf(LF);
      if (nl >= 0) {
        const lineEnd = this.#start + this.#scanned + nl;
        const line = this.#take(lineEnd, lineEnd + 1);
        return line;
      }
      this.#scanned = this.#end - this.#start;
      if (this.#eof) {
        return this.#start < this.#end
          ? this.#take(this.#end, this.#end)
          : null;
      }
      // +1: a '\r' may still be followed by its '\n'.
      if (this.#end - this.#start > this.#maxBytes + 1) {
        throw new LineTooLongError(this.#maxBytes);
      }
      this.#makeRoom();
      const room = this.#buffer.length - this.#end;
      const n = await this.#source.read(this.#buffer.subarray(this.#end));
      if (n === null) this.#eof = true;
      else this.#end += n;
      this.#filled = n === room;
    }
  }

  /**
   * Drop the rest of the current line, its `\n` included, so that
   * {@linkcode LineReader.readLine} goes on with the next one. For a reader
   * that would rather ignore a line over the limit than stop (a person's
   * stdin): call it after a {@linkcode LineTooLongError}. It holds no more
   * than the buffer, however long the line.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LineReader, LineTooLongError, streamSource } from "./lines.ts";
   * const stream = new Blob(["x".repeat(2000), "\nq\n"]).stream();
   * const reader = new LineReader(streamSource(stream));
   * try {
   *   await reader.readLine();
   * } catch (error) {
   *   if (!(error instanceof LineTooLongError)) throw error;
   *   await reader.skipLine();
   * }
   * assert((await reader.readLine()) === "q");
   * ```
   */
  async skipLine(): Promise<void> {
    while (true) {
      const nl = this.#buffer.subarray(this.#start, this.#end).indexOf(LF);
      if (nl >= 0) {
        this.#start += nl + 1;
        this.#scanned = 0;
        if (this.#start === this.#end) this.#start = this.#end = 0;
        return;
      }
      this.#start = this.#end = this.#scanned = 0;
      if (this.#eof) return;
      const n = await this.#source.read(this.#buffer);
      if (n === null) this.#eof = true;
      else this.#end = n;
    }
  }

  /** Decode bytes #start..lineEnd as a line and move past `next`. */
  #take(lineEnd: number, next: number): string {
    let end = lineEnd;
    if (end > this.#start && this.#buffer[end - 1] === CR) end--;
    if (end - this.#start > this.#maxBytes) {
      throw new LineTooLongError(this.#maxBytes);
    }
    const line = lineDecoder.decode(this.#buffer.subarray(this.#start, end));
    this.#lineBytes = end - this.#start;
    this.#start = next;
    this.#scanned = 0;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return line;
  }

  /**
   * Make space after #end: slide the partial line to the front (so each read
   * gets all the room there is), and grow when it fills the buffer (a long
   * line) or when the last read filled it (a busy stream, up to
   * maxBufferSize).
   */
  #makeRoom(): void {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const full = this.#end === this.#buffer.length;
    if (!full && !(this.#filled && this.#buffer.length < this.#maxBufferSize)) {
      return;
    }
    const limit = full
      ? Math.max(this.#maxBytes + 2, this.#maxBufferSize)
      : this.#maxBufferSize;
    const size = Math.min(this.#buffer.length * 2, limit);
    const bigger = new Uint8Array(size);
    bigger.set(this.#buffer.subarray(0, this.#end));
    this.#buffer = bigger;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    while (true) {
      const line = await this.readLine();
      if (line === null) return;
      yield line;
    }
  }
}

/**
 * A `ReadableStream` of bytes (a child process's stdout, `Deno.stdin.readable`)
 * as a {@linkcode ByteSource} for a {@linkcode LineReader}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LineReader, streamSource } from "./lines.ts";
 * const stream = new Blob(["a\nb\n"]).stream();
 * const reader = new LineReader(streamSource(stream));
 * assert((await reader.readLine()) === "a");
 * ```
 */
export function streamSource(stream: ReadableStream<Uint8Array>): ByteSource {
  const reader = stream.getReader();
  let rest: Uint8Array = new Uint8Array(0);
  return {
    async read(p: Uint8Array): Promise<number | null> {
      if (rest.length === 0) {
        const { value, done } = await reader.read();
        if (done) return null;
        rest = value;
      }
      const n = Math.min(p.length, rest.length);
      p.set(rest.subarray(0, n));
      rest = rest.subarray(n);
      return n;
    },
  };
}

const encoder = new TextEncoder();

/**
 * `text` as the bytes of one line, `\n` included.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLine } from "./lines.ts";
 * assert(encodeLine("Ok").length === 3);
 * ```
 */
export function encodeLine(text: string): Uint8Array {
  return encoder.encode(text + "\n");
}

/**
 * Write every byte of `bytes`: one `write` may take only some of them.
 *
 * @example
 * ```ts ignore
 * import { encodeLine, writeAll } from "./lines.ts";
 * const conn = await Deno.connect({ port: 12002 });
 * await writeAll(conn, encodeLine("Knock knock"));
 * ```
 */
export async function writeAll(
  sink: ByteSink,
  bytes: Uint8Array,
): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const n = await sink.write(bytes.subarray(written));
    if (n === 0) throw new Deno.errors.WriteZero("write accepted no bytes");
    written += n;
  }
}

/**
 * Write `text` as one line (see {@linkcode encodeLine}).
 *
 * @example
 * ```ts ignore
 * import { writeLine } from "./lines.ts";
 * const conn = await Deno.connect({ port: 12002 });
 * await writeLine(conn, "Knock knock");
 * ```
 */
export function writeLine(sink: ByteSink, text: string): Promise<void> {
  return writeAll(sink, encodeLine(text));
}
