/**
 * UDP date/time server (lab part 1, Q3): answers `SEND_DATE` with its local
 * date and `SEND_TIME` with its local time, forever; anything else gets one
 * `ERROR ...` line and the server goes on. What is itself an answer (`Ok`,
 * `ERROR ...`, a date, a time) or comes from its own address gets none
 * (udp/README.md, "Servers answer requests, never answers").
 *
 * Run:  deno run --allow-net --unstable-net udp/time_server.ts   (or: deno task udp-time-server)
 * Try:  deno task udp-time-client, or by hand: nc -u 127.0.0.1 12001 and type send_time
 *
 *     C: SEND_DATE        S: 2025-03-14
 *     C: send_time\n      S: 09:26:53          (case and surrounding whitespace do not matter)
 *     C: HELLO            S: ERROR unknown request, send SEND_DATE or SEND_TIME
 *     C: Ok               (not answered: an answer itself, see whyNotAnswer)
 *
 * Stateless: each answer depends only on its request and the clock, so the
 * server needs no memory of its clients, and a few loops that each receive a
 * request and answer it can serve them all side by side.
 *
 * @module
 */

import { batchedStdout } from "../lib/batched_log.ts";
import { parseFlags, runMain, serverFlags } from "../lib/cli.ts";
import { formatAddr, listenUdp, onShutdown } from "../lib/net.ts";
import {
  addrText,
  decodeUtf8,
  isClosedError,
  isLabAnswer,
  MAX_DATAGRAM_BYTES,
  repeatingEncoder,
  sameBytes,
  showDatagram,
  whyNotAnswer,
} from "./datagram.ts";

/** The port of the contract's table (12001/udp). */
export const DEFAULT_PORT = 12001;

const COMMAND = {
  name: "udp-time-server",
  summary: "UDP date/time server: answers SEND_DATE and SEND_TIME.",
  flags: serverFlags(DEFAULT_PORT),
} as const;

/** The two requests, as the bytes almost every client sends. */
const SEND_DATE = new TextEncoder().encode("SEND_DATE");
const SEND_TIME = new TextEncoder().encode("SEND_TIME");

/**
 * Receive loops waiting on the socket at once. Deno allows several pending
 * receive() calls on one socket, each with its own buffer, and each datagram
 * goes to one of them; when datagrams arrive together, one turn of the event
 * loop then answers several. (More than a few only wake each other up.)
 */
const RECEIVE_LOOPS = 4;

/**
 * The server's clock: milliseconds since 1970-01-01 UTC, like `Date.now`
 * (tests pass a fixed one).
 */
export type Clock = () => number;

/** What `SEND_DATE` and `SEND_TIME` get during one second of the clock. */
export interface LocalMoment {
  /** The second since 1970 these answers are for. */
  readonly second: number;
  /** `YYYY-MM-DD` in the server's time zone. */
  readonly date: string;
  /** `HH:MM:SS` (24 h) in the server's time zone. */
  readonly time: string;
}

/** The answers for the current second, read for every request. */
export type LocalClock = () => LocalMoment;

/**
 * Local date and time, worked out once per second of `now`: under load,
 * thousands of requests share a second, and time-zone arithmetic would cost
 * more than the rest of an answer. The cache is keyed on the second itself,
 * so a new second is never answered with the old one.
 *
 * `timeZone` names a zone (`Europe/Paris`, `UTC`); without it, the answers
 * are in this machine's local time as `Date` sees it, which follows `TZ` as
 * the C library does: a zone name, a POSIX rule (`TZ=UTC+3` is 3 hours
 * behind UTC, as `date` prints), a zone file path; `TZ` set but empty means
 * UTC. Not `Temporal.Now.timeZoneId()`: with `TZ=` it says `Etc/Unknown`,
 * which Temporal then refuses to use, and with `TZ=UTC+3` it says `UTC`.
 * A `timeZone` that is not a zone throws a RangeError here, at the start.
 */
export function localTime(
  now: Clock = Date.now,
  timeZone?: string,
): LocalClock {
  // The runtime's local zone when timeZone is undefined (what Date uses).
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone,
    numberingSystem: "latn",
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  let moment: LocalMoment = { second: NaN, date: "", time: "" };
  return () => {
    const second = Math.floor(now() / 1000);
    if (second !== moment.second) {
      const field: Partial<Record<Intl.DateTimeFormatPartTypes, string>> = {};
      for (const part of format.formatToParts(second * 1000)) {
        field[part.type] = part.value;
      }
      moment = {
        second,
        date: `${field.year!.padStart(4, "0")}-${field.month}-${field.day}`,
        time: `${field.hour}:${field.minute}:${field.second}`,
      };
    }
    return moment;
  };
}

/**
 * The answer to one request datagram. Never throws, and an `ERROR` answer
 * is at most 64 bytes. `/i` without `/u` folds ASCII letters only, so
 * `ſend_date` is not taken for `SEND_DATE`.
 */
export function answerRequest(data: Uint8Array, now: LocalClock): string {
  // Almost every request is exactly one of the two words: comparing bytes
  // answers it without decoding text.
  if (sameBytes(data, SEND_TIME)) return now().time;
  if (sameBytes(data, SEND_DATE)) return now().date;
  const text = decodeUtf8(data);
  if (text === null) return "ERROR request is not UTF-8";
  const request = text.trim();
  if (/^SEND_DATE$/i.test(request)) return now().date;
  if (/^SEND_TIME$/i.test(request)) return now().time;
  if (request === "") return "ERROR empty request, send SEND_DATE or SEND_TIME";
  return "ERROR unknown request, send SEND_DATE or SEND_TIME";
}

