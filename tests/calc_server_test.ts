/**
 * TCP calculator server (CONTRACT 3.4) over real sockets: the exchange, the
 * framing, the limits, names, many sessions at once, clients that vanish;
 * then what our server prints, and the script as a person runs it.
 *
 * The protocol checks judge another server when CALC_ADDR=host:port is set:
 *
 *     node ../shared/bench/calc_server_node.mjs --host 127.0.0.1 --port 12013 &
 *     CALC_ADDR=127.0.0.1:12013 deno test -A tests/calc_server_test.ts
 *
 * The checks that read our server's log, or start and stop it, are skipped
 * then (they are marked `ignore`, with the reason printed).
 */

import assert from "node:assert/strict";
import { writeAll } from "../lib/lines.ts";
import { formatAddr } from "../lib/net.ts";
import { closeQuietly } from "../lib/tcp_server.ts";
import { startCalcServer } from "../tcp/calc_server.ts";
import {
  hasControlChars,
  runScript,
  startScript,
  startServer,
  type Target,
  within,
} from "./support.ts";
import {
  announceExternal,
  ANSWER_TIMEOUT_MS,
  LogCollector,
  notClosed,
  TestClient,
} from "./tcp_support.ts";

const SERVER = "tcp/calc_server.ts";
const EXTERNAL = announceExternal("CALC_ADDR");
/** For the checks that read our server's log or start and stop it. */
const OWN_ONLY = { ignore: EXTERNAL !== undefined };

const INVALID = /^ERROR invalid expression/;

/** Run `check` against the external server, or a fresh one of ours. */
async function withServer(
  check: (target: Target, log: LogCollector) => Promise<void>,
): Promise<void> {
  const log = new LogCollector();
  if (EXTERNAL) return await check(EXTERNAL, log);
  await using server = startCalcServer({
    hostname: "127.0.0.1",
    port: 0,
    log: log.add,
  });
  await check(server.addr, log);
}

/** A client that has sent its name and had its `Hello`. */
async function session(target: Target, name: string): Promise<TestClient> {
  const client = await TestClient.connect(target);
  assert.equal(await client.ask(name), `Hello ${name.trim()}`);
  return client;
}

Deno.test("calc server: the contract's exchange", async (t) => {
  await t.step("name, answers, errors, q, close", async () => {
    await withServer(async (target) => {
      await using client = await TestClient.connect(target);
      assert.equal(await client.ask("Adarsh"), "Hello Adarsh");
      assert.equal(await client.ask("12 + 13"), "25");
      assert.match(await client.ask("12(10"), INVALID);
      assert.equal(await client.ask("1 / 0"), "ERROR division by zero");
      assert.equal(await client.ask("q"), "Session ended");
      await client.expectClosed();
    });
  });

  await t.step(
    "Q in capitals, with spaces, ends it too (as in the original lab)",
    async () => {
      await withServer(async (target) => {
        await using client = await session(target, "Ada");
        assert.equal(await client.ask(" Q "), "Session ended");
        await client.expectClosed();
      });
    },
  );

  await t.step("answers and errors of the expression rules", async () => {
    const table: [string, string | RegExp][] = [
      ["12 + 42", "54"],
      ["3.24 - 45", "-41.76"],
      ["4.5 / -6", "-0.75"],
      ["3--4", "7"],
      ["3 - -4", "7"],
      [".5*2", "1"],
      ["2e3 + +4", "2004"],
      ["5. * 2", "10"],
      ["2 ^ 10", "1024"],
      ["7 % 3", "1"],
      ["0.1 + 0.2", "0.3"],
      ["1 / 3", "0.333333333333333"],
      ["\t 12+13 \t", "25"],
      ["5 % 0", "ERROR division by zero"],
      ["1e308 * 10", "ERROR result out of range"],
      ["1 + 2 + 3", INVALID],
      ["1 2", INVALID],
      ["abc", INVALID],
      ["0x10 + 1", INVALID],
      ["Infinity + 1", INVALID],
      ["", INVALID],
      ["   ", INVALID],
    ];
    await withServer(async (target) => {
      await using client = await session(target, "Table");
      for (const [line, expected] of table) {
        const answer = await client.ask(line);
        if (typeof expected === "string") {
          assert.equal(answer, expected, line);
        } else assert.match(answer, expected, line);
      }
    });
  });
});

