/**
 * The chat pieces without sockets: reading commands, names and text
 * (tables and properties), the room's rules with fake members, the outbox
 * with a fake connection, the sender's throttle with a fake clock, and how
 * the chat window shows lines and reads what is typed.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert";
import fc from "fast-check";
import { actionFor, describe } from "../chat/client.ts";
import {
  type Command,
  isBlank,
  isValidName,
  parseCommand,
  stripControls,
} from "../chat/protocol.ts";
import { type Member, Room } from "../chat/room.ts";
import {
  NOTICE_DELAY_MS,
  Outbox,
  type OutboxOwner,
  type SharedLine,
  SharedLog,
  WRITES_PER_TURN,
} from "../lib/outbox.ts";
import { Throttle } from "../lib/throttle.ts";
import { setImmediate } from "node:timers";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

Deno.test("parseCommand() reads each command, the verb ignoring case", () => {
  const table: [string, Command][] = [
    ["LOGIN ann", { verb: "LOGIN", name: "ann" }],
    ["login  ann", { verb: "LOGIN", name: " ann" }],
    ["LOGIN", { verb: "LOGIN", name: "" }],
    ["SAY hello  world ", { verb: "SAY", text: "hello  world " }],
    ["Say a\x1b[2Jb", { verb: "SAY", text: "a[2Jb" }],
    ["SAY", { verb: "SAY", text: "" }],
    ["who", { verb: "WHO" }],
    ["WHO extra", { verb: "WHO" }],
    ["TELL bob psst now", { verb: "TELL", to: "bob", text: "psst now" }],
    ["tell bob", { verb: "TELL", to: "bob", text: "" }],
    ["TELL bob \x07", { verb: "TELL", to: "bob", text: "" }],
    ["QUIT", { verb: "QUIT" }],
    ["quit", { verb: "QUIT" }],
    ["", { verb: "UNKNOWN", word: "" }],
    ["SAYhello", { verb: "UNKNOWN", word: "SAYhello" }],
    ["JUMP high", { verb: "UNKNOWN", word: "JUMP" }],
    // ASCII case only: "ſ" (long s) upper-cases to S, but is not one.
    ["\u017fay hi", { verb: "UNKNOWN", word: "\u017fay" }],
  ];
  for (const [line, expected] of table) {
    deepStrictEqual(parseCommand(line), expected, JSON.stringify(line));
  }
});

Deno.test("isValidName(): 1-24 letters, digits, _ - .", () => {
  for (const name of ["a", "Ann", "x".repeat(24), "a_b.c-d", "007"]) {
    ok(isValidName(name), name);
  }
  for (
    const name of [
      "",
      "x".repeat(25),
      "two words",
      "émile",
      "名前",
      "a\tb",
      "a\n",
    ]
  ) {
    ok(!isValidName(name), JSON.stringify(name));
  }
});

Deno.test("stripControls() removes C0, DEL and C1, keeps everything else", () => {
  strictEqual(
    stripControls("a\x1b[2Jb\u009b1mc\x7fd\x07e\x00\tf"),
    "a[2Jb1mcdef",
  );
  strictEqual(stripControls("héllo wörld 👋 名前"), "héllo wörld 👋 名前");
  // DEL and C1 on their own, with no C0 control beside them.
  strictEqual(stripControls("a\x7fb\u0085c\u009bd"), "abcd");
  ok(isBlank(stripControls("\x07\x1b ")));
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      const clean = stripControls(text);
      return !/\p{Cc}/u.test(clean) &&
        clean === [...text].filter((c) => !/\p{Cc}/u.test(c)).join("");
    }),
  );
});

Deno.test("parseCommand() never relays a control character", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (line) => {
      const command = parseCommand(line);
      return !("text" in command) || !/\p{Cc}/u.test(command.text);
    }),
  );
});

/** A room member that records what it was sent. */
class FakeMember implements Member {
  readonly lines: Uint8Array[] = [];
  constructor(readonly name: string) {}
  send(line: Uint8Array): void {
    this.lines.push(line);
  }
  share(line: SharedLine): void {
    this.lines.push(line.segment.subarray(line.start, line.end));
  }
  notify(notice: SharedLine): void {
    this.share(notice);
  }
  get text(): string[] {
    return this.lines.map((line) => decoder.decode(line));
  }
}

