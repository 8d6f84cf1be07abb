/**
 * Q5, checked for real: capture a knock-knock exchange, a calculator session
 * and a UDP hello on the loopback interface with tshark, using the filters
 * docs/wireshark.md teaches (tools/capture_filters.ts), and find in the
 * capture what the guide says is there: the three-way handshake, the
 * plaintext lines, one FIN from each side; for UDP, no handshake at all.
 *
 * Each server runs on its own free port and the capture filters on that
 * port, so parallel runs and other traffic on lo do not interfere.
 * Needs tshark and the right to capture on lo (root); elsewhere those tests
 * are ignored with the reason printed. `.ci/run` installs tshark.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  captureFilter,
  displayFilter,
  type ExerciseName,
  EXERCISES,
  FIN_FILTER,
  loopbackInterface,
  PAYLOAD_FILTER,
  SYN_FILTER,
} from "../tools/capture_filters.ts";
import { formatPacket, hexToText, isChatter } from "../tools/capture.ts";
import { allPids } from "../bench/stats.ts";
import {
  ROOT,
  type RunningScript,
  runScript,
  runTask,
  runWithStdoutClosed,
  startScript,
  startServer,
} from "./support.ts";
import {
  FLAG,
  readBack,
  startCapture,
  whyTsharkUnavailable,
} from "./tshark.ts";
import { TestSocket } from "./udp_support.ts";

const GUIDE = `${ROOT}docs/wireshark.md`;
const CAPTURE_FLAGS = ["--allow-run", "--allow-read"];
const TWO_FINS = (flags: number[]) =>
  flags.filter((f) => f & FLAG.FIN).length >= 2;

const SKIP_REASON = await whyTsharkUnavailable();
if (SKIP_REASON) {
  console.log(`capture_test: live captures ignored: ${SKIP_REASON}`);
}

Deno.test("docs/wireshark.md quotes the filters the tests use", async () => {
  const guide = await Deno.readTextFile(GUIDE);
  const filters = [SYN_FILTER, FIN_FILTER, PAYLOAD_FILTER];
  for (const exercise of Object.values(EXERCISES)) {
    filters.push(captureFilter(exercise), displayFilter(exercise));
  }
  for (const filter of filters) {
    assert.ok(guide.includes(`\`${filter}\``), `guide lacks \`${filter}\``);
  }
});

Deno.test("deno task capture: plain errors for a bad exercise or no tshark", async (t) => {
  await t.step("unknown exercise: exit 2 and the list", async () => {
    const r = await runScript("tools/capture.ts", ["tcp-knok"], {
      denoFlags: CAPTURE_FLAGS,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unknown exercise "tcp-knok".*tcp-knock/);
  });
  await t.step("--help alone: usage on stdout, exit 0", async () => {
    const r = await runScript("tools/capture.ts", ["--help"], {
      denoFlags: CAPTURE_FLAGS,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: deno task capture EXERCISE /m);
  });
  await t.step("flags but no exercise: exit 2 and the list", async () => {
    const r = await runScript("tools/capture.ts", ["--count", "3"], {
      denoFlags: CAPTURE_FLAGS,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^Name an exercise: udp-hello, .*chat\n/);
  });
  await t.step("--port 0: one sentence, the usage hint, exit 2", async () => {
    // 0 is "any free port" to a server; no packet carries it. (No tshark on
    // PATH: were the port taken, the capture would end here, not hang.)
    const r = await runScript("tools/capture.ts", ["calc", "--port", "0"], {
      denoFlags: CAPTURE_FLAGS,
      env: { PATH: "/nonexistent" },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      '--port must be a whole number from 1 to 65535, not "0"\n' +
        "Run 'deno task capture --help' for usage.\n",
    );
  });
  await t.step("tshark not installed: one sentence, exit 1", async () => {
    const r = await runScript("tools/capture.ts", ["calc"], {
      denoFlags: CAPTURE_FLAGS,
      env: { PATH: "/nonexistent" },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tshark is not installed .*\n$/);
  });
});

Deno.test("formatPacket() shows a packet's text quoted, controls escaped", () => {
  const text = "Knock\x1b[2J\u202e\x85\n"; // as a hostile peer might send
  const hex = [...new TextEncoder().encode(text)]
    .map((b) => b.toString(16).padStart(2, "0")).join(":");
  const fields = ["4", "127.0.0.1", "127.0.0.1", "TCP", "50330 → 12002", hex];
  assert.deepEqual(formatPacket(fields), [
    "   4  127.0.0.1 → 127.0.0.1  TCP  50330 → 12002",
    String.raw`      data: "Knock\x1b[2J\u{202e}\x85\n"`,
  ]);
  // A UDP packet's bytes come in the last field, tcp.payload left empty.
  const udp = [
    "7",
    "127.0.0.1",
    "127.0.0.1",
    "UDP",
    "40000 → 12000",
    "",
    "4f6b",
  ];
  assert.deepEqual(formatPacket(udp), [
    "   7  127.0.0.1 → 127.0.0.1  UDP  40000 → 12000",
    '      data: "Ok"',
  ]);
});

Deno.test("hexToText() reads tshark's hex; bytes that are not UTF-8 show as U+FFFD", () => {
  assert.equal(hexToText("4b6e6f636b0a"), "Knock\n");
  assert.equal(hexToText("4b:6e:6f:63:6b:0a"), "Knock\n");
  // Anyone may send any bytes (nc, a broken client): shown, never a crash.
  assert.equal(hexToText("ff4f6b"), "\u{fffd}Ok");
});

Deno.test("loopbackInterface() is the loopback's name for tshark on each system", () => {
  assert.equal(loopbackInterface("linux"), "lo");
  assert.equal(loopbackInterface("darwin"), "lo0");
  assert.equal(loopbackInterface("windows"), "\\Device\\NPF_Loopback");
});

Deno.test("each exercise's hint names deno tasks that exist and are its own", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const [name, exercise] of Object.entries(EXERCISES)) {
    const named = [...exercise.run.matchAll(/deno task ([\w-]+)/g)]
      .map(([, task]) => task);
    assert.deepEqual(named, [`${name}-server`, `${name}-client`]);
    for (const task of named) assert.ok(task in tasks, `no task ${task}`);
  }
});

Deno.test("deno task capture --port P: the hint's commands take P too, and run", async () => {
  for (const exercise of Object.keys(EXERCISES)) {
    // No tshark on PATH: the hint is printed, then the capture ends.
    const r = await runScript(
      "tools/capture.ts",
      [exercise, "--port", "12032"],
      {
        denoFlags: CAPTURE_FLAGS,
        env: { PATH: "/nonexistent" },
      },
    );
    assert.equal(r.code, 1, r.stderr);
    const hint = r.stdout.split("Make traffic in another terminal: ")[1] ?? "";
    const commands = [
      ...hint.matchAll(/deno task ([\w-]+)((?: --[\w-]+ [^\s,]+)*)/g),
    ];
    assert.equal(commands.length, 2, hint);
    for (const [command, task, args] of commands) {
      assert.match(args, / --port 12032( |$)/, `${exercise}: ${command}`);
      // The task takes the line as typed: --help stops it after the parse.
      const typed = await runTask(task, [...args.trim().split(" "), "--help"]);
      assert.equal(typed.code, 0, `${command}: ${typed.stderr}`);
    }
  }
});

Deno.test("isChatter(): tshark's start-up lines are dropped, never its errors or count", () => {
  const chatter = [
    'Running as user "root" and group "root". This could be dangerous.',
    "Capturing on 'Loopback: lo'",
    " ** (tshark:16022) 14:28:13.941285 [Main MESSAGE] -- Capture started.",
    ' ** (tshark:16022) 14:28:13.941342 [Main MESSAGE] -- File: "/tmp/wireshark_loE6SDZ3.pcapng"',
    "tshark: ", // the empty message a capture ends with
  ];
  // What tshark 4.0 says without the right to capture, or on a wrong
  // interface: the student needs every word.
  const shown = [
    'tshark: You do not have permission to capture on device "lo".',
    "(socket: Operation not permitted)",
    "Please check to make sure you have sufficient permissions.",
    "    sudo usermod -a -G wireshark {your username}",
    'tshark: There is no device named "nosuch0".',
    "(No such device exists)",
    "",
    "10 packets captured",
    // Words no tshark here prints yet: passed on, in case they matter.
    " ** (tshark:16022) 14:28:13.941285 [Main WARNING] -- something new",
  ];
  for (const line of chatter) assert.ok(isChatter(line), line);
  for (const line of shown) assert.ok(!isChatter(line), line);
});

Deno.test({
  name: "Wireshark guide, live: knock-knock on loopback",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    const seen = await captureTcp({
      exercise: "tcp-knock",
      server: "tcp/knock_server.ts",
      client: "tcp/knock_client.ts",
    });
    assert.deepEqual(seen.handshake, HANDSHAKE);
    assert.deepEqual(seen.synSenders, ["client", "server"]);
    assert.equal(seen.toServer, "Knock knock\n");
    assert.equal(seen.toClient, "Who's there?\n");
    assert.deepEqual(seen.finSenders, ["client", "server"]);
  },
});

Deno.test({
  name: "Wireshark guide, live: calculator session on loopback",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    const seen = await captureTcp({
      exercise: "calc",
      server: "tcp/calc_server.ts",
      client: "tcp/calc_client.ts",
      clientArgs: ["--name", "Ada"],
      stdin: "12 + 13\n12(10\nq\n",
    });
    assert.deepEqual(seen.handshake, HANDSHAKE);
    assert.deepEqual(seen.synSenders, ["client", "server"]);
    // The malformed line was caught by the client: it never hit the wire.
    assert.equal(seen.toServer, "Ada\n12 + 13\nq\n");
    assert.equal(seen.toClient, "Hello Ada\n25\nSession ended\n");
    assert.deepEqual(seen.finSenders, ["client", "server"]);
  },
});

Deno.test({
  name: "Wireshark guide, live: UDP hello is two datagrams, no handshake",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using server = await startServer("udp/hello_server.ts");
    const exercise = EXERCISES["udp-hello"];
    await using capture = await startCapture(
      captureFilter(exercise, server.port),
    );
    const client = await runScript("udp/hello_client.ts", [
      "--port",
      String(server.port),
    ]);
    assert.equal(client.code, 0, client.stderr);
    const file = await capture.stopWhen((flags) => flags.length >= 2);
    const rows = await readBack(file, displayFilter(exercise, server.port), [
      "udp.srcport",
      "udp.payload",
    ]);
    const sent = rows.map(([src, hex]) => [
      src === String(server.port) ? "server" : "client",
      hexToText(hex).trim(),
    ]);
    assert.deepEqual(sent, [
      ["client", "I could tell you a UDP joke but I'm not sure you'll get it."],
      ["server", "Ok"],
    ]);
  },
});

Deno.test({
  name: "deno task capture tcp-knock: the packets and the text they carry",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using server = await startServer("tcp/knock_server.ts");
    const port = String(server.port);
    await using capture = await startCaptureTask("tcp-knock", port);
    // tshark starts capturing a moment after it says so: knock until it sees.
    let seen = false;
    const knocking = (async () => {
      while (!seen) {
        const client = await runScript("tcp/knock_client.ts", ["--port", port]);
        assert.equal(client.code, 0, client.stderr);
      }
    })();
    try {
      await capture.waitFor(/data: "Who's there\?\\n"/);
    } finally {
      seen = true;
      await knocking;
    }
    const result = await capture.stop("SIGTERM");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`\\d+ → ${port} \\[SYN\\]`));
    assert.match(result.stdout, new RegExp(`${port} → \\d+ \\[SYN, ACK\\]`));
    assert.match(result.stdout, /data: "Knock knock\\n"/);
  },
});

Deno.test({
  name:
    "deno task capture udp-hello: each datagram shown as it comes, with its text",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using server = await startServer("udp/hello_server.ts");
    const port = String(server.port);
    await using capture = await startCaptureTask("udp-hello", port);
    await using traffic = keepSending(server.port, "hello");
    await capture.waitFor('data: "Ok"'); // the server's answer
    await traffic.stop();
    // The next datagram shows while tshark runs, not only once it stops (a
    // tshark that buffers its output would keep it back).
    await traffic.send("one more");
    await capture.waitFor('data: "one more"');
    // A long one: tshark's line carries it twice, as hex (over 1024 bytes).
    const long = "x".repeat(1400);
    await traffic.send(long);
    await capture.waitFor(`data: "${long}"`);
    const result = await capture.stop("SIGTERM");
    assert.equal(result.code, 0, result.stderr);
  },
});

/** Whether this machine has the IPv6 loopback address, ::1. */
function hasIpv6Loopback(): boolean {
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" })
      .close();
    return true;
  } catch {
    console.log("capture_test: no ::1 here, the UDP 12000 capture ignored");
    return false;
  }
}

