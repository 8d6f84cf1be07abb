/**
 * The benchmark's load tools measured against servers played by the test:
 * what tests/bench_test.ts cannot see by running them against a correct
 * server. A fake server on 127.0.0.1 port 0 records what it received and
 * when, and holds or reshapes what it sends, so that a figure the tool
 * prints can be checked against what really happened: the in-flight window
 * and the calculator's pipelining (counts), the latency taken from the send
 * time each chat message carries (its unit and its clock), the measured
 * phase (warm-up excluded, rates over the right duration), the paced rate,
 * and the tools' own flags. Then the framing of bench/chat_conn.ts and the
 * worker pool of bench/load_common.ts, in memory.
 *
 * No figure here is a speed. Where a duration is checked it is bounded by
 * what must have happened around it: a tool's measured phase lies inside
 * the time between two events the fake server saw (or between its start
 * and its exit), and a tool that sleeps before each paced message cannot
 * end sooner than its schedule. These hold on any machine, however slow.
 *
 * Run: deno test -A tests/bench_tools_test.ts
 *
 * @module
 */

import assert from "node:assert/strict";
import { LineReader } from "../lib/lines.ts";
import { calcCases, decimal } from "../bench/calc_cases.ts";
import { LineConn, loginChat, startsWith } from "../bench/chat_conn.ts";
import { pool, withDeadline } from "../bench/load_common.ts";
import { WORKLOADS } from "../bench/workloads.ts";
import { runScript, scriptedServer, within } from "./support.ts";
import { FakeServer } from "./udp_support.ts";
import { assertPerClientGrowth } from "./idle_figures.ts";

const TOOL_FLAGS = ["--allow-all", "--unstable-net"];
const encoder = new TextEncoder();

/** What a load tool did: its exit code, its JSON line, and when it ran (test clock, ms). */
interface ToolRun {
  code: number;
  result: Record<string, unknown>;
  stderr: string;
  startedAt: number;
  endedAt: number;
}

/**
 * Run `bench/<tool>` with `args` to its end; its last stdout line is its
 * JSON. Not bench/processes.ts's runTool(), which keeps only the JSON: the
 * tests here also judge the exit code, stderr and when the tool ran.
 */
async function runLoadTool(tool: string, args: string[]): Promise<ToolRun> {
  const startedAt = performance.now();
  const { code, stdout, stderr } = await runScript(`bench/${tool}`, args, {
    denoFlags: TOOL_FLAGS,
    timeoutMs: 20_000,
  });
  const endedAt = performance.now();
  let result: Record<string, unknown> = {};
  try {
    result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    assert.fail(`no JSON from ${tool} (exit ${code}):\n${stdout}\n${stderr}`);
  }
  return { code, result, stderr, startedAt, endedAt };
}

/** A number field of a tool's JSON. */
function num(result: Record<string, unknown>, key: string): number {
  const value = result[key];
  assert.equal(typeof value, "number", `${key}: ${JSON.stringify(result)}`);
  return value as number;
}

/** A run its --timeout ended: exit 1, and an error that says where it stopped. */
function assertStopped(run: ToolRun, error: string): void {
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.result.end, "timeout");
  assert.equal(run.result.error, error);
}

/** The idle tool with `flags`, against chat `port`, reading the memory of process `pid`. */
function runIdle(port: number, pid: number, flags: string): Promise<ToolRun> {
  return runLoadTool("chat_load.ts", [
    ...["--mode", "idle", ...flags.split(" ")],
    ...["--pid", String(pid), "--port", String(port)],
  ]);
}

/** A TCP server of the test's, on 127.0.0.1 port 0, one handler per connection. */
function tcpServer(handle: (conn: Deno.TcpConn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  const handlers: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handlers.push(
        handle(conn).catch(() => {
          // the tool went away mid-line (it exited): nothing to judge there
        }).finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed already
          }
        }),
      );
    }
  })();
  return {
    port: listener.addr.port,
    /** Stop listening, close every connection and wait for every handler. */
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
      await accepting;
      await Promise.all(handlers);
    },
  };
}

/** One `SAY` the fake chat server received. */
interface Said {
  from: number;
  text: string;
  at: number;
}

/** How the fake chat server treats the k-th SAY of a sender. */
interface ChatPolicy {
  /** Members to pass it on to, by login order, sender left out (default: all). */
  relayTo?: (k: number, others: number) => number;
  /** Rewrite the text before passing it on (default: as it came). */
  rewrite?: (text: string) => string;
  /** Hold the JOINED line that completes the logins this long, in ms (Infinity: never send it). */
  holdLastJoinedMs?: number;
  /** Stop reading from this member once it has logged in. */
  deaf?: number;
}

/**
 * A chat server played by the test (CONTRACT 3.5, the part the load tool
 * uses): `LOGIN name` gets `WELCOME name` and tells each earlier member
 * `JOINED name`; `SAY text` is passed on as `MSG name text` per `policy`.
 * It records every SAY, when the last JOINED went out, and when each
 * connection ended.
 */