Deno.test("Room: JOINED to the others, USERS in joining order", () => {
  const room = new Room<FakeMember>();
  const [ann, bob, cat] = ["ann", "Bob", "cat"].map((n) => new FakeMember(n));
  ok(room.join(ann));
  ok(room.join(bob));
  ok(!room.join(new FakeMember("BOB")), "taken, ignoring case");
  ok(room.join(cat));
  deepStrictEqual(ann.text, ["JOINED Bob\n", "JOINED cat\n"]);
  deepStrictEqual(bob.text, ["JOINED cat\n"]);
  deepStrictEqual(cat.text, []);
  strictEqual(room.who(), "USERS ann Bob cat");
  strictEqual(room.find("bob"), bob);
  strictEqual(room.size, 3);
});

Deno.test("Room: MSG to all but the sender, stored once in the room's log", () => {
  const room = new Room<FakeMember>();
  const members = ["ann", "bob", "cat"].map((n) => new FakeMember(n));
  for (const m of members) room.join(m);
  for (const m of members) m.lines.length = 0;
  const [ann, bob, cat] = members;
  room.say(ann, "hi all");
  deepStrictEqual(ann.text, []);
  deepStrictEqual(bob.text, ["MSG ann hi all\n"]);
  deepStrictEqual(cat.text, ["MSG ann hi all\n"]);
  strictEqual(bob.lines[0].buffer, cat.lines[0].buffer, "stored once");
  strictEqual(bob.lines[0].byteOffset, cat.lines[0].byteOffset);
});

Deno.test("Room: MSG and PRIVATE leave at once; only JOINED and LEFT may wait", () => {
  /** Records how each line was queued. */
  class KindMember extends FakeMember {
    readonly kinds: string[] = [];
    override send(line: Uint8Array): void {
      this.kinds.push("send");
      super.send(line);
    }
    override share(line: SharedLine): void {
      this.kinds.push("share");
      super.share(line);
    }
    override notify(notice: SharedLine): void {
      this.kinds.push("notify");
      this.lines.push(notice.segment.subarray(notice.start, notice.end));
    }
  }
  const room = new Room<KindMember>();
  const [ann, bob, cat] = ["ann", "bob", "cat"].map((n) => new KindMember(n));
  for (const m of [ann, bob, cat]) room.join(m);
  room.say(ann, "hi");
  room.tell(ann, "bob", "psst");
  room.leave(cat);
  deepStrictEqual(bob.text, [
    "JOINED cat\n",
    "MSG ann hi\n",
    "PRIVATE ann psst\n",
    "LEFT cat\n",
  ]);
  deepStrictEqual(bob.kinds, ["notify", "share", "send", "notify"]);
});

Deno.test("Room: PRIVATE to one member; LEFT to the others", () => {
  const room = new Room<FakeMember>();
  const [ann, bob, cat] = ["ann", "bob", "cat"].map((n) => new FakeMember(n));
  for (const m of [ann, bob, cat]) room.join(m);
  for (const m of [ann, bob, cat]) m.lines.length = 0;
  strictEqual(room.tell(ann, "BOB", "psst"), bob);
  strictEqual(room.tell(ann, "nobody", "psst"), undefined);
  deepStrictEqual(bob.text, ["PRIVATE ann psst\n"]);
  deepStrictEqual([ann.text, cat.text], [[], []]);
  ok(room.leave(bob));
  ok(!room.leave(bob), "only once");
  ok(!room.leave(new FakeMember("ann")), "another member of the same name");
  deepStrictEqual(ann.text, ["LEFT bob\n"]);
  deepStrictEqual(cat.text, ["LEFT bob\n"]);
  deepStrictEqual(room.names(), ["ann", "cat"]);
  ok(room.join(new FakeMember("bob")), "the name is free again");
});