Deno.test({
  name:
    "deno task capture: a port Wireshark misreads (UDP 12000, as LLC) still shows UDP",
  ignore: SKIP_REASON !== undefined || !hasIpv6Loopback(),
  async fn() {
    // udp-time moved to 12000 by --port: the Decode As rule moves with it.
    // Sent to [::1]:12000, where no lab server listens (they bind 0.0.0.0).
    await using capture = await startCaptureTask("udp-time", "12000");
    {
      await using _traffic = keepSending(12000, "SEND_TIME", "::1");
      await capture.waitFor('data: "SEND_TIME"');
    }
    const summary = capture.seen.at(-2) ?? "";
    assert.match(summary, / {2}UDP {2}\d+ → 12000 Len=9$/);
    const result = await capture.stop("SIGTERM");
    assert.equal(result.code, 0, result.stderr);
  },
});

Deno.test({
  name:
    "deno task capture --count 3: three packets, then it ends by itself, exit 0, saying only tshark's count",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using sink = new TestSocket(); // traffic goes here, unanswered
    await using capture = startScript(
      "tools/capture.ts",
      ["udp-hello", "--port", String(sink.addr.port), "--count", "3"],
      { denoFlags: CAPTURE_FLAGS },
    );
    await using _traffic = keepSending(sink.addr.port, "hello");
    const result = await capture.finish();
    assert.equal(result.code, 0, result.stderr);
    const packets = result.stdout.split("\n").filter((l) =>
      /^ *\d+ {2}/.test(l)
    );
    assert.equal(packets.length, 3, result.stdout);
    // Not tshark's start-up chatter ("Running as user...", "Capture started").
    assert.equal(result.stderr, "3 packets captured\n");
  },
});

