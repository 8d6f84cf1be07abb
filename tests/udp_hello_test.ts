/**
 * UDP hello (CONTRACT 3.1): the server over real sockets, its loop with a
 * fake socket, and both scripts as a person runs them.
 *
 * The protocol tests judge another server when UDP_HELLO_ADDR=host:port is set:
 *
 *     UDP_HELLO_ADDR=127.0.0.1:12000 deno test -A tests/udp_hello_test.ts
 */

import assert from "node:assert/strict";
import { formatAddr } from "../lib/net.ts";
import { sameAddr } from "../udp/datagram.ts";
import { DEFAULT_MESSAGE } from "../udp/hello_client.ts";
import { serveHello, startHelloServer } from "../udp/hello_server.ts";
import { GOODBYE_LINES } from "./long_goodbye_server.ts";
import {
  hasControlChars,
  runScript,
  runTask,
  startScript,
  startServer,
} from "./support.ts";
import {
  checkPortInUse,
  externalUdpTarget,
  FakeServer,
  freeUdpPort,
  HAS_IPV6,
  scriptedSocket,
  TestSocket,
  withUdpTarget,
} from "./udp_support.ts";

const SERVER = "udp/hello_server.ts";
const CLIENT = "udp/hello_client.ts";
const EXTERNAL = await externalUdpTarget("UDP_HELLO_ADDR");
/** For the checks that start, stop or look inside our own server. */
const OWN_ONLY = { ignore: EXTERNAL !== undefined };
if (EXTERNAL) {
  console.log(
    `Judging the server at ${
      formatAddr(EXTERNAL)
    } (UDP_HELLO_ADDR); checks that start our own server are skipped.`,
  );
}

const encode = (text: string) => new TextEncoder().encode(text);

/** Run `check` against the external server, or a fresh one of ours. */
const withTarget = (
  check: (target: Deno.NetAddr, log: string[]) => Promise<void>,
) => withUdpTarget(EXTERNAL, startHelloServer, check);

Deno.test("UDP hello server protocol", async (t) => {
  await t.step("answers the joke with Ok, from its own address", async () => {
    await withTarget(async (target) => {
      await using socket = new TestSocket(target.hostname);
      const answer = await socket.ask(DEFAULT_MESSAGE, target);
      assert.equal(answer.text.trim(), "Ok");
      assert.ok(
        sameAddr(answer.from, target),
        `answer came from ${formatAddr(answer.from)}`,
      );
    });
  });

  await t.step(
    "answers any datagram with Ok: empty, not UTF-8, 64 KiB",
    async () => {
      await withTarget(async (target) => {
        await using socket = new TestSocket(target.hostname);
        const datagrams = [
          encode(""),
          encode("  héllo wörld 🌍\r\n"),
          encode("\x1b[2J\x07"),
          new Uint8Array([0xff, 0xc0, 0xaf]),
          encode("J".repeat(65507)),
          encode(DEFAULT_MESSAGE),
        ];
        for (const data of datagrams) {
          const answer = await socket.ask(data, target);
          assert.equal(answer.text.trim(), "Ok", `after ${data.length} bytes`);
        }
      });
    },
  );

  await t.step("answers each sender at its own address", async () => {
    await withTarget(async (target) => {
      await using first = new TestSocket(target.hostname);
      await using second = new TestSocket(target.hostname);
      // One at a time: had the answer gone anywhere but to the sender, the
      // second socket would wait in vain.
      assert.equal((await first.ask("one", target)).text.trim(), "Ok");
      assert.equal((await second.ask("two", target)).text.trim(), "Ok");
      await first.send("three", target);
      await second.send("four", target);
      assert.equal((await first.receive()).text.trim(), "Ok");
      assert.equal((await second.receive()).text.trim(), "Ok");
    });
  });
});