function fakeChat(members: number, policy: ChatPolicy = {}) {
  const names: string[] = [];
  const conns: Deno.TcpConn[] = [];
  const said: Said[] = [];
  const perSender = new Map<number, number>();
  const closedAt: number[] = [];
  let lastJoinedAt = 0;
  let loginsDone = 0;
  let closing: () => void;
  const closed = new Promise<void>((resolve) => closing = resolve);
  const write = (conn: Deno.TcpConn, line: string) =>
    conn.write(encoder.encode(line + "\n")).catch(() => 0);
  const server = tcpServer(async (conn) => {
    const lines = new LineReader(conn, { maxBytes: 64 * 1024 });
    let me = -1;
    try {
      for await (const line of lines) {
        if (line.startsWith("LOGIN ")) {
          me = names.length;
          names.push(line.slice(6));
          conns.push(conn);
          await write(conn, `WELCOME ${names[me]}`);
          for (let other = 0; other < me; other++) {
            const last = me === members - 1 && other === 0;
            if (last && policy.holdLastJoinedMs === Infinity) {
              // never sent
            } else if (last && policy.holdLastJoinedMs) {
              setTimeout(() => {
                lastJoinedAt = performance.now();
                write(conns[0], `JOINED ${names[me]}`);
              }, policy.holdLastJoinedMs);
            } else {
              if (last) lastJoinedAt = performance.now();
              await write(conns[other], `JOINED ${names[me]}`);
            }
          }
          loginsDone++;
          if (me === policy.deaf) await closed;
        } else if (line.startsWith("SAY ")) {
          const text = line.slice(4);
          said.push({ from: me, text, at: performance.now() });
          const k = perSender.get(me) ?? 0;
          perSender.set(me, k + 1);
          const others = conns.filter((_, i) => i !== me);
          const n = policy.relayTo?.(k, others.length) ?? others.length;
          const out = policy.rewrite?.(text) ?? text;
          for (const other of others.slice(0, n)) {
            await write(other, `MSG ${names[me]} ${out}`);
          }
        }
      }
    } finally {
      closedAt.push(performance.now());
    }
  });
  const close = () => {
    closing();
    return server.close();
  };
  return {
    ...server,
    close,
    [Symbol.asyncDispose]: close,
    said,
    closedAt,
    get lastJoinedAt() {
      return lastJoinedAt;
    },
    get logins() {
      return loginsDone;
    },
  };
}

/** `@sender:seq:time:` at the start of a fan-out message's text. */
function stamp(text: string): { sender: number; seq: number; time: number } {
  const m = /^@(\d+):(\d+):(\d+):/.exec(text);
  assert.ok(m, `no @sender:seq:time: in ${JSON.stringify(text)}`);
  return { sender: Number(m[1]), seq: Number(m[2]), time: Number(m[3]) };
}

// The window is "messages per sender not yet delivered to everyone". The
// server passes on the first two messages to both listeners, the third to
// one of them, and nothing after: the sender may then have exactly
// `window` more out, so 2 + window SAYs arrive, and the run ends when
// nothing moves for --stall seconds, with the rest unsent.
Deno.test("chat fan-out: the window bounds the messages not yet delivered to everyone", async () => {
  const window = 3;
  const stall = 0.3;
  const server = fakeChat(3, {
    relayTo: (k, others) => k < 2 ? others : k === 2 ? 1 : 0,
  });
  try {
    const run = await runLoadTool("chat_load.ts", [
      ..."--mode fanout --clients 2 --senders 1 --messages 20".split(" "),
      ...["--window", String(window), "--stall", String(stall)],
      ...["--port", String(server.port), "--timeout", "10"],
    ]);
    const r = run.result;
    assert.equal(run.code, 1, run.stderr);
    assert.equal(server.said.length, 2 + window);
    assert.deepEqual(server.said.map((s) => stamp(s.text).seq), [
      0,
      1,
      2,
      3,
      4,
    ]);
    assert.equal(r.sent, 2 + window);
    assert.equal(r.received, 2 * 2 + 1);
    assert.equal(r.expected, (2 + window) * 2); // what was sent, to 2 listeners each
    assert.equal(r.lost, (2 + window) * 2 - 5);
    assert.match(String(r.error), /^only 5 of 20 messages sent$/);
    // The measured phase ends at the last delivery, not when the stall was
    // noticed: it began after the last JOINED went out, and the tool still
    // waited --stall seconds after it before it could exit.
    const window_s = (run.endedAt - server.lastJoinedAt) / 1000;
    assert.ok(
      num(r, "elapsed_s") + stall <= window_s,
      `elapsed ${r.elapsed_s} s + stall ${stall} s > ${window_s} s`,
    );
  } finally {
    await server.close();
  }
});

