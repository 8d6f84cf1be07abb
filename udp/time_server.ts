/**
 * UDP date/time server (lab part 1, Q3): answers `SEND_DATE` with its local
 * date and `SEND_TIME` with its local time, forever; anything else gets one
 * `ERROR ...` line and the server goes on.
 *
 * Run:  deno run --allow-net --unstable-net udp/time_server.ts   (or: deno task udp-time-server)
 * Try:  deno task udp-time-client, or by hand: nc -u 127.0.0.1 12001 and type send_time
 *
 *     C: SEND_DATE        S: 2025-03-14
 *     C: send_time\n      S: 09:26:53          (case and surrounding whitespace do not matter)
 *     C: HELLO            S: ERROR unknown request, send SEND_DATE or SEND_TIME
 *
 * Stateless: each answer depends only on its request and the clock, so the
 * server needs no memory of its clients and one loop serves them all.
 *
 * @module
 */

import { parseFlags, runMain, serverFlags } from "../lib/cli.ts";
import { formatAddr, listenUdp, onShutdown } from "../lib/net.ts";
import {
  addrText,
  decodeUtf8,
  isClosedError,
  showDatagram,
} from "./datagram.ts";

/** The port of the contract's table (12001/udp). */
export const DEFAULT_PORT = 12001;

const COMMAND = {
  name: "udp-time-server",
  summary: "UDP date/time server: answers SEND_DATE and SEND_TIME.",
  flags: serverFlags(DEFAULT_PORT),
} as const;

/** The server's clock: local date and time in its time zone (`TZ`). */
export type Clock = () => Temporal.PlainDateTime;

const LOCAL_CLOCK: Clock = () => Temporal.Now.plainDateTimeISO();

/**
 * The answer to one request datagram. Never throws, and an `ERROR` answer
 * is at most 64 bytes. `/i` without `/u` folds ASCII letters only, so
 * `ſend_date` is not taken for `SEND_DATE`.
 */
export function answerRequest(data: Uint8Array, now: Clock): string {
  const text = decodeUtf8(data);
  if (text === null) return "ERROR request is not UTF-8";
  const request = text.trim();
  if (/^SEND_DATE$/i.test(request)) return now().toPlainDate().toString();
  if (/^SEND_TIME$/i.test(request)) {
    return now().toPlainTime().toString({ smallestUnit: "second" });
  }
  if (request === "") return "ERROR empty request, send SEND_DATE or SEND_TIME";
  return "ERROR unknown request, send SEND_DATE or SEND_TIME";
}

/** Where to listen, the clock, and where the log lines go. */
export interface TimeServerOptions {
  hostname: string;
  port: number;
  /** Default: the local date and time of this machine. */
  now?: Clock;
  /** One line per request (default `console.log`). */
  log?: (line: string) => void;
  /** Receive or send failures, which do not stop the server (default `console.error`). */
  warn?: (line: string) => void;
}

/** A running date/time server. */
export interface TimeServer extends AsyncDisposable {
  /** The address it listens on, with the real port. */
  readonly addr: Deno.NetAddr;
  /** Close the socket; resolves when the receive loop has ended. */
  close(): Promise<void>;
}

/** Bind the socket and answer every request until {@linkcode TimeServer.close}. */
export function startTimeServer(options: TimeServerOptions): TimeServer {
  const socket = listenUdp(options.hostname, options.port);
  const served = serveTime(socket, {
    now: options.now ?? LOCAL_CLOCK,
    log: options.log ?? console.log,
    warn: options.warn ?? console.error,
  });
  let open = true;
  async function close() {
    if (open) socket.close(); // a pending receive() fails: the loop ends
    open = false;
    await served;
  }
  return {
    addr: socket.addr as Deno.NetAddr,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** What {@linkcode serveTime} needs of a socket (tests pass a fake one). */
export type DatagramSocket = Pick<Deno.DatagramConn, "receive" | "send">;

/**
 * The endless loop: receive a request, print it, answer its sender. A
 * receive or send error is printed and the loop goes on; it ends only when
 * the socket is closed.
 */
export async function serveTime(
  socket: DatagramSocket,
  { now, log, warn }: Required<Pick<TimeServerOptions, "now" | "log" | "warn">>,
): Promise<void> {
  const encoder = new TextEncoder();
  while (true) {
    let datagram: [Uint8Array, Deno.Addr];
    try {
      // Without a buffer, receive() takes up to 65507 bytes, the largest
      // IPv4 datagram (a longer IPv6 one is cut, silently: still just bad input).
      datagram = await socket.receive();
    } catch (error) {
      if (isClosedError(error)) return;
      warn(`Receive failed, going on: ${(error as Error).message}`);
      continue;
    }
    const [data, sender] = datagram;
    const answer = answerRequest(data, now);
    log(`${addrText(sender)} sent ${showDatagram(data)} -> ${answer}`);
    try {
      await socket.send(encoder.encode(answer), sender);
    } catch (error) {
      if (isClosedError(error)) return;
      warn(`Cannot answer ${addrText(sender)}: ${(error as Error).message}`);
    }
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const server = startTimeServer({ hostname: flags.host, port: flags.port });
  // Listen for Ctrl+C and SIGTERM before saying we are ready.
  const stopped = new Promise((stop) => onShutdown(stop));
  console.log(`UDP time server listening on ${formatAddr(server.addr)}`);
  await stopped;
  await server.close();
  console.log("UDP time server stopped");
}

if (import.meta.main) await runMain(main, COMMAND);
