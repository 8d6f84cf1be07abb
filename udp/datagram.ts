/**
 * What the UDP exercises share: finding the server's numeric address,
 * opening a client socket, keeping only the answers that come from the
 * server, telling a server which datagrams it must not answer, and showing
 * a received datagram (quoted and escaped by lib/printable.ts, cut short).
 *
 * Not a script: udp/hello_*.ts and udp/time_*.ts import it.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { FatalError, plainReason } from "../lib/cli.ts";
import { errnoName } from "../lib/errors.ts";
import { quote } from "../lib/printable.ts";
import {
  formatAddr,
  hostPort,
  isLookupFailure,
  listenUdp,
} from "../lib/net.ts";

/**
 * The largest UDP payload over IPv4 (65535 bytes less 8 of UDP header and 20
 * of IP header): a receive buffer this long never cuts an IPv4 datagram.
 */
export const MAX_DATAGRAM_BYTES = 65507;

/** Characters of a message that a server or client prints at most. */
export const MAX_SHOWN_CHARS = 60;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The datagram as text, or `null` when its bytes are not valid UTF-8. */
export function decodeUtf8(data: Uint8Array): string | null {
  try {
    return utf8.decode(data);
  } catch {
    return null;
  }
}

/** Whether `data` holds exactly the bytes of `expected`. */
export function sameBytes(data: Uint8Array, expected: Uint8Array): boolean {
  if (data.length !== expected.length) return false;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== expected[i]) return false;
  }
  return true;
}

/**
 * A UTF-8 encoder that remembers the last text it encoded. A busy server's
 * answers mostly repeat (the time changes once a second): each is encoded
 * once, and its bytes are sent many times (they are never changed).
 */
export function repeatingEncoder(): (text: string) => Uint8Array {
  const encoder = new TextEncoder();
  let lastText = "";
  let lastBytes = new Uint8Array();
  return (text) => {
    if (text !== lastText) {
      lastText = text;
      lastBytes = encoder.encode(text);
    }
    return lastBytes;
  };
}

/**
 * A received datagram as a server or client prints it: quoted and escaped,
 * cut after {@linkcode MAX_SHOWN_CHARS} characters, or `(N bytes, not UTF-8)`.
 *
 *     "SEND_DATE\n"        "AAAAAAAA…" (65507 bytes)        (3 bytes, not UTF-8)
 */
export function showDatagram(data: Uint8Array): string {
  // A busy server prints every request: the usual short ASCII ones skip
  // the UTF-8 decoder and the escaping, whose result would be the same.
  const plain = plainAscii(data);
  if (plain !== null) return `"${plain}"`;
  const text = decodeUtf8(data);
  if (text === null) return `(${data.length} bytes, not UTF-8)`;
  const chars = [...text];
  if (chars.length <= MAX_SHOWN_CHARS) return quote(text);
  const start = chars.slice(0, MAX_SHOWN_CHARS).join("");
  return `${quote(`${start}…`)} (${data.length} bytes)`; // "…" inside: cut here
}

/**
 * `data` as text when it is short and every byte is printable ASCII other
 * than `\\` and `"` (text that {@linkcode quote} leaves as it is), else `null`.
 */
function plainAscii(data: Uint8Array): string | null {
  if (data.length > MAX_SHOWN_CHARS) return null;
  let text = "";
  for (let i = 0; i < data.length; i++) {
    const byte = data[i];
    if (byte < 0x20 || byte > 0x7e || byte === 0x5c || byte === 0x22) {
      return null;
    }
    text += String.fromCharCode(byte);
  }
  return text;
}

/**
 * The server's numeric address. A client needs it to tell the server's
 * answers from datagrams anybody else sends to its port, since the answers
 * come from a number (`127.0.0.1`), never from a name (`localhost`).
 */
export async function lookupServer(
  host: string,
  port: number,
): Promise<Deno.NetAddr> {
  try {
    const { address } = await lookup(host);
    return { transport: "udp", hostname: loopbackFor(address), port };
  } catch (error) {
    if (!isLookupFailure(error)) throw error;
    throw new FatalError(
      `Cannot send to ${hostPort(host, port)}: host not found (check --host)`,
    );
  }
}

