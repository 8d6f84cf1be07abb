/**
 * The UDP date/time server (CONTRACT 3.2): the answer to each request in
 * memory, then the protocol over real sockets, then the script as a person
 * runs it.
 *
 * The protocol tests judge another server when UDP_TIME_ADDR=host:port is
 * set (it must run on this machine, in the same time zone: its answers are
 * compared with this machine's clock):
 *
 *     UDP_TIME_ADDR=127.0.0.1:12001 deno test -A tests/udp_time_test.ts
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { formatAddr } from "../lib/net.ts";
import { decodeUtf8, isLabAnswer, sameAddr } from "../udp/datagram.ts";
import {
  answerRequest,
  localTime,
  serveTime,
  startTimeServer,
} from "../udp/time_server.ts";
import { hasControlChars, startServer } from "./support.ts";
import {
  checkPortInUse,
  externalUdpTarget,
  HAS_IPV6,
  type Received,
  scriptedSocket,
  TestSocket,
  withUdpTarget,
} from "./udp_support.ts";

const SCRIPT = "udp/time_server.ts";
const EXTERNAL = await externalUdpTarget("UDP_TIME_ADDR");
/** For the checks that start, stop or look inside our own server. */
const OWN_ONLY = { ignore: EXTERNAL !== undefined };
if (EXTERNAL) {
  console.log(
    `Judging the server at ${
      formatAddr(EXTERNAL)
    } (UDP_TIME_ADDR); checks that start our own server are skipped.`,
  );
}

const encode = (text: string) => new TextEncoder().encode(text);
/** Milliseconds since 1970 at `iso`, a UTC date and time. */
const epochMs = (iso: string) =>
  Temporal.Instant.from(`${iso}Z`).epochMilliseconds;
/** The server's clock stopped at `iso` (UTC), for a server in UTC. */
const fixedTime = (iso: string) => localTime(() => epochMs(iso), "UTC");

/** What a test reads to know the date and time a server should answer. */
type Clock = () => Temporal.PlainDateTime;
const LOCAL_CLOCK: Clock = () => Temporal.Now.plainDateTimeISO();

/** Bytes that are not UTF-8: stray continuation, overlong, surrogate, 0xff. */
const NOT_UTF8 = [
  [0xff],
  [0x80],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xe2, 0x82],
  [...encode("SEND_DATE"), 0xff],
].map((bytes) => new Uint8Array(bytes));

/** What the lab's UDP servers answer: never answered themselves. */
const LAB_ANSWERS = ["Ok", "ERROR x", "2026-01-01", "12:00:00"];
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^\d{2}:\d{2}:\d{2}$/;

const UNKNOWN = [
  "HELLO",
  "SEND_DATES",
  "SEND DATE",
  "SEND_DATE SEND_TIME",
  "SEND_DATE\0",
  "date",
  "\x1b[31mSEND_TIME",
];

/** An ERROR answer as the contract wants it: one line, at most 64 bytes. */
function assertError(answer: { data: Uint8Array; text: string }, what = "") {
  assert.ok(
    /^ERROR/.test(answer.text) && !answer.text.trim().includes("\n"),
    `${what}: expected one line starting with ERROR, got ${
      JSON.stringify(answer.text)
    }`,
  );
  assert.ok(
    answer.data.length <= 64,
    `${what}: ERROR answer is ${answer.data.length} bytes (limit 64)`,
  );
}

/** Every second from `before` to `after`, as `HH:MM:SS`. */
function secondsBetween(
  before: Temporal.PlainDateTime,
  after: Temporal.PlainDateTime,
): string[] {
  const seconds = [];
  let t = before.round({ smallestUnit: "second", roundingMode: "floor" });
  for (; Temporal.PlainDateTime.compare(t, after) <= 0; t = t.add("PT1S")) {
    seconds.push(t.toPlainTime().toString());
  }
  return seconds;
}

/**
 * Ask `request` and check the answer against `clock` read just before and
 * just after (so a second or midnight passing in between is not a failure).
 */
