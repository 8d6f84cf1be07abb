/**
 * TCP knock-knock server (lab part 2, Q4): prints the line each client sends
 * with the client's address, answers `Who's there?` and closes.
 *
 * Run:  deno run --allow-net tcp/knock_server.ts   (or: deno task tcp-knock-server)
 * Try:  deno task tcp-knock-client, or by hand: nc 127.0.0.1 12002 and type Knock knock
 *
 *     127.0.0.1:54321 -> 127.0.0.1:12002   (connect: the three-way handshake)
 *     C: Knock knock
 *     S: Who's there?
 *        (the server closes the connection)
 *
 * Compared with the UDP hello server (udp/hello_server.ts):
 * - Connection set-up. The UDP server has one socket and receives datagrams
 *   from anybody. Here the listening socket only accepts connections; each
 *   `accept` returns a new socket joined to one client, after the kernel has
 *   done the three-way handshake. A client with nobody listening gets
 *   "connection refused" at once, where a UDP client just waits.
 * - A stream, not datagrams. TCP delivers bytes in order and resends lost
 *   ones, but keeps no message boundaries: one read may hold half a message
 *   or two. So every message is a line ending in `\n`, and lib/lines.ts
 *   reads whole lines.
 * - Many clients at once. Each connection is served by its own async task,
 *   so a client that is slow to send does not hold up the others.
 *
 * @module
 */

import { batchedStdout } from "../lib/batched_log.ts";
import { parseFlags, runMain, serverFlags } from "../lib/cli.ts";
import { isConnectionLost } from "../lib/errors.ts";
import { LineReader, LineTooLongError, writeLine } from "../lib/lines.ts";
import { formatAddr, listenTcp, onShutdown } from "../lib/net.ts";
import { quote } from "../lib/printable.ts";
import {
  closeQuietly,
  reportBug,
  serveConnections,
  type ServeOptions,
  type TcpServer,
} from "../lib/tcp_server.ts";

/** The port of the contract's table (12002/tcp). */
export const DEFAULT_PORT = 12002;

/** What the server answers to any first line. */
export const ANSWER = "Who's there?";

const COMMAND = {
  name: "tcp-knock-server",
  summary:
    "TCP knock-knock server: prints each client's line, answers Who's there?",
  flags: serverFlags(DEFAULT_PORT),
} as const;

/** Where to listen, and where the log lines go (tests collect them). */
export interface KnockServerOptions {
  hostname: string;
  port: number;
  /** One line per event (default `console.log`). */
  log?: (line: string) => void;
  /** A session that fails with a bug: default crash (tests); the script reports it. */
  onBug?: ServeOptions["onBug"];
}

/** A running knock-knock server. */
export type KnockServer = TcpServer;

/** Listen, and serve every client that connects until {@linkcode KnockServer.close}. */
export function startKnockServer(options: KnockServerOptions): KnockServer {
  const log = options.log ?? console.log;
  // Deno.listen({ hostname, port, transport: "tcp" }), with a plain sentence
  // for a port that is taken (lib/net.ts).
  const listener = listenTcp(options.hostname, options.port);
  // lib/tcp_server.ts loops on `conn = await listener.accept()` and starts
  // answerKnock(conn) without awaiting it: each connection gets its own
  // task, and the loop goes straight back to accept the next client.
  return serveConnections(
    listener,
    (conn) => answerKnock(conn, log),
    {
      log,
      onBug: options.onBug,
    },
  );
}

/**
 * One client: read its line, print it, answer, close.
 *
 *     C: Knock knock
 *     S: Who's there?
 */
async function answerKnock(
  conn: Deno.TcpConn,
  log: (line: string) => void,
): Promise<void> {
  const client = formatAddr(conn.remoteAddr);
  log(`Connection from ${client}`);
  try {
    const line = await new LineReader(conn).readLine();
    if (line === null) {
      log(`${client} closed the connection without sending anything`);
      return;
    }
    log(`Message from ${client}: ${quote(line)}`);
    await writeLine(conn, ANSWER);
    log(`Answered ${client}: ${quote(ANSWER)}`);
  } catch (error) {
    // The client's trouble ends its connection, never the server.
    if (error instanceof LineTooLongError) {
      log(`${client} sent a line over ${error.limit} bytes; closing`);
    } else if (isConnectionLost(error)) {
      log(`Lost the connection to ${client}`);
    } else {
      throw error; // a bug: for onBug (lib/tcp_server.ts)
    }
  } finally {
    closeQuietly(conn);
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const stdout = batchedStdout(); // a full disk under `> log.txt` stops no server
  const server = startKnockServer({
    hostname: flags.host,
    port: flags.port,
    log: stdout.log,
    onBug: reportBug,
  });
  // Ready for Ctrl+C or SIGTERM before saying so: a script that reads the
  // first line may stop us right after it.
  const stopped = new Promise((stop) => onShutdown(stop));
  stdout.print(`Knock-knock server listening on ${formatAddr(server.addr)}`);
  await stopped;
  await server.close();
  await stdout.close("Knock-knock server stopped");
}

if (import.meta.main) await runMain(main, COMMAND);
