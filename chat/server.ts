/**
 * Chat server (part 3, Q8): a room many clients join with a unique name; every
 * line one of them says reaches all the others (the protocol: chat/README.md).
 *
 * Run:   deno run --allow-net chat/server.ts [--port 5000] [--max-clients N]
 *        deno task chat-server   (the same, with V8 told to give memory back
 *                                 soon after a crowd has logged in: see
 *                                 "Performance" in README.md)
 * Try:   nc 127.0.0.1 5000, then type `LOGIN alice`, `SAY hello`, `WHO`, `QUIT`
 *        (or use the chat window: deno task chat-client)
 *
 * ```
 * C: LOGIN alice         S: WELCOME alice       (others: JOINED alice)
 * C: SAY hello           (others) S: MSG alice hello
 * C: QUIT                S: BYE                 (others: LEFT alice)
 * ```
 *
 * One async task per connection (chat/session.ts) reads and answers; the room
 * (chat/room.ts) alone knows who is in it; each client has its own bounded
 * outgoing queue (lib/outbox.ts), so a client that stops reading is dropped
 * instead of slowing down the others.
 *
 * @module
 */

import { batchedStdout } from "../lib/batched_log.ts";
import {
  maxClientsFlag,
  parseFlags,
  runMain,
  serverFlags,
} from "../lib/cli.ts";
import { MAX_LINE_BYTES } from "../lib/lines.ts";
import { formatAddr, listenTcp, noDelay, onShutdown } from "../lib/net.ts";
import {
  reportBug,
  serveConnections,
  type ServeOptions,
} from "../lib/tcp_server.ts";
import { Room } from "./room.ts";
import { LINE_COST, Session, type SessionContext } from "./session.ts";

export const DEFAULT_PORT = 5000;
export const DEFAULT_MAX_CLIENTS = 4096;
export const DEFAULT_LOGIN_TIMEOUT_S = 60;
export const DEFAULT_MAX_QUEUE_BYTES = 1 << 20;
/** About a megabyte a second: far more than people type or paste. */
export const DEFAULT_MAX_RATE = 1 << 20;
/** Time a client has to close after BYE before we close (it usually does at once). */
export const DEFAULT_LINGER_S = 2;

/** Time clients get to read `ERROR server shutting down` before we close. */
const SHUTDOWN_LINGER_MS = 1000;

const COMMAND = {
  name: "chat-server",
  summary:
    "Chat room server: LOGIN, SAY, WHO, TELL, QUIT (see chat/README.md).",
  flags: {
    ...serverFlags(DEFAULT_PORT),
    ...maxClientsFlag(DEFAULT_MAX_CLIENTS, "connections"),
    "login-timeout": {
      kind: "number",
      placeholder: "S",
      default: DEFAULT_LOGIN_TIMEOUT_S,
      max: 86_400, // a day; past 24.8 days setTimeout would fire at once
      help:
        `seconds a new connection has to log in, 0 for no limit (default ${DEFAULT_LOGIN_TIMEOUT_S})`,
    },
    "max-queue": {
      kind: "integer",
      placeholder: "BYTES",
      min: 1,
      default: DEFAULT_MAX_QUEUE_BYTES,
      help:
        `bytes queued for a client that does not read before it is dropped (default ${DEFAULT_MAX_QUEUE_BYTES})`,
    },
    "max-rate": {
      kind: "integer",
      placeholder: "BYTES",
      min: 4096, // a quarter of it at once: at least one line of 1024 bytes
      default: DEFAULT_MAX_RATE,
      help:
        `bytes a client may send per second after its first line, a quarter of it at once, each line counting ${LINE_COST} more; a faster one is read more slowly (default ${DEFAULT_MAX_RATE})`,
    },
    "max-line": {
      kind: "integer",
      placeholder: "BYTES",
      min: 16,
      default: MAX_LINE_BYTES,
      help:
        `longest line accepted; longer: ERROR line too long, closed (default ${MAX_LINE_BYTES})`,
    },
  },
} as const;