async function assertClockAnswer(
  socket: TestSocket,
  target: Deno.NetAddr,
  request: string,
  clock: Clock,
): Promise<Received> {
  const before = clock();
  const answer = await socket.ask(request, target);
  const after = clock();
  const text = answer.text.trim();
  if (/SEND_DATE/i.test(request)) {
    const dates = [before, after].map((t) => t.toPlainDate().toString());
    assert.ok(
      dates.includes(text),
      `${JSON.stringify(request)}: expected ${dates[0]}, got ${
        JSON.stringify(text)
      }`,
    );
  } else {
    const times = secondsBetween(before, after);
    assert.ok(
      times.includes(text),
      `${JSON.stringify(request)}: expected one of ${times}, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return answer;
}

/** Run `check` against the external server, or a fresh one of ours. */
const withTarget = (
  check: (target: Deno.NetAddr, log: string[]) => Promise<void>,
) => withUdpTarget(EXTERNAL, startTimeServer, check);

Deno.test("answerRequest()", async (t) => {
  const now = fixedTime("2024-02-29T07:08:09.999");

  await t.step(
    "answers SEND_DATE with YYYY-MM-DD and SEND_TIME with HH:MM:SS",
    () => {
      assert.equal(answerRequest(encode("SEND_DATE"), now), "2024-02-29");
      assert.equal(answerRequest(encode("SEND_TIME"), now), "07:08:09");
      const late = fixedTime("0987-12-31T23:59:59.9");
      assert.equal(answerRequest(encode("SEND_DATE"), late), "0987-12-31");
      assert.equal(answerRequest(encode("SEND_TIME"), late), "23:59:59");
    },
  );

  await t.step("ignores case and surrounding whitespace", () => {
    for (
      const request of [
        "send_date",
        "Send_Date",
        "  SEND_DATE\n",
        "\tsend_date\r\n",
      ]
    ) {
      assert.equal(answerRequest(encode(request), now), "2024-02-29", request);
    }
    for (
      const request of [
        "send_time",
        "SeNd_TiMe",
        " SEND_TIME ",
        "\nsend_time\n",
      ]
    ) {
      assert.equal(answerRequest(encode(request), now), "07:08:09", request);
    }
  });

  await t.step("folds ASCII case only: 'ſend_date' is not SEND_DATE", () => {
    assert.match(answerRequest(encode("ſend_date"), now), /^ERROR/);
  });

  await t.step("answers ERROR to empty, unknown and non-UTF-8 requests", () => {
    const cases = [
      ...["", "  \n", ...UNKNOWN, "A".repeat(65507)].map(encode),
      ...NOT_UTF8,
    ];
    for (const data of cases) {
      const answer = answerRequest(data, now);
      assertError(
        { data: encode(answer), text: answer },
        `${data.slice(0, 12)}`,
      );
    }
    assert.match(answerRequest(new Uint8Array(), now), /^ERROR empty/);
    assert.match(answerRequest(NOT_UTF8[0], now), /^ERROR .*UTF-8/);
  });

  await t.step(
    "property: any bytes get a date, a time or a short ERROR",
    () => {
      const padded = fc.tuple(
        fc.constantFrom("send_date", "send_time"),
        fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
        fc.stringMatching(/^[ \t\r\n]{0,3}$/),
        fc.stringMatching(/^[ \t\r\n]{0,3}$/),
      ).map(([word, upper, left, right]) =>
        encode(
          left +
            [...word].map((c, i) => upper[i] ? c.toUpperCase() : c).join("") +
            right,
        )
      );
      const anything = fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.string({ maxLength: 40 }).map(encode),
        padded,
      );
      fc.assert(fc.property(anything, (data) => {
        const answer = answerRequest(data, now);
        const request = decodeUtf8(data)?.trim() ?? "";
        if (/^send_date$/i.test(request)) return answer === "2024-02-29";
        if (/^send_time$/i.test(request)) return answer === "07:08:09";
        assertError({ data: encode(answer), text: answer });
        return true;
      }));
    },
  );
});

Deno.test("localTime()", async (t) => {
  await t.step("reads the clock in the given time zone", () => {
    const ms = epochMs("2024-02-29T23:30:00.5");
    assert.deepEqual(localTime(() => ms, "UTC")(), {
      second: Math.floor(ms / 1000),
      date: "2024-02-29",
      time: "23:30:00",
    });
    const tokyo = localTime(() => ms, "Asia/Tokyo")();
    assert.equal(`${tokyo.date} ${tokyo.time}`, "2024-03-01 08:30:00");
    // A clock may give fractions of a millisecond (performance.now() based).
    assert.equal(localTime(() => ms + 0.25, "UTC")().time, "23:30:00");
  });

  await t.step(
    "a name that is no time zone fails at once, not per request",
    () => {
      assert.throws(() => localTime(Date.now, "Etc/Unknown"), RangeError);
      assert.throws(() => localTime(Date.now, ""), RangeError);
    },
  );

  await t.step("without a zone, gives the local time that Date gives", () => {
    const ms = Date.now();
    const d = new Date(Math.floor(ms / 1000) * 1000);
    const two = (n: number) => String(n).padStart(2, "0");
    assert.deepEqual(localTime(() => ms)(), {
      second: Math.floor(ms / 1000),
      date: `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`,
      time: `${two(d.getHours())}:${two(d.getMinutes())}:${
        two(d.getSeconds())
      }`,
    });
  });

  await t.step("a new second is answered at once, never the old one", () => {
    let ms = epochMs("2024-12-31T23:59:59.998");
    const now = localTime(() => ms, "UTC");
    assert.equal(now().time, "23:59:59");
    ms += 1;
    assert.equal(now().time, "23:59:59");
    ms += 1; // 1 ms later: a new second, a new day
    assert.deepEqual([now().date, now().time], ["2025-01-01", "00:00:00"]);
    ms -= 2_000; // a clock set back is followed too
    assert.equal(now().time, "23:59:58");
  });

  await t.step("follows a daylight saving change to the second", () => {
    // Paris, 2024-03-31: at 01:00 UTC, local time jumps from 02:00 to 03:00.
    let ms = epochMs("2024-03-31T00:59:59.999");
    const now = localTime(() => ms, "Europe/Paris");
    assert.equal(now().time, "01:59:59");
    ms += 1;
    assert.equal(now().time, "03:00:00");
  });

  await t.step("works out a second once, reads the clock every time", () => {
    let reads = 0;
    const ms = epochMs("2024-02-29T07:08:09.5");
    const now = localTime(() => (reads++, ms), "UTC");
    const first = now();
    for (let i = 0; i < 100; i++) assert.equal(now(), first);
    assert.equal(reads, 101);
  });
});

Deno.test("UDP time server protocol", async (t) => {
  await t.step(
    "answers with its local date and time, from its own address",
    async () => {
      await withTarget(async (target) => {
        await using socket = new TestSocket(target.hostname);
        for (const request of ["SEND_DATE", "SEND_TIME"]) {
          const answer = await assertClockAnswer(
            socket,
            target,
            request,
            LOCAL_CLOCK,
          );
          assert.ok(
            sameAddr(answer.from, target),
            `answer came from ${formatAddr(answer.from)}, not ${
              formatAddr(target)
            }`,
          );
        }
      });
    },
  );

  await t.step("ignores case and surrounding whitespace", async () => {
    await withTarget(async (target) => {
      await using socket = new TestSocket(target.hostname);
      for (
        const request of [
          "send_date",
          "Send_Time",
          "  SEND_DATE\n",
          "\tsend_time\r\n",
        ]
      ) {
        await assertClockAnswer(socket, target, request, LOCAL_CLOCK);
      }
    });
  });

  await t.step(
    "answers unknown and empty requests with one short ERROR line",
    async () => {
      await withTarget(async (target) => {
        await using socket = new TestSocket(target.hostname);
        for (const request of ["", "   ", ...UNKNOWN]) {
          assertError(
            await socket.ask(request, target),
            JSON.stringify(request),
          );
        }
      });
    },
  );

  await t.step("answers datagrams that are not UTF-8 with ERROR", async () => {
    await withTarget(async (target) => {
      await using socket = new TestSocket(target.hostname);
      for (const data of NOT_UTF8) {
        assertError(await socket.ask(data, target), `bytes ${data}`);
      }
    });
  });

  await t.step(
    "answers a 65507-byte datagram with ERROR and goes on",
    async () => {
      await withTarget(async (target) => {
        await using socket = new TestSocket(target.hostname);
        assertError(
          await socket.ask(encode("A".repeat(65507)), target),
          "64 KiB",
        );
        await assertClockAnswer(socket, target, "SEND_TIME", LOCAL_CLOCK);
      });
    },
  );

  await t.step("still answers correctly after 1000 bad datagrams", async () => {
    await withTarget(async (target) => {
      await using socket = new TestSocket(target.hostname);
      const bad = badDatagrams(1000);
      // In windows of 50, so that no datagram overflows a socket buffer.
      for (let i = 0; i < bad.length; i += 50) {
        const window = bad.slice(i, i + 50);
        for (const data of window) await socket.send(data, target);
        for (const data of window) {
          assertError(await socket.receive(), `after ${data.slice(0, 8)}`);
        }
      }
      await assertClockAnswer(socket, target, "SEND_DATE", LOCAL_CLOCK);
      await assertClockAnswer(socket, target, "send_time", LOCAL_CLOCK);
    });
  });

  await t.step("answers 64 senders asking at once, each its own", async () => {
    await withTarget(async (target, log) => {
      const sockets = Array.from(
        { length: 64 },
        () => new TestSocket(target.hostname),
      );
      try {
        const before = LOCAL_CLOCK();
        await Promise.all(
          sockets.map((socket, i) =>
            socket.send(i % 2 ? "SEND_TIME" : "SEND_DATE", target)
          ),
        );
        const answers = await Promise.all(sockets.map((s) => s.receive()));
        const times = secondsBetween(before, LOCAL_CLOCK());
        answers.forEach((answer, i) => {
          const text = answer.text.trim();
          assert.ok(
            i % 2 ? times.includes(text) : /^\d{4}-\d{2}-\d{2}$/.test(text),
            `sender ${i}: ${JSON.stringify(text)}`,
          );
        });
        if (EXTERNAL) return;
        for (const socket of sockets) {
          const sender = formatAddr(socket.addr);
          assert.equal(
            log.filter((line) => line.startsWith(`${sender} sent "SEND_`))
              .length,
            1,
            `${sender} in ${log.length} lines`,
          );
        }
      } finally {
        await Promise.all(sockets.map((s) => s[Symbol.asyncDispose]()));
      }
    });
  });

  await t.step("answers each sender at its own address", async () => {
    await withTarget(async (target) => {
      await using dateAsker = new TestSocket(target.hostname);
      await using timeAsker = new TestSocket(target.hostname);
      const before = LOCAL_CLOCK();
      await dateAsker.send("SEND_DATE", target);
      await timeAsker.send("SEND_TIME", target);
      const [date, time] = [
        await dateAsker.receive(),
        await timeAsker.receive(),
      ];
      const after = LOCAL_CLOCK();
      assert.match(date.text.trim(), /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(
        secondsBetween(before, after).includes(time.text.trim()),
        time.text,
      );
    });
  });
});

