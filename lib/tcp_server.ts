/**
 * The accept loop of a TCP server that gives each client its own task:
 * accept, start the task, go straight back to accept the next client. Also
 * what stopping needs: close the listener, close every open connection (their
 * pending reads fail, so their tasks end), and wait for every task.
 *
 * The knock-knock and calculator servers share it; the chat server has its
 * own loop because it also refuses clients past `--max-clients`.
 *
 * @example
 * ```ts
 * import { serveConnections } from "./tcp_server.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * await using server = serveConnections(listener, async (conn) => {
 *   conn.close();
 * });
 * console.assert(server.addr.port > 0);
 * ```
 *
 * @module
 */

/** Pause after a failed accept (e.g. out of file descriptors) before retrying. */
const ACCEPT_RETRY_MS = 100;

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
 * its own connection; `conn` is closed for it when it returns. An error from
 * `accept` itself (a client that left at once, no file descriptors left) is
 * passed to `onAcceptError` and the loop goes on.
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
  onAcceptError: (error: Error) => void = () => {},
): TcpServer {
  const connections = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  let stopping = false;

  async function acceptLoop(): Promise<void> {
    while (!stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping || error instanceof Deno.errors.BadResource) return;
        onAcceptError(error as Error);
        await new Promise((wake) => setTimeout(wake, ACCEPT_RETRY_MS));
        continue;
      }
      connections.add(conn);
      const task = handle(conn).finally(() => {
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
    for (const conn of connections) closeQuietly(conn); // pending reads fail
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