Deno.test("calc server: framing", async (t) => {
  await t.step(
    "lines sent together: the same bytes as one by one",
    async () => {
      await withServer(async (target) => {
        const conn = await Deno.connect(target);
        try {
          await writeAll(conn, new TextEncoder().encode("Ada\n1+1\n2+2\nq\n"));
          const bytes = await within(
            new Response(conn.readable).arrayBuffer(),
            ANSWER_TIMEOUT_MS,
            notClosed(ANSWER_TIMEOUT_MS),
          );
          assert.equal(
            new TextDecoder().decode(bytes),
            "Hello Ada\n2\n4\nSession ended\n",
          );
        } finally {
          closeQuietly(conn); // reading `readable` to its end closed it already
        }
      });
    },
  );

  await t.step("CRLF line ends are accepted", async () => {
    await withServer(async (target) => {
      await using client = await TestClient.connect(target);
      await client.send("Ada\r\n12 + 13\r\nq\r\n");
      assert.deepEqual(await client.answers(3), [
        "Hello Ada",
        "25",
        "Session ended",
      ]);
      await client.expectClosed();
    });
  });

  await t.step("a line sent one byte at a time", async () => {
    await withServer(async (target) => {
      await using client = await TestClient.connect(target);
      await client.sendBytewise("Zoë\r\n");
      assert.equal(await client.answer(), "Hello Zoë");
      await client.sendBytewise("4.5 / -6\n");
      assert.equal(await client.answer(), "-0.75");
    });
  });

  await t.step("two lines in one write get two answers", async () => {
    await withServer(async (target) => {
      await using client = await session(target, "Ada");
      await client.send("12 + 13\n1 / 0\n");
      assert.deepEqual(await client.answers(2), [
        "25",
        "ERROR division by zero",
      ]);
    });
  });

  await t.step("every line gets exactly one answer, in order", async () => {
    await withServer(async (target) => {
      await using client = await TestClient.connect(target);
      const lines = ["Ada"];
      const expected = ["Hello Ada"];
      for (let i = 0; i < 300; i++) {
        const [line, answer] = [
          [`${i} + 1`, `${i + 1}`],
          [`${i} / 0`, "ERROR division by zero"],
          [`${i}(`, "ERROR invalid expression"],
          ["", "ERROR invalid expression"],
        ][i % 4];
        lines.push(line);
        expected.push(answer);
      }
      lines.push("q");
      expected.push("Session ended");
      await client.send(lines.map((l) => `${l}\n`).join("")); // one write
      const answers = await client.answers(expected.length);
      answers.forEach((answer, i) =>
        assert.ok(answer.startsWith(expected[i]), `${lines[i]} -> ${answer}`)
      );
      await client.expectClosed();
    });
  });

  await t.step("a last line without \\n is answered at the end", async () => {
    await withServer(async (target) => {
      await using client = await session(target, "Ada");
      await client.send("12 + 13");
      await client.conn.closeWrite();
      assert.equal(await client.answer(), "25");
      await client.expectClosed();
    });
  });

  await t.step(
    "invalid UTF-8 in an expression is an invalid expression",
    async () => {
      await withServer(async (target) => {
        await using client = await session(target, "Ada");
        await client.send(
          Uint8Array.of(0x31, 0x32, 0x20, 0xff, 0x20, 0x31, 0x0a),
        );
        assert.match(await client.answer(), INVALID);
        await client.send(Uint8Array.of(0x31, 0xc3, 0x2b, 0x31, 0x0a)); // cut é
        assert.match(await client.answer(), INVALID);
        assert.equal(await client.ask("1 + 1"), "2"); // the session goes on
      });
    },
  );
});

