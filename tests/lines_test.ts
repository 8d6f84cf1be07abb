/**
 * Line framing (lib/lines.ts) in memory: however the bytes of a stream are
 * cut into reads, the same lines come out; a line over the limit is an error
 * the caller can answer, and never grows the buffer past the limit; every
 * byte given to writeAll is written, in order. Plus one real socket, to show
 * what a reset looks like to a reader.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { isConnectionLost } from "../lib/errors.ts";
import {
  type ByteSink,
  type ByteSource,
  encodeLine,
  LineReader,
  LineTooLongError,
  MAX_LINE_BYTES,
  streamSource,
  writeAll,
  writeLine,
} from "../lib/lines.ts";

const encoder = new TextEncoder();

/** A source that hands out `chunks` one read each (split further if `p` is smaller). */
function chunkSource(chunks: Uint8Array[]): ByteSource & { bytesRead: number } {
  const queue = chunks.map((c) => c.slice());
  return {
    bytesRead: 0,
    read(p: Uint8Array): Promise<number | null> {
      while (queue.length > 0 && queue[0].length === 0) queue.shift();
      const chunk = queue[0];
      if (!chunk) return Promise.resolve(null);
      const n = Math.min(p.length, chunk.length);
      p.set(chunk.subarray(0, n));
      queue[0] = chunk.subarray(n);
      this.bytesRead += n;
      return Promise.resolve(n);
    },
  };
}

/** `bytes` cut at the given offsets. */
function cut(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const points = [0, ...offsets.toSorted((a, b) => a - b), bytes.length];
  return points.slice(1).map((end, i) => bytes.subarray(points[i], end));
}

async function readAll(
  chunks: Uint8Array[],
  options?: { maxBytes?: number; bufferSize?: number },
): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of new LineReader(chunkSource(chunks), options)) {
    lines.push(line);
  }
  return lines;
}

/** The lines of a whole stream, by the contract's definition. */
function specLines(text: string): string[] {
  const parts = text.split("\n");
  if (parts.at(-1) === "") parts.pop(); // a final '\n' ends the last line
  return parts.map((line) => line.replace(/\r$/, ""));
}

// Mid-UTF-8 (2-, 3- and 4-byte characters), CRLF, an empty line, a lone \r
// inside a line, and a last line without '\n'.
const SAMPLE = "12 + 13\r\nq\n\né€😀 x\r\na\rb\r\n\r\nlast";
const SAMPLE_LINES = ["12 + 13", "q", "", "é€😀 x", "a\rb", "", "last"];

Deno.test("LineReader turns any cutting of a stream into the same lines", async (t) => {
  const bytes = encoder.encode(SAMPLE);

  await t.step("in one read", async () => {
    assert.deepEqual(await readAll([bytes]), SAMPLE_LINES);
  });

  await t.step(
    "cut at every byte offset (mid-UTF-8, \\r at a chunk end)",
    async () => {
      for (let i = 0; i <= bytes.length; i++) {
        assert.deepEqual(
          await readAll(cut(bytes, [i])),
          SAMPLE_LINES,
          `cut at ${i}`,
        );
      }
    },
  );

  await t.step("cut at every pair of offsets", async () => {
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        assert.deepEqual(
          await readAll(cut(bytes, [i, j])),
          SAMPLE_LINES,
          `cut at ${i}, ${j}`,
        );
      }
    }
  });

  await t.step("one byte per read", async () => {
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    assert.deepEqual(await readAll(chunks), SAMPLE_LINES);
  });

  await t.step("through a 1-byte buffer that has to grow", async () => {
    assert.deepEqual(await readAll([bytes], { bufferSize: 1 }), SAMPLE_LINES);
  });

  await t.step("a property: random cuttings of random text", async () => {
    const text = fc.string({
      unit: fc.constantFrom("a", "é", "😀", "\r", "\n", " "),
    });
    await fc.assert(
      fc.asyncProperty(text, fc.array(fc.nat()), async (s, rawCuts) => {
        const whole = encoder.encode(s);
        const offsets = rawCuts.map((n) => n % (whole.length + 1));
        const got = await readAll(cut(whole, offsets), { bufferSize: 4 });
        assert.deepEqual(got, specLines(s));
      }),
    );
  });
});