Deno.test({
  name: "deno task capture | head: it ends quietly, exit 0, and stops tshark",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    await using sink = new TestSocket(); // traffic goes here, unanswered
    await using traffic = keepSending(sink.addr.port, "hello");
    const filter = `udp port ${sink.addr.port}`;
    // A capture that left tshark running would wait for it (it reads
    // tshark's stderr to the end), and so would we: kill tshark at a
    // deadline, so that such a test ends, and fails.
    const reaper = setTimeout(() => {
      for (const pid of tsharkPids(filter)) Deno.kill(pid, "SIGTERM");
    }, 15_000);
    let result;
    try {
      result = await runWithStdoutClosed(
        "tools/capture.ts",
        ["udp-hello", "--port", String(sink.addr.port)],
        {
          closeAfter: 'data: "hello"',
          denoFlags: CAPTURE_FLAGS,
          timeoutMs: 10_000,
          // One packet after the close, then none: only the write it fails
          // can end the capture, and nothing more would end tshark.
          afterClose: async () => {
            await traffic.stop();
            await traffic.send("bye");
          },
        },
      );
    } finally {
      clearTimeout(reaper);
    }
    const left = tsharkPids(filter);
    for (const pid of left) Deno.kill(pid, "SIGKILL"); // a failed test's too
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(left, [], "tshark still running");
  },
});