/**
 * `count` datagrams, none of them a valid request, nor a lab answer (which
 * gets no answer at all), with a fixed seed: repeatable.
 */
function badDatagrams(count: number): Uint8Array[] {
  const samples = fc.sample(
    fc.oneof(
      fc.uint8Array({ maxLength: 120 }),
      fc.string({ maxLength: 60 }).map(encode),
      fc.constantFrom(...NOT_UTF8, ...UNKNOWN.map(encode), new Uint8Array()),
    ),
    { seed: 3_2, numRuns: count },
  );
  return samples.map((data, i) =>
    /^send_(date|time)$/i.test(decodeUtf8(data)?.trim() ?? "") ||
      isLabAnswer(data)
      ? encode(`not a request ${i}`)
      : data
  );
}

Deno.test("UDP time server, our own", OWN_ONLY, async (t) => {
  await t.step("reads the injected clock", async () => {
    await using server = startTimeServer({
      hostname: "127.0.0.1",
      port: 0,
      now: () => epochMs("2031-01-02T03:04:05.678"),
      timeZone: "UTC",
      log: () => {},
    });
    await using socket = new TestSocket();
    assert.equal(
      (await socket.ask("SEND_DATE", server.addr)).text,
      "2031-01-02",
    );
    assert.equal(
      (await socket.ask(" send_time\n", server.addr)).text,
      "03:04:05",
    );
  });

  await t.step(
    "prints each request with its sender, escaped and cut short",
    async () => {
      await withTarget(async (target, log) => {
        await using socket = new TestSocket();
        const sender = formatAddr(socket.addr);
        await socket.ask("SEND_DATE", target);
        await socket.ask("\x1b[2J\x07hi\u202e\u2028\r\n", target);
        await socket.ask(new Uint8Array([0xff, 0x1b]), target);
        await socket.ask("B".repeat(65507), target);
        assert.equal(log.length, 4, log.join("\n"));
        assert.match(
          log[0],
          new RegExp(`^${sender} sent "SEND_DATE" -> \\d{4}-`),
        );
        assert.ok(
          log[1].includes(String.raw`"\x1b[2J\x07hi\u{202e}\u{2028}\r\n"`),
          log[1],
        );
        assert.ok(log[2].includes("(2 bytes, not UTF-8)"), log[2]);
        assert.ok(
          log[3].includes("(65507 bytes)") && log[3].length < 200,
          log[3],
        );
        for (const line of log) {
          assert.ok(!hasControlChars(line), JSON.stringify(line));
        }
      });
    },
  );

  await t.step(
    "leaves the lab's answers unanswered, and answers the request after them",
    async () => {
      await withTarget(async (target, log) => {
        await using socket = new TestSocket();
        for (const answer of LAB_ANSWERS) await socket.send(answer, target);
        // Answers leave in the order their datagrams came: an answer to any
        // of those would arrive before the date, or before the time after it.
        assert.match((await socket.ask("SEND_DATE", target)).text, DATE);
        assert.match((await socket.ask("SEND_TIME", target)).text, TIME);
        const sender = formatAddr(socket.addr);
        assert.deepEqual(
          log.slice(0, LAB_ANSWERS.length),
          LAB_ANSWERS.map((answer) =>
            `${sender} sent ${
              JSON.stringify(answer)
            } -> not answered: it is an answer, not a request`
          ),
        );
      });
    },
  );

  await t.step({
    name: "an IPv6 datagram over 65507 bytes is cut, answered ERROR",
    ignore: !HAS_IPV6,
    fn: async () => {
      // receive() reads at most 65507 bytes; IPv6 allows 65527: the rest is lost.
      const log: string[] = [];
      await using server = startTimeServer({
        hostname: "::1",
        port: 0,
        log: (line) => log.push(line),
      });
      await using socket = new TestSocket("::1");
      assertError(
        await socket.ask(new Uint8Array(65527).fill(0x41), server.addr),
        "65527 bytes",
      );
      assert.match(
        (await socket.ask("SEND_DATE", server.addr)).text,
        /^\d{4}-\d{2}-\d{2}$/,
      );
      assert.match(
        log[0],
        /^\[::1\]:\d+ sent "A{60}…" \(65507 bytes\) -> ERROR/,
      );
    },
  });

  await t.step(
    "a receive or send error is printed and the loop goes on",
    async () => {
      const { socket, sent } = scriptedSocket(
        [
          new Deno.errors.ConnectionReset("reset by peer"),
          "SEND_DATE",
          "SEND_TIME",
        ],
        new Error("Network is unreachable"),
      );
      const lines: string[] = [];
      await serveTime(socket, {
        now: fixedTime("2020-05-06T07:08:09"),
        log: (line) => lines.push(line),
        warn: (line) => lines.push(`warn: ${line}`),
      });
      // Several receive loops share the socket: the order is theirs.
      assert.deepEqual(sent.toSorted(), ["07:08:09", "2020-05-06"]);
      const expected = [
        /^warn: Receive failed, going on: reset by peer$/,
        /^127\.0\.0\.1:9 sent "SEND_DATE" -> 2020-05-06$/,
        /^127\.0\.0\.1:9 sent "SEND_TIME" -> 07:08:09$/,
        /^warn: Cannot answer 127\.0\.0\.1:9: Network is unreachable$/,
      ];
      for (const line of expected) {
        assert.ok(lines.some((l) => line.test(l)), `${line}: ${lines}`);
      }
      assert.equal(lines.length, 4, lines.join("\n"));
    },
  );
});