Deno.test("LineReader edge cases of one line", async (t) => {
  const table: [name: string, input: string, lines: string[]][] = [
    ["empty stream", "", []],
    ["one empty line", "\n", [""]],
    ["a CRLF alone is an empty line", "\r\n", [""]],
    ["empty lines in a row", "\n\n\r\n\n", ["", "", "", ""]],
    ["last line without \\n", "a\nb", ["a", "b"]],
    ["last line ending in \\r at the end of the stream", "a\r", ["a"]],
    ["only the \\r just before \\n is dropped", "a\r\r\n", ["a\r"]],
    ["a \\r inside a line stays", "a\rb\n", ["a\rb"]],
    ["a U+FEFF that starts a line is kept", "\uFEFFab\n\uFEFFcd\n", [
      "\uFEFFab",
      "\uFEFFcd",
    ]],
    ["spaces are kept", "  12 + 13  \n", ["  12 + 13  "]],
  ];
  for (const [name, input, lines] of table) {
    await t.step(name, async () => {
      assert.deepEqual(await readAll([encoder.encode(input)]), lines);
    });
  }

  await t.step(
    "invalid UTF-8 becomes U+FFFD, the line still ends at \\n",
    async () => {
      const bytes = Uint8Array.of(0x31, 0xff, 0x32, 0xc3, 0x0a, 0x61, 0x0a);
      assert.deepEqual(await readAll([bytes]), ["1\uFFFD2\uFFFD", "a"]);
    },
  );
});

Deno.test("LineReader line length limit", async (t) => {
  const max = 8;
  const ok = "x".repeat(max);
  const over = "x".repeat(max + 1);
  const table: [name: string, input: string, lines: string[] | "too long"][] = [
    ["exactly the limit", `${ok}\n`, [ok]],
    ["exactly the limit with \\r\\n", `${ok}\r\n`, [ok]],
    ["exactly the limit at the end of the stream", ok, [ok]],
    ["exactly the limit, \\r, end of stream", `${ok}\r`, [ok]],
    ["one over", `${over}\n`, "too long"],
    ["one over with \\r\\n", `${over}\r\n`, "too long"],
    ["one over at the end of the stream", over, "too long"],
    ["the limit plus a \\r that is not a line end", `${ok}\rx\n`, "too long"],
    ["far over", `${"x".repeat(100)}\n`, "too long"],
  ];
  for (const [name, input, expected] of table) {
    await t.step(name, async () => {
      const bytes = encoder.encode(input);
      for (let i = 0; i <= bytes.length; i++) {
        const reading = readAll(cut(bytes, [i]), {
          maxBytes: max,
          bufferSize: 2,
        });
        if (expected === "too long") {
          await assert.rejects(reading, LineTooLongError, `cut at ${i}`);
        } else {
          assert.deepEqual(await reading, expected, `cut at ${i}`);
        }
      }
    });
  }

  await t.step("the default limit is the contract's 1024 bytes", async () => {
    assert.equal(MAX_LINE_BYTES, 1024);
    const fits = "é".repeat(512); // 1024 bytes, 512 characters
    assert.deepEqual(await readAll([encoder.encode(`${fits}\r\n`)]), [fits]);
    await assert.rejects(
      readAll([encoder.encode(`${fits}x\n`)]),
      (error: unknown) =>
        error instanceof LineTooLongError && error.limit === 1024 &&
        error.message === "line too long (more than 1024 bytes)",
    );
  });

  await t.step(
    "lines before a long one come out first, then the error",
    async () => {
      const reader = new LineReader(
        chunkSource([encoder.encode(`a\nb\n${over}\nc\n`)]),
        {
          maxBytes: max,
        },
      );
      assert.equal(await reader.readLine(), "a");
      assert.equal(await reader.readLine(), "b");
      await assert.rejects(reader.readLine(), LineTooLongError);
    },
  );

  await t.step(
    "an endless line is refused after at most limit + 2 bytes",
    async () => {
      const endless = {
        bytesRead: 0,
        read(p: Uint8Array): Promise<number> {
          p.fill(0x78);
          this.bytesRead += p.length;
          return Promise.resolve(p.length);
        },
      };
      const reader = new LineReader(endless, { maxBytes: 1024 });
      await assert.rejects(reader.readLine(), LineTooLongError);
      assert.ok(
        endless.bytesRead <= 1024 + 2,
        `read ${endless.bytesRead} bytes`,
      );
    },
  );
});