Deno.test({
  name: "deno task capture: tshark's own reason, then one sentence, exit 1",
  ignore: SKIP_REASON !== undefined,
  async fn() {
    const r = await runScript(
      "tools/capture.ts",
      ["calc", "--interface", "nosuch0"],
      { denoFlags: CAPTURE_FLAGS },
    );
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assert.match(
      lines.at(-1) ?? "",
      /^tshark could not capture on nosuch0 \(see its message above; /,
    );
    // "its message above": tshark's, which names the interface too.
    assert.ok(lines.slice(0, -1).some((l) => l.includes("nosuch0")), r.stderr);
  },
});

/**
 * `deno task capture EXERCISE --port PORT`, once it says it is capturing
 * (stopped if it never does).
 */
async function startCaptureTask(
  exercise: ExerciseName,
  port: string,
): Promise<RunningScript> {
  const capture = startScript("tools/capture.ts", [exercise, "--port", port], {
    denoFlags: CAPTURE_FLAGS,
  });
  try {
    const protocol = exercise.startsWith("udp") ? "udp" : "tcp";
    await capture.waitFor(`Capturing '${protocol} port ${port}' on`);
    return capture;
  } catch (error) {
    await capture[Symbol.asyncDispose]();
    throw error;
  }
}

/**
 * Send `text` to `host`:`port` every 100 ms until stopped: traffic for a
 * capture, which sees packets a moment after it says it is capturing.
 */
function keepSending(port: number, text: string, host = "127.0.0.1") {
  const socket = Deno.listenDatagram({
    hostname: host,
    port: 0,
    transport: "udp",
  });
  const to = { transport: "udp" as const, hostname: host, port };
  const send = (line: string) =>
    socket.send(new TextEncoder().encode(line), to).then(() => {});
  let sending = true;
  const loop = (async () => {
    while (sending) {
      await send(text);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const stop = async () => {
    sending = false;
    await loop;
  };
  return {
    /** Stop the stream of datagrams (the socket stays open). */
    stop,
    /** Send one datagram. */
    send,
    async [Symbol.asyncDispose]() {
      await stop();
      socket.close();
    },
  };
}

/**
 * Running tshark processes, and the dumpcap each starts to capture for it,
 * whose command line holds `filter` (`/proc`). A tshark killed with SIGKILL
 * leaves its dumpcap capturing.
 */
function tsharkPids(filter: string): number[] {
  const args = (pid: number) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    } catch {
      return []; // gone meanwhile
    }
  };
  return allPids().filter((pid) => {
    const [command, ...rest] = args(pid);
    return /(tshark|dumpcap)$/.test(command ?? "") && rest.includes(filter);
  });
}

/** The first three packets of a TCP connection: the three-way handshake. */
const HANDSHAKE = [
  ["client", "SYN"],
  ["server", "SYN ACK"],
  ["client", "ACK"],
];

/**
 * Start `server` on a free port, capture its port with the guide's capture
 * filter while `client` runs, and read the capture back through the guide's
 * display filters (all at once: each tshark run takes a while to start).
 */
async function captureTcp(session: {
  exercise: ExerciseName;
  server: string;
  client: string;
  clientArgs?: string[];
  stdin?: string;
}) {
  const exercise = EXERCISES[session.exercise];
  await using server = await startServer(session.server);
  const port = String(server.port);
  await using capture = await startCapture(
    captureFilter(exercise, server.port),
  );
  const client = await runScript(
    session.client,
    ["--port", port, ...session.clientArgs ?? []],
    { stdin: session.stdin },
  );
  assert.equal(client.code, 0, client.stderr);
  const file = await capture.stopWhen(TWO_FINS);
  const shown = displayFilter(exercise, server.port);
  const side = (src: string) => src === port ? "server" : "client";
  const [all, syns, data, fins] = await Promise.all([
    readBack(file, shown, ["tcp.srcport", "tcp.flags"]),
    readBack(file, `${shown} && ${SYN_FILTER}`, ["tcp.srcport"]),
    readBack(file, `${shown} && ${PAYLOAD_FILTER}`, [
      "tcp.srcport",
      "tcp.payload",
    ]),
    readBack(file, `${shown} && ${FIN_FILTER}`, ["tcp.srcport"]),
  ]);
  const text = (from: string) =>
    data.filter(([src]) => side(src) === from).map(([, hex]) => hexToText(hex))
      .join("");
  return {
    handshake: all.slice(0, 3).map((
      [src, flags],
    ) => [side(src), flagNames(flags)]),
    synSenders: syns.map(([src]) => side(src)),
    toServer: text("client"),
    toClient: text("server"),
    finSenders: fins.map(([src]) => side(src)).sort(),
  };
}

/** `0x0012` -> `SYN ACK` (only the flags the guide talks about). */
function flagNames(hex: string): string {
  const bits = parseInt(hex, 16);
  return Object.entries(FLAG).filter(([, bit]) => bits & bit)
    .map(([name]) => name).sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b))
    .join(" ");
}

const ORDER = ["SYN", "FIN", "ACK"];
