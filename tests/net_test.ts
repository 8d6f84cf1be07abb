/**
 * lib/net.ts where no script shows it here: a port this machine does not
 * let a user have (the tests run as root, so Deno's listen is made to
 * refuse), and the first Ctrl+C or SIGTERM stopping a script once.
 */

import assert from "node:assert/strict";
import { FatalError } from "../lib/cli.ts";
import { listenTcp, listenUdp, onShutdown } from "../lib/net.ts";
import { within } from "./support.ts";

Deno.test("a port below 1024 for a user who is not root: one sentence", async (t) => {
  const refuse = () => {
    throw new Deno.errors.PermissionDenied("Permission denied (os error 13)");
  };
  const cases = {
    "TCP": [() => listenTcp("0.0.0.0", 80), "0.0.0.0:80"],
    "UDP": [() => listenUdp("0.0.0.0", 80), "0.0.0.0:80/udp"],
  } as const;
  for (const [kind, [listen, where]] of Object.entries(cases)) {
    await t.step(kind, () => {
      const deno = Deno as unknown as Record<string, unknown>;
      const { listen: tcp, listenDatagram: udp } = deno;
      deno.listen = deno.listenDatagram = refuse;
      try {
        assert.throws(
          listen,
          new FatalError(
            `Cannot listen on ${where}: permission denied (ports below 1024 need root; choose another --port)`,
          ),
        );
      } finally {
        deno.listen = tcp;
        deno.listenDatagram = udp;
      }
    });
  }
});

Deno.test("onShutdown() stops once, however many signals come; removed, never", async () => {
  // Listeners run in the order they were added: when this one has run for a
  // signal, those onShutdown added before it have too. While it is there,
  // a SIGTERM does not end this process.
  let delivered = Promise.withResolvers<void>();
  const after = () => delivered.resolve();
  const sigterm = async () => {
    delivered = Promise.withResolvers<void>();
    Deno.kill(Deno.pid, "SIGTERM");
    await within(delivered.promise, 5000, "the SIGTERM never came");
  };
  const calls: string[] = [];
  const removeFirst = onShutdown((signal) => calls.push(`first ${signal}`));
  const removeSecond = onShutdown((signal) => calls.push(`second ${signal}`));
  removeSecond(); // a tool that ended by itself
  Deno.addSignalListener("SIGTERM", after);
  try {
    await sigterm();
    await sigterm(); // a second Ctrl+C while stopping
    assert.deepEqual(calls, ["first SIGTERM"]);
  } finally {
    removeFirst();
    Deno.removeSignalListener("SIGTERM", after);
  }
});
