/**
 * A UDP hello server with a long goodbye: it answers `Ok` to every datagram,
 * and on SIGTERM prints 5000 numbered lines and a last one before it exits.
 * For tests/udp_hello_test.ts: tools/pair.ts must show all of them, which it
 * does only if it reads the server's output to its end before exiting (the
 * pipe holds 64 KiB, and what is still in it when the server has gone is
 * lost unless someone reads it).
 *
 * Run: deno run --allow-net --unstable-net tests/long_goodbye_server.ts --host 127.0.0.1 --port 0
 *
 * @module
 */

import { answerOk, listenFromFlags } from "./ok_socket.ts";

/** How many lines the goodbye has, before its last one. */
export const GOODBYE_LINES = 5000;

if (import.meta.main) {
  const socket = listenFromFlags();
  Deno.addSignalListener("SIGTERM", () => {
    for (let i = 1; i <= GOODBYE_LINES; i++) console.log(`goodbye ${i}`);
    console.log("Long-goodbye server stopped");
    Deno.exit(0);
  });
  const { hostname, port } = socket.addr as Deno.NetAddr;
  console.log(`Long-goodbye server listening on ${hostname}:${port}`);
  await answerOk(socket);
}