Deno.test("UDP hello server, our own", OWN_ONLY, async (t) => {
  await t.step(
    "prints each message with its sender, escaped and cut short",
    async () => {
      await withTarget(async (target, log) => {
        await using socket = new TestSocket();
        const sender = formatAddr(socket.addr);
        await socket.ask(DEFAULT_MESSAGE, target);
        await socket.ask("\x1b]0;pwned\x07\u2029\n", target);
        await socket.ask(new Uint8Array([0xff]), target);
        await socket.ask("J".repeat(65507), target);
        assert.deepEqual(log.slice(0, 3), [
          `Message from ${sender}: "${DEFAULT_MESSAGE}"`,
          String.raw`Message from ${sender}: "\x1b]0;pwned\x07\u{2029}\n"`,
          `Message from ${sender}: (1 bytes, not UTF-8)`,
        ]);
        assert.match(log[3], /^Message from [^ ]+: "J{60}…" \(65507 bytes\)$/);
        assert.equal(log.length, 4);
        for (const line of log) assert.ok(!hasControlChars(line), line);
      });
    },
  );

  await t.step(
    "leaves its own answer Ok unanswered, and answers the message after it",
    async () => {
      await withTarget(async (target, log) => {
        await using socket = new TestSocket();
        await socket.send("Ok", target);
        // The server answers datagrams in the order they came, so an answer
        // to the first Ok would have been sent before this one. Every answer
        // is Ok: count them. An extra one is already on its way; the wait
        // only gives it time to be read.
        assert.equal((await socket.ask("ERROR x", target)).text, "Ok");
        await assert.rejects(socket.receive(200), /no datagram within 200 ms/);
        const sender = formatAddr(socket.addr);
        assert.deepEqual(log, [
          `Message from ${sender}: "Ok" (not answered: it is an answer, not a request)`,
          `Message from ${sender}: "ERROR x"`,
        ]);
      });
    },
  );

  await t.step(
    "a receive or send error is printed and the loop goes on",
    async () => {
      const { socket, sent } = scriptedSocket(
        [new Error("Connection reset by peer"), "a", "b"],
        new Error("No buffer space available"),
      );
      const lines: string[] = [];
      await serveHello(
        socket,
        (line) => lines.push(line),
        (line) => lines.push(`warn: ${line}`),
      );
      assert.deepEqual(sent, ["Ok", "Ok"]);
      assert.deepEqual(lines, [
        "warn: Receive failed, going on: Connection reset by peer",
        `Message from 127.0.0.1:9: "a"`,
        "warn: Cannot answer 127.0.0.1:9: No buffer space available",
        `Message from 127.0.0.1:9: "b"`,
      ]);
    },
  );
});

/** The server the client script talks to: UDP_HELLO_ADDR, or ours in a subprocess. */
async function withServerArgs(
  check: (
    hostPort: string[],
    serverLine: (pattern: RegExp) => Promise<string>,
  ) => Promise<void>,
): Promise<void> {
  if (EXTERNAL) {
    const args = ["--host", EXTERNAL.hostname, "--port", String(EXTERNAL.port)];
    return await check(args, () => Promise.resolve("(external server)"));
  }
  await using server = await startServer(SERVER);
  await check(
    ["--host", server.host, "--port", String(server.port)],
    (p) => server.waitFor(p),
  );
}