/**
 * Whether `data` is one of the lab's answers, not a request
 * ({@linkcode isLabAnswer}); the two requests as clients send them are told
 * apart without decoding, as in {@linkcode answerRequest}.
 */
function isAnswer(data: Uint8Array): boolean {
  return !sameBytes(data, SEND_TIME) && !sameBytes(data, SEND_DATE) &&
    isLabAnswer(data);
}

/** Where to listen, the clock, and where the log lines go. */
export interface TimeServerOptions {
  hostname: string;
  port: number;
  /** Default: this machine's clock (`Date.now`). */
  now?: Clock;
  /** A zone name; default: this machine's local time (`TZ`, see {@linkcode localTime}). */
  timeZone?: string;
  /** One line per request (default `console.log`). */
  log?: (line: string) => void;
  /** Receive or send failures, which do not stop the server (default `console.error`). */
  warn?: (line: string) => void;
}

/** A running date/time server. */
export interface TimeServer extends AsyncDisposable {
  /** The address it listens on, with the real port. */
  readonly addr: Deno.NetAddr;
  /** Close the socket; resolves when the receive loops have ended. */
  close(): Promise<void>;
}

/** Bind the socket and answer every request until {@linkcode TimeServer.close}. */
export function startTimeServer(options: TimeServerOptions): TimeServer {
  const socket = listenUdp(options.hostname, options.port);
  const served = serveTime(socket, {
    now: localTime(options.now, options.timeZone),
    log: options.log ?? console.log,
    warn: options.warn ?? console.error,
  });
  let open = true;
  async function close() {
    if (open) socket.close(); // every pending receive() fails: the loops end
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
export type DatagramSocket = Pick<
  Deno.DatagramConn,
  "receive" | "send" | "addr"
>;

/** What {@linkcode serveTime} answers with and where it prints. */
export interface ServeOptions {
  now: LocalClock;
  log: (line: string) => void;
  warn: (line: string) => void;
}

/** Answer requests from {@linkcode RECEIVE_LOOPS} loops until the socket is closed. */
export async function serveTime(
  socket: DatagramSocket,
  options: ServeOptions,
): Promise<void> {
  const loops = [];
  for (let i = 0; i < RECEIVE_LOOPS; i++) {
    loops.push(answerLoop(socket, options));
  }
  await Promise.all(loops);
}

/**
 * The endless loop: receive a request, print it, answer its sender (unless
 * {@linkcode whyNotAnswer} says not to). A receive or send error is printed
 * and the loop goes on; it ends only when the socket is closed.
 *
 *     127.0.0.1:54321 sent "SEND_TIME" -> 09:26:53
 *     127.0.0.1:12000 sent "Ok" -> not answered: it is an answer, not a request
 */
async function answerLoop(
  socket: DatagramSocket,
  { now, log, warn }: ServeOptions,
): Promise<void> {
  // One buffer for every datagram of this loop (receive() without one
  // allocates 64 KiB per datagram). 65507 bytes: the largest IPv4 datagram;
  // a longer IPv6 one is cut, silently: still just bad input.
  const buffer = new Uint8Array(MAX_DATAGRAM_BYTES);
  const encode = repeatingEncoder();
  const self = socket.addr as Deno.NetAddr;
  let sending: Promise<void> = Promise.resolve();
  while (true) {
    let datagram: [Uint8Array, Deno.Addr];
    try {
      datagram = await socket.receive(buffer);
    } catch (error) {
      if (isClosedError(error)) break;
      warn(`Receive failed, going on: ${(error as Error).message}`);
      continue;
    }
    const [data, sender] = datagram;
    const request = `${addrText(sender)} sent ${showDatagram(data)}`;
    const ignored = whyNotAnswer(data, sender, self, isAnswer);
    if (ignored !== null) {
      log(`${request} -> not answered: ${ignored}`);
      continue;
    }
    const answer = answerRequest(data, now);
    log(`${request} -> ${answer}`);
    // The next receive need not wait for this answer to leave, but at most
    // one answer per loop is on its way (memory stays bounded).
    await sending;
    sending = sendAnswer(socket, encode(answer), sender, warn);
  }
  await sending;
}

/** Send `answer` to `to`; a failure is printed, never thrown. */
function sendAnswer(
  socket: DatagramSocket,
  answer: Uint8Array,
  to: Deno.Addr,
  warn: (line: string) => void,
): Promise<void> {
  return socket.send(answer, to).then(() => {}, (error) => {
    if (isClosedError(error)) return;
    warn(`Cannot answer ${addrText(to)}: ${(error as Error).message}`);
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(COMMAND);
  const stdout = batchedStdout();
  const server = startTimeServer({
    hostname: flags.host,
    port: flags.port,
    log: stdout.log,
  });
  // Listen for Ctrl+C and SIGTERM before saying we are ready.
  const stopped = new Promise((stop) => onShutdown(stop));
  stdout.print(`UDP time server listening on ${formatAddr(server.addr)}`);
  await stopped;
  await server.close();
  await stdout.close("UDP time server stopped");
}

if (import.meta.main) await runMain(main, COMMAND);
