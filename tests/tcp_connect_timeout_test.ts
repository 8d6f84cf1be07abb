/**
 * The TCP clients against a host that answers no SYN (a firewall that
 * drops packets, a computer that is off): each gives up after its
 * `--timeout` with one sentence and exit 1, where the system alone would
 * resend the SYN for about two minutes. The silent host is
 * tests/silent_host.py (a full accept queue: the kernel drops the SYNs).
 */

import assert from "node:assert/strict";
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