Deno.test("udp-hello-client script", async (t) => {
  await t.step(
    "sends the joke, prints the answer with the server's address",
    async () => {
      await withServerArgs(async (hostPort, serverLine) => {
        const result = await runScript(CLIENT, hostPort);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stderr, "");
        const where = `${hostPort[1]}:${hostPort[3]}`;
        assert.deepEqual(result.stdout.trimEnd().split("\n"), [
          `Sending "${DEFAULT_MESSAGE}" to ${where}`,
          `Answer from ${where}: "Ok"`,
        ]);
        const line = await serverLine(/Message from/);
        if (!EXTERNAL) {
          assert.match(
            line,
            /^Message from 127\.0\.0\.1:\d+: "I could tell you a UDP joke but I'm not sure you'll get it\."$/,
          );
        }
      });
    },
  );

  await t.step("--message sends that text, as UTF-8", async () => {
    await using fake = new FakeServer((_got, reply) => reply("Ok"));
    const result = await runScript(CLIENT, [
      "--port",
      String(fake.addr.port),
      "--message",
      "héllo wörld",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(fake.received.map((r) => r.text), ["héllo wörld"]);
  });

  await t.step(
    "--message longer than a datagram: why it cannot be sent, exit 1",
    async () => {
      await using fake = new FakeServer((_got, reply) => reply("Ok"));
      const result = await runScript(CLIENT, [
        "--port",
        String(fake.addr.port),
        "--message",
        "x".repeat(70_000),
      ]);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `Cannot send to 127.0.0.1:${fake.addr.port}: message too long (a datagram holds at most 65507 bytes)\n`,
      );
    },
  );

  await t.step(
    "--host 0.0.0.0, as a server says it listens, reaches this machine",
    async () => {
      await using fake = new FakeServer(
        (_got, reply) => reply("Ok"),
        "0.0.0.0",
      );
      const port = String(fake.addr.port);
      const result = await runScript(CLIENT, [
        "--host",
        "0.0.0.0",
        "--port",
        port,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        result.stdout.trimEnd().split("\n").at(-1),
        `Answer from 127.0.0.1:${port}: "Ok"`,
      );
    },
  );

  await t.step("ignores a datagram from another address", async () => {
    await using intruder = new TestSocket();
    await using fake = new FakeServer(async (got, reply) => {
      await intruder.send("Not ok", got.from);
      await reply("Ok");
    });
    const result = await runScript(CLIENT, ["--port", String(fake.addr.port)]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.deepEqual(lines.slice(1), [
      `Ignored a datagram from 127.0.0.1:${intruder.addr.port}`,
      `Answer from 127.0.0.1:${fake.addr.port}: "Ok"`,
    ]);
  });

  await t.step(
    "an answer only from another address is no answer, exit 1",
    async () => {
      await using intruder = new TestSocket();
      await using fake = new FakeServer((got) => intruder.send("Ok", got.from));
      const result = await runScript(CLIENT, [
        "--port",
        String(fake.addr.port),
        "--timeout",
        "0.3",
      ]);
      assert.equal(result.code, 1);
      assert.ok(!result.stdout.includes("Answer from"), result.stdout);
    },
  );

  await t.step(
    "no server: waits 2 s, one sentence on stderr, exit 1",
    async () => {
      const port = freeUdpPort();
      const started = performance.now();
      const result = await runScript(CLIENT, ["--port", String(port)]);
      // Counted from before the client started, so a slow machine only
      // makes it longer: a client that gave up early fails, whatever it says.
      const waited = performance.now() - started;
      assert.ok(waited >= 1900, `gave up after ${Math.round(waited)} ms`);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `No answer from 127.0.0.1:${port} within 2 s (is the server running?)\n`,
      );
    },
  );

  await t.step("host not found: one sentence on stderr, exit 1", async () => {
    const result = await runScript(CLIENT, ["--host", "nohost.invalid"]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "Cannot send to nohost.invalid:12000: host not found (check --host)\n",
    );
  });

  await t.step({
    name: "talks to an IPv6 server from an IPv6 socket",
    ignore: !HAS_IPV6,
    fn: async () => {
      await using fake = new FakeServer((_got, reply) => reply("Ok"), "::1");
      const result = await runScript(CLIENT, [
        "--host",
        "::1",
        "--port",
        String(fake.addr.port),
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Answer from \[::1\]:\d+: "Ok"/);
    },
  });
});

Deno.test("udp-hello-server script", OWN_ONLY, async (t) => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    await t.step(`stops on ${signal}: exit 0 and a stopped line`, async () => {
      await using server = await startServer(SERVER);
      assert.match(
        server.firstLine,
        /^UDP hello server listening on 127\.0\.0\.1:\d+$/,
      );
      const result = await server.stop(signal);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /UDP hello server stopped$/);
      assert.equal(result.stderr, "");
    });
  }

  await t.step(
    "a port in use: one sentence on stderr, exit 1",
    () => checkPortInUse(SERVER),
  );
});

Deno.test(
  "deno task udp-hello: server and client together",
  OWN_ONLY,
  async () => {
    const { code, stdout: out, stderr } = await runTask("udp-hello");
    assert.equal(code, 0, stderr);
    const lines = out.trimEnd().split("\n");
    assert.match(
      lines[0],
      /^\[server\] UDP hello server listening on 127\.0\.0\.1:\d+$/,
    );
    assert.ok(
      lines.some((l) => /^Answer from 127\.0\.0\.1:\d+: "Ok"$/.test(l)),
      out,
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith("[server] Message from 127.0.0.1:") &&
        l.includes("UDP joke")
      ),
      out,
    );
    assert.equal(lines.at(-1), "[server] UDP hello server stopped");
  },
);