Deno.test("calc server: the 1024-byte line limit", async (t) => {
  // `1`, spaces, `+ 2`: a valid expression of exactly `bytes` bytes.
  const expressionOf = (bytes: number) => `1${" ".repeat(bytes - 4)}+ 2`;

  await t.step("a line of exactly 1024 bytes is answered", async () => {
    await withServer(async (target) => {
      await using client = await session(target, "Ada");
      assert.equal(await client.ask(expressionOf(1024)), "3");
      assert.equal(await client.ask(`${expressionOf(1024)}\r`), "3"); // + CRLF
      assert.match(await client.ask("x".repeat(1024)), INVALID);
      assert.equal(await client.ask("1 + 1"), "2"); // still open
    });
  });

  await t.step(
    "a line of 1025 bytes: ERROR line too long, then close",
    async () => {
      await withServer(async (target) => {
        await using client = await session(target, "Ada");
        assert.equal(
          await client.ask(expressionOf(1025)),
          "ERROR line too long",
        );
        await client.expectClosed();
      });
    },
  );

  await t.step("1025 bytes then CRLF is still too long", async () => {
    await withServer(async (target) => {
      await using client = await session(target, "Ada");
      await client.send(`${"x".repeat(1025)}\r\n`);
      assert.equal(await client.answer(), "ERROR line too long");
      await client.expectClosed();
    });
  });

  await t.step("a long line with no end at all is refused too", async () => {
    await withServer(async (target) => {
      await using client = await session(target, "Ada");
      await client.send("1".repeat(5000)); // and no \n: the server must not wait for one
      assert.equal(await client.answer(), "ERROR line too long");
      await client.expectClosed();
    });
  });

  await t.step("a name line over 1024 bytes", async () => {
    await withServer(async (target) => {
      await using client = await TestClient.connect(target);
      assert.equal(await client.ask("n".repeat(1025)), "ERROR line too long");
      await client.expectClosed();
    });
  });
});

Deno.test("calc server: names", async (t) => {
  const refused: [string, string][] = [
    ["empty", ""],
    ["only spaces", "  \t "],
    ["33 characters", "a".repeat(33)],
    ["33 characters of 4 bytes", "😀".repeat(33)],
    ["a bell (C0)", "Ada\x07"],
    ["an escape sequence", "\x1b[31mAda"],
    ["DEL", "A\x7fda"],
    ["a C1 control", "A\x9bda"],
  ];
  for (const [what, name] of refused) {
    await t.step(`refused: ${what} -> ERROR, close`, async () => {
      await withServer(async (target) => {
        await using client = await TestClient.connect(target);
        assert.match(await client.ask(name), /^ERROR /);
        await client.expectClosed();
      });
    });
  }

  const accepted: [string, string, string][] = [
    ["32 characters", "a".repeat(32), "a".repeat(32)],
    ["32 two-byte characters", "é".repeat(32), "é".repeat(32)],
    ["32 four-byte characters (128 bytes)", "😀".repeat(32), "😀".repeat(32)],
    ["spaces inside", "Ada Lovelace", "Ada Lovelace"],
    ["trimmed", "  Ada \t", "Ada"],
  ];
  for (const [what, name, greeted] of accepted) {
    await t.step(`accepted: ${what}`, async () => {
      await withServer(async (target) => {
        await using client = await TestClient.connect(target);
        assert.equal(await client.ask(name), `Hello ${greeted}`);
        assert.equal(await client.ask("1 + 1"), "2");
      });
    });
  }
});

