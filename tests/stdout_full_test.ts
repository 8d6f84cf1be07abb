/**
 * A stdout that the system refuses to write: `> log.txt` on a disk that has
 * filled up, played here by /dev/full, where every write fails with ENOSPC.
 * A server says so once on stderr and serves on; a client (and the pair
 * and demo tasks) stops with one sentence, exit 1. Never a stack trace.
 */

import assert from "node:assert/strict";
import { writeLine } from "../lib/lines.ts";
import {
  freePort,
  runWithStdoutFull,
  scriptedServer,
  startWithStdoutFull,
} from "./support.ts";
import { TestClient } from "./tcp_support.ts";
import { FakeServer, freeUdpPort, TestSocket } from "./udp_support.ts";

const FULL =
  "Cannot write the output: no space left on device (check where stdout goes)";
const SERVING_ON = `${FULL}; the server goes on without its log`;
const LOCAL = "127.0.0.1";

const ignore = (() => {
  try {
    Deno.statSync("/dev/full");
    return false;
  } catch {
    return true; // not Linux: nothing to play the full disk
  }
})();

/** A server script, and two exchanges with it that must be answered. */
interface ServerCase {
  script: string;
  freePort(): number;
  exchange(port: number): Promise<void>;
}

const SERVERS: ServerCase[] = [
  {
    script: "udp/hello_server.ts",
    freePort: freeUdpPort,
    async exchange(port) {
      await using socket = new TestSocket();
      const to = { transport: "udp", hostname: LOCAL, port } as const;
      assert.equal((await socket.ask("a joke", to)).text, "Ok");
    },
  },
  {
    script: "udp/time_server.ts",
    freePort: freeUdpPort,
    async exchange(port) {
      await using socket = new TestSocket();
      const to = { transport: "udp", hostname: LOCAL, port } as const;
      assert.match(
        (await socket.ask("SEND_DATE", to)).text,
        /^\d{4}-\d\d-\d\d$/,
      );
    },
  },
  {
    script: "tcp/knock_server.ts",
    freePort,
    async exchange(port) {
      await using client = await TestClient.connect({ hostname: LOCAL, port });
      assert.equal(await client.ask("Knock knock"), "Who's there?");
    },
  },
  {
    script: "tcp/calc_server.ts",
    freePort,
    async exchange(port) {
      await using client = await TestClient.connect({ hostname: LOCAL, port });
      assert.equal(await client.ask("ann"), "Hello ann");
      assert.equal(await client.ask("12 + 42"), "54");
      assert.equal(await client.ask("q"), "Session ended");
    },
  },
  {
    script: "chat/server.ts",
    freePort,
    async exchange(port) {
      await using client = await TestClient.connect({ hostname: LOCAL, port });
      assert.equal(await client.ask("LOGIN ann"), "WELCOME ann");
      assert.equal(await client.ask("WHO"), "USERS ann");
      assert.equal(await client.ask("QUIT"), "BYE");
    },
  },
];

Deno.test({
  name: "a server whose stdout is refused says so once and serves on",
  ignore,
  async fn(t) {
    for (const server of SERVERS) {
      await t.step(server.script, async () => {
        const port = server.freePort();
        await using running = startWithStdoutFull(server.script, [
          "--host",
          LOCAL,
          "--port",
          String(port),
        ]);
        // The first line, `... listening on`, is refused after the bind.
        await running.waitFor(SERVING_ON);
        await server.exchange(port); // logged, and the log refused again
        await server.exchange(port);
        const { code, stdout: stderr } = await running.stop("SIGTERM");
        assert.equal(code, 0);
        assert.equal(stderr, SERVING_ON, "said once, and nothing else");
      });
    }
  },
});

Deno.test({
  name: "a client whose stdout is refused stops with one sentence, exit 1",
  ignore,
  async fn(t) {
    async function expectRefused(
      script: string,
      args: string[],
      denoFlags?: string[],
    ) {
      const { code, stderr } = await runWithStdoutFull(script, args, {
        denoFlags,
      });
      assert.equal(stderr.trim(), FULL);
      assert.equal(code, 1);
    }
    const RUNS_SCRIPTS = ["--allow-run", "--allow-read"];

    await t.step(
      "--help",
      () => expectRefused("tcp/calc_client.ts", ["--help"]),
    );

    await t.step(
      "the udp-hello pair: the server's first line",
      () =>
        expectRefused(
          "tools/pair.ts",
          ["udp/hello_server.ts", "udp/hello_client.ts"],
          RUNS_SCRIPTS,
        ),
    );

    await t.step(
      "the demo: its first heading",
      () => expectRefused("tools/demo.ts", [], RUNS_SCRIPTS),
    );

    await t.step("udp hello: 'Sending ...'", async () => {
      await using server = new FakeServer((_, reply) => reply("Ok"));
      await expectRefused("udp/hello_client.ts", [
        "--port",
        `${server.addr.port}`,
      ]);
    });

    await t.step("udp time: its first line", async () => {
      await using server = new FakeServer((_, reply) => reply("12:00:00"));
      await expectRefused("udp/time_client.ts", [
        "--port",
        `${server.addr.port}`,
        "--request",
        "SEND_TIME",
        "--count",
        "3",
        "--min-delay",
        "0",
        "--max-delay",
        "0",
      ]);
    });

    await t.step("tcp knock: 'Connected to ...'", async () => {
      using listener = Deno.listen({ hostname: LOCAL, port: 0 });
      await expectRefused("tcp/knock_client.ts", [
        "--port",
        `${listener.addr.port}`,
      ]);
    });

    await t.step("calculator: the greeting", async () => {
      using server = scriptedServer(async (conn, lines) => {
        assert.equal(await lines.readLine(), "ann");
        await writeLine(conn, "Hello ann");
        assert.equal(await lines.readLine(), null, "nothing sent after it");
      });
      await expectRefused("tcp/calc_client.ts", [
        "--port",
        `${server.port}`,
        "--name",
        "ann",
      ]);
      await server.serving;
    });

    await t.step("chat: the welcome", async () => {
      using server = scriptedServer(async (conn, lines) => {
        assert.equal(await lines.readLine(), "LOGIN ann");
        await writeLine(conn, "WELCOME ann");
        while (await lines.readLine() !== null); // QUIT, if it says it
      });
      await expectRefused("chat/client.ts", [
        "--port",
        `${server.port}`,
        "--name",
        "ann",
      ]);
      await server.serving;
    });
  },
});
