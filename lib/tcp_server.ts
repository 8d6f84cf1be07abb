/**
 * The accept loop of a TCP server that gives each client its own task:
 * accept, start the task, go straight back to accept the next client. Also
 * what stopping needs: close the listener, end every open connection (by
 * default close it: its pending read fails, so its task ends), and wait for
 * every task.
 *
 * The knock-knock, calculator and chat servers share it; the chat server
 * ends its connections with a last line instead (`endConnection`).
 *
 * Each task catches its own connection's I/O errors. What else escapes a
 * task is a bug: by default it crashes the server loudly, which is what a
 * test wants; the scripts pass `onBug: reportBug` instead, so that in class
 * a bug ends one session and the server goes on serving the others.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveConnections } from "./tcp_server.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * await using server = serveConnections(listener, async (conn) => {
 *   conn.close();
 * });
 * assert(server.addr.port > 0);
 * ```
 *
 * @module
 */

import { errnoName, isConnectionLost } from "./errors.ts";
import { formatAddr } from "./net.ts";

/** Pause after a failed accept (e.g. out of file descriptors) before retrying. */
const ACCEPT_RETRY_MS = 100;

/** How {@linkcode serveConnections} reports trouble and stops. */
export interface ServeOptions {
  /**
   * Where the loop says that it cannot take new clients (out of file
   * descriptors, say), and that it can again once it does: one line each,
   * however long the trouble lasts, where a line per retry would flood the
   * server's log ten times a second. Default: say nothing.
   */
  log?: (line: string) => void;
  /**
   * How `close()` ends a connection that is still open; its task must then
   * finish. Default: close it (its pending read fails).
   */
  endConnection?: (conn: Deno.TcpConn) => void;
  /**
   * A connection's task failed with an error it did not catch (a bug); its
   * connection is closed and the others go on. Default: none, the error is
   * left uncaught and the process crashes.
   */
  onBug?: (error: unknown, conn: Deno.TcpConn) => void;
}

/** A running TCP server. */
export interface TcpServer extends AsyncDisposable {
  /** The address it listens on, with the real port. */
  readonly addr: Deno.NetAddr;
  /** Stop listening, end every connection, wait for their tasks to finish. */
  close(): Promise<void>;
}

/**
 * Accept connections on `listener` until {@linkcode TcpServer.close}, running
 * `handle(conn)` for each at the same time. `handle` catches the errors of
 * its own connection; `conn` is closed for it when it returns. What it
 * throws or rejects with goes to `options.onBug`, if given. An error from
 * `accept` itself never stops the loop: a client that left before it was
 * taken is skipped; anything else (out of file descriptors) is said once in
 * `options.log` and retried until accept works again.
 *
 * @example
 * ```ts
 * import { serveConnections } from "./tcp_server.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const server = serveConnections(listener, async () => {});
 * await server.close();
 * ```
 */
export function serveConnections(
  listener: Deno.TcpListener,
  handle: (conn: Deno.TcpConn) => Promise<void>,
  options: ServeOptions = {},
): TcpServer {
  const { log = () => {}, endConnection = closeQuietly, onBug } = options;
  const connections = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  let stopping = false;

  async function acceptLoop(): Promise<void> {
    let failing = false; // accept has failed since it last worked
    while (!stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping || error instanceof Deno.errors.BadResource) return;
        // accept(2) passes on the network errors of a client that left
        // before we took it: skip that one. Out of file descriptors or
        // memory, say so (once) and wait a little before trying again;
        // new clients wait in the kernel's listen queue meanwhile.
        if (isConnectionLost(error) && !outOfResources(error)) continue;
        if (!failing) log(cannotAccept(error as Error, connections.size));
        failing = true;
        await new Promise((wake) => setTimeout(wake, ACCEPT_RETRY_MS));
        continue;
      }
      if (failing) log("Accepting new connections again");
      failing = false;
      connections.add(conn);
      // Promise.try: a handle that throws before it returns its promise (a
      // plain function, not an async one) fails like one that rejects, in
      // its own task; thrown out of this loop, it would end the server.
      const running = Promise.try(handle, conn);
      const caught = onBug ? running.catch((bug) => onBug(bug, conn)) : running;
      const task = caught.finally(() => {
        closeQuietly(conn);
        connections.delete(conn);
        tasks.delete(task);
      });
      tasks.add(task);
    }
  }

  const accepting = acceptLoop();
  async function close(): Promise<void> {
    stopping = true;
    closeQuietly(listener);
    for (const conn of connections) endConnection(conn);
    await accepting;
    await Promise.all(tasks);
  }
  return {
    addr: listener.addr,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The scripts' `onBug`: say on stderr, with the stack, that a bug ended one
 * client's session, and let the server go on.
 *
 * @example
 * ```ts ignore
 * import { reportBug, serveConnections } from "./tcp_server.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * serveConnections(listener, async () => {}, { onBug: reportBug });
 * ```
 */
export function reportBug(error: unknown, conn: Deno.TcpConn): void {
  console.error(
    `Bug: the session of ${
      formatAddr(conn.remoteAddr)
    } failed and was closed; serving the others. Please report:`,
    error,
  );
}

/**
 * What a server says when accept fails: what happened, and for the usual
 * cause, a process out of file descriptors, what to do about it. (A
 * terminal on macOS often lets a program open only 256 files: some 230
 * clients, once the runtime has its own.)
 *
 * ```
 * Cannot accept new connections: Too many open files (os error 24), with 44
 * connected. New clients wait until some leave; to serve more, raise the
 * limit in the shell before starting the server: ulimit -n 8192
 * ```
 */
function cannotAccept(error: Error, connected: number): string {
  const said =
    `Cannot accept new connections: ${error.message}, with ${connected} connected.`;
  return errnoName(error) === "EMFILE"
    ? `${said} New clients wait until some leave; to serve more, raise the limit in the shell before starting the server: ulimit -n 8192`
    : `${said} New clients wait; trying again every ${ACCEPT_RETRY_MS} ms.`;
}

/** No file descriptor or memory left for a new connection. */
function outOfResources(error: unknown): boolean {
  return OUT_OF_RESOURCES.has(errnoName(error) ?? "");
}

const OUT_OF_RESOURCES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/**
 * Close `resource` unless it is closed already (a server's close() may have
 * closed it first).
 *
 * @example
 * ```ts
 * import { closeQuietly } from "./tcp_server.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * closeQuietly(listener);
 * closeQuietly(listener); // no error the second time
 * ```
 */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}