// Each message carries its send time (µs since the tool started); the
// server passes it on 5 s later than it was, so that every delivery must
// read as 5000 ms early, give or take no more than the whole run.
// The last JOINED is held 300 ms: no SAY may come before it (the JOINED
// storm is warm-up), and that wait is setup, not measured phase.
Deno.test("chat fan-out: latency is from each message's own send time, in ms, over every delivery", async () => {
  const shiftUs = 5_000_000;
  const holdMs = 300;
  const server = fakeChat(4, {
    holdLastJoinedMs: holdMs,
    rewrite: (text) => {
      const { sender, seq, time } = stamp(text);
      return text.replace(
        /^@\d+:\d+:\d+:/,
        `@${sender}:${seq}:${time + shiftUs}:`,
      );
    },
  });
  try {
    const run = await runLoadTool("chat_load.ts", [
      ..."--mode fanout --clients 2 --senders 2 --messages 4".split(" "),
      ...["--port", String(server.port), "--timeout", "10"],
    ]);
    const r = run.result;
    assert.equal(run.code, 0, run.stderr + JSON.stringify(r));
    assert.equal(r.received, 2 * 4 * 3);
    assert.equal(r.samples, r.received); // one latency per delivery
    const wallMs = run.endedAt - run.startedAt;
    assert.ok(num(r, "p50_ms") >= -shiftUs / 1000, `p50 ${r.p50_ms}`);
    assert.ok(num(r, "max_ms") <= -shiftUs / 1000 + wallMs, `max ${r.max_ms}`);
    // The send time is the tool's own monotonic clock, in µs since it
    // started: never more than the time since we started it.
    for (const s of server.said) {
      assert.ok(stamp(s.text).time <= (s.at - run.startedAt) * 1000, s.text);
    }
    assert.ok(server.said.every((s) => s.at >= server.lastJoinedAt));
    assert.ok(num(r, "setup_s") >= holdMs / 1000, `setup ${r.setup_s} s`);
    const measured_s = (run.endedAt - server.lastJoinedAt) / 1000;
    const elapsed = num(r, "elapsed_s");
    assert.ok(elapsed <= measured_s, `elapsed ${elapsed} s > ${measured_s} s`);
    // The rate is deliveries (not messages) over that phase; elapsed_s is
    // rounded to the ms, hence the range.
    const rate = num(r, "deliveries_per_s");
    const received = num(r, "received");
    assert.ok(
      rate >= Math.floor(received / (elapsed + 0.0005)) &&
        rate <= Math.ceil(received / Math.max(elapsed - 0.0005, 1e-6)),
      `${rate}/s for ${received} in ${elapsed} s`,
    );
  } finally {
    await server.close();
  }
});

// A server that stops reading a sender leaves its writes blocked. Once
// nothing has moved for --stall seconds the run ends anyway, by itself (a
// blocked sender is not waited for), well within its --timeout.
Deno.test("chat fan-out: a sender blocked in a write does not hold the run", async () => {
  const server = fakeChat(2, { deaf: 1 });
  try {
    const run = await runLoadTool("chat_load.ts", [
      ..."--mode fanout --clients 1 --senders 1 --messages 400".split(" "),
      ..."--size 60000 --window 400 --stall 0.3 --timeout 8".split(" "),
      ...["--port", String(server.port)],
    ]);
    const r = run.result;
    assert.equal(run.code, 1, run.stderr);
    assert.equal(r.end, "complete");
    assert.match(String(r.error), /^only \d+ of 400 messages sent$/);
  } finally {
    await server.close();
  }
});

// The JOINED storm is warm-up: nothing is sent before every JOINED line
// has come, however long that takes. A server that never sends them all is
// not measured, and the run ended by its --timeout says what it waited for.
Deno.test("chat fan-out: a server that holds back a JOINED line is not measured, and the error says so", async () => {
  await using server = fakeChat(3, { holdLastJoinedMs: Infinity });
  const run = await runLoadTool("chat_load.ts", [
    ..."--mode fanout --clients 2 --senders 1 --messages 5".split(" "),
    ...["--port", String(server.port), "--timeout", "1"],
  ]);
  assertStopped(
    run,
    "stopped while waiting for the JOINED lines (2 of 3 arrived)",
  );
  assert.equal(run.result.joined_lines, 2);
  assert.equal(server.said.length, 0);
});

// A server that never welcomes anyone: the run stopped by its --timeout
// says it was still logging in.
Deno.test("chat load: a run stopped while logging in says so", async () => {
  const server = tcpServer(async (conn) => {
    for await (const _ of conn.readable) {
      // read and never answer
    }
  });
  const memory = idleProcess();
  try {
    for (const mode of ["fanout", "idle"]) {
      const run = await runLoadTool("chat_load.ts", [
        ...["--mode", mode, "--clients", "2", "--senders", "1"],
        ...["--pid", String(memory.pid), "--port", String(server.port)],
        ...["--timeout", "1"],
      ]);
      const members = mode === "fanout" ? 3 : 2;
      assertStopped(
        run,
        `stopped while logging in (0 of ${members} members in)`,
      );
    }
  } finally {
    await server.close();
    await stopProcess(memory);
  }
});

// Paced at R messages a second each, sender s's message k leaves no sooner
// than s/(R x senders) + k/R after the measured phase began, so the phase
// lasts at least that long for the last message of the last sender.
Deno.test("chat paced: each sender keeps to R messages a second, the senders spread over a period", async () => {
  const [rate, senders, messages] = [10, 2, 2];
  const server = fakeChat(3);
  try {
    const run = await runLoadTool("chat_load.ts", [
      ..."--mode fanout --clients 1".split(" "),
      ...["--senders", String(senders), "--messages", String(messages)],
      ...["--rate", String(rate), "--port", String(server.port)],
    ]);
    const r = run.result;
    assert.equal(run.code, 0, run.stderr + JSON.stringify(r));
    assert.equal(r.mode, "paced");
    const schedule_s = (senders - 1) / (rate * senders) + (messages - 1) / rate;
    // 2 ms for a timer's rounding to whole milliseconds
    assert.ok(
      num(r, "elapsed_s") >= schedule_s - 0.002,
      `elapsed ${r.elapsed_s} s, schedule ${schedule_s} s`,
    );
  } finally {
    await server.close();
  }
});