Deno.test(
  "tools/pair.ts exits with its client's code, and stops its server",
  OWN_ONLY,
  async () => {
    // The UDP hello client beside a TCP server: its datagram gets no
    // answer, so it says so and exits 1.
    const { code, stdout: out, stderr } = await runScript("tools/pair.ts", [
      "tcp/knock_server.ts",
      "udp/hello_client.ts",
      "--timeout",
      "0.5",
    ], { denoFlags: ["--allow-run", "--allow-read"] });
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^No answer from 127\.0\.0\.1:\d+ within 0\.5 s/);
    assert.equal(
      out.trimEnd().split("\n").at(-1),
      "[server] Knock-knock server stopped",
    );
  },
);

Deno.test(
  "tools/pair.ts without its two scripts: how to run it, exit 2",
  async (t) => {
    const cases = [
      [],
      ["udp/hello_server.ts"], // the client forgotten
      ["udp/hello_server", "udp/hello_client.ts"], // a name mistyped
    ];
    for (const args of cases) {
      await t.step(args.join(" ") || "nothing", async () => {
        const result = await runScript("tools/pair.ts", args, {
          denoFlags: ["--allow-run", "--allow-read"],
        });
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stdout, "");
        assert.equal(
          result.stderr,
          "usage: deno run --allow-run --allow-read tools/pair.ts SERVER.ts CLIENT.ts [client flags]\n",
        );
      });
    }
  },
);

Deno.test(
  "tools/pair.ts with a server that does not start: why, exit 1",
  async () => {
    const result = await runScript("tools/pair.ts", [
      "udp/no_such_server.ts",
      "udp/hello_client.ts",
    ], { denoFlags: ["--allow-run", "--allow-read"] });
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^The server did not start: error: Module not found "file:\/\/\S*\/udp\/no_such_server\.ts"/,
    );
  },
);

Deno.test(
  "tools/pair.ts kills a server that will not stop, says so, exits 1",
  OWN_ONLY,
  async () => {
    // The client gets its "Ok" and exits 0; the server ignores SIGTERM.
    await using pair = startScript("tools/pair.ts", [
      "tests/stubborn_server.ts",
      "udp/hello_client.ts",
    ], { denoFlags: ["--allow-run", "--allow-read"] });
    await pair.waitFor(/^Answer from 127\.0\.0\.1:\d+: "Ok"$/);
    await pair.waitFor("[server] SIGTERM: ignored"); // from the pair
    // The client has gone: a signal to the pair goes to the server.
    pair.child.kill("SIGTERM");
    await pair.waitFor("[server] SIGTERM: ignored");
    const { code, stderr } = await pair.finish();
    assert.equal(code, 1, stderr);
    // Its stderr too, tagged, before the pair's own last words.
    assert.equal(
      stderr,
      "[server] Stubborn server: SIGTERM will be ignored\n" +
        "The server did not stop within 5 s of SIGTERM, so it was killed (a server must stop cleanly on SIGTERM).\n",
    );
  },
);

Deno.test(
  "tools/pair.ts shows the server's output to its end, however long its goodbye",
  OWN_ONLY,
  async () => {
    // The server prints 5000 lines on SIGTERM, more than a pipe holds: the
    // pair must read them all before it exits, not stop at the server's exit.
    const result = await runScript("tools/pair.ts", [
      "tests/long_goodbye_server.ts",
      "udp/hello_client.ts",
    ], { denoFlags: ["--allow-run", "--allow-read"] });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    const goodbye = lines.filter((line) =>
      line.startsWith("[server] goodbye ")
    );
    assert.equal(goodbye.length, GOODBYE_LINES);
    assert.equal(goodbye.at(-1), `[server] goodbye ${GOODBYE_LINES}`);
    assert.equal(lines.at(-1), "[server] Long-goodbye server stopped");
  },
);
