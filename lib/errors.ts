/**
 * Which errors end a connection, and which are bugs. A server serves many
 * clients at once: one client's reset or vanished network must end that
 * client's session only, while a mistake in our code must not be taken for
 * a lost client and hidden. Every task that serves a connection sorts what
 * it catches with {@linkcode isConnectionLost}.
 *
 * @example
 * ```ts
 * import { isConnectionLost } from "./errors.ts";
 * try {
 *   throw new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)");
 * } catch (error) {
 *   if (!isConnectionLost(error)) throw error; // a bug: crash loudly
 *   // the client went away: end its session only
 * }
 * ```
 *
 * @module
 */

/**
 * Whether `error` means the connection is gone: the operating system
 * reported trouble with the socket (the peer reset it or went away, the
 * network is gone), or it was closed under a pending read or write. These
 * end one connection, and only that one. Anything else is a bug.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isConnectionLost } from "./errors.ts";
 * assert(isConnectionLost(new Deno.errors.ConnectionReset("reset")));
 * assert(!isConnectionLost(new TypeError("a bug")));
 * ```
 */
export function isConnectionLost(error: unknown): boolean {
  return errnoName(error) !== undefined ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.WriteZero ||
    error instanceof Deno.errors.TimedOut ||
    error instanceof Deno.errors.NetworkUnreachable ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/**
 * The name of the system error behind `error` (`ECONNRESET`, `EMFILE`), if
 * the operating system reported it. A socket fails in more ways than Deno
 * has classes for: a laptop that leaves the network behind a router ends
 * its connection, about 15 minutes later, with a plain
 * `Error: No route to host (os error 113)`, code `EHOSTUNREACH`. Every
 * error from the system carries such a `code`; Node-style codes of
 * programming errors (`ERR_INVALID_ARG_TYPE`) do not look like one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errnoName } from "./errors.ts";
 * const reset = Object.assign(new Error("Connection reset by peer (os error 104)"), { code: "ECONNRESET" });
 * assert(errnoName(reset) === "ECONNRESET");
 * assert(errnoName(new TypeError("not a socket error")) === undefined);
 * ```
 */
export function errnoName(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === "string" &&
      ERRNO_NAME.test(code)
    ? code
    : undefined;
}

const ERRNO_NAME = /^E[A-Z0-9]+$/;