/** What the fake calculator saw of one session: arrival and answer times. */
interface CalcSession {
  seed: number;
  helloAt: number;
  arrived: number[];
  answered: number[];
  maxInFlight: number;
}

/**
 * A calculator server played by the test (CONTRACT 3.4): greets
 * `bench_<tag>q<seed>` after `helloDelayMs`, answers with the answers of
 * bench/calc_cases.ts for that seed. It answers the oldest request only
 * once `pipeline` are waiting (or the last has come), each `answerDelayMs`
 * after it could, and records the most it saw waiting; it closes session
 * `closeSeed` at its `closeAfter`-th request instead of answering.
 */
function fakeCalc(options: {
  requests: number;
  pipeline: number;
  helloDelayMs?: number;
  answerDelayMs?: number;
  closeSeed?: number;
  closeAfter?: number;
}) {
  const sessions: CalcSession[] = [];
  const pause = (ms = 0) =>
    ms ? new Promise((resolve) => setTimeout(resolve, ms)) : null;
  const server = tcpServer(async (conn) => {
    const lines = new LineReader(conn);
    const name = await lines.readLine();
    const seed = Number(/^bench_\w+q(\d+)$/.exec(name ?? "")?.[1]);
    await pause(options.helloDelayMs);
    const s: CalcSession = {
      seed,
      helloAt: performance.now(),
      arrived: [],
      answered: [],
      maxInFlight: 0,
    };
    sessions.push(s);
    await conn.write(encoder.encode(`Hello ${name}\n`));
    const cases = calcCases(seed, options.requests);
    const waiting = () => s.arrived.length - s.answered.length;
    // Answers go out from a task of their own, so that reading goes on
    // while one is held: a request beyond the window is counted as it comes.
    const answerReady = async () => {
      while (
        waiting() > 0 &&
        (waiting() >= options.pipeline || s.arrived.length === cases.length)
      ) {
        await pause(options.answerDelayMs);
        const k = s.answered.length;
        s.answered.push(performance.now());
        await conn.write(encoder.encode(cases[k].answer + "\n"));
      }
    };
    let answering = Promise.resolve();
    try {
      for await (const line of lines) {
        s.arrived.push(performance.now());
        if (line === "q") {
          await answering;
          await conn.write(encoder.encode("Session ended\n"));
          return;
        }
        if (
          seed === options.closeSeed && s.arrived.length > options.closeAfter!
        ) {
          return;
        }
        s.maxInFlight = Math.max(s.maxInFlight, waiting());
        answering = answering.then(answerReady);
      }
    } finally {
      await answering.catch(() => {});
    }
  });
  return { ...server, sessions };
}

// "8 in flight": the server answers nothing until `pipeline` requests are
// waiting, so a tool that keeps fewer in flight waits for ever (and its
// --timeout ends it); each answer is held 5 ms, in which a request sent
// beyond the window (with the others, or two for one answer) shows.
Deno.test("calculator: --pipeline N keeps exactly N requests in flight per session", async () => {
  const [requests, pipeline] = [12, 4];
  const server = fakeCalc({ requests, pipeline, answerDelayMs: 5 });
  try {
    const run = await runLoadTool("calc_load.ts", [
      ...["--clients", "2", "--requests", String(requests)],
      ...["--pipeline", String(pipeline), "--timeout", "3"],
      ...["--port", String(server.port)],
    ]);
    const r = run.result;
    assert.equal(run.code, 0, run.stderr + JSON.stringify(r));
    assert.equal(r.answers, 2 * requests);
    assert.equal(r.mode, "calc-pipelined");
    assert.deepEqual(server.sessions.map((s) => s.maxInFlight), [
      pipeline,
      pipeline,
    ]);
  } finally {
    await server.close();
  }
});

// One at a time, request k goes out after answer k-1 came (sent at
// answered[k-1]) and answer k comes before request k+1 goes out (it
// arrives at arrived[k+1]): its latency lies between the time the server
// held it and that span. The greeting is held 200 ms: opening the sessions
// is not the measured phase, which lies between the last greeting and the
// tool's exit. Session 1 is closed at its third request: its two answers
// count, and the rate is answers given over the phase.
Deno.test("calculator: latency per request in ms, the phase after the greetings, the rate of answers given", async () => {
  const requests = 6;
  const holdMs = 20;
  const server = fakeCalc({
    requests,
    pipeline: 1,
    helloDelayMs: 200,
    answerDelayMs: holdMs,
    closeSeed: 1,
    closeAfter: 2,
  });
  try {
    const run = await runLoadTool("calc_load.ts", [
      ...["--clients", "2", "--requests", String(requests), "--pipeline", "1"],
      ...["--port", String(server.port), "--timeout", "10"],
    ]);
    const r = run.result;
    assert.equal(run.code, 1, run.stderr);
    assert.equal(r.error, "1 sessions failed");
    assert.equal(r.answers, requests + 2);
    assert.equal(r.samples, requests + 2);
    let longest = 0;
    let shortest = Infinity;
    for (const s of server.sessions) {
      for (let k = 0; k < s.answered.length; k++) {
        const sentAfter = k === 0 ? s.helloAt : s.answered[k - 1];
        longest = Math.max(longest, s.arrived[k + 1] - sentAfter);
        shortest = Math.min(shortest, s.answered[k] - s.arrived[k]);
      }
    }
    assert.ok(num(r, "p50_ms") >= shortest - 0.001, `p50 ${r.p50_ms}`);
    assert.ok(
      num(r, "max_ms") <= longest + 0.001,
      `max ${r.max_ms} > ${longest}`,
    );
    const lastHello = Math.max(...server.sessions.map((s) => s.helloAt));
    const elapsed = num(r, "elapsed_s");
    const phase_s = (run.endedAt - lastHello) / 1000;
    assert.ok(elapsed <= phase_s, `elapsed ${elapsed} s > ${phase_s} s`);
    const rate = num(r, "answers_per_s");
    assert.ok(
      rate >= Math.floor(num(r, "answers") / (elapsed + 0.0005)) &&
        rate <= Math.ceil(num(r, "answers") / (elapsed - 0.0005)),
      `${rate}/s for ${r.answers} answers in ${elapsed} s`,
    );
  } finally {
    await server.close();
  }
});