/** A connection whose writes finish when the test says so. */
class FakeSink {
  readonly writes: string[] = [];
  readonly buffers: Uint8Array[] = [];
  #pending: {
    bytes: Uint8Array;
    resolve: (n: number) => void;
    reject: (error: Error) => void;
  }[] = [];
  #written = Promise.withResolvers<void>();
  write(bytes: Uint8Array): Promise<number> {
    this.buffers.push(bytes);
    this.#written.resolve();
    this.#written = Promise.withResolvers<void>();
    return new Promise((resolve, reject) =>
      this.#pending.push({ bytes, resolve, reject })
    );
  }
  /** Resolves at the next call of `write`. */
  nextWrite(): Promise<void> {
    return this.#written.promise;
  }
  /** Let the oldest write take at most `max` bytes. */
  complete(max = Infinity): void {
    const { bytes, resolve } = this.#pending.shift()!;
    const n = Math.min(bytes.length, max);
    this.writes.push(decoder.decode(bytes.subarray(0, n)));
    resolve(n);
  }
  /** Let the oldest write fail with `error`. */
  fail(error: Error): void {
    this.#pending.shift()!.reject(error);
  }
  get pending(): number {
    return this.#pending.length;
  }
}

function recordingOwner() {
  const events: string[] = [];
  const owner: OutboxOwner = {
    onOverflow: (queued) => events.push(`overflow ${queued}`),
    onWriteError: (error) => events.push(`error ${error.name}`),
  };
  return { events, owner };
}

