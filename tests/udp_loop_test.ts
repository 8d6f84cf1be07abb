/**
 * The lab's UDP servers never talk to each other, or to themselves, forever.
 * A datagram with a forged source address (it takes root, and one raw
 * socket) used to set a hello server and a time server answering each other
 * as fast as they could, and a time server answering its own `ERROR`.
 * Without root, the servers' real loops run here on sockets in memory, and
 * the forged datagram is simply put on that network.
 */

import assert from "node:assert/strict";
import { serveHello } from "../udp/hello_server.ts";
import { localTime, serveTime } from "../udp/time_server.ts";
import { FakeNetwork } from "./udp_support.ts";

/** Deliveries after which two servers count as talking forever. */
const LIMIT = 100;

type Kind = "hello" | "time";

/**
 * Start a server of each `kinds` on a network in memory (ports 1, 2, ...),
 * let `start` put datagrams on it, wait until nothing more happens, and
 * return every datagram the servers sent, as `from -> to: text`.
 */
async function conversation(
  kinds: Kind[],
  start: (network: FakeNetwork, addrs: Deno.NetAddr[]) => void,
): Promise<string[]> {
  const network = new FakeNetwork(LIMIT);
  const quiet = () => {};
  const sockets = kinds.map((_, i) => network.socket(i + 1));
  const served = kinds.map((kind, i) =>
    kind === "hello"
      ? serveHello(sockets[i], quiet, quiet)
      : serveTime(sockets[i], {
        now: localTime(() => Date.UTC(2026, 0, 31, 9, 26, 53), "UTC"),
        log: quiet,
        warn: quiet,
      })
  );
  start(network, sockets.map((s) => s.addr));
  await network.settled();
  network.close();
  await Promise.all(served);
  assert.ok(
    network.delivered.length < LIMIT,
    `still talking after ${LIMIT} datagrams: ${
      network.delivered.slice(0, 4).join(" | ")
    } ...`,
  );
  return network.delivered;
}

const ERROR_ANSWER = "ERROR unknown request, send SEND_DATE or SEND_TIME";

Deno.test("UDP servers do not answer each other forever", async (t) => {
  await t.step("hello and time: one ERROR, one Ok, then silence", async () => {
    const sent = await conversation(["hello", "time"], (net, [hello, time]) => {
      net.inject("hi", hello, time); // forged: the hello server never sent it
    });
    assert.deepEqual(sent, [`2 -> 1: ${ERROR_ANSWER}`, "1 -> 2: Ok"]);
  });

  await t.step("time and hello: one Ok, then silence", async () => {
    const sent = await conversation(["hello", "time"], (net, [hello, time]) => {
      net.inject("hi", time, hello);
    });
    assert.deepEqual(sent, ["1 -> 2: Ok"]);
  });

  await t.step("two time servers: one answer, then silence", async () => {
    for (const request of ["SEND_TIME", "SEND_DATE", "HELLO"]) {
      const sent = await conversation(["time", "time"], (net, [a, b]) => {
        net.inject(request, a, b);
      });
      assert.equal(sent.length, 1, sent.join(" | "));
    }
  });

  await t.step("two hello servers: one Ok, then silence", async () => {
    const sent = await conversation(["hello", "hello"], (net, [a, b]) => {
      net.inject("hi", a, b);
    });
    assert.deepEqual(sent, ["2 -> 1: Ok"]);
  });

  await t.step("a server never answers its own address", async () => {
    for (const kind of ["hello", "time"] as const) {
      for (const request of ["HELLO", "SEND_TIME", "Ok"]) {
        const sent = await conversation([kind], (net, [self]) => {
          net.inject(request, self, self);
        });
        assert.deepEqual(sent, [], `${kind} server, ${request}`);
      }
    }
  });
});