/**
 * A UDP date/time server played by the test: answers `12:34:56` to every
 * request `delayMs` after it came (never, if null); `received` records
 * each request and its source port.
 */
function fakeTime(delayMs: number | null) {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const server = new FakeServer((_request, reply) => {
    if (delayMs === null) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      reply("12:34:56").catch(() => {}); // the tool may have gone
    }, delayMs);
    timers.add(timer);
  });
  return {
    port: server.addr.port,
    received: server.received,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      await server[Symbol.asyncDispose]();
    },
  };
}

// --window W: W sockets, one request outstanding on each. Answers come
// 400 ms after each request, long after the 0.1 s duration: every socket
// sends once, every answer comes after the sending phase, so none counts
// in the rate, and the phase is the duration, not the wait for them.
Deno.test("UDP: --window W keeps W requests outstanding; answers after the duration are not in the rate", async () => {
  const window = 3;
  const server = fakeTime(400);
  try {
    const run = await runLoadTool("udp_load.ts", [
      ...["--window", String(window), "--duration", "0.1"],
      ...["--port", String(server.port), "--timeout", "5"],
    ]);
    const r = run.result;
    assert.equal(run.code, 0, run.stderr + JSON.stringify(r));
    assert.equal(new Set(server.received.map((q) => q.from.port)).size, window);
    assert.equal(server.received.length, window);
    assert.equal(r.sent, window);
    assert.equal(r.answered, window);
    assert.equal(r.samples, window);
    assert.equal(r.answers_per_s, 0);
    const elapsed = num(r, "elapsed_s");
    assert.ok(elapsed >= 0.1, `elapsed ${elapsed} s`);
    // The phase ended when the duration did, before any answer came
    // (none counted in time), and every request went out as it began: so
    // each latency, from its own request, is longer than the phase.
    assert.ok(
      elapsed * 1000 + 1 < num(r, "p50_ms"),
      `phase ${elapsed} s, p50 ${r.p50_ms} ms`,
    );
    // Each latency is from its own request: 400 ms at least, in ms.
    assert.ok(num(r, "p50_ms") >= 399, `p50 ${r.p50_ms}`);
    assert.ok(
      num(r, "max_ms") <= run.endedAt - run.startedAt,
      `max ${r.max_ms}`,
    );
  } finally {
    await server.close();
  }
});

// A request with no answer is lost after --req-timeout, its socket
// replaced; the run must end by itself soon after the duration, well
// within its own --timeout.
Deno.test("UDP: requests with no answer are lost after --req-timeout, and the run still completes", async () => {
  const server = fakeTime(null);
  try {
    const run = await runLoadTool("udp_load.ts", [
      ..."--window 2 --duration 0.2 --req-timeout 0.1 --timeout 1.5".split(" "),
      ...["--port", String(server.port)],
    ]);
    const r = run.result;
    assert.equal(run.code, 1, run.stderr);
    assert.equal(r.end, "complete");
    assert.equal(r.answered, 0);
    assert.equal(r.lost, r.sent);
    assert.equal(server.received.length, r.sent);
    // A lost request's socket is never used again.
    assert.equal(new Set(server.received.map((q) => q.from.port)).size, r.sent);
    assert.ok(num(r, "sent") >= 2 * 2, `sent ${r.sent}`);
    assert.match(String(r.error), /^\d+ requests lost$/);
  } finally {
    await server.close();
  }
});

/** A process that does nothing (its memory and CPU stay put), for `--pid`. */
function idleProcess(): Deno.ChildProcess {
  return new Deno.Command("sleep", {
    args: ["60"],
    stdout: "null",
    stderr: "null",
  })
    .spawn();
}

async function stopProcess(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // gone already
  }
  await child.status;
}