Deno.test("UDP time server script", OWN_ONLY, async (t) => {
  await t.step("answers in the time zone of its machine (TZ)", async () => {
    // 25 hours apart: at any moment their dates differ, so a server that
    // ignored TZ would fail at least one of the two.
    for (const zone of ["Pacific/Kiritimati", "Pacific/Pago_Pago"]) {
      await assertAnswersIn(zone, zone);
    }
  });

  await t.step(
    "TZ empty or a POSIX rule: answers as the C library's local time",
    async () => {
      // TZ= is UTC, and UTC+3 is 3 hours behind UTC (POSIX turns the sign
      // round), as `date` prints them. Temporal names the first Etc/Unknown
      // and the second UTC: a server that trusted it crashed on the first
      // request, or answered the second 3 hours late.
      await assertAnswersIn("", "UTC");
      await assertAnswersIn("UTC+3", "-03:00");
    },
  );

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    await t.step(`stops on ${signal}: exit 0 and a stopped line`, async () => {
      await using server = await startServer(SCRIPT);
      await using socket = new TestSocket();
      const target: Deno.NetAddr = {
        transport: "udp",
        hostname: server.host,
        port: server.port,
      };
      await socket.ask("SEND_TIME", target);
      await server.waitFor('sent "SEND_TIME"');
      const result = await server.stop(signal);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /UDP time server stopped$/);
      assert.equal(result.stderr, "");
    });
  }

  await t.step(
    "SIGTERM right after the answers: every request printed, then stopped",
    async () => {
      await using server = await startServer(SCRIPT);
      await using socket = new TestSocket();
      const target: Deno.NetAddr = {
        transport: "udp",
        hostname: server.host,
        port: server.port,
      };
      for (let i = 0; i < 50; i++) await socket.ask(`request ${i}`, target);
      const result = await server.stop("SIGTERM");
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trimEnd().split("\n");
      assert.equal(lines.at(-1), "UDP time server stopped");
      const requests = lines.filter((line) =>
        / sent "request \d+" /.test(line)
      );
      assert.deepEqual(
        requests.map((line) => line.match(/"request (\d+)"/)![1]),
        Array.from({ length: 50 }, (_, i) => String(i)),
      );
    },
  );

  await t.step(
    "a port in use: one sentence on stderr, exit 1",
    () => checkPortInUse(SCRIPT),
  );
});

/**
 * Start the server script with `TZ=tz`: its date and time must be those of
 * `zone`, and it must stop with exit 0 and nothing on stderr.
 */
async function assertAnswersIn(tz: string, zone: string): Promise<void> {
  await using server = await startServer(SCRIPT, [], { env: { TZ: tz } });
  const target: Deno.NetAddr = {
    transport: "udp",
    hostname: server.host,
    port: server.port,
  };
  await using socket = new TestSocket();
  const zoneClock: Clock = () => Temporal.Now.plainDateTimeISO(zone);
  await assertClockAnswer(socket, target, "SEND_DATE", zoneClock);
  await assertClockAnswer(socket, target, "SEND_TIME", zoneClock);
  const result = await server.stop("SIGTERM");
  assert.equal(result.code, 0, `TZ=${tz}: ${result.stderr}`);
  assert.equal(result.stderr, "", `TZ=${tz}`);
}
