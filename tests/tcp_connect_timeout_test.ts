/**
 * The TCP clients against a host that answers no SYN (a firewall that
 * drops packets, a computer that is off): each gives up after its
 * `--timeout` with one sentence and exit 1, where the system alone would
 * resend the SYN for about two minutes. The silent host is
 * tests/silent_host.py (a full accept queue: the kernel drops the SYNs).
 *
 * And once the server is there, or has answered: the timers that bounded
 * the wait are gone (in-process, where the sanitizers would find one left
 * running, as it would keep a client's process alive for nothing).
 */

import assert from "node:assert/strict";
import { answerWithin, connectTcp } from "../lib/net.ts";
import { runScript, startPythonPeer, whyPythonUnavailable } from "./support.ts";

const SKIP_REASON = await whyPythonUnavailable("socket");
if (SKIP_REASON) {
  console.log(`tcp_connect_timeout_test: ignored: ${SKIP_REASON}`);
}

Deno.test({
  name: "TCP clients: a host that answers no SYN",
  ignore: SKIP_REASON !== undefined,
}, async (t) => {
  await using host = await startPythonPeer("silent_host.py");
  const clients: [string, string[]][] = [
    ["tcp/knock_client.ts", []],
    ["tcp/calc_client.ts", ["--name", "Ada"]],
    ["chat/client.ts", ["--name", "ann"]],
  ];
  for (const [client, args] of clients) {
    await t.step(`${client}: the --timeout sentence, exit 1`, async () => {
      const started = performance.now();
      const result = await runScript(client, [
        "--port",
        String(host.port),
        "--timeout",
        "1",
        ...args,
      ], { stdin: "" });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(
        result.stderr.trim(),
        `Cannot connect to 127.0.0.1:${host.port}: no answer within 1 s (is the server running? is a firewall dropping the connection?)`,
      );
      assert.ok(performance.now() - started >= 1000, "gave up too soon");
    });
  }
});

Deno.test("connectTcp(): once connected, its timeout is over, and Nagle is off", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const noDelay: (boolean | undefined)[] = [];
  const deno = Deno as unknown as Record<string, unknown>;
  const connect = Deno.connect;
  deno.connect = async (options: Deno.ConnectOptions) => {
    const conn = await connect(options);
    conn.setNoDelay = (on) => void noDelay.push(on);
    return conn;
  };
  try {
    const { port } = listener.addr;
    using _conn = await connectTcp("127.0.0.1", port, { timeout: 60 });
    using _accepted = await listener.accept();
  } finally {
    deno.connect = connect;
  }
  assert.deepEqual(noDelay, [true]);
});

Deno.test("answerWithin(): an answer in time, or a failure, ends the wait", async () => {
  const limit = { seconds: 60, server: "127.0.0.1:12003", kind: "server" };
  assert.equal(await answerWithin(Promise.resolve("25"), limit), "25");
  const lost = answerWithin(Promise.reject(new Error("lost")), limit);
  await assert.rejects(lost, /^Error: lost$/);
});