/**
 * `0.0.0.0` and `::` (what a server prints it listens on) mean "this
 * machine" when sent to, but the answer comes back from `127.0.0.1` or
 * `::1`: ask that address, so the answer is recognised as the server's.
 */
function loopbackFor(address: string): string {
  if (address === "0.0.0.0") return "127.0.0.1";
  if (address === "::") return "::1";
  return address;
}

/**
 * A client's socket: every interface (`0.0.0.0`, or `::` for an IPv6
 * server) and port 0, so the system picks a free port and the answer can
 * come back over whichever network leads to the server.
 */
export function openClientSocket(server: Deno.NetAddr): Deno.DatagramConn {
  return listenUdp(server.hostname.includes(":") ? "::" : "0.0.0.0", 0);
}

/** Whether `addr` is `expected` (an IPv4 address may arrive as `::ffff:a.b.c.d`). */
export function sameAddr(addr: Deno.Addr, expected: Deno.NetAddr): boolean {
  return addr.transport === "udp" && addr.port === expected.port &&
    canonicalHost(addr.hostname) === canonicalHost(expected.hostname);
}

/**
 * Why a lab server must leave this datagram unanswered, or `null` to answer
 * it. A server that answers an answer can be made to talk forever: one
 * datagram to the time server with a forged source, the hello server's
 * address, and the two ping-pong as fast as they can.
 *
 *     127.0.0.1:12000 -> 127.0.0.1:12001   hi       (forged: the hello server did not send it)
 *     127.0.0.1:12000 <- 127.0.0.1:12001   ERROR unknown request, send SEND_DATE or SEND_TIME
 *     127.0.0.1:12000 -> 127.0.0.1:12001   Ok       (the hello server's answer: not answered)
 *
 * One forged from the server's own address would have it answer itself,
 * forever. So neither is answered: a datagram from `self`, and one that
 * `isAnswer` knows as an answer. The time server takes no answer for a
 * request ({@linkcode isLabAnswer}); the hello server answers any text
 * (Q1), except its own `Ok` ({@linkcode isOk}): with those two
 * rules every pair of lab servers falls silent after at most two answers
 * (three datagrams with the forged one, as above).
 */
export function whyNotAnswer(
  data: Uint8Array,
  from: Deno.Addr,
  self: Deno.NetAddr,
  isAnswer: (data: Uint8Array) => boolean,
): string | null {
  if (isOwnAddress(from, self)) return "it came from this server's own address";
  if (isAnswer(data)) return "it is an answer, not a request";
  return null;
}

/**
 * What the lab's UDP servers answer, surrounding whitespace aside: `Ok`
 * (hello), a date `2026-01-31`, a time `09:26:53`, or a line starting with
 * `ERROR` (date/time).
 */
const LAB_ANSWER = /^(?:Ok|ERROR.*|\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d)$/s;

/** Whether `data` is one of the lab servers' answers, never a request. */
export function isLabAnswer(data: Uint8Array): boolean {
  const text = decodeUtf8(data);
  return text !== null && LAB_ANSWER.test(text.trim());
}

/**
 * Whether `data` is the hello server's answer, `Ok`, surrounding whitespace
 * aside. Exactly `Ok`: a person may well send `ok` and expect an `Ok`.
 */
export function isOk(data: Uint8Array): boolean {
  return decodeUtf8(data)?.trim() === "Ok";
}

/**
 * Whether `from` is the address of the socket bound to `self`. A socket
 * bound to every interface (`0.0.0.0`, `::`) has every address of this
 * machine; only the loopback ones are recognised (the others would take
 * `--allow-sys` to list), and a datagram forged from another one gets one
 * answer, which, being a lab answer, is not answered again.
 */