/**
 * Let the outbox's next turn pass: promise callbacks first (a finished
 * write schedules the next batch from one), then its flush, a `setImmediate`
 * queued before ours (immediates run in the order queued), then what that
 * flush set off. No timer: which of two timers fires first is up to the
 * clock, and a loaded machine can run a 0 ms one after the notice timer.
 * Should the notice timer fire meanwhile, its flush is an immediate queued
 * after ours.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise((wake) => setImmediate(wake));
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

Deno.test("Outbox: lines pushed together leave in one write, in order", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  outbox.push(encoder.encode("a\n"));
  outbox.push(encoder.encode("b\n"));
  strictEqual(sink.pending, 0, "nothing is written before the pushes end");
  await settle();
  strictEqual(sink.pending, 1);
  outbox.push(encoder.encode("c\n")); // while the first write runs
  outbox.push(encoder.encode("d\n"));
  strictEqual(outbox.queuedBytes, 8);
  sink.complete();
  await settle();
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["a\nb\n", "c\nd\n"]);
  strictEqual(outbox.queuedBytes, 0);
});

Deno.test("Outbox: a partial write is finished before the next batch", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  outbox.push(encoder.encode("hello\n"));
  await settle();
  outbox.push(encoder.encode("next\n"));
  sink.complete(2);
  await settle();
  sink.complete();
  await settle();
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["he", "llo\n", "next\n"]);
});

Deno.test("Outbox: maxBytes queued is allowed; past it the owner hears once and nothing more is taken", async () => {
  const sink = new FakeSink();
  const { events, owner } = recordingOwner();
  const outbox = new Outbox(sink, 12, owner);
  ok(outbox.push(encoder.encode("12345\n")));
  await settle(); // in flight, still counted
  ok(outbox.push(encoder.encode("12345\n"))); // 12 queued: at the limit, not past it
  deepStrictEqual(events, []);
  ok(!outbox.push(encoder.encode("x\n")));
  ok(!outbox.push(encoder.encode("y\n")));
  deepStrictEqual(events, ["overflow 14"]);
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["12345\n"]);
});

Deno.test("Outbox: a failed write closes it and tells the owner", async () => {
  const { events, owner } = recordingOwner();
  const sink = {
    write: () => Promise.reject(new Deno.errors.BrokenPipe("gone")),
  };
  const outbox = new Outbox(sink, 1024, owner);
  outbox.push(encoder.encode("hi\n"));
  await outbox.flushed();
  await settle();
  deepStrictEqual(events, ["error BrokenPipe"]);
  const held = outbox.heldBytes;
  ok(!outbox.push(encoder.encode("more\n")));
  strictEqual(outbox.heldBytes, held, "a closed outbox keeps nothing pushed");
});

Deno.test("Outbox: closed while a write is in flight, it stays closed and tells the owner nothing", async (t) => {
  for (const end of ["completes", "fails"]) {
    await t.step(`the write ${end}`, async () => {
      const sink = new FakeSink();
      const { events, owner } = recordingOwner();
      const outbox = new Outbox(sink, 1024, owner);
      outbox.push(encoder.encode("hi\n"));
      await settle();
      strictEqual(sink.pending, 1);
      outbox.close(); // the owner is dropping the connection
      if (end === "completes") sink.complete();
      else sink.fail(new Deno.errors.BadResource("closed"));
      await settle();
      ok(!outbox.push(encoder.encode("more\n")), "still closed");
      await settle();
      strictEqual(sink.pending, 0, "nothing more written");
      deepStrictEqual(events, [], "the owner closed it: nothing to report");
    });
  }
});

Deno.test("Outbox: a write that fails with a bug is not taken for a lost connection", async () => {
  const { events, owner } = recordingOwner();
  const bug = new TypeError("a bug");
  const outbox = new Outbox(
    { write: () => Promise.reject(bug) },
    1024,
    owner,
  );
  const unhandled = Promise.withResolvers<unknown>();
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    unhandled.resolve(event.reason);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  try {
    outbox.push(encoder.encode("hi\n"));
    await settle();
    deepStrictEqual(events, [], "not reported as a write error");
    strictEqual(await unhandled.promise, bug, "thrown, for all to see");
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
});

Deno.test("Outbox: notices wait for the notice timer, then leave together", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  const log = new SharedLog();
  // A lower bound on a monotonic clock: a loaded machine only adds to it.
  const started = performance.now();
  outbox.pushNotice(log.append(encoder.encode("JOINED a\n")));
  await settle();
  strictEqual(sink.pending, 0, "a notice alone waits");
  outbox.pushNotice(log.append(encoder.encode("JOINED b\n")));
  await settle();
  strictEqual(sink.pending, 0, "another notice does not hurry it");
  await sink.nextWrite();
  const waited = performance.now() - started;
  // 1 ms for the timer's rounding.
  ok(waited >= NOTICE_DELAY_MS - 1, `held back only ${waited} ms`);
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["JOINED a\nJOINED b\n"]);
});

Deno.test("Outbox: a message takes the waiting notices with it, in order", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  const log = new SharedLog();
  outbox.pushNotice(log.append(encoder.encode("JOINED a\n")));
  outbox.push(encoder.encode("MSG a hi\n"));
  outbox.pushNotice(log.append(encoder.encode("LEFT a\n")));
  await settle();
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["JOINED a\nMSG a hi\nLEFT a\n"]);
  // Closing with a notice waiting leaves no timer behind (the test's
  // sanitizer would fail otherwise).
  outbox.pushNotice(log.append(encoder.encode("LEFT b\n")));
  outbox.close();
});

Deno.test("Outbox: a notice queued during a write waits for the notice timer", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  const log = new SharedLog();
  outbox.push(encoder.encode("MSG a hi\n"));
  await settle();
  outbox.pushNotice(log.append(encoder.encode("JOINED b\n")));
  sink.complete();
  await settle();
  strictEqual(sink.pending, 0, "the message was urgent, the notice is not");
  await sink.nextWrite();
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["MSG a hi\n", "JOINED b\n"]);
});

Deno.test("Outbox: a notice does not wait for the timer while flushed() is awaited", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  const log = new SharedLog();
  outbox.push(encoder.encode("MSG a bye\n"));
  await settle();
  outbox.pushNotice(log.append(encoder.encode("LEFT b\n")));
  const flushed = outbox.flushed(); // the session is closing
  sink.complete();
  await settle();
  strictEqual(sink.pending, 1, "written at the next turn");
  sink.complete();
  await flushed;
  deepStrictEqual(sink.writes, ["MSG a bye\n", "LEFT b\n"]);
});

Deno.test("Outbox: shared lines queued during a write leave together at the next turn", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  const log = new SharedLog();
  const [a, b, c] = ["MSG x a\n", "MSG x b\n", "MSG x c\n"].map((line) =>
    log.append(encoder.encode(line))
  );
  outbox.pushShared(a);
  await settle();
  outbox.pushShared(b); // while the first write runs
  sink.complete();
  await Promise.resolve(); // after the write's callback, queued first
  outbox.pushShared(c); // later, in the same turn
  await settle();
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["MSG x a\n", "MSG x b\nMSG x c\n"]);
});

Deno.test("Outbox: closing one ready outbox leaves the others' turn alone", async () => {
  const sinks = [new FakeSink(), new FakeSink()];
  const outboxes = sinks.map((sink) =>
    new Outbox(sink, 1024, recordingOwner().owner)
  );
  for (const outbox of outboxes) outbox.push(encoder.encode("MSG x hi\n"));
  outboxes[0].close();
  await settle();
  deepStrictEqual(sinks.map((sink) => sink.pending), [0, 1]);
  sinks[1].complete();
  await outboxes[1].flushed();
});

Deno.test("SharedLog stores a line longer than a segment whole", () => {
  const log = new SharedLog();
  const small = log.append(encoder.encode("JOINED a\n"));
  const bytes = encoder.encode(`MSG a ${"x".repeat(100_000)}\n`);
  const long = log.append(bytes);
  ok(long.segment !== small.segment, "a segment of its own");
  deepStrictEqual(long.segment.subarray(long.start, long.end), bytes);
});

Deno.test("Outbox: notices in a row are written straight from the log", async () => {
  const sink = new FakeSink();
  const { events, owner } = recordingOwner();
  const outbox = new Outbox(sink, 30, owner);
  const log = new SharedLog();
  const notices = ["JOINED a\n", "JOINED b\n", "LEFT a\n"].map((line) =>
    log.append(encoder.encode(line))
  );
  for (const notice of notices) outbox.pushNotice(notice);
  strictEqual(outbox.queuedBytes, 25);
  outbox.push(encoder.encode("x\n")); // 27 bytes: still fine
  await settle();
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, ["JOINED a\nJOINED b\nLEFT a\nx\n"]);
  // Notices alone: no copy, a view of the log itself.
  outbox.pushNotice(log.append(encoder.encode("JOINED c\n")));
  outbox.pushNotice(log.append(encoder.encode("JOINED d\n")));
  await sink.nextWrite();
  strictEqual(sink.buffers[1].buffer, notices[0].segment.buffer);
  sink.complete();
  await outbox.flushed();
  strictEqual(sink.writes[1], "JOINED c\nJOINED d\n");
  // Notices count toward the limit like any line.
  for (const line of ["JOINED e\n", "JOINED f\n", "JOINED g\n", "JOINED h\n"]) {
    outbox.pushNotice(log.append(encoder.encode(line)));
  }
  deepStrictEqual(events, ["overflow 36"]);
});

Deno.test("Outbox: a reader that stops reading keeps no more of the log alive than it counts", async () => {
  // A client that sends long lines and never reads: the log fills with its
  // own lines (not for it), and between them it gets one short line of
  // someone else's, and an answer of its own that ends that run.
  const sink = new FakeSink(); // its one write never finishes
  const outbox = new Outbox(sink, 1 << 20, recordingOwner().owner);
  const log = new SharedLog();
  const own = encoder.encode(`MSG sender ${"z".repeat(1000)}\n`);
  const other = encoder.encode("MSG helper x\n");
  const answer = encoder.encode("ERROR unknown command\n");
  outbox.pushShared(log.append(other));
  await settle();
  strictEqual(sink.pending, 1);
  for (let i = 0; i < 200; i++) {
    for (let j = 0; j < 65; j++) log.append(own); // a segment of its own lines
    outbox.pushShared(log.append(other));
    outbox.push(answer);
  }
  const queued = outbox.queuedBytes;
  strictEqual(queued, (1 + 200) * other.length + 200 * answer.length);
  const segment = 64 * 1024;
  ok(
    outbox.heldBytes <= 4 * queued + 2 * segment,
    `holds ${outbox.heldBytes} bytes for ${queued} queued`,
  );
});

Deno.test("Outbox: shared lines leave at the next turn, in order, from the log", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink, 1024, recordingOwner().owner);
  const log = new SharedLog();
  const [a, b, c] = ["MSG x a\n", "MSG x b\n", "MSG x c\n"].map((line) =>
    log.append(encoder.encode(line))
  );
  outbox.pushShared(a);
  outbox.pushShared(b);
  strictEqual(sink.pending, 0, "nothing is written before the pushes end");
  await settle(); // not the notice timer: at once
  strictEqual(sink.pending, 1);
  strictEqual(sink.buffers[0].buffer, a.segment.buffer, "no copy");
  outbox.push(encoder.encode("PRIVATE y p\n")); // while the first write runs
  outbox.pushShared(c);
  sink.complete();
  await settle();
  sink.complete();
  await outbox.flushed();
  deepStrictEqual(sink.writes, [
    "MSG x a\nMSG x b\n",
    "PRIVATE y p\nMSG x c\n",
  ]);
});

Deno.test("Outbox: a broadcast starts its writes a few per turn, oldest first", async (t) => {
  const cases: [name: string, readers: number, closed: number[]][] = [
    ["three turns", 2 * WRITES_PER_TURN + 3, []],
    ["one left over for a second turn", WRITES_PER_TURN + 1, []],
    // A reader dropped before its turn takes no write of that turn.
    ["one closed while ready", 2 * WRITES_PER_TURN, [0]],
  ];
  for (const [name, readers, closed] of cases) {
    await t.step(name, async () => {
      const log = new SharedLog();
      const line = log.append(encoder.encode("MSG x hi\n"));
      const started: number[] = [];
      const outboxes = Array.from({ length: readers }, (_, i) =>
        new Outbox(
          {
            write(bytes: Uint8Array) {
              started.push(i);
              return Promise.resolve(bytes.length);
            },
          },
          1024,
          recordingOwner().owner,
        ));
      for (const outbox of outboxes) outbox.pushShared(line);
      for (const i of closed) outboxes[i].close();
      const open = [...outboxes.keys()].filter((i) => !closed.includes(i));
      const turns: number[] = [];
      while (started.length < open.length && turns.length < readers) {
        // The outboxes' flush was set first, so it runs before this one.
        await new Promise((wake) => setImmediate(wake));
        turns.push(started.length);
      }
      deepStrictEqual(
        turns,
        Array.from(
          { length: Math.ceil(open.length / WRITES_PER_TURN) },
          (_, turn) => Math.min((turn + 1) * WRITES_PER_TURN, open.length),
        ),
      );
      deepStrictEqual(started, open, "in the order pushed");
      await Promise.all(outboxes.map((outbox) => outbox.flushed()));
    });
  }
});

Deno.test("Throttle: the burst at once, then rate bytes per second", () => {
  let now = 5000; // ms, moved by hand
  const throttle = new Throttle(4000, 100, () => now); // 4 bytes per ms
  strictEqual(throttle.take(60), 0);
  strictEqual(throttle.take(40), 0, "the whole burst");
  strictEqual(throttle.take(20), 5, "20 bytes owed: 5 ms at 4 bytes per ms");
  now += 5; // the server waited as told
  strictEqual(throttle.take(4), 1, "the debt was paid; 4 more bytes owed");
  now += 1 + 10; // 10 ms more earn 40 bytes
  strictEqual(throttle.take(40), 0);
  strictEqual(throttle.take(2), 0.5);
  now += 60_000; // a long pause earns the burst back, and no more
  strictEqual(throttle.take(100), 0);
  strictEqual(throttle.take(1), 0.25);
});

Deno.test("Throttle: its default clock does not follow the wall clock", () => {
  const throttle = new Throttle(1000, 100);
  const wallClock = Date.now;
  // The system's time set back an hour: no client waits that hour out.
  Date.now = () => wallClock() - 3_600_000;
  try {
    strictEqual(throttle.take(100), 0);
  } finally {
    Date.now = wallClock;
  }
});

Deno.test("chat window: how server lines are shown", () => {
  const table: [string, string | undefined][] = [
    ["JOINED cat", "cat has joined the chat."],
    ["LEFT cat", "cat has left the chat."],
    ["MSG bob hi there", "bob: hi there"],
    ["PRIVATE bob psst", "bob (private): psst"],
    ["USERS ann bob", "In the room: ann, bob"],
    ["ERROR no such user", "Error: no such user"],
    ["WELCOME ann", undefined],
    ["BYE", undefined],
    ["MSG eve \x1b[2J", String.raw`eve: \x1b[2J`],
    ["NEWS \x07", String.raw`NEWS \x07`],
    ["MSG eve C:\\Users", String.raw`eve: C:\Users`],
    ["MSG eve 👨\u200d👩\u200d👧", "eve: 👨\u200d👩\u200d👧"], // emoji stay whole
    ["MSG eve a\u202eb\u200bc", String.raw`eve: a\u{202e}b\u{200b}c`],
  ];
  for (const [line, shown] of table) {
    strictEqual(describe(line), shown, JSON.stringify(line));
  }
});

Deno.test("chat window: what typed lines do", () => {
  deepStrictEqual(actionFor("hello there"), { send: "SAY hello there" });
  deepStrictEqual(actionFor("/msg bob psst now"), {
    send: "TELL bob psst now",
  });
  deepStrictEqual(actionFor("/MSG bob x"), { send: "TELL bob x" });
  deepStrictEqual(actionFor("/who"), { send: "WHO" });
  for (const quit of ["quit", "/quit", " QUIT "]) {
    strictEqual(actionFor(quit), "quit");
  }
  strictEqual(actionFor("   "), undefined);
  for (const half of ["/msg", "/msg bob", "/MSG  bob  "]) {
    deepStrictEqual(actionFor(half), { hint: "Usage: /msg <name> <text>" });
  }
  deepStrictEqual(actionFor("/dance now"), {
    hint: "Unknown command /dance. Type to talk; /who lists the room, " +
      "/msg <name> <text> whispers, quit or /quit leaves.",
  });
  deepStrictEqual(actionFor("/msgbob hi"), {
    hint: "Unknown command /msgbob. Type to talk; /who lists the room, " +
      "/msg <name> <text> whispers, quit or /quit leaves.",
  });
  deepStrictEqual(actionFor("quitting soon"), { send: "SAY quitting soon" });
  // "Every line typed is sent" (CONTRACT 3.5): as typed, spaces and all.
  deepStrictEqual(actionFor("  indented, and after "), {
    send: "SAY   indented, and after ",
  });
  // The server's limit is 1024 bytes a line, the command included.
  const fits = "é".repeat(510); // SAY + space + 1020 bytes
  deepStrictEqual(actionFor(fits), { send: `SAY ${fits}` });
  const tooLong = (bytes: number) => ({
    hint:
      `Not sent: the line is longer than 1024 bytes (${bytes} with the command)`,
  });
  deepStrictEqual(actionFor(fits + "x"), tooLong(1025));
  deepStrictEqual(actionFor(`/msg bob ${"x".repeat(1016)}`), tooLong(1025));
});

/**
 * One step of the outbox property below: a line for one reader (`push`), a
 * broadcast or a notice for some of them (bit i of `to` is reader i; a
 * push goes to the first of them), and what the event loop does before the
 * next step.
 */