/** Every line of `chunks`, and `TOO LONG` where skipLine() dropped one. */
async function readSkipping(
  chunks: Uint8Array[],
  options: { maxBytes: number; bufferSize?: number },
): Promise<string[]> {
  const reader = new LineReader(chunkSource(chunks), options);
  const lines: string[] = [];
  while (true) {
    try {
      const line = await reader.readLine();
      if (line === null) return lines;
      lines.push(line);
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      lines.push("TOO LONG");
      await reader.skipLine();
    }
  }
}

Deno.test("LineReader.skipLine() drops a long line, and reading goes on", async (t) => {
  const max = 8;
  const ok = "x".repeat(max);
  const over = "y".repeat(max + 1);
  const far = "z".repeat(100);
  const table: [name: string, input: string, lines: string[]][] = [
    ["one over", `a\n${over}\nq\n`, ["a", "TOO LONG", "q"]],
    ["one over with \\r\\n", `${over}\r\nq\r\n`, ["TOO LONG", "q"]],
    ["far over", `${far}\nq\n`, ["TOO LONG", "q"]],
    ["two in a row", `${far}\n${over}\n${ok}\n`, ["TOO LONG", "TOO LONG", ok]],
    ["a long last line", `a\n${far}`, ["a", "TOO LONG"]],
    ["a long line, then an empty one", `${far}\n\nq`, ["TOO LONG", "", "q"]],
  ];
  for (const [name, input, expected] of table) {
    await t.step(name, async () => {
      const bytes = encoder.encode(input);
      for (let i = 0; i <= bytes.length; i++) {
        for (const bufferSize of [2, 64]) {
          assert.deepEqual(
            await readSkipping(cut(bytes, [i]), { maxBytes: max, bufferSize }),
            expected,
            `cut at ${i}, buffer ${bufferSize}`,
          );
        }
      }
    });
  }

  await t.step(
    "an endless line is skipped in reads of the buffer's size",
    async () => {
      let left = 1_000_000;
      const source: ByteSource = {
        read(p: Uint8Array): Promise<number | null> {
          if (left === 0) {
            p.set(encoder.encode("\nq\n"));
            left = -1;
            return Promise.resolve(3);
          }
          if (left < 0) return Promise.resolve(null);
          const n = Math.min(p.length, left);
          p.fill(0x78, 0, n);
          left -= n;
          assert.ok(p.length <= 1024 + 2, `a read of ${p.length} bytes`);
          return Promise.resolve(n);
        },
      };
      const reader = new LineReader(source, { maxBytes: 1024 });
      await assert.rejects(reader.readLine(), LineTooLongError);
      await reader.skipLine();
      assert.equal(await reader.readLine(), "q");
      assert.equal(await reader.readLine(), null);
    },
  );
});

Deno.test("LineReader.hasBufferedLine() tells whether readLine() has to wait", async () => {
  const reader = new LineReader(
    chunkSource([encoder.encode("a\nb\nc"), encoder.encode("\n")]),
  );
  assert.equal(reader.hasBufferedLine(), false); // nothing read yet
  assert.equal(await reader.readLine(), "a");
  assert.equal(reader.hasBufferedLine(), true); // "b\n" came in the same read
  assert.equal(await reader.readLine(), "b");
  assert.equal(reader.hasBufferedLine(), false); // "c" is not a whole line yet
  assert.equal(await reader.readLine(), "c");
  assert.equal(await reader.readLine(), null);
  assert.equal(reader.hasBufferedLine(), true); // the end: readLine() answers at once
});

