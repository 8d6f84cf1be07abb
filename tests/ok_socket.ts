/**
 * What the fake UDP hello servers of the tests share: a socket on the
 * `--host` and `--port` they are started with, and the `Ok` answer to every
 * datagram. Used by tests/stubborn_server.ts and tests/long_goodbye_server.ts.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** A UDP socket on `--host H --port P` (default 127.0.0.1, any free port). */
export function listenFromFlags(): Deno.DatagramConn {
  const { values } = parseArgs({
    options: { host: { type: "string" }, port: { type: "string" } },
  });
  return Deno.listenDatagram({
    transport: "udp",
    hostname: values.host ?? "127.0.0.1",
    port: Number(values.port ?? 0),
  });
}

/** Answer `Ok` to every datagram, until the socket closes. */
export async function answerOk(socket: Deno.DatagramConn): Promise<void> {
  for await (const [, from] of socket) {
    await socket.send(new TextEncoder().encode("Ok"), from);
  }
}