/** Where and how a chat server runs; limits default as the flags do. */
export interface ChatServerOptions {
  hostname: string;
  port: number;
  /** Where the server prints what happens (default console.log). */
  log?: (line: string) => void;
  maxClients?: number;
  /** Seconds to log in (0: no limit). */
  loginTimeout?: number;
  /** Bytes queued for a client that does not read before it is dropped. */
  maxQueue?: number;
  /** Longest line accepted, in bytes. */
  maxLine?: number;
  /** Bytes a client may send per second before it is read more slowly. */
  maxRate?: number;
  /**
   * Seconds a client has to close after the server's last words (`BYE`, an
   * `ERROR` that ends its session) before the server closes anyway.
   */
  linger?: number;
  /** A session that fails with a bug: default crash (tests); the script reports it. */
  onBug?: ServeOptions["onBug"];
}

/** A running chat server. */
export interface ChatServer extends AsyncDisposable {
  readonly addr: Deno.NetAddr;
  /**
   * Stop accepting, tell every client `ERROR server shutting down`, close
   * every connection; resolves when every session has ended.
   */
  close(): Promise<void>;
}

/** Start a chat server; tests start one on port 0 and read `addr`. */
export function startChatServer(options: ChatServerOptions): ChatServer {
  const listener = listenTcp(options.hostname, options.port);
  const log = options.log ?? console.log;
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  const sessions = new Map<Deno.TcpConn, Session>(); // every open connection
  const leaving = new Set<Session>(); // told to go, not yet closed
  const context: SessionContext = {
    room: new Room<Session>(),
    log,
    maxQueue: options.maxQueue ?? DEFAULT_MAX_QUEUE_BYTES,
    maxLine: options.maxLine ?? MAX_LINE_BYTES,
    loginTimeoutMs: (options.loginTimeout ?? DEFAULT_LOGIN_TIMEOUT_S) * 1000,
    lingerMs: (options.linger ?? DEFAULT_LINGER_S) * 1000,
    maxRate: options.maxRate ?? DEFAULT_MAX_RATE,
    leaving: (session) => leaving.add(session),
    ended: (conn, session) => {
      sessions.delete(conn);
      leaving.delete(session);
    },
  };

  /** One client, from connect to close (its own I/O errors are caught). */
  function serve(conn: Deno.TcpConn): Promise<void> {
    noDelay(conn); // each line leaves at once, not after the next
    const session = new Session(conn, context);
    // Those told to go (BYE, server full, ...) may linger: they take no place.
    const full = sessions.size - leaving.size >= maxClients;
    sessions.set(conn, session);
    // run() logs "connected" at once, then waits for input: a refusal
    // is logged after that line, as it happens after the connection.
    const running = session.run(); // ends with context.ended()
    if (full) {
      log(`${session.addr} refused: server full`);
      session.end("ERROR server full");
    }
    return running;
  }

  // Each connection gets its own task, and the loop goes straight back to
  // accept the next client (lib/tcp_server.ts). Stopping, each client is
  // told why and given a moment to read it before its connection closes.
  return serveConnections(listener, serve, {
    log,
    onBug: options.onBug,
    endConnection: (conn) =>
      sessions.get(conn)?.end("ERROR server shutting down", SHUTDOWN_LINGER_MS),
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const stdout = batchedStdout();
  const server = startChatServer({
    hostname: flags.host,
    port: flags.port,
    log: stdout.log,
    onBug: reportBug,
    maxClients: flags["max-clients"],
    loginTimeout: flags["login-timeout"],
    maxQueue: flags["max-queue"],
    maxLine: flags["max-line"],
    maxRate: flags["max-rate"],
  });
  // Ready for Ctrl+C or SIGTERM before saying so: a script that reads the
  // first line may stop us right after it.
  const stopped = new Promise((stop) => onShutdown(stop));
  stdout.print(`Chat server listening on ${formatAddr(server.addr)}`);
  await stopped;
  await server.close();
  await stdout.close("Chat server stopped");
}

if (import.meta.main) await runMain(main, COMMAND);