Deno.test("LineReader grows its buffer up to maxBufferSize while reads fill it", async () => {
  const text = "ab\n".repeat(40); // 120 bytes, always more than one read takes
  const room: number[] = []; // bytes each read was offered
  let offset = 0;
  const bytes = encoder.encode(text);
  const source = {
    read(p: Uint8Array): Promise<number | null> {
      room.push(p.length);
      if (offset === bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, bytes.length - offset);
      p.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
  const reader = new LineReader(source, { bufferSize: 4, maxBufferSize: 32 });
  const lines = [];
  for await (const line of reader) lines.push(line);
  assert.deepEqual(lines, specLines(text));
  // Buffer 4, 8, 16, 32 (the partial line left over takes a byte or two).
  assert.deepEqual(room.slice(0, 4), [4, 7, 14, 31]);
  assert.ok(room.every((n) => n <= 32), "never past maxBufferSize");
});

Deno.test("LineReader.lineBytes is the last line's size in bytes, without its end", async () => {
  const reader = new LineReader(
    chunkSource([encoder.encode("é\r\nab\n\nlast")]),
  );
  const sizes = [];
  while ((await reader.readLine()) !== null) sizes.push(reader.lineBytes);
  assert.deepEqual(sizes, [2, 2, 0, 4]);
});

Deno.test("LineReader keeps its small buffer while reads do not fill it", async () => {
  // A quiet connection (a person typing): each read brings one short line.
  // The idle-memory target depends on such connections staying small.
  const room: number[] = [];
  let left = 20;
  const source = {
    read(p: Uint8Array): Promise<number | null> {
      room.push(p.length);
      if (left-- === 0) return Promise.resolve(null);
      p.set(encoder.encode("a\n"));
      return Promise.resolve(2);
    },
  };
  const reader = new LineReader(source, { bufferSize: 4, maxBufferSize: 32 });
  const lines = [];
  for await (const line of reader) lines.push(line);
  assert.equal(lines.length, 20);
  assert.deepEqual(
    new Set(room),
    new Set([4]),
    "every read was offered 4 bytes",
  );
});

Deno.test("LineReader reads with a buffer of at least one byte, whatever bufferSize says", async () => {
  const bytes = encoder.encode("ab\nc\n");
  let offset = 0;
  const source: ByteSource = {
    read(p: Uint8Array): Promise<number | null> {
      // A real connection answers an empty buffer with 0, forever.
      assert.ok(p.length > 0, "a read into an empty buffer");
      if (offset === bytes.length) return Promise.resolve(null);
      p[0] = bytes[offset++];
      return Promise.resolve(1);
    },
  };
  const lines = [];
  for await (const line of new LineReader(source, { bufferSize: 0 })) {
    lines.push(line);
  }
  assert.deepEqual(lines, ["ab", "c"]);
});

/** A `ReadableStream` that yields `chunks` as they are, one per read. */
function chunkStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

/** Every byte `source` gives, reading `sizes[i]` bytes at a time in turn. */
async function drain(source: ByteSource, sizes: number[]): Promise<number[]> {
  const bytes: number[] = [];
  for (let i = 0;; i++) {
    const p = new Uint8Array(sizes[i % sizes.length]);
    const n = await source.read(p);
    if (n === null) return bytes;
    bytes.push(...p.subarray(0, n));
  }
}

Deno.test("streamSource hands out every byte of the stream, whatever the reads take", async (t) => {
  await t.step(
    "a chunk split over reads, one byte left for the last",
    async () => {
      const source = streamSource(
        chunkStream([encoder.encode("abc"), encoder.encode("de")]),
      );
      assert.deepEqual(await drain(source, [2]), [...encoder.encode("abcde")]);
    },
  );

  await t.step("a property: random chunks, random read sizes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 20 })),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1 }),
        async (chunks, sizes) => {
          const source = streamSource(chunkStream(chunks));
          const expected = chunks.flatMap((chunk) => [...chunk]);
          assert.deepEqual(await drain(source, sizes), expected);
        },
      ),
    );
  });
});