Deno.test("calc server: many sessions at once", async (t) => {
  await t.step(
    "30 interleaved sessions, each with its own name and answers",
    async () => {
      await withServer(async (target, log) => {
        const clients = await Promise.all(
          Array.from({ length: 30 }, () => TestClient.connect(target)),
        );
        try {
          // Names go out in reverse order of connection: a server that serves
          // one client at a time would wait for the first one forever.
          for (let i = clients.length - 1; i >= 0; i--) {
            await clients[i].send(`user${i}\n`);
          }
          for (const [i, client] of clients.entries()) {
            assert.equal(await client.answer(), `Hello user${i}`);
          }
          for (let round = 0; round < 5; round++) {
            for (const [i, client] of clients.entries()) {
              await client.send(`${i} * ${round}\n`);
            }
            for (const [i, client] of clients.entries()) {
              assert.equal(await client.answer(), `${i * round}`);
            }
          }
          if (!EXTERNAL) {
            await log.waitFor(`user7: "7 * 4" -> 28`);
            await log.waitFor(`user29: "29 * 3" -> 87`);
          }
        } finally {
          for (const client of clients) client.close();
        }
      });
    },
  );

  await t.step("a silent client does not hold up the others", async () => {
    await withServer(async (target) => {
      await using silent = await TestClient.connect(target);
      await using halfName = await TestClient.connect(target);
      await halfName.send("Ad"); // half a line, and nothing more
      await using other = await session(target, "Other");
      assert.equal(await other.ask("2 ^ 8"), "256");
      // And they were kept waiting, not dropped:
      assert.equal(await halfName.ask("a"), "Hello Ada");
      assert.equal(await silent.ask("Silent"), "Hello Silent");
    });
  });

  await t.step(
    "a client that vanishes mid-session ends only its session",
    async () => {
      await withServer(async (target, log) => {
        await using stays = await session(target, "Stays");
        const leaves = await session(target, "Leaves");
        assert.equal(await leaves.ask("1 + 1"), "2");
        leaves.close(); // no q: the connection just ends
        if (!EXTERNAL) await log.waitFor("Leaves: Session ended");
        assert.equal(await stays.ask("3 * 3"), "9");
      });
    },
  );

  await t.step(
    "a client that resets mid-session ends only its session",
    async () => {
      await withServer(async (target, log) => {
        await using stays = await session(target, "Stays");
        const resets = await session(target, "Resets");
        // Many requests, one answer read: closing with the other answers
        // unread makes our kernel reset the connection.
        await resets.send("1 + 1\n".repeat(2000));
        assert.equal(await resets.answer(), "2");
        resets.close();
        if (!EXTERNAL) await log.waitFor("Resets: Session ended");
        assert.equal(await stays.ask("3 * 3"), "9");
        await using later = await session(target, "Later");
        assert.equal(await later.ask("2 + 2"), "4");
      });
    },
  );

  await t.step(
    "a client killed with answers unread (reset, no close)",
    async () => {
      await withServer(async (target, log) => {
        await using stays = await session(target, "Stays");
        // A separate process, so that its socket is closed by the kernel when
        // it dies: with unread data, that is a reset without a FIN.
        const code = `
        const conn = await Deno.connect({ hostname: "${target.hostname}", port: ${target.port} });
        const lines = "Killed\\n" + "2 + 2\\n".repeat(2000);
        let sent = 0;
        const bytes = new TextEncoder().encode(lines);
        while (sent < bytes.length) sent += await conn.write(bytes.subarray(sent));
        const first = new Uint8Array(6);
        await conn.read(first);
        console.log("sent");
        setInterval(() => {}, 1000);`;
        const child = new Deno.Command(Deno.execPath(), {
          args: ["eval", code],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        try {
          const reader = child.stdout.getReader();
          const { value } = await reader.read();
          assert.match(new TextDecoder().decode(value), /sent/);
          reader.releaseLock();
          if (!EXTERNAL) await log.waitFor(/^Killed: "2 \+ 2" -> 4$/);
        } finally {
          child.kill("SIGKILL");
          await child.status;
          await child.stdout.cancel();
        }
        if (!EXTERNAL) await log.waitFor("Killed: Session ended");
        assert.equal(await stays.ask("3 * 3"), "9");
      });
    },
  );
});

/** Our server with at most `maxClients` sessions, its log collected. */
async function withLimit(
  maxClients: number,
  check: (target: Target, log: LogCollector) => Promise<void>,
): Promise<void> {
  const log = new LogCollector();
  await using server = startCalcServer({
    hostname: "127.0.0.1",
    port: 0,
    log: log.add,
    maxClients,
  });
  await check(server.addr, log);
}

Deno.test("calc server: --max-clients", OWN_ONLY, async (t) => {
  await t.step(
    "one client too many gets ERROR server full, the others go on",
    async () => {
      await withLimit(2, async (target, log) => {
        await using ann = await session(target, "ann");
        await using bob = await session(target, "bob");
        await using carl = await TestClient.connect(target);
        assert.equal(await carl.ask("carl"), "ERROR server full");
        await carl.expectClosed();
        const [port] = /\d+$/.exec(formatAddr(carl.conn.localAddr))!;
        await log.waitFor(`127.0.0.1:${port} refused: server full`);
        assert.equal(await ann.ask("1 + 1"), "2");
        assert.equal(await bob.ask("2 + 2"), "4");
      });
    },
  );

  await t.step("a session that ends frees its place", async () => {
    await withLimit(1, async (target, log) => {
      const ann = await session(target, "ann");
      ann.close();
      // Logged as the session's task ends: the next accept comes after.
      await log.waitFor("ann: Session ended (disconnected)");
      await using bob = await session(target, "bob");
      assert.equal(await bob.ask("6 * 7"), "42");
    });
  });

  await t.step("a refused client takes no place while it lingers", async () => {
    await withLimit(1, async (target, log) => {
      const ann = await session(target, "ann");
      await using carl = await TestClient.connect(target);
      assert.equal(await carl.answer(), "ERROR server full");
      // carl stays connected: the server waits up to 2 s for him to close.
      ann.close();
      await log.waitFor("ann: Session ended (disconnected)");
      await using dave = await session(target, "dave");
      assert.equal(await dave.ask("1 - 1"), "0");
    });
  });

  await t.step("the flag: in --help, and checked", async () => {
    const help = await runScript(SERVER, ["--help"]);
    assert.match(help.stdout, /--max-clients N .*\(default 4096\)/);
    const bad = await runScript(SERVER, ["--max-clients", "0"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-clients/);
    await using server = await startServer(SERVER, ["--max-clients", "1"]);
    const target = { hostname: server.host, port: server.port };
    await using _ann = await session(target, "ann");
    await using bob = await TestClient.connect(target);
    assert.equal(await bob.ask("bob"), "ERROR server full");
    await server.waitFor(/refused: server full$/);
  });
});

Deno.test("calc server: what it prints", OWN_ONLY, async (t) => {
  await t.step(
    "each request with the client's name and its answer",
    async () => {
      await withServer(async (target, log) => {
        await using client = await TestClient.connect(target);
        assert.equal(await client.ask("Adarsh"), "Hello Adarsh");
        await client.ask("12 + 13");
        await client.ask("12(10");
        const port = (client.conn.localAddr as Deno.NetAddr).port;
        await log.waitFor(`Connection from 127.0.0.1:${port}`);
        await log.waitFor(`127.0.0.1:${port} is Adarsh`);
        await log.waitFor(`Adarsh: "12 + 13" -> 25`);
        await log.waitFor(/^Adarsh: "12\(10" -> ERROR invalid expression/);
      });
    },
  );

  await t.step("Session ended when the client leaves by q, once", async () => {
    let printed: string[] = [];
    await withServer(async (target, log) => {
      await using client = await session(target, "Quits");
      await client.ask("q");
      assert.equal(
        await log.waitFor("Quits: Session ended"),
        "Quits: Session ended",
      );
      printed = log.lines;
    });
    // The server has stopped: everything it had to say about Quits is in.
    assert.deepEqual(printed.filter((line) => line.includes("ended")), [
      "Quits: Session ended",
    ]);
  });

  await t.step("Session ended when the client disconnects", async () => {
    await withServer(async (target, log) => {
      const client = await session(target, "Drops");
      client.close();
      assert.equal(
        await log.waitFor("Drops: Session ended"),
        "Drops: Session ended (disconnected)",
      );
    });
  });

  await t.step(
    "Session ended before a name: by its address; a refused name: no more",
    async () => {
      let printed: string[] = [];
      let quiet = "";
      let refused = "";
      await withServer(async (target, log) => {
        const client = await TestClient.connect(target);
        quiet = formatAddr(client.conn.localAddr as Deno.NetAddr);
        client.close();
        assert.equal(
          await log.waitFor(`${quiet}: Session ended`),
          `${quiet}: Session ended (disconnected)`,
        );
        await using bad = await TestClient.connect(target);
        refused = formatAddr(bad.conn.localAddr as Deno.NetAddr);
        assert.match(await bad.ask(""), /^ERROR invalid name/);
        await bad.expectClosed();
        await log.waitFor(`${refused}: refused the name ""`);
        printed = log.lines;
      });
      // The server has stopped: everything it had to say is in.
      assert.deepEqual(printed.filter((line) => line.includes("ended")), [
        `${quiet}: Session ended (disconnected)`,
      ]);
    },
  );

  await t.step("Session ended once, after a line too long", async () => {
    await withServer(async (target, log) => {
      await using client = await session(target, "Long");
      assert.equal(await client.ask("1".repeat(2000)), "ERROR line too long");
      await client.expectClosed();
      await log.waitFor("Long: Session ended (line too long)");
      assert.equal(
        log.lines.filter((l) => l.includes("Session ended")).length,
        1,
      );
    });
  });

  await t.step("control characters are escaped when printed", async () => {
    await withServer(async (target, log) => {
      await using client = await session(target, "Ada");
      await client.ask("1 +\x1b[2J 2\x07\x9b\u202e\x7f");
      await log.waitFor(
        String.raw`Ada: "1 +\x1b[2J 2\x07\x9b\u{202e}\x7f" -> ERROR `,
      );
      await using refused = await TestClient.connect(target);
      assert.match(await refused.ask("\x1b]0;owned\x07"), /^ERROR /);
      await refused.expectClosed();
      await log.waitFor(String.raw`refused the name "\x1b]0;owned\x07"`);
      // Accepted (no control characters), but a right-to-left override
      // would still reverse the rest of every log line with this name.
      await using rtl = await session(target, "A\u202eB\u2028C");
      await rtl.ask("2 + 2");
      await log.waitFor(/ is A\\u\{202e\}B\\u\{2028\}C$/);
      await log.waitFor(String.raw`A\u{202e}B\u{2028}C: "2 + 2" -> 4`);
      // An invisible joiner would make "Ada" + U+200D look like "Ada".
      await using twin = await session(target, "Ada\u200d");
      await twin.ask("1 + 1");
      await log.waitFor(String.raw`Ada\u{200d}: "1 + 1" -> 2`);
      for (const line of log.lines) {
        assert.ok(!hasControlChars(line), JSON.stringify(line));
      }
    });
  });
});

Deno.test("calc server: start and stop", OWN_ONLY, async (t) => {
  await t.step("close() ends open sessions and waits for them", async () => {
    const log = new LogCollector();
    await using server = startCalcServer({
      hostname: "127.0.0.1",
      port: 0,
      log: log.add,
    });
    await using client = await session(server.addr, "Open");
    await using silent = await TestClient.connect(server.addr);
    await server.close();
    await client.expectClosed();
    await silent.expectClosed();
    await log.waitFor("Open: Session ended");
  });

  await t.step(
    "the script: first line, answers, SIGTERM -> exit 0",
    async () => {
      await using server = await startServer(SERVER);
      assert.match(
        server.firstLine,
        /^Calculator server listening on 127\.0\.0\.1:\d+$/,
      );
      const target = { hostname: server.host, port: server.port };
      await using client = await session(target, "Script");
      assert.equal(await client.ask("6 * 7"), "42");
      await server.waitFor(`Script: "6 * 7" -> 42`);
      client.close();
      await server.waitFor("Script: Session ended");
      const result = await server.stop("SIGTERM");
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Calculator server stopped$/);
      assert.equal(result.stderr, "");
    },
  );

  await t.step("default host 0.0.0.0 and default port in --help", async () => {
    await using server = startScript(SERVER, ["--port", "0"]);
    const first = await server.waitFor(/listening on/);
    assert.match(first, /^Calculator server listening on 0\.0\.0\.0:\d+$/);
    assert.equal((await server.stop("SIGTERM")).code, 0);
    const help = await runScript(SERVER, ["--help"]);
    assert.match(help.stdout, /\(default 12003\)/);
  });

  await t.step("a port in use: one sentence, exit 1", async () => {
    using holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const result = await runScript(SERVER, [
      "--host",
      "127.0.0.1",
      "--port",
      String(holder.addr.port),
    ]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      `Cannot listen on 127.0.0.1:${holder.addr.port}: the port is already in use (is another server running? choose another --port)`,
    );
  });

  await t.step("--help and a bad --port", async () => {
    const help = await runScript(SERVER, ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--port P/);
    const bad = await runScript(SERVER, ["--port", "70000"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--port must be a whole number from 0 to 65535/);
  });
});
