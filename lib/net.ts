/**
 * Opening sockets the way every exercise does: TCP listen and connect, UDP
 * bind, each turning the failures a person can cause (port in use, server not
 * running, unknown host) into a {@linkcode FatalError} that says in one
 * sentence what happened and what to check. Also: printing addresses, and
 * stopping cleanly on Ctrl+C or SIGTERM.
 *
 * @example
 * ```ts
 * import { formatAddr, listenTcp } from "./net.ts";
 * const listener = listenTcp("127.0.0.1", 0);
 * console.log(`listening on ${formatAddr(listener.addr)}`);
 * listener.close();
 * ```
 *
 * @module
 */

import { FatalError, plainReason } from "./cli.ts";
import { isConnectionLost } from "./errors.ts";

/**
 * `host:port`, with brackets around an IPv6 host (`[::1]:5000`), as a person
 * would type it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatAddr } from "./net.ts";
 * assert(formatAddr({ transport: "tcp", hostname: "::1", port: 80 }) === "[::1]:80");
 * ```
 */
export function formatAddr(addr: Deno.NetAddr): string {
  return hostPort(addr.hostname, addr.port);
}

/**
 * `host:port`, an IPv6 host in brackets: `[::1]:5000`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostPort } from "./net.ts";
 * assert(hostPort("127.0.0.1", 5000) === "127.0.0.1:5000");
 * assert(hostPort("::1", 5000) === "[::1]:5000");
 * ```
 */
export function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * Listen for TCP connections on `host:port`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenTcp } from "./net.ts";
 * using listener = listenTcp("127.0.0.1", 0);
 * assert(listener.addr.port > 0);
 * ```
 */
export function listenTcp(host: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: host, port, transport: "tcp" });
  } catch (error) {
    throw listenFailure(error, hostPort(host, port));
  }
}

/**
 * Bind a UDP socket on `host:port` (needs `--unstable-net`).
 *
 * @example
 * ```ts ignore
 * import { listenUdp } from "./net.ts";
 * using socket = listenUdp("127.0.0.1", 0);
 * ```
 */
export function listenUdp(host: string, port: number): Deno.DatagramConn {
  // UDP sockets are still behind a flag in Deno: without it there is no
  // Deno.listenDatagram at all (a bundled file run by hand forgets it).
  if (typeof Deno.listenDatagram !== "function") {
    const script = Deno.mainModule.split("/").at(-1);
    throw new FatalError(
      `UDP needs Deno's --unstable-net flag: deno run --allow-net --unstable-net ${script}`,
    );
  }
  try {
    return Deno.listenDatagram({ hostname: host, port, transport: "udp" });
  } catch (error) {
    throw listenFailure(error, `${hostPort(host, port)}/udp`);
  }
}

/**
 * Connect to a TCP server, with Nagle's algorithm off so that each line
 * leaves at once (an interactive protocol waits for every answer).
 *
 * A host that is not there, or a firewall that drops the SYN, answers
 * nothing: the system would resend the SYN for about two minutes before
 * giving up. With `timeout` (seconds, the client's `--timeout`) the client
 * gives up sooner, with one plain sentence.
 *
 * @example
 * ```ts ignore
 * import { connectTcp } from "./net.ts";
 * const conn = await connectTcp("127.0.0.1", 12002, { timeout: 5 });
 * conn.close();
 * ```
 */
export async function connectTcp(
  host: string,
  port: number,
  options: { timeout?: number } = {},
): Promise<Deno.TcpConn> {
  const { timeout } = options;
  // Deno.connect's signal is also documented to close the connection: so
  // it may abort only while connecting, never once connected.
  const giveUp = new AbortController();
  const timer = timeout === undefined
    ? undefined
    : setTimeout(() => giveUp.abort(), timeout * 1000);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({
      hostname: host,
      port,
      transport: "tcp",
      signal: giveUp.signal,
    });
  } catch (error) {
    throw connectFailure(error, host, port, {
      gaveUpAfter: giveUp.signal.aborted ? timeout : undefined,
    });
  } finally {
    clearTimeout(timer);
  }
  noDelay(conn);
  return conn;
}

/**
 * Switch off Nagle's algorithm on `conn` (`conn.setNoDelay(true)`): a short
 * line leaves at once instead of waiting for the answer to the one before.
 * A connection that its client has already closed or reset may refuse the
 * option (macOS says `Invalid argument`, EINVAL, once both directions are
 * shut): that client is gone, and its session finds out at its first read,
 * so the refusal is ignored. Anything else is a bug and is thrown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { noDelay } from "./net.ts";
 * const refusing = (error: Error) =>
 *   ({ setNoDelay: () => { throw error; } }) as unknown as Deno.TcpConn;
 * // macOS, on a connection its client has reset: ignored
 * noDelay(refusing(Object.assign(new Error("Invalid argument (os error 22)"), { code: "EINVAL" })));
 * assert.throws(() => noDelay(refusing(new TypeError("a bug"))), TypeError);
 * ```
 */
export function noDelay(conn: Deno.TcpConn): void {
  try {
    conn.setNoDelay(true);
  } catch (error) {
    if (!isConnectionLost(error)) throw error;
  }
}

/** How long {@linkcode answerWithin} waits, and for which server. */
export interface AnswerLimit {
  /** Seconds to wait (the client's `--timeout`). */
  seconds: number;
  /** The server's address as shown: `127.0.0.1:12003`. */
  server: string;
  /** What the server should be, for the hint: `calculator server`. */
  kind: string;
}