Deno.test("streamSource feeds a LineReader from a ReadableStream", async () => {
  const stream = new Blob(["12 + ", "13\r\n€", "\nq"]).stream();
  const reader = new LineReader(streamSource(stream), { bufferSize: 3 });
  const lines = [];
  for await (const line of reader) lines.push(line);
  assert.deepEqual(lines, ["12 + 13", "€", "q"]);
});

/** A sink that takes a chosen number of bytes per write (at least one). */
function partialSink(counts: number[]): ByteSink & { bytes: number[] } {
  let call = 0;
  return {
    bytes: [],
    write(p: Uint8Array): Promise<number> {
      const n = Math.max(
        1,
        Math.min(p.length, counts[call++ % counts.length] ?? 1),
      );
      this.bytes.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  };
}

Deno.test("writeAll writes every byte, in order, whatever write accepts", async (t) => {
  await t.step("one byte per write", async () => {
    const sink = partialSink([1]);
    await writeAll(sink, encodeLine("Who's there?"));
    assert.equal(
      new TextDecoder().decode(Uint8Array.from(sink.bytes)),
      "Who's there?\n",
    );
  });

  await t.step("a property: random partial writes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }),
        async (bytes, counts) => {
          const sink = partialSink(counts);
          await writeAll(sink, bytes);
          assert.deepEqual(sink.bytes, [...bytes]);
        },
      ),
    );
  });

  await t.step(
    "a write that accepts nothing is an error, not a busy loop",
    async () => {
      const stuck = { write: () => Promise.resolve(0) };
      await assert.rejects(
        writeAll(stuck, encodeLine("x")),
        Deno.errors.WriteZero,
      );
    },
  );

  await t.step("writeLine adds the \\n and encodes UTF-8", async () => {
    const sink = partialSink([2]);
    await writeLine(sink, "Hello Zoë");
    assert.deepEqual(sink.bytes, [...encoder.encode("Hello Zoë\n")]);
  });
});

Deno.test("writing to a peer that is gone is a lost connection, not a bug", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const accepted = await listener.accept();
  accepted.close();
  const reader = new LineReader(client);
  assert.equal(await reader.readLine(), null); // the peer's close: end of stream
  // The first write may still be accepted; the peer's kernel answers it with
  // a reset, and a write after that fails.
  let error: unknown;
  for (let i = 0; i < 100 && error === undefined; i++) {
    await writeLine(client, "12 + 13").catch((e: unknown) => error = e);
  }
  assert.ok(isConnectionLost(error), `got ${error}`);
  // Each class Deno has for a socket's trouble, even without a `code` (as
  // writeAll's own WriteZero has none).
  for (
    const Class of [
      Deno.errors.ConnectionReset,
      Deno.errors.ConnectionAborted,
      Deno.errors.BrokenPipe,
      Deno.errors.NotConnected,
      Deno.errors.UnexpectedEof,
      Deno.errors.WriteZero,
      Deno.errors.TimedOut,
      Deno.errors.NetworkUnreachable,
      Deno.errors.BadResource,
      Deno.errors.Interrupted,
    ]
  ) {
    assert.ok(isConnectionLost(new Class("gone")), Class.name);
  }
  // A client gone from behind a router, as Deno 2.9 reports it (seen in
  // tests/two_hosts_test.ts): a plain Error with the errno's name as code.
  // Any such system error ends the connection, not only the ones we met.
  const unreachable = Object.assign(
    new Error("No route to host (os error 113)"),
    { code: "EHOSTUNREACH" },
  );
  assert.ok(isConnectionLost(unreachable));
  assert.ok(isConnectionLost(new Deno.errors.NetworkUnreachable("gone")));
  assert.ok(isConnectionLost(Object.assign(new Error("x"), { code: "EIO" })));
  assert.ok(isConnectionLost(Object.assign(new Error("x"), { code: "E2BIG" })));
  assert.ok(
    !isConnectionLost(
      Object.assign(new TypeError("a bug"), { code: "ERR_INVALID_ARG_TYPE" }),
    ),
  );
  assert.ok(!isConnectionLost({ code: "ECONNRESET" })); // not an Error
  assert.ok(!isConnectionLost(new TypeError("a bug")));
  assert.ok(!isConnectionLost(new LineTooLongError(1024)));
});