export function isOwnAddress(from: Deno.Addr, self: Deno.NetAddr): boolean {
  if (from.transport !== "udp" || from.port !== self.port) return false;
  const host = canonicalHost(from.hostname);
  const own = canonicalHost(self.hostname);
  if (host === own) return true;
  const everyInterface = own === "0.0.0.0" || own === "::";
  return everyInterface &&
    (host.startsWith("127.") || host === "::1" || host === "0.0.0.0" ||
      host === "::");
}

function canonicalHost(host: string): string {
  if (!host.includes(":")) return host;
  let v6: string;
  try {
    v6 = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host.toLowerCase(); // e.g. a zone id (fe80::1%eth0)
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!mapped) return v6;
  const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join(".");
}

/** `receive()` failed because the socket was closed (by us): stop reading. */
export function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/** At most this many answers wait in an {@linkcode Inbox}; older ones go. */
const MAX_QUEUED = 64;

/**
 * The datagrams that reach a client socket from its server, queued until
 * asked for with a timeout. Datagrams from any other address are reported
 * to `onOther` and dropped. Close the socket, then await `done`.
 *
 * A system error on a receive (Windows reports an earlier datagram that
 * reached a closed port that way) is not the end of the socket: reading goes
 * on. Anything else that goes wrong while reading (a bug, or `onOther`
 * failing, say on a closed stdout) stops it, and the next
 * {@linkcode Inbox.next} throws that error, where the client awaits it.
 */
export class Inbox {
  readonly #socket: Deno.DatagramConn;
  readonly #server: Deno.NetAddr;
  readonly #onOther: (from: Deno.Addr) => void;
  readonly #queue: Uint8Array[] = [];
  #wake?: () => void;
  #closed = false;
  #failure: unknown; // what stopped the reading, other than a close
  /** Resolves once the socket is closed and reading has stopped. */
  readonly done: Promise<void>;

  constructor(
    socket: Deno.DatagramConn,
    server: Deno.NetAddr,
    onOther: (from: Deno.Addr) => void = () => {},
  ) {
    this.#socket = socket;
    this.#server = server;
    this.#onOther = onOther;
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    while (!this.#closed) {
      try {
        const [data, from] = await this.#socket.receive();
        if (!sameAddr(from, this.#server)) {
          this.#onOther(from);
          continue;
        }
        if (this.#queue.push(data) > MAX_QUEUED) this.#queue.shift();
      } catch (error) {
        if (isClosedError(error)) this.#closed = true;
        else if (errnoName(error) === undefined) {
          this.#failure = error;
          this.#closed = true;
        }
      }
      this.#wake?.();
    }
  }

  /** Forget answers that arrived late, before a new request is sent. */
  clear(): void {
    this.#queue.length = 0;
  }

  /**
   * The next datagram from the server, or `null` when none came within
   * `timeoutMs`, `signal` was aborted, or the socket is closed. Throws what
   * stopped the reading, if it was not a close.
   */
  async next(
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Uint8Array | null> {
    const started = Date.now();
    while (this.#queue.length === 0 && !this.#closed && !signal?.aborted) {
      const left = timeoutMs - (Date.now() - started);
      if (left <= 0) return null;
      await this.#wait(left, signal);
    }
    if (signal?.aborted) return null;
    if (this.#queue.length === 0 && this.#failure !== undefined) {
      throw this.#failure;
    }
    return this.#queue.shift() ?? null;
  }

  /** Until a datagram is read, the time is up, or `signal` is aborted. */
  #wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      signal?.addEventListener("abort", finish);
      this.#wake = finish;
    });
  }
}

/** The address a datagram came from, as a log line shows it. */
export function addrText(addr: Deno.Addr): string {
  return "hostname" in addr ? formatAddr(addr) : String(addr);
}

/** The {@linkcode FatalError} for a datagram that could not be sent. */
export function sendFailure(error: unknown, to: Deno.NetAddr): FatalError {
  const reason = plainReason(error as Error);
  const hint = /too long/i.test(reason)
    ? "a datagram holds at most 65507 bytes"
    : "check --host and the network";
  return new FatalError(
    `Cannot send to ${formatAddr(to)}: ${reason} (${hint})`,
  );
}