// The idle run reads the server's memory once every JOINED line has come
// and the server is quiet (two readings 250 ms apart), and again --hold
// seconds later; only then does it close its connections. The last JOINED
// is held 200 ms. Our "server" here is a process whose memory never
// changes: each client costs it exactly 0 KiB.
Deno.test("chat idle: memory is read after the JOINED lines and the quiet, and again after --hold", async () => {
  const clients = 3;
  const hold = 0.3;
  const server = fakeChat(clients, { holdLastJoinedMs: 200 });
  const memory = idleProcess();
  try {
    const run = await runIdle(
      server.port,
      memory.pid,
      `--clients ${clients} --hold ${hold} --timeout 10`,
    );
    const r = run.result;
    assert.equal(run.code, 0, run.stderr + JSON.stringify(r));
    assert.equal(r.joined_lines, (clients * (clients - 1)) / 2);
    assert.equal(r.kib_per_client, 0);
    assert.equal(r.kib_per_client_held, 0);
    assert.equal(server.closedAt.length, clients);
    const heldFor_s = (Math.min(...server.closedAt) - server.lastJoinedAt) /
      1000;
    // 10 ms for timers' rounding
    assert.ok(heldFor_s >= 0.5 + hold - 0.01, `closed ${heldFor_s} s after`);
  } finally {
    await server.close();
    await stopProcess(memory);
  }
});

// The held figure comes from the second reading: our "server" here is a
// process whose memory grows by 1 MiB every 100 ms all along (for at most
// 30 s), using next to no CPU, so it still counts as quiet.
Deno.test("chat idle: the held figure is the memory read after --hold", async () => {
  await using server = fakeChat(2);
  const memory = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "const kept = []; const grow = setInterval(() => " +
      "kept.push(new Uint8Array(1 << 20).fill(1)), 100); " +
      "setTimeout(() => clearInterval(grow), 30_000);",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const run = await runIdle(
      server.port,
      memory.pid,
      "--clients 2 --hold 0.5 --timeout 20",
    );
    const r = run.result;
    assert.equal(run.code, 0, run.stderr + JSON.stringify(r));
    assertPerClientGrowth(r, 2);
    assert.ok(
      Number(r.rss_held_mb) - Number(r.rss_after_mb) >= 1,
      `grew from ${r.rss_after_mb} to ${r.rss_held_mb} MB during the hold`,
    );
  } finally {
    await stopProcess(memory);
  }
});

