/**
 * TCP knock-knock client (lab part 2, Q4): connects to the knock-knock
 * server, sends `Knock knock`, prints the answer with the server's address.
 *
 * Run:  deno run --allow-net tcp/knock_client.ts   (or: deno task tcp-knock-client)
 * It needs the server running (deno task tcp-knock-server), or run both with
 * deno task tcp-knock. Started with no server, it shows Q4's last question:
 * Cannot connect to 127.0.0.1:12002: connection refused (...)
 *
 *     127.0.0.1:54321 -> 127.0.0.1:12002   (connect: the three-way handshake)
 *     C: Knock knock
 *     S: Who's there?
 *        (the server closes the connection)
 *
 * Compared with the UDP hello client (udp/hello_client.ts): there, sending
 * needs no set-up and a missing server shows to the program only as silence,
 * so the client needs a timeout. Here `connect` first sets up a connection,
 * and fails at once if nobody listens on the port (a host that answers
 * nothing at all, behind a firewall, is given --timeout seconds); after
 * that, TCP delivers our bytes or reports an error. What TCP cannot report
 * is a server that is there but never answers (a stuck program, the wrong
 * service), so the client still gives up after --timeout seconds (default
 * 5). The answer is read as a
 * line, since TCP keeps no message boundaries.
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
import { isConnectionLost } from "../lib/errors.ts";
import { LineReader, LineTooLongError, writeLine } from "../lib/lines.ts";
import { answerWithin, connectTcp, formatAddr } from "../lib/net.ts";
import { quote } from "../lib/printable.ts";

/** What the client sends. */
export const MESSAGE = "Knock knock";

/** The script's flags, with the contract's defaults (tools/pair.ts shows them too). */
export const COMMAND = {
  name: "tcp-knock-client",
  summary: "TCP knock-knock client: sends Knock knock and prints the answer.",
  flags: {
    ...clientFlags(12002),
    ...timeoutFlag(5, "the connection and the answer"),
  },
} as const;

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  // Deno.connect({ hostname, port, transport: "tcp" }) returns once the
  // handshake is done; connectTcp (lib/net.ts) turns "refused" or "host not
  // found" into one plain sentence.
  const conn = await connectTcp(flags.host, flags.port, {
    timeout: flags.timeout,
  });
  const server = formatAddr(conn.remoteAddr);
  printLine(`Connected to ${server} from ${formatAddr(conn.localAddr)}`);

  try {
    // A server that accepts but never answers: give up after --timeout.
    const answer = await answerWithin(knock(conn, server), {
      seconds: flags.timeout,
      server,
      kind: "knock-knock server",
    });
    if (answer === null) {
      throw new FatalError(
        `${server} closed the connection without answering (is it the knock-knock server?)`,
      );
    }
    printLine(`Answer from ${server}: ${quote(answer)}`);
  } catch (error) {
    throw failure(error, server);
  } finally {
    conn.close();
  }
}

/** Send `Knock knock`; the answer line, or `null` if the server closed. */
async function knock(conn: Deno.TcpConn, server: string) {
  await writeLine(conn, MESSAGE);
  printLine(`Sent ${quote(MESSAGE)} to ${server}`);
  return await new LineReader(conn).readLine();
}

/** The one plain sentence for what went wrong, or `error` itself (a bug). */
function failure(error: unknown, server: string): unknown {
  if (error instanceof LineTooLongError) {
    return new FatalError(
      `${server} answered with a line over ${error.limit} bytes (is it the knock-knock server?)`,
    );
  }
  if (isConnectionLost(error)) {
    return new FatalError(
      `Lost the connection to ${server} before the answer came (the server reset it or went away)`,
    );
  }
  return error;
}

if (import.meta.main) await runMain(main, COMMAND);