interface Step {
  kind: "push" | "shared" | "notice";
  to: number;
  bytes: number;
  then: "nothing" | "microtask" | "turn";
}

const STEP: fc.Arbitrary<Step> = fc.record({
  kind: fc.constantFrom("push", "shared", "notice"),
  to: fc.integer({ min: 1, max: 15 }),
  // Mostly short lines; some long enough that the log starts new segments.
  bytes: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 8, max: 200 }) },
    { weight: 1, arbitrary: fc.integer({ min: 8, max: 40_000 }) },
  ),
  then: fc.constantFrom("nothing", "microtask", "turn"),
});

/** How one reader's connection takes writes: at most `most` bytes each, late. */
const CONNECTION = fc.record({
  most: fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.constant(1 << 20)),
  late: fc.constantFrom("microtask", "turn"),
});

/** A line of exactly `bytes` bytes that names step `n`, so no two are alike. */
function stepLine(n: number, bytes: number): Uint8Array {
  const head = `${n}:`;
  return encoder.encode(
    head + "x".repeat(Math.max(0, bytes - head.length - 1)) + "\n",
  );
}

/**
 * A connection that takes part of each write, after a microtask or a turn
 * of the event loop, and checks that the bytes of a write in flight are not
 * changed before it finishes (the outbox writes straight from the log and
 * from pushed buffers).
 */
