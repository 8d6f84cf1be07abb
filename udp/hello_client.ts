/**
 * UDP hello client (lab part 1, Q1-Q2): sends one message to the hello
 * server and prints the answer with the server's address.
 *
 * Run:  deno run --allow-net --unstable-net udp/hello_client.ts   (or: deno task udp-hello-client)
 * It needs the server running (deno task udp-hello-server), or run both with
 * deno task udp-hello. Q2: start the server on another computer and give the
 * client its address: --host 192.168.1.20
 *
 *     127.0.0.1:54321 -> 127.0.0.1:12000   I could tell you a UDP joke but I'm not sure you'll get it.
 *     127.0.0.1:54321 <- 127.0.0.1:12000   Ok
 *
 * UDP promises nothing: the message or the answer may be lost. With no
 * server on the port, the other computer usually answers with an ICMP "port
 * unreachable" (Wireshark shows it), but a UDP socket that is not connected
 * to one address is not told. So the client waits --timeout seconds for
 * the answer, then gives up. (`--message Ok` is
 * never answered: the server takes it for an answer; udp/README.md.)
 *
 * @module
 */

import {
  clientFlags,
  FatalError,
  parseFlags,
  printLine,
  runMain,
  timeoutFlag,
} from "../lib/cli.ts";
import { formatAddr } from "../lib/net.ts";
import {
  addrText,
  lookupServer,
  openClientSocket,
  sameAddr,
  sendFailure,
  showDatagram,
} from "./datagram.ts";

/** What the client sends when no --message is given. */
export const DEFAULT_MESSAGE =
  "I could tell you a UDP joke but I'm not sure you'll get it.";

/** The script's flags, with the contract's defaults (tools/pair.ts shows them too). */
export const COMMAND = {
  name: "udp-hello-client",
  summary: "UDP hello client: sends one message and prints the answer.",
  flags: {
    ...clientFlags(12000),
    message: {
      kind: "string",
      placeholder: "TEXT",
      default: DEFAULT_MESSAGE,
      help: "what to send (default: a UDP joke)",
    },
    ...timeoutFlag(2, "the answer"),
  },
} as const;

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const server = await lookupServer(flags.host, flags.port);
  // Port 0: the system picks a free port; the server learns it from our datagram.
  // The socket call is Deno.listenDatagram({ hostname: "0.0.0.0", port: 0,
  // transport: "udp" }), or "::" for an IPv6 server (udp/datagram.ts).
  const socket = openClientSocket(server);
  const message = new TextEncoder().encode(flags.message);

  // receive() has no timeout of its own: closing the socket ends the wait.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.close();
  }, flags.timeout * 1000);
  try {
    printLine(`Sending ${showDatagram(message)} to ${formatAddr(server)}`);
    await socket.send(message, server).catch((e) => {
      throw sendFailure(e, server);
    });
    while (true) {
      const [data, sender] = await socket.receive();
      // Anybody can send to our port: only the server's datagram is the answer.
      if (sameAddr(sender, server)) {
        printLine(`Answer from ${addrText(sender)}: ${showDatagram(data)}`);
        return;
      }
      printLine(`Ignored a datagram from ${addrText(sender)}`);
    }
  } catch (error) {
    if (!timedOut) throw error;
    throw new FatalError(
      `No answer from ${
        formatAddr(server)
      } within ${flags.timeout} s (is the server running?)`,
    );
  } finally {
    clearTimeout(timer);
    if (!timedOut) socket.close();
  }
}

if (import.meta.main) await runMain(main, COMMAND);
