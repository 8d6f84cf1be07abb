/**
 * A UDP hello server that will not stop: it answers `Ok` to every datagram
 * but only says so to SIGTERM, as a student's server might after a change.
 * For tests/udp_hello_test.ts: tools/pair.ts must kill it, say why, and
 * not pass for a success (and show its stderr, tagged).
 *
 * Run: deno run --allow-net --unstable-net tests/stubborn_server.ts --host 127.0.0.1 --port 0
 *
 * @module
 */

import { answerOk, listenFromFlags } from "./ok_socket.ts";

const socket = listenFromFlags();
// A listener replaces the default action, which would end the process.
Deno.addSignalListener("SIGTERM", () => console.log("SIGTERM: ignored"));
console.error("Stubborn server: SIGTERM will be ignored"); // the pair tags it
const { hostname, port } = socket.addr as Deno.NetAddr;
console.log(`Stubborn server listening on ${hostname}:${port}`);
await answerOk(socket);