// A server that never goes quiet is never measured: the run ends at its
// --timeout, without a memory reading.
Deno.test("chat idle: a server that stays busy is not measured", async () => {
  const server = fakeChat(2);
  const busy = new Deno.Command("bash", {
    args: ["-c", "while :; do :; done"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const run = await runIdle(
      server.port,
      busy.pid,
      "--clients 2 --hold 0 --timeout 1",
    );
    assertStopped(run, "stopped while waiting for the server to go quiet");
    assert.equal(run.result.rss_after_mb, null);
  } finally {
    await server.close();
    await stopProcess(busy);
  }
});

// A run stopped by its --timeout after the first reading says it was
// holding; the second reading is not there.
Deno.test("chat idle: a run stopped while holding says so", async () => {
  await using server = fakeChat(2);
  const memory = idleProcess();
  try {
    const run = await runIdle(
      server.port,
      memory.pid,
      "--clients 2 --hold 30 --timeout 2",
    );
    assertStopped(run, "stopped while holding");
    assert.equal(typeof run.result.rss_after_mb, "number");
    assert.equal(run.result.rss_held_mb, null);
  } finally {
    await stopProcess(memory);
  }
});

// The memory is the result: a server that holds back a JOINED line is not
// measured, and neither is a --pid whose memory cannot be read.
Deno.test("chat idle: no reading without every JOINED line or a readable --pid", async (t) => {
  const memory = idleProcess();
  try {
    await t.step("a JOINED line held back", async () => {
      await using server = fakeChat(3, { holdLastJoinedMs: Infinity });
      const run = await runIdle(
        server.port,
        memory.pid,
        "--clients 3 --hold 0 --timeout 1",
      );
      assertStopped(
        run,
        "stopped while waiting for the JOINED lines (2 of 3 arrived)",
      );
      assert.equal(run.result.rss_after_mb, null);
    });
    await t.step("a --pid with no memory to read", async () => {
      await using server = fakeChat(3);
      const gone = idleProcess();
      await stopProcess(gone);
      const run = await runIdle(
        server.port,
        gone.pid,
        "--clients 3 --hold 0 --timeout 5",
      );
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.result.end, "complete");
      assert.equal(
        run.result.error,
        `the memory of process ${gone.pid} cannot be read (is --pid the server's?)`,
      );
      assert.equal(server.logins, 0);
    });
  } finally {
    await stopProcess(memory);
  }
});

// The load tool needs a file descriptor per client: with too few it says
// so before it connects anywhere. (Deno raises its soft limit to the hard
// one as it starts, so the hard limit is the one lowered here.)
Deno.test("chat idle: too low an open-files limit is reported before any connection", async () => {
  const server = fakeChat(100);
  const memory = idleProcess();
  try {
    const tool = [Deno.execPath(), "run", ...TOOL_FLAGS, "bench/chat_load.ts"];
    const { code, stdout } = await new Deno.Command("bash", {
      args: [
        "-c",
        'ulimit -n 60 && exec "$@"',
        "bash",
        ...tool,
        ..."--mode idle --clients 100 --pid".split(" "),
        String(memory.pid),
        ...["--port", String(server.port)],
      ],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    const result = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(code, 1);
    assert.match(result.error, /^this load tool may open 60 files, 164 needed/);
    assert.equal(server.logins, 0);
  } finally {
    await server.close();
    await stopProcess(memory);
  }
});

// Bad flags exit 2 with one sentence and no JSON; idle without --pid is a
// failed run (1) that says why.
Deno.test("load tools: bad flags exit 2 and run nothing", async () => {
  const cases: [string, string[], RegExp][] = [
    ["chat_load.ts", [], /--port is required/],
    ["chat_load.ts", ["--port", "9", "--host", "192.0.2.1"], /--host/],
    ["chat_load.ts", ["--port", "9", "--window", "0"], /--window/],
    ["chat_load.ts", ["--port", "9", "--senders", "0"], /--senders/],
    ["chat_load.ts", ["--port", "9", "--mode", "flood"], /--mode/],
    [
      "chat_load.ts",
      ["--port", "9", "--clients", "0", "--senders", "1"],
      /--clients \+ --senders >= 2/,
    ],
    ["calc_load.ts", ["--port", "9", "--pipeline", "0"], /--pipeline/],
    ["udp_load.ts", ["--port", "9", "--window", "4097"], /--window/],
    [
      "udp_load.ts",
      "--port 9 --duration 1 --req-timeout 1 --timeout 2".split(" "),
      /--timeout must be longer than --duration plus --req-timeout/,
    ],
    ["udp_load.ts", ["--port", "9", "--timeout", "0.05"], /--timeout/],
  ];
  const results = await Promise.all(
    cases.map(([tool, args]) =>
      runScript(`bench/${tool}`, args, { denoFlags: TOOL_FLAGS })
    ),
  );
  results.forEach(({ code, stdout, stderr }, i) => {
    const [tool, args, message] = cases[i];
    const what = `${tool} ${args.join(" ")}`;
    assert.equal(code, 2, `${what}: ${stderr}`);
    assert.match(stderr, message, what);
    assert.equal(stdout, "", what);
  });
  const idle = await runScript(
    "bench/chat_load.ts",
    ["--port", "9", "--mode", "idle"],
    { denoFlags: TOOL_FLAGS },
  );
  assert.equal(idle.code, 1, idle.stderr);
  assert.match(
    JSON.parse(idle.stdout).error,
    /^idle needs --pid \(the server's memory is the result\)$/,
  );
});

/** A `Deno.TcpConn` stand-in whose reads return `chunks`, one per read. */
function chunkedConn(chunks: Uint8Array[]): Deno.TcpConn {
  const queue = [...chunks];
  return {
    read(buf: Uint8Array): Promise<number | null> {
      const chunk = queue.shift();
      if (!chunk) return Promise.resolve(null);
      const n = Math.min(chunk.length, buf.length);
      buf.set(chunk.subarray(0, n));
      if (n < chunk.length) queue.unshift(chunk.subarray(n));
      return Promise.resolve(n);
    },
    close() {},
  } as unknown as Deno.TcpConn;
}

/** The lines a LineConn hands on for `chunks`, and why it stopped. */
async function linesOf(chunks: Uint8Array[]) {
  const lines: string[] = [];
  const conn = new LineConn(chunkedConn(chunks), (buf, start, end) => {
    lines.push(new TextDecoder().decode(buf.subarray(start, end)));
  });
  await conn.closed;
  return { lines, failure: conn.failure };
}

Deno.test("chat_conn: lines split at every byte, CRLF or LF, come whole", async () => {
  const text = "WELCOME ada\r\n\nJOINED bob\nMSG bob @0:1:2:xy\r\n";
  const want = ["WELCOME ada", "", "JOINED bob", "MSG bob @0:1:2:xy"];
  const bytes = encoder.encode(text);
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) {
      const chunks = [
        bytes.subarray(0, i),
        bytes.subarray(i, j),
        bytes.subarray(j),
      ]
        .filter((c) => c.length > 0);
      assert.deepEqual(
        (await linesOf(chunks)).lines,
        want,
        `split at ${i}, ${j}`,
      );
    }
  }
});

// The contract's lines are 1 KiB; a server that sends 64 KiB without a
// line end is broken, and the connection is given up instead of growing
// the buffer for ever. A long line under the limit still comes whole.
Deno.test("chat_conn: a line over 64 KiB ends the connection, one under it comes whole", async () => {
  const long = "x".repeat(40_000);
  const ok = await linesOf([encoder.encode(`${long}\n`)]);
  assert.deepEqual(ok.lines, [long]);
  assert.equal(ok.failure, null);
  const tooLong = await linesOf([encoder.encode("y".repeat(70_000))]);
  assert.deepEqual(tooLong.lines, []);
  assert.match(String(tooLong.failure), /server sent a line over 65536 bytes/);
});

Deno.test("chat_conn: startsWith() looks only inside the line", () => {
  const buf = encoder.encode("JOINED bob");
  assert.equal(startsWith(buf, 0, buf.length, "JOINED "), true);
  assert.equal(startsWith(buf, 0, 3, "JOINED "), false);
  assert.equal(startsWith(buf, 0, 3, "JOI"), true);
});

/** loginChat() as `ada` against a server that runs `script`. */
async function loginAgainst(
  script: (conn: Deno.TcpConn, lines: LineReader) => Promise<void>,
  onLine: (text: string) => void = () => {},
) {
  using server = scriptedServer(script);
  return await within(
    loginChat({
      port: server.port,
      name: "ada",
      timeoutMs: 30_000,
      onLine: (buf, start, end) =>
        onLine(new TextDecoder().decode(buf.subarray(start, end))),
    }),
    5_000,
    "loginChat() did not settle in 5 s",
  );
}

Deno.test("chat_conn: loginChat() waits for its own WELCOME, and gives up on ERROR or a close at once", async () => {
  const later: string[] = [];
  let conn: LineConn | undefined;
  let joined: () => void;
  const sawJoined = new Promise<void>((resolve) => joined = resolve);
  try {
    conn = await loginAgainst(async (c, lines) => {
      assert.equal(await lines.readLine(), "LOGIN ada");
      await c.write(encoder.encode("WELCOME bob\nWELCOME ada\nJOINED cy\n"));
      await within(sawJoined, 5_000, "the client never saw JOINED");
    }, (text) => {
      later.push(text);
      if (text === "JOINED cy") joined();
    });
    await within(sawJoined, 5_000, "no JOINED cy after WELCOME");
    assert.deepEqual(later, ["JOINED cy"]);
  } finally {
    conn?.close();
    await conn?.closed;
  }
  await assert.rejects(
    loginAgainst(async (c, lines) => {
      await lines.readLine();
      await c.write(encoder.encode("ERROR name in use\n"));
      await lines.readLine(); // until the client gives up and closes
    }),
    /server said ERROR name in use/,
  );
  await assert.rejects(
    loginAgainst(async (_c, lines) => {
      await lines.readLine();
    }),
    /closed before WELCOME/,
  );
});

Deno.test("load_common: pool() runs at most `limit` at a time, in order, and stops starting on stop()", async () => {
  let running = 0;
  let most = 0;
  const started: number[] = [];
  await pool(7, 3, async (i) => {
    started.push(i);
    most = Math.max(most, ++running);
    await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
    running--;
  });
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(most, 3);
  const ran: number[] = [];
  await pool(10, 2, async (i) => {
    ran.push(i);
    await Promise.resolve();
  }, () => ran.length >= 4);
  assert.deepEqual(ran, [0, 1, 2, 3]);
});

Deno.test("load_common: withDeadline() ends a run that never finishes, at its deadline", async () => {
  const never = new Promise<void>(() => {});
  assert.equal(
    await within(
      withDeadline(never, 0.05),
      5_000,
      "the deadline did not end it",
    ),
    "timeout",
  );
  assert.equal(await withDeadline(Promise.resolve(), 60), "complete");
});

/** A workload's flags and their values, `--name value` pairs in order. */
function flags(args: readonly string[]): Map<string, number | string> {
  const pairs = new Map<string, number | string>();
  for (let i = 0; i < args.length; i += 2) {
    const value = args[i + 1];
    pairs.set(args[i], Number.isNaN(Number(value)) ? value : Number(value));
  }
  return pairs;
}

// --quick is the same workload at a small size: the same flags (a paced
// run stays paced, a pipelined one pipelined), and bench/main.ts checks the
// open-files limit against what the full size connects.
Deno.test("workloads: quick and full sizes take the same flags; connections cover what the full size opens", () => {
  for (const w of WORKLOADS) {
    const full = flags(w.args);
    const quick = flags(w.quickArgs);
    assert.deepEqual([...quick.keys()], [...full.keys()], w.name);
    for (const [flag, value] of quick) {
      if (typeof value === "string") assert.equal(full.get(flag), value);
    }
    const n = (flag: string) => Number(full.get(flag) ?? 0);
    const opens = w.tool === "udp_load.ts"
      ? n("--window")
      : full.get("--mode") === "storm"
      ? n("--concurrency")
      : n("--clients") + n("--senders");
    assert.ok(w.connections >= opens, `${w.name}: ${w.connections} < ${opens}`);
  }
});

// The expected answers are written as the contract prints numbers: a
// leading 0 before the point, no trailing zeros, a minus only when below 0.
Deno.test("calc_cases: decimal() writes scaled integers as the contract prints them", () => {
  const table: [number, number, string][] = [
    [0, 0, "0"],
    [42, 0, "42"],
    [-42, 0, "-42"],
    [5, 1, "0.5"],
    [-5, 1, "-0.5"],
    [30, 1, "3"],
    [-7, 3, "-0.007"],
    [125, 3, "0.125"],
    [-1250, 3, "-1.25"],
    [-173375, 3, "-173.375"],
    [1000, 3, "1"],
  ];
  for (const [n, scale, text] of table) {
    assert.equal(decimal(n, scale), text, `decimal(${n}, ${scale})`);
  }
});

// 0 * -5 is -0, which the contract leaves open (a server may print "0" or
// "-0"): no case may ask it, or a correct server would be judged wrong.
Deno.test("calc_cases: no multiplication has a zero operand", () => {
  for (let seed = 0; seed < 200; seed++) {
    for (const { request } of calcCases(seed, 400)) {
      const m = /^(-?\d+) \* (-?\d+)$/.exec(request);
      if (m) assert.ok(Number(m[1]) !== 0 && Number(m[2]) !== 0, request);
    }
  }
});