/**
 * `answer`, or a {@linkcode FatalError} once `limit.seconds` have passed
 * without it. A server that accepts the connection but never answers (a
 * stuck program, `nc -l`, the wrong port) would otherwise keep the client
 * waiting forever: TCP reports a lost connection, never silence. The read
 * left waiting ends when the client closes the connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { answerWithin } from "./net.ts";
 * const silence = new Promise<string>(() => {});
 * const limit = { seconds: 0.01, server: "127.0.0.1:12003", kind: "calculator server" };
 * const error = await answerWithin(silence, limit).catch((e) => e);
 * assert(
 *   error.message ===
 *     "No answer from 127.0.0.1:12003 within 0.01 s (is it the calculator server?)",
 * );
 * ```
 */
export async function answerWithin<T>(
  answer: Promise<T>,
  limit: AnswerLimit,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new FatalError(
          `No answer from ${limit.server} within ${limit.seconds} s (is it the ${limit.kind}?)`,
        ),
      );
    }, limit.seconds * 1000);
  });
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The {@linkcode FatalError} for a failed listen or bind, or `error` itself
 * when it is not one a person can fix.
 */
function listenFailure(error: unknown, where: string): unknown {
  if (error instanceof Deno.errors.NotCapable) return flagLeftOut(error);
  if (error instanceof Deno.errors.AddrInUse) {
    return new FatalError(
      `Cannot listen on ${where}: the port is already in use (is another server running? choose another --port)`,
    );
  }
  if (isLookupFailure(error)) {
    return new FatalError(
      `Cannot listen on ${where}: host not found (check --host)`,
    );
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return new FatalError(
      `Cannot listen on ${where}: the host is not an address of this machine (check --host)`,
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new FatalError(
      `Cannot listen on ${where}: permission denied (ports below 1024 need root; choose another --port)`,
    );
  }
  return error;
}

/**
 * A `deno run` without the permission the script needs, and no terminal to
 * ask on: Deno's own sentence says which flag, without the stack trace.
 *
 * ```
 * Requires net access to "0.0.0.0:12000", run again with the --allow-net flag
 * ```
 */
function flagLeftOut(error: Deno.errors.NotCapable): FatalError {
  return new FatalError(error.message);
}

/**
 * The {@linkcode FatalError} for a failed connect to `host:port` (given up
 * after `gaveUpAfter` seconds, when that is set), or `error` itself when it
 * is not one a person can fix.
 */
function connectFailure(
  error: unknown,
  host: string,
  port: number,
  { gaveUpAfter }: { gaveUpAfter?: number } = {},
): unknown {
  const where = `Cannot connect to ${hostPort(host, port)}`;
  if (error instanceof Deno.errors.NotCapable) return flagLeftOut(error);
  if (gaveUpAfter !== undefined) {
    return new FatalError(
      `${where}: no answer within ${gaveUpAfter} s (is the server running? is a firewall dropping the connection?)`,
    );
  }
  if (error instanceof Deno.errors.ConnectionRefused) {
    return new FatalError(
      `${where}: connection refused (is the server running on that port?)`,
    );
  }
  if (isLookupFailure(error)) {
    return new FatalError(`${where}: host not found (check --host)`);
  }
  if (
    error instanceof Deno.errors.TimedOut ||
    error instanceof Deno.errors.AddrNotAvailable ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.ConnectionReset ||
    (error instanceof Error && /unreachable/i.test(error.message))
  ) {
    return new FatalError(
      `${where}: ${
        plainReason(error as Error)
      } (check the address and the network)`,
    );
  }
  return error;
}

/**
 * Deno reports an unknown host as a plain Error from getaddrinfo, and a
 * name no lookup could find (`a..b`, `:::`) as a URIError before trying;
 * `node:dns` as `getaddrinfo ENOTFOUND host` (or `EAI_AGAIN` without DNS).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLookupFailure } from "./net.ts";
 * assert(isLookupFailure(new URIError("bad host")));
 * // macOS, and Linux with no DNS server to ask:
 * const lookup = "failed to lookup address information: ";
 * assert(isLookupFailure(new Error(`${lookup}nodename nor servname provided, or not known`)));
 * assert(isLookupFailure(new Error(`${lookup}Temporary failure in name resolution`)));
 * assert(!isLookupFailure(new Deno.errors.ConnectionRefused("refused")));
 * ```
 */
export function isLookupFailure(error: unknown): boolean {
  if (error instanceof URIError) return true;
  return error instanceof Error &&
    /failed to lookup address|Name or service not known|No address associated|getaddrinfo (ENOTFOUND|EAI_AGAIN|EAI_FAIL|ENODATA)/i
      .test(error.message);
}

/**
 * Call `stop` once on the first SIGINT (Ctrl+C) or SIGTERM. Returns a
 * function that removes the handlers again (tools that end by themselves,
 * such as tools/pair.ts, call it: a signal listener keeps a process alive).
 *
 * @example
 * ```ts
 * import { onShutdown } from "./net.ts";
 * const removeHandlers = onShutdown(() => console.log("stopping"));
 * removeHandlers();
 * ```
 */
export function onShutdown(stop: (signal: Deno.Signal) => void): () => void {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  let called = false;
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (called) return;
      called = true;
      stop(signal);
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) {
      Deno.removeSignalListener(signal, handler);
    }
  };
}