class SlowSink {
  readonly received: Uint8Array[] = [];
  constructor(readonly most: number, readonly late: "microtask" | "turn") {}
  write(bytes: Uint8Array): Promise<number> {
    const before = bytes.slice();
    const wait = this.late === "turn"
      ? new Promise((wake) => setImmediate(wake))
      : Promise.resolve();
    return wait.then(() => {
      deepStrictEqual(bytes, before, "bytes changed while being written");
      const n = Math.min(bytes.length, this.most);
      this.received.push(bytes.slice(0, n));
      return n;
    });
  }
  get text(): string {
    return this.received.map((bytes) => decoder.decode(bytes)).join("");
  }
}

Deno.test("Outbox: any mix of lines, broadcasts and notices over slow, partial writes arrives whole and in order (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(CONNECTION, { minLength: 4, maxLength: 4 }),
      fc.array(STEP, { maxLength: 40 }),
      async (connections, steps) => {
        const sinks = connections.map((c) => new SlowSink(c.most, c.late));
        const { events, owner } = recordingOwner();
        const outboxes = sinks.map((sink) => new Outbox(sink, 1 << 30, owner));
        const expected = sinks.map(() => [] as string[]);
        const log = new SharedLog();
        for (const [n, step] of steps.entries()) {
          const bytes = stepLine(n, step.bytes);
          const readers = [...outboxes.keys()].filter((i) =>
            step.to & (1 << i)
          );
          if (step.kind === "push") {
            const first = readers[0]; // a push is for one reader
            ok(outboxes[first].push(bytes));
            expected[first].push(decoder.decode(bytes));
          } else {
            const line = log.append(bytes);
            for (const i of readers) {
              ok(
                step.kind === "shared"
                  ? outboxes[i].pushShared(line)
                  : outboxes[i].pushNotice(line),
              );
              expected[i].push(decoder.decode(bytes));
            }
          }
          if (step.then === "microtask") await Promise.resolve();
          if (step.then === "turn") {
            await new Promise((wake) => setImmediate(wake));
          }
        }
        await Promise.all(outboxes.map((outbox) => outbox.flushed()));
        for (const [i, sink] of sinks.entries()) {
          strictEqual(sink.text, expected[i].join(""), `reader ${i}`);
          strictEqual(outboxes[i].queuedBytes, 0);
        }
        deepStrictEqual(events, []);
      },
    ),
    { numRuns: 200 },
  );
});
